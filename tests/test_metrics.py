"""Quality figures: PSNR, plain and premultiplied."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kmq.metrics import mse, psnr


def test_psnr_of_equal_images_is_infinite():
    image = np.full((3, 4, 3), 7, np.uint8)
    assert psnr(image, image) == math.inf


def test_psnr_of_a_known_error():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one sample of 12 off by 255: MSE 255**2 / 12
    assert mse(a, b) == pytest.approx(255**2 / 12)
    assert psnr(a, b) == pytest.approx(10 * math.log10(12))


def test_premultiplied_ignores_the_colour_of_invisible_pixels():
    a = np.zeros((1, 2, 4), np.uint8)
    b = a.copy()
    b[0, 0, :3] = 200  # still alpha 0
    assert psnr(a, b, premultiplied=True) == math.inf
    assert psnr(a, b) < 20


def test_large_images_do_not_overflow():
    a = np.zeros((600, 700, 3), np.uint8)
    b = np.full_like(a, 255)
    assert psnr(a, b) == pytest.approx(0.0)
