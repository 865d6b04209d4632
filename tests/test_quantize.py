"""K-means quantization: exactness where it holds, canonical palettes, determinism, options."""

from __future__ import annotations

import subprocess
import sys

import kmq
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq.colour import DEFAULT_SPACE, to_space
from kmq.images import as_array
from kmq.kmeans import nearest
from kmq.quantize import Prepared
from strategies import few_colour_images, heavy


def gradient(height: int = 24, width: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=2).astype(np.uint8)


@given(few_colour_images())
@example((np.array([[[7, 8, 9]]], np.uint8), 1))
@example((np.array([[[7, 8, 9, 10]]], np.uint8), 256))
@example((np.zeros((3, 5, 3), np.uint8), 1))
def test_image_with_at_most_k_colours_survives_unchanged(case):
    image, k = case
    assert np.array_equal(kmq.decode(kmq.encode(image, k)), as_array(image))


def test_palette_is_canonical_distinct_and_fully_used():
    indexed = kmq.quantize(gradient(), 16)
    keys = [tuple(entry) for entry in indexed.palette.tolist()]
    assert keys == sorted(set(keys))
    assert np.array_equal(np.unique(indexed.labels), np.arange(indexed.k))


def test_rgb_labels_are_the_nearest_rounded_palette_entry_in_bytes():
    image = gradient()
    indexed = kmq.quantize(image, 8, space="rgb")
    dist = ((image[:, :, None, :].astype(int) - indexed.palette.astype(int)) ** 2).sum(axis=3)
    chosen = np.take_along_axis(dist, indexed.labels[:, :, None].astype(int), axis=2)[:, :, 0]
    assert np.array_equal(chosen, dist.min(axis=2))


@pytest.mark.parametrize("space", ["perceptual", "oklab"])
def test_labels_are_the_nearest_palette_entry_in_the_clustering_space(space):
    image = gradient()
    indexed = kmq.quantize(image, 8, space=space)
    points = to_space(image.reshape(-1, 3), space)
    dist = ((points[:, None, :] - to_space(indexed.palette, space)[None]) ** 2).sum(axis=2)
    chosen = dist[np.arange(dist.shape[0]), indexed.labels.reshape(-1)]
    assert np.allclose(chosen, dist.min(axis=1), rtol=1e-5, atol=1e-7)  # the search runs in float32


def test_k8_raw_payload_holds_each_label_in_exactly_three_bits():
    indexed = kmq.quantize(gradient(), 8)
    data = indexed.to_bytes("raw")
    payload = data[kmq.container.HEADER.size + indexed.palette.nbytes : -kmq.container.CHECKSUM.size]
    pixels = indexed.labels.size

    assert indexed.k == 8 and len(payload) == 3 * pixels // 8  # 768 pixels: no padding
    # FORMAT.md section 4: each label most significant bit first, bytes filled from bit 7.
    bits = np.unpackbits(np.frombuffer(payload, np.uint8)).reshape(pixels, 3)
    assert np.array_equal(bits @ np.array([4, 2, 1]), indexed.labels.reshape(-1))


def test_centroids_are_rounded_not_truncated():
    # Mean of 0, 1, 1 is 0.67: rounding gives 1, the teaching example's truncation 0.
    image = np.array([[[0, 0, 0], [1, 1, 1], [1, 1, 1]]], np.uint8)
    assert kmq.quantize(image, 1).palette.tolist() == [[1, 1, 1]]


def test_k1_gives_zero_bits_and_an_empty_payload():
    data = kmq.encode(gradient(), 1)
    assert len(data) == 20 + 3 + 4


def test_same_input_and_seed_give_identical_bytes():
    image = gradient(48, 64)
    assert kmq.encode(image, 12, seed=3) == kmq.encode(image, 12, seed=3)


def test_another_process_writes_the_same_bytes():
    image = gradient(48, 64)
    script = (
        "import sys, numpy as np, kmq; "
        "image = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(48, 64, 3); "
        "sys.stdout.buffer.write(kmq.encode(image, 12, seed=3))"
    )
    child = subprocess.run([sys.executable, "-c", script], input=image.tobytes(), capture_output=True, check=True)
    assert child.stdout == kmq.encode(image, 12, seed=3)


