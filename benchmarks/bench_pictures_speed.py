"""``kmq compare`` and ``kmq sweep`` against one ``kmq encode`` of the same photo, as whole processes (issue 15).

Usage (from the repository root):
    python benchmarks/bench_pictures_speed.py [--image PATH] [--corpus DIR] [--repeat R] [--quiet S]
                                              [-k K [K ...]]

The image is the ~12 MP camera photo of ``corpus/photos`` converted to PNG first (so that JPEG decoding
is not what is measured), or ``--image``. Each row runs the real command in a fresh process, as a user
would, with its outputs in a scratch folder:

- ``encode``: ``python -m kmq encode PHOTO.png -o OUT.kmq`` (default K=8, default coding);
- ``compare``: ``python -m kmq compare PHOTO.png -k 8 64 256 -o OUT.png`` (``-k`` here sets the K list);
- ``sweep``: ``python -m kmq sweep PHOTO.png -o OUT.png --csv OUT.csv`` (its default K list, 2 to 256,
  each written as raw, ctx1 and mix files, and the plot).

The runs are interleaved (encode, compare, sweep, then again) so that a change in the machine's load
reaches all three alike, and each row reports the median wall time of ``--repeat`` runs, its ratio to the
median ``encode`` of the same run (issue 15's target: at most 3 for compare and sweep), the median CPU
seconds of the process (user + system) and its peak resident memory. ``other`` is the most CPU-seconds
per second that other processes used during any of the row's runs (0 is a quiet machine), and the
last line the load over the whole run (:class:`bench_core.LoadWatch`). ``--quiet S`` waits up to S s
for an idle machine before each run. When the photo is missing the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_core import DEFAULT_CORPUS, LoadWatch, find_photo, machine_lines, wait_quiet


def run_once(argv: list[str], quiet: float) -> tuple[float, float, float, float | None]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of ``python -m kmq ARGV``, and the others' CPU share."""
    if quiet > 0:
        wait_quiet(quiet)
    watch = LoadWatch()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "kmq", *argv], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"failed with status {process.returncode}: kmq {shlex.join(argv)}")
    # ru_maxrss is in KiB on Linux.
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, watch.other_share()


def as_png(source: Path, folder: Path) -> Path:
    """The image as a PNG in ``folder`` (a PNG is used as it is)."""
    if source.suffix.lower() == ".png":
        return source
    from kmq.images import load
    from PIL import Image

    out = folder / (source.stem + ".png")
    Image.fromarray(load(source).pixels).save(out, compress_level=1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, help="the image (default: the corpus's 12 MP photo, as PNG)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median is reported")
    parser.add_argument("--quiet", type=float, default=0.0, help="wait up to S s for an idle machine before each run")
    parser.add_argument("-k", type=int, nargs="+", default=[8, 64, 256], help="compare's K list (default: 8 64 256)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    source = args.image or find_photo(args.corpus)
    if source is None or not source.is_file():
        print(f"no photo in {args.corpus / 'photos'} (and no --image): nothing to measure")
        return 0

    print("$ " + shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])))
    print("\n".join(machine_lines()))
    watch = LoadWatch()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        photo = as_png(source, root)
        from PIL import Image

        with Image.open(photo) as image:
            size = f"{image.width}x{image.height}, {image.width * image.height / 1e6:.1f} MP"
        print(f"image: {source} ({size}){', as PNG' if photo != source else ''}; median of {args.repeat} runs")
        ks = [str(k) for k in args.k]
        jobs = {
            "encode": ["encode", str(photo), "-o", str(root / "out.kmq")],
            "compare": ["compare", str(photo), "-k", *ks, "-o", str(root / "compare.png")],
            "sweep": ["sweep", str(photo), "-o", str(root / "sweep.png"), "--csv", str(root / "sweep.csv")],
        }
        for name, job in jobs.items():
            shown = [os.path.basename(a) if a.startswith(scratch) else a for a in job]
            print(f"{name:<8} python -m kmq {shlex.join(shown)} --force --quiet")
        results: dict[str, list[tuple[float, float, float, float | None]]] = {name: [] for name in jobs}
        for _ in range(args.repeat):
            for name, job in jobs.items():
                results[name].append(run_once([*job, "--force", "--quiet"], args.quiet))
    base = statistics.median(run[0] for run in results["encode"])
    print(f"{'job':<8} {'median s':>9} {'x encode':>9} {'CPU s':>7} {'peak MiB':>9} {'other':>6}")
    for name, runs in results.items():
        median = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        peak = max(run[2] for run in runs)
        measured = [run[3] for run in runs if run[3] is not None]
        other = f"{max(measured):6.2f}" if measured else "     ?"
        print(f"{name:<8} {median:9.2f} {median / base:9.2f} {cpu:7.2f} {peak:9.0f} {other}")
    print(watch.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
