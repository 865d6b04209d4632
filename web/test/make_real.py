#!/usr/bin/env python3
"""Real kmq files and mutants of them, with kmq's own verdict on each, for web/test/real.test.js.

    python web/test/make_real.py OUTDIR [--thorough] [--write-mutants]

writes OUTDIR/files/*.kmq (files made by kmq's encoder: ``kmq.quantize(...)`` then
``Indexed.to_bytes(coding)``, which is exactly what ``kmq.encode`` and ``kmq encode`` do) and
OUTDIR/manifest.json. Every entry of the manifest carries what ``kmq.decode`` (default pixel
limit, checksum verified) makes of the file:

- accepted: ``"verdict": "ok"``, the header fields, the palette (hex), and the sha256 of the
  labels (H * W bytes, row-major) and of the RGBA pixels (H * W * 4 bytes, row-major, RGB
  expanded with alpha 255);
- rejected: ``"verdict"``, the exact class name of the error (``type(e).__name__``), and its message.

Mutants are not written as files (unless ``--write-mutants``): each is its seed file (one of
``files``) cut or extended to ``length`` bytes, then overwritten with ``patches`` (``[offset, hex]``
pairs), and ``sha256`` is the sha256 of the result, so that a reader can check it built the same bytes.

Sources: synthetic numpy images (gradients, noise, flat areas with hard edges, RGBA with alpha
0, partial and 255, single rows and columns, one image of more than 2^21 pixels so that the
encoder writes two stripes) and, when the corpus exists (env KMQ_CORPUS, else ``shared/corpus``
in the repository's directory or one of its parents), small crops of some corpus images. With
``--thorough``, every corpus image (kodak, photos downscaled to at most 4.5 MP, graphics,
graphics2, cq100) is encoded too, and about 7,000 mutants are made. Everything is deterministic.
Corpus images are read, never copied: only OUTDIR is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import kmq
import numpy as np
from kmq import container

KS = (1, 2, 5, 8, 16, 17, 100, 256)
CODINGS = ("raw", "ctx1", "mix")
CODING_NAMES = {0: "raw", 1: "ctx1", 2: "mix"}
HEADER = struct.Struct(">4sBBBBHHII")
DEFAULT_MUTANTS = 800
THOROUGH_MUTANTS = 7000
PHOTO_MAX_PIXELS = 4_500_000  # 2 or 3 stripes
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm")
LIMIT = kmq.DEFAULT_MAX_PIXELS
# The default run's mutant seeds: each coding, RGB and RGBA, K = 1 to 256, padding bits (grad-k5-raw,
# noise-k17-raw), labels >= K possible (K = 5, 17, 100), coding 2 forced where kmq would not write it, two stripes.
DEFAULT_SEEDS = (
    "grad-k1-raw",
    "grad-k5-raw",
    "grad-k5-ctx1",
    "grad-k17-mix",
    "grad-k256-raw",
    "grad-k256-mix-strict",
    "alpha-k8-raw",
    "alpha-k16-ctx1",
    "alpha-k100-mix",
    "alpha-k2-mix",
    "alpha-k256-mix",
    "shapes-k16-mix",
    "noise-k17-raw",
    "noise-k17-mix",
    "row-k1-raw",
    "px1x1-k1-raw",
    "photoish-k2-ctx1",
    "rgba2x2-k2-mix-strict",
    "crop-kodim23-k100-mix",
    "crop-alpheratz_logo_rgba-k17-raw",
    "big2stripes-k8-ctx1",
    "big2stripes-k8-mix",
)


# ---------------------------------------------------------------- kmq's verdict


def sha(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def verdict(data: bytes) -> dict:
    """What kmq.decode makes of ``data``."""
    try:
        pixels = kmq.decode(data)
    except kmq.KmqError as exc:
        return {"verdict": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # not a KmqError: a bug in kmq, reported as such
        return {"verdict": f"python-crash:{type(exc).__name__}", "message": str(exc)}
    height, width, channels = pixels.shape
    if channels == 3:
        rgba = np.empty((height, width, 4), np.uint8)
        rgba[..., :3] = pixels
        rgba[..., 3] = 255
    else:
        rgba = np.ascontiguousarray(pixels)
    indexed = kmq.Indexed.from_bytes(data)
    _, _, coding, hdr_channels, _, k, _, hdr_width, hdr_height = HEADER.unpack_from(data)
    assert (hdr_width, hdr_height, hdr_channels) == (width, height, channels)
    assert indexed.labels.shape == (height, width) and indexed.k == k
    assert np.array_equal(indexed.to_array(), pixels)
    return {
        "verdict": "ok",
        "width": width,
        "height": height,
        "channels": channels,
        "k": k,
        "coding": coding,
        "palette": indexed.palette.tobytes().hex(),
        "labels_sha256": sha(np.ascontiguousarray(indexed.labels).tobytes()),
        "rgba_sha256": sha(rgba.tobytes()),
    }


# ---------------------------------------------------------------- sources


def corpus_dir() -> Path | None:
    env = os.environ.get("KMQ_CORPUS")
    if env:
        return Path(env) if Path(env).is_dir() else None
    repo = Path(__file__).resolve().parents[2]
    for base in (repo, *repo.parents):
        for candidate in (base / "shared" / "corpus", base.parent / "shared" / "corpus"):
            if candidate.is_dir():
                return candidate
    return None


def synthetic() -> list[tuple[str, np.ndarray, tuple[int, ...]]]:
    """(name, image, Ks) of the synthetic sources."""
    rng = np.random.default_rng(20240611)
    out = []

    h, w = 61, 97
    y, x = np.mgrid[0:h, 0:w]
    grad = np.stack(
        [x * 255 // (w - 1), y * 255 // (h - 1), (128 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(int)], -1
    ).astype(np.uint8)
    out.append(("grad", grad, KS))

    h, w = 72, 104
    y, x = np.mgrid[0:h, 0:w]
    photo = np.stack([80 + x + 20 * np.sin(y / 9.0), 40 + y * 2, 200 - x - y], -1)
    photo = np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
    out.append(("photoish", photo, KS[:-1]))

    h, w = 80, 120
    y, x = np.mgrid[0:h, 0:w]
    colours = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    index = ((x // 13) * 5 + (y // 9) * 3) % 40
    index[(x - 60) ** 2 + (y - 40) ** 2 < 400] = 7
    index[10:30, 5:50] = 11
    index[::2, 100:] = 3
    shapes = colours[index]
    out.append(("shapes", shapes, (2, 5, 8, 16, 17, 100, 256)))

    noise = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out.append(("noise", noise, (2, 17, 100, 256)))

    h, w = 60, 90
    y, x = np.mgrid[0:h, 0:w]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., 0] = x * 255 // (w - 1)
    rgba[..., 1] = y * 255 // (h - 1)
    rgba[..., 2] = (x * y) % 256
    levels = np.array([0, 1, 37, 128, 200, 254, 255], np.uint8)
    rgba[..., 3] = levels[(x // 13) % len(levels)]
    rgba[(y // 10) % 3 == 0, 3] = 255
    out.append(("alpha", rgba, KS))

    cut = rgba.copy()  # hard-edged sprite: fully transparent background, opaque and half shapes
    cut[..., 3] = 0
    cut[10:50, 10:40, 3] = 255
    cut[20:55, 45:80, 3] = 128
    cut[20:55, 45:80, :3] = (10, 200, 30)
    out.append(("sprite", cut, (2, 5, 8, 17)))

    out.append(("px1x1", grad[:1, :1], (1,)))
    out.append(("row", grad[5:6, :], (1, 2, 5, 17)))
    out.append(("column", grad[:, 40:41], (2, 8)))
    out.append(("rgba2x2", rgba[0:2, 26:28], (1, 2)))  # alpha 1 and 37
    out.append(("rgba_row", rgba[30:31, :], (5, 8)))
    return out


def big_image(alpha: bool = False) -> np.ndarray:
    """More than 2^21 pixels (2049 x 1025), so the encoder writes 2 stripes; few colours keep it quick."""
    h, w = 1025, 2049
    y, x = np.mgrid[0:h, 0:w]
    colours = np.random.default_rng(7).integers(0, 256, (24, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        colours[::3, 3] = 255
        colours[1::6, 3] = 0
    index = ((x // 97) * 7 + (y // 61) * 3 + (x + y) // 200) % (24 if alpha else 12)
    return colours[index]


def load(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """The image as kmq encode reads it (kmq.images.load), downscaled to ``max_pixels`` if larger."""
    pixels = kmq.images.load(path).pixels
    height, width = pixels.shape[:2]
    if max_pixels and width * height > max_pixels:
        from PIL import Image

        scale = (max_pixels / (width * height)) ** 0.5
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS))
    return np.ascontiguousarray(pixels)


def pixel_count(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.width * image.height


def corpus_images(corpus: Path, folders: tuple[str, ...]) -> list[Path]:
    found = []
    for folder in folders:
        directory = corpus / folder
        if directory.is_dir():
            found += sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return found


def corpus_crops(corpus: Path) -> list[tuple[str, np.ndarray, tuple[int, ...]]]:
    """A few small crops: a photograph, a screenshot, graphics with alpha."""
    picks = [
        ("kodak/kodim23.png", (100, 180, 96, 64), (5, 100, 256)),
        ("kodak/kodim05.png", (300, 200, 80, 60), (16, 17)),
        ("graphics/alpheratz_logo_rgba.png", None, (8, 17, 256)),
        ("graphics/btop_screenshot_normal.png", (0, 0, 120, 80), (2, 16, 100)),
        ("graphics2/chart_golang_9years-graph.png", (40, 40, 100, 70), (5, 8)),
    ]
    out = []
    for rel, box, ks in picks:
        path = corpus / rel
        if not path.is_file():
            continue
        image = load(path)
        if box is None:  # the most varied 96 x 64 window of the image, found on a grid
            best, box = -1.0, (0, 0, min(96, image.shape[1]), min(64, image.shape[0]))
            for top in range(0, max(1, image.shape[0] - 64), 32):
                for left in range(0, max(1, image.shape[1] - 96), 32):
                    window = image[top : top + 64, left : left + 96]
                    partial = window.shape[2] == 4 and 0 < window[..., 3].mean() < 255
                    score = float(window.std()) + (50.0 if partial else 0.0)
                    if score > best:
                        best, box = score, (left, top, 96, 64)
        left, top, width, height = box
        crop = np.ascontiguousarray(image[top : top + height, left : left + width])
        if crop.shape[2] == 4 and crop[..., 3].min() == 255:
            crop = np.ascontiguousarray(crop[..., :3])
        out.append((f"crop-{Path(rel).stem}", crop, ks))
    return out


# ---------------------------------------------------------------- encoding


def encode_all(job: tuple[str, object, tuple[int, ...], bool]) -> list[tuple[str, dict, bytes]]:
    """Every coding of ``image`` at every K of ``ks``: (name, info, bytes), duplicates removed.

    ``image`` is an array or a corpus path. Where the encoder falls back to a simpler coding
    (E4), the asked coding is also written with ``strict=True`` when it fits (E5), so that
    codings 1 and 2 meet noise-like labels too.
    """
    name, image, ks, strict_too = job
    if not isinstance(image, np.ndarray):
        path = Path(image)
        image = load(path, PHOTO_MAX_PIXELS if path.parent.name == "photos" else None)
    out, seen = [], set()
    for k in ks:
        indexed = kmq.quantize(image, k=k)
        for asked in CODINGS:
            variants = [("", indexed.to_bytes(asked))]
            if strict_too and CODING_NAMES[variants[0][1][5]] != asked and indexed.k >= 2 and asked != "raw":
                try:
                    strict = container.dumps(indexed.palette, indexed.labels, asked, strict=True)
                except kmq.ParameterError:
                    pass
                else:
                    variants.append(("-strict", strict))
            for suffix, data in variants:
                digest = sha(data)
                if digest in seen:
                    continue
                seen.add(digest)
                written = CODING_NAMES[data[5]]
                label = f"{name}-k{k}-{asked}{suffix}"
                info = {
                    "asked_k": k,
                    "asked_coding": asked,
                    "strict": bool(suffix),
                    "stripes": struct.unpack_from(">H", data, 20 + indexed.k * indexed.channels)[0]
                    if data[5] != 0
                    else 0,
                    "written": written,
                }
                out.append((label, info, data))
    return out


# ---------------------------------------------------------------- mutants


def crc_fix(data: bytearray) -> bytearray:
    if len(data) >= 4:
        struct.pack_into(">I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])))
    return data


class Seed:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data = name, data
        (_, _, self.coding, self.channels, self.bits, self.k, _, self.width, self.height) = HEADER.unpack_from(data)
        self.palette_end = 20 + self.k * self.channels
        self.payload_end = len(data) - 4
        self.stripes = struct.unpack_from(">H", data, self.palette_end)[0] if self.coding else 0
        self.lengths = list(struct.unpack_from(f">{self.stripes}I", data, self.palette_end + 2)) if self.coding else []
        self.streams = self.palette_end + 2 + 4 * self.stripes
        self.pixels = self.width * self.height
        self.big = self.pixels > 1_000_000


def field_values(seed: Seed) -> list[tuple[str, int, str, int]]:
    """(name, offset, struct format, value) header edits worth trying on ``seed``."""
    w, h, k, bits = seed.width, seed.height, seed.k, seed.bits
    edits = []
    for v in (0, 2, 255):
        edits.append(("version", 4, "B", v))
    for v in (0, 1, 2, 3, 255):
        if v != seed.coding:
            edits.append(("coding", 5, "B", v))
    for v in (0, 1, 3, 4, 5):
        if v != seed.channels:
            edits.append(("channels", 6, "B", v))
    for v in {0, 8, 9, bits - 1, bits + 1} - {bits}:
        if 0 <= v <= 255:
            edits.append(("bits", 7, "B", v))
    for v in {0, 1, 2, k - 1, k + 1, 256, 257, 65535} - {k}:
        if 0 <= v <= 65535:
            edits.append(("k", 8, ">H", v))
    for v in (1, 256, 65535):
        edits.append(("reserved", 10, ">H", v))
    safe = seed.coding == 0 and seed.bits > 0  # a larger image is cut short by D6 at once
    for name, off, own, other in (("width", 12, w, h), ("height", 16, h, w)):
        values = {0, 1, max(1, own - 1), own + 1, own * 2, other, 2**31, 2**32 - 1, LIMIT + 1}
        if safe:
            values |= {LIMIT, LIMIT // max(1, other), LIMIT // max(1, other) + 1}
        for v in sorted(values - {own}):
            if v < 2**32 and (safe or v * other <= 4 * seed.pixels or v * other > LIMIT or v == 0):
                edits.append((name, off, ">I", v))
    return edits


def mutate(seed: Seed, rng: np.random.Generator, kind: str) -> bytes | None:
    b = bytearray(seed.data)
    n = len(b)
    body = n - 4  # bytes before the checksum
    fix = kind.endswith("+crc")
    base = kind[:-4] if fix else kind
    if base == "truncate":
        cuts = [
            0,
            1,
            3,
            4,
            5,
            19,
            20,
            21,
            seed.palette_end - 1,
            seed.palette_end,
            seed.palette_end + 1,
            seed.palette_end + 2,
            seed.streams,
            n - 5,
            n - 4,
            n - 1,
        ]
        cut = int(rng.choice(cuts)) if rng.random() < 0.4 else int(rng.integers(0, n))
        b = b[: max(0, min(n - 1, cut))]
    elif base == "extend":
        extra = bytes(rng.integers(0, 256, int(rng.choice([1, 2, 3, 4, 7, 64])), dtype=np.uint8))
        if rng.random() < 0.3:
            extra = bytes(len(extra))
        # with +crc, the bytes go before the checksum, which is then recomputed
        b = b[:body] + extra + b[body:] if fix else b + extra
    elif base == "byte":
        pos = int(rng.integers(0, body if fix else n))
        b[pos] = (b[pos] + int(rng.integers(1, 256))) % 256
    elif base == "bit":
        pos = int(rng.integers(0, (body if fix else n) * 8))
        b[pos >> 3] ^= 0x80 >> (pos & 7)
    elif base == "bytes":  # several bytes of the payload at once
        if seed.payload_end <= seed.palette_end:
            return None
        for _ in range(int(rng.integers(2, 9))):
            pos = int(rng.integers(seed.palette_end, seed.payload_end))
            b[pos] = int(rng.integers(0, 256))
    elif base == "magic":
        pos = int(rng.integers(0, 4))
        b[pos] ^= int(rng.integers(1, 256))
        if rng.random() < 0.3:
            b = b[: int(rng.integers(pos + 1, 20))]
    elif base == "header":
        edits = field_values(seed)
        for _ in range(2 if rng.random() < 0.15 else 1):  # sometimes a second field too
            _, off, fmt, value = edits[int(rng.integers(0, len(edits)))]
            struct.pack_into(fmt, b, off, value)
    elif base == "palette":
        if seed.palette_end <= 20:
            return None
        pos = int(rng.integers(20, seed.palette_end))
        b[pos] ^= int(rng.integers(1, 256))
    elif base == "stripes":  # the stripe table of codings 1 and 2
        if not seed.coding:
            return None
        off, s, lengths = seed.palette_end, seed.stripes, seed.lengths
        choice = int(rng.integers(0, 6))
        if choice == 0:
            v = int(
                rng.choice(
                    [
                        0,
                        1,
                        2,
                        s + 1,
                        s - 1,
                        seed.height,
                        seed.height + 1,
                        max(1, seed.pixels // 4096),
                        max(1, seed.pixels // 4096) + 1,
                        65535,
                    ]
                )
            )
            struct.pack_into(">H", b, off, max(0, min(65535, v)))
        elif choice in (1, 2):
            i = int(rng.integers(0, s))
            v = int(rng.choice([0, 1, 4, 5, lengths[i] - 1, lengths[i] + 1, lengths[i] + 9, 2**31, 2**32 - 1]))
            struct.pack_into(">I", b, off + 2 + 4 * i, max(0, min(2**32 - 1, v)))
        elif choice == 3 and s > 1:  # swap two lengths: the total stays right
            struct.pack_into(">II", b, off + 2, lengths[1], lengths[0])
        elif choice == 4 and s > 1:  # move bytes from one stripe to the next
            d = int(rng.choice([1, 2, 5]))
            struct.pack_into(">II", b, off + 2, lengths[0] - d, lengths[1] + d)
        else:  # one stripe fewer or more, the table resized to match
            if rng.random() < 0.5 and s > 1:
                merged = struct.pack(">H", s - 1) + struct.pack(">I", lengths[0] + lengths[1])
                merged += b[off + 2 + 8 : off + 2 + 4 * s]
                b = b[:off] + merged + b[seed.streams :]
            else:
                split = lengths[0] // 2
                table = struct.pack(">H", s + 1) + struct.pack(">II", split, lengths[0] - split)
                table += b[off + 6 : off + 2 + 4 * s]
                b = b[:off] + table + b[seed.streams :]
    elif base == "stream":  # the first and last bytes of a stream, which 5.4 and 5.5 constrain
        if not seed.coding:
            return None
        i = int(rng.integers(0, seed.stripes))
        start = seed.streams + sum(seed.lengths[:i])
        end = start + seed.lengths[i]
        pos = int(rng.choice([start, start + 1, start + 4, start + 5, end - 1, end - 2]))
        pos = min(max(pos, start), end - 1)
        if rng.random() < 0.3 and pos == start + 1:
            b[start + 1 : start + 5] = b"\xff\xff\xff\xff"
        else:
            b[pos] = (b[pos] + int(rng.integers(1, 256))) % 256
    elif base == "raw-tail":  # coding 0: the padding bits (D8) and the last labels (D9)
        if seed.coding or seed.bits == 0:
            return None
        total_bits = seed.pixels * seed.bits
        pad = (-total_bits) % 8
        last = seed.payload_end - 1
        if pad and rng.random() < 0.5:
            b[last] |= 1 << int(rng.integers(0, pad))
        else:  # set some label's bits to all ones (>= k unless k is a power of two)
            low = max(0, seed.pixels - 8) if rng.random() < 0.5 else 0  # often one of the last labels
            p = int(rng.integers(low, seed.pixels))
            for j in range(seed.bits):
                bit = p * seed.bits + j
                b[seed.palette_end + (bit >> 3)] |= 0x80 >> (bit & 7)
    else:
        raise ValueError(kind)
    if fix:
        crc_fix(b)
    return bytes(b)


KINDS = {
    # kind: weight
    "truncate": 4,
    "truncate+crc": 2,
    "extend": 2,
    "extend+crc": 3,
    "byte": 2,
    "byte+crc": 5,
    "bit": 2,
    "bit+crc": 6,
    "bytes+crc": 3,
    "magic": 1,
    "header": 2,
    "header+crc": 6,
    "palette+crc": 2,
    "stripes": 2,
    "stripes+crc": 5,
    "stream+crc": 4,
    "raw-tail+crc": 3,
}


def diff(seed: bytes, mutant: bytes) -> list[list]:
    """[offset, hex] patches that turn ``seed``, cut or zero-extended to len(mutant), into ``mutant``."""
    n = min(len(seed), len(mutant))
    a = np.frombuffer(seed, np.uint8, n)
    m = np.frombuffer(mutant, np.uint8, n)
    where = np.flatnonzero(a != m)
    patches: list[list] = []
    start = prev = None
    for pos in where.tolist():
        if start is None:
            start = prev = pos
        elif pos - prev > 8:
            patches.append([start, mutant[start : prev + 1].hex()])
            start = prev = pos
        else:
            prev = pos
    if start is not None:
        patches.append([start, mutant[start : prev + 1].hex()])
    if len(mutant) > len(seed):
        patches.append([len(seed), mutant[len(seed) :].hex()])
    return patches


def targeted(seed: Seed) -> list[tuple[str, bytes]]:
    """Mutants aimed at each rule (D1 to D10) that a random draw would rarely hit, for every seed."""
    out: list[tuple[str, bytes]] = []
    data = seed.data

    def add(kind: str, b: bytes | bytearray, fix: bool = True) -> None:
        b = bytearray(b)
        out.append((kind + ("+crc" if fix else ""), bytes(crc_fix(b) if fix else b)))

    def field(off: int, fmt: str, *values: int) -> bytearray:
        b = bytearray(data)
        struct.pack_into(fmt, b, off, *values)
        return b

    def stream_bounds(i: int) -> tuple[int, int]:
        start = seed.streams + sum(seed.lengths[:i])
        return start, start + seed.lengths[i]

    def spliced(b: bytes, *lengths: tuple[int, int]) -> bytearray:
        """``b`` with stripe length i set to v for each (i, v)."""
        out = bytearray(b)
        for i, v in lengths:
            struct.pack_into(">I", out, seed.palette_end + 2 + 4 * i, v)
        return out

    def poked(pos: int, value: bytes) -> bytearray:
        out = bytearray(data)
        out[pos : pos + len(value)] = value
        return out

    if not seed.big:
        add("t-empty", b"", False)
        add("t-magic-prefix", data[:3], False)
        add("t-header-cut", data[:19], False)
        add("t-cut-last", data[:-1], False)
        add("t-cut-checksum", data[:-4], False)
        add("t-trailing-zero", data + b"\0", False)
        add("t-trailing-zero", data[:-4] + b"\0" + data[-4:])
        add("t-checksum", data[:-1] + bytes([data[-1] ^ 1]), False)
        add("t-magic", b"\x89KMq" + data[4:])
        add("t-version", field(4, "B", 2))
        add("t-coding", field(5, "B", 3))
        add("t-coding", field(5, "B", (seed.coding + 1) % 3))
        add("t-channels", field(6, "B", 7 - seed.channels))
        add("t-bits", field(7, "B", seed.bits + 1))
        add("t-k", field(8, ">H", seed.k + 1 if seed.k < 256 else 255))
        add("t-reserved", field(10, ">H", 1))
        add("t-width", field(12, ">I", 0))
        add("t-width", field(12, ">I", seed.width + 1))
        add("t-height", field(16, ">I", LIMIT // seed.width + 1), False)  # just over the pixel limit
        add("t-size", field(12, ">II", seed.height, seed.width))  # transposed
        if seed.palette_end > 20:
            add("t-palette", field(20, "B", data[20] ^ 0x80))
    if seed.coding == 0 and seed.bits:
        total_bits = seed.pixels * seed.bits
        pad = (-total_bits) % 8
        last = seed.payload_end - 1
        for bit in sorted({0, pad - 1}) if pad else ():
            b = bytearray(data)
            b[last] |= 1 << bit
            add("t-padding", b)
        if seed.k & (seed.k - 1):  # not a power of two: a label >= k is possible
            for p in (seed.pixels - 1, seed.pixels // 2):
                b = bytearray(data)
                for j in range(seed.bits):
                    pos = p * seed.bits + j
                    b[seed.palette_end + (pos >> 3)] |= 0x80 >> (pos & 7)
                add("t-label-ge-k", b)
    if seed.coding:
        off, count = seed.palette_end, seed.stripes
        for i in sorted({0, count - 1}):
            start, end = stream_bounds(i)
            add(f"t-stream{i}-byte0", poked(start, b"\x01"))
            # A big seed's mutants cost a decode of one or both stripes (seconds in JavaScript for mix):
            # small seeds try these on stripe 0, the big ones on the last stripe only, mix fewer.
            slow = seed.big and (i == 0 or seed.coding == 2)
            if not (seed.big and i > 0 and seed.coding == 2):
                add(f"t-stream{i}-code-ffffffff", poked(start + 1, b"\xff\xff\xff\xff"))
            if not slow:
                add(f"t-stream{i}-last-byte", poked(end - 1, bytes([data[end - 1] ^ 1])))
            # one byte more (left over) or fewer (ends early, or a code not 0), the length fixed up
            if not (seed.big and i == 0):
                add(f"t-stream{i}-grow", spliced(data[:end] + b"\0" + data[end:], (i, seed.lengths[i] + 1)))
            if not slow:
                add(f"t-stream{i}-shrink", spliced(data[: end - 1] + data[end:], (i, seed.lengths[i] - 1)))
            add(f"t-stripe-length{i}", field(off + 2 + 4 * i, ">I", 4))
        add("t-stripes-0", field(off, ">H", 0))
        add("t-stripes-max+1", field(off, ">H", max(1, seed.pixels // 4096) + 1))
        add("t-stripes-height+1", field(off, ">H", seed.height + 1))
        if count > 1:
            add("t-stripes-swapped", spliced(data, (0, seed.lengths[1]), (1, seed.lengths[0])))
        if seed.big:
            add("t-cut-table", data[: off + 2 + 4 * count - 1], False)
            add("t-trailing", data + b"\0", False)
    return out


def make_mutants(seeds: list[Seed], total: int, rng_seed: int) -> list[dict]:
    """The targeted mutants of every seed, then random ones (KINDS) up to about ``total``."""
    rng = np.random.default_rng(rng_seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    p = np.array(weights, float) / sum(weights)
    out: list[dict] = []
    seen: set[str] = set()
    count: dict[str, int] = {}

    def keep(s: Seed, kind: str, data: bytes) -> bool:
        digest = sha(data)
        if data == s.data or digest in seen:
            return False
        seen.add(digest)
        count[s.name] = count.get(s.name, 0) + 1
        out.append(
            {
                "name": f"{s.name}~{count[s.name]:04d}~{kind}",
                "seed": s.name,
                "kind": kind,
                "length": len(data),
                "patches": diff(s.data, data),
                "sha256": digest,
                "_data": data,
            }
        )
        return True

    for s in seeds:
        for kind, data in targeted(s):
            keep(s, kind, data)
    small = [s for s in seeds if not s.big]
    big_kinds = ["stripes", "truncate", "extend", "header", "byte"]  # cheap ones, caught by D1 to D7
    for s in seeds:
        want = 6 if s.big else max(0, (total - len(out)) // max(1, len(small) - small.index(s)))
        made = tries = 0
        while made < want and tries < want * 20:
            tries += 1
            kind = str(rng.choice(big_kinds)) if s.big else str(rng.choice(kinds, p=p))
            data = mutate(s, rng, kind)
            if data is not None and keep(s, kind, data):
                made += 1
    return out


# ---------------------------------------------------------------- main


def _worker_init() -> None:
    os.environ["KMQ_THREADS"] = "1"  # the processes share the cores: kmq's own threads would only compete


def check_one(item: tuple[str, bytes]) -> tuple[str, dict]:
    name, data = item
    return name, verdict(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--thorough", action="store_true", help="the whole corpus and about 7,000 mutants")
    parser.add_argument("--mutants", type=int, help="about how many mutants (default 800, thorough 7000)")
    parser.add_argument("--write-mutants", action="store_true", help="also write the mutants, OUTDIR/mutants/NAME.kmq")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    files_dir = args.outdir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)

    corpus = corpus_dir()
    jobs: list[tuple[str, object, tuple[int, ...], bool]] = [(n, a, ks, True) for n, a, ks in synthetic()]
    jobs.append(("big2stripes", big_image(), (8,), False))
    if args.thorough:
        jobs.append(("big2stripes-rgba", big_image(alpha=True), (17,), False))
    if corpus is not None:
        jobs += [(n, a, ks, True) for n, a, ks in corpus_crops(corpus)]
    if args.thorough and corpus is not None:
        paths = corpus_images(corpus, ("kodak", "photos", "graphics", "graphics2", "cq100"))
        for i, path in enumerate(paths):
            # one K per image, turning through KS (twice as fast for kodak, which gets two)
            ks = (KS[i % len(KS)], KS[(i + 4) % len(KS)]) if path.parent.name == "kodak" else (KS[i % len(KS)],)
            if pixel_count(path) > 2**21 and 17 not in ks:
                ks += (17,)  # images of several stripes get a coded file whatever K came up
            jobs.append((f"{path.parent.name}-{path.stem}", str(path), ks, False))

    encoded: list[tuple[str, dict, bytes]] = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, initializer=_worker_init) as pool:
            # big jobs first so that the two workers finish together
            def cost(i: int) -> int:
                image = jobs[i][1]
                return image.size if isinstance(image, np.ndarray) else 10**6

            order = sorted(range(len(jobs)), key=cost, reverse=True)
            results = dict(zip(order, pool.map(encode_all, [jobs[i] for i in order]), strict=True))
        for i in range(len(jobs)):
            encoded += results[i]
    else:
        for job in jobs:
            encoded += encode_all(job)
    t_encode = time.perf_counter() - started

    # Seeds for the mutants: small files of every coding, both channel counts, several K, and the
    # two-stripe files (whose mutants are mostly ones that D1 to D7 catch: each decode costs seconds).
    by_name = {name: data for name, _, data in encoded}
    if args.thorough:
        # every small image's files (the synthetic ones and the crops), then the two-stripe ones
        seed_names = [name for name, _, data in encoded if Seed(name, data).pixels <= 16384]
        seed_names += ["big2stripes-k8-ctx1", "big2stripes-k8-mix", "big2stripes-rgba-k17-mix"]
    else:
        seed_names = list(DEFAULT_SEEDS)
    seed_names = [n for n in dict.fromkeys(seed_names) if n in by_name]  # crops only with the corpus
    seeds = [Seed(n, by_name[n]) for n in seed_names]
    mutants = make_mutants(seeds, args.mutants or (THOROUGH_MUTANTS if args.thorough else DEFAULT_MUTANTS), 1)
    t_mutate = time.perf_counter() - started - t_encode

    items = [(name, data) for name, _, data in encoded] + [(m["name"], m["_data"]) for m in mutants]
    if args.jobs > 1 and len(items) > 200:
        with ProcessPoolExecutor(args.jobs, initializer=_worker_init) as pool:
            verdicts = dict(pool.map(check_one, items, chunksize=32))
    else:
        verdicts = dict(map(check_one, items))
    t_verdict = time.perf_counter() - started - t_encode - t_mutate

    files = []
    for name, info, data in encoded:
        (files_dir / f"{name}.kmq").write_bytes(data)
        files.append(
            {
                "name": name,
                "file": f"files/{name}.kmq",
                "size": len(data),
                "sha256": sha(data),
                **info,
                **verdicts[name],
            }
        )
    if args.write_mutants:
        (args.outdir / "mutants").mkdir(exist_ok=True)
    for m in mutants:
        if args.write_mutants:
            (args.outdir / "mutants" / f"{m['name']}.kmq").write_bytes(m["_data"])
        del m["_data"]
        m.update(verdicts[m["name"]])

    manifest = {
        "format": 1,
        "mode": "thorough" if args.thorough else "default",
        "kmq": {
            "version": kmq.__version__,
            "path": kmq.__file__,
            "ctx1": getattr(kmq.ctx1, "BACKEND", "?"),
            "mix": getattr(kmq.mix, "BACKEND", "?"),
        },
        "corpus": str(corpus) if corpus else None,
        "pixel_limit": LIMIT,
        "seconds": {"encode": round(t_encode, 2), "mutate": round(t_mutate, 2), "verdicts": round(t_verdict, 2)},
        "files": files,
        "mutants": mutants,
    }
    (args.outdir / "manifest.json").write_text(json.dumps(manifest, indent=0))
    bad = [f["name"] for f in files if f["verdict"] != "ok"]
    if bad:  # kmq refusing its own output is a kmq bug (E1); say so, the JS side reports it too
        print(f"make_real: kmq.decode rejects files kmq wrote: {bad}", file=sys.stderr)
    print(
        f"make_real: {len(files)} files, {len(mutants)} mutants of {len(seeds)} seeds in "
        f"{time.perf_counter() - started:.1f} s (corpus: {corpus or 'none'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
