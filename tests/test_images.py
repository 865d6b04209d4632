"""Input normalisation: every Pillow mode, EXIF orientation, arrays, and unreadable files."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys

import kmq
import numpy as np
import pytest
from kmq.images import as_array, load_image, output_format
from PIL import Image

RGB = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("1", 3), ("L", 3), ("P", 3), ("RGB", 3), ("CMYK", 3), ("YCbCr", 3), ("I", 3), ("F", 3), ("LA", 4), ("RGBA", 4)],
)
def test_every_mode_converts_to_rgb_or_rgba(mode, channels):
    image = Image.fromarray(RGB).convert(mode)
    if channels == 4:
        image.putalpha(128)
    pixels = as_array(image)
    assert pixels.dtype == np.uint8 and pixels.shape == (4, 6, channels)
    assert kmq.decode(kmq.encode(image, 256)).shape == pixels.shape


def test_palette_image_with_transparency_keeps_alpha():
    image = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    image.info["transparency"] = 1
    pixels = as_array(image)
    assert pixels.shape == (2, 2, 4)
    assert pixels[0, 1].tolist() == [0, 255, 0, 0] and pixels[0, 0].tolist() == [255, 0, 0, 255]


def test_sixteen_bit_grey_is_scaled_not_clipped():
    grey = Image.fromarray(np.array([[0, 257, 32896, 65535]], np.uint16))
    assert grey.mode.startswith("I;16")
    assert as_array(grey)[0, :, 0].tolist() == [0, 1, 128, 255]


def test_a_mode_i_image_clips_to_0_255_as_pillows_convert_does():
    image = Image.fromarray(np.array([[0, 100, 300, 1000]], np.int32))  # a 256..65535 maximum was scaled by 1/257
    assert image.mode == "I"
    assert as_array(image)[0, :, 0].tolist() == [0, 100, 255, 255]
    assert as_array(image)[0, :, 0].tolist() == np.asarray(image.convert("L"))[0].tolist()


@pytest.mark.parametrize("opened_as", ["I;16", "I"])  # "I": as older Pillow releases open a 16-bit grey PNG
def test_a_sixteen_bit_grey_png_is_scaled_by_its_bit_depth_not_its_values(tmp_path, monkeypatch, opened_as):
    from PIL import PngImagePlugin

    monkeypatch.setitem(PngImagePlugin._MODES, (16, 0), (opened_as, "I;16B"))
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 128, 200, 255, 65535]], np.uint16)).save(path)  # dark but for one pixel
    dark = tmp_path / "dark.png"
    Image.fromarray(np.array([[0, 128, 200, 255]], np.uint16)).save(dark)
    with Image.open(path) as image:
        assert image.mode == opened_as

    assert load_image(path)[0, :, 0].tolist() == [0, 0, 1, 1, 255]
    assert load_image(dark)[0, :, 0].tolist() == [0, 0, 1, 1]


def test_opaque_rgba_becomes_rgb():
    assert as_array(Image.fromarray(RGB).convert("RGBA")).shape == (4, 6, 3)


ORIENTED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_orientation_is_applied(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(RGB).save(buffer, format="PNG", exif=exif)
    with Image.open(buffer) as image:
        assert np.array_equal(as_array(image), ORIENTED[orientation](RGB))


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((4, 4, 3), np.float32), "dtype is float32"),
        (np.zeros(4, np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((4, 4, 3, 1), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_bad_arrays_are_parameter_errors(array, match):
    with pytest.raises(kmq.ParameterError, match=match):
        as_array(array)


def test_not_an_image_is_an_image_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(kmq.ImageError, match="not an image"):
        load_image(path)


def test_truncated_png_is_an_image_error(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:-400])
    with pytest.raises(kmq.ImageError, match=r"cut\.png"):
        load_image(path)


def test_missing_file_and_directory_are_image_errors(tmp_path):
    with pytest.raises(kmq.ImageError, match="no such file"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(kmq.ImageError, match="is a directory"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(kmq.PixelLimitError, match=r"100x100 = 10,000 pixels exceeds the limit of 1,000"):
        load_image(path, max_pixels=1000)  # kmq's limit stands in for Pillow's MAX_IMAGE_PIXELS


def test_output_format_comes_from_the_extension():
    assert output_format("x.PNG") == "PNG" and output_format("a/b.webp") == "WEBP"
    with pytest.raises(kmq.ParameterError, match=r"'\.foo'"):
        output_format("x.foo")


@pytest.mark.parametrize("name", ["x.png", "x.webp", "x.tiff"])
def test_rgba_outputs_that_keep_alpha_are_accepted(name):
    assert output_format(name, channels=4)


@pytest.mark.parametrize("name", ["x.ppm", "x.bmp", "x.jpg"])  # GIF keeps alpha 0 and 255: see test_palette_outputs
def test_rgba_outputs_that_would_drop_alpha_are_refused_up_front(name):
    with pytest.raises(kmq.ParameterError, match=r"alpha|RGBA"):
        output_format(name, channels=4)


def test_webp_output_is_lossless_and_exact(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (9, 11, 4), dtype=np.uint8)
    pixels[0, 0, 3] = 0  # an invisible pixel keeps its colour too
    path = tmp_path / "x.webp"
    kmq.images.save_image(path, pixels, output_format(path, channels=4))
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image.convert("RGBA")), pixels)


@pytest.mark.parametrize(("mode", "key"), [("L", 0), ("RGB", (0, 0, 0))])
def test_png_colour_key_transparency_keeps_alpha(tmp_path, mode, key):
    path = tmp_path / "key.png"
    Image.fromarray(np.array([[0, 200]], np.uint8)).convert(mode).save(path, transparency=key)
    pixels = load_image(path)
    assert pixels.shape == (1, 2, 4)
    assert pixels[0, :, 3].tolist() == [0, 255]


def test_premultiplied_la_is_accepted():
    assert as_array(Image.new("La", (2, 1), (100, 128))).shape == (1, 2, 4)


def test_sixteen_bit_pgm_opened_as_mode_i_is_scaled(tmp_path):
    path = tmp_path / "deep.pgm"
    values = np.array([0, 1000, 30000, 65535], ">u2")
    path.write_bytes(b"P5\n4 1\n65535\n" + values.tobytes())
    with Image.open(path) as image:
        assert image.mode in ("I", "I;16", "I;16B")
    assert load_image(path)[0, :, 0].tolist() == [0, 4, 117, 255]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bad.ppm", b"P6\n8 \xeb\n255\n" + bytes(192)),
        ("cut.ppm", b"P6\n8 8\n255\n" + bytes(50)),
        ("cut.qoi", b"qoif" + (64).to_bytes(4, "big") * 2 + b"\x03\x00" + bytes(10)),
        ("cut.gif", b"GIF89a\x10\x00\x10\x00\x80\x00\x00"),
    ],
)
def test_corrupt_files_of_any_format_are_image_errors_naming_the_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(kmq.ImageError, match=name.replace(".", r"\.")):
        load_image(path)


@pytest.mark.parametrize("name", ["x.ico", "x.icns"])
def test_formats_that_resize_are_refused(name):
    with pytest.raises(kmq.ParameterError, match="resize"):
        output_format(name)


def test_a_palette_image_with_alpha_in_its_palette_keeps_the_alpha():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.arange(16, dtype=np.uint8).reshape(4, 4) // 4 * 80  # four alpha levels
    image = Image.fromarray(rgba).quantize(4)  # mode P, palette mode RGBA, no "transparency" key
    assert image.mode == "P" and image.palette.mode == "RGBA"

    assert np.array_equal(as_array(image), np.asarray(image.convert("RGBA")))


# --------------------------------------------------------------------------
# Damaged EXIF: a broken orientation is ignored with a warning, never an exception
# --------------------------------------------------------------------------

SHORT, ASCII = 3, 2


def exif_block(*entries: tuple[int, int, bytes]) -> bytes:
    """A big-endian TIFF header and one IFD of (tag, type, 4 value bytes) entries, count 1 each (ASCII: 4)."""
    ifd = b"".join(struct.pack(">HHI", tag, kind, 4 if kind == ASCII else 1) + value for tag, kind, value in entries)
    return b"MM\x00\x2a" + struct.pack(">IH", 8, len(entries)) + ifd + bytes(4)


def with_exif(exif: bytes, fmt: str = "PNG") -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(RGB).save(buffer, format=fmt, exif=exif if fmt == "PNG" else b"Exif\0\0" + exif)
    buffer.seek(0)
    return buffer


ROTATE_270 = (0x0112, SHORT, b"\x00\x06\x00\x00")


@pytest.mark.parametrize(
    ("other", "fmt"),
    [
        ((282, ASCII, b"EOS\x00"), "PNG"),  # XResolution is a RATIONAL: Pillow's rewrite raised TypeError
        ((262, ASCII, b"sof\x00"), "PNG"),  # PhotometricInterpretation is a SHORT: struct.error
        ((262, ASCII, b"sof\x00"), "JPEG"),
    ],
)
def test_a_good_orientation_beside_damaged_tags_is_applied(other, fmt):
    data = with_exif(exif_block(ROTATE_270, other), fmt)
    with Image.open(data) as image:
        assert kmq.decode(kmq.encode(image, 256)).shape == (6, 4, 3)
    data.seek(0)
    loaded = kmq.images.load(data)
    assert loaded.notes == ()
    if fmt == "PNG":
        assert np.array_equal(loaded.pixels, ORIENTED[6](RGB))


@pytest.mark.parametrize(
    ("exif", "match"),
    [
        (exif_block((0x0112, ASCII, b"abc\x00")), r"broken EXIF orientation tag \(value 'abc'\)"),
        (exif_block((0x0112, SHORT, b"\x00\x09\x00\x00")), r"broken EXIF orientation tag \(value 9\)"),
        (b"MM\x00\x07" + bytes(12), r"EXIF data, which cannot be read"),  # not a TIFF header: refused before
    ],
)
def test_a_broken_orientation_is_ignored_with_a_note(exif, match):
    loaded = kmq.images.load(with_exif(exif))
    assert np.array_equal(loaded.pixels, RGB)
    assert len(loaded.notes) == 1 and re.search(match, loaded.notes[0])


def test_a_broken_orientation_is_a_warning_for_the_library():
    with Image.open(with_exif(exif_block((0x0112, ASCII, b"abc\x00")))) as image:
        with pytest.warns(kmq.KmqWarning, match="broken EXIF orientation"):
            assert np.array_equal(kmq.decode(kmq.encode(image, 256)), RGB)
        with pytest.warns(kmq.KmqWarning, match="broken EXIF orientation"):
            assert kmq.images.upright(image) is image


def test_upright_twice_rotates_once():
    with Image.open(with_exif(exif_block(ROTATE_270, (262, ASCII, b"sof\x00")))) as image:
        once = kmq.images.upright(image)
        assert kmq.images.upright(once) is once
        assert np.array_equal(as_array(once), ORIENTED[6](RGB))


def test_the_cli_encodes_a_file_with_damaged_exif_and_says_so_in_one_line(tmp_path, capsys):
    from kmq.cli.main import main

    path = tmp_path / "odd.png"
    path.write_bytes(with_exif(exif_block((0x0112, ASCII, b"abc\x00"))).getvalue())
    assert main(["encode", str(path), "-k", "256"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"kmq: warning: {path}: ignored a broken EXIF orientation tag (value 'abc'); the pixels are kept as stored"
    ]
    assert np.array_equal(kmq.read(path.with_suffix(".kmq")), RGB)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_damaged_exif_is_one_kmq_warning_line_and_no_pillow_warning(tmp_path, fmt):
    # The IFD says 5 entries and holds 1: Pillow warns "Corrupt EXIF data" (a JPEG's when it is opened).
    truncated = b"MM\x00\x2a" + struct.pack(">IH", 8, 5) + struct.pack(">HHI4s", 270, ASCII, 4, b"abc\x00")
    path = tmp_path / f"odd.{fmt.lower()}"
    path.write_bytes(with_exif(truncated, fmt).getvalue())
    env = {k: v for k, v in os.environ.items() if k not in ("KMQ_DEBUG", "PYTHONWARNINGS")}

    done = subprocess.run(
        [sys.executable, "-m", "kmq", "encode", path.name], cwd=tmp_path, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"kmq: warning: {path.name}: ignored its damaged EXIF data (Corrupt EXIF data"), lines
