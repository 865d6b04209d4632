"""Pictures of what kmq does to an image: palette swatches, side-by-side comparisons and K sweeps.

- :func:`palette_image` draws a palette as a grid of swatches.
- :func:`compare` quantizes an image at several K and returns one picture of
  the original beside each decoded result, captioned with the file's size and
  PSNR, plus those figures as rows.
- :func:`sweep` measures file size and PSNR for every K and payload coding;
  :func:`sweep_csv` writes the rows, :func:`elbow` picks the K where more bits
  stop buying much quality, and :func:`sweep_figure` plots the trade-off.

Every figure comes from a real kmq file: the sizes are ``len()`` of the bytes
the container writes, and :func:`compare` shows the pixels a decoder returns.
Only :func:`sweep_figure` needs matplotlib (the ``kmq[plot]`` extra); the rest
is Pillow and numpy.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TextIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from . import container, metrics
from .colour import DEFAULT_SPACE, Space
from .errors import ParameterError
from .images import ImageLike, as_array
from .indexed import Indexed
from .quantize import Prepared

#: What ``dither`` takes, as :func:`kmq.quantize` does.
Dither = bool | float | Literal["ordered"]

__all__ = [
    "ROW_FIELDS",
    "DEFAULT_KS",
    "Progress",
    "MATPLOTLIB_MISSING",
    "palette_image",
    "compare",
    "sweep",
    "sweep_csv",
    "elbow",
    "sweep_figure",
    "require_matplotlib",
]

#: Keys of every row :func:`compare` and :func:`sweep` return, in CSV column order.
ROW_FIELDS: tuple[str, ...] = (
    "k",  # K asked for
    "palette_size",  # entries actually used (fewer than k when the image has fewer colours)
    "coding",  # payload coding written: "raw", "ctx1" or "mix"
    "file_bytes",  # the whole kmq file
    "payload_bytes",  # the labels alone: file less header, palette and checksum
    "bits_per_pixel",  # 8 * file_bytes / (width * height)
    "psnr",  # dB against the input; None when lossless
    "ssim",  # structural similarity to the input (kmq.metrics.ssim), 1.0 when lossless: the perceptual figure
    "lossless",  # decoded pixels equal the input
    "seconds",  # wall time to quantize (the same for every coding of one K; see _Fits for what it includes)
)
#: The K values :func:`sweep` tries unless told otherwise: every label width from 1 to 8 bits.
DEFAULT_KS: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)
#: What :func:`require_matplotlib` raises, defined once so the CLI and the tests agree.
MATPLOTLIB_MISSING = "the sweep plot needs matplotlib: pip install 'kmq[plot]'"

# Swatch grids: a mid grey line stays visible next to white and black swatches alike.
_SEPARATOR = (160, 160, 160)
_CHECKER_LIGHT = 255
_CHECKER_DARK = 192
_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)
_GREY_INK = (90, 90, 90)
# Layout of compare(), in pixels.
_MARGIN = 20
_GAP = 24
_TEXT_GAP = 8
_LINE_GAP = 3
_FONT_SIZE = 15
_HEADING_SIZE = 20
_TITLE_SIZE = 22
# Panels per row before compare() wraps onto another row.
_PER_ROW = 4
# Cap on a swatch's side under a compare() panel: K=2 should not get two huge blocks.
_MAX_SWATCH = 28
# Width a palette strip may take under a narrower panel: about that of the captions.
_MIN_SWATCHES_WIDTH = 200


# --------------------------------------------------------------------------- swatches


def _checker(height: int, width: int, square: int) -> NDArray[np.uint8]:
    """(H, W) grey levels of a light/dark checkerboard with squares of ``square`` pixels."""
    parity = (np.arange(height)[:, None] // square + np.arange(width)[None, :] // square) % 2
    return np.where(parity == 0, _CHECKER_LIGHT, _CHECKER_DARK).astype(np.uint8)


def _over(colours: NDArray[np.uint8], backdrop: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """RGB of straight-alpha ``colours`` (..., 4) drawn over grey ``backdrop`` (...); RGB passes through."""
    if colours.shape[-1] == 3:
        return colours
    alpha = colours[..., 3:].astype(np.uint32)
    blended = colours[..., :3] * alpha + backdrop[..., None].astype(np.uint32) * (255 - alpha)
    # Integer rounding keeps an opaque colour exactly itself.
    return ((blended + 127) // 255).astype(np.uint8)


def _colours(n: int) -> str:
    return f"{n:,} colour" + ("" if n == 1 else "s")


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _default_columns(k: int) -> int:
    return k if k <= 16 else 16


def palette_image(palette: NDArray[np.uint8], *, size: int = 32, columns: int | None = None) -> Image.Image:
    """Draw a palette as a grid of swatches, in palette order, row by row.

    Parameters
    ----------
    palette : (K, C) uint8 ndarray
        Entries, C = 3 (RGB) or 4 (RGBA, straight alpha); K >= 1.
    size : int
        Side of one swatch in pixels, without the 1-pixel grey line around it.
    columns : int, optional
        Swatches per row; by default K for K <= 16, else 16 (so K=256 is a
        16 x 16 square).

    Returns
    -------
    PIL.Image.Image
        An RGB image of ``columns * (size + 1) + 1`` by ``rows * (size + 1) + 1``
        pixels. Swatch ``i`` sits in row ``i // columns``, column
        ``i % columns``; an opaque entry fills it with exactly its colour, a
        translucent one is drawn over a light/dark checkerboard so that its
        transparency shows. Cells after the last entry are white.

    Raises
    ------
    ParameterError
        If the palette is not a (K, 3|4) uint8 array with K >= 1, or ``size``
        or ``columns`` is not a positive integer.
    """
    palette = np.asarray(palette)
    if palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] not in container.CHANNELS:
        raise ParameterError(f"palette must be a (K, 3|4) uint8 array, got {palette.dtype} {palette.shape}")
    k = int(palette.shape[0])
    if k < 1:
        raise ParameterError("palette is empty")
    size = _check_positive("size", size)
    columns = min(_check_positive("columns", columns) if columns is not None else _default_columns(k), k)
    rows = -(-k // columns)
    pitch = size + 1  # a swatch and the line before it
    height, width = rows * pitch + 1, columns * pitch + 1
    y, x = np.arange(height), np.arange(width)
    # Cell of every pixel (the last line belongs to a cell past the end: clipped, it is a line anyway).
    index = np.minimum(y // pitch, rows - 1)[:, None] * columns + np.minimum(x // pitch, columns - 1)[None, :]
    line = (y % pitch == 0)[:, None] | (x % pitch == 0)[None, :]
    # Checker squares restart in every swatch, so each one looks the same.
    square = max(2, size // 4)
    local_y = ((y % pitch) - 1)[:, None] // square
    local_x = ((x % pitch) - 1)[None, :] // square
    backdrop = np.where((local_y + local_x) % 2 == 0, _CHECKER_LIGHT, _CHECKER_DARK).astype(np.uint8)
    colours = _over(palette[np.minimum(index, k - 1)], backdrop)
    out = np.where(line[:, :, None], np.array(_SEPARATOR, np.uint8), colours)
    if k % columns:
        # Blank the unused cells of the last row, keeping the line that closes the last swatch.
        out[(rows - 1) * pitch + 1 :, (k % columns) * pitch + 1 :] = _BACKGROUND
    return Image.fromarray(np.ascontiguousarray(out))


# --------------------------------------------------------------------------- rows


def _row(
    k: int, indexed: Indexed, written: container.Serialised, quality: float, similarity: float, seconds: float
) -> dict[str, Any]:
    header, data = written
    lossless = math.isinf(quality)
    return {
        "k": int(k),
        "palette_size": indexed.k,
        "coding": container.CODINGS[header.coding],
        "file_bytes": len(data),
        "payload_bytes": len(data) - header.overhead,
        "bits_per_pixel": header.file_bits_per_pixel(len(data)),
        # JSON has no infinity: a lossless result has no PSNR, and says so in "lossless".
        "psnr": None if lossless else float(quality),
        "ssim": float(similarity),
        "lossless": lossless,
        "seconds": seconds,
    }


def _ks(ks: Iterable[int]) -> list[int]:
    values = list(ks)
    if not values:
        raise ParameterError("ks is empty: give at least one K")
    return values


class _Fits:
    """The K values of one image, fitted as :func:`kmq.quantize` would and measured, sharing the work.

    The histogram and what else does not depend on K is made once (:class:`kmq.quantize.Prepared`),
    and the reference side of SSIM once (:class:`_Similarity`); each result is still exactly
    ``kmq.quantize(pixels, k, ...)``, with the PSNR and SSIM that :mod:`kmq.metrics` gives it.
    A fit's seconds are its wall time, with the shared work counted in the first; in
    :func:`compare` and :func:`sweep` a fit runs beside the coding of earlier K
    (:func:`_each_fit`), so its time includes what that coding took from it.
    """

    def __init__(self, pixels: NDArray[np.uint8], seed: int, space: Space, dither: Dither) -> None:
        start = time.perf_counter()
        self.prepared = Prepared(pixels, seed=seed, space=space, dither=dither)
        self._shared = time.perf_counter() - start
        self._similarity: _Similarity | None = None

    def fit(self, k: int) -> tuple[Indexed, float, float, float]:
        """The result for ``k``, its PSNR and SSIM against the image, and the seconds it took to fit."""
        start = time.perf_counter()
        indexed, quality = self.prepared.fit(k)
        seconds, self._shared = time.perf_counter() - start + self._shared, 0.0
        if self._similarity is None:
            self._similarity = _Similarity(self.prepared.pixels)
        return indexed, quality, self._similarity.ssim(indexed), seconds


#: How many K :func:`_each_fit` may fit ahead of the caller: enough to keep the fitting thread
#: busy while the caller writes files, few enough that waiting results hold little memory.
_FITS_AHEAD = 2


def _each_fit(
    fits: _Fits, ks: Sequence[int], progress: Progress | None
) -> Iterator[tuple[int, Indexed, float, float, float]]:
    """``(k, *fits.fit(k))`` for each K in turn, the next K fitted on a second thread meanwhile.

    The caller writes each K's files (the mix coder keeps both cores busy) while the following
    K are fitted (mostly on one core), so the two overlap. The fits still run one at a time and
    in order, so each is what it would be alone. ``progress`` is called as the caller's turn at
    each K comes.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="kmq-fit") as pool:
        pending: deque[Future[tuple[Indexed, float, float, float]]] = deque()
        try:
            for i, k in enumerate(ks):
                for later in ks[i + len(pending) : i + 1 + _FITS_AHEAD]:
                    pending.append(pool.submit(fits.fit, later))
                if progress is not None:
                    progress(k, i + 1, len(ks))
                yield (k, *pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()  # an error or an abandoned loop: no fits that nobody will use


#: Pixels per block of the reference's luma in :class:`_Similarity`: 8 MiB of floats per channel.
_LUMA_BLOCK_PIXELS = 1 << 20


class _Similarity:
    """:func:`kmq.metrics.ssim` of one reference against many indexed images, bit for bit.

    SSIM is measured on luma averaged down to a short side of about 256 pixels, so nearly
    all of its time goes into the luma of the full-size images. The reference's is made once,
    and an indexed image's is looked up from its palette's luma (the same float operations
    per pixel, so the same values), never expanding the pixels. ``tests/test_pictures.py``
    checks the figure against :func:`kmq.metrics.ssim` exactly.
    """

    def __init__(self, reference: NDArray[np.uint8]) -> None:
        # Row blocks: the float copies of the channels stay small (luma is per pixel, so the same values).
        luma = np.empty(reference.shape[:2])
        rows = max(1, _LUMA_BLOCK_PIXELS // reference.shape[1])
        for top in range(0, reference.shape[0], rows):
            luma[top : top + rows] = metrics._luma(reference[top : top + rows])
        self.factor = max(1, round(min(luma.shape) / metrics._SSIM_SIDE))
        self.x = self._reduced(luma)

    def _reduced(self, luma: NDArray[np.float64]) -> NDArray[np.float64]:
        factor = self.factor
        if factor == 1:
            return luma
        h, w = luma.shape[0] // factor * factor, luma.shape[1] // factor * factor
        reduced: NDArray[np.float64] = luma[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        return reduced

    def ssim(self, indexed: Indexed) -> float:
        """``kmq.metrics.ssim(reference, indexed)``."""
        table = metrics._luma(indexed.palette[None])[0]
        x, y = self.x, self._reduced(table[indexed.labels])
        taps = min(metrics._SSIM_TAPS, *(n if n % 2 else n - 1 for n in x.shape))
        offsets = np.arange(taps) - taps // 2
        kernel = np.exp(-(offsets**2) / (2 * metrics._SSIM_SIGMA**2))
        kernel /= kernel.sum()
        mx, my = metrics._filtered(x, kernel), metrics._filtered(y, kernel)
        sxx = metrics._filtered(x * x, kernel) - mx * mx
        syy = metrics._filtered(y * y, kernel) - my * my
        sxy = metrics._filtered(x * y, kernel) - mx * my
        c1, c2 = metrics._C1, metrics._C2
        index = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        return float(index.mean())


# --------------------------------------------------------------------------- compare

#: What :func:`compare` and :func:`sweep` call before each K: ``progress(k, i, n)``, the i-th of n (from 1).
Progress = Callable[[int, int, int], object]

#: A scalable FreeType font, or Pillow's fixed bitmap font where FreeType is missing.
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> _Font:
    """Pillow's bundled font at ``size`` pixels, or its fixed bitmap font where that cannot scale."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 takes no size; no FreeType may fail to load
        return ImageFont.load_default()


def _line_height(font: _Font) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent + descent)
    return int(font.getbbox("Ag")[3])


def _text_width(text: str, font: _Font) -> int:
    return math.ceil(font.getlength(text))


def _panel_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Display size of a ``width`` x ``height`` image in a ``max_width`` x ``max_height`` box.

    Larger images shrink to fit; smaller ones grow by the largest whole factor that fits, so each
    pixel becomes a square block (a 32 x 32 icon is not a speck beside its captions).
    """
    if width <= max_width and height <= max_height:
        factor = min(max_width // width, max_height // height)
        return width * factor, height * factor
    scale = min(max_width / width, max_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _display(pixels: NDArray[np.uint8], size: tuple[int, int]) -> Image.Image:
    """The image at ``size`` (from :func:`_panel_size`) for the eye: RGBA is shown over a checkerboard."""
    width = pixels.shape[1]
    if size[0] >= width:
        # Whole-factor enlargement by repetition: every pixel shown exactly, nothing interpolated.
        factor = size[0] // width
        image = Image.fromarray(np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1))
    else:
        # The same filter for the original and every decoded result, so that the panels differ
        # only by what quantization did; Pillow resizes RGBA premultiplied, so hidden colours do not bleed.
        image = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if image.mode != "RGBA":
        return image.convert("RGB")
    shown = _over(np.asarray(image), _checker(image.height, image.width, 8))
    return Image.fromarray(np.ascontiguousarray(shown))


class _Cell:
    """One panel of :func:`compare`: picture, caption lines and an optional palette, stacked."""

    def __init__(
        self,
        picture: Image.Image,
        heading: str,
        lines: list[str],
        swatches: Image.Image | None,
        fonts: tuple[_Font, _Font],
    ) -> None:
        self.picture, self.heading, self.lines, self.swatches = picture, heading, lines, swatches
        self.heading_font, self.font = fonts
        self.text_height = _line_height(self.heading_font) + len(lines) * (_line_height(self.font) + _LINE_GAP)
        widths = [picture.width, _text_width(heading, self.heading_font)]
        widths += [_text_width(line, self.font) for line in lines]
        if swatches is not None:
            widths.append(swatches.width)
        self.width = max(widths)
        self.height = picture.height + _TEXT_GAP + self.text_height
        if swatches is not None:
            self.height += _TEXT_GAP + swatches.height

    def draw(self, canvas: Image.Image, x: int, y: int) -> None:
        canvas.paste(self.picture, (x, y))
        pen = ImageDraw.Draw(canvas)
        y += self.picture.height + _TEXT_GAP
        pen.text((x, y), self.heading, fill=_INK, font=self.heading_font)
        y += _line_height(self.heading_font) + _LINE_GAP
        for line in self.lines:
            pen.text((x, y), line, fill=_GREY_INK, font=self.font)
            y += _line_height(self.font) + _LINE_GAP
        if self.swatches is not None:
            canvas.paste(self.swatches, (x, y - _LINE_GAP + _TEXT_GAP))


def _swatches_for(palette: NDArray[np.uint8], panel_width: int) -> Image.Image:
    """A palette strip about as wide as its panel: 32 columns above K=64 keep K=256 to 8 short rows."""
    k = palette.shape[0]
    columns = k if k <= 16 else 16 if k <= 64 else 32
    # A narrow panel's cell is as wide as its captions anyway: swatches may use that width.
    width = max(panel_width, _MIN_SWATCHES_WIDTH)
    size = max(6, min(_MAX_SWATCH, (width - 1) // columns - 1))
    return palette_image(palette, size=size, columns=columns)


def _grid(cells: list[_Cell], per_row: int, title: str) -> Image.Image:
    rows = [cells[start : start + per_row] for start in range(0, len(cells), per_row)]
    column_width = max(cell.width for cell in cells)
    row_heights = [max(cell.height for cell in row) for row in rows]
    title_font = _font(_TITLE_SIZE)
    title_height = _line_height(title_font) + _TEXT_GAP if title else 0
    columns = min(per_row, len(cells))
    width = max(
        2 * _MARGIN + columns * column_width + (columns - 1) * _GAP, 2 * _MARGIN + _text_width(title, title_font)
    )
    height = 2 * _MARGIN + title_height + sum(row_heights) + (len(rows) - 1) * _GAP
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    if title:
        ImageDraw.Draw(canvas).text((_MARGIN, _MARGIN), title, fill=_INK, font=title_font)
    y = _MARGIN + title_height
    for row, row_height in zip(rows, row_heights, strict=True):
        for column, cell in enumerate(row):
            cell.draw(canvas, _MARGIN + column * (column_width + _GAP), y)
        y += row_height + _GAP
    return canvas


def compare(
    pixels: ImageLike,
    ks: Sequence[int],
    *,
    seed: int = 0,
    coding: int | str = container.DEFAULT_CODING,
    space: Space = DEFAULT_SPACE,
    dither: Dither = False,
    max_width: int = 480,
    max_height: int | None = None,
    per_row: int | None = None,
    title: str = "",
    progress: Progress | None = None,
) -> tuple[Image.Image, list[dict[str, Any]]]:
    """One picture of an image beside its kmq results at several K, with their figures.

    Each K is quantized as :func:`kmq.quantize` does (the histogram counted once
    for all of them) and written as a kmq file in ``coding`` (with the usual
    fallback to raw packing where ctx1 or mix would not be smaller): the sizes
    are those of real files, and the panels show the palette and labels that
    file holds, which are exactly what a decoder returns.

    Parameters
    ----------
    pixels : (H, W, 3|4) uint8 ndarray or PIL.Image.Image
        The image, normalised by :func:`kmq.images.as_array`.
    ks : sequence of int
        Palette sizes, 1 to 256, shown in this order.
    seed, space, dither
        As for :func:`kmq.quantize`.
    coding : int or str
        Payload coding, ``"mix"`` (default), ``"ctx1"`` or ``"raw"``.
    max_width : int
        Widest a panel is drawn, in pixels. Larger images are downscaled for
        display only, every panel with the same Lanczos filter (PSNR is
        measured at full resolution); smaller ones are enlarged by the
        largest whole factor that fits, each pixel becoming a square block.
    max_height : int, optional
        Tallest a panel is drawn; by default ``max_width``, so portrait photos
        stay on screen.
    per_row : int, optional
        Panels per row; by default at most 4, balanced over the rows needed.
    title : str
        Line of text above the panels (e.g. the file name); none if empty.
    progress : callable, optional
        Called as ``progress(k, i, n)`` before the ``i``-th of the ``n`` K
        values (from 1) is quantized, e.g. to show how far a long run is.

    Returns
    -------
    picture : PIL.Image.Image
        RGB, white background. The first panel is the original, captioned
        with its size, distinct colours and raw size; then one per K,
        captioned with K, the file's bits per pixel and bytes, PSNR (or
        "lossless"), and the payload coding and palette entries used, with
        the palette as swatches underneath.
    rows : list of dict
        One per K, with the keys of :data:`ROW_FIELDS`; every value is
        JSON-able (``psnr`` is None when ``lossless`` is True).

    Raises
    ------
    ParameterError
        If ``ks`` is empty or an option is invalid (see :func:`kmq.quantize`).
    ImageError
        If a Pillow image cannot be read.
    """
    pixels = as_array(pixels)
    ks = _ks(ks)
    container.coding_number(coding)  # a bad name fails before any work
    max_width = _check_positive("max_width", max_width)
    max_height = max_width if max_height is None else _check_positive("max_height", max_height)
    if per_row is not None:
        per_row = _check_positive("per_row", per_row)
    height, width = pixels.shape[:2]
    shown = _panel_size(width, height, max_width, max_height)
    fonts = (_font(_HEADING_SIZE), _font(_FONT_SIZE))
    fits = _Fits(pixels, seed, space, dither)
    cells = [_original_cell(pixels, fits.prepared.histogram.colours.shape[0], shown, fonts)]
    rows = []
    for k, indexed, quality, similarity, seconds in _each_fit(fits, ks, progress):
        written = indexed.serialise(coding)
        row = _row(k, indexed, written, quality, similarity, seconds)
        rows.append(row)
        # The container is exact (tested bit for bit): these are the pixels a decoder returns.
        cells.append(_result_cell(row, indexed.to_array(), indexed.palette, shown, fonts))
    return _grid(cells, per_row or _balanced_per_row(len(cells)), title), rows


def _original_cell(
    pixels: NDArray[np.uint8], distinct: int, shown: tuple[int, int], fonts: tuple[_Font, _Font]
) -> _Cell:
    """The first panel of :func:`compare`: the input, captioned with its size, distinct colours and raw size."""
    height, width, channels = pixels.shape
    lines = [
        f"{width}x{height} {container.mode_name(channels)}, {_colours(distinct)}",
        f"{height * width * channels:,} bytes raw, {8 * channels} bits/px",
    ]
    return _Cell(_display(pixels, shown), "original", lines, None, fonts)


def _result_cell(
    row: Mapping[str, Any],
    decoded: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    shown: tuple[int, int],
    fonts: tuple[_Font, _Font],
) -> _Cell:
    """A panel of :func:`compare` for one K: what a decoder returns, its file's figures and its palette."""
    k = row["k"]
    quality = "lossless" if row["lossless"] else f"PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}"
    # Fewer entries than asked for happen when the image has fewer colours than K.
    used = _colours(row["palette_size"]) + ("" if row["palette_size"] == k else f" (of K={k})")
    lines = [f"{row['bits_per_pixel']:.3f} bits/px, {row['file_bytes']:,} bytes", quality, f"{row['coding']}, {used}"]
    return _Cell(_display(decoded, shown), f"K={k}", lines, _swatches_for(palette, shown[0]), fonts)


def _balanced_per_row(cells: int) -> int:
    """At most :data:`_PER_ROW` panels a row, spread evenly over the rows needed (5 panels: 3 + 2, not 4 + 1)."""
    lines_needed = -(-cells // _PER_ROW)
    return -(-cells // lines_needed)


# --------------------------------------------------------------------------- sweep


def sweep(
    pixels: ImageLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    seed: int = 0,
    space: Space = DEFAULT_SPACE,
    dither: Dither = False,
    codings: Sequence[int | str] = ("raw", "ctx1", "mix"),
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """File size and quality of an image at each K, for each payload coding.

    Each K is quantized once; the same palette and labels are then written in
    every coding with ``strict=True``, so each row measures that coding itself
    (ctx1 or mix may come out larger than raw packing on a tiny or noisy
    image, which the default, non-strict writer would avoid by writing raw).

    Parameters
    ----------
    pixels : (H, W, 3|4) uint8 ndarray or PIL.Image.Image
        The image, normalised by :func:`kmq.images.as_array`.
    ks : sequence of int
        Palette sizes, 1 to 256; duplicates are dropped and rows come in
        ascending K.
    seed, space, dither
        As for :func:`kmq.quantize`.
    codings : sequence of int or str
        Payload codings to measure, by name or number.
    progress : callable, optional
        Called as ``progress(k, i, n)`` before the ``i``-th of the ``n``
        distinct K values (from 1, ascending) is quantized.

    Returns
    -------
    list of dict
        One row per K and coding, with the keys of :data:`ROW_FIELDS`
        (``psnr`` is None when ``lossless``; ``seconds`` is the quantization
        time, shared by the rows of one K). A ctx1 or mix row is left out where
        that coding cannot be written: when the result has a single colour
        (both need at least two entries), or, rarely, when it would exceed raw
        packing plus its overhead allowance.

    Raises
    ------
    ParameterError
        If ``ks`` is empty, a coding is unknown or an option is invalid.
    ImageError
        If a Pillow image cannot be read.
    """
    pixels = as_array(pixels)
    ks = sorted(set(_ks(ks)))
    names = [container.CODINGS[container.coding_number(coding)] for coding in codings]
    if not names:
        raise ParameterError("codings is empty: give at least one")
    fits = _Fits(pixels, seed, space, dither)
    rows = []
    # The container is exact (tested bit for bit): the figures of the labels are those of every file.
    for k, indexed, quality, similarity, seconds in _each_fit(fits, ks, progress):
        for name in dict.fromkeys(names):
            try:
                written = container.serialise(indexed.palette, indexed.labels, name, strict=True)
            except ParameterError:
                continue  # ctx1 with one colour, or over its limit: no such file exists
            rows.append(_row(k, indexed, written, quality, similarity, seconds))
    return rows


def sweep_csv(rows: Iterable[Mapping[str, Any]], file: str | os.PathLike[str] | TextIO) -> None:
    """Write rows as CSV: a header line, then one line per row.

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`sweep` or :func:`compare`. Columns are
        :data:`ROW_FIELDS` in that order, then any other keys in the order
        first seen.
    file : path-like or text file
        Destination; a path is opened with ``newline=""`` as the csv module
        wants, and overwritten.

    Notes
    -----
    Numbers are written unformatted (``str`` of the value) so nothing is
    lost; None (a lossless row's ``psnr``) becomes an empty field and
    booleans ``True``/``False``.
    """
    rows = list(rows)
    fields = [name for name in ROW_FIELDS if any(name in row for row in rows)]
    for row in rows:
        fields += [name for name in row if name not in fields]
    if isinstance(file, (str, os.PathLike)):
        with open(file, "w", newline="", encoding="utf-8") as handle:
            _write_csv(rows, fields, handle)
    else:
        _write_csv(rows, fields, file)


def _write_csv(rows: list[Mapping[str, Any]], fields: list[str], handle: TextIO) -> None:
    writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def elbow(rows: Iterable[Mapping[str, Any]], *, coding: str = container.DEFAULT_CODING) -> int | None:
    """The K where the PSNR against bits-per-pixel curve bends (Kneedle).

    The points (bits per pixel, PSNR) of ``coding``'s rows, in ascending K,
    are scaled so that the first lands on (0, 0) and the last on (1, 1); the
    knee is the point furthest above the straight line between them, where
    the curve stops rising steeply: below it a few more bits buy much
    quality, above it little (Satopaa et al. 2011, "Finding a 'Kneedle' in a
    Haystack").

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`sweep`. Lossless rows (no finite PSNR) are left out.
    coding : str
        Whose rows to use; ctx1 by default, the coding kmq writes.

    Returns
    -------
    int or None
        The knee's ``k``; None with fewer than three lossy points, when the
        end points have equal size or quality, or when no point lies above
        the line (a straight or convex curve has no knee).
    """
    points = sorted(
        (int(row["k"]), float(row["bits_per_pixel"]), float(row["psnr"]))
        for row in rows
        if row["coding"] == coding and row.get("psnr") is not None and math.isfinite(float(row["psnr"]))
    )
    if len(points) < 3:
        return None
    ks = [k for k, _, _ in points]
    x = np.array([bits for _, bits, _ in points])
    y = np.array([quality for _, _, quality in points])
    x_span, y_span = x[-1] - x[0], y[-1] - y[0]
    if x_span <= 0 or y_span <= 0:
        return None
    above = (y - y[0]) / y_span - (x - x[0]) / x_span
    best = int(np.argmax(above))
    # Tolerance: the points of a straight line land on the chord up to rounding.
    return ks[best] if above[best] > 1e-9 else None


# --------------------------------------------------------------------------- figure


def require_matplotlib() -> None:
    """Check that matplotlib can be imported.

    Raises
    ------
    ImportError
        With :data:`MATPLOTLIB_MISSING` as its message, if it cannot.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(MATPLOTLIB_MISSING) from None


def sweep_figure(rows: Sequence[Mapping[str, Any]], *, title: str = "") -> bytes:
    """Plot a sweep: PSNR and file size against K, and the trade-off between them, per payload coding.

    Three panels, 1500 x 460 pixels:

    1. PSNR (dB) against K, which does not depend on the coding.
    2. The whole file's bits per pixel against K, one line per coding.
    3. PSNR against bits per pixel, one curve per coding with each point
       labelled with its K: the trade-off itself, where the coding to the
       left gives the same quality for fewer bits.

    The first two share a log2 K axis with a tick at every K measured, and a
    dashed line marks the :func:`elbow` of the ctx1 rows (of the first
    coding when there are none), so the K to choose and what it costs read
    off one vertical; the third circles it. Lossless results have no PSNR:
    they are drawn as triangles on a line 3 dB above the best lossy one.

    Parameters
    ----------
    rows : sequence of mapping
        Rows of :func:`sweep`.
    title : str
        Figure title, e.g. the image's name; "kmq sweep" if empty.

    Returns
    -------
    bytes
        A PNG file.

    Raises
    ------
    ImportError
        If matplotlib is not installed (:data:`MATPLOTLIB_MISSING`).
    ParameterError
        If ``rows`` is empty.
    """
    require_matplotlib()
    # Figure and the Agg canvas directly: pyplot's global state and GUI backends stay out of it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(rows)
    if not rows:
        raise ParameterError("no rows to plot")
    codings = list(dict.fromkeys(str(row["coding"]) for row in rows))
    ks = sorted({int(row["k"]) for row in rows})
    knee_coding = next((name for name in (container.DEFAULT_CODING, "ctx1") if name in codings), codings[0])
    knee = elbow(rows, coding=knee_coding)
    knee_label = f"elbow, K={knee} ({knee_coding})"

    figure = Figure(figsize=(15, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    quality_axes, size_axes, trade_axes = figure.subplots(1, 3)
    top = _plot_quality(quality_axes, rows, ks)
    for coding in codings:
        mine = sorted((int(row["k"]), row) for row in rows if row["coding"] == coding)
        (line,) = size_axes.plot(
            [k for k, _ in mine], [float(row["bits_per_pixel"]) for _, row in mine], marker="o", label=coding
        )
        knee_here = knee if coding == knee_coding else None
        _plot_trade_off(trade_axes, coding, mine, top, line.get_color(), knee_here, knee_label)
    size_axes.set_ylabel("bits per pixel, whole file (lower is better)")
    size_axes.set_ylim(bottom=0)
    size_axes.set_title("File size")
    trade_axes.set_xlabel("bits per pixel, whole file")
    trade_axes.set_ylabel("PSNR (dB)")
    # Room on the right for the last point's K label.
    trade_axes.set_xlim(0, 1.1 * max(float(row["bits_per_pixel"]) for row in rows))
    trade_axes.set_title("Trade-off (points labelled with K)")
    trade_axes.grid(True, alpha=0.3)
    trade_axes.legend(loc="lower right")
    for axes in (quality_axes, size_axes):
        _k_axis(axes, ks, knee, knee_label)
    figure.suptitle(title or "kmq sweep")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _plot_quality(axes: Any, rows: Sequence[Mapping[str, Any]], ks: list[int]) -> float:
    """PSNR against K on ``axes`` (the same for every coding); returns the height lossless points are drawn at."""
    first: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(int(row["k"]), row)
    lossy = [(k, float(first[k]["psnr"])) for k in ks if first[k]["psnr"] is not None]
    lossless = [k for k in ks if first[k]["psnr"] is None]
    # Lossless results have no PSNR to plot: they go on a line of their own above the rest.
    top = max((quality for _, quality in lossy), default=40.0) + 3
    if lossy:
        axes.plot(*zip(*lossy, strict=True), marker="o", color="black")
    if lossless:
        axes.plot(lossless, [top] * len(lossless), "^", color="black", label="lossless")
    axes.set_ylabel("PSNR (dB, higher is better)")
    axes.set_title("Quality (the same for every coding)")
    return top


def _plot_trade_off(
    axes: Any,
    coding: str,
    mine: list[tuple[int, Mapping[str, Any]]],
    top: float,
    colour: Any,
    knee: int | None,
    knee_label: str,
) -> None:
    """One coding's PSNR against bits per pixel, each point labelled with its K; ``knee`` circled if given."""
    points = [(float(row["bits_per_pixel"]), float(row["psnr"]), k) for k, row in mine if row["psnr"] is not None]
    exact = [(float(row["bits_per_pixel"]), top, k) for k, row in mine if row["psnr"] is None]
    if points:
        bits, quality, point_ks = zip(*points, strict=True)
        axes.plot(bits, quality, marker="o", color=colour, label=coding)
        if knee is not None and knee in point_ks:
            at = point_ks.index(knee)
            axes.plot(
                bits[at], quality[at], "o", markersize=14, markerfacecolor="none", markeredgecolor="grey",
                label=knee_label,
            )  # fmt: skip
    if exact:
        axes.plot(*list(zip(*exact, strict=True))[:2], "^", color=colour, label=f"{coding}, lossless")
    # Every K past the image's colour count gives the same file: one label for the lot.
    labels: dict[tuple[float, float], list[str]] = {}
    for x, y, k in points + exact:
        labels.setdefault((x, y), []).append(str(k))
    for (x, y), names in labels.items():
        axes.annotate(", ".join(names), (x, y), xytext=(4, -11), textcoords="offset points", fontsize=8, color=colour)


def _k_axis(axes: Any, ks: list[int], knee: int | None, knee_label: str) -> None:
    """A log2 K axis with a tick at every K measured, and the elbow as a dashed vertical line."""
    from matplotlib.ticker import FixedLocator, NullLocator

    axes.set_xscale("log", base=2)
    axes.xaxis.set_major_locator(FixedLocator(ks))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([str(k) for k in ks])
    axes.set_xlabel("K (palette entries)")
    axes.grid(True, alpha=0.3)
    if knee is not None:
        axes.axvline(knee, color="grey", linestyle="--", linewidth=1, label=knee_label)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left")
