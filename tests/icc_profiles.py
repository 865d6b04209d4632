"""ICC profiles built in memory for the colour-management tests (no downloads, no system files).

Each builder returns the bytes of a small ICC v2 profile (ICC.1:2001-04): a
header, a tag table and the tags LittleCMS needs to use it as an input profile.
``adobe_rgb()`` has the primaries and gamma of Adobe RGB (1998); ``grey()`` a
grey profile with a plain gamma curve; ``cmyk()`` a printer profile whose
A2B0 lookup table models ink on paper (a simple model, not a real press, but a
complete, valid profile).
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import ImageCms

__all__ = ["adobe_rgb", "grey", "cmyk", "srgb", "ADOBE_RGB_NAME"]

ADOBE_RGB_NAME = "Adobe RGB (1998) (test copy)"

# D50, the profile connection space's white.
_D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998) primaries, adapted to D50 (as in its published profile); gamma 563/256.
_ADOBE_COLORANTS = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))
# Linear sRGB to XYZ, adapted to D50 (Bradford), for the CMYK model.
_SRGB_TO_XYZ_D50 = np.array(
    [[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169], [0.0139322, 0.0971045, 0.7141733]]
)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)


def _text(text: str) -> bytes:
    return b"text" + bytes(4) + text.encode("ascii") + b"\0"


def _gamma(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _profile(device_class: bytes, space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], []
    for signature, data in tags:
        padded = data + bytes(-len(data) % 4)
        entries.append(struct.pack(">4sII", signature, offset, len(data)))
        blobs.append(padded)
        offset += len(padded)
    body = struct.pack(">I", len(tags)) + b"".join(entries) + b"".join(blobs)
    size = 128 + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + device_class
        + space
        + b"XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8)
        + struct.pack(">I", 0)
        + _s15(_D50[0])
        + _s15(_D50[1])
        + _s15(_D50[2])
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + body


def adobe_rgb(name: str = ADOBE_RGB_NAME) -> bytes:
    """An RGB display profile with Adobe RGB (1998)'s primaries and gamma."""
    red, green, blue = _ADOBE_COLORANTS
    curve = _gamma(563 / 256)
    return _profile(
        b"mntr",
        b"RGB ",
        [
            (b"desc", _desc(name)),
            (b"cprt", _text("no copyright, test data")),
            (b"wtpt", _xyz(*_D50)),
            (b"rXYZ", _xyz(*red)),
            (b"gXYZ", _xyz(*green)),
            (b"bXYZ", _xyz(*blue)),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ],
    )


def grey(gamma: float = 1.0, name: str = "linear grey (test)") -> bytes:
    """A grey display profile whose tone curve is ``v ** gamma`` (1.0: linear light)."""
    return _profile(
        b"mntr",
        b"GRAY",
        [
            (b"desc", _desc(name)),
            (b"cprt", _text("no copyright, test data")),
            (b"wtpt", _xyz(*_D50)),
            (b"kTRC", _gamma(gamma)),
        ],
    )


def cmyk(name: str = "ink on paper (test)", grid: int = 9) -> bytes:
    """A CMYK printer profile: an A2B0 lut16 from CMYK to XYZ, on slightly dull paper."""
    steps = np.linspace(0.0, 1.0, grid)
    c, m, y, k = np.meshgrid(steps, steps, steps, steps, indexing="ij")
    # Each ink absorbs its complement; paper reflects 90 %, so white is not the display's white.
    rgb = 0.9 * np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=-1)
    xyz = rgb.reshape(-1, 3) @ _SRGB_TO_XYZ_D50.T
    clut = np.clip(np.round(xyz * 32768), 0, 65535).astype(">u2")  # lut16 XYZ: 0x8000 is 1.0
    identity = np.array([0, 65535], ">u2")
    lut = (
        b"mft2"
        + bytes(4)
        + struct.pack(">BBBB", 4, 3, grid, 0)
        + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + struct.pack(">HH", 2, 2)
        + identity.tobytes() * 4
        + clut.tobytes()
        + identity.tobytes() * 3
    )
    return _profile(
        b"prtr",
        b"CMYK",
        [(b"desc", _desc(name)), (b"cprt", _text("no copyright, test data")), (b"wtpt", _xyz(*_D50)), (b"A2B0", lut)],
    )


def srgb() -> bytes:
    """LittleCMS's built-in sRGB profile, as bytes to embed."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
