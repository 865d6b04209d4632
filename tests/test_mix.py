"""Payload coding 2, "mix", at the container level: what a file of coding 2 is, when kmq writes one, and
what a decoder must do with a hostile one.

1. Round trips: every label plane with 2 <= K <= 256, RGB or RGBA, comes back exactly, from a strict
   file (``strict=True`` writes coding 2 or refuses) and from the default.
2. The fallback order: without ``strict``, a "mix" request (the default) writes whichever of mix, ctx1
   and raw is smallest, trying them in that order and taking a later one only when strictly smaller,
   so a file is never larger than ctx1's or raw's for the same labels.
3. Stripes: coding 2 shares coding 1's stripe table; any stripe count decodes to the same labels, and
   stripes coded and decoded on several threads give the bytes and labels of one thread.
4. Hostile files: truncation, flipped bits, a stream that holds more or fewer pixels than the header
   declares, and a header rule of coding 2 (K >= 2), each refused with the right KmqError.
5. On real images (the shared corpus), mix is smaller than ctx1.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import kmq
import numpy as np
import pytest
from ctx1_files import structured
from helpers import stripes_at_once
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import container, ctx1, images, mix

MAGIC = b"\x89KMQ"


def with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def mix_file(palette: np.ndarray, labels: np.ndarray, stripes: int | None = None) -> bytes:
    """A complete coding-2 file, built from its parts: header, palette, ``mix.encode``'s payload, CRC."""
    height, width = labels.shape
    head = container.Header.for_image(width, height, palette.shape[1], palette.shape[0], container.CODING_MIX)
    payload = mix.encode(labels, palette, stripes=stripes)
    assert payload is not None
    return with_crc(head.pack() + palette.tobytes() + payload)


def grey(k: int) -> np.ndarray:
    return np.repeat(np.arange(k, dtype=np.uint8)[:, None], 3, axis=1)


# --------------------------------------------------------------------------
# 1. Round trips
# --------------------------------------------------------------------------


