"""Nothing a user has is ever harmed by an output (``kmq.files.check_output`` and ``atomic_write``).

The rules:

- only regular files are replaced: devices, FIFOs, sockets, folders and links to nothing are
  refused in one line, with ``--force`` too, by every command that writes;
- a symbolic link to a regular file is followed: the target is replaced, the link stays a link;
- a replaced file gets a new file's permissions (the umask), never the old setuid/setgid bits;
- decoded images are named ``NAME-kmq.EXT``, so ``kmq encode photos/ && kmq decode photos/``
  (with ``--force`` too) never touches an original;
- a file kmq did not write is replaced only when ``-o`` names it and ``--force`` is given, and
  no message suggests ``--force`` for it;
- ``-o -`` writes standard output, ``-o DIR/`` means ``-O DIR``;
- temporary files of kmq's own pattern left by a run that died are removed when kmq next writes
  into their folder, and nothing else is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import kmq
import numpy as np
import pytest
from helpers import assert_one_line_error, five_colours, gradient, read_pixels, run, save_png, temp_files
from kmq import files

# FIFOs, device nodes, sockets and symbolic links as these tests make them are POSIX things.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX special files")

needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mknod needs root")


def xattrs_work(folder: Path) -> bool:
    probe = folder / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()


def make_special(path: Path, kind: str) -> contextlib.AbstractContextManager[object]:
    """Create a FIFO, a null device node, a listening socket, a folder or a link to /dev/null at ``path``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        return contextlib.closing(server)
    elif kind == "folder":
        path.mkdir()
    elif kind == "link-to-dev-null":
        path.symlink_to("/dev/null")
    return contextlib.nullcontext()


def kind_of(path: Path) -> str:
    mode = os.lstat(path).st_mode
    return {
        stat.S_IFIFO: "fifo",
        stat.S_IFCHR: "device",
        stat.S_IFSOCK: "socket",
        stat.S_IFDIR: "folder",
        stat.S_IFLNK: "link",
    }.get(stat.S_IFMT(mode), "file")


SPECIAL = [
    "fifo",
    pytest.param("device", marks=needs_root),
    "socket",
    "folder",
    "link-to-dev-null",
]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("command", ["encode", "decode"])
def test_what_is_not_a_regular_file_is_never_replaced_even_with_force(work, capsys, command, kind):
    out = work / ("out.kmq" if command == "encode" else "out.png")
    source = "grad.png" if command == "encode" else "good.kmq"
    with make_special(out, kind):
        before = kind_of(out)

        result = run(capsys, command, source, "-o", out.name, "--force")

        assert_one_line_error(result, re.escape(out.name), r"directory|not a regular file")
        assert kind_of(out) == before
        assert temp_files(work) == []
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "grad.png", "-k", "2", "-o", "fifo.png", "--force"],
        ["sweep", "grad.png", "-k", "2", "--no-plot", "--csv", "fifo.png", "--force"],
        ["info", "good.kmq", "--palette-image", "fifo.png", "--force"],
        ["encode", "grad.png", "-O", "out", "--force"],
        ["decode", "good.kmq", "-O", "out", "--force"],
    ],
    ids=["compare", "sweep-csv", "info-palette-image", "encode-batch", "decode-batch"],
)
def test_every_command_that_writes_refuses_a_fifo_output(work, capsys, argv):
    fifo = work / "fifo.png"
    if "-O" in argv:
        (work / "out").mkdir()
        fifo = work / "out" / ("grad.kmq" if argv[0] == "encode" else "good-kmq.png")
    os.mkfifo(fifo)

    result = run(capsys, *argv)

    assert result.code == 1
    assert "not a regular file" in result.err and "Traceback" not in result.err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_demo_refuses_a_fifo_among_its_outputs(work, capsys):
    (work / "demo").mkdir()
    os.mkfifo(work / "demo" / "china.png")

    result = run(capsys, "demo", "demo", "--force")

    assert_one_line_error(result, r"china\.png", r"not a regular file")
    assert stat.S_ISFIFO(os.lstat(work / "demo" / "china.png").st_mode)


def test_the_library_write_refuses_a_fifo_even_with_overwrite(work):
    os.mkfifo(work / "fifo.kmq")

    with pytest.raises(kmq.ParameterError, match=r"fifo\.kmq: a FIFO, not a regular file"):
        kmq.write(work / "fifo.kmq", gradient(), overwrite=True)
    assert stat.S_ISFIFO(os.lstat(work / "fifo.kmq").st_mode)


