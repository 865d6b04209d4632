"""Pixels in and out: numpy arrays and Pillow images, normalised to RGB or RGBA uint8.

The rules, applied to every input the encoder sees:

- an (H, W, 3) or (H, W, 4) uint8 array is taken as RGB or RGBA, and an (H, W)
  or (H, W, 1) uint8 array as grey (its value in all three channels);
- a Pillow image is read at one frame (the first unless another is asked for;
  an animation or a multi-page file says that it had more), rotated by its
  EXIF orientation (a broken orientation tag is ignored, with a warning), then
  converted: modes with alpha (LA, La, PA, RGBA, RGBa), images with a
  transparency entry (a tRNS colour key in P, L, I;16 or RGB) and P images whose
  palette has alpha (from ``Image.quantize`` of RGBA, or a 4-channel kmq file)
  to RGBA; 16-bit greys to 8 bits by ``round(v / 257)`` (I;16 and its variants
  always, and I when every value is in 0..65535 and some value is above 255,
  which is how Pillow opens 16-bit PGM files); every other mode (1, L, P, CMYK,
  YCbCr, LAB, HSV, I, F, ...) to RGB the way Pillow's ``convert("RGB")`` does
  (I and F clip to 0..255);
- an embedded ICC profile (RGB, CMYK or grey) is applied: the pixels are
  converted to sRGB with LittleCMS (Pillow's ImageCms, perceptual intent), so
  that kmq quantizes the colours a colour-managed viewer shows. A profile that
  is sRGB already (no value moves by more than 1) leaves the pixels as stored,
  and ``colour_management=False`` keeps the stored numbers whatever the profile;
- RGBA whose alpha is 255 everywhere becomes RGB, so that opaque images do not
  pay for a fourth channel.

Grey stays visible after the conversion: :func:`load` says whether the input
was grey, and its pixels are then equal in all three channels.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from . import bitpack, files, memory, threads
from .container import CHANNELS, DEFAULT_MAX_PIXELS, mode_name
from .errors import ImageError, KmqError, KmqWarning, ParameterError, PixelLimitError
from .indexed import Indexed

if TYPE_CHECKING:
    from PIL import ImageCms

__all__ = [
    "ImageLike",
    "Loaded",
    "load",
    "as_array",
    "load_image",
    "save_image",
    "save_indexed",
    "png_bytes",
    "is_lossy",
    "output_format",
    "is_image_path",
    "image_suffixes",
    "identify",
    "upright",
    "KMQ_FORMAT",
]

#: What the encoder accepts: an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array, or any Pillow image.
ImageLike = Any

_ORIENTATION = 0x0112  # the EXIF tag
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Where Pillow's getexif looks for an orientation; a rotated copy drops them all,
# so that rotating it again is a no-op.
_ORIENTATION_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
# Formats whose extra frames are not other pictures: an MPO's are previews, gain
# or depth maps (most phone JPEGs are MPO); a PSD opens at its merged composite
# and its frames are the layers. They are not reported as dropped frames.
_AUXILIARY_FRAMES = frozenset({"MPO", "PSD"})
_PROFILE_SPACES = {"RGB ": "RGB", "GRAY": "grey", "CMYK": "CMYK"}


@dataclass(frozen=True, eq=False)  # eq=False: an array field has no single truth value
class Loaded:
    """An input image as the encoder sees it, with what was done to get there."""

    #: (H, W, 3|4) uint8, upright, in sRGB unless colour management was off; equal channels when ``grey``.
    pixels: NDArray[np.uint8]
    #: Pillow's mode of the image as stored, e.g. ``"L"``, ``"LA"``, ``"RGB"``, ``"P"``, ``"CMYK"``, ``"I;16"``
    #: (for an array: ``"L"`` if 2-D, else ``"RGB"`` or ``"RGBA"``).
    source_mode: str
    #: The input was grey: mode 1, L, LA, La, I, I;16 or F, or a 2-D array.
    grey: bool
    #: One-line warnings, e.g. ``"kept frame 1 of 24 (choose with --frame N)"``.
    notes: tuple[str, ...] = ()
    #: The description of the embedded ICC profile, or None without one.
    profile: str | None = None
    #: The pixels were converted from ``profile`` to sRGB.
    converted: bool = False
    #: One line on what was done with the profile (for ``-v``), or None without one.
    colour: str | None = None

    @property
    def mode(self) -> str:
        """What was encoded: ``"L"`` or ``"LA"`` for grey inputs, else ``"RGB"`` or ``"RGBA"``."""
        channels = self.pixels.shape[2]
        return ("L" if channels == 3 else "LA") if self.grey else mode_name(channels)

    @property
    def bytes_per_pixel(self) -> int:
        """What one pixel of :attr:`mode` takes raw: 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)."""
        return len(self.mode)


#: Formats whose mode "I" images hold 16-bit samples: older Pillow releases open a 16-bit grey PNG
#: as "I" (newer ones as I;16), and a PGM with maxval above 255 opens as "I" scaled to 0-65535.
_SIXTEEN_BIT_I_FORMATS = frozenset({"PNG", "PPM"})


def _is_sixteen_bit_grey(image: Image.Image) -> bool:
    """Whether ``image`` holds 16-bit grey samples: by its mode and file format, never by its values."""
    return image.mode.startswith("I;16") or (image.mode == "I" and image.format in _SIXTEEN_BIT_I_FORMATS)


def _sixteen_bit_grey(image: Image.Image) -> NDArray[np.uint8]:
    """8-bit RGB (RGBA with a tRNS key) from a 16-bit grey image (:func:`_is_sixteen_bit_grey`)."""
    grey = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    grey8 = ((grey * 2 + 257) // 514).astype(np.uint8)  # round(v / 257) in integers
    key = image.info.get("transparency")
    if isinstance(key, int) and not isinstance(key, bool):
        # A PNG tRNS key names one 16-bit value: pixels of exactly that value are transparent.
        alpha = np.where(grey == key, 0, 255).astype(np.uint8)
        return np.dstack([grey8, grey8, grey8, alpha])
    return np.repeat(grey8[:, :, None], 3, axis=2)


def _orientation(image: Image.Image, opened: Sequence[str] = ()) -> tuple[Image.Transpose | None, str | None]:
    """The transpose the EXIF orientation asks for, and a note when the tag is broken (then no transpose).

    ``opened``: Pillow's warnings while opening the file (:func:`_open`); a JPEG's EXIF is parsed then.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # Pillow reports damaged EXIF with UserWarnings
        try:
            exif = image.getexif()  # parsed once, here: a second parse would warn outside this block
            value = exif.get(_ORIENTATION, 1)
        except Exception as exc:  # Pillow's EXIF parser raises many types on damaged data
            return None, f"ignored its EXIF data, which cannot be read ({type(exc).__name__}: {exc})"
    if type(value) is int and value in _TRANSPOSE:
        return _TRANSPOSE[value], None
    if type(value) is int and value in (0, 1):  # 0 is "unknown", which cameras write for "as stored"
        said = [*opened, *(str(warning.message) for warning in caught)]
        if said and _ORIENTATION not in exif:
            return None, f"ignored its damaged EXIF data ({said[0]})"
        return None, None
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return None, f"ignored a broken EXIF orientation tag (value {shown}); the pixels are kept as stored"


