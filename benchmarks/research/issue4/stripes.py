"""Cost of coding independent horizontal stripes (fresh model per stripe, rows above a stripe absent),
which would let a decoder run stripes on separate cores. ctx1 final variant (vc=2 if K<=16 else 0, rmax 6).

Usage: /work/venv/bin/python /work/notes/scripts/stripes.py
"""
import sys

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
import nbhybrid as nh  # noqa: E402
from common import PHOTO, kodak, labels_for  # noqa: E402


def coded(lab, pal, k, stripes):
    vc = 2 if k <= 16 else 0
    edges = np.linspace(0, lab.shape[0], stripes + 1).astype(int)
    return sum(len(nh.encode(np.ascontiguousarray(lab[a:b]), pal.shape[0], pal, vc, 0, 6)) for a, b in zip(edges[:-1], edges[1:]))


for k in (8, 256):
    pal, lab = labels_for(PHOTO, k)
    base = coded(lab, pal, k, 1)
    print(f"photo K={k}: 1 stripe {8 * base / lab.size:.4f} bpp; " + "; ".join(
        f"{s} stripes +{100 * (coded(lab, pal, k, s) / base - 1):.2f}%" for s in (2, 4, 8)))
    tot = {1: 0, 2: 0, 4: 0}
    for _n, pal, lab in kodak(k):
        for s in tot:
            tot[s] += coded(lab, pal, k, s)
    print(f"Kodak K={k}: 1 stripe {8 * tot[1] / (24 * 393216):.4f} bpp; " + "; ".join(
        f"{s} stripes +{100 * (tot[s] / tot[1] - 1):.2f}%" for s in (2, 4)))
