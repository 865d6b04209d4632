"""spec/FORMAT.md and spec/vectors/ agree with the code, byte for byte."""

from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path

import kmq
import numpy as np
import pytest
from kmq import bitpack, container
from PIL import Image

SPEC = Path(__file__).resolve().parents[1] / "spec"
FORMAT = (SPEC / "FORMAT.md").read_text()
VECTORS = SPEC / "vectors"
TYPES = {"u8": "B", "u16": "H", "u32": "I"}


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", FORMAT, re.S | re.M)
    assert match, f"section {title!r} missing from FORMAT.md"
    return match.group(1)


def _table(text: str) -> list[list[str]]:
    rows = [line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # drop the heading and the rule


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate_vectors", VECTORS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_header_table_matches_header_fields():
    rows = _table(_section("1. Header"))
    assert [row[2] for row in rows] == [name for name, _ in container.HEADER_FIELDS]
    offset = 0
    for (off, size, name, typ, *_), (_, code) in zip(rows, container.HEADER_FIELDS, strict=True):
        assert int(off) == offset, name
        assert int(size) == struct.calcsize(">" + code), name
        assert typ == ("bytes" if code == "4s" else next(t for t, c in TYPES.items() if c == code)), name
        offset += int(size)
    assert offset == container.HEADER.size


def test_header_size_is_stated():
    assert f"The header is {container.HEADER.size} bytes." in FORMAT


def test_magic_row_gives_the_magic_bytes():
    magic_row = _table(_section("1. Header"))[0]
    assert container.MAGIC.hex(" ").upper() in magic_row[4]


def test_allowed_values_in_table_match_constants():
    allowed = {row[2]: row[4] for row in _table(_section("1. Header"))}
    assert allowed["version"] == str(container.VERSION)
    assert allowed["reserved"] == "0"
    assert allowed["bits"].startswith("`ceil(log2 k)`")
    assert allowed["coding"] == " or ".join(map(str, sorted(container.CODINGS)))
    assert allowed["channels"] == " or ".join(map(str, sorted(container.CHANNELS)))
    assert allowed["k"] == f"1 to {container.MAX_K}"
    assert allowed["width"] == allowed["height"] == f"1 to {container.MAX_DIMENSION}"


def test_bits_list_matches_bits_for():
    stated = re.findall(r"K=(\d+)(?:\.\.(\d+))?: (\d)", _section("1. Header"))
    covered = set()
    for low, high, bits in stated:
        for k in range(int(low), int(high or low) + 1):
            assert bitpack.bits_for(k) == int(bits), k
            covered.add(k)
    assert covered == set(range(1, container.MAX_K + 1))


def test_default_pixel_limit_is_stated():
    assert f"{container.DEFAULT_MAX_PIXELS:,} pixels" in _section("6. Decoder rules")


def test_version_history_lists_current_version():
    history = _table(_section("8. Versions"))
    assert history[-1][0] == str(container.VERSION)


def test_worked_example_hex_dump_is_what_the_encoder_writes():
    dump = re.search(r"```hex\n(.*?)```", FORMAT, re.S).group(1)
    generate = _load_generator()
    expected = bytes.fromhex(dump)
    assert container.dumps(generate.EXAMPLE_PALETTE, generate.EXAMPLE_LABELS) == expected
    assert (VECTORS / "k5_rgb_3x2.kmq").read_bytes() == expected


def test_worked_example_payload_bytes():
    labels = np.array([4, 0, 3, 1, 2, 3], dtype=np.uint8)
    assert bitpack.pack(labels, 3) == bytes([0x81, 0x94, 0xC0])


def test_crc_check_value_stated_in_spec():
    import zlib

    assert f"`{zlib.crc32(b'123456789'):08X}`" in _section("5. Checksum")


VALID = sorted(VECTORS.glob("*.kmq"))
INVALID = sorted((VECTORS / "invalid").glob("*.kmq"))


def test_vectors_are_present():
    assert len(VALID) >= 10 and len(INVALID) >= 15


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_decodes_to_its_png(path: Path):
    expected = np.asarray(Image.open(path.with_suffix(".png")))
    assert np.array_equal(kmq.decode(path.read_bytes()), expected)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_reencodes_to_the_same_bytes(path: Path):
    data = path.read_bytes()
    assert kmq.Indexed.from_bytes(data).to_bytes() == data


def _invalid_expectations() -> dict[str, str]:
    rows = _table((VECTORS / "invalid" / "README.md").read_text())
    return {row[0].strip("`").removesuffix(".kmq"): row[2].strip("`") for row in rows}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_is_rejected_with_the_documented_error(path: Path):
    error = getattr(kmq, _invalid_expectations()[path.stem])
    with pytest.raises(error):
        kmq.decode(path.read_bytes())


def test_invalid_vectors_are_reproducible_from_the_generator():
    generate = _load_generator()
    base = (VECTORS / "k5_rgb_3x2.kmq").read_bytes()
    made = generate.invalid_vectors(base)
    assert sorted(made) == sorted(p.stem for p in INVALID)
    for name, (data, error, _) in made.items():
        assert (VECTORS / "invalid" / f"{name}.kmq").read_bytes() == data, name
        assert _invalid_expectations()[name] == error, name
    assert (VECTORS / "invalid" / "README.md").read_text() == generate.invalid_readme(base)


def test_valid_vectors_are_reproducible_from_the_generator():
    generate = _load_generator()
    made = generate.valid_vectors()
    assert sorted(made) == sorted(p.stem for p in VALID)
    for name, (palette, labels) in made.items():
        assert (VECTORS / f"{name}.kmq").read_bytes() == container.dumps(palette, labels), name
    assert (VECTORS / "README.md").read_text() == generate.readme()


def test_invalid_vector_rules_exist_in_the_spec():
    rules = set(re.findall(r"\*\*(D\d)\*\*", _section("6. Decoder rules")))
    cited = {row[1].split(":")[0] for row in _table((VECTORS / "invalid" / "README.md").read_text())}
    assert cited <= rules and rules == {f"D{i}" for i in range(1, 10)}
    assert cited == rules  # every decoder rule has a vector that breaks it
