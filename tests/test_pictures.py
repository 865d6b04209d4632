"""Pictures: palette swatches, comparison sheets, K sweeps, their CSV, elbow and figure."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys

import kmq
import numpy as np
import pytest
from kmq import container, metrics, pictures
from kmq.pictures import MATPLOTLIB_MISSING, ROW_FIELDS, compare, elbow, palette_image, sweep, sweep_csv, sweep_figure
from PIL import Image, ImageFont

SEPARATOR = (160, 160, 160)


def gradient(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=2).astype(np.uint8)


def noise(height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def four_colours() -> np.ndarray:
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    return colours[(np.arange(48)[:, None] // 12 + np.arange(64)[None, :] // 16) % 4]


def swatch_centre(index: int, size: int, columns: int) -> tuple[int, int]:
    """(y, x) of swatch ``index``'s centre in a palette_image grid."""
    pitch = size + 1
    return (index // columns) * pitch + 1 + size // 2, (index % columns) * pitch + 1 + size // 2


def find(picture: Image.Image, block: np.ndarray) -> tuple[int, int] | None:
    """(y, x) of the top-left corner where ``block`` appears in ``picture`` pixel for pixel, if it does."""
    canvas = np.asarray(picture)
    height, width = block.shape[:2]
    for y in range(canvas.shape[0] - height + 1):
        for x in np.flatnonzero((canvas[y, : canvas.shape[1] - width + 1] == block[0, 0]).all(axis=1)):
            if np.array_equal(canvas[y : y + height, x : x + width], block):
                return y, int(x)
    return None


@pytest.fixture(scope="module")
def gradient_sweep() -> list[dict]:
    return sweep(gradient(), (1, 2, 4, 8, 16, 256))


# --------------------------------------------------------------------------- palette_image


def test_swatch_centres_are_the_palette_entries_in_order():
    palette = np.random.default_rng(1).integers(0, 256, size=(20, 3), dtype=np.uint8)
    pixels = np.asarray(palette_image(palette, size=10))
    for i, entry in enumerate(palette):
        y, x = swatch_centre(i, 10, 16)
        assert pixels[y, x].tolist() == entry.tolist()


def test_swatch_fills_its_whole_cell_and_is_framed_by_the_separator():
    palette = np.array([[10, 20, 30], [200, 100, 0]], np.uint8)
    pixels = np.asarray(palette_image(palette, size=5))
    assert pixels.shape == (7, 13, 3)
    assert (pixels[1:6, 1:6] == palette[0]).all() and (pixels[1:6, 7:12] == palette[1]).all()
    lines = np.concatenate([pixels[0], pixels[6], pixels[:, 0], pixels[:, 6], pixels[:, 12]])
    assert (lines == SEPARATOR).all()


@pytest.mark.parametrize(
    ("k", "columns", "rows"), [(1, 1, 1), (8, 8, 1), (16, 16, 1), (17, 16, 2), (100, 16, 7), (256, 16, 16)]
)
def test_default_grid_is_one_row_up_to_16_then_16_wide(k, columns, rows):
    image = palette_image(np.zeros((k, 3), np.uint8), size=4)
    assert image.size == (columns * 5 + 1, rows * 5 + 1)


def test_columns_option_and_blank_tail():
    palette = np.zeros((5, 3), np.uint8)  # black, so blank (white) cells stand out
    pixels = np.asarray(palette_image(palette, size=4, columns=3))
    assert pixels.shape == (11, 16, 3)
    assert (pixels[6:, 11:] == 255).all()  # the sixth cell is empty
    assert pixels[8, 10].tolist() == list(SEPARATOR)  # the line that closes the fifth swatch stays
    assert (pixels[swatch_centre(4, 4, 3)] == 0).all()


def test_transparent_entry_shows_a_checkerboard_and_opaque_rgba_its_colour():
    palette = np.array([[200, 30, 30, 0], [200, 30, 30, 255], [0, 0, 0, 128]], np.uint8)
    pixels = np.asarray(palette_image(palette, size=16)).astype(int)
    clear, opaque, half = (pixels[1:17, 1 + 17 * i : 17 + 17 * i] for i in range(3))
    assert len(np.unique(clear.reshape(-1, 3), axis=0)) == 2  # light and dark squares, no red
    assert (clear[..., 0] == clear[..., 1]).all()
    assert (opaque == [200, 30, 30]).all()
    assert len(np.unique(half.reshape(-1, 3), axis=0)) == 2 and half.max() < clear.min() + 1


@pytest.mark.parametrize(
    ("palette", "options", "message"),
    [
        (np.zeros((4, 3), np.int32), {}, "uint8"),
        (np.zeros((4, 2), np.uint8), {}, r"\(K, 3\|4\)"),
        (np.zeros((0, 3), np.uint8), {}, "empty"),
        (np.zeros((4, 3), np.uint8), {"size": 0}, "size"),
        (np.zeros((4, 3), np.uint8), {"columns": 0}, "columns"),
    ],
)
def test_palette_image_refuses_bad_arguments(palette, options, message):
    with pytest.raises(kmq.ParameterError, match=message):
        palette_image(palette, **options)


# --------------------------------------------------------------------------- compare


def test_compare_rows_have_the_documented_keys_and_are_json():
    _, rows = compare(gradient(), [2, 8])
    assert [row["k"] for row in rows] == [2, 8]
    assert all(tuple(row) == ROW_FIELDS for row in rows)
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows


@pytest.mark.parametrize("coding", ["ctx1", "raw"])
def test_compare_sizes_and_psnr_are_those_of_kmq_encode(coding):
    image = gradient()
    _, rows = compare(image, [4, 16], coding=coding, seed=3)
    for row in rows:
        data = kmq.encode(image, row["k"], seed=3, coding=coding)
        assert row["file_bytes"] == len(data)
        assert row["bits_per_pixel"] == 8 * len(data) / (48 * 64)
        assert row["payload_bytes"] == len(data) - container.Header.unpack(data).overhead
        assert row["psnr"] == metrics.psnr(image, kmq.decode(data))
        assert row["coding"] == coding and row["palette_size"] == row["k"]


def test_compare_reports_the_coding_actually_written():
    _, rows = compare(noise(), [8], coding="ctx1")  # ctx1 cannot beat raw on noise: kmq falls back
    assert rows[0]["coding"] == "raw"


def test_compare_marks_lossless_results_without_infinity():
    _, rows = compare(four_colours(), [2, 8])
    assert rows[0]["lossless"] is False and rows[0]["psnr"] < 100
    assert rows[1]["lossless"] is True and rows[1]["psnr"] is None and rows[1]["palette_size"] == 4


def test_compare_picture_grows_with_the_number_of_ks():
    sizes = [compare(gradient(), ks, max_width=64)[0].size for ks in ([2], [2, 4], [2, 4, 8])]
    assert sizes[0][0] < sizes[1][0] < sizes[2][0]
    assert sizes[0][1] == sizes[1][1] == sizes[2][1]


def test_compare_wraps_many_ks_onto_rows():
    one_row = compare(gradient(), [2, 4, 8], max_width=64)[0]  # 4 panels
    wrapped = compare(gradient(), [2, 3, 4, 5, 6, 7, 8], max_width=64)[0]  # 8 panels: 2 rows of 4
    assert wrapped.width == pytest.approx(one_row.width, rel=0.05)  # captions differ a little in width
    assert wrapped.height > 1.5 * one_row.height
    column = compare(gradient(), [2, 4], max_width=64, per_row=1)[0]
    assert column.width < one_row.width and column.height > one_row.height


def test_compare_panels_show_the_decoded_pixels_exactly():
    image = gradient()
    picture, _ = compare(image, [8], max_width=64, title="a title")
    assert picture.mode == "RGB" and picture.getpixel((1, 1)) == (255, 255, 255)
    assert find(picture, image) is not None
    assert find(picture, kmq.decode(kmq.encode(image, 8))) is not None


def test_compare_enlarges_small_images_by_whole_pixels():
    image = gradient(12, 16)
    picture, _ = compare(image, [8], max_width=64)  # 4 times fits 64 wide
    decoded = kmq.decode(kmq.encode(image, 8))
    assert find(picture, np.repeat(np.repeat(decoded, 4, axis=0), 4, axis=1)) is not None


def test_compare_downscales_the_decoded_image_for_display():
    image = gradient(96, 128)
    picture, rows = compare(image, [8], max_width=32)
    decoded = kmq.decode(kmq.encode(image, 8))
    shown = Image.fromarray(decoded).resize((32, 24), Image.Resampling.LANCZOS, reducing_gap=3.0)
    assert find(picture, np.asarray(shown)) is not None
    assert rows[0]["psnr"] == metrics.psnr(image, decoded)  # measured at full resolution


def test_compare_bounds_the_height_of_tall_images():
    picture, _ = compare(gradient(200, 20), [2], max_width=100)
    assert picture.height < 100 + 200  # the 200-pixel column is drawn 100 high, plus captions


def test_compare_shows_rgba_over_a_checkerboard():
    image = np.dstack([gradient(), np.zeros((48, 64), np.uint8)])  # fully transparent
    image[0, 0, 3] = 255  # one opaque pixel keeps the alpha channel
    picture, rows = compare(image, [2], max_width=64)
    assert rows[0]["palette_size"] == 2
    canvas = np.asarray(picture).astype(int)
    assert (canvas[..., 0] == canvas[..., 1]).mean() > 0.5  # grey squares, not the gradient's colours


def test_compare_accepts_a_pillow_image():
    _, rows = compare(Image.fromarray(gradient()), [4])
    assert rows[0]["file_bytes"] == len(kmq.encode(gradient(), 4))


def test_compare_falls_back_to_the_bitmap_font(monkeypatch):
    bitmap = ImageFont.load_default_imagefont

    def old_pillow(size=None):  # Pillow < 10.1: no size argument
        if size is not None:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return bitmap()

    monkeypatch.setattr(ImageFont, "load_default", old_pillow)
    picture, rows = compare(gradient(), [4], max_width=64, title="bitmap")
    assert rows[0]["k"] == 4 and picture.height > 48 + 4 * 11  # four caption lines still fit


@pytest.mark.parametrize(
    ("ks", "options", "message"),
    [([], {}, "ks is empty"), ([8], {"coding": "zip"}, "coding"), ([0], {}, "k must"), ([8], {"max_width": 0}, "max")],
)
def test_compare_refuses_bad_arguments(ks, options, message):
    with pytest.raises(kmq.ParameterError, match=message):
        compare(gradient(), ks, **options)


# --------------------------------------------------------------------------- sweep


def test_sweep_rows_come_per_k_and_coding_with_shared_quality(gradient_sweep):
    assert [(row["k"], row["coding"]) for row in gradient_sweep] == [
        (1, "raw"),
        *[(k, coding) for k in (2, 4, 8, 16, 256) for coding in ("raw", "ctx1", "mix")],
    ]
    assert all(tuple(row) == ROW_FIELDS for row in gradient_sweep)
    by_k = {}
    for row in gradient_sweep:
        by_k.setdefault(row["k"], set()).add((row["psnr"], row["seconds"], row["palette_size"]))
    assert all(len(values) == 1 for values in by_k.values())


def test_sweep_raw_rows_cost_ceil_log2_k_bits_plus_the_overhead(gradient_sweep):
    pixels = 48 * 64
    for row in (row for row in gradient_sweep if row["coding"] == "raw"):
        bits = math.ceil(math.log2(row["k"]))
        assert row["payload_bytes"] == math.ceil(pixels * bits / 8)
        overhead = container.HEADER.size + 3 * row["k"] + container.CHECKSUM.size
        assert row["file_bytes"] == row["payload_bytes"] + overhead
        assert bits <= row["bits_per_pixel"] < bits + 2.8  # K=256: a 768-byte palette over 3,072 pixels


@pytest.mark.parametrize("coding", ["ctx1", "mix"])
def test_sweep_striped_rows_are_strict_files_of_their_coding(gradient_sweep, coding):
    raw = {row["k"]: row for row in gradient_sweep if row["coding"] == "raw"}
    for row in (row for row in gradient_sweep if row["coding"] == coding):
        data = container.dumps(*_quantized(row["k"]), coding, strict=True)
        assert row["file_bytes"] == len(data)
        assert container.CODINGS[container.Header.unpack(data).coding] == coding
        assert row["file_bytes"] < raw[row["k"]]["file_bytes"]  # a smooth image: both win at every K


def _quantized(k: int) -> tuple[np.ndarray, np.ndarray]:
    indexed = kmq.quantize(gradient(), k)
    return indexed.palette, indexed.labels


def test_sweep_leaves_out_the_striped_codings_where_they_cannot_be_written():
    rows = sweep(noise(), (1, 8))  # K=1: ctx1 and mix need two colours; noise: they exceed their limit
    assert [(row["k"], row["coding"]) for row in rows] == [(1, "raw"), (8, "raw")]


def test_sweep_psnr_agrees_with_compare(gradient_sweep):
    _, rows = compare(gradient(), [16])
    assert [row["psnr"] for row in gradient_sweep if row["k"] == 16] == [rows[0]["psnr"]] * 3


def test_sweep_sorts_and_dedupes_ks_and_takes_codings():
    rows = sweep(gradient(), (8, 2, 8), codings=("ctx1",))
    assert [(row["k"], row["coding"]) for row in rows] == [(2, "ctx1"), (8, "ctx1")]


@pytest.mark.parametrize(
    ("ks", "options", "message"),
    [((), {}, "ks is empty"), ((8,), {"codings": ()}, "codings is empty"), ((8,), {"codings": ("x",)}, "coding")],
)
def test_sweep_refuses_bad_arguments(ks, options, message):
    with pytest.raises(kmq.ParameterError, match=message):
        sweep(gradient(), ks, **options)


# --------------------------------------------------------------------------- CSV


def test_csv_round_trips_through_dictreader(gradient_sweep):
    buffer = io.StringIO()
    sweep_csv(gradient_sweep, buffer)
    text = buffer.getvalue()
    assert text.splitlines()[0] == ",".join(ROW_FIELDS)
    back = list(csv.DictReader(io.StringIO(text)))
    assert len(back) == len(gradient_sweep)
    for row, read in zip(gradient_sweep, back, strict=True):
        assert read == {key: "" if value is None else str(value) for key, value in row.items()}
        assert float(read["bits_per_pixel"]) == row["bits_per_pixel"]  # unformatted: nothing lost


def test_csv_to_a_path_with_an_empty_psnr_for_lossless_rows(tmp_path):
    rows = sweep(four_colours(), (2, 4), codings=("raw",))
    sweep_csv(rows, tmp_path / "sweep.csv")
    with open(tmp_path / "sweep.csv", newline="") as handle:
        back = list(csv.DictReader(handle))
    assert [(read["k"], read["psnr"] == "", read["lossless"]) for read in back] == [
        ("2", False, "False"),
        ("4", True, "True"),
    ]


def test_csv_keeps_extra_keys_after_the_standard_columns():
    buffer = io.StringIO()
    sweep_csv([{"k": 2, "coding": "raw", "image": "a.png"}], buffer)
    assert buffer.getvalue().splitlines() == ["k,coding,image", "2,raw,a.png"]


# --------------------------------------------------------------------------- elbow


def rows_for(points, coding=container.DEFAULT_CODING):
    return [
        {"k": k, "coding": coding, "bits_per_pixel": bits, "psnr": quality, "lossless": quality is None}
        for k, bits, quality in points
    ]


def test_elbow_is_the_point_furthest_above_the_chord():
    # Scaled to [0, 1]: x = 0, .2, .4, .6, .8, 1 and y = 0, .54, .81, .92, .97, 1: y - x peaks at K=8.
    points = [(2, 1, 10), (4, 2, 20), (8, 3, 25), (16, 4, 27), (32, 5, 28), (64, 6, 28.5)]
    assert elbow(rows_for(points)) == 8


def test_elbow_follows_a_sharp_bend():
    points = [(2, 0.2, 15), (4, 0.4, 30), (8, 0.6, 31), (16, 0.8, 32), (32, 1.0, 33)]
    assert elbow(rows_for(points)) == 4


def test_elbow_uses_only_the_coding_asked_for_and_skips_lossless():
    mix = [(2, 1, 10), (4, 2, 20), (8, 3, 25), (16, 4, 27), (32, 5, 28), (64, 6, 28.5), (256, 7, None)]
    raw = [(2, 1, 10), (4, 2, 11), (8, 3, 12), (16, 4, 30), (32, 5, 31), (64, 6, 32)]
    rows = rows_for(mix) + rows_for(raw, "raw")
    assert elbow(rows) == 8
    assert elbow(rows, coding="raw") == 16


@pytest.mark.parametrize(
    "points",
    [
        [(2, 1, 10), (4, 2, 20), (8, 3, 30), (16, 4, 40)],  # a straight line
        [(2, 1, 10), (4, 2, 11), (8, 3, 13), (16, 4, 40)],  # convex: no diminishing returns
        [(2, 1, 10), (4, 2, 20)],  # too few points
        [(2, 1, 10), (4, 2, 20), (8, 3, 10)],  # no quality gained end to end
        [],
    ],
)
def test_elbow_is_none_without_a_knee(points):
    assert elbow(rows_for(points)) is None


def test_elbow_of_a_real_sweep_is_one_of_its_ks(gradient_sweep):
    assert elbow(gradient_sweep) in {2, 4, 8, 16}


# --------------------------------------------------------------------------- figure


def test_sweep_figure_is_a_png(gradient_sweep):
    pytest.importorskip("matplotlib")
    data = sweep_figure(gradient_sweep, title="gradient")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG" and image.width > 2 * image.height


def test_sweep_figure_plots_lossless_and_single_coding_sweeps():
    pytest.importorskip("matplotlib")
    rows = sweep(four_colours(), (2, 4, 8), codings=("raw",))
    with Image.open(io.BytesIO(sweep_figure(rows))) as image:
        assert image.format == "PNG"


def test_sweep_figure_refuses_no_rows():
    pytest.importorskip("matplotlib")
    with pytest.raises(kmq.ParameterError, match="no rows"):
        sweep_figure([])


def test_missing_matplotlib_is_one_line_naming_the_extra(monkeypatch, gradient_sweep):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import` sees when it is not installed
    with pytest.raises(ImportError, match=f"^{re.escape(MATPLOTLIB_MISSING)}$"):
        pictures.require_matplotlib()
    with pytest.raises(ImportError, match=f"^{re.escape(MATPLOTLIB_MISSING)}$"):
        sweep_figure(gradient_sweep)
    assert MATPLOTLIB_MISSING == "the sweep plot needs matplotlib: pip install 'kmq[plot]'"


def test_importing_pictures_does_not_import_matplotlib():
    code = "import sys, kmq.pictures; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_compare_calls_progress_before_each_k_in_the_order_given():
    calls = []

    compare(four_colours(), [16, 2, 4], progress=lambda k, i, n: calls.append((k, i, n)))

    assert calls == [(16, 1, 3), (2, 2, 3), (4, 3, 3)]


def test_sweep_calls_progress_before_each_distinct_k_ascending():
    calls = []

    rows = sweep(four_colours(), [8, 2, 8, 4], progress=lambda k, i, n: calls.append((k, i, n)))

    assert calls == [(2, 1, 3), (4, 2, 3), (8, 3, 3)]
    assert sorted({row["k"] for row in rows}) == [2, 4, 8]


def test_a_bad_per_row_is_refused_before_any_k_is_quantized():
    calls = []

    with pytest.raises(kmq.ParameterError, match="per_row"):
        compare(four_colours(), [2], per_row=0, progress=lambda *call: calls.append(call))

    assert calls == []


def photo_like(height: int, width: int, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(2).integers(0, 32, size=(height, width, 3))
    smooth = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + 2 * y) % 256], axis=2)
    image = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    if channels == 4:
        alpha = np.where(x < width // 3, 0, np.where(x < width // 2, 100, 255)).astype(np.uint8)
        image = np.dstack([image, alpha])
    return image


@pytest.mark.parametrize(
    "shape",
    [(600, 410, 3), (130, 97, 3), (40, 30, 4), (520, 390, 4)],
    ids=["averaged-down", "full-size", "rgba-small", "rgba-averaged-down"],
)
def test_similarity_is_metrics_ssim_bit_for_bit(shape):
    image = photo_like(*shape)
    similarity = pictures._Similarity(image)

    for k in (2, 16, 256):
        indexed = kmq.quantize(image, k)
        assert similarity.ssim(indexed) == metrics.ssim(image, indexed.to_array())


def test_fits_give_quantize_and_its_figures_with_the_shared_work_timed_once():
    image = photo_like(120, 90)
    fits = pictures._Fits(image, 0, "perceptual", False)

    results = [fits.fit(k) for k in (64, 4)]

    for (indexed, quality, similarity, seconds), k in zip(results, (64, 4), strict=True):
        expected = kmq.quantize(image, k)
        assert np.array_equal(indexed.palette, expected.palette)
        assert np.array_equal(indexed.labels, expected.labels)
        assert quality == metrics.psnr(image, expected.to_array())
        assert similarity == metrics.ssim(image, expected.to_array())
        assert seconds > 0


class CountedFits:
    """Stands in for pictures._Fits: records the order of fits and progress calls."""

    def __init__(self, calls: list[tuple[str, int]], fail: int | None = None) -> None:
        self.calls, self.fail = calls, fail

    def fit(self, k: int) -> tuple[object, float, float, float]:
        self.calls.append(("fit", k))
        if k == self.fail:
            raise kmq.ParameterError(f"no K={k}")
        return f"indexed {k}", float(k), 1.0, 0.0


def test_each_fit_yields_every_k_in_order_fitting_each_once():
    calls: list[tuple[str, int]] = []

    got = [r[0:2] for r in pictures._each_fit(CountedFits(calls), [9, 3, 5, 1, 7], None)]

    assert got == [(9, "indexed 9"), (3, "indexed 3"), (5, "indexed 5"), (1, "indexed 1"), (7, "indexed 7")]
    assert [k for what, k in calls if what == "fit"] == [9, 3, 5, 1, 7]


def test_each_fit_fits_at_most_a_few_k_ahead_of_its_caller():
    calls: list[tuple[str, int]] = []
    fits = CountedFits(calls)

    for k, *_ in pictures._each_fit(fits, list(range(1, 11)), None):
        fitted = [n for what, n in calls if what == "fit"]
        assert max(fitted) <= k + pictures._FITS_AHEAD


def test_each_fit_raises_a_fit_error_in_its_turn_and_fits_nothing_after_it_is_abandoned():
    calls: list[tuple[str, int]] = []
    loop = pictures._each_fit(CountedFits(calls, fail=3), [1, 2, 3, 4, 5, 6, 7, 8], None)

    assert next(loop)[0] == 1
    assert next(loop)[0] == 2
    with pytest.raises(kmq.ParameterError, match="K=3"):
        next(loop)
    assert max(k for what, k in calls if what == "fit") <= 3 + pictures._FITS_AHEAD
