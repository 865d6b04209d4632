"""One options object for the quantizer: kmq.encode, kmq.write, the Pillow plugin, batch and the CLI share it."""

from __future__ import annotations

import io

import kmq
import numpy as np
import pytest
from kmq.batch import EncodeOptions, encode_job
from PIL import Image


def ramp(height: int = 16, width: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (3 * x + y) % 256], axis=2).astype(np.uint8)


def test_encode_takes_auto_with_min_psnr():
    data = kmq.encode(ramp(), "auto", min_psnr=30)
    assert kmq.metrics.psnr(ramp(), kmq.decode(data)) >= 30


@pytest.mark.parametrize("option", [{"space": "oklab"}, {"dither": True}, {"seed": 7}])
def test_encode_passes_every_quantizer_option(option):
    assert kmq.encode(ramp(), 5, **option, coding="raw") == kmq.quantize(ramp(), 5, **option).to_bytes("raw")


def test_write_takes_the_quantizer_options(tmp_path):
    indexed = kmq.write(tmp_path / "x.kmq", ramp(), "auto", min_psnr=28, space="oklab")
    assert indexed == kmq.quantize(ramp(), "auto", min_psnr=28, space="oklab")


def test_quantize_takes_an_options_object():
    options = kmq.QuantizeOptions(k=6, space="oklab", seed=3)
    assert kmq.quantize(ramp(), options=options) == kmq.quantize(ramp(), 6, space="oklab", seed=3)


def test_encode_and_write_take_an_options_object(tmp_path):
    options = kmq.QuantizeOptions(k=6, space="oklab", seed=3)
    expected = kmq.quantize(ramp(), 6, space="oklab", seed=3)

    assert kmq.encode(ramp(), options=options, coding="raw") == expected.to_bytes("raw")
    assert kmq.write(tmp_path / "x.kmq", ramp(), options=options) == expected


@pytest.mark.parametrize("keyword", [{"k": 6}, {"seed": 1}, {"space": "oklab"}, {"dither": True}])
def test_encode_and_write_refuse_options_with_the_keywords(tmp_path, keyword):
    options = kmq.QuantizeOptions(k=6)
    with pytest.raises(kmq.ParameterError, match="either options or k"):
        kmq.encode(ramp(), options=options, **keyword)
    with pytest.raises(kmq.ParameterError, match="either options or k"):
        kmq.write(tmp_path / "x.kmq", ramp(), options=options, **keyword)
    assert not (tmp_path / "x.kmq").exists()


def test_encode_takes_a_two_dimensional_grey_array():
    grey = ramp()[:, :, 0]
    assert np.array_equal(kmq.decode(kmq.encode(grey, 256))[:, :, 0], grey)


def test_options_and_keywords_together_are_refused():
    with pytest.raises(kmq.ParameterError, match="either options or k"):
        kmq.quantize(ramp(), 6, options=kmq.QuantizeOptions(k=6))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"k": 0}, "k must be an integer in 1..256"),
        ({"k": "auto"}, "k='auto' needs min_psnr"),
        ({"k": 8, "min_psnr": 30}, "min_psnr applies only with k='auto'"),
        ({"seed": -1}, "seed must be an integer"),
        ({"space": "lab"}, "space must be one of perceptual, rgb, oklab, got 'lab'"),
        ({"dither": "yes"}, "dither must be True, False, a strength from 0 to 1 or 'ordered', got 'yes'"),
        ({"dither": 1.5}, "dither must be True, False, a strength from 0 to 1 or 'ordered', got 1.5"),
    ],
)
def test_options_are_checked_when_made(fields, match):
    with pytest.raises(kmq.ParameterError, match=match):
        kmq.QuantizeOptions(**fields)


def test_options_normalise_numpy_numbers():
    options = kmq.QuantizeOptions(k=np.int64(4), seed=np.uint32(2))
    assert options == kmq.QuantizeOptions(k=4, seed=2) and type(options.k) is int and type(options.seed) is int


def test_batch_encode_options_hold_the_quantizer_options():
    buffer = io.BytesIO()
    Image.fromarray(ramp()).save(buffer, "PNG")
    options = EncodeOptions(quantizer=kmq.QuantizeOptions(k="auto", min_psnr=30, space="oklab"), coding="raw")
    outcome = encode_job(buffer.getvalue(), "ramp.png", options)
    assert outcome.content == kmq.encode(ramp(), "auto", min_psnr=30, space="oklab", coding="raw")


def test_pillow_save_uses_the_same_options(tmp_path):
    Image.fromarray(ramp()).save(tmp_path / "x.kmq", colors="auto", min_psnr=30, space="oklab", coding="raw")
    assert (tmp_path / "x.kmq").read_bytes() == kmq.encode(ramp(), "auto", min_psnr=30, space="oklab", coding="raw")


def test_pillow_save_names_its_own_option_on_a_bad_value(tmp_path):
    with pytest.raises(kmq.ParameterError, match=r"KMQ save option colors must be an integer in 1\.\.256"):
        Image.fromarray(ramp()).save(tmp_path / "x.kmq", colors=0)