def test_a_symlink_to_a_regular_file_is_followed_and_stays_a_link(work, capsys):
    (work / "store").mkdir()
    target = work / "store" / "real.kmq"
    target.write_bytes(kmq.encode(five_colours(), 2))
    (work / "link.kmq").symlink_to(Path("store") / "real.kmq")

    result = run(capsys, "encode", "grad.png", "-o", "link.kmq", "--force")

    assert result.code == 0, result
    assert os.readlink(work / "link.kmq") == str(Path("store") / "real.kmq")
    assert np.array_equal(kmq.read(target), kmq.read(work / "link.kmq"))
    assert kmq.container.Header.unpack(target.read_bytes()).k == 8
    assert temp_files(work) == []


def test_a_replaced_file_gets_a_new_files_permissions_and_never_setuid(work):
    path = work / "x.kmq"
    path.write_bytes(b"old")
    path.chmod(0o6755)
    mask = os.umask(0o022)
    try:
        files.atomic_write(path, b"new", overwrite=True)
    finally:
        os.umask(mask)

    mode = path.stat().st_mode
    assert path.read_bytes() == b"new"
    assert not mode & (stat.S_ISUID | stat.S_ISGID)
    assert stat.S_IMODE(mode) == 0o644


def test_a_symlink_to_nothing_is_not_written_through(work, capsys):
    (work / "dangling.kmq").symlink_to("nowhere/x.kmq")

    result = run(capsys, "encode", "grad.png", "-o", "dangling.kmq", "--force")

    assert_one_line_error(result, r"dangling\.kmq", r"symbolic link to nothing")
    assert not (work / "nowhere").exists()


# --------------------------------------------------------------------------
# Originals are never at risk
# --------------------------------------------------------------------------


@pytest.fixture
def photos(work: Path) -> Path:
    folder = work / "photos"
    folder.mkdir()
    save_png(folder / "a.png", gradient())
    save_png(folder / "b.png", five_colours())
    return folder


def originals(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("a.png", "b.png")}


def test_encode_then_decode_a_folder_never_touches_the_originals(photos, capsys):
    before = originals(photos)

    assert run(capsys, "encode", "photos", "-j", "1").code == 0
    decoded = run(capsys, "decode", "photos", "-j", "1")
    forced = run(capsys, "decode", "photos", "-j", "1", "--force")

    assert decoded.code == 0 and forced.code == 0, (decoded, forced)
    assert originals(photos) == before
    assert sorted(p.name for p in photos.iterdir()) == ["a-kmq.png", "a.kmq", "a.png", "b-kmq.png", "b.kmq", "b.png"]
    np.testing.assert_array_equal(read_pixels(photos / "a-kmq.png"), kmq.read(photos / "a.kmq"))


def needs_xattrs(folder: Path) -> None:
    if not xattrs_work(folder):
        pytest.skip("kmq marks its files with an extended attribute, which this file system does not keep")


