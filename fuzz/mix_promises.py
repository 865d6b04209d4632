"""Measure the issue-5 promises (FORMAT.md 7.1) for payload coding 2 on hostile files.

``python fuzz/mix_promises.py bombs|stripes|damage|all`` prints one line per case:

- ``bombs``: tiny mix files declaring 10000 x 10000 (K = 2, 16, 256; RGB and RGBA), each decoded in
  a fresh interpreter that reports the tracemalloc peak and the growth of ru_maxrss: a 5-byte
  stream (refused early), a real one-colour stream (decoded: labels + pixels, nothing more) and
  a stream holding more pixels than declared (stops at the declared size).
- ``stripes``: decode time per pixel of a 2048 x 2048 K = 256 file with S = 1 and with the most
  stripes allowed (S = W * H / 4096 = 1024), on one thread (KMQ_THREADS=1) and on the default.
- ``damage``: every truncation and a few thousand random byte overwrites of a 64 x 64 mix file,
  with and without the checksum check: which exception classes come out.

Run it under ``nice -n 10`` (it holds up to about 0.6 GB for the RGBA bomb).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from collections import Counter

import numpy as np
from kmq import _mix, container, ctx1, mix

MB = 2**20

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time, tracemalloc
    import kmq
    data = open(sys.argv[1], "rb").read()
    import numpy  # imported before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    outcome = "decoded"
    try:
        pixels = kmq.decode(data, verify_checksum=sys.argv[2] == "crc")
        outcome = f"decoded {pixels.shape}"
    except kmq.KmqError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    growth = (after - before) * 1024  # ru_maxrss is in KiB on Linux
    print(json.dumps({"outcome": outcome, "seconds": seconds, "cpu": cpu, "traced_peak": peak, "rss_growth": growth}))
    """
)


def file_of(header: container.Header, palette: np.ndarray, payload: bytes) -> bytes:
    body = header.pack() + palette.tobytes() + payload
    return body + struct.pack(">I", zlib.crc32(body))


def table(streams: list[bytes]) -> bytes:
    return struct.pack(">H", len(streams)) + b"".join(struct.pack(">I", len(s)) for s in streams) + b"".join(streams)


def measure(data: bytes, path: str = "/tmp/kmq-mix-promise.kmq", check: str = "crc") -> dict[str, object]:
    with open(path, "wb") as out:
        out.write(data)
    result = subprocess.run([sys.executable, "-c", CHILD, path, check], capture_output=True, text=True, timeout=900)
    os.unlink(path)
    if result.returncode:
        return {"outcome": f"CHILD FAILED {result.returncode}: {result.stderr[-1500:]}"}
    return json.loads(result.stdout.split("\n")[-2])


def bombs() -> None:
    side = 10_000
    for k in (2, 16, 256):
        for channels in (3, 4):
            palette = np.random.default_rng(k).integers(0, 256, (k, channels), dtype=np.uint8)
            header = container.Header.for_image(side, side, channels, k, container.CODING_MIX)
            declared = side * side * (1 + channels)
            cases = {"5-byte stream": file_of(header, palette, table([b"\0\x12\x34\x56\x78"]))}
            if k in (2, 256):
                start = time.perf_counter()
                payload = mix.encode(np.zeros((side, side), np.uint8), palette, stripes=1)
                assert payload is not None
                cases[f"one-colour stream, S=1 ({time.perf_counter() - start:.1f} s to encode)"] = file_of(
                    header, palette, payload
                )
                # The most stripes: one row (10000 pixels) each, every stripe the same 5-byte stream.
                row = _mix.encode(np.zeros((1, side), np.uint8), side, 1, k, 1 << 20, palette.tobytes())
                cases[f"one-colour stream, S={side} of one row"] = file_of(header, palette, table([row] * side))
            for name, data in cases.items():
                got = measure(data)
                print(
                    f"bomb {side}x{side} K={k} C={channels} {name}: {len(data)} B file -> {got['outcome'][:90]}; "
                    f"{got.get('seconds', 0):.2f} s wall, {got.get('cpu', 0):.2f} s cpu, "
                    f"tracemalloc peak {got.get('traced_peak', 0) / MB:.1f} MB, "
                    f"ru_maxrss +{got.get('rss_growth', 0) / MB:.1f} MB "
                    f"(labels + pixels {declared / MB:.1f} MB, model <= {mix.MODEL_BYTES_MAX / MB:.1f} MB per thread)",
                    flush=True,
                )
    # A stream for 4 times the declared pixels (512 x 2048 coded, 512 x 512 declared: the same width
    # and hb = 20, so the declared rows decode as coded): stops at 512 x 512, the rest left over.
    palette = np.random.default_rng(1).integers(0, 256, (16, 3), dtype=np.uint8)
    big = structured_labels(512, 2048, 16)
    stream = mix.encode(big, palette, stripes=1)
    assert stream is not None
    header = container.Header.for_image(512, 512, 3, 16, container.CODING_MIX)
    got = measure(file_of(header, palette, stream), check="nocrc")
    print(
        f"over-long stream (512x2048 coded, 512x512 declared): {got['outcome'][:120]}; "
        f"tracemalloc peak {got['traced_peak'] / MB:.2f} MB"
    )


