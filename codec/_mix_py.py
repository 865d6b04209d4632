"""Payload coding 2 (mix) in plain Python: the twin of the C extension :mod:`kmq._mix`.

Installs without a C compiler get this module instead of the extension, as
:mod:`kmq._ctx1_py` stands in for :mod:`kmq._ctx1`. It has the extension's API,
statuses and messages, and writes and reads the same bytes: it follows
``codec/_mix.c`` step by step (the same slots, hashes, mixer and range coder, in
integer arithmetic), laid out for speed instead: flat lists for the slot tables,
each slot one int ``p << 8 | n``, the rows above padded with the absent label,
the neighbourhood carried along the row in locals, and every decision coded
inline in one loop. It is far slower than the C coder, because every decision
depends on the one before; ``tests/test_mix_py.py`` checks it against the extension.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

__all__ = ["encode", "decode"]

_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF
_HASH_MUL = 0x9E3779B1
_LIMIT_TREE = 30
_LIMIT_FAST = 60
_LIMIT_SLOW = 250
_W_INIT = 22000
_W_MAX = 1 << 22
_NFLAG_IN = 6
_NESC_IN = 5
_T1_SIZE = 3 * 256 * 8
_TM_SIZE = 16 * 2 * 8
_FLAG_SETS = 3 * 5 * 4 * 4
_ESC_SETS = 8
#: A fresh slot: p = 32768 (one half in units of 2^-16), n = 0 updates, as ``p << 8 | n``.
_SLOT_INIT = 32768 << 8

# Statuses, as kmq._mix numbers them.
_OK, _SHORT, _FIRST_BYTE, _CODE_RANGE, _EARLY_END, _LABEL_K, _LABEL_IN_L = 0, 1, 2, 3, 4, 5, 6
_LEFT_OVER, _CODE_NONZERO, _CANCELLED, _BAD_LABEL = 7, 8, 9, 11
_OVERFLOW = -1

#: lpaq1's squash at 33 knots (section 6.3 of the spec, ``SQ`` in the C file).
_SQ = (1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994, 3348, 3607, 3785,
       3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094)  # fmt: skip


def _squash(d: int) -> int:
    d = max(-2047, min(2047, d))
    w, i = d & 127, (d >> 7) + 16
    return (_SQ[i] * (128 - w) + _SQ[i + 1] * w + 64) >> 7


def _stretch_table() -> list[int]:
    table = [2047] * 4096
    low = 0
    for x in range(-2047, 2048):
        v = _squash(x)
        for j in range(low, v + 1):
            table[j] = x
        low = v + 1
    return table


#: squash(d) for d in -2047..2047 at index d + 2047, clamped to 1..4095 as the mixer clamps it.
_SQUASH = [max(1, min(4095, _squash(d))) for d in range(-2047, 2048)]
#: stretch(p >> 4): the inverse of squash, indexed by a slot's p >> 4 (the slot int >> 12).
_STRETCH = _stretch_table()
_RECIP = [131072 // (2 * n + 3) for n in range(_LIMIT_SLOW + 1)]
#: min(15, bit_length(v)) for v < 2^14; larger v are 15.
_ACT = [min(15, v.bit_length()) for v in range(1 << 14)]
_SSIZE_MAX = sys.maxsize


class _EarlyEndError(Exception):
    """The stream ended inside a pixel's decisions."""


def _hash_step(h: int, v: int) -> int:
    h = ((h ^ v) * _HASH_MUL) & _MASK32
    return h ^ (h >> 15)


def _hash_bits(pixels: int) -> int:
    return max(12, min(20, min(pixels, _MASK32).bit_length() + 1))


def _ssize(value: Any) -> int:
    """``value`` as the C module's ``n`` format takes it: an index that fits a Py_ssize_t."""
    n = operator.index(value)
    if not -_SSIZE_MAX - 1 <= n <= _SSIZE_MAX:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return n


