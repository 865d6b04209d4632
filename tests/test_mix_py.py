"""The plain-Python mix coder (kmq._mix_py) is the C coder's twin: the same bytes, labels, statuses and errors."""

from __future__ import annotations

import os

import kmq
import numpy as np
import pytest
from ctx1_files import structured
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kmq import _mix_py
from PIL import Image

try:
    from kmq import _mix as c_coder
except ImportError:  # an install without a compiler: nothing to compare against
    c_coder = None

pytestmark = pytest.mark.skipif(c_coder is None, reason="the C mix coder is not built")
thorough = pytest.mark.skipif(not os.environ.get("KMQ_THOROUGH"), reason="slow in Python; KMQ_THOROUGH=1 runs it")

BIG = 1 << 40
LABEL_K, LABEL_IN_L, CANCELLED = 5, 6, 9


class Case:
    """A label plane with its K and palette bytes."""

    def __init__(self, labels: np.ndarray, k: int, palette: bytes) -> None:
        self.labels, self.k, self.palette = labels, k, palette
        self.height, self.width = labels.shape

    def __repr__(self) -> str:
        return f"Case({self.width}x{self.height}, k={self.k}, {len(self.palette) // self.k} channels)"

    def encode(self, coder, limit: int = BIG):
        return coder.encode(self.labels, self.width, self.height, self.k, limit, self.palette)

    def decode(self, coder, stream: bytes, *rest):
        out = np.full_like(self.labels, 77)
        result = coder.decode(stream, self.width, self.height, self.k, self.palette, out, *rest)
        return result, out


