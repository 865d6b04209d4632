"""Hostile files, bad inputs and faults: each case named by what it does and what kmq must do about it.

Damaged and hostile kmq files (``DECODER_CASES``) run three ways: the library must raise the named
``KmqError`` subclass, and ``kmq decode`` and ``kmq info`` must print one line, exit 1 and write
nothing. Memory is measured with tracemalloc (numpy reports its buffers to it): nothing in proportion
to a header value may be allocated before the header is validated, and never more than the image the
header declares. The encoder and command cases go through ``kmq.cli.main`` and, for the signal, a real
process. FORMAT.md section 7.1 states the obligations these tests enforce.

The bugs other decoders fixed that these cases stand for: size products that overflow (Pillow
CVE-2016-9189: pixel-count-over-*), palette indices out of range (libpng CVE-2025-64505:
label-beyond-palette, and ctx1's escape >= K in test_ctx1.py), sizes trusted from the file (Pillow
CVE-2021-27921 to 27923: the stripe lengths of coding 1 are checked against the file before any is used,
ctx1-payload-* and test_ctx1.py's table tests), and bombs in compressed data (libpng CVE-2010-0205,
Pillow CVE-2014-9601: ctx1-stream-for-a-taller-image).
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import kmq
import kmq.files
import numpy as np
import pytest
from helpers import assert_one_line_error, run, save_png, snapshot, temp_files, usage_error
from kmq import bitpack, container, ctx1
from PIL import Image

PALETTE = np.array([[0, 0, 0], [0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 255]], np.uint8)
RAW = container.dumps(PALETTE, np.array([[4, 0, 3], [1, 2, 3]], np.uint8), "raw")
_Y, _X = np.mgrid[0:96, 0:128]
CTX1_LABELS = ((_X // 16 + _Y // 12) % 8).astype(np.uint8)
CTX1 = container.dumps(np.arange(24, dtype=np.uint8).reshape(8, 3), CTX1_LABELS, "ctx1", strict=True)
MIX = container.dumps(np.arange(24, dtype=np.uint8).reshape(8, 3), CTX1_LABELS, "mix", strict=True)
#: Offset of the first stream byte in CTX1 (header, palette, S, one length).
CTX1_STREAM = 20 + 24 + 2 + 4


def with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def patched(data: bytes, field: str, value: int) -> bytes:
    """``data`` with one header field replaced and the checksum made valid again."""
    names = [name for name, _ in container.HEADER_FIELDS]
    values = list(container.HEADER.unpack(data[: container.HEADER.size]))
    values[names.index(field)] = value
    return with_crc(container.HEADER.pack(*values) + data[container.HEADER.size : -4])


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "JPEG")
    return buf.getvalue()


def ctx1_with_stream(stream: bytes, base: bytes = CTX1) -> bytes:
    """``base`` with its single stripe's stream replaced, the table made to match, the CRC valid."""
    head = base[: CTX1_STREAM - 6]
    return with_crc(head + struct.pack(">HI", 1, len(stream)) + stream)


def bomb() -> bytes:
    """A valid stream for a plane 4 times taller, under the header of the first quarter of its rows.

    The model looks only up and left, so the declared rows decode exactly as in the tall
    plane; the decoder must stop there and refuse the rest of the stream."""
    tall = np.vstack([CTX1_LABELS] * 4)
    stream = ctx1.encode(tall, 8, stripes=1)[6:]
    return ctx1_with_stream(stream)


