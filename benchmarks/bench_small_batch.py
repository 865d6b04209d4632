"""Batch throughput as a user runs it: many small images, and Kodak, with ``-j 1`` and ``-j 2`` (issue 15).

Usage (from the repository root):
    python benchmarks/bench_small_batch.py [--repeat R] [--files N] [--quiet S] [-k K] [--corpus DIR]
                                           [--set small|kodak|both] [--python PYTHON]

Two sets, each encoded by the real command in a fresh process, into an empty output folder (so
nothing is skipped as up to date):

- ``small``: N images (1,000 by default), 64x64 to 256x256 (each side drawn uniformly), cut at random
  (seeded) from the Kodak and CQ100 images of the corpus into a temporary folder when the script starts,
  saved as PNG; they are deleted at the end and never stored;
- ``kodak``: the 24 Kodak images as they are.

Each run is ``python -m kmq encode SET -O OUT -j J --json`` (``--json`` gives kmq's own per-file
encode time; nothing else is printed). ``-j 1`` and ``-j 2`` alternate, R times each, so that the
load of the machine falls on both alike, and each figure is a median of R; ``x -j 1`` is the ratio of
the two medians of the same run.

Per-file overhead is what a file costs beyond kmq's work on it, in the ``-j 1`` run::

    (wall - startup - sum of the files' "seconds") / files

where ``wall`` is the whole process, ``startup`` is the median wall time of ``python -m kmq --version``
(interpreter and imports), and a file's ``seconds`` is what ``kmq.batch.encode_job`` measured in that
same process: decoding the input, quantizing, coding and the PSNR. So the overhead is finding the
files, planning, reading, writing (the temporary file, its fsync, the rename), the worker pool and
reporting. ``CPU s`` is the user and system time of the command and its workers (median).
``other`` is the most CPU-seconds per second that other processes used during a set's runs
(``bench_core.LoadWatch``; timings are fair only near 0); ``--quiet S`` waits up to S s for an idle
machine before each run. ``--python`` runs another install's kmq (another venv's interpreter), to
compare two versions on the same cut images and load. When the corpus is missing the script says so
and exits 0.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_core import DEFAULT_CORPUS, LoadWatch, machine_lines, wait_quiet

#: The sides of the small images, inclusive.
SMALL_SIDES = (64, 256)


def cut_small(corpus: Path, folder: Path, count: int, seed: int = 15) -> int:
    """Save ``count`` random crops of the corpus's Kodak and CQ100 images into ``folder``; the sources used."""
    from PIL import Image

    sources = sorted((corpus / "kodak").glob("*.png")) + sorted((corpus / "cq100").glob("*.png"))
    if not sources:
        return 0
    rng = np.random.default_rng(seed)
    pictures = []
    for path in sources:
        with Image.open(path) as image:
            pictures.append(np.asarray(image.convert("RGB")))
    for n in range(count):
        picture = pictures[n % len(pictures)]
        height, width = (min(int(rng.integers(SMALL_SIDES[0], SMALL_SIDES[1] + 1)), side) for side in picture.shape[:2])
        top = int(rng.integers(0, picture.shape[0] - height + 1))
        left = int(rng.integers(0, picture.shape[1] - width + 1))
        Image.fromarray(picture[top : top + height, left : left + width]).save(folder / f"cut{n:04d}.png")
    return len(sources)


@dataclass
class Run:
    """One whole-process run of ``kmq encode``."""

    wall: float
    cpu: float  # user + system seconds of the command and its worker processes
    work: float  # the sum of the files' own encode seconds, from --json
    files: int
    other: float | None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def encode(python: str, source: Path, out: Path, jobs: int, k: int | None, quiet: float) -> Run:
    """``python -m kmq encode SOURCE -O OUT -j JOBS --json``, timed as a whole process."""
    if quiet > 0:
        wait_quiet(quiet)
    argv = command(python, source, out, jobs, k)
    watch = LoadWatch()
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    other = watch.other_share()
    records = json.loads(done.stdout)["files"]
    if any(record["status"] != "encoded" for record in records):
        raise RuntimeError(f"{shlex.join(argv)}: not every file was encoded")
    shutil.rmtree(out)
    return Run(wall, cpu, sum(record["seconds"] for record in records), len(records), other)


