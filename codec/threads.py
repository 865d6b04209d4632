"""How many threads kmq's own parallel steps may use.

Large images are coded and expanded on several threads (numpy and the C coder
release the GIL). Where processes already share the cores, as batch workers
do, more threads only compete: ``KMQ_THREADS=N`` caps them, and batch worker
processes set it to 1.
"""

from __future__ import annotations

import os

__all__ = ["ENVIRONMENT", "available"]

#: The environment variable that caps kmq's threads.
ENVIRONMENT = "KMQ_THREADS"


def available() -> int:
    """Threads kmq may use: ``KMQ_THREADS`` if it is a positive integer, else the CPU count."""
    try:
        cap = int(os.environ.get(ENVIRONMENT, ""))
    except ValueError:
        cap = 0
    return cap if cap > 0 else (os.cpu_count() or 1)
