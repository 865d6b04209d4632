"""Payload coding 2, "mix": context mixing of binary decisions over the labels.

``spec/FORMAT.md`` section 11 defines it. It shares coding 1's stripe table (and so
its limits, its threads and its checks, :mod:`kmq.ctx1`); within a stripe each
label is a few yes/no questions (is it W's label? N's? NE's? NW's? the label a
two-dimensional match model predicts?) and, when none is right, its bits down a
binary tree under the labels of W and N. Each question is
predicted by several adaptive contexts whose stretched probabilities a small
integer mixer combines, so the bytes are the same on every machine.

The model reads the palette's colours, so each stripe coder is bound to the
palette (:func:`coder`). The per-pixel work is in the C extension :mod:`kmq._mix`
or, where kmq was installed without a C compiler, its plain-Python twin
:mod:`kmq._mix_py` (same bytes, far slower: files decode, and the encoder's
default falls back to ctx1, :data:`AVAILABLE`).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from . import ctx1
from .ctx1 import StripeCoder

__all__ = ["BACKEND", "AVAILABLE", "MODEL_BYTES_MAX", "model_bytes", "coder", "encode", "decode"]


def _load_backend() -> tuple[ModuleType, str]:
    try:
        from . import _mix

        return _mix, "C"
    except ImportError:
        from . import _mix_py

        return _mix_py, "python"


_backend, _name = _load_backend()
#: Which stripe coder is in use: ``"C"`` or ``"python"`` (the fallback, same bytes).
BACKEND: str = _name
#: Whether coding 2 is fast enough here to be the encoder's default (the C coder is present).
AVAILABLE: bool = _name == "C"

_SLOT = 4
_DIRECT_SLOTS = 3 * 256 * 8 + 16 * 2 * 8
_WEIGHTS = (3 * 5 * 4 * 4) * 7 + 8 * 6


def model_bytes(pixels: int, k: int) -> int:
    """Memory of one stripe's model, in bytes (spec section 11.7), beyond the stripe's own labels.

    Five hashed tables of ``2^hb`` four-byte slots and a match table of ``2^hb``
    positions, ``hb = min(20, max(12, bit_length(pixels) + 1))``, plus the direct
    tables (the escape trees' two take ``(K + 1) * 2^bits`` slots each), the weights
    and the palette's distances.
    """
    hb = min(20, max(12, pixels.bit_length() + 1))
    tree = (k + 1) << (k - 1).bit_length()
    return (5 << hb) * _SLOT + (4 << hb) + (_DIRECT_SLOTS + 2 * tree) * _SLOT + _WEIGHTS * 4 + (k + 1) ** 2 * 4


#: The largest model, for a stripe of a million pixels or more: 26 MB (one per thread).
MODEL_BYTES_MAX = model_bytes(1 << 20, 256)


def coder(palette: NDArray[np.uint8]) -> StripeCoder:
    """Coding 2's stripe coder for a palette: what :func:`kmq.ctx1.encode` and ``decode`` run."""
    colours = np.ascontiguousarray(palette, dtype=np.uint8).tobytes()

    def encode_stripe(labels: object, width: int, rows: int, k: int, limit: int, model: object) -> bytes | None:
        stream: bytes | None = _backend.encode(labels, width, rows, k, limit, colours)
        return stream

    def decode_stripe(
        data: object, width: int, rows: int, k: int, out: object, model: object, stop: object, index: int
    ) -> tuple[int, int, int, int]:
        result: tuple[int, int, int, int] = _backend.decode(data, width, rows, k, colours, out, stop, index)
        return result

    # The C coder allocates each stripe's model itself (zeroed memory is its fresh state).
    return StripeCoder("mix", lambda k: None, encode_stripe, decode_stripe)


def encode(
    labels: NDArray[np.uint8], palette: NDArray[np.uint8], *, limit: int | None = None, stripes: int | None = None
) -> bytes | None:
    """Code a label plane as a coding-2 payload.

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        Every value < K.
    palette : (K, C) uint8 ndarray
        The palette the labels index, 2 <= K <= 256: the model orders labels by its colours.
    limit : int or None
        Give up and return None as soon as the payload would exceed this many bytes.
    stripes : int or None
        Stripe count, 1 to :func:`kmq.ctx1.max_stripes`; default :func:`kmq.ctx1.stripe_count`.

    Returns
    -------
    bytes or None
        The payload, or None if it would be longer than ``limit``.

    Raises
    ------
    ParameterError
        If K, ``stripes`` or a label is out of range.
    """
    return ctx1.encode(labels, palette.shape[0], limit=limit, stripes=stripes, coder=coder(palette))


def decode(
    payload: memoryview, spans: list[tuple[int, int]], width: int, height: int, palette: NDArray[np.uint8]
) -> NDArray[np.uint8]:
    """Decode a coding-2 payload into an (H, W) label plane.

    Parameters
    ----------
    payload : memoryview
        The payload bytes, exactly as long as ``spans`` implies.
    spans : list of (start, stop)
        From :func:`kmq.ctx1.stripe_table` (the two codings share the table).
    width, height : int
        From the validated header.
    palette : (K, C) uint8 ndarray
        The file's palette.

    Returns
    -------
    (H, W) uint8 ndarray

    Raises
    ------
    FormatError, TruncatedError
        Naming the stripe, the rule and, where it applies, the pixel.
    """
    return ctx1.decode(payload, spans, width, height, palette.shape[0], coder(palette))