@st.composite
def mix_images(draw: st.DrawFn, max_side: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A palette of 2..256 entries (RGB or RGBA) and a label plane using it: structured, noisy or flat."""
    k = draw(st.integers(2, 256))
    channels = draw(st.sampled_from([3, 4]))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    kind = draw(st.sampled_from(["structured", "noise", "flat", "few"]))
    if kind == "structured":
        labels = structured(k, height, width, seed=int(rng.integers(1 << 31)), noise=draw(st.sampled_from([0, 0.05])))
    elif kind == "noise":
        labels = rng.integers(0, k, (height, width), dtype=np.uint8)
    elif kind == "flat":
        labels = np.full((height, width), draw(st.integers(0, k - 1)), np.uint8)
    else:  # two labels far apart in the palette
        labels = np.where(rng.random((height, width)) < 0.5, 0, k - 1).astype(np.uint8)
    return palette, labels


def rgba_palette(k: int) -> np.ndarray:
    palette = np.zeros((k, 4), np.uint8)
    palette[:, 0] = np.arange(k) * 255 // max(1, k - 1)
    palette[:, 3] = np.arange(k)[::-1] % 256
    return palette


EXAMPLES = {
    "1x1": (grey(2), np.zeros((1, 1), np.uint8)),
    "k2": (grey(2), (np.arange(12 * 9).reshape(12, 9) // 7 % 2).astype(np.uint8)),
    "k256": (grey(256), np.arange(256, dtype=np.uint8).reshape(16, 16)),
    "one-row": (grey(5), (np.arange(37) % 5).astype(np.uint8)[None]),
    "one-column": (grey(5), (np.arange(37) // 3 % 5).astype(np.uint8)[:, None]),
    "rgba-k3": (rgba_palette(3), structured(3, 20, 17)),
    "rgba-k256": (rgba_palette(256), np.arange(256, dtype=np.uint8)[::-1].reshape(8, 32)),
}


def with_examples(test):  # type: ignore[no-untyped-def]
    for case in EXAMPLES.values():
        test = example(case)(test)
    return test


@given(mix_images())
@with_examples
def test_strict_mix_file_is_coding_2_and_decodes_to_the_same_labels(case):
    palette, labels = case
    height, width = labels.shape
    data = mix_file(palette, labels)
    header = container.Header.unpack(data)
    limit = ctx1.max_payload_size(header.raw_payload_size, ctx1.stripe_count(width, height))
    if len(data) - header.overhead > limit:
        # Past the limit of raw packing + overhead (noise): strict refuses to write it, a decoder to read it.
        with pytest.raises(kmq.ParameterError, match="coding mix would exceed its limit"):
            container.serialise(palette, labels, "mix", strict=True)
        with pytest.raises(kmq.FormatError, match=r"over the \d+ allowed"):
            container.loads(data)
        return
    # Strict writes exactly that file: header, palette, mix.encode's payload, CRC.
    assert container.serialise(palette, labels, "mix", strict=True) == (header, data)
    assert data[:4] == MAGIC and data[5] == container.CODING_MIX
    back_header, back_palette, back = container.loads(data)
    assert back_header == header
    assert np.array_equal(back_palette, palette)
    assert np.array_equal(back, labels)


@given(mix_images())
@with_examples
def test_default_file_decodes_to_the_same_labels_whatever_coding_it_chose(case):
    palette, labels = case
    data = container.dumps(palette, labels)
    assert data[5] in container.CODINGS
    assert np.array_equal(container.loads(data)[2], labels)
    assert np.array_equal(kmq.decode(data), palette[labels])


def test_mix_is_the_default_and_strict_mix_needs_two_labels():
    assert container.DEFAULT_CODING == "mix"
    assert container.coding_number("mix") == container.coding_number(2) == container.CODING_MIX == 2
    assert container.CODINGS[2] == "mix"
    with pytest.raises(kmq.ParameterError, match="coding mix needs k >= 2, got k=1"):
        container.dumps(grey(1), np.zeros((3, 3), np.uint8), "mix", strict=True)
    # Not strict: K = 1 has nothing to code, so raw packing (zero bits a label) is written.
    assert container.dumps(grey(1), np.zeros((3, 3), np.uint8))[5] == container.CODING_RAW


def test_strict_mix_refuses_what_it_cannot_write_within_its_limit():
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    palette = np.random.default_rng(1).integers(0, 256, (256, 3), dtype=np.uint8)
    with pytest.raises(kmq.ParameterError, match="coding mix would exceed its limit"):
        container.dumps(palette, noise, "mix", strict=True)


def test_indexed_and_encode_write_mix_by_default():
    y, x = np.mgrid[0:60, 0:80]
    image = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    data = kmq.encode(image, 8)
    assert data[5] == container.CODING_MIX
    assert kmq.Indexed.from_bytes(data).to_bytes() == data, "read and written again: the same bytes"
    assert kmq.encode(image, 8, coding=2) == data


# --------------------------------------------------------------------------
# 2. The fallback order
# --------------------------------------------------------------------------


def strict_size(palette: np.ndarray, labels: np.ndarray, coding: str) -> float:
    """The file size of ``coding`` itself, or infinity where it cannot be written within its limit."""
    try:
        return len(container.dumps(palette, labels, coding, strict=True))
    except kmq.ParameterError:
        return float("inf")


def expected_coding(palette: np.ndarray, labels: np.ndarray) -> tuple[int, float]:
    """(coding, size) of a non-strict mix request: mix, then ctx1, each taken only if strictly smaller."""
    raw = strict_size(palette, labels, "raw")
    mixed, ctx1_size = strict_size(palette, labels, "mix"), strict_size(palette, labels, "ctx1")
    if ctx1_size < min(raw, mixed):
        return container.CODING_CTX1, ctx1_size
    if mixed < raw:
        return container.CODING_MIX, mixed
    return container.CODING_RAW, raw


@given(mix_images(max_side=32))
@with_examples
def test_default_is_the_smallest_of_mix_ctx1_and_raw(case):
    palette, labels = case
    data = container.dumps(palette, labels, "mix")
    ctx1_asked, raw = container.dumps(palette, labels, "ctx1"), container.dumps(palette, labels, "raw")
    assert len(data) <= len(ctx1_asked) <= len(raw)
    assert (data[5], len(data)) == expected_coding(palette, labels)


def test_noise_is_written_raw():
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    data = container.dumps(palette, noise)
    assert data[5] == container.CODING_RAW
    assert data == container.dumps(palette, noise, "raw")
    assert mix.encode(noise, palette, limit=64 * 64 - 1) is None, "gives up instead of finishing a loss"


def test_a_tiny_image_is_written_raw():
    palette, labels = grey(8), np.array([[0, 5, 2]], np.uint8)
    data = container.dumps(palette, labels)
    assert data[5] == container.CODING_RAW
    assert data == container.dumps(palette, labels, "raw")
    assert strict_size(palette, labels, "mix") > len(data)


def test_a_flat_image_is_written_mix_smaller_than_ctx1_and_raw():
    labels = np.zeros((64, 64), np.uint8)
    labels[:, 32:] = 1
    palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    data = container.dumps(palette, labels)
    assert data[5] == container.CODING_MIX
    assert len(data) < strict_size(palette, labels, "ctx1") < strict_size(palette, labels, "raw")


def test_ctx1_asked_for_never_writes_mix():
    labels = structured(8, 64, 64)
    assert container.dumps(grey(8), labels, "ctx1")[5] == container.CODING_CTX1
    assert container.dumps(grey(8), labels, "raw")[5] == container.CODING_RAW


# --------------------------------------------------------------------------
# 3. Stripes and threads
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stripes", [1, 2, 3, 7])
def test_any_stripe_count_decodes_to_the_same_labels(stripes):
    labels = structured(16, 224, 128, noise=0.02)
    palette = np.random.default_rng(stripes).integers(0, 256, (16, 3), dtype=np.uint8)
    data = mix_file(palette, labels, stripes=stripes)
    header = container.loads(data)[0]
    assert header.coding == container.CODING_MIX
    assert container.read_stripe_count(data, header) == stripes
    spans = ctx1.stripe_table(memoryview(data)[20 + 48 : -4], 128, 224)
    assert len(spans) == stripes
    assert np.array_equal(container.loads(data)[2], labels)


def test_a_stripe_count_out_of_range_is_refused():
    labels = structured(4, 20, 20)
    with pytest.raises(kmq.ParameterError, match="stripes"):
        mix.encode(labels, grey(4), stripes=ctx1.max_stripes(20, 20) + 1)


def test_threads_and_one_thread_code_and_decode_the_same(monkeypatch):
    labels = structured(8, 224, 128, noise=0.01)
    palette = np.random.default_rng(3).integers(0, 256, (8, 4), dtype=np.uint8)
    monkeypatch.setenv("KMQ_THREADS", "1")
    one_thread = mix_file(palette, labels, stripes=7)

    monkeypatch.setattr(ctx1, "THREAD_PIXELS", 0)
    monkeypatch.setenv("KMQ_THREADS", "4")  # four threads even where there is one CPU
    encoders, decoders = (
        stripes_at_once(monkeypatch, mix._backend, "encode"),
        stripes_at_once(monkeypatch, mix._backend, "decode"),
    )
    on_threads = mix_file(palette, labels, stripes=7)
    decoded = container.loads(on_threads)[2]
    assert len(set(encoders)) > 1 and len(set(decoders)) > 1

    assert on_threads == one_thread
    assert np.array_equal(decoded, labels)


# --------------------------------------------------------------------------
# 4. Hostile files
# --------------------------------------------------------------------------

PALETTE = np.random.default_rng(7).integers(0, 256, (8, 3), dtype=np.uint8)
LABELS = structured(8, 16, 32, seed=1)
#: A small strict coding-2 file: one stripe of 32 x 16 pixels.
MIX = container.dumps(PALETTE, LABELS, "mix", strict=True)
#: Offset of the first stream byte in MIX (header, palette, S, one length).
STREAM = 20 + 24 + 2 + 4


def with_stream(stream: bytes, height: int = 16, base: bytes = MIX) -> bytes:
    """``base`` with its one stream replaced, its height set, its table made to match and its CRC valid."""
    head = bytearray(base[: STREAM - 6])
    head[16:20] = struct.pack(">I", height)
    return with_crc(bytes(head) + struct.pack(">HI", 1, len(stream)) + stream)


def test_the_hostile_base_file_is_a_one_stripe_mix_file():
    assert MIX[5] == container.CODING_MIX
    assert container.read_stripe_count(MIX, container.loads(MIX)[0]) == 1
    assert np.array_equal(container.loads(MIX)[2], LABELS)


def test_every_truncation_is_a_truncated_or_format_error():
    for cut in range(len(MIX)):
        with pytest.raises(kmq.FormatError) as caught:
            kmq.decode(MIX[:cut])
        assert type(caught.value) in (kmq.TruncatedError, kmq.FormatError), (cut, caught.value)
        with pytest.raises(kmq.FormatError):
            kmq.decode(MIX[:cut], verify_checksum=False)


def test_every_flipped_bit_is_refused_and_without_the_checksum_decodes_or_is_a_kmq_error():
    decoded = refused = 0
    for index in range(8 * len(MIX)):
        damaged = bytearray(MIX)
        damaged[index // 8] ^= 1 << (index % 8)
        with pytest.raises(kmq.KmqError):
            kmq.decode(bytes(damaged))
        try:
            pixels = kmq.decode(bytes(damaged), verify_checksum=False, max_pixels=1 << 16)
        except kmq.KmqError:
            refused += 1
            continue
        decoded += 1
        header = container.Header.unpack(bytes(damaged), max_pixels=None)
        assert pixels.shape == (header.height, header.width, header.channels)
    # Flips in the palette decode (to other colours); flips in the magic or the table are refused.
    assert decoded and refused


def test_a_flipped_stream_bit_is_a_checksum_error():
    damaged = bytearray(MIX)
    damaged[STREAM + 3] ^= 0x10
    with pytest.raises(kmq.ChecksumError):
        kmq.decode(bytes(damaged))


def test_a_stream_for_a_taller_image_stops_at_the_declared_rows():
    # A stream for 3 x 16 rows under a header of 16: the model's tables are the same size for both
    # (fewer than 2048 pixels), so the declared rows decode exactly, and then the rest is left over.
    tall = np.vstack([LABELS] * 3)
    stream = mix.encode(tall, PALETTE, stripes=1)
    assert stream is not None
    data = with_stream(stream[6:])
    with pytest.raises(kmq.FormatError, match="left over after its last pixel"):
        kmq.decode(data)
    out = np.zeros((16, 32), np.uint8)
    status, *_ = mix._backend.decode(stream[6:], 32, 16, 8, PALETTE.tobytes(), out, None, 0)
    assert status != 0 and np.array_equal(out, LABELS), "stopped at the declared size, having decoded it"


@pytest.mark.parametrize("plane", ["structured", "flat"])
def test_a_header_declaring_more_pixels_than_the_stream_holds_is_refused_within_the_declared_image(plane):
    # The stream of 16 rows under a header of 4096 rows. A well-predicted label costs a tiny fraction of a
    # bit, so the decoder may go on well past the stream's 16 rows before it fails (needing a byte past the
    # end, an escape beyond the labels, a final code that is not 0); it must fail, naming the stripe,
    # and allocate no more than the image the header declares.
    labels = LABELS if plane == "structured" else np.zeros_like(LABELS)
    base = container.dumps(PALETTE, labels, "mix", strict=True)
    data = with_stream(base[STREAM:-4], height=4096, base=base)
    tracemalloc.start()
    try:
        with pytest.raises(kmq.FormatError, match=r"payload stripe 0 \(rows 0\.\.4095\)"):
            kmq.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 32 * 4096 * (1 + 3) + 256 * 1024, f"peak {peak:,} bytes"


def test_coding_2_with_k_1_is_a_format_error():
    header = container.Header.for_image(4, 4, 3, 1, container.CODING_RAW).pack()
    data = with_crc(header[:5] + bytes([container.CODING_MIX]) + header[6:] + b"\0\0\0" + b"\0" * 6)
    with pytest.raises(kmq.FormatError, match=r"payload coding 2 \(mix\) needs k >= 2, got k=1"):
        kmq.decode(data)
    with pytest.raises(kmq.FormatError, match="needs k >= 2"):
        container.Header.unpack(data)


def test_a_wrong_stripe_count_is_a_format_error():
    bad = with_crc(MIX[: STREAM - 6] + b"\x00\x02" + MIX[STREAM - 4 : -4])
    with pytest.raises(kmq.FormatError, match="stripe count 2"):
        kmq.decode(bad)


def test_a_ctx1_stream_under_a_mix_header_is_refused_or_decodes_to_k_labels():
    # The codings share the table, not the streams: coding 1's stream read as coding 2 is a
    # different plane or an error, never a crash and never a label >= K.
    stream = ctx1.encode(LABELS, 8, stripes=1)
    try:
        header, _, labels = container.loads(with_stream(stream[6:]))
    except kmq.KmqError:
        return
    assert header.coding == container.CODING_MIX and int(labels.max()) < 8


# --------------------------------------------------------------------------
# 5. Real images
# --------------------------------------------------------------------------

CORPUS_IMAGES = [
    "kodak/kodim03.png",
    "kodak/kodim13.png",
    "kodak/kodim23.png",
    "graphics/btop_screenshot_normal.png",
    "graphics/grafxkid_pixelart_grassland_terrain.png",
    "graphics/plotnine_chart_radial_discrete_theta.png",
]


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_mix_is_smaller_than_ctx1_on_photos_and_graphics_at_k16(corpus, name):
    indexed = kmq.quantize(images.load_image(corpus / name), 16)
    mixed = indexed.to_bytes("mix")
    ctx1_file = indexed.to_bytes("ctx1")
    assert (mixed[5], ctx1_file[5]) == (container.CODING_MIX, container.CODING_CTX1)
    assert len(mixed) < len(ctx1_file)
    assert np.array_equal(kmq.Indexed.from_bytes(mixed).labels, indexed.labels)
