"""Route (b2): context-sorted static coding, pure numpy.

The encoder computes every pixel's context (all at once, vectorised), then codes the symbols grouped by
context: the symbols of context 0 in pixel order, then those of context 1, ... Each group is i.i.d. under
its stored 12-bit frequency table, so the whole sequence is coded with L interleaved rANS lanes that
advance in lock-step (symbol i goes to lane i mod L), with no context formation inside the coder loop.
The decoder first decodes the whole sequence (L lanes in lock-step), then *assembles* the image: it
recomputes contexts from already assembled pixels and takes each pixel's symbol from the next unused
position of its context's group. Assembly is vectorised either

  * by rows ("runrow" scheme: all contexts come from the rows above, plus the x == W flag trick), or
  * by anti-diagonal wavefronts t = x + 2y ("rank4x": full causal context W, N, NW, NE, WW, NN).

Symbols: flags / ranks / escape values as in entropy.py; escape values are one more group coded with an
order-0 table (escN: one table per value of N).

rANS: 32-bit states, L = 2**16 lower bound, 16-bit words, 12-bit frequencies; stream = L states (u32) then
words (u16). L = max(1, ceil(n / 4096)) lanes per stream (about 4096 lock-step steps).
"""

from __future__ import annotations

import numpy as np

from lanes import DISTINCT, POSMAP, PREC, RL, TOT, pattern4, quantise_counts, rank_of

STEPS = 4096


# ------------------------------------------------------------------ the lane coder for sorted groups

def rans_encode(sym: np.ndarray, grp: np.ndarray, freq: np.ndarray, lanes: int) -> bytes:
    """Code sym[i] (group grp[i], table freq[grp]) with ``lanes`` interleaved rANS states."""
    n = len(sym)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, 1)[:, :-1]
    f_all = freq[grp, sym].astype(np.int64)
    c_all = cum[grp, sym].astype(np.int64)
    if np.any(f_all == 0):
        raise ValueError("symbol with zero frequency")
    s = np.full(lanes, RL, np.int64)
    chunks = []
    steps = -(-n // lanes)
    for t in range(steps - 1, -1, -1):
        a, b = t * lanes, min(n, (t + 1) * lanes)
        ss = s[: b - a]
        f = f_all[a:b]
        big = ss >= (f << 20)
        chunks.append((ss[big] & 0xFFFF).astype("<u2"))
        ss[big] >>= 16
        q = ss // f
        ss[:] = (q << PREC) + (ss - q * f) + c_all[a:b]
    chunks.reverse()
    return s.astype("<u4").tobytes() + b"".join(c.tobytes() for c in chunks)


def decode_table(freq: np.ndarray) -> np.ndarray:
    """(group, slot) -> sym | freq << 9 | cum << 22 (int64), flattened."""
    ng, ns = freq.shape
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, 1)[:, :-1]
    tab = np.zeros((ng, TOT), np.int64)
    for g in range(ng):
        if freq[g].sum() == 0:
            continue
        sym = np.repeat(np.arange(ns), freq[g])
        tab[g] = sym | (freq[g][sym].astype(np.int64) << 9) | (cum[g][sym].astype(np.int64) << 22)
    return tab.ravel()


