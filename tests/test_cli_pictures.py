"""Specification of the picture commands: ``kmq compare``, ``kmq sweep`` and ``kmq info --palette-image``.

The figures the pictures show are tested in ``test_pictures.py``; here, that
the commands write what they say, report the same figures as text and JSON,
refuse bad outputs before any work, and name the missing extra in one line.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import kmq
import numpy as np
import pytest
from helpers import assert_one_line_error, gradient, run, save_png, usage_error
from kmq import pictures
from PIL import Image


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder, made the current directory, with grad.png."""
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "grad.png", gradient())
    return tmp_path


@pytest.fixture
def good_kmq(work: Path) -> Path:
    path = work / "good.kmq"
    path.write_bytes(kmq.encode(gradient(), 8))
    return path


def opened(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def test_compare_writes_one_picture_and_prints_each_ks_figures(work, capsys):
    result = run(capsys, "compare", "grad.png", "-k", "2", "8", "-o", "cmp.png")

    assert result.code == 0, result
    picture = opened(work / "cmp.png")
    one_k, _ = pictures.compare(gradient(), [2], title="grad.png")
    assert picture.format == "PNG" and picture.height == one_k.height
    assert picture.width > one_k.width  # the original and two panels side by side: one more than with one K
    lines = result.out.splitlines()
    assert lines[0].startswith("K=2: ") and lines[1].startswith("K=8: ")
    size = len(kmq.encode(gradient(), 8))
    assert f"K=8: {size:,} bytes, {8 * size / (16 * 12):.3f} bits/px" in lines[1]


def test_compare_json_rows_match_the_library(work, capsys):
    result = run(capsys, "compare", "grad.png", "-k", "4,16", "--json")

    rows = json.loads(result.out)["rows"]
    _, expected = pictures.compare(gradient(), [4, 16])
    assert [(r["k"], r["file_bytes"], r["coding"]) for r in rows] == [
        (r["k"], r["file_bytes"], r["coding"]) for r in expected
    ]
    assert (work / "compare.png").is_file()  # the default output


def test_compare_refuses_an_existing_output_and_an_unwritable_format_before_work(work, capsys):
    (work / "compare.png").write_bytes(b"mine")

    exists = run(capsys, "compare", "grad.png")
    bad_format = run(capsys, "compare", "grad.png", "-o", "x.xyz")

    assert_one_line_error(exists, r"compare\.png", r"exists and kmq did not write it")
    assert "--force" not in exists.err  # never suggested for a file kmq did not write
    assert_one_line_error(bad_format, r"\.xyz")
    assert (work / "compare.png").read_bytes() == b"mine"


def test_sweep_writes_plot_and_csv_with_a_row_per_k_and_coding(work, capsys):
    result = run(capsys, "sweep", "grad.png", "--k", "2,4,8", "-o", "s.png", "--csv", "s.csv")

    assert result.code == 0, result
    assert opened(work / "s.png").format == "PNG"
    with open(work / "s.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["k"], r["coding"]) for r in rows] == [(str(k), c) for k in (2, 4, 8) for c in ("raw", "ctx1", "mix")]
    raw8 = next(r for r in rows if r["k"] == "8" and r["coding"] == "raw")
    assert int(raw8["file_bytes"]) == len(kmq.container.dumps(*_quantized(8), "raw"))
    assert "elbow:" in result.out.splitlines()[-1]


def _quantized(k: int) -> tuple[np.ndarray, np.ndarray]:
    indexed = kmq.quantize(gradient(), k)
    return indexed.palette, indexed.labels


def test_sweep_json_names_the_elbow(work, capsys):
    result = run(capsys, "sweep", "grad.png", "-k", "2", "4", "8", "16", "--no-plot", "--json")

    document = json.loads(result.out)
    assert document["elbow"] == pictures.elbow(document["rows"]) == 4  # the gradient's knee, read off its table
    assert {row["k"] for row in document["rows"]} == {2, 4, 8, 16}
    assert not (work / "sweep.png").exists()


def test_sweep_without_matplotlib_says_which_extra_before_any_work(work, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(pictures, "sweep", lambda *a, **k: pytest.fail("swept without a plotter"))

    result = run(capsys, "sweep", "grad.png")

    assert_one_line_error(result, r"^kmq: error: the sweep plot needs matplotlib: pip install 'kmq\[plot\]'$")


def test_sweep_no_plot_works_without_matplotlib(work, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    result = run(capsys, "sweep", "grad.png", "-k", "2,4", "--no-plot", "--csv", "s.csv")

    assert result.code == 0 and (work / "s.csv").is_file()


def test_sweep_plot_must_be_png(work, capsys):
    assert_one_line_error(run(capsys, "sweep", "grad.png", "-o", "s.jpg"), r"s\.jpg", r"\.png")


@pytest.mark.parametrize("argv", [["compare", "grad.png", "-k", "0"], ["sweep", "grad.png", "--k", "2,300"]])
def test_a_bad_k_is_a_usage_error(work, capsys, argv):
    result = usage_error(capsys, *argv)

    assert result.code == 2 and "1..256" in result.err


def test_info_palette_image_draws_each_entry(work, capsys, good_kmq):
    result = run(capsys, "info", "good.kmq", "--palette-image", "swatch.png", "--json")

    palette = kmq.files.read_indexed(good_kmq).palette
    assert result.code == 0
    assert json.loads(result.out)["palette_image"] == "swatch.png"
    assert np.array_equal(np.asarray(opened(work / "swatch.png")), np.asarray(pictures.palette_image(palette)))


def test_info_palette_image_keeps_an_existing_file_without_force(work, capsys, good_kmq):
    (work / "swatch.png").write_bytes(b"mine")

    result = run(capsys, "info", "good.kmq", "--palette-image", "swatch.png")

    assert_one_line_error(result, r"swatch\.png", r"exists")
    assert (work / "swatch.png").read_bytes() == b"mine"
    assert run(capsys, "info", "good.kmq", "--palette-image", "swatch.png", "--force").code == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "grad.png", "-o", "grad.png", "--force"],
        ["sweep", "grad.png", "-o", "grad.png", "--force"],
        ["sweep", "grad.png", "--no-plot", "--csv", "grad.png", "--force"],
    ],
    ids=["compare", "sweep-plot", "sweep-csv"],
)
def test_an_output_that_is_the_input_is_refused_even_with_force(work, capsys, argv):
    before = (work / "grad.png").read_bytes()

    result = run(capsys, *argv)

    assert_one_line_error(result, r"grad\.png", r"overwrite the input")
    assert (work / "grad.png").read_bytes() == before


def test_sweep_csv_and_plot_must_be_two_files(work, capsys):
    assert_one_line_error(run(capsys, "sweep", "grad.png", "-o", "s.png", "--csv", "s.png"), r"--csv and -o")


def test_info_palette_image_errors_name_the_option(work, capsys, good_kmq):
    assert_one_line_error(run(capsys, "info", "good.kmq", "--palette-image", "x.xyz"), r"--palette-image", r"\.xyz")
    assert_one_line_error(
        run(capsys, "info", "good.kmq", "--palette-image", "good.kmq", "--force"), r"--palette-image", r"\.kmq"
    )


@pytest.mark.parametrize("width", ["0", "15", "2049", "100000", "wide"])
def test_compare_panel_width_is_bounded(work, capsys, width):
    result = usage_error(capsys, "compare", "grad.png", "--width", width)

    assert result.code == 2 and "width must" in result.err
