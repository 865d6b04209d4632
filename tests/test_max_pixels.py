"""``--max-pixels N|none`` on every command that reads an image: encode (in workers too), compare and sweep.

kmq's limit stands in for Pillow's ``Image.MAX_IMAGE_PIXELS`` during the read only:
exactly N pixels pass, N + 1 are refused in one line naming the option, and
``none`` reads an image over Pillow's own limit.
"""

from __future__ import annotations

import io
import json

import kmq
import numpy as np
import pytest
from kmq.batch import EncodeOptions, encode_job
from kmq.cli.main import main
from PIL import Image


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    pixels = np.zeros((25, 40, 3), np.uint8)  # 1,000 pixels, two colours
    pixels[:, 20:] = 200
    Image.fromarray(pixels).save(tmp_path / "thousand.png")
    return tmp_path


COMMANDS = {
    "encode": ["encode", "thousand.png", "-o", "out.kmq"],
    "compare": ["compare", "thousand.png", "-k", "2", "-o", "out.png", "--width", "16"],
    "sweep": ["sweep", "thousand.png", "-k", "2", "--no-plot"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_one_pixel_over_the_limit_is_refused_in_one_line_naming_the_option(work, capsys, command):
    capsys.readouterr()

    assert main([*COMMANDS[command], "--max-pixels", "999"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "kmq: error: thousand.png: 40x25 = 1,000 pixels exceeds the limit of 999 "
        "(raise it with --max-pixels N or none; max_pixels= in Python)\n"
    )
    assert not (work / "out.kmq").exists() and not (work / "out.png").exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_exactly_the_limit_is_read(work, capsys, command):
    assert main([*COMMANDS[command], "--max-pixels", "1000", "-q"]) == 0


@pytest.mark.parametrize("command", list(COMMANDS))
def test_none_reads_an_image_over_pillows_own_limit_and_restores_it(work, capsys, monkeypatch, command):
    Image.new("RGB", (250, 120), (9, 9, 9)).save(work / "thousand.png")  # 30,000 pixels
    # Pillow alone errors above 20,000 pixels: text drawn by compare stays below that.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)

    assert main([*COMMANDS[command], "--max-pixels", "none", "-q"]) == 0
    assert Image.MAX_IMAGE_PIXELS == 10_000  # set for the read only


def test_encode_json_reports_the_refusal_as_that_files_failure(work, capsys):
    capsys.readouterr()
    assert main(["encode", "thousand.png", "--max-pixels", "10", "--json"]) == 1

    (record,) = json.loads(capsys.readouterr().out)["files"]
    assert record["status"] == "failed" and "--max-pixels" in record["error"]


def test_the_worker_applies_the_limit_it_is_given(work, monkeypatch):
    # What a worker process (or a Dask worker) runs: the limit travels in EncodeOptions.
    data = (work / "thousand.png").read_bytes()

    refused = encode_job(data, "thousand.png", EncodeOptions(quantizer=kmq.QuantizeOptions(k=2), max_pixels=999))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone errors above 200 pixels
    lifted = encode_job(data, "thousand.png", EncodeOptions(quantizer=kmq.QuantizeOptions(k=2), max_pixels=None))

    assert refused.content is None and "exceeds the limit of 999" in (refused.error or "")
    assert lifted.error is None and kmq.decode(lifted.content).shape == (25, 40, 3)


def test_the_default_limit_is_the_decoders(work):
    assert EncodeOptions().max_pixels == kmq.container.DEFAULT_MAX_PIXELS


def test_load_image_limit_applies_to_file_objects_too():
    buffer = io.BytesIO()
    Image.new("L", (30, 30)).save(buffer, format="PNG")
    buffer.seek(0)

    with pytest.raises(kmq.PixelLimitError, match=r"memo: 30x30 = 900 pixels exceeds the limit of 899"):
        kmq.images.load_image(buffer, name="memo", max_pixels=899)
