"""The kmq container: header, palette, payload and CRC-32 (``spec/FORMAT.md``).

The header layout is defined once, in :data:`HEADER_FIELDS`; the
:class:`struct.Struct`, the :class:`Header` dataclass and the table in the spec
all follow it, and ``tests/test_spec.py`` checks that they agree.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import bitpack, ctx1, memory, mix
from .errors import ChecksumError, FormatError, ParameterError, PixelLimitError, TruncatedError

__all__ = [
    "MAGIC",
    "VERSION",
    "CODING_RAW",
    "CODING_CTX1",
    "CODING_MIX",
    "STRIPED_CODINGS",
    "decode_striped",
    "decode_striped_pixels",
    "fallback_note",
    "CODINGS",
    "DEFAULT_CODING",
    "coding_number",
    "mode_name",
    "as_bytes_view",
    "CHANNELS",
    "MAX_K",
    "MAX_DIMENSION",
    "DEFAULT_MAX_PIXELS",
    "HEADER_FIELDS",
    "HEADER",
    "CHECKSUM",
    "Header",
    "Serialised",
    "serialise",
    "dumps",
    "loads",
    "read_stripe_count",
]

#: First four bytes of every kmq file. The high-bit first byte catches 7-bit
#: transports and text-mode mangling, as PNG's ``\x89`` does.
MAGIC = b"\x89KMQ"
#: The only version this library reads and writes.
VERSION = 1
#: Payload coding 0: fixed-width big-endian bit packing.
CODING_RAW = 0
#: Payload coding 1: context-modelled labels under a binary range coder (:mod:`kmq.ctx1`).
CODING_CTX1 = 1
#: Payload coding 2: context mixing with a match model (:mod:`kmq.mix`).
CODING_MIX = 2
#: Payload codings this version defines, by value; every other value is reserved.
CODINGS: dict[int, str] = {CODING_RAW: "raw", CODING_CTX1: "ctx1", CODING_MIX: "mix"}
#: The codings whose payload is a stripe table and streams (spec section 5.1).
STRIPED_CODINGS = frozenset({CODING_CTX1, CODING_MIX})
#: What kmq writes unless told otherwise: mix, falling back to ctx1 and then raw
#: wherever those are smaller (README, "Payload codings", has the measurements).
DEFAULT_CODING = "mix"
#: Allowed channel counts: RGB and RGBA.
CHANNELS = frozenset({3, 4})
#: Largest palette; labels then take 8 bits.
MAX_K = 256
#: Largest width or height the u32 fields can hold.
MAX_DIMENSION = 2**32 - 1
#: Default pixel cap for decoding: Pillow's decompression-bomb error threshold
#: (twice ``PIL.Image.MAX_IMAGE_PIXELS``), so kmq refuses what Pillow refuses.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

#: (name, struct code) of every header field, in file order, all big-endian.
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "4s"),
    ("version", "B"),
    ("coding", "B"),
    ("channels", "B"),
    ("bits", "B"),
    ("k", "H"),
    ("reserved", "H"),
    ("width", "I"),
    ("height", "I"),
)
HEADER = struct.Struct(">" + "".join(code for _, code in HEADER_FIELDS))
CHECKSUM = struct.Struct(">I")


@dataclass(frozen=True)
class Header:
    """The fixed-size header at the start of a kmq file.

    Construct with :meth:`for_image` to derive ``bits`` from ``k``; both
    :meth:`pack` and :meth:`unpack` enforce every rule of the spec.
    """

    width: int
    """Image width in pixels, 1 to 2**32 - 1."""
    height: int
    """Image height in pixels, 1 to 2**32 - 1."""
    channels: int
    """3 (RGB) or 4 (RGBA): bytes per palette entry."""
    k: int
    """Palette entries, 1 to 256."""
    bits: int
    """Bits per label; must equal ``ceil(log2(k))`` (0 when ``k == 1``)."""
    coding: int = CODING_RAW
    """Payload coding: 0 (raw bit packing), 1 (ctx1) or 2 (mix)."""
    version: int = VERSION
    """Format version."""
    reserved: int = 0
    """Reserved for future flags; must be 0."""

    @classmethod
    def for_image(cls, width: int, height: int, channels: int, k: int, coding: int = CODING_RAW) -> Header:
        """Build a header, deriving ``bits`` from ``k``.

        Parameters
        ----------
        width, height : int
            Image size in pixels.
        channels : int
            3 or 4.
        k : int
            Palette entries.
        coding : int
            Payload coding.

        Returns
        -------
        Header
            Not yet validated; :meth:`pack` validates it.
        """
        return cls(width, height, channels, k, bitpack.bits_for(k) if k >= 1 else 0, coding)

    @property
    def pixels(self) -> int:
        """Width times height, as a Python int (never wraps)."""
        return self.width * self.height

    @property
    def palette_size(self) -> int:
        """Bytes of palette that follow the header."""
        return self.k * self.channels

    @property
    def raw_payload_size(self) -> int:
        """Bytes the payload takes in coding 0: ``ceil(width * height * bits / 8)``."""
        return bitpack.packed_size(self.pixels, self.bits)

    @property
    def payload_size_range(self) -> tuple[int, int]:
        """Shortest and longest payload this header allows (rule D6), in bytes.

        Exact for coding 0. For coding 1 the longest is the raw payload plus
        the most stripe overhead the height allows, so a reader can bound what
        it reads from the header alone.
        """
        raw = self.raw_payload_size
        if self.coding == CODING_RAW:
            return raw, raw
        stripes = ctx1.max_stripes(self.width, self.height)
        return ctx1.MIN_PAYLOAD, ctx1.max_payload_size(raw, stripes)

    @property
    def overhead(self) -> int:
        """Bytes of the file that are not payload: header, palette and checksum."""
        return HEADER.size + self.palette_size + CHECKSUM.size

    @property
    def max_file_size(self) -> int:
        """The longest file this header allows; a reader need never read more (plus one byte to see trailing data)."""
        return self.overhead + self.payload_size_range[1]

    @property
    def mode(self) -> str:
        """The image's Pillow mode: ``"RGB"`` or ``"RGBA"``."""
        return mode_name(self.channels)

    def file_bits_per_pixel(self, file_bytes: int) -> float:
        """Bits per pixel of a whole file of ``file_bytes`` with this header."""
        return 8 * file_bytes / self.pixels

    def payload_bits_per_pixel(self, file_bytes: int) -> float:
        """Bits per pixel of the payload alone: the label width for coding 0 (its last byte's padding is no rate)."""
        if self.coding == CODING_RAW:
            return float(self.bits)
        return 8 * (file_bytes - self.overhead) / self.pixels

    def validate(self, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        """Check every field against the spec.

        Parameters
        ----------
        max_pixels : int or None
            Largest ``width * height`` accepted; ``None`` for no limit.

        Raises
        ------
        FormatError
            If a field is out of its range.
        PixelLimitError
            If the image has more than ``max_pixels`` pixels.
        """
        if self.version != VERSION:
            raise FormatError(f"unsupported version {self.version} (this reader knows {VERSION})")
        if self.coding not in CODINGS:
            raise FormatError(f"unknown payload coding {self.coding}")
        if self.reserved != 0:
            raise FormatError(f"reserved field is {self.reserved:#06x}, must be 0")
        if self.channels not in CHANNELS:
            raise FormatError(f"channels {self.channels} not in {{3, 4}}")
        if not 1 <= self.k <= MAX_K:
            raise FormatError(f"k {self.k} not in 1..{MAX_K}")
        if self.coding in STRIPED_CODINGS and self.k < 2:
            raise FormatError(f"payload coding {self.coding} ({CODINGS[self.coding]}) needs k >= 2, got k={self.k}")
        if self.bits != bitpack.bits_for(self.k):
            raise FormatError(f"bits {self.bits} != {bitpack.bits_for(self.k)} required by k={self.k}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_DIMENSION:
                raise FormatError(f"{name} {value} not in 1..{MAX_DIMENSION}")
        if max_pixels is not None and self.pixels > max_pixels:
            msg = f"{self.width}x{self.height} = {self.pixels} pixels exceeds the limit of {max_pixels}"
            raise PixelLimitError(msg)

    def pack(self) -> bytes:
        """Serialise the header.

        Returns
        -------
        bytes
            ``HEADER.size`` bytes.

        Raises
        ------
        FormatError
            If a field is out of its range (no pixel limit applies).
        """
        self.validate(max_pixels=None)
        return HEADER.pack(
            MAGIC, self.version, self.coding, self.channels, self.bits,
            self.k, self.reserved, self.width, self.height,
        )  # fmt: skip

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Header:
        """Parse and validate the header at the start of ``data``.

        Only the first ``HEADER.size`` bytes are read; nothing is allocated
        from the values in them. The magic is checked over the bytes present
        before the length, so a short file that is not kmq is reported as such.

        Parameters
        ----------
        data : bytes-like
            The file, or at least its first ``HEADER.size`` bytes.
        max_pixels : int or None
            Largest ``width * height`` accepted; ``None`` for no limit.

        Returns
        -------
        Header

        Raises
        ------
        FormatError
            On a wrong magic or any out-of-range field.
        TruncatedError
            If ``data`` is shorter than a header.
        PixelLimitError
            If the image has more than ``max_pixels`` pixels.
        """
        head = bytes(data[: HEADER.size])
        if head[: len(MAGIC)] != MAGIC[: len(head)]:
            raise FormatError(f"not a kmq file: magic={head[: len(MAGIC)]!r}, expected {MAGIC!r}")
        if len(head) < HEADER.size:
            raise TruncatedError(f"truncated: file is {len(head)} bytes, shorter than the {HEADER.size}-byte header")
        _, version, coding, channels, bits, k, reserved, width, height = HEADER.unpack(head)
        header = cls(width, height, channels, k, bits, coding, version, reserved)
        header.validate(max_pixels)
        return header


def mode_name(channels: int) -> str:
    """Pillow's mode for a channel count: ``"RGBA"`` for 4, ``"RGB"`` for 3."""
    return "RGBA" if channels == 4 else "RGB"


def coding_number(coding: int | str) -> int:
    """The value of a payload coding given by number or name (``"raw"``, ``"ctx1"``, ``"mix"``).

    Raises
    ------
    ParameterError
        If there is no such coding.
    """
    names = {name: number for number, name in CODINGS.items()}
    if isinstance(coding, str) and coding in names:
        return names[coding]
    if isinstance(coding, int) and not isinstance(coding, bool) and coding in CODINGS:
        return coding
    choices = ", ".join(f"{number} ({name})" for number, name in CODINGS.items())
    raise ParameterError(f"unknown payload coding {coding!r}; choose {choices}")


def decode_striped(
    coding: int, payload: memoryview, spans: list[tuple[int, int]], width: int, height: int, palette: NDArray[np.uint8]
) -> NDArray[np.uint8]:
    """Decode the streams of a coding-1 or coding-2 payload (its stripe table already read) into labels.

    Raises
    ------
    FormatError, TruncatedError
        Naming the stripe, the rule and, where it applies, the pixel.
    """
    if coding == CODING_MIX:
        return mix.decode(payload, spans, width, height, palette)
    return ctx1.decode(payload, spans, width, height, palette.shape[0])


def decode_striped_pixels(
    coding: int, payload: memoryview, spans: list[tuple[int, int]], width: int, height: int, palette: NDArray[np.uint8]
) -> NDArray[np.uint8]:
    """:func:`decode_striped` to pixels, ``palette[labels]``, without a label plane: (H, W, C).

    Raises
    ------
    FormatError, TruncatedError
        As :func:`decode_striped`.
    """
    coder = mix.coder(palette) if coding == CODING_MIX else None
    return ctx1.decode_pixels(payload, spans, width, height, palette, coder)


def fallback_note(asked: int | str, written: int) -> str:
    """Why a file was written in another coding than the one asked for ("" when it was not)."""
    number = coding_number(asked)
    if number == written:
        return ""
    if written != CODING_RAW:
        return f"{CODINGS[written]} was smaller than {CODINGS[number]}, so {CODINGS[written]} was written"
    tried = "neither mix nor ctx1 would have" if number == CODING_MIX else f"{CODINGS[number]} would not have"
    return f"{tried} been smaller, so raw packing was written"


def _striped(coding: int, labels: NDArray[np.uint8], palette: NDArray[np.uint8], limit: int) -> bytes | None:
    """A coding-1 or coding-2 payload of at most ``limit`` bytes, or None."""
    if coding == CODING_MIX:
        return mix.encode(labels, palette, limit=limit)
    return ctx1.encode(labels, palette.shape[0], limit=limit)


def _payload(labels: NDArray[np.uint8], palette: NDArray[np.uint8], header: Header, strict: bool) -> tuple[int, bytes]:
    """(coding, payload) for ``header.coding``; without ``strict``, the smallest of it, ctx1 and raw.

    Without ``strict``, a mix request writes ctx1 where ctx1 is smaller and either writes raw
    where that is not larger, so a file never grows past the simpler codings (rule E4).
    """
    raw_size, name = header.raw_payload_size, CODINGS[header.coding]
    if header.coding in STRIPED_CODINGS and strict:
        if header.k < 2:
            raise ParameterError(f"coding {name} needs k >= 2, got k={header.k}")
        stripes = ctx1.stripe_count(header.width, header.height)
        payload = _striped(header.coding, labels, palette, ctx1.max_payload_size(raw_size, stripes))
        if payload is None:
            raise ParameterError(f"coding {name} would exceed its limit of raw packing + overhead ({raw_size} B)")
        return header.coding, payload
    best: tuple[int, bytes] | None = None
    if header.coding in STRIPED_CODINGS and header.k >= 2:
        # Strictly smaller than raw (and than mix, for ctx1), or not at all.
        for coding in (CODING_MIX, CODING_CTX1) if header.coding == CODING_MIX else (CODING_CTX1,):
            limit = (len(best[1]) if best else raw_size) - 1
            payload = _striped(coding, labels, palette, limit)
            if payload is not None:
                best = coding, payload
    return best or (CODING_RAW, bitpack.pack(labels, header.bits))


class Serialised(NamedTuple):
    """A kmq file just written, with its header (what :func:`serialise` returns)."""

    header: Header
    """The header written, with the coding chosen (raw where ctx1 would not be smaller)."""
    data: bytes
    """The complete file."""


def dumps(
    palette: NDArray[np.uint8],
    labels: NDArray[np.uint8],
    coding: int | str = DEFAULT_CODING,
    *,
    strict: bool = False,
) -> bytes:
    """:func:`serialise`'s file alone: the bytes of a complete kmq file."""
    return serialise(palette, labels, coding, strict=strict).data


def serialise(
    palette: NDArray[np.uint8],
    labels: NDArray[np.uint8],
    coding: int | str = DEFAULT_CODING,
    *,
    strict: bool = False,
) -> Serialised:
    """Serialise a palette and a label plane into a complete kmq file.

    Parameters
    ----------
    palette : (K, C) uint8 ndarray
        Palette entries, C = 3 or 4, 1 <= K <= 256.
    labels : (H, W) uint8 ndarray
        Index of each pixel's palette entry; every value < K.
    coding : int or str
        Payload coding, by number or name: ``"mix"`` (2, the default),
        ``"ctx1"`` (1) or ``"raw"`` (0).
    strict : bool
        With False, the smallest of the requested coding and the simpler ones
        is written: ``"mix"`` gives way to ctx1 where ctx1 is smaller, and
        both to raw packing where they would not be smaller (always for
        K = 1), so a file never grows past raw packing. With True, the
        requested coding is written or :class:`ParameterError` is raised (for
        test vectors).

    Returns
    -------
    Serialised
        ``header``, the header written (its ``coding`` is the one chosen), and
        ``data``: header, palette, payload and CRC-32.

    Raises
    ------
    ParameterError
        If the arrays do not describe a valid image, or the coding is unknown.
    """
    number = coding_number(coding)
    if palette.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ParameterError(f"palette and labels must be uint8, got {palette.dtype} and {labels.dtype}")
    if palette.ndim != 2 or labels.ndim != 2:
        raise ParameterError(f"palette must be 2-D and labels 2-D, got {palette.ndim}-D and {labels.ndim}-D")
    (k, channels), (height, width) = palette.shape, labels.shape
    header = Header.for_image(width, height, channels, k, CODING_RAW)
    try:
        header.pack()
    except FormatError as exc:
        raise ParameterError(str(exc)) from None
    if int(labels.max()) >= k:
        raise ParameterError(f"label {int(labels.max())} >= k={k}")
    number, payload = _payload(labels, palette, replace(header, coding=number), strict)
    written = replace(header, coding=number)
    body = written.pack() + np.ascontiguousarray(palette).tobytes() + payload
    return Serialised(written, body + CHECKSUM.pack(zlib.crc32(body)))


def as_bytes_view(data: bytes | bytearray | memoryview) -> memoryview:
    """A flat byte view of ``data``, copying only when it is not contiguous.

    Raises
    ------
    ParameterError
        If ``data`` is not a bytes-like object.
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise ParameterError(f"expected bytes, got {type(data).__name__}") from None
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


def loads(
    data: bytes | bytearray | memoryview,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    verify_checksum: bool = True,
    pixels: bool = False,
) -> tuple[Header, NDArray[np.uint8], NDArray[np.uint8]]:
    """Parse and validate a complete kmq file.

    The header, the pixel limit and the exact file length are checked before
    anything is allocated; then the checksum; then every label.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_pixels : int or None
        Largest ``width * height`` accepted; ``None`` for no limit.
    verify_checksum : bool
        Skip the CRC-32 check when False (for fuzzing the deeper checks).
    pixels : bool
        Return the pixels, ``palette[labels]``, instead of the labels: the
        striped codings then write them as they decode, without a label
        plane (what :func:`kmq.decode` wants). The checks are the same.

    Returns
    -------
    header : Header
    palette : (K, C) uint8 ndarray
    labels : (H, W) uint8 ndarray, or with ``pixels`` (H, W, C)

    Raises
    ------
    TruncatedError, FormatError, ChecksumError, PixelLimitError
        As their names say; each message names the field and its value.
    """
    view = as_bytes_view(data)
    header = Header.unpack(view, max_pixels)
    low, high = header.payload_size_range
    size = len(view) - header.overhead
    if size < low:
        raise TruncatedError(f"truncated: file is {len(view)} bytes, header implies at least {header.overhead + low}")
    spans: list[tuple[int, int]] = []
    if header.coding in STRIPED_CODINGS:
        # The stripe table gives the exact length, so truncation and trailing
        # bytes are named as such before the checksum is even looked at.
        payload = view[HEADER.size + header.palette_size : len(view) - CHECKSUM.size]
        spans = ctx1.stripe_table(payload, header.width, header.height)
        low = high = spans[-1][1]
    source = "header" if header.coding == CODING_RAW else "stripe table"
    if size < low:
        raise TruncatedError(f"truncated: file is {len(view)} bytes, {source} implies {header.overhead + low}")
    if size > high:
        what = "at most " if low != high else ""
        raise FormatError(f"file is {len(view)} bytes, {source} implies {what}{header.overhead + high}: trailing bytes")
    if spans and size > (limit := ctx1.max_payload_size(header.raw_payload_size, len(spans))):
        raise FormatError(
            f"payload is {size} bytes, over the {limit} allowed "
            f"(raw packing {header.raw_payload_size} + {limit - header.raw_payload_size} for {len(spans)} stripes)"
        )
    body_end = len(view) - CHECKSUM.size
    if verify_checksum:
        (stored,) = CHECKSUM.unpack(view[body_end:])
        actual = zlib.crc32(view[:body_end])
        if stored != actual:
            raise ChecksumError(f"checksum {stored:#010x} != computed {actual:#010x}")
    palette_end = HEADER.size + header.palette_size
    palette = np.frombuffer(view[HEADER.size : palette_end], dtype=np.uint8).reshape(header.k, header.channels)
    # With K = 1 the payload is empty, so a 27-byte file can describe any size:
    # the pixel limit is the guard; without one, refuse what cannot be indexed.
    if header.pixels * header.channels > sys.maxsize:
        raise PixelLimitError(f"{header.width}x{header.height} pixels cannot be held in memory on this machine")
    memory.check(header.width, header.height, memory.DECODE_BYTES_PER_PIXEL, "")
    payload = view[palette_end:body_end]
    # Read-only and the caller's own: Indexed keeps them without another copy of the labels.
    palette = palette.copy()
    palette.flags.writeable = False
    try:
        if header.coding in STRIPED_CODINGS and pixels:
            image = decode_striped_pixels(header.coding, payload, spans, header.width, header.height, palette)
            return header, palette, image
        if header.coding in STRIPED_CODINGS:
            labels = decode_striped(header.coding, payload, spans, header.width, header.height, palette)
        else:
            labels = bitpack.unpack(payload, header.pixels, header.bits).reshape(header.height, header.width)
        # The striped codings' decoders refuse an escape >= k themselves (D10); raw packing can hold any value (D9).
        if header.coding == CODING_RAW and labels.size and int(labels.max()) >= header.k:
            raise FormatError(f"label {int(labels.max())} >= k={header.k} in payload")
        if pixels:
            return header, palette, ctx1.expand(labels, palette)
    except MemoryError:
        what = "pixels" if pixels else "labels"
        raise PixelLimitError(f"{header.width}x{header.height} pixels: out of memory for the {what}") from None
    labels.flags.writeable = False
    return header, palette, labels


def read_stripe_count(data: bytes | bytearray | memoryview, header: Header) -> int | None:
    """The number of stripes of a kmq file's payload: None for coding 0 (raw packing has none).

    Parameters
    ----------
    data : bytes-like
        The file, or at least its header, palette and the payload's first two bytes.
    header : Header
        Its header, as :meth:`Header.unpack` or :func:`loads` gave it.

    Raises
    ------
    TruncatedError, FormatError
        If the payload ends before the count or the count is out of range (rule D6).
    """
    if header.coding not in STRIPED_CODINGS:
        return None
    start = HEADER.size + header.palette_size
    return ctx1.read_stripe_count(as_bytes_view(data)[start : start + 2], header.width, header.height)
