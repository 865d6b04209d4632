"""Inputs are read safely by every command (``kmq.files.open_input`` and ``Input.read``).

The rules:

- FIFOs, devices and sockets are refused in one line by ``info``, ``compare``, ``sweep``,
  ``encode`` and ``decode``, before they are opened for reading (they could block for ever or
  never end); ``-`` reads standard input;
- reads go in bounded blocks and stop at the size the file had when opened, so a header's
  length field never sizes an allocation and a file that grows meanwhile is refused;
- folders and glob patterns are walked without following symbolic links into folders, so a
  link loop cannot make the walk endless.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import kmq
import kmq.batch
import numpy as np
import pytest
from helpers import assert_one_line_error, gradient, run, save_png
from kmq import container, files
from kmq.batch import find_inputs

# FIFOs, device nodes, sockets and symbolic links as these tests make them are POSIX things.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX special files")

IMAGES = frozenset({".png"})


COMMANDS = {
    "info": ["info", "{}"],
    "compare": ["compare", "{}", "-k", "2", "-o", "c.png"],
    "sweep": ["sweep", "{}", "-k", "2", "--no-plot"],
    "encode": ["encode", "{}", "-o", "x.kmq"],
    "decode": ["decode", "{}", "-o", "x.png"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_fifo_input_at_once(work, command):
    os.mkfifo(work / "fifo.img")
    argv = [part.format("fifo.img") for part in COMMANDS[command]]

    # A real process, so that a command that waits for a writer fails this test instead of hanging it.
    try:
        result = subprocess.run(
            [sys.executable, "-m", "kmq", *argv], cwd=work, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"kmq {command} waited for a writer on a FIFO")

    assert result.returncode == 1
    assert result.stderr == "kmq: error: fifo.img: not a regular file (a FIFO); kmq reads regular files and - " + (
        "(standard input)\n"
    )
    assert sorted(p.name for p in work.iterdir()) == ["fifo.img", "good.kmq", "grad.png"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_device_input(work, capsys, command):
    (work / "dev.img").symlink_to("/dev/zero")

    result = run(capsys, *[part.format("dev.img") for part in COMMANDS[command]])

    assert_one_line_error(result, r"dev\.img: not a regular file \(a character device\)")


def test_an_input_that_grows_while_read_is_read_to_its_size_when_opened(work):
    path = work / "growing.png"
    path.write_bytes(b"x" * 1000)

    with files.open_input(path) as source:
        with open(path, "ab") as writer:
            writer.write(b"y" * 5000)
        with pytest.raises(kmq.ImageError, match=r"growing\.png: grew while being read \(it had 1,000 bytes"):
            source.read()
    with files.open_input(path) as source:
        assert source.read(10) == b"x" * 10  # a bound below the size: no question of growth


def test_encode_refuses_an_input_that_grew_after_it_was_opened(work, capsys, monkeypatch):
    real = files.open_input

    def append_after_open(path):
        manager = real(path)
        source = manager.__enter__()
        with open(path, "ab") as writer:
            writer.write(bytes(100))
        return _Entered(manager, source)

    monkeypatch.setattr(files, "open_input", append_after_open)

    result = run(capsys, "encode", "grad.png", "-o", "x.kmq")

    assert_one_line_error(result, r"grad\.png: grew while being read")
    assert not (work / "x.kmq").exists()


class _Entered:
    def __init__(self, manager, value):
        self.manager, self.value = manager, value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


# --------------------------------------------------------------------------
# Lengths from a header size nothing
# --------------------------------------------------------------------------


def lying_file(path: Path, width: int, height: int, size: int = 820) -> Path:
    """A kmq header claiming ``width`` x ``height``, a palette, and zeros up to ``size`` bytes."""
    data = container.Header.for_image(width, height, 3, 8).pack() + bytes(range(24))
    path.write_bytes(data + bytes(size - len(data)))
    return path


@pytest.mark.parametrize("command", ["info", "decode"])
def test_a_header_claiming_2_to_the_64_pixels_is_one_line_with_no_pixel_limit(work, capsys, command):
    lying_file(work / "huge.kmq", 2**32 - 1, 2**32 - 1)

    result = run(capsys, command, "huge.kmq", "--max-pixels", "none")

    assert_one_line_error(result, r"huge\.kmq: truncated: file is 820 bytes")


def test_reading_a_lying_header_allocates_what_the_file_holds_not_what_it_claims(work):
    path = lying_file(work / "big.kmq", 60000, 60000)  # claims 1.35 GB

    tracemalloc.start()
    try:
        data = files.read_bytes(path, max_pixels=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert len(data) == 820
    assert peak < files.BLOCK + 64 * 1024


def test_read_at_most_never_asks_for_more_than_a_block(work):
    class Recorder:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def read(self, n: int) -> bytes:
            self.asked.append(n)
            return b"" if len(self.asked) > 3 else b"z" * min(n, 10)

    recorder = Recorder()

    assert files.read_at_most(recorder, 2**70) == b"z" * 30  # type: ignore[arg-type]
    assert max(recorder.asked) == files.BLOCK


def test_the_pillow_plugin_reads_with_the_same_bounded_reader():
    from kmq import pillow_plugin

    assert pillow_plugin.read_at_most is files.read_at_most


# --------------------------------------------------------------------------
# Walking folders and patterns
# --------------------------------------------------------------------------


@pytest.fixture
def looped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tree/{a.png, sub/b.png} with two links back up: tree/up -> ., tree/sub/top -> .."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    save_png(root / "a.png", gradient())
    save_png(root / "sub" / "b.png", gradient())
    (root / "up").symlink_to(".")
    (root / "sub" / "top").symlink_to("..")
    return root


def scandir_budget(monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    """Make os.scandir fail after ``calls`` calls: a walk into the loops needs far more (2**depth)."""
    real = os.scandir
    used = [0]

    def counted(path="."):
        used[0] += 1
        if used[0] > calls:
            raise AssertionError(f"more than {calls} folders listed: the walk followed a link loop")
        return real(path)

    monkeypatch.setattr(os, "scandir", counted)


@pytest.mark.parametrize("pattern", ["tree/**/*.png", "tree/**", "tree/*/*.png"])
def test_a_glob_on_a_tree_with_link_loops_is_finite(looped, monkeypatch, pattern):
    scandir_budget(monkeypatch, 50)

    found, problems = find_inputs([pattern], recursive=False, suffixes=IMAGES)

    assert problems == []
    assert {p.resolve() for p, _ in found} <= {looped / "a.png", looped / "sub" / "b.png"}
    assert (looped / "sub" / "b.png") in {p.resolve() for p, _ in found}


def test_a_recursive_folder_with_link_loops_is_finite(looped, monkeypatch):
    scandir_budget(monkeypatch, 50)

    found, _ = find_inputs(["tree"], recursive=True, suffixes=IMAGES)

    assert [p.as_posix() for p, _ in found] == ["tree/a.png", "tree/sub/b.png"]


def test_a_glob_matches_as_glob_does_where_there_are_no_links(looped):
    for link in (looped / "up", looped / "sub" / "top"):
        link.unlink()
    (looped / ".hidden").mkdir()
    save_png(looped / ".hidden" / "h.png", gradient())
    save_png(looped / ".dot.png", gradient())
    import glob

    for pattern in ["tree/**/*.png", "tree/*.png", "tree/s*/*.png", "tree/**", "tree/.*.png", str(looped / "*.png")]:
        ours = sorted(str(p) for p in kmq.batch._glob(pattern))
        theirs = sorted(glob.glob(pattern, recursive=True))
        assert [p.rstrip("/") for p in ours] == [p.rstrip("/") for p in theirs], pattern


def test_a_symlink_to_a_file_is_still_taken_from_a_folder(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    save_png(tmp_path / "real.png", gradient())
    (folder / "link.png").symlink_to(tmp_path / "real.png")

    found, _ = find_inputs([str(folder)], recursive=True, suffixes=IMAGES)

    assert [p.name for p, _ in found] == ["link.png"]
    assert np.array_equal(kmq.images.load_image(found[0][0]), gradient())