def _check_args(k: int, width: int, height: int, palette: bytes) -> None:
    """The C module's check_args, with its messages."""
    if k < 2 or k > 256:
        raise ValueError(f"k {k} not in 2..256")
    if width < 1 or height < 1 or width > _SSIZE_MAX // 8 or width > _SSIZE_MAX // height:
        raise ValueError(f"stripe of {width} x {height} pixels is out of range")
    if len(palette) != 3 * k and len(palette) != 4 * k:
        raise ValueError(f"palette is {len(palette)} bytes, not 3 or 4 x k={k}")


def _distances(palette: bytes, k: int) -> list[list[int]]:
    """Squared colour distances (section 11.5, step 2), with a zero row and column for the absent label K."""
    c = len(palette) // k
    colours = [palette[j * c : (j + 1) * c] for j in range(k)]
    dist = [[sum((a - b) * (a - b) for a, b in zip(cp, cj, strict=True)) for cj in colours] + [0] for cp in colours]
    dist.append([0] * (k + 1))
    return dist


def _first_bad(data: bytes, width: int, k: int) -> tuple[int, int, int]:
    """(label, x, y) of the first label >= k, or (0, 0, -1) when there is none."""
    if not data or max(data) < k:
        return 0, 0, -1
    at = next(i for i, value in enumerate(data) if value >= k)
    return data[at], at % width, at // width


