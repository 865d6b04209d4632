"""Regenerate the conformance vectors in this folder.

Usage: python spec/vectors/generate.py

Valid vectors: ``NAME.kmq`` and ``NAME.png`` (the pixels a decoder must
produce); ``ctx1_*`` files use payload coding 1 and ``mix_*`` files payload
coding 2, whose streams come from ``spec/reference.py`` (the spec's
plain-Python coder), not from kmq.
Invalid vectors: ``invalid/NAME.kmq``, each breaking exactly one rule
of FORMAT.md (the checksum is recomputed after the damage unless the damage is
to the checksum itself), listed with the rule in ``invalid/README.md``.
The files are committed; ``tests/test_spec.py`` checks them against the code.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from kmq import container
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import reference  # noqa: E402  (spec/reference.py, beside this folder)


def _palette(k: int, channels: int) -> np.ndarray:
    """K distinct entries in canonical (ascending byte) order, from arithmetic alone (no RNG)."""
    bits = 8 * channels
    # An odd multiplier is a bijection modulo 2**bits, so the keys are distinct.
    keys = np.sort((np.arange(k, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(1 << bits))
    shifts = np.arange(channels - 1, -1, -1, dtype=np.uint64) * np.uint64(8)
    return ((keys[:, None] >> shifts) & np.uint64(0xFF)).astype(np.uint8)


def _labels(k: int, height: int, width: int) -> np.ndarray:
    """A label plane that uses every entry (when there are enough pixels) in a scrambled order."""
    y, x = np.mgrid[0:height, 0:width]
    labels = (x * 7 + y * 13 + (x * y) % 5) % k
    flat = labels.reshape(-1)
    if flat.size >= k:
        flat[:k] = np.arange(k)[::-1]
    return labels.astype(np.uint8)


#: The worked example of FORMAT.md section 4.
EXAMPLE_PALETTE = np.array(
    [[0x00, 0x00, 0x00], [0x00, 0x00, 0xFF], [0x00, 0xFF, 0x00], [0xFF, 0x00, 0x00], [0xFF, 0xFF, 0xFF]],
    dtype=np.uint8,
)
EXAMPLE_LABELS = np.array([[4, 0, 3], [1, 2, 3]], dtype=np.uint8)

#: A palette that is legal but not canonical: unsorted, with a duplicate and an unused entry.
ODD_PALETTE = np.array(
    [[0xFF, 0x00, 0x00], [0x00, 0x00, 0x00], [0xFF, 0x00, 0x00], [0x00, 0xFF, 0x00], [0x00, 0x00, 0xFF], [1, 2, 3]],
    dtype=np.uint8,
)
ODD_LABELS = np.array([[0, 1, 2, 3], [4, 3, 2, 1], [0, 0, 4, 4]], dtype=np.uint8)

#: name -> (k, channels, width, height, what it covers)
VALID = {
    "k1_rgb_3x2": (1, 3, 3, 2, "K=1: 0 bits per label, empty payload"),
    "k2_rgb_9x3": (2, 3, 9, 3, "1 bit, odd width: rows cross byte boundaries"),
    "k5_rgb_3x2": (5, 3, 3, 2, "the worked example of FORMAT.md section 4 (coding 0)"),
    "k5_rgb_7x5": (5, 3, 7, 5, "3 bits, 35 labels: 105 bits, 7 padding bits"),
    "k8_rgb_13x7": (8, 3, 13, 7, "3 bits with every label value"),
    "k16_rgba_11x6": (16, 4, 11, 6, "RGBA palette, 4 bits"),
    "k32_rgb_5x9": (32, 3, 5, 9, "5 bits"),
    "k64_rgba_6x7": (64, 4, 6, 7, "6 bits, RGBA"),
    "k100_rgb_17x9": (100, 3, 17, 9, "7 bits, K not a power of two"),
    "k256_rgb_20x16": (256, 3, 20, 16, "8 bits, the largest palette"),
    "k4_rgba_1x1": (4, 4, 1, 1, "1x1 image; palette entries that no pixel uses are legal"),
    "k4_rgb_5x3": (4, 3, 5, 3, "2 bits, 15 labels: rows cross byte boundaries"),
    "k6_rgb_4x3_odd_palette": (6, 3, 4, 3, "unsorted palette with a duplicate and an unused entry: legal"),
    "k3_rgba_opaque_3x3": (3, 4, 3, 3, "RGBA palette whose alpha is 255 everywhere: 4 channels out"),
}


#: Coding-1 vectors: name -> (k, channels, width, height, stripes, what it covers)
CTX1 = {
    "ctx1_k5_rgb_3x2": (5, 3, 3, 2, 1, "the worked example of FORMAT.md section 5.6"),
    "ctx1_k2_rgb_9x3": (2, 3, 9, 3, 1, "K=2: a one-level escape tree"),
    "ctx1_k3_rgba_8x6": (3, 4, 8, 6, 1, "K=3: escapes to 3 are possible in the tree but invalid"),
    "ctx1_k8_rgb_13x7": (8, 3, 13, 7, 1, "every label value, flags and escapes"),
    "ctx1_k16_rgba_11x6": (16, 4, 11, 6, 1, "K=16: the largest K whose flag contexts include W and N"),
    "ctx1_k17_rgb_12x8": (17, 3, 12, 8, 1, "K=17: the smallest K whose flag contexts do not"),
    "ctx1_k100_rgb_30x20": (100, 3, 30, 20, 1, "K not a power of two, 7-level escape tree"),
    "ctx1_k256_rgb_40x30": (256, 3, 40, 30, 1, "K=256: the largest palette, 8-level escape tree"),
    "ctx1_k4_rgb_1x1": (4, 3, 1, 1, 1, "1x1: no neighbours, one escape"),
    "ctx1_k6_rgb_23x1": (6, 3, 23, 1, 1, "a single row: N, NW, NE, NN always absent"),
    "ctx1_k6_rgb_1x23": (6, 3, 1, 23, 1, "a single column: W, WW, NW, NE always absent"),
    "ctx1_k8_rgb_128x97_3_stripes": (8, 3, 128, 97, 3, "3 stripes of 32, 32 and 33 rows (4096 pixels or more each)"),
}


#: Coding-2 vectors: name -> (k, channels, width, height, stripes, what it covers)
MIX = {
    "mix_k5_rgb_3x2": (5, 3, 3, 2, 1, "the worked example of FORMAT.md section 11.7"),
    "mix_k2_rgb_9x3": (2, 3, 9, 3, 1, "K=2: every flag decides, no escape once W and N differ"),
    "mix_k3_rgba_8x6": (3, 4, 8, 6, 1, "K=3, RGBA: escapes to 3 are possible in the tree but invalid"),
    "mix_k8_rgb_13x7": (8, 3, 13, 7, 1, "every label value, flags and escapes"),
    "mix_k16_rgba_11x6": (16, 4, 11, 6, 1, "K=16, RGBA distances over 4 channels"),
    "mix_k17_rgb_12x8": (17, 3, 12, 8, 1, "K=17"),
    "mix_k100_rgb_30x20": (100, 3, 30, 20, 1, "K not a power of two, 7-level escape tree"),
    "mix_k256_rgb_40x30": (256, 3, 40, 30, 1, "K=256: the largest palette, 8-level escape tree"),
    "mix_k4_rgb_1x1": (4, 3, 1, 1, 1, "1x1: no neighbours, one escape under W and N absent"),
    "mix_k8_rgb_23x1": (8, 3, 23, 1, 1, "a single row: N and the rows above always absent"),
    "mix_k6_rgb_1x23": (6, 3, 1, 23, 1, "a single column: W, WW, NW, NE always absent"),
    "mix_k8_rgb_128x97_3_stripes": (8, 3, 128, 97, 3, "3 stripes of 32, 32 and 33 rows, each a fresh model"),
    "mix_k12_rgb_48x40_tiles": (12, 3, 48, 40, 1, "a 6 x 5 tile repeated: the match model predicts"),
    "mix_k20_rgb_50x20": (20, 3, 50, 20, 1, "escape bits with two TE slots in one entry: updated in turn (11.4)"),
}


def _tiled_labels(k: int, height: int, width: int) -> np.ndarray:
    """A 6 x 5 tile of scrambled labels repeated over the plane, so that the match model finds it again."""
    tile = _smooth_labels(k, 5, 6).astype(np.int64)
    tile = (tile * 5 + np.arange(30).reshape(5, 6)) % k
    return np.tile(tile, (height // 5 + 1, width // 6 + 1))[:height, :width].astype(np.uint8)


def _smooth_labels(k: int, height: int, width: int) -> np.ndarray:
    """Runs and diagonals with scattered odd values, so that flags and escapes both occur."""
    y, x = np.mgrid[0:height, 0:width]
    labels = (x + y) // 4 % k
    odd = (x * 7 + y * 11) % 5 == 0
    labels[odd] = (x[odd] * 13 + y[odd] * 29) % k
    flat = labels.reshape(-1)
    if flat.size >= 2 * k:
        flat[:k] = np.arange(k)[::-1]
    return labels.astype(np.uint8)


def valid_vectors() -> dict[str, tuple[np.ndarray, np.ndarray, int, int]]:
    """(palette, labels, coding, stripes) of every valid vector, by name."""
    out = {}
    for name, (k, channels, width, height, _) in VALID.items():
        out[name] = (_palette(k, channels), _labels(k, height, width), 0, 1)
    out["k5_rgb_3x2"] = (EXAMPLE_PALETTE, EXAMPLE_LABELS, 0, 1)
    out["k6_rgb_4x3_odd_palette"] = (ODD_PALETTE, ODD_LABELS, 0, 1)
    out["k3_rgba_opaque_3x3"][0][:, 3] = 255
    for name, (k, channels, width, height, stripes, _) in CTX1.items():
        out[name] = (_palette(k, channels), _smooth_labels(k, height, width), 1, stripes)
    out["ctx1_k5_rgb_3x2"] = (EXAMPLE_PALETTE, EXAMPLE_LABELS, 1, 1)
    for name, (k, channels, width, height, stripes, _) in MIX.items():
        labels = (_tiled_labels if name.endswith("_tiles") else _smooth_labels)(k, height, width)
        out[name] = (_palette(k, channels), labels, 2, stripes)
    out["mix_k5_rgb_3x2"] = (EXAMPLE_PALETTE, EXAMPLE_LABELS, 2, 1)
    return out


def encode_vector(palette: np.ndarray, labels: np.ndarray, coding: int, stripes: int) -> bytes:
    """The file of a valid vector: coding 0 from kmq, codings 1 and 2 from the spec's reference coder."""
    if coding == 0:
        return container.dumps(palette, labels, "raw")
    (k, channels), (height, width) = palette.shape, labels.shape
    head = struct.pack(">4sBBBBHHII", b"\x89KMQ", 1, coding, channels, (k - 1).bit_length(), k, 0, width, height)
    if coding == 1:
        payload = reference.encode_payload(labels.tolist(), k, stripes)
    else:
        payload = reference.encode_payload_mix(labels.tolist(), [bytes(entry) for entry in palette], stripes)
    assert len(payload) <= (width * height * ((k - 1).bit_length()) + 7) // 8 + 2 + 9 * stripes, "over D6's bound"
    return _with_crc(head + palette.tobytes() + payload)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite bytes, then recompute the checksum so only the patched rule breaks."""
    body = bytearray(data[:-4])
    body[offset : offset + len(value)] = value
    return _with_crc(bytes(body))


def _escape_candidate_stream() -> bytes:
    """The worked example's stream, except that pixel (1, 1) escapes to 0, one of its candidates."""
    k, labels = 5, EXAMPLE_LABELS.tolist()
    model, coder = reference.Model(k), reference.Encoder()
    rows = [[k] * 3 for _ in range(2)]
    for y, row in enumerate(labels):
        for x, value in enumerate(row):
            value = 0 if (x, y) == (1, 1) else value
            candidates, base, tree = reference.context(rows, x, y, k)
            hit = value in candidates and (x, y) != (1, 1)
            for i, candidate in enumerate(candidates):
                coder.bit(model.flag(base + i), int(hit and candidate == value))
                if hit and candidate == value:
                    break
            else:
                node = 1
                for b in range(model.bits - 1, -1, -1):
                    coder.bit(model.node(tree + node), (value >> b) & 1)
                    node = 2 * node + ((value >> b) & 1)
            rows[y][x] = value
    return coder.finish()


