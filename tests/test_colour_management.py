"""Embedded ICC profiles: inputs are converted to sRGB as a colour-managed viewer shows them.

The expected pixels are always LittleCMS's own conversion (Pillow's ImageCms,
perceptual intent, to its built-in sRGB), so the tests check that kmq applies
the profile, not how LittleCMS computes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import icc_profiles
import kmq
import numpy as np
import pytest
from kmq.batch import EncodeOptions, encode_job
from kmq.cli.main import main
from kmq.images import as_array, load
from PIL import Image, ImageCms

SRGB = ImageCms.createProfile("sRGB")
SYSTEM_A98 = Path("/usr/share/color/icc/ghostscript/a98.icc")

# 12 x 10 pixels of six saturated colours: Adobe RGB moves each of them far.
SIX = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 200, 200], [90, 60, 30]], np.uint8)
PIXELS = SIX[np.arange(120).reshape(10, 12) % 6]


def littlecms(image: Image.Image, icc: bytes, mode: str) -> np.ndarray:
    """What LittleCMS makes of ``image`` under profile ``icc``, in sRGB."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return np.asarray(ImageCms.profileToProfile(image, profile, SRGB, outputMode=mode))


def tagged(pixels: np.ndarray | Image.Image, icc: bytes, fmt: str = "PNG", **options: object) -> io.BytesIO:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, icc_profile=icc, **options)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("TIFF", {}), ("WEBP", {"lossless": True})])
def test_adobe_rgb_input_is_converted_to_srgb(fmt, options):
    icc = icc_profiles.adobe_rgb()
    loaded = load(tagged(PIXELS, icc, fmt, **options))
    expected = littlecms(Image.fromarray(PIXELS), icc, "RGB")
    assert not np.array_equal(expected, PIXELS)  # the profile matters for these colours
    assert np.array_equal(loaded.pixels, expected)
    assert loaded.converted and loaded.profile == icc_profiles.ADOBE_RGB_NAME
    assert loaded.colour == f"converted from its ICC profile {icc_profiles.ADOBE_RGB_NAME!r} to sRGB"
    assert loaded.notes == ()


def test_no_colour_management_keeps_the_numbers_as_stored():
    loaded = load(tagged(PIXELS, icc_profiles.adobe_rgb()), colour_management=False)
    assert np.array_equal(loaded.pixels, PIXELS)
    assert not loaded.converted and "colour management is off" in loaded.colour


def test_an_srgb_profile_keeps_the_numbers_exactly():
    loaded = load(tagged(PIXELS, icc_profiles.srgb()))
    assert np.array_equal(loaded.pixels, PIXELS)
    assert not loaded.converted and "is sRGB" in loaded.colour


def test_rgba_keeps_its_alpha_through_the_conversion():
    rgba = np.dstack([PIXELS, np.arange(120, dtype=np.uint8).reshape(10, 12) * 2])
    icc = icc_profiles.adobe_rgb()
    loaded = load(tagged(rgba, icc))
    assert np.array_equal(loaded.pixels, littlecms(Image.fromarray(rgba), icc, "RGBA"))
    assert np.array_equal(loaded.pixels[:, :, 3], rgba[:, :, 3])


def test_palette_png_with_a_profile_is_converted():
    image = Image.fromarray(PIXELS).quantize(6)
    icc = icc_profiles.adobe_rgb()
    loaded = load(tagged(image, icc))
    assert np.array_equal(loaded.pixels, littlecms(image.convert("RGB"), icc, "RGB"))


def test_cmyk_jpeg_with_a_profile_is_converted_through_the_profile():
    cmyk = Image.fromarray(PIXELS).convert("CMYK")
    icc = icc_profiles.cmyk()
    data = tagged(cmyk, icc, "JPEG", quality=95)
    with Image.open(data) as stored:
        stored.load()
        expected = littlecms(stored, icc, "RGB")
        naive = np.asarray(stored.convert("RGB"))
    data.seek(0)
    loaded = load(data)
    assert loaded.source_mode == "CMYK" and loaded.converted
    assert np.array_equal(loaded.pixels, expected)
    assert np.abs(expected.astype(int) - naive).max() > 30  # Pillow's formula alone would be far off


