"""Quality figures: PSNR, plain and premultiplied."""

from __future__ import annotations

import math

import kmq
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import metrics
from kmq.metrics import mse, psnr


def test_psnr_of_equal_images_is_infinite():
    image = np.full((3, 4, 3), 7, np.uint8)
    assert psnr(image, image) == math.inf


def test_psnr_of_a_known_error():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one sample of 12 off by 255: MSE 255**2 / 12
    assert mse(a, b) == pytest.approx(255**2 / 12)
    assert psnr(a, b) == pytest.approx(10 * math.log10(12))


def test_premultiplied_ignores_the_colour_of_invisible_pixels():
    a = np.zeros((1, 2, 4), np.uint8)
    b = a.copy()
    b[0, 0, :3] = 200  # still alpha 0
    assert psnr(a, b, premultiplied=True) == math.inf
    assert psnr(a, b, premultiplied=False) < 20


def test_large_images_do_not_overflow():
    a = np.zeros((600, 700, 3), np.uint8)
    b = np.full_like(a, 255)
    assert psnr(a, b) == pytest.approx(0.0)


def test_rgba_psnr_is_premultiplied_by_default():
    # A perfect-looking result: only the colour under fully transparent pixels differs.
    a = np.zeros((4, 4, 4), np.uint8)
    a[:2, :, :] = (10, 200, 30, 255)
    b = a.copy()
    b[2:, :, :3] = 250
    assert psnr(a, b) == math.inf


def test_premultiplied_error_is_colour_times_alpha():
    a = np.array([[[255, 0, 0, 128]]], np.uint8)
    b = np.array([[[0, 0, 0, 128]]], np.uint8)
    assert mse(a, b) == pytest.approx((255 * 128 / 255) ** 2 / 4)


@pytest.mark.parametrize("channels", [3, 4])
def test_histogram_weights_give_the_pixel_figure(channels):
    rng = np.random.default_rng(channels)
    a = rng.integers(0, 4, (30, 20, channels), dtype=np.uint8) * 60
    b = rng.integers(0, 256, a.shape, dtype=np.uint8)
    b[...] = np.where(a % 120 == 0, a, b)  # some equal samples
    pairs, counts = np.unique(np.concatenate([a, b], axis=2).reshape(-1, 2 * channels), axis=0, return_counts=True)
    weighted = psnr(pairs[:, :channels], pairs[:, channels:], weights=counts.astype(np.float64))
    assert weighted == psnr(a, b)


def test_an_indexed_image_is_compared_without_expanding_it():
    image = np.random.default_rng(1).integers(0, 256, (40, 30, 4), dtype=np.uint8)
    indexed = kmq.quantize(image, 7)
    assert psnr(image, indexed) == psnr(image, indexed.to_array())


@st.composite
def indexed_images(draw):
    """An image and an indexed image of its shape: any palette, any labels."""
    channels = draw(st.sampled_from([3, 4]))
    height, width, k = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(1, 256))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    labels = rng.integers(0, k, (height, width), dtype=np.uint8)
    return image, kmq.Indexed(palette, labels)


@pytest.mark.skipif(metrics._remap is None, reason="kmq._remap is not built")
@given(indexed_images(), st.sampled_from([None, False, True]))
@example((np.full((1, 1, 4), 255, np.uint8), kmq.Indexed(np.zeros((1, 4), np.uint8), np.zeros((1, 1), np.uint8))), True)
def test_the_compiled_error_sum_is_numpys(case, premultiplied):
    image, indexed = case
    compiled = metrics.squared_error(image, indexed, premultiplied=premultiplied)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_remap", None)
        assert compiled == metrics.squared_error(image, indexed, premultiplied=premultiplied)


@pytest.mark.skipif(metrics._remap is None, reason="kmq._remap is not built")
def test_the_compiled_error_sum_refuses_a_label_past_the_palette():
    with pytest.raises(ValueError, match="label 3 >= k=2"):
        metrics._remap.squared_error(np.zeros(3, np.uint8), 1, 3, np.array([3], np.uint8), np.zeros(6, np.uint8), False)


def test_weights_beyond_int64_products_stay_exact():
    a = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    b = np.zeros_like(a)
    counts = np.array([1, 2**46], np.float64)  # 2**46 * 3 * 255**2 overflows int64
    assert mse(a, b, weights=counts) == pytest.approx(255**2 * 2**46 / (2**46 + 1))


# ---- SSIM, the perceptual figure of compare and sweep --------------------------------------------


def _textured(seed: int = 0, size: tuple[int, int] = (64, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.add.outer(np.linspace(0, 200, size[0]), np.linspace(0, 55, size[1]))
    return np.clip(base[..., None] + rng.normal(0, 12, (*size, 3)), 0, 255).astype(np.uint8)


def test_ssim_of_an_image_with_itself_is_one():
    image = _textured()
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_falls_as_noise_grows_and_is_symmetric():
    image = _textured()
    rng = np.random.default_rng(1)
    noisy = [np.clip(image + rng.normal(0, s, image.shape), 0, 255).astype(np.uint8) for s in (2, 8, 32)]
    scores = [metrics.ssim(image, n) for n in noisy]
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    assert metrics.ssim(noisy[1], image) == pytest.approx(scores[1], rel=1e-12)


def test_ssim_takes_an_indexed_image_as_its_pixels():
    image = _textured()
    indexed = kmq.quantize(image, 8)
    assert metrics.ssim(image, indexed) == metrics.ssim(image, indexed.to_array())


def test_ssim_ignores_colour_under_full_transparency():
    image = np.dstack([_textured(), np.zeros((64, 80), np.uint8)])
    other = image.copy()
    other[..., :3] = 255 - other[..., :3]
    assert metrics.ssim(image, other) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (600, 700)])
def test_ssim_works_on_tiny_and_large_images(shape):
    image = np.random.default_rng(2).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert -1.0 <= metrics.ssim(image, image // 2) < 1.0 and metrics.ssim(image, image) == pytest.approx(1.0)


def test_ssim_of_images_of_different_shapes_is_a_parameter_error():
    with pytest.raises(kmq.ParameterError, match="one shape"):
        metrics.ssim(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
