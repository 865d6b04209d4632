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
import struct
import warnings
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from . import bitpack, threads
from .container import CHANNELS, mode_name
from .errors import ImageError, KmqError, ParameterError
from .indexed import Indexed

__all__ = [
    "ImageLike",
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


def load_image(file: str | os.PathLike[str] | BinaryIO, *, name: str | None = None) -> NDArray[np.uint8]:
    """Read an image file with Pillow and normalise it with :func:`as_array`.

    Parameters
    ----------
    file : path-like or binary file object
        Any image file Pillow reads (a file object for images already in memory).
    name : str, optional
        What error messages call the file (default: the path).

    Returns
    -------
    (H, W, 3|4) uint8 ndarray

    Raises
    ------
    ImageError
        If the file is missing, not an image, truncated, or over Pillow's
        decompression-bomb limit.
    """
    source = file if hasattr(file, "read") else Path(file)  # type: ignore[arg-type]
    with _pillow_errors(name if name is not None else str(source)), Image.open(source) as image:
        image.load()
        return as_array(image)


def identify(path: str | os.PathLike[str]) -> str:
    """The Pillow format of an image file, from its header alone (nothing is decoded).

    Parameters
    ----------
    path : path-like
        A file.

    Returns
    -------
    str
        Pillow's format name, e.g. ``"PNG"``.

    Raises
    ------
    ImageError
        As :func:`load_image`, for what the header shows.
    """
    with _pillow_errors(str(path)), Image.open(path) as image:
        return str(image.format)


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
_NOISE = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)

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
    rows = max(1, _PNG_BAND_BYTES // line)
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
        with ThreadPoolExecutor(max_workers=workers) as pool:  # zlib releases the GIL
            parts = list(pool.map(band, range(len(bands))))
    checksum = 1
    for _, adler, length in parts:
        checksum = _adler32_combine(checksum, adler, length)
    # 0x78 0xda: deflate with a 32 KiB window at maximum compression, as zlib writes it for level 9.
    return b"\x78\xda" + b"".join(part for part, _, _ in parts) + struct.pack(">I", checksum)
