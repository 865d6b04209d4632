"""Whole-file decode speed: ``kmq.decode`` against Pillow reading the same labels as a palette PNG (issue 15).

Usage (from the repository root):
    python benchmarks/bench_decode_speed.py [--image PATH] [-k K [K ...]] [--coding C [C ...]]
                                            [--repeat R] [--quiet S] [--corpus DIR]

The image (default: the 12 MP photo in ``corpus/photos``) is encoded, untimed, by the command
``kmq encode IMAGE -k K --coding C -o FILE`` for each K (default 8 and 256) and coding (default ctx1,
the fast coding the target is about, and mix, the default coding). The same palette and labels are
written as a palette PNG with Pillow's defaults (``Indexed.from_bytes(data).to_pillow().save(buf, "PNG")``).
Then, in each of ``--repeat`` rounds (default 7), one run of each of these, in memory, in this order:

- ``kmq.decode``: ``kmq.decode(data)``, the file to an (H, W, 3) RGB array, checksum included;
- ``kmq labels``: ``kmq.Indexed.from_bytes(data)``, the file to its palette and labels only;
- ``Pillow PNG->RGB``: ``np.asarray(Image.open(png).convert("RGB"))``, the same output as kmq.decode;
- ``Pillow PNG->P``: ``np.asarray(Image.open(png))``, the PNG's labels only.

Each figure is the median of the rounds; ``ratio`` is Pillow PNG->RGB's median over kmq.decode's, from
the same rounds (issue 15's target: at least 2 with coding 1). The outputs are checked to be equal
before timing. ``other`` is the CPU-seconds per second other processes used while a row was measured
(0 = a quiet machine; kmq.decode runs on every core, Pillow on one, so a busy machine costs kmq more);
``--quiet S`` waits up to S seconds before each row for the machine to go idle. When there is no image
the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import io
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import kmq
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, LoadWatch, find_photo, machine_lines, wait_quiet

STEPS = ("kmq.decode", "kmq labels", "Pillow PNG->RGB", "Pillow PNG->P")


def make_file(image: Path, k: int, coding: str, folder: Path) -> bytes:
    """The kmq file the command writes for the image (untimed)."""
    out = folder / f"k{k}-{coding}.kmq"
    command = [sys.executable, "-m", "kmq", "encode", str(image), "-k", str(k), "--coding", coding, "-o", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    return out.read_bytes()


def steps_for(data: bytes, png: bytes) -> dict[str, Callable[[], object]]:
    return {
        "kmq.decode": lambda: kmq.decode(data),
        "kmq labels": lambda: kmq.Indexed.from_bytes(data),
        "Pillow PNG->RGB": lambda: np.asarray(Image.open(io.BytesIO(png)).convert("RGB")),
        "Pillow PNG->P": lambda: np.asarray(Image.open(io.BytesIO(png))),
    }


def measure(data: bytes, repeat: int) -> tuple[dict[str, float], str, float | None]:
    """Medians of each step over ``repeat`` interleaved rounds, the file's coding, and the load meanwhile."""
    indexed = kmq.Indexed.from_bytes(data)
    buffer = io.BytesIO()
    indexed.to_pillow().save(buffer, "PNG")
    png = buffer.getvalue()
    steps = steps_for(data, png)
    pixels = steps["kmq.decode"]()
    assert np.array_equal(pixels, steps["Pillow PNG->RGB"]()), "kmq.decode differs from Pillow's RGB"
    assert np.array_equal(indexed.labels, steps["Pillow PNG->P"]()), "the PNG's labels differ"
    del pixels
    times: dict[str, list[float]] = {name: [] for name in STEPS}
    watch = LoadWatch()
    for _ in range(repeat):
        for name in STEPS:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    coding = kmq.container.Header.unpack(data).coding
    return {name: statistics.median(t) for name, t in times.items()}, kmq.container.CODINGS[coding], watch.other_share()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="image to encode (default: the 12 MP photo of the corpus)")
    parser.add_argument("-k", type=int, nargs="+", default=[8, 256], help="palette sizes (default: 8 256)")
    parser.add_argument("--coding", nargs="+", default=["ctx1", "mix"], help="payload codings (default: ctx1 mix)")
    parser.add_argument("--repeat", type=int, default=7, help="rounds; each figure is their median (default: 7)")
    parser.add_argument("--quiet", type=float, default=0, help="wait up to S s for an idle machine before each row")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder (default: %(default)s)")
    args = parser.parse_args(argv)
    image = args.image if args.image is not None else find_photo(args.corpus)
    if image is None:
        print(f"no photo in {args.corpus / 'photos'} and no --image: nothing to measure")
        return 0
    print("command: python " + shlex.join(sys.argv))
    print("\n".join(machine_lines()))
    print(f"ctx1 coder: {kmq.ctx1.BACKEND}, mix coder: {kmq.mix.BACKEND}; threads: {kmq.threads.available()}")
    with Image.open(image) as im:
        print(f"image: {image.name}, {im.width}x{im.height}; {args.repeat} rounds, medians in ms")
    whole = LoadWatch()
    print("| K | coding | file bytes | kmq.decode | kmq labels | Pillow PNG->RGB | Pillow PNG->P | ratio | other |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for k in args.k:
            for coding in args.coding:
                data = make_file(image, k, coding, Path(folder))
                if args.quiet > 0 and not wait_quiet(args.quiet):
                    print(f"(the machine did not go quiet within {args.quiet:g} s: measuring anyway)")
                medians, written, other = measure(data, args.repeat)
                cells = " | ".join(f"{medians[name] * 1000:.1f}" for name in STEPS)
                ratio = medians["Pillow PNG->RGB"] / medians["kmq.decode"]
                share = "?" if other is None else f"{other:.2f}"
                label = coding if written == coding else f"{coding} (wrote {written})"
                print(f"| {k} | {label} | {len(data):,} | {cells} | {ratio:.2f} | {share} |", flush=True)
    print(whole.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
