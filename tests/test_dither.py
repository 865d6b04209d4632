"""Dithering (kmq.dither) and the compiled nearest-centre search it shares with the quantizer."""

from __future__ import annotations

import kmq
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import dither, kmeans
from strategies import heavy

needs_c = pytest.mark.skipif(not dither.AVAILABLE, reason="kmq was built without its C extension")


def ramp(height: int = 16, width: int = 64, channels: int = 3) -> np.ndarray:
    values = np.linspace(0, 255, width).astype(np.uint8)
    return np.repeat(values[None, :, None], height, axis=0).repeat(channels, axis=2).copy()


@st.composite
def point_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Points and centres, D 1..8, bytes or floats, with exact ties among them."""
    d = draw(st.integers(1, 8))
    n, k = draw(st.integers(1, 3000)), draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        points, centres = (
            rng.integers(0, 256, (n, d)).astype(np.float64),
            rng.integers(0, 256, (k, d)).astype(np.float64),
        )
    else:
        points, centres = rng.random((n, d)), rng.random((k, d))
    if draw(st.booleans()):
        centres = np.vstack([centres, centres[: max(1, k // 3)]])  # duplicate centres: ties to the lowest index
        points[::3] = centres[rng.integers(0, len(centres), len(points[::3]))]
    return points, centres


@heavy
@given(point_sets())
@example((np.zeros((1, 1)), np.zeros((1, 1))))
@example((np.arange(12.0).reshape(4, 3), np.full((256, 3), 7.0)))
def test_compiled_nearest_equals_the_numpy_definition_bit_for_bit(case):
    points, centres = case
    labels, dist2 = kmeans.nearest(points, centres)
    want_labels, want_dist2 = kmeans._nearest_numpy(points, centres)
    assert np.array_equal(labels, want_labels) and np.array_equal(dist2, want_dist2)


def test_the_dither_map_is_full_on_a_gradient_and_zero_at_an_edge():
    image = ramp(16, 64)
    image[:, 32:] = 0  # an edge down the middle
    share = dither.dither_map(image)
    assert (share[:, 4:28] >= 245).all()  # a linear ramp has no second difference (bar rounding to bytes)
    assert (share[:, 30:34] == 0).all()  # the edge and the pixels beside it


def test_the_dither_map_does_not_depend_on_the_band_height():
    image = np.random.default_rng(1).integers(0, 256, (1100, 7, 3), dtype=np.uint8)
    image[::2] //= 8  # texture in some rows, smoothness in others
    whole = dither.dither_map(image)
    for top in (0, 510, 511, 512, 513, 1023):  # rows at and around the band edges
        assert np.array_equal(dither.dither_map(image[max(0, top - 2) : top + 3])[top - max(0, top - 2)], whole[top])


def test_strength_scales_the_map():
    image = ramp()
    share = dither.dither_map(image, 0.5)[:, 4:60]
    assert share.max() == 128 and share.min() >= 122


@needs_c
def test_strength_zero_gives_the_undithered_labels():
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    plain = kmq.quantize(image, 6)
    assert kmq.quantize(image, 6, dither=0.0) == plain
    base = plain.labels
    assert np.array_equal(dither.diffuse(image, plain.palette, base, 0.0), base)


@needs_c
@pytest.mark.parametrize("kernel", dither.KERNELS)
def test_error_diffusion_follows_a_ramp_with_two_colours(kernel):
    image = ramp(64, 64)
    palette = np.array([[60, 60, 60], [190, 190, 190]], np.uint8)
    base = kmeans.nearest(image.reshape(-1, 3).astype(np.float64), palette.astype(np.float64))[0]
    labels = dither.diffuse(image, palette, base.reshape(64, 64).astype(np.uint8), kernel=kernel)
    means = palette[labels][:, :, 0].mean(axis=0)
    target = image[0, :, 0].astype(float)
    inside = (target > 70) & (target < 180)
    assert np.abs(means - target)[inside].mean() < 10  # nearest mapping: 33 levels off there


@needs_c
def test_error_diffusion_is_the_same_on_one_thread_and_on_two(monkeypatch):
    image = np.random.default_rng(4).integers(0, 256, (dither.BAND_ROWS * 2 + 37, 40, 3), dtype=np.uint8)
    image = np.sort(image, axis=1)  # gradients along the rows
    monkeypatch.setenv("KMQ_THREADS", "1")
    one = kmq.quantize(image, 12, dither=True)
    monkeypatch.setenv("KMQ_THREADS", "2")
    assert kmq.quantize(image, 12, dither=True) == one


@needs_c
def test_a_colour_outside_the_palette_does_not_smear_a_streak():
    # A saturated red field with a grey palette: the carried error is clamped, so the row stays one grey.
    image = np.zeros((8, 200, 3), np.uint8)
    image[..., 0] = 255
    palette = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
    base = np.ones((8, 200), np.uint8)
    labels = dither.diffuse(image, palette, base)
    assert (labels[:, 100:] != 2).mean() > 0.5  # not flipping to white from accumulated red error


@pytest.mark.parametrize("value", [True, 0.6, "ordered"])
def test_every_dither_uses_only_palette_colours_and_keeps_the_shape(value):
    if value != "ordered" and not dither.AVAILABLE:
        pytest.skip("error diffusion needs the C extension")
    image = np.random.default_rng(5).integers(0, 256, (33, 47, 4), dtype=np.uint8)
    indexed = kmq.quantize(image, 9, dither=value)
    assert indexed.labels.shape == (33, 47) and indexed.k <= 9


def test_ordered_dither_repeats_with_the_bayer_period_on_a_flat_colour():
    image = np.full((32, 32, 3), 100, np.uint8)
    palette = np.array([[80, 80, 80], [120, 120, 120]], np.uint8)
    labels = dither.ordered(image, palette, np.zeros((32, 32), np.uint8))
    assert np.array_equal(labels[:8, :8], labels[8:16, 16:24]) and len(np.unique(labels)) == 2


def test_ordered_dither_keeps_transparent_pixels_on_the_transparent_entry():
    image = ramp(16, 64, 4)
    image[..., 3] = 255
    image[:, :16, 3] = 0
    indexed = kmq.quantize(image, 3, dither="ordered")
    assert (indexed.to_array()[:, :16, 3] == 0).all()


def test_bad_dither_values_are_parameter_errors():
    image = ramp()
    for bad in (1.5, -0.1, "fs", [1]):
        with pytest.raises(kmq.ParameterError, match="dither must be"):
            kmq.quantize(image, 4, dither=bad)


def test_compiled_nearest_is_the_same_on_one_thread_and_on_two(monkeypatch):
    rng = np.random.default_rng(6)
    points, centres = rng.random((20_000, 6)), rng.random((256, 6))  # n * K above 2**20: split in two
    monkeypatch.setenv("KMQ_THREADS", "1")
    one = kmeans.nearest(points, centres)
    monkeypatch.setenv("KMQ_THREADS", "2")
    two = kmeans.nearest(points, centres)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


def test_compiled_nearest_treats_nan_as_numpy_argmin_does():
    points = np.array([[0.5, 0.5], [np.nan, 0.0], [0.1, 0.1]])
    centres = np.array([[0.0, 0.0], [np.nan, 1.0], [1.0, 1.0]])
    got, want = kmeans.nearest(points, centres), kmeans._nearest_numpy(points, centres)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1], equal_nan=True)


@needs_c
@pytest.mark.parametrize(
    ("w", "h", "c", "k"),
    [(1 << 32, 1 << 32, 1, 1), (4, 4, 3, 2), (0, 1, 3, 2), (2, 2, 5, 2), (2, 2, 3, 0), (1 << 62, 4, 4, 2)],
)
def test_the_c_diffuser_refuses_sizes_its_buffers_do_not_have(w, h, c, k):
    from kmq import _remap

    pixels, share, base, labels = bytes(12), bytes(4), bytes(4), bytearray(4)  # a 2 x 2 RGB image
    with pytest.raises((ValueError, OverflowError)):
        _remap.diffuse(pixels, share, base, w, h, c, np.zeros(6, np.float32), k, 0, 32.0, labels)


@needs_c
@pytest.mark.parametrize(("n", "d", "k"), [(1 << 62, 3, 2), (5, 3, 2), (4, 0, 2), (4, 9, 2), (4, 3, 0)])
def test_the_c_nearest_refuses_sizes_its_buffers_do_not_have(n, d, k):
    from kmq import _remap

    points, centres = np.zeros(12, np.float32), np.zeros(6, np.float32)  # 4 points, 2 centres, d = 3
    labels, dist2 = np.zeros(4, np.int64), np.zeros(4, np.float64)
    with pytest.raises((ValueError, OverflowError)):
        _remap.nearest(points, n, d, centres, k, labels, dist2)


@st.composite
def dither_images(draw: st.DrawFn) -> np.ndarray:
    """Images from 1x1 up, RGB or RGBA, noise, gradients or transparency, across a band edge sometimes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    height = draw(st.integers(1, 40) | st.sampled_from([dither.BAND_ROWS - 1, dither.BAND_ROWS + 3]))
    width, channels = draw(st.integers(1, 40)), draw(st.sampled_from([3, 4]))
    image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    if draw(st.booleans()):
        image = np.sort(image, axis=1)  # gradients
    if channels == 4 and draw(st.booleans()):
        image[..., 3] = rng.choice(np.array([0, 77, 255], np.uint8), (height, width))
    return image


@needs_c
@heavy
@given(dither_images(), st.sampled_from([1.0, 0.75, 0.3]))
@example(np.zeros((1, 1, 3), np.uint8), 1.0)
def test_the_compiled_dither_map_equals_the_numpy_definition(image, strength):
    assert np.array_equal(dither.dither_map(image, strength), dither._dither_map_numpy(image, strength))
