"""kmq: K-means colour quantization with a true bits-per-pixel container.

``kmq.encode(image, k=8)`` returns the bytes of a kmq file (spec/FORMAT.md) and
``kmq.decode(data)`` the pixels; ``kmq.quantize`` gives the palette and labels.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

# Submodules as attributes, so that kmq.container.loads works after `import kmq`.
from . import bitpack as bitpack
from . import container as container
from . import ctx1 as ctx1
from . import images as images
from .colour import DEFAULT_SPACE, Space
from .container import DEFAULT_CODING, DEFAULT_MAX_PIXELS
from .errors import (
    ChecksumError,
    FormatError,
    ImageError,
    KmqError,
    KmqWarning,
    ParameterError,
    PixelLimitError,
    TruncatedError,
)
from .files import atomic_write, read
from .images import ImageLike
from .indexed import Indexed
from .pillow_plugin import register_pillow
from .quantize import DEFAULT_K, ColoursLike, quantize
from .quantize import Options as QuantizeOptions
from .quantize import _options as _quantize_options

if TYPE_CHECKING:
    from . import batch as batch
    from . import dither as dither
    from . import metrics as metrics
    from . import palettes as palettes
    from . import pictures as pictures

# Loaded on first attribute access (PEP 562): batch brings in multiprocessing and
# pictures Pillow's drawing modules, which reading and writing one file never needs.
_LAZY_SUBMODULES = frozenset({"batch", "dither", "metrics", "palettes", "pictures"})


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # binds kmq.<name>: called once per name
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES)


__version__ = "0.1.0"

__all__ = [
    "__version__",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_CODING",
    "Indexed",
    "quantize",
    "QuantizeOptions",
    "encode",
    "decode",
    "read",
    "write",
    "register_pillow",
    "KmqError",
    "FormatError",
    "TruncatedError",
    "ChecksumError",
    "PixelLimitError",
    "ImageError",
    "ParameterError",
    "KmqWarning",
]


def encode(
    image: ImageLike,
    k: int | Literal["auto"] = DEFAULT_K,
    *,
    seed: int = 0,
    space: Space = DEFAULT_SPACE,
    dither: bool | float | Literal["ordered"] = False,
    min_psnr: float | None = None,
    palette: ColoursLike | None = None,
    keep: ColoursLike | None = None,
    coding: int | str = DEFAULT_CODING,
    options: QuantizeOptions | None = None,
) -> bytes:
    """Quantize an image to at most ``k`` colours and return a kmq file.

    Parameters
    ----------
    image : (H, W), (H, W, 1) or (H, W, 3|4) uint8 ndarray, or PIL.Image.Image
        A 2-D (or one-channel) array is grey; see :func:`kmq.images.as_array`.
    k : int or "auto"
        Palette size, 1 to 256; or ``"auto"`` with ``min_psnr``.
    seed, space, dither, min_psnr, palette, keep
        As :func:`kmq.quantize` (fields of :class:`kmq.QuantizeOptions`);
        equal inputs and options give equal bytes.
    coding : int or str
        Payload coding: ``"mix"`` (default; context mixing, typically 3 to 12
        times smaller than raw, never larger than ctx1 or raw), ``"ctx1"``
        (the fast context model) or ``"raw"`` (exactly ``ceil(log2 k)`` bits
        per pixel).
    options : QuantizeOptions, optional
        ``k``, ``seed``, ``space``, ``dither`` and ``min_psnr`` in one object,
        as :func:`kmq.quantize` takes it; those keywords must then keep their defaults.

    Returns
    -------
    bytes
        A complete kmq file.

    Raises
    ------
    ParameterError
        If an option, ``coding`` or the image array is invalid, or ``options``
        is given together with ``k``, ``seed``, ``space``, ``dither`` or ``min_psnr``.
    ImageError
        If a Pillow image cannot be read.
    """
    options = _quantize_options(k, seed, space, dither, min_psnr, options, palette, keep)
    container.coding_number(coding)  # reject a bad name before the work
    return quantize(image, options=options).to_bytes(coding)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    verify_checksum: bool = True,
) -> NDArray[np.uint8]:
    """Decode a kmq file to pixels.

    Parameters
    ----------
    data : bytes-like
        A complete kmq file.
    max_pixels : int or None
        Refuse images with more pixels than this; ``None`` for no limit.
    verify_checksum : bool
        Skip the CRC-32 check when False, as libpng's fuzz target does, so that
        damaged files reach the payload checks; every other rule still holds.

    Returns
    -------
    (H, W, C) uint8 ndarray
        C = 3 (RGB) or 4 (RGBA).

    Raises
    ------
    KmqError
        If the data is not a valid kmq file or exceeds ``max_pixels``.
    """
    # Straight to pixels: the striped codings write each row's colours as they decode it.
    _, _, pixels = container.loads(data, max_pixels=max_pixels, verify_checksum=verify_checksum, pixels=True)
    return pixels


def write(
    path: str | os.PathLike[str],
    image: ImageLike,
    k: int | Literal["auto"] = DEFAULT_K,
    *,
    seed: int = 0,
    space: Space = DEFAULT_SPACE,
    dither: bool | float | Literal["ordered"] = False,
    min_psnr: float | None = None,
    palette: ColoursLike | None = None,
    keep: ColoursLike | None = None,
    coding: int | str = DEFAULT_CODING,
    overwrite: bool = False,
    options: QuantizeOptions | None = None,
) -> Indexed:
    """Quantize ``image`` and write it as a kmq file, atomically.

    Parameters
    ----------
    path : path-like
        Destination.
    image : (H, W), (H, W, 1) or (H, W, 3|4) uint8 ndarray, or PIL.Image.Image
        A 2-D (or one-channel) array is grey; see :func:`kmq.images.as_array`.
    k, seed, space, dither, min_psnr, palette, keep
        As :func:`encode`.
    coding : int or str
        Payload coding, ``"mix"`` (default), ``"ctx1"`` or ``"raw"``; see :func:`encode`.
    overwrite : bool
        Replace an existing file.
    options : QuantizeOptions, optional
        As :func:`encode`.

    Returns
    -------
    Indexed
        What was written.

    Raises
    ------
    KmqError
        If the image or an option is invalid (``options`` with the separate keywords too).
    OSError
        If the file cannot be written (``FileExistsError`` if it exists and
        ``overwrite`` is False); nothing is left behind.
    """
    options = _quantize_options(k, seed, space, dither, min_psnr, options, palette, keep)
    container.coding_number(coding)
    indexed = quantize(image, options=options)
    atomic_write(path, indexed.to_bytes(coding), overwrite=overwrite)
    return indexed


# Image.open("x.kmq") and im.save("x.kmq") work after `import kmq` (pillow-heif's pattern).
register_pillow()
