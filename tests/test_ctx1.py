"""Payload coding 1 (ctx1): exact round trips for every K, the spec's bytes, and every rejection."""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import tracemalloc
import zlib
from pathlib import Path

import kmq
import numpy as np
import pytest
from ctx1_files import ctx1_file, reframed, streams_of, structured
from helpers import stripes_at_once
from hypothesis import assume, example, given
from hypothesis import strategies as st
from kmq import container, ctx1

SPEC = Path(__file__).resolve().parents[1] / "spec"
_spec = importlib.util.spec_from_file_location("kmq_reference", SPEC / "reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


@st.composite
def planes(draw: st.DrawFn, max_side: int = 40, big: bool = True) -> tuple[np.ndarray, int, int]:
    """(labels, K, stripes): K in 2..256, a plane from smooth to pure noise; planes big enough
    for several stripes (4096 pixels each, FORMAT.md 5.1) are drawn now and then."""
    k = draw(st.integers(2, 256))
    if big and draw(st.integers(0, 4)) == 0:
        height, width = draw(st.integers(64, 200)), draw(st.integers(64, 160))
    else:
        height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    noise = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    labels = structured(k, height, width, draw(st.integers(0, 2**32 - 1)), noise)
    return labels, k, draw(st.integers(1, ctx1.max_stripes(width, height)))


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(2, 257))
def test_round_trip_is_exact_for_every_k(k):
    labels = structured(k, 37, 53, seed=k)
    payload = ctx1.encode(labels, k)
    spans = ctx1.stripe_table(memoryview(payload), 53, 37)
    assert np.array_equal(ctx1.decode(memoryview(payload), spans, 53, 37, k), labels)


@given(planes())
@example((np.zeros((1, 1), np.uint8), 2, 1))
@example((np.array([[255]], np.uint8), 256, 1))
@example((np.arange(256, dtype=np.uint8)[None], 256, 1))
@example((np.arange(256, dtype=np.uint8)[:, None], 256, 1))
@example((structured(16, 97, 128), 16, 3))
@example((structured(17, 97, 128), 17, 3))
def test_payload_round_trip_is_exact(case):
    labels, k, stripes = case
    height, width = labels.shape
    payload = memoryview(ctx1.encode(labels, k, stripes=stripes))
    spans = ctx1.stripe_table(payload, width, height)
    assert len(spans) == stripes and spans[-1][1] == len(payload)
    assert np.array_equal(ctx1.decode(payload, spans, width, height, k), labels)


@given(planes())
@example((np.zeros((1, 1), np.uint8), 2, 1))
@example((np.arange(256, dtype=np.uint8)[None].repeat(3, axis=0), 256, 1))
@example((structured(8, 64, 192), 8, 3))
def test_file_round_trip_is_exact_wherever_the_format_allows_ctx1(case):
    labels, k, stripes = case
    data = ctx1_file(labels, k, stripes)
    raw = container.Header.for_image(labels.shape[1], labels.shape[0], 3, k).raw_payload_size
    assume(len(data) - 24 - 3 * k <= ctx1.max_payload_size(raw, stripes))
    header, _, back = container.loads(data)
    assert header.coding == container.CODING_CTX1
    assert np.array_equal(back, labels)


@given(planes(max_side=12, big=False))
@example((np.zeros((1, 1), np.uint8), 2, 1))
@example((np.arange(6, dtype=np.uint8).reshape(2, 3) % 5, 5, 1))
def test_stream_is_the_spec_reference_coders_byte_for_byte(case):
    labels, k, stripes = case
    assert ctx1.encode(labels, k, stripes=stripes) == reference.encode_payload(labels.tolist(), k, stripes)


@pytest.mark.parametrize(("k", "stripes"), [(16, 3), (17, 2), (256, 3)])
def test_several_stripes_are_the_spec_reference_coders_byte_for_byte(k, stripes):
    labels = structured(k, 97, 128, seed=k, noise=0.05)
    assert ctx1.encode(labels, k, stripes=stripes) == reference.encode_payload(labels.tolist(), k, stripes)


