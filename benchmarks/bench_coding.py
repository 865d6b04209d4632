"""Payload coding 1 (ctx1) against raw packing and the file formats it competes with (issue 4).

Usage (from the repository root):
    python benchmarks/bench_coding.py sizes [-k K [K ...]] [--jobs N] [--csv FILE] [--corpus DIR]
    python benchmarks/bench_coding.py speed [-k K [K ...]] [--repeat R] [--quiet S] [--numba] [--corpus DIR]

``sizes`` (the 24 Kodak images): each image is quantized once per K with ``kmq.quantize(image, K)``
(seed 0), and the same palette and labels are then stored as

- ``raw``: a kmq file in coding 0 (``container.dumps(..., "raw")``);
- ``ctx1``: a kmq file as kmq writes it by default (coding 1, or coding 0 where that is not larger);
- ``png8``: a palette PNG written by Pillow with ``optimize=True``;
- ``gif``: a GIF written by Pillow;
- ``webp``: ``cwebp -lossless -z 9`` of the decoded RGB image (saved as PNG first);
- ``pngq``: ``pngquant --nofs --force --output OUT K IN.png``: pngquant's own quantization and its
  own file, the anchor the issue names (not the same labels).

It prints the mean file size in bits per pixel per K (all Kodak images have 393,216 pixels, so
mean bpp and mean bytes rank alike), ctx1's ratio to each baseline's mean, and the largest
per-image ratio with the image it occurs on. Sizes do not depend on machine load, so ``--jobs``
spreads the images over processes.

``speed`` (the 12 MP photo in ``corpus/photos``): the photo is quantized at each K (untimed), then
each step is timed ``--repeat`` times and the median reported, with megapixels per second:

- ``ctx1 encode`` / ``ctx1 decode``: :func:`kmq.ctx1.encode` / :func:`kmq.ctx1.decode` of the label
  plane with the stripe count kmq chooses (6 for this photo, coded on ``os.cpu_count()`` threads);
- ``... 1 stripe``: the same with one stripe, so on one core;
- ``raw pack`` / ``raw unpack``: :func:`kmq.bitpack.pack` / :func:`kmq.bitpack.unpack`;
- ``kmq.decode ctx1`` / ``kmq.decode raw``: whole files to RGB pixels, checksum included;
- ``Pillow palette PNG to RGB``: the same palette and labels saved by Pillow as a palette PNG
  (``optimize=True``), read back with ``np.asarray(Image.open(...).convert("RGB"))``;
- with ``--numba``: the numba prototype of the same bitstream from the design study
  (``benchmarks/research/issue4/nbhybrid.py``, one stripe, compiled before timing), checked to
  give byte-identical streams. It needs numba installed.

``other`` is the CPU-seconds per second other processes used meanwhile (0 = a quiet machine);
``--quiet S`` waits up to S s for the machine to go idle before each step. When the corpus is
missing the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import kmq
import numpy as np
from kmq import bitpack, container, ctx1
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, LoadWatch, find_photo, machine_lines, wait_quiet

KS = (2, 4, 8, 16, 32, 64, 128, 256)
FORMATS = ("raw", "ctx1", "png8", "gif", "webp", "pngq")


def palette_image(palette: np.ndarray, labels: np.ndarray) -> Image.Image:
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    image.putpalette(palette.tobytes(), rawmode="RGB")
    return image


def saved(image: Image.Image, fmt: str, **options: object) -> int:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return len(buf.getvalue())


def image_sizes(path: Path, ks: tuple[int, ...]) -> list[dict[str, object]]:
    """One row per K: the file size of each format, in bytes."""
    rows = []
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        original = Path(tmp) / "in.png"
        Image.fromarray(pixels).save(original)
        for k in ks:
            indexed = kmq.quantize(pixels, k)
            palette, labels = indexed.palette, indexed.labels
            data = container.dumps(palette, labels)
            sizes: dict[str, object] = {"image": path.stem, "k": k, "pixels": labels.size}
            sizes["raw"] = len(container.dumps(palette, labels, "raw"))
            sizes["ctx1"] = len(data)
            sizes["ctx1_coding"] = container.CODINGS[data[5]]
            sizes["png8"] = saved(palette_image(palette, labels), "PNG", optimize=True)
            sizes["gif"] = saved(palette_image(palette, labels), "GIF")
            decoded, webp = Path(tmp) / "dec.png", Path(tmp) / "out.webp"
            Image.fromarray(palette[labels]).save(decoded)
            subprocess.run(["cwebp", "-quiet", "-lossless", "-z", "9", str(decoded), "-o", str(webp)], check=True)
            sizes["webp"] = webp.stat().st_size
            out = Path(tmp) / "pq.png"
            subprocess.run(["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(original)], check=True)
            sizes["pngq"] = out.stat().st_size
            rows.append(sizes)
    return rows


def run_sizes(args: argparse.Namespace) -> int:
    missing = [tool for tool in ("cwebp", "pngquant") if shutil.which(tool) is None]
    if missing:
        print(f"needs {' and '.join(missing)}: apt-get install webp pngquant", file=sys.stderr)
        return 1
    paths = sorted((args.corpus / "kodak").glob("*.png"))
    if not paths:
        print(f"no Kodak images under {args.corpus}; nothing measured")
        return 0
    ks = tuple(args.k)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = [row for result in pool.map(image_sizes, paths, [ks] * len(paths)) for row in result]
    print(f"# bench_coding.py sizes: {len(paths)} Kodak images, K = {' '.join(map(str, ks))}")
    print("# mean file size in bits per pixel")
    print(f"{'K':>4} " + " ".join(f"{f:>7}" for f in FORMATS) + "  ctx1/webp ctx1/pngq ctx1/png8 ctx1/raw")
    for k in ks:
        at_k = [r for r in rows if r["k"] == k]
        mean = {f: statistics.fmean(8 * r[f] / r["pixels"] for r in at_k) for f in FORMATS}  # type: ignore[operator]
        ratios = " ".join(f"{mean['ctx1'] / mean[f]:>9.3f}" for f in ("webp", "pngq", "png8", "raw"))
        print(f"{k:>4} " + " ".join(f"{mean[f]:>7.4f}" for f in FORMATS) + f"  {ratios}")
    print("# largest per-image ratio ctx1 / baseline (image)")
    print(f"{'K':>4} {'webp':>18} {'pngq':>18} {'png8':>18}  files written in raw")
    for k in ks:
        at_k = [r for r in rows if r["k"] == k]
        cells = []
        for f in ("webp", "pngq", "png8"):
            worst = max(at_k, key=lambda r, f=f: r["ctx1"] / r[f])  # type: ignore[operator]
            cells.append(f"{worst['ctx1'] / worst[f]:.3f} {worst['image']:>8}")  # type: ignore[operator]
        fallback = sum(r["ctx1_coding"] == "raw" for r in at_k)
        print(f"{k:>4} " + " ".join(f"{c:>18}" for c in cells) + f"  {fallback}")
    if args.csv:
        with open(args.csv, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


def timed(fn: Callable[[], object], repeat: int, quiet: float) -> tuple[float, float | None]:
    """Median seconds of ``repeat`` runs after one warm-up, and other processes' CPU share meanwhile."""
    fn()
    if quiet > 0:
        wait_quiet(quiet)
    watch = LoadWatch()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), watch.other_share()