def test_grey_with_a_profile_is_converted_and_stays_grey():
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (3, 1))
    icc = icc_profiles.grey(gamma=1.0)  # linear light: sRGB's numbers for it are much higher
    loaded = load(tagged(ramp, icc))
    expected = littlecms(Image.fromarray(ramp), icc, "RGB")
    assert loaded.grey and loaded.converted and loaded.mode == "L"
    assert np.array_equal(loaded.pixels, expected)
    assert np.array_equal(loaded.pixels[:, :, 0], loaded.pixels[:, :, 2])
    assert loaded.pixels[0, 16, 0] > ramp[0, 16] + 40


@pytest.mark.parametrize(
    ("icc", "match"),
    [
        (b"not a profile at all", "cannot be read"),
        (icc_profiles.grey(), "is for grey images and this image is RGB"),
        (icc_profiles.cmyk(), "is for CMYK images and this image is RGB"),
    ],
)
def test_a_profile_that_cannot_apply_is_ignored_with_a_note(icc, match):
    loaded = load(tagged(PIXELS, icc))
    assert np.array_equal(loaded.pixels, PIXELS)
    assert len(loaded.notes) == 1 and match in loaded.notes[0] and "ICC profile" in loaded.notes[0]


def test_a_broken_profile_is_a_warning_from_the_library():
    with Image.open(tagged(PIXELS, b"junk" * 40)) as image, pytest.warns(kmq.KmqWarning, match="ICC profile"):
        assert np.array_equal(as_array(image), PIXELS)


def test_the_library_converts_pillow_images_too():
    icc = icc_profiles.adobe_rgb()
    expected = littlecms(Image.fromarray(PIXELS), icc, "RGB")
    with Image.open(tagged(PIXELS, icc)) as image:
        assert np.array_equal(as_array(image), expected)
        assert np.array_equal(kmq.decode(kmq.encode(image, 8)), expected)  # six colours: exact
        assert np.array_equal(as_array(image, colour_management=False), PIXELS)


def test_psnr_is_measured_against_the_converted_image():
    data = tagged(PIXELS, icc_profiles.adobe_rgb()).getvalue()
    outcome = encode_job(data, "adobe.png", EncodeOptions(quantizer=kmq.QuantizeOptions(k=8)))
    assert outcome.error is None
    # Six colours at K=8 are kept exactly: lossless against what the quantizer saw, the converted image.
    assert outcome.info["psnr"] is None
    assert np.array_equal(kmq.decode(outcome.content), load(io.BytesIO(data)).pixels)
    assert outcome.info["colour"].startswith("converted from its ICC profile")
    kept = encode_job(data, "adobe.png", EncodeOptions(quantizer=kmq.QuantizeOptions(k=8), colour_management=False))
    assert np.array_equal(kmq.decode(kept.content), PIXELS)


@pytest.fixture
def adobe_png(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "adobe.png"
    path.write_bytes(tagged(PIXELS, icc_profiles.adobe_rgb()).getvalue())
    return path


def test_cli_verbose_says_the_profile_was_converted(adobe_png, capsys):
    assert main(["encode", str(adobe_png), "-v"]) == 0
    err = capsys.readouterr().err
    assert f"adobe.png: converted from its ICC profile {icc_profiles.ADOBE_RGB_NAME!r} to sRGB" in err
    assert np.array_equal(kmq.read(adobe_png.with_suffix(".kmq")), load(adobe_png).pixels)


def test_cli_says_nothing_of_the_profile_without_verbose(adobe_png, capsys):
    assert main(["encode", str(adobe_png)]) == 0
    assert "ICC" not in capsys.readouterr().err


def test_cli_no_colour_management_keeps_the_numbers(adobe_png, capsys):
    assert main(["encode", str(adobe_png), "--no-colour-management", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["files"][0]
    assert "not applied" in record["colour"]
    assert np.array_equal(kmq.read(adobe_png.with_suffix(".kmq")), PIXELS)


def test_compare_takes_no_colour_management(adobe_png, capsys):
    assert main(["compare", str(adobe_png), "-k", "8", "--no-colour-management", "--json", "-o", "c.png"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["psnr"] is None


@pytest.mark.skipif(not SYSTEM_A98.is_file(), reason=f"{SYSTEM_A98} (ghostscript's Adobe RGB) is not installed")
def test_a_real_adobe_rgb_profile_converts_as_the_generated_one():
    real = load(tagged(PIXELS, SYSTEM_A98.read_bytes()))
    generated = load(tagged(PIXELS, icc_profiles.adobe_rgb()))
    assert real.converted and np.array_equal(real.pixels, generated.pixels)
