"""Route (c): adaptive binary range coder (LZMA's rc: 11-bit probabilities, shift-5 update, carry via cache
byte) with numba. Two context models over the label plane, both sequential in raster order:

  "rank": for each pixel the distinct values of [W, N, NE, NW] (out-of-image neighbours skipped) are tried
          in order with one binary decision each, "x == L[i]?", context = (equality pattern of W, N, NW, NE
          as 6 bits, [WW==W], [NN==N], i); if none matches (escape), x is coded with a binary tree of
          ceil(log2 K) decisions whose context is esc_ctx: 0 = none, 1 = W's value, 2 = N's value.
  "tree": x coded with a binary tree under the full context (W, N, NW, NE) (K+1)^4 (K <= 16 only).

Functions: encode_rank / decode_rank / encode_tree / decode_tree (njit). The stream: LZMA rc bytes
(first byte 0), flushed with 5 shift-lows; the decoder checks it read every byte and ends with code == 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PROB_BITS = 11
PROB_INIT = 1 << (PROB_BITS - 1)
SHIFT = 5
TOP = 1 << 24


@njit(cache=True, inline="always")
def _shift_low(low, cache, cache_size, out, pos):
    if (low & 0xFFFFFFFF) < 0xFF000000 or (low >> 32) != 0:
        carry = low >> 32
        temp = cache
        while True:
            if pos < out.shape[0]:
                out[pos] = (temp + carry) & 0xFF
            pos += 1
            temp = 0xFF
            cache_size -= 1
            if cache_size == 0:
                break
        cache = (low >> 24) & 0xFF
    cache_size += 1
    low = (low & 0x00FFFFFF) << 8
    return low, cache, cache_size, pos


@njit(cache=True, inline="always")
def _enc_bit(probs, i, bit, low, rng, cache, cache_size, out, pos):
    p = probs[i]
    bound = (rng >> PROB_BITS) * p
    if bit == 0:
        rng = bound
        probs[i] = p + (((1 << PROB_BITS) - p) >> SHIFT)
    else:
        low += bound
        rng -= bound
        probs[i] = p - (p >> SHIFT)
    while rng < TOP:
        rng = (rng << 8) & 0xFFFFFFFF
        low, cache, cache_size, pos = _shift_low(low, cache, cache_size, out, pos)
    return low, rng, cache, cache_size, pos


@njit(cache=True, inline="always")
def _dec_bit(probs, i, code, rng, data, pos):
    p = probs[i]
    bound = (rng >> PROB_BITS) * p
    if code < bound:
        rng = bound
        probs[i] = p + (((1 << PROB_BITS) - p) >> SHIFT)
        bit = 0
    else:
        code -= bound
        rng -= bound
        probs[i] = p - (p >> SHIFT)
        bit = 1
    while rng < TOP:
        rng = (rng << 8) & 0xFFFFFFFF
        b = data[pos] if pos < data.shape[0] else 0
        pos += 1
        code = ((code << 8) | b) & 0xFFFFFFFF
    return bit, code, rng, pos


@njit(cache=True)
def _padded(lab, k):
    h, w = lab.shape
    p = np.full((h + 2, w + 4), k, np.int32)
    p[2:, 2 : w + 2] = lab
    return p


@njit(cache=True, inline="always")
def _rank_ctx(p, y, x, k):
    """Neighbour list (distinct, sentinels skipped) and context of pixel (y, x) in the padded plane."""
    yy = y + 2
    xx = x + 2
    w_ = p[yy, xx - 1]
    n_ = p[yy - 1, xx]
    nw = p[yy - 1, xx - 1]
    ne = p[yy - 1, xx + 1]
    ctx = (
        (w_ == n_) * 1 | (w_ == nw) * 2 | (w_ == ne) * 4 | (n_ == nw) * 8 | (n_ == ne) * 16 | (nw == ne) * 32
        | (p[yy, xx - 2] == w_) * 64 | (p[yy - 2, xx] == n_) * 128
    )
    return w_, n_, ne, nw, ctx


@njit(cache=True)
def encode_rank(lab, k, esc_ctx, out):
    h, w = lab.shape
    p = _padded(lab, k)
    bits = 0
    while (1 << bits) < k:
        bits += 1
    flag = np.full(256 * 4, PROB_INIT, np.int64)
    esc = np.full((k + 1) * 256, PROB_INIT, np.int64)
    low = 0
    rng = 0xFFFFFFFF
    cache = 0
    cache_size = 1
    pos = 0
    lst = np.empty(4, np.int32)
    for y in range(h):
        for x in range(w):
            v = p[y + 2, x + 2]
            w_, n_, ne, nw, ctx = _rank_ctx(p, y, x, k)
            m = 0
            for c in (w_, n_, ne, nw):
                if c == k:
                    continue
                dup = False
                for j in range(m):
                    if lst[j] == c:
                        dup = True
                if not dup:
                    lst[m] = c
                    m += 1
            hit = False
            for i in range(m):
                b = 1 if lst[i] == v else 0
                low, rng, cache, cache_size, pos = _enc_bit(flag, ctx * 4 + i, b, low, rng, cache, cache_size, out, pos)
                if b == 1:
                    hit = True
                    break
            if not hit and bits > 0:
                base = 0
                if esc_ctx == 1:
                    base = w_ * 256
                elif esc_ctx == 2:
                    base = n_ * 256
                node = 1
                for i in range(bits - 1, -1, -1):
                    b = (v >> i) & 1
                    low, rng, cache, cache_size, pos = _enc_bit(esc, base + node, b, low, rng, cache, cache_size, out, pos)
                    node = node * 2 + b
    for _ in range(5):
        low, cache, cache_size, pos = _shift_low(low, cache, cache_size, out, pos)
    return pos


@njit(cache=True)
def decode_rank(data, h, w, k, esc_ctx):
    """Returns (labels, ok): ok is False when the stream is malformed (wrong first byte, ends early,
    bytes left over, final code not 0, or a label >= k)."""
    lab = np.zeros((h, w), np.uint8)
    p = np.full((h + 2, w + 4), k, np.int32)
    bits = 0
    while (1 << bits) < k:
        bits += 1
    flag = np.full(256 * 4, PROB_INIT, np.int64)
    esc = np.full((k + 1) * 256, PROB_INIT, np.int64)
    if data.shape[0] < 5 or data[0] != 0:
        return lab, False
    code = 0
    for i in range(1, 5):
        code = (code << 8) | data[i]
    rng = 0xFFFFFFFF
    pos = 5
    lst = np.empty(4, np.int32)
    for y in range(h):
        for x in range(w):
            w_, n_, ne, nw, ctx = _rank_ctx(p, y, x, k)
            m = 0
            for c in (w_, n_, ne, nw):
                if c == k:
                    continue
                dup = False
                for j in range(m):
                    if lst[j] == c:
                        dup = True
                if not dup:
                    lst[m] = c
                    m += 1
            v = -1
            for i in range(m):
                b, code, rng, pos = _dec_bit(flag, ctx * 4 + i, code, rng, data, pos)
                if b == 1:
                    v = lst[i]
                    break
            if v < 0:
                if bits == 0:
                    v = 0
                else:
                    base = 0
                    if esc_ctx == 1:
                        base = w_ * 256
                    elif esc_ctx == 2:
                        base = n_ * 256
                    node = 1
                    for i in range(bits):
                        b, code, rng, pos = _dec_bit(esc, base + node, code, rng, data, pos)
                        node = node * 2 + b
                    v = node - (1 << bits)
                    if v >= k:
                        return lab, False
            p[y + 2, x + 2] = v
            lab[y, x] = v
        if pos > data.shape[0]:
            return lab, False
    return lab, pos == data.shape[0] and code == 0


@njit(cache=True)
def encode_tree(lab, k, out):
    h, w = lab.shape
    p = _padded(lab, k)
    bits = 0
    while (1 << bits) < k:
        bits += 1
    b1 = k + 1
    probs = np.full(b1 * b1 * b1 * b1 * (1 << bits), PROB_INIT, np.int64)
    low = 0
    rng = 0xFFFFFFFF
    cache = 0
    cache_size = 1
    pos = 0
    for y in range(h):
        for x in range(w):
            yy = y + 2
            xx = x + 2
            v = p[yy, xx]
            ctx = ((p[yy, xx - 1] * b1 + p[yy - 1, xx]) * b1 + p[yy - 1, xx - 1]) * b1 + p[yy - 1, xx + 1]
            base = ctx << bits
            node = 1
            for i in range(bits - 1, -1, -1):
                b = (v >> i) & 1
                low, rng, cache, cache_size, pos = _enc_bit(probs, base + node, b, low, rng, cache, cache_size, out, pos)
                node = node * 2 + b
    for _ in range(5):
        low, cache, cache_size, pos = _shift_low(low, cache, cache_size, out, pos)
    return pos


@njit(cache=True)
def decode_tree(data, h, w, k):
    lab = np.zeros((h, w), np.uint8)
    p = np.full((h + 2, w + 4), k, np.int32)
    bits = 0
    while (1 << bits) < k:
        bits += 1
    b1 = k + 1
    probs = np.full(b1 * b1 * b1 * b1 * (1 << bits), PROB_INIT, np.int64)
    if data.shape[0] < 5 or data[0] != 0:
        return lab, False
    code = 0
    for i in range(1, 5):
        code = (code << 8) | data[i]
    rng = 0xFFFFFFFF
    pos = 5
    for y in range(h):
        for x in range(w):
            yy = y + 2
            xx = x + 2
            ctx = ((p[yy, xx - 1] * b1 + p[yy - 1, xx]) * b1 + p[yy - 1, xx - 1]) * b1 + p[yy - 1, xx + 1]
            base = ctx << bits
            node = 1
            for i in range(bits):
                b, code, rng, pos = _dec_bit(probs, base + node, code, rng, data, pos)
                node = node * 2 + b
            v = node - (1 << bits)
            if v >= k:
                return lab, False
            p[yy, xx] = v
            lab[y, x] = v
        if pos > data.shape[0]:
            return lab, False
    return lab, pos == data.shape[0] and code == 0


def out_buffer(lab: np.ndarray, k: int) -> np.ndarray:
    """Output buffer: raw packing's size plus slack (an encoder falls back to raw beyond it)."""
    bits = max(1, (k - 1).bit_length())
    return np.zeros(lab.size * bits // 8 + 4096, np.uint8)