def speed_at(pixels: np.ndarray, k: int, args: argparse.Namespace, nb: object | None) -> None:
    """Time every coding step on the photo quantized at K, and print one table."""
    megapixels = pixels.shape[0] * pixels.shape[1] / 1e6
    indexed = kmq.quantize(pixels, k)
    palette, labels = indexed.palette, indexed.labels
    height, width = labels.shape
    bits = bitpack.bits_for(k)
    payload = ctx1.encode(labels, k)
    one = ctx1.encode(labels, k, stripes=1)
    assert payload is not None and one is not None
    spans = ctx1.stripe_table(memoryview(payload), width, height)
    spans1 = ctx1.stripe_table(memoryview(one), width, height)
    raw = bitpack.pack(labels, bits)
    file1, file0 = container.dumps(palette, labels), container.dumps(palette, labels, "raw")
    buf = io.BytesIO()
    palette_image(palette, labels).save(buf, "PNG", optimize=True)
    png = buf.getvalue()
    assert file1[5] == container.CODING_CTX1
    steps: list[tuple[str, Callable[[], object]]] = [
        (f"ctx1 encode ({len(spans)} stripes)", lambda: ctx1.encode(labels, k)),
        (f"ctx1 decode ({len(spans)} stripes)", lambda: ctx1.decode(memoryview(payload), spans, width, height, k)),
        ("ctx1 encode, 1 stripe", lambda: ctx1.encode(labels, k, stripes=1)),
        ("ctx1 decode, 1 stripe", lambda: ctx1.decode(memoryview(one), spans1, width, height, k)),
        ("raw pack", lambda: bitpack.pack(labels, bits)),
        ("raw unpack", lambda: bitpack.unpack(raw, labels.size, bits)),
        ("kmq.decode ctx1 file", lambda: kmq.decode(file1)),
        ("kmq.decode raw file", lambda: kmq.decode(file0)),
        ("Pillow palette PNG to RGB", lambda: np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))),
    ]
    if nb is not None:
        vc = 2 if k <= 16 else 0
        stream = nb.encode(labels, k, palette, vc=vc, esc=0, rmax=6)  # type: ignore[attr-defined]
        assert bytes(stream) == one[6:], "the prototype's stream must be kmq's"
        nb_encode = nb.encode  # type: ignore[attr-defined]
        nb_decode = nb.decode  # type: ignore[attr-defined]
        steps.append(("numba prototype encode, 1 stripe", lambda: nb_encode(labels, k, palette, vc, 0, 6)))
        steps.append(
            ("numba prototype decode, 1 stripe", lambda: nb_decode(stream, height, width, k, palette, vc, 0, 6))
        )
    print(
        f"\nK={k}: ctx1 payload {len(payload):,} B = {8 * len(payload) / labels.size:.4f} bpp with {len(spans)} "
        f"stripes, {len(one):,} B = {8 * len(one) / labels.size:.4f} bpp with 1 (stripes cost "
        f"{100 * (len(payload) / len(one) - 1):+.2f} %); raw {len(raw):,} B"
    )
    print(f"{'step':<36} {'s':>8} {'MP/s':>8} {'other':>6}")
    for name, fn in steps:
        seconds, other = timed(fn, args.repeat, args.quiet)
        share = "?" if other is None else f"{other:.2f}"
        print(f"{name:<36} {seconds:>8.4f} {megapixels / seconds:>8.1f} {share:>6}", flush=True)