def test_rgba_with_transparency_keeps_alpha():
    image = np.zeros((4, 4, 4), np.uint8)
    image[..., 3] = np.arange(16).reshape(4, 4) * 17
    out = kmq.decode(kmq.encode(image, 4))
    assert out.shape == (4, 4, 4)
    assert len(np.unique(out[..., 3])) == 4


def test_opaque_rgba_becomes_rgb():
    image = np.full((2, 2, 4), 255, np.uint8)
    assert kmq.decode(kmq.encode(image)).shape == (2, 2, 3)


@pytest.mark.parametrize("k", [0, 257, -1, 2.5, True, "8", None])
def test_k_out_of_range_is_a_parameter_error(k):
    with pytest.raises(kmq.ParameterError, match=r"k must be an integer in 1\.\.256 or 'auto'"):
        kmq.quantize(gradient(), k)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, False])
def test_bad_seed_is_a_parameter_error(seed):
    with pytest.raises(kmq.ParameterError, match="seed must be"):
        kmq.quantize(gradient(), 8, seed=seed)


def test_nearest_breaks_ties_to_the_lowest_index():
    palette = np.array([[0, 0, 0], [2, 2, 2]], np.uint8)
    assert nearest(np.array([[1, 1, 1]], np.uint8), palette)[0].tolist() == [0]


@pytest.mark.corpus
def test_kodak_photo_at_k8_quality(corpus):
    from sklearn.cluster import KMeans

    image = kmq.images.load_image(corpus / "kodak" / "kodim23.png")
    out = kmq.decode(kmq.encode(image, 8))
    # The teaching example: K-means on every pixel, centroids truncated to uint8.
    teaching = KMeans(n_clusters=8, random_state=0).fit(image.reshape(-1, 3))
    baseline = teaching.cluster_centers_[teaching.labels_].astype(np.uint8).reshape(image.shape)
    # Different seeds land in different local optima; allow that much, no more.
    assert kmq.metrics.psnr(image, out) >= kmq.metrics.psnr(image, baseline) - 0.25


@st.composite
def busy_images(draw):
    """An RGB or RGBA image with more distinct colours than the K drawn with it."""
    k = draw(st.integers(1, 256))
    channels = draw(st.sampled_from([3, 4]))
    side = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.integers(0, 256, size=(side, k + 1 + side, channels), dtype=np.uint8)
    if channels == 4:
        image[0, 0, 3] = 0  # keep alpha: some pixel is not opaque
    return image, k


@heavy
@given(busy_images())
@example((np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3), 1))
@example((np.random.default_rng(5).integers(0, 256, (20, 300, 3), dtype=np.uint8), 256))
def test_kmeans_result_is_canonical_nearest_and_fully_used(case):
    image, k = case
    indexed = kmq.quantize(image, k)
    keys = [tuple(entry) for entry in indexed.palette.tolist()]
    assert 1 <= indexed.k <= k and indexed.channels == image.shape[2]
    assert keys == sorted(set(keys))  # canonical: sorted, distinct
    assert np.array_equal(np.unique(indexed.labels), np.arange(indexed.k))  # every entry used
    # Nearest in the default clustering space (perceptual: premultiplied, with alpha, for RGBA).
    points = to_space(image.reshape(-1, image.shape[2]), DEFAULT_SPACE)
    dist = ((points[:, None, :] - to_space(indexed.palette, DEFAULT_SPACE)[None]) ** 2).sum(axis=2)
    chosen = dist[np.arange(dist.shape[0]), indexed.labels.reshape(-1)]
    # The search runs in float32: near-ties may differ by float32 rounding.
    assert np.allclose(chosen, dist.min(axis=1), rtol=1e-5, atol=1e-6)  # each pixel on its nearest rounded entry