def _ctx1_file(base: bytes, streams: list[bytes], lengths: list[int] | None = None) -> bytes:
    """``base`` (a coding-1 file) with other streams, lengths and a new checksum."""
    k = int.from_bytes(base[8:10], "big")
    head = base[: container.HEADER.size + base[6] * k]
    lengths = [len(stream) for stream in streams] if lengths is None else lengths
    table = struct.pack(">H", len(streams)) + b"".join(struct.pack(">I", n) for n in lengths)
    return _with_crc(head + table + b"".join(streams))


def _ctx1_invalid(base1: bytes, big: bytes) -> dict[str, tuple[bytes, str, str]]:
    """Invalid coding-1 files, from the worked example (``base1``) and the K=100 vector (``big``).

    The worked example's payload is exactly at its bound (raw 3 + 11 bytes), so
    stream damage that adds a byte is made on ``big``, which has room below it.
    """
    stream = base1[41:-4]
    big_stream = big[container.HEADER.size + 3 * 100 + 6 : -4]
    bad_label = reference.encode_stripe([[4, 0, 3], [1, 2, 7]], 5)
    k1 = container.dumps(np.zeros((1, 3), np.uint8), np.zeros((2, 2), np.uint8), "raw")
    return {
        "ctx1_k_1": (_patch(k1, 5, b"\x01"), "FormatError", "D4: coding 1 with k = 1"),
        "ctx1_stripes_0": (_patch(base1, 35, b"\x00\x00"), "FormatError", "D6: S = 0"),
        "ctx1_stripes_3_of_2_rows": (_patch(base1, 35, b"\x00\x03"), "FormatError", "D6: S > height"),
        "ctx1_stripes_2_of_600_pixels": (
            _patch(big, container.HEADER.size + 3 * 100, b"\x00\x02"),
            "FormatError",
            "D6: S = 2 for 600 pixels, under 4096 per stripe",
        ),
        "ctx1_table_cut": (_with_crc(base1[:39]), "TruncatedError", "D6: the file ends inside the stripe table"),
        "ctx1_stripe_length_4": (_patch(base1, 37, b"\x00\x00\x00\x04"), "FormatError", "D6: a length < 5"),
        "ctx1_payload_short": (_with_crc(base1[:-5]), "TruncatedError", "D6: one byte shorter than the table says"),
        "ctx1_payload_long": (_with_crc(base1[:-4] + b"\x00"), "FormatError", "D6: one byte more than the table says"),
        "ctx1_over_raw_bound": (
            _ctx1_file(base1, [stream + b"\x00"]),
            "FormatError",
            "D6: payload of 15 bytes > raw 3 + 2 + 9 x 1",
        ),
        "ctx1_first_byte_1": (_patch(base1, 41, b"\x01"), "FormatError", "D10: stream's first byte not 0"),
        "ctx1_code_ffffffff": (_patch(base1, 42, b"\xff" * 4), "FormatError", "D10: initial code FF FF FF FF"),
        "ctx1_stream_ends_early": (
            _ctx1_file(big, [big_stream[:-1]]),
            "TruncatedError",
            "D10: the stream is one byte short (its length says so too)",
        ),
        "ctx1_stream_left_over": (
            _ctx1_file(big, [big_stream + b"\x00"]),
            "FormatError",
            "D10: one byte left over after the last pixel",
        ),
        "ctx1_code_not_0": (
            _ctx1_file(big, [big_stream[:-1] + bytes([big_stream[-1] ^ 1])]),
            "FormatError",
            "D10: code not 0 after the last pixel",
        ),
        "ctx1_escape_7_of_5": (_ctx1_file(base1, [bad_label]), "FormatError", "D10: escape to label 7 >= k = 5"),
        "ctx1_escape_to_candidate": (
            _ctx1_file(base1, [_escape_candidate_stream()]),
            "FormatError",
            "D10: escape to a value that is a candidate",
        ),
    }