def run_speed(args: argparse.Namespace) -> int:
    photo = find_photo(args.corpus)
    if photo is None:
        print(f"no photo under {args.corpus}; nothing measured")
        return 0
    with Image.open(photo) as im:
        pixels = np.asarray(im.convert("RGB"))
    megapixels = pixels.shape[0] * pixels.shape[1] / 1e6
    print(f"# bench_coding.py speed: {photo.name}, {pixels.shape[1]} x {pixels.shape[0]} = {megapixels:.2f} MP")
    print(f"# median of {args.repeat} runs after a warm-up")
    print("\n".join(f"# {line}" for line in machine_lines()))
    nb = None
    if args.numba:
        sys.path.insert(0, str(Path(__file__).resolve().parent / "research" / "issue4"))
        import nbhybrid

        nb = nbhybrid
    for k in args.k:
        speed_at(pixels, k, args, nb)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["sizes", "speed"])
    parser.add_argument("-k", type=int, nargs="+", default=None, help="palette sizes")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--jobs", type=int, default=2, help="sizes: processes over images (default 2)")
    parser.add_argument("--csv", type=Path, help="sizes: write every image's sizes here")
    parser.add_argument("--repeat", type=int, default=7, help="speed: timed runs per step (default 7)")
    parser.add_argument("--quiet", type=float, default=0.0, help="speed: wait up to S s for an idle machine")
    parser.add_argument("--numba", action="store_true", help="speed: also time the numba prototype")
    args = parser.parse_args(argv)
    if args.what == "sizes":
        args.k = args.k or list(KS)
        return run_sizes(args)
    args.k = args.k or [8, 256]
    return run_speed(args)


if __name__ == "__main__":
    sys.exit(main())