@given(planes(max_side=16, big=False))
def test_reference_decoder_reads_what_kmq_writes(case):
    labels, k, _ = case
    data = container.dumps(np.zeros((k, 3), np.uint8), labels, "ctx1")  # the spec's reference reads codings 0 and 1
    _, _, flat = reference.read(data)
    assert flat == labels.reshape(-1).tolist()


def test_threads_and_one_thread_code_the_same(monkeypatch):
    labels = structured(8, 224, 128, noise=0.01)
    monkeypatch.setattr(ctx1, "THREAD_PIXELS", 0)
    monkeypatch.setenv("KMQ_THREADS", "4")  # four threads even where there is one CPU
    encoders, decoders = (
        stripes_at_once(monkeypatch, ctx1._backend, "encode"),
        stripes_at_once(monkeypatch, ctx1._backend, "decode"),
    )
    data = ctx1_file(labels, 8, stripes=7)
    on_threads = container.loads(data)[2]
    assert len(set(encoders)) > 1 and len(set(decoders)) > 1

    monkeypatch.setenv("KMQ_THREADS", "1")
    assert np.array_equal(container.loads(data)[2], on_threads)
    assert ctx1.encode(labels, 8, stripes=7) == data[20 + 24 : -4], "the encoder too"


def test_stripes_cover_the_rows_exactly_once():
    for height in (1, 2, 7, 100):
        for stripes in range(1, min(height, 9) + 1):
            rows = ctx1.stripe_rows(height, stripes)
            assert rows[0][0] == 0 and rows[-1][1] == height
            assert all(a < b for a, b in rows), "no empty stripe"
            assert all(rows[i][1] == rows[i + 1][0] for i in range(len(rows) - 1))


def test_stripe_count_depends_on_the_image_size_only():
    assert ctx1.stripe_count(768, 512) == 1
    assert ctx1.stripe_count(3984, 2988) == 6
    assert ctx1.stripe_count(1 << 22, 1) == 1, "never more stripes than rows"
    assert ctx1.stripe_count(1 << 20, 1 << 20) == ctx1.MAX_STRIPES


def test_several_stripes_need_4096_pixels_each():
    assert ctx1.max_stripes(64, 64) == 1
    assert ctx1.max_stripes(128, 96) == 3
    assert ctx1.max_stripes(4096 * 5, 3) == 3, "and never more than the rows"
    with pytest.raises(kmq.ParameterError, match=r"stripes 2 not in 1\.\.1 for 64x64 pixels"):
        ctx1.encode(np.zeros((64, 64), np.uint8), 2, stripes=2)


# --------------------------------------------------------------------------
# Decoding straight to pixels, and the decoder's fast paths
# --------------------------------------------------------------------------


@given(planes(), st.sampled_from([3, 4]), st.sampled_from(["ctx1", "mix"]), st.integers(0, 2**32 - 1))
@example((structured(8, 97, 128, noise=0.001), 8, 3), 3, "ctx1", 0)  # long runs, saturated slots
@example((structured(16, 97, 128), 16, 3), 4, "mix", 1)
@example((structured(256, 64, 64), 256, 1), 3, "ctx1", 2)
def test_decode_pixels_is_the_palette_looked_up_in_decode(case, channels, coding, seed):
    labels, k, stripes = case
    height, width = labels.shape
    palette = np.random.default_rng(seed).integers(0, 256, (k, channels), dtype=np.uint8)
    coder = kmq.mix.coder(palette) if coding == "mix" else None
    payload = memoryview(ctx1.encode(labels, k, stripes=stripes, coder=coder))
    spans = ctx1.stripe_table(payload, width, height)
    pixels = ctx1.decode_pixels(payload, spans, width, height, palette, coder)
    assert pixels.shape == (height, width, channels)
    assert np.array_equal(pixels, palette[labels])


@given(planes(big=False), st.data())
def test_decode_pixels_fails_where_decode_fails_with_the_same_error(case, data):
    labels, k, _ = case
    height, width = labels.shape
    stream = bytearray(ctx1.encode(labels, k, stripes=1))
    at = data.draw(st.integers(6, len(stream) - 1))
    stream[at] = data.draw(st.integers(0, 255))
    payload = memoryview(bytes(stream))
    spans = ctx1.stripe_table(payload, width, height)
    palette = np.zeros((k, 3), np.uint8)
    try:
        expected = ctx1.decode(payload, spans, width, height, k)
    except kmq.FormatError as error:
        with pytest.raises(type(error), match=re.escape(str(error))):
            ctx1.decode_pixels(payload, spans, width, height, palette)
    else:
        assert np.array_equal(ctx1.decode_pixels(payload, spans, width, height, palette), palette[expected])


