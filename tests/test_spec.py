"""spec/FORMAT.md and spec/vectors/ agree with the code, byte for byte."""

from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path

import kmq
import numpy as np
import pytest
from kmq import bitpack, container, ctx1, mix
from PIL import Image

SPEC = Path(__file__).resolve().parents[1] / "spec"
FORMAT = (SPEC / "FORMAT.md").read_text()
VECTORS = SPEC / "vectors"
TYPES = {"u8": "B", "u16": "H", "u32": "I"}


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", FORMAT, re.S | re.M)
    assert match, f"section {title!r} missing from FORMAT.md"
    return match.group(1)


def _table(text: str) -> list[list[str]]:
    rows = [line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # drop the heading and the rule


def _load_reference():
    spec = importlib.util.spec_from_file_location("kmq_reference", SPEC / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


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
    assert allowed["coding"] == ", ".join(map(str, sorted(container.CODINGS)[:-1])) + f" or {max(container.CODINGS)}"
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
    assert f"{container.DEFAULT_MAX_PIXELS:,} pixels" in _section("7. Decoder rules")


def test_version_history_lists_current_version():
    history = _table(_section("9. Versions"))
    assert history[-1][0] == str(container.VERSION)


def _hex_dump(section: str) -> bytes:
    return bytes.fromhex(re.search(r"```hex\n(.*?)```", section, re.S).group(1))


def test_worked_example_hex_dump_is_what_the_encoder_writes():
    expected = _hex_dump(_section("4. Worked example of coding 0"))
    generate = _load_generator()
    assert container.dumps(generate.EXAMPLE_PALETTE, generate.EXAMPLE_LABELS, "raw") == expected
    assert (VECTORS / "k5_rgb_3x2.kmq").read_bytes() == expected


def test_ctx1_worked_example_hex_dump_is_what_the_encoder_writes():
    expected = _hex_dump(_section("5. Payload coding 1: ctx1"))
    generate = _load_generator()
    assert container.dumps(generate.EXAMPLE_PALETTE, generate.EXAMPLE_LABELS, "ctx1", strict=True) == expected
    assert (VECTORS / "ctx1_k5_rgb_3x2.kmq").read_bytes() == expected


def test_ctx1_worked_example_trace_is_the_reference_coders():
    section = _section("5. Payload coding 1: ctx1")
    trace_table = section[section.index("| pixel | L |") :]
    rows = _table(trace_table.split("\n\n")[0])
    trace: list[tuple[object, ...]] = []
    stream = reference.encode_stripe([[4, 0, 3], [1, 2, 3]], 5, trace)
    expected = [
        [f"({x}, {y})", " ".join(map(str, cands)) or "-", table, str(slot), str(p), str(bit)]
        for x, y, cands, table, slot, p, bit in trace
    ]
    assert rows == expected
    assert f"The stream is these bytes, {len(stream)} long:\n\n```\n{stream.hex(' ').upper()}\n```" in section


def test_ctx1_stripe_formula_in_spec_matches_the_encoder():
    text = _section("5. Payload coding 1: ctx1")
    assert f"ceil(W * H / 2^{ctx1.STRIPE_PIXELS.bit_length() - 1})" in text
    assert f"min(H, {ctx1.MAX_STRIPES}," in text
    assert ctx1.stripe_count(768, 512) == 1, "a Kodak image: one stripe, as the spec says"
    assert ctx1.stripe_count(3984, 2988) == 6, "the 12 MP photo: six"


def test_ctx1_rate_table_in_spec_matches_the_reference():
    rates = []
    slot = reference.Slot()
    for _ in range(9):
        rates.append(min(6, (slot.c + 1).bit_length()))
        slot.update(0)
    assert "1, 2, 2, 3, 3, 3, 3, 4, ... up to 6" in _section("5. Payload coding 1: ctx1")
    assert rates[:8] == [1, 2, 2, 3, 3, 3, 3, 4]


def test_worked_example_payload_bytes():
    labels = np.array([4, 0, 3, 1, 2, 3], dtype=np.uint8)
    assert bitpack.pack(labels, 3) == bytes([0x81, 0x94, 0xC0])


def test_crc_check_value_stated_in_spec():
    import zlib

    assert f"`{zlib.crc32(b'123456789'):08X}`" in _section("6. Checksum")


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
    header, palette, labels = container.loads(data)
    if header.coding == container.CODING_RAW:
        assert container.dumps(palette, labels, "raw") == data
    else:
        stripes = int.from_bytes(data[20 + palette.size :][:2], "big")
        if header.coding == container.CODING_CTX1:
            payload = ctx1.encode(labels, header.k, stripes=stripes)
        else:
            payload = mix.encode(labels, palette, stripes=stripes)
        assert data[20 + palette.size : -4] == payload


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_decodes_with_the_reference_decoder_to_its_png(path: Path):
    expected = np.asarray(Image.open(path.with_suffix(".png")))
    assert reference.pixels(path.read_bytes()) == expected.tobytes()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_is_rejected_by_the_reference_decoder_under_the_same_rule(path: Path):
    rule = {row[0].strip("`").removesuffix(".kmq"): row[1] for row in _invalid_rows()}[path.stem].split(":")[0]
    with pytest.raises(ValueError, match=rf"^{rule} "):
        reference.read(path.read_bytes())


def test_ctx1_vectors_cover_what_the_spec_promises():
    names = {p.stem for p in VALID if p.stem.startswith("ctx1_")}
    ks = {int(re.match(r"ctx1_k(\d+)_", name).group(1)) for name in names}
    assert {2, 3, 8, 16, 17, 100, 256} <= ks
    assert any("1x1" in n for n in names) and any("23x1" in n for n in names) and any("1x23" in n for n in names)
    assert any("stripes" in n for n in names)


def _invalid_rows() -> list[list[str]]:
    return _table((VECTORS / "invalid" / "README.md").read_text())


def _invalid_expectations() -> dict[str, str]:
    return {row[0].strip("`").removesuffix(".kmq"): row[2].strip("`") for row in _invalid_rows()}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_is_rejected_with_the_documented_error(path: Path):
    error = getattr(kmq, _invalid_expectations()[path.stem])
    with pytest.raises(error):
        kmq.decode(path.read_bytes())


def test_invalid_vectors_are_reproducible_from_the_generator():
    generate = _load_generator()
    bases = generate.bases()
    made = generate.invalid_vectors(*bases)
    assert sorted(made) == sorted(p.stem for p in INVALID)
    for name, (data, error, _) in made.items():
        assert (VECTORS / "invalid" / f"{name}.kmq").read_bytes() == data, name
        assert _invalid_expectations()[name] == error, name
    assert (VECTORS / "invalid" / "README.md").read_text() == generate.invalid_readme(*bases)


def test_valid_vectors_are_reproducible_from_the_generator():
    generate = _load_generator()
    made = generate.valid_vectors()
    assert sorted(made) == sorted(p.stem for p in VALID)
    for name, (palette, labels, coding, stripes) in made.items():
        assert (VECTORS / f"{name}.kmq").read_bytes() == generate.encode_vector(palette, labels, coding, stripes), name
    assert (VECTORS / "README.md").read_text() == generate.readme()


def test_invalid_vector_rules_exist_in_the_spec():
    rules = set(re.findall(r"\*\*(D\d+)\*\*", _section("7. Decoder rules")))
    cited = {row[1].split(":")[0] for row in _invalid_rows()}
    assert cited <= rules and rules == {f"D{i}" for i in range(1, 11)}
    assert cited == rules  # every decoder rule has a vector that breaks it


# -- payload coding 2 (mix): the spec's section 11, reference.py and kmq agree ------------------

MIX_VALID = [p for p in VALID if p.stem.startswith("mix_")]
MIX_INVALID = [p for p in INVALID if p.stem.startswith("mix_")]


def test_coding_meanings_in_table_match_codings():
    meaning = {row[2]: row[5] for row in _table(_section("1. Header"))}["coding"]
    stated = dict(re.findall(r"(\d+) = (\w+)", meaning))
    assert {int(number): name for number, name in stated.items()} == container.CODINGS
    assert f"{max(container.CODINGS) + 1}-255 reserved" in meaning
    assert f"codings {max(container.CODINGS) + 1}-255" in _section("9. Versions")


def test_mix_vectors_cover_what_the_task_promises():
    names = {p.stem for p in MIX_VALID}
    ks = {int(re.match(r"mix_k(\d+)_", name).group(1)) for name in names}
    assert {2, 3, 8, 16, 17, 100, 256} <= ks
    assert "mix_k5_rgb_3x2" in names and any("rgba" in n for n in names)
    assert any("1x1" in n for n in names) and any("23x1" in n for n in names) and any("1x23" in n for n in names)
    assert any("stripes" in n for n in names) and any("tiles" in n for n in names)
    assert len(MIX_INVALID) >= 6


def _mix_parts(data: bytes) -> tuple[np.ndarray, np.ndarray, int, bytes]:
    header, palette, labels = container.loads(data)
    assert header.coding == container.CODING_MIX
    payload = data[20 + palette.size : -4]
    return palette, labels, int.from_bytes(payload[:2], "big"), payload


@pytest.mark.parametrize("path", MIX_VALID, ids=lambda p: p.stem)
def test_mix_vector_decodes_to_its_png_with_both_decoders(path: Path):
    data = path.read_bytes()
    expected = np.asarray(Image.open(path.with_suffix(".png")))
    assert reference.pixels(data) == expected.tobytes()
    assert np.array_equal(kmq.decode(data), expected)
    _, _, labels = reference.read(data)
    assert labels == container.loads(data)[2].reshape(-1).tolist()


@pytest.mark.parametrize("path", MIX_VALID, ids=lambda p: p.stem)
def test_mix_vector_is_the_reference_encoders_and_kmqs(path: Path):
    data = path.read_bytes()
    palette, labels, stripes, payload = _mix_parts(data)
    entries = [bytes(entry) for entry in palette]
    assert reference.encode_payload_mix(labels.tolist(), entries, stripes) == payload
    assert mix.encode(labels, palette, stripes=stripes) == payload
    if stripes == ctx1.stripe_count(labels.shape[1], labels.shape[0]):
        assert container.dumps(palette, labels, "mix", strict=True) == data


@pytest.mark.parametrize("path", MIX_INVALID, ids=lambda p: p.stem)
def test_mix_invalid_vector_is_rejected_by_both_with_the_named_error(path: Path):
    data = path.read_bytes()
    row = {r[0].strip("`").removesuffix(".kmq"): r for r in _invalid_rows()}[path.stem]
    rule, error = row[1].split(":")[0], getattr(kmq, row[2].strip("`"))
    with pytest.raises(ValueError, match=rf"^{rule} "):
        reference.read(data)
    with pytest.raises(kmq.KmqError) as caught:
        kmq.decode(data)
    assert type(caught.value) is error  # the family itself, not a subclass (TruncatedError is a FormatError)


def test_mix_worked_example_hex_dump_is_what_both_encoders_write():
    section = _section("11. Payload coding 2: mix")
    expected = _hex_dump(section)
    generate = _load_generator()
    assert container.dumps(generate.EXAMPLE_PALETTE, generate.EXAMPLE_LABELS, "mix", strict=True) == expected
    assert (VECTORS / "mix_k5_rgb_3x2.kmq").read_bytes() == expected
    entries = [bytes(entry) for entry in generate.EXAMPLE_PALETTE]
    stream = reference.encode_stripe_mix(generate.EXAMPLE_LABELS.tolist(), entries)
    assert f"one stream of {len(stream)} bytes `{stream.hex(' ').upper()}`" in section
    assert f"The complete {len(expected)}-byte file" in section


def test_mix_worked_trace_is_the_reference_coders():
    section = _section("11. Payload coding 2: mix")
    rows = _table(section[section.index("| pixel | L | decision |") :].split("\n\n")[0])
    trace: list[tuple[object, ...]] = []
    entries = [bytes(entry) for entry in _load_generator().EXAMPLE_PALETTE]
    reference.encode_stripe_mix([[4, 0, 3], [1, 2, 3]], entries, trace)
    expected = [
        [f"({x}, {y})", " ".join(map(str, cands)) or "-", what, " ".join(map(str, ps)), str(p1), str(bit)]
        for x, y, cands, what, ps, p1, bit in trace
    ]
    assert rows == expected


def test_mix_squash_table_and_hash_in_spec_match_the_reference():
    section = _section("11. Payload coding 2: mix")
    table = re.search(r"SQ = \[(.*?)\]", section, re.S).group(1)
    assert [int(v) for v in table.split(",")] == reference.SQ
    assert reference.squash(0) == 2047 and reference.squash(2047) == 4094 and reference.squash(-2047) == 1
    assert all(reference.STRETCH[reference.squash(d)] <= d for d in range(-2047, 2048))
    assert "43690, 26214, 18724" in section
    assert [131072 // (2 * n + 3) for n in range(3)] == [43690, 26214, 18724]


def test_a_mix_vector_has_an_escape_bit_whose_two_te_slots_coincide(monkeypatch: pytest.MonkeyPatch):
    shared = []
    mix_bit = reference.MixModel.mix

    def counting(self, slots, weights, lr, bit, what):
        if len({(id(table), index) for table, index in slots}) < len(slots):
            shared.append(what)
        return mix_bit(self, slots, weights, lr, bit, what)

    monkeypatch.setattr(reference.MixModel, "mix", counting)
    reference.read((VECTORS / "mix_k20_rgb_50x20.kmq").read_bytes())
    assert shared and all(what.startswith("escape") for what in shared)


def test_mix_vectors_list_in_section_10_is_the_vectors():
    sentence = re.search(r"The `mix_\*` files cover coding 2: the worked\s+example, K = ([\d, and]+),", FORMAT)
    stated = {int(k) for k in re.findall(r"\d+", sentence.group(1))}
    named = {int(re.match(r"mix_k(\d+)_", p.stem).group(1)) for p in MIX_VALID if p.stem != "mix_k5_rgb_3x2"}
    assert stated == named


def test_mix_invalid_vectors_break_both_escape_rules():
    rows = {r[0].strip("`").removesuffix(".kmq"): r for r in _invalid_rows()}
    assert rows["mix_escape_7_of_5"][1].startswith("D10: escape to label 7 >= k = 5")
    assert rows["mix_escape_to_candidate"][1].startswith("D10: escape to a value that is a candidate")
    assert not any("rank" in name for name in rows)
    with pytest.raises(ValueError, match="escaped label 7 >= k"):
        reference.read((VECTORS / "invalid" / "mix_escape_7_of_5.kmq").read_bytes())
    with pytest.raises(ValueError, match="escaped label 4 is a candidate"):
        reference.read((VECTORS / "invalid" / "mix_escape_to_candidate.kmq").read_bytes())


@pytest.mark.parametrize("k", [2, 3, 5, 17, 100, 256])
def test_mix_random_planes_agree_both_ways(k: int):
    rng = np.random.default_rng(k)
    for height, width in ((1, 1), (1, 9), (9, 1), (7, 11)):
        palette = rng.integers(0, 256, (k, 3 + k % 2)).astype(np.uint8)
        labels = rng.integers(0, k, (height, width)).astype(np.uint8)
        entries = [bytes(entry) for entry in palette]
        payload = mix.encode(labels, palette, stripes=1)
        assert reference.encode_payload_mix(labels.tolist(), entries, 1) == payload
        assert reference.decode_stripe_mix(payload[6:], width, height, entries) == labels.tolist()


@pytest.mark.parametrize("k", [2, 3, 8, 17])
def test_mix_stroke_planes_agree_both_ways_and_use_t5(k: int):
    """1-pixel strokes (text-like): the order-13 neighbourhood of h5 (WWW, NNWW, NNW, NNEE) matters."""
    rng = np.random.default_rng(100 + k)
    labels = np.zeros((24, 30), np.uint8)
    for _ in range(40):
        y, x = rng.integers(0, 24), rng.integers(0, 30)
        labels[y, x : x + rng.integers(2, 8)] = rng.integers(1, k)
        labels[y : y + rng.integers(2, 8), x] = rng.integers(1, k)
    palette = rng.integers(0, 256, (k, 3)).astype(np.uint8)
    entries = [bytes(entry) for entry in palette]
    payload = mix.encode(labels, palette, stripes=1)
    trace: list[tuple[object, ...]] = []
    assert reference.encode_stripe_mix(labels.tolist(), entries, trace) == payload[6:]
    assert reference.decode_stripe_mix(payload[6:], 30, 24, entries) == labels.tolist()
    flags = [ps for _, _, _, what, ps, _, _ in trace if what.startswith("flag")]
    assert all(len(ps) == 6 for ps in flags) and any(ps[5] != 32768 for ps in flags)
