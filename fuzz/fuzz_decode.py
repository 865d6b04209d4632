"""Coverage-guided fuzzing of kmq's whole-file decoder with atheris (issue 5; not run by CI).

Every input is a candidate .kmq file. It must decode to an image of the header's shape or
raise a KmqError; anything else (another exception, a crash, a sanitizer report, a hang
past libFuzzer's -timeout) is a finding. The checksum check is off, as in libpng's fuzz
target, so damaged payloads reach the decoders. Commands are in fuzz/README.md.
"""

from __future__ import annotations

import sys

import _native
import atheris

NATIVE = _native.load()

with atheris.instrument_imports(include=["kmq"]):
    import kmq
    from kmq import container

#: Small enough that no input can make the decoder allocate much, large enough for the seeds.
MAX_PIXELS = 1 << 18


def test_one_input(data: bytes) -> None:
    try:
        pixels = kmq.decode(data, max_pixels=MAX_PIXELS, verify_checksum=False)
    except kmq.KmqError:
        return
    header = container.Header.unpack(data, max_pixels=None)
    if pixels.shape != (header.height, header.width, header.channels):
        raise AssertionError(f"decoded {pixels.shape} from a header of {header}")


if __name__ == "__main__":
    print(f"fuzz_decode: {NATIVE}", file=sys.stderr)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
