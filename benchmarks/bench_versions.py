"""CPU time of ``kmq.quantize`` in this kmq against another build of kmq, in the same run.

Usage (from the repository root):
    python benchmarks/bench_versions.py --other DIR [--image PATH] [-k 8 64 256] [--repeat 3]

``DIR`` holds another kmq as an importable package (``DIR/kmq/__init__.py``, with its compiled
``_ctx1`` beside it), e.g. an older commit's ``codec/`` copied to ``DIR/kmq`` (and ``cli/`` to
``DIR/kmq/cli``) and built in place. Each build runs in its own interpreter, one after the other, and
reports the median over ``--repeat`` runs of ``time.process_time()`` around ``kmq.quantize(pixels, K)``:
CPU seconds of every thread, the fair figure on a shared machine and for builds that use BLAS threads.
The image defaults to the 12 MP photo of ``../shared/corpus/photos``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_IMAGE = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "photos" / "seondol-son-skcD9ONunJw-unsplash.jpg"
)

MEASURE = """
import statistics, sys, time
import numpy as np
from PIL import Image
import kmq
pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
for k in map(int, sys.argv[3].split(",")):
    times = []
    for _ in range(int(sys.argv[2])):
        start = time.process_time()
        kmq.quantize(pixels, k)
        times.append(time.process_time() - start)
    print(k, statistics.median(times))
"""


def _run(root: str | None, image: Path, ks: list[int], repeat: int) -> dict[int, float]:
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = root
    argv = [sys.executable, "-c", MEASURE, str(image), str(repeat), ",".join(map(str, ks))]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return {int(k): float(s) for k, s in (line.split() for line in out.splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", required=True, help="folder holding the other build as kmq/")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("-k", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.image.exists():
        print(f"{args.image} is missing (the corpus lives outside the repository)")
        return
    other = _run(args.other, args.image, args.k, args.repeat)
    this = _run(None, args.image, args.k, args.repeat)
    print(f"kmq.quantize of {args.image.name}, CPU seconds, median of {args.repeat}")
    print(f"{'K':>5} {'other':>8} {'this':>8} {'this/other':>11}")
    for k in args.k:
        print(f"{k:>5} {other[k]:>8.2f} {this[k]:>8.2f} {this[k] / other[k]:>11.2f}")


if __name__ == "__main__":
    main()
