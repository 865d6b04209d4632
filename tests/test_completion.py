"""Specification of ``kmq completion``: scripts made from the parser, checked in a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kmq.cli import completion
from kmq.cli.main import build_parser, main


def complete(script: str, *words: str) -> list[str]:
    """What bash offers after ``kmq WORDS`` (the last word is the one being completed)."""
    line = " ".join(f"'{w}'" for w in ("kmq", *words))
    program = f'{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _kmq; printf "%s\\n" "${{COMPREPLY[@]}}"'
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True, cwd="/")
    return sorted(filter(None, result.stdout.splitlines()))


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def bash_script() -> str:
    return completion.script(build_parser(), "bash")


@needs_bash
def test_bash_completes_the_commands(bash_script):
    assert complete(bash_script, "") == sorted(
        [
            "encode",
            "decode",
            "info",
            "compare",
            "sweep",
            "demo",
            "view",
            "gallery",
            "completion",
            "--help",
            "-h",
            "--version",
        ]
    )
    assert complete(bash_script, "de") == ["decode", "demo"]


@needs_bash
def test_bash_completes_each_commands_own_options(bash_script):
    assert complete(bash_script, "encode", "--sc") == ["--scheduler"]
    assert complete(bash_script, "decode", "--su") == ["--suffix"]
    assert "--dither" not in complete(bash_script, "decode", "--")


@needs_bash
def test_bash_completes_the_values_of_options_with_choices(bash_script):
    assert complete(bash_script, "encode", "x.png", "--space", "") == ["oklab", "perceptual", "rgb"]
    assert complete(bash_script, "completion", "") == ["bash", "fish", "zsh"]
    assert complete(bash_script, "encode", "x.png", "--coding", "") == ["ctx1", "mix", "raw"]


@needs_bash
def test_bash_completes_file_names_with_spaces_whole(bash_script, tmp_path):
    (tmp_path / "my photo.png").write_bytes(b"")
    line = f"kmq encode '{tmp_path}/my'"
    program = f'{bash_script}\nCOMP_WORDS=({line}); COMP_CWORD=2; _kmq; printf "%s\\n" "${{COMPREPLY[@]}}"'

    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)

    assert result.stdout.splitlines() == [f"{tmp_path}/my photo.png"]


@needs_bash
def test_bash_offers_each_command_exactly_its_own_options(bash_script):
    for name, sub in completion._commands(build_parser()).items():
        options = sorted(option for action in sub._actions for option in action.option_strings)
        assert complete(bash_script, name, "-") == options, name


def test_fish_lists_each_option_under_its_own_command():
    text = completion.script(build_parser(), "fish")
    for name, sub in completion._commands(build_parser()).items():
        lines = [line for line in text.splitlines() if f"'__fish_seen_subcommand_from {name}'" in line]
        for action in sub._actions:
            for option in action.option_strings:
                flag = f" -l {option[2:]}" if option.startswith("--") else f" -s {option[1:]}"
                assert any(flag + " " in line for line in lines), (name, option)


def test_zsh_uses_bashcompinit_and_the_command_prints_the_script(capsys):
    assert main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -o filenames -o bashdefault -F _kmq kmq" in out
