"""``kmq view`` and ``kmq gallery``: what they serve and write, and what they refuse.

The pages themselves are tested in a real browser by test_browser.py; here only the Python side:
the site's files, the server's answers, and the output rules every kmq command follows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import kmq
import numpy as np
import pytest
from helpers import run
from kmq.cli import web
from kmq.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def _image(seed: int, h: int = 12, w: int = 17, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


@pytest.fixture
def kmq_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    paths = [folder / "a.kmq", folder / "b c.kmq", folder / "sub" / "d.kmq"]
    for n, path in enumerate(paths):
        path.write_bytes(kmq.encode(_image(n, channels=3 + n % 2), 4 + n))
    return paths


def test_the_web_package_is_versioned_with_kmq():
    package = json.loads((ROOT / "web" / "package.json").read_text())
    assert package["version"] == kmq.__version__


def test_every_asset_the_pages_need_is_installed_with_kmq():
    from importlib import resources

    declared = (ROOT / "pyproject.toml").read_text().split('"kmq.web" = [')[1].split("]")[0]
    listed = set(re.findall(r'"([\w.-]+)"', declared))
    assert set(web.ASSETS) <= listed
    for name in web.ASSETS:
        assert (resources.files("kmq.web") / name).is_file(), name


def test_every_module_the_pages_import_is_an_asset():
    sources = {name: (ROOT / "web" / name).read_text() for name in web.ASSETS if name.endswith(".js")}
    imported = {m for text in sources.values() for m in re.findall(r"""(?:from|URL\()\s*'\./([\w.-]+\.js)'""", text)}
    assert imported, "no imports found: has the import syntax changed?"
    assert imported <= set(web.ASSETS)


def test_the_npm_package_holds_every_module_its_modules_import():
    shipped = json.loads((ROOT / "web" / "package.json").read_text())["files"]
    for name in (n for n in shipped if n.endswith(".js")):
        text = (ROOT / "web" / name).read_text()
        assert set(re.findall(r"""(?:from|URL\()\s*'\./([\w.-]+\.js)'""", text)) <= set(shipped), name


def test_gallery_writes_the_files_the_viewer_and_an_index(kmq_files, tmp_path, capsys):
    site = tmp_path / "site"
    assert run(capsys, "gallery", str(kmq_files[0].parent), "-r", "-o", str(site)).code == 0
    assert sorted(p.name for p in site.iterdir()) == sorted(
        [".kmq-gallery", "index.html", "images", *web.ASSETS.values()]
    )
    for path in kmq_files:
        copy = site / "images" / path.relative_to(kmq_files[0].parent)
        assert copy.read_bytes() == path.read_bytes()
    index = (site / "index.html").read_text()
    assert 'src="kmq-image.js"' in index
    assert index.count("<kmq-image ") == 3
    assert 'data-src="images/b%20c.kmq"' in index
    assert "17 x 12, K=4" in index
    assert (site / "viewer.html").read_bytes() == (ROOT / "web" / "index.html").read_bytes()


def test_gallery_reports_a_bad_file_and_publishes_the_rest(kmq_files, tmp_path, capsys):
    bad = kmq_files[0].parent / "bad.kmq"
    bad.write_bytes(kmq_files[0].read_bytes()[:-3])
    result = run(capsys, "gallery", str(kmq_files[0].parent), "-o", str(tmp_path / "site"))
    assert result.code == 1
    assert re.search(r"kmq: error: skipped: .*bad\.kmq", result.err)
    assert sorted(p.name for p in (tmp_path / "site" / "images").iterdir()) == ["a.kmq", "b c.kmq"]


def test_gallery_keeps_two_files_of_one_name_apart(kmq_files, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.kmq").write_bytes(kmq_files[1].read_bytes())
    assert run(capsys, "gallery", str(kmq_files[0]), str(other / "a.kmq"), "-o", str(tmp_path / "s")).code == 0
    assert (tmp_path / "s" / "images" / "a.kmq").read_bytes() == kmq_files[0].read_bytes()
    assert (tmp_path / "s" / "images" / "a-2.kmq").read_bytes() == kmq_files[1].read_bytes()


def test_gallery_never_replaces_a_folder_it_did_not_write(kmq_files, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "mine.txt").write_text("keep me")
    result = run(capsys, "gallery", str(kmq_files[0]), "-o", str(site), "--force")
    assert result.code == 1
    assert "kmq did not write as a gallery" in result.err
    assert [p.name for p in site.iterdir()] == ["mine.txt"]


def test_gallery_replaces_its_own_gallery_only_with_force(kmq_files, tmp_path, capsys):
    site = tmp_path / "site"
    assert run(capsys, "gallery", str(kmq_files[0]), "-o", str(site)).code == 0
    again = run(capsys, "gallery", str(kmq_files[1]), "-o", str(site))
    assert again.code == 1
    assert "use --force" in again.err
    assert run(capsys, "gallery", str(kmq_files[1]), "-o", str(site), "--force").code == 0
    assert [p.name for p in (site / "images").iterdir()] == ["b c.kmq"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_gallery_fills_an_empty_folder(kmq_files, tmp_path, capsys):
    (tmp_path / "site").mkdir()
    assert run(capsys, "gallery", str(kmq_files[0]), "-o", str(tmp_path / "site")).code == 0
    assert (tmp_path / "site" / "images" / "a.kmq").is_file()


def test_gallery_into_a_file_is_refused(kmq_files, tmp_path, capsys):
    target = tmp_path / "site"
    target.write_text("a file")
    result = run(capsys, "gallery", str(kmq_files[0]), "-o", str(target))
    assert result.code == 1
    assert result.err.strip() == f"kmq: error: {target}: exists and is not a folder; choose another -o"
    assert target.read_text() == "a file"


def test_gallery_with_nothing_readable_writes_nothing(tmp_path, capsys):
    (tmp_path / "x.kmq").write_bytes(b"not a kmq file")
    result = run(capsys, "gallery", str(tmp_path / "x.kmq"), "-o", str(tmp_path / "site"))
    assert result.code == 1
    assert result.err.splitlines()[-1] == "kmq: error: no gallery written: no readable kmq files among the inputs"
    assert not (tmp_path / "site").exists()


def test_a_gallery_that_fails_half_way_leaves_no_trace(kmq_files, tmp_path, monkeypatch, capsys):
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(web.shutil, "copyfile", full_disk)
    assert main(["gallery", str(kmq_files[0]), "-o", str(tmp_path / "site")]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.fixture
def served(kmq_files):
    """A running ``kmq view`` of the test files, and the address it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kmq", "view", *map(str, kmq_files), "--no-open", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        document = json.loads("".join(iter(process.stdout.readline, "}\n")) + "}")
        yield process, document
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(10)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_view_serves_the_files_the_viewer_and_the_decoder_on_loopback(served, kmq_files):
    _process, document = served
    url = document["url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    status, kind, body = _get(url)
    assert (status, kind) == (200, "text/html; charset=utf-8")
    sources = re.findall(r'data-src="([^"]+)"', body.decode())
    assert len(sources) == 3
    for source, path in zip(sources, kmq_files, strict=True):
        assert _get(url + source)[2] == path.read_bytes()
    assert _get(url + "kmq.js")[1].startswith("text/javascript")
    assert _get(url + "viewer.html")[2] == (ROOT / "web" / "index.html").read_bytes()


OUTSIDE = ["../" * 6 + "etc/passwd", "files/0/../../pyproject.toml", "files/9/a.kmq", "in/a.kmq", "%2e%2e/README.md"]


@pytest.mark.parametrize("path", OUTSIDE)
def test_view_serves_nothing_but_its_own_files(served, path):
    assert _get(served[1]["url"] + path)[0] == 404


def test_view_stops_cleanly_on_ctrl_c(served):
    process, _ = served
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    assert process.stderr.read() == ""


def test_view_of_a_single_file_opens_it_in_the_viewer(kmq_files):
    process = subprocess.Popen(
        [sys.executable, "-m", "kmq", "view", str(kmq_files[1]), "--no-open"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
    assert re.fullmatch(
        r"serving 1 kmq file at http://127\.0\.0\.1:\d+/viewer\.html\?src=files/0/b%20c\.kmq "
        r"\(open it in a browser; Ctrl-C stops\)\n",
        line,
    )


def test_view_with_nothing_to_show_is_one_error(tmp_path, capsys):
    result = run(capsys, "view", str(tmp_path / "missing.kmq"), "--no-open")
    assert result.code == 1
    assert result.err.splitlines() == [
        f"kmq: error: {tmp_path / 'missing.kmq'}: no such file or folder",
        "kmq: error: nothing to show: no readable kmq files among the inputs",
    ]


def test_view_refuses_a_taken_port_in_one_line(kmq_files, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(capsys, "view", str(kmq_files[0]), "--no-open", "--port", str(port))
    assert result.code == 1
    assert result.err.strip() == f"kmq: error: cannot listen on 127.0.0.1 port {port}: Address already in use"


def test_view_opens_no_text_browser_in_the_terminal(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert web._has_browser() is False
    assert os.environ.get("DISPLAY") is None
