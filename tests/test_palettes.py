"""Palettes users choose: --palette NAME|FILE remaps exactly, --keep forces colours, --shared-palette shares one."""

from __future__ import annotations

from pathlib import Path

import kmq
import numpy as np
import pytest
from helpers import assert_one_line_error, run, save_png
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import palettes
from kmq.quantize import fit_palette
from PIL import Image

PICO8_FIRST = [[0, 0, 0], [29, 43, 83], [126, 37, 83]]


def photo(seed: int = 0, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size[1])[None, :, None] * np.array([1.0, 0.6, 0.3])
    return np.clip(base + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)


# ---- the palettes themselves ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), [("web216", 216), ("gameboy", 4), ("pico8", 16), ("epaper7", 7), ("bw", 2)])
def test_builtin_palettes_have_their_sizes_and_distinct_entries(name, size):
    entries = palettes.load(name)
    assert entries.shape == (size, 3) and len(np.unique(entries, axis=0)) == size


def test_pico8_keeps_its_own_order():
    assert palettes.load("PICO8")[:3].tolist() == PICO8_FIRST


def test_a_gimp_palette_is_read_in_order(tmp_path: Path):
    path = tmp_path / "p.gpl"
    path.write_text("GIMP Palette\nName: test\nColumns: 2\n# a comment\n255 0 0 red\n  0 255   0\tgreen\n0 0 255\n")
    assert palettes.load(path).tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_a_bad_gimp_line_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "p.gpl"
    path.write_text("GIMP Palette\n255 0 0\n300 0 0\n")
    with pytest.raises(kmq.ParameterError, match=r"p\.gpl: line 3: expected 'R G B \[name\]'"):
        palettes.load(path)


@pytest.mark.parametrize("count", [None, 3])
def test_an_adobe_colour_table_is_read_with_or_without_its_count(tmp_path: Path, count):
    table = np.zeros((256, 3), np.uint8)
    table[:3] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    data = table.tobytes() + (b"" if count is None else count.to_bytes(2, "big") + b"\xff\xff")
    (tmp_path / "p.act").write_bytes(data)
    entries = palettes.load(tmp_path / "p.act")
    assert entries.shape == ((256, 3) if count is None else (3, 3)) and entries[2].tolist() == [7, 8, 9]


def test_an_act_file_of_the_wrong_size_is_refused(tmp_path: Path):
    (tmp_path / "p.act").write_bytes(b"\0" * 700)
    with pytest.raises(kmq.ParameterError, match="768 or 772 bytes, this one has 700"):
        palettes.load(tmp_path / "p.act")


def test_a_hex_list_may_use_commas_lines_comments_and_alpha(tmp_path: Path):
    path = tmp_path / "colours.txt"
    path.write_text("; brand colours\n#ff0000, 00ff00 // green\n#0000ff80\n")
    assert palettes.load(path).tolist() == [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 128]]


def test_an_image_gives_its_colours_in_the_order_they_first_occur(tmp_path: Path):
    pixels = np.array([[[9, 9, 9], [1, 1, 1]], [[9, 9, 9], [5, 5, 5]]], np.uint8)
    save_png(tmp_path / "swatch.png", pixels)
    assert palettes.load(tmp_path / "swatch.png").tolist() == [[9, 9, 9], [1, 1, 1], [5, 5, 5]]


def test_an_image_of_too_many_colours_is_refused(tmp_path: Path):
    pixels = np.arange(300 * 3, dtype=np.uint32).reshape(1, 300, 3).astype(np.uint8)
    pixels[0, :, 0] = np.arange(300) // 256
    pixels[0, :, 1] = np.arange(300) % 256
    save_png(tmp_path / "many.png", pixels)
    with pytest.raises(kmq.ParameterError, match="300 colours; a palette image may have at most 256"):
        palettes.load(tmp_path / "many.png")


def test_an_unknown_name_lists_the_builtins():
    with pytest.raises(kmq.ParameterError, match=r"neither a file.*pico8"):
        palettes.load("pico9")


def test_a_word_that_is_not_a_colour_is_named():
    with pytest.raises(kmq.ParameterError, match="line 2: 'red' is not a hex colour"):
        palettes.parse_colours("#ffffff\nred")


# ---- remapping to a given palette -------------------------------------------------------------