def _code_stripe(
    dec: bool, src: bytes, width: int, rows: int, k: int, palette: bytes, buf: bytearray, coder: list[Any]
) -> tuple[int, int, int]:
    """Code (``dec``: decode) one stripe as code_stripe in codec/_mix.c; returns (status, x, y).

    Encoding, ``src`` is the labels and ``coder`` is [out, limit, bad row, bad x]; the coder state
    (low, range, cache, cache size) is appended on success. Decoding, ``src`` is the stream and
    ``coder`` is [stop view or None, index, code, out view]; (code, position) is appended, and each
    row is written to the out view once decoded (so that a ``stop`` read sees what C's would).
    ``buf`` receives the labels coded so far.
    """
    K = A = k  # noqa: N806 - the C file's names
    hb = _hash_bits(width * rows)
    hs = 1 << hb
    sh, sh8 = 32 - hb, 35 - hb
    bits = (k - 1).bit_length()  # the escape tree's depth
    top_node = 1 << bits
    depths = [(b, (bits - 1 - b) * (_NESC_IN + 1)) for b in range(bits - 1, -1, -1)]  # (bit, its weight set)
    t1, tm = [_SLOT_INIT] * _T1_SIZE, [_SLOT_INIT] * _TM_SIZE
    tw, tn = [_SLOT_INIT] * ((k + 1) << bits), [_SLOT_INIT] * ((k + 1) << bits)
    t2, t3, t4, t5, te = [_SLOT_INIT] * hs, [_SLOT_INIT] * hs, [_SLOT_INIT] * hs, [_SLOT_INIT] * hs, [_SLOT_INIT] * hs
    mt = [0] * hs
    wf = [_W_INIT] * (_FLAG_SETS * (_NFLAG_IN + 1))
    we = [_W_INIT] * (_ESC_SETS * (_NESC_IN + 1))
    dist = _distances(palette, k)
    h9 = [_hash_step(9, v) for v in range(k + 1)]
    h2a = [_hash_step(2, v) for v in range(k + 1)]
    h3a = [_hash_step(3, v) for v in range(k + 1)]
    h10a = [_hash_step(10, v) for v in range(k + 1)]
    h11a = [_hash_step(11, v) for v in range(k + 1)]
    h12a = [_hash_step(12, v) for v in range(k + 1)]
    sq, st, rc, actt = _SQUASH, _STRETCH, _RECIP, _ACT
    mul, m32, top, wmax, nwmax = _HASH_MUL, _MASK32, _TOP, _W_MAX, -_W_MAX
    if dec:
        stop, index, code, target = coder
        end, ip = len(src), 5
        out, limit, bad_row, bad_x = bytearray(), 0, -1, 0
        low = cache = 0
        cache_size = 1
    else:
        out, limit, bad_row, bad_x = coder
        stop, index, code, end, ip, target = None, 0, 0, 0, 0, None
        low = cache = 0
        cache_size = 1
    rng = m32
    carry_runs = (b"\xff", b"\x00")
    active, mlen, mptr = False, 0, 0
    blank = [A] * (width + 5)  # a padded row: two absent labels before, three after
    up1, up2 = blank, blank
    x = y = 0
    try:
        for y in range(rows):
            if stop is not None and stop[0] < index:
                return _CANCELLED, 0, y
            if y == bad_row:
                return _BAD_LABEL, bad_x, y
            cur = [A] * (width + 5)
            base = y * width
            w = ww = www = nw = nww = nnw = nnww = A
            n, ne, nee = up1[2], up1[3], up1[4]
            nn, nne, nnee = up2[2], up2[3], up2[4]
            for x in range(width):
                pos = base + x
                pat = ((w == n) | (w == nw) << 1 | (w == ne) << 2 | (n == nw) << 3 | (n == ne) << 4
                       | (nw == ne) << 5 | (ww == w) << 6 | (nn == n) << 7)  # fmt: skip
                cand = [w] if w != A else []
                if n != A and n != w:
                    cand.append(n)
                if ne != A and ne != w and ne != n:
                    cand.append(ne)
                if nw != A and nw != w and nw != n and nw != ne:
                    cand.append(nw)
                dw, dn = dist[w], dist[n]
                a = (dw[n] + dn[nw] + dn[ne] + dw[nw] + dw[ww] + dn[nn]) >> 4
                act = actt[a] if a < 16384 else 15
                # the match model: where this neighbourhood was last seen
                h = h9[w]
                h = ((h ^ n) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nw) * mul) & m32
                h ^= h >> 15
                h = ((h ^ ne) * mul) & m32
                h ^= h >> 15
                h = ((h ^ ww) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nn) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nne) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nww) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nee) * mul) & m32
                mi = (h ^ (h >> 15)) >> sh
                if not active:
                    seen_at = mt[mi]
                    if seen_at:
                        active, mptr, mlen = True, seen_at - 1, 0
                if active:
                    e_label = buf[mptr]
                    lb = mlen.bit_length() + 1
                    if lb > 15:
                        lb = 15
                    if e_label not in cand:
                        cand.append(e_label)
                else:
                    e_label = -1
                    lb = 0
                h = h2a[w]
                h = ((h ^ n) * mul) & m32
                b2 = ((h ^ (h >> 15)) >> sh8) << 3
                h = h3a[w]
                h = ((h ^ n) * mul) & m32
                h ^= h >> 15
                h = ((h ^ ne) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nw) * mul) & m32
                h ^= h >> 15
                b3 = (h >> sh8) << 3
                h = ((h ^ 4 ^ ww) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nn) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nne) * mul) & m32
                h ^= h >> 15
                b4 = (h >> sh8) << 3
                h = ((h ^ 5 ^ nww) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nee) * mul) & m32
                h ^= h >> 15
                h = ((h ^ www) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nnw) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nnww) * mul) & m32
                h ^= h >> 15
                h = ((h ^ nnee) * mul) & m32
                b5 = ((h ^ (h >> 15)) >> sh8) << 3
                truth = -1 if dec else src[pos]
                mc = len(cand)
                avail = K - mc
                wsel = ((mc if mc < 4 else 4) - 1) * 4 + (act >> 2)  # the weight set, but for ms and i
                value = -1
                for i in range(mc):
                    c = cand[i]
                    if avail == 0 and i == mc - 1:  # every label is a candidate: the last is certain
                        value = c
                        break
                    agree = c == e_label
                    ms = (1 if agree else 2) if lb else 0
                    i1 = (ms * 256 + pat) * 8 + i
                    i2, i3, i4, i6 = b2 + i, b3 + i, b4 + i, b5 + i
                    i5 = (lb * 2 + agree) * 8 + i
                    wi = ((ms * 5 + i) * 16 + wsel) * 7
                    v1, v2, v3, v4, v5, v6 = t1[i1], t2[i2], t3[i3], t4[i4], tm[i5], t5[i6]
                    s1, s2, s3, s4, s5 = st[v1 >> 12], st[v2 >> 12], st[v3 >> 12], st[v4 >> 12], st[v5 >> 12]
                    s6 = st[v6 >> 12]
                    w0, w1, w2, w3, w4, w5, w6 = wf[wi : wi + 7]
                    d = (s1 * w0 + s2 * w1 + s3 * w2 + s4 * w3 + s5 * w4 + s6 * w5 + 256 * w6) >> 16
                    p = 1 if d < -2047 else 4094 if d > 2047 else sq[d + 2047]
                    bound = (rng >> 15) * ((4096 - p) << 3)
                    if dec:
                        if code < bound:
                            rng = bound
                            bit = 0
                        else:
                            code -= bound
                            rng -= bound
                            bit = 1
                        while rng < top:
                            if ip >= end:
                                raise _EarlyEndError
                            rng <<= 8
                            code = (code << 8) | src[ip]
                            ip += 1
                    else:
                        bit = 1 if truth == c else 0
                        if bit:
                            low += bound
                            rng -= bound
                        else:
                            rng = bound
                        while rng < top:
                            rng <<= 8
                            if low < 0xFF000000 or low > m32:
                                carry = low >> 32
                                out.append((cache + carry) & 255)
                                if cache_size > 1:
                                    out += carry_runs[carry] * (cache_size - 1)
                                cache_size = 0
                                cache = (low >> 24) & 255
                            cache_size += 1
                            low = (low & 0xFFFFFF) << 8
                    err = (bit << 12) - p
                    w0 += (s1 * err) >> 11
                    w1 += (s2 * err) >> 11
                    w2 += (s3 * err) >> 11
                    w3 += (s4 * err) >> 11
                    w4 += (s5 * err) >> 11
                    w5 += (s6 * err) >> 11
                    w6 += (256 * err) >> 11
                    wf[wi : wi + 7] = [
                        wmax if w0 > wmax else nwmax if w0 < nwmax else w0,
                        wmax if w1 > wmax else nwmax if w1 < nwmax else w1,
                        wmax if w2 > wmax else nwmax if w2 < nwmax else w2,
                        wmax if w3 > wmax else nwmax if w3 < nwmax else w3,
                        wmax if w4 > wmax else nwmax if w4 < nwmax else w4,
                        wmax if w5 > wmax else nwmax if w5 < nwmax else w5,
                        wmax if w6 > wmax else nwmax if w6 < nwmax else w6,
                    ]
                    # the six slots are in six tables: none is another's, so v1..v6 are still current
                    n1, n2, n3, n4, n5, n6 = v1 & 255, v2 & 255, v3 & 255, v4 & 255, v5 & 255, v6 & 255
                    p1, p2, p3, p4, p5, p6 = v1 >> 8, v2 >> 8, v3 >> 8, v4 >> 8, v5 >> 8, v6 >> 8
                    if bit:
                        p1 += ((65536 - p1) * rc[n1]) >> 16
                        p2 += ((65536 - p2) * rc[n2]) >> 16
                        p3 += ((65536 - p3) * rc[n3]) >> 16
                        p4 += ((65536 - p4) * rc[n4]) >> 16
                        p5 += ((65536 - p5) * rc[n5]) >> 16
                        p6 += ((65536 - p6) * rc[n6]) >> 16
                    else:
                        p1 -= (p1 * rc[n1]) >> 16
                        p2 -= (p2 * rc[n2]) >> 16
                        p3 -= (p3 * rc[n3]) >> 16
                        p4 -= (p4 * rc[n4]) >> 16
                        p5 -= (p5 * rc[n5]) >> 16
                        p6 -= (p6 * rc[n6]) >> 16
                    t1[i1] = p1 << 8 | (n1 + 1 if n1 < 60 else n1)
                    t2[i2] = p2 << 8 | (n2 + 1 if n2 < 250 else n2)
                    t3[i3] = p3 << 8 | (n3 + 1 if n3 < 250 else n3)
                    t4[i4] = p4 << 8 | (n4 + 1 if n4 < 250 else n4)
                    tm[i5] = p5 << 8 | (n5 + 1 if n5 < 60 else n5)
                    t5[i6] = p6 << 8 | (n6 + 1 if n6 < 250 else n6)
                    if bit:
                        value = c
                        break
                if value < 0:
                    # the escape: the label's bits, most significant first, down a binary tree whose
                    # nodes are predicted under W's label, N's label and three hashed neighbourhoods
                    wrow, nrow = w << bits, n << bits
                    h = h10a[w]
                    h = ((h ^ n) * mul) & m32
                    g2 = h ^ (h >> 15)
                    h = h11a[w]
                    h = ((h ^ n) * mul) & m32
                    h ^= h >> 15
                    h = ((h ^ ne) * mul) & m32
                    h ^= h >> 15
                    h = ((h ^ nw) * mul) & m32
                    g4 = h ^ (h >> 15)
                    g1 = h12a[ne]
                    leaf = truth | top_node  # the encoder's walk ends at this node
                    node = 1
                    for b, wi in depths:
                        i1, i2 = wrow + node, nrow + node
                        h = ((g2 ^ node) * mul) & m32
                        i3 = (h ^ (h >> 15)) >> sh
                        h = ((g4 ^ node) * mul) & m32
                        i4 = (h ^ (h >> 15)) >> sh
                        h = ((g1 ^ node) * mul) & m32
                        i5 = (h ^ (h >> 15)) >> sh
                        v1, v2, v3, v4, v5 = tw[i1], tn[i2], te[i3], te[i4], te[i5]
                        s1, s2, s3, s4, s5 = st[v1 >> 12], st[v2 >> 12], st[v3 >> 12], st[v4 >> 12], st[v5 >> 12]
                        w0, w1, w2, w3, w4, w5 = we[wi : wi + 6]
                        d = (s1 * w0 + s2 * w1 + s3 * w2 + s4 * w3 + s5 * w4 + 256 * w5) >> 16
                        p = 1 if d < -2047 else 4094 if d > 2047 else sq[d + 2047]
                        bound = (rng >> 15) * ((4096 - p) << 3)
                        if dec:
                            if code < bound:
                                rng = bound
                                bit = 0
                            else:
                                code -= bound
                                rng -= bound
                                bit = 1
                            while rng < top:
                                if ip >= end:
                                    raise _EarlyEndError
                                rng <<= 8
                                code = (code << 8) | src[ip]
                                ip += 1
                        else:
                            bit = (leaf >> b) & 1
                            if bit:
                                low += bound
                                rng -= bound
                            else:
                                rng = bound
                            while rng < top:
                                rng <<= 8
                                if low < 0xFF000000 or low > m32:
                                    carry = low >> 32
                                    out.append((cache + carry) & 255)
                                    if cache_size > 1:
                                        out += carry_runs[carry] * (cache_size - 1)
                                    cache_size = 0
                                    cache = (low >> 24) & 255
                                cache_size += 1
                                low = (low & 0xFFFFFF) << 8
                        err = (bit << 12) - p
                        w0 += (s1 * err) >> 10
                        w1 += (s2 * err) >> 10
                        w2 += (s3 * err) >> 10
                        w3 += (s4 * err) >> 10
                        w4 += (s5 * err) >> 10
                        w5 += (256 * err) >> 10
                        we[wi : wi + 6] = [
                            wmax if w0 > wmax else nwmax if w0 < nwmax else w0,
                            wmax if w1 > wmax else nwmax if w1 < nwmax else w1,
                            wmax if w2 > wmax else nwmax if w2 < nwmax else w2,
                            wmax if w3 > wmax else nwmax if w3 < nwmax else w3,
                            wmax if w4 > wmax else nwmax if w4 < nwmax else w4,
                            wmax if w5 > wmax else nwmax if w5 < nwmax else w5,
                        ]
                        # TW and TN are tables of their own; the three TE slots may be one entry:
                        # update them in turn, each from what the one before left
                        n1, n2, p1, p2 = v1 & 255, v2 & 255, v1 >> 8, v2 >> 8
                        if bit:
                            p1 += ((65536 - p1) * rc[n1]) >> 16
                            p2 += ((65536 - p2) * rc[n2]) >> 16
                        else:
                            p1 -= (p1 * rc[n1]) >> 16
                            p2 -= (p2 * rc[n2]) >> 16
                        tw[i1] = p1 << 8 | (n1 + 1 if n1 < 30 else n1)
                        tn[i2] = p2 << 8 | (n2 + 1 if n2 < 30 else n2)
                        for ix in (i3, i4, i5):
                            v = te[ix]
                            pp, nn_ = v >> 8, v & 255
                            if bit:
                                pp += ((65536 - pp) * rc[nn_]) >> 16
                            else:
                                pp -= (pp * rc[nn_]) >> 16
                            te[ix] = pp << 8 | (nn_ + 1 if nn_ < 250 else nn_)
                        node = 2 * node + bit
                    value = node - top_node
                    if dec and (value >= K or value in cand):
                        return (_LABEL_K if value >= K else _LABEL_IN_L), x, y
                buf[pos] = value
                cur[x + 2] = value
                if active:
                    if value == e_label:
                        if mlen < 65535:
                            mlen += 1
                        mptr += 1
                    else:
                        active = False
                        mlen = 0
                mt[mi] = pos + 1  # C stops at pos 2^32 - 1: a stripe of 4 G pixels, out of Python's reach
                # slide the neighbourhood one pixel right
                www, ww, w, nww, nw, n, ne, nee = ww, w, value, nw, n, ne, nee, up1[x + 5]
                nnww, nnw, nn, nne, nnee = nnw, nn, nne, nnee, up2[x + 5]
            if dec:
                target[base : base + width] = buf[base : base + width]
            elif len(out) > limit:
                return _OVERFLOW, 0, y
            up2, up1 = up1, cur
    except _EarlyEndError:
        return _EARLY_END, x, y
    coder.extend((code, ip) if dec else (low, rng, cache, cache_size))
    return _OK, 0, 0


