"""``--json`` on usage errors: a script reading stdout gets one JSON document for every failure, exit 2 included."""

from __future__ import annotations

import json
import re

import kmq
import numpy as np
import pytest
from kmq.cli.main import main
from PIL import Image


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.arange(16 * 12 * 3, dtype=np.uint8).reshape(12, 16, 3)).save(tmp_path / "grad.png")
    (tmp_path / "good.kmq").write_bytes(kmq.encode(np.zeros((4, 4, 3), np.uint8), 2))
    return tmp_path


def usage_error(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    out, err = capsys.readouterr()
    return stop.value.code, out, err


JSON_USAGE_ERRORS = [
    # (command in the document, argv, what the error says)
    ("encode", ["encode", "grad.png", "--json", "-k", "0"], r"argument -k: K must be in 1\.\.256, got 0"),
    ("encode", ["encode", "--json", "grad.png", "--bogus"], r"unrecognized arguments: --bogus"),
    ("encode", ["encode", "grad.png", "--json", "-o", "x.kmq", "-O", "out"], r"-o and -O: choose one"),
    ("encode", ["encode", "grad.png", "--json", "-k", "auto"], r"-k auto needs --min-psnr"),
    ("decode", ["decode", "--json"], r"required: INPUT"),
    ("info", ["info", "--json"], r"required: file"),
    ("sweep", ["sweep", "grad.png", "--json", "-k", "300"], r"argument -k/--k: K must be in 1\.\.256"),
    ("compare", ["compare", "grad.png", "--json", "--width", "3"], r"argument --width: width must be in 16\.\.2048"),
    (None, ["frobnicate", "--json"], r"invalid choice: 'frobnicate'"),
    # --json before the command: the subcommand's parser sees only the words after it.
    ("info", ["--json", "info"], r"required: file"),
    ("info", ["--json", "info", "good.kmq"], r"unrecognized arguments: --json"),
]


@pytest.mark.parametrize(
    ("command", "argv", "error"), JSON_USAGE_ERRORS, ids=[" ".join(a) for _, a, _ in JSON_USAGE_ERRORS]
)
def test_a_usage_error_with_json_prints_the_failure_document_on_stdout(work, capsys, command, argv, error):
    code, out, err = usage_error(capsys, *argv)

    assert code == 2
    document = json.loads(out)  # exactly one document, nothing else on stdout
    assert set(document) == {"command", "error"}
    assert document["command"] == command
    assert re.search(error, document["error"]), document["error"]
    # stderr keeps argparse's usage and the one error line, as without --json.
    assert err.startswith("usage: kmq") and "Traceback" not in err
    assert err.splitlines()[-1].endswith(f"error: {document['error']}")


def test_a_usage_error_without_json_keeps_stdout_empty(work, capsys):
    code, out, err = usage_error(capsys, "encode", "grad.png", "-k", "0")

    assert code == 2 and out == "" and "argument -k" in err


def test_a_usage_error_after_a_json_command_line_keeps_the_next_one_plain(work, capsys):
    usage_error(capsys, "--json", "info")
    code, out, _ = usage_error(capsys, "info")

    assert code == 2 and out == ""


def test_json_as_a_file_name_after_double_dash_is_not_the_option(work, capsys):
    code, out, _ = usage_error(capsys, "encode", "-k", "0", "--", "--json")

    assert code == 2 and out == ""