# id -> (file bytes, error class, message pattern); ids say what is wrong with the file.
DECODER_CASES: dict[str, tuple[bytes, type[kmq.KmqError], str]] = {
    "empty-file": (b"", kmq.TruncatedError, r"0 bytes|shorter"),
    "shorter-than-the-header": (RAW[:12], kmq.TruncatedError, r"12 bytes, shorter than the 20-byte header"),
    "png-file": (png_bytes(), kmq.FormatError, r"not a kmq file"),
    "jpeg-file": (jpeg_bytes(), kmq.FormatError, r"not a kmq file"),
    "text-file": (b"hello, I am text\n" * 3, kmq.FormatError, r"not a kmq file"),
    "unsupported-version": (patched(RAW, "version", 2), kmq.FormatError, r"unsupported version 2"),
    "unknown-coding-3": (patched(RAW, "coding", 3), kmq.FormatError, r"unknown payload coding 3"),
    "mix-with-k-1": (
        patched(patched(patched(RAW, "coding", 2), "k", 1), "bits", 0),
        kmq.FormatError,
        r"payload coding 2 \(mix\) needs k >= 2, got k=1",
    ),
    "mix-payload-one-byte-short": (with_crc(MIX[:-5]), kmq.TruncatedError, r"stripe table implies"),
    "mix-garbage-after-checksum": (MIX + b"GARBAGE", kmq.FormatError, r"trailing bytes"),
    "unknown-coding-255": (patched(RAW, "coding", 255), kmq.FormatError, r"unknown payload coding 255"),
    "reserved-bits-set": (patched(RAW, "reserved", 0x8000), kmq.FormatError, r"reserved field is 0x8000"),
    "width-0": (patched(RAW, "width", 0), kmq.FormatError, r"width 0"),
    "height-0": (patched(RAW, "height", 0), kmq.FormatError, r"height 0"),
    "pixel-count-over-32-bits": (
        patched(patched(RAW, "width", 1 << 16), "height", 1 << 16)[:20],
        kmq.PixelLimitError,
        r"65536x65536 = 4294967296 pixels exceeds",
    ),
    "pixel-count-over-63-bits": (
        patched(patched(RAW, "width", 2**32 - 1), "height", 2**32 - 1)[:20],
        kmq.PixelLimitError,
        r"18446744065119617025 pixels exceeds",
    ),
    "over-the-pixel-limit-without-payload": (
        patched(patched(RAW, "width", 20_000), "height", 20_000)[:20],
        kmq.PixelLimitError,
        r"exceeds the limit of 178,?956,?970",
    ),
    "k-0": (patched(RAW, "k", 0), kmq.FormatError, r"k 0 not in 1\.\.256"),
    "k-257": (patched(RAW, "k", 257), kmq.FormatError, r"k 257 not in 1\.\.256"),
    "bits-not-those-k-needs": (patched(RAW, "bits", 4), kmq.FormatError, r"bits 4 != 3 required by k=5"),
    "palette-cut-short": (RAW[: 20 + 3 * 3], kmq.TruncatedError, r"truncated"),
    "raw-payload-one-byte-short": (with_crc(RAW[:-5]), kmq.TruncatedError, r"truncated: file is 41 bytes"),
    "raw-payload-one-byte-long": (with_crc(RAW[:-4] + b"\0"), kmq.FormatError, r"trailing bytes"),
    "raw-garbage-after-checksum": (RAW + b"GARBAGE", kmq.FormatError, r"trailing bytes"),
    "ctx1-payload-one-byte-short": (with_crc(CTX1[:-5]), kmq.TruncatedError, r"stripe table implies"),
    "ctx1-payload-one-byte-long": (with_crc(CTX1[:-4] + b"\0"), kmq.FormatError, r"trailing bytes"),
    "ctx1-garbage-after-checksum": (CTX1 + b"GARBAGE", kmq.FormatError, r"trailing bytes"),
    "label-beyond-palette": (with_crc(RAW[:35] + b"\xe1" + RAW[36:-4]), kmq.FormatError, r"label 7 >= k=5"),
    "padding-bit-set": (with_crc(RAW[:37] + b"\xc1" + RAW[38:-4]), kmq.FormatError, r"padding"),
    "ctx1-stream-for-a-taller-image": (bomb(), kmq.FormatError, r"left over after its last pixel"),
    "ctx1-stream-truncated": (
        ctx1_with_stream(CTX1[CTX1_STREAM:-5]),
        kmq.TruncatedError,
        r"stream ends early",
    ),
    "ctx1-junk-after-stream": (
        ctx1_with_stream(CTX1[CTX1_STREAM:-4] + b"\x5a\xa5"),
        kmq.FormatError,
        r"2 bytes left over",
    ),
}


