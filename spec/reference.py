"""A kmq reader and ctx1 and mix coder written from FORMAT.md alone, in plain Python.

It imports nothing from kmq and nothing outside the standard library, so that
the tests can check the spec (not just the code) against the vectors: every
valid vector must decode here to its PNG, every invalid one must be refused,
and the ctx1 and mix streams this module writes must equal kmq's byte for byte.
It is slow (a Python loop per pixel) and meant for checking, not for use.

Usage: python spec/reference.py FILE.kmq   (prints the header and a label digest)
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib

MAGIC = b"\x89KMQ"
HEADER = struct.Struct(">4sBBBBHHII")

# -- section 5.3: the adaptive probabilities ---------------------------------------------------


class Slot:
    """A probability slot: p = P(bit = 0) in units of 2^-15, and its update count."""

    __slots__ = ("c", "p")

    def __init__(self) -> None:
        self.p = 1 << 14
        self.c = 0

    def update(self, bit: int) -> None:
        rate = min(6, (self.c + 1).bit_length())  # 1 + floor(log2(c + 1)), at most 6
        self.c = min(self.c + 1, 31)
        if bit:
            self.p -= self.p >> rate
        else:
            self.p += ((1 << 15) - self.p) >> rate


# -- section 5.4: the range coder --------------------------------------------------------------


class Encoder:
    def __init__(self) -> None:
        self.low, self.range, self.cache, self.cache_size = 0, 0xFFFFFFFF, 0, 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if self.cache_size == 0:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def bit(self, slot: Slot, bit: int) -> None:
        bound = (self.range >> 15) * slot.p
        if bit:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        slot.update(bit)
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self._shift_low()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        return bytes(self.out)


class StreamError(ValueError):
    """A stripe's stream breaks a rule of section 5.5."""


class Decoder:
    def __init__(self, data: bytes) -> None:
        if len(data) < 5:
            raise StreamError("shorter than 5 bytes")
        if data[0] != 0:
            raise StreamError("first byte not 0")
        self.data, self.pos = data, 5
        self.code = int.from_bytes(data[1:5], "big")
        self.range = 0xFFFFFFFF
        if self.code == 0xFFFFFFFF:
            raise StreamError("initial code FF FF FF FF")

    def bit(self, slot: Slot) -> int:
        bound = (self.range >> 15) * slot.p
        if self.code < bound:
            self.range = bound
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            bit = 1
        slot.update(bit)
        while self.range < 1 << 24:
            if self.pos >= len(self.data):
                raise StreamError("ends early")
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = (self.code << 8) | self.data[self.pos]
            self.pos += 1
        return bit

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise StreamError(f"{len(self.data) - self.pos} bytes left over")
        if self.code != 0:
            raise StreamError("code not 0 at the end")


# -- section 5.2: the model ------------------------------------------------------------------


