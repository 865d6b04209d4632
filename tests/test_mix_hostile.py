"""Hostile coding-2 ("mix") files: the promises of FORMAT.md 7.1 (kmq issue 5), measured.

A bomb (a tiny file declaring a huge image) is refused, or decoded to exactly the declared size,
holding the labels and pixels and nothing else that tracemalloc sees (the C model, at most
``kmq.mix.MODEL_BYTES_MAX`` per thread, is malloc'ed outside it); a stream holding more pixels
than declared stops at the declared size; a file of the most, smallest stripes decodes exactly;
every truncation and random damage of a small file gives one KmqError. ``fuzz/mix_promises.py``
prints the same measurements at full size (10000 x 10000, 2048 x 2048).

The time a many-stripe file costs per pixel, against one stripe, is measured by
``fuzz/mix_promises.py stripes``, not here: no test asserts a time.
"""

from __future__ import annotations

import re
import struct
import tracemalloc
import zlib

import kmq
import numpy as np
import pytest
from kmq import container, ctx1, mix

MB = 2**20
#: What tracemalloc may see besides the arrays: the stripe table, Python objects, error text.
SLACK = MB
#: The pixel expansion's working set on one thread (kmq.indexed: the block of tuple indices and the
#: K^2-entry tuple table), the same at every image size: measured 5 MB at K = 2, 9.5 MB at K = 256.
EXPAND = 12 * MB


def file_of(header: container.Header, palette: np.ndarray, payload: bytes) -> bytes:
    """A complete file (with its CRC-32) of this header, palette and payload."""
    body = header.pack() + palette.tobytes() + payload
    return body + struct.pack(">I", zlib.crc32(body))


def striped(*streams: bytes) -> bytes:
    """A coding-1/2 payload: S, the lengths, the streams."""
    return struct.pack(">H", len(streams)) + b"".join(struct.pack(">I", len(s)) for s in streams) + b"".join(streams)


def palette_of(k: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (k, channels), dtype=np.uint8)


def structured(width: int, height: int, k: int, seed: int = 7) -> np.ndarray:
    """Bands, a slow product term and 5 % noise: every branch of the model, escapes included."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    labels = ((x // 5 + y // 7 + (x * y) // 997) % k).astype(np.uint8)
    noise = rng.random(labels.shape) < 0.05
    labels[noise] = rng.integers(0, k, int(noise.sum()), dtype=np.uint8)
    return labels


def traced_peak(call: object) -> tuple[object, int]:
    """``call()``'s result (or the KmqError it raised) and the tracemalloc peak it reached."""
    tracemalloc.start()
    try:
        try:
            result: object = call()  # type: ignore[operator]
        except kmq.KmqError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


# --------------------------------------------------------------------------
# Bombs: refused, or decoded within the declared size
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 16, 256])
@pytest.mark.parametrize("channels", [3, 4])
def test_bomb_with_a_short_stream_is_refused_holding_only_the_labels(k, channels):
    side = 10_000  # 10^8 pixels, under the default limit
    header = container.Header.for_image(side, side, channels, k, container.CODING_MIX)
    data = file_of(header, palette_of(k, channels), striped(b"\0\x12\x34\x56\x78"))
    assert len(data) < 40 + k * channels
    error, peak = traced_peak(lambda: kmq.decode(data))
    # Refused within the first row (at the first missing byte, or at an escape the stream cannot hold),
    # not after 10^8 pixels: the failing pixel says how far the decoder went.
    assert isinstance(error, (kmq.TruncatedError, kmq.FormatError)), error
    found = re.search(
        r"stripe 0 \(rows 0\.\.9999\): stream (ends early|decodes an escaped label).* at pixel \((\d+), 0\)", str(error)
    )
    assert found is not None, error  # in row 0: at most 10^4 of the 10^8 pixels were decoded
    assert peak <= side * side + SLACK  # the label plane (never touched past the first pixels), no pixels


@pytest.mark.parametrize(("k", "channels"), [(2, 3), (256, 4)])
def test_one_colour_bomb_decodes_to_the_declared_size_and_no_more(k, channels, monkeypatch):
    monkeypatch.setenv("KMQ_THREADS", "1")  # the expansion's working set is per thread
    width, height = 2048, 1536
    palette = palette_of(k, channels)
    payload = mix.encode(np.zeros((height, width), np.uint8), palette, stripes=1)
    assert payload is not None
    data = file_of(container.Header.for_image(width, height, channels, k, container.CODING_MIX), palette, payload)
    assert len(data) < 1500 + k * channels  # about 1 byte per 10,000 pixels
    pixels, peak = traced_peak(lambda: kmq.decode(data))
    assert isinstance(pixels, np.ndarray)
    assert pixels.shape == (height, width, channels)
    assert (pixels == palette[0]).all()
    assert peak <= width * height * (1 + channels) + EXPAND  # labels + pixels (FORMAT.md 7.1)


