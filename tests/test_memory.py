"""Images too large for this machine's memory are refused at once, in one line (issue 15)."""

from __future__ import annotations

import sys

import kmq
import pytest
from helpers import gradient, run, save_png
from kmq import memory
from kmq.errors import PixelLimitError

MEMORY = sys.modules["kmq.memory"]


def test_the_available_memory_is_read_from_the_system():
    free = memory.available()
    assert free is None or free > 0


def test_an_image_that_fits_passes(monkeypatch):
    monkeypatch.setattr(MEMORY, "available", lambda: 10**9)
    memory.check(1000, 1000, memory.ENCODE_BYTES_PER_PIXEL, "photo.png")


def test_an_image_that_does_not_fit_is_refused_naming_what_it_needs(monkeypatch):
    monkeypatch.setattr(MEMORY, "available", lambda: 2**30)
    with pytest.raises(PixelLimitError, match=r"photo\.png: 65536x65536 = 4,294,967,296 pixels need about 44\.0 GiB"):
        memory.check(65536, 65536, memory.ENCODE_BYTES_PER_PIXEL, "photo.png")


def test_unknown_memory_refuses_nothing(monkeypatch):
    monkeypatch.setattr(MEMORY, "available", lambda: None)
    memory.check(10**6, 10**6, memory.ENCODE_BYTES_PER_PIXEL, "huge.png")


def test_encode_stops_before_reading_pixels_it_cannot_hold(monkeypatch, tmp_path, capsys):
    source = save_png(tmp_path / "in.png", gradient())
    out = tmp_path / "out.kmq"
    monkeypatch.setattr(MEMORY, "available", lambda: 100)  # 100 bytes: not even 16x12 pixels fit
    result = run(capsys, "encode", str(source), "-o", str(out))
    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "16x12 = 192 pixels need about" in result.err and "GiB is available" in result.err
    assert not out.exists()


def test_decode_stops_before_allocating_labels_it_cannot_hold(monkeypatch):
    data = kmq.encode(gradient(), 4)
    monkeypatch.setattr(MEMORY, "available", lambda: 100)
    with pytest.raises(PixelLimitError, match="16x12 = 192 pixels need about"):
        kmq.decode(data)


def test_kmq_decode_says_it_in_one_line(monkeypatch, tmp_path, capsys):
    (tmp_path / "in.kmq").write_bytes(kmq.encode(gradient(), 4))
    monkeypatch.setattr(MEMORY, "available", lambda: 100)
    result = run(capsys, "decode", str(tmp_path / "in.kmq"), "-o", str(tmp_path / "out.png"))
    assert result.code == 1
    assert result.err.count("\n") == 1 and "16x12 = 192 pixels need about" in result.err
    assert not (tmp_path / "out.png").exists()
