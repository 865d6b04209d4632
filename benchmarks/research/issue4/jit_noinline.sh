#!/bin/sh
# Cold-compile and throughput of nbhybrid without inline="always" (helpers left to LLVM's inliner).
# Usage: sh /work/notes/scripts/jit_noinline.sh
D=$(mktemp -d)
cd /work/notes/scripts
NUMBA_CACHE_DIR=$D /work/venv/bin/python -c "
import time, sys
t0 = time.perf_counter()
import numpy as np, nbhybrid_noinline as nh
from common import PHOTO, labels_for
lab = (np.arange(64 * 64) % 7 // 3).astype(np.uint8).reshape(64, 64)
pal = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
t1 = time.perf_counter(); nh.encode(lab, 3, pal, 0, 0, 6); t2 = time.perf_counter()
print(f'cold: import {t1 - t0:.2f} s, first call (compile) {t2 - t1:.2f} s')
pal, lab = labels_for(PHOTO, 8)
d = nh.encode(lab, 8, pal, 2, 0, 6)
t3 = time.perf_counter(); d = nh.encode(lab, 8, pal, 2, 0, 6); t4 = time.perf_counter()
out, ok = nh.decode(d, *lab.shape, 8, pal, 2, 0, 6); t5 = time.perf_counter()
assert ok and (out == lab).all()
print(f'photo K=8: enc {lab.size / 1e6 / (t4 - t3):.2f} MP/s, dec {lab.size / 1e6 / (t5 - t4):.2f} MP/s, {8 * len(d) / lab.size:.4f} bpp')
"
rm -rf $D
