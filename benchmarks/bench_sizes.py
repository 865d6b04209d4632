"""kmq file sizes against the smallest palette image of any other format (issue 12).

Usage (from the repository root):
    python benchmarks/bench_sizes.py [--sets SET [SET ...]] [-k K [K ...]] [--jobs N] [--every N]
                                     [--max-mp X] [--anchors-only] [--cached-only] [--verify] [--reuse-labels]
                                     [--cache DIR] [--corpus DIR] [--csv FILE] [--json FILE]

For every image of a set (``kodak`` and ``cq100``, the photos group; ``graphics`` and
``graphics2``, the graphics group; ``corpus/<set>/*.png`` sorted by name) and every K, the image
is quantized once with ``kmq.quantize(pixels, K, space=SPACE)`` (seed 0; RGBA when the image has
real alpha, i.e. some alpha below 255, else RGB). ``--space`` defaults to ``rgb``, the quantizer
of issue 12's measurements (kmq's default up to then), so that the cached anchor sizes, which
cost hours, stay valid; every container stores the same palette image either way. That one
palette image (same palette, same labels) is then stored in every other container, each at its
strongest setting:

- ``png8``: a Pillow ``P`` image (``transparency`` = the palette's alpha for RGBA) saved with
  ``optimize=True``, then ``zopflipng -m --filters=0me``; the smaller of the two;
- ``webp``: ``cwebp -quiet -lossless -z 9 -exact`` of that PNG;
- ``jxl``: ``cjxl -d 0 -e 9 --quiet`` of that PNG;
- ``gif``: a Pillow GIF, then ``gifsicle -O3``; the smaller of the two. None (not counted) when
  the palette has partial alpha or more than one fully transparent entry: GIF has one
  transparent index and no partial alpha.

kmq's size is ``len(kmq.container.dumps(palette, labels, name))`` (non-strict, so a file falls
back to raw where that is smaller) for every payload coding in ``kmq.container.CODINGS`` but
raw; a new coding is measured as soon as kmq knows it. kmq sizes are recomputed on every run;
the other containers' sizes (slow: ``cwebp -z 9`` takes 5-16 s on a 0.4 MP image) are cached in
``<cache>/anchors.json``, keyed by sha256 of palette, labels and shape and by each tool's version
and options, so that a re-run computes only what changed. Each quantized image is also saved as
``<cache>/labels/<set>/<stem>_k<K>.npz`` (keys ``palette``, ``labels``); ``--reuse-labels``
takes them from there instead of quantizing again. ``--cached-only`` reports only the images
whose other sizes are already cached (computing none), e.g. while a cache fill is running.
``--verify`` decodes every newly made file (Pillow, ``dwebp``, ``djxl``) and checks it holds
exactly the same RGBA pixels.

The report, per set and K, and per group: the geometric mean over images of kmq / best other
for each kmq coding, against the targets (photos <= 0.88, graphics <= 0.75); how often each
container was the best other; the largest single-image ratio at K >= 4 with its image; and each
container's geometric mean relative to ctx1. Images above 1.0 at K >= 4 are flagged. The exact
command line is printed at the top. When the corpus is missing the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import kmq
import numpy as np
import PIL
from kmq import container
from kmq.colour import SPACES
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, machine_lines

KS = (2, 4, 8, 16, 32, 64, 128, 256)
GROUPS = {"photos": ("kodak", "cq100"), "graphics": ("graphics", "graphics2")}
TARGETS = {"photos": 0.88, "graphics": 0.75}
FORMATS = ("png8", "webp", "jxl", "gif")
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
ZOPFLI = ["zopflipng", "-m", "--filters=0me", "-y"]
CWEBP = ["cwebp", "-quiet", "-lossless", "-z", "9", "-exact"]
CJXL = ["cjxl", "-d", "0", "-e", "9", "--quiet"]
GIFSICLE = ["gifsicle", "-O3"]
TOOLS = ("zopflipng", "cwebp", "dwebp", "cjxl", "djxl", "gifsicle")


# --------------------------------------------------------------------------- tool identity


def tool_version(tool: str) -> str:
    """The tool's version line (dpkg's version for zopflipng, which prints none)."""
    if tool == "zopflipng":
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zopfli"], capture_output=True, text=True)
        return out.stdout.strip() or str(Path(shutil.which(tool) or tool).stat().st_size)
    flag = "-version" if tool == "cwebp" else "--version"
    out = subprocess.run([tool, flag], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def signatures() -> dict[str, str]:
    """Per format: the tools, versions and options that made its size (part of the cache key)."""
    pil = f"Pillow {PIL.__version__}"
    return {
        "png8": f"{pil} optimize=True; zopflipng {tool_version('zopflipng')} {' '.join(ZOPFLI[1:])}; min",
        "webp": f"cwebp {tool_version('cwebp')} {' '.join(CWEBP[1:])}",
        "jxl": f"{tool_version('cjxl')} {' '.join(CJXL[1:])}",
        "gif": f"{pil}; {tool_version('gifsicle')} {' '.join(GIFSICLE[1:])}; min; one transparent index",
    }


def image_key(palette: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(palette.tobytes() + labels.tobytes())
    digest.update(f"{palette.shape}{labels.shape}".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- images


def load_pixels(path: Path) -> np.ndarray:
    """RGBA when the image has real alpha (some alpha < 255), else RGB."""
    with Image.open(path) as im:
        maybe_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
        rgba = np.asarray(im.convert("RGBA"))
    if maybe_alpha and rgba[..., 3].min() < 255:
        return rgba
    return np.ascontiguousarray(rgba[..., :3])


def expected_rgba(palette: np.ndarray, labels: np.ndarray) -> np.ndarray:
    table = np.full((len(palette), 4), 255, np.uint8)
    table[:, : palette.shape[1]] = palette
    return table[labels]


def palette_image(palette: np.ndarray, labels: np.ndarray) -> Image.Image:
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    image.putpalette(np.ascontiguousarray(palette[:, :3]).tobytes(), rawmode="RGB")
    if palette.shape[1] == 4:
        image.info["transparency"] = palette[:, 3].tobytes()
    return image


def gif_transparency(palette: np.ndarray) -> int | bool | None:
    """The transparent index for GIF, None for none, False when GIF cannot hold this alpha."""
    if palette.shape[1] == 3 or (palette[:, 3] == 255).all():
        return None
    alpha = palette[:, 3]
    clear = np.flatnonzero(alpha == 0)
    if ((alpha != 0) & (alpha != 255)).any() or len(clear) != 1:
        return False
    return int(clear[0])


# --------------------------------------------------------------------------- anchors


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_png(palette: np.ndarray, labels: np.ndarray, tmp: Path) -> Path:
    pil, zop = tmp / "pil.png", tmp / "zop.png"
    image = palette_image(palette, labels)
    options = {"transparency": image.info["transparency"]} if palette.shape[1] == 4 else {}
    image.save(pil, "PNG", optimize=True, **options)
    run([*ZOPFLI, str(pil), str(zop)])
    return zop if zop.is_file() and zop.stat().st_size < pil.stat().st_size else pil


def make_gif(palette: np.ndarray, labels: np.ndarray, tmp: Path) -> Path | None:
    index = gif_transparency(palette)
    if index is False:
        return None
    pil, opt = tmp / "pil.gif", tmp / "opt.gif"
    image = palette_image(palette, labels)
    image.info.pop("transparency", None)
    options = {} if index is None else {"transparency": index}
    image.save(pil, "GIF", optimize=False, **options)
    run([*GIFSICLE, str(pil), "-o", str(opt)])
    return opt if opt.stat().st_size < pil.stat().st_size else pil


def decode_rgba(path: Path, tmp: Path) -> np.ndarray:
    if path.suffix in (".webp", ".jxl"):
        out = tmp / f"dec_{path.suffix[1:]}.png"
        run(["dwebp", str(path), "-o", str(out)] if path.suffix == ".webp" else ["djxl", str(path), str(out)])
        path = out
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def same_pixels(got: np.ndarray, want: np.ndarray, gif: bool) -> bool:
    if got.shape != want.shape:
        return False
    if gif:  # GIF's transparent pixels: only alpha 0 is stored, not the colour under it
        clear = want[..., 3] == 0
        got, want = np.where(clear[..., None], 0, got), np.where(clear[..., None], 0, want)
    return bool(np.array_equal(got, want))


def anchor_sizes(palette: np.ndarray, labels: np.ndarray, formats: list[str], verify: bool) -> dict[str, object]:
    """The size in bytes of each format (None: it cannot hold the image), and whether all verified."""
    sizes: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kmq-bench-") as name:
        tmp = Path(name)
        png = make_png(palette, labels, tmp)
        files: dict[str, Path | None] = {"png8": png}
        if "webp" in formats:
            files["webp"] = tmp / "out.webp"
            run([*CWEBP, str(png), "-o", str(files["webp"])])
        if "jxl" in formats:
            files["jxl"] = tmp / "out.jxl"
            run([*CJXL, str(png), str(files["jxl"])])
        if "gif" in formats:
            files["gif"] = make_gif(palette, labels, tmp)
        want = expected_rgba(palette, labels) if verify else None
        for fmt in formats:
            path = files[fmt]
            sizes[fmt] = None if path is None else path.stat().st_size
            if want is not None and path is not None and not same_pixels(decode_rgba(path, tmp), want, fmt == "gif"):
                raise AssertionError(f"{fmt} does not hold the same pixels")
    sizes["verified"] = verify
    return sizes


# --------------------------------------------------------------------------- cache


class Cache:
    """anchors.json: {image key: {format: {"sig": signature, "size": bytes or None, "verified": bool}}}."""

    def __init__(self, folder: Path, sigs: dict[str, str]) -> None:
        self.folder, self.sigs = folder, sigs
        self.path = folder / "anchors.json"
        self.data: dict[str, dict[str, dict[str, object]]] = {}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    def missing(self, key: str, verify: bool) -> list[str]:
        entry = self.data.get(key, {})
        ok = [f for f in FORMATS if entry.get(f, {}).get("sig") == self.sigs[f]]
        return [f for f in FORMATS if f not in ok or (verify and not entry[f].get("verified"))]

    def get(self, key: str) -> dict[str, int | None]:
        return {f: self.data[key][f]["size"] for f in FORMATS}  # type: ignore[misc]

    def put(self, key: str, sizes: dict[str, object]) -> None:
        entry = self.data.setdefault(key, {})
        for fmt in FORMATS:
            if fmt in sizes:
                entry[fmt] = {"sig": self.sigs[fmt], "size": sizes[fmt], "verified": sizes["verified"]}
        self.save()

    def save(self) -> None:
        """Merge with what another run may have written meanwhile, then replace the file atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            for key, entry in json.loads(self.path.read_text()).items():
                self.data[key] = entry | self.data.get(key, {})
        part = self.path.with_suffix(f".json.{os.getpid()}.part")  # one per run: two fills may share the cache
        part.write_text(json.dumps(self.data, indent=0, sort_keys=True))
        os.replace(part, self.path)