def structured_labels(width: int, height: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width]
    labels = ((x // 5 + y // 7 + (x * y) // 997) % k).astype(np.uint8)
    noise = rng.random(labels.shape) < 0.05
    labels[noise] = rng.integers(0, k, int(noise.sum()), dtype=np.uint8)
    return labels


def stripes() -> None:
    width = height = 2048
    k = 256
    palette = np.random.default_rng(3).integers(0, 256, (k, 3), dtype=np.uint8)
    labels = structured_labels(width, height, k)
    for count in (1, 4, 64, ctx1.max_stripes(width, height)):
        payload = mix.encode(labels, palette, stripes=count)
        assert payload is not None
        data = file_of(container.Header.for_image(width, height, 3, k, container.CODING_MIX), palette, payload)
        for threads in ("1", ""):
            os.environ["KMQ_THREADS"] = threads
            best_wall = best_cpu = float("inf")
            for _ in range(3):
                wall, cpu = time.perf_counter(), time.process_time()
                out = container.loads(data)[2]
                best_wall = min(best_wall, time.perf_counter() - wall)
                best_cpu = min(best_cpu, time.process_time() - cpu)
            assert (out == labels).all()
            print(
                f"{width}x{height} K={k} S={count} ({len(data)} B) threads={threads or 'default'}: "
                f"wall {best_wall * 1e9 / labels.size:.1f} ns/pixel, cpu {best_cpu * 1e9 / labels.size:.1f} ns/pixel",
                flush=True,
            )
    os.environ.pop("KMQ_THREADS", None)


def damage() -> None:
    import kmq

    palette = np.random.default_rng(4).integers(0, 256, (16, 4), dtype=np.uint8)
    data = container.dumps(palette, structured_labels(64, 64, 16), "mix", strict=True)
    rng = np.random.default_rng(5)
    for check in (True, False):
        seen: Counter[str] = Counter()
        for cut in range(len(data)):
            try:
                kmq.decode(data[:cut], verify_checksum=check)
                seen["decoded"] += 1
            except kmq.KmqError as exc:
                seen[type(exc).__name__] += 1
            except Exception as exc:  # what this counts
                seen[f"NOT A KmqError: {type(exc).__name__}: {exc}"] += 1
        print(f"64x64 mix ({len(data)} B), every truncation, verify_checksum={check}: {dict(seen)}")
        seen = Counter()
        for _ in range(5000):
            damaged = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                damaged[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
            if damaged == data:  # every overwrite wrote the byte already there
                seen["unchanged"] += 1
                continue
            try:
                pixels = kmq.decode(bytes(damaged), verify_checksum=check, max_pixels=1 << 20)
                header = container.Header.unpack(bytes(damaged), max_pixels=None)
                assert pixels.shape == (header.height, header.width, header.channels)
                seen["decoded"] += 1
            except kmq.KmqError as exc:
                seen[type(exc).__name__] += 1
            except Exception as exc:  # what this counts
                seen[f"NOT A KmqError: {type(exc).__name__}: {exc}"] += 1
        print(f"64x64 mix, 5000 random 1-3 byte overwrites, verify_checksum={check}: {dict(seen)}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, run in (("damage", damage), ("stripes", stripes), ("bombs", bombs)):
        if what in (name, "all"):
            run()
