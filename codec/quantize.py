"""K-means colour quantization: pixels in, an :class:`~kmq.Indexed` image out.

The objective is the teaching example's (scikit-learn's ``KMeans`` with
k-means++ seeding over every pixel), computed on each distinct colour once,
weighted by how many pixels have it. The sum of squared errors is the same
function of the centroids, so the optimum is the same, at a fraction of the
cost on photos (a 12 MP JPEG photo has about 10x fewer colours than pixels).

After clustering, centroids are rounded (not truncated) to uint8, duplicates
merged, and every pixel is assigned to its nearest rounded entry, so labels and
palette agree exactly. Entries no pixel uses are dropped. The palette is then in
canonical order: ascending by the bytes of each entry (R, G, B[, A]).
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import NDArray

from .container import MAX_K
from .errors import ParameterError
from .images import ImageLike, as_array
from .indexed import Indexed

__all__ = ["quantize", "distinct_colours", "nearest"]

#: Seeds are what scikit-learn's random_state accepts: 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1

#: Rows of the (rows x K) distance block computed at once in :func:`nearest`;
#: keeps that block near 16 MiB of float32 at K=256.
_CHUNK = 1 << 14


def _check_options(k: object, seed: object) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= int(k) <= MAX_K:
        raise ParameterError(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ParameterError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")


def distinct_colours(pixels: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.intp], NDArray[np.intp]]:
    """The distinct colours of an (N, C) pixel array, in canonical order.

    Parameters
    ----------
    pixels : (N, C) uint8 ndarray
        C is 3 or 4.

    Returns
    -------
    colours : (U, C) uint8 ndarray
        Sorted ascending by their bytes.
    inverse : (N,) intp ndarray
        ``colours[inverse]`` rebuilds ``pixels``.
    counts : (U,) intp ndarray
        Pixels per colour.
    """
    channels = pixels.shape[1]
    # One big-endian integer per pixel: integer order is the bytes' order.
    keys = np.zeros(pixels.shape[0], dtype=np.uint32)
    for c in range(channels):
        keys |= pixels[:, c].astype(np.uint32) << np.uint32(8 * (channels - 1 - c))
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    shifts = np.arange(channels - 1, -1, -1, dtype=np.uint32) * np.uint32(8)
    colours = ((uniq[:, None] >> shifts) & np.uint32(0xFF)).astype(np.uint8)
    return colours, inverse.reshape(-1), counts


def nearest(colours: NDArray[np.uint8], palette: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Index of the nearest palette entry (squared Euclidean) for each colour.

    Ties go to the lowest index. The arithmetic is exact: every value involved
    is an integer below 2**24, so float32 sums of products lose nothing.

    Parameters
    ----------
    colours : (N, C) uint8 ndarray
    palette : (K, C) uint8 ndarray

    Returns
    -------
    (N,) uint8 ndarray
    """
    pal = palette.astype(np.float32)
    # |x - p|^2 = |x|^2 - 2 x.p + |p|^2; |x|^2 is the same for every p, so drop it.
    pal_norm = (pal * pal).sum(axis=1)
    out = np.empty(colours.shape[0], dtype=np.uint8)
    for start in range(0, colours.shape[0], _CHUNK):
        block = colours[start : start + _CHUNK].astype(np.float32)
        dist = pal_norm - 2.0 * (block @ pal.T)
        out[start : start + _CHUNK] = dist.argmin(axis=1)
    return out


def quantize(image: ImageLike, k: int = 8, *, seed: int = 0) -> Indexed:
    """Reduce an image to at most ``k`` colours with K-means.

    Parameters
    ----------
    image : (H, W, 3|4) uint8 ndarray or PIL.Image.Image
        Normalised by :func:`kmq.images.as_array`; alpha is kept (and
        clustered with the colours) only if some pixel is not opaque.
    k : int
        Palette size, 1 to 256. An image with at most ``k`` distinct colours
        keeps them all exactly; otherwise the palette may still come out
        shorter when rounded centroids coincide or go unused.
    seed : int
        Seed of the k-means++ initialisation, 0 to 2**32 - 1. The same image
        and options give the same result on the same machine.

    Returns
    -------
    Indexed
        Palette in canonical order (ascending bytes) and the labels.

    Raises
    ------
    ParameterError
        If ``k``, ``seed`` or the image array is invalid.
    ImageError
        If a Pillow image cannot be read.
    """
    _check_options(k, seed)
    pixels = as_array(image)
    height, width, channels = pixels.shape
    colours, inverse, counts = distinct_colours(pixels.reshape(-1, channels))
    if colours.shape[0] <= k:
        return Indexed(colours, inverse.astype(np.uint8).reshape(height, width))
    # Imported here: scikit-learn takes about a second to import, and decoding never needs it.
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    kmeans = KMeans(n_clusters=int(k), init="k-means++", n_init=1, random_state=int(seed))
    # One OpenMP thread: scikit-learn adds per-thread partial sums in the order
    # threads finish, which would make the result depend on timing.
    with threadpool_limits(limits=1, user_api="openmp"):
        kmeans.fit(colours.astype(np.float64), sample_weight=counts.astype(np.float64))
    rounded = np.clip(np.rint(kmeans.cluster_centers_), 0, 255).astype(np.uint8)
    palette = np.unique(rounded, axis=0)  # merges duplicates, sorts by bytes
    lut = nearest(colours, palette)
    used = np.bincount(lut, minlength=palette.shape[0]) > 0
    if not used.all():
        renumber = (np.cumsum(used) - 1).astype(np.uint8)
        palette, lut = palette[used], renumber[lut]
    return Indexed(palette, lut[inverse].reshape(height, width))
