"""Decoded images are palette images, as small as the format allows (kmq.images.save_indexed)."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import kmq
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import images
from kmq.cli.main import main
from PIL import Image
from strategies import indexed_images


def indexed(palette: list[list[int]] | np.ndarray, labels: list[list[int]] | np.ndarray) -> kmq.Indexed:
    return kmq.Indexed(np.asarray(palette, np.uint8), np.asarray(labels, np.uint8))


def saved(image: kmq.Indexed, fmt: str) -> bytes:
    buffer = io.BytesIO()
    images.save_indexed(buffer, image, fmt)
    return buffer.getvalue()


def read_back(data: bytes, channels: int) -> tuple[str, np.ndarray]:
    """The mode Pillow opens an image file in, and its pixels in ``channels`` channels."""
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, np.asarray(image.convert("RGBA" if channels == 4 else "RGB"))


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    """Each chunk type of a PNG with its body (IDAT bodies joined)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    return chunks


def some(k: int, channels: int, height: int, width: int, seed: int = 0) -> kmq.Indexed:
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    labels = rng.integers(0, k, (height, width), dtype=np.uint8)
    return kmq.Indexed(palette, labels)


# ---------------------------------------------------------------- PNG


@given(image=indexed_images())
@example(image=(np.array([[7, 8, 9]], np.uint8), np.zeros((1, 1), np.uint8)))  # K=1: 1 bit per pixel
@example(image=(np.array([[0, 0, 0], [9, 9, 9], [1, 2, 3]], np.uint8), np.array([[2, 1, 0, 2, 1]], np.uint8)))
@example(image=(np.arange(48, dtype=np.uint8).reshape(16, 3), np.arange(16, dtype=np.uint8).reshape(2, 8)))  # K=16
@example(image=(np.arange(51, dtype=np.uint8).reshape(17, 3), np.arange(17, dtype=np.uint8).reshape(1, 17)))  # K=17
@example(image=(np.array([[1, 2, 3, 255], [4, 5, 6, 0]], np.uint8), np.array([[1, 0, 1]], np.uint8)))
def test_png_reads_back_exactly(image: tuple[np.ndarray, np.ndarray]) -> None:
    palette, labels = image
    original = kmq.Indexed(palette, labels)

    mode, pixels = read_back(saved(original, "PNG"), original.channels)

    assert mode == "P"
    expected = original.to_array()
    if original.channels == 4 and (palette[:, 3] == 255).all():
        expected = expected.copy()  # an opaque RGBA palette reads back opaque: the same pixels
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize(("k", "depth"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 4), (16, 4), (17, 8), (256, 8)])
def test_png_depth_is_the_smallest_that_holds_k(k: int, depth: int) -> None:
    chunks = png_chunks(saved(some(k, 3, 5, 11), "PNG"))

    width, height, bits, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, bits, colour_type) == (11, 5, depth, 3)
    assert len(chunks[b"PLTE"]) == 3 * k
    assert b"tRNS" not in chunks


@pytest.mark.parametrize("k", [2, 5, 256])
def test_png_rows_are_unfiltered(k: int) -> None:
    image = some(k, 3, 40, 37)
    chunks = png_chunks(saved(image, "PNG"))

    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    depth = chunks[b"IHDR"][8]
    stride = 1 + -(-37 * depth // 8)
    assert rows.size == 40 * stride
    assert not rows.reshape(40, stride)[:, 0].any(), "filter type 0 on every row"


def test_png_transparency_lists_only_the_entries_with_alpha() -> None:
    palette = [[1, 1, 1, 255], [2, 2, 2, 0], [3, 3, 3, 255], [4, 4, 4, 90], [5, 5, 5, 255]]
    image = indexed(palette, [[0, 1, 2, 3, 4, 0]])
    data = saved(image, "PNG")

    chunks = png_chunks(data)
    assert chunks[b"tRNS"] == bytes([0, 90]), "entries with alpha first, so tRNS ends at the last of them"
    np.testing.assert_array_equal(read_back(data, 4)[1], image.to_array())


def test_png_is_much_smaller_than_the_full_colour_png() -> None:
    image = some(16, 3, 96, 128, seed=3)  # noise: each label costs its 4 bits, each RGB pixel far more
    full_colour = io.BytesIO()
    Image.fromarray(image.to_array()).save(full_colour, format="PNG")

    assert len(saved(image, "PNG")) * 1.5 < len(full_colour.getvalue())


@given(data=st.binary(max_size=300), cut=st.integers(0, 300))
@example(data=b"", cut=0)
@example(data=b"\xff" * 300, cut=150)  # sums past the modulus
def test_adler32_of_two_parts_combines_to_the_whole(data: bytes, cut: int) -> None:
    first, second = data[:cut], data[cut:]

    combined = images._adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))

    assert combined == zlib.adler32(data)


