"""Specification of batch work: ``kmq encode``/``kmq decode`` over many files, here or on a cluster.

The rules (``codec/batch.py``, ``cli/batch.py``):

- inputs are files, folders (``-r`` for their subfolders) and glob patterns;
  ``-O DIR`` collects the outputs, keeping the layout below a folder input;
- a bad file is reported in one line and the rest go on; the exit status is 1
  at the end if any file failed, and a summary gives the counts;
- in a batch an output newer than its input is up to date and skipped;
  ``--force`` redoes it; nothing existing is replaced without ``--force``;
- ``-j N`` uses N worker processes, ``--scheduler ADDRESS`` a Dask cluster, and
  either gives the same bytes as one process;
- ``--json`` prints one document, ``--quiet`` only errors, ``--verbose`` the plan;
  a progress bar is drawn only when stderr is a terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import kmq
import kmq.batch
import numpy as np
import pytest
from helpers import gradient, read_pty, rgba_partial, run, save_png, temp_files, usage_error
from kmq.batch import Job, find_inputs, plan


@pytest.fixture
def photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tree of small images: photos/{a,b}.png, photos/sub/c.png, photos/sub/deep/d.jpg, and a text file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMQ_DEBUG", raising=False)
    root = tmp_path / "photos"
    (root / "sub" / "deep").mkdir(parents=True)
    save_png(root / "a.png", gradient())
    save_png(root / "b.png", rgba_partial())
    save_png(root / "sub" / "c.png", gradient()[::-1])
    from PIL import Image

    Image.fromarray(gradient()).save(root / "sub" / "deep" / "d.jpg", quality=90)
    (root / "notes.txt").write_text("not an image\n")
    (root / ".hidden.png").write_bytes((root / "a.png").read_bytes())
    return root


def tree(folder: Path) -> list[str]:
    """Files below ``folder``, as sorted relative POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` older than now."""
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


# --------------------------------------------------------------------------
# 1. Finding inputs
# --------------------------------------------------------------------------

IMAGES = frozenset({".png", ".jpg"})


def test_a_folder_gives_its_image_files_in_name_order_and_skips_hidden_ones(photos):
    found, problems = find_inputs(["photos"], recursive=False, suffixes=IMAGES)

    assert [p.name for p, _ in found] == ["a.png", "b.png"]
    assert problems == []


def test_recursive_descends_and_keeps_the_path_below_the_folder(photos):
    found, _ = find_inputs(["photos"], recursive=True, suffixes=IMAGES)

    assert [r.as_posix() for _, r in found] == ["a.png", "b.png", "sub/c.png", "sub/deep/d.jpg"]


def test_a_quoted_glob_is_expanded_and_double_star_recurses(photos):
    flat, _ = find_inputs(["photos/*.png"], recursive=False, suffixes=IMAGES)
    deep, _ = find_inputs(["photos/**/*.png"], recursive=False, suffixes=IMAGES)

    assert [p.name for p, _ in flat] == ["a.png", "b.png"]
    assert [p.name for p, _ in deep] == ["a.png", "b.png", "c.png"]


def test_a_file_is_taken_whatever_its_extension_and_only_once(photos):
    found, _ = find_inputs(
        ["photos/notes.txt", "photos/a.png", "photos/../photos/a.png"], recursive=False, suffixes=IMAGES
    )

    assert [p.name for p, _ in found] == ["notes.txt", "a.png"]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("missing.png", r"missing\.png: no such file or folder"),
        ("photos/*.gif", r"photos/\*\.gif: no files match"),
        ("photos/sub/deep", r"photos/sub/deep: no \.png files in this folder \(use -r to look in subfolders\)"),
    ],
)
def test_an_argument_that_matches_nothing_is_a_problem_not_a_crash(photos, argument, message):
    found, problems = find_inputs([argument], recursive=False, suffixes=frozenset({".png"}))

    assert found == []
    assert [argument for argument, _ in problems] == [argument]
    assert re.fullmatch(message, problems[0][1].replace(os.sep, "/")), problems[0]


# --------------------------------------------------------------------------
# 2. Planning: what runs, what is up to date, what is refused
# --------------------------------------------------------------------------


def _plan(photos: Path, *, force: bool = False, batch: bool = True) -> list[Job]:
    found, _ = find_inputs([str(photos)], recursive=False, suffixes=IMAGES)
    return plan(found, lambda source, relative: photos / relative.with_suffix(".kmq"), force=force, batch=batch)


def test_an_output_newer_than_its_input_is_up_to_date(photos):
    (photos / "a.kmq").write_bytes(kmq.encode(gradient()))  # made earlier, by kmq

    assert [job.action for job in _plan(photos)] == ["skip", "run"]


def test_an_output_older_than_its_input_is_stale_and_kept_without_force(photos):
    (photos / "a.kmq").write_bytes(kmq.encode(gradient()))
    age(photos / "a.kmq", 60)

    jobs = _plan(photos)

    assert jobs[0].action == "stale" and "stale (older than its input), kept; --force redoes it" in jobs[0].reason


def test_force_runs_every_job_and_one_file_alone_never_skips(photos):
    (photos / "a.kmq").write_bytes(kmq.encode(gradient()))

    assert [job.action for job in _plan(photos, force=True)] == ["run", "run"]
    assert _plan(photos, batch=False)[0].reason.endswith("output exists (use --force to overwrite)")


def test_two_inputs_with_one_output_name_are_caught_before_any_work(photos):
    save_png(photos / "a.jpg", gradient())  # a.png and a.jpg both want a.kmq
    found, _ = find_inputs(["photos/a.png", "photos/a.jpg"], recursive=False, suffixes=IMAGES)

    jobs = plan(found, lambda source, relative: Path("out") / relative.with_suffix(".kmq"), force=False, batch=True)

    assert [job.action for job in jobs] == ["run", "fail"]
    assert "also the output of photos/a.png" in jobs[1].reason


# --------------------------------------------------------------------------
# 3. The commands
# --------------------------------------------------------------------------


def test_encode_a_tree_into_an_output_folder_keeps_its_layout(photos, capsys):
    result = run(capsys, "encode", "photos", "-r", "-O", "out", "-j", "1")

    assert result.code == 0, result
    assert tree(Path("out")) == ["a.kmq", "b.kmq", "sub/c.kmq", "sub/deep/d.kmq"]
    assert np.array_equal(kmq.read(Path("out/b.kmq")), rgba_partial())  # six colours at K=8: exact
    assert result.out.splitlines()[-1].startswith("encoded 4 file(s)")
    assert "0 up to date, 0 failed" in result.out


def test_a_bad_file_is_reported_and_the_rest_are_done(photos, capsys):
    (photos / "broken.png").write_bytes(b"no image in here")

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1")

    assert result.code == 1
    assert tree(Path("out")) == ["a.kmq", "b.kmq"]
    assert result.err.splitlines() == [f"kmq: error: {Path('photos/broken.png')}: not an image Pillow can read"]
    assert "encoded 2 file(s)" in result.out and "1 failed" in result.out
    assert temp_files(Path(".")) == []


def test_running_again_skips_what_is_up_to_date_and_force_redoes_it(photos, capsys):
    assert run(capsys, "encode", "photos", "-O", "out", "-j", "1").code == 0
    before = {name: (Path("out") / name).stat().st_mtime_ns for name in tree(Path("out"))}

    again = run(capsys, "encode", "photos", "-O", "out", "-j", "1")
    forced = run(capsys, "encode", "photos", "-O", "out", "-j", "1", "--force", "-k", "2")

    assert again.code == 0 and "encoded 0 file(s)" in again.out and "2 up to date" in again.out
    assert {name: (Path("out") / name).stat().st_mtime_ns for name in tree(Path("out"))} != before
    assert forced.code == 0 and kmq.container.Header.unpack(Path("out/a.kmq").read_bytes()).k == 2


def test_a_stale_output_is_kept_and_reported_as_stale_not_as_a_failure(photos, capsys):
    Path("out").mkdir()
    earlier = kmq.encode(gradient(), 2)
    Path("out/a.kmq").write_bytes(earlier)
    age(Path("out/a.kmq"), 60)

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1", "--json")

    document = json.loads(result.out)
    assert result.code == 0 and result.err == ""
    assert Path("out/a.kmq").read_bytes() == earlier
    assert document["counts"] == {"encoded": 1, "skipped": 0, "stale": 1, "failed": 0}
    assert [record["status"] for record in document["files"]] == ["stale", "encoded"]
    text = run(capsys, "encode", "photos", "-O", "out", "-j", "1")
    assert "out/a.kmq: stale (older than its input), kept; --force redoes it" in text.out.replace(os.sep, "/")
    assert "1 up to date, 1 stale, 0 failed" in text.out


def test_several_inputs_without_an_output_folder_write_beside_each_input(photos, capsys):
    result = run(capsys, "encode", "photos/a.png", "photos/sub/c.png", "-j", "1")

    assert result.code == 0
    assert (photos / "a.kmq").is_file() and (photos / "sub" / "c.kmq").is_file()


def test_decode_a_folder_with_a_suffix_gives_that_format(photos, capsys):
    run(capsys, "encode", "photos", "-r", "-O", "kmq", "-j", "1")

    result = run(capsys, "decode", "kmq", "-r", "-O", "back", "--suffix", "webp", "-j", "1")

    assert result.code == 0, result
    assert tree(Path("back")) == ["a-kmq.webp", "b-kmq.webp", "sub/c-kmq.webp", "sub/deep/d-kmq.webp"]
    from PIL import Image

    with Image.open("back/b-kmq.webp") as image:
        assert np.array_equal(np.asarray(image.convert("RGBA")), kmq.read(Path("kmq/b.kmq")))


def test_two_worker_processes_write_the_same_bytes_as_one(photos, capsys):
    assert run(capsys, "encode", "photos", "-r", "-O", "one", "-j", "1").code == 0
    assert run(capsys, "encode", "photos", "-r", "-O", "two", "-j", "2").code == 0

    for name in tree(Path("one")):
        assert (Path("two") / name).read_bytes() == (Path("one") / name).read_bytes(), name


def test_json_is_one_document_with_a_record_per_file_and_the_counts(photos, capsys):
    (photos / "broken.png").write_bytes(b"nope")

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1", "--json")
    document = json.loads(result.out)

    assert result.code == 1
    assert document["command"] == "encode"
    assert document["counts"] == {"encoded": 2, "skipped": 0, "stale": 0, "failed": 1}
    by_name = {Path(r["input"]).name: r for r in document["files"]}
    assert by_name["a.png"]["status"] == "encoded"
    assert by_name["a.png"]["file_bytes"] == Path("out/a.kmq").stat().st_size
    assert by_name["a.png"]["k"] == 8 and by_name["a.png"]["coding"] in ("mix", "ctx1", "raw")
    assert by_name["a.png"]["coding"] == kmq.container.CODINGS[Path("out/a.kmq").read_bytes()[5]]
    assert by_name["b.png"]["psnr"] is None  # six colours at K=8: lossless, which JSON cannot write as inf
    assert by_name["broken.png"]["status"] == "failed" and "not an image" in by_name["broken.png"]["error"]


def test_json_for_one_file_has_the_same_shape(photos, capsys):
    result = run(capsys, "encode", "photos/a.png", "--json")

    document = json.loads(result.out)
    assert document["counts"] == {"encoded": 1, "skipped": 0, "stale": 0, "failed": 0}
    assert document["files"][0]["bits_per_pixel"] == pytest.approx(8 * (photos / "a.kmq").stat().st_size / (16 * 12))


def test_quiet_prints_nothing_on_success_and_errors_still(photos, capsys):
    ok = run(capsys, "encode", "photos/a.png", "-q")
    bad = run(capsys, "encode", "photos/notes.txt", "-q")

    assert (ok.code, ok.out, ok.err) == (0, "", "")
    assert bad.code == 1 and bad.out == "" and "not an image" in bad.err


def test_verbose_says_what_it_found_and_what_it_skipped(photos, capsys):
    run(capsys, "encode", "photos", "-O", "out", "-j", "1")

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1", "-v")

    assert "2 input(s): 0 to encode, 2 up to date, 0 refused" in result.err
    assert "up to date, skipped" in result.err


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "piped"])
def test_a_progress_bar_is_drawn_on_a_terminal_only(photos, capsys, monkeypatch, tty):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)

    result = run(capsys, "encode", "photos", "-r", "-O", "out", "-j", "1")

    assert result.code == 0
    assert ("/4 [" in result.err) is tty  # tqdm's "n/4 [elapsed<remaining, rate]"
    assert result.out.count(" -> ") == 4  # the per-file lines are all there either way


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encode", "photos/a.png", "photos/b.png", "-o", "x.kmq"], "for several inputs use -O DIR"),
        (["encode", "photos", "-o", "x.kmq", "-O", "out"], "-o and -O: choose one"),
        (["encode", "photos", "-j", "2", "--scheduler", "tcp://127.0.0.1:1"], "-j and --scheduler: choose one"),
        (["encode", "photos", "-j", "0"], "jobs must be at least 1"),
        (["decode", "photos", "--suffix", "a/b"], "not a file extension"),
    ],
)
def test_conflicting_batch_options_are_usage_errors(photos, capsys, argv, message):
    result = usage_error(capsys, *argv)

    assert result.code == 2 and message in result.err
    assert not Path("out").exists() and not Path("x.kmq").exists()


def test_decode_to_an_unwritable_suffix_is_refused_before_any_work(photos, capsys):
    run(capsys, "encode", "photos", "-O", "kmq", "-j", "1")

    result = run(capsys, "decode", "kmq", "-O", "back", "--suffix", ".xyz")

    assert result.code == 1 and ".xyz" in result.err
    assert not Path("back").exists()


def test_ctrl_c_in_a_batch_leaves_finished_outputs_and_no_partial_one(photos, capsys, monkeypatch):
    calls = []
    real = kmq.batch.quantize

    def second_call_interrupts(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(kmq.batch, "quantize", second_call_interrupts)

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1")

    assert result.code == 130
    assert tree(Path("out")) == ["a.kmq"]
    assert temp_files(Path(".")) == []


# --------------------------------------------------------------------------
# 4. A Dask cluster
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster on this machine: a scheduler and two worker processes."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as local:
        yield local


def test_a_dask_cluster_gives_the_same_bytes_as_local_work(photos, capsys, cluster):
    (photos / "broken.png").write_bytes(b"nope")
    assert run(capsys, "encode", "photos", "-r", "-O", "local", "-j", "1").code == 1

    result = run(capsys, "encode", "photos", "-r", "-O", "dask", "--scheduler", cluster.scheduler_address)

    assert result.code == 1 and "broken.png: not an image" in result.err
    assert tree(Path("dask")) == tree(Path("local")) == ["a.kmq", "b.kmq", "sub/c.kmq", "sub/deep/d.kmq"]
    for name in tree(Path("local")):
        assert (Path("dask") / name).read_bytes() == (Path("local") / name).read_bytes(), name


def test_decode_through_a_dask_cluster(photos, capsys, cluster):
    run(capsys, "encode", "photos", "-O", "kmq", "-j", "1")

    result = run(capsys, "decode", "kmq", "-O", "back", "--scheduler", cluster.scheduler_address, "--json")

    assert result.code == 0
    assert json.loads(result.out)["counts"] == {"decoded": 2, "skipped": 0, "stale": 0, "failed": 0}
    from PIL import Image

    with Image.open("back/a-kmq.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), kmq.read(Path("kmq/a.kmq")))


def test_an_unreachable_scheduler_is_one_line(photos, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(kmq.batch, "CONNECT_TIMEOUT", 0.5)

    result = run(capsys, "encode", "photos", "-O", "out", "--scheduler", "tcp://127.0.0.1:9")

    assert result.code == 1
    assert result.err.splitlines() == [result.err.strip()] and "cannot connect" in result.err
    assert not any(Path("out").glob("*.kmq"))


def test_scheduler_without_dask_names_the_extra(photos, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)

    result = run(capsys, "encode", "photos", "-O", "out", "--scheduler", "tcp://127.0.0.1:9")

    assert result.code == 1
    assert result.err.strip() == f"kmq: error: {kmq.batch.DASK_MISSING}"
    assert "pip install 'kmq[dask]'" in result.err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group is POSIX")
def test_ctrl_c_stops_the_worker_processes_at_once(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        save_png(tmp_path / f"noise{i}.png", rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "encode", ".", "-O", "out", "-k", "256", "-j", "2", "--verbose"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    plan_line = proc.stderr.readline() if proc.stderr else ""
    time.sleep(1.0)  # the workers are busy on their first images (about 3 s each)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=60)

    assert "4 to encode" in plan_line
    assert proc.returncode == 130, err
    # That the workers are stopped rather than waited for is counted in test_batch_stop.py.
    assert err.strip() == "kmq: interrupted"
    assert out == "" and not any((tmp_path / "out").glob("*")) and temp_files(tmp_path) == []
    if shutil.which("pgrep"):
        assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""  # no worker left


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
@pytest.mark.parametrize("terminal", [True, False], ids=["pty", "pipe"])
def test_a_real_terminal_gets_the_bar_and_a_pipe_does_not(photos, terminal):
    import pty

    master, slave = pty.openpty()  # its size is 0 x 0, as under `script` or an IDE's console
    stderr = slave if terminal else subprocess.PIPE
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "encode", "photos", "-r", "-O", "out", "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    out, err = proc.communicate(timeout=120)
    os.close(slave)
    if terminal:
        err = read_pty(master)
    os.close(master)

    assert proc.returncode == 0
    assert (b"/4 [" in err) is terminal
    assert b"/4 [" not in out and out.count(b" -> ") == 4


# --------------------------------------------------------------------------
# 5. Faults a batch must survive, and inputs it must not read whole
# --------------------------------------------------------------------------


def die_on_a(data: bytes, name: str, options: kmq.batch.EncodeOptions) -> kmq.batch.Outcome:
    """encode_job, except that the worker given a.png dies at once, as under the OOM killer."""
    if name.endswith("a.png"):
        os._exit(9)
    return kmq.batch.encode_job(data, name, options)


def report_threads(data: bytes, name: str, options: object) -> kmq.batch.Outcome:
    from threadpoolctl import threadpool_info

    blas = max((pool["num_threads"] for pool in threadpool_info()), default=1)
    return kmq.batch.Outcome(b"", {"kmq": kmq.threads.available(), "blas": blas})


def _jobs(folder: Path, names: list[str]) -> list[Job]:
    return [Job(folder / name, folder / "out" / Path(name).with_suffix(".kmq")) for name in names]


def test_a_worker_that_dies_fails_its_files_and_the_batch_goes_on(tmp_path):
    names = [f"{c}.png" for c in "abcdefgh"]
    for name in names:
        save_png(tmp_path / name, gradient())

    results = dict(kmq.batch.run(_jobs(tmp_path, names), die_on_a, kmq.batch.EncodeOptions(), workers=2))

    by_name = {job.source.name: outcome for job, outcome in results.items()}
    assert sorted(by_name) == names  # every file has an outcome
    assert "worker failed" in (by_name["a.png"].error or "")
    for later in names[5:]:  # sent after the pool broke (at most 4 were in flight): to a fresh one
        assert by_name[later].error is None and by_name[later].content is not None


def test_worker_processes_use_one_thread_each(tmp_path):
    pytest.importorskip("threadpoolctl")
    for name in ("a.png", "b.png"):
        save_png(tmp_path / name, gradient())

    jobs = _jobs(tmp_path, ["a.png", "b.png"])
    results = list(kmq.batch.run(jobs, report_threads, kmq.batch.EncodeOptions(), workers=2))

    assert [outcome.info for _, outcome in results] == [{"kmq": 1, "blas": 1}] * 2


@pytest.mark.skipif(not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"), reason="needs /dev/zero and FIFOs")
def test_devices_and_fifos_are_refused_without_reading_them(photos, capsys):
    os.mkfifo("fifo.png")

    result = run(capsys, "encode", "/dev/zero", "fifo.png", "photos/a.png", "-O", "out", "-j", "1")

    assert result.code == 1
    assert "kmq: error: /dev/zero: not a regular file" in result.err
    assert "kmq: error: fifo.png: not a regular file" in result.err
    assert (Path("out") / "a.kmq").is_file()


def test_a_file_that_is_no_image_is_refused_from_its_header(photos, capsys, monkeypatch):
    (photos / "big.png").write_bytes(b"not an image" + bytes(1 << 20))
    read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        assert self.name != "big.png", "read whole"
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)

    result = run(capsys, "encode", "photos", "-O", "out", "-j", "1")

    assert result.code == 1 and "big.png: not an image Pillow can read" in result.err


def test_results_are_reported_in_input_order_whatever_order_they_finish_in(photos, capsys, monkeypatch):
    real = kmq.batch.run
    monkeypatch.setattr(kmq.batch, "run", lambda *a, **k: reversed(list(real(*a, **k))))  # last done first

    result = run(capsys, "encode", "photos", "-r", "-O", "out", "-j", "1", "--json")

    inputs = [Path(record["input"]).name for record in json.loads(result.out)["files"]]
    assert inputs == ["a.png", "b.png", "c.png", "d.jpg"]


@pytest.mark.parametrize("address", ["foo", "inproc://x", "tcp://"])
def test_a_malformed_scheduler_address_is_one_plain_error(photos, capsys, monkeypatch, address):
    pytest.importorskip("distributed")
    monkeypatch.setattr(kmq.batch, "CONNECT_TIMEOUT", 0.5)

    result = run(capsys, "encode", "photos", "-O", "out", "--scheduler", address)

    assert result.code == 1
    assert re.fullmatch(rf"kmq: error: scheduler '{re.escape(address)}' is not a scheduler address .*\n", result.err)
    assert "internal error" not in result.err


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(photos, capsys, monkeypatch):
    Path("out").write_text("a file")
    monkeypatch.setattr(kmq.batch, "quantize", lambda *a, **k: pytest.fail("worked"))

    result = run(capsys, "encode", "photos", "-O", "out")

    assert result.code == 1 and result.err == "kmq: error: out: -O names a folder, and this is a file\n"


@pytest.mark.parametrize("inputs", [["photos"], ["photos/*.png"]], ids=["folder", "glob"])
def test_dash_o_with_a_folder_or_glob_is_a_usage_error(photos, capsys, inputs):
    result = usage_error(capsys, "encode", *inputs, "-o", "x.kmq")

    assert result.code == 2 and "-o names one output" in result.err


def test_a_json_run_that_fails_as_a_whole_still_prints_json(photos, capsys):
    Path("out").write_text("a file")

    result = run(capsys, "encode", "photos", "-O", "out", "--json")

    assert result.code == 1
    assert json.loads(result.out) == {"command": "encode", "error": "out: -O names a folder, and this is a file"}


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes as a name")
def test_a_name_that_is_not_utf8_is_printed_escaped_and_the_batch_goes_on(photos):
    odd = os.fsencode(photos) + b"/caf\xe9.png"
    with open(odd, "wb") as handle:
        handle.write((photos / "a.png").read_bytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict: what a UTF-8 terminal or pipe gets

    proc = subprocess.run(
        [sys.executable, "-m", "kmq", "encode", "photos", "-O", "out", "-j", "1"],
        cwd=photos.parent,
        env=env,
        capture_output=True,
        text=True,
    )

    assert proc.returncode == 0, proc.stderr
    assert "caf\\udce9.png" in proc.stdout or "caf\\xe9.png" in proc.stdout
    assert os.path.exists(os.fsencode(photos.parent) + b"/out/caf\xe9.kmq")
