"""Payload coding 1 (ctx1) in plain Python: the fallback for :mod:`kmq._ctx1`.

Installs without a C compiler get this module instead of the C extension
(``kmq.ctx1.BACKEND`` says which one is in use). It has the extension's API,
statuses and messages, and writes and reads the same bytes: it follows
``spec/FORMAT.md`` section 5 as ``spec/reference.py`` does, laid out for speed
(flat slot tables, locals in the loops). It is about a hundred times slower than
the C coder, because the model depends on the pixel just decoded and so cannot
be vectorised; ``tests/test_fallback.py`` checks it against the extension.
"""

from __future__ import annotations

from typing import Any

__all__ = ["new_model", "encode", "decode"]

_PROB_INIT = 1 << 14
_PROB_ONE = 1 << 15
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF
#: Adaptation shift after c earlier updates: min(6, 1 + floor(log2(c + 1))), c saturating at 31.
_RATE = [min(6, (c + 1).bit_length()) for c in range(32)]
_SMALL_K = 16

# Statuses, as kmq._ctx1 numbers them (codec/ctx1.py turns them into errors).
(_SHORT, _FIRST_BYTE, _CODE_RANGE, _EARLY_END, _LABEL_K, _LABEL_IN_L, _LEFT_OVER, _CODE_NONZERO, _CANCELLED) = range(
    1, 10
)


class _StreamError(Exception):
    """A stream broke a rule at a pixel: (status, x, y)."""


def _check_geometry(k: int, width: int, height: int) -> None:
    if not 2 <= k <= 256:
        raise ValueError(f"k {k} not in 2..256")
    if width < 1 or height < 1:
        raise ValueError(f"stripe of {width} x {height} pixels is out of range")


def new_model(k: int) -> None:
    """Nothing: here each stripe's slots live in dicts that start empty, so a fresh model costs nothing."""
    if not 2 <= k <= 256:
        raise ValueError(f"k {k} not in 2..256")


def _context(
    row: bytes | bytearray, up: bytearray | None, up2: bytearray | None, x: int, width: int, k: int, small: bool
) -> tuple[list[int], int]:
    """(L, first flag slot) of pixel x of ``row``; ``up``/``up2`` are the rows above, None where absent."""
    w = row[x - 1] if x >= 1 else k
    ww = row[x - 2] if x >= 2 else k
    if up is not None:
        n = up[x]
        nw = up[x - 1] if x >= 1 else k
        ne = up[x + 1] if x + 1 < width else k
        nn = up2[x] if up2 is not None else k
    else:
        n = nw = ne = nn = k
    pattern = (
        (w == n) | (w == nw) << 1 | (w == ne) << 2 | (n == nw) << 3 | (n == ne) << 4 | (nw == ne) << 5
        | (ww == w) << 6 | (nn == n) << 7
    )  # fmt: skip
    v = w * (k + 1) + n if small else 0
    candidates = []
    if w != k:
        candidates.append(w)
    if n != k and n != w:
        candidates.append(n)
    if ne != k and ne != w and ne != n:
        candidates.append(ne)
    if nw != k and nw != w and nw != n and nw != ne:
        candidates.append(nw)
    return candidates, (v * 256 + pattern) * 4


