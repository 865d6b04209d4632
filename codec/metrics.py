"""Image quality: the one PSNR definition that kmq reports and targets.

``kmq encode`` (its line and JSON), ``-k auto``/``min_psnr``, ``compare``,
``sweep`` and the benchmarks all call :func:`psnr`; the quantizer measures its
candidates with the same function on the colour histogram (``weights``).

For RGBA images the error is *premultiplied* by default: each colour channel
counts as ``value * alpha / 255`` (the image as seen over black), so the colour
hidden under a fully transparent pixel does not count, and alpha counts as a
channel of its own. The sums are exact integers (premultiplied values are
compared in units of 1/255), so the figure is the same on every machine and
does not depend on the order in which pixels are summed.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from . import kmeans
from .errors import ParameterError

_remap = kmeans.compiled()  # None without a compiler: the numpy routes give the same results

__all__ = ["mse", "psnr", "ssim", "squared_error"]

#: Pixels per block: keeps the int64 temporaries to a few MiB whatever the image size.
_BLOCK_PIXELS = 1 << 18
#: Pixels per call of the C sum: few calls, and each sum stays below 2**64 (spec: 2**24 at most).
_C_BLOCK_PIXELS = 1 << 22


class _Paletted(Protocol):
    """An indexed image (:class:`kmq.Indexed`): compared block by block, never expanded whole."""

    @property
    def palette(self) -> NDArray[np.uint8]: ...

    @property
    def labels(self) -> NDArray[np.uint8]: ...


def _values(block: NDArray[np.uint8], premultiplied: bool) -> NDArray[np.int64]:
    """Integer channel values; premultiplied ones in units of 1/255 (colour * alpha, alpha * 255)."""
    values = block.astype(np.int64)
    if premultiplied:
        values[..., :3] *= values[..., 3:]
        values[..., 3] *= 255
    return values


def _pixel_errors(a: NDArray[np.uint8], b: NDArray[np.uint8], premultiplied: bool) -> NDArray[np.int64]:
    diff = _values(a, premultiplied) - _values(b, premultiplied)
    diff *= diff
    errors: NDArray[np.int64] = diff.sum(axis=-1)
    return errors


def squared_error(
    a: NDArray[np.uint8],
    b: NDArray[np.uint8] | _Paletted,
    *,
    premultiplied: bool | None = None,
    weights: NDArray[np.floating] | NDArray[np.integer] | None = None,
) -> tuple[int, int, int]:
    """Exact sum of squared errors between two images, or two weighted lists of colours.

    Parameters
    ----------
    a : (H, W, C) or (N, C) uint8 ndarray
        The reference.
    b : uint8 ndarray of a's shape, or an indexed image (``palette``, ``labels`` of shape a.shape[:-1])
    premultiplied : bool, optional
        Compare colours multiplied by alpha; the default is True for 4 channels.
    weights : (N,) integer-valued ndarray, optional
        How many pixels each row of a (N, C) ``a`` stands for (a histogram's counts).

    Returns
    -------
    error : int
        Sum of squared differences, in units of ``1 / scale``.
    scale : int
        1, or 255**2 when premultiplied.
    samples : int
        Pixels (weighted) times channels.
    """
    channels = a.shape[-1]
    premultiplied = channels == 4 if premultiplied is None else premultiplied and channels == 4
    paletted = not isinstance(b, np.ndarray)
    if isinstance(b, np.ndarray) and a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} != {b.shape}")
    rows = max(1, _BLOCK_PIXELS // max(1, math.prod(a.shape[1:-1])))
    weight = None if weights is None else np.asarray(weights).astype(np.int64)
    error = 0
    if paletted and weight is None and _remap is not None and a.dtype == np.uint8:
        error = _paletted_error(a, b, premultiplied)  # type: ignore[arg-type]
        return error, 255**2 if premultiplied else 1, math.prod(a.shape[:-1]) * channels
    for start in range(0, a.shape[0], rows):
        part = slice(start, start + rows)
        other = b.palette[b.labels[part]] if paletted else b[part]  # type: ignore[union-attr,index]
        errors = _pixel_errors(a[part], other, premultiplied)
        if weight is None:
            error += int(errors.sum())
        else:
            w = weight[part]
            if errors.size and int(errors.max()) * int(w.sum()) >= 2**63:
                # Over 2**28 pixels in one block: exact in Python integers (one step per colour).
                error += sum(e * n for e, n in zip(errors.tolist(), w.tolist(), strict=True))
            else:
                error += int(np.dot(errors, w))
    pixels = math.prod(a.shape[:-1]) if weight is None else int(weight.sum())
    return error, 255**2 if premultiplied else 1, pixels * channels


def _paletted_error(a: NDArray[np.uint8], b: _Paletted, premultiplied: bool) -> int:
    """:func:`squared_error` of an indexed image in C: no expanded block, a quarter of numpy's time."""
    assert _remap is not None
    rows = max(1, _C_BLOCK_PIXELS // max(1, math.prod(a.shape[1:-1])))
    palette = np.ascontiguousarray(b.palette, dtype=np.uint8)
    error = 0
    for start in range(0, a.shape[0], rows):
        block, labels = (np.ascontiguousarray(part[start : start + rows]) for part in (a, b.labels))
        error += _remap.squared_error(block, labels.size, a.shape[-1], labels, palette, premultiplied)
    return error


def mse(
    a: NDArray[np.uint8],
    b: NDArray[np.uint8] | _Paletted,
    *,
    premultiplied: bool | None = None,
    weights: NDArray[np.floating] | NDArray[np.integer] | None = None,
) -> float:
    """Mean squared error over every pixel and channel (0-255 units); arguments as :func:`squared_error`."""
    error, scale, samples = squared_error(a, b, premultiplied=premultiplied, weights=weights)
    return error / scale / samples if samples else 0.0


def psnr(
    a: NDArray[np.uint8],
    b: NDArray[np.uint8] | _Paletted,
    *,
    premultiplied: bool | None = None,
    weights: NDArray[np.floating] | NDArray[np.integer] | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images; ``inf`` when they are equal.

    Parameters
    ----------
    a : (H, W, C) or (N, C) uint8 ndarray
        The reference.
    b : uint8 ndarray of a's shape, or an indexed image (``palette``, ``labels``)
        Compared block by block, so an indexed image is never expanded whole.
    premultiplied : bool, optional
        For RGBA: compare colours multiplied by their alpha, so that the colour
        of an invisible pixel does not count (what a viewer sees over black).
        The default (None) is True for 4 channels; False gives plain PSNR.
    weights : (N,) integer-valued ndarray, optional
        Pixels per row of a (N, C) ``a``, as :class:`kmq.histogram.Histogram` counts.

    Returns
    -------
    float
        ``10 log10(255**2 / MSE)``, from an exact integer error.
    """
    error, scale, samples = squared_error(a, b, premultiplied=premultiplied, weights=weights)
    return math.inf if error == 0 else 10 * math.log10(255**2 * scale * samples / error)


#: SSIM's constants (Wang, Bovik, Sheikh and Simoncelli 2004): an 11-tap Gaussian of sigma 1.5,
#: K1 = 0.01 and K2 = 0.03 of the 255 range, on images first averaged down so that their shorter
#: side is about 256 pixels, as the authors' reference code does (a viewing-distance stand-in).
_SSIM_TAPS, _SSIM_SIGMA, _SSIM_SIDE = 11, 1.5, 256
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _luma(pixels: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Rec. 601 luma (what the SSIM reference code measures), of RGBA as seen over black."""
    values = pixels.astype(np.float64)
    if values.shape[-1] == 4:
        values = values[..., :3] * (values[..., 3:] / 255.0)
    luma: NDArray[np.float64] = values[..., 0] * 0.299 + values[..., 1] * 0.587 + values[..., 2] * 0.114
    return luma


def _filtered(plane: NDArray[np.float64], kernel: NDArray[np.float64]) -> NDArray[np.float64]:
    """A separable 'valid' filter: along each axis, every window times the kernel (vectorised)."""
    rows = np.lib.stride_tricks.sliding_window_view(plane, kernel.size, axis=1) @ kernel
    out: NDArray[np.float64] = np.lib.stride_tricks.sliding_window_view(rows, kernel.size, axis=0) @ kernel
    return out


def ssim(a: NDArray[np.uint8], b: NDArray[np.uint8] | _Paletted) -> float:
    """Structural similarity (SSIM, Wang et al. 2004) of two images: 1 when equal, lower is worse.

    The perceptual figure ``kmq compare`` and ``kmq sweep`` show beside PSNR. It is measured on
    luma (RGBA over black), after averaging each image down by the integer factor that brings
    its shorter side nearest 256 pixels, with an 11 x 11 Gaussian window (smaller on tiny images).

    Parameters
    ----------
    a : (H, W, C) uint8 ndarray
        The reference.
    b : uint8 ndarray of a's shape, or an indexed image (``palette``, ``labels``)

    Returns
    -------
    float
        The mean SSIM over the windows.

    Raises
    ------
    ParameterError
        If the images differ in shape.
    """
    other = b if isinstance(b, np.ndarray) else np.take(b.palette, b.labels, axis=0)
    if other.shape != a.shape or a.ndim != 3:
        raise ParameterError(f"ssim compares images of one shape (H, W, C), got {a.shape} and {other.shape}")
    x, y = _luma(a), _luma(other)
    factor = max(1, round(min(x.shape) / _SSIM_SIDE))
    if factor > 1:
        h, w = x.shape[0] // factor * factor, x.shape[1] // factor * factor
        x = x[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        y = y[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    taps = min(_SSIM_TAPS, *(n if n % 2 else n - 1 for n in x.shape))
    offsets = np.arange(taps) - taps // 2
    kernel = np.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    kernel /= kernel.sum()
    mx, my = _filtered(x, kernel), _filtered(y, kernel)
    sxx = _filtered(x * x, kernel) - mx * mx
    syy = _filtered(y * y, kernel) - my * my
    sxy = _filtered(x * y, kernel) - mx * my
    index = ((2 * mx * my + _C1) * (2 * sxy + _C2)) / ((mx * mx + my * my + _C1) * (sxx + syy + _C2))
    return float(index.mean())
