"""Dithering: choosing pixels' palette entries so that areas, not single pixels, match the image.

Two kinds, both on RGB and RGBA (RGBA is dithered premultiplied, so the colour under
a transparent pixel carries no error), both starting from the undithered labels:

- **error diffusion** (:func:`diffuse`): Floyd-Steinberg (or Sierra Lite) in
  serpentine order, in C (:mod:`kmq._remap`). Every pixel takes a share of the
  error its neighbours passed on, given by the **dither map** (:func:`dither_map`): 1 in smooth
  areas and gradients, where banding shows, falling to 0 at edges and in texture,
  where banding does not show and noise would only cost bytes and sharpness (as
  libimagequant does). The carried error is clamped, so one bright pixel cannot
  smear a streak, and a pixel the error does not move to another entry keeps its
  undithered one.
- **ordered** (:func:`ordered`): an 8 x 8 Bayer threshold added to each pixel,
  scaled by the palette's typical spacing and the same dither map, then the
  nearest entry: the same colour in the same place always gets the same label,
  so the frames of an animation do not shimmer.

``strength`` (0 to 1) scales the map; 0 gives the undithered labels exactly.
Images are diffused in fixed bands of :data:`BAND_ROWS` rows, the bands on both
cores; the result does not depend on the number of threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from . import kmeans, threads
from .errors import ParameterError
from .kmeans import _remap  # None without a C compiler: error diffusion is then unavailable

__all__ = ["KERNELS", "BAND_ROWS", "AVAILABLE", "dither_map", "diffuse", "ordered", "diffusion_space"]

Kernel = Literal["floyd-steinberg", "sierra-lite"]
#: Error-diffusion kernels, by name.
KERNELS: tuple[Kernel, ...] = ("floyd-steinberg", "sierra-lite")
#: Rows per band of error diffusion: error does not cross a band's lower edge, so bands run in
#: parallel; at 512 rows the seams cost nothing measurable (BENCHMARKS.md, issue 13).
BAND_ROWS = 512
#: Whether error diffusion can run here (it needs the C extension kmq._remap).
AVAILABLE = _remap is not None

#: Second differences at or above this (in bytes, the largest channel) mean an edge or
#: texture: no dithering there. Below it the map falls linearly from 1 at 0.
_ACTIVITY_EDGE = 48.0
#: The largest error a pixel may carry per channel, in bytes, is the palette's typical spacing
#: (a pixel between two entries carries up to that) but at least this: error beyond it is what no
#: entry can reach (a saturated colour outside the palette), and carrying it smears streaks.
_CLAMP_MIN = 32.0

_BAYER = np.array(
    [
        [0, 32, 8, 40, 2, 34, 10, 42],
        [48, 16, 56, 24, 50, 18, 58, 26],
        [12, 44, 4, 36, 14, 46, 6, 38],
        [60, 28, 52, 20, 62, 30, 54, 22],
        [3, 35, 11, 43, 1, 33, 9, 41],
        [51, 19, 59, 27, 49, 17, 57, 25],
        [15, 47, 7, 39, 13, 45, 5, 37],
        [63, 31, 55, 23, 61, 29, 53, 21],
    ]
)
#: Bayer's thresholds centred on zero, in (-0.5, 0.5).
_THRESHOLDS = ((_BAYER + 0.5) / 64.0 - 0.5).astype(np.float32)


def diffusion_space(colours: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Where error is measured and diffused: the bytes, colour premultiplied by alpha for RGBA.

    Parameters
    ----------
    colours : (..., 3|4) uint8 ndarray

    Returns
    -------
    float32 ndarray of the same shape
        0 to 255.
    """
    values = colours.astype(np.float32)
    if colours.shape[-1] == 4:
        values[..., :3] *= values[..., 3:] / np.float32(255.0)
    return values


def dither_map(pixels: NDArray[np.uint8], strength: float = 1.0) -> NDArray[np.uint8]:
    """How much each pixel dithers, in 1/255: 255 in smooth areas, 0 at edges and in texture.

    The activity of a pixel is the largest second difference (across or down, any channel)
    of it and its eight neighbours; second differences are zero on a linear gradient, so
    gradients dither fully while an edge and the pixels beside it do not. The C extension
    computes it in one pass (0.19 s against 1.8 s on a 12 MP photo); :func:`_dither_map_numpy`
    is the same arithmetic in numpy, used without it, and its definition.

    Parameters
    ----------
    pixels : (H, W, C) uint8 ndarray
    strength : float
        0 to 1, scales the whole map.

    Returns
    -------
    (H, W) uint8 ndarray
    """
    if _remap is None:
        return _dither_map_numpy(pixels, strength)
    height, width, channels = pixels.shape
    share = np.empty((height, width), dtype=np.uint8)
    scale = float(np.float32(255.0 * strength))
    _remap.dither_map(np.ascontiguousarray(pixels), width, height, channels, _ACTIVITY_EDGE, scale, share)
    return share


