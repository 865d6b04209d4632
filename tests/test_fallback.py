"""The plain-Python ctx1 coder (installs without a compiler): the C coder's bytes, statuses and messages."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import kmq
import numpy as np
import pytest
from ctx1_files import ctx1_file, structured
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import _ctx1_py, ctx1

try:
    from kmq import _ctx1 as c_coder
except ImportError:  # an install without a compiler: nothing to compare against
    c_coder = None

needs_c = pytest.mark.skipif(c_coder is None, reason="the C coder is not built")


@st.composite
def small_planes(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """(labels, K): the K edges (2, a power of two, the small-K contexts' end, 256), shapes down to one pixel."""
    k = draw(st.sampled_from([2, 3, 8, 16, 17, 255, 256]) | st.integers(2, 256))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    noise = draw(st.sampled_from([0.0, 0.1, 1.0]))
    return structured(k, height, width, draw(st.integers(0, 2**32 - 1)), noise), k


@needs_c
@given(small_planes())
@example((np.zeros((1, 1), np.uint8), 2))
@example((np.full((3, 5), 255, np.uint8), 256))
def test_python_coder_writes_the_c_coders_bytes(case):
    labels, k = case
    height, width = labels.shape
    stream = c_coder.encode(labels, width, height, k, 1 << 40)
    assert _ctx1_py.encode(labels, width, height, k, 1 << 40) == stream
    for limit in (0, len(stream) - 1, len(stream)):
        assert _ctx1_py.encode(labels, width, height, k, limit) == c_coder.encode(labels, width, height, k, limit)


@needs_c
@given(small_planes(), st.data())
def test_python_coder_reads_damaged_streams_exactly_as_the_c_coder(case, data):
    labels, k = case
    height, width = labels.shape
    stream = bytearray(c_coder.encode(labels, width, height, k, 1 << 40))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(stream) - 1))
        stream[at] = data.draw(st.integers(0, 255))
    stream = stream[: data.draw(st.integers(0, len(stream) + 2))] + bytes(data.draw(st.integers(0, 2)))
    ours, theirs = np.zeros_like(labels), np.zeros_like(labels)
    result = _ctx1_py.decode(bytes(stream), width, height, k, ours)
    assert result == c_coder.decode(bytes(stream), width, height, k, theirs)
    # Rows before a failure are written, the failing row is not: the same in both.
    assert np.array_equal(ours, theirs)


@needs_c
def test_python_coder_refuses_a_label_outside_the_palette_as_the_c_coder_does():
    labels = np.zeros((3, 4), np.uint8)
    labels[1, 2] = 9
    errors = []
    for coder in (_ctx1_py, c_coder):
        with pytest.raises(ValueError) as caught:
            coder.encode(labels, 4, 3, 5, 1 << 20)
        errors.append(caught.value.args)
    assert errors[0] == errors[1]
    assert errors[0][1:] == (9, 2, 1)


def test_python_coder_cancels_a_stripe_after_a_failed_one():
    plane = structured(8, 20, 30)
    stream = _ctx1_py.encode(plane, 30, 20, 8, 1 << 20)
    out = np.full_like(plane, 77)
    assert _ctx1_py.decode(stream, 30, 20, 8, out, None, np.array([0], np.int32), 1) == (ctx1._CANCELLED, 0, 0, 0)
    assert (out == 77).all()


def test_files_written_and_read_with_the_python_coder_are_the_c_coders(monkeypatch):
    plane = structured(16, 80, 110, noise=0.05)  # 8800 pixels: two stripes allowed
    expected = ctx1_file(plane, 16, stripes=2)
    monkeypatch.setattr(ctx1, "_backend", _ctx1_py)
    assert ctx1_file(plane, 16, stripes=2) == expected
    assert np.array_equal(kmq.Indexed.from_bytes(expected).labels, plane)


def _run(code: str, backend: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KMQ_CTX1_BACKEND": backend}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_the_environment_chooses_the_python_coder_and_version_says_so():
    result = _run("import sys; from kmq.cli.main import main; sys.argv = ['kmq', '--version']; main()", "python")
    # ctx1's coder is named last: .ci/run's no-compiler check matches "*(ctx1 coder: python)" at the end.
    assert result.stdout.strip() == f"kmq {kmq.__version__} (mix coder: {kmq.mix.BACKEND}) (ctx1 coder: python)"


@needs_c
def test_the_environment_chooses_the_c_coder():
    result = _run("from kmq import ctx1; print(ctx1.BACKEND, ctx1._backend.__name__)", "c")
    assert result.stdout.split() == ["C", "kmq._ctx1"]


def test_an_unknown_choice_warns_and_is_ignored():
    code = "import numpy as np; from kmq import ctx1; print(ctx1.BACKEND); ctx1.encode(np.zeros((2, 2), 'u1'), 2)"
    result = _run(code, "fortran")
    assert "KmqWarning: KMQ_CTX1_BACKEND='fortran' is not 'c' or 'python'; ignored" in result.stderr
    assert result.stdout.strip() == ("C" if c_coder is not None else "python")


def test_an_unknown_choice_is_a_kmq_warning_given_once(monkeypatch):
    monkeypatch.setattr(ctx1, "_choice_warning", "KMQ_CTX1_BACKEND='fortran' is not 'c' or 'python'; ignored")
    with pytest.warns(kmq.KmqWarning, match=r"^KMQ_CTX1_BACKEND='fortran' is not 'c' or 'python'; ignored$"):
        ctx1.warn_backend_choice()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx1.warn_backend_choice()


def test_the_command_says_an_unknown_choice_in_one_line():
    result = _run("import sys; from kmq.cli.main import main; sys.exit(main(['--version']))", "fortran")
    assert result.stderr.splitlines() == ["kmq: warning: KMQ_CTX1_BACKEND='fortran' is not 'c' or 'python'; ignored"]


def test_the_command_keeps_the_choice_warning_off_with_quiet():
    code = "import sys; from kmq.cli.main import main; sys.exit(main(['decode', 'missing.kmq', '-q']))"
    result = _run(code, "fortran")
    assert result.returncode == 1 and "missing.kmq" in result.stderr  # the error is still said
    assert "KMQ_CTX1_BACKEND" not in result.stderr
