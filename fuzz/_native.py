"""Load the sanitizer build of kmq._ctx1 from fuzz/build/ in place of the installed one.

Imported by the fuzz targets before kmq: with KMQ_FUZZ_NATIVE=1 the module built by
build_asan.sh becomes ``kmq._ctx1``, so libFuzzer sees the C coder's branches and
AddressSanitizer watches its memory. Without it the installed module is used, and
only the Python code is coverage-guided.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

BUILD = Path(__file__).resolve().parent / "build"


def load() -> str:
    """Install the instrumented module if asked to; say which module is in use."""
    if not os.environ.get("KMQ_FUZZ_NATIVE"):
        return "installed kmq._ctx1 (C code not instrumented)"
    path = BUILD / f"_ctx1{sysconfig.get_config_var('EXT_SUFFIX')}"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run fuzz/build_asan.sh first")
    spec = importlib.util.spec_from_file_location("kmq._ctx1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["kmq._ctx1"] = module
    return f"instrumented {path.name} under AddressSanitizer"