def test_stream_holding_more_pixels_stops_at_the_declared_size():
    # 128 x 255 pixels coded, 128 x 128 declared: both give the model hb = 16 (FORMAT.md 11.7), so the
    # first 128 rows decode as coded and the rest of the stream is left over.
    palette = palette_of(16, 3, seed=1)
    labels = structured(128, 255, 16)
    stream = mix.encode(labels, palette, stripes=1)
    assert stream is not None
    data = file_of(container.Header.for_image(128, 128, 3, 16, container.CODING_MIX), palette, stream)
    error, peak = traced_peak(lambda: kmq.decode(data, verify_checksum=False))
    assert isinstance(error, kmq.FormatError), error
    assert "left over" in str(error)
    assert peak <= 128 * 128 + SLACK
    # The stripe coder itself writes only the buffer it is given and refuses one of the wrong size.
    out = np.full((129, 128), 99, np.uint8)
    status, *_ = mix._backend.decode(stream[6:], 128, 128, 16, palette.tobytes(), out[:128], None, 0)
    assert status != 0
    assert (out[128] == 99).all()
    with pytest.raises(ValueError, match="output"):
        mix._backend.decode(stream[6:], 128, 129, 16, palette.tobytes(), out[:128], None, 0)


# --------------------------------------------------------------------------
# Many minimum-size stripes
# --------------------------------------------------------------------------

WIDTH = HEIGHT = 512  # 262,144 pixels: up to 64 stripes of 8 rows, 4096 pixels each


@pytest.fixture(scope="module")
def stripe_files() -> dict[tuple[str, int], tuple[bytes, np.ndarray]]:
    """K = 256 files of 1 stripe and of the most: ``(content, S) -> (file, labels)``."""
    palette = palette_of(256, 3, seed=3)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    contents = {"structured": structured(WIDTH, HEIGHT, 256), "bands": ((x // 5 + y // 7) % 256).astype(np.uint8)}
    header = container.Header.for_image(WIDTH, HEIGHT, 3, 256, container.CODING_MIX)
    files = {}
    for name, labels in contents.items():
        for count in (1, ctx1.max_stripes(WIDTH, HEIGHT)):
            payload = mix.encode(labels, palette, stripes=count)
            assert payload is not None
            files[name, count] = file_of(header, palette, payload), labels
    return files


def test_the_most_minimum_size_stripes_decode_exactly(stripe_files):
    most = ctx1.max_stripes(WIDTH, HEIGHT)
    assert most == WIDTH * HEIGHT // 4096 == 64
    data, labels = stripe_files["structured", most]
    header = container.Header.unpack(data)
    assert container.read_stripe_count(data, header) == most
    assert (container.loads(data)[2] == labels).all()
    # Any one stripe cut short is refused, naming that stripe; the stripes before it are not blamed.
    streams_start = container.HEADER.size + 256 * 3 + 2 + 4 * most
    lengths = struct.unpack(f">{most}I", data[container.HEADER.size + 256 * 3 + 2 : streams_start])
    cut = streams_start + sum(lengths[:40]) + lengths[40] // 2
    damaged = bytearray(data)
    damaged[cut : streams_start + sum(lengths[:41])] = bytes(streams_start + sum(lengths[:41]) - cut)
    with pytest.raises(kmq.FormatError, match=r"stripe 40 \(rows 320\.\.327\)"):
        kmq.decode(bytes(damaged), verify_checksum=False)


# --------------------------------------------------------------------------
# Truncations and random damage: exactly one KmqError
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_mix() -> bytes:
    data = container.dumps(palette_of(16, 4, seed=4), structured(64, 64, 16), "mix", strict=True)
    assert data[5] == container.CODING_MIX
    return data


@pytest.mark.parametrize("verify_checksum", [True, False])
def test_every_truncation_is_one_kmq_error(small_mix, verify_checksum):
    for cut in range(len(small_mix)):
        with pytest.raises(kmq.KmqError) as caught:
            kmq.decode(small_mix[:cut], verify_checksum=verify_checksum)
        if cut >= 4:  # past the magic: a short file, and nothing else, is what the error names
            assert isinstance(caught.value, kmq.TruncatedError), (cut, caught.value)


def test_random_byte_overwrites_decode_or_give_one_kmq_error(small_mix):
    rng = np.random.default_rng(5)
    outcomes: set[str] = set()
    for _ in range(2000):
        damaged = bytearray(small_mix)
        for _ in range(int(rng.integers(1, 4))):
            damaged[int(rng.integers(0, len(small_mix)))] = int(rng.integers(0, 256))
        try:
            pixels = kmq.decode(bytes(damaged), verify_checksum=False, max_pixels=1 << 20)
        except kmq.KmqError as exc:
            outcomes.add(type(exc).__name__)
            continue
        header = container.Header.unpack(bytes(damaged), max_pixels=None)
        assert pixels.shape == (header.height, header.width, header.channels)
        outcomes.add("decoded")
    assert {"FormatError", "TruncatedError"} <= outcomes  # the damage reached the stripe decoder's rules
