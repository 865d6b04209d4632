"""How the commands speak: one-line errors, results on stdout, details on stderr, JSON, progress.

Every command that reports goes through :class:`Report`, so ``--json``,
``--quiet`` and ``--verbose`` mean the same everywhere. On a terminal, a batch
gets a progress bar and a single long job a status line (its step and the
time so far); neither appears with ``--quiet`` or ``--json``, or when stderr
is not a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["PROG", "CommandError", "Report", "db", "failure_document", "mode_word", "STATUS_DELAY"]

PROG = "kmq"

#: Seconds a single job runs before its status line appears: quick commands never draw one.
STATUS_DELAY = 0.5
#: Seconds between redraws of the status line's clock.
_STATUS_INTERVAL = 0.2
_CLEAR_LINE = "\r\x1b[K"  # to the line's start, erase to its end


def _columns(stream: TextIO) -> int:
    """The terminal's width, or 0 where it reports none (a pseudo-terminal may say 0 x 0)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


class _Status:
    """One line on a terminal, redrawn in place: what runs, its current step and the time so far.

    A background thread keeps the clock moving while the main thread works
    (numpy and the ctx1 coder release the GIL); a new step is drawn at once. The
    line is cut to the terminal's width, since a wrapped line cannot be
    erased with a carriage return.
    """

    def __init__(self, what: str, stream: TextIO) -> None:
        self.what, self.stream, self.step_text = what, stream, ""
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.shown = False
        self._stop = threading.Event()
        if self._due() <= 0:
            self.draw()
        self._thread = threading.Thread(target=self._tick, name="kmq-status", daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        if self._stop.wait(max(0.0, self._due())):
            return
        while True:
            self.draw()
            if self._stop.wait(_STATUS_INTERVAL):
                return

    def _due(self) -> float:
        return STATUS_DELAY - (time.monotonic() - self.started)

    def step(self, text: str) -> None:
        self.step_text = text
        if self._due() <= 0:
            self.draw()

    def draw(self) -> None:
        with self.lock:
            if self._stop.is_set():
                return
            elapsed = time.monotonic() - self.started
            line = f"{PROG}: {self.what}" + (f": {self.step_text}" if self.step_text else "") + f", {elapsed:.1f} s"
            width = _columns(self.stream) or 80
            try:
                self.stream.write("\r" + line[: width - 1] + "\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):  # the terminal has gone (closed, hung up): the job goes on
                self._stop.set()
                return
            self.shown = True

    def clear(self) -> None:
        """Erase the line (the caller holds ``lock``), so that other output starts on a clean line."""
        if self.shown:
            self.shown = False
            with contextlib.suppress(OSError, ValueError):  # as in draw: a terminal gone is not the job's failure
                self.stream.write(_CLEAR_LINE)
                self.stream.flush()

    def stop(self) -> None:
        with self.lock:
            self._stop.set()
            self.clear()
        self._thread.join()


class CommandError(Exception):
    """A failure the command reports in one line (exit 1)."""


class Report:
    """Where a command's words go: per-file lines, errors, a progress bar, a summary or JSON.

    Parameters
    ----------
    args : argparse.Namespace
        With ``json``, ``quiet`` and ``verbose``.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.json: bool = getattr(args, "json", False)
        self.quiet: bool = getattr(args, "quiet", False)
        self.verbose: bool = getattr(args, "verbose", False)
        self._bar: Any = None
        self._status: _Status | None = None

    def _on_terminal(self) -> bool:
        return not self.quiet and not self.json and sys.stderr.isatty()

    def progress(self, total: int, unit: str, what: str = "") -> None:
        """Start a progress bar for more than one file, or for one file the status line ``what``; on a terminal only.

        Ended by :meth:`close`.
        """
        if total > 1 and self._on_terminal():
            from tqdm import tqdm

            # A pseudo-terminal may report a 0 x 0 size, where tqdm would draw nothing: assume 80 x 24.
            sizing = {"dynamic_ncols": True} if _columns(sys.stderr) > 0 else {"ncols": 80, "nrows": 24}
            self._bar = tqdm(total=total, unit=unit, file=sys.stderr, leave=False, **sizing)
        elif total == 1 and what and self._on_terminal():
            self._status = _Status(what, sys.stderr)

    @contextlib.contextmanager
    def status(self, what: str) -> Iterator[Callable[[str], None]]:
        """A status line for one long job, on a terminal only; yields a function that sets its current step.

        The line shows after :data:`STATUS_DELAY` seconds, e.g. ``kmq: sweep photo.jpg: K=64 (5 of 8),
        6.2 s``, and is erased when the block ends, however it ends. Elsewhere the function does nothing.
        """
        if not self._on_terminal():
            yield lambda text: None
            return
        self._status = _Status(what, sys.stderr)
        try:
            yield self._status.step
        finally:
            self.close()

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _write(self, text: str, stream: TextIO) -> None:
        if self._bar is not None:
            self._bar.write(text, file=stream)
        elif self._status is not None:
            with self._status.lock:  # erased first, redrawn by its clock below this line
                self._status.clear()
                print(text, file=stream, flush=True)
        else:
            print(text, file=stream)

    def line(self, text: str) -> None:
        """A result line on stdout (not with --quiet or --json)."""
        if not self.quiet and not self.json:
            self._write(text, sys.stdout)

    def detail(self, text: str) -> None:
        """A line for --verbose only, on stderr so that stdout stays results."""
        if self.verbose:
            self._write(f"{PROG}: {text}", sys.stderr)

    def warning(self, text: str) -> None:
        """A warning line on stderr: something in an input was ignored or left out (not with --quiet)."""
        if not self.quiet:
            self._write(f"{PROG}: warning: {text}", sys.stderr)

    def error(self, text: str) -> None:
        """An error line on stderr (always)."""
        self._write(f"{PROG}: error: {text}", sys.stderr)

    def emit_json(self, document: dict[str, Any]) -> None:
        if self.json:
            print(json.dumps(document, indent=2))


def db(psnr: float | None) -> str:
    """A PSNR for people: ``"31.20 dB"``, or ``"lossless"`` for None or infinity."""
    return "lossless" if psnr is None or math.isinf(psnr) else f"{psnr:.2f} dB"


def failure_document(command: str | None, error: str) -> dict[str, Any]:
    """What ``--json`` prints on stdout when a command fails, usage errors included (exit 1 or 2)."""
    return {"command": command, "error": error}


def mode_word(mode: str) -> str:
    """An image mode for people: ``"grey"`` and ``"grey+alpha"`` for L and LA, else the mode (RGB, RGBA)."""
    return {"L": "grey", "LA": "grey+alpha"}.get(mode, mode)