@pytest.mark.parametrize(("k", "channels"), [(2, 3), (13, 4), (256, 3)])
def test_png_deflated_in_many_bands_reads_back_exactly(monkeypatch: pytest.MonkeyPatch, k: int, channels: int) -> None:
    image = some(k, channels, 61, 45)
    monkeypatch.setattr(images, "_PNG_BAND_BYTES", 100)  # a band of a few rows; each primed with the rows before

    data = saved(image, "PNG")

    zlib.decompress(png_chunks(data)[b"IDAT"])  # checks the combined Adler-32
    np.testing.assert_array_equal(read_back(data, channels)[1], image.to_array())


def test_png_bytes_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    image = some(40, 3, 90, 70)
    monkeypatch.setattr(images, "_PNG_BAND_BYTES", 500)
    monkeypatch.setenv("KMQ_THREADS", "1")
    alone = saved(image, "PNG")
    monkeypatch.setenv("KMQ_THREADS", "4")

    assert saved(image, "PNG") == alone


def test_png_side_over_the_format_limit_is_an_image_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_PNG_MAX_SIDE", 10)

    with pytest.raises(kmq.ImageError, match=r"PNG holds at most 10 pixels a side; this image is 11x1"):
        saved(some(3, 3, 1, 11), "PNG")


# ---------------------------------------------------------------- GIF


def test_gif_keeps_opaque_images_exactly() -> None:
    image = some(200, 3, 9, 31)

    mode, pixels = read_back(saved(image, "GIF"), 3)

    assert mode == "P"
    np.testing.assert_array_equal(pixels, image.to_array())


def test_gif_merges_fully_transparent_entries_into_its_one_transparent_index() -> None:
    palette = [[10, 0, 0, 255], [0, 0, 1, 0], [0, 20, 0, 255], [0, 0, 2, 0], [30, 0, 0, 255]]
    image = indexed(palette, [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])

    with Image.open(io.BytesIO(saved(image, "GIF"))) as gif:
        transparent = gif.info["transparency"]
        indices = np.asarray(gif)
        pixels = np.asarray(gif.convert("RGBA"))
    expected = image.to_array()
    clear = expected[:, :, 3] == 0
    assert (indices[clear] == transparent).all()
    assert (pixels[clear][:, 3] == 0).all()
    np.testing.assert_array_equal(pixels[~clear], expected[~clear])


def test_gif_refuses_partial_alpha_and_says_where_to_go() -> None:
    image = indexed([[1, 2, 3, 255], [4, 5, 6, 128], [7, 8, 9, 0]], [[0, 1, 2]])

    message = r"GIF keeps only opaque and fully transparent pixels, and 1 of this image's 3 .*\(e\.g\. 128\); use \.png"
    with pytest.raises(kmq.ParameterError, match=message):
        saved(image, "GIF")


def test_output_format_accepts_gif_for_rgba() -> None:
    assert images.output_format("x.gif", channels=4) == "GIF"


def test_gif_side_over_65535_is_an_image_error() -> None:
    image = kmq.Indexed(np.zeros((2, 3), np.uint8), np.zeros((1, 70000), np.uint8))

    with pytest.raises(kmq.ImageError, match=r"GIF holds at most 65535 pixels a side; this image is 70000x1"):
        saved(image, "GIF")


# ---------------------------------------------------------------- other formats


