"""``kmq view`` and ``kmq gallery``: kmq files in a web browser, through the JavaScript decoder in ``web/``.

``view`` serves the viewer, the decoder and the named files on 127.0.0.1 and nothing else: a file is
reachable only by the number it was given at the start, so no path from a request reaches the disk.
``gallery`` writes the same pages and the files into a static folder that any web server can host,
built beside the target and moved into place whole, so that a failed run leaves no half-written site.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import html
import http.server
import json
import os
import shutil
import sys
import threading
import urllib.parse
import webbrowser
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import kmq
from kmq import batch, container, files
from kmq.errors import KmqError

from .report import CommandError, Report

__all__ = ["ASSETS", "Entry", "gallery_page", "cmd_view", "cmd_gallery", "GALLERY_MARK"]

#: The files of ``web/`` a page needs, as the package installs them (``kmq.web``), and the name each is
#: published under: the viewer is ``web/index.html`` in the repository and ``viewer.html`` on a site,
#: where ``index.html`` is the gallery.
ASSETS = {
    "index.html": "viewer.html",
    "kmq.js": "kmq.js",
    "mix.js": "mix.js",
    "kmq-image.js": "kmq-image.js",
    "kmq-decode.js": "kmq-decode.js",
    "kmq-png.js": "kmq-png.js",
    "kmq-worker.js": "kmq-worker.js",
}

#: The file that marks a folder as a gallery kmq wrote, so that ``--force`` replaces only such a folder.
GALLERY_MARK = ".kmq-gallery"

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".kmq": "application/x-kmq"}


@dataclass(frozen=True)
class Entry:
    """One kmq file on a page: where it is, where the page finds it, and what its header says."""

    path: Path
    url: str  # relative to the page, already %-quoted
    name: str
    info: dict[str, Any]


def _asset(name: str) -> bytes:
    """The bytes of one file of ``web/``; a broken install says which file is missing."""
    try:
        return (resources.files("kmq.web") / name).read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        raise CommandError(f"the web viewer's {name} is missing from this kmq install ({exc}); reinstall kmq") from None


def _describe(path: Path, max_pixels: int | None, full: bool) -> dict[str, Any]:
    """The header fields a page shows; ``full`` also decodes the file, so that a gallery never publishes a bad one."""
    if full:
        data, header, _, _ = files.read_file(path, max_pixels=max_pixels)
    else:
        data = files.read_bytes(path, max_pixels=max_pixels)
        header = container.Header.unpack(data, max_pixels)
    return {
        "width": header.width,
        "height": header.height,
        "k": header.k,
        "coding": container.CODINGS[header.coding],
        "bytes": len(data),
        "bits_per_pixel": header.file_bits_per_pixel(len(data)),
    }


def _collect(
    args: argparse.Namespace, report: Report, full: bool
) -> tuple[list[tuple[Path, PurePosixPath, dict[str, Any]]], int]:
    """The files named on the command line that are kmq files, and how many were not (each reported in a line)."""
    found, problems = batch.find_inputs(args.inputs, recursive=args.recursive, suffixes=(".kmq",))
    failed = 0
    for _, line in problems:
        report.error(line)
        failed += 1
    good = []
    for path, relative in found:
        if files.is_stdio(path):
            report.error("-: standard input cannot be shown in a browser; name a file")
            failed += 1
            continue
        try:
            good.append((path, PurePosixPath(relative.as_posix()), _describe(path, args.max_pixels, full)))
        except (KmqError, OSError) as exc:
            message = files.describe_os_error(exc, path) if isinstance(exc, OSError) else str(exc)
            report.error(f"skipped: {message}")
            failed += 1
    return good, failed


def _human(size: int) -> str:
    """A file size as a caption says it: bytes below 1 KB, else KB or MB with one decimal."""
    if size < 1000:
        return f"{size:,} bytes"
    return f"{size / 1000:.1f} KB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"


def gallery_page(entries: Sequence[Entry], title: str) -> str:
    """The index page of a gallery: a card per file, each drawn by ``<kmq-image>`` and linked to the viewer.

    Parameters
    ----------
    entries : sequence of Entry
        The files, in the order shown.
    title : str
        The page's title.

    Returns
    -------
    str
        A complete HTML document that loads ``kmq-image.js`` from its own folder.
    """
    cards = []
    for e in entries:
        i = e.info
        caption = (
            f"{i['width']} x {i['height']}, K={i['k']}, {i['coding']}, {i['bits_per_pixel']:.3f} bits/pixel, "
            f"{_human(i['bytes'])}"
        )
        cards.append(
            f'<li><a href="viewer.html?src={html.escape(e.url)}">'
            f'<kmq-image data-src="{html.escape(e.url)}" alt="{html.escape(e.name)}" '
            f'width="{i["width"]}" height="{i["height"]}"></kmq-image></a>'
            f'<p><a href="{html.escape(e.url)}" download>{html.escape(e.name)}</a><br>{html.escape(caption)}</p></li>'
        )
    everything = "&".join(f"src={html.escape(e.url)}" for e in entries)
    return _GALLERY.format(
        title=html.escape(title),
        count=f"{len(entries)} kmq file{'s' if len(entries) != 1 else ''}",
        everything=everything,
        cards="\n".join(cards),
        version=html.escape(kmq.__version__),
    )


# Thumbnails are decoded only once they come near the screen: a gallery of large photos
# would otherwise decode every one of them before the first is seen.
_GALLERY = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  :root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
  body {{ margin: 1.5rem; }}
  h1 {{ font-size: 1.3rem; margin: 0 0 .3rem; }}
  ul {{ list-style: none; padding: 0; display: grid; gap: 1rem;
       grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); }}
  li {{ border: 1px solid color-mix(in srgb, currentColor 20%, transparent); border-radius: 6px; padding: .5rem; }}
  kmq-image {{ display: block; width: 100%; height: auto; max-height: 240px; object-fit: contain; }}
  p {{ font-size: .85rem; margin: .4rem 0 0; overflow-wrap: anywhere; }}
  #file {{ display: none; background: #fd4; color: #000; padding: .5rem; }}
</style>
<script type="module" src="kmq-image.js"></script>
</head>
<body>
<h1>{title}</h1>
<p>{count}, shown by kmq's JavaScript decoder; a picture opens the viewer
(<a href="viewer.html?{everything}">all in the viewer</a>). Made by kmq {version}.</p>
<p id="file">This page was opened from the file system, where browsers do not run the decoder's
modules: serve the folder (for example <code>python3 -m http.server</code> in it), or open
<a href="viewer.html">viewer.html</a> and pick the files.</p>
<ul>
{cards}
</ul>
<script>
  if (location.protocol === "file:") document.getElementById("file").style.display = "block";
  const show = (el) => el.setAttribute("src", el.dataset.src);
  const images = document.querySelectorAll("kmq-image[data-src]");
  if ("IntersectionObserver" in window) {{
    const seen = new IntersectionObserver((items) => {{
      for (const item of items) if (item.isIntersecting) {{ show(item.target); seen.unobserve(item.target); }}
    }}, {{ rootMargin: "400px" }});
    images.forEach((el) => seen.observe(el));
  }} else images.forEach(show);
</script>
</body>
</html>
"""


