"""The exceptions kmq raises, split by who is at fault.

Every error the library raises on purpose is a :class:`KmqError`, which is a
``ValueError`` so that callers who already catch bad values keep working.
Messages name the offending field and its value, in one line.
"""

from __future__ import annotations

__all__ = [
    "KmqError",
    "FormatError",
    "TruncatedError",
    "ChecksumError",
    "PixelLimitError",
    "SchedulerError",
    "ImageError",
    "ParameterError",
    "KmqWarning",
]


class KmqError(ValueError):
    """Base class of every error kmq raises on purpose."""


class FormatError(KmqError):
    """The bytes are not a valid kmq file: they break a rule of ``spec/FORMAT.md``."""


class TruncatedError(FormatError):
    """The file ends before the length its header implies."""


class ChecksumError(FormatError):
    """The stored CRC-32 does not match the bytes it covers."""


class PixelLimitError(KmqError):
    """The image has more pixels than the caller allows (a decompression-bomb guard)."""


class SchedulerError(KmqError):
    """A Dask scheduler cannot do the work: it does not answer, is not a scheduler, or has no workers."""


class ImageError(KmqError):
    """An input image cannot be read or is not an image kmq can encode."""


class ParameterError(KmqError):
    """An argument is out of its documented range (K, seed, coding, array shape)."""


class KmqWarning(UserWarning):
    """Something in an input was ignored or left out (a broken EXIF tag, the other frames of an animation)."""