def test_webp_is_lossless_and_exact_even_under_full_transparency() -> None:
    image = indexed([[1, 2, 3, 255], [4, 5, 6, 128], [70, 80, 90, 0]], [[0, 1, 2], [2, 1, 0]])

    np.testing.assert_array_equal(read_back(saved(image, "WEBP"), 4)[1], image.to_array())


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "TGA", "PCX"])
def test_formats_with_a_palette_get_one(fmt: str) -> None:
    image = some(7, 3, 6, 13)

    mode, pixels = read_back(saved(image, fmt), 3)

    assert mode == "P"
    np.testing.assert_array_equal(pixels, image.to_array())


def test_rgba_in_a_format_whose_palette_has_no_alpha_is_full_colour() -> None:
    image = some(7, 4, 6, 13)

    mode, pixels = read_back(saved(image, "TIFF"), 4)

    assert mode == "RGBA"
    np.testing.assert_array_equal(pixels, image.to_array())


@pytest.mark.parametrize(("fmt", "lossy"), [("PNG", False), ("GIF", False), ("WEBP", False), ("TIFF", False)])
def test_exact_formats_are_not_lossy(fmt: str, lossy: bool) -> None:
    assert images.is_lossy(fmt) is lossy


@pytest.mark.parametrize("fmt", ["JPEG", "AVIF"])
def test_lossy_formats_are_lossy(fmt: str) -> None:
    if fmt not in Image.SAVE:
        pytest.skip(f"this Pillow has no {fmt} writer")
    assert images.is_lossy(fmt)


# ---------------------------------------------------------------- kmq decode


@pytest.fixture
def kmq_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.kmq"
    path.write_bytes(some(12, 3, 30, 50, seed=5).to_bytes())
    return path


@pytest.mark.parametrize("name", ["out.png", "out.gif", "out.tif"])
def test_decode_writes_a_palette_image(kmq_file: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["decode", str(kmq_file), "-o", name]) == 0

    with Image.open(name) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), kmq.decode(kmq_file.read_bytes()))


@pytest.mark.parametrize("name", ["out.jpg", "out.png"])
def test_decode_to_a_lossy_format_warns_in_one_line(
    kmq_file: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    capsys.readouterr()
    assert main(["decode", str(kmq_file), "-o", name]) == 0

    err = capsys.readouterr().err.splitlines()
    if name.endswith(".png"):
        assert err == []
    else:
        assert len(err) == 1
        assert err[0].startswith("kmq: warning: JPEG is lossy")


def test_decode_to_a_lossy_format_says_nothing_with_quiet(kmq_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["decode", str(kmq_file), "-o", "out.jpg", "-q"]) == 0

    assert capsys.readouterr().err == ""


def test_decode_json_reports_the_smaller_size(kmq_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    capsys.readouterr()
    assert main(["decode", str(kmq_file), "-o", "out.png", "--json"]) == 0

    record = json.loads(capsys.readouterr().out)["files"][0]
    assert record["output_bytes"] == Path("out.png").stat().st_size
    assert record["output_bytes"] == len(saved(kmq.Indexed.from_bytes(kmq_file.read_bytes()), "PNG"))


# ---------------------------------------------------------------- against pngquant, on photos


@pytest.mark.corpus
@pytest.mark.parametrize("k", [8, 16, 64, 256])
def test_decoded_png_is_no_larger_than_pngquants_of_the_same_image(corpus: Path, tmp_path: Path, k: int) -> None:
    pngquant = shutil.which("pngquant")
    if pngquant is None:
        pytest.skip("pngquant is not installed")
    image = kmq.quantize(np.asarray(Image.open(corpus / "kodak" / "kodim23.png").convert("RGB")), k)
    full_colour = tmp_path / "full.png"
    Image.fromarray(image.to_array()).save(full_colour)
    # pngquant keeps an image's colours exactly when it has at most K of them: the same pixels, its own PNG.
    theirs = subprocess.run(
        [pngquant, "--nofs", str(k), "-"], input=full_colour.read_bytes(), capture_output=True, check=True
    ).stdout
    assert np.array_equal(read_back(theirs, 3)[1], image.to_array())

    ours = saved(image, "PNG")

    assert len(ours) <= len(theirs)
    assert len(ours) * 1.5 < full_colour.stat().st_size
