"""Colour spaces: Oklab and premultiplied alpha, both ways."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from kmq.colour import from_space, oklab_to_srgb, srgb_to_oklab, to_space


def test_oklab_reference_values():
    # Ottosson's definition: white is L=1, a=b=0; black is all zero.
    assert np.allclose(srgb_to_oklab(np.array([255.0, 255.0, 255.0])), [1.0, 0.0, 0.0], atol=1e-4)
    assert np.allclose(srgb_to_oklab(np.array([0.0, 0.0, 0.0])), [0.0, 0.0, 0.0])
    # Published value for sRGB red (1, 0, 0): L 0.62796, a 0.22486, b 0.12585.
    assert np.allclose(srgb_to_oklab(np.array([255.0, 0.0, 0.0])), [0.62796, 0.22486, 0.12585], atol=1e-4)


def test_every_byte_colour_survives_oklab_and_back():
    grid = np.stack(np.meshgrid(*[np.arange(0, 256, 5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    assert np.array_equal(from_space(to_space(grid.astype(np.uint8), "oklab"), "oklab", 3), grid)
    # The published matrices have 10 digits, so the round trip is good to about 1e-4 of a byte step.
    assert np.allclose(oklab_to_srgb(srgb_to_oklab(grid)), grid, atol=1e-3)


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_rgba_is_premultiplied_and_comes_back(space):
    colours = np.array([[200, 100, 50, 255], [200, 100, 50, 128], [9, 9, 9, 0]], np.uint8)
    coords = to_space(colours, space)
    assert coords.shape == (3, 4)
    assert np.allclose(coords[2], 0.0)  # fully transparent: one point, whatever its colour
    back = from_space(coords, space, 4)
    assert np.array_equal(back[:2], colours[:2])
    assert back[2].tolist() == [0, 0, 0, 0]


def test_the_stored_srgb_tables_are_the_decimal_computation():
    colour = sys.modules["kmq.colour"]
    stored, computed = colour._byte_tables(), colour._decimal_tables()
    for table, reference in zip(stored, computed, strict=True):
        assert table.tobytes() == reference.tobytes()  # every bit
