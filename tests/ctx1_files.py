"""Label planes and coding-1 files shared by the ctx1 test modules (import them from here)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from kmq import container, ctx1

__all__ = ["structured", "ctx1_file", "reframed", "streams_of"]


def structured(k: int, height: int, width: int, seed: int = 0, noise: float = 0.1) -> np.ndarray:
    """A plane like a quantized photo: runs and blobs, every label used when there is room, some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    labels = ((x // 5 + y // 4 + (x * y) // 37) % k).astype(np.uint8)
    scatter = rng.random((height, width)) < noise
    labels[scatter] = rng.integers(0, k, int(scatter.sum()), dtype=np.uint8)
    flat = labels.reshape(-1)
    if flat.size >= 4 * k:
        flat[rng.permutation(flat.size)[:k]] = np.arange(k, dtype=np.uint8)
    return labels


def ctx1_file(labels: np.ndarray, k: int, stripes: int | None = None) -> bytes:
    """A complete coding-1 file for ``labels`` with a K-entry grey palette."""
    palette = np.repeat(np.arange(k, dtype=np.uint8)[:, None], 3, axis=1)
    height, width = labels.shape
    head = container.Header.for_image(width, height, 3, k, container.CODING_CTX1).pack()
    body = head + palette.tobytes() + ctx1.encode(labels, k, stripes=stripes)
    return body + struct.pack(">I", zlib.crc32(body))


def reframed(data: bytes, streams: list[bytes]) -> bytes:
    """A coding-1 file with its streams replaced, its table made to match and its checksum fixed."""
    k = int.from_bytes(data[8:10], "big")
    head = data[: container.HEADER.size + data[6] * k]
    table = struct.pack(">H", len(streams)) + b"".join(struct.pack(">I", len(s)) for s in streams)
    body = head + table + b"".join(streams)
    return body + struct.pack(">I", zlib.crc32(body))


def streams_of(data: bytes) -> list[bytes]:
    k = int.from_bytes(data[8:10], "big")
    payload = memoryview(data)[container.HEADER.size + data[6] * k : -4]
    height = int.from_bytes(data[16:20], "big")
    width = int.from_bytes(data[12:16], "big")
    return [bytes(payload[a:b]) for a, b in ctx1.stripe_table(payload, width, height)]
