"""Whether an image fits in this machine's memory, asked before the allocations that would not.

A pixel limit (``max_pixels``) guards against hostile files; this guards against honest ones
too large for the machine. Without it, a 4-gigapixel photo on a 24 GB machine would be decoded
by Pillow, copied, and then fail (or, with swap, thrash for minutes) deep inside the work; with
it, the command stops at once with one line that says how much memory it needed.

The estimate is what kmq's own steps hold at their peak, in bytes per pixel, measured by
``benchmarks/bench_whole.py --scale`` (see BENCHMARKS.md, issue 15), against the memory the
operating system says is available now (Linux: ``MemAvailable`` of ``/proc/meminfo``). Where
that is unknown, nothing is refused.
"""

from __future__ import annotations

import os

from .errors import PixelLimitError

__all__ = ["ENCODE_BYTES_PER_PIXEL", "DECODE_BYTES_PER_PIXEL", "available", "check"]

#: Reading and encoding an image file: the file's bytes (up to 3 per pixel for raw formats), Pillow's
#: copy (4 for RGB and RGBA), kmq's array (3 or 4), the labels and the steps' work (1.3 at 429 MP);
#: ``kmq encode`` of a 429 MP PPM peaked at 10.1.
ENCODE_BYTES_PER_PIXEL = 11
#: Decoding a kmq file and writing the image: the labels and pixels (4.1 for ``kmq.decode`` at
#: 429 MP) and Pillow's copy for writing it; ``kmq decode`` to a 429 MP PPM peaked at 8.3.
DECODE_BYTES_PER_PIXEL = 9


def available() -> int | None:
    """Bytes of memory available to a new allocation now, or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check(width: int, height: int, bytes_per_pixel: int, what: str) -> None:
    """Refuse an image whose work would not fit in the memory available now.

    Parameters
    ----------
    width, height : int
        The image's size.
    bytes_per_pixel : int
        The work's peak, e.g. :data:`ENCODE_BYTES_PER_PIXEL`.
    what : str
        The input's name, to begin the message with; empty where the caller names it.

    Raises
    ------
    PixelLimitError
        Naming the size, the memory needed and the memory available.
    """
    free = available()
    need = width * height * bytes_per_pixel
    if free is not None and need > free:
        raise PixelLimitError(
            f"{what + ': ' if what else ''}{width}x{height} = {width * height:,} pixels need about "
            f"{need / 2**30:.1f} GiB of memory, and {free / 2**30:.1f} GiB is available"
        )
