"""Write seed corpora for the coding-2 ("mix") fuzz campaign (fuzz/README.md).

``python fuzz/make_mix_seeds.py OUT`` writes two folders:

- ``OUT/decode``: small strict mix files (valid CRC) for ``fuzz_decode.py``: K from 2 to 256,
  RGB and RGBA, one stripe and several (up to the most the format allows for the size).
- ``OUT/mix``: inputs for ``fuzz_mix.py`` laid out as its ``FuzzedDataProvider`` reads them
  (atheris takes the integers from the end and the bytes from the front): the palette, then
  one real coding-2 stream, then height - 1, width - 1, channels - 3 and K - 2 as the last
  four bytes. Each one parses back to its own K, channels, size and stream (checked here).

Labels are a mix of flat areas, tiles (which wake the match model), noise (which escapes)
and, for K > 2, gradients, so the seeds reach every branch of the model. Deterministic.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from kmq import container, ctx1, mix

#: (width, height, K, channels) of the strict mix files.
SHAPES = [
    (1, 1, 2, 3),
    (3, 2, 5, 3),
    (7, 5, 2, 4),
    (16, 16, 16, 3),
    (31, 9, 100, 4),
    (64, 64, 256, 3),
    (64, 64, 3, 4),
    (128, 64, 16, 3),  # 8192 pixels: up to 2 stripes
    (128, 96, 256, 4),  # up to 3 stripes
    (64, 256, 7, 3),  # up to 4 stripes
]


def labels_for(width: int, height: int, k: int, seed: int) -> np.ndarray:
    """A label plane with flat runs, repeated tiles, a gradient and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    labels = ((x // 4 + y // 3) % k).astype(np.uint8)
    tile = rng.integers(0, k, (4, 4), dtype=np.uint8)
    labels[: height // 2, : width // 2] = np.tile(tile, (height // 8 + 1, width // 8 + 1))[: height // 2, : width // 2]
    labels[rng.random(labels.shape) < 0.03] = rng.integers(0, k, dtype=np.uint8)
    labels[height * 3 // 4 :, :] = labels[0, 0]
    return labels


def mix_file(labels: np.ndarray, palette: np.ndarray, stripes: int) -> bytes:
    """A complete strict coding-2 file of ``stripes`` stripes, with its CRC-32."""
    (k, channels), (height, width) = palette.shape, labels.shape
    payload = mix.encode(labels, palette, stripes=stripes)
    assert payload is not None
    body = container.Header.for_image(width, height, channels, k, container.CODING_MIX).pack()
    body += palette.tobytes() + payload
    return body + struct.pack(">I", zlib.crc32(body))


def mix_input(stream: bytes, palette: np.ndarray, width: int, height: int) -> bytes:
    """A fuzz_mix.py input that parses to this K, channels, size, palette and stream."""
    k, channels = palette.shape
    return palette.tobytes() + stream + bytes([height - 1, width - 1, channels - 3, k - 2])


def check_mix_input(data: bytes, k: int, channels: int, width: int, height: int, stream: bytes) -> None:
    import atheris

    provider = atheris.FuzzedDataProvider(data)
    got = [provider.ConsumeIntInRange(lo, hi) for lo, hi in ((2, 256), (3, 4), (1, 64), (1, 64))]
    assert got == [k, channels, width, height], (got, k, channels, width, height)
    provider.ConsumeBytes(k * channels)
    assert provider.ConsumeBytes(provider.remaining_bytes()) == stream


def main(out: Path) -> None:
    (out / "decode").mkdir(parents=True, exist_ok=True)
    (out / "mix").mkdir(parents=True, exist_ok=True)
    files = inputs = 0
    for n, (width, height, k, channels) in enumerate(SHAPES):
        rng = np.random.default_rng(100 + n)
        palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
        labels = labels_for(width, height, k, n)
        for stripes in sorted({1, ctx1.max_stripes(width, height)}):
            data = mix_file(labels, palette, stripes)
            assert (container.loads(data)[2] == labels).all()
            (out / "decode" / f"mix-{width}x{height}-k{k}-c{channels}-s{stripes}.kmq").write_bytes(data)
            files += 1
        if width <= 64 and height <= 64:
            stream = mix.encode(labels, palette, stripes=1)
            assert stream is not None
            stream = stream[6:]  # S (2 bytes) and the one length (4 bytes): the stream alone
            data = mix_input(stream, palette, width, height)
            check_mix_input(data, k, channels, width, height, stream)
            (out / "mix" / f"stream-{width}x{height}-k{k}-c{channels}").write_bytes(data)
            inputs += 1
    print(f"wrote {files} mix files to {out / 'decode'} and {inputs} fuzz_mix inputs to {out / 'mix'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python fuzz/make_mix_seeds.py OUT")
    main(Path(sys.argv[1]))
