"""Issue 4, part 1: conditional entropies of kmq label planes on the 24 Kodak images.

Usage: /work/venv/bin/python /work/notes/scripts/entropy.py [K ...]   (default 2 8 16 64 256)
Writes /work/notes/out/entropy_K<K>.json (per image, per scheme part) and prints the summary table.

Neighbours outside the image take the value K (an extra symbol that never equals a label).
Schemes ("part" lists are coded one after the other; their bits add up):
  full-context schemes, alphabet K:   none, W, N, WN, WNNW, WNNWNE (=W,N,NW,NE), row3 (=N,NW,NE), row4 (=N,NW,NE,NN)
  rank4:   r = rank of x in the distinct values of [W, N, NE, NW] (escape = number of distinct values),
           context = equality pattern of (W, N, NW, NE) (6 bits); escaped x: order-0 over K ("esc0"),
           or context N ("escN")
  rank4x:  as rank4, context pattern x [WW==W] x [NN==N]
  rankrow: rank of x in [N, NW, NE, NN], context = their pattern (row-parallel); escape as above
  runrow:  flag x==W with context pattern(N, NW, NE, NN) (row-parallel), then for x != W pixels the rankrow
           scheme (row-parallel); runs filled from the left afterwards
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
from common import kodak  # noqa: E402
from ctxstats import ALPHAS, stats  # noqa: E402


def planes(lab: np.ndarray, k: int) -> dict[str, np.ndarray]:
    h, w = lab.shape
    p = np.full((h + 2, w + 4), k, np.int64)
    p[2:, 2 : w + 2] = lab

    def at(dy: int, dx: int) -> np.ndarray:
        return p[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w].ravel()

    return {
        "x": at(0, 0), "W": at(0, -1), "N": at(-1, 0), "NW": at(-1, -1), "NE": at(-1, 1),
        "NN": at(-2, 0), "WW": at(0, -2), "NNE": at(-2, 1), "NNW": at(-2, -1),
    }


def combine(vals: list[np.ndarray], base: int) -> np.ndarray:
    c = np.zeros_like(vals[0])
    for v in vals:
        c = c * base + v
    return c


def pattern(vals: list[np.ndarray]) -> np.ndarray:
    """Equality pattern of 4 values as 6 bits (a==b, a==c, a==d, b==c, b==d, c==d)."""
    a, b, c, d = vals
    bits = [a == b, a == c, a == d, b == c, b == d, c == d]
    out = np.zeros(len(a), np.int64)
    for i, t in enumerate(bits):
        out |= t.astype(np.int64) << i
    return out


def rank(x: np.ndarray, vals: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(rank of x among the distinct values of vals in list order, or the escape value; number of distinct)."""
    n = len(x)
    new = []  # vals[j] is the first occurrence of its value
    for j, v in enumerate(vals):
        t = np.ones(n, bool)
        for i in range(j):
            t &= v != vals[i]
        new.append(t)
    distinct = np.sum(new, axis=0)
    r = distinct.copy()  # escape by default
    found = np.zeros(n, bool)
    seen = np.zeros(n, np.int64)
    for j, v in enumerate(vals):
        hit = (~found) & (x == v)
        r[hit] = seen[hit]
        found |= hit
        seen += new[j]
    return r, distinct


def distinct_of_pattern(pat_ids: np.ndarray) -> np.ndarray:
    """Number of distinct values implied by a 6-bit pattern (low 6 bits of the context id)."""
    pat = pat_ids & 63
    out = np.empty(len(pat), np.int64)
    for i, p in enumerate(pat):
        e = [(p >> b) & 1 for b in range(6)]
        # pairs: (0,1),(0,2),(0,3),(1,2),(1,3),(2,3)
        eq = {(0, 1): e[0], (0, 2): e[1], (0, 3): e[2], (1, 2): e[3], (1, 3): e[4], (2, 3): e[5]}
        d = 1
        for j in range(1, 4):
            if not any(eq[(i2, j)] for i2 in range(j)):
                d += 1
        out[i] = d
    return out


def rank_alphabet(ctx_ids: np.ndarray) -> np.ndarray:
    return distinct_of_pattern(ctx_ids) + 1


def schemes(lab: np.ndarray, k: int) -> dict[str, dict]:
    v = planes(lab, k)
    x = v["x"]
    b = k + 1
    out: dict[str, dict] = {}
    full = {
        "none": [], "W": ["W"], "N": ["N"], "WN": ["W", "N"], "WNNW": ["W", "N", "NW"],
        "WNNWNE": ["W", "N", "NW", "NE"], "row3": ["N", "NW", "NE"], "row4": ["N", "NW", "NE", "NN"],
    }
    for name, names in full.items():
        ctx = combine([v[n] for n in names], b) if names else np.zeros_like(x)
        out[name] = stats(ctx, x, k, space=float(b ** len(names)))

    def ranked(prefix: str, order: list[str], extra: list[np.ndarray]) -> None:
        vals = [v[n] for n in order]
        pat = pattern(vals)
        ctx = pat
        for i, e in enumerate(extra):
            ctx = ctx | (e.astype(np.int64) << (6 + i))
        r, _ = rank(x, vals)
        out[prefix + "/rank"] = stats(ctx, r, rank_alphabet, space=float(64 << len(extra)))
        esc = r == _distinct(vals)
        out[prefix + "/esc0"] = stats(np.zeros(int(esc.sum()), np.int64), x[esc], k, space=1.0)
        out[prefix + "/escN"] = stats(v["N"][esc], x[esc], k, space=float(b))
        out[prefix + "/escW"] = stats(v["W"][esc], x[esc], k, space=float(b))

    ranked("rank4", ["W", "N", "NE", "NW"], [])
    ranked("rank4x", ["W", "N", "NE", "NW"], [v["WW"] == v["W"], v["NN"] == v["N"]])
    ranked("rankrow", ["N", "NW", "NE", "NN"], [])
    ranked("rankrowx", ["N", "NW", "NE", "NN"], [v["NNW"] == v["NW"], v["NNE"] == v["NE"]])

    # runrow: flag f = (x == W) given the row-above pattern; then rankrow on the f == 0 pixels
    rowvals = [v[n] for n in ["N", "NW", "NE", "NN"]]
    rpat = pattern(rowvals)
    f = (x == v["W"]).astype(np.int64)
    out["runrow/flag"] = stats(rpat, f, 2, space=64.0)
    nf = f == 0
    r, _ = rank(x[nf], [a[nf] for a in rowvals])
    out["runrow/rank"] = stats(rpat[nf], r, rank_alphabet, space=64.0)
    esc = r == _distinct([a[nf] for a in rowvals])
    xs = x[nf][esc]
    out["runrow/esc0"] = stats(np.zeros(len(xs), np.int64), xs, k, space=1.0)
    out["runrow/escN"] = stats(v["N"][nf][esc], xs, k, space=float(b))
    return out


