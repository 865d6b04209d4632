"""Payload coding 1 (ctx1) of spec/FORMAT.md, one stripe at a time (C extension)."""

import numpy as np
from typing_extensions import Buffer

def encode(labels: Buffer | np.ndarray, width: int, height: int, k: int, limit: int, /) -> bytes | None: ...
def decode(
    data: Buffer | np.ndarray, width: int, height: int, k: int, out: Buffer | np.ndarray, /
) -> tuple[int, int, int, int]: ...
