"""Payload coding 2 (mix) of spec/FORMAT.md, one stripe at a time (C extension).

``kmq._mix_py`` has the same functions in plain Python, for installs without a compiler.
"""

import numpy as np
from typing_extensions import Buffer

def encode(
    labels: Buffer | np.ndarray, width: int, height: int, k: int, limit: int, palette: Buffer, /
) -> bytes | None: ...
def decode(
    data: Buffer | np.ndarray,
    width: int,
    height: int,
    k: int,
    palette: Buffer,
    out: Buffer | np.ndarray,
    stop: Buffer | None = None,
    index: int = 0,
    /,
) -> tuple[int, int, int, int]: ...
