"""Pixels in and out: numpy arrays and Pillow images, normalised to RGB or RGBA uint8.

The rules, applied to every input the encoder sees:

- an (H, W, 3) or (H, W, 4) uint8 array is taken as RGB or RGBA;
- a Pillow image is rotated by its EXIF orientation, then converted: modes with
  alpha (LA, La, PA, RGBa, RGBA), images with a transparency entry (a tRNS
  colour key in P, L or RGB) and P images whose palette has alpha (from
  ``Image.quantize`` of RGBA, or a 4-channel kmq file) to RGBA; 16-bit greys to 8 bits by
  ``round(v / 257)`` (I;16 and its variants always, and I when every value is
  in 0..65535 and some value is above 255, which is how Pillow opens 16-bit
  PGM files); every other mode (1, L, P, CMYK, YCbCr, LAB, HSV, I, F, ...) to
  RGB the way Pillow's ``convert("RGB")`` does (I and F clip to 0..255);
- RGBA whose alpha is 255 everywhere becomes RGB, so that opaque images do not
  pay for a fourth channel.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from .container import CHANNELS, DEFAULT_MAX_PIXELS, mode_name
from .errors import ImageError, KmqError, ParameterError, PixelLimitError

__all__ = [
    "ImageLike",
    "as_array",
    "load_image",
    "save_image",
    "output_format",
    "is_image_path",
    "image_suffixes",
    "identify",
    "upright",
    "KMQ_FORMAT",
]

#: What the encoder accepts: an (H, W, 3|4) uint8 array or any Pillow image.
ImageLike = Any

_ORIENTATION = 0x0112  # the EXIF tag
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})


def _sixteen_bit_grey(image: Image.Image) -> NDArray[np.uint8] | None:
    """8-bit RGB from a 16-bit grey image, or None if ``image`` is not one."""
    if not (image.mode.startswith("I;16") or image.mode == "I"):
        return None
    grey = np.asarray(image).astype(np.int64)
    if image.mode == "I" and not (grey.min() >= 0 and 255 < grey.max() <= 65535):
        return None
    grey8 = ((grey * 2 + 257) // 514).astype(np.uint8)  # round(v / 257) in integers
    return np.repeat(grey8[:, :, None], 3, axis=2)


def upright(image: Image.Image) -> Image.Image:
    """The image rotated by its EXIF orientation; the same object when there is nothing to do.

    Parameters
    ----------
    image : PIL.Image.Image

    Returns
    -------
    PIL.Image.Image
    """
    # exif_transpose copies the image even when the orientation is 1.
    if image.getexif().get(_ORIENTATION, 1) != 1:
        return ImageOps.exif_transpose(image)
    return image


def _from_pillow(image: Image.Image) -> NDArray[np.uint8]:
    # Each Pillow step below copies the image, so a step is taken only when it
    # changes something: a 12 MP photo then peaks at about 1.5x its own size.
    image = upright(image)
    grey = _sixteen_bit_grey(image)
    if grey is not None:
        return grey
    if image.mode == "La":  # Pillow cannot convert premultiplied La to RGB(A) directly
        image = image.convert("LA")
    # A P image whose palette has alpha (Image.quantize of RGBA, or a kmq RGBA file) keeps it.
    has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    has_alpha = has_alpha or (image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA")
    mode = "RGBA" if has_alpha else "RGB"
    return np.asarray(image if image.mode == mode else image.convert(mode))


def as_array(image: ImageLike) -> NDArray[np.uint8]:
    """Normalise an image to an (H, W, 3) or (H, W, 4) uint8 array.

    Parameters
    ----------
    image : (H, W, 3|4) uint8 ndarray or PIL.Image.Image
        See the module docstring for how each Pillow mode is converted.

    Returns
    -------
    (H, W, C) uint8 ndarray
        C is 4 only if some pixel has alpha below 255.

    Raises
    ------
    ParameterError
        If an array has the wrong dtype, shape or a zero dimension.
    ImageError
        If a Pillow image's pixels cannot be read.
    """
    if isinstance(image, Image.Image):
        try:
            pixels = _from_pillow(image)
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"cannot read image pixels: {exc}") from None
    else:
        pixels = np.asarray(image)
        if pixels.dtype != np.uint8:
            raise ParameterError(f"image array dtype is {pixels.dtype}, expected uint8")
        if pixels.ndim != 3 or pixels.shape[2] not in CHANNELS:
            raise ParameterError(f"image array shape {pixels.shape} is not (H, W, 3) or (H, W, 4)")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ParameterError(f"image is empty: shape {pixels.shape}")
    if pixels.shape[2] == 4 and bool((pixels[:, :, 3] == 255).all()):
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)


def load_image(
    file: str | os.PathLike[str] | BinaryIO,
    *,
    name: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> NDArray[np.uint8]:
    """Read an image file with Pillow and normalise it with :func:`as_array`.

    Parameters
    ----------
    file : path-like or binary file object
        Any image file Pillow reads (a file object for images already in memory).
    name : str, optional
        What error messages call the file (default: the path).
    max_pixels : int or None
        Refuse images with more pixels than this, from the header, before
        any pixel is decoded; None for no limit. It stands in for Pillow's
        ``Image.MAX_IMAGE_PIXELS`` during the read only; the default is the
        point where Pillow's own check errors, as for decoding kmq files.

    Returns
    -------
    (H, W, 3|4) uint8 ndarray

    Raises
    ------
    PixelLimitError
        If the image has more than ``max_pixels`` pixels.
    ImageError
        If the file is missing, not an image or truncated.
    """
    source = file if hasattr(file, "read") else Path(file)  # type: ignore[arg-type]
    label = name if name is not None else str(source)
    with _pillow_errors(label), _pixel_limit(max_pixels), Image.open(source) as image:
        _check_pixels(image, label, max_pixels)
        image.load()
        return as_array(image)


def identify(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str:
    """The Pillow format of an image file, from its header alone (nothing is decoded).

    Parameters
    ----------
    path : path-like
        A file.
    max_pixels : int or None
        As for :func:`load_image`.

    Returns
    -------
    str
        Pillow's format name, e.g. ``"PNG"``.

    Raises
    ------
    ImageError
        As :func:`load_image`, for what the header shows.
    """
    with _pillow_errors(str(path)), _pixel_limit(max_pixels), Image.open(path) as image:
        _check_pixels(image, str(path), max_pixels)
        return str(image.format)


#: What a refused image's message says to do about it (the command's option, the library's argument).
_PIXEL_LIMIT_HINT = "raise it with --max-pixels N or none; max_pixels= in Python"


_limit_lock = threading.Lock()
_readers = 0
_saved_limit: int | None = None


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow's own bomb check off for one read, because :func:`_check_pixels` applies ``max_pixels`` exactly.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and errors only above twice
    it; kmq's limit is one number, checked once the header is read. The
    global is restored afterwards, so other Pillow users keep their setting.
    """
    global _readers, _saved_limit
    with _limit_lock:  # threads reading at once (a Dask worker's) must not restore each other's None
        if _readers == 0:
            _saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _readers += 1
    try:
        yield
    finally:
        with _limit_lock:
            _readers -= 1
            if _readers == 0:
                Image.MAX_IMAGE_PIXELS = _saved_limit


