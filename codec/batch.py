"""Many files at once: find them, decide what needs doing, run it here or on a cluster.

The work is split so that it can run anywhere. The coordinator (the ``kmq``
command) finds the inputs and decides what each needs (:func:`plan`); the work
itself gets bytes and returns bytes (:func:`encode_job`, :func:`decode_job`).
Given a :class:`Placement`, :func:`run` also sees each output written: a local
worker process reads its own input and writes its own output (with
:func:`write_output`, the same rule and atomic write the coordinator would
use), so the coordinator only hands out paths and reports, and the files move
on every core at once. A Dask worker on another machine shares no file system:
it gets bytes and returns bytes, and the coordinator reads and writes for it,
as it does for standard input and output.

Durability: each output's bytes reach the disk before it takes its name, so a
crash leaves it whole or absent, never partial; the folders the names are in
are synced once each when the batch ends (or is interrupted), not once per
file (:func:`kmq.files.atomic_write`'s ``sync_folder``).

Outputs that exist are left alone unless ``force`` is set, and a file kmq did
not write is replaced only when the user named it (:func:`kmq.files.check_output`).
In a batch an output of kmq's newer than its input is *up to date* and skipped,
so running the same command again only does what is new, and an older one is
*stale*: kept and reported; kmq does not compare the options a file was made
with, so use ``force`` after changing them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import functools
import glob
import io
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    CancelledError,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import container, files, images, metrics, threads
from .errors import KmqError, ParameterError, SchedulerError
from .indexed import Indexed
from .quantize import Options, quantize

__all__ = [
    "EncodeOptions",
    "DecodeOptions",
    "Outcome",
    "Job",
    "Placement",
    "find_inputs",
    "plan",
    "encode_job",
    "decode_job",
    "write_output",
    "run",
    "DASK_MISSING",
    "CONNECT_TIMEOUT",
    "WORKER_WAIT",
    "PROGRESS_TIMEOUT",
]

#: The one-line message when a scheduler is given without the Dask extra.
DASK_MISSING = "sending work to a Dask scheduler needs distributed: pip install 'kmq[dask]'"

# The time bounds of a batch on a Dask cluster, in seconds; each can be changed with the
# environment variable named beside it. Every way a cluster can fail to do the work ends
# in one line within them: nothing waits for ever.

#: Reaching the scheduler and its handshake (``KMQ_DASK_CONNECT_TIMEOUT``): an address that
#: refuses, accepts and stays silent, or answers HTTP is one error line after at most this plus 3 s.
CONNECT_TIMEOUT = 10.0

#: Waiting for a worker (``KMQ_DASK_WORKER_WAIT``): for the first to join a scheduler that has
#: none, and for one to come back when all have left mid-batch (killed, or their machines gone).
WORKER_WAIT = 10.0

#: Waiting for any file to finish while workers are there (``KMQ_DASK_PROGRESS_TIMEOUT``):
#: the longest one file may take on a worker when nothing else finishes meanwhile.
PROGRESS_TIMEOUT = 600.0

# How often a batch waiting on the cluster checks that it still has workers.
_DASK_POLL = 0.5

# How long an address that gave no Dask handshake has to answer HTTP, to be told apart from silence.
_HTTP_PROBE = 2.0

#: Tasks kept in flight per worker, so that workers never wait for the
#: coordinator to read the next file, while memory stays bounded for any number of files.
_IN_FLIGHT_PER_WORKER = 2

#: Image files larger than this (bytes) are judged from their header before they are read whole.
_JUDGED_UNREAD = files.BLOCK


@dataclass(frozen=True)
class EncodeOptions:
    """What ``kmq encode`` passes to :func:`kmq.quantize` and the container."""

    quantizer: Options = field(default_factory=Options)
    """K, seed, space, dither and min_psnr, checked when made."""
    coding: str = container.DEFAULT_CODING
    max_pixels: int | None = container.DEFAULT_MAX_PIXELS
    frame: int | None = None
    colour_management: bool = True
    #: Pillow format of the output, e.g. ``"PNG"``, written by :func:`kmq.images.save_indexed`; None for kmq.
    output_format: str | None = None

    def read(self, path: Path) -> bytes:
        """An input's bytes, once its header shows it is an image (a big non-image is not read whole)."""
        with files.open_input(path) as source:
            # A pipe cannot be read twice: Pillow judges it once it is read. Nor is a small file
            # judged twice: reading it whole costs less than opening its header (0.1-0.4 ms a
            # file, a tenth of a small image's overhead), and encode_job refuses it just the same.
            if source.size is not None and source.size > _JUDGED_UNREAD:
                images.identify(source.file, name=source.name, max_pixels=self.max_pixels)
                source.file.seek(0)
            return source.read()


@dataclass(frozen=True)
class DecodeOptions:
    """What ``kmq decode`` needs: the output's Pillow format and the pixel limit."""

    suffix: str = ".png"
    max_pixels: int | None = container.DEFAULT_MAX_PIXELS

    def read(self, path: Path) -> bytes:
        """An input's bytes, at most what its kmq header allows (so a huge non-kmq file is not read whole)."""
        return files.read_bytes(path, max_pixels=self.max_pixels)


@dataclass
class Outcome:
    """A job's result: the output's bytes and figures, or the one-line reason it failed."""

    content: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: The output is in place (written by :func:`write_output`); ``content`` is then None.
    written: bool = False


@dataclass(frozen=True)
class Placement:
    """How :func:`write_output` may write a batch's outputs: the command's side of the rule."""

    force: bool = False
    """Replace an existing output kmq wrote (and, with ``named``, any regular file)."""
    named: bool = False
    """The user named the output (``-o``), so ``force`` may replace a file kmq did not write."""
    make_folders: bool = False
    """Make missing folders above an output (under ``-O``); a ``-o`` into a missing folder is refused."""