def _dither_map_numpy(pixels: NDArray[np.uint8], strength: float = 1.0) -> NDArray[np.uint8]:
    """:func:`dither_map` in numpy: the route without the C extension, and its definition."""
    height, width = pixels.shape[:2]
    activity = np.zeros((height, width), dtype=np.float32)
    for start in range(0, height, BAND_ROWS):
        # Each band with two rows of context either side (one for the second difference, one for the
        # 3 x 3 maximum), so the result is the same whatever the band height.
        lo, hi = max(0, start - 2), min(height, start + BAND_ROWS + 2)
        part = np.pad(diffusion_space(pixels[lo:hi]), ((1, 1), (1, 1), (0, 0)), mode="edge")
        centre = part[1:-1, 1:-1]
        across = np.abs(2 * centre - part[1:-1, :-2] - part[1:-1, 2:]).max(axis=2)
        down = np.abs(2 * centre - part[:-2, 1:-1] - part[2:, 1:-1]).max(axis=2)
        local = np.maximum(across, down)
        # The largest over the 3 x 3 neighbourhood: the pixels beside an edge count as on it.
        grown = np.pad(local, 1, mode="edge")
        grown = np.maximum.reduce(
            [grown[dy : dy + local.shape[0], dx : dx + local.shape[1]] for dy in range(3) for dx in range(3)]
        )
        activity[start : min(height, start + BAND_ROWS)] = grown[
            start - lo : start - lo + min(BAND_ROWS, height - start)
        ]
    share = np.clip(1.0 - activity / np.float32(_ACTIVITY_EDGE), 0.0, 1.0) * np.float32(255.0 * strength)
    result: NDArray[np.uint8] = np.rint(share).astype(np.uint8)
    return result


def diffuse(
    pixels: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    base: NDArray[np.uint8],
    strength: float = 1.0,
    kernel: Kernel = "floyd-steinberg",
) -> NDArray[np.uint8]:
    """Error-diffusion labels of ``pixels`` for ``palette``.

    Parameters
    ----------
    pixels : (H, W, C) uint8 ndarray
    palette : (K, C) uint8 ndarray
    base : (H, W) uint8 ndarray
        The undithered labels: what a pixel keeps when the error does not move it.
    strength : float
        0 to 1; 0 returns ``base``.
    kernel : {"floyd-steinberg", "sierra-lite"}

    Returns
    -------
    (H, W) uint8 ndarray

    Raises
    ------
    ParameterError
        If kmq was built without its C extension.
    """
    if _remap is None:
        raise ParameterError("error diffusion needs kmq's C extension, which this install lacks; use dither 'ordered'")
    if strength <= 0:
        return base.copy()
    height, width, channels = pixels.shape
    spacing = _spacing(palette)
    share = dither_map(pixels, strength)
    entries = np.ascontiguousarray(diffusion_space(palette))
    labels = np.empty((height, width), dtype=np.uint8)
    code = KERNELS.index(kernel)
    clamp = max(_CLAMP_MIN, spacing)
    tops = range(0, height, BAND_ROWS)

    def band(top: int) -> None:
        rows = slice(top, min(height, top + BAND_ROWS))
        _remap.diffuse(
            np.ascontiguousarray(pixels[rows]),
            np.ascontiguousarray(share[rows]),
            np.ascontiguousarray(base[rows]),
            width,
            rows.stop - rows.start,
            channels,
            entries,
            palette.shape[0],
            code,
            clamp,
            labels[rows],
        )

    workers = min(threads.available(), len(tops))
    if workers <= 1:
        for top in tops:
            band(top)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(band, tops))
    return labels


def _spacing(palette: NDArray[np.uint8]) -> float:
    """The palette's typical colour step: the median distance from a visible entry to its nearest other one."""
    visible = palette[palette[:, 3] > 0] if palette.shape[1] == 4 else palette
    if visible.shape[0] < 2:
        return 0.0
    entries = diffusion_space(visible)[:, :3].astype(np.float64)
    gaps = np.sqrt(((entries[:, None, :] - entries[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(gaps, np.inf)
    return float(np.median(gaps.min(axis=1)))


def ordered(
    pixels: NDArray[np.uint8], palette: NDArray[np.uint8], base: NDArray[np.uint8], strength: float = 1.0
) -> NDArray[np.uint8]:
    """Ordered (Bayer 8 x 8) dithering labels of ``pixels`` for ``palette``.

    Each pixel's colour is offset on every colour channel (premultiplied, so not under
    transparency; alpha is not offset) by its threshold times the palette's typical spacing
    times its dither-map value, and takes the nearest entry; a pixel whose offset is below
    half a byte keeps its ``base`` label. Vectorised, in blocks of rows.

    Parameters
    ----------
    pixels : (H, W, C) uint8 ndarray
    palette : (K, C) uint8 ndarray
    base : (H, W) uint8 ndarray
        The undithered labels.
    strength : float
        0 to 1; 0 returns ``base``.

    Returns
    -------
    (H, W) uint8 ndarray
    """
    if strength <= 0:
        return base.copy()
    height, width, channels = pixels.shape
    amplitude = np.float32(_spacing(palette))
    entries = diffusion_space(palette)
    labels = base.copy()
    shares = dither_map(pixels, strength)
    rows = max(1, (1 << 20) // max(1, width))
    for top in range(0, height, rows):
        block = pixels[top : top + rows]
        share = shares[top : top + rows].astype(np.float32) / np.float32(255.0)
        ys, xs = np.arange(top, top + block.shape[0]) % 8, np.arange(width) % 8
        offset = _THRESHOLDS[ys[:, None], xs[None, :]] * amplitude * share
        if channels == 4:  # colour only, premultiplied as the colour is: alpha is not dithered
            offset *= block[..., 3].astype(np.float32) / np.float32(255.0)
        moved = np.abs(offset) >= 0.5
        if not moved.any():
            continue
        shift = np.repeat(offset[moved][:, None], channels, axis=1)
        shift[:, 3:] = 0.0
        own = diffusion_space(block)[moved]
        found, _ = kmeans.nearest(np.clip(own + shift, 0.0, 255.0), entries)
        # As in diffusion: a pixel changes entry only where the offset changes its nearest one.
        plain, _ = kmeans.nearest(own, entries)
        part = labels[top : top + block.shape[0]]
        part[moved] = np.where(found == plain, part[moved], found).astype(np.uint8)
    return labels
