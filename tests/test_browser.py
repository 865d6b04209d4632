"""Real-browser tests of the web side: ``<kmq-image>`` (web/kmq-image.js) and the viewer (web/index.html).

Selenium drives Debian's headless Chromium (``/usr/bin/chromium`` through ``/usr/bin/chromedriver``,
or ``$KMQ_CHROMIUM`` and ``$KMQ_CHROMEDRIVER``), with explicit paths so that selenium never tries
to download a browser or a driver. The module is skipped, saying what is missing, when either or
selenium is absent.

Pixels are compared with ``kmq.decode`` (Python), as follows:

- EXACTLY, for every file (RGB and RGBA): the element's ``imageData()``, the decoded RGBA before any
  canvas (not premultiplied); an RGB file is compared as RGBA with alpha 255.
- EXACTLY, for opaque images: the element's canvas read back with ``getImageData``.
- For RGBA images the canvas cannot be exact: a 2D canvas stores premultiplied alpha, so a
  semi-transparent colour comes back rounded. There alpha is compared exactly everywhere, RGB
  exactly where alpha is 255, within the premultiplication rounding (``255 / (2 alpha) + 1``)
  where 0 < alpha < 255, and not at all where alpha is 0 (the colour of a fully transparent
  pixel does not survive premultiplication; the canvas gives 0, 0, 0, 0).
- EXACTLY, RGBA included: the viewer's "Save PNG" file, decoded by Pillow. It is an indexed PNG
  written from the labels and the palette, not from the canvas.

Set ``KMQ_VIEWER_SHOTS=/some/dir`` to also save screenshots of the viewer there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import os
import shutil
import struct
import threading
import time
from pathlib import Path

import kmq
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
CHROMIUM = os.environ.get("KMQ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KMQ_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = os.environ.get("KMQ_VIEWER_SHOTS")


def _missing() -> list[str]:
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the Python package selenium (pip install selenium)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium, or set KMQ_CHROMIUM)")
    if not os.access(CHROMEDRIVER, os.X_OK):
        missing.append(f"ChromeDriver at {CHROMEDRIVER} (apt-get install chromium-driver, or set KMQ_CHROMEDRIVER)")
    return missing


if _missing():
    pytest.skip(
        "BROWSER TESTS SKIPPED, missing: "
        + "; ".join(_missing())
        + ". Install: apt-get install chromium chromium-driver && pip install selenium",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

# ---------------------------------------------------------------- test images


def synthetic(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    """Gradients, blocks and noise, so that every coding meets flat areas and edges; for RGBA an alpha
    of 0, 255 and many values between."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, channels), np.uint8)
    img[..., 0] = x * 255 // max(w - 1, 1)
    img[..., 1] = y * 255 // max(h - 1, 1)
    img[..., 2] = ((x // 13 + y // 11) % 3) * 110
    img[..., :3] = np.clip(img[..., :3] + rng.integers(-12, 13, (h, w, 3)), 0, 255).astype(np.uint8)
    if channels == 4:
        band = (x * 4 // w) % 4
        img[..., 3] = np.choose(band, [np.zeros_like(x), 255 + 0 * x, (y * 255 // max(h - 1, 1)), 64 + 0 * x])
    return img


#: name -> (height, width, channels, k, coding). The "big" ones have over 256K pixels, so they decode
#: in workers; big_mix has over 2.1 MP, so two stripes, decoded in parallel.
FILES = {
    "k1_raw": (9, 17, 3, 1, "raw"),
    "k5_raw": (30, 41, 3, 5, "raw"),
    "k8_ctx1": (60, 80, 3, 8, "ctx1"),
    "k256_mix": (90, 100, 3, 256, "mix"),
    "rgba_k16_mix": (50, 70, 4, 16, "mix"),
    "rgba_k3_ctx1": (33, 20, 4, 3, "ctx1"),
    "rgba_k64_raw": (40, 48, 4, 64, "raw"),
    "big_rgba_ctx1": (520, 600, 4, 12, "ctx1"),
    "big_mix": (1300, 1800, 3, 8, "mix"),
}


def header(data: bytes) -> dict:
    """The 20-byte header and the stripe count, read here independently of both decoders."""
    _magic, _version, coding, channels, bits, k, _reserved, width, height = struct.unpack(">4sBBBBHHII", data[:20])
    stripes = 0 if coding == 0 else struct.unpack(">H", data[20 + k * channels : 22 + k * channels])[0]
    return {
        "coding": coding,
        "channels": channels,
        "bits": bits,
        "k": k,
        "width": width,
        "height": height,
        "stripes": stripes,
    }


def expected_rgba(data: bytes) -> np.ndarray:
    img = kmq.decode(data)
    if img.shape[2] == 3:
        img = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    return img


# ---------------------------------------------------------------- fixtures


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder served over http on 127.0.0.1: the web modules, index.html and the test files."""
    root = tmp_path_factory.mktemp("site")
    for js in WEB.glob("*.js"):
        shutil.copy(js, root)
    shutil.copy(WEB / "index.html", root)
    files = {}
    for seed, (name, (h, w, c, k, coding)) in enumerate(FILES.items()):
        data = kmq.encode(synthetic(h, w, c, seed), k=k, coding=coding)
        assert header(data)["k"] == k, f"{name}: the quantizer found fewer than {k} colours"
        (root / f"{name}.kmq").write_bytes(data)
        files[name] = data
    good = files["k8_ctx1"]
    (root / "truncated.kmq").write_bytes(good[: len(good) - 7])
    (root / "not-kmq.kmq").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    flipped = bytearray(files["k5_raw"])
    flipped[len(flipped) // 2] ^= 0x10
    (root / "checksum.kmq").write_bytes(bytes(flipped))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"root": root, "url": f"http://127.0.0.1:{server.server_address[1]}/", "files": files}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,860", "--hide-scrollbars"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    d.set_script_timeout(30)
    try:
        yield d
    finally:
        d.quit()


# ---------------------------------------------------------------- in-page helpers

#: Reads element.imageData() (or a canvas) back: base64 for small images, SHA-256 for big ones.
READ_JS = """
const [how, sel, done] = arguments;
const el = document.querySelector(sel);
const canvasOf = (e) => e.shadowRoot.querySelector('canvas');
const img = how === 'canvas'
  ? (c => c.getContext('2d').getImageData(0, 0, c.width, c.height))(canvasOf(el))
  : el.imageData();
const u8 = new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength);
const out = { width: img.width, height: img.height };
(async () => {
  if (u8.length <= 400000) {
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    out.b64 = btoa(s);
  } else {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', u8));
    out.sha256 = [...digest].map(b => b.toString(16).padStart(2, '0')).join('');
  }
  done(out);
})().catch(e => done({ error: String(e) }));
"""

#: Fetches a URL in the page (e.g. a blob: link) and returns its bytes as base64.
FETCH_JS = """
const [url, done] = arguments;
fetch(url).then(r => r.arrayBuffer()).then(b => {
  const u8 = new Uint8Array(b);
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  done(btoa(s));
}, e => done('error: ' + e));
"""


def wait_for(d, script: str, timeout: float = 20.0, *args):
    """Polls a JavaScript expression (a function body returning a value) until it is truthy."""
    end = time.monotonic() + timeout
    while True:
        value = d.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.05)


def read_pixels(d, selector: str, how: str = "imageData") -> dict:
    return d.execute_async_script(READ_JS, how, selector)


def assert_pixels_equal(got: dict, want: np.ndarray, what: str) -> None:
    assert "error" not in got, got
    assert (got["height"], got["width"]) == want.shape[:2], what
    if "sha256" in got:
        assert got["sha256"] == hashlib.sha256(want.tobytes()).hexdigest(), f"{what}: pixels differ"
        return
    arr = np.frombuffer(base64.b64decode(got["b64"]), np.uint8).reshape(want.shape)
    bad = np.argwhere((arr != want).any(axis=2))
    if len(bad):
        first = tuple(int(v) for v in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} pixels differ, first at (y, x) = {first}: {arr[first]} != {want[first]}"
        )


def assert_premultiplied_close(got: dict, want: np.ndarray, what: str) -> None:
    """A canvas's read-back of an RGBA image: see the module docstring."""
    arr = np.frombuffer(base64.b64decode(got["b64"]), np.uint8).reshape(want.shape).astype(int)
    w = want.astype(int)
    a = w[..., 3]
    assert (arr[..., 3] == a).all(), f"{what}: alpha differs"
    opaque = a == 255
    assert (arr[opaque] == w[opaque]).all(), f"{what}: opaque pixels differ"
    part = (a > 0) & (a < 255)
    tolerance = 255 / (2 * np.maximum(a[part], 1)) + 1
    assert (np.abs(arr[part][:, :3] - w[part][:, :3]).max(axis=1) <= tolerance).all(), (
        f"{what}: semi-transparent pixels off"
    )


def shot(d, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


# ---------------------------------------------------------------- <kmq-image>

#: Records every load and error event, from before the elements are upgraded.
RECORD_JS = """<script>
window.events = [];
for (const el of document.querySelectorAll('kmq-image')) {
  for (const type of ['load', 'error']) {
    el.addEventListener(type, (e) => events.push({ id: el.id, type, detail: e.detail ?? null }));
  }
}
</script>"""


def write_page(site, name: str, body: str) -> str:
    html = (
        "<!doctype html><meta charset=utf-8><title>kmq-image test</title>"
        "<style>body { margin: 8px; font: 14px system-ui } kmq-image { margin: 2px }</style>"
        '<script type="module" src="kmq-image.js"></script>' + body + RECORD_JS
    )
    (site["root"] / name).write_text(html)
    return site["url"] + name


def test_every_element_loads_and_its_pixels_equal_kmq_decode(driver, site):
    body = "".join(f'<kmq-image id="{n}" src="{n}.kmq" alt="{n}"></kmq-image>' for n in FILES)
    driver.get(write_page(site, "all.html", body))
    wait_for(driver, "return events.length >= arguments[0] && events", 40, len(FILES))
    events = driver.execute_script("return events")
    assert sorted(e["id"] for e in events) == sorted(FILES)
    assert {e["type"] for e in events} == {"load"}, events
    cores = driver.execute_script("return Math.min(8, navigator.hardwareConcurrency || 2)")
    for name, data in site["files"].items():
        sel = f"#{name}"
        want = expected_rgba(data)
        info = driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return {w: e.naturalWidth, h: e.naturalHeight, complete: e.complete, header: e.header,"
            " palette: Array.from(e.palette), timing: e.timing,"
            " role: e.getAttribute('role'), label: e.getAttribute('aria-label')}",
            sel,
        )
        h = header(data)
        assert (info["w"], info["h"], info["complete"]) == (h["width"], h["height"], True)
        for key in ("coding", "channels", "bits", "k", "stripes"):
            assert info["header"][key] == h[key], (name, key)
        assert info["header"]["fileBytes"] == len(data)
        assert info["palette"] == list(data[20 : 20 + h["k"] * h["channels"]])
        assert (info["role"], info["label"]) == ("img", name)
        # big ones go through the worker pool, one worker per stripe up to one per core
        pixels = h["width"] * h["height"]
        assert info["timing"]["workers"] == (0 if pixels <= 262144 else min(h["stripes"] or 1, cores)), name
        assert_pixels_equal(read_pixels(driver, sel), want, f"{name} imageData()")
        if h["channels"] == 3 or (want[..., 3] == 255).all():
            assert_pixels_equal(read_pixels(driver, sel, "canvas"), want, f"{name} canvas")
        elif pixels <= 100000:
            assert_premultiplied_close(read_pixels(driver, sel, "canvas"), want, f"{name} canvas")


def test_bad_files_give_an_error_event_an_error_attribute_and_visible_alt_text(driver, site):
    cases = {
        "truncated": ("truncated.kmq", "TruncatedError"),
        "notkmq": ("not-kmq.kmq", "FormatError"),
        "crc": ("checksum.kmq", "ChecksumError"),
        "missing": ("no-such-file.kmq", "FetchError"),
    }
    body = "".join(f'<kmq-image id="{i}" src="{src}" alt="alt of {i}"></kmq-image>' for i, (src, _) in cases.items())
    driver.get(write_page(site, "errors.html", body))
    wait_for(driver, "return events.length >= arguments[0]", 20, len(cases))
    events = {e["id"]: e for e in driver.execute_script("return events")}
    for i, (_src, family) in cases.items():
        e = events[i]
        assert e["type"] == "error" and e["detail"]["name"] == family, e
        state = driver.execute_script(
            "const e = document.getElementById(arguments[0]); const alt = e.shadowRoot.querySelector('.alt');"
            "return {attr: e.getAttribute('error'), w: e.naturalWidth, complete: e.complete, error: e.error,"
            " shown: getComputedStyle(alt).display !== 'none' && alt.getBoundingClientRect().width > 0,"
            " text: alt.textContent}",
            i,
        )
        assert state["attr"].startswith(family + ": "), state
        assert state["error"]["name"] == family and state["w"] == 0 and state["complete"]
        assert state["shown"] and f"alt of {i}" in state["text"] and family in state["text"], state
    assert events["truncated"]["detail"]["rule"] and events["crc"]["detail"]["rule"] == "D7"


def test_sizing_follows_img_rules(driver, site):
    # k8_ctx1 is 80 x 60
    body = (
        '<div><kmq-image id="natural" src="k8_ctx1.kmq" alt="a"></kmq-image></div>'
        '<div><kmq-image id="wattr" src="k8_ctx1.kmq" width="160" alt="a"></kmq-image></div>'
        '<div><kmq-image id="hattr" src="k8_ctx1.kmq" height="30" alt="a"></kmq-image></div>'
        '<div><kmq-image id="both" src="k8_ctx1.kmq" width="50" height="50" alt="a"></kmq-image></div>'
        '<div><kmq-image id="cssw" src="k8_ctx1.kmq" width="10" style="width: 200px" alt="a"></kmq-image></div>'
        '<div><kmq-image id="cssh" src="k8_ctx1.kmq" style="height: 15px" alt="a"></kmq-image></div>'
    )
    # before any file arrives (here: none), width and height attributes give the box and its ratio
    body += (
        '<div style="width: 300px"><kmq-image id="nosrc" width="200" height="100" style="width: 100%; height: auto">'
        "</kmq-image></div>"
        '<div><kmq-image id="fit" src="k8_ctx1.kmq" style="width: 100px; height: 100px; object-fit: contain" alt="a">'
        "</kmq-image></div>"
    )
    driver.get(write_page(site, "sizes.html", body))
    wait_for(driver, "return events.length >= 7", 20)
    fit = "getComputedStyle(document.getElementById('fit').shadowRoot.querySelector('canvas')).objectFit"
    assert driver.execute_script(f"return {fit}") == "contain"
    rects = driver.execute_script(
        "const r = {}; for (const e of document.querySelectorAll('kmq-image')) {"
        " const b = e.getBoundingClientRect(); r[e.id] = [Math.round(b.width), Math.round(b.height)]; } return r"
    )
    assert rects == {
        "natural": [80, 60],
        "wattr": [160, 120],
        "hattr": [40, 30],
        "both": [50, 50],
        "cssw": [200, 150],
        "cssh": [20, 15],
        "nosrc": [300, 150],
        "fit": [100, 100],
    }


def test_changing_src_reloads(driver, site):
    driver.get(write_page(site, "change.html", '<kmq-image id="x" src="k8_ctx1.kmq" alt="x"></kmq-image>'))
    wait_for(driver, "return events.length >= 1", 20)
    driver.execute_script("document.getElementById('x').src = 'rgba_k3_ctx1.kmq'")
    wait_for(driver, "return events.length >= 2", 20)
    assert [e["type"] for e in driver.execute_script("return events")] == ["load", "load"]
    assert driver.execute_script(
        "const e = document.getElementById('x'); return [e.naturalWidth, e.naturalHeight]"
    ) == [20, 33]
    assert_pixels_equal(read_pixels(driver, "#x"), expected_rgba(site["files"]["rgba_k3_ctx1"]), "after src change")


# ---------------------------------------------------------------- the viewer


def open_in_viewer(d, paths: list[Path], timeout: float = 30.0) -> dict:
    seq = int(d.execute_script("return document.body.dataset.openSeq || 0"))
    d.find_element(By.ID, "pick").send_keys("\n".join(str(p) for p in paths))
    return wait_for(
        d, "const b = document.body.dataset; return b.shownSeq === arguments[0] && {...b}", timeout, str(seq + 1)
    )


def viewer_fields(d) -> dict:
    return d.execute_script(
        "const r = {}; for (const div of document.querySelectorAll('#fields [data-field]'))"
        " r[div.dataset.field] = div.querySelector('dd').textContent; return r"
    )


def saved_png(d) -> np.ndarray:
    """Clicks "Save PNG" and reads the file its link points to."""
    from PIL import Image

    d.find_element(By.ID, "save").click()
    href = wait_for(d, "const a = document.getElementById('save'); return a.dataset.ready && a.href", 20)
    assert href.startswith("blob:")
    data = base64.b64decode(d.execute_async_script(FETCH_JS, href))
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.mode == "P"
        return np.asarray(im.convert("RGBA"))


def test_viewer_from_file_url_shows_a_picked_file(driver, site):
    driver.get((WEB / "index.html").as_uri())
    assert driver.execute_script("return document.body.dataset.state") == "empty"
    shot(driver, "viewer-empty")
    path = site["root"] / "k256_mix.kmq"
    data = site["files"]["k256_mix"]
    state = open_in_viewer(driver, [path])
    assert state["state"] == "shown" and float(state["lastFrameMs"]) > 0
    h = header(data)
    fields = viewer_fields(driver)
    assert fields["width"] == f"{h['width']} px" and fields["height"] == f"{h['height']} px"
    assert fields["k"] == "256" and fields["bits"] == "8" and fields["coding"] == "mix (2)"
    assert fields["stripes"] == "1" and fields["channels"] == "3 (RGB)"
    assert fields["bpp"] == f"{len(data) * 8 / (h['width'] * h['height']):.3f}"
    assert driver.execute_script("return document.querySelectorAll('#palette .swatch').length") == 256
    want = expected_rgba(data)
    assert_pixels_equal(read_pixels(driver, "#stage kmq-image", "canvas"), want, "viewer canvas")
    assert driver.find_element(By.ID, "save").get_attribute("download") == "k256_mix.png"
    assert (saved_png(driver) == want).all()
    shot(driver, "viewer-fit")
    driver.find_element(By.ID, "actual").click()
    shot(driver, "viewer-actual")
    driver.find_element(By.ID, "fit").click()


def test_viewer_opens_several_files_and_saves_rgba_exactly(driver, site):
    driver.get((WEB / "index.html").as_uri())
    names = ["rgba_k16_mix", "k1_raw", "big_rgba_ctx1"]
    state = open_in_viewer(driver, [site["root"] / f"{n}.kmq" for n in names])
    assert state["state"] == "shown"
    assert driver.execute_script("return [...document.querySelectorAll('#files .file')].map(e => e.textContent)") == [
        f"{n}.kmq" for n in names
    ]
    assert driver.execute_script("return document.querySelectorAll('#palette .swatch').length") == 16
    assert (saved_png(driver) == expected_rgba(site["files"]["rgba_k16_mix"])).all()
    shot(driver, "viewer-rgba")
    # the third, from the list: decoded in a worker (a Blob worker, the page being file://)
    seq = int(driver.execute_script("return document.body.dataset.openSeq"))
    driver.find_elements(By.CSS_SELECTOR, "#files button")[2].click()
    state = wait_for(
        driver, "const b = document.body.dataset; return b.shownSeq === arguments[0] && {...b}", 30, str(seq + 1)
    )
    assert state["state"] == "shown" and state["workers"] == "1"  # one stripe: one worker
    assert_pixels_equal(
        read_pixels(driver, "#stage kmq-image"), expected_rgba(site["files"]["big_rgba_ctx1"]), "big rgba"
    )
    assert (saved_png(driver) == expected_rgba(site["files"]["big_rgba_ctx1"])).all()


def test_viewer_shows_errors(driver, site):
    driver.get((WEB / "index.html").as_uri())
    state = open_in_viewer(driver, [site["root"] / "not-kmq.kmq"])
    assert state["state"] == "error"
    text = driver.find_element(By.CSS_SELECTOR, "#stage .failure").text
    assert "not-kmq.kmq" in text and "FormatError: not a kmq file" in text and "D1" in text
    shot(driver, "viewer-error")
    state = open_in_viewer(driver, [site["root"] / "truncated.kmq"])
    assert (
        state["state"] == "error" and "TruncatedError" in driver.find_element(By.CSS_SELECTOR, "#stage .failure").text
    )


def test_viewer_over_http_opens_src_parameters(driver, site):
    driver.get(site["url"] + "index.html?src=big_mix.kmq&src=k8_ctx1.kmq")
    state = wait_for(driver, "const b = document.body.dataset; return b.shownSeq === '1' && {...b}", 30)
    cores = driver.execute_script("return Math.min(8, navigator.hardwareConcurrency || 2)")
    assert state["state"] == "shown" and state["workers"] == str(min(2, cores))  # two stripes in parallel
    assert driver.execute_script("return [...document.querySelectorAll('#files .file')].map(e => e.textContent)") == [
        "big_mix.kmq",
        "k8_ctx1.kmq",
    ]
    assert viewer_fields(driver)["stripes"] == "2"
    assert_pixels_equal(
        read_pixels(driver, "#stage kmq-image", "canvas"), expected_rgba(site["files"]["big_mix"]), "big_mix canvas"
    )
    shot(driver, "viewer-http-big")
    driver.find_elements(By.CSS_SELECTOR, "#files button")[1].click()
    wait_for(driver, "const b = document.body.dataset; return b.shownSeq === '2' && b.state === 'shown'", 20)
    assert viewer_fields(driver)["width"] == "80 px"
    assert (saved_png(driver) == expected_rgba(site["files"]["k8_ctx1"])).all()


def test_viewer_fits_a_narrow_window_in_dark_mode(driver, site):
    driver.get((WEB / "index.html").as_uri())
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    driver.set_window_size(400, 800)
    try:
        open_in_viewer(driver, [site["root"] / "rgba_k64_raw.kmq"])
        wait_for(driver, "return innerWidth < 500")
        shot(driver, "viewer-narrow-dark")
        assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
        rect = driver.execute_script(
            "const r = document.querySelector('#stage kmq-image').getBoundingClientRect(); return [r.left, r.right]"
        )
        assert rect[0] >= 0 and rect[1] <= driver.execute_script("return innerWidth")
    finally:
        driver.set_window_size(1280, 860)
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_decode_method_waits_for_a_src_set_just_before(driver, site):
    driver.get(write_page(site, "method.html", ""))
    result = driver.execute_async_script(
        "const done = arguments[0];"
        "customElements.whenDefined('kmq-image').then(async () => {"
        " const el = document.createElement('kmq-image'); document.body.append(el);"
        " el.src = 'k5_raw.kmq'; await el.decode(); const ok = el.naturalWidth;"
        " el.src = 'truncated.kmq'; const err = await el.decode().then(() => 'resolved', (e) => e.name);"
        " done([ok, err]); })"
    )
    assert result == [41, "TruncatedError"]


def test_a_worker_that_cannot_start_falls_back_to_the_main_thread(driver, site):
    body = (
        '<script type="module">import { setWorkerFactory } from "./kmq-decode.js";'
        'setWorkerFactory(() => new Worker("no-such-worker.js", { type: "module" }));</script>'
        '<kmq-image id="big" src="big_rgba_ctx1.kmq" alt="big"></kmq-image>'
    )
    driver.get(write_page(site, "noworker.html", body))
    wait_for(driver, "return events.length >= 1", 30)
    assert driver.execute_script("return events")[0]["type"] == "load"
    assert driver.execute_script("return document.getElementById('big').timing.workers") == 0
    assert_pixels_equal(
        read_pixels(driver, "#big"), expected_rgba(site["files"]["big_rgba_ctx1"]), "main-thread fallback"
    )
