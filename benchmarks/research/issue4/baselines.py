"""Issue 4: baseline file sizes on the 24 Kodak images, K in {2, 4, ..., 256}.

Usage: /work/venv/bin/python /work/notes/scripts/baselines.py [K ...]
Writes /work/notes/out/baselines.json and prints mean bits per pixel per K:
  raw   : kmq file with coding 0 (24 + K*C + ceil(W*H*bits/8) bytes)
  png8  : palette + labels as a palette PNG by Pillow, optimize=True (as benchmarks/bench_quantize.py)
  gif   : the same image saved as GIF by Pillow
  webp  : `cwebp -lossless -z 9` on palette[labels] (RGB PNG input), output size
  pngq  : `pngquant --nofs --force --output OUT K original.png`, pngquant's own file (its own quantization)
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, "/work/notes/scripts")
from common import KODAK, KS_ALL, labels_for  # noqa: E402


def palette_image(pal: np.ndarray, lab: np.ndarray) -> Image.Image:
    used = int(lab.max()) + 1
    im = Image.frombytes("P", (lab.shape[1], lab.shape[0]), np.ascontiguousarray(lab).tobytes())
    im.putpalette(pal[:used].tobytes(), rawmode="RGB")
    return im


def one(args: tuple[str, int]) -> dict:
    path, k = Path(args[0]), args[1]
    pal, lab = labels_for(path, k)
    h, w = lab.shape
    bits = (k - 1).bit_length() if k > 1 else 0
    kk = pal.shape[0]
    bits_used = (kk - 1).bit_length() if kk > 1 else 0
    raw = 24 + kk * pal.shape[1] + (w * h * bits_used + 7) // 8
    im = palette_image(pal, lab)
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    png8 = len(buf.getvalue())
    buf = io.BytesIO()
    im.save(buf, "GIF")
    gif = len(buf.getvalue())
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "dec.png"
        Image.fromarray(pal[lab]).save(src)  # the decoded RGB image (lossless PNG input for cwebp)
        out = Path(td) / "dec.webp"
        subprocess.run(["cwebp", "-quiet", "-lossless", "-z", "9", str(src), "-o", str(out)], check=True)
        webp = out.stat().st_size
        pq = Path(td) / "pq.png"
        subprocess.run(["pngquant", "--nofs", "--force", "--output", str(pq), str(k), str(path)], check=True)
        pngq = pq.stat().st_size
    return {"image": path.name, "k": k, "pixels": w * h, "palette": kk, "bits": bits, "raw": raw,
            "png8": png8, "gif": gif, "webp": webp, "pngq": pngq}


def main() -> None:
    ks = [int(a) for a in sys.argv[1:]] or list(KS_ALL)
    jobs = [(str(p), k) for k in ks for p in KODAK]
    with ProcessPoolExecutor(2) as ex:
        rows = list(ex.map(one, jobs))
    Path("/work/notes/out/baselines.json").write_text(json.dumps(rows))
    print(f"{'K':>4s} {'raw':>7s} {'png8':>7s} {'gif':>7s} {'webp':>7s} {'pngq':>7s}   (mean file bits per pixel, 24 Kodak)")
    for k in ks:
        r = [x for x in rows if x["k"] == k]
        m = {f: np.mean([8 * x[f] / x["pixels"] for x in r]) for f in ("raw", "png8", "gif", "webp", "pngq")}
        print(f"{k:4d} {m['raw']:7.4f} {m['png8']:7.4f} {m['gif']:7.4f} {m['webp']:7.4f} {m['pngq']:7.4f}")


if __name__ == "__main__":
    main()
