"""Mutation fuzzing of the decoder: whatever the bytes, an image or a KmqError, nothing else.

Valid files of every coding (raw, ctx1 and mix) are damaged the ways files get damaged (cut short, a bit flipped,
a header field patched, bytes overwritten, two files spliced) and decoded with the checksum
check off, as libpng's fuzz target does, so the mutations reach the payload decoders instead
of all stopping at the CRC. A decoded image must have exactly the shape its header declares.

The default run draws a few hundred examples per property. ``KMQ_THOROUGH=1`` draws 100,000
per property, or ``KMQ_FUZZ_EXAMPLES=N`` exactly N; FORMAT.md section 7 lists what these
properties enforce.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import kmq
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kmq import container

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"
#: Inputs that fuzz/ targets once found a fault with (fuzz/README.md lists them).
FINDINGS = sorted((Path(__file__).resolve().parent / "data" / "fuzz").glob("*"))
#: A cap well above every seed file, so that a patched width or height is refused or
#: decoded without allocating much, while K = 1 headers still reach the payload checks.
MAX_PIXELS = 1 << 16


def _examples() -> int:
    if os.environ.get("KMQ_FUZZ_EXAMPLES"):
        return int(os.environ["KMQ_FUZZ_EXAMPLES"])
    return 100_000 if os.environ.get("KMQ_THOROUGH") else 300


fuzz = settings(max_examples=_examples(), deadline=None, suppress_health_check=list(HealthCheck))


def _seed_files() -> list[bytes]:
    """Every valid conformance vector (one has 3 stripes), plus larger files of every coding
    (coding 2 also in two stripes: it shares coding 1's table)."""
    files = [path.read_bytes() for path in sorted(VECTORS.glob("*.kmq"))]
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:48, 0:40]
    for k, channels in ((8, 3), (16, 4), (100, 3), (256, 4)):
        labels = ((x // 3 + y // 5) % k).astype(np.uint8)
        labels[rng.random(labels.shape) < 0.05] = rng.integers(0, k, dtype=np.uint8)
        palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
        files.append(container.dumps(palette, labels, "raw"))
        head = container.Header.for_image(40, 48, channels, k, container.CODING_CTX1).pack()
        body = head + palette.tobytes() + kmq.ctx1.encode(labels, k)
        files.append(body + struct.pack(">I", 0))  # the checksum is not checked here
        head = container.Header.for_image(40, 48, channels, k, container.CODING_MIX).pack()
        body = head + palette.tobytes() + kmq.mix.encode(labels, palette)
        files.append(body + struct.pack(">I", 0))
    # A mix file of two stripes (8192 pixels: the fewest that allow two).
    y, x = np.mgrid[0:64, 0:128]
    labels, palette = ((x // 7 + y // 3) % 16).astype(np.uint8), rng.integers(0, 256, (16, 3), dtype=np.uint8)
    head = container.Header.for_image(128, 64, 3, 16, container.CODING_MIX).pack()
    files.append(head + palette.tobytes() + kmq.mix.encode(labels, palette, stripes=2) + struct.pack(">I", 0))
    return files


SEEDS = _seed_files()
#: Files whose payload is a stripe table and streams: codings 1 and 2.
STRIPED_SEEDS = [data for data in SEEDS if data[5] in container.STRIPED_CODINGS]
FIELDS = [name for name, _ in container.HEADER_FIELDS if name != "magic"]
LIMITS = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF}


def decodes_or_refuses(data: bytes) -> None:
    """The property every mutation must keep."""
    try:
        pixels = kmq.decode(data, max_pixels=MAX_PIXELS, verify_checksum=False)
    except kmq.KmqError:
        return
    header = container.Header.unpack(data, max_pixels=None)
    assert pixels.shape == (header.height, header.width, header.channels)
    assert pixels.dtype == np.uint8


seeds = st.sampled_from(SEEDS)


@fuzz
@given(seeds, st.data())
@example(SEEDS[0], None)
def test_truncated_anywhere(data, draw):
    cut = 0 if draw is None else draw.draw(st.integers(0, len(data) - 1))
    decodes_or_refuses(data[:cut])


@fuzz
@given(seeds, st.data())
def test_one_bit_flipped(data, draw):
    index = draw.draw(st.integers(0, 8 * len(data) - 1))
    damaged = bytearray(data)
    damaged[index // 8] ^= 1 << (index % 8)
    decodes_or_refuses(bytes(damaged))


@fuzz
@given(seeds, st.sampled_from(FIELDS), st.data())
def test_header_field_patched(data, field, draw):
    code = dict(container.HEADER_FIELDS)[field]
    value = draw.draw(
        st.one_of(st.sampled_from([0, 1, 2, 3, 4, 255, 256, 257, LIMITS[code]]), st.integers(0, LIMITS[code]))
    )
    values = list(container.HEADER.unpack(data[: container.HEADER.size]))
    values[[name for name, _ in container.HEADER_FIELDS].index(field)] = min(value, LIMITS[code])
    decodes_or_refuses(container.HEADER.pack(*values) + data[container.HEADER.size :])


@fuzz
@given(seeds, st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
def test_bytes_overwritten(data, patches):
    damaged = bytearray(data)
    for offset, chunk in patches:
        at = offset % len(damaged)
        damaged[at : at + len(chunk)] = chunk
    decodes_or_refuses(bytes(damaged))


@fuzz
@given(seeds, seeds, st.data())
def test_two_files_spliced(a, b, draw):
    head = draw.draw(st.integers(0, len(a)))
    tail = draw.draw(st.integers(0, len(b)))
    decodes_or_refuses(a[:head] + b[tail:])


def test_every_coding_has_seeds():
    assert {data[5] for data in SEEDS} == set(container.CODINGS)
    mix_stripes = [container.read_stripe_count(data, container.Header.unpack(data)) for data in SEEDS if data[5] == 2]
    assert 1 in mix_stripes and 2 in mix_stripes


@fuzz
@given(st.sampled_from(STRIPED_SEEDS), st.binary(min_size=0, max_size=64), st.data())
def test_striped_stream_bytes_replaced(data, junk, draw):
    """The range decoders (ctx1's and mix's) on arbitrary bytes: any stream, any length, under a valid
    stripe table."""
    k, channels = int.from_bytes(data[8:10], "big"), data[6]
    start = container.HEADER.size + k * channels
    count = int.from_bytes(data[start : start + 2], "big")
    table_end = start + 2 + 4 * count
    body = data[:table_end] + junk + data[table_end + draw.draw(st.integers(0, 64)) :]
    decodes_or_refuses(body)


@st.composite
def random_bytes_under_a_valid_header(draw: st.DrawFn) -> bytes:
    """A header that passes every header rule, then random palette and payload bytes laid out as the
    header implies: a raw payload of exactly the implied length, a ctx1 or mix payload under a stripe
    table whose lengths add up. Random bytes alone stop at the magic; these reach the label checks and
    the range decoders."""
    coding = draw(st.sampled_from(sorted(container.CODINGS)))
    k = draw(st.integers(1 if coding == container.CODING_RAW else 2, 256))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    header = container.Header.for_image(width, height, draw(st.sampled_from([3, 4])), k, coding)
    palette = draw(st.binary(min_size=header.palette_size, max_size=header.palette_size))
    if coding == container.CODING_RAW:
        size = -(-header.pixels * header.bits // 8)
        payload = draw(st.binary(min_size=size, max_size=size))
    else:
        stripes = min(4, kmq.ctx1.max_stripes(width, height))
        # A range coder's stream starts with a zero byte (FORMAT.md section 5): mostly keep it.
        stream = st.tuples(st.sampled_from([b"\0", b"\0", b"\0", b"\1"]), st.binary(min_size=4, max_size=48))
        streams = [first + rest for first, rest in draw(st.lists(stream, min_size=1, max_size=stripes))]
        table = struct.pack(">H", len(streams)) + b"".join(struct.pack(">I", len(s)) for s in streams)
        payload = table + b"".join(streams)
    return header.pack() + palette + payload + draw(st.binary(min_size=4, max_size=4))


@fuzz
@given(random_bytes_under_a_valid_header())
def test_random_palette_and_payload_under_a_valid_header(data):
    container.Header.unpack(data)  # every example gets past the magic and the header rules
    decodes_or_refuses(data)


@pytest.mark.parametrize("path", FINDINGS, ids=lambda p: p.name)
def test_earlier_fuzz_findings_decode_or_are_refused(path):
    decodes_or_refuses(path.read_bytes())