def implied_bytes(data: bytes) -> int:
    """Bytes of the image the header declares (labels and pixels), 0 when there is no valid header."""
    try:
        header = container.Header.unpack(data, max_pixels=None)
    except kmq.KmqError:
        return 0
    return header.pixels * (1 + header.channels)


@pytest.mark.parametrize("case", list(DECODER_CASES), ids=list(DECODER_CASES))
def test_library_raises_the_named_error_and_allocates_no_more_than_the_image(case):
    data, error, pattern = DECODER_CASES[case]
    tracemalloc.start()
    try:
        with pytest.raises(error, match=pattern):
            kmq.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The header-implied image for files that get that far, and only the input's size otherwise.
    assert peak <= min(implied_bytes(data), 16 * 2**20) + len(data) + 256 * 1024, f"peak {peak:,} bytes"


@pytest.mark.parametrize("case", list(DECODER_CASES), ids=list(DECODER_CASES))
@pytest.mark.parametrize("command", ["decode", "info"])
def test_commands_print_one_line_exit_1_and_write_nothing(tmp_path, monkeypatch, capsys, case, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.kmq").write_bytes(DECODER_CASES[case][0])
    before = snapshot(tmp_path)

    result = run(capsys, command, "bad.kmq")

    assert_one_line_error(result, r"bad\.kmq")
    assert snapshot(tmp_path) == before
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("base", [RAW, CTX1, MIX], ids=["raw", "ctx1", "mix"])
@pytest.mark.parametrize("cut", range(1, container.HEADER.size))
def test_header_truncated_at_any_offset_is_refused_naming_its_length(base, cut):
    with pytest.raises(kmq.TruncatedError, match=rf"file is {cut} bytes, shorter than the 20-byte header"):
        kmq.decode(base[:cut])


@pytest.mark.parametrize("base", [RAW, CTX1], ids=["raw", "ctx1"])
def test_file_truncated_at_any_offset_is_refused(base):
    for cut in range(len(base)):
        with pytest.raises(kmq.FormatError):
            kmq.decode(base[:cut])


def test_over_the_pixel_limit_is_refused_from_the_header_alone(monkeypatch):
    def payload_reached(*args, **kwargs):
        raise AssertionError("the payload was decoded")

    for module, name in ((bitpack, "unpack"), (ctx1, "decode"), (ctx1, "stripe_table")):
        monkeypatch.setattr(module, name, payload_reached)
    data = DECODER_CASES["over-the-pixel-limit-without-payload"][0]
    tracemalloc.start()
    try:
        with pytest.raises(kmq.PixelLimitError):
            kmq.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"peak {peak:,} bytes"


def test_lifting_the_pixel_limit_allocates_nothing_for_a_missing_payload():
    data = DECODER_CASES["pixel-count-over-63-bits"][0]
    tracemalloc.start()
    try:
        with pytest.raises(kmq.TruncatedError, match="header implies"):
            kmq.decode(data, max_pixels=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@pytest.mark.parametrize("base", [RAW, CTX1], ids=["raw", "ctx1"])
def test_every_single_flipped_bit_is_caught(base):
    for index in range(8 * len(base)):
        damaged = bytearray(base)
        damaged[index // 8] ^= 1 << (index % 8)
        with pytest.raises(kmq.KmqError):
            kmq.decode(bytes(damaged))


def test_ctx1_stream_for_more_pixels_decodes_no_more_than_declared():
    # Without the checksum's help: the stream holds 4 times the pixels; decoding stops at W*H
    # labels and then finds the rest of the stream left over.
    data = bomb()
    with pytest.raises(kmq.FormatError, match="left over"):
        kmq.decode(data, verify_checksum=False)
    stream = CTX1[CTX1_STREAM:-4]
    labels = np.empty((96, 128), np.uint8)
    with pytest.raises(ValueError, match="output is 12288 bytes, not 128 x 97"):
        kmq.ctx1._backend.decode(stream, 128, 97, 8, labels)  # the C coder, or its Python twin


# --------------------------------------------------------------------------
# Encoder and commands: unreadable inputs, every Pillow mode, bad options, outputs kept safe
# --------------------------------------------------------------------------


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    return tmp_path


def _truncated(fmt: str) -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, fmt)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("notes.txt", b"not an image\n", r"not an image"),
        ("cut.png", _truncated("PNG"), r"truncated|broken|cannot"),
        ("cut.jpg", _truncated("JPEG"), r"truncated|broken|cannot"),
        ("empty.png", b"", r"not an image|empty"),
    ],
)
def test_unreadable_inputs_are_one_line_exit_1(work, capsys, name, content, pattern):
    (work / name).write_bytes(content)
    before = snapshot(work)

    assert_one_line_error(run(capsys, "encode", name), re.escape(name), pattern)
    assert snapshot(work) == before


