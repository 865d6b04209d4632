"""CI lints and type-checks what it tests: .ci/run runs ruff and mypy, and the dev extra installs them."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]


def ci_commands() -> list[list[str]]:
    """The top-level commands of .ci/run, split into words (comments and heredoc bodies left out)."""
    commands: list[list[str]] = []
    heredoc = None
    for line in (REPO / ".ci" / "run").read_text().splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        opened = re.search(r"<<-?\s*['\"]?(\w+)", line)
        if opened:
            heredoc = opened.group(1)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # a line of a quoted string that spans lines
            continue
        if words:
            commands.append(words)
    return commands


@pytest.mark.parametrize("command", [["ruff", "check", "."], ["ruff", "format", "--check", "."], [".ci/mypy"]])
def test_ci_runs_ruff_and_mypy(command: list[str]) -> None:
    assert command in ci_commands()


def test_ci_installs_the_extra_that_brings_ruff_and_mypy() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installs = [words for words in ci_commands() if words[:4] == ["python", "-m", "pip", "install"]]
    extras = {word.split("[")[1].rstrip("]") for words in installs for word in words if word.startswith(".[")}
    tools = {
        req.split("~")[0].split(">")[0].split("=")[0]
        for extra in extras
        for req in project["optional-dependencies"][extra]
    }

    assert {"ruff", "mypy"} <= tools
