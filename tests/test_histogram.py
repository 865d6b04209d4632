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


compiled = pytest.mark.skipif(HISTOGRAM._remap is None, reason="kmq._remap is not built")


def _numpy_route(monkeypatch, image):
    with monkeypatch.context() as patch:
        patch.setattr(HISTOGRAM, "_remap", None)
        return histogram(image)


@compiled
@given(images())
def test_compiled_and_numpy_routes_agree(image):
    hist = histogram(image)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HISTOGRAM, "_remap", None)
        reference = histogram(image)
        per_colour = (np.arange(reference.colours.shape[0]) % 251).astype(np.uint8)
        expected = reference.labels(per_colour)
    assert np.array_equal(hist.colours, reference.colours)
    assert np.array_equal(hist.counts, reference.counts)
    assert np.array_equal(hist.labels(per_colour), expected)


@compiled
@pytest.mark.parametrize("channels", [3, 4])
def test_bands_counted_on_threads_merge_to_one_histogram(monkeypatch, channels):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 8, (64, 50, channels), dtype=np.uint8) * 30
    reference = _numpy_route(monkeypatch, image)
    monkeypatch.setattr(HISTOGRAM, "_THREAD_MIN_PIXELS", 100)  # 32 bands, on every core
    monkeypatch.setattr(HISTOGRAM, "_PART_PIXELS_MAX", 100)
    hist = histogram(image)
    assert np.array_equal(hist.colours, reference.colours)
    assert np.array_equal(hist.counts, reference.counts)
    per_colour = (np.arange(hist.colours.shape[0]) % 5).astype(np.uint8)
    assert np.array_equal(hist.labels(per_colour), reference.labels(per_colour))


@compiled
def test_a_strided_view_is_counted_as_its_pixels(monkeypatch):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)[::2, 1::3, :3]  # not contiguous
    hist = histogram(image)
    expected, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    assert np.array_equal(hist.colours, expected)
    assert hist.counts.tolist() == counts.tolist()
    per_colour = (np.arange(len(expected)) % 256).astype(np.uint8)
    reference = _numpy_route(monkeypatch, image)
    assert np.array_equal(hist.labels(per_colour), reference.labels(per_colour))


@compiled
def test_every_colour_of_a_16_bit_range_is_counted_once():
    # 65,536 colours: the table grows from 4,096 slots through five doublings.
    values = np.arange(1 << 16, dtype=np.uint32)
    image = np.stack([values >> 8, values & 0xFF, (values * 7) & 0xFF], axis=1).astype(np.uint8).reshape(256, 256, 3)
    hist = histogram(image[::-1])
    assert hist.colours.shape[0] == 1 << 16
    assert set(hist.counts.tolist()) == {1.0}
    assert np.array_equal(hist.colours, np.unique(image.reshape(-1, 3), axis=0))


@compiled
def test_looking_up_a_colour_the_histogram_never_saw_is_refused():
    remap = HISTOGRAM._remap
    pixels = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    table = remap.table(np.array([(1 << 16) | (2 << 8) | 3], dtype=np.uint32), np.zeros(1, dtype=np.uint8))
    out = np.empty(2, dtype=np.uint8)
    with pytest.raises(ValueError, match="not in the table"):
        remap.lookup(pixels, 2, 3, table, out)


@compiled
def test_merging_two_counts_adds_the_shared_colours():
    keys = [np.array(k, dtype=np.uint32).tobytes() for k in ([1, 5, 9], [0, 5, 10, 11])]
    counts = [np.array(c, dtype=np.uint64).tobytes() for c in ([2, 3, 4], [1, 10, 1, 1])]
    merged_keys, merged_counts = HISTOGRAM._remap.merge(keys[0], counts[0], keys[1], counts[1])
    assert np.frombuffer(merged_keys, np.uint32).tolist() == [0, 1, 5, 9, 10, 11]
    assert np.frombuffer(merged_counts, np.uint64).tolist() == [1, 2, 13, 4, 1, 1]


@compiled
@pytest.mark.parametrize(
    "args",
    [
        (np.zeros(6, np.uint8), 3, 3),  # 6 bytes are not 3 pixels of 3 channels
        (np.zeros(6, np.uint8), 3, 2),  # 2 channels
        (np.zeros(8, np.uint8), 2**32, 4),  # a count could wrap
    ],
)
def test_count_checks_its_sizes(args):
    with pytest.raises(ValueError, match="count: bad sizes"):
        HISTOGRAM._remap.count(*args)
