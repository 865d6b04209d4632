"""Coverage-guided fuzzing of the ctx1 stream decoder alone, with a round-trip oracle (issue 5).

The first bytes of each input choose K (2..256) and a stripe of up to 64 x 64 pixels; the
rest is the stream. Whatever the bytes, the decoder must return a status, never crash or
read outside the stream; and a stream it accepts must be exactly what the encoder writes
for the labels it decoded to, since FORMAT.md section 5.5 makes every label plane's stream
unique. Commands are in fuzz/README.md.
"""

from __future__ import annotations

import sys

import _native
import atheris

NATIVE = _native.load()

with atheris.instrument_imports(include=["kmq"]):
    import numpy as np
    from kmq import _ctx1


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    k = provider.ConsumeIntInRange(2, 256)
    width = provider.ConsumeIntInRange(1, 64)
    height = provider.ConsumeIntInRange(1, 64)
    stream = provider.ConsumeBytes(provider.remaining_bytes())
    labels = np.zeros((height, width), np.uint8)
    status, x, y, _ = _ctx1.decode(stream, width, height, k, labels)
    if status:
        if not (0 <= x < width and 0 <= y < height):
            raise AssertionError(f"status {status} names pixel ({x}, {y}) outside {width} x {height}")
        return
    if int(labels.max()) >= k:
        raise AssertionError(f"accepted a stream with a label >= k={k}")
    again = _ctx1.encode(labels, width, height, k, len(stream) + 64)
    if again != stream:
        raise AssertionError(f"accepted a stream that is not the canonical coding of its labels (k={k})")


if __name__ == "__main__":
    print(f"fuzz_ctx1: {NATIVE}", file=sys.stderr)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
