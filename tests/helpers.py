"""Images and ``kmq`` command runners shared by the test modules (import them from here, not from a test module)."""

from __future__ import annotations

import itertools
import os
import re
import threading
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pytest
from kmq.cli.main import main
from PIL import Image

#: The size of the small test images below.
W, H = 16, 12


def gradient() -> np.ndarray:
    """16x12 RGB with 192 distinct colours (more than any K below 192)."""
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[..., 0] = np.arange(W)[None, :] * 16
    pixels[..., 1] = np.arange(H)[:, None] * 20
    pixels[..., 2] = 128
    return pixels


def five_colours() -> np.ndarray:
    """16x12 RGB with exactly five colours."""
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 0, 0]], np.uint8)
    return palette[np.arange(H * W).reshape(H, W) % 5]


def rgba_partial() -> np.ndarray:
    """16x12 RGBA with six distinct values, alpha 0, 64, 128 and 255."""
    palette = np.array(
        [[255, 0, 0, 255], [0, 255, 0, 128], [0, 0, 255, 64], [10, 20, 30, 0], [200, 200, 200, 255], [0, 0, 0, 128]],
        np.uint8,
    )
    return palette[(np.arange(H * W).reshape(H, W) // 7) % 6]


def save_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def read_pixels(path: Path) -> np.ndarray:
    """An image file's pixels; a palette image's (what kmq decode writes) as RGB, or RGBA if it has alpha."""
    with Image.open(path) as image:
        image.load()
        if image.mode == "P":
            return np.asarray(image.convert("RGBA" if image.has_transparency_data else "RGB"))
        return np.asarray(image)


class Result(NamedTuple):
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Run ``kmq ARGV`` in-process; the exit status and what it printed."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Run ``kmq ARGV``, which must stop with argparse's SystemExit."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    out, err = capsys.readouterr()
    return Result(stop.value.code, out, err)


def assert_one_line_error(result: Result, *patterns: str, code: int = 1) -> None:
    """Exit ``code``, nothing on stdout, exactly one line on stderr matching every pattern."""
    assert result.code == code, result
    assert result.out == "", result
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("kmq: "), lines[0]
    for pattern in patterns:
        assert re.search(pattern, lines[0], re.IGNORECASE), f"{pattern!r} not in {lines[0]!r}"


def temp_files(folder: Path) -> list[str]:
    """Leftover temporary outputs (``.NAME.*.part``) anywhere under ``folder``."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith(".part")]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its content (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def read_pty(master: int) -> bytes:
    """Everything written to a pseudo-terminal's other side, read from ``master`` until that side is closed."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def stripes_at_once(monkeypatch: pytest.MonkeyPatch, backend: ModuleType, name: str) -> list[int]:
    """Make the first two calls of a stripe coder's ``backend.<name>`` wait for each other, so that they return
    only if two stripes are coded at the same time; the list gets the thread of every call."""
    real, calls, both = getattr(backend, name), itertools.count(), threading.Barrier(2, timeout=30)
    threads: list[int] = []

    def spy(*args: object) -> object:
        threads.append(threading.get_ident())
        if next(calls) < 2:
            both.wait()  # BrokenBarrierError if the stripes are coded one after another
        return real(*args)

    monkeypatch.setattr(backend, name, spy)
    return threads
