"""A status line for single long jobs, on a terminal only: ``kmq: sweep photo.jpg: K=64 (5 of 8), 6.2 s``.

The commands run in-process with stderr on a real pseudo-terminal (so
``isatty()`` is the kernel's answer, not a stub), and the line's delay set to
0 so that even a small image shows it; a reader thread drains the terminal
while the command runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import sys
import termios
import threading

import numpy as np
import pytest
from helpers import read_pty
from kmq.cli import report
from kmq.cli.main import main
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

CLEAR = "\r\x1b[K"


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    monkeypatch.setattr(report, "STATUS_DELAY", 0.0)
    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[..., 0] = np.arange(32)[None, :] * 8
    pixels[..., 1] = np.arange(24)[:, None] * 10
    Image.fromarray(pixels).save(tmp_path / "grad.png")
    return tmp_path


def on_terminal(monkeypatch, argv: list[str], columns: int = 0) -> tuple[int, str]:
    """Run ``kmq ARGV`` with stderr on a pseudo-terminal ``columns`` wide (0: unset, as under ``script``)."""
    import pty

    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(read_pty(master)))
    reader.start()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115 (closed below, before the reader ends)
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        code = main(argv)
    finally:
        monkeypatch.undo()
        stream.close()
        reader.join(timeout=30)
        os.close(master)
    return code, b"".join(chunks).decode()


def test_sweep_shows_each_k_and_the_time_then_erases_the_line(work, monkeypatch):
    code, err = on_terminal(monkeypatch, ["sweep", "grad.png", "-k", "2,8,4", "--no-plot"])

    assert code == 0
    for i, k in enumerate([2, 4, 8], 1):  # ascending, as sweep measures them
        assert re.search(rf"\rkmq: sweep grad\.png: K={k} \({i} of 3\), \d+\.\d s\x1b\[K", err), err
    assert err.endswith(CLEAR)  # nothing is left on the terminal's line
    assert "\n" not in err


def test_compare_shows_each_k_in_the_order_given(work, monkeypatch):
    code, err = on_terminal(monkeypatch, ["compare", "grad.png", "-k", "16", "2", "-o", "c.png", "--width", "16"])

    assert code == 0 and (work / "c.png").exists()
    assert err.index("K=16 (1 of 2)") < err.index("K=2 (2 of 2)") < err.index("writing")
    assert err.endswith(CLEAR)


def test_a_single_encode_shows_what_it_is_doing_and_its_result_line_is_intact(work, monkeypatch, capsys):
    code, err = on_terminal(monkeypatch, ["encode", "grad.png", "-k", "4"])

    assert code == 0
    assert re.search(r"\rkmq: encoding grad\.png, \d+\.\d s\x1b\[K", err), err
    assert err.endswith(CLEAR)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("grad.png (") and "K=4" in line


def test_the_line_is_cut_to_the_terminals_width(work, monkeypatch):
    (work / "a-rather-long-file-name-for-a-narrow-terminal.png").write_bytes((work / "grad.png").read_bytes())

    _, err = on_terminal(
        monkeypatch, ["sweep", "a-rather-long-file-name-for-a-narrow-terminal.png", "-k", "2", "--no-plot"], 30
    )

    drawn = [part.removesuffix("\x1b[K") for part in err.split("\r") if part.strip("\x1b[K")]
    assert drawn and all(len(text) <= 29 for text in drawn), drawn  # a wrapped line could not be erased


@pytest.mark.parametrize("flag", ["-q", "--json"])
def test_quiet_and_json_draw_nothing_on_the_terminal(work, monkeypatch, capsys, flag):
    code, err = on_terminal(monkeypatch, ["sweep", "grad.png", "-k", "2,4", "--no-plot", flag])

    assert code == 0 and err == ""
    if flag == "--json":
        assert json.loads(capsys.readouterr().out)["rows"]


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "grad.png", "-k", "2,4", "--no-plot"],
        ["compare", "grad.png", "-k", "2", "-o", "c.png"],
        ["encode", "grad.png"],
    ],
    ids=["sweep", "compare", "encode"],
)
def test_nothing_is_drawn_when_stderr_is_not_a_terminal(work, capsys, argv):
    assert main(argv) == 0

    assert capsys.readouterr().err == ""


def test_a_failing_job_erases_its_line_before_the_error(work, monkeypatch):
    (work / "broken.png").write_bytes((work / "grad.png").read_bytes()[:60])

    code, err = on_terminal(monkeypatch, ["sweep", "broken.png", "--no-plot"])

    assert code == 1
    status, error = err.rsplit(CLEAR, 1)
    assert "kmq: sweep broken.png: reading" in status
    assert error.startswith("kmq: error: broken.png") and error.count("\n") == 1
