"""Measure kmq's quantizer against the anchors, every figure paired in the same run (issue 3).

Usage (from the repository root):
    python benchmarks/bench_quantize.py [--corpus DIR] [--set kodak|photo|graphics|both|all]
        [-k K [K ...]] [--repeat R] [--teaching-repeat R] [--skip-teaching-above K]
        [--methods M [M ...]] [--kmq-option NAME=VALUE ...] [--quiet S [--attempts N]]
        [--memory] [--decode [--decode-k K]] [--ciede] [--per-image] [--csv FILE]

    python benchmarks/bench_quantize.py --set kodak -k 8 16 64 256 --quiet 60
    python benchmarks/bench_quantize.py --set photo -k 8 256 --memory --decode --quiet 120
    python benchmarks/bench_quantize.py --set kodak -k 16 --kmq-option space=oklab --ciede

Methods (each one that is not installed is skipped with a message):

- ``kmq``: ``kmq.quantize(pixels, K, **options)`` (options from ``--kmq-option``, which
  also label the row); its own file is ``Indexed.to_bytes()``; ``dec s`` is ``kmq.decode``.
- ``teaching``: what the course notebooks do,
  ``sklearn.cluster.KMeans(n_clusters=K, random_state=0).fit(pixels.reshape(-1, C))``, palette
  ``cluster_centers_.astype(np.uint8)`` (truncation). Slow at large K: skipped above
  ``--skip-teaching-above`` (default 64) and timed over ``--teaching-repeat`` runs (default 1).
- ``liq``: ``imagequant.quantize_pil_image(img.convert("RGBA"), dithering_level=0.0, max_colors=K)``.
  The time includes the RGBA conversion and the binding's pure-Python copy of every pixel
  (``bytes([c for px in image.getdata() for c in px])``), which is not libimagequant's work:
- ``liq-raw``: ``imagequant.quantize_raw_rgba_bytes(img.convert("RGBA").tobytes(), W, H, ...)``,
  the same libimagequant call and settings without that copy.
- ``pngquant``: the command ``pngquant --nofs --force --output OUT.png K IN.png``, timed as the
  subprocess's wall time (process start, PNG decode and encode included); IN.png is written
  beforehand (untimed) to a temporary folder; OUT.png is read back for the figures, and its
  size is pngquant's own file.
- ``pillow-mc``: ``img.quantize(colors=K, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)``
  (Pillow's median cut takes RGB images only).

Every method ends with a palette and one label per pixel. Figures per image, K and method:
``s`` the median of R timed runs (the quantization only: inputs are prepared untimed, and
building figures from the result is not timed); PSNR (dB, ``kmq.metrics.psnr``) of
``palette[labels]`` against the original pixels (RGBA images: premultiplied by alpha, so the
colour of an invisible pixel does not count, when kmq's psnr offers that); ``png bpp`` the
size, in bits per pixel, of that palette and labels written as a palette PNG by Pillow with
``optimize=True`` (palette trimmed to the highest label used; the same writer for every
method); ``own bpp`` the method's own file (kmq's .kmq, pngquant's PNG); ``pal`` the palette
entries used; with ``--ciede`` the mean CIEDE2000 (``skimage.color.deltaE_ciede2000`` on
``rgb2lab`` of both images, RGB channels only); ``t/kmq`` the method's time over kmq's on
the same image.

Multi-image sets (Kodak, graphics) get one summary table per K: mean PSNR, mean bpp,
median and mean time, and the median over images of the per-image ``t/kmq``. The photo
(the ~12 MP JPEG in ``corpus/photos``) gets one row per method.

``--memory`` (photo set) runs each method in a whole fresh process per K and reports its
peak RSS: ``/usr/bin/time -f %M`` when that binary exists, and ``os.wait4`` of the job
started from a small wrapper process (a process's ``ru_maxrss`` starts at the RSS of the
one it was forked from, so neither reads this big benchmark process's). kmq runs as the
``kmq encode`` command, and also as ``python -c`` like the anchors.

``--decode`` (photo set) quantizes the photo with kmq at ``--decode-k`` (default 8) and times
decoding that image from memory: ``kmq.decode(data)`` to pixels and
``Indexed.from_bytes(data)`` to labels, against Pillow reading the same palette and labels
as a PNG (``optimize=True``), ``np.asarray(Image.open(png).convert("RGB"))`` and
``np.asarray(Image.open(png))`` (the labels).

Fair timing on a shared machine works as in ``bench_core.py``: ``other`` is the
CPU-seconds per second that other processes used while a method was timed (0 = quiet);
``--quiet S`` waits up to S s for the machine to go idle before each image, and measures a
method again (``--attempts`` times in all, keeping the quietest) when others were busy.
The corpus lives outside the repository; when it is missing the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import importlib.metadata
import io
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_core import DEFAULT_CORPUS, LoadWatch, find_photo, machine_lines, wait_quiet
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TIME_BIN = Path("/usr/bin/time")
METHOD_NAMES = ("kmq", "teaching", "liq", "liq-raw", "pngquant", "pillow-mc")
NOISY_SHARE = 0.10  # re-measure when other processes used more CPU-s/s than this ...
NOISY_SECONDS = 0.03  # ... and more CPU-seconds in all (/proc/stat counts 10 ms ticks)


# --------------------------------------------------------------------------- images


@dataclass
class Source:
    """One image, prepared (untimed) in the forms the methods take."""

    name: str
    pixels: np.ndarray  # (H, W, C) uint8, C = 3 or 4, as kmq.images.load_image gives it
    image: Image.Image  # the same pixels as a Pillow RGB or RGBA image
    workdir: Path
    _png: Path | None = None

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def count(self) -> int:
        return int(self.pixels.shape[0] * self.pixels.shape[1])

    def png_input(self) -> Path:
        """The image as a PNG file (pngquant's input), written once."""
        if self._png is None:
            self._png = self.workdir / "input.png"
            self.image.save(self._png)
        return self._png


def load_source(path: Path, workdir: Path) -> Source:
    from kmq.images import load_image

    pixels = load_image(path)
    return Source(path.name, pixels, Image.fromarray(pixels), workdir)


@dataclass
class Quantized:
    """A method's result: palette (n, C) uint8 and labels (H, W) uint8, plus its own file."""

    palette: np.ndarray
    labels: np.ndarray
    own_bytes: int | None = None
    data: bytes | None = None  # a kmq file, for the decode time


def p_image_parts(image: Image.Image, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Palette (n, channels) and labels of a Pillow P image, palette alpha from RGBA or tRNS."""
    labels = np.asarray(image)
    mode = image.palette.mode if image.palette is not None else "RGB"
    width = len(mode)
    entries = np.array(image.getpalette(mode), dtype=np.uint8).reshape(-1, width)
    if channels == 4 and width == 3:
        alpha = np.full(len(entries), 255, dtype=np.uint8)
        transparency = image.info.get("transparency")
        if isinstance(transparency, bytes):
            alpha[: len(transparency)] = np.frombuffer(transparency, dtype=np.uint8)[: len(alpha)]
        elif isinstance(transparency, int):
            alpha[transparency] = 0
        entries = np.column_stack([entries, alpha])
    elif channels == 3 and width == 4:
        entries = entries[:, :3]
    return np.ascontiguousarray(entries), labels


def palette_png(palette: np.ndarray, labels: np.ndarray) -> bytes:
    """Palette and labels as a palette PNG, written by Pillow with optimize=True."""
    used = int(labels.max()) + 1
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    image.putpalette(palette[:used].tobytes(), rawmode="RGBA" if palette.shape[1] == 4 else "RGB")
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def image_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """kmq's PSNR; for RGBA premultiplied by alpha (when this kmq version has that option)."""
    from kmq.metrics import psnr

    if a.shape[-1] == 4:
        try:
            return psnr(a, b, premultiplied=True)
        except TypeError:  # kmq before the premultiplied option
            pass
    return psnr(a, b)


def mean_ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 over every pixel (RGB channels), in row blocks to bound memory."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    total = 0.0
    for start in range(0, a.shape[0], 256):
        la = rgb2lab(a[start : start + 256, :, :3])
        lb = rgb2lab(b[start : start + 256, :, :3])
        total += float(deltaE_ciede2000(la, lb).sum())
    return total / (a.shape[0] * a.shape[1])


# --------------------------------------------------------------------------- methods


class Method:
    """An anchor or kmq: ``run`` is what is timed, ``collect`` turns its result into figures."""

    name = ""
    repeat: int | None = None  # None: --repeat

    def missing(self) -> str | None:
        """Why the method cannot run here, or None."""
        return None

    def skip(self, src: Source, k: int) -> str | None:
        """Why the method does not run on this image and K, or None."""
        return None

    def run(self, src: Source, k: int) -> Any:
        raise NotImplementedError

    def collect(self, raw: Any, src: Source) -> Quantized:
        raise NotImplementedError

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        """(label, command) of whole fresh processes that do this method's work on the photo."""
        return []


def python_job(body: str, photo: Path) -> list[str]:
    """A ``python -c`` that loads the photo as every Python job does, then runs ``body``."""
    load = (
        "import numpy as np\nfrom PIL import Image\n"
        f"img = Image.open({str(photo)!r}).convert('RGB')\npx = np.asarray(img)\n"
    )
    return [sys.executable, "-c", load + body]


class Kmq(Method):
    def __init__(self, options: dict[str, Any], label: str) -> None:
        self.options = options
        self.name = "kmq" + (f"[{label}]" if label else "")

    def missing(self) -> str | None:
        try:
            import kmq  # noqa: F401
        except ImportError as exc:
            return f"kmq not importable: {exc}"
        return None

    def run(self, src: Source, k: int) -> Any:
        import kmq

        return kmq.quantize(src.pixels, k, **self.options)

    def collect(self, raw: Any, src: Source) -> Quantized:
        data = raw.to_bytes()
        return Quantized(np.asarray(raw.palette), np.asarray(raw.labels), len(data), data)

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        jobs = []
        if not self.options:
            exe = Path(sys.executable).with_name("kmq")
            cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "kmq"]
            out = str(workdir / "memory.kmq")
            jobs.append(
                (f"{self.name} (kmq encode command)", [*cli, "encode", str(photo), "-k", str(k), "-o", out, "--force"])
            )
        body = f"import kmq\ndata = kmq.quantize(px, {k}, **{self.options!r}).to_bytes()\n"
        jobs.append((f"{self.name} (python: quantize + to_bytes)", python_job(body, photo)))
        return jobs


class Teaching(Method):
    name = "teaching"

    def __init__(self, repeat: int, skip_above: int) -> None:
        self.repeat = repeat
        self.skip_above = skip_above

    def missing(self) -> str | None:
        try:
            import sklearn.cluster  # noqa: F401
        except ImportError as exc:
            return f"scikit-learn not importable: {exc}"
        return None

    def skip(self, src: Source, k: int) -> str | None:
        return f"K={k} > --skip-teaching-above {self.skip_above}" if k > self.skip_above else None

    def run(self, src: Source, k: int) -> Any:
        from sklearn.cluster import KMeans

        with warnings.catch_warnings():  # fewer distinct colours than K (graphics)
            warnings.simplefilter("ignore")
            return KMeans(n_clusters=k, random_state=0).fit(src.pixels.reshape(-1, src.channels))

    def collect(self, raw: Any, src: Source) -> Quantized:
        palette = raw.cluster_centers_.astype(np.uint8)  # truncation, as the notebooks do
        return Quantized(palette, raw.labels_.astype(np.uint8).reshape(src.pixels.shape[:2]))

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        if k > self.skip_above:
            return []
        body = (
            "from sklearn.cluster import KMeans\n"
            f"km = KMeans(n_clusters={k}, random_state=0).fit(px.reshape(-1, 3))\n"
            "out = km.cluster_centers_[km.labels_].astype(np.uint8)\n"
        )
        return [("teaching (python: fit + reconstruction)", python_job(body, photo))]


class Liq(Method):
    name = "liq"

    def missing(self) -> str | None:
        try:
            import imagequant  # noqa: F401
        except ImportError as exc:
            return f"imagequant not importable: {exc}"
        return None

    def run(self, src: Source, k: int) -> Any:
        import imagequant

        return imagequant.quantize_pil_image(src.image.convert("RGBA"), dithering_level=0.0, max_colors=k)

    def collect(self, raw: Any, src: Source) -> Quantized:
        return Quantized(*p_image_parts(raw, src.channels))

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        body = (
            "import imagequant\n"
            f"q = imagequant.quantize_pil_image(img.convert('RGBA'), dithering_level=0.0, max_colors={k})\n"
        )
        return [("liq (python: quantize_pil_image)", python_job(body, photo))]


class LiqRaw(Liq):
    name = "liq-raw"

    def run(self, src: Source, k: int) -> Any:
        import imagequant

        rgba = src.image.convert("RGBA").tobytes()
        return imagequant.quantize_raw_rgba_bytes(
            rgba, src.image.width, src.image.height, dithering_level=0.0, max_colors=k
        )

    def collect(self, raw: Any, src: Source) -> Quantized:
        labels = np.frombuffer(raw[0], dtype=np.uint8).reshape(src.pixels.shape[:2])
        palette = np.array(raw[1], dtype=np.uint8).reshape(-1, 4)[:, : src.channels]
        return Quantized(np.ascontiguousarray(palette), labels)

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        body = (
            "import imagequant\n"
            "q = imagequant.quantize_raw_rgba_bytes(img.convert('RGBA').tobytes(), img.width, img.height,"
            f" dithering_level=0.0, max_colors={k})\n"
        )
        return [("liq-raw (python: quantize_raw_rgba_bytes)", python_job(body, photo))]


class Pngquant(Method):
    name = "pngquant"

    def __init__(self) -> None:
        self.exe = shutil.which("pngquant")

    def missing(self) -> str | None:
        return None if self.exe else "no pngquant command on PATH"

    def command(self, k: int, png: Path, out: Path) -> list[str]:
        assert self.exe is not None
        return [self.exe, "--nofs", "--force", "--output", str(out), str(k), str(png)]

    def run(self, src: Source, k: int) -> Any:
        out = src.workdir / "pngquant-out.png"
        subprocess.run(self.command(k, src.png_input(), out), check=True, capture_output=True)
        return out

    def collect(self, raw: Any, src: Source) -> Quantized:
        with Image.open(raw) as image:
            image.load()
            palette, labels = p_image_parts(image, src.channels)
        return Quantized(palette, labels, raw.stat().st_size)

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        return [("pngquant (command, PNG input)", self.command(k, png, workdir / "memory-pngquant.png"))]


class PillowMedianCut(Method):
    name = "pillow-mc"

    def skip(self, src: Source, k: int) -> str | None:
        return "RGBA image: Pillow's median cut takes RGB only" if src.channels == 4 else None

    def run(self, src: Source, k: int) -> Any:
        return src.image.quantize(colors=k, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)

    def collect(self, raw: Any, src: Source) -> Quantized:
        return Quantized(*p_image_parts(raw, src.channels))

    def memory_job(self, photo: Path, png: Path, k: int, workdir: Path) -> list[tuple[str, list[str]]]:
        body = f"q = img.quantize(colors={k}, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)\n"
        return [("pillow-mc (python: Image.quantize)", python_job(body, photo))]


def parse_kmq_options(items: list[str]) -> tuple[dict[str, Any], str]:
    """``NAME=VALUE`` strings to keyword arguments (values as Python literals, else strings)."""
    options: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--kmq-option wants NAME=VALUE, got {item!r}")
        try:
            options[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[name] = text
    return options, ",".join(items)


def build_methods(args: argparse.Namespace) -> list[Method]:
    options, label = parse_kmq_options(args.kmq_option)
    every: dict[str, Method] = {
        "kmq": Kmq(options, label),
        "teaching": Teaching(args.teaching_repeat, args.skip_teaching_above),
        "liq": Liq(),
        "liq-raw": LiqRaw(),
        "pngquant": Pngquant(),
        "pillow-mc": PillowMedianCut(),
    }
    methods = []
    for name in args.methods:
        why = every[name].missing()
        if why:
            print(f"method {name}: skipped ({why})")
        else:
            methods.append(every[name])
    return methods


# --------------------------------------------------------------------------- measurements


@dataclass
class Result:
    set: str
    image: str
    width: int
    height: int
    k: int
    method: str
    runs: int
    seconds: float
    other: float | None
    attempts: int
    palette: int
    psnr: float
    png_bytes: int
    own_bytes: int | None
    dec_s: float | None = None
    ciede: float | None = None
    ratio: float | None = field(default=None)  # seconds / kmq's seconds on the same image and K

    @property
    def png_bpp(self) -> float:
        return 8 * self.png_bytes / (self.width * self.height)

    @property
    def own_bpp(self) -> float | None:
        return None if self.own_bytes is None else 8 * self.own_bytes / (self.width * self.height)


def timed_runs(method: Method, src: Source, k: int, repeat: int) -> tuple[list[float], Any, float | None, float]:
    """Run the method ``repeat`` times: times, last result, other processes' share and CPU-s."""
    watch = LoadWatch()
    times, raw = [], None
    for _ in range(repeat):
        raw = None  # let the previous result go before the next run
        start = time.perf_counter()
        raw = method.run(src, k)
        times.append(time.perf_counter() - start)
    wall = time.perf_counter() - watch.wall
    share = watch.other_share()
    return times, raw, share, (share or 0.0) * wall


def measure(method: Method, src: Source, set_name: str, k: int, args: argparse.Namespace) -> Result:
    """Time one method on one image (re-measuring when others were busy) and compute its figures."""
    import kmq

    repeat = method.repeat or args.repeat
    best = None
    attempts = 0
    for attempts in range(1, args.attempts + 1):
        if attempts > 1:
            wait_quiet(args.quiet)
        times, raw, share, other_s = timed_runs(method, src, k, repeat)
        if best is None or (share or 0.0) < (best[2] or 0.0):
            best = (times, raw, share)
        if args.quiet <= 0 or (share or 0.0) <= NOISY_SHARE or other_s <= NOISY_SECONDS:
            break
        raw = None
    assert best is not None
    times, raw, share = best
    q = method.collect(raw, src)
    del raw, best
    out = q.palette[q.labels]
    result = Result(
        set=set_name,
        image=src.name,
        width=src.pixels.shape[1],
        height=src.pixels.shape[0],
        k=k,
        method=method.name,
        runs=repeat,
        seconds=statistics.median(times),
        other=share,
        attempts=attempts,
        palette=int(np.unique(q.labels).size),
        psnr=image_psnr(src.pixels, out),
        png_bytes=len(palette_png(q.palette, q.labels)),
        own_bytes=q.own_bytes,
    )
    if q.data is not None:
        dec = []
        for _ in range(repeat):
            start = time.perf_counter()
            decoded = kmq.decode(q.data)
            dec.append(time.perf_counter() - start)
        if not np.array_equal(decoded, out):
            raise AssertionError(f"{method.name}: kmq.decode differs from palette[labels] on {src.name}")
        result.dec_s = statistics.median(dec)
    if args.ciede:
        result.ciede = mean_ciede2000(src.pixels, out)
    return result


def measure_image(path: Path, set_name: str, k: int, methods: list[Method], args, workdir: Path) -> list[Result]:
    """Every method on one image at one K; the time ratios are paired on this image."""
    if args.quiet > 0:
        wait_quiet(args.quiet)
    src = load_source(path, workdir)
    results = []
    for method in methods:
        why = method.skip(src, k)
        if why is None:
            results.append(measure(method, src, set_name, k, args))
    base = next((r for r in results if r.method.startswith("kmq")), None)
    if base is not None:
        for r in results:
            r.ratio = r.seconds / base.seconds
    return results


def warm_up(methods: list[Method], workdir: Path) -> None:
    """Run every method once on a small image so that no first timing pays for imports."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    src = Source("warm-up", pixels, Image.fromarray(pixels), workdir)
    for method in methods:
        method.collect(method.run(src, 8), src)
    import kmq

    kmq.decode(kmq.quantize(pixels, 8).to_bytes())


# --------------------------------------------------------------------------- peak memory


WAIT4_WRAPPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "p.returncode = os.waitstatus_to_exitcode(status)\n"
    "print('WAIT4', p.returncode, usage.ru_maxrss)\n"
)


def peak_time_bin(cmd: list[str]) -> tuple[int, float]:
    """Peak RSS (KiB) of ``cmd`` from ``/usr/bin/time -f %M``, and its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([str(TIME_BIN), "-f", "TIME %M", *cmd], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("TIME ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(lines[-1].split()[1]), wall


def peak_wait4(cmd: list[str]) -> tuple[int, float]:
    """Peak RSS (KiB) of ``cmd`` from ``os.wait4`` in a small wrapper process, and wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WAIT4_WRAPPER, *cmd], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("WAIT4 ")]
    if proc.returncode != 0 or not lines or lines[-1][1] != "0":
        raise RuntimeError(f"{shlex.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return int(lines[-1][2]), wall


def memory_table(methods: list[Method], photo: Path, png: Path, k: int, workdir: Path) -> list[str]:
    jobs = [("python + load the photo only (every python job does this first)", python_job("", photo))]
    for method in methods:
        jobs += method.memory_job(photo, png, k, workdir)
    width = max(len(label) for label, _ in jobs)
    has_time = TIME_BIN.exists()
    lines = [f"  {'job':<{width}} {'time %M':>9} {'wait4':>9}      {'wall s':>7}"]
    print(lines[0], flush=True)
    for label, cmd in jobs:
        t_kib, t_wall = peak_time_bin(cmd) if has_time else (None, None)
        w_kib, w_wall = peak_wait4(cmd)
        t_col = f"{t_kib / 1024:9.1f}" if t_kib is not None else f"{'-':>9}"
        wall = t_wall if t_wall is not None else w_wall
        lines.append(f"  {label:<{width}} {t_col} {w_kib / 1024:9.1f} MiB  {wall:7.2f}")
        print(lines[-1], flush=True)
    floor, _ = peak_wait4(["true"])
    lines.append(f"  (MiB; wait4 figures cannot go below the wrapper's own {floor / 1024:.1f} MiB: `true` reads that)")
    print(lines[-1])
    return lines


# --------------------------------------------------------------------------- decode comparison


def decode_comparison(photo: Path, k: int, options: dict[str, Any], repeat: int, workdir: Path) -> None:
    import kmq

    src = load_source(photo, workdir)
    indexed = kmq.quantize(src.pixels, k, **options)
    data = indexed.to_bytes()
    png = palette_png(np.asarray(indexed.palette), np.asarray(indexed.labels))
    expect = indexed.to_array()
    try:
        coding = kmq.container.CODINGS[kmq.container.Header.unpack(data).coding]
    except Exception:  # the container API may change; the figure is informative only
        coding = "?"
    n = src.count
    print(
        f"\n[decode] {photo.name} quantized by kmq at K={k} (palette {indexed.k}), decoded from bytes in memory; "
        f"median of {repeat} runs"
    )
    print(
        f"  kmq file: {len(data):,} B ({8 * len(data) / n:.3f} bpp, coding {coding}); "
        f"palette PNG (Pillow, optimize=True): {len(png):,} B ({8 * len(png) / n:.3f} bpp)"
    )
    cases = [
        ("kmq.decode(data) -> RGB pixels", lambda: kmq.decode(data), expect),
        (
            "kmq.Indexed.from_bytes(data) -> palette + labels",
            lambda: kmq.Indexed.from_bytes(data).labels,
            indexed.labels,
        ),
        (
            "np.asarray(Image.open(png).convert('RGB')) -> RGB pixels",
            lambda: np.asarray(Image.open(io.BytesIO(png)).convert("RGB")),
            expect,
        ),
        ("np.asarray(Image.open(png)) -> labels", lambda: np.asarray(Image.open(io.BytesIO(png))), indexed.labels),
    ]
    width = max(len(label) for label, _, _ in cases)
    print(f"  {'decode':<{width}} {'median s':>9} {'min s':>7} {'other':>5}")
    for label, fn, want in cases:
        fn()  # warm
        watch, times, got = LoadWatch(), [], None
        for _ in range(repeat):
            got = None
            start = time.perf_counter()
            got = fn()
            times.append(time.perf_counter() - start)
        share = watch.other_share()
        same = "" if np.array_equal(got, want) else "  MISMATCH"
        print(f"  {label:<{width}} {statistics.median(times):9.3f} {min(times):7.3f} {fmt(share, '5.2f', 5)}{same}")


# --------------------------------------------------------------------------- output


def fmt(value: float | None, spec: str, width: int) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float) and math.isinf(value):
        return f"{'inf':>{width}}"
    return f"{value:{spec}}"


def row_lines(results: list[Result], with_image: bool) -> list[str]:
    width = max([len("method"), *(len(r.method) for r in results)])
    head = f"{'image':<14} " if with_image else ""
    lines = [
        f"{head}{'method':<{width}} {'pal':>3} {'PSNR':>6} {'dE00':>5} {'png bpp':>7} {'own bpp':>7} "
        f"{'runs':>4} {'s':>8} {'t/kmq':>6} {'dec s':>6} {'other':>5}"
    ]
    for r in results:
        img = f"{r.image[:14]:<14} " if with_image else ""
        lines.append(
            f"{img}{r.method:<{width}} {r.palette:>3} {fmt(r.psnr, '6.2f', 6)} {fmt(r.ciede, '5.2f', 5)} "
            f"{r.png_bpp:7.3f} {fmt(r.own_bpp, '7.3f', 7)} {r.runs:>4} {r.seconds:8.3f} {fmt(r.ratio, '6.2f', 6)} "
            f"{fmt(r.dec_s, '6.3f', 6)} {fmt(r.other, '5.2f', 5)}"
        )
    return lines


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summary_lines(results: list[Result], order: list[str]) -> list[str]:
    """One row per method over the images of one set and K."""
    width = max([len("method"), *(len(m) for m in order)])
    lines = [
        f"{'method':<{width}} {'n':>3} {'pal':>5} {'PSNR':>6} {'dE00':>5} {'png bpp':>7} {'own bpp':>7} "
        f"{'med s':>7} {'mean s':>7} {'t/kmq':>6} {'dec s':>6} {'other':>5} {'redo':>4}"
    ]
    notes = []
    for name in order:
        rows = [r for r in results if r.method == name]
        if not rows:
            continue
        finite = [r.psnr for r in rows if math.isfinite(r.psnr)]
        if len(finite) < len(rows):
            notes.append(f"  {name}: {len(rows) - len(finite)} images lossless (PSNR inf), mean PSNR over the rest")

        ciede = [r.ciede for r in rows if r.ciede is not None]
        own = [r.own_bpp for r in rows if r.own_bpp is not None]
        ratios = [r.ratio for r in rows if r.ratio is not None]
        dec = [r.dec_s for r in rows if r.dec_s is not None]
        others = [r.other for r in rows if r.other is not None]
        seconds = [r.seconds for r in rows]
        lines.append(
            f"{name:<{width}} {len(rows):>3} {statistics.fmean(r.palette for r in rows):5.1f} "
            f"{fmt(mean(finite), '6.2f', 6)} {fmt(mean(ciede), '5.2f', 5)} "
            f"{statistics.fmean(r.png_bpp for r in rows):7.3f} {fmt(mean(own), '7.3f', 7)} "
            f"{statistics.median(seconds):7.3f} {statistics.fmean(seconds):7.3f} {fmt(median(ratios), '6.2f', 6)} "
            f"{fmt(median(dec), '6.3f', 6)} {fmt(max(others) if others else None, '5.2f', 5)} "
            f"{sum(r.attempts - 1 for r in rows):>4}"
        )
    return lines + notes


def git_lines() -> list[str]:
    def git(*cmd: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else "?"

    digest = hashlib.sha256()
    for path in sorted((REPO / "codec").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    status = git("status", "--short", "codec")
    changed = "none" if not status else "; ".join(" ".join(ln.split()) for ln in status.splitlines())
    return [
        f"kmq code: commit {git('rev-parse', '--short', 'HEAD')}; uncommitted changes in codec/: {changed}",
        f"codec/*.py sha256 at start: {digest.hexdigest()[:16]}",
    ]


def tool_lines() -> list[str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    pngquant = shutil.which("pngquant")
    pq = "not installed"
    if pngquant:
        pq = subprocess.run([pngquant, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        f"anchors: imagequant {version('imagequant')}, pngquant {pq}, scikit-image {version('scikit-image')}; "
        f"/usr/bin/time {'present' if TIME_BIN.exists() else 'absent'}"
    ]


LEGEND = (
    "columns: pal = palette entries used; PSNR dB vs the original; dE00 = mean CIEDE2000 (--ciede); "
    "png bpp = palette+labels as a Pillow palette PNG (optimize=True); own bpp = the method's own file "
    "(.kmq, pngquant's PNG); s = quantization seconds (median of runs); t/kmq = s / kmq's s on the same "
    "image (summaries: median over images); dec s = kmq.decode; other = CPU-s/s used by other processes "
    "while the method was timed (max over images in summaries); redo = re-measurements because others were busy"
)


# --------------------------------------------------------------------------- main


def write_csv(path: Path, results: list[Result]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*asdict(results[0]).keys(), "png_bpp", "own_bpp"])
        writer.writeheader()
        for r in results:
            writer.writerow({**asdict(r), "png_bpp": r.png_bpp, "own_bpp": r.own_bpp})


def run_set(set_name: str, images: list[Path], methods: list[Method], args, workdir: Path) -> list[Result]:
    everything = []
    order = [m.name for m in methods]
    for k in args.k:
        if len(images) == 1:
            with Image.open(images[0]) as im:
                print(f"\n[{set_name}] {images[0].name} ({im.width}x{im.height}), K={k}", flush=True)
        else:
            print(f"\n[{set_name}] {len(images)} images, K={k}", flush=True)
        if "teaching" in [m.name for m in methods] and k > args.skip_teaching_above:
            print(f"  teaching skipped: K={k} > --skip-teaching-above {args.skip_teaching_above}")
        watch, results = LoadWatch(), []
        for path in images:
            started = time.perf_counter()
            rows = measure_image(path, set_name, k, methods, args, workdir)
            redo = sum(r.attempts - 1 for r in rows)
            print(f"{set_name} K={k} {path.name}: {time.perf_counter() - started:.1f} s, redo {redo}", file=sys.stderr)
            results += rows
            if args.per_image or len(images) == 1:
                lines = row_lines(rows, with_image=len(images) > 1)
                print("\n".join(lines if path == images[0] or len(images) == 1 else lines[1:]), flush=True)
            skipped = [m.name for m in methods if m.name not in {r.method for r in rows}]
            if skipped and len(images) > 1 and args.per_image:
                print(f"  {path.name}: skipped {', '.join(skipped)}")
        if len(images) > 1:
            print(f"summary, {set_name} K={k} (mean PSNR/bpp over images):")
            print("\n".join(summary_lines(results, order)))
        print(watch.report(), flush=True)
        everything += results
    return everything


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder (default: %(default)s)")
    parser.add_argument(
        "--set",
        choices=("kodak", "photo", "graphics", "both", "all"),
        default="both",
        dest="which",
        help="both = kodak + photo; all = kodak + photo + graphics (default: both)",
    )
    parser.add_argument(
        "-k", type=int, nargs="+", default=[8, 16, 64, 256], help="palette sizes (default: 8 16 64 256)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per image and method (median; default 3)")
    parser.add_argument("--teaching-repeat", type=int, default=1, help="timed runs of the teaching fit (default 1)")
    parser.add_argument("--skip-teaching-above", type=int, default=64, metavar="K", help="(default: 64)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(METHOD_NAMES))
    parser.add_argument(
        "--kmq-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="keyword argument for kmq.quantize, e.g. space=oklab or dither=True (repeatable)",
    )
    parser.add_argument("--quiet", type=float, default=0.0, metavar="S", help="wait up to S s for an idle machine")
    parser.add_argument("--attempts", type=int, default=3, help="with --quiet: measurements per method at most")
    parser.add_argument("--memory", action="store_true", help="photo: peak memory of a fresh process per method")
    parser.add_argument("--decode", action="store_true", help="photo: kmq.decode against Pillow reading a PNG")
    parser.add_argument("--decode-k", type=int, default=8, help="K of the --decode comparison (default 8)")
    parser.add_argument("--ciede", action="store_true", help="mean CIEDE2000 too (needs scikit-image)")
    parser.add_argument("--per-image", action="store_true", help="print every image's rows, not only summaries")
    parser.add_argument("--csv", type=Path, help="also write every measurement to this CSV file")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.teaching_repeat < 1 or args.attempts < 1:
        parser.error("--repeat, --teaching-repeat and --attempts must be >= 1")
    try:
        parse_kmq_options(args.kmq_option)
    except ValueError as exc:
        parser.error(str(exc))

    print("$ " + shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])))
    if not args.corpus.is_dir():
        print(f"corpus folder {args.corpus} not found: nothing to benchmark (skipped)")
        return 0
    for line in machine_lines() + tool_lines() + git_lines():
        print(line)
    if args.ciede:
        try:
            import skimage.color  # noqa: F401
        except ImportError:
            print("--ciede: scikit-image is not installed; CIEDE2000 skipped")
            args.ciede = False
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"corpus: {args.corpus}; K = {' '.join(map(str, args.k))}; repeat {args.repeat} "
        f"(teaching {args.teaching_repeat}, skipped above K={args.skip_teaching_above}); quiet {args.quiet:g} s"
    )
    methods = build_methods(args)
    print(f"methods: {', '.join(m.name for m in methods)}")
    print(LEGEND, flush=True)

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench_quantize-") as tmp:
        workdir = Path(tmp)
        warm_up(methods, workdir)
        sets = {"both": ("kodak", "photo"), "all": ("kodak", "photo", "graphics")}.get(args.which, (args.which,))
        for set_name in sets:
            if set_name == "photo":
                photo = find_photo(args.corpus)
                images = [photo] if photo else []
            else:
                images = sorted(p for p in (args.corpus / set_name).glob("*") if p.suffix.lower() in (".png", ".jpg"))
            if not images:
                print(f"\n[{set_name}] no images in {args.corpus}: skipped")
                continue
            results += run_set(set_name, images, methods, args, workdir)
            if set_name == "photo" and args.memory:
                png = load_source(images[0], workdir).png_input()
                for k in args.k:
                    print(f"\n[memory] peak RSS of a whole fresh process, {images[0].name}, K={k}", flush=True)
                    memory_table(methods, images[0], png, k, workdir)
            if set_name == "photo" and args.decode:
                options, _ = parse_kmq_options(args.kmq_option)
                decode_comparison(images[0], args.decode_k, options, args.repeat, workdir)
    if args.csv and results:
        write_csv(args.csv, results)
        print(f"\nwrote {len(results)} rows to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
