"""Issue 4: the candidate coding "ctx1" (vc=2 for K<=16, vc=0 above; esc tree|W; counting rate cap 6)
against the baselines, per K, on the 24 Kodak images.

Usage: /work/venv/bin/python /work/notes/scripts/summary.py
Reads /work/notes/out/baselines.json, hybrid_2_0_6.json, hybrid_0_0_6.json (from baselines.py and
sizes_hybrid.py). ctx1 file = payload + 24 bytes (header, CRC) + 3*K palette bytes (palette entries used).
"""
import json

import numpy as np

base = json.load(open("/work/notes/out/baselines.json"))
h2 = json.load(open("/work/notes/out/hybrid_2_0_6.json"))
h0 = json.load(open("/work/notes/out/hybrid_0_0_6.json"))
print(f"{'K':>4s} {'raw':>7s} {'png8':>7s} {'gif':>7s} {'webp':>7s} {'pngq':>7s} {'ctx1':>7s} {'/webp':>6s} {'/pngq':>6s}"
      f" {'worst img /webp':>16s} {'worst img /pngq':>16s}")
for k in (2, 4, 8, 16, 32, 64, 128, 256):
    rows = {r["image"]: r for r in base if r["k"] == k}
    hy = (h2 if k <= 16 else h0)[str(k)]
    ctx = {r["image"]: r["bytes"] + 24 + 3 * rows[r["image"]]["palette"] for r in hy}
    names = sorted(rows)
    px = np.array([rows[n]["pixels"] for n in names], float)
    m = {f: np.mean([8 * rows[n][f] for n in names] / px) for f in ("raw", "png8", "gif", "webp", "pngq")}
    c = np.mean([8 * ctx[n] for n in names] / px)
    rw = [ctx[n] / rows[n]["webp"] for n in names]
    rq = [ctx[n] / rows[n]["pngq"] for n in names]
    iw, iq = int(np.argmax(rw)), int(np.argmax(rq))
    print(f"{k:4d} {m['raw']:7.4f} {m['png8']:7.4f} {m['gif']:7.4f} {m['webp']:7.4f} {m['pngq']:7.4f} {c:7.4f} "
          f"{c / m['webp']:6.3f} {c / m['pngq']:6.3f} {rw[iw]:6.3f} {names[iw][:7]:>9s} {rq[iq]:6.3f} {names[iq][:7]:>9s}")
