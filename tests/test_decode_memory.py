"""Peak memory of decoding: the labels and the pixels (W * H * (1 + C) bytes), no copies on top.

Each case runs in a fresh interpreter and reports how far its peak resident size (ru_maxrss)
grew while decoding. The default run decodes 16.8-megapixel files; KMQ_THOROUGH=1 adds the
decompression bombs at the default pixel limit (up to 0.9 GB each) and the commands.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from kmq import container, ctx1

MB = 2**20
#: What a fresh interpreter's high-water mark may move besides the arrays (allocator slack,
#: thread stacks, the model of coding 1).
SLACK = 24 * MB
thorough = pytest.mark.skipif(not os.environ.get("KMQ_THOROUGH"), reason="needs about 1 GB; KMQ_THOROUGH=1 runs it")

MEASURE = textwrap.dedent(
    """
    import resource, sys
    import kmq
    from kmq.cli.main import main
    path, how = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if how == "kmq.decode":
        pixels = kmq.decode(data)
    elif how == "kmq.read":
        pixels = kmq.read(path)
    else:  # a command line
        sys.argv = ["kmq", *sys.argv[2:]]
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, exit.code
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024)  # ru_maxrss is in KiB on Linux
    """
)


def growth(path: Path, *how: str) -> int:
    """Bytes by which decoding ``path`` (``kmq.decode``, ``kmq.read`` or a kmq command line) raised the peak."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), *how], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


def one_colour_file(path: Path, side: int, channels: int, coding: int) -> Path:
    """A valid side x side file of one colour: K = 1 (27 or 28 bytes) or K = 2 in coding 1."""
    k = 1 if coding == container.CODING_RAW else 2
    header = container.Header.for_image(side, side, channels, k, coding)
    payload = b"" if k == 1 else ctx1.encode(np.zeros((side, side), np.uint8), 2)
    body = header.pack() + bytes(k * channels) + payload
    path.write_bytes(body + struct.pack(">I", zlib.crc32(body)))
    return path


needs_linux = pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")


@needs_linux
@pytest.mark.parametrize("coding", [container.CODING_RAW, container.CODING_CTX1], ids=["k1-raw", "k2-ctx1"])
@pytest.mark.parametrize("channels", [3, 4])
def test_decode_holds_the_labels_and_the_pixels_and_nothing_more(tmp_path, coding, channels):
    side = 4096
    path = one_colour_file(tmp_path / "big.kmq", side, channels, coding)
    assert growth(path, "kmq.decode") <= side * side * (1 + channels) + SLACK


@needs_linux
def test_read_from_a_path_costs_what_decode_costs(tmp_path):
    side = 4096
    path = one_colour_file(tmp_path / "big.kmq", side, 3, container.CODING_CTX1)
    assert growth(path, "kmq.read") <= side * side * 4 + SLACK


@needs_linux
@thorough
@pytest.mark.parametrize("coding", [container.CODING_RAW, container.CODING_CTX1], ids=["k1-raw", "k2-ctx1"])
@pytest.mark.parametrize("channels", [3, 4])
def test_bombs_at_the_default_limit_decode_in_what_the_spec_states(tmp_path, coding, channels):
    side = 13377  # side * side = 178,944,129 <= DEFAULT_MAX_PIXELS
    assert side * side <= container.DEFAULT_MAX_PIXELS
    path = one_colour_file(tmp_path / "bomb.kmq", side, channels, coding)
    # FORMAT.md D5: 716 MB of labels and RGB (895 MB with alpha).
    assert growth(path, "kmq.decode") <= side * side * (1 + channels) + SLACK


@needs_linux
@thorough
def test_info_on_a_bomb_holds_the_labels_only(tmp_path):
    side = 13377
    path = one_colour_file(tmp_path / "bomb.kmq", side, 3, container.CODING_CTX1)
    assert growth(path, "info", str(path)) <= side * side + SLACK


@needs_linux
@thorough
def test_decode_command_on_a_bomb_holds_the_labels_and_a_few_png_bands(tmp_path):
    side = 13377
    path = one_colour_file(tmp_path / "bomb.kmq", side, 3, container.CODING_CTX1)
    # A palette PNG is written from the labels, a band of 4 MiB per thread at a time: no pixels.
    assert growth(path, "decode", str(path), "-o", str(tmp_path / "bomb.png")) <= side * side + 2 * SLACK
