"""Route (c), refined: the candidate coding "ctx1" for the recommendation, with numba.

Per pixel (raster order), neighbours W, N, NE, NW, WW, NN (outside the image: absent):
  1. L = the distinct present values among (W, N, NE, NW), in that order (m = len(L), 0..4).
  2. For i = 0..m-1: binary decision "x == L[i]", stop at the first yes.
     Context: (i, equality pattern of (W, N, NW, NE) incl. absence as 6 bits, [WW == W], [NN == N], value part),
     value part: vc = 0 none, 1 = W's value, 2 = (W, N) values.
  3. Escape (no yes): x is not in L. Modes:
     esc = 0: binary tree over x (ceil(log2 K) decisions, MSB first), context = W's value (or K if absent)
     esc = 1: j = position of x in the palette sorted by squared RGB distance to the reference colour
              (W's, else N's, else index order), skipping the values in L; j coded as adaptive Exp-Golomb:
              e = bit_length(j+1) - 1 in unary (contexts: (min(m,3), unary index)), then the e low bits of
              j+1 MSB first (contexts: (e, bit index)).
Binary coder: LZMA-style range coder (32-bit range, carry-propagating low, first byte 0, 5-byte flush),
15-bit probabilities, adaptation p += (2^15 - p) >> r or p -= p >> r with r = rate(count):
  fixed:     r = SHIFT for every update (``rmax = -SHIFT``)
  counting:  r = min(rmax, 1 + floor(log2(c + 1))), c = updates so far in this context (saturates at 255).
Decoder rejects: first byte not 0, stream shorter than needed, bytes left over, final code != 0, label >= K.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PB = 15
ONE = 1 << PB
TOP = 1 << 24


@njit(cache=True)
def _rate(cnt, i, rmax):
    if rmax < 0:
        return -rmax
    c = cnt[i]
    if c < 255:
        cnt[i] = c + 1
    r = 1
    c1 = c + 1
    while c1 > 1:
        c1 >>= 1
        r += 1
    return r if r < rmax else rmax


@njit(cache=True)
def _shift_low(low, cache, csize, out, pos):
    if (low & 0xFFFFFFFF) < 0xFF000000 or (low >> 32) != 0:
        carry = low >> 32
        temp = cache
        while True:
            if pos < out.shape[0]:
                out[pos] = (temp + carry) & 0xFF
            pos += 1
            temp = 0xFF
            csize -= 1
            if csize == 0:
                break
        cache = (low >> 24) & 0xFF
    csize += 1
    low = (low & 0x00FFFFFF) << 8
    return low, cache, csize, pos


@njit(cache=True)
def _enc(pr, cnt, i, bit, rmax, st, out):
    # st: [low, rng, cache, csize, pos]
    low, rng, cache, csize, pos = st[0], st[1], st[2], st[3], st[4]
    p = pr[i]
    r = _rate(cnt, i, rmax)
    bound = (rng >> PB) * p
    if bit == 0:
        rng = bound
        pr[i] = p + ((ONE - p) >> r)
    else:
        low += bound
        rng -= bound
        pr[i] = p - (p >> r)
    while rng < TOP:
        rng = (rng << 8) & 0xFFFFFFFF
        low, cache, csize, pos = _shift_low(low, cache, csize, out, pos)
    st[0], st[1], st[2], st[3], st[4] = low, rng, cache, csize, pos


@njit(cache=True)
def _dec(pr, cnt, i, rmax, st, data):
    # st: [code, rng, pos]
    code, rng, pos = st[0], st[1], st[2]
    p = pr[i]
    r = _rate(cnt, i, rmax)
    bound = (rng >> PB) * p
    if code < bound:
        rng = bound
        pr[i] = p + ((ONE - p) >> r)
        bit = 0
    else:
        code -= bound
        rng -= bound
        pr[i] = p - (p >> r)
        bit = 1
    while rng < TOP:
        rng = (rng << 8) & 0xFFFFFFFF
        b = data[pos] if pos < data.shape[0] else 0
        pos += 1
        code = ((code << 8) | b) & 0xFFFFFFFF
    st[0], st[1], st[2] = code, rng, pos
    return bit


@njit(cache=True)
def _orders(pal, k):
    """order[ref, t]: palette indices sorted by squared distance to entry ref (ties by index); row k: identity."""
    order = np.empty((k + 1, k), np.int32)
    d = np.empty(k, np.int64)
    for a in range(k):
        for b in range(k):
            s = 0
            for c in range(pal.shape[1]):
                t = np.int64(pal[a, c]) - np.int64(pal[b, c])
                s += t * t
            d[b] = s * 512 + b
        order[a] = np.argsort(d).astype(np.int32)
    for b in range(k):
        order[k, b] = b
    return order


@njit(cache=True)
def code_plane(lab, k, pal, vc, esc, rmax, out, data, decode):
    """Encode lab into out (decode=False; returns bytes written) or decode data into lab (returns ok: 1/0)."""
    h, w = lab.shape
    p = np.full((h + 2, w + 4), k, np.int32)
    if not decode:
        p[2:, 2 : w + 2] = lab
    bits = 0
    while (1 << bits) < k:
        bits += 1
    nv = 1 if vc == 0 else ((k + 1) if vc == 1 else (k + 1) * (k + 1))
    nflag = 4 * 256 * nv
    fpr = np.full(nflag, ONE // 2, np.int64)
    fcn = np.zeros(nflag, np.int64)
    ntree = (k + 1) * (1 << bits) if esc == 0 else 4 * 16 + 16 * 16
    tpr = np.full(max(ntree, 1), ONE // 2, np.int64)
    tcn = np.zeros(max(ntree, 1), np.int64)
    order = _orders(pal, k) if esc == 1 else np.zeros((1, 1), np.int32)
    pos_in = np.empty((k + 1, k), np.int32)
    if esc == 1:
        for a in range(k + 1):
            for t in range(k):
                pos_in[a, order[a, t]] = t
    est = np.zeros(5, np.int64)
    dst = np.zeros(3, np.int64)
    if not decode:
        est[1] = 0xFFFFFFFF
        est[3] = 1
    else:
        if data.shape[0] < 5 or data[0] != 0:
            return 0
        c0 = 0
        for i in range(1, 5):
            c0 = (c0 << 8) | data[i]
        dst[0] = c0
        dst[1] = 0xFFFFFFFF
        dst[2] = 5
    lst = np.empty(4, np.int32)
    for y in range(h):
        for x in range(w):
            yy = y + 2
            xx = x + 2
            w_ = p[yy, xx - 1]
            n_ = p[yy - 1, xx]
            nw = p[yy - 1, xx - 1]
            ne = p[yy - 1, xx + 1]
            pat = (
                (w_ == n_) * 1 | (w_ == nw) * 2 | (w_ == ne) * 4 | (n_ == nw) * 8 | (n_ == ne) * 16
                | (nw == ne) * 32 | (p[yy, xx - 2] == w_) * 64 | (p[yy - 2, xx] == n_) * 128
            )
            if vc == 0:
                vpart = 0
            elif vc == 1:
                vpart = w_
            else:
                vpart = w_ * (k + 1) + n_
            base = (vpart * 256 + pat) * 4
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
            if not decode:
                v = p[yy, xx]
            found = False
            for i in range(m):
                if decode:
                    b = _dec(fpr, fcn, base + i, rmax, dst, data)
                else:
                    b = 1 if lst[i] == v else 0
                    _enc(fpr, fcn, base + i, b, rmax, est, out)
                if b == 1:
                    v = lst[i]
                    found = True
                    break
            if not found and bits > 0:
                if esc == 0:
                    tb = w_ << bits
                    node = 1
                    for i in range(bits - 1, -1, -1):
                        if decode:
                            b = _dec(tpr, tcn, tb + node, rmax, dst, data)
                        else:
                            b = (v >> i) & 1
                            _enc(tpr, tcn, tb + node, b, rmax, est, out)
                        node = node * 2 + b
                    if decode:
                        v = node - (1 << bits)
                else:
                    ref = w_ if w_ < k else (n_ if n_ < k else k)
                    mc = m if m < 3 else 3
                    if not decode:
                        pv = pos_in[ref, v]
                        j = pv
                        for i in range(m):
                            if pos_in[ref, lst[i]] < pv:
                                j -= 1
                        u = j + 1
                        e = 0
                        while (u >> (e + 1)) > 0:
                            e += 1
                        for i in range(e + 1):
                            b = 1 if i == e else 0
                            _enc(tpr, tcn, mc * 16 + (i if i < 15 else 15), b, rmax, est, out)
                        for i in range(e - 1, -1, -1):
                            b = (u >> i) & 1
                            _enc(tpr, tcn, 64 + (e if e < 15 else 15) * 16 + (i if i < 15 else 15), b, rmax, est, out)
                    else:
                        e = 0
                        while True:
                            b = _dec(tpr, tcn, mc * 16 + (e if e < 15 else 15), rmax, dst, data)
                            if b == 1:
                                break
                            e += 1
                            if e > 8:
                                return 0
                        u = 1
                        for i in range(e - 1, -1, -1):
                            b = _dec(tpr, tcn, 64 + (e if e < 15 else 15) * 16 + (i if i < 15 else 15), rmax, dst, data)
                            u = (u << 1) | b
                        j = u - 1
                        # walk the order, skipping L's values
                        cntj = -1
                        v = -1
                        for t in range(k):
                            c = order[ref, t]
                            skip = False
                            for i in range(m):
                                if lst[i] == c:
                                    skip = True
                            if skip:
                                continue
                            cntj += 1
                            if cntj == j:
                                v = c
                                break
                        if v < 0:
                            return 0
            if decode:
                if v < 0:
                    v = 0
                if v >= k:
                    return 0
                p[yy, xx] = v
                lab[y, x] = v
        if decode and dst[2] > data.shape[0]:
            return 0
    if not decode:
        for _ in range(5):
            est[0], est[2], est[3], est[4] = _shift_low(est[0], est[2], est[3], out, est[4])
        return est[4]
    return 1 if (dst[2] == data.shape[0] and dst[0] == 0) else 0


def encode(lab, k, pal, vc=0, esc=0, rmax=7):
    out = np.zeros(lab.size * max(1, (k - 1).bit_length()) // 8 + 4096, np.uint8)
    dummy = np.zeros(1, np.uint8)
    n = code_plane(lab, k, pal, vc, esc, rmax, out, dummy, False)
    return out[:n].copy() if n <= len(out) else None


def decode(data, h, w, k, pal, vc=0, esc=0, rmax=7):
    lab = np.zeros((h, w), np.uint8)
    dummy = np.zeros(1, np.uint8)
    ok = code_plane(lab, k, pal, vc, esc, rmax, dummy, data, True)
    return lab, bool(ok)
