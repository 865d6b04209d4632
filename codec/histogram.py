"""The colour histogram: each distinct colour of an image once, with its pixel count.

This is what the quantizer clusters (a photo has about 20 times fewer distinct
colours than pixels) and how labels get back to the pixels at the end: a label
is chosen per distinct colour and then looked up for every pixel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from . import kmeans, threads

__all__ = ["Histogram", "histogram"]


_remap = kmeans.compiled()  # None without a compiler: the numpy routes give the same results

#: Below this many pixels a sort (np.unique) is faster than counting into all
#: 2**24 RGB bins, whose fixed cost is about 50 ms; above it, counting wins
#: (12 MP photo: 0.17 s against 1.25 s).
_COUNTING_MIN_PIXELS = 1 << 22
#: Pixels per block whenever every pixel is visited: the int64 keys of a block take 128 MiB,
#: so memory beyond the image stays bounded however large it is (see :func:`histogram`);
#: a 12 MP photo is one block, as fast as counting all its keys at once.
_BLOCK_PIXELS = 1 << 24
#: The C routes: below this many pixels one thread counts or looks up, above it each core takes
#: a band of rows (a thread costs about 0.1 ms; a megapixel takes about 10 ms).
_THREAD_MIN_PIXELS = 1 << 20
#: The most pixels one C count takes at a time, so that no 32-bit count can wrap.
_PART_PIXELS_MAX = 1 << 30

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class Histogram:
    """Distinct colours of an image in canonical order, their counts, and the way back to pixels."""

    colours: NDArray[np.uint8]
    """(U, C) distinct colours, ascending by their bytes."""
    counts: NDArray[np.float64]
    """(U,) pixels per colour (float64: exact up to 2**53 pixels)."""
    shape: tuple[int, int]
    """(H, W) of the image."""
    _pixels: NDArray[np.uint8]
    """(H, W, C) the image itself (not a copy): RGB labels are looked up from its keys again."""
    _index: NDArray[np.uint32] | None
    """(H * W,) RGBA without the C extension: each pixel's row in ``colours``; else None."""
    _keys: NDArray[np.uint32] | None = None
    """(U,) the colours' big-endian keys, for the C lookup; None without it."""

    def labels(self, per_colour: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Spread one label per distinct colour to every pixel.

        Parameters
        ----------
        per_colour : (U,) uint8 ndarray
            Label of each distinct colour.

        Returns
        -------
        (H, W) uint8 ndarray
            The only per-pixel array made: 1 byte per pixel, besides 16 MiB for an RGB table.
        """
        out = np.empty(self.shape[0] * self.shape[1], dtype=np.uint8)
        if self._keys is not None and _remap is not None:
            table = _remap.table(self._keys, np.ascontiguousarray(per_colour, dtype=np.uint8))
            channels = self._pixels.shape[2]

            def look(start: int, part: NDArray[np.uint8]) -> None:
                stop = start + part.shape[0] * part.shape[1]
                _remap.lookup(part, stop - start, channels, table, out[start:stop])

            _on_bands(self._pixels, look)
            return out.reshape(self.shape)
        if self._index is not None:
            for start in range(0, out.size, _BLOCK_PIXELS):
                out[start : start + _BLOCK_PIXELS] = per_colour[self._index[start : start + _BLOCK_PIXELS]]
            return out.reshape(self.shape)
        table = np.zeros(1 << 24, dtype=np.uint8)
        table[_keys(self.colours)] = per_colour
        for start, block in _blocks(self._pixels):
            out[start : start + block.shape[0] * block.shape[1]] = table[_keys(block)]
        return out.reshape(self.shape)


def _blocks(pixels: NDArray[np.uint8]) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """Row blocks of about ``_BLOCK_PIXELS`` pixels, with the flat index of their first pixel."""
    rows = max(1, _BLOCK_PIXELS // max(1, pixels.shape[1]))
    for top in range(0, pixels.shape[0], rows):
        yield top * pixels.shape[1], pixels[top : top + rows]


def _bands(pixels: NDArray[np.uint8], parts: int) -> list[tuple[int, NDArray[np.uint8]]]:
    """``parts`` contiguous bands of whole rows, with the flat index of their first pixel."""
    height, width = pixels.shape[:2]
    tops = sorted({height * i // parts for i in range(parts)})
    bottoms = [*tops[1:], height]
    return [(top * width, np.ascontiguousarray(pixels[top:bottom])) for top, bottom in zip(tops, bottoms, strict=True)]


def _on_bands(pixels: NDArray[np.uint8], work: Callable[[int, NDArray[np.uint8]], _T]) -> list[_T]:
    """Run ``work(first_pixel, band)`` on bands of rows, one per core for large images."""
    count = pixels.shape[0] * pixels.shape[1]
    cores = max(1, min(threads.available(), count // _THREAD_MIN_PIXELS, pixels.shape[0]))
    parts = max(cores, -(-count // _PART_PIXELS_MAX))
    bands = _bands(pixels, parts)
    if cores == 1:
        return [work(start, band) for start, band in bands]
    with ThreadPoolExecutor(cores) as pool:  # the C loops release the GIL
        return list(pool.map(lambda item: work(*item), bands))


def _counted(pixels: NDArray[np.uint8]) -> tuple[NDArray[np.uint32], NDArray[np.float64]]:
    """The C route: distinct keys, ascending, and their counts, counted band by band."""
    assert _remap is not None
    channels = pixels.shape[2]

    def count(_: int, band: NDArray[np.uint8]) -> tuple[bytes, bytes]:
        counted: tuple[bytes, bytes] = _remap.count(band, band.shape[0] * band.shape[1], channels)
        return counted

    keys, counts = functools.reduce(lambda a, b: _remap.merge(*a, *b), _on_bands(pixels, count))
    return np.frombuffer(keys, dtype=np.uint32), np.frombuffer(counts, dtype=np.uint64).astype(np.float64)


def _keys(pixels: NDArray[np.uint8]) -> NDArray[np.intp]:
    """One big-endian integer per pixel (or colour row): integer order is the bytes' order.

    intp, because np.bincount would otherwise make an intp copy of its own.
    """
    channels = pixels.shape[-1]
    keys = pixels[..., 0].astype(np.intp).reshape(-1)
    for c in range(1, channels):
        keys <<= 8
        keys |= pixels[..., c].reshape(-1)
    return keys


def _colours(keys: NDArray[np.integer], channels: int) -> NDArray[np.uint8]:
    shifts = np.arange(channels - 1, -1, -1) * 8
    return ((keys[:, None] >> shifts) & 0xFF).astype(np.uint8)


def histogram(pixels: NDArray[np.uint8]) -> Histogram:
    """Count the distinct colours of an image.

    Parameters
    ----------
    pixels : (H, W, C) uint8 ndarray
        C is 3 or 4.

    Returns
    -------
    Histogram
        Identical whichever counting route is taken.

    Notes
    -----
    With the C extension, colours are counted in hash tables sized to the distinct colours
    (about 14 bytes per colour and per core; 17 MB for a photo's 600,000 colours on two
    cores), whatever the image size, and labels later take 1 byte per pixel.

    Without it, memory beyond the image, whatever its size: for RGB, at most 384 MiB (two sets of
    2**24 bins and the keys of one block of pixels); for RGBA, 4 bytes per pixel (each
    pixel's colour row) plus the sort of one block. The labels made later add 1 byte per
    pixel.
    """
    height, width, channels = pixels.shape
    if _remap is not None:
        keys, counts = _counted(pixels)
        return Histogram(_colours(keys, channels), counts, (height, width), pixels, None, keys)
    if channels == 3 and height * width >= _COUNTING_MIN_PIXELS:
        bins = None
        for _, block in _blocks(pixels):
            counted = np.bincount(_keys(block), minlength=1 << 24)
            bins = counted if bins is None else np.add(bins, counted, out=bins)
        assert bins is not None
        occupied = np.flatnonzero(bins != 0)  # 3x faster than flatnonzero(bins) on int64
        counts = bins[occupied].astype(np.float64)
        del bins
        return Histogram(_colours(occupied, 3), counts, (height, width), pixels, None)
    found = [np.unique(_keys(block), return_counts=True) for _, block in _blocks(pixels)]
    if len(found) == 1:
        unique, occurrences = found[0][0], found[0][1].astype(np.float64)  # one block: already merged
    else:
        unique, inverse = np.unique(np.concatenate([part[0] for part in found]), return_inverse=True)
        weights = np.concatenate([part[1] for part in found]).astype(np.float64)
        occurrences = np.bincount(inverse, weights=weights, minlength=unique.size).astype(np.float64, copy=False)
    del found
    index: NDArray[np.uint32] | None = None
    if channels == 4:
        index = np.empty(height * width, dtype=np.uint32)
        for start, block in _blocks(pixels):
            index[start : start + block.shape[0] * block.shape[1]] = np.searchsorted(unique, _keys(block))
    return Histogram(_colours(unique, channels), occurrences, (height, width), pixels, index)
