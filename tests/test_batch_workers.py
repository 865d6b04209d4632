"""Workers read and write their own files (``kmq.batch.run`` with a ``Placement``).

The rules (``codec/batch.py``):

- with a placement, every good result is yielded with its output already written, by
  :func:`kmq.batch.write_output` (the one rule on what may be replaced, and the atomic write)
  wherever the job ran: a local worker reads its own input and writes its own output, so
  the coordinator never holds the bytes;
- a worker's read or write that fails is that file's one-line error, and the rest go on;
- standard input and output stay the coordinator's (a worker has neither);
- each folder written into is synced once when the batch ends, however it ends, not once per file;
- a worker stopped (SIGTERM) while it writes finishes that output and then dies: no temporary file is left.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import kmq
import kmq.batch
import pytest
from helpers import gradient, run, save_png, temp_files
from kmq.batch import EncodeOptions, Job, Outcome, Placement


def pid_and_bytes(data: bytes, name: str, options: object) -> Outcome:
    """A work function: the input's bytes back, and the process that ran it."""
    return Outcome(data[::-1], {"pid": os.getpid(), "name": Path(name).name})


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Four small PNGs in tmp_path/in (a.png ... d.png), with tmp_path the working folder."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in "abcd":
        save_png(folder / f"{name}.png", gradient())
    return folder


def _jobs(folder: Path, out: Path, names: str = "abcd") -> list[Job]:
    return [Job(folder / f"{name}.png", out / f"{name}.kmq") for name in names]


def test_workers_write_their_own_outputs_and_send_back_no_bytes(inputs):
    jobs = _jobs(inputs, Path("out"))
    Path("out").mkdir()

    results = list(kmq.batch.run(jobs, pid_and_bytes, EncodeOptions(), workers=2, placement=Placement()))

    assert sorted(job.source.name for job, _ in results) == ["a.png", "b.png", "c.png", "d.png"]
    for job, outcome in results:
        assert outcome.written and outcome.content is None and outcome.error is None
        assert outcome.info["pid"] != os.getpid()  # the work ran in a worker, which wrote the file
        assert job.output.read_bytes() == job.source.read_bytes()[::-1]
    assert temp_files(Path(".")) == []


def test_one_process_and_two_write_the_same_files_through_the_same_rule(inputs, capsys):
    one = run(capsys, "encode", "in", "-O", "one", "-j", "1", "--json")
    two = run(capsys, "encode", "in", "-O", "two", "-j", "2", "--json")

    assert one.code == two.code == 0
    assert sorted(os.listdir("one")) == sorted(os.listdir("two")) == ["a.kmq", "b.kmq", "c.kmq", "d.kmq"]
    for name in os.listdir("one"):
        assert (Path("one") / name).read_bytes() == (Path("two") / name).read_bytes()
        assert kmq.files.written_by_kmq(Path("two") / name)


def test_a_worker_refuses_to_replace_a_file_kmq_did_not_write(inputs):
    Path("out").mkdir()
    Path("out/b.kmq").write_bytes(b"the user's own file")  # appeared after the plan, which would have refused it

    results = dict(
        kmq.batch.run(
            _jobs(inputs, Path("out")), pid_and_bytes, EncodeOptions(), workers=2, placement=Placement(force=True)
        )
    )

    by_name = {job.output.name: outcome for job, outcome in results.items()}
    assert by_name["b.kmq"].error == (
        f"{Path('out/b.kmq')}: exists and kmq did not write it, so kmq never replaces it; "
        "choose another output name or folder"
    )
    assert Path("out/b.kmq").read_bytes() == b"the user's own file"
    assert all(by_name[name].written for name in ("a.kmq", "c.kmq", "d.kmq"))


