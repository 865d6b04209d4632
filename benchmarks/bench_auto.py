"""Time ``-k auto --min-psnr DB`` against plain encodes at fixed K (issue 11, E4).

Usage (from the repository root):
    python benchmarks/bench_auto.py [--corpus DIR] [--min-psnr 32] [-k 8 64] [--repeat 3]

For each photo in ``corpus/photos``: ``kmq.quantize(pixels, K).to_bytes()`` (what ``kmq.encode``
does) for each fixed K and the same with ``"auto", min_psnr=DB``, each the median of ``--repeat`` runs, as wall
seconds and CPU seconds of this process (CPU time is the fairer figure on a shared machine);
``auto/K`` is auto's CPU time over the fixed K's; the chosen K and its PSNR are printed too.
The corpus lives outside the repository; when it is missing the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import kmq
import numpy as np
from PIL import Image

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def timed(run, repeat: int) -> tuple[float, float, object]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--min-psnr", type=float, default=32.0)
    parser.add_argument("-k", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    photos = sorted((args.corpus / "photos").glob("*.jpg"))
    if not photos:
        print(f"no photos under {args.corpus / 'photos'}: nothing to measure")
        return 0
    print(f"{'photo':<40} {'MP':>5} {'run':>10} {'wall s':>7} {'cpu s':>7} {'K':>4} {'PSNR':>6} {'auto/K':>7}")
    for path in photos:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        mp = pixels.shape[0] * pixels.shape[1] / 1e6
        fixed = {}
        for k in args.k:
            wall, cpu, data = timed(lambda k=k, pixels=pixels: kmq.quantize(pixels, k).to_bytes(), args.repeat)
            fixed[k] = cpu
            psnr = kmq.metrics.psnr(pixels, kmq.decode(data))
            print(f"{path.name[:40]:<40} {mp:5.1f} {'-k ' + str(k):>10} {wall:7.2f} {cpu:7.2f} {k:4d} {psnr:6.2f}")
        wall, cpu, data = timed(
            lambda pixels=pixels: kmq.quantize(pixels, "auto", min_psnr=args.min_psnr).to_bytes(), args.repeat
        )
        decoded = kmq.decode(data)
        k = kmq.container.Header.unpack(data).k
        ratios = " ".join(f"{cpu / fixed[f]:.2f}x(k{f})" for f in args.k)
        psnr = kmq.metrics.psnr(pixels, decoded)
        run = f"auto {args.min_psnr:g}"
        print(f"{path.name[:40]:<40} {mp:5.1f} {run:>10} {wall:7.2f} {cpu:7.2f} {k:4d} {psnr:6.2f} {ratios}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
