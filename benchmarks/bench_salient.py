"""Small saturated regions keep their colour: CIEDE2000 error on the most saturated pixels (issue 13).

Usage (from the repository root):
    python benchmarks/bench_salient.py [-k K [K ...]] [--images SET/NAME ...] [--share F]

For each image (default: corpus images with small vivid regions: a ladybird and yellow flower
centres, a kingfisher, a frog's red eye, a puffin's beak, a butterfly's spots, ...) the salient
region is found automatically: the ``--share`` (default 1 %) of pixels with the highest Oklab
chroma, among those with chroma above 0.10 (so a grey image has none). Each method quantizes the
whole image; the figure is the mean CIEDE2000 (Sharma, Wu and Dalal 2005; sRGB to CIELAB D65)
between the original and the result over that region, lower is better. The image's mean over
all pixels is printed beside it. Methods: kmq's default (perceptual), ``space="rgb"`` (exact
MSE, the old default), ``pngquant --nofs`` and libimagequant with dithering 0, all undithered.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kmq
import numpy as np
from kmq.colour import srgb_to_oklab
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DEFAULT_CORPUS, machine_lines

IMAGES = [
    "photos/janice-gill-0PueFmKKF28-unsplash.jpg",
    "cq100/kingfisher.png",
    "cq100/red_eyed_tree_frog.png",
    "cq100/puffin.png",
    "cq100/common_jezebel.png",
    "cq100/wool_carder_bee.png",
    "cq100/king_penguin.png",
    "cq100/daisy_poster.png",
    "kodak/kodim04.png",
    "kodak/kodim07.png",
    "kodak/kodim20.png",
    "kodak/kodim22.png",
]


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB bytes, (N, 3)."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of (N, 3) CIELAB pairs (kL = kC = kH = 1)."""
    l1, a1, b1 = lab1.T
    l2, a2, b2 = lab2.T
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    cbar7 = ((c1 + c2) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(cbar7 / (cbar7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbar, cbar = (l1 + l2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, hsum + 360, hsum - 360), hsum) / 2
    hbar = np.where(c1p * c2p == 0, hsum, hbar)
    t = (
        1
        - 0.17 * np.cos(np.radians(hbar - 30))
        + 0.24 * np.cos(np.radians(2 * hbar))
        + 0.32 * np.cos(np.radians(3 * hbar + 6))
        - 0.20 * np.cos(np.radians(4 * hbar - 63))
    )
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbar, 1 + 0.015 * cbar * t
    cbar7p = cbar**7
    rt = -2 * np.sqrt(cbar7p / (cbar7p + 25.0**7)) * np.sin(np.radians(60 * np.exp(-(((hbar - 275) / 25) ** 2))))
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh))


def salient(pixels: np.ndarray, share: float) -> np.ndarray:
    """Mask of the ``share`` most saturated pixels (Oklab chroma), of those above 0.10."""
    lab = srgb_to_oklab(pixels.reshape(-1, 3))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    vivid = chroma > 0.10
    if not vivid.any():
        return np.zeros(pixels.shape[:2], bool)
    threshold = max(0.10, float(np.quantile(chroma, 1 - share)))
    return (chroma >= threshold).reshape(pixels.shape[:2])


def methods() -> dict[str, object]:
    def pngquant(pixels: np.ndarray, k: int) -> np.ndarray:
        with tempfile.TemporaryDirectory() as name:
            source, out = Path(name) / "in.png", Path(name) / "out.png"
            Image.fromarray(pixels).save(source)
            subprocess.run(["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(source)], check=True)
            with Image.open(out) as im:
                return np.asarray(im.convert("RGB"))

    def liq0(pixels: np.ndarray, k: int) -> np.ndarray:
        import imagequant

        return np.asarray(
            imagequant.quantize_pil_image(Image.fromarray(pixels), dithering_level=0, max_colors=k).convert("RGB")
        )

    found: dict[str, object] = {
        "kmq": lambda p, k: kmq.quantize(p, k).to_array(),
        "kmq-mse": lambda p, k: kmq.quantize(p, k, space="rgb").to_array(),
    }
    if shutil.which("pngquant"):
        found["pngquant-nofs"] = pngquant
    try:
        import imagequant  # noqa: F401

        found["liq0"] = liq0
    except ImportError:
        pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--images", nargs="+", default=IMAGES)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    print("command: python " + shlex.join(["benchmarks/bench_salient.py", *(argv or sys.argv[1:])]))
    for line in machine_lines():
        print(line)
    paths = [args.corpus / name for name in args.images if (args.corpus / name).exists()]
    if not paths:
        print(f"no images under {args.corpus}: nothing measured")
        return 0
    found = methods()
    means: dict[tuple[int, str], list[float]] = {}
    print("\nmean CIEDE2000 on the salient region (all pixels in brackets), lower is better\n")
    print("| image | K | " + " | ".join(found) + " |\n|---|---|" + "---|" * len(found))
    for path in paths:
        with Image.open(path) as im:
            pixels = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        mask = salient(pixels, args.share)
        reference = srgb_to_lab(pixels.reshape(-1, 3))
        for k in args.k:
            cells = []
            for name, run in found.items():
                result = run(pixels, k)  # type: ignore[operator]
                delta = ciede2000(reference, srgb_to_lab(result.reshape(-1, 3)))
                region = float(delta[mask.reshape(-1)].mean())
                means.setdefault((k, name), []).append(region)
                cells.append(f"{region:.2f} ({delta.mean():.2f})")
            print(f"| {path.parent.name}/{path.name} | {k} | " + " | ".join(cells) + " |")
    print("\n| K | " + " | ".join(found) + " |\n|---|" + "---|" * len(found))
    for k in args.k:
        print(f"| {k} | " + " | ".join(f"{np.mean(means[(k, name)]):.2f}" for name in found) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
