"""Speed of payload coding 2 (mix) on the 12 MP photo, beside ctx1 and djxl, in one run (issue 12).

Usage (from the repository root):
    python benchmarks/bench_mix.py [-k K [K ...]] [--repeat R] [--corpus DIR] [--no-jxl]

The photo in ``corpus/photos`` is quantized at each K (untimed, ``kmq.quantize(image, K)``).
Then, each the median of ``--repeat`` runs:

- ``mix encode`` / ``mix decode``: :func:`kmq.mix.encode` / :func:`kmq.mix.decode` of the label
  plane with kmq's stripe count (6 stripes for this photo), on ``os.cpu_count()`` threads;
- ``mix ... 1 stripe``: one stripe, so one core;
- ``ctx1 encode`` / ``ctx1 decode``: the same for coding 1;
- ``djxl``: ``djxl`` decoding ``cjxl -d 0 -e 9`` of the same palette image (saved as PNG) to a
  PNG, timed as a whole process (the cjxl run is untimed).

Rates are megapixels per second; the sizes of the mix, ctx1 and JPEG XL payloads are printed
beside them, with what mix's stripes cost against one stripe. ``other`` is the CPU-seconds per
second other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import kmq
import numpy as np
from kmq import ctx1, mix
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, LoadWatch, find_photo, machine_lines


def median_time(step: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def jxl_decode_time(palette: np.ndarray, labels: np.ndarray, repeat: int, folder: Path) -> tuple[float, int]:
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(palette.tobytes())
    png, jxl, out = folder / "q.png", folder / "q.jxl", folder / "out.png"
    image.save(png)
    subprocess.run(["cjxl", "-d", "0", "-e", "9", "--quiet", str(png), str(jxl)], check=True, capture_output=True)
    command = ["djxl", str(jxl), str(out), "--quiet"]
    return median_time(lambda: subprocess.run(command, check=True, capture_output=True), repeat), jxl.stat().st_size


def rows_for(k: int, palette: np.ndarray, labels: np.ndarray, repeat: int, jxl: bool) -> list[str]:
    pixels = labels.size / 1e6
    height, width = labels.shape
    lines = []
    payload = mix.encode(labels, palette)
    assert payload is not None
    spans = ctx1.stripe_table(memoryview(payload), width, height)
    single = mix.encode(labels, palette, stripes=1)
    assert single is not None
    single_spans = ctx1.stripe_table(memoryview(single), width, height)
    first = ctx1.encode(labels, k)
    assert first is not None
    first_spans = ctx1.stripe_table(memoryview(first), width, height)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("mix encode", lambda: mix.encode(labels, palette)),
        ("mix decode", lambda: mix.decode(memoryview(payload), spans, width, height, palette)),
        ("mix encode 1 stripe", lambda: mix.encode(labels, palette, stripes=1)),
        ("mix decode 1 stripe", lambda: mix.decode(memoryview(single), single_spans, width, height, palette)),
        ("ctx1 encode", lambda: ctx1.encode(labels, k)),
        ("ctx1 decode", lambda: ctx1.decode(memoryview(first), first_spans, width, height, k)),
    ]
    assert (mix.decode(memoryview(payload), spans, width, height, palette) == labels).all()
    # What the stripes that let both cores work cost in size.
    sizes = f"{len(payload)} B in {len(spans)} stripes ({len(payload) / len(single) - 1:+.2%} against 1 stripe)"
    watch = LoadWatch()
    for name, step in steps:
        seconds = median_time(step, repeat)
        lines.append(f"| {k} | {name} | {seconds:.3f} | {pixels / seconds:.1f} |")
    if jxl and shutil.which("cjxl") and shutil.which("djxl"):
        with tempfile.TemporaryDirectory() as folder:
            seconds, size = jxl_decode_time(palette, labels, repeat, Path(folder))
        lines.append(f"| {k} | djxl (whole process) | {seconds:.3f} | {pixels / seconds:.1f} |")
        lines.append(f"| {k} | sizes: mix {sizes}, ctx1 {len(first)} B, JPEG XL -e 9 {size} B | | |")
    else:
        lines.append(f"| {k} | sizes: mix {sizes}, ctx1 {len(first)} B | | |")
    lines.append(f"| {k} | other processes: {watch.other_share():.2f} CPU-s/s | | |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, nargs="+", default=[8, 256])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--no-jxl", action="store_true", help="skip cjxl/djxl")
    args = parser.parse_args()
    photo = find_photo(args.corpus)
    if photo is None:
        print(f"no photo in {args.corpus / 'photos'}: nothing to measure")
        return 0
    print("command: python " + " ".join(sys.argv))
    print("\n".join(machine_lines()))
    print(f"mix coder: {mix.BACKEND}; model memory per thread at most {mix.MODEL_BYTES_MAX / 1e6:.1f} MB")
    image = np.asarray(Image.open(photo).convert("RGB"))
    print(f"photo: {photo.name}, {image.shape[1]}x{image.shape[0]}")
    print("| K | step | seconds (median) | MP/s |\n|---|---|---|---|")
    for k in args.k:
        indexed = kmq.quantize(image, k)
        for line in rows_for(k, np.asarray(indexed.palette), np.asarray(indexed.labels), args.repeat, not args.no_jxl):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
