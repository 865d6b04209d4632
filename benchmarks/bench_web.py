"""Speed of the JavaScript decoder (web/kmq.js) beside kmq.decode, and of the viewer in Chromium (issue 14).

Usage (from the repository root):
    python benchmarks/bench_web.py [--repeat R] [--corpus DIR] [--no-browser]

The 12 MP photo in ``corpus/photos`` is quantized at K=8 and K=256 (kmq's defaults, untimed) and
written in coding 1 (ctx1) and coding 2 (mix), cached in ``benchmarks/.cache/web/``. Then, each the
median of ``--repeat`` runs, in this one process and its children:

- ``C``: :func:`kmq.decode` of the file's bytes, on ``os.cpu_count()`` threads (kmq's default);
- ``C 1 core``: the same with ``KMQ_THREADS=1``;
- ``JS``: ``web/kmq.js`` in Node (``benchmarks/web_decode.mjs``), which is one thread; its labels
  are checked against kmq's, so a fast wrong decoder cannot pass.

Targets: JS ctx1 at least 60 MP/s at K=8 and 25 MP/s at K=256; JS mix at least 1/3 of C on one core.
Then, unless ``--no-browser``: the viewer (``web/index.html``, opened from the file system) in
Debian's headless Chromium, given the file through its file picker; the time from the pick to the
first full frame drawn, as the page measures it (``document.body.dataset.lastFrameMs``), a fresh
page each run. Target: under 1.5 s for the 12 MP file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import kmq
import numpy as np
from kmq import container
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, LoadWatch, find_photo, machine_lines

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "web"
TARGET_MPS = {("ctx1", 8): 60.0, ("ctx1", 256): 25.0}
VIEWER_TARGET_S = 1.5


def make_files(photo: Path) -> list[Path]:
    """The four benchmark files, made once per photo and kmq version (encoding is not what is timed here)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = f"{photo.stem}-{kmq.__version__}"
    paths = []
    image = None
    for k in (8, 256):
        for coding in ("ctx1", "mix"):
            path = CACHE / f"{tag}-k{k}-{coding}.kmq"
            if not path.is_file():
                if image is None:
                    image = np.asarray(Image.open(photo).convert("RGB"))
                path.write_bytes(kmq.encode(image, k, coding=coding))
            paths.append(path)
    return paths


def c_times(data: bytes, repeat: int, threads: int | None) -> list[float]:
    saved = os.environ.get("KMQ_THREADS")
    if threads is not None:
        os.environ["KMQ_THREADS"] = str(threads)
    try:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            kmq.decode(data)
            times.append(time.perf_counter() - start)
        return times
    finally:
        if saved is None:
            os.environ.pop("KMQ_THREADS", None)
        else:
            os.environ["KMQ_THREADS"] = saved


def js_times(paths: list[Path], repeat: int) -> dict[str, dict]:
    out = subprocess.run(
        ["node", str(ROOT / "benchmarks" / "web_decode.mjs"), str(repeat), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {row["file"]: row for row in map(json.loads, out.splitlines())}


def viewer_times(path: Path, repeat: int) -> list[float]:
    """Pick-to-first-frame in the viewer, seconds, each run in a fresh page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    try:
        times = []
        for _ in range(repeat):
            driver.get((ROOT / "web" / "index.html").as_uri())
            driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(path))
            WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.lastFrameMs"))
            state = driver.execute_script("return document.querySelector('[data-state]')?.dataset.state")
            if state != "shown":
                raise RuntimeError(f"the viewer did not show {path.name}: state {state!r}")
            times.append(float(driver.execute_script("return document.body.dataset.lastFrameMs")) / 1000)
        return times
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--no-browser", action="store_true", help="skip the viewer timing")
    args = parser.parse_args(argv)
    photo = find_photo(args.corpus)
    if photo is None:
        print(f"no photo in {args.corpus / 'photos'}", file=sys.stderr)
        return 1
    if shutil.which("node") is None:
        print("node is missing: the JavaScript decoder cannot be timed", file=sys.stderr)
        return 1
    paths = make_files(photo)
    print("\n".join(machine_lines()))
    print(f"node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}")
    print(f"photo: {photo.name}; medians of {args.repeat} runs\n")
    watch = LoadWatch()
    js = js_times(paths, args.repeat)
    print(f"{'file':<12} {'MP':>5} {'C MP/s':>8} {'C 1 core':>9} {'JS MP/s':>8} {'JS/C1':>6}  target")
    for path in paths:
        data = path.read_bytes()
        header, _, labels = container.loads(data)
        mp = header.pixels / 1e6
        coding = container.CODINGS[header.coding]
        c = statistics.median(c_times(data, args.repeat, None))
        c1 = statistics.median(c_times(data, args.repeat, 1))
        row = js[str(path)]
        if row["labels_sha256"] != hashlib.sha256(labels.tobytes()).hexdigest():
            raise SystemExit(f"{path.name}: web/kmq.js decoded other labels than kmq.decode")
        j = statistics.median(row["seconds"])
        if (coding, header.k) in TARGET_MPS:
            goal = TARGET_MPS[coding, header.k]
            verdict = f">= {goal:.0f} MP/s: {'met' if mp / j >= goal else 'MISSED'}"
        else:
            verdict = f">= 1/3 of C 1 core: {'met' if c1 / j >= 1 / 3 else 'MISSED'}"
        name = f"{coding} K={header.k}"
        print(f"{name:<12} {mp:5.1f} {mp / c:8.1f} {mp / c1:9.1f} {mp / j:8.1f} {c1 / j:6.2f}  {verdict}")
    print(watch.report())
    if not args.no_browser:
        print(f"\nviewer (web/index.html from file://, headless {Path(shutil.which('chromium') or 'chromium').name}):")
        for path in paths:
            if "-k8-" not in path.name:
                continue
            times = viewer_times(path, max(3, args.repeat // 2))
            s = statistics.median(times)
            verdict = "met" if s < VIEWER_TARGET_S else "MISSED"
            name = path.name.split("-k")[1][:-4]
            print(f"  {name:<10} pick to first frame {s:5.2f} s (< {VIEWER_TARGET_S} s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
