"""Payload coding 1, "ctx1": context-modelled labels under a binary range coder.

``spec/FORMAT.md`` section 5 defines it. In short: the label plane is cut into
S horizontal stripes, each coded on its own, so that stripes can be decoded on
separate cores. Within a stripe each label is coded as a few yes/no questions
("is it W's label? N's? NE's? NW's?") whose probabilities adapt in a context
made of which of those neighbours are equal; a label that is none of them is
spelled out bit by bit under W's label. The coder itself is the binary range
coder of LZMA with 15-bit probabilities.

The per-pixel work is in the C extension :mod:`kmq._ctx1` (one stripe per
call, without the GIL), or, where kmq was installed without a C compiler, in
its plain-Python twin :mod:`kmq._ctx1_py` (same bytes, far slower; ``BACKEND``
says which is in use, and ``KMQ_CTX1_BACKEND=python`` or ``=c`` chooses). This
module lays out and validates the stripe table, runs stripes on threads and
turns the coder's status codes into errors.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from . import threads
from .errors import FormatError, KmqWarning, ParameterError, TruncatedError

__all__ = [
    "BACKEND",
    "StripeCoder",
    "STRIPE_PIXELS",
    "MAX_STRIPES",
    "MIN_STRIPE_PIXELS",
    "max_stripes",
    "MIN_STREAM",
    "MIN_PAYLOAD",
    "stripe_count",
    "stripe_rows",
    "max_payload_size",
    "encode",
    "read_stripe_count",
    "stripe_table",
    "decode",
    "decode_pixels",
    "can_expand",
    "expand",
    "warn_backend_choice",
]


#: The warning about a KMQ_CTX1_BACKEND value that chooses nothing, until :func:`warn_backend_choice` gives it.
_choice_warning: str | None = None


def _load_backend() -> tuple[ModuleType, str]:
    """The stripe coder and its name: the C extension, or the Python fallback where it is missing or chosen."""
    global _choice_warning
    choice = os.environ.get("KMQ_CTX1_BACKEND", "").strip().lower()
    if choice not in ("", "c", "python"):
        # Not warned here, during `import kmq`, where no caller could show it as its own line.
        _choice_warning = f"KMQ_CTX1_BACKEND={choice!r} is not 'c' or 'python'; ignored"
        choice = ""
    if choice != "python":
        try:
            from . import _ctx1

            return _ctx1, "C"
        except ImportError:
            if choice == "c":
                raise
    from . import _ctx1_py

    return _ctx1_py, "python"


def warn_backend_choice() -> None:
    """Warn, once per process, if ``KMQ_CTX1_BACKEND`` holds neither ``c`` nor ``python``.

    The first coding-1 encode or decode calls this; the command line calls it
    first, to show the warning as one line of its own.

    Warns
    -----
    KmqWarning
        ``KMQ_CTX1_BACKEND='VALUE' is not 'c' or 'python'; ignored``.
    """
    global _choice_warning
    if _choice_warning is not None:
        text, _choice_warning = _choice_warning, None
        warnings.warn(text, KmqWarning, stacklevel=2)


_backend, _name = _load_backend()
#: Which stripe coder is in use: ``"C"`` (the extension) or ``"python"`` (the fallback, same bytes).
BACKEND: str = _name

#: Pixels per stripe the encoder aims at. Measured on the 12 MP photo at K=8
#: (BENCHMARKS.md, issue 4): 6 stripes cost 0.4 % in size and let two cores
#: decode in about half the time; a 0.4 MP Kodak image stays in one stripe.
STRIPE_PIXELS = 1 << 21
#: The stripe count is a u16.
MAX_STRIPES = 0xFFFF
#: Fewest pixels a stripe may hold on average when there are several (rule D6): every stripe
#: starts a fresh model (up to 1.2 MB of slots at K = 16), so a file of many tiny stripes
#: would make a decoder do far more work than its pixels justify.
MIN_STRIPE_PIXELS = 1 << 12
#: Shortest stream a stripe can have: the range coder's first byte and the four
#: bytes of its initial code.
MIN_STREAM = 5

_COUNT = struct.Struct(">H")
_LENGTH = struct.Struct(">I")
#: Shortest payload: a stripe count, one length and one minimal stream.
MIN_PAYLOAD = _COUNT.size + _LENGTH.size + MIN_STREAM
#: Bytes a stripe may add beyond the raw payload: its u32 length and a minimal stream.
_STRIPE_SLACK = _LENGTH.size + MIN_STREAM

# Status codes of kmq._ctx1.decode, by value: (exception, message after "stream ").
_STATUS: dict[int, tuple[type[FormatError], str]] = {
    1: (TruncatedError, "is shorter than the {min} bytes that start a stream"),
    2: (FormatError, "starts with byte {detail}, not 0"),
    3: (FormatError, "starts with code FF FF FF FF, which is not below the initial range"),
    4: (TruncatedError, "ends early: it needs a byte past its end at pixel ({x}, {y})"),
    5: (FormatError, "decodes an escaped label >= k at pixel ({x}, {y})"),
    6: (FormatError, "decodes an escaped label equal to a neighbour candidate at pixel ({x}, {y})"),
    7: (FormatError, "has {detail} bytes left over after its last pixel"),
    8: (FormatError, "does not end cleanly: the code is not 0 after its last pixel"),
}
#: The coder's status for a stripe it stopped because an earlier stripe had failed.
_CANCELLED = 9

_T = TypeVar("_T")


class StripeCoder(NamedTuple):
    """A payload coding's per-stripe coder: coding 1's, or coding 2's bound to a palette (:mod:`kmq.mix`).

    Both codings share the stripe table, its limits and the threads; only the stream differs.
    """

    name: str
    """The coding's name, for error messages."""
    new_model: Callable[[int], object]
    """``new_model(k)``: a model buffer a thread reuses from one stripe to the next."""
    encode: Callable[..., bytes | None]
    """``encode(labels, width, rows, k, limit, model)``: one stripe's stream, or None past ``limit``."""
    decode: Callable[..., tuple[int, int, int, int]]
    """``decode(data, width, rows, k, out, model, stop, index)``: ``(status, x, y, detail)``."""


