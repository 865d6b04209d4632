"""A batch whose caller stops early (Ctrl-C, an error, a closed generator) stops its workers, not waits for them.

Counted, not timed: each slow job leaves a "finished" marker if it is allowed to run to its end, so a
pool that waited for its workers would leave markers behind. test_batch.py sends a real Ctrl-C.
"""

from __future__ import annotations

import time
from pathlib import Path

import kmq.batch
from helpers import gradient, save_png
from kmq.batch import EncodeOptions, Job, Outcome

#: How long a slow job runs when nobody stops it: long against stopping a process, short enough
#: that a pool which waits for its workers fails this test in a bounded time rather than hanging it.
SLOW_JOB_SECONDS = 20


def fast_or_slow(data: bytes, name: str, options: object) -> Outcome:
    """Returns at once for ``fast``; the other jobs mark that they started, run a while, mark that they finished."""
    path = Path(name)
    if path.stem != "fast":
        (path.parent / f"{path.stem}.started").touch()
        time.sleep(SLOW_JOB_SECONDS)
        (path.parent / f"{path.stem}.finished").touch()
    return Outcome(b"", {"name": path.stem})


def test_closing_the_batch_early_stops_the_running_workers(tmp_path: Path) -> None:
    names = ["fast", "slow1", "slow2", "slow3"]
    for name in names:
        save_png(tmp_path / f"{name}.png", gradient())
    jobs = [Job(tmp_path / f"{name}.png", tmp_path / f"{name}.kmq") for name in names]

    results = kmq.batch.run(jobs, fast_or_slow, EncodeOptions(), workers=2)
    _, outcome = next(results)
    for _ in range(20 * SLOW_JOB_SECONDS):  # until a worker is inside a slow job
        if list(tmp_path.glob("*.started")):
            break
        time.sleep(0.05)
    results.close()  # what an exception in the caller's loop does

    assert outcome.info == {"name": "fast"}
    assert list(tmp_path.glob("*.started")), "a slow job was running when the batch was closed"
    assert not list(tmp_path.glob("*.finished")), "the workers were waited for"
