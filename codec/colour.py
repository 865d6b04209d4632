"""Colour spaces the quantizer clusters in: RGB bytes, Oklab, and premultiplied alpha.

Clustering happens on float coordinates; the palette is always stored as sRGB
bytes (straight alpha), so a centre is converted back and rounded before any
pixel is assigned to it.

- ``"rgb"``: the bytes themselves, so the k-means error is the error PSNR
  measures.
- ``"oklab"``: Björn Ottosson's Oklab (2020), a perceptual space in which
  Euclidean distance follows perceived difference far better than in sRGB.
- ``"perceptual"`` (the default): both at once, six coordinates: Oklab's three
  and sRGB's three scaled by :data:`RGB_WEIGHT` / 255, so the squared distance
  is Oklab's plus a fraction of RGB's. Clusters follow perceived difference,
  and each palette entry is its cluster's mean sRGB colour (the part of the
  centre that is RGB), which keeps PSNR close to RGB clustering's. On Kodak
  and CQ100 it scores as Oklab does on butteraugli and ssimulacra at a small
  fraction of Oklab's PSNR loss (BENCHMARKS.md, issue 13).

With an alpha channel the colour coordinates are premultiplied by alpha and
alpha is a coordinate of its own, as pngquant does: pixels that are nearly
invisible are nearly one point, so they do not take palette entries from the
visible ones.
"""

from __future__ import annotations

import decimal
import functools
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Space",
    "SPACES",
    "DEFAULT_SPACE",
    "RGB_WEIGHT",
    "to_space",
    "from_space",
    "srgb_to_oklab",
    "oklab_to_srgb",
]

Space = Literal["perceptual", "rgb", "oklab"]
SPACES: tuple[Space, ...] = ("perceptual", "rgb", "oklab")
#: Where the quantizer clusters unless told otherwise.
DEFAULT_SPACE: Space = "perceptual"
#: Scale of the RGB coordinates (bytes / 255) in the ``"perceptual"`` space. Oklab's own
#: coordinates span about 1 (L) and 0.5 (a, b), so at 0.6 RGB's squared error counts about a third
#: as much as Oklab's: the largest share that still moves the clusters to where the eye
#: wants them (BENCHMARKS.md, issue 13, "choosing the space").
RGB_WEIGHT = 0.6

# Ottosson's matrices: linear sRGB -> LMS, cube-rooted LMS -> Lab, and their inverses.
_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_LAB_TO_LMS = np.array(
    [
        [1.0, 0.3963377774, 0.2158037573],
        [1.0, -0.1055613458, -0.0638541728],
        [1.0, -0.0894841775, -1.2914855480],
    ]
)
_LMS_TO_RGB = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)


