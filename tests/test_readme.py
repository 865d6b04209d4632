"""The README's examples run as written: its Python section, and the commands of its first lines."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(heading: str) -> str:
    """The first ```python block after a Markdown heading."""
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def test_the_using_kmq_from_python_example_runs_and_runs_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg")
    example = compile(python_block("## Using kmq from Python"), str(README), "exec")

    for run in ("first", "second"):  # a reader runs it again: the files of the first run are there then
        namespace: dict[str, object] = {}
        exec(example, namespace)

        assert (tmp_path / "photo.kmq").is_file(), run
        rgb, restored = namespace["rgb"], namespace["restored"]
        assert np.array_equal(np.asarray(rgb), restored), run  # Pillow's view equals kmq.read of the same file


def test_the_readme_shows_one_of_each_picture():
    text = README.read_text()
    for picture in ("docs/compare.png", "docs/compare-dither.png", "docs/sweep.png", "docs/palette.png"):
        assert f"]({picture})" in text
        with Image.open(README.parent / picture) as image:
            assert image.format == "PNG" and min(image.size) > 10


def test_the_first_lines_give_install_run_and_test_commands_each_explained():
    lines = README.read_text().split("```")[1].strip().splitlines()

    commands = [line.split("#")[0].strip() for line in lines]
    assert commands == ['pip install -e ".[test]"', "kmq demo", "python -m pytest"]
    assert all(line.split("#")[1].strip() for line in lines)