def test_folder_without_images_and_missing_path_are_one_line_errors(work, capsys):
    (work / "folder").mkdir()
    assert_one_line_error(run(capsys, "encode", "folder"), r"folder", r"no image files in this folder")
    assert_one_line_error(run(capsys, "encode", "missing.png"), r"missing\.png", r"no such file")


def test_image_over_the_pixel_limit_is_a_one_line_error(work, capsys):
    save_png(work / "big.png", np.zeros((100, 100, 3), np.uint8))
    result = run(capsys, "encode", "big.png", "--max-pixels", "1000")  # kmq's limit stands in for Pillow's

    assert_one_line_error(result, r"big\.png", r"exceeds the limit of 1,000 .*--max-pixels")
    assert not (work / "big.kmq").exists()


def _mode_image(mode: str) -> tuple[Image.Image, str]:
    """A small image in ``mode`` and a file name whose format can hold that mode."""
    rgb = Image.fromarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3) * 7)
    if mode == "P+transparency":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        return image, "in.png"
    if mode == "I;16":
        image = Image.fromarray((np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800).astype("<u2"))
        assert image.mode == "I;16"
        return image, "in.png"
    image = rgb.convert(mode)
    if mode in ("LA", "RGBA"):
        image.putalpha(Image.fromarray(np.full((5, 7), 128, np.uint8)))
    suffix = {"CMYK": "tif", "I": "tif", "F": "tif"}.get(mode, "png")
    return image, f"in.{suffix}"


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P+transparency", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_pillow_mode_encodes_and_decodes_to_the_documented_pixels(work, capsys, mode):
    image, name = _mode_image(mode)
    image.save(work / name)
    expected = kmq.images.load_image(work / name)  # the documented normalisation (README, images.py)

    assert run(capsys, "encode", name, "-o", "out.kmq", "-k", "256").code == 0
    assert run(capsys, "decode", "out.kmq", "-o", "out.png").code == 0

    with Image.open(work / "out.png") as back:  # a palette PNG: its colours, with alpha if it has any
        decoded = np.asarray(back.convert("RGBA" if back.has_transparency_data else "RGB"))
    assert decoded.shape == expected.shape
    assert decoded.shape[2] == (4 if mode in ("LA", "RGBA", "P+transparency") else 3)
    np.testing.assert_array_equal(decoded, expected)  # at most 256 colours: stored exactly


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_are_applied(work, capsys, orientation):
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(work / "in.png", exif=exif)

    assert run(capsys, "encode", "in.png", "-o", "out.kmq", "-k", "2").code == 0

    decoded = kmq.decode((work / "out.kmq").read_bytes())
    assert decoded.shape[:2] == ((4, 6) if orientation <= 4 else (6, 4))
    with Image.open(work / "in.png") as original:
        from PIL import ImageOps

        np.testing.assert_array_equal(decoded, np.asarray(ImageOps.exif_transpose(original).convert("RGB")))


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 9), (9, 1)])
@pytest.mark.parametrize("colours", ["one", "several"])
def test_tiny_and_single_colour_images_survive_exactly(work, capsys, height, width, colours):
    pixels = np.full((height, width, 3), 77, np.uint8)
    if colours == "several":
        pixels[..., 0] = np.arange(height * width, dtype=np.uint8).reshape(height, width) * 20
    save_png(work / "in.png", pixels)

    assert run(capsys, "encode", "in.png", "-k", "16").code == 0
    assert run(capsys, "decode", "in.kmq", "-o", "out.png").code == 0

    with Image.open(work / "out.png") as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), pixels)


