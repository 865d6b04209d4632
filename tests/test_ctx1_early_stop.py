"""A bad stripe ends the decode: later stripes are not decoded, on one thread or several.

The work is counted, not timed: the stripe coder is wrapped to record which stripes it was
asked to decode and what it returned.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import kmq
import numpy as np
import pytest
from ctx1_files import ctx1_file, reframed, streams_of, structured
from kmq import ctx1, threads

STRIPES = 16
#: 16 stripes of 64 rows x 128 pixels (8192 each, over the 4096 minimum), stripe 0 bad at byte 0.
PLANE = structured(8, 64 * STRIPES, 128, noise=0.01)
GOOD = ctx1_file(PLANE, 8, stripes=STRIPES)


def with_bad_stripe(bad: int) -> bytes:
    streams = streams_of(GOOD)
    streams[bad] = b"\x01" + streams[bad][1:]
    return reframed(GOOD, streams)


class Recorder:
    """The stripe coder, with each decode call's stripe index and status recorded.

    With ``hold``, a stripe after the first waits (up to 10 s) until the shared "failed"
    value says an earlier stripe failed, so that the test does not depend on thread timing:
    a decoder that stops later stripes returns them as cancelled, one that does not decodes them.
    """

    def __init__(self, hold: bool = False) -> None:
        self.real = ctx1._backend
        self.hold = hold
        self.calls: list[tuple[int, int]] = []
        self.module = SimpleNamespace(new_model=self.real.new_model, encode=self.real.encode, decode=self.decode)

    def decode(self, data, width, height, k, out, *rest):
        index = rest[2] if len(rest) >= 3 else -1
        if self.hold and index > 0:
            deadline = time.monotonic() + 10
            while rest[1][0] >= index and time.monotonic() < deadline:
                time.sleep(0.001)
        result = self.real.decode(data, width, height, k, out, *rest)
        self.calls.append((index, result[0]))
        return result


def test_good_file_decodes_every_stripe(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(ctx1, "_backend", recorder.module)
    assert np.array_equal(kmq.Indexed.from_bytes(GOOD).labels, PLANE)
    assert sorted(index for index, _ in recorder.calls) == list(range(STRIPES))


def test_one_thread_stops_at_the_first_bad_stripe(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(ctx1, "_backend", recorder.module)
    with pytest.raises(kmq.FormatError, match=r"payload stripe 0 \(rows 0\.\.63\): stream starts with byte 1"):
        kmq.decode(with_bad_stripe(0))
    assert recorder.calls == [(0, 2)]


def test_one_thread_decodes_the_stripes_before_the_bad_one_and_none_after(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(ctx1, "_backend", recorder.module)
    with pytest.raises(kmq.FormatError, match="payload stripe 5 "):
        kmq.decode(with_bad_stripe(5))
    assert recorder.calls == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 2)]


@pytest.mark.parametrize("workers", [2, 4])
def test_threads_cancel_every_stripe_after_the_first_bad_one(monkeypatch, workers):
    recorder = Recorder(hold=True)
    monkeypatch.setattr(ctx1, "_backend", recorder.module)
    monkeypatch.setattr(ctx1, "THREAD_PIXELS", 0)
    monkeypatch.setattr(threads, "available", lambda: workers)
    with pytest.raises(kmq.FormatError, match=r"payload stripe 0 \(rows 0\.\.63\)"):
        kmq.decode(with_bad_stripe(0))
    later = [status for index, status in recorder.calls if index > 0]
    # Stripes already running when stripe 0 failed stop at their next row (status 9); none is decoded.
    assert all(status == ctx1._CANCELLED for status in later), recorder.calls
    assert len(later) <= workers - 1


def test_threads_report_the_first_bad_stripe_in_stripe_order(monkeypatch):
    monkeypatch.setattr(ctx1, "THREAD_PIXELS", 0)
    monkeypatch.setattr(threads, "available", lambda: 4)
    streams = streams_of(GOOD)
    for bad in (3, 9, 14):
        streams[bad] = b"\x01" + streams[bad][1:]
    with pytest.raises(kmq.FormatError, match="payload stripe 3 "):
        kmq.decode(reframed(GOOD, streams))


def test_the_coder_decodes_nothing_of_a_stripe_after_one_that_failed():
    height, width = 64, 128
    stream = ctx1.encode(PLANE[:height], 8)[6:]  # one stripe: drop the count and the length
    out = np.full((height, width), 77, np.uint8)
    failed = np.array([2], np.int32)
    status, x, y, _ = ctx1._backend.decode(stream, width, height, 8, out, None, failed, 3)
    assert (status, x, y) == (ctx1._CANCELLED, 0, 0)
    assert (out == 77).all()
    assert ctx1._backend.decode(stream, width, height, 8, out, None, failed, 2)[0] == 0
    assert np.array_equal(out, PLANE[:height])


def test_a_reused_model_codes_each_stripe_as_a_fresh_one():
    # The model is reset from the slots the last stripe used, never re-made: check that this
    # leaves nothing behind, across planes, stripes and a change of K.
    backend = ctx1._backend
    for k in (8, 16, 200):
        model = backend.new_model(k)
        for seed in range(4):
            plane = structured(k, 40, 50, seed=seed, noise=0.3)
            fresh = backend.encode(plane, 50, 40, k, 1 << 30)
            assert backend.encode(plane, 50, 40, k, 1 << 30, model) == fresh
            out = np.empty_like(plane)
            assert backend.decode(fresh, 50, 40, k, out, model)[0] == 0
            assert np.array_equal(out, plane)
    if ctx1.BACKEND == "C":
        with pytest.raises(ValueError, match="model was made for k=200, not k=8"):
            backend.encode(plane[:1] % 8, 50, 1, 8, 1 << 30, model)