@dataclass(frozen=True)
class Job:
    """One input and the output it should become.

    ``action`` is ``"run"``, ``"skip"`` (the output is up to date), ``"stale"``
    (kmq's output is older than its input and kept, as ``force`` is not set) or
    ``"fail"`` (``reason`` says why, e.g. the output is a file kmq did not write).
    """

    source: Path
    output: Path
    action: Literal["run", "skip", "stale", "fail"] = "run"
    reason: str = ""


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as found:
            return sorted(found, key=lambda entry: entry.name)
    except OSError:  # unreadable, or gone meanwhile: nothing to take from it
        return []


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    """The files in ``folder`` (and below it with ``recursive``), hidden ones skipped.

    A symbolic link to a file is taken; a symbolic link to a folder is never
    descended into, so that links back up the tree cannot make the walk
    endless (``find`` without ``-L`` does the same). Hidden files and folders
    are skipped: they include kmq's own temporary files.
    """
    for entry in _entries(folder):
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _walk(path, recursive)
            elif entry.is_file():
                yield path
        except OSError:
            continue


def _glob(pattern: str) -> Iterator[Path]:
    """What a glob pattern matches, as :func:`glob.glob` with ``recursive=True``, but finite.

    ``**`` matches this folder and every folder below it without following
    symbolic links (glob.glob follows them, and two links back up a tree give
    2**depth paths); a plain ``*`` component may match a link to a folder,
    which costs one pattern component, so it cannot loop. Hidden names match
    only components that start with a dot, as in glob.glob.
    """
    path = Path(pattern)
    parts = path.parts[1:] if path.anchor else path.parts
    yield from _match(Path(path.anchor) if path.anchor else Path(), parts)


def _match(base: Path, parts: Sequence[str]) -> Iterator[Path]:
    if not parts:
        yield base
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        for folder in _folders(base):
            if rest:
                yield from _match(folder, rest)
            else:  # every name below: the folders as _folders gives them, the rest here
                yield folder
                for entry in _entries(folder):
                    if not entry.name.startswith(".") and not _is_dir(entry, follow_symlinks=False):
                        yield folder / entry.name
    elif not glob.has_magic(head):
        if not rest and os.path.lexists(base / head):
            yield base / head
        elif rest and (base / head).is_dir():
            yield from _match(base / head, rest)
    else:
        for entry in _entries(base):
            if entry.name.startswith(".") and not head.startswith("."):
                continue
            if not fnmatch.fnmatch(entry.name, head):
                continue
            if not rest:
                yield base / entry.name
            elif _is_dir(entry):
                yield from _match(base / entry.name, rest)


def _folders(base: Path) -> Iterator[Path]:
    """``base`` and every folder below it, hidden ones skipped, symbolic links not followed."""
    yield base
    for entry in _entries(base):
        if not entry.name.startswith(".") and _is_dir(entry, follow_symlinks=False):
            yield from _folders(base / entry.name)


def _is_dir(entry: os.DirEntry[str], *, follow_symlinks: bool = True) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow_symlinks)
    except OSError:
        return False


def _folder_files(folder: Path, recursive: bool, suffixes: frozenset[str]) -> list[Path]:
    # kmq's own decoded images are not taken from folders, so encode after decode does not redo them.
    return [p for p in _walk(folder, recursive) if p.suffix.lower() in suffixes and not files.is_decoded_image(p)]


