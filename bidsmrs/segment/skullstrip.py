"""Decide whether a T1w is already brain-extracted, and simple intensity masks (pure numpy/scipy)."""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

__all__ = ["is_skull_stripped", "largest_component", "nonzero_mask", "head_mask"]

logger = logging.getLogger(__name__)

#: A brain-extracted T1w has most of its field of view exactly zero (BET/ANTs/SynthStrip output).
MIN_ZERO_FRACTION = 0.30
#: ...and its non-zero part is one blob of brain size. Adult intracranial volume is ~1.2–1.8 L
#: (e.g. Buckner et al. 2004, NeuroImage 23:724); whole heads are several litres. Volume in mL.
BRAIN_VOLUME_RANGE_ML = (400.0, 2600.0)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 6-connected component of a boolean mask, with its holes filled.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean 3-D mask.

    Returns
    -------
    numpy.ndarray
        Boolean mask of the same shape (all False if ``mask`` is empty).
    """
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndimage.binary_fill_holes(labels == int(np.argmax(sizes)))


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """Brain mask of an already brain-extracted image: its largest non-zero blob, holes filled."""
    return largest_component(np.asarray(data) != 0)


def is_skull_stripped(data: np.ndarray, affine: np.ndarray) -> bool:
    """Guess whether a T1w image is already brain-extracted.

    Parameters
    ----------
    data : numpy.ndarray
        3-D T1w intensities (arbitrary units).
    affine : numpy.ndarray
        4×4 voxel-to-world affine (mm).

    Returns
    -------
    bool
        True if at least ``MIN_ZERO_FRACTION`` of the voxels are exactly 0 and the largest
        non-zero blob has a brain-like volume (``BRAIN_VOLUME_RANGE_ML``).

    Examples
    --------
    >>> head = np.ones((40, 40, 40)); is_skull_stripped(head, np.eye(4) * [4, 4, 4, 1])
    False
    """
    d = np.asarray(data)
    zero_fraction = float(np.mean(d == 0))
    if zero_fraction < MIN_ZERO_FRACTION:
        logger.debug("not skull-stripped: %.2f of voxels are zero", zero_fraction)
        return False
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, float)[:3, :3]))) / 1000.0
    volume_ml = float(nonzero_mask(d).sum()) * voxel_ml
    lo, hi = BRAIN_VOLUME_RANGE_ML
    stripped = lo <= volume_ml <= hi
    logger.debug("zero fraction %.2f, non-zero blob %.0f mL -> skull-stripped=%s",
                 zero_fraction, volume_ml, stripped)
    return stripped


def head_mask(data: np.ndarray) -> np.ndarray:
    """Rough head (foreground) mask of a T1w with background noise.

    Thresholds at 10 % of the 99th intensity percentile, keeps the largest blob, closes it
    and fills holes. Used only to weight N4 and to crop registration, never as a brain mask.

    Parameters
    ----------
    data : numpy.ndarray
        3-D T1w intensities.

    Returns
    -------
    numpy.ndarray
        Boolean mask.
    """
    d = np.asarray(data, np.float32)
    positive = d[d > 0]
    if positive.size == 0:
        return np.zeros(d.shape, bool)
    fg = d > 0.1 * float(np.percentile(positive, 99))
    fg = ndimage.binary_closing(fg, iterations=2)
    return largest_component(fg)
