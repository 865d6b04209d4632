"""Load the sanitizer builds of kmq._ctx1 and kmq._mix from fuzz/build/ in place of the installed ones.

Imported by the fuzz targets before kmq: with KMQ_FUZZ_NATIVE=1 the modules built by
build_asan.sh become ``kmq._ctx1`` and ``kmq._mix``, so libFuzzer sees the C coders'
branches and AddressSanitizer watches their memory. Without it the installed modules
are used, and only the Python code is coverage-guided.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

BUILD = Path(__file__).resolve().parent / "build"


#: The C coders: payload coding 1 (ctx1) and payload coding 2 (mix).
CODERS = ("_ctx1", "_mix")


def load() -> str:
    """Install the instrumented modules if asked to; say which modules are in use."""
    if not os.environ.get("KMQ_FUZZ_NATIVE"):
        return "installed kmq._ctx1 and kmq._mix (C code not instrumented)"
    names = []
    for coder in CODERS:
        path = BUILD / f"{coder}{sysconfig.get_config_var('EXT_SUFFIX')}"
        if not path.exists():
            raise SystemExit(f"{path} is missing: run fuzz/build_asan.sh first")
        spec = importlib.util.spec_from_file_location(f"kmq.{coder}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[f"kmq.{coder}"] = module
        names.append(path.name)
    return f"instrumented {' and '.join(names)} under AddressSanitizer"
