"""Specification of the ``kmq`` command (``cli/main.py``).

The commands, as the issue states them::

    kmq encode INPUT [-o OUT] [-k K] [--seed N] [--force]
    kmq decode INPUT [-o OUT] [--force]
    kmq info FILE [--json]
    kmq demo [OUTDIR] [-k K] [--force]
    kmq --version            (and ``python -m kmq`` does the same)

Rules every test below checks a piece of:

- an existing output is never replaced without ``--force``; outputs are written
  to a temporary ``.NAME.*.part`` file in the same folder and renamed into
  place, so a failed or interrupted run leaves no partial file and the old
  output byte for byte as it was; an input is never its own output;
- an error is one line on stderr that names the problem, no traceback, exit 1;
  a usage error prints the usage and exits 2; Ctrl-C exits 130.

The commands are driven in-process through :func:`kmq.cli.main.main`, and once
through a real process (``python -m kmq`` and the ``kmq`` script). Every test
runs in its own ``tmp_path``, never in the repository.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kmq
import kmq.files
import numpy as np
import pytest
from helpers import (
    H,
    W,
    assert_one_line_error,
    five_colours,
    gradient,
    read_pixels,
    rgba_partial,
    run,
    save_png,
    snapshot,
    temp_files,
    usage_error,
)
from kmq.cli.main import main
from PIL import Image

MAGIC = b"\x89KMQ"


# --------------------------------------------------------------------------
# Fixtures (the images and command runners are in helpers.py)
# --------------------------------------------------------------------------


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder, made the current directory, with three small images."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    save_png(tmp_path / "grad.png", gradient())
    save_png(tmp_path / "five.png", five_colours())
    save_png(tmp_path / "rgba.png", rgba_partial())
    return tmp_path


@pytest.fixture
def good_kmq(work: Path) -> Path:
    """``good.kmq``: grad.png at K=8, written with the library."""
    path = work / "good.kmq"
    path.write_bytes(kmq.encode(gradient(), 8))
    return path


# --------------------------------------------------------------------------
# 1. encode -> info -> decode
# --------------------------------------------------------------------------


def test_encode_writes_input_kmq_and_prints_one_summary_line(work, capsys):
    result = run(capsys, "encode", "grad.png")

    assert result.code == 0
    assert result.err == ""
    data = (work / "grad.kmq").read_bytes()
    assert data.startswith(MAGIC)
    (line,) = result.out.splitlines()
    in_size = (work / "grad.png").stat().st_size
    assert "grad.png" in line and "grad.kmq" in line
    assert f"{in_size:,} B" in line, "input size"
    assert f"{len(data):,} B" in line, "output size"
    assert "K=8" in line
    payload = 8 * (len(data) - 20 - 8 * 3 - 4) / (W * H)
    assert f"mix payload {payload:.3f} bit/px (raw 3)" in line, "the default coding, and what raw would need"
    assert payload < 3
    assert f"file {8 * len(data) / (W * H):.3f} bit/px" in line
    assert re.search(r"PSNR [\d.]+ dB", line)
    assert re.search(r"\d+\.\d\d s$", line), "time"


def test_encode_output_decodes_to_at_most_k_colours(work, capsys):
    assert run(capsys, "encode", "grad.png", "-k", "8").code == 0

    pixels = kmq.decode((work / "grad.kmq").read_bytes())
    assert pixels.shape == (H, W, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) <= 8


def test_encode_writes_to_dash_o(work, capsys):
    result = run(capsys, "encode", "grad.png", "-o", "small.kmq", "-k", "4")

    assert result.code == 0
    assert not (work / "grad.kmq").exists()
    assert kmq.decode((work / "small.kmq").read_bytes()).shape == (H, W, 3)
    assert "K=4" in result.out and "(raw 2)" in result.out


def test_encode_coding_raw_is_exactly_three_bits_per_pixel_at_k8(work, capsys):
    result = run(capsys, "encode", "grad.png", "--coding", "raw")

    assert result.code == 0
    assert "raw payload 3.000 bit/px," in result.out
    assert len((work / "grad.kmq").read_bytes()) == 24 + 8 * 3 + W * H * 3 // 8


def test_encode_coding_ctx1_is_smaller_and_decodes_to_the_same_pixels(work, capsys):
    run(capsys, "encode", "grad.png", "--coding", "raw", "-o", "raw.kmq")
    run(capsys, "encode", "grad.png", "--coding", "ctx1", "-o", "ctx1.kmq")

    raw, ctx1 = (work / "raw.kmq").read_bytes(), (work / "ctx1.kmq").read_bytes()
    assert (raw[5], ctx1[5]) == (0, 1), "coding byte"
    assert len(ctx1) < len(raw)
    np.testing.assert_array_equal(kmq.decode(ctx1), kmq.decode(raw))


def test_encode_writes_mix_by_default_no_larger_than_ctx1_or_raw(work, capsys):
    run(capsys, "encode", "grad.png", "--coding", "raw", "-o", "raw.kmq")
    run(capsys, "encode", "grad.png", "--coding", "ctx1", "-o", "ctx1.kmq")
    run(capsys, "encode", "grad.png", "-o", "default.kmq")

    raw, ctx1, default = ((work / f"{name}.kmq").read_bytes() for name in ("raw", "ctx1", "default"))
    assert default[5] == 2, "coding byte: mix"
    assert len(default) < len(ctx1) < len(raw)
    np.testing.assert_array_equal(kmq.decode(default), kmq.decode(raw))


def test_encode_unknown_coding_is_a_usage_error(work, capsys):
    result = usage_error(capsys, "encode", "grad.png", "--coding", "zip")

    assert result.code == 2
    assert "'zip' is not a payload coding: choose mix (2), ctx1 (1) or raw (0)" in result.err
    assert not (work / "grad.kmq").exists()


@pytest.mark.parametrize(("value", "coding"), [("0", 0), ("1", 1), ("2", 2), ("raw", 0), ("ctx1", 1), ("mix", 2)])
def test_encode_coding_by_name_or_number(work, capsys, value, coding):
    assert run(capsys, "encode", "grad.png", "--coding", value).code == 0
    assert (work / "grad.kmq").read_bytes()[5] == coding


def test_encode_says_why_it_wrote_raw_when_ctx1_was_asked_for(work, capsys):
    save_png(work / "tiny.png", gradient()[:1, :3])

    result = run(capsys, "encode", "tiny.png", "--coding", "ctx1")

    assert result.code == 0
    assert "raw payload" in result.out and "ctx1 would not have been smaller" in result.out


def test_info_shows_header_palette_and_three_bits_per_pixel_at_k8(work, capsys):
    run(capsys, "encode", "grad.png")
    size = (work / "grad.kmq").stat().st_size

    result = run(capsys, "info", "grad.kmq")

    assert result.code == 0
    assert result.err == ""
    text = result.out
    assert "grad.kmq" in text
    assert re.search(r"\b16 x 12\b", text)
    assert "K=8" in text
    assert len(re.findall(r"#[0-9a-f]{6}\b", text)) == 8, "one swatch per palette entry"
    assert "payload coding 2 (mix)" in text, "the default coding, by number and name"
    payload = size - 20 - 8 * 3 - 4
    assert re.search(rf"payload\s+{8 * payload / (W * H):.3f} bits per pixel: {payload} bytes in 1 stripe", text)
    assert "raw packing would need 3.000 bits per pixel (72 bytes" in text, "what coding 0 would take"
    assert f"{8 * size / (W * H):.3f} bits per pixel" in text, "file bits per pixel"
    assert re.search(rf"ratio\s+{W * H * 3 / size:.2f} : 1", text)


def test_info_json_has_the_same_figures(work, capsys):
    run(capsys, "encode", "grad.png")
    size = (work / "grad.kmq").stat().st_size

    result = run(capsys, "info", "grad.kmq", "--json")

    assert result.code == 0
    info = json.loads(result.out)
    assert (info["width"], info["height"], info["k"]) == (W, H, 8)
    assert (info["coding"], info["coding_name"], info["stripes"]) == (2, "mix", 1)
    assert info["payload_bytes"] == size - 20 - 8 * 3 - 4
    assert info["payload_bits_per_pixel"] == pytest.approx(8 * info["payload_bytes"] / (W * H))
    assert (info["raw_payload_bytes"], info["raw_payload_bits_per_pixel"]) == (72, 3.0)
    assert info["file_bits_per_pixel"] == pytest.approx(8 * size / (W * H))
    assert info["ratio"] == pytest.approx(W * H * 3 / size)
    assert info["channels"] == 3
    assert len(info["palette"]) == 8


def test_decode_writes_png_with_the_pixels_the_library_decodes(work, capsys):
    run(capsys, "encode", "grad.png", "-o", "enc.kmq")

    result = run(capsys, "decode", "enc.kmq")

    assert result.code == 0
    assert result.err == ""
    assert len(result.out.splitlines()) == 1 and "enc-kmq.png" in result.out
    with Image.open(work / "enc-kmq.png") as image:
        assert image.format == "PNG"
    expected = kmq.decode((work / "enc.kmq").read_bytes())
    np.testing.assert_array_equal(read_pixels(work / "enc-kmq.png"), expected)


@pytest.mark.parametrize(
    ("pixels", "k"),
    [(five_colours(), 8), (np.full((3, 4, 3), 7, np.uint8), 1), (gradient(), 256)],
    ids=["5-colours-k8", "solid-k1", "192-colours-k256"],
)
def test_image_with_at_most_k_colours_round_trips_exactly(work, capsys, pixels, k):
    save_png(work / "in.png", pixels)

    assert run(capsys, "encode", "in.png", "-o", "in.kmq", "-k", str(k)).code == 0
    assert run(capsys, "decode", "in.kmq", "-o", "out.png").code == 0

    np.testing.assert_array_equal(read_pixels(work / "out.png"), pixels)


def test_rgba_keeps_its_partial_alpha(work, capsys):
    assert run(capsys, "encode", "rgba.png", "-k", "8").code == 0
    assert json.loads(run(capsys, "info", "rgba.kmq", "--json").out)["channels"] == 4
    assert run(capsys, "decode", "rgba.kmq", "-o", "back.png").code == 0

    with Image.open(work / "back.png") as image:
        assert image.mode == "P" and image.has_transparency_data
    np.testing.assert_array_equal(read_pixels(work / "back.png"), rgba_partial())


@pytest.mark.parametrize(
    ("name", "fmt", "lossless"),
    [("out.bmp", "BMP", True), ("out.webp", "WEBP", True), ("out.tif", "TIFF", True), ("OUT.PNG", "PNG", True)],
)
def test_decode_takes_the_format_from_the_extension(work, capsys, good_kmq, name, fmt, lossless):
    result = run(capsys, "decode", "good.kmq", "-o", name)

    assert result.code == 0, result
    with Image.open(work / name) as image:
        assert image.format == fmt
        assert image.size == (W, H)
    if lossless:
        np.testing.assert_array_equal(read_pixels(work / name), kmq.decode(good_kmq.read_bytes()))


@pytest.mark.parametrize("name", ["out.ppm", "out.gif", "out.jpg", "out.bmp"])
def test_decode_rgba_to_a_format_without_partial_alpha_is_refused(work, capsys, name):
    assert run(capsys, "encode", "rgba.png", "-k", "8").code == 0

    result = run(capsys, "decode", "rgba.kmq", "-o", name)

    assert_one_line_error(result, r"alpha|RGBA")
    assert not (work / name).exists()


def test_info_payload_rate_is_the_label_width_even_on_a_tiny_image(work, capsys):
    (work / "tiny.kmq").write_bytes(
        kmq.Indexed(np.zeros((8, 3), np.uint8), np.arange(7, dtype=np.uint8)[None]).to_bytes()
    )

    info = json.loads(run(capsys, "info", "tiny.kmq", "--json").out)

    assert info["coding_name"] == "raw", "mix and ctx1 fall back to raw where they are not smaller"
    assert info["payload_bits_per_pixel"] == 3.0
    assert info["payload_bytes"] == 3 and info["padding_bits"] == 3


def test_max_pixels_option_refuses_or_lifts_the_limit(work, capsys, good_kmq):
    assert_one_line_error(run(capsys, "info", "good.kmq", "--max-pixels", "10"), r"exceeds the limit of 10")
    assert run(capsys, "info", "good.kmq", "--max-pixels", "none").code == 0
    assert_one_line_error(run(capsys, "decode", "good.kmq", "--max-pixels", "10"), r"exceeds the limit of 10")
    assert not (work / "good.png").exists()


# --------------------------------------------------------------------------
# 2. No clobbering
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "name", "earlier"),
    [
        (["encode", "grad.png"], "grad.kmq", kmq.encode(five_colours())),
        (["decode", "good.kmq"], "good-kmq.png", b"old"),
    ],
    ids=["encode", "decode"],
)
def test_existing_output_is_refused_without_force(work, capsys, good_kmq, argv, name, earlier):
    out = work / name
    kmq.files.atomic_write(out, earlier)  # a kmq file, or a decoded image kmq marked: outputs kmq wrote

    result = run(capsys, *argv)

    assert_one_line_error(result, re.escape(out.name), r"exists", r"--force")
    assert out.read_bytes() == earlier
    assert temp_files(work) == []


def test_force_replaces_existing_encode_output(work, capsys):
    (work / "grad.kmq").write_bytes(kmq.encode(five_colours()))

    assert run(capsys, "encode", "grad.png", "--force").code == 0

    assert kmq.decode((work / "grad.kmq").read_bytes()).shape == (H, W, 3)
    assert temp_files(work) == []


def test_force_replaces_existing_decode_output(work, capsys, good_kmq):
    (work / "old.png").write_bytes(b"old contents")

    assert run(capsys, "decode", "good.kmq", "-o", "old.png", "--force").code == 0

    np.testing.assert_array_equal(read_pixels(work / "old.png"), kmq.decode(good_kmq.read_bytes()))


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        (["encode", "notes.txt", "-o", "old.kmq", "--force"], "old.kmq"),
        (["decode", "bad.kmq", "-o", "old.png", "--force"], "old.png"),
    ],
    ids=["encode-non-image", "decode-corrupt-kmq"],
)
def test_force_with_a_failing_input_keeps_the_old_output(work, capsys, argv, out):
    (work / "notes.txt").write_text("not an image\n")
    (work / "bad.kmq").write_bytes(kmq.encode(gradient())[:-5])
    (work / out).write_bytes(b"old contents")

    result = run(capsys, *argv)

    assert_one_line_error(result, re.escape(argv[1]))
    assert (work / out).read_bytes() == b"old contents"
    assert temp_files(work) == []


# --------------------------------------------------------------------------
# 3. An input is never its own output
# --------------------------------------------------------------------------


def test_encode_refuses_a_kmq_input_whose_default_output_is_itself(work, capsys):
    original = (work / "grad.png").read_bytes()
    (work / "photo.kmq").write_bytes(original)  # a PNG with a .kmq name

    for argv in (["encode", "photo.kmq"], ["encode", "photo.kmq", "--force"]):
        assert_one_line_error(run(capsys, *argv), "photo.kmq", r"input")
        assert (work / "photo.kmq").read_bytes() == original


@pytest.mark.parametrize("spelling", ["same", "dot-dot", "symlink", "hardlink"])
def test_encode_refuses_output_equal_to_input_even_with_force(work, capsys, spelling):
    original = (work / "grad.png").read_bytes()
    (work / "sub").mkdir()
    out = {"same": "grad.png", "dot-dot": "sub/../grad.png", "symlink": "link.png", "hardlink": "hard.png"}[spelling]
    if spelling == "symlink":
        os.symlink("grad.png", work / "link.png")
    if spelling == "hardlink":
        os.link(work / "grad.png", work / "hard.png")

    result = run(capsys, "encode", "grad.png", "-o", out, "--force")

    assert_one_line_error(result, r"input")
    assert (work / "grad.png").read_bytes() == original
    assert temp_files(work) == []


def test_decode_refuses_output_equal_to_input_even_with_force(work, capsys):
    data = kmq.encode(gradient())
    (work / "pic.png").write_bytes(data)  # a kmq file with a .png name

    for argv in (["decode", "pic.png", "-o", "pic.png"], ["decode", "pic.png", "-o", "pic.png", "--force"]):
        assert_one_line_error(run(capsys, *argv), "pic.png", r"input")
        assert (work / "pic.png").read_bytes() == data


# --------------------------------------------------------------------------
# 4. Bad inputs: one line, exit 1, nothing written
# --------------------------------------------------------------------------


@pytest.fixture
def bad_files(work: Path, good_kmq: Path) -> Path:
    """Broken inputs of every kind, beside grad.png and good.kmq."""
    (work / "folder").mkdir()
    (work / "empty.png").write_bytes(b"")
    (work / "zero.kmq").write_bytes(b"")
    (work / "notes.txt").write_text("hello, I am text\n")
    noise = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    png = save_png(work / "noise.png", noise).read_bytes()
    (work / "truncated.png").write_bytes(png[: len(png) // 2])
    data = good_kmq.read_bytes()
    (work / "cut.kmq").write_bytes(data[:-10])
    (work / "cut-header.kmq").write_bytes(data[:10])
    (work / "long.kmq").write_bytes(data + b"\0")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01  # a payload byte
    (work / "flipped.kmq").write_bytes(bytes(flipped))
    return work


BAD_INPUTS = [
    # (id, argv, what the message must match)
    ("encode-missing", ["encode", "missing.png"], [r"missing\.png", r"no such file"]),
    ("decode-missing", ["decode", "missing.kmq"], [r"missing\.kmq", r"no such file"]),
    ("info-missing", ["info", "missing.kmq"], [r"missing\.kmq", r"no such file"]),
    ("encode-empty-folder", ["encode", "folder"], [r"folder", r"no image files"]),
    ("decode-empty-folder", ["decode", "folder"], [r"folder", r"no \.kmq files"]),
    ("info-directory", ["info", "folder"], [r"folder", r"is a directory"]),
    ("encode-empty", ["encode", "empty.png"], [r"empty\.png", r"not an image|empty"]),
    ("decode-empty", ["decode", "zero.kmq"], [r"zero\.kmq", r"\b0 bytes|empty"]),
    ("info-empty", ["info", "zero.kmq"], [r"zero\.kmq", r"\b0 bytes|empty"]),
    ("encode-text", ["encode", "notes.txt"], [r"notes\.txt", r"not an image"]),
    ("encode-truncated-png", ["encode", "truncated.png"], [r"truncated\.png", r"truncated"]),
    ("decode-truncated-kmq", ["decode", "cut.kmq"], [r"cut\.kmq", r"truncated|shorter|header implies"]),
    ("info-truncated-kmq", ["info", "cut.kmq"], [r"cut\.kmq", r"truncated|shorter|header implies"]),
    ("decode-truncated-header", ["decode", "cut-header.kmq"], [r"cut-header\.kmq", r"truncated|shorter"]),
    ("info-truncated-header", ["info", "cut-header.kmq"], [r"cut-header\.kmq", r"truncated|shorter"]),
    ("decode-trailing-bytes", ["decode", "long.kmq"], [r"long\.kmq", r"trailing"]),
    ("info-trailing-bytes", ["info", "long.kmq"], [r"long\.kmq", r"trailing"]),
    ("decode-png", ["decode", "grad.png", "-o", "out.png"], [r"grad\.png", r"not a kmq file"]),
    ("info-png", ["info", "grad.png"], [r"grad\.png", r"not a kmq file"]),
    ("info-text", ["info", "notes.txt"], [r"notes\.txt", r"not a kmq file"]),
    ("decode-flipped-byte", ["decode", "flipped.kmq"], [r"flipped\.kmq", r"checksum"]),
    ("info-flipped-byte", ["info", "flipped.kmq"], [r"flipped\.kmq", r"checksum"]),
    ("encode-into-missing-folder", ["encode", "grad.png", "-o", "nodir/out.kmq"], [r"nodir", r"does not exist"]),
    ("decode-into-missing-folder", ["decode", "good.kmq", "-o", "nodir/out.png"], [r"nodir", r"does not exist"]),
    ("decode-unknown-extension", ["decode", "good.kmq", "-o", "out.xyz"], [r"extension", r"\.xyz"]),
    ("decode-no-extension", ["decode", "good.kmq", "-o", "out"], [r"extension"]),
    ("decode-unknown-extension-before-reading", ["decode", "missing.kmq", "-o", "out.xyz"], [r"\.xyz"]),
]


@pytest.mark.parametrize(("argv", "patterns"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_1_and_writes_nothing(bad_files, capsys, argv, patterns):
    before = snapshot(bad_files)

    result = run(capsys, *argv)

    assert_one_line_error(result, *patterns)
    assert snapshot(bad_files) == before, "nothing written, nothing changed"


@pytest.mark.parametrize("length", [1, 3, 4, 19, 20, 40, -1])
def test_kmq_truncated_anywhere_is_refused_by_decode_and_info(bad_files, capsys, good_kmq, length):
    data = good_kmq.read_bytes()
    (bad_files / "short.kmq").write_bytes(data[:length])

    for command in ("decode", "info"):
        assert_one_line_error(run(capsys, command, "short.kmq"), r"short\.kmq", r"truncated|shorter|header implies")
    assert not (bad_files / "short.png").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["encode", "grad.png", "-o", "nodir/out.kmq"],
        ["decode", "good.kmq", "-o", "nodir/out.png"],
        ["encode", "grad.png", "-o", "folder", "--force"],
    ],
    ids=["encode-missing-folder", "decode-missing-folder", "encode-onto-a-directory-with-force"],
)
def test_write_error_names_the_output_not_the_temporary_file(bad_files, capsys, argv):
    result = run(capsys, *argv)

    assert_one_line_error(result)
    assert ".part" not in result.err
    assert argv[3] in result.err


# --------------------------------------------------------------------------
# 5. A full disk
# --------------------------------------------------------------------------


def _disk_full(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    ("argv", "out"),
    [(["encode", "grad.png", "-o", "out.kmq"], "out.kmq"), (["decode", "good.kmq", "-o", "out.png"], "out.png")],
    ids=["encode", "decode"],
)
def test_full_disk_leaves_no_output_and_no_temporary_file(work, capsys, good_kmq, monkeypatch, argv, out):
    monkeypatch.setattr(kmq.files.os, "fsync", _disk_full)

    result = run(capsys, *argv)

    assert_one_line_error(result, r"no space left on device")
    assert not (work / out).exists()
    assert temp_files(work) == []


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        (["encode", "grad.png", "-o", "out.kmq", "--force"], "out.kmq"),
        (["decode", "good.kmq", "-o", "out.png", "--force"], "out.png"),
    ],
    ids=["encode", "decode"],
)
def test_full_disk_with_force_keeps_the_old_output(work, capsys, good_kmq, monkeypatch, argv, out):
    (work / out).write_bytes(b"old contents")
    monkeypatch.setattr(kmq.files.os, "fsync", _disk_full)

    result = run(capsys, *argv)

    assert_one_line_error(result, r"no space left on device")
    assert (work / out).read_bytes() == b"old contents"
    assert temp_files(work) == []


def test_full_disk_error_names_the_output(work, capsys, monkeypatch):
    monkeypatch.setattr(kmq.files.os, "fsync", _disk_full)

    result = run(capsys, "encode", "grad.png", "-o", "out.kmq")

    assert_one_line_error(result, r"no space left on device", r"out\.kmq")


# --------------------------------------------------------------------------
# 6. Usage, help and version
# --------------------------------------------------------------------------

USAGE_ERRORS = [
    ("k-0", ["encode", "grad.png", "-k", "0"]),
    ("k-257", ["encode", "grad.png", "-k", "257"]),
    ("k-negative", ["encode", "grad.png", "-k", "-1"]),
    ("k-abc", ["encode", "grad.png", "-k", "abc"]),
    ("k-float", ["encode", "grad.png", "-k", "1.5"]),
    ("k-missing-value", ["encode", "grad.png", "-k"]),
    ("seed-negative", ["encode", "grad.png", "--seed", "-1"]),
    ("seed-2**32", ["encode", "grad.png", "--seed", "4294967296"]),
    ("seed-abc", ["encode", "grad.png", "--seed", "abc"]),
    ("unknown-flag", ["encode", "grad.png", "--bogus"]),
    ("decode-has-no-k", ["decode", "good.kmq", "-k", "8"]),
    ("demo-k-0", ["demo", "out", "-k", "0"]),
    ("unknown-command", ["frobnicate"]),
    ("no-command", []),
    ("encode-no-input", ["encode"]),
    ("decode-no-input", ["decode"]),
    ("info-no-file", ["info"]),
    ("info-two-files", ["info", "good.kmq", "good.kmq"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in USAGE_ERRORS], ids=[c[0] for c in USAGE_ERRORS])
def test_usage_error_exits_2_with_usage_and_writes_nothing(work, capsys, good_kmq, argv):
    before = snapshot(work)

    result = usage_error(capsys, *argv)

    assert result.code == 2
    assert result.out == ""
    assert "usage: kmq" in result.err
    assert "error:" in result.err
    assert "Traceback" not in result.err
    assert snapshot(work) == before


@pytest.mark.parametrize(
    ("option", "value", "pattern"),
    [
        ("-k", "0", r"argument -k: .*1\.\.256"),
        ("-k", "257", r"argument -k: .*1\.\.256"),
        ("--seed", "-1", r"argument --seed"),
    ],
)
def test_usage_error_names_the_option_and_its_range(work, capsys, option, value, pattern):
    result = usage_error(capsys, "encode", "grad.png", option, value)

    assert result.code == 2
    assert re.search(pattern, result.err), result.err


@pytest.mark.parametrize(
    "argv", [["-k", "1"], ["-k", "256"], ["--seed", "0"], ["--seed", "4294967295"]], ids=lambda a: " ".join(a)
)
def test_bounds_of_k_and_seed_are_accepted(work, capsys, argv):
    assert run(capsys, "encode", "grad.png", "-o", "out.kmq", *argv).code == 0


HELP = {
    None: ["encode", "decode", "info", "demo", "--version"],
    "encode": ["INPUT", "-o", "--output", "-k", "--seed", "--force"],
    "decode": ["INPUT", "-o", "--output", "--force"],
    "info": ["FILE", "--json"],
    "demo": ["OUTDIR", "-k", "--seed", "--force"],
}


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: c or "kmq")
def test_help_explains_every_option_with_an_example(capsys, command):
    result = usage_error(capsys, *([command] if command else []), "--help")

    assert result.code == 0
    assert result.err == ""
    assert "example" in result.out.lower()
    assert re.search(r"^\s+kmq \w+", result.out, re.MULTILINE), "an example command line"
    for option in HELP[command]:
        assert option.lower() in result.out.lower(), option


def test_version_prints_the_package_version(capsys):
    result = usage_error(capsys, "--version")

    assert result.code == 0
    # Both coders' backends; ctx1's last, as .ci/run's no-compiler check expects "... (ctx1 coder: python)".
    coders = f"(mix coder: {kmq.mix.BACKEND}) (ctx1 coder: {kmq.ctx1.BACKEND})"
    assert result.out.strip() == f"kmq {kmq.__version__} {coders}"


# --------------------------------------------------------------------------
# 7. Determinism
# --------------------------------------------------------------------------


def test_same_image_and_options_give_byte_identical_files(work, capsys):
    assert run(capsys, "encode", "grad.png", "-o", "a.kmq").code == 0
    assert run(capsys, "encode", "grad.png", "-o", "b.kmq").code == 0
    assert run(capsys, "encode", "grad.png", "-o", "c.kmq", "--seed", "7", "-k", "5").code == 0
    assert run(capsys, "encode", "grad.png", "-o", "d.kmq", "--seed", "7", "-k", "5").code == 0

    assert (work / "a.kmq").read_bytes() == (work / "b.kmq").read_bytes()
    assert (work / "c.kmq").read_bytes() == (work / "d.kmq").read_bytes()


def test_another_seed_gives_a_valid_file(work, capsys):
    assert run(capsys, "encode", "grad.png", "-o", "s1.kmq", "--seed", "1").code == 0

    info = json.loads(run(capsys, "info", "s1.kmq", "--json").out)
    assert (info["width"], info["height"], info["k"]) == (W, H, 8)


# --------------------------------------------------------------------------
# 8. demo
# --------------------------------------------------------------------------

DEMO_FILES = ("china.png", "china.kmq", "china-decoded.png")


def assert_demo_folder(folder: Path) -> None:
    assert all((folder / name).is_file() for name in DEMO_FILES)
    decoded = kmq.decode((folder / "china.kmq").read_bytes())
    np.testing.assert_array_equal(read_pixels(folder / "china-decoded.png"), decoded)
    assert read_pixels(folder / "china.png").shape == decoded.shape
    assert temp_files(folder) == []


def test_demo_writes_three_files_into_outdir_and_says_where(work, capsys):
    result = run(capsys, "demo", "out")

    assert result.code == 0
    assert result.err == ""
    assert_demo_folder(work / "out")
    assert re.search(r"(^|\s)out[\\/]?(\s|$)", result.out, re.MULTILINE), "names the folder it wrote into"
    assert "3.000" in result.out, "K=8 payload bits per pixel"


def test_demo_without_outdir_uses_kmq_demo_then_kmq_demo_2(work, capsys):
    first = run(capsys, "demo", "-k", "2")
    second = run(capsys, "demo", "-k", "2")

    assert (first.code, second.code) == (0, 0)
    assert "kmq-demo" in first.out and "kmq-demo-2" not in first.out
    assert "kmq-demo-2" in second.out
    assert_demo_folder(work / "kmq-demo")
    assert_demo_folder(work / "kmq-demo-2")


def test_demo_refuses_existing_outputs_without_force(work, capsys):
    (work / "out").mkdir()
    earlier = kmq.encode(five_colours())
    (work / "out" / "china.kmq").write_bytes(earlier)

    result = run(capsys, "demo", "out")

    assert_one_line_error(result, r"china\.kmq", r"exists", r"--force")
    assert (work / "out" / "china.kmq").read_bytes() == earlier
    assert sorted(p.name for p in (work / "out").iterdir()) == ["china.kmq"]


def test_demo_force_replaces_earlier_outputs(work, capsys):
    (work / "out").mkdir()
    (work / "out" / "china.kmq").write_bytes(b"old contents")

    assert run(capsys, "demo", "out", "-k", "2", "--force").code == 0

    assert_demo_folder(work / "out")


# --------------------------------------------------------------------------
# 9. Ctrl-C
# --------------------------------------------------------------------------


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_encode_exits_130_and_writes_nothing(work, capsys, monkeypatch):
    monkeypatch.setattr(kmq.batch, "quantize", _interrupt)

    result = run(capsys, "encode", "grad.png")

    assert_one_line_error(result, r"interrupt", code=130)
    assert not (work / "grad.kmq").exists()
    assert temp_files(work) == []


def test_ctrl_c_while_writing_keeps_the_old_output(work, capsys, monkeypatch):
    earlier = kmq.encode(five_colours())
    (work / "grad.kmq").write_bytes(earlier)
    monkeypatch.setattr(kmq.files.os, "fsync", _interrupt)

    result = run(capsys, "encode", "grad.png", "--force")

    assert_one_line_error(result, r"interrupt", code=130)
    assert (work / "grad.kmq").read_bytes() == earlier
    assert temp_files(work) == []


# --------------------------------------------------------------------------
# 10. A real process: python -m kmq and the kmq script
# --------------------------------------------------------------------------


def _kmq_script() -> str | None:
    return shutil.which("kmq", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _launcher(name: str) -> list[str]:
    if name == "python -m kmq":
        return [sys.executable, "-m", "kmq"]
    script = _kmq_script()
    if script is None:
        pytest.skip("no kmq console script installed")
    return [script]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KMQ_DEBUG", None)
    return env


@pytest.mark.parametrize("launcher", ["python -m kmq", "kmq script"])
def test_real_process_encodes_and_exits_0(work, launcher):
    proc = subprocess.run(
        [*_launcher(launcher), "encode", "grad.png"], cwd=work, env=_env(), capture_output=True, text=True, timeout=120
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 1 and "mix payload" in proc.stdout
    assert kmq.decode((work / "grad.kmq").read_bytes()).shape == (H, W, 3)


def test_real_process_error_is_one_line_and_exits_1(work):
    (work / "bad.kmq").write_bytes(b"\x89KMQ nonsense")

    proc = subprocess.run(
        [sys.executable, "-m", "kmq", "info", "bad.kmq"],
        cwd=work,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "bad.kmq" in proc.stderr


# --------------------------------------------------------------------------
# Quantizer options (issue 3)
# --------------------------------------------------------------------------


def test_auto_k_picks_the_fewest_colours_that_reach_the_target(work, capsys):
    result = run(capsys, "encode", "grad.png", "-k", "auto", "--min-psnr", "30", "-o", "auto.kmq")

    assert result.code == 0, result
    pixels = kmq.decode((work / "auto.kmq").read_bytes())
    assert kmq.metrics.psnr(read_pixels(work / "grad.png"), pixels) >= 30
    k = json.loads(run(capsys, "info", "auto.kmq", "--json").out)["k"]
    assert f"K={k}," in result.out


@pytest.mark.parametrize(
    "argv",
    [["-k", "auto"], ["-k", "8", "--min-psnr", "30"], ["-k", "auto", "--min-psnr", "-3"], ["--space", "lab"]],
    ids=["auto-without-target", "target-without-auto", "negative-target", "unknown-space"],
)
def test_quantizer_option_misuse_is_a_usage_error(work, capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["encode", "grad.png", *argv])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err
    assert not (work / "grad.kmq").exists()


def test_unreachable_target_is_one_line_exit_1(work, capsys):
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    save_png(work / "noise.png", noise)
    assert_one_line_error(run(capsys, "encode", "noise.png", "-k", "auto", "--min-psnr", "90"), r"out of reach")
    assert not (work / "noise.kmq").exists()


@pytest.mark.parametrize("dither", [[], ["0.5"], ["ordered"]])
def test_dither_on_rgba_writes_an_rgba_file(work, capsys, dither):
    assert run(capsys, "encode", "rgba.png", "--dither", *dither).code == 0
    assert kmq.decode((work / "rgba.kmq").read_bytes()).shape[2] == 4


@pytest.mark.parametrize("value", ["2", "-0.1", "lots"])
def test_a_bad_dither_value_is_a_usage_error_and_writes_nothing(work, capsys, value):
    result = usage_error(capsys, "encode", "grad.png", "--dither", value)
    assert result.code == 2 and "dither" in result.err
    assert not (work / "grad.kmq").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--space", "oklab"],
        ["--space", "rgb"],
        ["--dither"],
        ["--dither", "0.3"],
        ["--dither", "ordered"],
        ["--space", "oklab", "--dither"],
    ],
)
def test_space_and_dither_write_valid_files(work, capsys, argv):
    assert run(capsys, "encode", "grad.png", "-o", "opt.kmq", *argv).code == 0
    assert kmq.decode((work / "opt.kmq").read_bytes()).shape == (H, W, 3)


def test_encode_says_why_it_wrote_raw_when_mix_was_asked_for(work, capsys):
    save_png(work / "tiny.png", gradient()[:1, :3])

    result = run(capsys, "encode", "tiny.png")

    assert result.code == 0
    assert "neither mix nor ctx1 would have been smaller, so raw packing was written" in result.out
