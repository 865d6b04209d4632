"""``kmq --help`` says what is true: each payload coding's rate, and measured figures that a test re-measures."""

from __future__ import annotations

import argparse
import math
import re

import kmq
import numpy as np
import pytest
from kmq import container, images
from kmq.cli.main import CTX1_AT_K8, EPILOG, MIX_AT_K8, build_parser

RATE = re.compile(r"(\d+(?:\.\d+)?) bits? per pixel")


def help_texts() -> dict[str, str]:
    """Every text the parser shows: descriptions, epilogs and each option's help, by where it appears."""
    parser = build_parser()
    texts = {"kmq": f"{parser.description}\n{parser.epilog}"}
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        texts[name] = f"{command.description}\n{command.epilog}"
        for action in command._actions:
            if action.help:
                texts[f"{name} {'/'.join(action.option_strings) or action.dest}"] = action.help
    return texts


def test_no_help_gives_the_raw_rate_as_what_k_costs_by_default():
    # Before: "-k 8 ... write photo.kmq at 3 bits per pixel" and "(default: 8, i.e. 3 bits per pixel)",
    # while the default coding (then ctx1, now mix) writes 0.2 to 1.6 (mix: 1.5) bits per pixel at K=8.
    for where, text in help_texts().items():
        for match in RATE.finditer(text):
            if float(match.group(1)) == 3:
                before = text[max(0, match.start() - 60) : match.start()]
                assert "raw" in before, f"{where}: {text!r}"


def test_k_and_coding_say_what_each_coding_gives():
    texts = help_texts()

    assert "ceil(log2 K) bits raw" in texts["encode -k"] and "mix or ctx1" in texts["encode -k"]
    coding = texts["encode --coding"]
    assert "raw (or 0) = exactly ceil(log2 K) bits per pixel, 3 at K=8" in coding
    assert f"ctx1 (or 1) = the fast context model, range-coded, {CTX1_AT_K8}" in coding
    assert f"mix (or 2, the default) = context mixing with a match model, smaller than ctx1, {MIX_AT_K8}" in coding
    assert "where ctx1 would be smaller, ctx1 is written instead" in coding
    assert coding.index("mix (or 2") < coding.index("ctx1 (or 1") < coding.index("raw (or 0)")
    assert "photos (exactly 3 with --coding raw)" in EPILOG


def test_the_epilogs_rate_for_k8_is_the_measured_range():
    low, high = re.search(r"-k 8 .* ([\d.]+) to ([\d.]+) bits per pixel on\s+photos", EPILOG, re.DOTALL).groups()
    # The epilog's command writes the default coding, mix.
    kodak_low, kodak_high = re.search(r"([\d.]+) to ([\d.]+) bits per pixel on the 24 Kodak", MIX_AT_K8).groups()

    assert (float(low), float(high)) == (round(float(kodak_low), 1), round(float(kodak_high), 1))


def test_raw_is_exactly_ceil_log2_k_bits_per_pixel_in_the_payload():
    pixels = np.random.default_rng(0).integers(0, 256, (13, 11, 3), dtype=np.uint8)  # 143 pixels, odd
    for k in (2, 3, 5, 8, 100):
        data = kmq.encode(pixels, k, coding="raw")
        header = container.Header.unpack(data)
        assert len(data) - header.overhead == math.ceil(143 * math.ceil(math.log2(k)) / 8)


def figures(text: str) -> tuple[float, float, float]:
    """(low, high, mean) of a "0.23 to 1.61 bits per pixel on the 24 Kodak photos (mean 0.71)" figure."""
    low, high, mean = re.search(r"([\d.]+) to ([\d.]+) .* \(mean ([\d.]+)\)", text).groups()
    return float(low), float(high), float(mean)


@pytest.mark.corpus
def test_mix_and_ctx1_figures_in_the_help_are_those_measured_on_kodak(corpus):
    rates: dict[str, list[float]] = {"mix": [], "ctx1": []}
    for path in sorted((corpus / "kodak").glob("*.png")):
        indexed = kmq.quantize(images.load_image(path), 8)
        assert indexed.to_bytes()[5] == container.CODING_MIX, "the default writes mix on every Kodak photo"
        for coding in rates:
            data = indexed.to_bytes(coding)
            header = container.Header.unpack(data)
            assert container.CODINGS[header.coding] == coding
            rates[coding].append(header.payload_bits_per_pixel(len(data)))

    assert len(rates["mix"]) == len(rates["ctx1"]) == 24
    for coding, text in (("mix", MIX_AT_K8), ("ctx1", CTX1_AT_K8)):
        measured = (round(min(rates[coding]), 2), round(max(rates[coding]), 2), round(float(np.mean(rates[coding])), 2))
        assert measured == figures(text), coding
