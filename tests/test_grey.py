"""Grey inputs: 2-D arrays are accepted, and grey images are reported as grey (mode L, 1 byte per pixel raw)."""

from __future__ import annotations

import io
import json

import kmq
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq.batch import EncodeOptions, encode_job
from kmq.cli.main import main
from kmq.images import as_array, load
from PIL import Image
from strategies import heavy

GREY = (np.arange(12 * 10, dtype=np.uint8).reshape(10, 12) % 5) * 60  # five greys: kept exactly at K >= 5


def png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(10, 12), (10, 12, 1)])
def test_a_grey_array_is_encoded(shape):
    decoded = kmq.decode(kmq.encode(GREY.reshape(shape), 8))
    assert decoded.shape == (10, 12, 3)
    assert all(np.array_equal(decoded[:, :, c], GREY) for c in range(3))


@st.composite
def grey_planes(draw: st.DrawFn, max_side: int = 16) -> tuple[np.ndarray, int]:
    """An (H, W) uint8 plane with at most ``k`` distinct values, and that ``k``."""
    k = draw(st.integers(1, 256))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(0, 256, size=draw(st.integers(1, k)), dtype=np.uint8)
    return values[rng.integers(0, len(values), size=(height, width))], k


@heavy
@given(grey_planes())
@example((np.zeros((1, 1), np.uint8), 1))
@example((np.array([[0, 255]], np.uint8), 2))
def test_a_grey_plane_with_at_most_k_values_survives_exactly(case):
    plane, k = case
    decoded = kmq.decode(kmq.encode(plane, k))
    assert np.array_equal(decoded, np.dstack([plane] * 3))


def test_a_grey_array_is_normalised_to_equal_channels():
    assert np.array_equal(as_array(GREY), np.dstack([GREY] * 3))


@pytest.mark.parametrize(
    ("image", "source_mode", "grey", "mode"),
    [
        (GREY, "L", True, "L"),
        (GREY[:, :, None], "L", True, "L"),
        (np.dstack([GREY] * 3), "RGB", False, "RGB"),
        (np.dstack([GREY] * 4), "RGBA", False, "RGBA"),
        (np.dstack([GREY] * 3 + [np.full_like(GREY, 255)]), "RGBA", False, "RGB"),  # opaque RGBA is RGB
        (Image.fromarray(GREY), "L", True, "L"),
        (Image.fromarray(GREY).convert("RGB"), "RGB", False, "RGB"),
    ],
)
def test_load_takes_arrays_and_pillow_images_and_says_whether_they_are_grey(image, source_mode, grey, mode):
    loaded = load(image)
    assert (loaded.source_mode, loaded.grey, loaded.mode) == (source_mode, grey, mode)
    assert loaded.bytes_per_pixel == len(mode)


@pytest.mark.parametrize(
    ("mode", "grey"),
    [(mode, True) for mode in ("1", "L", "LA", "I", "I;16", "F")]
    + [(mode, False) for mode in ("RGB", "RGBA", "P", "CMYK")],
)
def test_load_says_which_inputs_are_grey(mode, grey):
    image = Image.fromarray(GREY).convert(mode) if mode != "I;16" else Image.fromarray(GREY.astype(np.uint16) * 257)
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF")
    loaded = load(io.BytesIO(buffer.getvalue()))
    assert loaded.source_mode == image.mode and loaded.grey is grey
    if grey:
        assert loaded.mode == "L"  # LA opaque everywhere is L
        assert np.array_equal(loaded.pixels[:, :, 0], loaded.pixels[:, :, 1])


def test_a_sixteen_bit_grey_png_keeps_its_trns_transparency():
    deep = np.array([[0, 1000, 30000, 65535]], np.uint16)
    loaded = load(io.BytesIO(png(Image.fromarray(deep), transparency=1000)))
    assert loaded.source_mode == "I;16" and loaded.grey and loaded.mode == "LA"
    assert loaded.pixels[0, :, 3].tolist() == [255, 0, 255, 255]
    assert loaded.pixels[0, :, 0].tolist() == [0, 4, 117, 255]


@pytest.mark.parametrize(
    ("image", "mode", "channels"),
    [
        (Image.fromarray(GREY), "L", 1),
        (Image.fromarray(np.dstack([GREY, GREY // 2 + 1])), "LA", 2),
        (Image.fromarray(np.dstack([GREY] * 3)), "RGB", 3),
    ],
)
def test_encode_job_reports_the_mode_and_the_ratio_against_its_raw_size(image, mode, channels):
    outcome = encode_job(png(image), "x.png", EncodeOptions(quantizer=kmq.QuantizeOptions(k=8)))
    info = outcome.info
    assert info["mode"] == mode and info["input_mode"] == image.mode and info["grey"] is (channels < 3)
    assert info["raw_bytes"] == 10 * 12 * channels
    assert info["ratio"] == pytest.approx(10 * 12 * channels / info["file_bytes"])


@pytest.fixture
def grey_png(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "grey.png"
    path.write_bytes(png(Image.fromarray(GREY)))
    return path


def test_cli_encode_says_grey(grey_png, capsys):
    assert main(["encode", str(grey_png)]) == 0
    assert " 12x10 grey, K=5," in capsys.readouterr().out
    assert main(["encode", str(grey_png), "--json", "--force"]) == 0
    record = json.loads(capsys.readouterr().out)["files"][0]
    assert (record["mode"], record["input_mode"], record["grey"]) == ("L", "L", True)


def test_cli_info_reports_a_grey_file_as_grey(grey_png, capsys):
    assert main(["encode", str(grey_png), "-q"]) == 0
    kmq_file = grey_png.with_suffix(".kmq")
    assert main(["info", str(kmq_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["mode"], info["grey"], info["raw_bytes"]) == ("L", True, 120)
    assert info["ratio"] == pytest.approx(120 / kmq_file.stat().st_size)
    assert main(["info", str(kmq_file)]) == 0
    assert "against raw grey (120 bytes)" in capsys.readouterr().out


def test_cli_info_reports_a_colour_file_as_rgb(tmp_path, capsys):
    path = tmp_path / "colour.kmq"
    path.write_bytes(kmq.encode(np.dstack([GREY, GREY, 255 - GREY]), 8))
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["mode"], info["grey"], info["raw_bytes"]) == ("RGB", False, 360)