def stripe_count(width: int, height: int) -> int:
    """The number of stripes kmq's encoder uses for an image.

    ``ceil(width * height / STRIPE_PIXELS)``, within :func:`max_stripes`. It depends
    on the image size only, never on the machine, so equal inputs give equal files
    everywhere.
    """
    wanted = -(-width * height // STRIPE_PIXELS)
    return max(1, min(wanted, max_stripes(width, height)))


def max_stripes(width: int, height: int) -> int:
    """Most stripes the format allows for an image: ``min(H, 65535, max(1, W * H // 4096))``."""
    return min(height, MAX_STRIPES, max(1, width * height // MIN_STRIPE_PIXELS))


def stripe_rows(height: int, stripes: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of each stripe: stripe s starts at row ``floor(s * H / S)``."""
    bounds = [s * height // stripes for s in range(stripes + 1)]
    return list(itertools.pairwise(bounds))


def max_payload_size(raw_size: int, stripes: int) -> int:
    """Largest coding-1 payload the format allows (rule D6 of the spec).

    The raw payload plus the two-byte stripe count plus, per stripe, a length
    field and a minimal stream: coding 1 may never cost more than a few bytes
    over raw packing.
    """
    return raw_size + _COUNT.size + _STRIPE_SLACK * stripes


#: Images smaller than this code their stripes on the calling thread: starting a pool
#: costs about a millisecond, more than such an image takes to code.
THREAD_PIXELS = 1 << 20


def _ctx1_coder() -> StripeCoder:
    # Looked up per call, so that the backend in use (or a test's stand-in) is the one called.
    return StripeCoder("ctx1", _backend.new_model, _backend.encode, _backend.decode)


def _workers(jobs: int, pixels: int) -> int:
    return min(jobs, threads.available()) if pixels >= THREAD_PIXELS else 1


def _run(
    count: int,
    work: Callable[[int, object], _T],
    k: int,
    workers: int,
    new_model: Callable[[int], object] | None = None,
) -> list[_T]:
    """``[work(i, model) for i in range(count)]``, on ``workers`` threads when there are several.

    Each thread takes the next stripe in stripe order and keeps one model buffer for all the
    stripes it codes: the coder resets only the slots a stripe used, so a further stripe's fresh
    model costs in proportion to that stripe's work. The C code releases the GIL. An exception
    from ``work`` is raised for the lowest stripe that raised one. ``new_model`` makes each
    thread's model (default: the ctx1 coder's; coding 2 passes its own).
    """
    new_model = _backend.new_model if new_model is None else new_model
    if workers <= 1:
        model = new_model(k)
        return [work(i, model) for i in range(count)]
    results: list[_T | None] = [None] * count
    errors: list[tuple[int, BaseException]] = []
    indices = iter(range(count))  # shared: each thread takes the next stripe (next() holds the GIL)

    def worker() -> None:
        model = new_model(k)
        for i in indices:
            try:
                results[i] = work(i, model)
            except BaseException as exc:  # raised again on the calling thread
                errors.append((i, exc))
                return

    pool = [threading.Thread(target=worker, name=f"kmq-ctx1-{n}", daemon=True) for n in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise min(errors, key=lambda error: error[0])[1]
    return cast("list[_T]", results)


def encode(
    labels: NDArray[np.uint8],
    k: int,
    *,
    limit: int | None = None,
    stripes: int | None = None,
    coder: StripeCoder | None = None,
) -> bytes | None:
    """Code a label plane as a coding-1 payload (or, given ``coder``, that coding's).

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Every value < ``k``.
    k : int
        Palette size, 2 to 256 (coding 1 does not exist for K = 1).
    limit : int or None
        Give up and return None as soon as the payload would exceed this many
        bytes; the container passes the raw payload's size, so that a plane
        coding 1 cannot shrink costs little time.
    stripes : int or None
        Stripe count, 1 to :func:`max_stripes`; default :func:`stripe_count`.
    coder : StripeCoder or None
        The stripe coder; default coding 1's.

    Returns
    -------
    bytes or None
        The payload, or None if it would be longer than ``limit``.

    Raises
    ------
    ParameterError
        If ``k``, ``stripes`` or a label is out of range.
    """
    warn_backend_choice()
    coder = _ctx1_coder() if coder is None else coder
    height, width = labels.shape
    if not 2 <= k <= 256:
        raise ParameterError(f"coding {coder.name} needs k in 2..256, got {k}")
    count = stripe_count(width, height) if stripes is None else stripes
    if not 1 <= count <= max_stripes(width, height):
        raise ParameterError(f"stripes {count} not in 1..{max_stripes(width, height)} for {width}x{height} pixels")
    table = _COUNT.size + _LENGTH.size * count
    budget = (1 << 62) if limit is None else limit - table
    if budget < MIN_STREAM * count:
        return None
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    rows = stripe_rows(height, count)

    def work(index: int, model: object) -> bytes | None:
        start, stop = rows[index]
        try:
            stream: bytes | None = coder.encode(labels[start:stop], width, stop - start, k, budget, model)
        except ValueError as exc:  # a label >= k, at a pixel of the stripe
            _, value, x, y = exc.args
            raise ParameterError(f"label {value} >= k={k} at pixel ({x}, {start + y})") from None
        return stream

    streams = _run(count, work, k, _workers(count, width * height), coder.new_model)
    if any(stream is None for stream in streams):
        return None
    parts = [s for s in streams if s is not None]
    payload = b"".join([_COUNT.pack(count), *(_LENGTH.pack(len(s)) for s in parts), *parts])
    return None if limit is not None and len(payload) > limit else payload


def read_stripe_count(payload: bytes | bytearray | memoryview, width: int, height: int) -> int:
    """The stripe count S at the start of a coding-1 payload, checked against the image size (rule D6).

    Parameters
    ----------
    payload : bytes-like
        The payload, or at least its first two bytes.
    width, height : int
        From the validated header; they bound the stripe count.

    Returns
    -------
    int
        1 to :func:`max_stripes`.

    Raises
    ------
    TruncatedError
        If the payload is shorter than the count.
    FormatError
        If the count is out of range.
    """
    if len(payload) < _COUNT.size:
        raise TruncatedError(f"truncated: payload is {len(payload)} bytes, too short for the stripe count")
    (count,) = _COUNT.unpack(payload[: _COUNT.size])
    if not 1 <= count <= max_stripes(width, height):
        raise FormatError(f"stripe count {count} not in 1..{max_stripes(width, height)} for {width}x{height} pixels")
    return int(count)


def stripe_table(payload: memoryview, width: int, height: int) -> list[tuple[int, int]]:
    """Read and check the stripe table at the start of a coding-1 payload (rule D6).

    Only the table is read: the count and the S lengths. The caller checks
    that the payload is exactly as long as the table implies (the end of the
    last span) and within :func:`max_payload_size`.

    Parameters
    ----------
    payload : memoryview
        The payload, or as much of it as the file holds.
    width, height : int
        From the validated header; they bound the stripe count.

    Returns
    -------
    list of (start, stop)
        Each stripe's byte range within the payload.

    Raises
    ------
    TruncatedError
        If the payload ends inside the table.
    FormatError
        If the count is not in 1..:func:`max_stripes` or a length is below :data:`MIN_STREAM`.
    """
    count = read_stripe_count(payload, width, height)
    start = _COUNT.size + _LENGTH.size * count
    if len(payload) < start:
        raise TruncatedError(f"truncated: payload is {len(payload)} bytes, ends inside the table of {count} stripes")
    spans = []
    for index, (length,) in enumerate(_LENGTH.iter_unpack(payload[_COUNT.size : start])):
        if length < MIN_STREAM:
            raise FormatError(f"stripe {index} length {length} < {MIN_STREAM}")
        spans.append((start, start + length))
        start += length
    return spans


def decode(
    payload: memoryview,
    spans: list[tuple[int, int]],
    width: int,
    height: int,
    k: int,
    coder: StripeCoder | None = None,
) -> NDArray[np.uint8]:
    """Decode a coding-1 payload (or, given ``coder``, that coding's) into an (H, W) label plane.

    Parameters
    ----------
    payload : memoryview
        The payload bytes, exactly as long as ``spans`` implies.
    spans : list of (start, stop)
        From :func:`stripe_table`.
    width, height : int
        From the validated header.
    k : int
        Palette size, 2 to 256.
    coder : StripeCoder or None
        The stripe coder; default coding 1's.

    Returns
    -------
    (H, W) uint8 ndarray

    Raises
    ------
    FormatError, TruncatedError
        Naming the stripe, the rule and, where it applies, the pixel.
    """
    return _decode(payload, spans, width, height, k, coder, None)


def decode_pixels(
    payload: memoryview,
    spans: list[tuple[int, int]],
    width: int,
    height: int,
    palette: NDArray[np.uint8],
    coder: StripeCoder | None = None,
) -> NDArray[np.uint8]:
    """Decode a coding-1 payload (or, given ``coder``, that coding's) straight to pixels.

    :func:`decode` then ``palette[labels]``, without the label plane: each stripe is expanded
    on the thread that decoded it, as soon as it has decoded (in C where the C coder is built).

    Parameters
    ----------
    payload, spans, width, height, coder
        As for :func:`decode`.
    palette : (K, C) uint8 ndarray
        K = 2 to 256 entries of C = 3 or 4 channels.

    Returns
    -------
    (H, W, C) uint8 ndarray

    Raises
    ------
    FormatError, TruncatedError
        As :func:`decode`.
    """
    return _decode(payload, spans, width, height, palette.shape[0], coder, np.ascontiguousarray(palette, np.uint8))


def can_expand() -> bool:
    """Whether :func:`expand` runs in C (the C coder is in use), rather than with numpy's ``take``."""
    return getattr(_backend, "expand", None) is not None


def _expand_into(labels: NDArray[np.uint8], palette: NDArray[np.uint8], out: NDArray[np.uint8]) -> None:
    """``out[...] = palette[labels]``: in C without the GIL where the C coder is in use, else with numpy."""
    expand = getattr(_backend, "expand", None)
    if expand is not None:
        expand(labels, palette.shape[0], palette, out)
    else:
        np.take(palette, labels, axis=0, out=out)


def expand(labels: NDArray[np.uint8], palette: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``palette[labels]``, in row blocks on threads for large images.

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Every value < K (of a label >= K the C code writes unspecified bytes, numpy raises IndexError).
    palette : (K, C) uint8 ndarray

    Returns
    -------
    (H, W, C) uint8 ndarray
    """
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    height, width = labels.shape
    out = np.empty((height, width, palette.shape[1]), dtype=np.uint8)
    workers = min(_workers(height, labels.size), height)
    bounds = [(i * height // workers, (i + 1) * height // workers) for i in range(workers)]

    def work(index: int, model: object) -> None:
        start, stop = bounds[index]
        _expand_into(labels[start:stop], palette, out[start:stop])

    _run(workers, work, 0, workers, lambda k: None)
    return out


def _decode(
    payload: memoryview,
    spans: list[tuple[int, int]],
    width: int,
    height: int,
    k: int,
    coder: StripeCoder | None,
    palette: NDArray[np.uint8] | None,
) -> NDArray[np.uint8]:
    """:func:`decode`, or with ``palette`` :func:`decode_pixels`.

    With a palette, each stripe's labels go to a buffer of the stripe's size and are expanded
    on the thread that decoded them, while they are still in the cache; the pixels are allocated
    when the first stripe has decoded, so that a file whose streams fail (a decompression bomb
    with a short stream) costs at most the labels, as before, never the pixels.
    """
    warn_backend_choice()
    coder = _ctx1_coder() if coder is None else coder
    rows = stripe_rows(height, len(spans))
    labels = np.empty((height, width), dtype=np.uint8) if palette is None else None
    pixels: list[NDArray[np.uint8]] = []  # the pixel array, once a stripe has decoded
    # The lowest stripe that has failed so far. Stripes run in order (on one thread, or
    # started in order on several) and a stripe stops at its next row once an earlier one
    # has failed, so a bad file costs the work up to its first bad stripe, not the whole image.
    failed = np.full(1, len(spans), dtype=np.int32)
    lock = threading.Lock()

    def work(index: int, model: object) -> tuple[int, int, int, int]:
        if failed[0] < index:
            return _CANCELLED, 0, 0, 0
        (lo, hi), (start, stop) = spans[index], rows[index]
        out = labels[start:stop] if labels is not None else np.empty((stop - start, width), dtype=np.uint8)
        result: tuple[int, int, int, int] = coder.decode(
            payload[lo:hi], width, stop - start, k, out, model, failed, index
        )
        if result[0] not in (0, _CANCELLED):
            with lock:
                failed[0] = min(int(failed[0]), index)
        elif result[0] == 0 and palette is not None:
            with lock:
                if not pixels:
                    pixels.append(np.empty((height, width, palette.shape[1]), dtype=np.uint8))
            _expand_into(out, palette, pixels[0][start:stop])
        return result

    results = _run(len(spans), work, k, _workers(len(spans), width * height), coder.new_model)
    for index, ((status, x, y, detail), (start, stop)) in enumerate(zip(results, rows, strict=True)):
        if status:
            # The first stripe with a status failed on its own: a stripe is cancelled only after an earlier one.
            error, message = _STATUS[status]
            text = message.format(min=MIN_STREAM, detail=detail, x=x, y=start + y)
            raise error(f"payload stripe {index} (rows {start}..{stop - 1}): stream {text}")
    return labels if labels is not None else pixels[0]
