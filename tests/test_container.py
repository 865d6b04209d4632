"""The container: header, palette, payload, checksum, and every rejection rule."""

from __future__ import annotations

import contextlib
import struct
import zlib

import kmq
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import bitpack, container
from kmq.container import HEADER, Header
from strategies import indexed_images

PALETTE = np.array([[0, 0, 0], [0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 255]], dtype=np.uint8)
LABELS = np.array([[4, 0, 3], [1, 2, 3]], dtype=np.uint8)
EXAMPLE = container.dumps(PALETTE, LABELS, "raw")


def patched(data: bytes, field: str, value: int) -> bytes:
    """``data`` with one header field replaced and the checksum made valid again."""
    names = [name for name, _ in container.HEADER_FIELDS]
    values = list(HEADER.unpack(data[: HEADER.size]))
    values[names.index(field)] = value
    body = HEADER.pack(*values) + data[HEADER.size : -4]
    return body + struct.pack(">I", zlib.crc32(body))


@given(indexed_images())
@example((np.zeros((1, 3), np.uint8), np.zeros((1, 1), np.uint8)))
@example((np.arange(256 * 4, dtype=np.uint32).astype(np.uint8).reshape(256, 4), np.full((1, 1), 255, np.uint8)))
@example((PALETTE, LABELS))
def test_round_trip_is_exact_and_size_is_the_formula(case):
    palette, labels = case
    data = kmq.Indexed(palette, labels).to_bytes("raw")
    k, c = palette.shape
    assert len(data) == 24 + k * c + bitpack.packed_size(labels.size, bitpack.bits_for(k))
    back = kmq.Indexed.from_bytes(data)
    assert np.array_equal(back.palette, palette) and np.array_equal(back.labels, labels)


def test_k1_has_empty_payload():
    data = container.dumps(np.array([[1, 2, 3]], np.uint8), np.zeros((7, 9), np.uint8))
    assert data[5] == container.CODING_RAW, "ctx1 falls back to raw: K=1 has nothing to code"
    assert len(data) == HEADER.size + 3 + 4
    assert kmq.decode(data).tolist() == [[[1, 2, 3]] * 9] * 7


def test_header_pack_unpack_round_trip():
    header = Header.for_image(70000, 3, 4, 200)
    assert Header.unpack(header.pack(), max_pixels=None) == header
    assert header.bits == 8


@pytest.mark.parametrize("cut", range(0, len(EXAMPLE)))
def test_every_truncation_is_rejected(cut):
    with pytest.raises(kmq.FormatError):
        kmq.decode(EXAMPLE[:cut])


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 19, 20, 30, len(EXAMPLE) - 1])
def test_truncation_raises_truncated_error(cut):
    with pytest.raises(kmq.TruncatedError):
        kmq.decode(EXAMPLE[:cut])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("version", 2, "unsupported version 2"),
        ("coding", 3, "unknown payload coding 3"),
        ("coding", 255, "unknown payload coding 255"),
        ("channels", 5, "channels 5"),
        ("bits", 2, "bits 2 != 3"),
        ("k", 0, "k 0 not in"),
        ("k", 257, "k 257 not in"),
        ("reserved", 1, "reserved field"),
        ("width", 0, "width 0"),
        ("height", 0, "height 0"),
    ],
)
def test_out_of_range_field_is_named(field, value, match):
    with pytest.raises(kmq.FormatError, match=match):
        kmq.decode(patched(EXAMPLE, field, value))


def test_wrong_magic_is_not_a_kmq_file():
    with pytest.raises(kmq.FormatError, match="not a kmq file"):
        kmq.decode(b"\x89PNG\r\n\x1a\n" + EXAMPLE[8:])


@pytest.mark.parametrize(("width", "height"), [(2**16, 2**16), (2**32 - 1, 2**32 - 1), (2**31, 2)])
def test_pixel_limit_is_checked_with_python_ints_before_any_allocation(width, height):
    header = patched(patched(EXAMPLE, "width", width), "height", height)[: HEADER.size]
    with pytest.raises(kmq.PixelLimitError, match="exceeds the limit"):
        kmq.decode(header)


def test_pixel_limit_can_be_lowered_and_lifted():
    with pytest.raises(kmq.PixelLimitError):
        kmq.decode(EXAMPLE, max_pixels=5)
    assert kmq.decode(EXAMPLE, max_pixels=None).shape == (2, 3, 3)


def test_over_limit_header_without_payload_is_truncated_when_limit_lifted():
    header = patched(patched(EXAMPLE, "width", 2**32 - 1), "height", 2**32 - 1)[: HEADER.size]
    with pytest.raises(kmq.TruncatedError, match="header implies"):
        kmq.decode(header, max_pixels=None)


