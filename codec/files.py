"""Thin file wrappers: read and write kmq files safely.

Writes go to a temporary file in the destination folder, which is renamed into
place only once it is complete, so a failure or an interruption never leaves a
half-written file or clobbers an existing one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from . import container
from .errors import KmqError, TruncatedError
from .images import ImageLike
from .indexed import Indexed
from .quantize import quantize

__all__ = ["read", "read_bytes", "read_container", "read_indexed", "write", "atomic_write"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike[str], content: bytes | Callable[[BinaryIO], None], *, overwrite: bool = False
) -> None:
    """Write a file all at once or not at all.

    Parameters
    ----------
    path : path-like
        Destination.
    content : bytes or callable
        The bytes, or a function that writes them to the binary file it is given.
    overwrite : bool
        Replace an existing file; otherwise an existing ``path`` is left alone.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    OSError
        If the folder is missing or not writable, or the disk is full. The
        temporary file is removed and ``path`` is untouched in every case.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"output folder {str(path.parent)!r} does not exist", str(path))
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "output exists (use --force to overwrite)", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "output is a directory", str(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as file:
            if callable(content):
                content(file)
            else:
                file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if path appeared meanwhile: no window to clobber it.
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            # Name the file the caller asked for, never our temporary one.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def read_bytes(path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> bytes:
    """Read the bytes of a kmq file whose header is valid.

    The header is read and validated first, and the file's size compared with
    the size the header implies, before the rest is read: a hostile header or a
    huge non-kmq file cannot make this allocate more than the image it
    describes (plus one byte, so that trailing garbage is still detected).

    Raises
    ------
    KmqError
        If the header breaks the format, exceeds ``max_pixels``, or the file is
        shorter than the header implies.
    OSError
        If the file cannot be opened.
    """
    with _naming(path), open(path, "rb") as file:
        header = container.Header.unpack(file.read(container.HEADER.size), max_pixels)
        size = os.fstat(file.fileno()).st_size
        if size < header.file_size:
            raise TruncatedError(f"truncated: file is {size} bytes, header implies {header.file_size}")
        file.seek(0)
        return file.read(header.file_size + 1)


def read_container(
    path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS
) -> tuple[container.Header, NDArray[np.uint8], NDArray[np.uint8]]:
    """Read and fully validate a kmq file (see :func:`read_bytes` and :func:`kmq.container.loads`).

    Returns
    -------
    header : Header
    palette : (K, C) uint8 ndarray
    labels : (H, W) uint8 ndarray
    """
    data = read_bytes(path, max_pixels=max_pixels)
    with _naming(path):
        return container.loads(data, max_pixels=max_pixels)


def read_indexed(path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> Indexed:
    """Read a kmq file into an :class:`Indexed` image."""
    _, palette, labels = read_container(path, max_pixels=max_pixels)
    return Indexed(palette, labels)


@contextlib.contextmanager
def _naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Prefix the message of a :class:`KmqError` with the file it is about."""
    try:
        yield
    except KmqError as exc:
        raise type(exc)(f"{os.fspath(path)}: {exc}") from None


def read(path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> NDArray[np.uint8]:
    """Read a kmq file and rebuild its pixels.

    Returns
    -------
    (H, W, C) uint8 ndarray
    """
    return read_indexed(path, max_pixels=max_pixels).to_array()


def write(
    path: str | os.PathLike[str],
    image: ImageLike,
    k: int = 8,
    *,
    seed: int = 0,
    overwrite: bool = False,
) -> Indexed:
    """Quantize ``image`` and write it as a kmq file.

    Parameters
    ----------
    path : path-like
        Destination; written atomically.
    image : (H, W, 3|4) uint8 ndarray or PIL.Image.Image
    k, seed
        As for :func:`kmq.quantize`.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Indexed
        What was written.
    """
    indexed = quantize(image, k, seed=seed)
    atomic_write(path, indexed.to_bytes(), overwrite=overwrite)
    return indexed
