"""One file's failure is that file's alone, and reads the same from one process as from a pool.

``encode_job`` and ``decode_job`` turn any exception into the file's ``Outcome``
(Pillow and numpy raise ``OverflowError``, ``TypeError``, ``struct.error`` ... as
they please), and ``kmq.batch.run`` does the same for any work function, so
``-j 1`` and ``-j 2`` give the same records and the good files are all written.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import kmq
import kmq.batch
import numpy as np
import pytest
from helpers import gradient, run
from kmq.batch import DecodeOptions, EncodeOptions, Job, Outcome, decode_job, encode_job

# Pillow writes a GIF's width in 16 bits and raises OverflowError beyond that.
TOO_WIDE_FOR_GIF = 70_000


@pytest.fixture
def kmq_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """kmq/a_wide.kmq (70000x1, no GIF can hold it) first, then two good files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    folder = tmp_path / "kmq"
    folder.mkdir()
    wide = np.zeros((1, TOO_WIDE_FOR_GIF, 3), np.uint8)
    wide[0, :, 0] = np.arange(TOO_WIDE_FOR_GIF) % 7 * 30
    kmq.write(folder / "a_wide.kmq", wide, 8)
    kmq.write(folder / "b.kmq", gradient(), 8)
    kmq.write(folder / "c.kmq", gradient()[::-1], 4)
    return folder


def _records(document: dict) -> list[dict]:
    """The per-file records without the timings, which differ from run to run."""
    return [{key: value for key, value in record.items() if key != "seconds"} for record in document["files"]]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_image_pillow_cannot_write_fails_alone_and_the_good_files_are_written(kmq_files, capsys, jobs):
    result = run(capsys, "decode", "kmq", "-O", "gif", "--suffix", "gif", "-j", jobs)

    assert result.code == 1
    assert result.err.splitlines() == [
        f"kmq: error: {Path('kmq/a_wide.kmq')}: GIF holds at most 65535 pixels a side; this image is 70000x1; "
        "use .png or .webp"
    ]
    assert sorted(p.name for p in Path("gif").iterdir()) == ["b-kmq.gif", "c-kmq.gif"]
    assert "decoded 2 file(s)" in result.out and "1 failed" in result.out


def test_one_process_and_two_give_the_same_records(kmq_files, capsys):
    one = run(capsys, "decode", "kmq", "-O", "one", "--suffix", "gif", "-j", "1", "--json")
    two = run(capsys, "decode", "kmq", "-O", "two", "--suffix", "gif", "-j", "2", "--json")

    records_one, records_two = _records(json.loads(one.out)), _records(json.loads(two.out))
    for record in records_one + records_two:
        record["output"] = Path(record["output"]).name
    assert (one.code, records_one) == (two.code, records_two)
    assert [record["status"] for record in records_one] == ["failed", "decoded", "decoded"]


@pytest.mark.parametrize(
    "error",
    [OverflowError("int too big to convert"), TypeError("bad operand"), struct.error("unpack requires 4 bytes")],
    ids=["overflow", "type", "struct"],
)
def test_encode_job_turns_any_exception_into_the_files_error(monkeypatch, error):
    def fails(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(kmq.batch, "quantize", fails)
    png = kmq.batch.io.BytesIO()
    kmq.images.save_image(png, gradient(), "PNG")

    outcome = encode_job(png.getvalue(), "x.png", EncodeOptions())

    assert outcome.content is None
    assert outcome.error == f"x.png: cannot encode: {type(error).__name__}: {error}"


def test_decode_job_turns_any_exception_into_the_files_error(monkeypatch):
    def fails(*args: object, **kwargs: object) -> None:
        raise TypeError("no")

    monkeypatch.setattr(kmq.images, "save_indexed", fails)

    outcome = decode_job(kmq.encode(gradient(), 4), "x.kmq", DecodeOptions(suffix=".png"))

    assert outcome == Outcome(error="x.kmq: cannot decode to .png: TypeError: no")


def raise_for_b(data: bytes, name: str, options: object) -> Outcome:
    """A work function that raises (as a bug would) for b.png and succeeds for the others."""
    if name.endswith("b.png"):
        raise RuntimeError("boom")
    return Outcome(b"ok", {"name": Path(name).name})


@pytest.mark.parametrize("workers", [1, 2])
def test_a_work_function_that_raises_fails_its_file_and_the_rest_go_on(tmp_path, monkeypatch, workers):
    names = ["a.png", "b.png", "c.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"read as it is")
    monkeypatch.setattr(EncodeOptions, "read", lambda self, path: path.read_bytes())
    jobs = [Job(tmp_path / name, tmp_path / f"{name}.out") for name in names]

    results = {
        job.source.name: outcome for job, outcome in kmq.batch.run(jobs, raise_for_b, EncodeOptions(), workers=workers)
    }

    assert results["b.png"].error == f"{tmp_path / 'b.png'}: worker failed: RuntimeError: boom"
    assert results["a.png"].content == results["c.png"].content == b"ok"
