"""The colour histogram: distinct colours, counts and the way back to pixels."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kmq.histogram import histogram

HISTOGRAM = sys.modules["kmq.histogram"]


@st.composite
def images(draw):
    channels = draw(st.sampled_from([3, 4]))
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    colours = rng.integers(0, 256, (draw(st.integers(1, 30)), channels), dtype=np.uint8)
    return colours[rng.integers(0, len(colours), (height, width))]


@given(images())
def test_colours_are_distinct_sorted_and_counted(image):
    hist = histogram(image)
    flat = image.reshape(-1, image.shape[2])
    expected, counts = np.unique(flat, axis=0, return_counts=True)
    assert np.array_equal(hist.colours, expected)
    assert hist.counts.tolist() == counts.tolist()


@given(images())
def test_labels_per_colour_reach_every_pixel(image):
    hist = histogram(image)
    per_colour = np.arange(hist.colours.shape[0], dtype=np.uint8)
    assert np.array_equal(hist.colours[hist.labels(per_colour)], image)


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_counting_and_sorting_routes_agree(monkeypatch, threshold):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4, (30, 40, 3), dtype=np.uint8) * 60
    reference = histogram(image)
    monkeypatch.setattr(HISTOGRAM, "_COUNTING_MIN_PIXELS", threshold)
    other = histogram(image)
    assert np.array_equal(other.colours, reference.colours)
    assert np.array_equal(other.counts, reference.counts)
    per_colour = (np.arange(other.colours.shape[0]) % 7).astype(np.uint8)
    assert np.array_equal(other.labels(per_colour), reference.labels(per_colour))