def _flush(out: bytearray, low: int, cache: int, cache_size: int) -> None:
    """The range coder's five closing shift_low calls."""
    for _ in range(5):
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            out.append((cache + carry) & 255)
            out += bytes([(0xFF + carry) & 255]) * (cache_size - 1)
            cache_size = 0
            cache = (low >> 24) & 255
        cache_size += 1
        low = (low & 0xFFFFFF) << 8


def encode(labels: Any, width: int, height: int, k: int, limit: int, palette: Any, /) -> bytes | None:
    """Code one stripe, as :func:`kmq._mix.encode`: None when the stream would exceed ``limit`` bytes.

    ``labels`` are width * height uint8 labels, all < k (else ValueError, args (message, label, x, y)),
    under the k x 3 or k x 4 bytes of ``palette``.
    """
    source = memoryview(labels)  # the arguments in the C module's order
    width, height, k, limit = _ssize(width), _ssize(height), _ssize(k), _ssize(limit)
    colours = memoryview(palette)
    data, pal = source.tobytes(), colours.tobytes()  # a private copy, as the C module takes
    _check_args(k, width, height, pal)
    if len(data) != width * height:
        raise ValueError(f"labels are {len(data)} bytes, not {width} x {height}")
    if limit < 0:
        raise ValueError("limit must be >= 0")
    bad, bad_x, bad_y = _first_bad(data, width, k)
    coder: list[Any] = [bytearray(), limit, bad_y, bad_x]
    status, x, y = _code_stripe(False, data, width, height, k, pal, bytearray(width * height), coder)
    if status == _BAD_LABEL:
        raise ValueError(f"label {bad} >= k={k} at pixel ({x}, {y}) of the stripe", bad, x, y)
    if status != _OK:
        return None
    out, _, _, _, low, _, cache, cache_size = coder
    _flush(out, low, cache, cache_size)
    return None if len(out) > limit else bytes(out)


