"""Coding 1 with many stripes: refusing a file whose first stripe is bad, and decoding a good one (issue 11, B3).

Usage (from the repository root):
    python benchmarks/bench_stripes.py [--repeat R] [--side N] [--stripes S]

A side x side plane at K=16 (the largest model, 1.2 MB of slots) is written with S stripes (default
4096 stripes of 4096 pixels, the most the format allows); then the first byte of stripe 0 is
damaged and the checksum fixed. The rows are the best of ``--repeat`` runs of ``kmq.decode`` on the
bad file (kmq stops at stripe 0) and on the good one (every stripe starts a fresh model, which kmq
resets from the slots the previous stripe used instead of re-making it). ``--backend python`` times
the plain-Python coder (use a small ``--side``).
"""

from __future__ import annotations

import argparse
import contextlib
import struct
import time
import zlib
from collections.abc import Callable

import kmq
import numpy as np
from kmq import container, ctx1


def ctx1_file(labels: np.ndarray, k: int, streams: list[bytes] | None, stripes: int) -> tuple[bytes, list[bytes]]:
    height, width = labels.shape
    if streams is None:
        payload = ctx1.encode(labels, k, stripes=stripes)
        spans = ctx1.stripe_table(memoryview(payload), width, height)
        streams = [payload[a:b] for a, b in spans]
    head = container.Header.for_image(width, height, 3, k, container.CODING_CTX1).pack()
    table = struct.pack(">H", len(streams)) + b"".join(struct.pack(">I", len(s)) for s in streams)
    body = head + bytes(3 * k) + table + b"".join(streams)
    return body + struct.pack(">I", zlib.crc32(body)), streams


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.suppress(kmq.FormatError):
            run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--stripes", type=int, default=None, help="default: the most allowed")
    parser.add_argument("--backend", choices=["c", "python"], default="c")
    args = parser.parse_args()
    if args.backend == "python":
        from kmq import _ctx1_py

        ctx1._backend = _ctx1_py
    side = args.side
    stripes = args.stripes or ctx1.max_stripes(side, side)
    y, x = np.mgrid[0:side, 0:side]
    labels = ((x // 5 + y // 4 + (x * y) // 37) % 16).astype(np.uint8)
    good, streams = ctx1_file(labels, 16, None, stripes)
    bad, _ = ctx1_file(labels, 16, [b"\x01" + streams[0][1:], *streams[1:]], stripes)
    print(f"{side}x{side}, K=16, {stripes} stripes, {len(good):,} bytes, {getattr(ctx1, 'BACKEND', 'C')} coder")
    print(f"refuse (stripe 0 bad)  {best(args.repeat, lambda: kmq.decode(bad)):.3f} s")
    print(f"decode (good file)     {best(args.repeat, lambda: kmq.decode(good)):.3f} s")


if __name__ == "__main__":
    main()
