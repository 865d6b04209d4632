"""File wrappers: safe writes and bounded reads."""

from __future__ import annotations

import os

import kmq
import numpy as np
import pytest
from kmq import container, files

IMAGE = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)


def test_write_then_read_round_trip(tmp_path):
    path = tmp_path / "x.kmq"
    indexed = kmq.write(path, IMAGE, 256)
    assert np.array_equal(kmq.read(path), IMAGE)
    assert path.read_bytes() == indexed.to_bytes()


def test_write_refuses_to_clobber_without_overwrite(tmp_path):
    path = tmp_path / "x.kmq"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        kmq.write(path, IMAGE)
    assert path.read_bytes() == b"precious"
    kmq.write(path, IMAGE, overwrite=True)
    assert kmq.read(path).shape == IMAGE.shape


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "x.kmq"
    path.write_bytes(b"precious")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write(path, b"new", overwrite=True)
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["x.kmq"]


def test_written_file_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "x.kmq"
    files.atomic_write(path, b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_huge_header_is_refused_before_the_file_is_read(tmp_path):
    header = container.Header.for_image(60000, 60000, 3, 8)
    path = tmp_path / "bomb.kmq"
    path.write_bytes(header.pack())
    with pytest.raises(kmq.PixelLimitError, match=r"bomb\.kmq: 60000x60000"):
        kmq.read(path)
    with pytest.raises(kmq.TruncatedError, match="header implies"):
        kmq.read(path, max_pixels=None)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "photo.kmq"
    path.write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(kmq.FormatError, match=r"photo\.kmq: not a kmq file"):
        kmq.read(path)


def test_content_that_raises_leaves_nothing_behind(tmp_path):
    def broken(file):
        file.write(b"half")
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        files.atomic_write(tmp_path / "x.kmq", broken)
    assert os.listdir(tmp_path) == []


def test_output_created_meanwhile_is_left_alone_and_named(tmp_path):
    path = tmp_path / "x.kmq"

    def racing(file):
        path.write_bytes(b"someone else's")
        file.write(b"ours")

    with pytest.raises(FileExistsError) as info:
        files.atomic_write(path, racing)
    assert info.value.filename == str(path)
    assert path.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["x.kmq"]


def test_file_systems_without_hard_links_still_get_safe_writes(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    path = tmp_path / "x.kmq"
    files.atomic_write(path, b"data")
    assert path.read_bytes() == b"data"
    with pytest.raises(FileExistsError):
        files.atomic_write(path, b"other")
    assert path.read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["x.kmq"]


def test_longest_legal_name_can_be_written(tmp_path):
    path = tmp_path / ("n" * 251 + ".kmq")
    files.atomic_write(path, b"data")
    assert path.read_bytes() == b"data"


def test_missing_folder_error_names_the_output(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        files.atomic_write(tmp_path / "nodir" / "x.kmq", b"data")
    assert info.value.filename == str(tmp_path / "nodir" / "x.kmq")
