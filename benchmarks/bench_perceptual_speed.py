"""Encode time of the perceptual default and of dithering against exact-MSE clustering (issue 13).

Usage (from the repository root):
    python benchmarks/bench_perceptual_speed.py [--image PATH] [-k K [K ...]] [--repeat N]

The image (default: the 12 MP photo of ``corpus/photos``) is decoded once; then, for each K,
``kmq.encode(pixels, K, ...)`` (quantize and the default coding, in memory) is timed ``--repeat``
times for each variant, interleaved, and the median is reported with its ratio to ``space="rgb"``:
the exact-MSE clustering that was kmq's default up to issue 12 and gives the same bytes as that
version's default (checked when the issue was built). Today's code is a little faster than that
version for ``rgb`` too (the nearest-centre search is now compiled), so the ratios are, if
anything, harsher than against the old release. Both cores are used, as by default.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import kmq
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, machine_lines

VARIANTS: dict[str, dict[str, object]] = {
    "rgb (exact MSE, the old default)": {"space": "rgb"},
    "perceptual (the default)": {},
    "perceptual + --dither": {"dither": True},
    "perceptual + --dither ordered": {"dither": "ordered"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path)
    parser.add_argument("-k", nargs="+", type=int, default=[8, 256])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print("command: python " + shlex.join(["benchmarks/bench_perceptual_speed.py", *(argv or sys.argv[1:])]))
    for line in machine_lines():
        print(line)
    path = args.image or next(
        iter(sorted((DEFAULT_CORPUS / "photos").glob("*"), key=lambda p: -p.stat().st_size)), None
    )
    if path is None or not path.exists():
        print("no image (corpus/photos is missing): nothing measured")
        return 0
    with Image.open(path) as im:
        pixels = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    print(f"image: {path.name}, {pixels.shape[1]}x{pixels.shape[0]} = {pixels.shape[0] * pixels.shape[1] / 1e6:.1f} MP")
    print("\n| K | variant | median s | ratio to rgb | file bytes |\n|---|---|---|---|---|")
    for k in args.k:
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        sizes: dict[str, int] = {}
        kmq.encode(pixels[:64, :64], k)  # warm the imports and the extension
        for _ in range(args.repeat):
            for name, options in VARIANTS.items():
                started = time.perf_counter()
                data = kmq.encode(pixels, k, **options)  # type: ignore[arg-type]
                times[name].append(time.perf_counter() - started)
                sizes[name] = len(data)
        base = statistics.median(times[next(iter(VARIANTS))])
        for name in VARIANTS:
            median = statistics.median(times[name])
            print(f"| {k} | {name} | {median:.2f} | {median / base:.2f} | {sizes[name]:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
