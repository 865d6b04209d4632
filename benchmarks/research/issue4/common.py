"""Shared helpers for the issue-4 design study: corpus paths and cached kmq labels.

Labels come from ``kmq.quantize(image, K)`` (seed 0, RGB space, no dither), cached as
``/work/notes/cache/<name>_K<K>.npz`` (palette, labels) so every script measures the same planes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CORPUS = Path("/work/shared/corpus")
KODAK = sorted((CORPUS / "kodak").glob("kodim*.png"))
PHOTO = CORPUS / "photos" / "seondol-son-skcD9ONunJw-unsplash.jpg"
CACHE = Path("/work/notes/cache")
KS_ALL = (2, 4, 8, 16, 32, 64, 128, 256)


def labels_for(path: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(palette (K, C) uint8, labels (H, W) uint8) of kmq.quantize(image, k), cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / f"{path.stem}_K{k}.npz"
    if f.exists():
        z = np.load(f)
        return z["palette"], z["labels"]
    import kmq

    with Image.open(path) as im:
        ind = kmq.quantize(im, k)
    np.savez(f, palette=ind.palette, labels=ind.labels)
    return ind.palette, ind.labels


def kodak(k: int):
    """Yield (name, palette, labels) for the 24 Kodak images at K=k."""
    for p in KODAK:
        pal, lab = labels_for(p, k)
        yield p.name, pal, lab


if __name__ == "__main__":
    # Warm the cache: python common.py [K ...]
    ks = [int(a) for a in sys.argv[1:]] or list(KS_ALL)
    for k in ks:
        for p in KODAK:
            labels_for(p, k)
        print(f"K={k}: 24 Kodak planes cached", flush=True)
    if os.environ.get("PHOTO"):
        for k in (8, 256):
            pal, lab = labels_for(PHOTO, k)
            print(f"photo K={k}: {lab.shape}, palette {pal.shape}", flush=True)
