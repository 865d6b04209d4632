"""The files kmq reads and writes: what may be read, what may be replaced, and how.

Reading (:func:`open_input`, :func:`read_input`, :func:`read_bytes`)
    An input is a regular file (a symbolic link to one is followed) or ``-``,
    standard input. FIFOs, devices, sockets and folders are refused before a
    byte is read: they may block for ever or never end. Reads go in blocks of
    at most :data:`BLOCK` bytes and never past the size the file had when it
    was opened (a file that grows meanwhile is refused), so neither a lying
    header nor a growing file makes kmq allocate more than the file held.

Writing (:func:`check_output`, :func:`atomic_write`)
    Only regular files are ever replaced (a symbolic link to one is followed:
    its target is replaced and the link stays a link); devices, FIFOs,
    sockets, folders and links to nothing are refused, whatever ``force``
    says. An output is written to a temporary ``.kmq-XXXXXXXXXXXX.part`` file
    beside its target and renamed into place once complete, so a failure or
    an interruption never leaves a half-written file or clobbers an existing
    one. A replaced file gets the permissions of a new file (the umask), never
    the old file's, so no setuid or setgid bit survives. Stale temporary files
    of that exact pattern (older than :data:`STALE_PART_SECONDS`) are removed
    from a folder when kmq next writes into it. ``-`` writes to standard output.

Files kmq wrote (:func:`written_by_kmq`)
    A file counts as kmq's own output if it carries the extended attribute
    ``user.kmq`` (set on every file kmq writes, where the file system keeps
    extended attributes) or starts with the kmq magic (any .kmq file); a name
    alone proves nothing. Outputs kmq names itself (the default names and
    ``-O``) replace only such files, and only with ``force``; a file you name
    yourself (``-o``) may be replaced with ``force`` whatever it holds. Where
    the file system keeps no extended attributes, a decoded image named as kmq
    names them (``NAME-kmq.EXT``, :func:`decoded_name`) may or may not be
    kmq's: it is never replaced under a name kmq chose. A message never
    suggests ``--force`` for a file kmq did not write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from shlex import quote
from typing import IO, BinaryIO, Literal

import numpy as np
from numpy.typing import NDArray

from . import container
from .errors import ImageError, KmqError, ParameterError
from .indexed import Indexed

__all__ = [
    "STDIO",
    "BLOCK",
    "MAX_STREAM_BYTES",
    "DECODED_TAG",
    "STALE_PART_SECONDS",
    "Status",
    "Input",
    "is_stdio",
    "display_name",
    "describe_os_error",
    "read_at_most",
    "open_input",
    "read_input",
    "decoded_name",
    "is_decoded_name",
    "is_decoded_image",
    "written_by_kmq",
    "same_file",
    "output_status",
    "check_output",
    "atomic_write",
    "remove_stale_parts",
    "fsync_folder",
    "read_bytes",
    "read_container",
    "read_file",
    "read_indexed",
    "read",
]

#: The path that means standard input (as an input) or standard output (as an output).
STDIO = "-"

#: The largest single read: a length field, however large, is read in pieces of at most this.
BLOCK = 1 << 20

#: The most kmq reads from standard input, where no file size bounds the stream.
MAX_STREAM_BYTES = 1 << 31

#: What kmq puts between the name and the extension of a decoded image: photo.kmq -> photo-kmq.png.
DECODED_TAG = "-kmq"

#: A temporary file of kmq's pattern untouched for this long belongs to a run that died.
STALE_PART_SECONDS = 15 * 60

#: What :func:`output_status` finds at an output path: nothing, a file kmq wrote, any other regular
#: file, or a ``NAME-kmq.EXT`` file on a file system without extended attributes (kmq cannot tell).
Status = Literal["new", "kmq", "other", "unknown"]

_MARK = "user.kmq"
_PART = re.compile(r"\.kmq-[0-9a-f]{12}\.part")
# errno values with which link() says "this file system has no hard links".
#: getxattr's errors where the file system keeps no extended attributes at all.
_NO_XATTRS = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV})
# Folders already swept of stale temporary files by this process (once each is enough).
_swept: set[str] = set()


def is_stdio(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``-``: standard input as an input, standard output as an output."""
    return os.fspath(path) == STDIO


