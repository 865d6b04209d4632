"""Coder stage alone for the numpy lane rANS (ctxsort.rans_encode / rans_decode) on the photo's cs-runrow symbols.

Usage: /work/venv/bin/python /work/notes/scripts/stage_numpy_rans.py [K ...]
"""
import sys
import time

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
import ctxsort as cs  # noqa: E402
from common import PHOTO, labels_for  # noqa: E402

for k in [int(a) for a in sys.argv[1:]] or [8, 256]:
    _pal, lab = labels_for(PHOTO, k)
    data, side = cs.encode_runrow(lab, k, "0")
    freq, counts, lanes = side["freq"], side["counts"], side["lanes"]
    grp = np.repeat(np.arange(len(counts)), counts)
    syms = cs.rans_decode(data, grp, freq, lanes)
    te = min(_t for _t in [(lambda t0: (cs.rans_encode(syms, grp, freq, lanes), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3)])
    td = min(_t for _t in [(lambda t0: (cs.rans_decode(data, grp, freq, lanes), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3)])
    mp = lab.size / 1e6
    print(f"numpy lane rANS K={k:3d}: {len(syms)} symbols, {lanes} lanes; coder stage enc {te:.3f} s ({mp / te:.1f} MP/s), "
          f"dec {td:.3f} s ({mp / td:.1f} MP/s); stream {8 * len(data) / lab.size:.4f} bpp")