def _rotated(image: Image.Image, method: Image.Transpose) -> Image.Image:
    # Rotated by hand rather than with ImageOps.exif_transpose, which rewrites the
    # EXIF block and fails on damaged tags that have nothing to do with orientation.
    rotated = image.transpose(method)
    for key in _ORIENTATION_KEYS:
        rotated.info.pop(key, None)
    return rotated


def upright(image: Image.Image) -> Image.Image:
    """The image rotated by its EXIF orientation; the same object when there is nothing to do.

    A broken orientation tag is ignored with a :class:`~kmq.errors.KmqWarning`.

    Parameters
    ----------
    image : PIL.Image.Image

    Returns
    -------
    PIL.Image.Image
        Rotated copies carry no EXIF or XMP, so that rotating them again changes nothing.
    """
    method, note = _orientation(image)
    if note is not None:
        warnings.warn(note, KmqWarning, stacklevel=2)
    return image if method is None else _rotated(image, method)


@functools.lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _probe() -> Image.Image:
    """A 16 x 16 x 16 grid of colours and the 256 greys: where a profile that is not sRGB moves a value."""
    steps = np.arange(0, 256, 17, dtype=np.uint8)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    greys = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    return Image.fromarray(np.concatenate([grid, greys])[None])


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, family: str, with_alpha: bool) -> tuple[str, Any]:
    """The profile's description and what converts pixels of ``family`` to sRGB.

    The second value is None for a profile that is sRGB already; for grey, a
    256-entry lookup table; for RGB and CMYK an ImageCms transform. Cached: the
    images of one batch usually carry the same few profiles.

    Raises
    ------
    ValueError
        With the reason when the profile cannot be read or does not fit the image.
    """
    from PIL import ImageCms  # LittleCMS, imported only for images that carry a profile (import kmq stays quick)

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(profile) or "").strip() or "unnamed"
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        raise ValueError(f"it cannot be read ({exc})") from None
    space = _PROFILE_SPACES.get(profile.profile.xcolor_space)
    if space != family:
        found = space or profile.profile.xcolor_space.strip()
        raise ValueError(f"{description!r} is for {found} images and this image is {family}")
    try:
        if family == "grey":
            transform = ImageCms.buildTransform(profile, _srgb(), "L", "RGB")
            ramp = Image.fromarray(np.arange(256, dtype=np.uint8)[None])
            # A neutral stays neutral in sRGB: the middle channel is the grey.
            lut = np.asarray(ImageCms.applyTransform(ramp, transform))[0, :, 1].copy()
            identity = int(np.abs(lut.astype(np.int16) - np.arange(256)).max()) <= 1
            return description, None if identity else lut
        if family == "CMYK":
            return description, ImageCms.buildTransform(profile, _srgb(), "CMYK", "RGB")
        mode = "RGBA" if with_alpha else "RGB"
        transform = ImageCms.buildTransform(profile, _srgb(), mode, mode)
        probe = _probe().convert(mode)
        moved = np.abs(np.asarray(ImageCms.applyTransform(probe, transform), np.int16) - np.asarray(probe))
        return description, None if int(moved.max()) <= 1 else transform
    except ImageCms.PyCMSError as exc:
        raise ValueError(f"{description!r} cannot be applied ({exc})") from None