def display_name(path: str | os.PathLike[str], *, output: bool = False) -> str:
    """How messages name a path: as given, or "standard input" (``output``: "standard output") for ``-``."""
    if is_stdio(path):
        return "standard output" if output else "standard input"
    return os.fspath(path)


def describe_os_error(exc: OSError, name: str | os.PathLike[str] | None = None) -> str:
    """An ``OSError`` as the one line kmq prints: the file it names (else ``name``), then the reason.

    Parameters
    ----------
    exc : OSError
    name : path-like, optional
        The file the error is about, when the error does not name one.

    Returns
    -------
    str
        E.g. ``"out/a.kmq: No space left on device"``.
    """
    where = exc.filename if exc.filename is not None else name
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{os.fsdecode(where)}: {reason}" if where is not None else reason


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_at_most(file: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes from ``file``, read in blocks of at most :data:`BLOCK`.

    A single ``read(size)`` allocates ``size`` bytes before it reads one
    (and raises ``OverflowError`` past ``sys.maxsize``); in blocks, what is
    allocated is what the file holds, whatever ``size`` a header claims.

    Parameters
    ----------
    file : binary file
    size : int
        The most to read; any non-negative int.

    Returns
    -------
    bytes
        Shorter than ``size`` if the file ends first.
    """
    blocks = []
    while size > 0:
        block = file.read(min(size, BLOCK))
        if not block:
            break
        blocks.append(block)
        size -= len(block)
    return b"".join(blocks)


@dataclass
class Input:
    """An input opened by :func:`open_input`."""

    file: BinaryIO
    """The open binary file (standard input's buffer for ``-``)."""
    name: str
    """What messages call it."""
    size: int | None
    """Its size in bytes when it was opened; None for a pipe, which has none."""

    @property
    def seekable(self) -> bool:
        """Whether it can be read twice (a regular file can, a pipe cannot)."""
        return self.size is not None

    def read(self, limit: int | None = None) -> bytes:
        """Read on from the current position, in bounded blocks.

        Parameters
        ----------
        limit : int, optional
            The most to read. Without it, a file is read to the size it had
            when opened, and a pipe to :data:`MAX_STREAM_BYTES`.

        Returns
        -------
        bytes

        Raises
        ------
        ImageError
            If a file grew after it was opened (only what it held then is
            read, and more is there), or a pipe gives more than
            :data:`MAX_STREAM_BYTES` bytes without a ``limit``.
        """
        if self.size is None:
            cap = MAX_STREAM_BYTES if limit is None else limit
            data = read_at_most(self.file, cap + (limit is None))
            if len(data) > cap:
                raise ImageError(f"{self.name}: more than {MAX_STREAM_BYTES:,} bytes; kmq reads no more from a pipe")
            return data
        remaining = max(self.size - self.file.tell(), 0)
        data = read_at_most(self.file, remaining if limit is None else min(limit, remaining))
        if len(data) == remaining and (limit is None or limit > remaining) and self.file.read(1):
            raise ImageError(f"{self.name}: grew while being read (it had {self.size:,} bytes when opened)")
        return data


@contextlib.contextmanager
def open_input(path: str | os.PathLike[str]) -> Iterator[Input]:
    """Open an input for reading: a regular file, or ``-`` for standard input.

    This is the one way kmq opens what it is given, so every command refuses
    the same things: a FIFO or a device could block for ever or never end,
    and is refused before it is opened for reading.

    Parameters
    ----------
    path : path-like
        A file (a symbolic link to one is followed), or ``-``.

    Yields
    ------
    Input
        Closed afterwards (standard input is left open).

    Raises
    ------
    ImageError
        If ``path`` is a FIFO, device or socket, or ``-`` is a terminal or a device.
    OSError
        If it is missing (``FileNotFoundError``), a folder (``IsADirectoryError``)
        or cannot be opened.
    """
    if is_stdio(path):
        yield _standard_input()
        return
    name = os.fspath(path)
    _refuse_special(os.stat(path).st_mode, name)
    # O_NONBLOCK: should a FIFO be swapped in after the stat, open() returns at once instead
    # of waiting for a writer, and the fstat below refuses it. Regular files ignore the flag.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        status = os.fstat(fd)
        _refuse_special(status.st_mode, name)
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        yield Input(file, name, status.st_size)


def _refuse_special(mode: int, name: str) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", name)
    if not stat.S_ISREG(mode):
        raise ImageError(f"{name}: not a regular file ({_kind(mode)}); kmq reads regular files and - (standard input)")


def _standard_input() -> Input:
    name = display_name(STDIO)
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise ImageError(f"{name}: closed")
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):  # not a real file (an embedding program's stream): a pipe, for our purposes
        return Input(stream, name, None)
    if stream.isatty():
        raise ImageError(f"{name}: is a terminal; pipe a file in (kmq ... - < FILE) or name the file")
    if stat.S_ISREG(mode):
        return Input(stream, name, os.fstat(stream.fileno()).st_size)
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return Input(stream, name, None)
    raise ImageError(f"{name}: not a regular file or a pipe ({_kind(mode)})")


def read_input(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """The bytes of an input, opened with :func:`open_input` and read with :meth:`Input.read`.

    Parameters
    ----------
    path : path-like
        A regular file, or ``-`` for standard input.
    limit : int, optional
        The most to read.

    Returns
    -------
    bytes

    Raises
    ------
    ImageError, OSError
        As :func:`open_input` and :meth:`Input.read`.
    """
    with open_input(path) as source:
        return source.read(limit)


def decoded_name(path: str | os.PathLike[str], suffix: str) -> Path:
    """The name kmq gives the image decoded from ``path``: ``photo.kmq`` -> ``photo-kmq.png``.

    The tag keeps a decoded image from ever taking the name of the original
    it was made from (``photo.png`` -> ``photo.kmq`` -> ``photo-kmq.png``).

    Parameters
    ----------
    path : path-like
        The kmq file (or its path below a folder input).
    suffix : str
        The image format's extension, with the dot.
    """
    path = Path(path)
    return path.with_name(f"{path.stem}{DECODED_TAG}{suffix}")


def is_decoded_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named as :func:`decoded_name` names kmq's decoded images."""
    path = Path(path)
    return bool(path.suffix) and path.stem.endswith(DECODED_TAG)


def _marked(path: str | os.PathLike[str]) -> bool | None:
    """Whether ``path`` carries kmq's extended attribute; None where its file system keeps none."""
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        return bool(getxattr(path, _MARK))
    except OSError as exc:
        return None if exc.errno in _NO_XATTRS else False


def written_by_kmq(path: str | os.PathLike[str]) -> bool:
    """Whether the regular file at ``path`` is one kmq wrote (see the module docstring).

    Parameters
    ----------
    path : path-like
        An existing regular file.

    Returns
    -------
    bool
        True if it carries kmq's extended attribute or starts with the kmq
        magic. A name alone proves nothing: ``a-kmq.png`` may be the user's.
    """
    if _marked(path):
        return True
    try:
        with open_input(path) as source:
            return source.read(len(container.MAGIC)) == container.MAGIC
    except (OSError, KmqError):
        return False


def is_decoded_image(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a decoded image kmq wrote: named ``NAME-kmq.EXT`` and marked by kmq.

    Folders and patterns skip these, so that encoding after decoding does not
    encode kmq's own output again; an unmarked ``NAME-kmq.EXT`` is an image like any other.
    """
    return is_decoded_name(path) and bool(_marked(path))


def _mark(fd: int) -> None:
    """Tag a file as kmq's own output, where the file system keeps extended attributes."""
    setxattr = getattr(os, "setxattr", None)
    if setxattr is not None:
        with contextlib.suppress(OSError):
            setxattr(fd, _MARK, b"1")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (hard links and symlinks included; by resolved path if either is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def output_status(out: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> Status:
    """What is at an output path, refusing what may never be written, whatever ``force`` says.

    Parameters
    ----------
    out : path-like
        The output, or ``-`` for standard output.
    source : path-like, optional
        The input it is made from.

    Returns
    -------
    {"new", "kmq", "other", "unknown"}
        Nothing there (or ``-``); a regular file kmq wrote (:func:`written_by_kmq`);
        any other regular file; a ``NAME-kmq.EXT`` file where the file system
        keeps no extended attributes, so that kmq cannot tell. A symbolic link
        is judged by its target.

    Raises
    ------
    ParameterError
        If ``out`` is ``source``; a FIFO, device or socket (or a link to
        one); a symbolic link to nothing; or ``-`` while standard output is
        a terminal.
    IsADirectoryError
        If ``out`` is a folder.
    """
    name = os.fspath(out)
    if is_stdio(out):
        if sys.stdout.isatty():
            raise ParameterError("standard output: is a terminal; redirect it (-o - > FILE) or name an output")
        return "new"
    if not os.path.lexists(out):
        return "new"
    if source is not None and not is_stdio(source) and same_file(out, source):
        raise ParameterError(f"{name}: output would overwrite the input file; choose another output")
    try:
        mode = os.stat(out).st_mode
    except FileNotFoundError:
        raise ParameterError(f"{name}: a symbolic link to nothing; kmq does not write through it") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "output is a directory", name)
    if not stat.S_ISREG(mode):
        raise ParameterError(f"{name}: {_kind(mode)}, not a regular file; kmq replaces regular files only")
    if written_by_kmq(out):
        return "kmq"
    # Named as kmq names decoded images, where no mark can say who wrote it.
    return "unknown" if is_decoded_name(out) and _marked(out) is None else "other"


def check_output(
    out: str | os.PathLike[str],
    source: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    kmq_only: bool = False,
) -> Status:
    """Whether an output may be written: the one rule every command follows, before any work.

    Parameters
    ----------
    out : path-like
        The output to be written (with :func:`atomic_write`), or ``-``.
    source : path-like, optional
        The input it is made from.
    force : bool
        Whether an existing regular file may be replaced.
    kmq_only : bool
        Replace only files kmq wrote, even with ``force`` (for outputs kmq
        names itself: default names and output folders).

    Returns
    -------
    {"new", "kmq", "other", "unknown"}
        As :func:`output_status`.

    Raises
    ------
    ParameterError, IsADirectoryError
        As :func:`output_status`.
    FileExistsError
        If ``out`` exists and may not be replaced; the message suggests
        ``--force`` only for a file kmq wrote, and ``-o NAME --force`` for one
        kmq cannot tell it wrote.
    """
    status = output_status(out, source)
    name = os.fspath(out)
    if status == "unknown" and (kmq_only or not force):
        reason = (
            "exists and kmq cannot tell that it wrote it (the file system keeps no extended attributes);"
            f" remove it, or replace it with -o {quote(name)} --force"
        )
        raise FileExistsError(errno.EEXIST, reason, name)
    if status == "kmq" and not force:
        raise FileExistsError(errno.EEXIST, "output exists (use --force to overwrite)", name)
    if status == "other" and kmq_only:
        reason = "exists and kmq did not write it, so kmq never replaces it; choose another output name or folder"
        raise FileExistsError(errno.EEXIST, reason, name)
    if status == "other" and not force:
        raise FileExistsError(errno.EEXIST, "exists and kmq did not write it; choose another output name", name)
    return status


def remove_stale_parts(folder: str | os.PathLike[str], *, age: float = STALE_PART_SECONDS) -> list[str]:
    """Remove the temporary files that runs of kmq which died left in ``folder``.

    Only regular files named exactly as :func:`atomic_write` names its
    temporary files (``.kmq-`` and 12 hex digits, ``.part``), and untouched
    for ``age`` seconds, are removed: a live write renames its file within
    moments of its last change. Each folder is swept once per process.

    Parameters
    ----------
    folder : path-like
    age : float
        Seconds since the last change.

    Returns
    -------
    list of str
        The names removed.
    """
    key = os.path.realpath(folder)
    if key in _swept:
        return []
    _swept.add(key)
    removed = []
    cutoff = time.time() - age
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not _PART.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make the renames into ``folder`` durable; best effort, as some file systems refuse it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _place(tmp: Path, target: Path, replace: bool) -> None:
    """Move the finished temporary file to ``target``."""
    if replace:
        # Checked again at the last moment: what was a regular file at the start may not be now.
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(target).st_mode
            if not stat.S_ISREG(mode):
                raise ParameterError(f"{target}: became {_kind(mode)} while writing; left alone")
        os.replace(tmp, target)
        return
    try:
        # link() fails if target exists, even if it appeared a moment ago: no window to clobber it.
        os.link(tmp, target)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links here (FAT, some network mounts): check, then rename.
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(tmp, target)
    else:
        os.unlink(tmp)


def _write_stdout(content: bytes | Callable[[BinaryIO], None]) -> None:
    stream: BinaryIO = sys.stdout.buffer
    if callable(content):
        content(stream)
    else:
        stream.write(content)
    stream.flush()


def atomic_write(
    path: str | os.PathLike[str],
    content: bytes | Callable[[BinaryIO], None],
    *,
    overwrite: bool = False,
    kmq_only: bool = False,
    sync_folder: bool = True,
) -> None:
    """Write a file all at once or not at all (``-``: to standard output).

    Parameters
    ----------
    path : path-like
        Destination, checked with :func:`check_output`. A symbolic link to a
        regular file is followed: its target is replaced, the link stays.
    content : bytes or callable
        The bytes, or a function that writes them to the binary file it is given.
    overwrite : bool
        Replace an existing regular file; the new file gets a new file's
        permissions (the umask), not the old one's. Otherwise an existing
        ``path`` is left alone.
    kmq_only : bool
        Replace only a file kmq wrote (:func:`written_by_kmq`), even with ``overwrite``.
    sync_folder : bool
        Make the rename durable before returning (the file's bytes always are, before
        the rename). False leaves that to the caller's :func:`fsync_folder` of the
        target's folder: a batch syncs each folder once, at its end. Until then a
        crash may lose the new name, never leave a partial file under it.

    Raises
    ------
    FileExistsError
        If ``path`` exists and may not be replaced, or appeared while writing.
    ParameterError, IsADirectoryError
        If ``path`` is not a regular file (:func:`output_status`).
    OSError
        If the folder is missing or not writable, or the disk is full; the
        error names ``path``. The temporary file is removed and ``path`` is
        untouched in every case, including an exception raised by ``content``.
    """
    if is_stdio(path):
        check_output(path)
        _write_stdout(content)
        return
    path = Path(path)
    status = check_output(path, force=overwrite, kmq_only=kmq_only)
    # Replace a link's target, in the target's own folder (a rename cannot cross file systems).
    target = Path(os.path.realpath(path)) if status != "new" else path
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"output folder {str(target.parent)!r} does not exist", str(path))
    remove_stale_parts(target.parent)
    # A short name of our own: the target's name plus a suffix could exceed NAME_MAX.
    tmp = target.parent / f".kmq-{os.urandom(6).hex()}.part"  # as secrets.token_hex, without its 5 ms import
    created = False
    try:
        # O_EXCL: never reuse a file; mode 0o666 lets the kernel apply the umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        created = True
        with os.fdopen(fd, "wb") as file:
            _mark(file.fileno())
            if callable(content):
                content(file)
            else:
                file.write(content)
            file.flush()
            os.fsync(file.fileno())
        # Only what was there and checked is replaced: a file that appeared since is left alone.
        _place(tmp, target, replace=status != "new")
        created = False
        if sync_folder:
            fsync_folder(target.parent)
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

    The header is read and validated first; then at most the length it
    implies plus one byte (so that trailing garbage is still detected), in
    bounded blocks (:func:`read_at_most`), and never more than the file
    holds. A hostile header or a huge non-kmq file cannot make this allocate
    more than the file, nor more than the image its header describes.

    Parameters
    ----------
    path : path-like
        A kmq file, or ``-`` for standard input.
    max_pixels : int or None
        Largest ``width * height`` accepted; ``None`` for no limit.

    Returns
    -------
    bytes
        To be parsed by :func:`kmq.container.loads`, which checks the rest.

    Raises
    ------
    KmqError
        If the header breaks the format or exceeds ``max_pixels``, or the
        input is not a regular file or a pipe; the message starts with the path.
    OSError
        If the file cannot be opened.
    """
    with open_input(path) as source, _naming(source.name):
        head = source.read(container.HEADER.size)
        header = container.Header.unpack(head, max_pixels)
        # Never more than the header allows, plus one byte to tell "trailing bytes".
        return head + source.read(header.max_file_size + 1 - len(head))


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
    """Prefix the message of a :class:`KmqError` with the file it is about (once)."""
    try:
        yield
    except KmqError as exc:
        name = display_name(path)
        if str(exc).startswith(f"{name}: "):
            raise
        raise type(exc)(f"{name}: {exc}") from None