# ---------------------------------------------------------------- kmq view


class _Site:
    """What ``kmq view`` serves: URL path -> (bytes, or a file read at each request, and its content type)."""

    def __init__(self, entries: Sequence[Entry], title: str) -> None:
        self.routes: dict[str, tuple[Path | bytes, str]] = {
            f"/{public}": (_asset(name), _TYPES[PurePosixPath(public).suffix]) for name, public in ASSETS.items()
        }
        self.routes["/"] = (gallery_page(entries, title).encode(), _TYPES[".html"])
        for e in entries:
            self.routes["/" + urllib.parse.unquote(e.url)] = (e.path, _TYPES[".kmq"])

    def get(self, path: str) -> tuple[bytes, str] | None:
        """The body and content type for a request path, or None for anything that is not on the site."""
        found = self.routes.get(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        if found is None:
            return None
        target, kind = found
        return (target if isinstance(target, bytes) else target.read_bytes()), kind


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = f"kmq-view/{kmq.__version__}"
    site: _Site  # set on a subclass per server

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        try:
            found = self.site.get(self.path)
        except OSError as exc:
            self.send_error(500, files.describe_os_error(exc))
            return
        if found is None:
            self.send_error(404, "not one of the files kmq view was given")
            return
        data, kind = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        # The files may be re-encoded while the viewer is open: a reload must show the new one.
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the address and errors only


def _has_browser() -> bool:
    """Whether a graphical browser can be opened; a text browser would take over the terminal the server prints to."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return not isinstance(webbrowser.get(), webbrowser.GenericBrowser)
    except webbrowser.Error:
        return False


def cmd_view(args: argparse.Namespace) -> int:
    """``kmq view``: serve the files and the viewer on 127.0.0.1 until Ctrl-C."""
    report = Report(args)
    found, failed = _collect(args, report, full=False)
    if not found:
        raise CommandError("nothing to show: no readable kmq files among the inputs")
    # Numbered folders: two files of one name from different folders stay apart, and no request path
    # is ever joined to a folder on disk.
    entries = [
        Entry(path, f"files/{n}/{urllib.parse.quote(relative.name)}", relative.name, info)
        for n, (path, relative, info) in enumerate(found)
    ]
    title = entries[0].name if len(entries) == 1 else f"kmq view: {len(entries)} files"
    handler = type("Handler", (_Handler,), {"site": _Site(entries, title)})
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as exc:
        raise CommandError(f"cannot listen on 127.0.0.1 port {args.port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    address = f"http://127.0.0.1:{server.server_address[1]}/"
    page = address + (f"viewer.html?src={entries[0].url}" if len(entries) == 1 else "")
    thread = threading.Thread(target=server.serve_forever, name="kmq-view", daemon=True)
    thread.start()
    try:
        opened = args.open and _has_browser() and webbrowser.open(page)
        how = "opened in your browser" if opened else "open it in a browser"
        plural = "s" if len(entries) != 1 else ""
        report.line(f"serving {len(entries)} kmq file{plural} at {page} ({how}; Ctrl-C stops)")
        if args.json:
            report.emit_json({"url": page, "files": [str(e.path) for e in entries], "skipped": failed})
        sys.stdout.flush()
        thread.join()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a server is stopped, not a failure
    finally:
        server.shutdown()
        server.server_close()
    return 1 if failed else 0


# ---------------------------------------------------------------- kmq gallery


def _check_site(site: Path, force: bool) -> bool:
    """Whether ``site`` is to be replaced (True) or made (False); refuses any folder kmq did not write."""
    if not os.path.lexists(site):
        return False
    if site.is_symlink() or not site.is_dir():
        raise CommandError(f"{site}: exists and is not a folder; choose another -o")
    with os.scandir(site) as listing:
        empty = next(listing, None) is None
    if empty:
        return True
    if not (site / GALLERY_MARK).is_file():
        raise CommandError(f"{site}: a folder kmq did not write as a gallery; kmq never replaces it, choose another -o")
    if not force:
        raise CommandError(f"{site}: a gallery exists there (use --force to replace it)")
    return True


@contextlib.contextmanager
def _building(site: Path) -> Iterator[Path]:
    """A fresh folder beside ``site`` to build in, removed unless the caller moved it into place."""
    parent = site.parent if str(site.parent) else Path(".")
    if not parent.is_dir():
        raise CommandError(f"{site}: the folder {str(parent)!r} it would go in does not exist")
    files.remove_stale_parts(parent)
    tmp = parent / f".kmq-{os.urandom(6).hex()}.part"
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _place_site(tmp: Path, site: Path, replace: bool) -> None:
    """Move the finished folder to ``site``; the old gallery goes only once the new one is there."""
    if not replace:
        tmp.rename(site)  # fails if something appeared at site meanwhile: then it is left alone
        return
    old = site.parent / f".kmq-{os.urandom(6).hex()}.part"
    site.rename(old)
    try:
        tmp.rename(site)
    except OSError:
        old.rename(site)
        raise
    shutil.rmtree(old, ignore_errors=True)


def cmd_gallery(args: argparse.Namespace) -> int:
    """``kmq gallery``: write a static site of the kmq files, the viewer and an index page."""
    report = Report(args)
    site = Path(args.output)
    replace = _check_site(site, args.force)
    found, failed = _collect(args, report, full=True)
    if not found:
        raise CommandError("no gallery written: no readable kmq files among the inputs")
    taken: set[str] = set()
    placed = []
    for path, relative, info in found:
        target = PurePosixPath("images") / relative
        # Two inputs with one relative path (two folder arguments) each keep their own file.
        n = 1
        while str(target).lower() in taken:
            n += 1
            target = PurePosixPath("images") / relative.with_name(f"{relative.stem}-{n}{relative.suffix}")
        taken.add(str(target).lower())
        placed.append((path, target, info))
    entries = [Entry(path, urllib.parse.quote(str(target)), target.name, info) for path, target, info in placed]
    title = args.title or f"{site.resolve().name or 'kmq'}: {len(entries)} kmq file{'s' if len(entries) != 1 else ''}"
    try:
        with _building(site) as tmp:
            for name, public in ASSETS.items():
                (tmp / public).write_bytes(_asset(name))
            for path, target, _ in placed:
                destination = tmp / target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
            (tmp / "index.html").write_text(gallery_page(entries, title), encoding="utf-8")
            (tmp / GALLERY_MARK).write_text(
                json.dumps({"kmq": kmq.__version__, "files": len(entries)}) + "\n", encoding="utf-8"
            )
            _place_site(tmp, site, replace)
    except OSError as exc:
        if exc.errno == errno.EEXIST or exc.errno == errno.ENOTEMPTY:
            raise CommandError(f"{site}: appeared while the gallery was written; left alone") from None
        raise
    total = sum(e.info["bytes"] for e in entries)
    report.line(f"wrote {site}/: index.html, viewer.html and {len(entries)} kmq files ({_human(total)})")
    if args.json:
        report.emit_json({"site": str(site), "files": [str(t) for _, t, _ in placed], "skipped": failed})
    return 1 if failed else 0
