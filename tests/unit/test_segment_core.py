"""Segmentation result, ITK thread context and validation helpers (no ANTs needed)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from bidsmrs.segment.itk_threads import ITK_THREADS_VARIABLE, itk_threads
from bidsmrs.segment.result import Segmentation
from bidsmrs.segment.validation import cube_weights, rigid_matrix, voxel_fractions


def test_itk_threads_sets_and_restores_the_variable(monkeypatch):
    monkeypatch.setenv(ITK_THREADS_VARIABLE, "7")
    with itk_threads(1):
        assert os.environ[ITK_THREADS_VARIABLE] == "1"
    assert os.environ[ITK_THREADS_VARIABLE] == "7"
    monkeypatch.delenv(ITK_THREADS_VARIABLE)
    with itk_threads(2):
        assert os.environ[ITK_THREADS_VARIABLE] == "2"
    assert ITK_THREADS_VARIABLE not in os.environ
    with pytest.raises(ValueError):
        with itk_threads(0):
            pass


def test_segmentation_checks_shapes_and_computes_fractions():
    shape = (4, 4, 4)
    mask = np.ones(shape, bool)
    seg = Segmentation(gm=np.full(shape, 0.5, np.float32), wm=np.full(shape, 0.3, np.float32),
                       csf=np.full(shape, 0.2, np.float32), brain_mask=mask, affine=np.eye(4),
                       method="test")
    np.testing.assert_allclose(seg.fractions(), (0.5, 0.3, 0.2), atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        Segmentation(gm=np.zeros((2, 2, 2)), wm=np.zeros(shape), csf=np.zeros(shape), brain_mask=mask,
                     affine=np.eye(4), method="test")


def test_rigid_matrix_is_a_rotation_plus_shift():
    m = rigid_matrix((10, -20, 30), (1, 2, 3))
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(m[:3, :3]), 1.0)
    np.testing.assert_allclose(m[:3, 3], [1, 2, 3])


def test_cube_weights_select_a_20mm_cube_in_the_moved_frame():
    affine = np.eye(4)
    affine[:3, 3] = -50
    w = cube_weights((100, 100, 100), affine, (0, 0, 0))
    assert w.sum() == 20 ** 3
    moved = rigid_matrix((0, 0, 0), (10, 0, 0))
    w2 = cube_weights((100, 100, 100), moved @ affine, (0, 0, 0), frame=moved)
    np.testing.assert_array_equal(w, w2)  # the cube moves with the subject


def test_voxel_fractions_normalise_by_total_tissue():
    gm, wm, csf = (np.full((2, 2, 2), v) for v in (0.4, 0.4, 0.0))
    np.testing.assert_allclose(voxel_fractions(gm, wm, csf, np.ones((2, 2, 2))), [0.5, 0.5, 0.0])
