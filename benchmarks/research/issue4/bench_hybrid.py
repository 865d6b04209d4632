"""Issue 4: throughput of the numba "ctx1" coder (nbhybrid.py) on the 12 MP photo, and its JIT costs.

Usage:
  /work/venv/bin/python /work/notes/scripts/bench_hybrid.py VARIANT [K ...] [--repeat N]
      encode/decode best-of-N seconds and MP/s (after one warm-up call), payload bpp, round trip checked
  /work/venv/bin/python /work/notes/scripts/bench_hybrid.py --jit
      cold start: a fresh process with an empty NUMBA_CACHE_DIR imports numba + nbhybrid and codes a 64x64
      plane (compiles); then a second fresh process with the now-filled cache does the same (loads)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, "/work/notes/scripts")

SNIPPET = r"""
import time, sys
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
sys.path.insert(0, '/work/notes/scripts')
import nbhybrid as nh
t3 = time.perf_counter()
lab = (np.arange(64 * 64) % 7 // 3).astype(np.uint8).reshape(64, 64)
pal = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
d = nh.encode(lab, 3, pal, 0, 0, 7)
t4 = time.perf_counter()
out, ok = nh.decode(d, 64, 64, 3, pal, 0, 0, 7)
t5 = time.perf_counter()
assert ok and (out == lab).all()
print(f"import numpy {t1 - t0:.2f} s, import numba {t2 - t1:.2f} s, import module {t3 - t2:.2f} s, "
      f"first encode call {t4 - t3:.2f} s, first decode call {t5 - t4:.2f} s")
"""


def jit() -> None:
    with tempfile.TemporaryDirectory() as td:
        env = dict(os.environ, NUMBA_CACHE_DIR=td)
        # nbhybrid is cache=True; numba would write the index next to the module (__pycache__) if it can:
        # NUMBA_CACHE_DIR forces a fresh, empty cache location for this measurement.
        for label in ("cold (empty cache)", "warm (cache filled)"):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
            print(f"{label:22s} whole process {time.perf_counter() - t0:.2f} s: {r.stdout.strip()}")


def main() -> None:
    args = sys.argv[1:]
    if args == ["--jit"]:
        jit()
        return
    repeat = 3
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i : i + 2]
    import nbhybrid as nh
    from common import PHOTO, labels_for

    vc, esc, rmax = (int(a) for a in args[0].split(","))
    ks = [int(a) for a in args[1:]] or [8, 256]
    for k in ks:
        pal, lab = labels_for(PHOTO, k)
        kk = pal.shape[0]
        mp = lab.size / 1e6
        data = nh.encode(lab, kk, pal, vc, esc, rmax)
        te = min(_time(lambda: nh.encode(lab, kk, pal, vc, esc, rmax)) for _ in range(repeat))
        td = min(_time(lambda: nh.decode(data, *lab.shape, kk, pal, vc, esc, rmax)) for _ in range(repeat))
        out, ok = nh.decode(data, *lab.shape, kk, pal, vc, esc, rmax)
        assert ok and np.array_equal(out, lab)
        print(f"ctx1 {args[0]:8s} K={k:3d} {mp:.2f} MP  enc {te:6.3f} s {mp / te:6.2f} MP/s  dec {td:6.3f} s "
              f"{mp / td:6.2f} MP/s  payload {8 * len(data) / lab.size:.4f} bpp", flush=True)


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