def _stop_view(stop: Any) -> memoryview | None:
    """``stop`` as an int32 view, refused as the C module refuses it."""
    if stop is None:
        return None
    view = memoryview(stop)
    if view.readonly:
        raise BufferError("Object is not writable.")
    if not view.c_contiguous:
        raise BufferError("stop must be C-contiguous")
    raw = view.cast("B")
    if len(raw) < 4 or _address(raw) & 3:
        raise ValueError("stop must be an aligned writable buffer of at least 4 bytes")
    return raw[:4].cast("i")


def _address(raw: memoryview) -> int:
    import ctypes  # only for the alignment check, which the C module makes too

    return ctypes.addressof(ctypes.c_char.from_buffer(raw))


def decode(
    data: Any, width: int, height: int, k: int, palette: Any, out: Any, stop: Any = None, index: int = 0, /
) -> tuple[int, int, int, int]:
    """Decode one stripe into ``out``, as :func:`kmq._mix.decode`: (status, x, y, detail).

    ``out`` is a writable buffer of width * height bytes; the pixels before a failure are written.
    ``stop``: a writable buffer whose first 4 bytes are a native int32, read at the start of every
    row: below ``index``, decoding stops there with status 9.
    """
    stream = memoryview(data)  # the arguments in the C module's order, so the first wrong one is the one named
    width, height, k = _ssize(width), _ssize(height), _ssize(k)
    colours, target = memoryview(palette), memoryview(out)
    if target.readonly:
        raise TypeError(f"argument 6 must be read-write bytes-like object, not {type(out).__name__}")
    index = _ssize(index)
    src, pal = stream.tobytes(), colours.tobytes()
    _check_args(k, width, height, pal)
    target = target.cast("B")
    if len(target) != width * height:
        raise ValueError(f"output is {len(target)} bytes, not {width} x {height}")
    if index < 0 or index > 0x7FFFFFFF:
        raise ValueError(f"index {index} not in 0..{0x7FFFFFFF}")
    stop_view = _stop_view(stop)
    if len(src) < 5:
        return _SHORT, 0, 0, 0
    if src[0] != 0:
        return _FIRST_BYTE, 0, 0, src[0]
    code = int.from_bytes(src[1:5], "big")
    if code == _MASK32:
        return _CODE_RANGE, 0, 0, 0
    buf = bytearray(width * height)
    coder: list[Any] = [stop_view, index, code, target]
    status, x, y = _code_stripe(True, src, width, height, k, pal, buf, coder)
    if status != _OK:
        target[y * width : y * width + x] = buf[y * width : y * width + x]  # the rows before are written
        return status, x, y, 0
    code, ip = coder[4], coder[5]
    if ip != len(src):
        return _LEFT_OVER, 0, 0, len(src) - ip
    if code != 0:
        return _CODE_NONZERO, 0, 0, 0
    return _OK, 0, 0, 0
