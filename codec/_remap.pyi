"""Nearest-centre search and error diffusion (C extension; codec/_remap.c, used by kmq.kmeans and kmq.dither).

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
