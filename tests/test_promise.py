"""The reproducibility promise is made once, in the same words, in the README and the spec."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = "Equal input, options and kmq version give byte-identical files on every machine"


def _promise(path: Path) -> str:
    text = " ".join(path.read_text(encoding="utf-8").split())
    found = re.search(re.escape(START) + r".*?thread counts\)\.", text)
    assert found, f"{path.name} does not state the promise"
    return found.group(0)


def test_readme_and_spec_state_the_same_reproducibility_promise():
    assert _promise(ROOT / "README.md") == _promise(ROOT / "spec" / "FORMAT.md")


def test_no_weaker_promise_is_left_beside_it():
    for path in (ROOT / "README.md", ROOT / "spec" / "FORMAT.md"):
        assert "on the same machine" not in path.read_text(encoding="utf-8")
