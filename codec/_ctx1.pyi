"""Payload coding 1 (ctx1) of spec/FORMAT.md, one stripe at a time (C extension).

``kmq._ctx1_py`` has the same coder functions in plain Python, for installs without a compiler
(``expand``, palette expansion, is the C coder's own: :mod:`kmq.ctx1` uses numpy there).
"""

import numpy as np
from typing_extensions import Buffer

class _Model: ...

def new_model(k: int, /) -> _Model: ...
def encode(
    labels: Buffer | np.ndarray, width: int, height: int, k: int, limit: int, model: _Model | None = None, /
) -> bytes | None: ...
def decode(
    data: Buffer | np.ndarray,
    width: int,
    height: int,
    k: int,
    out: Buffer | np.ndarray,
    model: _Model | None = None,
    stop: Buffer | None = None,
    index: int = 0,
    /,
) -> tuple[int, int, int, int]: ...
def expand(labels: Buffer | np.ndarray, k: int, palette: Buffer | np.ndarray, out: Buffer | np.ndarray, /) -> None: ...
