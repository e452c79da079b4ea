"""Skull-stripped detection and simple masks (bidsmrs.segment.skullstrip)."""
from __future__ import annotations

import numpy as np

from bidsmrs.segment.skullstrip import head_mask, is_skull_stripped, largest_component, nonzero_mask

AFFINE_1MM = np.eye(4)


def _ball(shape, centre, radius):
    idx = np.indices(shape)
    return sum((i - c) ** 2 for i, c in zip(idx, centre)) <= radius ** 2


def test_brain_only_image_is_detected_as_skull_stripped():
    rng = np.random.default_rng(0)
    shape = (160, 190, 160)
    brain = _ball(shape, (80, 95, 80), 68)  # ~1.3 L
    data = np.where(brain, 600 + rng.normal(0, 30, shape), 0.0)
    assert is_skull_stripped(data, AFFINE_1MM)
    assert nonzero_mask(data).sum() == brain.sum()


def test_head_with_noisy_background_is_not_skull_stripped():
    rng = np.random.default_rng(1)
    shape = (120, 140, 120)
    head = _ball(shape, (60, 70, 60), 55)
    data = np.abs(rng.normal(0, 5, shape)) + np.where(head, 500.0, 0.0)
    assert not is_skull_stripped(data, AFFINE_1MM * [1.5, 1.5, 1.5, 1])
    mask = head_mask(data)
    assert abs(int(mask.sum()) - int(head.sum())) < 0.02 * head.sum()


def test_zero_background_head_of_head_size_is_not_skull_stripped():
    shape = (200, 230, 200)
    head = _ball(shape, (100, 115, 100), 95)  # ~3.6 L: a whole head with zeroed background
    assert not is_skull_stripped(np.where(head, 400.0, 0.0), AFFINE_1MM)


def test_largest_component_keeps_biggest_blob_and_fills_holes():
    m = np.zeros((30, 30, 30), bool)
    m[2:20, 2:20, 2:20] = True
    m[8:12, 8:12, 8:12] = False  # a hole
    m[25:28, 25:28, 25:28] = True  # a small separate blob
    out = largest_component(m)
    assert out[10, 10, 10] and not out[26, 26, 26]
    assert out.sum() == 18 ** 3