@pytest.mark.parametrize("space", ["perceptual", "rgb", "oklab"])
@pytest.mark.parametrize("dither", [False, True, 0.5, "ordered"])
def test_every_space_and_dither_gives_a_canonical_fully_used_palette(space, dither):
    indexed = kmq.quantize(gradient(40, 50), 8, space=space, dither=dither)
    keys = [tuple(entry) for entry in indexed.palette.tolist()]
    assert keys == sorted(set(keys)) and 1 <= indexed.k <= 8
    assert np.array_equal(np.unique(indexed.labels), np.arange(indexed.k))


def test_dither_makes_column_means_follow_a_ramp():
    ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 16, axis=0).repeat(3, axis=2)
    plain = kmq.quantize(ramp, 2).to_array()[:, :, 0].mean(axis=0)
    dithered = kmq.quantize(ramp, 2, dither=1.0).to_array()[:, :, 0].mean(axis=0)
    target = ramp[:, :, 0].mean(axis=0)
    inside = (target > 70) & (target < 185)  # between the two palette greys (58 and 188)
    # Measured: nearest mapping is 37 levels off on average there, full-strength dithering 9
    # (dither=True, strength 0.75, 13: it trades some of the mean for less noise).
    assert np.abs(dithered - target)[inside].mean() < np.abs(plain - target)[inside].mean() / 3


@pytest.mark.parametrize("dither", [True, "ordered"])
def test_dither_works_on_rgba_and_keeps_transparent_pixels_transparent(dither):
    ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 16, axis=0).repeat(4, axis=2)
    ramp[..., 3] = 255
    ramp[:, :8, 3] = 0  # a transparent band on the left
    indexed = kmq.quantize(ramp, 3, dither=dither)
    out = indexed.to_array()
    assert indexed.channels == 4 and (out[:, :8, 3] == 0).all() and (out[:, 8:, 3] == 255).all()
    assert len(np.unique(out[:, 8:, 0])) == 2  # both visible greys mixed along the ramp


@pytest.mark.parametrize("target", [20.0, 30.0])
def test_auto_k_reaches_the_target_psnr(target):
    image = gradient(48, 64)
    indexed = kmq.quantize(image, "auto", min_psnr=target)
    assert kmq.metrics.psnr(image, indexed.to_array()) >= target
    smaller = kmq.quantize(image, max(1, indexed.k // 2))
    assert kmq.metrics.psnr(image, smaller.to_array()) < target


def test_auto_k_out_of_reach_is_a_parameter_error():
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    with pytest.raises(kmq.ParameterError, match="out of reach"):
        kmq.quantize(image, "auto", min_psnr=80)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": "auto"}, "needs min_psnr"),
        ({"k": 8, "min_psnr": 30}, "only with k='auto'"),
        ({"k": 8, "space": "lab"}, "space must be one of"),
    ],
)
def test_option_combinations_are_checked(kwargs, match):
    with pytest.raises(kmq.ParameterError, match=match):
        kmq.quantize(gradient(), **kwargs)


@pytest.mark.corpus
def test_rgba_graphics_keep_their_transparency(corpus):
    image = kmq.images.load_image(corpus / "graphics" / "pillow_transparent_dice.png")
    indexed = kmq.quantize(image, 16)
    out = indexed.to_array()
    assert out.shape[2] == 4
    invisible = image[:, :, 3] == 0
    # Fully transparent pixels stay fully transparent.
    assert (out[:, :, 3][invisible] == 0).all()
    # Measured here: kmq 28.60 dB, pngquant --nofs 16 27.77, libimagequant 28.25 (premultiplied PSNR).
    assert kmq.metrics.psnr(image, out, premultiplied=True) > 28.0


def test_a_few_thousand_colours_still_fill_a_256_entry_palette():
    # Colours packed into few 32x32x32 cells (a logo's anti-aliasing) used to lose entries.
    rng = np.random.default_rng(2)
    base = rng.integers(0, 4, (3000, 3)) * 64  # 64 cells for 256 entries
    colours = np.clip(base + rng.integers(0, 8, (3000, 3)), 0, 255).astype(np.uint8)
    image = colours[rng.integers(0, 3000, (60, 80))]
    assert kmq.quantize(image, 256).k == 256