def rans_decode(data: bytes, grp: np.ndarray, freq: np.ndarray, lanes: int) -> np.ndarray:
    n = len(grp)
    if len(data) < 4 * lanes or (len(data) - 4 * lanes) % 2:
        raise ValueError("bad stream length")
    s = np.frombuffer(data[: 4 * lanes], "<u4").astype(np.int64)
    words = np.frombuffer(data[4 * lanes :], "<u2").astype(np.int64)
    tab = decode_table(freq)
    out = np.empty(n, np.int64)
    ptr = 0
    steps = -(-n // lanes)
    gbase = grp.astype(np.int64) * TOT
    for t in range(steps):
        a, b = t * lanes, min(n, (t + 1) * lanes)
        ss = s[: b - a]
        slot = ss & (TOT - 1)
        e = tab[gbase[a:b] + slot]
        out[a:b] = e & 0x1FF
        ss[:] = ((e >> 9) & 0x1FFF) * (ss >> PREC) + slot - (e >> 22)
        small = ss < RL
        k = int(np.count_nonzero(small))
        if k:
            if ptr + k > len(words):
                raise ValueError("stream ends early")
            ss[small] = (ss[small] << 16) | words[ptr : ptr + k]
            ptr += k
    if ptr != len(words) or np.any(s != RL):
        raise ValueError("bytes left over or bad final state")
    return out


def lanes_for(n: int) -> int:
    return max(1, -(-n // STEPS))


# ------------------------------------------------------------------ stored tables

def table_bits(freq: np.ndarray) -> int:
    """Bits to store a table: 1 bit per row (used?), per used row a presence mask and 12 bits per present symbol."""
    bits = freq.shape[0]
    for row in freq:
        if row.sum():
            bits += row.size + PREC * int(np.count_nonzero(row))
    return bits


# ------------------------------------------------------------------ taking symbols group by group

class Groups:
    """Decoded symbols of all groups, consumed in order per group."""

    def __init__(self, syms: np.ndarray, counts: np.ndarray):
        self.syms = syms
        self.base = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.ptr = np.zeros(len(counts), np.int64)
        self.counts = counts
        self.ng = len(counts)

    def take(self, ctx: np.ndarray) -> np.ndarray:
        """The next symbol of group ctx[i] for each i, in order of i within each group."""
        if len(ctx) == 0:
            return np.zeros(0, np.int64)
        order = np.argsort(ctx.astype(np.int16), kind="stable")
        cnt = np.bincount(ctx, minlength=self.ng)
        start = np.cumsum(cnt) - cnt
        sc = ctx[order]
        j = np.arange(len(ctx)) - start[sc]
        idx = self.base[sc] + self.ptr[sc] + j
        if np.any(self.ptr + cnt > self.counts):
            raise ValueError("a group ran out of symbols")
        out = np.empty(len(ctx), np.int64)
        out[order] = self.syms[idx]
        self.ptr += cnt
        return out

    def done(self) -> bool:
        return bool(np.all(self.ptr == self.counts))


# ------------------------------------------------------------------ runrow (row assembly)

def _pad(lab, k):
    h, w = lab.shape
    p = np.full((h + 2, w + 4), k, np.int64)
    p[2:, 2 : w + 2] = lab
    return p


def runrow_symbols(lab: np.ndarray, k: int):
    """Per pixel: flag f (x == W, not coded at x = 0), rank r (f == 0 pixels), escape value, and contexts."""
    h, w = lab.shape
    p = _pad(lab, k)

    def at(dy, dx):
        return p[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]

    x = at(0, 0)
    vals = [at(-1, 0), at(-1, -1), at(-1, 1), at(-2, 0)]
    pat = pattern4(*vals)
    r = rank_of(x.ravel(), [v.ravel() for v in vals], pat.ravel()).reshape(h, w)
    f = (x == at(0, -1)).astype(np.int64)
    f[:, 0] = 0
    return x, pat, f, r, vals


def encode_runrow(lab: np.ndarray, k: int, esc_ctx: str = "0"):
    h, w = lab.shape
    x, pat, f, r, vals = runrow_symbols(lab, k)
    # group ids: flags 0..63 (pattern), ranks 64..127 (pattern), escapes 128 (+ N's value for escN)
    fl = np.zeros((h, w), bool)
    fl[:, 1:] = True
    rk = f == 0
    esc = rk & (r == DISTINCT[pat])
    gx = np.full(int(esc.sum()), 0, np.int64) if esc_ctx == "0" else vals[0][esc]
    nesc = 1 if esc_ctx == "0" else k + 1
    # raster order within each group: stable sort by group
    g_f, s_f = pat[fl], f[fl]
    g_r, s_r = pat[rk], r[rk]
    s_x = x[esc]
    freq = np.zeros((128 + nesc, max(5, k)), np.int64)
    counts = np.zeros(128 + nesc, np.int64)
    for g, s, off, a in ((g_f, s_f, 0, 2), (g_r, s_r, 64, 5), (gx, s_x, 128, k)):
        c = np.zeros((64 if off < 128 else nesc, a), np.int64)
        c += np.bincount((g) * c.shape[1] + (s), minlength=c.size).reshape(c.shape)
        q = quantise_counts(c)
        q[c.sum(1) == 0] = 0
        freq[off : off + c.shape[0], :a] = q
        counts[off : off + c.shape[0]] = c.sum(1)
    grp = np.concatenate([g_f, g_r + 64, gx + 128])
    sym = np.concatenate([s_f, s_r, s_x])
    order = np.argsort(grp, kind="stable")
    grp, sym = grp[order], sym[order]
    lanes = lanes_for(len(sym))
    data = rans_encode(sym, grp, freq, lanes)
    side = {"freq": freq, "counts": counts, "lanes": lanes}
    return data, side


def decode_runrow(data: bytes, side: dict, h: int, w: int, k: int, esc_ctx: str = "0") -> np.ndarray:
    freq, counts, lanes = side["freq"], side["counts"], side["lanes"]
    grp = np.repeat(np.arange(len(counts)), counts)
    syms = rans_decode(data, grp, freq, lanes)
    G = Groups(syms, counts)
    out = np.zeros((h, w), np.uint8)
    prev1 = np.full(w + 2, k, np.int64)  # row above, padded by one on each side
    prev2 = np.full(w + 2, k, np.int64)
    cols = np.arange(w)
    for y in range(h):
        vals = [prev1[1:-1], prev1[:-2], prev1[2:], prev2[1:-1]]
        pat = pattern4(*vals)
        f = np.zeros(w, np.int64)
        f[1:] = G.take(pat[1:])
        idx = np.flatnonzero(f == 0)
        pi = pat[idx]
        r = G.take(pi + 64)
        d = DISTINCT[pi]
        if np.any(r > d):
            raise ValueError("rank out of range")
        e = r == d
        v = np.stack(vals)[POSMAP[pi, np.minimum(r, 3)], idx]
        if np.any(e):
            if esc_ctx == "0":
                v[e] = G.take(np.full(int(e.sum()), 128, np.int64))
            else:
                v[e] = G.take(vals[0][idx[e]] + 128)
        row = np.empty(w, np.int64)
        row[idx] = v
        pos = np.where(f == 0, cols, 0)
        np.maximum.accumulate(pos, out=pos)
        row = row[pos]
        if np.any(row >= k):
            raise ValueError("label out of range")
        out[y] = row
        prev2 = prev1
        prev1 = np.concatenate(([k], row, [k]))
    if not G.done():
        raise ValueError("symbols left over")
    return out


# ------------------------------------------------------------------ rank4x (wavefront assembly)

def rank4x_symbols(lab: np.ndarray, k: int):
    h, w = lab.shape
    p = _pad(lab, k)

    def at(dy, dx):
        return p[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]

    x = at(0, 0)
    vals = [at(0, -1), at(-1, 0), at(-1, 1), at(-1, -1)]  # W, N, NE, NW (rank order)
    wv, nv, nev, nwv = vals
    pat = pattern4(wv, nv, nwv, nev) | ((at(0, -2) == wv) << 6) | ((at(-2, 0) == nv) << 7)
    pat6 = pat & 63
    # rank order list is (W, N, NE, NW) but the pattern is over (W, N, NW, NE): compute ranks directly
    r = _rank_direct(x, vals)
    return x, pat, pat6, r, vals


def _rank_direct(x, vals):
    """Rank of x in the distinct values of vals (list order); escape = number of distinct values."""
    h, w = x.shape
    new = []
    for j, v in enumerate(vals):
        t = np.ones((h, w), bool)
        for i in range(j):
            t &= v != vals[i]
        new.append(t)
    distinct = np.sum(new, axis=0)
    r = distinct.copy()
    found = np.zeros((h, w), bool)
    seen = np.zeros((h, w), np.int64)
    for j, v in enumerate(vals):
        hit = ~found & (x == v)
        r[hit] = seen[hit]
        found |= hit
        seen += new[j]
    return r, distinct


def encode_rank4x(lab: np.ndarray, k: int):
    h, w = lab.shape
    x, pat, _pat6, (r, distinct), vals = rank4x_symbols(lab, k)
    esc = r == distinct
    # wavefront order t = x + 2y, then y: symbols of a group are taken in this order by the decoder
    yy, xx = np.mgrid[0:h, 0:w]
    t = (xx + 2 * yy).ravel()
    worder = np.lexsort((yy.ravel(), t))
    patw, rw, escw, xw = pat.ravel()[worder], r.ravel()[worder], esc.ravel()[worder], x.ravel()[worder]
    c_r = np.zeros((256, 5), np.int64)
    c_r += np.bincount((patw) * c_r.shape[1] + (rw), minlength=c_r.size).reshape(c_r.shape)
    c_x = np.bincount(xw[escw], minlength=k)[None, :]
    freq = np.zeros((257, max(5, k)), np.int64)
    q = quantise_counts(c_r)
    q[c_r.sum(1) == 0] = 0
    freq[:256, :5] = q
    freq[256, :k] = quantise_counts(c_x)[0] if c_x.sum() else 0
    counts = np.concatenate([c_r.sum(1), [c_x.sum()]])
    grp = np.concatenate([patw, np.full(int(escw.sum()), 256)])
    sym = np.concatenate([rw, xw[escw]])
    order = np.argsort(grp, kind="stable")
    lanes = lanes_for(len(sym))
    data = rans_encode(sym[order], grp[order], freq, lanes)
    return data, {"freq": freq, "counts": counts, "lanes": lanes}


def decode_rank4x(data: bytes, side: dict, h: int, w: int, k: int) -> np.ndarray:
    freq, counts, lanes = side["freq"], side["counts"], side["lanes"]
    grp = np.repeat(np.arange(len(counts)), counts)
    syms = rans_decode(data, grp, freq, lanes)
    G = Groups(syms, counts)
    pw = w + 4
    p = np.full((h + 2) * pw, k, np.int64)  # flat padded plane
    # distinct count and rank -> list position, for the (W, N, NE, NW) list given equality bits
    for t in range(w + 2 * (h - 1)):
        y0 = max(0, -(-(t - w + 1) // 2))
        y1 = min(h - 1, t // 2)
        ys = np.arange(y0, y1 + 1)
        xs = t - 2 * ys
        c = (ys + 2) * pw + xs + 2
        wv, nv, nev, nwv = p[c - 1], p[c - pw], p[c - pw + 1], p[c - pw - 1]
        wwv, nnv = p[c - 2], p[c - 2 * pw]
        pat = (
            (wv == nv) * 1 | (wv == nwv) * 2 | (wv == nev) * 4 | (nv == nwv) * 8 | (nv == nev) * 16 | (nwv == nev) * 32
            | (wwv == wv) * 64 | (nnv == nv) * 128
        )
        r = G.take(pat)
        # list (W, N, NE, NW) deduplicated: value at rank r
        d1 = nv != wv
        d2 = (nev != wv) & (nev != nv)
        d3 = (nwv != wv) & (nwv != nv) & (nwv != nev)
        distinct = 1 + d1 + d2 + d3
        if np.any(r > distinct):
            raise ValueError("rank out of range")
        # position j in the original list of the r-th distinct value
        v = np.where(r == 0, wv, np.where(d1 & (r == 1), nv, np.where(d2 & (r == 1 + d1), nev, nwv)))
        e = r == distinct
        if np.any(e):
            v[e] = G.take(np.full(int(e.sum()), 256, np.int64))
        if np.any(v >= k):
            raise ValueError("label out of range")
        p[c] = v
    if not G.done():
        raise ValueError("symbols left over")
    return p.reshape(h + 2, pw)[2:, 2 : w + 2].astype(np.uint8)
