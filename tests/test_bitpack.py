"""Fixed-width big-endian bit packing (payload coding 0)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import bitpack
from kmq.errors import FormatError, ParameterError


def reference_pack(labels: list[int], bits: int) -> bytes:
    """The spec's definition, one bit at a time, with Python integers."""
    stream = "".join(format(label, f"0{bits}b") for label in labels) if bits else ""
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


@pytest.mark.parametrize(
    ("k", "bits"), [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4), (128, 7), (129, 8), (256, 8)]
)
def test_bits_for_is_ceil_log2(k, bits):
    assert bitpack.bits_for(k) == bits


def test_packed_size_has_no_per_row_padding():
    assert bitpack.packed_size(3 * 2, 3) == 3  # 18 bits
    assert bitpack.packed_size(10**12, 3) == 375 * 10**9  # Python ints: no overflow


@st.composite
def label_streams(draw):
    bits = draw(st.integers(0, 8))
    labels = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=0, max_size=80))
    return labels, bits


@given(label_streams())
@example(([], 3))
@example(([0], 0))
@example(([255], 8))
@example(([4, 0, 3, 1, 2, 3], 3))
def test_pack_matches_the_bit_by_bit_definition(stream):
    labels, bits = stream
    assert bitpack.pack(np.array(labels, dtype=np.uint8), bits) == reference_pack(labels, bits)


@given(label_streams())
def test_unpack_inverts_pack(stream):
    labels, bits = stream
    data = bitpack.pack(np.array(labels, dtype=np.uint8), bits)
    assert bitpack.unpack(data, len(labels), bits).tolist() == labels


def test_unpack_of_zero_bits_is_all_zero_labels():
    assert bitpack.unpack(b"", 5, 0).tolist() == [0] * 5


@pytest.mark.parametrize("data", [b"\x81\x94", b"\x81\x94\xc0\x00"])
def test_unpack_rejects_wrong_length(data):
    with pytest.raises(FormatError, match="payload length"):
        bitpack.unpack(data, 6, 3)


def test_unpack_rejects_set_padding_bit():
    with pytest.raises(FormatError, match="padding bits"):
        bitpack.unpack(b"\x81\x94\xc1", 6, 3)


def test_pack_and_unpack_a_million_labels_at_an_odd_count():
    labels = np.random.default_rng(0).integers(0, 5, 1_000_003, dtype=np.uint8)
    data = bitpack.pack(labels, 3)
    assert len(data) == bitpack.packed_size(labels.size, 3)
    assert np.array_equal(bitpack.unpack(data, labels.size, 3), labels)


@pytest.mark.parametrize("bits", range(1, 9))
def test_every_padding_bit_is_checked_at_every_width(bits):
    count = 1 if bits != 8 else 0  # 8-bit labels never leave padding
    data = bitpack.pack(np.ones(count, np.uint8), bits) if count else b""
    pad = len(data) * 8 - count * bits
    for bit in range(pad):
        bad = data[:-1] + bytes([data[-1] | (1 << bit)])
        with pytest.raises(FormatError, match="padding bits"):
            bitpack.unpack(bad, count, bits)


@pytest.mark.parametrize("bits", [-1, 9])
def test_widths_outside_0_to_8_are_refused(bits):
    with pytest.raises(ParameterError, match=f"bits {bits} not in 0..8"):
        bitpack.pack(np.zeros(3, np.uint8), bits)
    with pytest.raises(ParameterError, match=f"bits {bits} not in 0..8"):
        bitpack.unpack(b"", 0, bits)


def test_a_label_too_wide_for_its_bits_is_refused_not_spilled_into_its_neighbour():
    with pytest.raises(ParameterError, match="label 5 does not fit in 2 bits"):
        bitpack.pack(np.array([5, 1], np.uint8), 2)


def test_labels_must_be_uint8():
    with pytest.raises(ParameterError, match="uint8"):
        bitpack.pack(np.array([1, 2], np.int64), 2)
