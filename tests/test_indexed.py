"""Specification of :class:`kmq.Indexed` as a picture: Pillow out, and Jupyter's ``_repr_png_``."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import Indexed
from PIL import Image


@st.composite
def indexed_images(draw: st.DrawFn) -> Indexed:
    k = draw(st.integers(1, 256))
    channels = draw(st.sampled_from([3, 4]))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    palette = draw(st.binary(min_size=k * channels, max_size=k * channels))
    labels = draw(st.lists(st.integers(0, k - 1), min_size=height * width, max_size=height * width))
    return Indexed(
        np.frombuffer(palette, np.uint8).reshape(k, channels), np.array(labels, np.uint8).reshape(height, width)
    )


def _one(k: int, channels: int) -> Indexed:
    palette = (np.arange(k * channels, dtype=np.uint32).reshape(k, channels) * 7 % 256).astype(np.uint8)
    return Indexed(palette, np.full((1, 1), k - 1, np.uint8))


@given(indexed_images())
@example(_one(1, 3))
@example(_one(256, 3))
@example(_one(256, 4))
def test_repr_png_is_a_palette_png_of_exactly_the_pixels(indexed):
    with Image.open(io.BytesIO(indexed._repr_png_())) as image:
        assert image.format == "PNG" and image.mode == "P"
        assert np.array_equal(np.asarray(image.convert("RGBA" if indexed.channels == 4 else "RGB")), indexed.to_array())


@given(indexed_images())
def test_to_pillow_keeps_labels_and_palette(indexed):
    image = indexed.to_pillow()

    assert image.mode == "P" and image.size == (indexed.width, indexed.height)
    assert np.array_equal(np.asarray(image), indexed.labels)
    mode, data = image.palette.getdata()
    assert mode == ("RGBA" if indexed.channels == 4 else "RGB")
    assert data[: indexed.palette.size] == indexed.palette.tobytes()
