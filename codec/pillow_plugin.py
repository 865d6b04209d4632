"""Pillow plugin: ``Image.open`` reads .kmq files and ``Image.save`` writes them.

``import kmq`` registers the plugin (:func:`register_pillow`, as pillow-heif's
``register_heif_opener()`` does); then::

    from PIL import Image
    import kmq

    with Image.open("photo.kmq") as im:         # mode "P", palette RGB or RGBA
        rgb = im.convert("RGB")                 # == kmq.decode(data), byte for byte
    Image.open("photo.jpg").save("photo.kmq", colors=16, coding="raw")

Reading
-------
``Image.open`` reads and validates the 20-byte header only (``kmq.container.Header``):
the image is mode ``"P"`` of the header's size, its palette mode ``"RGB"`` or
``"RGBA"`` as the file's channels, so ``convert("RGB")`` (3-channel files) or
``convert("RGBA")`` (4-channel files) gives exactly ``kmq.decode(data)``. The
palette and the labels are read on ``load()``, by the ``"kmq"`` decoder, which
reads at most the length the header allows plus one byte, in blocks, and checks
the whole file as :func:`kmq.decode` does (checksum included).

- A file that is not kmq, or whose header is truncated or breaks the spec, is
  not identified: ``Image.open`` raises ``PIL.UnidentifiedImageError``.
- The pixel limit is Pillow's: ``Image.open`` raises Pillow's
  ``DecompressionBombWarning`` / ``DecompressionBombError`` for a declared size
  over ``Image.MAX_IMAGE_PIXELS`` / twice it, as for any format, and the kmq
  decoder then runs with ``max_pixels=None``.
- A good header with a broken body (truncated, checksum mismatch, bad payload)
  makes ``load()`` raise ``OSError``, as Pillow's PNG plugin does; its
  ``__cause__`` is the :class:`kmq.KmqError` (e.g. :class:`kmq.ChecksumError`)
  whose message it repeats. With ``ImageFile.LOAD_TRUNCATED_IMAGES = True``
  the image loads instead, as a truncated PNG does: a file that only fails its
  checksum is decoded as it stands; otherwise what is present is kept (the
  palette entries, the complete labels of coding 0, the complete stripes of
  codings 1 and 2) and the rest is label 0.

``im.info`` holds two keys: ``"coding"`` (``"raw"``, ``"ctx1"`` or ``"mix"``, the file's
payload coding) and ``"k"`` (int, the number of palette entries). Neither is
used when saving.

Saving
------
``im.save("x.kmq", ...)`` or ``im.save(file, format="KMQ", ...)`` takes these
options (as :func:`kmq.quantize` and :func:`kmq.encode`; other options are
ignored, as Pillow's plugins ignore options they do not know):

========== ================================================================
colors     palette size 1..256, or ``"auto"`` with ``min_psnr``; default 8,
           except for mode ``"P"`` images (below)
min_psnr   quality target in dB, only with ``colors="auto"``
seed       k-means++ seed, 0..2**32 - 1; default 0
coding     ``"mix"`` or 2 (default; ctx1 or raw where smaller), ``"ctx1"`` or 1, ``"raw"`` or 0
dither     as :func:`kmq.quantize`: True (or ``Image.Dither.FLOYDSTEINBERG``) or a
           strength 0-1 for error diffusion, ``"ordered"`` (or ``Image.Dither.ORDERED``);
           default False (or ``Image.Dither.NONE``)
space      ``"perceptual"`` (default), ``"rgb"`` or ``"oklab"``: where to cluster
========== ================================================================

Any mode :func:`kmq.images.as_array` accepts can be saved (every Pillow mode),
normalised as it says (so a P image whose palette has an alpha channel, from
``Image.quantize`` of an RGBA image or a 4-channel kmq file, keeps its alpha,
and saving it equals ``kmq.encode`` of the same image). A bad option value raises
:class:`kmq.ParameterError` (a ``ValueError``) whose message names the option.

A mode ``"P"`` image saved without ``colors`` keeps its own palette, losslessly:
the labels are its palette indices and the kmq palette its used entries, in
index order, with unused entries dropped and the indices renumbered to match.
K is then the number of indices used, duplicate colours under different
indices stay separate entries, every pixel is exact (in the colours described
above), and a file kmq wrote, opened and saved again with the same coding,
gives the same bytes. ``seed``, ``dither`` and ``space`` are then checked but have no effect.
With ``colors`` the image is quantized like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Literal, cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, ImagePalette

from . import bitpack, container, ctx1
from .colour import DEFAULT_SPACE, Space
from .container import CODING_RAW, CODINGS, DEFAULT_CODING, HEADER, Header
from .errors import KmqError, ParameterError
from .files import read_at_most
from .images import KMQ_FORMAT, as_array, upright
from .indexed import Indexed
from .quantize import DEFAULT_K, Options, check_options, compact, quantize

__all__ = ["FORMAT", "EXTENSION", "MIME_TYPE", "register_pillow", "KmqImageFile", "KmqDecoder"]

#: Pillow's format identifier, as in ``im.save(f, format="KMQ")`` and ``im.format``.
FORMAT = KMQ_FORMAT
#: The file extension registered for the format.
EXTENSION = ".kmq"
#: The media type registered in ``Image.MIME`` (an unregistered ``x-`` type: spec/FORMAT.md registers none).
MIME_TYPE = "image/x-kmq"
#: Name of the decoder in Pillow's registry.
_DECODER = "kmq"


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.MAGIC)


class KmqImageFile(ImageFile.ImageFile):
    """A kmq file opened by Pillow: mode ``"P"``, decoded on ``load()`` (see the module docstring)."""

    format = FORMAT
    format_description = "kmq K-means quantized image"

    def _open(self) -> None:
        assert self.fp is not None
        head = self.fp.read(HEADER.size)
        try:
            # No pixel limit here: Image.open applies Pillow's own right after _open.
            header = Header.unpack(head, max_pixels=None)
        except KmqError as exc:
            # SyntaxError is how a plugin says "not mine": Image.open moves on to
            # the other formats, then raises UnidentifiedImageError.
            msg = f"not a valid kmq header: {exc}"
            raise SyntaxError(msg) from exc
        self._header = bytes(head)
        self._mode = "P"
        self._size = (header.width, header.height)
        # The colours come with the pixels on load(); until then only the palette's mode is known.
        self.palette = ImagePalette.ImagePalette(header.mode)
        self.info["coding"] = CODINGS[header.coding]
        self.info["k"] = header.k
        # The checksum covers the header, so the decoder reads the file from offset 0.
        self.tile = [ImageFile._Tile(_DECODER, (0, 0, *self._size), 0, (bytes(head),))]

    def verify(self) -> None:
        """Check the whole file (checksum and every label) without keeping the pixels.

        As Pillow's ``verify``: nothing is loaded, the file cannot be used
        afterwards (reopen it to load), and a broken file raises
        ``SyntaxError``, as PNG's checksum check does.
        """
        if self.fp is None:
            msg = "verify must be called directly after open"
            raise RuntimeError(msg)
        header = Header.unpack(self._header, max_pixels=None)
        self.fp.seek(0)
        data = read_at_most(self.fp, header.max_file_size + 1)
        try:
            container.loads(data, max_pixels=None)
        except KmqError as exc:
            msg = f"broken kmq file: {exc}"
            raise SyntaxError(msg) from exc
        super().verify()  # closes the file, as for every format

    def load_end(self) -> None:
        """Refresh the Python-side palette from the one the decoder put in the image."""
        mode = self.im.getpalettemode()
        self.palette = ImagePalette.ImagePalette(mode, self.im.getpalette(mode, mode))


class KmqDecoder(ImageFile.PyDecoder):
    """Reads a whole kmq file from offset 0 and sets the image's palette and labels.

    The tile's one argument is the 20 header bytes that ``_open`` validated.
    """

    _pulls_fd = True

    def decode(self, buffer: Image.DecoderInput) -> tuple[int, int]:
        """Decode the file; ``buffer`` is unused (the decoder pulls from the file itself).

        Returns
        -------
        (int, int)
            ``(-1, 0)``: done, no error.

        Raises
        ------
        OSError
            If the file is not a valid kmq file (unless
            ``ImageFile.LOAD_TRUNCATED_IMAGES`` is set) or its header changed
            since it was opened; the :class:`kmq.KmqError` is the cause.
        """
        assert self.fd is not None and self.im is not None
        expected = self.args[0]
        header = Header.unpack(expected, max_pixels=None)
        # Never more than the header allows, plus one byte to tell "trailing bytes".
        data = read_at_most(self.fd, header.max_file_size + 1)
        if data[: HEADER.size] != expected:
            msg = "kmq file changed since it was opened: its header differs"
            raise OSError(msg)
        try:
            # Pillow's decompression-bomb check already ruled on the size in Image.open.
            _, palette, labels = container.loads(data, max_pixels=None)
        except KmqError as exc:
            if not ImageFile.LOAD_TRUNCATED_IMAGES:
                msg = f"broken kmq file: {exc}"
                raise OSError(msg) from exc
            palette, labels = _salvage(memoryview(data), header)
        mode = header.mode
        self.im.putpalette(mode, mode, palette.tobytes())
        self.set_as_raw(labels.tobytes(), "P")
        return -1, 0


def _salvage(data: memoryview, header: Header) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Palette and labels of a broken file, for ``LOAD_TRUNCATED_IMAGES``: what is present, the rest 0."""
    try:
        _, palette, labels = container.loads(data, max_pixels=None, verify_checksum=False)
        return palette, labels
    except KmqError:
        pass
    palette = np.zeros(header.palette_size, dtype=np.uint8)
    present = np.frombuffer(data[HEADER.size : HEADER.size + header.palette_size], dtype=np.uint8)
    palette[: present.size] = present
    whole_palette = palette.reshape(header.k, header.channels)
    labels = np.zeros((header.height, header.width), dtype=np.uint8)
    # All that follows the palette: a truncated file has lost its checksum, and
    # in a complete one the checksum lies past the labels decoded here.
    payload = data[HEADER.size + header.palette_size :]
    if header.coding == CODING_RAW:
        if header.bits:
            count = min(header.pixels, len(payload) * 8 // header.bits)
            # The last byte kept may also hold the first bits of a label that was cut
            # off (or, in a damaged file, bad padding): clear them so that only whole labels are read.
            whole = bytearray(payload[: bitpack.packed_size(count, header.bits)])
            if whole:
                whole[-1] &= (0xFF << (len(whole) * 8 - count * header.bits)) & 0xFF
            flat = labels.reshape(-1)
            flat[:count] = bitpack.unpack(whole, count, header.bits)
            flat[flat >= header.k] = 0
    else:
        try:
            spans = ctx1.stripe_table(payload, header.width, header.height)
        except KmqError:
            spans = []
        rows = ctx1.stripe_rows(header.height, len(spans)) if spans else []
        # Stripes are coded independently: each complete one decodes on its own.
        for (low, high), (start, stop) in zip(spans, rows, strict=True):
            if high > len(payload):
                break
            try:
                stripe = container.decode_striped(
                    header.coding, payload[low:high], [(0, high - low)], header.width, stop - start, whole_palette
                )
            except KmqError:
                break
            labels[start:stop] = stripe
    return whole_palette, labels


@dataclass(frozen=True)
class _Options:
    """The save options, checked."""

    quantizer: Options
    """What :func:`kmq.quantize` gets (``colors=None`` is the default K)."""
    own_palette: bool
    """No ``colors`` given: a mode "P" image keeps its own palette."""
    coding: int


def _check_options(info: dict[str, object]) -> _Options:
    """Check every save option under its own name, before any work is done."""

    def bad(name: str, requirement: str) -> ParameterError:
        return ParameterError(f"KMQ save option {name} must be {requirement}, got {info[name]!r}")

    colors = info.get("colors")
    min_psnr = info.get("min_psnr")
    seed = info.get("seed", 0)
    space = info.get("space", DEFAULT_SPACE)
    dither = info.get("dither", False)
    # Pillow's Dither is an IntEnum (ORDERED == 1 == True), so test its type before bool.
    pillow_dithers = {Image.Dither.NONE: False, Image.Dither.FLOYDSTEINBERG: True, Image.Dither.ORDERED: "ordered"}
    if isinstance(dither, Image.Dither):
        if dither not in pillow_dithers:
            raise bad("dither", "True, False, a strength 0-1, 'ordered' or Image.Dither.NONE/FLOYDSTEINBERG/ORDERED")
        dither = pillow_dithers[dither]
    # colors=None means "the default K", or "the P image's own palette": both valid.
    k = DEFAULT_K if colors is None else colors
    check_options(k, seed, space, min_psnr, dither, names={"k": "colors"}, prefix="KMQ save option ")
    coding = info.get("coding", DEFAULT_CODING)
    if not isinstance(coding, int | str):
        raise bad("coding", " or ".join(repr(name) for name in CODINGS.values()))
    try:
        number = container.coding_number(coding)
    except ParameterError:
        raise bad("coding", " or ".join(repr(name) for name in CODINGS.values())) from None
    quantizer = Options(
        cast('int | Literal["auto"]', k),
        cast(int, seed),
        cast(Space, space),
        cast('bool | float | Literal["ordered"]', dither),
        cast("float | None", min_psnr),
    )
    return _Options(quantizer, colors is None, number)


def _palette_image(image: Image.Image) -> Indexed:
    """A mode "P" image as it stands: its indices, its used palette entries (see the module docstring)."""
    image = upright(image)  # as as_array does, so that indices and colours stay aligned
    # The colours as kmq.encode sees them (transparency; opaque RGBA becomes RGB):
    # every pixel of one index has one colour, so a scatter finds each.
    pixels = as_array(image)
    indices = np.asarray(image, dtype=np.uint8)
    table = np.zeros((256, pixels.shape[2]), dtype=np.uint8)
    table[indices.reshape(-1)] = pixels.reshape(-1, pixels.shape[2])
    return Indexed(*compact(table, indices))


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    options = _check_options(im.encoderinfo)
    own = options.own_palette and im.mode == "P"
    indexed = _palette_image(im) if own else quantize(im, options=options.quantizer)
    # Encoded whole before the first byte is written: a failure leaves the file empty.
    fp.write(indexed.to_bytes(options.coding))


def register_pillow() -> None:
    """Register the kmq format with Pillow: open, save, the ``.kmq`` extension and the ``image/x-kmq`` type.

    ``import kmq`` calls it; calling it again is harmless (each registry is keyed by the format name).
    """
    Image.register_open(FORMAT, KmqImageFile, _accept)
    Image.register_decoder(_DECODER, KmqDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME_TYPE)