def _distinct(vals: list[np.ndarray]) -> np.ndarray:
    n = len(vals[0])
    d = np.zeros(n, np.int64)
    for j, v in enumerate(vals):
        t = np.ones(n, bool)
        for i in range(j):
            t &= v != vals[i]
        d += t
    return d


COMPOSITE = {
    "rank4+esc0": ["rank4/rank", "rank4/esc0"],
    "rank4+escN": ["rank4/rank", "rank4/escN"],
    "rank4+escW": ["rank4/rank", "rank4/escW"],
    "rank4x+escN": ["rank4x/rank", "rank4x/escN"],
    "rank4x+escW": ["rank4x/rank", "rank4x/escW"],
    "rankrow+esc0": ["rankrow/rank", "rankrow/esc0"],
    "rankrow+escN": ["rankrow/rank", "rankrow/escN"],
    "rankrowx+escN": ["rankrowx/rank", "rankrowx/escN"],
    "runrow+escN": ["runrow/flag", "runrow/rank", "runrow/escN"],
}
SINGLE = ["none", "W", "N", "WN", "WNNW", "WNNWNE", "row3", "row4"]


def summarise(k: int, rows: list[dict]) -> list[str]:
    """Mean bpp over images: H, best fixed-alpha adaptive (alpha chosen per part, same for all images), static."""
    lines = []
    parts = rows[0]["parts"].keys()
    npx = np.array([r["pixels"] for r in rows], np.float64)

    def mean_bpp(vals: list[float]) -> float:
        return float(np.mean(np.array(vals) / npx))

    best_alpha = {}
    for p in parts:
        best_alpha[p] = min(ALPHAS, key=lambda a: mean_bpp([r["parts"][p]["adaptive"][str(a)] for r in rows]))

    def scheme_vals(members: list[str]) -> tuple[float, float, float, float, str]:
        h = mean_bpp([sum(r["parts"][m]["H"] for m in members) for r in rows])
        ad = mean_bpp([sum(r["parts"][m]["adaptive"][str(best_alpha[m])] for m in members) for r in rows])
        st = mean_bpp([sum(r["parts"][m]["static"] for m in members) for r in rows])
        tb = mean_bpp([sum(r["parts"][m]["static_table"] for m in members) for r in rows])
        al = "/".join(f"1/{round(1 / best_alpha[m])}" if best_alpha[m] < 1 else "1" for m in members)
        return h, ad, st, tb, al

    lines.append(f"K={k}: mean bits per pixel over {len(rows)} Kodak images")
    lines.append(f"{'scheme':16s} {'H':>7s} {'adapt':>7s} {'alpha':>12s} {'static':>7s} {'(table)':>8s}")
    for name in SINGLE:
        h, ad, st, tb, al = scheme_vals([name])
        lines.append(f"{name:16s} {h:7.4f} {ad:7.4f} {al:>12s} {st:7.4f} {tb:8.4f}")
    for name, members in COMPOSITE.items():
        h, ad, st, tb, al = scheme_vals(members)
        lines.append(f"{name:16s} {h:7.4f} {ad:7.4f} {al:>12s} {st:7.4f} {tb:8.4f}")
    esc = float(np.mean([r["parts"]["rank4/esc0"]["n"] / r["pixels"] for r in rows]))
    escr = float(np.mean([r["parts"]["rankrow/esc0"]["n"] / r["pixels"] for r in rows]))
    lines.append(f"escape rate: rank4 {esc:.4f}, rankrow {escr:.4f} of pixels")
    return lines


def main() -> None:
    ks = [int(a) for a in sys.argv[1:]] or [2, 8, 16, 64, 256]
    for k in ks:
        t0 = time.time()
        rows = []
        for name, _pal, lab in kodak(k):
            parts = schemes(lab, k)
            for p in parts.values():
                p["adaptive"] = {str(a): vv for a, vv in p["adaptive"].items()}
            rows.append({"image": name, "pixels": int(lab.size), "used": int(lab.max()) + 1, "parts": parts})
        with open(f"/work/notes/out/entropy_K{k}.json", "w") as fh:
            json.dump(rows, fh)
        print("\n".join(summarise(k, rows)))
        print(f"({time.time() - t0:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main()