def test_trailing_bytes_are_rejected():
    with pytest.raises(kmq.FormatError, match="trailing bytes"):
        kmq.decode(EXAMPLE + b"\x00")


def test_checksum_mismatch_is_rejected():
    with pytest.raises(kmq.ChecksumError, match="checksum"):
        kmq.decode(EXAMPLE[:-1] + bytes([EXAMPLE[-1] ^ 1]))


def test_label_at_or_above_k_is_rejected():
    bad = bytearray(EXAMPLE[:-4])
    bad[35] = 0b111_000_01  # first label 7 with k = 5
    bad += struct.pack(">I", zlib.crc32(bad))
    with pytest.raises(kmq.FormatError, match="label 7 >= k=5"):
        kmq.decode(bytes(bad))


def test_nonzero_padding_is_rejected():
    bad = bytearray(EXAMPLE[:-4])
    bad[-1] |= 1
    bad += struct.pack(">I", zlib.crc32(bad))
    with pytest.raises(kmq.FormatError, match="padding bits"):
        kmq.decode(bytes(bad))


def test_checksum_can_be_skipped_for_fuzzing_deep_paths():
    corrupt = EXAMPLE[:-4] + b"\x00\x00\x00\x00"
    assert kmq.Indexed.from_bytes(corrupt, verify_checksum=False) == kmq.Indexed(PALETTE, LABELS)


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_kmq_error(data):
    with contextlib.suppress(kmq.KmqError):
        kmq.decode(data)


@given(indexed_images(max_side=6), st.data())
def test_one_changed_byte_is_always_caught(case, data):
    palette, labels = case
    good = kmq.Indexed(palette, labels).to_bytes()
    bad = bytearray(good)
    bad[data.draw(st.integers(0, len(good) - 1))] ^= data.draw(st.integers(1, 255))
    # CRC-32 detects every error confined to 32 consecutive bits, so nothing slips through.
    with pytest.raises(kmq.KmqError):
        kmq.decode(bytes(bad), max_pixels=None)