class _ForcedMixModel(reference.MixModel):
    """The reference's coding-2 model, made to escape at chosen pixels: every flag there codes 0."""

    forced: tuple[int, int] | None = None

    def mix(self, slots: list, weights: list[int], lr: int, bit: int | None, what: str) -> int:
        if self.where[:2] == self.forced and what.startswith("flag"):
            bit = 0
        return super().mix(slots, weights, lr, bit, what)


def _mix_escape_stream(at: tuple[int, int], value: int) -> bytes:
    """The worked example's stream, except that pixel ``at`` answers no to every flag and escapes to ``value``.

    The stream stops after that pixel when ``value`` >= K (the model has no context for such a label).
    """
    palette = [bytes(entry) for entry in EXAMPLE_PALETTE]
    coder = reference.MixCoder()
    model = _ForcedMixModel(3, 2, palette, coder, None)
    model.forced = at
    for y, row in enumerate(EXAMPLE_LABELS.tolist()):
        for x, label in enumerate(row):
            model.pixel(x, y, value if (x, y) == at else label)
            if (x, y) == at and value >= len(palette):
                break
        else:
            continue
        break
    assert coder.encoder is not None
    return coder.encoder.finish()


def _mix_invalid(mix1: bytes, mixbig: bytes) -> dict[str, tuple[bytes, str, str]]:
    """Invalid coding-2 files, from the worked example (``mix1``) and the K=100 vector (``mixbig``)."""
    start = container.HEADER.size + 3 * 100 + 6
    big_stream = mixbig[start:-4]
    k1 = container.dumps(np.zeros((1, 3), np.uint8), np.zeros((2, 2), np.uint8), "raw")
    return {
        "mix_k_1": (_patch(k1, 5, b"\x02"), "FormatError", "D4: coding 2 with k = 1"),
        "mix_first_byte_1": (_patch(mix1, 41, b"\x01"), "FormatError", "D10: stream's first byte not 0"),
        "mix_code_ffffffff": (_patch(mix1, 42, b"\xff" * 4), "FormatError", "D10: initial code FF FF FF FF"),
        "mix_stream_ends_early": (
            _ctx1_file(mixbig, [big_stream[:-1]]),
            "TruncatedError",
            "D10: the coding-2 stream is one byte short (its length says so too)",
        ),
        "mix_stream_left_over": (
            _ctx1_file(mixbig, [big_stream + b"\x00"]),
            "FormatError",
            "D10: one byte left over after the last pixel of a coding-2 stream",
        ),
        "mix_code_not_0": (
            _ctx1_file(mixbig, [big_stream[:-1] + bytes([big_stream[-1] ^ 1])]),
            "FormatError",
            "D10: code not 0 after the last pixel of a coding-2 stream",
        ),
        "mix_escape_7_of_5": (
            _ctx1_file(mix1, [_mix_escape_stream((0, 0), 7)]),
            "FormatError",
            "D10: escape to label 7 >= k = 5 in a coding-2 stream",
        ),
        "mix_escape_to_candidate": (
            _ctx1_file(mix1, [_mix_escape_stream((1, 0), 4)]),
            "FormatError",
            "D10: escape to a value that is a candidate in a coding-2 stream",
        ),
    }


