"""K-means colour quantization: pixels in, an :class:`~kmq.Indexed` image out.

The objective is the teaching example's (k-means over every pixel), reached
without clustering every pixel:

1. Count the distinct colours (:mod:`kmq.histogram`): each becomes one point
   weighted by its pixel count, which leaves the objective unchanged.
2. Group them further into 32 x 32 x 32 bins and start from Wu's
   variance-minimising cut (Wu 1991), plus, for K <= 64, two k-means++ starts
   from the caller's seed; run weighted Lloyd on the bins from each and keep
   the best (:mod:`kmq.kmeans`).
3. Refine that on 64 x 64 x 64 bins, then on the exact distinct colours.
4. Round the centres to bytes (not truncate), merge duplicates, assign every
   distinct colour to its nearest rounded entry (so palette and labels agree
   exactly), drop unused entries, and look the labels up for every pixel.

The palette comes out in canonical order: ascending by the bytes of each entry
(R, G, B[, A]). An image with at most K distinct colours is kept exactly.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from . import dither as dithering
from . import kmeans
from .colour import DEFAULT_SPACE, SPACES, Space, from_space, to_space
from .container import MAX_K
from .errors import ParameterError
from .histogram import Histogram, histogram
from .images import ImageLike, as_array
from .indexed import Indexed

#: Colours as :class:`Options` keeps them: rows of 3 or 4 byte values, hashable.
Colours = tuple[tuple[int, ...], ...]
#: What ``palette`` and ``keep`` accept: (K, 3|4) colours, rows of them, or a built-in name,
#: palette file or hex list (:func:`kmq.palettes.load`, :func:`kmq.palettes.parse_colours`).
ColoursLike = NDArray[np.integer] | Sequence[Sequence[int]] | str | os.PathLike[str]

__all__ = [
    "quantize",
    "Prepared",
    "fit_palette",
    "Options",
    "check_options",
    "compact",
    "DEFAULT_K",
    "DEFAULT_DITHER_STRENGTH",
    "MAX_SEED",
    "SPACES",
]

#: The palette size kmq uses when none is given: 8 colours, 3 bits per pixel in raw packing.
DEFAULT_K = 8

#: Seeds are what numpy's generators accept and what the CLI documents: 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1

#: Largest K that also gets k-means++ restarts besides Wu's start: above it Wu's
#: start alone reaches the quality targets and restarts would double the time.
_RESTART_MAX_K = 64
_RESTARTS = 2
#: Cell bits of the coarse and fine bins for 3 and 4 channels (a 4-D grid must be coarser to stay small).
_COARSE_BITS = {3: 5, 4: 4}
_FINE_BITS = {3: 6, 4: 5}
#: Most Lloyd rounds on the fine bins: the coarse stage has done the travelling, and
#: at K=256 each round over about 70k bins costs 15 ms. 20 rounds against 100: 1.55 against
#: 2.39 CPU-seconds on the 12 MP photo, mean Kodak PSNR at K=256 40.385 against 40.386 dB.
_FINE_ROUNDS = 20
#: Up to this many distinct colours (graphics, logos, pixel art) the bins are skipped
#: and Lloyd runs on the exact colours to convergence: on such images the bins lose
#: entries (a logo at K=256 came back with 109 colours, 46.8 dB against 55.7 dB).
#: Photos have more colours (Kodak 13k to 72k), where 32k would double the time for
#: +0.03 dB at K=64.
_EXACT_MAX_COLOURS = 1 << 13
#: Lloyd rounds on the exact distinct colours after the bins: each round costs one
#: nearest-centre pass over every distinct colour (about 0.08 s at K=256 for a 12 MP photo).
_EXACT_ROUNDS = 2
#: Lloyd rounds of the fast fit that ``k="auto"`` searches with before its full fits.
_FAST_ROUNDS = 8


#: What the ``k="auto"`` search keeps between fits: whatever does not depend on K.
_Cache = dict[tuple[object, ...], Any]


def _cached(cache: _Cache | None, key: tuple[object, ...], make: Callable[[], _T]) -> _T:
    """``make()``, kept in ``cache`` under ``key`` when there is a cache."""
    if cache is None:
        return make()
    if key not in cache:
        cache[key] = make()
    return cast(_T, cache[key])


@dataclass(frozen=True)
class _Points:
    """Weighted points in the clustering space, with their cells on a grid of ``bits`` per axis."""

    coords: NDArray[np.float64]
    weights: NDArray[np.float64]
    cells: NDArray[np.intp]
    bits: int


def _binned(
    colours: NDArray[np.uint8], coords: NDArray[np.float64], weights: NDArray[np.float64], bits: int
) -> _Points:
    """Merge colours that share a cell of ``2**bits`` per axis into their weighted mean."""
    shape = (1 << bits,) * colours.shape[1]
    flat = np.ravel_multi_index(tuple((colours >> (8 - bits)).T), shape)
    size = 1 << (bits * colours.shape[1])
    mass: NDArray[np.float64] = np.bincount(flat, weights=weights, minlength=size).astype(np.float64, copy=False)
    occupied = np.flatnonzero(mass)
    sums = np.stack(
        [np.bincount(flat, weights=weights * coords[:, d], minlength=size)[occupied] for d in range(coords.shape[1])], 1
    )
    grid = np.stack(np.unravel_index(occupied, shape), 1)
    return _Points(sums / mass[occupied, None], mass[occupied], grid, bits)


def check_options(
    k: object,
    seed: object,
    space: object,
    min_psnr: object,
    dither: object = False,
    *,
    names: Mapping[str, str] | None = None,
    prefix: str = "",
) -> None:
    """Check :func:`quantize`'s options before any work, with messages that name them.

    This is the one place where the quantizer's options are checked:
    :class:`Options` calls it, and so does the Pillow plugin under its own names.

    Parameters
    ----------
    k, seed, space, min_psnr, dither
        As :class:`Options` takes them.
    names : mapping, optional
        What the caller calls each option (the Pillow plugin calls ``k``
        ``colors``); the default is the parameter names.
    prefix : str
        Put before every message, e.g. ``"KMQ save option "``.

    Raises
    ------
    ParameterError
        Naming the first option that is out of range or out of place.
    """
    name = {"k": "k", "seed": "seed", "space": "space", "min_psnr": "min_psnr", "dither": "dither", **(names or {})}
    k_, psnr_ = name["k"], name["min_psnr"]
    if k == "auto":
        if min_psnr is None:
            raise ParameterError(f"{prefix}{k_}='auto' needs {psnr_}, a positive number of dB")
        if not isinstance(min_psnr, numbers.Real) or isinstance(min_psnr, bool) or not float(min_psnr) > 0:
            raise ParameterError(f"{prefix}{psnr_} must be a positive number of dB, got {min_psnr!r}")
    elif isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= int(k) <= MAX_K:
        raise ParameterError(f"{prefix}{k_} must be an integer in 1..{MAX_K} or 'auto', got {k!r}")
    elif min_psnr is not None:
        raise ParameterError(f"{prefix}{psnr_} applies only with {k_}='auto', got {k_}={k!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ParameterError(f"{prefix}{name['seed']} must be an integer in 0..{MAX_SEED}, got {seed!r}")
    if space not in SPACES:
        raise ParameterError(f"{prefix}{name['space']} must be one of {', '.join(SPACES)}, got {space!r}")
    if not _dither_ok(dither):
        raise ParameterError(
            f"{prefix}{name['dither']} must be True, False, a strength from 0 to 1 or 'ordered', got {dither!r}"
        )


def _dither_ok(dither: object) -> bool:
    if isinstance(dither, bool | np.bool_) or (isinstance(dither, str) and dither == "ordered"):
        return True
    return isinstance(dither, numbers.Real) and 0.0 <= float(dither) <= 1.0


#: The error-diffusion strength of ``dither=True`` (``--dither`` alone): on Kodak and CQ100 it scores
#: better than full strength on butteraugli, ssimulacra, PSNR and size at once (BENCHMARKS.md, issue 13).
DEFAULT_DITHER_STRENGTH = 0.75


def _dither_value(dither: object) -> float | Literal["ordered"]:
    """The one form of a checked dither option: ``"ordered"``, or the error-diffusion strength (0: none)."""
    if isinstance(dither, str):
        return "ordered"
    if isinstance(dither, bool | np.bool_):
        return DEFAULT_DITHER_STRENGTH if dither else 0.0
    return float(dither)  # type: ignore[arg-type]  # checked


@dataclass(frozen=True)
class Options:
    """The quantizer's options, checked when made: what :func:`quantize`, :func:`kmq.encode`,
    :func:`kmq.write`, the Pillow plugin, :mod:`kmq.batch` and the CLI pass around.

    Raises
    ------
    ParameterError
        From :func:`check_options`, naming the first bad field.
    """

    k: int | Literal["auto"] = DEFAULT_K
    """Palette size, 1 to 256; or ``"auto"`` for the smallest K whose result reaches ``min_psnr``."""
    seed: int = 0
    """Seed of the k-means++ restarts, 0 to 2**32 - 1."""
    space: Space = DEFAULT_SPACE
    """Where to cluster: ``"perceptual"`` (Oklab with a share of RGB), ``"rgb"`` (exact MSE) or ``"oklab"``."""
    dither: bool | float | Literal["ordered"] = False
    """How pixels are mapped to the palette (:mod:`kmq.dither`): False (or 0) the nearest entry;
    a strength up to 1, error diffusion (True: :data:`DEFAULT_DITHER_STRENGTH`); ``"ordered"``,
    Bayer dithering. Kept as the strength (a float) or ``"ordered"``."""
    min_psnr: float | None = None
    """Quality target in dB (premultiplied PSNR for RGBA), only with ``k="auto"``."""
    palette: Colours | None = None
    """Remap to exactly these entries, in this order, instead of fitting a palette
    (:func:`kmq.palettes.load` takes a name or file); ``k`` is then the palette's size."""
    keep: Colours | None = None
    """Colours the fitted palette must contain, whether or not a pixel uses them."""

    def __post_init__(self) -> None:
        check_options(self.k, self.seed, self.space, self.min_psnr, self.dither)
        object.__setattr__(self, "palette", _rows(self.palette, "palette"))
        object.__setattr__(self, "keep", _rows(self.keep, "keep"))
        if self.palette is not None:
            if self.keep is not None:
                raise ParameterError("keep applies to a fitted palette; with palette the entries are all given")
            if self.k == "auto" or (self.k != DEFAULT_K and self.k != len(self.palette)):
                raise ParameterError(
                    f"k={self.k!r} does not apply with a palette of {len(self.palette)} entries: give one or the other"
                )
            object.__setattr__(self, "k", len(self.palette))  # so that equal requests compare equal
        if self.keep is not None:
            # A colour kept twice would be a second fixed centre that never wins a pixel.
            object.__setattr__(self, "keep", tuple(dict.fromkeys(self.keep)))
            if self.k == "auto":
                raise ParameterError("keep needs a number of colours k, not 'auto'")
            if len(self.keep) > int(self.k):
                raise ParameterError(f"keep has {len(self.keep)} colours, more than k={self.k}")
        # numpy integers and floats become Python's, so that equal options compare and hash equal.
        object.__setattr__(self, "k", "auto" if self.k == "auto" else int(self.k))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "dither", _dither_value(self.dither))
        if self.min_psnr is not None:
            object.__setattr__(self, "min_psnr", float(self.min_psnr))