@pytest.mark.parametrize(
    "argv",
    [["-k", "0"], ["-k", "257"], ["--seed", "-1"], ["--bogus"], ["--coding", "zip"]],
    ids=["k-0", "k-257", "seed-negative", "unknown-flag", "unknown-coding"],
)
def test_invalid_options_exit_2_with_usage_and_write_nothing(work, capsys, argv):
    save_png(work / "in.png", np.zeros((4, 4, 3), np.uint8))
    before = snapshot(work)

    result = usage_error(capsys, "encode", "in.png", *argv)

    assert result.code == 2
    assert result.err.startswith("usage: kmq encode")
    assert snapshot(work) == before


def test_existing_output_without_force_is_byte_identical(work, capsys):
    save_png(work / "in.png", np.zeros((4, 4, 3), np.uint8))
    (work / "in.kmq").write_bytes(b"precious")

    result = run(capsys, "encode", "in.png")

    assert result.code == 1 and "exists" in result.err
    assert (work / "in.kmq").read_bytes() == b"precious"


def test_failing_input_with_force_keeps_the_old_output(work, capsys):
    (work / "in.png").write_bytes(_truncated("PNG"))
    (work / "in.kmq").write_bytes(b"precious")

    assert run(capsys, "encode", "in.png", "--force").code == 1
    assert (work / "in.kmq").read_bytes() == b"precious"
    assert temp_files(work) == []


def test_output_folder_not_writable_is_a_one_line_error(work, capsys, monkeypatch):
    # Tests may run as root, for whom chmod does not forbid writing: refuse the temporary file instead.
    save_png(work / "in.png", np.zeros((4, 4, 3), np.uint8))
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(kmq.files.os, "open", refuse)

    result = run(capsys, "encode", "in.png", "-o", "out.kmq")

    assert_one_line_error(result, r"out\.kmq", r"permission denied")
    assert not (work / "out.kmq").exists() and temp_files(work) == []


@pytest.mark.parametrize("force", [False, True])
def test_full_disk_leaves_nothing_half_written(work, capsys, monkeypatch, force):
    save_png(work / "in.png", np.zeros((4, 4, 3), np.uint8))
    precious = kmq.encode(np.full((4, 4, 3), 9, np.uint8))  # an earlier output, which kmq may replace with --force
    if force:
        (work / "in.kmq").write_bytes(precious)

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(kmq.files.os, "fsync", disk_full)
    result = run(capsys, "encode", "in.png", *(["--force"] if force else []))

    assert_one_line_error(result, r"in\.kmq", r"no space left on device")
    assert temp_files(work) == []
    if force:
        assert (work / "in.kmq").read_bytes() == precious
    else:
        assert not (work / "in.kmq").exists()


def test_input_as_its_own_output_is_refused(work, capsys):
    save_png(work / "in.png", np.zeros((4, 4, 3), np.uint8))
    original = (work / "in.png").read_bytes()

    assert_one_line_error(run(capsys, "encode", "in.png", "-o", "in.png", "--force"), r"in\.png")
    assert (work / "in.png").read_bytes() == original


def test_output_folder_that_does_not_exist_is_not_created(work, capsys):
    save_png(work / "in.png", np.zeros((4, 4, 3), np.uint8))

    assert_one_line_error(run(capsys, "encode", "in.png", "-o", "nodir/out.kmq"), r"nodir", r"does not exist")
    assert not (work / "nodir").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal")
def test_sigint_during_a_long_encode_exits_130_and_writes_nothing(work):
    rng = np.random.default_rng(0)
    save_png(work / "big.png", rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8))
    env = {key: value for key, value in os.environ.items() if key != "KMQ_DEBUG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "encode", "big.png", "-k", "256", "--verbose"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # --verbose says what it is about to do just before the work starts: the signal lands in its middle.
    plan = proc.stderr.readline() if proc.stderr else ""
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert "1 to encode" in plan, plan
    assert proc.returncode == 130, (proc.returncode, err)
    assert out == "" and err.strip() == "kmq: interrupted"
    assert not (work / "big.kmq").exists()
    assert temp_files(work) == []
