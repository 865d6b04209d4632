"""Route (b): numpy-vectorised interleaved rANS, one lane per column, a whole row per step.

Row-parallel models only (contexts from rows above), static per-context 12-bit frequency tables stored
in the file. Schemes:
  rankrow: r = rank of x among the distinct values of [N, NW, NE, NN] (escape = their count), context =
           equality pattern of (N, NW, NE, NN) (64 ids, 15 used); escaped x from an order-0 table over K.
  runrow:  first f = [x == W] (context: the same pattern; at x = 0 f is not coded, it is 0), then rankrow for
           the f == 0 pixels; runs are filled from the left (np.maximum.accumulate).

rANS: 32-bit state per lane, L = 2**16, 16-bit words, 12-bit probabilities, encoder in reverse (rows bottom
to top, sub-steps in reverse), words of a step in ascending lane order, step groups reversed so the decoder
reads forward. Stream: lane states (u32 each) then the words. Decoder end check: every state back at L and
every word read.
Lanes = W by default (``--group g`` lets a lane cover g columns per row: lanes = ceil(W / g)).
"""

from __future__ import annotations

import numpy as np

PREC = 12
TOT = 1 << PREC
RL = 1 << 16


# ---------------------------------------------------------------- model

def pattern4(a, b, c, d):
    return ((a == b) * 1 | (a == c) * 2 | (a == d) * 4 | (b == c) * 8 | (b == d) * 16 | (c == d) * 32).astype(np.int64)


def _tables():
    """For each 6-bit pattern: number of distinct values, and for rank r the neighbour index (0..3) it names."""
    distinct = np.zeros(64, np.int64)
    posmap = np.zeros((64, 5), np.int64)
    for pat in range(64):
        e = [(pat >> b) & 1 for b in range(6)]
        eq = {(0, 1): e[0], (0, 2): e[1], (0, 3): e[2], (1, 2): e[3], (1, 3): e[4], (2, 3): e[5]}
        firsts = [0]
        for j in range(1, 4):
            if not any(eq[(i, j)] for i in range(j)):
                firsts.append(j)
        distinct[pat] = len(firsts)
        for r, j in enumerate(firsts):
            posmap[pat, r] = j
    return distinct, posmap


DISTINCT, POSMAP = _tables()


def rank_of(x, vals, pat):
    """Rank of x among the distinct values of vals (list order), or the escape value DISTINCT[pat]."""
    r = DISTINCT[pat].copy()
    done = np.zeros(len(x), bool)
    for rr in range(4):
        j = POSMAP[pat, rr]
        valid = rr < DISTINCT[pat]
        v = np.choose(j, vals)
        hit = valid & ~done & (v == x)
        r[hit] = rr
        done |= hit
    return r


def quantise_counts(counts: np.ndarray) -> np.ndarray:
    """Rows of counts -> 12-bit frequencies summing to 4096 per row (rows of zeros -> uniform)."""
    counts = np.asarray(counts, np.int64)
    out = np.zeros_like(counts)
    for i, c in enumerate(counts):
        n = c.sum()
        if n == 0:
            out[i] = 0
            out[i, :] = TOT // c.size
            out[i, : TOT - out[i].sum()] += 1
            continue
        f = np.where(c > 0, np.maximum(1, np.rint(c * TOT / n)), 0).astype(np.int64)
        f[np.argmax(c)] += TOT - f.sum()
        out[i] = f
    return out


def packed_table(freq: np.ndarray) -> np.ndarray:
    """(ctx, sym) frequencies -> (ctx * 4096 + slot) -> sym | freq << 8 | cum << 21 (int64)."""
    nctx, nsym = freq.shape
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    tab = np.zeros((nctx, TOT), np.int64)
    for c in range(nctx):
        sym = np.repeat(np.arange(nsym), freq[c])
        tab[c] = sym | (freq[c][sym] << 8) | (cum[c][sym] << 21)
    return tab.ravel()


# ---------------------------------------------------------------- rANS lane steps

