"""Weighted k-means on colour points: Wu's variance cut, k-means++ and Lloyd.

Every function takes *weighted* points: one row per distinct colour (or per
histogram bin), weighted by how many pixels it stands for. The weighted sum of
squared errors is then exactly the per-pixel objective of the teaching example,
at a fraction of the cost (Celebi 2011, "Improving the performance of k-means
for color quantization").

Everything here is plain numpy and gives the same result on every CPU, BLAS
build and thread count: no matrix product or BLAS dot (their kernels sum in
different orders and some fuse multiply-adds), only element-wise IEEE
operations and sums in numpy's fixed order (``np.bincount``, ``np.cumsum``,
pairwise ``sum``); random choices come from the caller's seeded generator,
and ties go to the lowest index.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from . import threads


def compiled() -> ModuleType | None:
    """kmq._remap (nearest centres, error diffusion, colour counting, error sums), or None without a compiler.

    The one place that loads it: kmq.histogram and kmq.metrics take it from here.
    """
    try:
        from . import _remap
    except ImportError:  # the numpy route then gives the same labels; error diffusion is unavailable
        return None
    return _remap


_remap = compiled()

__all__ = ["nearest", "squared_distances", "weighted_sum", "sse", "lloyd", "wu_init", "WuCut", "kmeans_plusplus"]

FloatArray = NDArray[np.float64]

#: Above this many centres, byte-valued points take numpy's table route even with the C extension
#: (the same labels): at K = 256 it is 269 ms against 304 for a million colours; at K = 8, 90 against 23.
_TABLE_MIN_K = 32
#: Rows per block in :func:`nearest`: a (2048 x 256) float32 block is 2 MiB and stays in
#: cache (70k points x 256 centres: 31 ms against 29 ms for the old BLAS product).
_BLOCK = 2048


def squared_distances(points: NDArray[np.floating], centre: NDArray[np.floating]) -> FloatArray:
    """Squared Euclidean distance of every point to one centre, summed over the axes in order.

    Parameters
    ----------
    points : (N, D) float ndarray
    centre : (D,) float ndarray

    Returns
    -------
    (N,) float64 ndarray
        Element-wise IEEE arithmetic only, so equal on every CPU.
    """
    pts = np.asarray(points, dtype=np.float64)
    total: FloatArray = np.square(pts[:, 0] - centre[0])
    for d in range(1, pts.shape[1]):
        total += np.square(pts[:, d] - centre[d])
    return total


def nearest(points: NDArray[np.floating], centres: NDArray[np.floating]) -> tuple[NDArray[np.intp], FloatArray]:
    """Index of, and squared distance to, the nearest centre of each point.

    Parameters
    ----------
    points : (N, D) float ndarray
    centres : (K, D) float ndarray

    Returns
    -------
    labels : (N,) intp ndarray
        Ties go to the lowest index.
    dist2 : (N,) float64 ndarray
        Squared Euclidean distances (float32 precision).

    Notes
    -----
    The result is the same on every CPU, BLAS build and thread count: the
    distances are sums of squared differences taken axis by axis in a fixed
    order with element-wise float32 operations (each correctly rounded by
    IEEE 754), never a matrix product, whose kernels differ in summation
    order and fused multiply-adds (OpenBLAS's Haswell and Sandybridge kernels
    gave different labels for 14 of 198 encodes). For byte-valued points and
    centres (0..255, D <= 4) every value is an integer below 2**24, so the
    distances are exact. The C extension :mod:`kmq._remap` does the same
    arithmetic in the same order on both cores: 23 ms against 90 for a million
    byte colours at K = 8, 16 against 26 ms for 30,000 six-coordinate points at
    K = 256, but no faster (304 against 269 ms) for byte colours at K = 256,
    where numpy's table route is quick. From 16 centres it walks them in the
    order of their projection on the centres' principal axis and stops where no
    further centre can be nearer: the same labels, with about 18 of 256 centres
    visited per colour of a photo (its K=256 quantization: 2.24 against 1.54 s). :func:`_nearest_numpy` is used without
    it and defines it.
    """
    if _remap is None or points.shape[1] > 8 or centres.shape[0] > 1 << 16 or centres.shape[0] == 0:
        return _nearest_numpy(points, centres)
    if centres.shape[0] > _TABLE_MIN_K and _byte_index(np.asarray(points, dtype=np.float32)) is not None:
        return _nearest_numpy(points, centres)  # byte colours and many centres: numpy's tables are quicker
    pts = np.ascontiguousarray(points, dtype=np.float32)
    cen = np.ascontiguousarray(centres, dtype=np.float32)
    n, d = pts.shape
    labels = np.empty(n, dtype=np.int64)
    dist2 = np.empty(n, dtype=np.float64)
    # Work in proportion to n * K: below about a million distance terms a thread costs more than it saves.
    parts = max(1, min(threads.available(), n * cen.shape[0] // (1 << 20)))
    bounds = [n * i // parts for i in range(parts + 1)]

    def run(i: int) -> None:
        lo, hi = bounds[i], bounds[i + 1]
        _remap.nearest(pts[lo:hi], hi - lo, d, cen, cen.shape[0], labels[lo:hi], dist2[lo:hi])

    if parts == 1:
        run(0)
    else:
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(run, range(parts)))
    return labels.astype(np.intp, copy=False), dist2


def _nearest_numpy(points: NDArray[np.floating], centres: NDArray[np.floating]) -> tuple[NDArray[np.intp], FloatArray]:
    """:func:`nearest` in numpy: the route without the C extension, and its definition."""
    pts = np.asarray(points, dtype=np.float32)
    cen = np.asarray(centres, dtype=np.float32)
    axes = [np.ascontiguousarray(cen[:, d]) for d in range(cen.shape[1])]
    labels = np.empty(pts.shape[0], dtype=np.intp)
    dist2 = np.empty(pts.shape[0], dtype=np.float64)
    block = np.empty((min(_BLOCK, pts.shape[0]), cen.shape[0]), dtype=np.float32)
    scratch = np.empty_like(block)
    # Byte-valued points (the exact RGB colours): each axis's squared differences to every
    # centre come from a 256-row table, the same float32 values as computed directly but
    # gathered row by row, 2x faster than broadcasting the subtraction.
    index = _byte_index(pts)
    tables = None
    if index is not None:
        values = np.arange(256, dtype=np.float32)[:, None]
        tables = [np.square(values - axis) for axis in axes]
    for start in range(0, pts.shape[0], _BLOCK):
        rows = pts[start : start + _BLOCK]
        out, tmp = block[: rows.shape[0]], scratch[: rows.shape[0]]
        if tables is not None and index is not None:
            # Fancy indexing, not np.take(out=...): measured 2x faster for rows of 256.
            out = tables[0][index[start : start + _BLOCK, 0]]
            for d in range(1, len(axes)):
                out += tables[d][index[start : start + _BLOCK, d]]
        else:
            np.subtract(rows[:, :1], axes[0], out=out)
            np.multiply(out, out, out=out)
            for d in range(1, len(axes)):
                np.subtract(rows[:, d : d + 1], axes[d], out=tmp)
                np.multiply(tmp, tmp, out=tmp)
                out += tmp
        best = out.argmin(axis=1)  # the first minimum: ties go to the lowest index
        labels[start : start + _BLOCK] = best
        dist2[start : start + _BLOCK] = out[np.arange(out.shape[0]), best]
    return labels, dist2


def _byte_index(points: NDArray[np.float32]) -> NDArray[np.intp] | None:
    """``points`` as indices 0..255 if every value is a whole number in that range (else None)."""
    if points.size < _BLOCK or points.min() < 0 or points.max() > 255:
        return None
    index = points.astype(np.intp)
    return index if np.array_equal(index, points) else None


def weighted_sum(weights: FloatArray, values: FloatArray) -> float:
    """``sum(weights * values)`` in numpy's fixed pairwise order (a BLAS dot's order depends on its kernel)."""
    return float(np.multiply(weights, values).sum())


def sse(points: NDArray[np.floating], weights: FloatArray, centres: NDArray[np.floating]) -> float:
    """Weighted sum of squared distances from each point to its nearest centre."""
    return weighted_sum(weights, nearest(points, centres)[1])


def _centroids(
    points: FloatArray,
    weights: FloatArray,
    labels: NDArray[np.intp],
    dist2: FloatArray,
    old: FloatArray,
    fixed: int = 0,
) -> FloatArray:
    """Weighted mean of each cluster.

    A cluster that lost all its points moves to the point that is worst served
    (largest weighted squared error) among those no other empty cluster took,
    instead of dying: otherwise a palette of K entries would come back shorter.
    """
    k = old.shape[0]
    mass = np.bincount(labels, weights=weights, minlength=k)
    sums = np.stack(
        [np.bincount(labels, weights=weights * points[:, d], minlength=k) for d in range(points.shape[1])], 1
    )
    alive = mass > 0
    out = old.copy()
    out[alive] = sums[alive] / mass[alive, None]
    dead = np.flatnonzero(~alive)
    dead = dead[dead >= fixed]  # a kept centre stays, used or not: the worst points go to free ones
    if dead.size:
        worst = np.argsort(-(weights * dist2), kind="stable")[: dead.size]
        worst = worst[dist2[worst] > 0]  # a point already on a centre needs no other
        out[dead[: worst.size]] = points[worst]
    return out


def lloyd(
    points: FloatArray,
    weights: FloatArray,
    centres: FloatArray,
    *,
    max_iter: int = 100,
    tol: float = 1e-5,
    fixed: int = 0,
) -> tuple[FloatArray, float]:
    """Weighted Lloyd iterations until the error stops falling.

    Parameters
    ----------
    points : (N, D) float64 ndarray
    weights : (N,) float64 ndarray
    centres : (K, D) float64 ndarray
        Starting centres.
    max_iter : int
        Most assignment-update rounds.
    tol : float
        Stop when one round lowers the error by less than this fraction.
    fixed : int
        The first ``fixed`` centres do not move (colours a user keeps).

    Returns
    -------
    centres : (K, D) float64 ndarray
    error : float
        Weighted sum of squared errors of the last assignment, measured before
        the centres' last update (so an upper bound for the returned centres).

    Notes
    -----
    Hamerly's bounds (2010) were tried here and lost: with K = 256 some centre
    always moves far enough to invalidate every point's bound, so they only
    added work (1.74 s against 1.45 s on the 12 MP photo).
    """
    previous = np.inf
    error = np.inf
    for _ in range(max_iter):
        labels, dist2 = nearest(points, centres)
        error = weighted_sum(weights, dist2)
        moved = _centroids(points, weights, labels, dist2, centres, fixed)
        moved[:fixed] = centres[:fixed]
        centres = moved
        if previous - error <= tol * error:
            break
        previous = error
    return centres, error


def kmeans_plusplus(
    points: FloatArray,
    weights: FloatArray,
    k: int,
    rng: np.random.Generator,
    trials: int | None = None,
    initial: FloatArray | None = None,
) -> FloatArray:
    """Greedy weighted k-means++ seeding (Arthur and Vassilvitskii 2007).

    Each new centre is the best of ``trials`` candidates drawn with probability
    proportional to weight times squared distance to the nearest chosen centre,
    as scikit-learn does (``2 + log(k)`` candidates by default). Stops early
    when every point already sits on a centre.

    Parameters
    ----------
    points : (N, D) float64 ndarray
    weights : (N,) float64 ndarray
    k : int
        Centres to choose; at most N.
    rng : numpy.random.Generator
        Source of the random draws.
    trials : int, optional
        Candidates per centre.
    initial : (J, D) float64 ndarray, optional
        Centres already chosen (J < k); the result starts with them.

    Returns
    -------
    (k', D) float64 ndarray
        k' <= k.
    """
    trials = trials or 2 + int(np.log(k))
    if initial is not None and len(initial):
        centres = list(initial)
        closest = nearest(points, initial)[1]
    else:
        first = int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))
        first = min(first, points.shape[0] - 1)
        centres = [points[first]]
        closest = squared_distances(points, points[first])
    while len(centres) < k:
        potential = weights * closest
        cumulative = np.cumsum(potential)
        if cumulative[-1] <= 0:  # every point already sits on a centre
            break
        candidates = np.searchsorted(cumulative, rng.random(trials) * cumulative[-1], side="right")
        candidates = np.minimum(candidates, points.shape[0] - 1)
        dist = np.stack([squared_distances(points, points[c]) for c in candidates])
        improved = np.minimum(closest[None, :], dist)
        best = int(np.argmin(np.multiply(improved, weights).sum(axis=1)))
        centres.append(points[candidates[best]])
        closest = improved[best]
    return np.array(centres)


def wu_init(points: FloatArray, weights: FloatArray, cells: NDArray[np.integer], bits: int, k: int) -> FloatArray:
    """Wu's greedy variance-minimising box cut (Wu 1991, "Efficient statistical computations for optimal
    color quantization"), generalised to D dimensions.

    The colour cube is divided into ``2**bits`` cells per axis; boxes of cells
    are split, always the box of largest variance along the cut that most
    reduces it, until there are ``k`` boxes. The variance is measured in the
    coordinates of ``points`` (which may be Oklab or premultiplied RGBA) while
    the boxes follow the cell grid of ``cells``.

    Parameters
    ----------
    points : (N, D) float64 ndarray
        Coordinates in the clustering space.
    weights : (N,) float64 ndarray
    cells : (N, G) integer ndarray
        Cell of each point on each axis of the box grid (the colour channels,
        G <= D), 0 to ``2**bits - 1``.
    bits : int
        Cell resolution.
    k : int
        Boxes wanted; fewer come back if no box can be split further.

    Returns
    -------
    (k', D) float64 ndarray
        The weighted mean of each non-empty box, k' <= k.
    """
    return WuCut(points, weights, cells, bits).means(k)


class WuCut:
    """Wu's cut of one set of weighted points, grown one split at a time and kept.

    The cut is greedy, so the boxes for ``k`` are the first ``k - 1`` splits of the
    boxes for any larger K: :meth:`means` for several K (``k="auto"`` asks for about
    twenty) costs one cut to the largest, not one cut each.

    Parameters
    ----------
    points, weights, cells, bits
        As :func:`wu_init`.
    """

    def __init__(self, points: FloatArray, weights: FloatArray, cells: NDArray[np.integer], bits: int) -> None:
        self._volume, variance, best_cut, full = _wu_moments(points, weights, cells, bits)
        self._variance, self._best_cut = variance, best_cut
        self._full = full
        self._boxes = [full]
        self._variances = [variance(self._volume(*full))]
        self._splits: list[tuple[int, _Box, _Box]] = []
        self._done = False

    def _split(self) -> None:
        boxes, variances = self._boxes, self._variances
        split = None
        for i in np.argsort(variances, kind="stable")[::-1]:
            if variances[i] <= 0:
                break
            _, axis, cut = self._best_cut(*boxes[i])
            if axis >= 0:
                split = (int(i), axis, cut)
                break
            variances[i] = 0.0  # cannot be cut: a single cell
        if split is None:
            self._done = True
            return
        i, axis, cut = split
        lo, hi = boxes[i]
        first = (lo, (*hi[:axis], cut, *hi[axis + 1 :]))
        second = ((*lo[:axis], cut, *lo[axis + 1 :]), hi)
        boxes[i] = first
        boxes.append(second)
        variances[i] = self._variance(self._volume(*first))
        variances.append(self._variance(self._volume(*second)))
        self._splits.append((i, first, second))

    def means(self, k: int) -> FloatArray:
        """The weighted mean of each non-empty box of the cut into ``k`` boxes ((k', D), k' <= k)."""
        while len(self._boxes) < k and not self._done:
            self._split()
        boxes = [self._full]
        for i, first, second in self._splits[: k - 1]:
            boxes[i] = first
            boxes.append(second)
        means = [m[1:-1] / m[0] for m in (self._volume(*box) for box in boxes) if m[0] > 0]
        return np.array(means)


_Box = tuple[tuple[int, ...], tuple[int, ...]]


def _wu_moments(
    points: FloatArray, weights: FloatArray, cells: NDArray[np.integer], bits: int
) -> tuple[Callable[..., FloatArray], Callable[[FloatArray], float], Callable[..., tuple[float, int, int]], _Box]:
    """Wu's prefix-summed moments and the functions that read them: box moments, variance, best cut."""
    dims = points.shape[1]
    grid = cells.shape[1]  # the box grid's axes: colour channels, which may be fewer than the coordinates
    side = (1 << bits) + 1  # one leading zero plane per axis for the prefix sums
    flat = np.ravel_multi_index(tuple((cells + 1).T), (side,) * grid)
    size = side**grid
    moments = np.empty((dims + 2, size))
    moments[0] = np.bincount(flat, weights=weights, minlength=size)
    for d in range(dims):
        moments[1 + d] = np.bincount(flat, weights=weights * points[:, d], minlength=size)
    moments[dims + 1] = np.bincount(flat, weights=weights * (points * points).sum(axis=1), minlength=size)
    moments = moments.reshape((dims + 2,) + (side,) * grid)
    for axis in range(1, grid + 1):
        np.cumsum(moments, axis=axis, out=moments)
    corners = list(itertools.product((0, 1), repeat=grid))

    def volume(lo: tuple[int, ...], hi: tuple[int | NDArray[np.intp], ...]) -> FloatArray:
        """Moments of the box lo < cell <= hi (prefix-sum coordinates), by inclusion-exclusion.

        One bound of ``hi`` may be an array of positions: the result then has a
        row per position, so every cut of an axis is scored at once.
        """
        total = np.zeros((dims + 2, 1))
        for corner in corners:
            index = tuple(hi[d] if c else lo[d] for d, c in enumerate(corner))
            sign = -1.0 if (grid - sum(corner)) % 2 else 1.0
            part = moments[(slice(None), *index)]
            total = total + sign * (part if part.ndim == 2 else part[:, None])
        return total.T if any(isinstance(h, np.ndarray) for h in hi) else total[:, 0]

    def variance(m: FloatArray) -> float:
        return 0.0 if m[0] <= 0 else float(m[-1] - (m[1:-1] ** 2).sum() / m[0])

    def best_cut(lo: tuple[int, ...], hi: tuple[int, ...]) -> tuple[float, int, int]:
        whole = volume(lo, hi)
        best = (-np.inf, -1, -1)
        for axis in range(grid):
            cuts = np.arange(lo[axis] + 1, hi[axis])
            if cuts.size == 0:
                continue
            lower = volume(lo, (*hi[:axis], cuts, *hi[axis + 1 :]))  # (cuts, moments)
            upper = whole - lower
            ok = (lower[:, 0] > 0) & (upper[:, 0] > 0)
            if not ok.any():
                continue
            # Maximising sum(|S|^2 / w) over both parts minimises their total variance.
            score = np.where(
                ok,
                (lower[:, 1:-1] ** 2).sum(1) / np.where(ok, lower[:, 0], 1)
                + (upper[:, 1:-1] ** 2).sum(1) / np.where(ok, upper[:, 0], 1),
                -np.inf,
            )
            i = int(np.argmax(score))
            if score[i] > best[0]:
                best = (float(score[i]), axis, int(cuts[i]))
        return best

    full = ((0,) * grid, (side - 1,) * grid)
    return volume, variance, best_cut, full
