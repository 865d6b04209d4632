"""Regenerate the conformance vectors in this folder.

Usage: python spec/vectors/generate.py

Valid vectors: ``NAME.kmq`` and ``NAME.png`` (the pixels a decoder must
produce). Invalid vectors: ``invalid/NAME.kmq``, each breaking exactly one rule
of FORMAT.md (the checksum is recomputed after the damage unless the damage is
to the checksum itself), listed with the rule in ``invalid/README.md``.
The files are committed; ``tests/test_spec.py`` checks them against the code.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from kmq import container
from PIL import Image

HERE = Path(__file__).resolve().parent


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
    "k5_rgb_3x2": (5, 3, 3, 2, "the worked example of FORMAT.md section 4"),
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


def valid_vectors() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Palette and labels of every valid vector, by name."""
    out = {}
    for name, (k, channels, width, height, _) in VALID.items():
        out[name] = (_palette(k, channels), _labels(k, height, width))
    out["k5_rgb_3x2"] = (EXAMPLE_PALETTE, EXAMPLE_LABELS)
    out["k6_rgb_4x3_odd_palette"] = (ODD_PALETTE, ODD_LABELS)
    out["k3_rgba_opaque_3x3"][0][:, 3] = 255
    return out


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite bytes, then recompute the checksum so only the patched rule breaks."""
    body = bytearray(data[:-4])
    body[offset : offset + len(value)] = value
    return _with_crc(bytes(body))


def invalid_vectors(base: bytes) -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, exception class name, rule broken), all derived from the worked example."""
    crc_flipped = base[:-1] + bytes([base[-1] ^ 0x01])
    k1_huge = container.dumps(np.zeros((1, 3), np.uint8), np.zeros((1, 1), np.uint8))
    return {
        "empty": (b"", "TruncatedError", "D2: empty file"),
        "header_cut": (base[:11], "TruncatedError", "D2: header truncated"),
        "magic_png": (b"\x89PNG\r\n\x1a\n" + base[8:], "FormatError", "D1: wrong magic"),
        "magic_short": (b"GIF8", "FormatError", "D1: wrong magic in a file shorter than the header"),
        "version_2": (_patch(base, 4, b"\x02"), "FormatError", "D3: unknown version"),
        "coding_1": (_patch(base, 5, b"\x01"), "FormatError", "D4: unknown payload coding"),
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


def readme() -> str:
    """The text of this folder's README.md."""
    lines = ["# Conformance vectors", "", "| file | K | channels | width x height | covers |", "|---|---|---|---|---|"]
    for name, (k, channels, width, height, covers) in VALID.items():
        lines.append(f"| `{name}.kmq` | {k} | {channels} | {width} x {height} | {covers} |")
    lines += [
        "",
        "Each `NAME.png` holds the pixels a decoder must produce from `NAME.kmq` (RGB or RGBA, 8 bits).",
        "Files in `invalid/` must be rejected; `invalid/README.md` names the rule each one breaks.",
        "Regenerate with `python spec/vectors/generate.py`.",
    ]
    return "\n".join(lines) + "\n"


def invalid_readme(base: bytes) -> str:
    """The text of invalid/README.md."""
    rows = ["# Invalid vectors", "", "Each file breaks one rule of FORMAT.md section 6; a decoder must reject it.", ""]
    rows += ["| file | rule broken | kmq raises |", "|---|---|---|"]
    for name, (_, error, rule) in invalid_vectors(base).items():
        rows.append(f"| `{name}.kmq` | {rule} | `{error}` |")
    return "\n".join(rows) + "\n"


def main() -> None:
    for name, (palette, labels) in valid_vectors().items():
        k, channels, width, height, _ = VALID[name]
        assert palette.shape == (k, channels) and labels.shape == (height, width), name
        (HERE / f"{name}.kmq").write_bytes(container.dumps(palette, labels))
        Image.fromarray(palette[labels]).save(HERE / f"{name}.png")
    (HERE / "README.md").write_text(readme())

    base = (HERE / "k5_rgb_3x2.kmq").read_bytes()
    for old in (HERE / "invalid").glob("*.kmq"):
        old.unlink()
    for name, (data, _, _) in invalid_vectors(base).items():
        (HERE / "invalid" / f"{name}.kmq").write_bytes(data)
    (HERE / "invalid" / "README.md").write_text(invalid_readme(base))


if __name__ == "__main__":
    main()