def find_inputs(
    arguments: Sequence[str], *, recursive: bool, suffixes: Iterable[str]
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Expand files, folders and glob patterns into input files.

    Parameters
    ----------
    arguments : sequence of str
        Each is a file (taken whatever its extension), ``-`` (standard
        input), a folder (its files with one of ``suffixes``; every level
        below it with ``recursive``), or a glob pattern that the shell did not
        expand (``"photos/*.jpg"``, ``"**/*.png"``; its matches with one of
        ``suffixes``, so that ``"*"`` does not pick up earlier outputs).
        Folders and patterns skip hidden files and kmq's decoded images
        (``NAME-kmq.EXT`` files kmq marked, :func:`kmq.files.is_decoded_image`),
        and never follow a symbolic link into a folder below them, so a link
        loop cannot make the search endless.
    recursive : bool
        Descend into folders.
    suffixes : iterable of str
        Lower-case extensions, with the dot, taken from folders.

    Returns
    -------
    inputs : list of (path, relative path)
        In argument order, each file once; the relative path is where the
        output goes under an output folder (the path below a folder argument,
        else the file name).
    problems : list of (str, str)
        Each argument that matched nothing, with the one line that says so.
    """
    wanted = frozenset(s.lower() for s in suffixes)
    inputs: list[tuple[Path, Path]] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path if files.is_stdio(path) else path.resolve()
        if key not in seen:
            seen.add(key)
            inputs.append((path, relative))

    for argument in arguments:
        path = Path(argument)
        if files.is_stdio(argument):
            add(path, path)
        elif path.is_dir():
            matches = _folder_files(path, recursive, wanted)
            for found in matches:
                add(found, found.relative_to(path))
            if not matches:
                kinds = ", ".join(sorted(wanted)) if len(wanted) <= 3 else "image"
                below = " or below it" if recursive else " (use -r to look in subfolders)"
                problems.append((argument, f"{argument}: no {kinds} files in this folder{below}"))
        elif path.exists():
            add(path, Path(path.name))  # a FIFO or a device too: reading it says what is wrong
        elif glob.has_magic(argument):
            hits = 0
            for found in sorted(set(_glob(argument))):
                if found.is_dir():
                    for inner in _folder_files(found, recursive, wanted):
                        add(inner, Path(found.name) / inner.relative_to(found))
                        hits += 1
                elif found.is_file() and found.suffix.lower() in wanted and not files.is_decoded_image(found):
                    add(found, Path(found.name))
                    hits += 1
            if not hits:
                problems.append((argument, f"{argument}: no files match"))
        else:
            problems.append((argument, f"{argument}: no such file or folder"))
    return inputs, problems


def plan(
    inputs: Sequence[tuple[Path, Path]],
    output_for: Callable[[Path, Path], Path],
    *,
    force: bool,
    batch: bool,
    named: bool = False,
) -> list[Job]:
    """Decide, for each input, whether to run, skip or refuse it (:func:`kmq.files.check_output`'s rule).

    Parameters
    ----------
    inputs : sequence of (path, relative path)
        As :func:`find_inputs` returns them.
    output_for : callable
        ``output_for(path, relative)`` gives the output path (``-`` for standard output).
    force : bool
        Replace existing outputs that kmq wrote (and, with ``named``, any regular file).
    batch : bool
        Skip kmq's outputs newer than their input and keep older ones as
        stale (True), or refuse every existing output (False: one file named
        on the command line).
    named : bool
        The output is one the user named (``-o``), so ``force`` may replace
        a file kmq did not write; otherwise only kmq's own files are ever replaced.

    Returns
    -------
    list of Job
        One per input, in order.
    """
    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    for source, relative in inputs:
        out = output_for(source, relative)
        if not files.is_stdio(out):
            key = out.resolve()
            if key in claimed:
                jobs.append(Job(source, out, "fail", f"{out}: also the output of {claimed[key]}; rename one input"))
                continue
            claimed[key] = source
        try:
            status = files.output_status(out, source)
            if batch and status == "kmq" and not force:
                if _newer(out, source):
                    jobs.append(Job(source, out, "skip", f"{out}: up to date"))
                else:
                    reason = f"{out}: stale (older than its input), kept; --force redoes it"
                    jobs.append(Job(source, out, "stale", reason))
                continue
            files.check_output(out, source, force=force, kmq_only=not named)
        except (KmqError, OSError) as exc:
            jobs.append(Job(source, out, "fail", _describe(exc, files.display_name(out, output=True))))
            continue
        jobs.append(Job(source, out))
    return jobs


def shared_palette(sources: Sequence[Path], options: EncodeOptions) -> tuple[EncodeOptions, list[str]]:
    """Fit one palette on every input together (``--shared-palette``): options that remap each input to it.

    The inputs' colour histograms are merged (RGB inputs count as opaque when any input
    has alpha) and one palette is fitted to the whole, so every output has byte-identical
    palette entries in the same order, none dropped.

    Parameters
    ----------
    sources : sequence of Path
        The inputs; an unreadable one is left out of the fit with a message.
    options : EncodeOptions
        Its quantizer's K, seed, space and keep fit the palette; its dither is kept.

    Returns
    -------
    options : EncodeOptions
        With ``quantizer.palette`` set to the shared palette.
    problems : list of str
        One line per input left out of the fit, and one if opaque inputs become RGBA.
    """
    from .histogram import histogram
    from .quantize import fit_palette

    merged: dict[int, tuple[Any, Any]] = {}
    problems: list[str] = []
    opaque = 0
    for source in sources:
        try:
            data = options.read(source)
            pixels = images.load(
                io.BytesIO(data),
                name=str(source),
                frame=options.frame,
                colour_management=options.colour_management,
                max_pixels=options.max_pixels,
            ).pixels
        except (KmqError, OSError) as exc:
            problems.append(f"{_describe(exc, source)}; left out of the shared palette")
            continue
        hist = histogram(pixels)
        opaque += pixels.shape[2] == 3
        merged[len(merged)] = (hist.colours, hist.counts)
        if len(merged) > 1:  # merge as we go: memory stays one histogram, whatever the batch size
            merged = {0: _merge(list(merged.values()))}
    if not merged:
        raise ParameterError("--shared-palette: no input could be read to fit the palette")
    colours, counts = _merge(list(merged.values()))
    if colours.shape[1] == 4 and opaque:
        problems.append(
            f"{opaque} opaque input(s) are written as RGBA: other inputs have alpha, and one palette serves all"
        )
    palette = fit_palette(colours, counts, options.quantizer)
    quantizer = Options(
        k=palette.shape[0],
        seed=options.quantizer.seed,
        space=options.quantizer.space,
        dither=options.quantizer.dither,
        palette=tuple(tuple(row) for row in palette.tolist()),
    )
    return dataclasses.replace(options, quantizer=quantizer), problems


def _merge(parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """One histogram (distinct colours, counts) of several; RGB colours become opaque RGBA if any part has alpha."""
    import numpy as np

    channels = max(colours.shape[1] for colours, _ in parts)
    rows = [
        colours if colours.shape[1] == channels else np.hstack([colours, np.full((len(colours), 1), 255, np.uint8)])
        for colours, _ in parts
    ]
    unique, inverse = np.unique(np.vstack(rows), axis=0, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=np.concatenate([c for _, c in parts]), minlength=len(unique))
    return unique, counts


def _newer(out: Path, source: Path) -> bool:
    try:
        return os.stat(out).st_mtime_ns >= os.stat(source).st_mtime_ns
    except OSError:
        return False


def encode_job(data: bytes, name: str, options: EncodeOptions) -> Outcome:
    """Encode one image file's bytes into a kmq file; never raises for bad input.

    Parameters
    ----------
    data : bytes
        The image file, in any format Pillow reads.
    name : str
        The input's name, for messages.
    options : EncodeOptions

    Returns
    -------
    Outcome
        The kmq file and its figures (``input_bytes``, ``width``, ``height``,
        ``mode`` (``"L"`` or ``"LA"`` for grey inputs, else the file's RGB or
        RGBA), ``input_mode`` (Pillow's, as stored), ``grey``, ``k`` and
        ``palette_size`` (both the file's K), ``coding``, ``file_bytes``,
        ``bits_per_pixel``, ``payload_bits_per_pixel``, ``raw_bits``,
        ``raw_bytes`` (1 byte per pixel and channel of ``mode``) and
        ``ratio`` (``raw_bytes`` to ``file_bytes``), ``psnr`` (None when
        lossless, measured against the pixels after colour management),
        ``seconds``, ``note``, ``colour`` (what was done with an ICC profile,
        or None) and ``notes`` (one-line warnings: a frame kept of many, an
        ignored EXIF tag or profile)), or the error. With
        ``options.output_format`` set, the image file instead (as
        :func:`kmq.images.save_indexed` writes it), with ``format`` added and
        ``coding``, ``payload_bits_per_pixel`` and ``raw_bits`` None.
    """
    start = time.perf_counter()
    try:
        loaded = images.load(
            io.BytesIO(data),
            name=name,
            frame=options.frame,
            colour_management=options.colour_management,
            max_pixels=options.max_pixels,
        )
        pixels = loaded.pixels
        indexed = quantize(pixels, options=options.quantizer)
        if options.output_format is not None:
            return _image_outcome(loaded, indexed, options.output_format, len(data), start)
        header, kmq_file = indexed.serialise(options.coding)
        psnr = metrics.psnr(pixels, indexed)
    except KmqError as exc:
        return Outcome(error=_describe(exc, name))
    except MemoryError:
        return Outcome(error=f"{name}: out of memory")
    except Exception as exc:
        return _failed(exc, name, "encode")
    note = container.fallback_note(options.coding, header.coding)
    info = {
        "input_bytes": len(data),
        "width": header.width,
        "height": header.height,
        "mode": loaded.mode,
        "k": header.k,
        "palette_size": header.k,
        "coding": container.CODINGS[header.coding],
        "file_bytes": len(kmq_file),
        "bits_per_pixel": header.file_bits_per_pixel(len(kmq_file)),
        "payload_bits_per_pixel": header.payload_bits_per_pixel(len(kmq_file)),
        "raw_bits": header.bits,
        "psnr": None if psnr == float("inf") else psnr,
        "seconds": time.perf_counter() - start,
        "note": note,
        "input_mode": loaded.source_mode,
        "grey": loaded.grey,
        "raw_bytes": header.pixels * loaded.bytes_per_pixel,
        "ratio": header.pixels * loaded.bytes_per_pixel / len(kmq_file),
        "colour": loaded.colour,
        "notes": list(loaded.notes),
    }
    return Outcome(kmq_file, info)


def _image_outcome(loaded: images.Loaded, indexed: Indexed, fmt: str, input_bytes: int, start: float) -> Outcome:
    """``encode_job``'s result when the output is an image file (``EncodeOptions.output_format``)."""
    buffer = io.BytesIO()
    images.save_indexed(buffer, indexed, fmt)
    content = buffer.getvalue()
    psnr = metrics.psnr(loaded.pixels, indexed)
    pixels = indexed.width * indexed.height
    info = {
        "input_bytes": input_bytes,
        "width": indexed.width,
        "height": indexed.height,
        "mode": loaded.mode,
        "k": indexed.k,
        "palette_size": indexed.k,
        "coding": None,
        "format": fmt,
        "file_bytes": len(content),
        "bits_per_pixel": 8 * len(content) / pixels,
        "payload_bits_per_pixel": None,
        "raw_bits": None,
        "psnr": None if psnr == float("inf") else psnr,
        "seconds": time.perf_counter() - start,
        "note": "",
        "input_mode": loaded.source_mode,
        "grey": loaded.grey,
        "raw_bytes": pixels * loaded.bytes_per_pixel,
        "ratio": pixels * loaded.bytes_per_pixel / len(content),
        "colour": loaded.colour,
        "notes": list(loaded.notes),
    }
    return Outcome(content, info)


def decode_job(data: bytes, name: str, options: DecodeOptions) -> Outcome:
    """Decode one kmq file's bytes into an image file; never raises for bad input.

    Parameters
    ----------
    data : bytes
        The kmq file.
    name : str
        The input's name, for messages.
    options : DecodeOptions

    Returns
    -------
    Outcome
        The image file and its figures (``width``, ``height``, ``mode``,
        ``k`` and ``palette_size`` (both the file's K), ``output_bytes``,
        ``seconds``), or the error.
    """
    start = time.perf_counter()
    try:
        indexed = Indexed.from_bytes(data, max_pixels=options.max_pixels)
        fmt = images.output_format(Path("out").with_suffix(options.suffix), channels=indexed.channels)
        buffer = io.BytesIO()
        images.save_indexed(buffer, indexed, fmt)
    except KmqError as exc:
        return Outcome(error=_describe(exc, name))
    except MemoryError:
        return Outcome(error=f"{name}: out of memory")
    except Exception as exc:
        return _failed(exc, name, f"decode to {options.suffix}")
    content = buffer.getvalue()
    info = {
        "width": indexed.width,
        "height": indexed.height,
        "mode": container.mode_name(indexed.channels),
        "k": indexed.k,
        "palette_size": indexed.k,
        "output_bytes": len(content),
        "seconds": time.perf_counter() - start,
    }
    return Outcome(content, info)


def _failed(exc: Exception, name: str, doing: str) -> Outcome:
    """Any exception from one file as that file's failure, worded the same in this process and in a worker."""
    if isinstance(exc, (KmqError, OSError)):
        return Outcome(error=_describe(exc, name))
    if isinstance(exc, MemoryError):
        return Outcome(error=f"{name}: out of memory")
    # Pillow and numpy raise what they like (a GIF wider than 65535 pixels is an OverflowError):
    # still this file's problem, not the batch's.
    return Outcome(error=f"{files.display_name(name)}: cannot {doing}: {type(exc).__name__}: {exc}")


Work = Callable[[bytes, str, Any], Outcome]


def _read(path: Path, options: EncodeOptions | DecodeOptions) -> bytes:
    # Through kmq.files.open_input, via options.read: a device or a FIFO is refused, not read.
    return options.read(path)


def _describe(exc: BaseException, name: str | Path) -> str:
    """One line naming the file: kmq's messages may already start with it, OSError's name it themselves."""
    label = files.display_name(name)
    if isinstance(exc, KmqError):
        text = str(exc)
        return text if text.startswith(label) else f"{label}: {text}"
    if isinstance(exc, OSError):
        return files.describe_os_error(exc, label)
    return f"{label}: worker failed: {type(exc).__name__}: {exc}"


def write_output(job: Job, content: bytes, placement: Placement, *, sync_folder: bool = True) -> str | None:
    """Write a finished output atomically (or to standard output); the reason it could not be, or None.

    The one place a batch writes an output, in a worker process or in the
    coordinator: the rule on what may be replaced (:func:`kmq.files.check_output`)
    is checked again here, as files may have changed since :func:`plan`, and
    :func:`kmq.files.atomic_write` writes a temporary file and renames it.
    Subfolders are made under an output folder only (``make_folders``): a ``-o``
    into a missing folder is more likely a typo than a wish.

    Parameters
    ----------
    job : Job
        Its ``output`` is written.
    content : bytes
        The whole output.
    placement : Placement
        What may be replaced, and whether folders may be made.
    sync_folder : bool
        Make the new name durable now (see :func:`kmq.files.atomic_write`);
        :func:`run` passes False and syncs each folder once at the end.

    Returns
    -------
    str or None
        One line naming the output, e.g. ``"out/a.kmq: No space left on device"``.

    Raises
    ------
    BrokenPipeError
        If standard output's reader has gone: the command ends quietly, as a Unix filter does.
    """
    if placement.make_folders and not job.output.parent.exists():
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return files.describe_os_error(exc, job.output.parent)
    try:
        files.atomic_write(
            job.output, content, overwrite=placement.force, kmq_only=not placement.named, sync_folder=sync_folder
        )
    except BrokenPipeError:
        raise
    except OSError as exc:
        return files.describe_os_error(exc, files.display_name(job.output, output=True))
    except KmqError as exc:
        return str(exc)
    return None


def _placed(job: Job, outcome: Outcome, placement: Placement) -> Outcome:
    """``outcome`` once its output is written (:func:`write_output`): without its bytes, or failed."""
    if outcome.error is not None or outcome.written:
        return outcome
    assert outcome.content is not None, "a work function's Outcome has content or an error"
    # Not a folder sync per file: run() syncs each folder once, at the end.
    error = write_output(job, outcome.content, placement, sync_folder=False)
    return Outcome(error=error) if error else Outcome(info=outcome.info, written=True)


def _work_file(
    work: Work, options: EncodeOptions | DecodeOptions, placement: Placement, job: Job, data: bytes | None
) -> Outcome:
    """One job from its input file to its output file, where it runs: a local worker, or this process.

    ``data`` is the input when the coordinator had to read it (standard input); an output
    to standard output is left to the coordinator (its ``content`` comes back).
    """
    name = str(job.source)
    if data is None:
        try:
            data = _read(job.source, options)
        except Exception as exc:
            return _failed(exc, name, "read")
    outcome = _run_here(work, options, data, name)
    if files.is_stdio(job.output):
        return outcome
    with _whole_write():
        return _placed(job, outcome, placement)


#: Set in worker processes by :func:`_start_worker`: they are stopped with SIGTERM.
_worker: list[bool] = []


@contextlib.contextmanager
def _whole_write() -> Iterator[None]:
    """In a worker process, hold back SIGTERM while an output is written: it ends whole or not at all.

    The coordinator stops its workers with SIGTERM (Ctrl-C, an error); one that
    is writing finishes the file (a few milliseconds) and then dies, so it
    leaves no temporary file behind. Elsewhere this does nothing: in the
    coordinator, Ctrl-C raises inside :func:`kmq.files.atomic_write`, which cleans up.
    """
    if not _worker:
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received:
            os.kill(os.getpid(), signal.SIGTERM)


def _start_worker(parent: int) -> None:
    # Ctrl-C and a closed terminal reach the whole process group; the coordinator alone
    # handles them (and stops the workers), so that workers do not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # SIGTERM is how the coordinator stops a worker: die at once, whatever handler it inherited.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker.append(True)
    _exit_with_parent(parent)
    # The worker processes already share the cores: threads within each only compete.
    # Measured on Kodak at K=64, -j 2 took 1.5-3.5 s with BLAS's own 2 threads per
    # worker, 0.9 s with 1, against 1.4 s for -j 1.
    os.environ[threads.ENVIRONMENT] = "1"
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # comes with scikit-learn; without it BLAS keeps its default
        return
    threadpool_limits(1)


#: Seconds between a worker's checks that the coordinator is still alive, where the kernel cannot tell it.
_PARENT_POLL = 1.0

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _exit_with_parent(parent: int) -> None:
    """End this worker process when the coordinator ``parent`` ends, by any signal, SIGKILL included.

    A worker has nothing to save (an output it was writing is either whole
    or a temporary file that a later run sweeps away), so it exits at once.
    Linux delivers SIGKILL to it when its parent goes
    (``prctl(PR_SET_PDEATHSIG)``; strictly, when the thread that started it
    ends, which in :func:`run` is the thread iterating it). Everywhere, a
    thread also watches the parent: its process sentinel (a pipe end, or on
    Windows the parent's process handle) and, on POSIX, ``os.getppid()``,
    which changes when an orphan is adopted.
    """
    _die_with_parent()
    if os.name == "posix" and os.getppid() != parent:
        os._exit(1)  # the parent died before the line above could take effect
    threading.Thread(target=_watch_parent, args=(parent,), name="kmq-parent-watch", daemon=True).start()


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl in this libc: the watcher thread still works
        pass


def _watch_parent(parent: int) -> None:
    import multiprocessing
    from multiprocessing.connection import wait as wait_ready

    process = multiprocessing.parent_process()
    sentinel = getattr(process, "sentinel", None)
    while True:
        if sentinel is not None and wait_ready([sentinel], timeout=_PARENT_POLL):
            os._exit(1)  # the parent's end of the sentinel is closed: it has gone
        if sentinel is None:
            time.sleep(_PARENT_POLL)
        if os.name == "posix" and os.getppid() != parent:
            os._exit(1)


def run(
    jobs: Sequence[Job],
    work: Work,
    options: EncodeOptions | DecodeOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    placement: Placement | None = None,
) -> Iterator[tuple[Job, Outcome]]:
    """Run the jobs whose action is ``"run"``, yielding results as they finish.

    Without ``placement``, reading inputs and writing outputs is the caller's
    side: each input is read here just before its task is sent, and each
    Outcome carries the output's bytes. With it, every output is written
    (:func:`write_output`) before its result is yielded: local workers read
    and write their own files, and this process does it for a Dask cluster
    and for standard input and output. At most two tasks per worker are in
    flight, so memory does not grow with the number of files.

    Parameters
    ----------
    jobs : sequence of Job
        Only those with ``action == "run"`` are run.
    work : callable
        :func:`encode_job` or :func:`decode_job`.
    options : EncodeOptions or DecodeOptions
        Passed to ``work``; its ``read`` reads each input.
    workers : int
        Local worker processes; 1 runs everything in this process.
    scheduler : str or None
        Address of a Dask distributed scheduler (``tcp://host:8786``); the
        tasks go to its workers instead, and ``workers`` is ignored.
    placement : Placement or None
        Write each output, by this rule; the folders written into are synced
        once each when the batch ends, however it ends.

    Yields
    ------
    (Job, Outcome)
        In the order the jobs finish; a job whose input cannot be read, whose
        output cannot be written, or whose worker died, has an Outcome with
        ``error`` set. With ``placement``, a good Outcome has ``written`` set and no ``content``.

    Raises
    ------
    ImportError
        If ``scheduler`` is given and ``distributed`` is not installed.
    ParameterError
        If ``scheduler`` is not an address, or a ``KMQ_DASK_*`` variable not a number of seconds.
    SchedulerError
        If no Dask scheduler answers at ``scheduler`` within :data:`CONNECT_TIMEOUT`, it has no worker
        within :data:`WORKER_WAIT` (at the start, or after all have gone mid-batch), no file finishes
        within :data:`PROGRESS_TIMEOUT`, or the scheduler is lost; results already yielded stand.

    Notes
    -----
    Worker processes (``workers > 1``) exit when the calling process ends, however it ends
    (SIGKILL included); see :func:`_exit_with_parent`.
    """
    todo = [job for job in jobs if job.action == "run"]
    if placement is None:
        yield from _run_bytes(todo, work, options, workers, scheduler)
        return
    written: set[Path] = set()
    try:
        for job, outcome in _run_files(todo, work, options, workers, scheduler, placement):
            if outcome.written and not files.is_stdio(job.output):
                written.add(Path(os.path.realpath(job.output)).parent)
            yield job, outcome
    finally:
        for folder in sorted(written):
            files.fsync_folder(folder)


def _run_bytes(
    todo: Sequence[Job],
    work: Work,
    options: EncodeOptions | DecodeOptions,
    workers: int,
    scheduler: str | None,
) -> Iterator[tuple[Job, Outcome]]:
    """:func:`run` without a placement: inputs read here, outputs' bytes returned."""
    submit_all = functools.partial(_submit_all, todo, options)
    if scheduler is not None:
        yield from _run_dask(submit_all, work, options, scheduler)
    elif workers <= 1 or len(todo) <= 1:
        yield from submit_all(functools.partial(_run_here, work, options))
    else:
        task = functools.partial(_call, work, options)
        yield from _run_pool(submit_all, task, workers, size=min(workers, len(todo)))


def _run_files(
    todo: Sequence[Job],
    work: Work,
    options: EncodeOptions | DecodeOptions,
    workers: int,
    scheduler: str | None,
    placement: Placement,
) -> Iterator[tuple[Job, Outcome]]:
    """:func:`run` with a placement: each file read, worked and written where it runs, if it can be."""
    if scheduler is not None:  # no shared file system: this process reads and writes for the cluster
        for job, outcome in _run_dask(functools.partial(_submit_all, todo, options), work, options, scheduler):
            yield job, _placed(job, outcome, placement)
        return
    task = functools.partial(_work_file, work, options, placement)
    submit_all = functools.partial(_submit_files, todo, options)
    if workers <= 1 or len(todo) <= 1:
        results = submit_all(task)
    else:
        results = _run_pool(submit_all, task, workers, size=min(workers, len(todo)))
    for job, outcome in results:  # what a worker could not write: standard output
        yield job, _placed(job, outcome, placement)


def _submit_all(
    todo: Sequence[Job], options: EncodeOptions | DecodeOptions, submit: Callable[[bytes, str], Any]
) -> Iterator[tuple[Job, Any] | tuple[Job, Outcome]]:
    """Read each job's input just before ``submit`` takes it; an unreadable input is that job's Outcome."""
    for job in todo:
        try:
            data = _read(job.source, options)
        except Exception as exc:
            yield job, _failed(exc, str(job.source), "read")
            continue
        yield job, submit(data, str(job.source))


def _submit_files(
    todo: Sequence[Job], options: EncodeOptions | DecodeOptions, submit: Callable[[Job, bytes | None], Any]
) -> Iterator[tuple[Job, Any] | tuple[Job, Outcome]]:
    """Hand each job to ``submit`` to be read where it runs; standard input alone is read here first."""
    for job in todo:
        if not files.is_stdio(job.source):
            yield job, submit(job, None)
            continue
        try:
            data = _read(job.source, options)
        except Exception as exc:
            yield job, _failed(exc, str(job.source), "read")
            continue
        yield job, submit(job, data)


def _run_here(work: Work, options: EncodeOptions | DecodeOptions, data: bytes, name: str) -> Outcome:
    try:
        return work(data, name, options)
    except Exception as exc:  # as _future_result words it for a worker
        return Outcome(error=_describe(exc, name))


def _call(work: Work, options: EncodeOptions | DecodeOptions, data: bytes, name: str) -> Outcome:
    """``work`` as a worker process runs it without a placement: what it raises, the future raises."""
    return work(data, name, options)


def _run_pool(
    submit_all: Callable[[Callable[..., Any]], Iterator[Any]],
    task: Callable[..., Outcome],
    workers: int,
    size: int,
) -> Iterator[tuple[Job, Outcome]]:
    """:func:`run` on ``size`` local worker processes running ``task``, with at most two tasks per worker in flight."""
    pools = [ProcessPoolExecutor(max_workers=size, initializer=_start_worker, initargs=(os.getpid(),))]

    def submit(*args: Any) -> Future[Outcome]:
        try:
            return pools[-1].submit(task, *args)
        except BrokenProcessPool:
            # A worker died (killed, or out of memory): the files it had are reported
            # as failed by their futures; the rest go to a fresh pool.
            pools[-1].shutdown(wait=False, cancel_futures=True)
            pools.append(ProcessPoolExecutor(max_workers=size, initializer=_start_worker, initargs=(os.getpid(),)))
            return pools[-1].submit(task, *args)

    try:
        yield from _drain(
            submit_all(submit),
            limit=_IN_FLIGHT_PER_WORKER * workers,
            wait_any=lambda pending: wait(pending, return_when=FIRST_COMPLETED)[0],
            result=_future_result,
            cancel=lambda pending: [f.cancel() for f in pending],
        )
    except BaseException:
        # Interrupted, or the caller stopped early: stop the workers now rather than wait for
        # them; one that is writing an output finishes it first (_whole_write).
        for pool in pools:
            _stop_workers(pool)
        raise
    for pool in pools:
        pool.shutdown()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    _silence_manager(pool)
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    queue = getattr(pool, "_call_queue", None)
    if queue is not None:
        # Before Python 3.12 the pool's manager thread can die of InvalidStateError on a future we
        # cancelled before it closes this queue; the queue's feeder thread then blocks on a pipe that no
        # process reads, and the interpreter's exit would wait for it forever (seen once in CI).
        queue.cancel_join_thread()
    pool.shutdown(wait=True, cancel_futures=True)


def _silence_manager(pool: ProcessPoolExecutor) -> None:
    """Keep the pool's manager thread from printing a traceback while we tear the pool down.

    Before Python 3.12 it can die of an error about a future we cancelled or a worker we stopped
    (a traceback after ``kmq: interrupted``, seen once in CI); the pool is being discarded, so
    its errors say nothing. Other threads' exceptions are reported as before.
    """
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is None:
        return
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not manager:
            previous(args)

    threading.excepthook = hook


def _future_result(future: Future[Outcome], job: Job) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # a worker died (BrokenProcessPool) or could not unpickle
        return Outcome(error=_describe(exc, job.source))


def _drain(
    submitted: Iterator[Any],
    *,
    limit: int,
    wait_any: Callable[[set[Any]], Iterable[Any]],
    result: Callable[[Any, Job], Outcome],
    cancel: Callable[[set[Any]], object],
) -> Iterator[tuple[Job, Outcome]]:
    """Keep at most ``limit`` futures in flight and yield each as it completes."""
    pending: dict[Any, Job] = {}
    try:
        for job, item in submitted:
            if isinstance(item, Outcome):
                yield job, item
                continue
            pending[item] = job
            while len(pending) >= limit:
                for done in list(wait_any(set(pending))):
                    finished = pending.pop(done)
                    yield finished, result(done, finished)
        while pending:
            for done in list(wait_any(set(pending))):
                finished = pending.pop(done)
                yield finished, result(done, finished)
    finally:
        if pending:
            cancel(set(pending))


def _seconds(variable: str, default: float) -> float:
    """A time bound: ``default``, unless the environment variable ``variable`` gives another."""
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ParameterError(f"{variable} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class _Bounds:
    """The time bounds of one batch on a cluster, in seconds: the module constants or their variables."""

    connect: float
    workers: float
    progress: float

    @classmethod
    def read(cls) -> _Bounds:
        return cls(
            connect=_seconds("KMQ_DASK_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
            workers=_seconds("KMQ_DASK_WORKER_WAIT", WORKER_WAIT),
            progress=_seconds("KMQ_DASK_PROGRESS_TIMEOUT", PROGRESS_TIMEOUT),
        )


def _run_dask(
    submit_all: Callable[[Callable[[bytes, str], Any]], Iterator[Any]],
    work: Work,
    options: Any,
    address: str,
) -> Iterator[tuple[Job, Outcome]]:
    try:
        from distributed import wait as dask_wait
    except ImportError:
        raise ImportError(DASK_MISSING) from None
    bounds = _Bounds.read()
    _handshake(address, bounds.connect)
    with _quiet_logging("distributed"), _client(address, bounds) as client:
        slots = sum(client.nthreads().values()) or 1
        watch = _Watch(client, address, dask_wait, bounds)

        def result(future: Any, job: Job) -> Outcome:
            try:
                outcome: Outcome = future.result()
                return outcome
            except Exception as exc:  # the task or its worker failed on the cluster
                return Outcome(error=_describe(exc, job.source))
            finally:
                future.release()

        yield from _drain(
            # pure=False: equal bytes under two names are still two jobs.
            submit_all(lambda data, name: client.submit(work, data, name, options, pure=False)),
            limit=_IN_FLIGHT_PER_WORKER * slots,
            wait_any=watch.wait_any,
            result=result,
            cancel=lambda pending: client.cancel(list(pending)),
        )


@contextlib.contextmanager
def _client(address: str, bounds: _Bounds) -> Iterator[Any]:
    """A distributed Client of a scheduler that has answered :func:`_handshake` and has a worker."""
    from distributed import Client

    try:
        client = Client(address, timeout=bounds.connect)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"scheduler {address}: cannot connect ({exc})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=bounds.workers)
        except _timeouts():
            raise SchedulerError(f"scheduler {address} has no workers (none joined in {bounds.workers:g} s)") from None
        yield client
    finally:
        with contextlib.suppress(Exception):  # a scheduler that has gone cannot be told goodbye
            client.close(timeout=bounds.connect)


@contextlib.contextmanager
def _quiet_logging(name: str) -> Iterator[None]:
    """Keep a library's log lines off stderr for a while: kmq says what failed, in one line of its own."""
    loggers = [logging.getLogger(name)]
    loggers += [
        logging.getLogger(other) for other in list(logging.root.manager.loggerDict) if other.startswith(f"{name}.")
    ]
    levels = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in levels:
            logger.setLevel(level)


def _timeouts() -> tuple[type[BaseException], ...]:
    import asyncio  # only for a cluster: kmq itself needs no event loop

    # asyncio.TimeoutError is the built-in TimeoutError from Python 3.11 on, a class of its own before.
    return (TimeoutError, asyncio.TimeoutError)


class _Watch:
    """Wait for the first of some Dask futures, but never for ever.

    Gives up (:class:`SchedulerError`) when the cluster has had no worker for
    ``bounds.workers`` seconds, when no future at all has finished for
    ``bounds.progress`` seconds, or when the scheduler is lost.
    """

    def __init__(self, client: Any, address: str, dask_wait: Any, bounds: _Bounds) -> None:
        self.client = client
        self.address = address
        self.dask_wait = dask_wait
        self.bounds = bounds
        self.progress = time.monotonic()
        self.empty_since: float | None = None

    def wait_any(self, pending: set[Any]) -> Iterable[Any]:
        while True:
            try:
                done = self.dask_wait(list(pending), timeout=_DASK_POLL, return_when="FIRST_COMPLETED").done
            except _timeouts():
                done = set()
            except CancelledError:  # distributed cancels every future when it loses the scheduler
                raise SchedulerError(f"scheduler {self.address}: lost the connection to it") from None
            now = time.monotonic()
            if done:
                self.progress, self.empty_since = now, None
                return set(done)
            self._check(now)

    def _check(self, now: float) -> None:
        workers = self._workers()
        if workers == 0:
            self.empty_since = now if self.empty_since is None else self.empty_since
            if now - self.empty_since >= self.bounds.workers:
                wait = f"{self.bounds.workers:g} s"
                raise SchedulerError(
                    f"scheduler {self.address}: all its workers have gone and none came back in {wait}"
                )
        elif workers is not None:
            self.empty_since = None
        if now - self.progress >= self.bounds.progress:
            raise SchedulerError(
                f"scheduler {self.address}: no file finished in {self.bounds.progress:g} s "
                "(KMQ_DASK_PROGRESS_TIMEOUT sets how long to wait)"
            )

    def _workers(self) -> int | None:
        """How many workers the scheduler has, or None if it does not say in time."""
        try:
            return len(self.client.nthreads(callback_timeout=max(_DASK_POLL, 1.0)))
        except Exception:
            return None


def _handshake(address: str, limit: float) -> None:
    """Check that a Dask scheduler answers at ``address``, within ``limit`` seconds (and a second).

    distributed's own ``connect`` retries a refused connection until its
    timeout, but then waits for the handshake for ever: an address that
    accepts and says nothing (or an HTTP server, which waits for a request)
    would hang ``Client``. So the handshake is done here first, in an event
    loop of its own under a hard deadline.

    Raises
    ------
    ParameterError
        If ``address`` is not an address (``"foo"``, ``"http://..."``).
    SchedulerError
        If nothing is there, or what is there is no Dask scheduler.
    """
    import asyncio

    from distributed.comm.core import CommClosedError, connect

    example = "such as tcp://host:8786"
    if address.lower().startswith(("http://", "https://")):
        raise ParameterError(
            f"scheduler {address!r} is a web address (a dashboard's?), not a Dask scheduler's {example}"
        )

    async def shake() -> None:
        comm = await connect(address, timeout=limit)
        await comm.close()

    async def bounded() -> None:
        # The margin lets connect's own timeout, with its clearer message, come first.
        await asyncio.wait_for(shake(), limit + min(limit, 1.0))

    # A loop of its own, in a thread of its own: the caller may already run one (a notebook does).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kmq-handshake") as pool:
        try:
            pool.submit(asyncio.run, bounded()).result()
        except _timeouts():
            http = _speaks_http(address, min(limit, _HTTP_PROBE))
            heard = (
                "it answers HTTP (a dashboard? a scheduler's port is usually 8786)"
                if http
                else f"no answer in {limit:g} s"
            )
            raise SchedulerError(f"scheduler {address}: not a Dask scheduler: {heard}") from None
        except CommClosedError:
            raise SchedulerError(
                f"scheduler {address}: not a Dask scheduler: it hung up during the handshake"
            ) from None
        except OSError as exc:
            raise SchedulerError(f"scheduler {address}: cannot connect ({exc})") from None
        except Exception as exc:  # distributed raises ValueError, TypeError, ... for a malformed address
            raise ParameterError(f"scheduler {address!r} is not a scheduler address {example} ({exc})") from None


def _speaks_http(address: str, limit: float) -> bool:
    """Whether a plain TCP ``address`` answers an HTTP request (as a dashboard would) within ``limit``."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "tcp":
            return False
        host, port = parse_host_port(location)
        with socket.create_connection((host, port), timeout=limit) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\nHost: " + host.encode("idna") + b"\r\n\r\n")
            answer = b""
            while len(answer) < 5:
                chunk = connection.recv(5 - len(answer))
                if not chunk:
                    break
                answer += chunk
    except (OSError, ValueError, UnicodeError):
        return False
    return answer == b"HTTP/"
