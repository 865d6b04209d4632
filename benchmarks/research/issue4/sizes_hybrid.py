"""Issue 4: payload sizes of the nbhybrid.py ("ctx1") variants on the 24 Kodak images, round-tripped.

Usage: /work/venv/bin/python /work/notes/scripts/sizes_hybrid.py VARIANT [VARIANT ...] [--k K ...]
VARIANT = vc,esc,rmax   e.g. 1,0,7  (vc: 0 none / 1 W / 2 W,N value context; esc: 0 tree|W / 1 distance-rank
          Exp-Golomb; rmax > 0: counting adaptation capped at rate rmax; rmax < 0: fixed shift -rmax)
Prints mean payload bits per pixel per K and writes /work/notes/out/hybrid_<variant>.json.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
import nbhybrid as nh  # noqa: E402
from common import kodak  # noqa: E402


def main() -> None:
    args = sys.argv[1:]
    ks = [2, 4, 8, 16, 32, 64, 128, 256]
    if "--k" in args:
        i = args.index("--k")
        ks = [int(a) for a in args[i + 1 :]]
        args = args[:i]
    for var in args:
        vc, esc, rmax = (int(a) for a in var.split(","))
        res = {}
        for k in ks:
            if vc == 2 and k > 32:
                continue
            rows = []
            for name, pal, lab in kodak(k):
                kk = pal.shape[0]
                t0 = time.perf_counter()
                data = nh.encode(lab, kk, pal, vc, esc, rmax)
                t1 = time.perf_counter()
                dec, ok = nh.decode(data, *lab.shape, kk, pal, vc, esc, rmax)
                t2 = time.perf_counter()
                assert ok and np.array_equal(dec, lab), (var, k, name)
                rows.append({"image": name, "bytes": len(data), "pixels": int(lab.size), "enc": t1 - t0, "dec": t2 - t1})
            res[k] = rows
            bpp = np.mean([8 * r["bytes"] / r["pixels"] for r in rows])
            print(f"ctx1 vc={vc} esc={esc} rmax={rmax:2d}  K={k:3d}  payload {bpp:.4f} bpp  "
                  f"enc {np.median([r['enc'] for r in rows]) * 1e3:6.1f} ms  dec {np.median([r['dec'] for r in rows]) * 1e3:6.1f} ms",
                  flush=True)
        with open(f"/work/notes/out/hybrid_{vc}_{esc}_{rmax}.json", "w") as fh:
            json.dump(res, fh)


if __name__ == "__main__":
    main()