def invalid_vectors(
    base: bytes, base1: bytes, big: bytes, mix1: bytes, mixbig: bytes
) -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, exception class name, rule broken), derived from the worked examples."""
    crc_flipped = base[:-1] + bytes([base[-1] ^ 0x01])
    k1_huge = container.dumps(np.zeros((1, 3), np.uint8), np.zeros((1, 1), np.uint8), "raw")
    vectors = _ctx1_invalid(base1, big) | {
        "empty": (b"", "TruncatedError", "D2: empty file"),
        "header_cut": (base[:11], "TruncatedError", "D2: header truncated"),
        "magic_png": (b"\x89PNG\r\n\x1a\n" + base[8:], "FormatError", "D1: wrong magic"),
        "magic_short": (b"GIF8", "FormatError", "D1: wrong magic in a file shorter than the header"),
        "version_2": (_patch(base, 4, b"\x02"), "FormatError", "D3: unknown version"),
        "coding_3": (_patch(base, 5, b"\x03"), "FormatError", "D4: unknown payload coding"),
        "channels_2": (_patch(base, 6, b"\x02"), "FormatError", "D4: channels not 3 or 4"),
        "channels_5": (_patch(base, 6, b"\x05"), "FormatError", "D4: channels not 3 or 4"),
        "bits_4": (_patch(base, 7, b"\x04"), "FormatError", "D4: bits != ceil(log2 k)"),
        "k1_bits_1": (_patch(k1_huge, 7, b"\x01"), "FormatError", "D4: bits 1 with k = 1"),
        "k_0": (_patch(base, 8, b"\x00\x00"), "FormatError", "D4: k = 0"),
        "k_257": (_patch(base, 8, b"\x01\x01"), "FormatError", "D4: k > 256"),
        "reserved_1": (_patch(base, 10, b"\x00\x01"), "FormatError", "D4: reserved not zero"),
        "width_0": (_patch(base, 12, b"\x00\x00\x00\x00"), "FormatError", "D4: width = 0"),
        "height_0": (_patch(base, 16, b"\x00\x00\x00\x00"), "FormatError", "D4: height = 0"),
        "huge_no_payload": (
            _patch(base, 12, b"\xff\xff\xff\xff\xff\xff\xff\xff")[: container.HEADER.size],
            "PixelLimitError",
            "D5: (2^32 - 1)^2 pixels with nothing behind the header",
        ),
        "k1_over_limit": (
            _patch(k1_huge, 12, b"\x00\x01\x00\x00\x00\x01\x00\x00"),
            "PixelLimitError",
            "D5: a complete 27-byte K=1 file of 65536 x 65536 pixels, over the default limit",
        ),
        "payload_short": (_with_crc(base[:-5]), "TruncatedError", "D6: payload one byte short"),
        "payload_long": (_with_crc(base[:-4] + b"\x00"), "FormatError", "D6: one byte too many"),
        "trailing_garbage": (base + b"\x00", "FormatError", "D6: bytes after the checksum"),
        "checksum": (crc_flipped, "ChecksumError", "D7: checksum mismatch"),
        "padding_bit": (_patch(base, 37, b"\xc1"), "FormatError", "D8: a padding bit set"),
        "label_7_of_5": (_patch(base, 35, b"\xe1"), "FormatError", "D9: label 7 >= k = 5"),
    }
    return vectors | _mix_invalid(mix1, mixbig)


def readme() -> str:
    """The text of this folder's README.md."""
    lines = ["# Conformance vectors", ""]
    lines += ["| file | coding | K | channels | width x height | covers |", "|---|---|---|---|---|---|"]
    for name, (k, channels, width, height, covers) in VALID.items():
        lines.append(f"| `{name}.kmq` | 0 | {k} | {channels} | {width} x {height} | {covers} |")
    for name, (k, channels, width, height, stripes, covers) in CTX1.items():
        lines.append(f"| `{name}.kmq` | 1 ({stripes} stripes) | {k} | {channels} | {width} x {height} | {covers} |")
    for name, (k, channels, width, height, stripes, covers) in MIX.items():
        lines.append(f"| `{name}.kmq` | 2 ({stripes} stripes) | {k} | {channels} | {width} x {height} | {covers} |")
    lines += [
        "",
        "Each `NAME.png` holds the pixels a decoder must produce from `NAME.kmq` (RGB or RGBA, 8 bits).",
        "Files in `invalid/` must be rejected; `invalid/README.md` names the rule each one breaks.",
        "Regenerate with `python spec/vectors/generate.py`; check any of them with `python spec/reference.py FILE`.",
    ]
    return "\n".join(lines) + "\n"


