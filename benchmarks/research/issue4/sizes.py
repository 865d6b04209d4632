"""Issue 4: real coded sizes of the candidate codings on the 24 Kodak images (every stream round-tripped).

Usage: /work/venv/bin/python /work/notes/scripts/sizes.py ROUTE [K ...]
  ROUTE = nb-rank0 | nb-rankW | nb-rankN | nb-tree | cs-runrow | cs-runrowN | cs-rank4x | lanes-runrow
Prints per K the mean payload bits per pixel (payload = coded stream + stored model + counts), and writes
/work/notes/out/sizes_<ROUTE>.json. The file would add 24 + K*3 bytes (header, palette, CRC).

  nb-*     numba adaptive binary range coder (nbcoder.py): rank scheme with escape tree context none / W / N,
           or the full-context binary tree (K <= 16)
  cs-*     context-sorted static rANS, pure numpy (ctxsort.py); model cost = table_bits + 24 bits per used group
  lanes-*  one rANS lane per column (lanes.py), static tables
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
from common import kodak  # noqa: E402


def run(route: str, lab: np.ndarray, k: int) -> tuple[int, float, float]:
    """(payload bytes, encode s, decode s); asserts the round trip."""
    h, w = lab.shape
    if route.startswith("nb-"):
        import nbcoder as nb

        out = nb.out_buffer(lab, k)
        t0 = time.perf_counter()
        if route == "nb-tree":
            n = nb.encode_tree(lab, k, out)
        else:
            esc = {"nb-rank0": 0, "nb-rankW": 1, "nb-rankN": 2}[route]
            n = nb.encode_rank(lab, k, esc, out)
        t1 = time.perf_counter()
        if n > len(out):
            return n, t1 - t0, 0.0  # would fall back to raw
        data = out[:n].copy()
        if route == "nb-tree":
            dec, ok = nb.decode_tree(data, h, w, k)
        else:
            dec, ok = nb.decode_rank(data, h, w, k, esc)
        t2 = time.perf_counter()
        assert ok and np.array_equal(dec, lab), route
        return n, t1 - t0, t2 - t1
    if route.startswith("cs-"):
        import ctxsort as cs

        t0 = time.perf_counter()
        if route == "cs-rank4x":
            data, side = cs.encode_rank4x(lab, k)
        else:
            esc = "N" if route == "cs-runrowN" else "0"
            data, side = cs.encode_runrow(lab, k, esc)
        t1 = time.perf_counter()
        if route == "cs-rank4x":
            dec = cs.decode_rank4x(data, side, h, w, k)
        else:
            dec = cs.decode_runrow(data, side, h, w, k, esc)
        t2 = time.perf_counter()
        assert np.array_equal(dec, lab), route
        model = (cs.table_bits(side["freq"]) + 7) // 8 + 3 * int(np.count_nonzero(side["counts"]))
        return len(data) + model, t1 - t0, t2 - t1
    if route == "lanes-runrow":
        import lanes as ln

        t0 = time.perf_counter()
        payload, tabs, _ = ln.encode(lab, k, "runrow", 1)
        t1 = time.perf_counter()
        dec = ln.decode(payload, tabs, h, w, k, "runrow", 1)
        t2 = time.perf_counter()
        assert np.array_equal(dec, lab)
        return len(payload) + ln.table_bytes(tabs, k), t1 - t0, t2 - t1
    raise SystemExit(f"unknown route {route}")


def main() -> None:
    route = sys.argv[1]
    ks = [int(a) for a in sys.argv[2:]] or [2, 4, 8, 16, 32, 64, 128, 256]
    res = {}
    for k in ks:
        if route == "nb-tree" and k > 16:
            continue
        rows = []
        for name, _pal, lab in kodak(k):
            n, te, td = run(route, lab, k)
            rows.append({"image": name, "bytes": n, "enc": te, "dec": td, "pixels": int(lab.size)})
        res[k] = rows
        bpp = np.mean([8 * r["bytes"] / r["pixels"] for r in rows])
        te = np.median([r["enc"] for r in rows])
        td = np.median([r["dec"] for r in rows])
        print(f"{route:14s} K={k:3d}  payload {bpp:.4f} bpp   enc {te * 1e3:7.1f} ms  dec {td * 1e3:7.1f} ms (median per image)", flush=True)
    with open(f"/work/notes/out/sizes_{route}.json", "w") as fh:
        json.dump(res, fh)


if __name__ == "__main__":
    main()