def palette_for(k: int, channels: int, seed: int, distinct: int | None = None) -> bytes:
    """K random colours; with ``distinct``, only that many different ones (equal colour distances)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (distinct or k, channels), dtype=np.uint8)
    return colours[np.arange(k) % len(colours)].tobytes()


@st.composite
def cases(draw: st.DrawFn, max_width: int = 40, max_height: int = 30) -> Case:
    """Planes from 1x1 to 40x30, K 2..256 with its edges, RGB or RGBA, all-equal to pure noise."""
    k = draw(st.sampled_from([2, 3, 8, 16, 255, 256]) | st.integers(2, 256))
    height, width = draw(st.integers(1, max_height)), draw(st.integers(1, max_width))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["structured", "equal", "noise", "stripes"]))
    rng = np.random.default_rng(seed)
    if kind == "structured":
        labels = structured(k, height, width, seed, draw(st.sampled_from([0.0, 0.1, 0.5])))
    elif kind == "equal":
        labels = np.full((height, width), draw(st.integers(0, k - 1)), np.uint8)
    elif kind == "noise":
        labels = rng.integers(0, k, (height, width), dtype=np.uint8)
    else:  # repeats for the match model, a few labels only
        row = rng.integers(0, min(k, 4), width + height, dtype=np.uint8)
        labels = np.stack([row[y : y + width] for y in range(height)])
    distinct = draw(st.none() | st.integers(1, 4))
    return Case(labels, k, palette_for(k, draw(st.sampled_from([3, 4])), seed, distinct))


EDGES = [
    Case(np.zeros((1, 1), np.uint8), 2, palette_for(2, 3, 0)),
    Case(np.ones((1, 1), np.uint8), 2, palette_for(2, 4, 0)),
    Case(np.full((3, 5), 255, np.uint8), 256, palette_for(256, 3, 1)),
    Case(np.arange(256, dtype=np.uint8).reshape(16, 16), 256, palette_for(256, 4, 2)),
    Case(np.random.default_rng(3).integers(0, 2, (30, 40), dtype=np.uint8), 2, palette_for(2, 3, 3, 1)),
]


def with_edges(test):
    for case in EDGES:
        test = example(case)(test)
    return test


@given(cases())
@with_edges
def test_python_coder_writes_the_c_coders_bytes(case):
    stream = case.encode(c_coder)
    assert stream is not None
    assert case.encode(_mix_py) == stream


@given(cases())
@with_edges
def test_python_coder_decodes_the_c_coders_stream_to_the_labels(case):
    stream = case.encode(c_coder)
    result, out = case.decode(_mix_py, stream)
    assert result == (0, 0, 0, 0)
    assert np.array_equal(out, case.labels)


@settings(max_examples=30)
@given(cases(), st.data())
@example(EDGES[0], None)
def test_python_coder_returns_none_over_the_limit_as_the_c_coder(case, data):
    size = len(case.encode(c_coder))
    limits = [0, size - 1, size] if data is None else [data.draw(st.integers(0, size + 1))]
    for limit in limits:
        assert case.encode(_mix_py, limit) == case.encode(c_coder, limit)


@given(cases(max_width=24, max_height=16), st.data())
def test_python_coder_reads_damaged_streams_exactly_as_the_c_coder(case, data):
    stream = bytearray(case.encode(c_coder))
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(stream) - 1))
        stream[at] ^= data.draw(st.integers(1, 255))
    stream = stream[: data.draw(st.integers(0, len(stream) + 2))] + bytes(data.draw(st.integers(0, 2)))
    ours, theirs = case.decode(_mix_py, bytes(stream)), case.decode(c_coder, bytes(stream))
    assert ours[0] == theirs[0]
    # The pixels before a failure are written, the rest are not: the same in both.
    assert np.array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("cut", [0, 1, 4, 5, 6, -3, -1])
def test_python_coder_reads_truncated_streams_as_the_c_coder(cut):
    case = Case(structured(12, 20, 30, 5, 0.3), 12, palette_for(12, 3, 5))
    stream = case.encode(c_coder)[:cut]
    assert case.decode(_mix_py, stream)[0] == case.decode(c_coder, stream)[0]
    assert np.array_equal(case.decode(_mix_py, stream)[1], case.decode(c_coder, stream)[1])


def test_every_stream_status_is_met_by_both_coders():
    # Single byte changes of one stream: each status the coders tell apart, with its position.
    case = Case(structured(40, 12, 16, 7, 0.5), 40, palette_for(40, 3, 7))
    stream = case.encode(c_coder)
    seen = set()
    for at in range(len(stream)):
        for flip in (1, 0xFF):
            damaged = bytearray(stream)
            damaged[at] ^= flip
            ours, theirs = case.decode(_mix_py, bytes(damaged)), case.decode(c_coder, bytes(damaged))
            assert ours[0] == theirs[0] and np.array_equal(ours[1], theirs[1]), (at, flip)
            seen.add(theirs[0][0])
    # 146 bytes x 2 flips: 2 (first byte) twice, 5 (escaped label >= K) 164 times, 6 (escaped label equal to a
    # candidate) 113 times, 7 (bytes left over) 8 times and 8 (code not 0 at the end) 5 times
    assert {2, LABEL_K, LABEL_IN_L, 7, 8} <= seen, seen


def test_python_coder_refuses_a_label_outside_the_palette_as_the_c_coder_does():
    labels = np.zeros((3, 4), np.uint8)
    labels[1, 2] = 9
    errors = []
    for coder in (_mix_py, c_coder):
        with pytest.raises(ValueError) as caught:
            coder.encode(labels, 4, 3, 5, BIG, palette_for(5, 3, 0))
        errors.append(caught.value.args)
    assert errors[0] == errors[1]
    assert errors[0][1:] == (9, 2, 1)


def test_an_overflow_before_the_bad_row_is_none_in_both():
    # The labels are checked a row at a time, after the rows before were coded within the limit.
    labels = np.random.default_rng(0).integers(0, 5, (6, 30), dtype=np.uint8)
    labels[5, 3] = 200
    for limit in (0, BIG):
        results = []
        for coder in (_mix_py, c_coder):
            try:
                results.append(coder.encode(labels, 30, 6, 5, limit, palette_for(5, 4, 0)))
            except ValueError as error:
                results.append(error.args)
        assert results[0] == results[1]


BAD_ENCODE_ARGS = [
    (np.zeros(4, np.uint8), 2, 2, 1, BIG, bytes(3)),
    (np.zeros(4, np.uint8), 2, 2, 257, BIG, bytes(3 * 257)),
    (np.zeros(4, np.uint8), 0, 2, 2, BIG, bytes(6)),
    (np.zeros(4, np.uint8), 2, -1, 2, BIG, bytes(6)),
    (np.zeros(4, np.uint8), 2, 2, 2, BIG, bytes(5)),
    (np.zeros(5, np.uint8), 2, 2, 2, BIG, bytes(6)),
    (np.zeros(4, np.uint8), 2, 2, 2, -1, bytes(8)),
    (np.zeros(4, np.uint8), 2, 2, 2, 1 << 70, bytes(8)),
    (np.zeros(4, np.uint8), 2.0, 2, 2, BIG, bytes(8)),
]


@pytest.mark.parametrize("args", BAD_ENCODE_ARGS)
def test_python_encode_refuses_arguments_as_the_c_coder(args):
    with pytest.raises(Exception) as theirs:
        c_coder.encode(*args)
    with pytest.raises(type(theirs.value)) as ours:
        _mix_py.encode(*args)
    assert str(ours.value) == str(theirs.value)


STREAM = bytes(8)
BAD_DECODE_ARGS = [
    (STREAM, 2, 2, 1, bytes(3), np.zeros(4, np.uint8)),
    (STREAM, 2, 0, 2, bytes(6), np.zeros(4, np.uint8)),
    (STREAM, 2, 2, 2, bytes(7), np.zeros(4, np.uint8)),
    (STREAM, 2, 2, 2, bytes(6), np.zeros(5, np.uint8)),
    (STREAM, 2, 2, 2, bytes(6), np.zeros(4, np.uint8), None, -1),
    (STREAM, 2, 2, 2, bytes(6), np.zeros(4, np.uint8), None, 1 << 31),
    (STREAM, 2, 2, 2, bytes(6), np.zeros(4, np.uint8), np.zeros(1, np.uint16)),
    (STREAM, 2, 2, 2, bytes(6), np.zeros(4, np.uint8), np.zeros(2, np.int32).view(np.uint8)[1:5]),
]


@pytest.mark.parametrize("args", BAD_DECODE_ARGS)
def test_python_decode_refuses_arguments_as_the_c_coder(args):
    with pytest.raises(ValueError) as theirs:
        c_coder.decode(*args)
    with pytest.raises(ValueError) as ours:
        _mix_py.decode(*args)
    assert str(ours.value) == str(theirs.value)


def test_python_decode_refuses_a_read_only_output_or_stop_as_the_c_coder():
    for stop, out in ((None, bytes(4)), (bytes(4), np.zeros(4, np.uint8)), (3, np.zeros(4, np.uint8))):
        with pytest.raises((TypeError, BufferError)) as theirs:
            c_coder.decode(STREAM, 2, 2, 2, bytes(6), out, stop)
        with pytest.raises(type(theirs.value)):
            _mix_py.decode(STREAM, 2, 2, 2, bytes(6), out, stop)


@pytest.mark.parametrize(("flag", "index", "row"), [(0, 1, 0), (5, 5, None), (-1, 0, 0), (2**31 - 1, 7, None)])
def test_python_coder_stops_at_a_row_as_the_c_coder(flag, index, row):
    case = Case(structured(8, 20, 30, 1), 8, palette_for(8, 3, 1))
    stream = case.encode(c_coder)
    stop = np.array([flag], np.int32)
    ours, theirs = case.decode(_mix_py, stream, stop, index), case.decode(c_coder, stream, stop, index)
    assert ours[0] == theirs[0] == ((0, 0, 0, 0) if row is None else (CANCELLED, 0, row, 0))
    assert np.array_equal(ours[1], theirs[1])


def test_python_coder_stops_at_the_row_where_the_flag_drops():
    # The flag is read at the start of every row: an output buffer that is also the flag drops it mid-stripe.
    case = Case(np.full((6, 4), 3, np.uint8), 8, palette_for(8, 3, 1))
    stream = case.encode(c_coder)
    results = []
    for coder in (_mix_py, c_coder):
        out = np.full(24, 0x7F, np.uint8)
        stop = out[8:12].view(np.int32)  # row 2's pixels; they decode to 3 3 3 3: 0x03030303 < index
        results.append((coder.decode(stream, 4, 6, 8, case.palette, out, stop, 0x03030304), out.copy()))
    assert results[0][0] == results[1][0] == (CANCELLED, 0, 3, 0)
    assert np.array_equal(results[0][1], results[1][1])


def corpus_case(path, k: int, side: int) -> Case:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
    indexed = kmq.quantize(np.ascontiguousarray(pixels[top : top + side, left : left + side]), k)
    palette = np.ascontiguousarray(indexed.palette)
    return Case(np.ascontiguousarray(indexed.labels), len(palette), palette.tobytes())


CORPUS_IMAGES = ["kodak/kodim05.png", "kodak/kodim23.png"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_IMAGES)
@pytest.mark.parametrize("k", [8, 256])
def test_python_coder_matches_the_c_coder_on_corpus_images(corpus, name, k):
    case = corpus_case(corpus / name, k, 64)
    stream = case.encode(c_coder)
    assert case.encode(_mix_py) == stream
    result, out = case.decode(_mix_py, stream)
    assert result == (0, 0, 0, 0) and np.array_equal(out, case.labels)


@thorough
@pytest.mark.corpus
@pytest.mark.parametrize("k", [2, 16, 256])
def test_python_coder_matches_the_c_coder_on_large_corpus_images(corpus, k):
    for path in sorted((corpus / "kodak").glob("*.png"))[:6]:
        case = corpus_case(path, k, 256)
        stream = case.encode(c_coder)
        assert case.encode(_mix_py) == stream, path
        damaged = bytearray(stream)
        damaged[len(stream) // 2] ^= 0x10
        assert case.decode(_mix_py, stream)[0] == (0, 0, 0, 0)
        ours, theirs = case.decode(_mix_py, bytes(damaged)), case.decode(c_coder, bytes(damaged))
        assert ours[0] == theirs[0] and np.array_equal(ours[1], theirs[1]), path