def no_xattrs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make os.getxattr and os.setxattr fail as on a file system that keeps no extended attributes."""

    def unsupported(*args: object) -> None:
        raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP))

    monkeypatch.setattr(os, "getxattr", unsupported)
    monkeypatch.setattr(os, "setxattr", unsupported)


def test_encoding_a_folder_skips_the_images_kmq_decoded_into_it(photos, capsys):
    needs_xattrs(photos)
    # Written (and so marked) by kmq, and named as `kmq decode photos` names a.kmq's image.
    files.atomic_write(photos / "a-kmq.png", (photos / "a.png").read_bytes())

    result = run(capsys, "encode", "photos", "-j", "1")
    named = run(capsys, "encode", "photos/a-kmq.png")

    assert result.code == 0 and named.code == 0
    assert sorted(p.name for p in photos.iterdir()) == ["a-kmq.kmq", "a-kmq.png", "a.kmq", "a.png", "b.kmq", "b.png"]
    assert "a-kmq" not in result.out  # only named alone is it taken


def test_encoding_a_folder_takes_a_kmq_named_image_that_kmq_did_not_write(photos, capsys):
    save_png(photos / "a-kmq.png", gradient())  # the user's own file, named as kmq names decoded images

    result = run(capsys, "encode", "photos", "-j", "1")

    assert result.code == 0, result
    assert "photos/a-kmq.png" in result.out
    assert kmq.read(photos / "a-kmq.kmq").shape == gradient().shape


def test_decoding_a_folder_with_force_keeps_a_kmq_named_file_that_kmq_did_not_write(photos, capsys):
    needs_xattrs(photos)
    assert run(capsys, "encode", "photos", "-j", "1").code == 0
    (photos / "a-kmq.png").write_bytes(b"the user's own image")

    result = run(capsys, "decode", "photos", "-j", "1", "--force")

    assert result.code == 1
    assert (photos / "a-kmq.png").read_bytes() == b"the user's own image"
    assert re.search(r"a-kmq\.png: exists and kmq did not write it", result.err), result.err
    assert "--force" not in result.err
    assert (photos / "b-kmq.png").is_file()


def test_without_xattrs_a_kmq_named_file_is_kept_and_the_line_says_what_to_do(photos, capsys, monkeypatch):
    assert run(capsys, "encode", "photos/a.png").code == 0
    (photos / "a-kmq.png").write_bytes(b"whose?")
    no_xattrs(monkeypatch)

    result = run(capsys, "decode", "photos/a.kmq", "--force")

    assert_one_line_error(result, r"a-kmq\.png: exists and kmq cannot tell that it wrote it", r"-o \S+ --force")
    assert (photos / "a-kmq.png").read_bytes() == b"whose?"
    named = run(capsys, "decode", "photos/a.kmq", "-o", "photos/a-kmq.png", "--force")
    assert named.code == 0, named
    assert (photos / "a-kmq.png").read_bytes() != b"whose?"


def test_a_file_that_appears_while_writing_is_left_alone_even_with_overwrite(work):
    late = work / "late.png"

    def content(file: BinaryIO) -> None:
        late.write_bytes(b"appeared meanwhile")
        file.write(b"kmq's")

    with pytest.raises(FileExistsError, match="appeared while writing"):
        files.atomic_write(late, content, overwrite=True)
    assert late.read_bytes() == b"appeared meanwhile"
    assert temp_files(work) == []


def test_one_decoded_file_is_named_so_that_it_cannot_be_the_original(work, capsys):
    original = (work / "grad.png").read_bytes()
    run(capsys, "encode", "grad.png")

    result = run(capsys, "decode", "grad.kmq", "--force")

    assert result.code == 0, result
    assert (work / "grad.png").read_bytes() == original
    assert (work / "grad-kmq.png").is_file()


def test_a_file_kmq_did_not_write_is_kept_in_a_batch_even_with_force(photos, capsys):
    (photos.parent / "out").mkdir()
    precious = photos.parent / "out" / "a.kmq"
    precious.write_bytes(b"the user's own file")

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1", "--force")

    assert result.code == 1
    assert precious.read_bytes() == b"the user's own file"
    assert "out/a.kmq: exists and kmq did not write it" in result.err.replace(os.sep, "/")
    assert "--force" not in result.err
    assert (photos.parent / "out" / "b.kmq").is_file()


def test_a_default_output_kmq_did_not_write_is_kept_even_with_force(work, capsys):
    (work / "grad.kmq").write_bytes(b"not a kmq file")

    result = run(capsys, "encode", "grad.png", "--force")

    assert_one_line_error(result, r"grad\.kmq", r"kmq did not write it")
    assert "--force" not in result.err
    assert (work / "grad.kmq").read_bytes() == b"not a kmq file"


def test_a_named_output_kmq_did_not_write_needs_force_which_is_never_suggested(work, capsys):
    (work / "mine.png").write_bytes(b"my picture")

    refused = run(capsys, "decode", "good.kmq", "-o", "mine.png")
    forced = run(capsys, "decode", "good.kmq", "-o", "mine.png", "--force")

    assert_one_line_error(refused, r"mine\.png", r"exists and kmq did not write it")
    assert "--force" not in refused.err
    assert forced.code == 0
    np.testing.assert_array_equal(read_pixels(work / "mine.png"), kmq.read(work / "good.kmq"))


def test_an_output_kmq_wrote_under_any_name_is_offered_force(work, capsys):
    if not xattrs_work(work):
        pytest.skip("this file system keeps no extended attributes")
    assert run(capsys, "decode", "good.kmq", "-o", "mine.png").code == 0

    again = run(capsys, "decode", "good.kmq", "-o", "mine.png")

    assert_one_line_error(again, r"mine\.png", r"output exists \(use --force to overwrite\)")


def test_kmq_recognises_its_own_files_by_mark_and_magic_not_by_name(work):
    (work / "photo.png").write_bytes(b"an original")
    (work / "photo-kmq.png").write_bytes(b"decoded earlier")
    (work / "plain.png").write_bytes(b"")
    files.atomic_write(work / "marked.png", b"written by kmq")

    assert files.written_by_kmq(work / "good.kmq")
    assert not files.written_by_kmq(work / "photo-kmq.png")
    assert not files.written_by_kmq(work / "photo.png")
    assert not files.written_by_kmq(work / "plain.png")
    if xattrs_work(work):
        assert files.written_by_kmq(work / "marked.png")


# --------------------------------------------------------------------------
# Streams and folders
# --------------------------------------------------------------------------


def kmq_process(*argv: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "kmq", *argv], input=stdin, capture_output=True, cwd=cwd, timeout=120)


def test_encode_to_standard_output_gives_the_bytes_of_the_file(work, capsys):
    run(capsys, "encode", "grad.png", "-o", "file.kmq")

    to_stdout = kmq_process("encode", "grad.png", "-o", "-", cwd=work)
    from_stdin = kmq_process("encode", "-", stdin=(work / "grad.png").read_bytes(), cwd=work)

    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == (work / "file.kmq").read_bytes()
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == (work / "file.kmq").read_bytes()
    assert sorted(p.name for p in work.iterdir()) == ["file.kmq", "good.kmq", "grad.png"]


@pytest.mark.parametrize(("extra", "fmt"), [([], "PNG"), (["--suffix", "webp"], "WEBP")], ids=["png", "webp"])
def test_decode_to_standard_output_takes_its_format_from_suffix(work, extra, fmt):
    from PIL import Image

    result = kmq_process("decode", "-", "-o", "-", *extra, stdin=(work / "good.kmq").read_bytes(), cwd=work)

    assert result.returncode == 0, result.stderr
    (work / "out.bin").write_bytes(result.stdout)
    with Image.open(work / "out.bin") as image:
        assert image.format == fmt
    np.testing.assert_array_equal(read_pixels(work / "out.bin"), kmq.read(work / "good.kmq"))


def test_info_reads_standard_input(work):
    result = kmq_process("info", "-", "--json", stdin=(work / "good.kmq").read_bytes(), cwd=work)

    assert result.returncode == 0, result.stderr
    assert b'"k": 8' in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encode", "grad.png", "-o", "-", "--json"], "--json"),
        (["encode", "-", "grad.png"], "only input"),
        (["decode", "-", "-O", "out"], "-O"),
    ],
    ids=["json-and-stdout", "stdin-among-others", "stdin-under-a-folder"],
)
def test_streams_that_cannot_work_are_usage_errors(work, capsys, argv, message):
    from helpers import usage_error

    result = usage_error(capsys, *argv)

    assert result.code == 2 and message in result.err


def test_dash_o_with_a_trailing_slash_is_an_output_folder(work, capsys):
    encoded = run(capsys, "encode", "grad.png", "-o", "new/")
    decoded = run(capsys, "decode", "good.kmq", "-o", "back/")

    assert encoded.code == 0 and decoded.code == 0, (encoded, decoded)
    assert (work / "new" / "grad.kmq").is_file()
    assert (work / "back" / "good-kmq.png").is_file()


# --------------------------------------------------------------------------
# Temporary files of dead runs
# --------------------------------------------------------------------------


def test_stale_temporary_files_of_kmqs_own_pattern_alone_are_removed(work, capsys):
    old = time.time() - files.STALE_PART_SECONDS - 60
    stale = work / ".kmq-0123456789ab.part"
    keep = {
        "fresh": work / ".kmq-ba9876543210.part",
        "other pattern": work / ".kmq-0123456789ab.part.bak",
        "short": work / ".kmq-0123.part",
        "user's": work / "kmq-0123456789ab.part",
    }
    for path in (stale, *keep.values()):
        path.write_bytes(b"left over")
    for path in (stale, *list(keep.values())[1:]):
        os.utime(path, (old, old))
    folder = work / ".kmq-aaaaaaaaaaaa.part"
    folder.mkdir()
    link = work / ".kmq-bbbbbbbbbbbb.part"
    link.symlink_to("grad.png")
    for path in (folder, link):
        os.utime(path, (old, old), follow_symlinks=False)

    assert run(capsys, "encode", "grad.png").code == 0

    assert not stale.exists()
    assert all(path.exists() for path in keep.values())
    assert folder.is_dir() and link.is_symlink()


def test_describe_os_error_is_one_line_naming_the_file():
    error = OSError(28, "No space left on device", "out/a.kmq")

    assert files.describe_os_error(error) == "out/a.kmq: No space left on device"
    assert files.describe_os_error(OSError(13, "Permission denied"), "x.png") == "x.png: Permission denied"


def test_standard_output_on_a_terminal_is_refused_before_any_work(work, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)

    result = run(capsys, "encode", "grad.png", "-o", "-")

    assert result.code == 1
    assert result.err == "kmq: error: standard output: is a terminal; redirect it (-o - > FILE) or name an output\n"


def test_the_temporary_files_kmq_writes_are_git_ignored(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(repo), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    names: list[str] = []

    def content(file: BinaryIO) -> None:
        names.extend(temp_files(tmp_path))  # the temporary file, while it is written
        file.write(b"x")

    files.atomic_write(tmp_path / "out.kmq", content)
    ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", f"tests/{names[0]}"])

    assert len(names) == 1 and ignored.returncode == 0, names
