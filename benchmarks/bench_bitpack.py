"""Compare routes for packing labels at a fixed bit width (the choice in codec/bitpack.py).

Usage: python benchmarks/bench_bitpack.py [--pixels N] [--repeat R]

Routes: kmq's word-grouping (numpy), the bit-plane route (np.unpackbits / np.packbits), and
bitarray's ``encode``/``decode`` with a fixed-width code table (only if bitarray is installed).
Each route's output is checked against kmq's before it is timed. Prints medians of R runs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
from kmq import bitpack


def planes_pack(labels: np.ndarray, bits: int) -> bytes:
    planes = np.unpackbits(labels[:, None], axis=1)[:, 8 - bits :]
    return np.packbits(planes.reshape(-1)).tobytes()


def planes_unpack(data: bytes, count: int, bits: int) -> np.ndarray:
    stream = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    full = np.zeros((count, 8), np.uint8)
    full[:, 8 - bits :] = stream
    return np.packbits(full, axis=1).reshape(-1)


def bitarray_routes(bits: int):
    from bitarray import bitarray

    table = {i: bitarray(format(i, f"0{bits}b")) for i in range(1 << bits)}

    def pack(labels: np.ndarray, _bits: int) -> bytes:
        out = bitarray(endian="big")
        out.encode(table, labels.tolist())
        return out.tobytes()

    def unpack(data: bytes, count: int, _bits: int) -> np.ndarray:
        stream = bitarray(endian="big")
        stream.frombytes(data)
        del stream[count * bits :]
        return np.fromiter(stream.decode(table), dtype=np.uint8, count=count)

    return pack, unpack


def median_time(fn, *args, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=3984 * 2988)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bits", default="1,3,5,8")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.pixels} labels, median of {args.repeat} runs, seconds")
    print(f"{'bits':>4} {'route':<10} {'pack':>8} {'unpack':>8}")
    for bits in map(int, args.bits.split(",")):
        labels = rng.integers(0, 1 << bits, args.pixels, dtype=np.uint8)
        ref = bitpack.pack(labels, bits)
        routes = {"kmq-words": (bitpack.pack, bitpack.unpack), "bit-planes": (planes_pack, planes_unpack)}
        with contextlib.suppress(ImportError):
            routes["bitarray"] = bitarray_routes(bits)
        for name, (pack, unpack) in routes.items():
            assert pack(labels, bits) == ref, name
            assert np.array_equal(unpack(ref, labels.size, bits), labels), name
            tp = median_time(pack, labels, bits, repeat=args.repeat)
            tu = median_time(unpack, ref, labels.size, bits, repeat=args.repeat)
            print(f"{bits:>4} {name:<10} {tp:8.3f} {tu:8.3f}")


if __name__ == "__main__":
    main()