class Model:
    """The slots of one stripe, created on first use (all start at p = 2^14, c = 0)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.bits = (k - 1).bit_length()
        self.flags: dict[int, Slot] = {}
        self.tree: dict[int, Slot] = {}

    def flag(self, index: int) -> Slot:
        return self.flags.setdefault(index, Slot())

    def node(self, index: int) -> Slot:
        return self.tree.setdefault(index, Slot())


def context(rows: list[list[int]], x: int, y: int, k: int) -> tuple[list[int], int, int]:
    """(L, flag slot base, tree slot base) of pixel (x, y) of a stripe whose rows so far are ``rows``."""

    def at(xx: int, yy: int) -> int:
        if xx < 0 or yy < 0 or xx >= len(rows[0]):
            return k  # absent
        return rows[yy][xx]

    w, ww, n, nn = at(x - 1, y), at(x - 2, y), at(x, y - 1), at(x, y - 2)
    nw, ne = at(x - 1, y - 1), at(x + 1, y - 1)
    pattern = (
        (w == n) | (w == nw) << 1 | (w == ne) << 2 | (n == nw) << 3 | (n == ne) << 4 | (nw == ne) << 5
        | (ww == w) << 6 | (nn == n) << 7
    )  # fmt: skip
    v = w * (k + 1) + n if k <= 16 else 0
    candidates: list[int] = []
    for value in (w, n, ne, nw):
        if value != k and value not in candidates:
            candidates.append(value)
    return candidates, (v * 256 + pattern) * 4, w << (k - 1).bit_length()


def encode_stripe(labels: list[list[int]], k: int, trace: list[tuple[object, ...]] | None = None) -> bytes:
    """The stream of one stripe (a list of rows of labels).

    With ``trace``, append one row per coded bit: (x, y, L, slot table, slot
    index, p before, bit), as in FORMAT.md's worked example.
    """
    model, coder = Model(k), Encoder()
    rows = [[k] * len(labels[0]) for _ in labels]

    def code(table: str, index: int, slot: Slot, bit: int) -> None:
        if trace is not None:
            trace.append((x, y, candidates, table, index, slot.p, bit))
        coder.bit(slot, bit)

    for y, row in enumerate(labels):
        for x, value in enumerate(row):
            candidates, base, tree = context(rows, x, y, k)
            for i, candidate in enumerate(candidates):
                code("flag", base + i, model.flag(base + i), int(candidate == value))
                if candidate == value:
                    break
            else:
                node = 1
                for b in range(model.bits - 1, -1, -1):
                    bit = (value >> b) & 1
                    code("tree", tree + node, model.node(tree + node), bit)
                    node = 2 * node + bit
            rows[y][x] = value
    return coder.finish()


def decode_stripe(data: bytes, width: int, height: int, k: int) -> list[list[int]]:
    """The labels of one stripe; raises StreamError on any rule of section 5.5."""
    model, coder = Model(k), Decoder(data)
    rows = [[k] * width for _ in range(height)]
    for y in range(height):
        for x in range(width):
            candidates, base, tree = context(rows, x, y, k)
            for i, candidate in enumerate(candidates):
                if coder.bit(model.flag(base + i)):
                    value = candidate
                    break
            else:
                node = 1
                for _ in range(model.bits):
                    node = 2 * node + coder.bit(model.node(tree + node))
                value = node - (1 << model.bits)
                if value >= k:
                    raise StreamError(f"escaped label {value} >= k")
                if value in candidates:
                    raise StreamError(f"escaped label {value} is a candidate")
            rows[y][x] = value
    coder.finish()
    return rows


# -- section 11: payload coding 2, mix ---------------------------------------------------------

SQ = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
      2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094]  # fmt: skip


def squash(d: int) -> int:
    """11.2: a logit to a 12-bit probability, by interpolation in SQ."""
    d = min(2047, max(-2047, d))
    w = d & 127
    i = (d >> 7) + 16
    return (SQ[i] * (128 - w) + SQ[i + 1] * w + 64) >> 7


def _stretch_table() -> list[int]:
    table = [0] * 4096
    pi = 0
    for x in range(-2047, 2048):
        v = squash(x)
        for j in range(pi, v + 1):
            table[j] = x
        pi = v + 1
    for j in range(pi, 4096):
        table[j] = 2047
    return table


STRETCH = _stretch_table()
MASK32 = 0xFFFFFFFF


def hash_step(h: int, v: int) -> int:
    t = ((h ^ v) * 0x9E3779B1) & MASK32
    return t ^ (t >> 15)


def hash_chain(seed: int, *values: int) -> int:
    h = seed
    for v in values:
        h = hash_step(h, v)
    return h


class Table:
    """11.3: a table of slots, p = P(bit = 1) in units of 2^-16 and n its update count."""

    def __init__(self, size: int, limit: int) -> None:
        self.p = [32768] * size
        self.n = [0] * size
        self.limit = limit

    def update(self, index: int, bit: int) -> None:
        n = self.n[index]
        r = 131072 // (2 * n + 3)
        if bit:
            self.p[index] += ((65536 - self.p[index]) * r) >> 16
        else:
            self.p[index] -= (self.p[index] * r) >> 16
        if n < self.limit:
            self.n[index] = n + 1


class FixedP:
    """A 15-bit probability of a 0 for the range coder of 5.4, with no update inside the coder (11.4)."""

    __slots__ = ("p",)

    def __init__(self, p: int) -> None:
        self.p = p

    def update(self, bit: int) -> None:
        pass


class MixCoder:
    """The range coder of 5.4 driven by a 12-bit p1 (11.4), as encoder or decoder."""

    def __init__(self, data: bytes | None = None) -> None:
        self.encoder = Encoder() if data is None else None
        self.decoder = Decoder(data) if data is not None else None

    def code(self, p1: int, bit: int | None) -> int:
        slot = FixedP((4096 - p1) * 8)
        if self.encoder is not None:
            assert bit is not None
            self.encoder.bit(slot, bit)  # type: ignore[arg-type]
            return bit
        assert self.decoder is not None
        return self.decoder.bit(slot)  # type: ignore[arg-type]


class MixModel:
    """The state of one stripe (11.3 to 11.6) and the coding of its decisions."""

    def __init__(self, width: int, rows: int, palette: list[bytes], coder: MixCoder, trace: list | None) -> None:
        k = len(palette)
        self.k, self.width, self.rows = k, width, rows
        pix = width * rows
        self.hb = min(20, max(12, pix.bit_length() + 1))
        size = 1 << self.hb
        self.t1, self.tm = Table(3 * 256 * 8, 60), Table(16 * 2 * 8, 60)
        self.t2, self.t3, self.t4, self.t5 = (Table(size, 250) for _ in range(4))
        self.bits = (k - 1).bit_length()
        self.tw, self.tn = Table((k + 1) << self.bits, 30), Table((k + 1) << self.bits, 30)
        self.te = Table(size, 250)
        self.flag_weights = [[22000] * 7 for _ in range(240)]
        self.escape_weights = [[22000] * 6 for _ in range(8)]
        self.mt = [0] * size
        self.active, self.ptr, self.len = False, 0, 0
        # D(a, b), with absent (K) at distance 0 from everything
        self.dist = [[0] * (k + 1) for _ in range(k + 1)]
        for a in range(k):
            for b in range(k):
                self.dist[a][b] = sum((ca - cb) ** 2 for ca, cb in zip(palette[a], palette[b], strict=True))
        self.labels = [k] * pix
        self.coder, self.trace = coder, trace
        self.where: tuple[object, ...] = (0, 0, [])  # x, y, L of the pixel being coded, for the trace

    def idx(self, h: int) -> int:
        return h >> (32 - self.hb)

    def idx8(self, h: int, i: int) -> int:
        return ((h >> (35 - self.hb)) << 3) + i

    def mix(self, slots: list[tuple[Table, int]], weights: list[int], lr: int, bit: int | None, what: str) -> int:
        """11.4: code one decision predicted by ``slots`` with one weight set; returns the bit."""
        st = [STRETCH[table.p[index] >> 4] for table, index in slots] + [256]
        dot = sum(s * w for s, w in zip(st, weights, strict=True))
        p1 = min(4095, max(1, squash(dot >> 16)))
        if self.trace is not None:
            ps = [table.p[index] for table, index in slots]
            self.trace.append((*self.where, what, ps, p1, bit))
        bit = self.coder.code(p1, bit)
        if self.trace is not None:
            self.trace[-1] = (*self.trace[-1][:-1], bit)
        err = bit * 4096 - p1
        for i, s in enumerate(st):
            weights[i] = min(1 << 22, max(-(1 << 22), weights[i] + ((s * err) >> lr)))
        for table, index in slots:
            table.update(index, bit)
        return bit

    def pixel(self, x: int, y: int, value: int | None) -> int:
        """Code (encoder: ``value``) or decode (``value`` None) the label at (x, y); returns it."""
        k, width, labels = self.k, self.width, self.labels
        pos = y * width + x

        def at(dx: int, dy: int) -> int:
            xx, yy = x + dx, y + dy
            if xx < 0 or yy < 0 or xx >= width:
                return k
            return labels[yy * width + xx]

        w, ww, n, nn = at(-1, 0), at(-2, 0), at(0, -1), at(0, -2)
        nw, ne, nww, nee, nne = at(-1, -1), at(1, -1), at(-2, -1), at(2, -1), at(1, -2)
        www, nnww, nnw, nnee = at(-3, 0), at(-2, -2), at(-1, -2), at(2, -2)
        pattern = (
            (w == n) | (w == nw) << 1 | (w == ne) << 2 | (n == nw) << 3 | (n == ne) << 4 | (nw == ne) << 5
            | (ww == w) << 6 | (nn == n) << 7
        )  # fmt: skip
        cands: list[int] = []
        for c in (w, n, ne, nw):
            if c != k and c not in cands:
                cands.append(c)
        d = self.dist
        total = d[w][n] + d[n][nw] + d[n][ne] + d[w][nw] + d[w][ww] + d[n][nn]
        act = min(15, (total >> 4).bit_length())
        # the match model
        hm = hash_chain(9, w, n, nw, ne, ww, nn, nne, nww, nee)
        mi = self.idx(hm)
        if not self.active and self.mt[mi] != 0:
            self.active, self.ptr, self.len = True, self.mt[mi] - 1, 0
        expected = None
        lb = 0
        if self.active:
            expected = labels[self.ptr]
            lb = min(15, 1 + self.len.bit_length())
            if expected not in cands:
                cands.append(expected)
        m = len(cands)
        avail = k - m
        self.where = (x, y, cands)
        h2 = hash_chain(2, w, n)
        h3 = hash_chain(3, w, n, ne, nw)
        h4 = hash_chain(h3 ^ 4, ww, nn, nne)
        h5 = hash_chain(h4 ^ 5, nww, nee, www, nnw, nnww, nnee)
        x_value = None
        for i, c in enumerate(cands):
            agree = int(expected is not None and c == expected)
            ms = 0 if lb == 0 else (1 if agree else 2)
            if avail == 0 and i == m - 1:
                x_value = c
                break
            slots = [
                (self.t1, (ms * 256 + pattern) * 8 + i),
                (self.t2, self.idx8(h2, i)),
                (self.t3, self.idx8(h3, i)),
                (self.t4, self.idx8(h4, i)),
                (self.tm, (lb * 2 + agree) * 8 + i),
                (self.t5, self.idx8(h5, i)),
            ]
            weights = self.flag_weights[((ms * 5 + i) * 4 + min(m, 4) - 1) * 4 + (act >> 2)]
            if self.mix(slots, weights, 11, None if value is None else int(value == c), f"flag {i}"):
                x_value = c
                break
        if x_value is None:
            x_value = self.escape(cands, w, n, ne, nw, value)
        if self.active:
            if x_value == expected:
                self.len = min(self.len + 1, 65535)
                self.ptr += 1
            else:
                self.active, self.len = False, 0
        if pos < MASK32:
            self.mt[mi] = pos + 1
        labels[pos] = x_value
        return x_value

    def escape(self, cands: list[int], w: int, n: int, ne: int, nw: int, value: int | None) -> int:
        """11.6: code (encoder: ``value``) or decode X's ``bits`` bits down a binary tree; returns X."""
        k, bits = self.k, self.bits
        g2 = hash_chain(10, w, n)
        g4 = hash_chain(11, w, n, ne, nw)
        g1 = hash_chain(12, ne)
        node = 1
        for b in range(bits - 1, -1, -1):
            slots = [
                (self.tw, w * (1 << bits) + node),
                (self.tn, n * (1 << bits) + node),
                (self.te, self.idx(hash_step(g2, node))),
                (self.te, self.idx(hash_step(g4, node))),
                (self.te, self.idx(hash_step(g1, node))),
            ]
            want = None if value is None else (value >> b) & 1
            node = 2 * node + self.mix(slots, self.escape_weights[bits - 1 - b], 10, want, f"escape {b}")
        x_value = node - (1 << bits)
        if value is None:  # the decoder's two escape rules (11.7, as in 5.5)
            if x_value >= k:
                raise StreamError(f"escaped label {x_value} >= k")
            if x_value in cands:
                raise StreamError(f"escaped label {x_value} is a candidate")
        return x_value


