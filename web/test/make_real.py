"""Make real kmq files and damaged copies of them, with kmq's own verdict on each, for real.test.js.

Usage: python web/test/make_real.py OUTDIR [--thorough]

Writes OUTDIR/*.kmq and OUTDIR/manifest.json: for each file, either what ``kmq.decode`` made of it
(header fields and the SHA-256 of its labels, palette and RGBA pixels, alpha 255 for RGB) or the
name of the error class it raised. The JavaScript decoder must agree on every file.

Default: synthetic images, and small crops of the corpus where ``../shared/corpus`` (or
``$KMQ_CORPUS``) exists, at K in {1, 2, 5, 8, 16, 17, 100, 256}, RGB and RGBA, every coding, one
multi-stripe image, and 400 mutants. ``--thorough``: every corpus image at three K values and every
coding, and 7,000 mutants.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import kmq
import numpy as np
from kmq import container
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CODINGS = ("raw", "ctx1", "mix")
KS = (1, 2, 5, 8, 16, 17, 100, 256)


def synthetic(rng: np.random.Generator) -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:61, 0:97]
    gradient = np.stack([x * 2, y * 4, (x + y) % 256], axis=-1).astype(np.uint8)
    noise = rng.integers(0, 256, (23, 41, 3), dtype=np.uint8)
    flat = np.zeros((48, 64, 3), np.uint8)
    flat[:, 20:] = (200, 30, 30)
    flat[10:30, 30:50] = (20, 220, 90)
    flat[::7, :] = (255, 255, 255)
    rgba = np.concatenate([gradient, ((x * 8) % 256).astype(np.uint8)[..., None]], axis=-1)
    rgba[:, :10, 3] = 0
    rgba[:, 10:20, 3] = 255
    return {"gradient": gradient, "noise": noise, "flat": flat, "alpha": rgba}


def corpus_folder() -> Path | None:
    folder = Path(os.environ.get("KMQ_CORPUS", ROOT.parent / "shared" / "corpus"))
    return folder if folder.is_dir() else None


def corpus_images(folder: Path, thorough: bool) -> dict[str, np.ndarray]:
    """Corpus images, as RGB or RGBA arrays: small crops by default, whole (large ones halved) when thorough."""
    found: dict[str, np.ndarray] = {}
    for sub in ("kodak", "photos", "graphics", "graphics2", "cq100"):
        paths = sorted(p for p in (folder / sub).glob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif"})
        for path in paths if thorough else paths[:1]:
            try:
                with Image.open(path) as im:
                    alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
                    im = im.convert("RGBA" if alpha else "RGB")
                    while thorough and im.width * im.height > 4_000_000:
                        im = im.reduce(2)
                    pixels = np.asarray(im)
            except OSError:
                continue
            if not thorough:
                pixels = pixels[:96, :128]
            found[f"{sub}-{path.stem}"] = np.ascontiguousarray(pixels)
    return found


def verdict(data: bytes) -> dict[str, object]:
    try:
        pixels = kmq.decode(data)
        header, palette, labels = container.loads(data)
    except kmq.KmqError as exc:
        return {"error": type(exc).__name__}
    if pixels.shape[-1] == 3:
        pixels = np.concatenate([pixels, np.full((*pixels.shape[:2], 1), 255, np.uint8)], axis=-1)
    return {
        "width": header.width,
        "height": header.height,
        "channels": header.channels,
        "k": header.k,
        "coding": header.coding,
        "labels": hashlib.sha256(labels.tobytes()).hexdigest(),
        "palette": hashlib.sha256(palette.tobytes()).hexdigest(),
        "rgba": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
    }


def fix_crc(b: bytearray) -> bytearray:
    b[-4:] = struct.pack(">I", zlib.crc32(bytes(b[:-4])))
    return b


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One damaged copy of ``data`` and what was done to it."""
    b = bytearray(data)
    kind = int(rng.integers(0, 8))
    if kind == 0:
        i = int(rng.integers(0, len(b)))
        b[i] ^= 1 << int(rng.integers(0, 8))
        return f"bit flip at {i}", bytes(b)
    if kind == 1:
        i = int(rng.integers(0, len(b) - 4))
        b[i] = int(rng.integers(0, 256))
        return f"byte {i} set, checksum fixed", bytes(fix_crc(b))
    if kind == 2:
        cut = int(rng.integers(0, len(b)))
        return f"cut to {cut} bytes", bytes(b[:cut])
    if kind == 3:
        extra = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        return f"{len(extra)} bytes appended", bytes(b) + extra
    if kind == 4:
        # A header field: magic (0-3), version (4), coding (5), width, height, channels, K...
        i = int(rng.integers(0, container.HEADER.size))
        b[i] = int(rng.choice([0, 1, 2, 3, 4, 255, b[i] ^ 1, (b[i] + 1) % 256]))
        return f"header byte {i} = {b[i]}, checksum fixed", bytes(fix_crc(b))
    if kind == 5 and b[5] in (1, 2):
        # The stripe table, just after the palette: the count or a length.
        header = container.Header.unpack(data, None)
        start = container.HEADER.size + header.palette_size
        i = start + int(rng.integers(0, min(6, len(b) - 4 - start)))
        b[i] = int(rng.integers(0, 256))
        return f"stripe table byte {i} = {b[i]}, checksum fixed", bytes(fix_crc(b))
    if kind == 6:
        # Deep in the payload, where the coders' own rules (D8 to D10) are all that can catch it.
        header = container.Header.unpack(data, None)
        start = container.HEADER.size + header.palette_size
        if len(b) - 4 > start:
            i = int(rng.integers(start, len(b) - 4))
            b[i] ^= 1 << int(rng.integers(0, 8))
        return "payload bit flip, checksum fixed", bytes(fix_crc(b))
    # The palette: any bytes are valid colours, so this must decode, to the new colours.
    header = container.Header.unpack(data, None)
    i = container.HEADER.size + int(rng.integers(0, header.palette_size))
    b[i] ^= 0xFF
    return f"palette byte {i} inverted, checksum fixed", bytes(fix_crc(b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--thorough", action="store_true")
    args = parser.parse_args(argv)
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    manifest: list[dict[str, object]] = []

    def add(name: str, data: bytes, made: str) -> None:
        (out / name).write_bytes(data)
        manifest.append({"file": name, "made": made, **verdict(data)})

    images = synthetic(rng)
    folder = corpus_folder()
    if folder is not None:
        images.update(corpus_images(folder, args.thorough))
    names = sorted(images)
    seeds: list[bytes] = []
    if args.thorough:
        plan = [(name, k, coding) for name in names for k in (2, 16, 256) for coding in CODINGS]
    else:
        plan = [(names[(i + j) % len(names)], k, coding) for i, k in enumerate(KS) for j, coding in enumerate(CODINGS)]
        plan += [("alpha", k, coding) for k in (1, 5, 100) for coding in CODINGS]
    for name, k, coding in plan:
        data = kmq.encode(images[name], k, coding=coding)
        add(f"{name}-k{k}-{coding}.kmq", data, f"kmq.encode({name}, {k}, coding={coding!r})")
        if len(data) < 20_000:
            seeds.append(data)
    # More than one stripe (2^21 pixels each): the stripe table and the stripes' independence.
    y, x = np.mgrid[0:1100, 0:2000]
    big = np.stack([x % 256, y % 256, ((x // 7) ^ (y // 5)) % 256], axis=-1).astype(np.uint8)
    for coding in ("ctx1", "mix"):
        add(f"stripes-k8-{coding}.kmq", kmq.encode(big, 8, coding=coding), f"2000 x 1100, K=8, {coding}")
    for n in range(7000 if args.thorough else 400):
        seed = seeds[int(rng.integers(0, len(seeds)))]
        made, data = mutate(seed, rng)
        add(f"mutant-{n:05d}.kmq", data, made)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    rejected = sum("error" in entry for entry in manifest)
    print(f"{len(manifest)} files ({rejected} rejected by kmq) in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