# --------------------------------------------------------------------------- the run


def set_images(args: argparse.Namespace, name: str) -> tuple[list[Path], int]:
    """The set's images (every Nth), and how many were skipped for size."""
    paths = sorted((args.corpus / name).glob("*.png"))[:: args.every]
    if args.max_mp is None:
        return paths, 0
    keep = []
    for path in paths:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] <= args.max_mp * 1e6:
                keep.append(path)
    return keep, len(paths) - len(keep)


def quantized(args: argparse.Namespace, name: str, path: Path, k: int, pixels: np.ndarray | None):
    """(palette, labels) of the image at K, from the npz with --reuse-labels, and saved there."""
    # rgb's labels keep their old names (the cached anchors' images); other spaces are labelled apart.
    tag = "" if args.space == "rgb" else f"_{args.space}"
    npz = args.cache / "labels" / name / f"{path.stem}_k{k}{tag}.npz"
    if args.reuse_labels and npz.is_file():
        with np.load(npz) as data:
            return data["palette"], data["labels"]
    q = kmq.quantize(load_pixels(path) if pixels is None else pixels, k, space=args.space)
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, palette=q.palette, labels=q.labels)
    return q.palette, q.labels


def kmq_sizes(palette: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    names = [n for n in container.CODINGS.values() if n != "raw"]
    sizes = {f"kmq_{n}": len(container.dumps(palette, labels, n)) for n in names}
    sizes["kmq_raw"] = len(container.dumps(palette, labels, "raw"))
    return sizes


def jobs(args: argparse.Namespace, skipped: dict[str, int]) -> Iterator[dict[str, object]]:
    """One row per (set, image, K) with kmq's sizes and the image key; anchors come later."""
    for name in args.sets:
        paths, skipped[name] = set_images(args, name)
        for path in paths:
            pixels = None if args.reuse_labels else load_pixels(path)
            for k in args.k:
                palette, labels = quantized(args, name, path, k, pixels)
                row: dict[str, object] = {"set": name, "image": path.stem, "k": k, "colours": len(palette)}
                row.update(width=labels.shape[1], height=labels.shape[0], channels=palette.shape[1])
                if not args.anchors_only:
                    row.update(kmq_sizes(palette, labels))
                yield row | {"_key": image_key(palette, labels), "_q": (palette, labels)}


def finish(row: dict[str, object], cache: Cache, started: float) -> dict[str, object]:
    key = row.pop("_key")
    row.pop("_q")
    row.update(cache.get(key))  # type: ignore[arg-type]
    others = {f: row[f] for f in FORMATS if row[f] is not None}
    row["best"] = min(others, key=others.get)  # type: ignore[arg-type]
    row["best_size"] = others[row["best"]]
    kmq_part = "" if "kmq_ctx1" not in row else f" ctx1/best {row['kmq_ctx1'] / row['best_size']:.3f}"  # type: ignore[operator]
    sizes = " ".join(f"{f} {row[f]}" for f in FORMATS)
    print(f"# {time.time() - started:7.0f} s {row['set']}/{row['image']} K={row['k']}: {sizes}{kmq_part}", flush=True)
    return row


def measure(args: argparse.Namespace, cache: Cache, skipped: dict[str, int]) -> list[dict[str, object]]:
    started, rows = time.time(), []
    pool = ProcessPoolExecutor(max_workers=args.jobs) if args.jobs > 1 else None
    pending: list[tuple[dict[str, object], Future | None]] = []
    for row in jobs(args, skipped):
        key, missing = row["_key"], cache.missing(row["_key"], args.verify)  # type: ignore[arg-type]
        if missing and args.cached_only:
            continue
        if missing and pool is None:
            cache.put(key, anchor_sizes(*row["_q"], missing, args.verify))  # type: ignore[arg-type, misc]
        future = pool.submit(anchor_sizes, *row["_q"], missing, args.verify) if missing and pool else None  # type: ignore[misc]
        pending.append((row, future))
        while pending and (pending[0][1] is None or pending[0][1].done()):
            rows.append(collect(*pending.pop(0), cache, started))
    for item in pending:
        rows.append(collect(*item, cache, started))
    if pool is not None:
        pool.shutdown()
    return rows


def collect(row: dict[str, object], future: Future | None, cache: Cache, started: float) -> dict[str, object]:
    if future is not None:
        cache.put(row["_key"], future.result())  # type: ignore[arg-type]
    return finish(row, cache, started)


# --------------------------------------------------------------------------- report


def gmean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def codings(rows: list[dict[str, object]]) -> list[str]:
    return [c for c in rows[0] if c.startswith("kmq_") and c != "kmq_raw"] if rows else []


def summary_line(label: str, k: object, rows: list[dict[str, object]], target: float | None) -> str:
    cells = [label, str(k), str(len(rows))]
    for c in codings(rows):
        g = gmean([r[c] / r["best_size"] for r in rows])  # type: ignore[operator]
        mark = "" if target is None else (" ok" if g <= target else " MISS")
        cells.append(f"{g:.3f}{mark}")
    cells.append(f"{target:.2f}" if target is not None else "")
    cells.append(" ".join(f"{f} {sum(r['best'] == f for r in rows)}" for f in FORMATS))
    big = [r for r in rows if r["k"] >= 4]  # type: ignore[operator]
    if big and "kmq_ctx1" in rows[0]:
        worst = max(big, key=lambda r: r["kmq_ctx1"] / r["best_size"])  # type: ignore[operator]
        cells.append(f"{worst['kmq_ctx1'] / worst['best_size']:.3f} {worst['image']} K={worst['k']}")  # type: ignore[operator]
    else:
        cells.append("")
    for f in FORMATS:
        held = [r[f] / r["kmq_ctx1"] for r in rows if r[f] is not None and "kmq_ctx1" in r]  # type: ignore[operator]
        cells.append(f"{gmean(held):.3f}" if held else "-")
    return "| " + " | ".join(cells) + " |"


def report(rows: list[dict[str, object]], args: argparse.Namespace, skipped: dict[str, int]) -> None:
    names = [c[4:] for c in codings(rows)]
    print(f"\n# ratio = kmq file / smallest other file, geometric mean over images; targets {TARGETS}")
    print(f"# skipped for --max-mp: {skipped}; gif: None where the palette has partial alpha")
    head = ["set", "K", "n", *[f"{n}/best" for n in names], "target", "best other (count)", "max ctx1/best K>=4"]
    print("| " + " | ".join(head + [f"{f}/ctx1" for f in FORMATS]) + " |")
    print("|" + "---|" * (len(head) + len(FORMATS)))
    scopes = [(s, (s,), None) for s in args.sets]
    scopes += [(f"group {g}", members, TARGETS[g]) for g, members in GROUPS.items() if set(members) & set(args.sets)]
    for label, members, target in scopes:
        in_scope = [r for r in rows if r["set"] in members]
        for k in args.k:
            at_k = [r for r in in_scope if r["k"] == k]
            if at_k:
                print(summary_line(label, k, at_k, target))
        if in_scope and len(args.k) > 1:
            print(summary_line(label, "all", in_scope, target))
    for c in codings(rows):
        over = [r for r in rows if r["k"] >= 4 and r[c] > r["best_size"]]  # type: ignore[operator]
        shown = ", ".join(f"{r['set']}/{r['image']} K={r['k']} {r[c] / r['best_size']:.3f}" for r in over[:40])  # type: ignore[operator]
        print(f"# {c[4:]}: {len(over)} images above 1.0 at K >= 4{': ' + shown if over else ''}")


def write_outputs(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    if args.csv and rows:
        with open(args.csv, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["kodak", "cq100", "graphics", "graphics2"])
    parser.add_argument("-k", type=int, nargs="+", default=list(KS), help="palette sizes")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the other formats (default 1)")
    parser.add_argument(
        "--space", choices=SPACES, default="rgb", help="quantizer space (default rgb: the cached anchors)"
    )
    parser.add_argument("--every", type=int, default=1, help="take every Nth image of a set, by name")
    parser.add_argument("--max-mp", type=float, help="skip images above X megapixels")
    parser.add_argument("--anchors-only", action="store_true", help="fill the cache only, no kmq sizes")
    parser.add_argument("--verify", action="store_true", help="decode each new file and compare pixels")
    parser.add_argument("--cached-only", action="store_true", help="report only images whose anchors are cached")
    parser.add_argument("--reuse-labels", action="store_true", help="take palette and labels from the npz cache")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--csv", type=Path, help="write every per-image row here")
    parser.add_argument("--json", type=Path, help="write every per-image row here, as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    print("# " + shlex.join([sys.executable, *sys.argv]))
    if not any((args.corpus / name).is_dir() for name in args.sets):
        print(f"no image sets {args.sets} under {args.corpus}; nothing measured")
        return 0
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)}: apt-get install zopfli webp libjxl-tools gifsicle", file=sys.stderr)
        return 1
    sigs = signatures()
    print("\n".join(f"# {line}" for line in machine_lines()))
    print("\n".join(f"# {fmt}: {sig}" for fmt, sig in sigs.items()), flush=True)
    skipped: dict[str, int] = {}
    rows = measure(args, Cache(args.cache, sigs), skipped)
    if not args.anchors_only:
        report(rows, args, skipped)
        write_outputs(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