def enc_step(s, f, c, chunks):
    """Encode one symbol per lane (arrays aligned with s); s updated in place."""
    big = s >= (f << 20)
    chunks.append((s[big] & 0xFFFF).astype(np.uint16))
    s[big] >>= 16
    q = s // f
    s[:] = (q << PREC) + (s - q * f) + c


def dec_step(s, tab, ctx, words, ptr):
    slot = s & (TOT - 1)
    e = tab[ctx * TOT + slot]
    sym = e & 0xFF
    s[:] = ((e >> 8) & 0x1FFF) * (s >> PREC) + slot - (e >> 21)
    small = s < RL
    n = int(np.count_nonzero(small))
    if n:
        if ptr + n > len(words):
            raise ValueError("stream ends early")
        s[small] = (s[small] << 16) | words[ptr : ptr + n]
    return sym, ptr + n


# ---------------------------------------------------------------- rankrow / runrow codecs

def row_neighbours(prev1, prev2, k):
    """N, NW, NE, NN of one row from the two rows above (sentinel k outside)."""
    n = prev1
    nw = np.concatenate(([k], prev1[:-1]))
    ne = np.concatenate((prev1[1:], [k]))
    return [n, nw, ne, prev2]


def model(lab: np.ndarray, k: int, scheme: str):
    """Fit the static tables; returns (tables dict, symbols needed by the encoder)."""
    h, w = lab.shape
    p = np.full((h + 2, w + 2), k, np.int64)
    p[2:, 1:-1] = lab
    x = p[2:, 1:-1]
    vals = [p[1:-1, 1:-1], p[1:-1, :-2], p[1:-1, 2:], p[:-2, 1:-1]]
    pat = pattern4(*vals)
    r = rank_of(x.ravel(), [v.ravel() for v in vals], pat.ravel()).reshape(h, w)
    wv = np.full((h, w), k, np.int64)
    wv[:, 1:] = lab[:, :-1]
    f = (x == wv).astype(np.int64)
    coded = np.ones((h, w), bool) if scheme == "rankrow" else (f == 0)
    esc = coded & (r == DISTINCT[pat])
    c_r = np.zeros((64, 5), np.int64)
    c_r += np.bincount((pat[coded]) * c_r.shape[1] + (r[coded]), minlength=c_r.size).reshape(c_r.shape)
    c_x = np.bincount(x[esc], minlength=k)[None, :k]
    tabs = {"r": quantise_counts(c_r), "x": quantise_counts(c_x)}
    if scheme == "runrow":
        c_f = np.zeros((64, 2), np.int64)
        c_f += np.bincount(pat[:, 1:].ravel() * 2 + f[:, 1:].ravel(), minlength=c_f.size).reshape(c_f.shape)
        tabs["f"] = quantise_counts(c_f)
    return tabs, dict(pat=pat, r=r, f=f, esc=esc, x=x)


def table_bytes(tabs: dict, k: int) -> int:
    """Stored-model size: per table row a presence bitmap and 12 bits per present symbol."""
    bits = 0
    for t in tabs.values():
        used_rows = [row for row in t if row.sum() > 0]
        bits += t.shape[0]  # row-used bitmap
        for row in used_rows:
            bits += row.size + PREC * int(np.count_nonzero(row))
    return (bits + 7) // 8