def test_a_worker_that_cannot_read_its_input_or_write_its_output_fails_that_file_alone(inputs):
    (inputs / "b.png").unlink()  # gone since the plan
    jobs = [*_jobs(inputs, Path("out")), Job(inputs / "a.png", Path("missing") / "a.kmq")]
    Path("out").mkdir()

    results = list(kmq.batch.run(jobs, pid_and_bytes, EncodeOptions(), workers=2, placement=Placement()))

    errors = {str(job.output): outcome.error for job, outcome in results if outcome.error}
    assert errors == {
        str(Path("out/b.kmq")): f"{inputs / 'b.png'}: No such file or directory",
        str(Path("missing/a.kmq")): f"{Path('missing/a.kmq')}: output folder 'missing' does not exist",
    }
    assert sorted(os.listdir("out")) == ["a.kmq", "c.kmq", "d.kmq"]


def test_make_folders_lets_each_worker_make_the_folders_of_its_outputs(inputs):
    jobs = [Job(inputs / f"{name}.png", Path("out") / name / "deep" / f"{name}.kmq") for name in "abcd"]

    results = list(
        kmq.batch.run(jobs, pid_and_bytes, EncodeOptions(), workers=2, placement=Placement(make_folders=True))
    )

    assert all(outcome.written for _, outcome in results)
    assert all(job.output.is_file() for job in jobs)


def test_standard_input_is_read_by_the_coordinator_and_worked_on_by_a_worker(inputs, monkeypatch):
    piped = (inputs / "a.png").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(piped)))
    jobs = [Job(Path("-"), Path("out/-.kmq")), *_jobs(inputs, Path("out"), "b")]
    Path("out").mkdir()

    results = dict(kmq.batch.run(jobs, pid_and_bytes, EncodeOptions(), workers=2, placement=Placement()))

    piped_outcome = results[jobs[0]]
    assert piped_outcome.written and piped_outcome.info["pid"] != os.getpid()
    assert Path("out/-.kmq").read_bytes() == piped[::-1]


def test_each_folder_is_synced_once_at_the_end_not_once_per_file(inputs, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(kmq.files, "fsync_folder", lambda folder: synced.append(Path(folder).name))
    jobs = _jobs(inputs, Path("one"), "abc") + _jobs(inputs, Path("two"), "d")
    for folder in ("one", "two"):
        Path(folder).mkdir()

    results = list(kmq.batch.run(jobs, pid_and_bytes, EncodeOptions(), workers=1, placement=Placement()))

    assert all(outcome.written for _, outcome in results)
    assert synced == ["one", "two"]


def test_a_batch_stopped_early_still_syncs_the_folders_it_wrote_into(inputs, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(kmq.files, "fsync_folder", lambda folder: synced.append(Path(folder).name))
    Path("out").mkdir()

    results = kmq.batch.run(_jobs(inputs, Path("out")), pid_and_bytes, EncodeOptions(), placement=Placement())
    next(results)
    results.close()  # what Ctrl-C in the caller's loop does

    assert synced == ["out"] and os.listdir("out") == ["a.kmq"]


def test_a_small_file_that_is_no_image_is_refused_with_the_same_line(inputs):
    (inputs / "x.png").write_bytes(b"no image in here")

    data = EncodeOptions().read(inputs / "x.png")  # small: read whole, not judged twice
    outcome = kmq.batch.encode_job(data, str(inputs / "x.png"), EncodeOptions())

    assert outcome.error == f"{inputs / 'x.png'}: not an image Pillow can read"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to oneself is POSIX")
def test_a_worker_stopped_while_it_writes_finishes_the_output_and_then_dies(tmp_path):
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        import kmq.batch
        from kmq.batch import Job, Placement

        kmq.batch._worker.append(True)  # as _start_worker marks a worker
        out = Path(sys.argv[1])
        with kmq.batch._whole_write():
            os.kill(os.getpid(), signal.SIGTERM)  # the coordinator stops its workers
            error = kmq.batch.write_output(Job(Path("in.png"), out / "a.kmq"), b"whole", Placement())
            (out / "reached the end of the write").touch()
        (out / "lived on after it").touch()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)

    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["a.kmq", "reached the end of the write"]
    assert (tmp_path / "a.kmq").read_bytes() == b"whole"
