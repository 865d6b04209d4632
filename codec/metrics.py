"""Image-quality figures reported by the commands and the benchmarks."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["mse", "psnr"]

_ROWS = 256


def _premultiplied(block: NDArray[np.uint8]) -> NDArray[np.float64]:
    values = block.astype(np.float64)
    values[..., :3] *= values[..., 3:] / 255.0
    return values


def mse(a: NDArray[np.uint8], b: NDArray[np.uint8], *, premultiplied: bool = False) -> float:
    """Mean squared error over every pixel and channel of two equal-shaped images.

    Parameters
    ----------
    a, b : (H, W, C) uint8 ndarray
    premultiplied : bool
        For RGBA: compare colours multiplied by their alpha, so that the colour
        of an invisible pixel does not count (what a viewer sees over black).

    Returns
    -------
    float
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} != {b.shape}")
    total = 0.0
    # Row blocks keep the temporaries small on 12 MP images.
    for start in range(0, a.shape[0], _ROWS):
        if premultiplied and a.shape[-1] == 4:
            diff = (_premultiplied(a[start : start + _ROWS]) - _premultiplied(b[start : start + _ROWS])).reshape(-1)
            total += float(np.dot(diff, diff))
        else:
            idiff = (a[start : start + _ROWS].astype(np.int64) - b[start : start + _ROWS]).reshape(-1)
            total += int(np.dot(idiff, idiff))
    return total / a.size


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8], *, premultiplied: bool = False) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images; ``inf`` when they are equal.

    Parameters
    ----------
    a, b : (H, W, C) uint8 ndarray
    premultiplied : bool
        See :func:`mse`.

    Returns
    -------
    float
    """
    error = mse(a, b, premultiplied=premultiplied)
    return math.inf if error == 0 else 10 * math.log10(255**2 / error)