def encode(lab: np.ndarray, k: int, scheme: str = "rankrow", group: int = 1):
    h, w = lab.shape
    tabs, m = model(lab, k, scheme)
    cum = {n: np.concatenate([np.zeros((t.shape[0], 1), np.int64), np.cumsum(t, 1)[:, :-1]], 1) for n, t in tabs.items()}
    lanes = -(-w // group)
    s = np.full(lanes, RL, np.int64)
    chunks: list[np.ndarray] = []
    pat, r, f, esc, x = m["pat"], m["r"], m["f"], m["esc"], m["x"]
    for y in range(h - 1, -1, -1):
        for g in range(group - 1, -1, -1):
            c0, c1 = g * lanes, min(w, (g + 1) * lanes)
            if c0 >= c1:
                continue
            cols = slice(c0, c1)
            ss = s[: c1 - c0]
            # reverse of the decoder's order: escape values, ranks, flags
            e = np.flatnonzero(esc[y, cols])
            if len(e):
                sub = ss[e]
                xv = x[y, cols][e]
                enc_step(sub, tabs["x"][0, xv], cum["x"][0, xv], chunks)
                ss[e] = sub
                chunks.append(None)  # step separator (keeps the per-step grouping)
            if scheme == "rankrow":
                idx = np.arange(c1 - c0)
            else:
                idx = np.flatnonzero(f[y, cols] == 0)
            if len(idx):
                sub = ss[idx]
                pr, rr = pat[y, cols][idx], r[y, cols][idx]
                enc_step(sub, tabs["r"][pr, rr], cum["r"][pr, rr], chunks)
                ss[idx] = sub
                chunks.append(None)
            if scheme == "runrow":
                idx = np.arange(max(c0, 1), c1) - c0
                if len(idx):
                    sub = ss[idx]
                    pf, ff = pat[y, cols][idx], f[y, cols][idx]
                    enc_step(sub, tabs["f"][pf, ff], cum["f"][pf, ff], chunks)
                    ss[idx] = sub
                    chunks.append(None)
            s[: c1 - c0] = ss
    words = [c for c in chunks if c is not None]
    words.reverse()
    stream = np.concatenate(words) if words else np.zeros(0, np.uint16)
    payload = s.astype(np.uint32).tobytes() + stream.astype("<u2").tobytes()
    return payload, tabs, lanes


def decode(payload: bytes, tabs: dict, h: int, w: int, k: int, scheme: str = "rankrow", group: int = 1):
    lanes = -(-w // group)
    s = np.frombuffer(payload[: 4 * lanes], np.uint32).astype(np.int64)
    words = np.frombuffer(payload[4 * lanes :], "<u2").astype(np.int64)
    ptr = 0
    pt = {n: packed_table(t) for n, t in tabs.items()}
    out = np.zeros((h, w), np.uint8)
    prev1 = np.full(w, k, np.int64)
    prev2 = np.full(w, k, np.int64)
    for y in range(h):
        vals = row_neighbours(prev1, prev2, k)
        pat = pattern4(*vals)
        row = np.empty(w, np.int64)
        for g in range(group):
            c0, c1 = g * lanes, min(w, (g + 1) * lanes)
            if c0 >= c1:
                continue
            ss = s[: c1 - c0]
            pr = pat[c0:c1]
            if scheme == "runrow":
                idx = np.arange(max(c0, 1), c1) - c0
                fl = np.zeros(c1 - c0, np.int64)
                if len(idx):
                    sub = ss[idx]
                    sym, ptr = dec_step(sub, pt["f"], pr[idx], words, ptr)
                    ss[idx] = sub
                    fl[idx] = sym
                idx = np.flatnonzero(fl == 0)
            else:
                idx = np.arange(c1 - c0)
            sub = ss[idx]
            rr, ptr = dec_step(sub, pt["r"], pr[idx], words, ptr)
            ss[idx] = sub
            pid = pr[idx]
            e = np.flatnonzero(rr == DISTINCT[pid])
            j = POSMAP[pid, np.minimum(rr, 3)]
            stack = np.stack([v[c0:c1] for v in vals])
            v = stack[j, idx]
            if len(e):
                sub = ss[idx[e]]
                xv, ptr = dec_step(sub, pt["x"], np.zeros(len(e), np.int64), words, ptr)
                ss[idx[e]] = sub
                v[e] = xv
            seg = np.full(c1 - c0, -1, np.int64)
            seg[idx] = v
            row[c0:c1] = seg
            s[: c1 - c0] = ss
        if scheme == "runrow":
            # fill runs: a pixel with f = 1 copies its left neighbour
            known = row >= 0
            pos = np.where(known, np.arange(w), 0)
            np.maximum.accumulate(pos, out=pos)
            row = row[pos]
        if np.any(row >= k) or np.any(row < 0):
            raise ValueError("label out of range")
        out[y] = row
        prev2, prev1 = prev1, row
    if ptr != len(words) or np.any(s != RL):
        raise ValueError("stream has bytes left over or a bad final state")
    return out
