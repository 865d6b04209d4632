"""Reading an image holds Pillow's copy and the array, never a second array-sized buffer beside them."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from kmq import images
from PIL import Image


def _png(height: int, width: int, channels: int) -> bytes:
    """A smooth image, so that the file is small beside its pixels and the peak is the decoding's."""
    rows, columns = np.indices((height, width))
    planes = [(rows + columns * c) // 7 % 256 for c in range(1, channels + 1)]
    buffer = io.BytesIO()
    Image.fromarray(np.stack(planes, axis=2).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("channels", [3, 4])
def test_loading_a_large_image_traces_little_more_than_its_pixels(channels):
    data = _png(1500, 1400, channels)  # 2.1 MP: above the size copied out of Pillow in bands
    tracemalloc.start()
    try:
        pixels = images.load(io.BytesIO(data)).pixels
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # tracemalloc sees numpy's buffers and Python bytes, not Pillow's own image memory.
    # np.asarray(image) peaked at 2x the pixels (tobytes() joins its pieces into one more copy).
    assert peak <= 1.5 * pixels.nbytes + len(data)


@pytest.mark.parametrize("shape", [(1500, 1400, 3), (700, 1600, 4), (3, 400_000, 3)])
def test_pixels_copied_in_bands_equal_pillows(shape):
    data = _png(*shape)
    with Image.open(io.BytesIO(data)) as image:
        expected = np.asarray(image.convert("RGBA" if shape[2] == 4 else "RGB"))
    assert np.array_equal(images.load(io.BytesIO(data)).pixels, expected)
