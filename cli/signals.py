"""SIGTERM and SIGHUP handled as Ctrl-C is: ``docker stop``, ``systemctl stop`` and a closed terminal.

While a command runs, either signal raises :class:`Stopped` (a
``KeyboardInterrupt``) wherever the program is, so that everything that cleans
up after Ctrl-C runs for them too: the temporary output is removed, worker
processes are stopped. The command then says so in one line and exits with
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from .report import PROG

__all__ = ["Stopped", "handled", "report"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """The command was stopped by ``signum`` (SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_owner: list[int] = []  # the process that set the handlers


def _stop(signum: int, frame: FrameType | None) -> None:
    if _owner and os.getpid() != _owner[-1]:
        # A child forked while the handlers were set (a worker process, before its own start-up
        # resets them): it ends as it would have without them, quietly.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    for each in _SIGNALS:
        signal.signal(each, signal.SIG_IGN)  # a second signal must not cut the clean-up short
    raise Stopped(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Raise :class:`Stopped` on SIGTERM and SIGHUP inside the block; the previous handlers are restored after it.

    A signal that is ignored (SIGHUP under ``nohup``) stays ignored, and in a
    thread other than the main one (where Python allows no handlers) nothing
    changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    _owner.append(os.getpid())
    for each in _SIGNALS:
        if signal.getsignal(each) is not signal.SIG_IGN:
            previous[each] = signal.signal(each, _stop)
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
        _owner.pop()


def report(interrupt: KeyboardInterrupt) -> int:
    """Say in one line on stderr what stopped the command; the exit status, 128 + the signal's number."""
    signum = interrupt.signum if isinstance(interrupt, Stopped) else signal.SIGINT
    message = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
        print(f"{PROG}: {message}", file=sys.stderr)
    return 128 + signum
