"""SIGTERM and SIGHUP stop kmq as Ctrl-C does, and no worker process outlives the command.

``docker stop`` and ``systemctl stop`` send SIGTERM, a closed terminal SIGHUP:
the half-written output is removed, one line says what happened, and the exit
status is 128 + the signal's number. Worker processes exit when the command
ends however it ends, SIGKILL included (``prctl(PR_SET_PDEATHSIG)`` on Linux,
and a thread watching the parent everywhere).

These run real processes and send real signals; the waits are bounds for
"it happened", never measurements of speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import kmq.cli.batch
import numpy as np
import pytest
from helpers import run, save_png, temp_files

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc (Linux)")

# Generous bounds for "it happened": a loaded machine may be slow, a hang never ends.
BOUND = 20.0

# kmq's own main, with the output's fsync held for a minute once the temporary file is
# written: the signal then surely arrives while the output is half-made.
SLOW_WRITE = """
import os, sys, time
from pathlib import Path

def fsync(fd):
    Path("writing").touch()
    time.sleep(60)

os.fsync = fsync
from kmq.cli.main import main
sys.exit(main(sys.argv[1:]))
"""

# A parent process whose one worker runs kmq's worker start-up, then sleeps; the worker
# prints its PID. The prctl step can be left out (as on macOS or Windows) to test the watcher.
PARENT_OF_ONE_WORKER = """
import multiprocessing, os, sys, time
import kmq.batch

def worker(parent, how):
    if how != "prctl":
        kmq.batch._die_with_parent = lambda: None
    if how == "ppid":
        multiprocessing.parent_process = lambda: None
    kmq.batch._exit_with_parent(parent)
    print(os.getpid(), flush=True)
    time.sleep(60)

if __name__ == "__main__":
    multiprocessing.get_context("fork").Process(target=worker, args=(os.getpid(), sys.argv[1])).start()
    time.sleep(60)
"""


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(pid) and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], object], bound: float = BOUND) -> bool:
    """Poll ``condition`` until it holds or ``bound`` seconds have passed; whether it held."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def kill_left_over(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def noise(tmp_path: Path) -> Path:
    """Four noisy images, each some seconds of work at K=256, so that a batch of them is surely mid-way."""
    rng = np.random.default_rng(0)
    for i in range(4):
        save_png(tmp_path / f"noise{i}.png", rng.integers(0, 256, (800, 800, 3), dtype=np.uint8))
    return tmp_path


def start_batch(folder: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """``kmq encode`` of ``folder`` on two worker processes, returned once both workers run."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "encode", ".", "-O", "out", "-k", "256", "-j", "2"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_until(lambda: len(children(proc.pid)) == 2), "the workers did not start"
    return proc, children(proc.pid)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_while_the_output_is_written_leaves_no_partial_file(tmp_path, signum):
    save_png(tmp_path / "a.png", np.zeros((16, 16, 3), np.uint8))
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITE, "encode", "a.png", "-o", "a.kmq"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until((tmp_path / "writing").exists), "never reached the write"
        assert temp_files(tmp_path) != []  # the output is half-made now
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=BOUND)
    finally:
        proc.kill()

    assert proc.returncode == 128 + signum
    assert err == f"kmq: stopped by {signal.Signals(signum).name}\n"
    assert out == ""
    assert temp_files(tmp_path) == [] and not (tmp_path / "a.kmq").exists()


def test_sigterm_to_the_command_alone_stops_its_workers(noise):
    proc, workers = start_batch(noise)  # docker stop signals the main process only
    try:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=BOUND)
        gone = wait_until(lambda: not any(alive(pid) for pid in workers))
    finally:
        proc.kill()
        kill_left_over(workers)

    assert proc.returncode == 143
    assert err == "kmq: stopped by SIGTERM\n"
    assert gone, "a worker process outlived the command"
    assert temp_files(noise) == []


def test_workers_exit_when_the_command_is_killed_with_sigkill(noise):
    proc, workers = start_batch(noise)
    try:
        proc.kill()  # nothing in the command can run now: the workers must notice by themselves
        proc.communicate(timeout=BOUND)
        gone = wait_until(lambda: not any(alive(pid) for pid in workers))
    finally:
        kill_left_over(workers)

    assert proc.returncode == -signal.SIGKILL
    assert gone, "a worker process outlived the command"


@pytest.mark.parametrize("how", ["prctl", "sentinel", "ppid"])
def test_a_worker_exits_when_its_parent_dies_by_each_means(tmp_path, how):
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT_OF_ONE_WORKER, how], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    worker = 0
    try:
        assert proc.stdout is not None
        worker = int(proc.stdout.readline())
        proc.kill()
        proc.wait(timeout=BOUND)
        gone = wait_until(lambda: not alive(worker))
    finally:
        proc.kill()
        kill_left_over([worker] if worker else [])

    assert gone, f"the worker outlived its parent ({how})"


def test_the_command_restores_the_handlers_and_leaves_an_ignored_sighup_ignored(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    seen = {}
    real = kmq.cli.batch.run_encode

    def spy(args, *rest):
        seen.update(term=signal.getsignal(signal.SIGTERM), hup=signal.getsignal(signal.SIGHUP))
        return real(args, *rest)

    monkeypatch.setattr(kmq.cli.batch, "run_encode", spy)
    term_before = signal.getsignal(signal.SIGTERM)
    hup_before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        result = run(capsys, "encode", "a.png")
        after = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
    finally:
        signal.signal(signal.SIGHUP, hup_before)

    assert result.code == 0
    assert seen["term"] not in (signal.SIG_DFL, term_before) and seen["hup"] is signal.SIG_IGN
    assert after == (term_before, signal.SIG_IGN)
