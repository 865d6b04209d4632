"""A pytest plugin that runs the test suite against the sanitizer builds of kmq._ctx1 and kmq._mix.

Loaded with ``-p asan_plugin`` (``fuzz/`` on PYTHONPATH), it installs ``fuzz/build/`` 's modules
(``_native.load``) before any test module or conftest imports kmq, so every test's calls into the
C coders run under AddressSanitizer and UndefinedBehaviorSanitizer. The ASan runtime must be
preloaded and KMQ_FUZZ_NATIVE=1 set; the commands are in fuzz/README.md. A test that spawns a
fresh interpreter runs the installed (uninstrumented) modules there.
"""

from __future__ import annotations

import os
import sys

import _native

if not os.environ.get("KMQ_FUZZ_NATIVE"):
    raise SystemExit("asan_plugin: set KMQ_FUZZ_NATIVE=1 (and LD_PRELOAD the ASan runtime, fuzz/README.md)")
NATIVE = _native.load()


def pytest_report_header() -> str:
    files = [sys.modules[f"kmq.{coder}"].__file__ for coder in _native.CODERS]
    return f"kmq C coders: {NATIVE}: {', '.join(map(str, files))}"
