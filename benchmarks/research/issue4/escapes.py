"""Issue 4: how to code the escaped labels (x not among the distinct values of W, N, NE, NW).

Usage: /work/venv/bin/python /work/notes/scripts/escapes.py [K ...]
For the rank4 scheme's escaped pixels, bits per *image pixel* (mean over the 24 Kodak images) of:
  x|-      : x, order-0 (alphabet K)
  x|W      : x given W's value (K+1 contexts)
  x|N      : x given N's value
  jW|-     : j = rank of x in the palette sorted by squared RGB distance to palette[W] (ties by index),
             neighbour values W, N, NE, NW removed from the list (the decoder knows them), order-0
  jW|m     : the same j, context = number of distinct neighbours (1..4)
  jWN|-    : as jW but distances to the mean colour of W and N
Each as empirical H and adaptive (best Dirichlet alpha) code length.
"""

from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
from common import kodak  # noqa: E402
from ctxstats import ALPHAS, stats  # noqa: E402
from entropy import planes, rank  # noqa: E402


def order_tables(pal: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """rankpos[i, x] = position of palette entry x in the list sorted by distance to ref[i]."""
    d = ((pal[None, :, :].astype(np.int64) - ref[:, None, :]) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(len(pal)), d.shape), d), axis=-1)
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(len(pal))[None, :].repeat(len(ref), 0), axis=-1)
    return pos


def main() -> None:
    ks = [int(a) for a in sys.argv[1:]] or [8, 16, 64, 256]
    for k in ks:
        acc: dict[str, list] = {}
        npx = []
        for _name, pal, lab in kodak(k):
            kk = pal.shape[0]
            v = planes(lab, kk)
            vals = [v["W"], v["N"], v["NE"], v["NW"]]
            r, d = rank(v["x"], vals)
            esc = r == d
            x = v["x"][esc]
            nb = [a[esc] for a in vals]
            m = d[esc]
            ext = np.vstack([pal.astype(np.int64), np.full((1, pal.shape[1]), 10**6)])  # sentinel colour far away
            pos_w = order_tables(pal, ext[:, :3].astype(np.int64))  # (K+1, K)
            wv = nb[0]
            j = pos_w[wv, x]
            # remove neighbour values that sort before x
            for a in nb:
                valid = a < kk
                before = valid & (pos_w[wv, np.minimum(a, kk - 1)] < j) & (a != x)
                # count each distinct neighbour once
                dup = np.zeros(len(a), bool)
                for b in nb:
                    if b is a:
                        break
                    dup |= b == a
                j = j - (before & ~dup)
            meanc = (ext[np.minimum(nb[0], kk)] + ext[np.minimum(nb[1], kk)]) // 2
            # mean colour per (W, N) pair: compute positions directly per pixel (small escape sets)
            dd = ((pal[None, :, :].astype(np.int64) - meanc[:, None, :3]) ** 2).sum(-1)
            jj = np.argsort(np.argsort(dd, axis=1, kind="stable"), axis=1, kind="stable")[np.arange(len(x)), x]
            z = np.zeros(len(x), np.int64)
            parts = {
                "x|-": stats(z, x, kk, 1.0),
                "x|W": stats(wv, x, kk, float(kk + 1)),
                "x|N": stats(nb[1], x, kk, float(kk + 1)),
                "jW|-": stats(z, j, kk, 1.0),
                "jW|m": stats(m, j, kk, 5.0),
                "jWN|-": stats(z, jj, kk, 1.0),
            }
            for name, s in parts.items():
                acc.setdefault(name, []).append(s)
            npx.append(lab.size)
        npx = np.array(npx, np.float64)
        print(f"K={k}: escaped pixels coded, bits per image pixel (mean of 24 Kodak)")
        print(f"{'model':8s} {'H':>7s} {'adapt':>7s} {'alpha':>6s}")
        for name, lst in acc.items():
            h = np.mean([s["H"] for s in lst] / npx)
            best = min(ALPHAS, key=lambda a: np.mean([s["adaptive"][a] for s in lst] / npx))
            ad = np.mean([s["adaptive"][best] for s in lst] / npx)
            print(f"{name:8s} {h:7.4f} {ad:7.4f} {('1/' + str(round(1 / best))) if best < 1 else '1':>6s}")
        print(flush=True)


if __name__ == "__main__":
    main()
