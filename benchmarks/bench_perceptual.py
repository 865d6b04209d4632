"""How the palette images look: kmq against pngquant and libimagequant on perceptual metrics (issue 13).

Usage (from the repository root):
    python benchmarks/bench_perceptual.py [--sets SET [SET ...]] [-k K [K ...]] [--methods M [M ...]]
                                          [--every N] [--jobs N] [--cache DIR] [--corpus DIR] [--json FILE]

Every image of a set (``kodak``, ``cq100``: ``corpus/<set>/*.png`` sorted by name, every Nth) is
quantized to every K by every method, and each result is measured against the original:

- ``butteraugli``: libjxl's ``butteraugli_main --pnorm 3``, the 3-norm (lower is better);
- ``ssimulacra``: libjxl's ``ssimulacra_main`` (lower is better);
- ``psnr``: :func:`kmq.metrics.psnr` (higher is better);
- ``bytes``: the file the method writes: the kmq file (default coding) for kmq's methods,
  the PNG pngquant writes for pngquant's, none for libimagequant's.

Methods (``--methods``, default all):

- ``kmq``: ``kmq.quantize(pixels, K)`` with today's defaults, whatever they are;
- ``kmq-mse``: ``space="rgb"``, the exact-MSE clustering (kmq's default up to issue 12);
- ``kmq-dither``: ``kmq.quantize(pixels, K, dither=True)`` (``--dither``);
- ``kmq-ordered``: ``dither="ordered"`` (``--dither ordered``);
- ``pngquant-nofs``: ``pngquant --nofs K``; ``pngquant``: ``pngquant K`` (its default dithering);
- ``liq0`` / ``liq1``: libimagequant from PyPI (``pip install imagequant``), dithering 0 and 1.0.

Metric values are cached in ``<cache>/perceptual.json`` keyed by sha256 of the original's and the
result's pixels, so a re-run measures only results that changed. The report gives, per set group
(``photos`` = all sets given) and K, the mean of each metric per method, the tool versions and the
exact command. A missing corpus or tool is reported and the run exits 0 (a missing tool drops its
methods).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import kmq
import numpy as np
from kmq import metrics
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, machine_lines

KS = [4, 8, 16, 32, 64, 128, 256]
SETS = ["kodak", "cq100"]
METRICS = ["butteraugli", "ssimulacra", "psnr", "bytes"]


def _kmq(**options: object) -> Callable[[np.ndarray, int, Path], tuple[np.ndarray, int | None]]:
    def run(pixels: np.ndarray, k: int, tmp: Path) -> tuple[np.ndarray, int | None]:
        indexed = kmq.quantize(pixels, k, **options)  # type: ignore[arg-type]
        size = len(kmq.container.dumps(indexed.palette, indexed.labels))
        return indexed.palette[indexed.labels][..., :3], size

    return run


def _pngquant(*flags: str) -> Callable[[np.ndarray, int, Path], tuple[np.ndarray, int | None]]:
    def run(pixels: np.ndarray, k: int, tmp: Path) -> tuple[np.ndarray, int | None]:
        source, out = tmp / "in.png", tmp / "pq.png"
        if not source.exists():
            Image.fromarray(pixels).save(source)
        out.unlink(missing_ok=True)
        subprocess.run(["pngquant", *flags, "--force", "--output", str(out), str(k), str(source)], check=True)
        with Image.open(out) as im:
            return np.asarray(im.convert("RGB")), out.stat().st_size

    return run


def _liq(level: float) -> Callable[[np.ndarray, int, Path], tuple[np.ndarray, int | None]]:
    def run(pixels: np.ndarray, k: int, tmp: Path) -> tuple[np.ndarray, int | None]:
        import imagequant

        result = imagequant.quantize_pil_image(Image.fromarray(pixels), dithering_level=level, max_colors=k)
        return np.asarray(result.convert("RGB")), None

    return run


METHODS: dict[str, tuple[Callable[..., tuple[np.ndarray, int | None]], str | None]] = {
    "kmq": (_kmq(), None),
    "kmq-mse": (_kmq(space="rgb"), None),
    "kmq-dither": (_kmq(dither=True), None),
    "kmq-ordered": (_kmq(dither="ordered"), None),
    "pngquant-nofs": (_pngquant("--nofs"), "pngquant"),
    "pngquant": (_pngquant(), "pngquant"),
    "liq0": (_liq(0.0), "imagequant"),
    "liq1": (_liq(1.0), "imagequant"),
}


def available(method: str) -> bool:
    need = METHODS[method][1]
    if need is None:
        return True
    if need == "imagequant":
        try:
            import imagequant  # noqa: F401
        except ImportError:
            return False
        return True
    return shutil.which(need) is not None


def measure(reference: Path, result: np.ndarray, tmp: Path) -> dict[str, float]:
    """butteraugli 3-norm and ssimulacra of ``result`` against the PNG at ``reference``."""
    distorted = tmp / "out.png"
    Image.fromarray(result).save(distorted, compress_level=1)
    quiet = {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL, "text": True, "check": True}
    lines = subprocess.run(["butteraugli_main", str(reference), str(distorted), "--pnorm", "3"], **quiet).stdout
    norm = float(next(line for line in lines.splitlines() if line.startswith("3-norm")).split(":")[1])
    ssim = float(subprocess.run(["ssimulacra_main", str(reference), str(distorted)], **quiet).stdout.split()[0])
    return {"butteraugli": norm, "ssimulacra": ssim}


def key(reference: np.ndarray, result: np.ndarray) -> str:
    digest = hashlib.sha256(reference.tobytes())
    digest.update(result.tobytes())
    digest.update(repr(result.shape).encode())
    return digest.hexdigest()


def job(path: str, ks: list[int], methods: list[str], cached: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    """Every method at every K on one image: the rows, each with its metrics and the time taken."""
    with Image.open(path) as im:
        pixels = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    rows = []
    with tempfile.TemporaryDirectory(prefix="kmq-perc-") as name:
        tmp = Path(name)
        reference = tmp / "ref.png"
        Image.fromarray(pixels).save(reference, compress_level=1)
        for k in ks:
            for method in methods:
                started = time.perf_counter()
                result, size = METHODS[method][0](pixels, k, tmp)
                seconds = time.perf_counter() - started
                digest = key(pixels, result)
                values = cached.get(digest) or measure(reference, np.ascontiguousarray(result), tmp)
                rows.append(
                    {
                        "image": path,
                        "k": k,
                        "method": method,
                        "key": digest,
                        **values,
                        "psnr": metrics.psnr(pixels, result),
                        "bytes": size,
                        "seconds": seconds,
                        "colours": len(np.unique(result.reshape(-1, 3), axis=0)),
                    }
                )
    return rows


def tool_versions() -> list[str]:
    out = [f"kmq {kmq.__version__}"]
    if shutil.which("pngquant"):
        out.append(
            "pngquant " + subprocess.run(["pngquant", "--version"], capture_output=True, text=True).stdout.strip()
        )
    try:
        from importlib.metadata import version

        out.append("imagequant (PyPI) " + version("imagequant"))
    except Exception:  # not installed: its methods are dropped
        pass
    out.append("butteraugli_main, ssimulacra_main: libjxl-devtools (Debian)")
    return out


def report(rows: list[dict[str, object]], methods: list[str], ks: list[int], groups: dict[str, list[str]]) -> None:
    for group, sets in groups.items():
        chosen = [r for r in rows if any(f"/{s}/" in str(r["image"]) for s in sets)]
        images = len({r["image"] for r in chosen})
        print(f"\n## {group} ({', '.join(sets)}; {images} images): mean per K")
        for metric in METRICS:
            print(f"\n{metric} ({'higher' if metric == 'psnr' else 'lower'} is better)\n")
            print("| method | " + " | ".join(f"K={k}" for k in ks) + " |")
            print("|---|" + "---|" * len(ks))
            for method in methods:
                cells = []
                for k in ks:
                    values = [r[metric] for r in chosen if r["k"] == k and r["method"] == method]
                    values = [float(v) for v in values if v is not None]  # type: ignore[arg-type]
                    if not values:
                        cells.append("-")
                    elif metric == "bytes":
                        cells.append(f"{np.mean(values) / 1000:.1f} kB")
                    else:
                        cells.append(
                            f"{np.mean(values):.{2 if metric == 'psnr' else 4 if metric == 'ssimulacra' else 3}f}"
                        )
                print(f"| {method} | " + " | ".join(cells) + " |")
        seconds = {m: sum(float(r["seconds"]) for r in chosen if r["method"] == m) for m in methods}  # type: ignore[arg-type]
        print("\nseconds in the method (all K, all images): " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("-k", nargs="+", type=int, default=KS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--every", type=int, default=1, help="take every Nth image of each set")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / ".cache")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args(argv)
    print("command: python " + shlex.join(["benchmarks/bench_perceptual.py", *(argv or sys.argv[1:])]))
    for line in [*machine_lines(), *tool_versions()]:
        print(line)
    if not shutil.which("butteraugli_main") or not shutil.which("ssimulacra_main"):
        print("butteraugli_main or ssimulacra_main missing (apt-get install libjxl-devtools): nothing measured")
        return 0
    methods = [m for m in args.methods if available(m)]
    for m in set(args.methods) - set(methods):
        print(f"{m}: its tool is not installed; left out")
    paths = [p for s in args.sets for p in sorted((args.corpus / s).glob("*.png"))[:: args.every]]
    if not paths:
        print(f"no images under {args.corpus} for {args.sets}: nothing measured")
        return 0
    cache_file = args.cache / "perceptual.json"
    cached: dict[str, dict[str, float]] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for found in pool.map(
            job, [str(p) for p in paths], [args.k] * len(paths), [methods] * len(paths), [cached] * len(paths)
        ):
            rows.extend(found)
            for r in found:
                cached[str(r["key"])] = {"butteraugli": float(r["butteraugli"]), "ssimulacra": float(r["ssimulacra"])}  # type: ignore[arg-type]
            args.cache.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached))
            os.replace(tmp, cache_file)
    print(f"\n{len(paths)} images, {len(rows)} results in {time.perf_counter() - started:.0f} s")
    report(rows, methods, args.k, {"photos": args.sets})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
