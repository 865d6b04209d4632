"""An indexed-colour image: a palette and one label per pixel."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from . import bitpack, container, ctx1, threads
from .errors import ParameterError

__all__ = ["Indexed"]


#: Largest table of label tuples :func:`_expand` builds (entries).
_MAX_TUPLES = 1 << 16


#: Images of at least this many pixels are expanded in row blocks on threads (numpy's take
#: releases the GIL); smaller ones are not worth a thread pool.
_THREAD_PIXELS = 1 << 20
#: Pixels whose tuple indices :func:`_expand` builds at once (a multiple of every group size):
#: 2 MB of indices per thread, whatever the image size.
_BLOCK_PIXELS = 1 << 20


def _expand(palette: NDArray[np.uint8], labels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``palette[labels]``, several labels per lookup.

    A table of every tuple of g labels (g = 4 for K <= 16, 2 for K <= 256) is
    looked up once per tuple, copying g * C bytes at a time, straight into the
    output; large images are split into one block per core. Measured on a 12 MP
    plane (benchmarks/bench_coding.py speed, "kmq.decode raw file" less the
    unpacking): about 0.03 s at K=8 and K=256, against 0.049 s for ``np.take``
    one label at a time and 0.207 s for fancy indexing. Where the C coder is built,
    :func:`kmq.ctx1.expand` does it in C instead, a 4-byte store per pixel on every core:
    about 4 times faster again (0.0075 s on one core for 12 MP).
    """
    if ctx1.can_expand():
        return ctx1.expand(labels, palette)
    k, channels = palette.shape
    flat = labels.reshape(-1)
    group = next((g for g in (4, 2) if k**g <= _MAX_TUPLES and flat.size >= 16 * k**g), 1)
    if group == 1:
        return np.take(palette, labels, axis=0)
    tuples = np.stack(np.unravel_index(np.arange(k**group), (k,) * group), axis=1)
    rows = np.take(palette, tuples, axis=0).reshape(k**group, group * channels)
    table = np.ascontiguousarray(rows).view(f"V{group * channels}").reshape(-1)
    out = np.empty(flat.size * channels, dtype=np.uint8)

    def part(start: int, stop: int) -> None:
        # start is a multiple of group; only the last part has a tail shorter than a group.
        head = start + (stop - start) // group * group
        # The tuple indices are built a block at a time: for the whole plane they would take
        # 8 / group bytes per pixel, more than the labels themselves (2x at K <= 16).
        for lo in range(start, head, _BLOCK_PIXELS):
            hi = min(lo + _BLOCK_PIXELS, head)
            index = flat[lo:hi:group].astype(np.intp)
            for j in range(1, group):
                index *= k
                index += flat[lo + j : hi : group]
            np.take(table, index, out=out[lo * channels : hi * channels].view(table.dtype))
        out[head * channels : stop * channels] = np.take(palette, flat[head:stop], axis=0).reshape(-1)

    workers = min(threads.available(), 8) if flat.size >= _THREAD_PIXELS else 1
    step = -(-flat.size // workers // group) * group
    bounds = [(start, min(start + step, flat.size)) for start in range(0, flat.size, step)]
    if len(bounds) == 1:
        part(*bounds[0])
    else:
        from concurrent.futures import ThreadPoolExecutor  # only large images: `import kmq` stays light

        with ThreadPoolExecutor(max_workers=len(bounds)) as pool:
            list(pool.map(lambda span: part(*span), bounds))
    return out.reshape(*labels.shape, channels)


def _frozen(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``array`` if it is read-only, else a read-only copy.

    An Indexed checks its labels once, when it is made; a copy nobody else can write keeps
    them valid (and the file it writes the one it was checked for) while the caller goes on
    using its own array. A read-only array is taken as it is, so what :func:`kmq.container.loads`
    returns is not copied again.
    """
    array = np.asarray(array)
    if array.flags.writeable:
        array = array.copy()
        array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Indexed:
    """A palette of K colours and an (H, W) plane of labels into it.

    This is what :func:`kmq.quantize` returns and what a kmq file holds, bit for
    bit: ``Indexed.from_bytes(x.to_bytes())`` equals ``x``.

    Both arrays are kept read-only: a writeable array given here is copied (a read-only
    one is kept as it is), so changing it afterwards does not change the Indexed.

    Parameters
    ----------
    palette : (K, C) uint8 ndarray
        Palette entries, 1 <= K <= 256, C = 3 (RGB) or 4 (RGBA).
    labels : (H, W) uint8 ndarray
        Index of each pixel's palette entry; every value < K.

    Raises
    ------
    ParameterError
        If the shapes, dtypes or label values are invalid.
    """

    palette: NDArray[np.uint8]
    labels: NDArray[np.uint8]

    def __post_init__(self) -> None:
        palette, labels = _frozen(self.palette), _frozen(self.labels)
        if palette.dtype != np.uint8 or labels.dtype != np.uint8:
            raise ParameterError(f"palette and labels must be uint8, got {palette.dtype} and {labels.dtype}")
        if palette.ndim != 2 or palette.shape[1] not in container.CHANNELS:
            raise ParameterError(f"palette shape {palette.shape} is not (K, 3) or (K, 4)")
        if not 1 <= palette.shape[0] <= container.MAX_K:
            raise ParameterError(f"palette has {palette.shape[0]} entries, not 1..{container.MAX_K}")
        if labels.ndim != 2 or labels.size == 0:
            raise ParameterError(f"labels shape {labels.shape} is not (H, W) with H, W >= 1")
        if int(labels.max()) >= palette.shape[0]:
            raise ParameterError(f"label {int(labels.max())} >= k={palette.shape[0]}")
        object.__setattr__(self, "palette", palette)
        object.__setattr__(self, "labels", labels)

    @property
    def k(self) -> int:
        """Number of palette entries."""
        return int(self.palette.shape[0])

    @property
    def channels(self) -> int:
        """3 for RGB, 4 for RGBA."""
        return int(self.palette.shape[1])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.labels.shape[1])

    @property
    def bits(self) -> int:
        """Bits per label in the raw payload: ``ceil(log2(k))``."""
        return bitpack.bits_for(self.k)

    def to_array(self) -> NDArray[np.uint8]:
        """Rebuild the pixels.

        Returns
        -------
        (H, W, C) uint8 ndarray
        """
        return _expand(self.palette, self.labels)

    def to_bytes(self, coding: int | str = container.DEFAULT_CODING) -> bytes:
        """Serialise as a kmq file (``spec/FORMAT.md``).

        Parameters
        ----------
        coding : int or str
            ``"mix"`` (the default: the smallest file, falling back to ctx1
            or raw packing where those are smaller), ``"ctx1"`` (the fast
            coding) or ``"raw"`` (exactly ``ceil(log2 K)`` bits per pixel).

        Returns
        -------
        bytes
        """
        return self.serialise(coding).data

    def serialise(self, coding: int | str = container.DEFAULT_CODING) -> container.Serialised:
        """:meth:`to_bytes`, with the header written (whose ``coding`` says what was chosen).

        Returns
        -------
        kmq.container.Serialised
            ``(header, data)``.
        """
        return container.serialise(self.palette, self.labels, coding)

    @classmethod
    def from_bytes(
        cls,
        data: bytes | bytearray | memoryview,
        *,
        max_pixels: int | None = container.DEFAULT_MAX_PIXELS,
        verify_checksum: bool = True,
    ) -> Indexed:
        """Parse a kmq file.

        Parameters
        ----------
        data : bytes-like
            The whole file.
        max_pixels : int or None
            Largest ``width * height`` accepted; ``None`` for no limit.
        verify_checksum : bool
            Skip the CRC-32 check when False.

        Raises
        ------
        KmqError
            A :class:`~kmq.FormatError` (or its subclasses
            :class:`~kmq.TruncatedError`, :class:`~kmq.ChecksumError`) or a
            :class:`~kmq.PixelLimitError`.
        """
        _, palette, labels = container.loads(data, max_pixels=max_pixels, verify_checksum=verify_checksum)
        return cls(palette, labels)

    def to_pillow(self) -> Image.Image:
        """The image as a Pillow palette image (mode ``P``), labels and palette unchanged.

        Returns
        -------
        PIL.Image.Image
            Mode ``P``; its palette is RGBA for RGBA images, so that
            ``.convert("RGBA")`` (or ``.convert("RGB")`` for RGB) equals
            :meth:`to_array`.
        """
        image = Image.fromarray(self.labels)  # mode L; putpalette makes it P without remapping a label
        image.putpalette(self.palette.tobytes(), rawmode=container.mode_name(self.channels))
        return image

    def _repr_png_(self) -> bytes:
        """PNG bytes, so that Jupyter and IPython show an Indexed as a picture.

        Written as a palette PNG from the labels: smaller and faster than the
        expanded RGB image, and pixel for pixel the same.
        """
        buffer = io.BytesIO()
        self.to_pillow().save(buffer, format="PNG")
        return buffer.getvalue()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Indexed):
            return NotImplemented
        return np.array_equal(self.palette, other.palette) and np.array_equal(self.labels, other.labels)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def __repr__(self) -> str:
        return f"Indexed(k={self.k}, channels={self.channels}, width={self.width}, height={self.height})"
