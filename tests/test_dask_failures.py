"""A Dask cluster that cannot do the work ends the batch in one line, within documented bounds.

``--scheduler ADDRESS`` must never wait for ever: an address that accepts and
stays silent, an HTTP server, a scheduler with no workers, workers killed
mid-batch and tasks that never finish each give one error line after at most
``kmq.batch.CONNECT_TIMEOUT`` (+3 s), ``WORKER_WAIT`` or ``PROGRESS_TIMEOUT``
seconds, each set short here through its environment variable or constant.

Each command runs in a thread of its own, so that a hang (the old behaviour)
fails the test at ``BOUND`` instead of stopping the run; ``BOUND`` is a ceiling
for "it ended", never a measurement of speed.
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import kmq.batch
import numpy as np
import pytest
from helpers import Result, run, save_png, temp_files
from kmq.errors import SchedulerError

distributed = pytest.importorskip("distributed")

BOUND = 60.0

# No nanny, so that nothing restarts the worker once it is killed.
WORKER_OPTIONS = ("--no-nanny", "--nthreads", "1", "--no-dashboard")

# Short bounds for the commands under test, through the documented variables.
SHORT = {"KMQ_DASK_CONNECT_TIMEOUT": "0.5", "KMQ_DASK_WORKER_WAIT": "1"}


@pytest.fixture
def kmq_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``kmq ARGV`` with the short bounds; a test failure if it has not ended after BOUND."""
    for variable, value in SHORT.items():
        monkeypatch.setenv(variable, value)

    def command(*argv: str) -> Result:
        results: list[Result] = []
        thread = threading.Thread(target=lambda: results.append(run(capsys, *argv)), daemon=True)
        thread.start()
        thread.join(BOUND)
        if not results:
            pytest.fail(f"kmq {' '.join(argv)} still waiting after {BOUND:g} s")
        return results[0]

    return command


def one_line(result: Result) -> str:
    """The single line a failed command printed on stderr."""
    assert result.code == 1, result
    assert len(result.err.splitlines()) == 1, result.err
    return result.err


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder, made the current one, with one small image a.png."""
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    return tmp_path


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP address that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed at the end of the test
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in held:
        connection.close()


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    """The port of a small HTTP server (as a Dask dashboard would be)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[distributed.LocalCluster]:
    """A real Dask scheduler with no workers of its own."""
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0", silence_logs=40) as cluster:
        yield cluster


def wait_until(condition: object, bound: float = BOUND) -> bool:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def worker(scheduler: distributed.LocalCluster) -> Iterator[subprocess.Popen[bytes]]:
    """One worker process without a nanny (so that nothing restarts it once killed), joined to ``scheduler``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", scheduler.scheduler_address, *WORKER_OPTIONS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: scheduler.scheduler.workers), "the worker did not join"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        wait_until(lambda: not scheduler.scheduler.workers, bound=10)


def test_an_address_that_accepts_and_never_answers_is_one_line(image, kmq_command, silent_server):
    result = kmq_command("encode", "a.png", "-O", "out", "--scheduler", silent_server)

    assert one_line(result) == f"kmq: error: scheduler {silent_server}: not a Dask scheduler: no answer in 0.5 s\n"
    assert not (image / "out").exists()


def test_an_http_server_is_not_a_dask_scheduler(image, kmq_command, http_server):
    address = f"tcp://127.0.0.1:{http_server}"

    result = kmq_command("encode", "a.png", "-O", "out", "--scheduler", address)

    assert one_line(result).startswith(f"kmq: error: scheduler {address}: not a Dask scheduler: it answers HTTP")


def test_a_web_address_is_refused_before_any_connection(image, kmq_command):
    result = kmq_command("encode", "a.png", "-O", "out", "--scheduler", "http://127.0.0.1:8787/status")

    assert result.code == 1
    assert "is a web address (a dashboard's?), not a Dask scheduler's such as tcp://host:8786" in result.err


def test_a_scheduler_with_no_workers_is_one_line(image, kmq_command, scheduler):
    result = kmq_command("encode", "a.png", "-O", "out", "--scheduler", scheduler.scheduler_address)

    assert one_line(result) == (
        f"kmq: error: scheduler {scheduler.scheduler_address} has no workers (none joined in 1 s)\n"
    )


def test_workers_killed_mid_batch_end_it_with_one_line(image, kmq_command, scheduler, worker):
    rng = np.random.default_rng(0)
    for i in range(4):  # some seconds each at K=256: the batch is surely mid-way when its worker is killed
        save_png(image / f"noise{i}.png", rng.integers(0, 256, (800, 800, 3), dtype=np.uint8))

    def kill_the_worker_once_busy() -> None:
        if wait_until(lambda: scheduler.scheduler.tasks):
            worker.kill()

    threading.Thread(target=kill_the_worker_once_busy, daemon=True).start()
    result = kmq_command("encode", ".", "-O", "out", "-k", "256", "--scheduler", scheduler.scheduler_address)

    assert one_line(result) == (
        f"kmq: error: scheduler {scheduler.scheduler_address}: all its workers have gone and none came back in 1 s\n"
    )
    assert temp_files(image) == []


def test_tasks_that_never_finish_end_the_batch_after_the_progress_timeout(image, scheduler, worker, monkeypatch):
    monkeypatch.setattr(kmq.batch, "PROGRESS_TIMEOUT", 1.0)

    def never_finishes(data: bytes, name: str, options: object) -> kmq.batch.Outcome:
        time.sleep(BOUND)  # a worker stuck (swapping, a deadlock): present, but doing nothing
        return kmq.batch.Outcome(b"")

    jobs = [kmq.batch.Job(image / "a.png", image / "a.kmq")]

    with pytest.raises(SchedulerError, match=r"no file finished in 1 s \(KMQ_DASK_PROGRESS_TIMEOUT sets how long"):
        list(kmq.batch.run(jobs, never_finishes, kmq.batch.EncodeOptions(), scheduler=scheduler.scheduler_address))


def test_a_time_bound_that_is_not_a_number_is_one_line(image, kmq_command, monkeypatch):
    monkeypatch.setenv("KMQ_DASK_WORKER_WAIT", "soon")

    result = kmq_command("encode", "a.png", "-O", "out", "--scheduler", "tcp://127.0.0.1:9")

    assert result.code == 1
    assert result.err == "kmq: error: KMQ_DASK_WORKER_WAIT must be a positive number of seconds, got 'soon'\n"