def _family(mode: str) -> str:
    if mode in _GREY_MODES or mode.startswith("I;16"):
        return "grey"
    return "CMYK" if mode == "CMYK" else "RGB"


@dataclass(frozen=True)
class _Normalised:
    pixels: NDArray[np.uint8]
    grey: bool
    notes: tuple[str, ...]
    profile: str | None = None
    converted: bool = False
    colour: str | None = None


def _conversion(
    image: Image.Image, family: str, colour_management: bool
) -> tuple[str | None, Any, str | None, str | None]:
    """The profile's description, its conversion (None: keep the numbers), the ``-v`` line and a warning."""
    icc = image.info.get("icc_profile")
    # Pillow's LAB images carry its Lab identity profile, and its convert from LAB is colour-managed already.
    if not (isinstance(icc, bytes) and icc) or image.mode == "LAB":
        return None, None, None, None
    try:
        description, conversion = _transform(icc, family, family == "RGB" and _has_alpha(image))
    except ValueError as exc:
        if not colour_management:
            return None, None, None, None
        return None, None, None, f"ignored its ICC profile: {exc}; the colours are kept as stored"
    if not colour_management:
        return description, None, f"ICC profile {description!r} not applied (colour management is off)", None
    if conversion is None:
        return description, None, f"ICC profile {description!r} is sRGB: the colours are kept as stored", None
    return description, conversion, f"converted from its ICC profile {description!r} to sRGB", None


def _from_pillow(
    image: Image.Image, *, colour_management: bool = True, owned: bool = False, opened: Sequence[str] = ()
) -> _Normalised:
    # Each Pillow step below copies the image, so a step is taken only when it
    # changes something: a 12 MP photo then peaks at about 1.5x its own size.
    # ``owned``: the image is ours to change in place (load opened it); ``opened``: as _orientation's.
    notes: list[str] = []
    sixteen_bits = _is_sixteen_bit_grey(image)  # before rotating: a rotated copy has no format
    method, note = _orientation(image, opened)
    if note is not None:
        notes.append(note)
    if method is not None:
        image, owned = _rotated(image, method), True
    family = _family(image.mode)
    description, conversion, colour, note = _conversion(image, family, colour_management)
    if note is not None:
        notes.append(note)
    converted = conversion is not None
    if family == "CMYK" and converted:
        pixels = np.asarray(conversion.apply(image))
        return _Normalised(pixels, False, tuple(notes), description, converted, colour)
    if sixteen_bits:
        pixels = _sixteen_bit_grey(image)
    else:
        if image.mode == "La":  # Pillow cannot convert premultiplied La to RGB(A) directly
            image, owned = image.convert("LA"), True
        mode = "RGBA" if _has_alpha(image) else "RGB"
        if image.mode != mode:
            image, owned = image.convert(mode), True
        if family == "RGB" and converted:
            # In place when the image is a copy of ours: one 12 MP copy fewer.
            image = conversion.apply_in_place(image) if owned else conversion.apply(image)
        pixels = _array_of(image)
    if family == "grey" and converted:
        pixels = pixels if pixels.flags.writeable else pixels.copy()
        pixels[:, :, :3] = conversion[pixels[:, :, :3]]
    return _Normalised(pixels, family == "grey", tuple(notes), description, converted, colour)


#: Images of over four times this many pixels are copied out of Pillow a band of about this many at a time.
_BAND_PIXELS = 1 << 18