_T = TypeVar("_T")


def _rows(value: object, name: str) -> Colours | None:
    """Colours as the hashable rows :class:`Options` keeps, from an array, rows, or a name/file/hex list."""
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        from . import palettes  # reads files: only when a palette is named

        # A string may be hex colours; a path is always a file, whatever its name looks like.
        text = value if isinstance(value, str) else ""
        looks_hex = bool(text.strip()) and all(palettes.HEX_WORD.fullmatch(w) for w in text.replace(",", " ").split())
        array = palettes.parse_colours(text, name) if looks_hex else palettes.load(value, name)
    else:
        try:
            array = np.asarray(value)
        except ValueError:  # rows of different lengths
            raise ParameterError(f"{name} must be (K, 3) or (K, 4) colours: its rows differ in length") from None
        if array.ndim != 2 or array.shape[1] not in (3, 4) or not 1 <= array.shape[0] <= MAX_K:
            raise ParameterError(
                f"{name} must be (K, 3) or (K, 4) colours with 1 <= K <= {MAX_K}, got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
            raise ParameterError(f"{name} colours must be integers 0 to 255")
    return tuple(tuple(int(v) for v in row) for row in array)


def _colour_array(rows: Colours, channels: int, name: str) -> NDArray[np.uint8]:
    """``rows`` as (K, channels) bytes: RGB colours are opaque in an RGBA image."""
    array = np.array(rows, dtype=np.uint8)
    if array.shape[1] == channels:
        return array
    if array.shape[1] == 3:
        return np.hstack([array, np.full((array.shape[0], 1), 255, dtype=np.uint8)])
    raise ParameterError(f"{name} colours have alpha, and this image has none: give RGB colours or an RGBA image")


_DEFAULTS = Options()


def _centres(
    colours: NDArray[np.uint8],
    counts: NDArray[np.float64],
    coords: NDArray[np.float64],
    k: int,
    seed: int,
    fast: bool = False,
    cache: _Cache | None = None,
    keep: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """K-means centres in the clustering space for more than ``k`` weighted colours.

    ``fast`` (the ``k="auto"`` search's estimate): Wu's start and a few Lloyd rounds on the
    coarse bins only, about a tenth of the full fit's time. ``cache`` keeps what does not
    depend on ``k`` (the bins, Wu's cut) between the search's fits. ``keep``: centres that
    stay where they are (the first rows of the result); the other ``k - len(keep)`` are fitted
    around them.
    """
    channels = colours.shape[1]
    n = colours.shape[0]
    fixed = np.empty((0, coords.shape[1])) if keep is None else keep
    free = k - fixed.shape[0]
    if free <= 0:
        return fixed  # every entry is kept: nothing to fit
    coarse = _cached(cache, ("coarse", n), lambda: _binned(colours, coords, counts, _COARSE_BITS[channels]))
    exact = n <= _EXACT_MAX_COLOURS or coarse.coords.shape[0] < 4 * k
    if exact:
        # Few colours, or too few bins to tell the clusters apart: cluster the exact colours throughout.
        coarse = _Points(coords, counts, colours.astype(np.intp) >> (8 - coarse.bits), coarse.bits)
    cut = _cached(
        cache, ("wu", n, exact), lambda: kmeans.WuCut(coarse.coords, coarse.weights, coarse.cells, coarse.bits)
    )
    held = fixed.shape[0]

    def fit(
        points: _Points | tuple[NDArray[np.float64], NDArray[np.float64]], start: NDArray[np.float64], **kw: Any
    ) -> tuple[NDArray[np.float64], float]:
        pts, weights = (points.coords, points.weights) if isinstance(points, _Points) else points
        return kmeans.lloyd(pts, weights, start, fixed=held, **kw)

    if fast:
        return fit(coarse, np.vstack([fixed, cut.means(free)]), max_iter=_FAST_ROUNDS)[0]
    rng = np.random.default_rng(seed)
    starts = [np.vstack([fixed, cut.means(free)])]
    if starts[0].shape[0] < k:
        # Wu cannot split a single cell; k-means++ places the remaining centres.
        starts[0] = kmeans.kmeans_plusplus(coarse.coords, coarse.weights, k, rng, initial=starts[0])
    if k <= _RESTART_MAX_K:
        initial = fixed if held else None
        starts += [
            kmeans.kmeans_plusplus(coarse.coords, coarse.weights, k, rng, initial=initial) for _ in range(_RESTARTS)
        ]
    runs = [fit(coarse, start) for start in starts]
    centres = min(runs, key=lambda run: run[1])[0]
    if exact:
        return centres
    fine = _cached(cache, ("fine", n), lambda: _binned(colours, coords, counts, _FINE_BITS[channels]))
    if fine.coords.shape[0] < coords.shape[0]:
        centres, _ = fit(fine, centres, max_iter=_FINE_ROUNDS)
    centres, _ = fit((coords, counts), centres, max_iter=_EXACT_ROUNDS, tol=0.0)
    return centres


def _entries(
    hist: Histogram,
    k: int,
    seed: int,
    space: Space,
    fast: bool = False,
    cache: _Cache | None = None,
    keep: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """Canonical palette of at most ``k`` entries for the histogram's colours, ``keep``'s among them."""
    colours, counts = hist.colours, hist.counts
    held = np.empty((0, colours.shape[1]), dtype=np.uint8) if keep is None else keep
    if colours.shape[0] + held.shape[0] <= k or (held.shape[0] and colours.shape[0] <= k):
        # Few enough colours to keep them all (a union of rows is a sort: only when it can be small).
        union = _unique_rows(np.vstack([colours, held]))
        if union.shape[0] <= k:
            return union
    fixed = np.empty((0, colours.shape[1]), dtype=np.uint8)
    clear = colours[:, -1] == 0 if colours.shape[1] == 4 else np.zeros(colours.shape[0], dtype=bool)
    if k >= 2 and clear.any():
        # As pngquant does: fully transparent pixels get one exact entry of their own
        # (their most common colour, or the transparent colours kept), and the visible
        # colours share the other entries.
        invisible = held[:, -1] == 0 if held.shape[1] == 4 else np.zeros(held.shape[0], dtype=bool)
        fixed = held[invisible] if invisible.any() else colours[clear][np.argmax(counts[clear])][None]
        held = held[~invisible]
        colours, counts, k = colours[~clear], counts[~clear], k - fixed.shape[0]
        if held.shape[0] > k:
            raise ParameterError(
                f"keep has {held.shape[0]} visible colours and this image's transparent pixels need an entry "
                f"of their own: k must be at least {held.shape[0] + fixed.shape[0]}"
            )
    if colours.shape[0] + held.shape[0] <= k:
        found = np.vstack([colours, held])
    else:
        visible = colours
        coords = _cached(cache, ("coords", visible.shape[0]), lambda: to_space(visible, space))
        kept = to_space(held, space) if held.shape[0] else None
        centres = _centres(colours, counts, coords, k, seed, fast, cache, kept)
        found = from_space(centres, space, colours.shape[1])
        found[: held.shape[0]] = held  # exactly the colours asked for, whatever the rounding
    return _unique_rows(np.vstack([found, fixed]))


def _unique_rows(rows: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``np.unique(rows, axis=0)`` for byte rows: ascending by their bytes, each once.

    np.unique imports numpy.ma on first use (30 ms of a process's first quantize).
    """
    ordered = rows[np.lexsort(rows.T[::-1])]
    keep = np.ones(ordered.shape[0], dtype=bool)
    keep[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    return ordered[keep]


def _palette(
    hist: Histogram, k: int, seed: int, space: Space, cache: _Cache | None = None, keep: NDArray[np.uint8] | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.intp]]:
    """Canonical palette and the label of each distinct colour (not yet compacted)."""
    palette = _entries(hist, k, seed, space, cache=cache, keep=keep)
    if palette.shape[0] == hist.colours.shape[0] and keep is None:
        return palette, np.arange(palette.shape[0])  # every colour kept: it is its own entry
    coords = _cached(cache, ("coords", hist.colours.shape[0]), lambda: to_space(hist.colours, space))
    labels, _ = kmeans.nearest(coords, to_space(palette, space))
    return palette, labels


def compact(
    palette: NDArray[np.uint8], labels: NDArray[np.integer], keep: NDArray[np.uint8] | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Drop the palette entries no label uses and renumber the labels; the entries keep their order.

    Parameters
    ----------
    palette : (K, C) uint8 ndarray
    labels : integer ndarray of any shape
        Values below K (at most 256 of them are used).
    keep : (J, C) uint8 ndarray, optional
        Colours whose entries stay even if unused.

    Returns
    -------
    palette : (K', C) uint8 ndarray
        The used entries (and the kept ones), K' <= K.
    labels : uint8 ndarray of ``labels``' shape
    """
    used = np.bincount(labels.reshape(-1), minlength=palette.shape[0]) > 0
    if keep is not None and keep.shape[0]:
        used |= (palette[:, None, :] == keep[None, :, :]).all(axis=2).any(axis=1)
    if used.all():
        return np.ascontiguousarray(palette), labels.astype(np.uint8, copy=False)
    renumber = (np.cumsum(used) - 1).astype(np.uint8)
    return np.ascontiguousarray(palette[used]), renumber[labels]


def _indexed(
    pixels: NDArray[np.uint8],
    hist: Histogram,
    k: int,
    seed: int,
    space: Space,
    dither: float | Literal["ordered"],
    measure: bool = False,
    cache: _Cache | None = None,
    given: NDArray[np.uint8] | None = None,
    keep: NDArray[np.uint8] | None = None,
) -> tuple[Indexed, float]:
    """Quantize to at most ``k`` colours; also return the PSNR of the result if ``measure`` (else NaN).

    ``given``: remap to exactly these entries in their order (none is dropped); ``keep``: entries
    the fitted palette must hold (none of them is dropped).
    """
    from . import metrics  # only -k auto measures; `import kmq` defers metrics

    if given is not None:
        palette = given
        labels, _ = kmeans.nearest(to_space(hist.colours, space), to_space(palette, space))
        per_colour = labels
    else:
        # The coordinates of the colours are made once, whether or not the caller keeps them.
        palette, per_colour = _palette(hist, k, seed, space, {} if cache is None else cache, keep)
    held = given if given is not None else keep
    if dither and (given is not None or palette.shape[0] < hist.colours.shape[0]):
        base = hist.labels(per_colour.astype(np.uint8))
        if dither == "ordered":
            dithered = dithering.ordered(pixels, palette, base)
        else:
            dithered = dithering.diffuse(pixels, palette, base, float(dither))
        result = Indexed(*map(_handed_over, compact(palette, dithered, held)))
        return result, metrics.psnr(pixels, result) if measure else math.nan
    palette, per_colour_u8 = compact(palette, per_colour, held)
    # The same figure as metrics.psnr(pixels, result), from one row per distinct colour.
    quality = metrics.psnr(hist.colours, palette[per_colour_u8], weights=hist.counts) if measure else math.nan
    return Indexed(_handed_over(palette), _handed_over(hist.labels(per_colour_u8))), quality


def _handed_over(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Mark an array that nothing else holds read-only, so that :class:`Indexed` keeps it without a copy."""
    array.flags.writeable = False
    return array


def _options(
    k: object,
    seed: object,
    space: object,
    dither: object,
    min_psnr: object,
    options: Options | None,
    palette: object = None,
    keep: object = None,
) -> Options:
    """The options object :func:`quantize` works with, from its keywords or as given."""
    if options is None:
        return Options(k, seed, space, dither, min_psnr, palette, keep)  # type: ignore[arg-type]  # checked there
    if not isinstance(options, Options):
        raise ParameterError(f"options must be a kmq.QuantizeOptions, got {options!r}")
    given = (k, seed, space, dither, min_psnr)
    defaults = (_DEFAULTS.k, _DEFAULTS.seed, _DEFAULTS.space, _DEFAULTS.dither, _DEFAULTS.min_psnr)
    if given != defaults or palette is not None or keep is not None:
        raise ParameterError("give either options or k, seed, space, dither, min_psnr, palette and keep, not both")
    return options


def quantize(
    image: ImageLike,
    k: int | Literal["auto"] = DEFAULT_K,
    *,
    seed: int = 0,
    space: Space = DEFAULT_SPACE,
    dither: bool | float | Literal["ordered"] = False,
    min_psnr: float | None = None,
    palette: ColoursLike | None = None,
    keep: ColoursLike | None = None,
    options: Options | None = None,
) -> Indexed:
    """Reduce an image to at most ``k`` colours with K-means.

    Parameters
    ----------
    image : (H, W), (H, W, 1) or (H, W, 3|4) uint8 ndarray, or PIL.Image.Image
        Normalised by :func:`kmq.images.as_array` (a 2-D array is grey); alpha is kept (and
        clustered, premultiplied, with the colours) only if some pixel is not
        opaque.
    k : int or "auto"
        Palette size, 1 to 256; or ``"auto"``: the result of ``quantize(image, K)``
        for a K whose result reaches ``min_psnr`` (:func:`kmq.metrics.psnr`,
        premultiplied for RGBA) while that of K - 1 does not (or K = 1): the
        smallest such K when quality grows with K, as it does in practice. A fast
        fit steers the search, so it costs about two fits rather than nine.
    seed : int
        Seed of the k-means++ restarts, 0 to 2**32 - 1. The same image and
        options give the same result.
    space : {"perceptual", "rgb", "oklab"}
        Where to cluster (:mod:`kmq.colour`): ``"perceptual"``, the default,
        follows perceived difference (Oklab) while each entry stays its
        cluster's mean RGB colour; ``"rgb"`` minimises exactly the error PSNR
        measures; ``"oklab"`` the perceived difference alone.
    dither : bool, float or "ordered"
        How pixels are mapped to the palette (:mod:`kmq.dither`, RGB and
        RGBA): False or 0, each takes its nearest entry; a strength up to 1
        (True: 0.75), edge-aware Floyd-Steinberg error diffusion;
        ``"ordered"``, edge-aware Bayer dithering, for animation frames.
    min_psnr : float, optional
        Quality target in dB for ``k="auto"``.
    palette : colours, name or file, optional
        Remap to exactly this palette instead of fitting one: (K, 3|4) colours,
        a built-in name (``"pico8"``, ``"web216"``, ...) or a palette file
        (:mod:`kmq.palettes`). Every entry is kept, in the given order, so
        the result's palette equals it; ``k`` must then be left alone.
    keep : colours, optional
        Colours the fitted palette must contain (at most ``k``), as for
        ``palette`` or a hex list such as ``"#ff0000,#ffffff"``.
    options : Options, optional
        All of the above in one object (what :mod:`kmq.batch` and the Pillow
        plugin pass); the separate keywords must then keep their defaults.

    Returns
    -------
    Indexed
        Palette in canonical order (ascending bytes), every entry used, and
        the labels. An image with at most ``k`` distinct colours is kept exactly.

    Raises
    ------
    ParameterError
        If an option is invalid, error diffusion is asked of an install
        without kmq's C extension, or ``min_psnr`` cannot be reached with 256 colours.
    ImageError
        If a Pillow image cannot be read.
    """
    options = _options(k, seed, space, dither, min_psnr, options, palette, keep)
    k, seed, space, dither, min_psnr = options.k, options.seed, options.space, options.dither, options.min_psnr
    pixels = as_array(image)
    if options.palette is not None and len(options.palette[0]) > pixels.shape[2]:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], 255, dtype=np.uint8)])  # an opaque image, an RGBA palette
    given = None if options.palette is None else _colour_array(options.palette, pixels.shape[2], "palette")
    kept = None if options.keep is None else _colour_array(options.keep, pixels.shape[2], "keep")
    hist = histogram(pixels)
    if k != "auto":
        return _indexed(pixels, hist, int(k), int(seed), space, dither, given=given, keep=kept)[0]
    assert min_psnr is not None  # checked above
    return _auto(pixels, hist, float(min_psnr), int(seed), space, dither)


class Prepared:
    """One image made ready to quantize at several K: what ``kmq compare`` and ``kmq sweep`` use.

    The colour histogram, the colours' coordinates in the clustering space, their bins and
    Wu's cut do not depend on K: they are made once, here and on the first fits, and every
    :meth:`fit` reuses them. Each result is exactly ``quantize(image, k, seed=seed,
    space=space, dither=dither)``, bit for bit; only the time differs.

    Parameters
    ----------
    image : ndarray or PIL.Image.Image
        As :func:`quantize` takes it (normalised once, by :func:`kmq.images.as_array`).
    seed, space, dither
        As for :func:`quantize`.

    Raises
    ------
    ParameterError
        If an option is invalid.
    ImageError
        If a Pillow image cannot be read.
    """

    def __init__(
        self,
        image: ImageLike,
        *,
        seed: int = 0,
        space: Space = DEFAULT_SPACE,
        dither: bool | float | Literal["ordered"] = False,
    ) -> None:
        options = Options(seed=seed, space=space, dither=dither)
        self.seed, self.space, self.dither = options.seed, options.space, options.dither
        self.pixels: NDArray[np.uint8] = as_array(image)
        """(H, W, C) the image as :func:`quantize` sees it."""
        self.histogram: Histogram = histogram(self.pixels)
        """Its distinct colours and their counts, counted once."""
        # Everything that does not depend on K (keyed as the k="auto" search keys it).
        self._cache: _Cache = {}

    def fit(self, k: int) -> tuple[Indexed, float]:
        """``quantize(image, k, ...)`` and its PSNR against the image.

        Parameters
        ----------
        k : int
            Palette size, 1 to 256.

        Returns
        -------
        indexed : Indexed
            Bit for bit what :func:`quantize` returns with these options.
        psnr : float
            ``kmq.metrics.psnr(image, indexed)`` (``inf`` when lossless), measured on the
            histogram where no dithering moved a pixel off its colour's label: the sums are
            exact integers, so the figure is the same.

        Raises
        ------
        ParameterError
            If ``k`` is not an integer in 1..256.
        """
        check_options(k, self.seed, self.space, None, self.dither)
        return _indexed(
            self.pixels, self.histogram, int(k), self.seed, self.space, self.dither, measure=True, cache=self._cache
        )


def fit_palette(
    colours: NDArray[np.uint8], counts: NDArray[np.floating], options: Options | None = None
) -> NDArray[np.uint8]:
    """The palette :func:`quantize` would fit to weighted colours: what ``--shared-palette`` fits to a batch.

    Parameters
    ----------
    colours : (N, 3|4) uint8 ndarray
        Distinct colours, e.g. the merged histograms of several images.
    counts : (N,) ndarray
        Pixels per colour.
    options : Options, optional
        K (a number), seed, space and keep; ``palette`` must not be set.

    Returns
    -------
    (K', 3|4) uint8 ndarray
        Canonical order, K' <= K.

    Raises
    ------
    ParameterError
        If the colours are not (N, 3|4) uint8 with one count each, or ``options`` asks for
        ``k="auto"`` or gives a palette.
    """
    options = options or _DEFAULTS
    if options.k == "auto" or options.palette is not None:
        raise ParameterError("a shared palette is fitted with a number k, not 'auto' or a given palette")
    colours, counts = np.asarray(colours), np.asarray(counts)
    if colours.dtype != np.uint8 or colours.ndim != 2 or colours.shape[1] not in (3, 4) or not colours.shape[0]:
        raise ParameterError(f"colours must be (N, 3) or (N, 4) uint8 with N >= 1, got {colours.dtype} {colours.shape}")
    if counts.shape != (colours.shape[0],) or not np.all(counts > 0):
        raise ParameterError(
            f"counts must be {colours.shape[0]} positive numbers, one per colour, got shape {counts.shape}"
        )
    order = np.lexsort(colours.T[::-1])
    colours, counts = np.ascontiguousarray(colours[order]), np.asarray(counts, dtype=np.float64)[order]
    hist = Histogram(colours, counts, (1, colours.shape[0]), colours[None], None)
    keep = None if options.keep is None else _colour_array(options.keep, colours.shape[1], "keep")
    return _entries(hist, int(options.k), options.seed, options.space, keep=keep)


def _sample(hist: Histogram) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """What the search for K measures its estimates on: the colours merged into the fine bins.

    The within-bin error it leaves out is nearly the same at every K, and the search measures
    it (a full fit against its estimate) before it trusts the estimates.
    """
    if hist.colours.shape[0] <= _EXACT_MAX_COLOURS:
        return hist.colours, hist.counts
    channels = hist.colours.shape[1]
    fine = _binned(hist.colours, to_space(hist.colours, "rgb"), hist.counts, _FINE_BITS[channels])
    return from_space(fine.coords, "rgb", channels), fine.weights


def _estimate(
    hist: Histogram,
    sample: tuple[NDArray[np.uint8], NDArray[np.float64]],
    k: int,
    seed: int,
    space: Space,
    cache: _Cache | None = None,
) -> float:
    """PSNR on ``sample`` of the fast fit with ``k`` colours: what the search for K steers by."""
    from . import metrics

    palette = _entries(hist, k, seed, space, fast=True, cache=cache)
    colours, counts = sample
    coords = _cached(cache, ("sample",), lambda: to_space(colours, space))
    labels, _ = kmeans.nearest(coords, to_space(palette, space))
    return metrics.psnr(colours, palette[labels], weights=counts)


def _auto(
    pixels: NDArray[np.uint8],
    hist: Histogram,
    target: float,
    seed: int,
    space: Space,
    dither: float | Literal["ordered"],
) -> Indexed:
    """The result of the smallest K that reaches ``target``, found without a full fit per step.

    A bisection on the fast fit (:func:`_estimate`) gives K0; one full fit there measures how
    far the estimate falls short, and a second bisection on the corrected estimate gives K1.
    Full fits then walk from K1 (down while they reach the target, up while they miss it,
    by steps of 1, 1, 2, 4, ... and then bisection) until K reaches it and K - 1 does not. So the
    result is exactly ``quantize(pixels, K)`` for a K whose full fit reaches ``target``
    while that of K - 1 misses it (or K = 1); usually three full fits are made (K0, K1, K1 - 1).
    """
    estimates: dict[int, float] = {}
    fits: dict[int, tuple[Indexed, float]] = {}
    sample = _sample(hist)
    cache: _Cache = {}

    def estimate(k: int) -> float:
        if k not in estimates:
            estimates[k] = _estimate(hist, sample, k, seed, space, cache)
        return estimates[k]

    def fit(k: int) -> tuple[Indexed, float]:
        if k not in fits:
            fits[k] = _indexed(pixels, hist, k, seed, space, dither, measure=True, cache=cache)
        return fits[k]

    def reaches(k: int) -> bool:
        return fit(k)[1] >= target

    def smallest(offset: float) -> int:
        """Smallest K whose estimate plus ``offset`` reaches the target (MAX_K if none)."""
        low, high = 1, MAX_K
        while low < high:
            middle = (low + high) // 2
            if estimate(middle) + offset >= target:
                high = middle
            else:
                low = middle + 1
        return low

    first = smallest(0.0)
    shortfall = fit(first)[1] - estimate(first)
    low = smallest(shortfall) if math.isfinite(shortfall) else first
    # The corrected estimate is usually within a few K: steps of 1, 1, 2, 4, ... from it.
    guess, steps = low, [1, 1, *(2**i for i in range(1, 9))]
    if reaches(guess):
        high = guess  # high reaches; find a K below that misses
        for step in steps:
            if high - step < 1 or not reaches(high - step):
                break
            high -= step
        low = high - step + 1 if high - step >= 1 else 1  # high - step misses (or is below 1)
    else:
        low = guess + 1  # guess misses (so does low - 1); find a K above that reaches
        for step in steps:
            if low + step - 1 >= MAX_K or reaches(low + step - 1):
                break
            low += step
        high = min(MAX_K, low + step - 1)
        if not reaches(high):
            quality = fit(high)[1]
            raise ParameterError(f"min_psnr {target} dB is out of reach: {MAX_K} colours give {quality:.2f} dB")
    while low < high:  # invariant: high reaches, low - 1 misses (or low = 1)
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle + 1
    return fit(high)[0]