@pytest.mark.parametrize("k", [1, 2, 5, 16, 17, 256])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 3), (5, 7), (1025, 1024)])
def test_expand_is_the_palette_looked_up(k, channels, shape):
    rng = np.random.default_rng(k + channels)
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    labels = rng.integers(0, k, shape, dtype=np.uint8)
    assert np.array_equal(ctx1.expand(labels, palette), palette[labels])


needs_c = pytest.mark.skipif(ctx1.BACKEND != "C", reason="the C coder is not built")


@needs_c
@pytest.mark.parametrize("k", [2, 8, 16, 17, 256])
@pytest.mark.parametrize("noise", [0.0, 0.002, 0.05])
def test_the_c_decoders_fast_paths_read_damaged_streams_as_the_plain_coder_does(k, noise):
    """Flat planes reach the C decoder's run mode (saturated slots), the interior path and the checked
    path near a stream's end; the plain-Python coder follows the spec step by step. Both give the
    same status, pixel and rows for the stream and for damaged copies of it."""
    from kmq import _ctx1, _ctx1_py

    labels = structured(k, 48, 150, seed=k, noise=noise)
    labels[10:40, 20:140] = labels[10, 20]  # a flat block: long runs
    height, width = labels.shape
    stream = _ctx1.encode(labels, width, height, k, 1 << 30)
    rng = np.random.default_rng(k)
    copies = [stream, stream[:-1], stream + b"\0"]
    for _ in range(6):
        damaged = bytearray(stream)
        damaged[int(rng.integers(5, len(stream)))] ^= 1 << int(rng.integers(0, 8))
        copies.append(bytes(damaged))
    for data in copies:
        ours, theirs = np.full_like(labels, 7), np.full_like(labels, 7)
        assert _ctx1.decode(data, width, height, k, ours) == _ctx1_py.decode(data, width, height, k, theirs)
        assert np.array_equal(ours, theirs)
    out = np.empty_like(labels)
    assert _ctx1.decode(stream, width, height, k, out) == (0, 0, 0, 0)
    assert np.array_equal(out, labels)


@needs_c
def test_the_c_expands_arguments_are_checked():
    from kmq import _ctx1

    out = bytearray(12)
    _ctx1.expand(bytes([0, 2, 1, 2]), 3, bytes(range(9)), out)
    assert out == bytes([0, 1, 2, 6, 7, 8, 3, 4, 5, 6, 7, 8])
    with pytest.raises(ValueError, match=r"palette is 8 bytes, not 3 x 3 or 3 x 4"):
        _ctx1.expand(bytes(2), 3, bytes(8), bytearray(6))
    with pytest.raises(ValueError, match=r"output is 5 bytes, not 2 x 3"):
        _ctx1.expand(bytes(2), 3, bytes(9), bytearray(5))
    with pytest.raises(ValueError, match=r"k 0 not in 1\.\.256"):
        _ctx1.expand(bytes(2), 0, bytes(9), bytearray(6))


