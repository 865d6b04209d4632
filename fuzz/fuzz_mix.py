"""Coverage-guided fuzzing of the mix (payload coding 2) stream decoder alone.

The first bytes of each input choose K (2..256), the channels (3 or 4), a stripe of up to
64 x 64 pixels and the palette (the model orders labels by its colours); the rest is the
stream. Whatever the bytes, the decoder must return a status, never crash or read outside
the stream or the palette; a stream it accepts must hold only labels below K and must be
what the encoder writes for those labels. Commands are in fuzz/README.md.
"""

from __future__ import annotations

import sys

import _native
import atheris

NATIVE = _native.load()

with atheris.instrument_imports(include=["kmq"]):
    import numpy as np
    from kmq import _mix


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    k = provider.ConsumeIntInRange(2, 256)
    channels = provider.ConsumeIntInRange(3, 4)
    width = provider.ConsumeIntInRange(1, 64)
    height = provider.ConsumeIntInRange(1, 64)
    palette = provider.ConsumeBytes(k * channels).ljust(k * channels, b"\0")
    stream = provider.ConsumeBytes(provider.remaining_bytes())
    labels = np.zeros((height, width), np.uint8)
    status, x, y, _ = _mix.decode(stream, width, height, k, palette, labels, None, 0)
    if status:
        if not (0 <= x < width and 0 <= y < height):
            raise AssertionError(f"status {status} names pixel ({x}, {y}) outside {width} x {height}")
        return
    if int(labels.max()) >= k:
        raise AssertionError(f"accepted a stream with a label >= k={k}")
    again = _mix.encode(labels, width, height, k, len(stream) + 64, palette)
    if again != stream:
        raise AssertionError(f"accepted a stream that is not the encoder's coding of its labels (k={k})")


if __name__ == "__main__":
    print(f"fuzz_mix: {NATIVE}", file=sys.stderr)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
