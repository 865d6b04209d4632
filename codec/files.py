"""Thin file wrappers: read kmq files with bounded memory, write any file atomically.

Writes go to a temporary file in the destination folder, which is renamed into
place only once it is complete, so a failure or an interruption never leaves a
half-written file or clobbers an existing one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from . import container
from .errors import KmqError, ParameterError
from .indexed import Indexed

__all__ = [
    "same_file",
    "check_output",
    "atomic_write",
    "read_bytes",
    "read_container",
    "read_file",
    "read_indexed",
    "read",
]

# errno values with which link() says "this file system has no hard links".
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV})


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable; best effort, as some file systems refuse it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temporary file to ``path``."""
    if overwrite:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # keep the old file's permissions
        os.replace(tmp, path)
        return
    try:
        # link() fails if path exists, even if it appeared a moment ago: no window to clobber it.
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links here (FAT, some network mounts): check, then rename.
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (hard links and symlinks included; by resolved path if either is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(
    out: str | os.PathLike[str], source: str | os.PathLike[str] | None = None, *, force: bool = False
) -> None:
    """Refuse an output path before any work: the input itself always, an existing file without ``force``.

    Parameters
    ----------
    out : path-like
        The output to be written (with :func:`atomic_write`).
    source : path-like, optional
        The input it is made from.
    force : bool
        Whether an existing ``out`` may be replaced.

    Raises
    ------
    ParameterError
        If ``out`` is ``source``.
    FileExistsError
        If ``out`` exists and ``force`` is False.
    """
    if source is not None and os.path.lexists(out) and same_file(out, source):
        raise ParameterError(f"{os.fspath(out)}: output would overwrite the input file; choose another output")
    if not force and os.path.lexists(out):
        raise FileExistsError(errno.EEXIST, "output exists (use --force to overwrite)", os.fspath(out))


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
        Replace an existing file (keeping its permissions); otherwise an
        existing ``path`` is left alone.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    OSError
        If the folder is missing or not writable, or the disk is full; the
        error names ``path``. The temporary file is removed and ``path`` is
        untouched in every case, including an exception raised by ``content``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"output folder {str(path.parent)!r} does not exist", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "output is a directory", str(path))
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "output exists (use --force to overwrite)", str(path))
    # A short name of our own: the target's name plus a suffix could exceed NAME_MAX.
    tmp = path.parent / f".kmq-{secrets.token_hex(6)}.part"
    created = False
    try:
        # O_EXCL: never reuse a file; mode 0o666 lets the kernel apply the umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        created = True
        with os.fdopen(fd, "wb") as file:
            if callable(content):
                content(file)
            else:
                file.write(content)
            file.flush()
            os.fsync(file.fileno())
        _place(tmp, path, overwrite)
        created = False
        _fsync_folder(path.parent)
    except BaseException as exc:
        if created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, FileExistsError):
            raise FileExistsError(errno.EEXIST, "output appeared while writing; left alone", str(path)) from None
        if isinstance(exc, OSError):
            # Name the file the caller asked for, never our temporary one.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def read_bytes(path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> bytes:
    """Read the bytes of a kmq file whose header is valid.

    The header is read and validated first; then at most the length it implies
    plus one byte (so that trailing garbage is still detected). A hostile header
    or a huge non-kmq file cannot make this read more than the image it
    describes.

    Parameters
    ----------
    path : path-like
        A kmq file.
    max_pixels : int or None
        Largest ``width * height`` accepted; ``None`` for no limit.

    Returns
    -------
    bytes
        To be parsed by :func:`kmq.container.loads`, which checks the rest.

    Raises
    ------
    KmqError
        If the header breaks the format or exceeds ``max_pixels``; the message
        starts with the path.
    OSError
        If the file cannot be opened.
    """
    with _naming(path), open(path, "rb") as file:
        header = container.Header.unpack(file.read(container.HEADER.size), max_pixels)
        file.seek(0)
        # Never more than the header allows, plus one byte to tell "trailing bytes".
        return file.read(header.max_file_size + 1)


def read_container(
    path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS
) -> tuple[container.Header, NDArray[np.uint8], NDArray[np.uint8]]:
    """Read and fully validate a kmq file.

    Parameters
    ----------
    path : path-like
        A kmq file.
    max_pixels : int or None
        Largest ``width * height`` accepted; ``None`` for no limit.

    Returns
    -------
    header : Header
    palette : (K, C) uint8 ndarray
    labels : (H, W) uint8 ndarray

    Raises
    ------
    KmqError
        As :func:`kmq.container.loads`; the message starts with the path.
    OSError
        If the file cannot be opened.
    """
    return read_file(path, max_pixels=max_pixels)[1:]


def read_file(
    path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS
) -> tuple[bytes, container.Header, NDArray[np.uint8], NDArray[np.uint8]]:
    """:func:`read_container`, also returning the file's bytes, read once (for ``kmq info``)."""
    data = read_bytes(path, max_pixels=max_pixels)
    with _naming(path):
        return (data, *container.loads(data, max_pixels=max_pixels))


def read_indexed(path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> Indexed:
    """Read a kmq file into an :class:`Indexed` image (see :func:`read_container`)."""
    _, palette, labels = read_container(path, max_pixels=max_pixels)
    return Indexed(palette, labels)


def read(path: str | os.PathLike[str], *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> NDArray[np.uint8]:
    """Read a kmq file and rebuild its pixels.

    Parameters
    ----------
    path : path-like
        A kmq file.
    max_pixels : int or None
        Largest ``width * height`` accepted; ``None`` for no limit.

    Returns
    -------
    (H, W, C) uint8 ndarray

    Raises
    ------
    KmqError
        If the file is not a valid kmq file or exceeds ``max_pixels``.
    OSError
        If the file cannot be opened.
    """
    return read_indexed(path, max_pixels=max_pixels).to_array()


@contextlib.contextmanager
def _naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Prefix the message of a :class:`KmqError` with the file it is about."""
    try:
        yield
    except KmqError as exc:
        raise type(exc)(f"{os.fspath(path)}: {exc}") from None
