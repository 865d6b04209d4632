"""The quantizer's memory is bounded: beyond the image, 1 byte per pixel (RGB) or 5 (RGBA) plus a fixed part.

Measured with tracemalloc (numpy reports its buffers to it) as the growth of the peak
between two image sizes, so the fixed part (2**24 RGB bins, one block of keys) cancels out.
"""

from __future__ import annotations

import sys
import tracemalloc

import kmq
import numpy as np
import pytest

HISTOGRAM = sys.modules["kmq.histogram"]


def _peak(image: np.ndarray, k: int) -> int:
    tracemalloc.start()
    try:
        kmq.quantize(image, k)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("channels", "per_pixel"), [(3, 1.5), (4, 5.5)])
def test_peak_memory_grows_by_a_few_bytes_per_pixel(monkeypatch, channels, per_pixel):
    monkeypatch.setattr(HISTOGRAM, "_BLOCK_PIXELS", 1 << 16, raising=False)
    monkeypatch.setattr(HISTOGRAM, "_COUNTING_MIN_PIXELS", 0)  # the route of big RGB images
    colour = [7, 8, 9, 100][:channels]
    small, large = (np.full((rows, 1000, channels), colour, np.uint8) for rows in (500, 1500))
    growth = (_peak(large, 1) - _peak(small, 1)) / (1000 * 1000)
    assert growth <= per_pixel


def test_a_two_colour_image_takes_no_more(monkeypatch):
    monkeypatch.setattr(HISTOGRAM, "_BLOCK_PIXELS", 1 << 16, raising=False)
    small, large = (np.zeros((rows, 1000, 4), np.uint8) for rows in (500, 1500))
    for image in (small, large):
        image[::2, :, 3] = 255
    growth = (_peak(large, 2) - _peak(small, 2)) / (1000 * 1000)
    assert growth <= 5.5
