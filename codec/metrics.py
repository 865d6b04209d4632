"""Image-quality figures reported by the commands and the benchmarks."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["mse", "psnr"]


def mse(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Mean squared error over every pixel and channel of two equal-shaped images."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} != {b.shape}")
    total = 0
    # Row blocks keep the int32 difference small; int64 sums cannot overflow.
    for start in range(0, a.shape[0], 256):
        diff = (a[start : start + 256].astype(np.int32) - b[start : start + 256]).reshape(-1)
        total += int(np.dot(diff.astype(np.int64), diff))
    return total / a.size


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images; ``inf`` when they are equal."""
    error = mse(a, b)
    return math.inf if error == 0 else 10 * math.log10(255**2 / error)