def command(python: str, source: Path, out: Path, jobs: int, k: int | None) -> list[str]:
    """The command line of one run."""
    extra = ["-k", str(k)] if k is not None else []
    return [python, "-m", "kmq", "encode", str(source), "-O", str(out), "-j", str(jobs), *extra, "--json"]


def startup(python: str, repeat: int) -> float:
    """Median wall time of ``python -m kmq --version``: the interpreter and kmq's imports."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([python, "-m", "kmq", "--version"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, source: Path, scratch: Path, args: argparse.Namespace, start_up: float) -> None:
    """Print one set's lines: the command, the medians of -j 1 and -j 2, their ratio and -j 1's per-file overhead."""
    runs: dict[int, list[Run]] = {1: [], 2: []}
    for repeat in range(args.repeat):
        for jobs in runs:
            out = scratch / f"out-{name}-{jobs}-{repeat}"
            runs[jobs].append(encode(args.python, source, out, jobs, args.k, args.quiet))
    files = runs[1][0].files
    walls = {jobs: statistics.median(run.wall for run in found) for jobs, found in runs.items()}
    loads = [run.other for found in runs.values() for run in found if run.other is not None]
    load = f"{max(loads):.2f}" if loads else "?"
    print(f"\n{name}: {files} files; {shlex.join(command(args.python, source, Path('OUT'), 1, args.k))}  (and -j 2)")
    print(f"{'jobs':<6} {'median s':>9} {'runs s':<28} {'ms/file':>8} {'x -j 1':>7} {'CPU s':>7}")
    for jobs, found in runs.items():
        each = " ".join(f"{run.wall:.2f}" for run in found)
        per_file = 1000 * walls[jobs] / files
        cpu = statistics.median(run.cpu for run in found)
        print(f"-j {jobs:<3} {walls[jobs]:9.3f} {each:<28} {per_file:8.2f} {walls[1] / walls[jobs]:7.2f} {cpu:7.2f}")
    overheads = [(run.wall - start_up - run.work) / run.files for run in runs[1]]
    work = statistics.median(run.work for run in runs[1]) / files
    each = ", ".join(f"{1000 * o:.2f}" for o in overheads)
    print(
        f"-j 1 per-file overhead (wall - startup - kmq's own encode seconds) / files: "
        f"median {1000 * statistics.median(overheads):.2f} ms (runs: {each}); "
        f"encode work {1000 * work:.2f} ms/file; other processes' load up to {load} CPU-s/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per -j; the median is reported (default: 3)")
    parser.add_argument("--files", type=int, default=1000, help="small images to cut (default: 1000)")
    parser.add_argument("--quiet", type=float, default=0.0, help="wait up to S s for an idle machine before each run")
    parser.add_argument("-k", type=int, default=None, help="palette size (default: kmq's)")
    parser.add_argument("--set", choices=["small", "kodak", "both"], default="both")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose kmq runs (default: this one)")
    args = parser.parse_args(argv)

    kodak = args.corpus / "kodak"
    if not list(kodak.glob("*.png")):
        print(f"no Kodak images in {kodak}: nothing to measure")
        return 0
    print("\n".join(machine_lines()))
    start_up = startup(args.python, max(args.repeat, 3))
    print(f"startup (python -m kmq --version, median): {1000 * start_up:.0f} ms")
    with tempfile.TemporaryDirectory(prefix="kmq-bench-") as scratch:
        root = Path(scratch)
        if args.set in ("small", "both"):
            small = root / "small"
            small.mkdir()
            used = cut_small(args.corpus, small, args.files)
            sides = f"{SMALL_SIDES[0]}-{SMALL_SIDES[1]} px a side"
            print(f"cut {args.files} small images ({sides}) from {used} corpus images into {small}")
            measure("small", small, root, args, start_up)
        if args.set in ("kodak", "both"):
            measure("kodak", kodak, root, args, start_up)
    return 0


if __name__ == "__main__":
    sys.exit(main())