def encode_stripe_mix(labels: list[list[int]], palette: list[bytes], trace: list | None = None) -> bytes:
    """The coding-2 stream of one stripe (a list of rows of labels).

    With ``trace``, append one row per coded bit: (x, y, L, decision, the slots' p, p1, bit),
    as in FORMAT.md section 11.7's worked trace.
    """
    coder = MixCoder()
    model = MixModel(len(labels[0]), len(labels), palette, coder, trace)
    for y, row in enumerate(labels):
        for x, value in enumerate(row):
            model.pixel(x, y, value)
    assert coder.encoder is not None
    return coder.encoder.finish()


def decode_stripe_mix(data: bytes, width: int, height: int, palette: list[bytes]) -> list[list[int]]:
    """The labels of one coding-2 stripe; raises StreamError on any rule of section 11.7."""
    coder = MixCoder(data)
    model = MixModel(width, height, palette, coder, None)
    for y in range(height):
        for x in range(width):
            model.pixel(x, y, None)
    assert coder.decoder is not None
    coder.decoder.finish()
    return [model.labels[y * width : (y + 1) * width] for y in range(height)]


def stripe_rows(height: int, stripes: int) -> list[tuple[int, int]]:
    return [(s * height // stripes, (s + 1) * height // stripes) for s in range(stripes)]


def encode_payload(labels: list[list[int]], k: int, stripes: int) -> bytes:
    """A coding-1 payload with the given stripe count."""
    streams = [encode_stripe(labels[a:b], k) for a, b in stripe_rows(len(labels), stripes)]
    table = struct.pack(">H", stripes) + b"".join(struct.pack(">I", len(s)) for s in streams)
    return table + b"".join(streams)


def encode_payload_mix(labels: list[list[int]], palette: list[bytes], stripes: int) -> bytes:
    """A coding-2 payload with the given stripe count (the stripe layout of coding 1, 11.1)."""
    streams = [encode_stripe_mix(labels[a:b], palette) for a, b in stripe_rows(len(labels), stripes)]
    table = struct.pack(">H", stripes) + b"".join(struct.pack(">I", len(s)) for s in streams)
    return table + b"".join(streams)


# -- sections 1, 3, 5, 6, 7: the container ------------------------------------------------------


def read(data: bytes, max_pixels: int | None = 178_956_970) -> tuple[dict[str, int], list[bytes], list[int]]:
    """(header fields, palette entries, labels in raster order); ValueError on any rule of section 7."""
    if data[:4] != MAGIC[: len(data[:4])]:
        raise ValueError("D1 not a kmq file")
    if len(data) < HEADER.size:
        raise ValueError("D2 shorter than the header")
    _, version, coding, channels, bits, k, reserved, width, height = HEADER.unpack(data[: HEADER.size])
    if version != 1:
        raise ValueError("D3 version")
    if (
        coding not in (0, 1, 2) or channels not in (3, 4) or not 1 <= k <= 256 or bits != (k - 1).bit_length()
        or reserved != 0 or width == 0 or height == 0 or (coding in (1, 2) and k == 1)
    ):  # fmt: skip
        raise ValueError("D4 field out of range")
    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        raise ValueError("D5 over the pixel limit")
    start = HEADER.size + k * channels
    raw_size = (pixels * bits + 7) // 8
    payload = data[start:-4] if len(data) >= start + 4 else b""
    if coding == 0:
        expected = raw_size
    else:
        if len(payload) < 11:
            raise ValueError("D6 truncated")
        stripes = int.from_bytes(payload[:2], "big")
        if not 1 <= stripes <= min(height, max(1, pixels // 4096)):
            raise ValueError("D6 stripe count")
        if len(payload) < 2 + 4 * stripes:
            raise ValueError("D6 truncated")
        lengths = [int.from_bytes(payload[2 + 4 * i : 6 + 4 * i], "big") for i in range(stripes)]
        if min(lengths) < 5:
            raise ValueError("D6 stripe length")
        expected = 2 + 4 * stripes + sum(lengths)
    if len(data) != start + expected + 4:
        raise ValueError("D6 length")
    if coding != 0 and expected > raw_size + 2 + 9 * stripes:
        raise ValueError("D6 payload over raw size + overhead")
    if struct.unpack(">I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ValueError("D7 checksum")
    palette = [data[HEADER.size + i * channels : HEADER.size + (i + 1) * channels] for i in range(k)]
    labels: list[int] = []
    if coding == 0:
        stream = int.from_bytes(payload, "big") if payload else 0
        spare = len(payload) * 8 - pixels * bits
        if stream & ((1 << spare) - 1):
            raise ValueError("D8 padding bit set")
        stream >>= spare
        labels = [(stream >> (bits * (pixels - 1 - i))) & ((1 << bits) - 1) for i in range(pixels)]
        if labels and max(labels) >= k:
            raise ValueError("D9 label >= k")
    else:
        offset = 2 + 4 * stripes
        for (a, b), length in zip(stripe_rows(height, stripes), lengths, strict=True):
            try:
                stream = payload[offset : offset + length]
                if coding == 1:
                    rows = decode_stripe(stream, width, b - a, k)
                else:
                    rows = decode_stripe_mix(stream, width, b - a, palette)
            except StreamError as exc:
                raise ValueError(f"D10 {exc}") from None
            labels += [value for row in rows for value in row]
            offset += length
    fields = {"version": version, "coding": coding, "channels": channels, "bits": bits, "k": k}
    fields |= {"width": width, "height": height}
    return fields, palette, labels


def pixels(data: bytes) -> bytes:
    """The decoded image as raw bytes, row by row, ``channels`` bytes per pixel."""
    _, palette, labels = read(data)
    return b"".join(palette[label] for label in labels)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        with open(name, "rb") as file:
            fields, _, labels = read(file.read())
        digest = hashlib.sha256(bytes(labels)).hexdigest()[:16]
        print(name, fields, f"labels sha256 {digest}")