@st.composite
def remaps(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, object]:
    """An image, a palette (any order, duplicates and unused entries allowed) and a dither."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    channels = draw(st.sampled_from([3, 4]))
    image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    k = draw(st.integers(1, 256))
    palette = rng.integers(0, 256, (k, draw(st.sampled_from([3, channels]))), dtype=np.uint8)
    return image, palette, draw(st.sampled_from([False, True, 0.5, "ordered"]))


@given(remaps())
@example((np.zeros((1, 1, 3), np.uint8), np.array([[5, 5, 5]], np.uint8), False))
@example((np.zeros((1, 1, 3), np.uint8), np.array([[5, 5, 5]] * 256, np.uint8), True))
def test_a_given_palette_is_kept_exactly_in_its_order(case):
    image, palette, dither = case
    indexed = kmq.quantize(image, palette=palette, dither=dither)
    expected = palette if palette.shape[1] >= image.shape[2] else np.hstack([palette, np.full((len(palette), 1), 255)])
    assert np.array_equal(indexed.palette, expected) and indexed.labels.shape == image.shape[:2]


def test_undithered_remapping_takes_the_nearest_entry_in_rgb_space():
    image = photo()
    palette = palettes.load("pico8")
    indexed = kmq.quantize(image, palette=palette, space="rgb")
    dist = ((image[:, :, None, :].astype(int) - palette.astype(int)) ** 2).sum(axis=3)
    chosen = np.take_along_axis(dist, indexed.labels[:, :, None].astype(int), axis=2)[:, :, 0]
    assert np.array_equal(chosen, dist.min(axis=2))


def test_a_palette_by_name_equals_the_same_colours_given():
    image = photo()
    assert kmq.quantize(image, palette="gameboy") == kmq.quantize(image, palette=palettes.load("gameboy"))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"k": 5, "palette": "pico8"}, "k=5 does not apply with a palette of 16 entries"),
        ({"k": "auto", "min_psnr": 30, "palette": "pico8"}, "does not apply with a palette"),
        ({"palette": "pico8", "keep": "#ffffff"}, "keep applies to a fitted palette"),
        ({"k": 2, "keep": "#ff0000,#00ff00,#0000ff"}, "keep has 3 colours, more than k=2"),
        ({"palette": np.zeros((3, 5), np.uint8)}, r"palette must be \(K, 3\) or \(K, 4\)"),
        ({"palette": np.full((2, 3), 300)}, "palette colours must be integers 0 to 255"),
    ],
)
def test_palette_and_keep_options_are_checked_when_made(options, match):
    with pytest.raises(kmq.ParameterError, match=match):
        kmq.QuantizeOptions(**options)


def test_an_rgba_palette_for_an_opaque_image_gives_an_rgba_file():
    indexed = kmq.quantize(photo(), palette=np.array([[0, 0, 0, 255], [255, 255, 255, 0]], np.uint8))
    assert indexed.channels == 4 and set(np.unique(indexed.labels)) <= {0, 1}


# ---- keep -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dither", [False, True])
def test_kept_colours_are_in_the_palette_even_when_no_pixel_is_near_them(dither):
    image = photo()  # no pure green or magenta anywhere
    indexed = kmq.quantize(image, 6, keep="#00ff00,#ff00ff", dither=dither)
    rows = {tuple(row) for row in indexed.palette.tolist()}
    assert {(0, 255, 0), (255, 0, 255)} <= rows and indexed.k <= 6
    keys = [tuple(row) for row in indexed.palette.tolist()]
    assert keys == sorted(keys)  # still canonical


def test_keep_of_every_entry_fits_nothing():
    image = photo()
    keep = np.array([[0, 0, 0], [128, 64, 32], [255, 255, 255]], np.uint8)
    assert np.array_equal(kmq.quantize(image, 3, keep=keep).palette, keep)


# ---- the command line -------------------------------------------------------------------------


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for seed in range(3):
        save_png(tmp_path / f"frame{seed}.png", photo(seed))
    return tmp_path


def test_encode_with_a_builtin_palette_writes_exactly_it(work, capsys):
    assert run(capsys, "encode", "frame0.png", "--palette", "pico8", "--dither").code == 0
    header, palette, _ = kmq.container.loads((work / "frame0.kmq").read_bytes())
    assert palette.tolist()[:3] == PICO8_FIRST and header.k == 16


def test_encode_with_a_palette_file(work, capsys):
    (work / "two.gpl").write_text("GIMP Palette\n10 20 30\n200 100 50\n")
    assert run(capsys, "encode", "frame0.png", "--palette", "two.gpl").code == 0
    assert kmq.container.loads((work / "frame0.kmq").read_bytes())[1].tolist() == [[10, 20, 30], [200, 100, 50]]


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--palette", "nosuch"], "palette 'nosuch' is neither a file"),
        (["--keep", "#12345"], "keep '#12345' is neither a file"),
        (["-k", "4", "--palette", "pico8"], "k=4 does not apply"),
    ],
)
def test_a_bad_palette_option_is_one_line_and_writes_nothing(work, capsys, argv, pattern):
    assert_one_line_error(run(capsys, "encode", "frame0.png", *argv), pattern)
    assert not (work / "frame0.kmq").exists()


def test_keep_on_the_command_line(work, capsys):
    assert run(capsys, "encode", "frame0.png", "-k", "5", "--keep", "#00ff00").code == 0
    assert [0, 255, 0] in kmq.container.loads((work / "frame0.kmq").read_bytes())[1].tolist()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_shared_palette_is_byte_identical_across_a_batch(work, capsys, jobs):
    save_png(work / "dark.png", (photo(7) // 4))  # colours the others lack
    result = run(capsys, "encode", "frame0.png", "frame1.png", "frame2.png", "dark.png", "-O", "out", "-k", "12",
                 "--shared-palette", "-j", jobs)  # fmt: skip
    assert result.code == 0
    palettes_seen = {kmq.container.loads(p.read_bytes())[1].tobytes() for p in (work / "out").glob("*.kmq")}
    assert len(palettes_seen) == 1 and len(list((work / "out").glob("*.kmq"))) == 4
    alone = kmq.container.loads((work / "out" / "dark.kmq").read_bytes())[1]
    assert alone.shape[0] == 12  # none dropped, though dark.png uses only some


def test_without_shared_palette_the_palettes_differ(work, capsys):
    assert run(capsys, "encode", "frame0.png", "frame1.png", "-O", "out", "-k", "12").code == 0
    seen = {kmq.container.loads(p.read_bytes())[1].tobytes() for p in (work / "out").glob("*.kmq")}
    assert len(seen) == 2


def test_the_shared_palette_is_fitted_on_the_merged_histograms(work, capsys):
    assert run(capsys, "encode", "frame0.png", "frame1.png", "-O", "out", "-k", "6", "--shared-palette").code == 0
    both = np.vstack([np.asarray(Image.open(work / f"frame{i}.png")).reshape(-1, 3) for i in range(2)])
    expected = kmq.quantize(both[None], 6).palette
    got = kmq.container.loads((work / "out" / "frame0.kmq").read_bytes())[1]
    assert np.array_equal(got, expected)  # one image of all pixels has the same histogram


def test_keep_counts_the_entry_that_transparent_pixels_need():
    image = np.dstack([photo(), np.full((24, 32), 255, np.uint8)])
    image[:4, :4, 3] = 0  # some fully transparent pixels: they get an entry of their own
    with pytest.raises(kmq.ParameterError, match="k must be at least 3"):
        kmq.quantize(image, 2, keep="#ff0000,#00ff00")
    indexed = kmq.quantize(image, 3, keep="#ff0000,#00ff00")
    assert indexed.k == 3 and (indexed.palette[:, 3] == 0).sum() == 1


def test_a_colour_kept_twice_counts_once():
    options = kmq.QuantizeOptions(k=4, keep="#ff0000,#ff0000,#00ff00")
    assert options.keep == ((255, 0, 0), (0, 255, 0))
    assert kmq.quantize(photo(), options=options).k == 4


def test_keep_rows_of_different_lengths_are_a_parameter_error():
    with pytest.raises(kmq.ParameterError, match="rows differ in length"):
        kmq.QuantizeOptions(keep=[(255, 0, 0), (0, 0)])


def test_a_palette_array_with_options_is_refused_as_any_keyword_is():
    with pytest.raises(kmq.ParameterError, match="give either options or"):
        kmq.quantize(photo(), palette=np.zeros((2, 3), np.uint8), options=kmq.QuantizeOptions())


def test_a_path_is_a_file_even_when_its_name_looks_like_a_colour(tmp_path: Path):
    (tmp_path / "cafe00").write_text("#102030\n")
    assert kmq.QuantizeOptions(palette=tmp_path / "cafe00").palette == ((16, 32, 48),)


def test_a_given_palette_sets_k_so_equal_requests_are_equal():
    assert kmq.QuantizeOptions(palette="pico8") == kmq.QuantizeOptions(k=16, palette="pico8")
    assert kmq.QuantizeOptions(palette="pico8").k == 16


def test_an_act_transparent_index_makes_that_entry_transparent(tmp_path: Path):
    table = np.zeros((256, 3), np.uint8)
    table[:2] = [[10, 20, 30], [40, 50, 60]]
    (tmp_path / "p.act").write_bytes(table.tobytes() + (2).to_bytes(2, "big") + (1).to_bytes(2, "big"))
    assert palettes.load(tmp_path / "p.act").tolist() == [[10, 20, 30, 255], [40, 50, 60, 0]]


def test_fit_palette_checks_its_inputs():
    colours = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    with pytest.raises(kmq.ParameterError, match="counts must be 2 positive numbers"):
        fit_palette(colours, np.ones(3))
    with pytest.raises(kmq.ParameterError, match="colours must be"):
        fit_palette(colours.astype(np.int64), np.ones(2))


def test_dither_before_the_input_on_the_command_line(work, capsys):
    assert run(capsys, "encode", "--dither", "frame0.png", "-k", "4").code == 0
    first = (work / "frame0.kmq").read_bytes()
    assert run(capsys, "encode", "frame0.png", "-k", "4", "--dither", "--force").code == 0
    assert (work / "frame0.kmq").read_bytes() == first
