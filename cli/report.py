"""How the commands speak: one-line errors, results on stdout, details on stderr, JSON, a progress bar.

Every command that reports goes through :class:`Report`, so ``--json``,
``--quiet`` and ``--verbose`` mean the same everywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, TextIO

__all__ = ["PROG", "CommandError", "Report", "db", "mode_word"]

PROG = "kmq"


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

    def progress(self, total: int, unit: str) -> None:
        """Start a progress bar, on a terminal only, for more than one file."""
        if total > 1 and not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            try:
                width = os.get_terminal_size(sys.stderr.fileno()).columns
            except (OSError, ValueError):
                width = 0
            # A pseudo-terminal may report a 0 x 0 size, where tqdm would draw nothing: assume 80 x 24.
            sizing = {"dynamic_ncols": True} if width > 0 else {"ncols": 80, "nrows": 24}
            self._bar = tqdm(total=total, unit=unit, file=sys.stderr, leave=False, **sizing)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _write(self, text: str, stream: TextIO) -> None:
        if self._bar is not None:
            self._bar.write(text, file=stream)
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


def mode_word(mode: str) -> str:
    """An image mode for people: ``"grey"`` and ``"grey+alpha"`` for L and LA, else the mode (RGB, RGBA)."""
    return {"L": "grey", "LA": "grey+alpha"}.get(mode, mode)
