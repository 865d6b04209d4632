"""Batch throughput: the 24 Kodak images through ``kmq encode`` / ``kmq decode`` (issue 6).

Usage (from the repository root):
    python benchmarks/bench_batch.py [--repeat R] [--quiet S] [-k K] [--copies N] [--corpus DIR]

Each row runs the real command in a fresh process, as a user would, into an empty output folder
(so nothing is skipped as up to date), and reports the median wall time of ``--repeat`` runs:

- ``-j 1``: ``python -m kmq encode KODAK -O OUT -k K -j 1 --quiet`` (everything in one process);
- ``-j 2``: the same with two worker processes;
- ``dask``: the same with ``--scheduler ADDRESS`` of a ``dask.distributed.LocalCluster`` with two
  worker processes of one thread each, started once before the runs (a cluster outlives jobs);
- ``decode ...``: ``kmq decode OUT -O PNGS`` of those files to PNG, the same three ways.

Throughput is images per second and megapixels per second of wall time, start-up included
(``startup`` is ``python -m kmq --version``, for scale), and ``x -j 1`` is the speed-up over
``-j 1`` in the same run. ``other`` is the CPU-seconds per second other processes used during the
runs (the cluster's own workers excluded); ``--quiet S`` waits up to S s for an idle machine
before each run. ``--copies N`` works on N copies of each image (N x 24 files), to show how the fixed
costs (start-up, the worker pool, importing and connecting the Dask client) are amortised. When the
corpus is missing the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_core import DEFAULT_CORPUS, LoadWatch, machine_lines, wait_quiet


def _cluster_cpu(cluster: object | None) -> float:
    """CPU seconds used so far by the LocalCluster's processes (they are not ours to count as 'other')."""
    if cluster is None:
        return 0.0
    import psutil  # distributed depends on it

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def run_once(argv: list[str], quiet: float, cluster: object | None) -> tuple[float, float | None]:
    if quiet > 0:
        wait_quiet(quiet)
    watch = LoadWatch()
    before = _cluster_cpu(cluster)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kmq", *argv], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    other = watch.other_share()
    if other is not None and cluster is not None:
        other = max(other - (_cluster_cpu(cluster) - before) / seconds, 0.0)
    return seconds, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the median is reported")
    parser.add_argument("--quiet", type=float, default=0.0, help="wait up to S s for an idle machine before each run")
    parser.add_argument("-k", type=int, default=8, help="palette size (default: 8)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--copies", type=int, default=1, help="encode N copies of the Kodak set, to see fixed costs amortised"
    )
    args = parser.parse_args(argv)

    corpus = args.corpus / "kodak"
    originals = sorted(corpus.glob("*.png"))
    if not originals:
        print(f"no Kodak images in {corpus}: nothing to measure")
        return 0
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("the dask rows need distributed: pip install 'kmq[dask]'")
        return 1
    with tempfile.TemporaryDirectory() as copies:
        kodak = corpus
        if args.copies > 1:
            kodak = Path(copies)
            for n in range(args.copies):
                for original in originals:
                    shutil.copyfile(original, kodak / f"{original.stem}-{n}.png")
        return measure(args, kodak)


def _pixels(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.size[0] * image.size[1]


def measure(args: argparse.Namespace, kodak: Path) -> int:
    """Print the table for the images in ``kodak``."""
    from distributed import LocalCluster

    images = sorted(kodak.glob("*.png"))
    megapixels = sum(_pixels(p) for p in images) / 1e6
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import distributed"], check=True)
    import_dask = time.perf_counter() - started

    print("\n".join(machine_lines()))
    what = "Kodak images" if args.copies == 1 else f"Kodak images ({args.copies} copies of each)"
    print(f"{len(images)} {what}, {megapixels:.2f} MP in all, K={args.k}, median of {args.repeat} runs")
    print(f"python -c 'import distributed' (part of the Dask client's fixed cost): {import_dask:.2f} s")
    with (
        tempfile.TemporaryDirectory() as scratch,
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster,
    ):
        root = Path(scratch)
        startup = statistics.median(run_once(["--version"], 0, None)[0] for _ in range(args.repeat))
        print(f"startup (python -m kmq --version): {startup:.3f} s")
        print(f"{'step':<16} {'median s':>9} {'images/s':>9} {'MP/s':>7} {'x -j 1':>7} {'other':>6}")
        modes = [("-j 1", ["-j", "1"], None), ("-j 2", ["-j", "2"], None)]
        modes.append(("dask", ["--scheduler", cluster.scheduler_address], cluster))
        encoded = root / "encoded"
        for verb in ("encode", "decode"):
            base = None
            for name, extra, watched in modes:
                times, others = [], []
                for run in range(args.repeat):
                    out = root / f"{verb}-{name.replace(' ', '')}-{run}"
                    source = str(kodak) if verb == "encode" else str(encoded)
                    seconds, other = run_once(
                        [
                            verb,
                            source,
                            "-O",
                            str(out),
                            "--quiet",
                            *(["-k", str(args.k)] if verb == "encode" else []),
                            *extra,
                        ],
                        args.quiet,
                        watched,
                    )
                    times.append(seconds)
                    others.append(other)
                    if verb == "encode" and not encoded.exists():
                        shutil.copytree(out, encoded)
                    shutil.rmtree(out)
                median = statistics.median(times)
                base = base or median
                measured = [o for o in others if o is not None]
                load = f"{max(measured):6.2f}" if measured else "     ?"
                print(
                    f"{verb + ' ' + name:<16} {median:9.3f} {len(images) / median:9.2f} {megapixels / median:7.2f} "
                    f"{base / median:7.2f} {load}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