def invalid_readme(base: bytes, base1: bytes, big: bytes, mix1: bytes, mixbig: bytes) -> str:
    """The text of invalid/README.md."""
    rows = ["# Invalid vectors", "", "Each file breaks one rule of FORMAT.md section 7; a decoder must reject it.", ""]
    rows += ["| file | rule broken | kmq raises |", "|---|---|---|"]
    for name, (_, error, rule) in invalid_vectors(base, base1, big, mix1, mixbig).items():
        rows.append(f"| `{name}.kmq` | {rule} | `{error}` |")
    return "\n".join(rows) + "\n"


def bases() -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The valid vectors the invalid ones are made from."""
    names = ("k5_rgb_3x2", "ctx1_k5_rgb_3x2", "ctx1_k100_rgb_30x20", "mix_k5_rgb_3x2", "mix_k100_rgb_30x20")
    raw, example, big, mix1, mixbig = ((HERE / f"{name}.kmq").read_bytes() for name in names)
    return raw, example, big, mix1, mixbig


def main() -> None:
    for old in [*HERE.glob("*.kmq"), *HERE.glob("*.png"), *(HERE / "invalid").glob("*.kmq")]:
        old.unlink()
    for name, (palette, labels, coding, stripes) in valid_vectors().items():
        (HERE / f"{name}.kmq").write_bytes(encode_vector(palette, labels, coding, stripes))
        Image.fromarray(palette[labels]).save(HERE / f"{name}.png")
    (HERE / "README.md").write_text(readme())
    made = bases()
    for name, (data, _, _) in invalid_vectors(*made).items():
        (HERE / "invalid" / f"{name}.kmq").write_bytes(data)
    (HERE / "invalid" / "README.md").write_text(invalid_readme(*made))


if __name__ == "__main__":
    main()