@given(indexed_images(max_side=6), st.data())
def test_mutated_files_decode_or_raise_kmq_error(case, data):
    palette, labels = case
    good = bytearray(kmq.Indexed(palette, labels).to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        good[data.draw(st.integers(0, len(good) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    with contextlib.suppress(kmq.KmqError):
        kmq.Indexed.from_bytes(bytes(good[:cut]), verify_checksum=False)


def test_dumps_refuses_invalid_indexed_data():
    with pytest.raises(kmq.ParameterError, match="label 5 >= k=5"):
        container.dumps(PALETTE, np.array([[5]], np.uint8))
    with pytest.raises(kmq.ParameterError, match="k 257"):
        container.dumps(np.zeros((257, 3), np.uint8), np.zeros((1, 1), np.uint8))
    with pytest.raises(kmq.ParameterError, match="channels 2"):
        container.dumps(np.zeros((2, 2), np.uint8), np.zeros((1, 1), np.uint8))


def test_k1_file_of_absurd_size_is_a_kmq_error_even_without_a_limit():
    tiny = container.dumps(np.zeros((1, 3), np.uint8), np.zeros((1, 1), np.uint8))
    for side in (2**31, 2**32 - 1):
        huge = patched(patched(tiny, "width", side), "height", side)
        with pytest.raises(kmq.PixelLimitError):
            kmq.decode(huge, max_pixels=None)


@given(st.integers(1, 2**32 - 1), st.integers(1, 2**32 - 1), st.sampled_from([3, 4]))
def test_any_k1_header_decodes_or_raises_kmq_error(width, height, channels):
    palette = np.zeros((1, channels), np.uint8)
    tiny = container.dumps(palette, np.zeros((1, 1), np.uint8))
    data = patched(patched(tiny, "width", width), "height", height)
    try:
        pixels = kmq.decode(data, max_pixels=4096)
    except kmq.PixelLimitError:
        assert width * height > 4096
    else:
        assert pixels.shape == (height, width, channels)


def test_non_contiguous_memoryview_is_accepted():
    doubled = bytes(b for byte in EXAMPLE for b in (byte, 0))
    assert np.array_equal(kmq.decode(memoryview(doubled)[::2]), PALETTE[LABELS])


@pytest.mark.parametrize("data", ["not bytes", None, 42])
def test_non_bytes_input_is_a_parameter_error(data):
    with pytest.raises(kmq.ParameterError, match="expected bytes"):
        kmq.decode(data)


@pytest.mark.parametrize("k", [1, 2, 8, 16, 17, 64, 256])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (97, 131)])
def test_to_array_is_palette_lookup_at_every_k_and_odd_size(k, channels, size):
    rng = np.random.default_rng(k * 10 + channels)
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    labels = rng.integers(0, k, size, dtype=np.uint8)
    assert np.array_equal(kmq.Indexed(palette, labels).to_array(), palette[labels])


@pytest.mark.parametrize("coding", ["raw", "ctx1", "mix"])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("k", [1, 2, 16, 17, 256])
def test_loads_pixels_and_decode_give_the_labels_looked_up(coding, channels, k):
    rng = np.random.default_rng(k + channels)
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    labels = (np.add.outer(np.arange(70) // 9, np.arange(90) // 7) % k).astype(np.uint8)
    data = container.dumps(palette, labels, coding)
    header, read_palette, pixels = container.loads(data, pixels=True)
    assert header == container.loads(data)[0]
    assert np.array_equal(read_palette, palette)
    assert np.array_equal(pixels, palette[labels])
    assert np.array_equal(kmq.decode(data), kmq.Indexed.from_bytes(data).to_array())


def test_loads_pixels_checks_what_loads_checks():
    data = bytearray(container.dumps(PALETTE, LABELS))
    data[-1] ^= 1
    with pytest.raises(kmq.ChecksumError):
        container.loads(bytes(data), pixels=True)
    raw = container.dumps(np.zeros((3, 3), np.uint8), np.zeros((2, 4), np.uint8), "raw")
    body = raw[:-5] + b"\xff"  # the last four labels read 3, which is not < k
    with pytest.raises(kmq.FormatError, match=r"label 3 >= k=3 in payload"):
        container.loads(body + struct.pack(">I", zlib.crc32(body)), pixels=True)


# --------------------------------------------------------------------------
# The header just written and the stripe count, read in one place each
# --------------------------------------------------------------------------


@given(indexed_images(), st.sampled_from(["raw", "ctx1"]))
@example((PALETTE, LABELS), "ctx1")  # ctx1 asked for, raw written: 6 pixels cannot shrink
def test_serialise_gives_the_header_it_wrote(case, coding):
    palette, labels = case
    header, data = container.serialise(palette, labels, coding)
    assert header == Header.unpack(data, max_pixels=None)
    assert data == container.dumps(palette, labels, coding)
    assert kmq.Indexed(palette, labels).serialise(coding) == (header, data)


def test_serialise_says_when_ctx1_fell_back_to_raw():
    assert container.serialise(PALETTE, LABELS, "ctx1").header.coding == container.CODING_RAW
    smooth = np.zeros((64, 64), np.uint8)
    assert container.serialise(PALETTE, smooth, "ctx1").header.coding == container.CODING_CTX1


@pytest.mark.parametrize("stripes", [1, 3])
def test_read_stripe_count_reads_the_payloads_table(stripes):
    labels = (np.arange(96 * 128).reshape(96, 128) // 500 % 5).astype(np.uint8)
    header = Header.for_image(128, 96, 3, 5, container.CODING_CTX1)
    body = header.pack() + PALETTE.tobytes() + kmq.ctx1.encode(labels, 5, stripes=stripes)
    data = body + struct.pack(">I", zlib.crc32(body))
    assert container.read_stripe_count(data, container.loads(data)[0]) == stripes


def test_read_stripe_count_is_none_for_raw_packing_and_checks_the_count():
    assert container.read_stripe_count(EXAMPLE, Header.unpack(EXAMPLE)) is None
    header = Header.for_image(128, 96, 3, 5, container.CODING_CTX1)
    with pytest.raises(kmq.FormatError, match=r"stripe count 4 not in 1\.\.3 for 128x96 pixels"):
        container.read_stripe_count(header.pack() + PALETTE.tobytes() + b"\x00\x04", header)
    with pytest.raises(kmq.TruncatedError, match="too short for the stripe count"):
        container.read_stripe_count(header.pack() + PALETTE.tobytes() + b"\x00", header)


@pytest.mark.parametrize(
    ("asked", "written", "note"),
    [
        ("mix", 2, ""),
        ("mix", 1, "ctx1 was smaller than mix, so ctx1 was written"),
        ("mix", 0, "neither mix nor ctx1 would have been smaller, so raw packing was written"),
        ("ctx1", 0, "ctx1 would not have been smaller, so raw packing was written"),
        ("raw", 0, ""),
    ],
)
def test_fallback_note_says_which_coding_was_written_and_why(asked, written, note):
    assert container.fallback_note(asked, written) == note