def _check_pixels(image: Image.Image, label: str, max_pixels: int | None) -> None:
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        msg = (
            f"{label}: {width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
            f"({_PIXEL_LIMIT_HINT})"
        )
        raise PixelLimitError(msg)


@contextlib.contextmanager
def _pillow_errors(label: str) -> Iterator[None]:
    """Turn whatever Pillow raises for a bad file into one :class:`ImageError` naming ``label``."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; we refuse at
            # the same point it errors, and say so in one line.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image Pillow can read") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a directory") from None
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except KmqError:
        raise
    except Exception as exc:
        # Pillow's decoders report corrupt data with many exception types
        # (OSError, ValueError, EOFError, struct.error, IndexError, ...).
        raise ImageError(f"{label}: cannot read image: {type(exc).__name__}: {exc}") from None


#: Pillow's name for kmq's own format, once the plugin is registered.
KMQ_FORMAT = "KMQ"


def image_suffixes() -> frozenset[str]:
    """Extensions of the image formats the encoder takes from a folder.

    kmq's own is left out: a folder holding earlier outputs is not re-encoded
    (a .kmq file named on its own is, at its new K).
    """
    Image.init()
    extensions = Image.registered_extensions().items()
    return frozenset(ext for ext, fmt in extensions if fmt != KMQ_FORMAT and fmt in Image.OPEN)


#: Formats whose writers resample the image to sizes of their own.
_RESIZING_FORMATS = frozenset({"ICO", "ICNS"})


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Whether a path's extension is one Pillow registers for an image format (kmq's own ``.kmq`` is not)."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    return fmt is not None and fmt != KMQ_FORMAT


#: Save options per Pillow format: WebP is written lossless and exact, so that
#: decoding to .webp keeps every pixel, as it does for .png.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {"WEBP": {"lossless": True, "exact": True}}

# 2 x 2 pixels with four different alpha values: enough to tell whether a
# format keeps partial alpha.
_PROBE = np.array([[[0, 64, 128, 0], [255, 1, 2, 90]], [[3, 4, 5, 180], [6, 7, 8, 255]]], dtype=np.uint8)


def output_format(path: str | os.PathLike[str], channels: int = 3) -> str:
    """The Pillow format for an output path's extension, checked to work before any real work is done.

    A tiny image of the right mode is saved (and, for RGBA, read back) in
    memory, so that formats Pillow knows but cannot write here, or that would
    silently drop the alpha channel, are refused up front.

    Parameters
    ----------
    path : path-like
        Output path; only its extension is used.
    channels : int
        3 for RGB, 4 for RGBA.

    Returns
    -------
    str
        The Pillow format name, e.g. ``"PNG"``.

    Raises
    ------
    ParameterError
        If Pillow has no writer for the extension, cannot write the mode, or
        would lose the alpha channel.
    """
    return _format_for(Path(path).suffix.lower(), channels)


@functools.lru_cache(maxsize=64)
def _format_for(ext: str, channels: int) -> str:
    # Cached: a batch asks once per file, and the answer depends only on these two.
    # (A ParameterError is not cached, so a plugin registered later is still found.)
    fmt = Image.registered_extensions().get(ext)
    if fmt == KMQ_FORMAT:
        raise ParameterError(f"{ext} is kmq's own format, not an image format to write here; use e.g. .png")
    if fmt is None or fmt not in Image.SAVE:
        raise ParameterError(f"cannot write images with extension {ext or '(none)'!r}; use e.g. .png")
    if fmt in _RESIZING_FORMATS:
        raise ParameterError(f"{fmt} ({ext}) would resize the image; use e.g. .png")
    probe = _PROBE if channels == 4 else _PROBE[:, :, :3]
    buffer = io.BytesIO()
    try:
        Image.fromarray(probe).save(buffer, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
    except Exception as exc:  # Pillow's writers raise many types; all mean "cannot"
        raise ParameterError(f"cannot write {mode_name(channels)} images as {fmt}: {exc}") from None
    if channels == 4:
        try:
            with Image.open(buffer) as back:
                alpha = np.asarray(back.convert("RGBA"))[:, :, 3]
        except Exception:
            alpha = None
        if alpha is None or not np.array_equal(alpha, _PROBE[:, :, 3]):
            raise ParameterError(f"{fmt} ({ext}) cannot keep the alpha channel of this RGBA image; use .png or .webp")
    return fmt


def save_image(file: str | os.PathLike[str] | BinaryIO, pixels: NDArray[np.uint8] | Image.Image, fmt: str) -> None:
    """Write pixels, or a Pillow image, in a Pillow format.

    Parameters
    ----------
    file : path-like or binary file object
        Destination.
    pixels : (H, W, 3|4) uint8 ndarray or PIL.Image.Image
        The image.
    fmt : str
        Pillow format name, as returned by :func:`output_format`.

    Raises
    ------
    ImageError
        If Pillow cannot write the image.
    """
    try:
        image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
        image.save(file, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
    except (KeyError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a disk error, not an image error: the caller names the file
        raise ImageError(f"cannot write {fmt}: {exc}") from None