def _array_of(image: Image.Image) -> NDArray[np.uint8]:
    """The pixels of an RGB or RGBA image, as a new (H, W, 3|4) array.

    ``np.asarray(image)`` goes through ``tobytes()``, which joins the encoded pieces into one
    bytes object: twice the image beside Pillow's own copy at the peak (a 169 MP PNG made
    ``kmq encode`` peak at 1.70 GB, now 1.21 GB). Copying bands of a quarter of a megapixel
    needs the array and one band (0.13 s against 0.10 s for a 12 MP photo).
    """
    width, height = image.size
    if width * height <= 4 * _BAND_PIXELS:
        return np.asarray(image)
    channels = len(image.getbands())
    pixels = np.empty((height, width, channels), dtype=np.uint8)
    rows = pixels.reshape(height, width * channels)
    step = max(1, _BAND_PIXELS // width)
    for top in range(0, height, step):  # bands of rows: a few per megapixel, not a loop over pixels
        bottom = min(top + step, height)
        band = image.crop((0, top, width, bottom)).tobytes()
        rows[top:bottom] = np.frombuffer(band, dtype=np.uint8).reshape(bottom - top, width * channels)
    return pixels


def _has_alpha(image: Image.Image) -> bool:
    # A P image whose palette has alpha (Image.quantize of RGBA, or a kmq RGBA file) keeps it.
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return True
    return image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA"


def _checked(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ParameterError(f"image is empty: shape {pixels.shape}")
    if pixels.shape[2] == 4 and bool((pixels[:, :, 3] == 255).all()):
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)


def _from_array(image: Any) -> tuple[NDArray[np.uint8], bool]:
    """An array as (H, W, 3|4) pixels, and whether it was grey (2-D or one channel)."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        raise ParameterError(f"image array dtype is {pixels.dtype}, expected uint8")
    grey = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 1)
    if grey:
        plane = pixels if pixels.ndim == 2 else pixels[:, :, 0]
        return np.repeat(plane[:, :, None], 3, axis=2), True
    if pixels.ndim != 3 or pixels.shape[2] not in CHANNELS:
        raise ParameterError(f"image array shape {pixels.shape} is not (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    return pixels, False


def _frames(image: Image.Image) -> int:
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # counting walks the file; a damaged one counts as what opened
        return 1


def _seek(image: Image.Image, frame: int | None, label: str) -> str | None:
    """Move ``image`` to the 1-based ``frame`` (None: the first); a note when frames are left out."""
    count = _frames(image)
    if frame is None:
        if count > 1 and image.format not in _AUXILIARY_FRAMES:
            return f"kept frame 1 of {count} (choose with --frame N)"
        return None
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise ParameterError(f"frame must be a whole number from 1, got {frame!r}")
    if not 1 <= frame <= count:
        frames = "1 frame" if count == 1 else f"{count} frames, 1..{count}"
        raise ParameterError(f"{label}: frame {frame} is out of range: the image has {frames}")
    if frame > 1:
        image.seek(getattr(image, "_min_frame", 0) + frame - 1)  # PSD numbers its layers from 1
    return None


def as_array(image: ImageLike, *, colour_management: bool = True) -> NDArray[np.uint8]:
    """Normalise an image to an (H, W, 3) or (H, W, 4) uint8 array.

    Parameters
    ----------
    image : (H, W), (H, W, 1), (H, W, 3|4) uint8 ndarray or PIL.Image.Image
        See the module docstring for how each Pillow mode is converted. A
        Pillow image is taken at its current frame.
    colour_management : bool
        Convert a Pillow image with an embedded ICC profile to sRGB (default);
        False keeps the numbers as stored.

    Returns
    -------
    (H, W, C) uint8 ndarray
        C is 4 only if some pixel has alpha below 255.

    Warns
    -----
    KmqWarning
        For a broken EXIF orientation tag or ICC profile (each is ignored).

    Raises
    ------
    ParameterError
        If an array has the wrong dtype, shape or a zero dimension.
    ImageError
        If a Pillow image's pixels cannot be read.
    """
    if not isinstance(image, Image.Image):
        return _checked(_from_array(image)[0])
    try:
        normalised = _from_pillow(image, colour_management=colour_management)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot read image pixels: {exc}") from None
    for note in normalised.notes:
        warnings.warn(note, KmqWarning, stacklevel=2)
    return _checked(normalised.pixels)


def load(
    file: str | os.PathLike[str] | BinaryIO | ImageLike,
    *,
    name: str | None = None,
    frame: int | None = None,
    colour_management: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Loaded:
    """Read an image, normalised as the module docstring says, with notes instead of warnings.

    Parameters
    ----------
    file : path-like, binary file object, uint8 ndarray or PIL.Image.Image
        Any image file Pillow reads (a file object for images already in
        memory), or an image :func:`as_array` takes (a Pillow image at its
        current frame unless ``frame`` is given).
    name : str, optional
        What messages call the file (default: the path).
    frame : int, optional
        Which frame of an animation or page of a multi-page file, from 1
        (default: the first, with a note when a file has more).
    colour_management : bool
        Convert an embedded ICC profile to sRGB (default); False keeps the
        numbers as stored.
    max_pixels : int or None
        Refuse image files with more pixels than this, from the header, before
        any pixel is decoded; None for no limit. It stands in for Pillow's
        ``Image.MAX_IMAGE_PIXELS`` during the read only; the default is the
        point where Pillow's own check errors, as for decoding kmq files.

    Returns
    -------
    Loaded
        The pixels, the mode as stored, whether it was grey, one-line notes
        (a dropped frame, an ignored EXIF tag or ICC profile) and the profile.

    Raises
    ------
    ImageError
        If the file is missing, not an image, truncated, or over Pillow's
        decompression-bomb limit.
    ParameterError
        If ``frame`` is not one of the image's frames, or an array is not an image.
    """
    if isinstance(file, np.ndarray):
        pixels, grey = _from_array(file)
        return Loaded(_checked(pixels), "L" if grey else mode_name(pixels.shape[2]), grey)
    if isinstance(file, Image.Image):
        label = name if name is not None else "image"
        with _pillow_errors(label):
            if frame is not None:
                _seek(file, frame, label)
            normalised = _from_pillow(file, colour_management=colour_management)
        source_mode, frame_note = file.mode, None
    else:
        label = name if name is not None else str(file if hasattr(file, "read") else Path(file))
        with _pillow_errors(label):
            # A path is read through files.read_input, which refuses FIFOs and devices and reads to a bound.
            source = file if hasattr(file, "read") else io.BytesIO(files.read_input(file))
        with _pillow_errors(label), _pixel_limit(max_pixels), _open(source) as (image, opened):
            _check_pixels(image, label, max_pixels)
            memory.check(image.width, image.height, memory.ENCODE_BYTES_PER_PIXEL, label)  # before Pillow's copy
            frame_note = _seek(image, frame, label)
            image.load()
            source_mode = image.mode
            normalised = _from_pillow(image, colour_management=colour_management, owned=True, opened=opened)
    notes = normalised.notes if frame_note is None else (frame_note, *normalised.notes)
    return Loaded(
        _checked(normalised.pixels),
        source_mode,
        normalised.grey,
        notes,
        normalised.profile,
        normalised.converted,
        normalised.colour,
    )


def load_image(
    file: str | os.PathLike[str] | BinaryIO,
    *,
    name: str | None = None,
    frame: int | None = None,
    colour_management: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> NDArray[np.uint8]:
    """Read an image file with Pillow and normalise it; :func:`load`'s notes become warnings.

    Parameters
    ----------
    file : path-like or binary file object
        Any image file Pillow reads (a file object for images already in memory).
    name : str, optional
        What error messages call the file (default: the path).
    frame : int, optional
        Which frame, from 1 (default: the first).
    colour_management : bool
        Convert an embedded ICC profile to sRGB (default).
    max_pixels : int or None
        Refuse images with more pixels than this, from the header, before
        any pixel is decoded; None for no limit. It stands in for Pillow's
        ``Image.MAX_IMAGE_PIXELS`` during the read only; the default is the
        point where Pillow's own check errors, as for decoding kmq files.

    Returns
    -------
    (H, W, 3|4) uint8 ndarray

    Warns
    -----
    KmqWarning
        One per note of :func:`load`.

    Raises
    ------
    PixelLimitError
        If the image has more than ``max_pixels`` pixels.
    ImageError
        If the file is missing, not an image, truncated, or over Pillow's
        decompression-bomb limit.
    ParameterError
        If ``frame`` is not one of the image's frames.
    """
    loaded = load(file, name=name, frame=frame, colour_management=colour_management, max_pixels=max_pixels)
    for note in loaded.notes:
        warnings.warn(note, KmqWarning, stacklevel=2)
    return loaded.pixels


def identify(
    file: str | os.PathLike[str] | BinaryIO, *, name: str | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> str:
    """The Pillow format of an image file, from its header alone (nothing is decoded).

    Parameters
    ----------
    file : path-like or binary file object
        A file (a path is opened with :func:`kmq.files.open_input`).
    name : str, optional
        What error messages call the file (default: the path).
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
    if not hasattr(file, "read"):
        with _pillow_errors(str(file)), files.open_input(file) as source:
            return identify(source.file, name=source.name, max_pixels=max_pixels)
    label = name if name is not None else str(file)
    with _pillow_errors(label), _pixel_limit(max_pixels), _open(file) as (image, _):
        _check_pixels(image, label, max_pixels)
        return str(image.format)


@contextlib.contextmanager
def _open(source: str | os.PathLike[str] | BinaryIO) -> Iterator[tuple[Image.Image, list[str]]]:
    """``Image.open``, and the UserWarnings Pillow gave meanwhile (damaged JPEG EXIF), kept for a note, not printed.

    Other warnings (Pillow's deprecations, the decompression-bomb warning) are passed on as they came.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        image = Image.open(source)
    said = [str(warning.message) for warning in caught if warning.category is UserWarning]
    for warning in caught:
        if warning.category is not UserWarning:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    with image:
        yield image, said


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
#: decoding to .webp keeps every pixel, as it does for .png; quality 100 is
#: libwebp's most effort at its default method 4: about 1 % smaller on Kodak at
#: K=16 and 256, at the same speed (method 5 or 6 took 3-10 times as long for 2-5 %).
SAVE_OPTIONS: dict[str, dict[str, Any]] = {"WEBP": {"lossless": True, "exact": True, "quality": 100}}

# 2 x 2 pixels with four different alpha values: enough to tell whether a
# format keeps partial alpha.
_PROBE = np.array([[[0, 64, 128, 0], [255, 1, 2, 90]], [[3, 4, 5, 180], [6, 7, 8, 255]]], dtype=np.uint8)

# 8 x 8 pixels of noise: no lossy coder gives them back exactly. As labels into 5 colours, the
# same noise tells whether a format's writer keeps a palette image's colours.
# A multiplicative hash, not numpy.random: importing that costs `import kmq` about 14 ms.
_NOISE = (
    ((np.arange(8 * 8 * 3, dtype=np.uint32) * np.uint32(2654435761)) >> np.uint32(24)).astype(np.uint8).reshape(8, 8, 3)
)

#: Formats whose palette has one fully transparent entry and no partial alpha.
_ONE_TRANSPARENT_INDEX = frozenset({"GIF"})

#: Largest width or height a GIF holds (its fields are 16 bits).
_GIF_MAX_SIDE = 0xFFFF


def output_format(path: str | os.PathLike[str], channels: int = 3) -> str:
    """The Pillow format for an output path's extension, checked to work before any real work is done.

    A tiny image of the right mode is saved (and, for RGBA, read back) in
    memory, so that formats Pillow knows but cannot write here, or that would
    silently drop the alpha channel, are refused up front. GIF is accepted for
    RGBA: it keeps images whose alpha is only 0 and 255, and
    :func:`save_indexed` refuses the others.

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
    _check_writes(fmt, channels, ext)
    return fmt


def _round_trip(image: Image.Image, fmt: str) -> NDArray[np.uint8] | None:
    """``image`` saved as ``fmt`` and read back, in its own mode's channels; None if it cannot be read back.

    Raises whatever Pillow's writer raises when it cannot write the image.
    """
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
    try:
        with Image.open(buffer) as back:
            return np.asarray(back.convert("RGBA" if image.mode == "RGBA" else "RGB"))
    except Exception:  # a format Pillow writes but cannot read (PDF, ...)
        return None


@functools.lru_cache(maxsize=64)
def _check_writes(fmt: str, channels: int, ext: str = "") -> None:
    """Refuse a format whose writer cannot take the mode, or would lose partial alpha."""
    where = f"{fmt} ({ext})" if ext else fmt
    probe = _PROBE if channels == 4 else _PROBE[:, :, :3]
    try:
        back = _round_trip(Image.fromarray(probe), fmt)
    except Exception as exc:  # Pillow's writers raise many types; all mean "cannot"
        raise ParameterError(f"cannot write {mode_name(channels)} images as {fmt}: {exc}") from None
    if channels == 3 or fmt in _ONE_TRANSPARENT_INDEX:
        return
    if back is None or not np.array_equal(back[:, :, 3], _PROBE[:, :, 3]):
        raise ParameterError(f"{where} cannot keep the alpha channel of this RGBA image; use .png or .webp")


@functools.lru_cache(maxsize=64)
def is_lossy(fmt: str) -> bool:
    """Whether a format, written as :func:`save_image` writes it, changes colours (JPEG, AVIF, ...).

    A small noise image is saved and read back in memory; a format that cannot
    be read back counts as lossy, as nothing shows that it is not.

    Parameters
    ----------
    fmt : str
        Pillow format name, as returned by :func:`output_format`.

    Returns
    -------
    bool
    """
    try:
        back = _round_trip(Image.fromarray(_NOISE), fmt)
    except Exception:
        return True
    return back is None or not np.array_equal(back, _NOISE)


@functools.lru_cache(maxsize=64)
def _keeps_palette(fmt: str) -> bool:
    """Whether Pillow writes a mode P image (RGB palette) as ``fmt`` and reads its colours back exactly."""
    palette = _NOISE.reshape(-1, 3)[:5]
    probe = Image.fromarray((_NOISE[:, :, 0] % 5).astype(np.uint8))
    probe.putpalette(palette.tobytes())
    try:
        back = _round_trip(probe, fmt)
    except Exception:
        return False
    return back is not None and np.array_equal(back, palette[_NOISE[:, :, 0] % 5])


@contextlib.contextmanager
def _writer_errors(fmt: str) -> Iterator[None]:
    """Pillow's complaints about an image, as :class:`ImageError`; a disk error goes to the caller as it is."""
    try:
        yield
    except (KeyError, ValueError, OSError, struct.error) as exc:
        if isinstance(exc, KmqError) or (isinstance(exc, OSError) and exc.errno is not None):
            raise  # a disk error, not an image error: the caller names the file
        raise ImageError(f"cannot write {fmt}: {exc}") from None


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
    with _writer_errors(fmt):
        image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
        image.save(file, format=fmt, **SAVE_OPTIONS.get(fmt, {}))


def save_indexed(file: str | os.PathLike[str] | BinaryIO, indexed: Indexed, fmt: str) -> None:
    """Write a palette and labels as the smallest exact image the format allows.

    - PNG: a palette PNG of 1, 2, 4 or 8 bits per pixel, alpha in a tRNS
      chunk, every row unfiltered and deflated at level 9 (see :func:`png_bytes`);
    - GIF: the palette, with the fully transparent entries as its one
      transparent index; partial alpha is refused;
    - WebP: lossless and exact (libwebp finds the palette itself);
    - other formats: a palette image where Pillow writes one that reads
      back exactly (TIFF, BMP, ... for RGB palettes), else the full-colour pixels.

    The pixels read back equal ``indexed.to_array()``, except in lossy formats
    (:func:`is_lossy`) and under GIF's transparent index, whose colour is the
    first fully transparent entry's.

    Parameters
    ----------
    file : path-like or binary file object
        Destination.
    indexed : Indexed
        The image.
    fmt : str
        Pillow format name, as returned by :func:`output_format`.

    Raises
    ------
    ParameterError
        If the format cannot hold the image's alpha.
    ImageError
        If the format cannot hold the image (e.g. a GIF side over 65535 pixels).
    """
    _check_writes(fmt, indexed.channels)
    with _writer_errors(fmt):
        if fmt == "PNG":
            data = png_bytes(indexed)
            if isinstance(file, str | os.PathLike):
                Path(file).write_bytes(data)
            else:
                file.write(data)
        elif fmt in _ONE_TRANSPARENT_INDEX:
            image, options = _one_transparent_index(indexed, fmt)
            # Not interlaced: Pillow's default interlacing measured 2-7 % larger on Kodak.
            image.save(file, format=fmt, optimize=True, interlace=False, **options)
        elif indexed.channels == 3 and _keeps_palette(fmt):
            indexed.to_pillow().save(file, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
        else:
            Image.fromarray(indexed.to_array()).save(file, format=fmt, **SAVE_OPTIONS.get(fmt, {}))


def _one_transparent_index(indexed: Indexed, fmt: str) -> tuple[Image.Image, dict[str, Any]]:
    """A GIF's palette image and save options: fully transparent entries merged into one transparent index."""
    if max(indexed.width, indexed.height) > _GIF_MAX_SIDE:
        raise ImageError(
            f"{fmt} holds at most {_GIF_MAX_SIDE} pixels a side; this image is {indexed.width}x{indexed.height}; "
            "use .png or .webp"
        )
    palette, labels = indexed.palette, indexed.labels
    options: dict[str, Any] = {}
    if indexed.channels == 4:
        alpha = palette[:, 3]
        partial = (alpha > 0) & (alpha < 255)
        if partial.any():
            raise ParameterError(
                f"{fmt} keeps only opaque and fully transparent pixels, and {int(partial.sum())} of this image's "
                f"{indexed.k} palette entries have partial alpha (e.g. {int(alpha[partial][0])}); use .png or .webp"
            )
        clear = alpha == 0
        if clear.any():
            # Every fully transparent entry becomes the first one (their hidden colours
            # show nowhere), and the entries that empties are dropped, so the palette stays small.
            first = int(np.argmax(clear))
            keep = ~clear
            keep[first] = True
            renumber = np.cumsum(keep).astype(np.uint8) - 1
            renumber[clear] = renumber[first]
            palette, labels = palette[keep], renumber[labels]
            options["transparency"] = int(renumber[first])
    image = Image.fromarray(labels)
    image.putpalette(np.ascontiguousarray(palette[:, :3]).tobytes())
    return image, options


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_SIDE = 2**31 - 1
#: zlib's memLevel also sets how many symbols one deflate block holds (2**(memLevel + 6)): smaller
#: blocks fit their Huffman codes to each part of the image. On Kodak at K = 8..256, 6 was the
#: smallest of 4..9 on every image (libpng's 8 is 0.2-1.2 % larger, pngquant's 5 0.1-0.8 %).
_PNG_MEM_LEVEL = 6
#: Rows are deflated in bands of about this many bytes, each on its own thread and primed with the
#: 32 KiB before it (as pigz does), so that level 9 stays affordable on large images. The bands
#: depend on the image alone, never on the thread count: the same image gives the same bytes anywhere.
#: A band is this many bytes of scanlines or of labels, whichever is more: at 1 bit per pixel a band
#: of 4 MiB of scanlines would unpack 32 MiB of labels per thread (a 179 MP two-colour image decoded
#: to PNG peaked 153 MiB above its labels; now 17 MiB).
_PNG_BAND_BYTES = 1 << 22
_DEFLATE_WINDOW = 1 << 15
_ADLER_BASE = 65521


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(indexed: Indexed) -> bytes:
    """A palette PNG of an indexed image, as small as zlib makes it.

    The label width is the smallest PNG depth that holds K (1, 2, 4 or 8
    bits); entries with alpha below 255 are put first, so that the tRNS chunk
    ends at the last of them (as pngquant does). Every row has filter type 0
    (none), as the PNG specification recommends for palette images: a
    filter's differences of indices mean nothing (Pillow's own PNG writer
    filters rows of 1, 2 and 4 bits, which measured 4-20 % larger at K <= 16
    on Kodak). Deflate runs at level 9 with ``memLevel`` 6. Measured with
    ``benchmarks/bench_outputs.py`` on the 24 Kodak images at K = 8, 16, 64 and
    256, the result is 0.43-0.52 times the size of the full-colour PNG kmq
    wrote before, and 0.2-1.1 % smaller than pngquant's PNG of the same pixels
    on every image. Large images are deflated in bands of 4 MiB on several
    threads (``_PNG_BAND_BYTES``): on the 12 MP photo at K=64, 1.9 s on 2
    threads (3.8 s on one) for 2,415,153 bytes, against pngquant's 7.6 s for
    2,432,347 bytes of the same pixels.

    Parameters
    ----------
    indexed : Indexed

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ImageError
        If a side is over PNG's 2**31 - 1 pixels.
    """
    palette, labels = indexed.palette, indexed.labels
    height, width = labels.shape
    if max(width, height) > _PNG_MAX_SIDE:
        raise ImageError(f"PNG holds at most {_PNG_MAX_SIDE} pixels a side; this image is {width}x{height}")
    transparency = b""
    if indexed.channels == 4:
        alpha = palette[:, 3]
        translucent = int(np.count_nonzero(alpha < 255))
        if translucent:
            order = np.argsort(alpha == 255, kind="stable")
            renumber = np.empty(indexed.k, dtype=np.uint8)
            renumber[order] = np.arange(indexed.k, dtype=np.uint8)
            palette, labels = palette[order], renumber[labels]
            transparency = palette[:translucent, 3].tobytes()
    bits = next(depth for depth in (1, 2, 4, 8) if indexed.k <= 1 << depth)
    header = struct.pack(">IIBBBBB", width, height, bits, 3, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header), _png_chunk(b"PLTE", np.ascontiguousarray(palette[:, :3]).tobytes())]
    if transparency:
        chunks.append(_png_chunk(b"tRNS", transparency))
    chunks += [_png_chunk(b"IDAT", _deflate_rows(labels, bits)), _png_chunk(b"IEND", b"")]
    return _PNG_SIGNATURE + b"".join(chunks)


def _png_rows(labels: NDArray[np.uint8], bits: int) -> bytes:
    """Rows of labels as PNG scanlines: filter type 0, then the labels packed big-endian at ``bits``."""
    rows, width = labels.shape
    per_byte = 8 // bits
    stride = -(-width // per_byte)
    lines = np.zeros((rows, 1 + stride), dtype=np.uint8)  # column 0: filter type 0
    if bits == 8:
        lines[:, 1:] = labels
    else:
        padded = np.zeros((rows, stride * per_byte), dtype=np.uint8)
        padded[:, :width] = labels
        # Rows padded to whole bytes are one continuous big-endian bitstream, as PNG packs them.
        lines[:, 1:] = np.frombuffer(bitpack.pack(padded, bits), dtype=np.uint8).reshape(rows, stride)
    return lines.tobytes()


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of A + B from those of A and of B, and B's length (zlib's adler32_combine)."""
    s1a, s2a = first & 0xFFFF, first >> 16
    s1b, s2b = second & 0xFFFF, second >> 16
    s1 = (s1a + s1b - 1) % _ADLER_BASE
    s2 = (s2a + s2b + second_length * (s1a - 1)) % _ADLER_BASE
    return (s2 << 16) | s1


def _deflate_rows(labels: NDArray[np.uint8], bits: int) -> bytes:
    """The zlib stream of a PNG's scanlines, deflated at level 9 band by band (see ``_PNG_BAND_BYTES``)."""
    height, width = labels.shape
    line = 1 + -(-width * bits // 8)
    rows = max(1, _PNG_BAND_BYTES // max(line, width))
    bands = [(top, min(top + rows, height)) for top in range(0, height, rows)]
    primer_rows = -(-_DEFLATE_WINDOW // line)

    def band(index: int) -> tuple[bytes, int, int]:
        top, stop = bands[index]
        data = _png_rows(labels[top:stop], bits)
        options: dict[str, Any] = {}
        if index:
            options["zdict"] = _png_rows(labels[max(0, top - primer_rows) : top], bits)[-_DEFLATE_WINDOW:]
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, _PNG_MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, **options)
        # A sync flush ends a band on a byte boundary, so the next band's deflate data can follow it.
        end = zlib.Z_FINISH if index == len(bands) - 1 else zlib.Z_SYNC_FLUSH
        return compressor.compress(data) + compressor.flush(end), zlib.adler32(data), len(data)

    workers = min(threads.available(), len(bands))
    if workers == 1:
        parts = [band(index) for index in range(len(bands))]
    else:
        from concurrent.futures import ThreadPoolExecutor  # only large images: `import kmq` stays light

        with ThreadPoolExecutor(max_workers=workers) as pool:  # zlib releases the GIL
            parts = list(pool.map(band, range(len(bands))))
    checksum = 1
    for _, adler, length in parts:
        checksum = _adler32_combine(checksum, adler, length)
    # 0x78 0xda: deflate with a 32 KiB window at maximum compression, as zlib writes it for level 9.
    return b"\x78\xda" + b"".join(part for part, _, _ in parts) + struct.pack(">I", checksum)
