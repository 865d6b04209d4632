"""Per-pixel loops in C (codec/_remap.c): nearest centres, error diffusion, colour counting, error sums.

Without it kmq.kmeans uses its numpy route (the same labels); error diffusion is then unavailable.
"""

import numpy as np
from typing_extensions import Buffer

def nearest(
    points: Buffer | np.ndarray,
    n: int,
    d: int,
    centres: Buffer | np.ndarray,
    k: int,
    labels: Buffer | np.ndarray,
    dist2: Buffer | np.ndarray,
    /,
) -> None: ...
def diffuse(
    pixels: Buffer | np.ndarray,
    map: Buffer | np.ndarray,
    base: Buffer | np.ndarray,
    w: int,
    h: int,
    c: int,
    palette: Buffer | np.ndarray,
    k: int,
    kernel: int,
    clamp: float,
    labels: Buffer | np.ndarray,
    /,
) -> None: ...
def count(pixels: Buffer | np.ndarray, n: int, c: int, /) -> tuple[bytes, bytes]: ...
def merge(
    keys_a: Buffer | np.ndarray,
    counts_a: Buffer | np.ndarray,
    keys_b: Buffer | np.ndarray,
    counts_b: Buffer | np.ndarray,
    /,
) -> tuple[bytes, bytes]: ...
def table(keys: Buffer | np.ndarray, labels: Buffer | np.ndarray, /) -> bytes: ...
def lookup(
    pixels: Buffer | np.ndarray, n: int, c: int, table: Buffer | np.ndarray, out: Buffer | np.ndarray, /
) -> None: ...
def squared_error(
    pixels: Buffer | np.ndarray,
    n: int,
    c: int,
    labels: Buffer | np.ndarray,
    palette: Buffer | np.ndarray,
    premultiplied: bool,
    /,
) -> int: ...