def sticker(seed: int = 0) -> np.ndarray:
    """An ordinary RGBA image: a few visible colours, and noise under its fully transparent half."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (32, 40, 4), dtype=np.uint8)
    image[:, :20, 3] = 0
    image[:, 20:] = [(200, 30, 40, 255), (20, 90, 200, 128)][seed % 2]
    image[:8, 20:, :3] = (250, 250, 10)
    return image


def test_auto_k_measures_rgba_premultiplied():
    indexed = kmq.quantize(sticker(), "auto", min_psnr=30)
    assert indexed.k <= 3
    assert kmq.metrics.psnr(sticker(), indexed) >= 30


def test_encode_report_does_not_count_colours_under_transparent_pixels():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(sticker()).save(buffer, "PNG")
    outcome = kmq.batch.encode_job(buffer.getvalue(), "sticker.png", kmq.batch.EncodeOptions())
    assert outcome.info["psnr"] is None  # lossless as seen: the 3 visible colours and transparency are kept


@pytest.mark.parametrize(("target", "dither"), [(24.0, False), (31.0, False), (26.0, True)])
def test_auto_k_is_a_fixed_k_result_whose_k_minus_1_misses(target, dither):
    image = gradient(40, 60)
    indexed = kmq.quantize(image, "auto", min_psnr=target, dither=dither)
    assert indexed == kmq.quantize(image, indexed.k, dither=dither)
    assert kmq.metrics.psnr(image, indexed) >= target
    assert indexed.k == 1 or kmq.metrics.psnr(image, kmq.quantize(image, indexed.k - 1, dither=dither)) < target


def many_colours(height: int = 120, width: int = 160) -> np.ndarray:
    """A gradient with noise: over 8192 distinct colours, so the fits go through the bins and Wu's cut."""
    noise = np.random.default_rng(1).integers(0, 24, size=(height, width, 3))
    return np.clip(gradient(height, width).astype(int) + noise, 0, 255).astype(np.uint8)


def transparent_corner() -> np.ndarray:
    image = np.dstack([many_colours(), np.full((120, 160), 255, np.uint8)])
    image[:30, :40, 3] = 0
    image[30:60, :40, 3] = 128
    return image


@pytest.mark.parametrize("image", [many_colours(), transparent_corner(), gradient()], ids=["rgb", "rgba", "few"])
@pytest.mark.parametrize("dither", [False, True, "ordered"])
def test_prepared_fits_are_bit_for_bit_quantize_in_any_order(image, dither):
    prepared = Prepared(image, seed=3, dither=dither)

    for k in (256, 2, 64, 1, 7, 64):
        fitted, quality = prepared.fit(k)
        expected = kmq.quantize(image, k, seed=3, dither=dither)
        assert np.array_equal(fitted.palette, expected.palette)
        assert np.array_equal(fitted.labels, expected.labels)
        assert quality == kmq.metrics.psnr(image, expected.to_array())


def test_prepared_counts_the_histogram_once_for_every_k():
    prepared = Prepared(many_colours())

    counted = prepared.histogram
    prepared.fit(8)
    prepared.fit(16)

    assert prepared.histogram is counted
    assert counted.colours.shape[0] > 8192


def test_prepared_checks_its_options_and_each_k():
    with pytest.raises(kmq.ParameterError, match="seed"):
        Prepared(gradient(), seed=-1)
    prepared = Prepared(gradient())
    with pytest.raises(kmq.ParameterError, match="k must be"):
        prepared.fit(0)


@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.sampled_from([3, 4]))
def test_unique_rows_is_numpys_unique(seed, n, channels):
    rows = np.random.default_rng(seed).integers(0, 3, (n, channels)).astype(np.uint8) * 100
    assert np.array_equal(sys.modules["kmq.quantize"]._unique_rows(rows), np.unique(rows, axis=0).reshape(-1, channels))