def _product(x: NDArray[np.float64], matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x @ matrix.T`` over the last axis, summed left to right: a BLAS product's rounding depends on its kernel."""
    rows = [(x[..., 0] * m[0] + x[..., 1] * m[1]) + x[..., 2] * m[2] for m in matrix]
    return np.stack(rows, axis=-1)


@functools.cache
def _byte_tables() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Linear value of each sRGB byte, and the linear value where rounding moves to each byte 1..255.

    Read from :mod:`kmq._srgb`, which :func:`_decimal_tables` made: the same bits on every
    machine (numpy's ``**`` and ``cbrt`` take CPU-specific SIMD routes with different last bits).
    """
    from . import _srgb

    return np.array([float.fromhex(v) for v in _srgb.LINEAR]), np.array([float.fromhex(v) for v in _srgb.EDGES])


def _decimal_tables() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`_byte_tables` computed in 40-digit decimal arithmetic (how kmq._srgb was made)."""
    context = decimal.Context(prec=40)

    def linear(encoded: decimal.Decimal) -> float:
        if encoded <= decimal.Decimal("0.04045"):
            return float(context.divide(encoded, decimal.Decimal("12.92")))
        base = context.divide(encoded + decimal.Decimal("0.055"), decimal.Decimal("1.055"))
        return float(context.power(base, decimal.Decimal("2.4")))

    values = np.array([linear(context.divide(decimal.Decimal(b), 255)) for b in range(256)])
    edges = np.array([linear(context.divide(decimal.Decimal(2 * b - 1), 510)) for b in range(1, 256)])
    return values, edges


def _cbrt(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cube root of non-negative values by Newton's method in element-wise arithmetic (the same on every CPU)."""
    mantissa, exponent = np.frexp(x)
    thirds, rest = np.divmod(exponent, 3)
    m = np.ldexp(mantissa, rest)  # x = m * 8**thirds, m in [0.5, 4)
    y = 0.65 + 0.25 * m  # within 10 % of m ** (1/3) on [0.5, 4)
    for _ in range(6):  # the relative error squares each round: 1e-1 -> below 1e-16 in 5
        y = (2.0 * y + m / (y * y)) / 3.0
    return np.where(x > 0, np.ldexp(y, thirds), 0.0)


def srgb_to_oklab(rgb: NDArray[np.floating] | NDArray[np.uint8]) -> NDArray[np.float64]:
    """Convert sRGB values (0-255, (..., 3)) to Oklab (L in 0-1).

    Byte input (uint8) gives the same bits on every machine: its linear values
    come from a table and no step uses a matrix product or a SIMD power.
    """
    values = np.asarray(rgb)
    if values.dtype == np.uint8:
        linear = _byte_tables()[0][values]
    else:
        c = values.astype(np.float64) / 255.0
        linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return _product(_cbrt(np.maximum(_product(linear, _RGB_TO_LMS), 0.0)), _LMS_TO_LAB)


def _oklab_to_linear(lab: NDArray[np.floating]) -> NDArray[np.float64]:
    """Linear sRGB (clipped to 0-1) of Oklab values."""
    lms = _product(np.asarray(lab, dtype=np.float64), _LAB_TO_LMS)
    return np.clip(_product(lms * lms * lms, _LMS_TO_RGB), 0.0, 1.0)


def oklab_to_srgb(lab: NDArray[np.floating]) -> NDArray[np.float64]:
    """Convert Oklab to sRGB values (0-255, clipped, unrounded), for display; the quantizer rounds with
    exact tables instead (see :func:`from_space`)."""
    linear = _oklab_to_linear(lab)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return c * 255.0


#: Colours converted at a time by :func:`to_space`: its float64 temporaries stay at a few MB
#: (a photo's 600,000 colours at once took 145 MB), and every row is computed alone, so the
#: result does not depend on the block size.
_BLOCK_COLOURS = 1 << 15


def to_space(colours: NDArray[np.uint8], space: Space) -> NDArray[np.float64]:
    """Clustering coordinates of (N, C) byte colours.

    Returns
    -------
    (N, D) float64 ndarray
        RGB: the bytes, or premultiplied R, G, B and A (0-255). Oklab: L, a, b,
        or premultiplied L, a, b and alpha (0-1). Perceptual: R, G, B scaled by
        ``RGB_WEIGHT / 255``, then Oklab's L, a, b (each premultiplied, then alpha in 0-1).
    """
    colours = np.asarray(colours)
    if colours.shape[0] <= _BLOCK_COLOURS:
        return _coordinates(colours, space)
    first = _coordinates(colours[:_BLOCK_COLOURS], space)
    out = np.empty((colours.shape[0], first.shape[1]), dtype=np.float64)
    out[:_BLOCK_COLOURS] = first
    for start in range(_BLOCK_COLOURS, colours.shape[0], _BLOCK_COLOURS):  # blocks of colours, not pixels
        out[start : start + _BLOCK_COLOURS] = _coordinates(colours[start : start + _BLOCK_COLOURS], space)
    return out


def _coordinates(colours: NDArray[np.uint8], space: Space) -> NDArray[np.float64]:
    """:func:`to_space` of one block of colours."""
    if space == "perceptual":
        rgb = colours[:, :3].astype(np.float64) * (RGB_WEIGHT / 255.0)
        coords = np.hstack([rgb, srgb_to_oklab(colours[:, :3])])
    elif space == "oklab":
        coords = srgb_to_oklab(colours[:, :3])
    else:
        coords = colours[:, :3].astype(np.float64)
    if colours.shape[1] == 3:
        return coords
    alpha = colours[:, 3:4].astype(np.float64) / 255.0
    scale = 255.0 if space == "rgb" else 1.0
    return np.hstack([coords * alpha, alpha * scale])


def from_space(centres: NDArray[np.floating], space: Space, channels: int) -> NDArray[np.uint8]:
    """Byte colours (rounded, clipped) of clustering coordinates; the inverse of :func:`to_space`."""
    centres = np.asarray(centres, dtype=np.float64)
    if channels == 4:
        scale = 255.0 if space == "rgb" else 1.0
        alpha = np.clip(centres[:, -1:] / scale, 0.0, 1.0)
        colour = centres[:, :-1]
        coords = np.divide(colour, alpha, out=np.zeros_like(colour), where=alpha > 1e-9)
    else:
        alpha, coords = None, centres
    if space == "perceptual":
        # The RGB part is the cluster's mean sRGB colour: the entry that serves PSNR best.
        out = np.clip(np.rint(coords[:, :3] * (255.0 / RGB_WEIGHT)), 0, 255)
    elif space == "oklab":
        # The byte whose rounding interval holds the linear value: sRGB's curve rounded exactly.
        out = np.searchsorted(_byte_tables()[1], _oklab_to_linear(coords), side="right").astype(np.float64)
    else:
        out = np.clip(np.rint(coords), 0, 255)
    if alpha is not None:
        alpha_bytes = np.rint(alpha * 255.0)
        out[alpha_bytes[:, 0] == 0] = 0  # an invisible entry has no colour: make it transparent black
        out = np.hstack([out, alpha_bytes])
    result: NDArray[np.uint8] = out.astype(np.uint8)
    return result
