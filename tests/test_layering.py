"""Which modules importing kmq loads: the format core stands alone, and ``import kmq`` defers batch work.

Each check runs in a fresh interpreter, since this process has imported everything already. How long
the imports take is measured by benchmarks/bench_import.py, not here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import kmq
import pytest

#: The format: errors, bit packing, the ctx1 coder and the container, enough to read and write a file.
FORMAT_CORE = ("kmq.errors", "kmq.bitpack", "kmq.ctx1", "kmq.container")
#: What the format must not need: Pillow, the quantizer and anything it might grow to use.
NOT_IN_CORE = ("PIL", "kmq.quantize", "kmq.kmeans", "kmq.histogram", "kmq.images", "kmq.indexed", "sklearn")
#: What ``import kmq`` leaves until first use: batch (and its process pool), pictures and their plots,
#: LittleCMS (needed only for an image with an ICC profile), numpy's random generators (14 ms, no use in kmq).
DEFERRED = (
    "kmq.batch",
    "kmq.pictures",
    "kmq.metrics",
    "multiprocessing",
    "concurrent.futures.process",
    "PIL.ImageDraw",
    "PIL.ImageFont",
    "PIL.ImageCms",
    "matplotlib",
    "sklearn",
    "tqdm",
    "numpy.random",
    "secrets",
)


def modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


# The package's __init__ registers the Pillow plugin, so any `import kmq.x` loads Pillow: to see what the
# core modules need themselves, import them under a bare package object with kmq's search path.
BARE_PACKAGE = """
import importlib.util, sys, types
spec = importlib.util.find_spec("kmq")
package = types.ModuleType("kmq")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["kmq"] = package
"""


def test_format_core_needs_neither_pillow_nor_the_quantizer() -> None:
    loaded = modules_after(BARE_PACKAGE + "".join(f"import {name}\n" for name in FORMAT_CORE))

    assert set(FORMAT_CORE) <= loaded  # the bare package did import the real modules
    assert not {name for name in loaded if name.split(".")[0] == "PIL" or name in NOT_IN_CORE}


def test_format_core_reads_and_writes_a_file_alone() -> None:
    code = BARE_PACKAGE + (
        "import numpy as np, kmq.container as c\n"
        "data = c.dumps(np.array([[1, 2, 3], [4, 5, 6]], np.uint8), np.array([[0, 1, 1]], np.uint8), 'ctx1')\n"
        "palette, labels = c.loads(data)[1:3]\n"
        "assert labels.tolist() == [[0, 1, 1]], labels\n"
    )
    assert "PIL" not in modules_after(code)


def test_import_kmq_defers_batch_pictures_and_process_pools() -> None:
    loaded = modules_after("import kmq")

    assert sorted(loaded & set(DEFERRED)) == []


def test_import_kmq_still_registers_the_pillow_plugin() -> None:
    loaded = modules_after("import kmq\nfrom PIL import Image\nassert Image.registered_extensions()['.kmq'] == 'KMQ'")

    assert "kmq.pillow_plugin" in loaded


@pytest.mark.parametrize("name", ["batch", "pictures", "metrics"])
def test_deferred_submodules_are_attributes_of_kmq(name: str) -> None:
    loaded = modules_after(f"import kmq\nassert kmq.{name}.__name__ == 'kmq.{name}'\nfrom kmq import {name}")

    assert f"kmq.{name}" in loaded
    assert name in dir(kmq)


def test_unknown_attribute_of_kmq_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'kmq' has no attribute 'no_such_module'"):
        kmq.no_such_module  # noqa: B018


def test_test_modules_import_shared_helpers_from_helpers_not_from_each_other() -> None:
    tests = Path(__file__).resolve().parent
    test_modules = {path.stem for path in tests.glob("test_*.py")}
    offenders = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in test_modules | {"conftest"}:
                offenders.append(f"{path.name}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}:{node.lineno} import {a.name}" for a in node.names if a.name in test_modules
                ]

    assert offenders == [], "move what they import into tests/helpers.py (fixtures into conftest.py)"
