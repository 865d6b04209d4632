"""A kmq reader and ctx1 coder written from FORMAT.md alone, in plain Python.

It imports nothing from kmq and nothing outside the standard library, so that
the tests can check the spec (not just the code) against the vectors: every
valid vector must decode here to its PNG, every invalid one must be refused,
and the ctx1 streams this module writes must equal kmq's byte for byte.
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


def stripe_rows(height: int, stripes: int) -> list[tuple[int, int]]:
    return [(s * height // stripes, (s + 1) * height // stripes) for s in range(stripes)]


def encode_payload(labels: list[list[int]], k: int, stripes: int) -> bytes:
    """A coding-1 payload with the given stripe count."""
    streams = [encode_stripe(labels[a:b], k) for a, b in stripe_rows(len(labels), stripes)]
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
        coding not in (0, 1) or channels not in (3, 4) or not 1 <= k <= 256 or bits != (k - 1).bit_length()
        or reserved != 0 or width == 0 or height == 0 or (coding == 1 and k == 1)
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
    if coding == 1 and expected > raw_size + 2 + 9 * stripes:
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
                rows = decode_stripe(payload[offset : offset + length], width, b - a, k)
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