def encode(labels: Any, width: int, height: int, k: int, limit: int, model: Any = None, /) -> bytes | None:
    """Code one stripe, as :func:`kmq._ctx1.encode`: None when the stream would exceed ``limit`` bytes."""
    _check_geometry(k, width, height)
    data = bytes(memoryview(labels).cast("B")) if not isinstance(labels, bytes) else labels
    if len(data) != width * height:
        raise ValueError(f"labels are {len(data)} bytes, not {width} x {height}")
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if data and max(data) >= k:  # the copy is what is coded, so a change to the caller's array cannot matter
        at = next(i for i, value in enumerate(data) if value >= k)
        x, y = at % width, at // width
        raise ValueError(f"label {data[at]} >= k={k} at pixel ({x}, {y}) of the stripe", data[at], x, y)
    bits = (k - 1).bit_length()
    small = k <= _SMALL_K
    rate = _RATE
    probs: dict[int, int] = {}
    counts: dict[int, int] = {}
    out = bytearray()
    low, rng, cache, cache_size = 0, _MASK32, 0, 1

    def bit(index: int, value: int) -> None:
        nonlocal low, rng, cache, cache_size
        p = probs.get(index, _PROB_INIT)
        c = counts.get(index, 0)
        bound = (rng >> 15) * p
        r = rate[c]
        if value:
            low += bound
            rng -= bound
            probs[index] = p - (p >> r)
        else:
            rng = bound
            probs[index] = p + ((_PROB_ONE - p) >> r)
        if c < 31:
            counts[index] = c + 1
        while rng < _TOP:
            rng = (rng << 8) & _MASK32
            shift()

    def shift() -> None:
        nonlocal low, cache, cache_size
        if low < 0xFF000000 or low >= 1 << 32:
            carry = low >> 32
            temp = cache
            while True:
                out.append((temp + carry) & 0xFF)
                temp = 0xFF
                cache_size -= 1
                if cache_size == 0:
                    break
            cache = (low >> 24) & 0xFF
        cache_size += 1
        low = (low & 0x00FFFFFF) << 8

    up = up2 = None
    for y in range(height):
        row = data[y * width : (y + 1) * width]
        for x in range(width):
            value = row[x]
            candidates, base = _context(row, up, up2, x, width, k, small)
            for i, candidate in enumerate(candidates):
                hit = candidate == value
                bit(base + i, hit)
                if hit:
                    break
            else:
                tree = (-1 - (row[x - 1] if x >= 1 else k)) << bits  # negative keys: the tree table
                node = 1
                for b in range(bits - 1, -1, -1):
                    one = (value >> b) & 1
                    bit(tree - node, one)
                    node = 2 * node + one
        if len(out) > limit:
            return None
        up2, up = up, bytearray(row)
    for _ in range(5):
        shift()
    return None if len(out) > limit else bytes(out)


def decode(
    data: Any, width: int, height: int, k: int, out: Any, model: Any = None, stop: Any = None, index: int = 0, /
) -> tuple[int, int, int, int]:
    """Decode one stripe into ``out``, as :func:`kmq._ctx1.decode`: (status, x, y, detail)."""
    _check_geometry(k, width, height)
    stream = bytes(memoryview(data).cast("B"))
    target = memoryview(out).cast("B")
    if target.readonly:
        raise TypeError("out must be a writable buffer")
    if len(target) != width * height:
        raise ValueError(f"output is {len(target)} bytes, not {width} x {height}")
    stop_flag = memoryview(stop).cast("B").cast("i") if stop is not None else None
    if len(stream) < 5:
        return _SHORT, 0, 0, 0
    if stream[0] != 0:
        return _FIRST_BYTE, 0, 0, stream[0]
    code = int.from_bytes(stream[1:5], "big")
    if code == _MASK32:
        return _CODE_RANGE, 0, 0, 0
    bits = (k - 1).bit_length()
    small = k <= _SMALL_K
    rate = _RATE
    probs: dict[int, int] = {}
    counts: dict[int, int] = {}
    rng, pos, end = _MASK32, 5, len(stream)
    x = y = 0

    def bit(slot: int) -> int:
        nonlocal code, rng, pos
        p = probs.get(slot, _PROB_INIT)
        c = counts.get(slot, 0)
        bound = (rng >> 15) * p
        r = rate[c]
        if code < bound:
            rng = bound
            probs[slot] = p + ((_PROB_ONE - p) >> r)
            value = 0
        else:
            code -= bound
            rng -= bound
            probs[slot] = p - (p >> r)
            value = 1
        if c < 31:
            counts[slot] = c + 1
        while rng < _TOP:
            if pos >= end:
                raise _StreamError(_EARLY_END)
            rng = (rng << 8) & _MASK32
            code = (code << 8) | stream[pos]
            pos += 1
        return value

    up = up2 = None
    try:
        for y in range(height):
            if stop_flag is not None and stop_flag[0] < index:
                return _CANCELLED, 0, y, 0
            row = bytearray(width)
            for x in range(width):
                candidates, base = _context(row, up, up2, x, width, k, small)
                for i, candidate in enumerate(candidates):
                    if bit(base + i):
                        value = candidate
                        break
                else:
                    tree = (-1 - (row[x - 1] if x >= 1 else k)) << bits
                    node = 1
                    for _ in range(bits):
                        node = 2 * node + bit(tree - node)
                    value = node - (1 << bits)
                    if value >= k:
                        raise _StreamError(_LABEL_K)
                    if value in candidates:
                        raise _StreamError(_LABEL_IN_L)
                row[x] = value
            target[y * width : (y + 1) * width] = row
            up2, up = up, row
    except _StreamError as failed:
        return failed.args[0], x, y, 0
    if pos != end:
        return _LEFT_OVER, 0, 0, end - pos
    if code != 0:
        return _CODE_NONZERO, 0, 0, 0
    return 0, 0, 0, 0
