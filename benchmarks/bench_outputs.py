"""Decoded image sizes: kmq's palette PNG against pngquant's PNG and against the full-colour PNG kmq wrote before.

Usage (from the repository root):
    python benchmarks/bench_outputs.py [--corpus DIR] [-k K [K ...]] [--formats]

For each Kodak image (``corpus/kodak/*.png``, 24 images of 768x512) and each K (default 8, 16, 64,
256) the image is quantized once with ``kmq.quantize(pixels, K)``, written as a kmq file and
decoded by :func:`kmq.batch.decode_job` to ``.png``: the bytes ``kmq decode x.kmq -o x.png`` writes.
Sizes compared, in bytes:

- ``kmq``: that decoded PNG (``kmq.images.save_indexed``: a palette PNG);
- ``old``: the full-colour RGB PNG kmq wrote before (``Image.fromarray(indexed.to_array()).save``,
  Pillow's defaults, as ``images.save_image`` did);
- ``pq same``: ``pngquant --nofs K`` run on that full-colour PNG. The image already has at most
  K colours, which pngquant keeps exactly (the script checks every pixel), so this is pngquant's
  PNG writer on the very same pixels: the fair comparison of the two writers;
- ``pq own``: ``pngquant --nofs K`` run on the original, with pngquant's own palette: a different
  image (its PSNR against the original is shown beside kmq's), for scale.

Each K gets the median and geometric mean over the images of each size, the medians and geomeans
of the ratios ``kmq / old`` and ``kmq / pq same``, the worst (largest) ``kmq / pq same`` and the
number of images where kmq's file is larger than pngquant's. ``--formats`` adds the geomean sizes
of the ``.gif`` and ``.webp`` outputs. When the corpus or pngquant is missing the script says so
and exits 0.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def pngquant(tool: str, png: bytes, k: int) -> bytes:
    return subprocess.run([tool, "--nofs", str(k), "-"], input=png, capture_output=True, check=True).stdout


def pixels_of(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def measure(path: Path, k: int, tool: str, formats: bool) -> dict[str, float]:
    import kmq
    from kmq import batch, images
    from PIL import Image

    original = np.asarray(Image.open(path).convert("RGB"))
    indexed = kmq.quantize(original, k)
    outcome = batch.decode_job(indexed.to_bytes("raw"), path.name, batch.DecodeOptions(suffix=".png"))
    assert outcome.content is not None, outcome.error
    ours = outcome.content
    buffer = io.BytesIO()
    Image.fromarray(indexed.to_array()).save(buffer, format="PNG")
    old = buffer.getvalue()
    same = pngquant(tool, old, k)
    if not np.array_equal(pixels_of(same), indexed.to_array()):
        raise SystemExit(f"{path.name} K={k}: pngquant changed the colours of an image of at most K colours")
    own = pngquant(tool, path.read_bytes(), k)
    row = {
        "kmq": len(ours),
        "old": len(old),
        "pq same": len(same),
        "pq own": len(own),
        "kmq psnr": kmq.metrics.psnr(original, indexed.to_array()),
        "pq own psnr": kmq.metrics.psnr(original, pixels_of(own)),
    }
    if formats:
        for suffix in (".gif", ".webp"):
            buffer = io.BytesIO()
            images.save_indexed(buffer, indexed, images.output_format(f"x{suffix}"))
            row[suffix] = len(buffer.getvalue())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder (default: %(default)s)")
    parser.add_argument("-k", type=int, nargs="+", default=[8, 16, 64, 256], help="palette sizes")
    parser.add_argument("--formats", action="store_true", help="also the .gif and .webp outputs")
    args = parser.parse_args(argv)
    originals = sorted((args.corpus / "kodak").glob("*.png"))
    if not originals:
        print(f"no Kodak images under {args.corpus}; nothing measured")
        return 0
    tool = shutil.which("pngquant")
    if tool is None:
        print("pngquant is not installed; nothing measured")
        return 0
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"{len(originals)} Kodak images; pngquant {version}; sizes in bytes")
    extra = " | gif geomean | webp geomean" if args.formats else ""
    print(
        "\n|  K | kmq median | kmq geomean | old median | old geomean | pq same median | pq same geomean "
        "| pq own geomean | kmq/old median | kmq/old geomean | kmq/pq same median | kmq/pq same geomean "
        f"| kmq/pq same worst | kmq larger | PSNR kmq / pq own{extra} |"
    )
    print("|" + "---|" * (15 + 2 * args.formats))
    for k in args.k:
        rows = [measure(path, k, tool, args.formats) for path in originals]

        def column(name: str, rows: list[dict[str, float]] = rows) -> list[float]:
            return [row[name] for row in rows]

        to_old = [r["kmq"] / r["old"] for r in rows]
        to_same = [r["kmq"] / r["pq same"] for r in rows]
        cells = [
            f"{k:>3}",
            f"{statistics.median(column('kmq')):,.0f}",
            f"{geomean(column('kmq')):,.0f}",
            f"{statistics.median(column('old')):,.0f}",
            f"{geomean(column('old')):,.0f}",
            f"{statistics.median(column('pq same')):,.0f}",
            f"{geomean(column('pq same')):,.0f}",
            f"{geomean(column('pq own')):,.0f}",
            f"{statistics.median(to_old):.3f}",
            f"{geomean(to_old):.3f}",
            f"{statistics.median(to_same):.4f}",
            f"{geomean(to_same):.4f}",
            f"{max(to_same):.4f}",
            f"{sum(r > 1 for r in to_same)} of {len(rows)}",
            f"{statistics.fmean(column('kmq psnr')):.2f} / {statistics.fmean(column('pq own psnr')):.2f} dB",
        ]
        if args.formats:
            cells += [f"{geomean(column('.gif')):,.0f}", f"{geomean(column('.webp')):,.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