def test_decode_pixels_allocates_the_pixels_only_once_a_stripe_has_decoded():
    """A file whose one stream fails (a bomb: a short stream for many pixels) costs the stripe's
    labels, never the pixels."""
    labels = structured(8, 600, 400, noise=0.0)
    payload = bytearray(ctx1.encode(labels, 8, stripes=1))
    del payload[len(payload) // 2 :]
    payload[2:6] = struct.pack(">I", len(payload) - 6)
    view = memoryview(bytes(payload))
    spans = ctx1.stripe_table(view, 400, 600)
    tracemalloc.start()
    try:
        with pytest.raises(kmq.TruncatedError, match="ends early"):
            ctx1.decode_pixels(view, spans, 400, 600, np.zeros((8, 3), np.uint8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 400 * 600 + 65536


# --------------------------------------------------------------------------
# What the encoder chooses
# --------------------------------------------------------------------------


@given(planes())
def test_ctx1_and_the_default_coding_are_never_larger_than_raw(case):
    labels, k, _ = case
    palette = np.zeros((k, 3), np.uint8)
    default, ctx1_asked = container.dumps(palette, labels), container.dumps(palette, labels, "ctx1")
    raw = container.dumps(palette, labels, "raw")
    assert len(default) <= len(ctx1_asked) <= len(raw)
    assert ctx1_asked[5] in (container.CODING_RAW, container.CODING_CTX1)
    assert default[5] in (container.CODING_RAW, container.CODING_CTX1, container.CODING_MIX)
    assert np.array_equal(container.loads(ctx1_asked)[2], labels)
    assert np.array_equal(container.loads(default)[2], labels)


def test_smooth_image_is_written_in_ctx1_and_much_smaller():
    y, x = np.mgrid[0:200, 0:300]
    labels = ((x // 20 + y // 15) % 8).astype(np.uint8)
    palette = np.zeros((8, 3), np.uint8)
    data, raw = container.dumps(palette, labels, "ctx1"), container.dumps(palette, labels, "raw")
    assert data[5] == container.CODING_CTX1
    assert len(data) < len(raw) / 3


def test_noise_falls_back_to_raw():
    labels = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    data = container.dumps(np.zeros((256, 3), np.uint8), labels)
    assert data[5] == container.CODING_RAW
    assert ctx1.encode(labels, 256, limit=64 * 64 - 1) is None, "gives up instead of finishing a loss"


def test_strict_ctx1_refuses_what_it_cannot_write():
    with pytest.raises(kmq.ParameterError, match="needs k >= 2"):
        container.dumps(np.zeros((1, 3), np.uint8), np.zeros((2, 2), np.uint8), "ctx1", strict=True)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    with pytest.raises(kmq.ParameterError, match="exceed its limit"):
        container.dumps(np.zeros((256, 3), np.uint8), noise, "ctx1", strict=True)


@pytest.mark.parametrize("coding", ["zip", 3, -1, True, None])
def test_unknown_coding_is_a_parameter_error(coding):
    with pytest.raises(kmq.ParameterError, match="unknown payload coding"):
        container.dumps(np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.uint8), coding)


def test_encode_api_takes_the_coding_by_name_or_number():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = 255
    assert kmq.encode(image, 2)[5] == 2, "the default, mix"
    assert kmq.encode(image, 2, coding="mix")[5] == 2
    assert kmq.encode(image, 2, coding="ctx1")[5] == 1
    assert kmq.encode(image, 2, coding=1)[5] == 1
    assert kmq.encode(image, 2, coding="raw")[5] == 0
    assert kmq.encode(image, 2, coding=0)[5] == 0
    with pytest.raises(kmq.ParameterError, match="unknown payload coding 'lzma'"):
        kmq.encode(image, 2, coding="lzma")


def test_encoder_refuses_labels_outside_the_palette():
    with pytest.raises(kmq.ParameterError, match="label 9 >= k=5"):
        ctx1.encode(np.full((2, 2), 9, np.uint8), 5)


# --------------------------------------------------------------------------
# Rejections (FORMAT.md D6 and D10)
# --------------------------------------------------------------------------

GOOD = ctx1_file(structured(8, 96, 128, noise=0.002), 8, stripes=3)
#: File offsets to damage: the whole header, palette and stripe table, then every 7th byte.
OFFSETS = [*range(20 + 24 + 14 + 8), *range(20 + 24 + 14 + 8, len(GOOD), 7)]


def test_good_file_has_three_stripes():
    assert len(streams_of(GOOD)) == 3


@pytest.mark.parametrize("cut", OFFSETS[1:])
def test_truncation_anywhere_in_the_file_is_rejected(cut):
    with pytest.raises(kmq.FormatError):
        container.loads(GOOD[:cut])


@pytest.mark.parametrize("stripe", range(3))
def test_stream_cut_short_is_truncated_at_once_even_without_the_checksum(stripe):
    streams = streams_of(GOOD)
    for cut in range(ctx1.MIN_STREAM, len(streams[stripe])):
        damaged = [*streams[:stripe], streams[stripe][:cut], *streams[stripe + 1 :]]
        with pytest.raises(kmq.TruncatedError, match=rf"stripe {stripe} .*ends early"):
            container.loads(reframed(GOOD, damaged), verify_checksum=False)


@pytest.mark.parametrize("extra", [b"\x00", b"\xff", b"\x00" * 7])
def test_stream_with_bytes_left_over_is_rejected(extra):
    streams = streams_of(GOOD)
    with pytest.raises(kmq.FormatError, match=r"stripe 2 .*left over"):
        container.loads(reframed(GOOD, [*streams[:2], streams[2] + extra]))


def test_flipped_bits_in_the_payload_are_rejected_or_decode_to_the_same_shape():
    accepted = 0
    for offset in [o for o in OFFSETS if 20 + 24 <= o < len(GOOD) - 4]:
        for bit in range(8):
            data = bytearray(GOOD)
            data[offset] ^= 1 << bit
            try:
                _, _, labels = container.loads(bytes(data), verify_checksum=False)
            except kmq.FormatError:
                continue
            accepted += 1
            assert labels.shape == (96, 128)
    # A bit flip that still decodes must give a different plane from some other canonical stream,
    # which canonical streams make very rare; the checksum catches all of them anyway.
    assert accepted < 8
    with pytest.raises(kmq.ChecksumError):
        container.loads(GOOD[:-10] + bytes([GOOD[-10] ^ 1]) + GOOD[-9:])


def test_a_bomb_stops_at_the_first_missing_byte():
    # 4096 x 4096 declared, 5 bytes of stream: rejected at the start, not after 16 M pixels.
    head = container.Header.for_image(4096, 4096, 3, 8, container.CODING_CTX1).pack()
    body = head + bytes(24) + struct.pack(">HI", 1, 5) + b"\x00\x12\x34\x56\x78"
    data = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(kmq.TruncatedError, match=r"ends early.*at pixel \(\d+, 0\)"):
        container.loads(data)


def test_stripe_table_is_checked_before_the_labels_are_allocated():
    head = container.Header.for_image(60000, 60000, 3, 8, container.CODING_CTX1).pack()
    body = head + bytes(24) + struct.pack(">H", 0) + bytes(9)
    with pytest.raises(kmq.FormatError, match="stripe count 0"):
        container.loads(body + struct.pack(">I", zlib.crc32(body)), max_pixels=None)


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        (struct.pack(">H", 5) + bytes(12), kmq.FormatError, r"stripe count 5 not in 1\.\.4 for 128x128 pixels"),
        (struct.pack(">H", 0) + bytes(12), kmq.FormatError, r"stripe count 0 not in 1\.\.4"),
        (struct.pack(">HII", 2, 4, 6) + bytes(10), kmq.FormatError, "stripe 0 length 4 < 5"),
        (struct.pack(">HII", 4, 6, 6) + bytes(3), kmq.TruncatedError, "ends inside the table of 4 stripes"),
    ],
)
def test_bad_stripe_tables_are_named(payload, error, match):
    head = container.Header.for_image(128, 128, 3, 5, container.CODING_CTX1).pack()
    body = head + bytes(15) + payload
    with pytest.raises(error, match=match):
        container.loads(body + struct.pack(">I", zlib.crc32(body)))


def test_payload_over_raw_plus_framing_is_rejected():
    labels = np.zeros((2, 3), np.uint8)
    data = ctx1_file(labels, 5)
    (stream,) = streams_of(data)
    padded = reframed(data, [stream + bytes(20)])
    with pytest.raises(kmq.FormatError, match=r"over the 14 allowed \(raw packing 3 \+ 11 for 1 stripes\)"):
        container.loads(padded)


def test_kmq_threads_caps_the_threads_and_bad_values_are_ignored(monkeypatch):
    from kmq import threads

    monkeypatch.setenv("KMQ_THREADS", "1")
    assert threads.available() == 1
    for bad in ("0", "-3", "many", ""):
        monkeypatch.setenv("KMQ_THREADS", bad)
        assert threads.available() == (os.cpu_count() or 1)
