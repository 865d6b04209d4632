"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

#: For properties whose every example runs the whole quantizer (up to a second at K=256):
#: the thorough profile's 5,000 examples would take over an hour there.
heavy = settings(max_examples=500 if os.environ.get("KMQ_THOROUGH") else 50)


@st.composite
def indexed_images(draw: st.DrawFn, max_side: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A palette of K in 1..256 entries (C = 3 or 4) and an (H, W) label plane with labels < K."""
    k = draw(st.integers(1, 256))
    channels = draw(st.sampled_from([3, 4]))
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(k, channels), dtype=np.uint8)
    labels = rng.integers(0, k, size=(height, width), dtype=np.uint8)
    return palette, labels


@st.composite
def few_colour_images(draw: st.DrawFn, max_side: int = 24) -> tuple[np.ndarray, int]:
    """An RGB or RGBA image with at most ``k`` distinct colours, and that ``k``."""
    k = draw(st.integers(1, 256))
    channels = draw(st.sampled_from([3, 4]))
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    colours = rng.integers(0, 256, size=(draw(st.integers(1, k)), channels), dtype=np.uint8)
    image = colours[rng.integers(0, len(colours), size=(height, width))]
    return image, k
