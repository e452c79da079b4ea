"""Voxel mask geometry: analytic volumes, oblique/flipped affines, partial field of view."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from bidsmrs.quantify.voxel_mask import mrs_voxel_corners, voxel_mask


def _mrs_affine(size_mm, centre_mm, rotation=np.eye(3)):
    a = np.eye(4)
    a[:3, :3] = rotation @ np.diag(size_mm)
    a[:3, 3] = centre_mm
    return a


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_axis_aligned_voxel_covers_whole_t1_voxels_exactly():
    # 1 mm grid, identity affine: voxel i spans [i-0.5, i+0.5]. A 10x8x6 mm box centred at
    # (14.5, 13.5, 12.5) spans exactly voxels 10..19, 10..17, 10..15.
    vm = voxel_mask(_mrs_affine((10, 8, 6), (14.5, 13.5, 12.5)), (40, 40, 40), np.eye(4))
    expected = np.zeros((40, 40, 40), np.float32)
    expected[10:20, 10:18, 10:16] = 1
    np.testing.assert_array_equal(vm.mask, expected)
    assert vm.mask.dtype == np.float32
    assert vm.voxel_volume_ml == pytest.approx(0.48)
    assert vm.mask_volume_ml == pytest.approx(0.48)
    assert vm.overlap_fraction == 1.0


def test_edge_through_voxel_centres_gives_half_voxels():
    # Box edges at integer positions cut grid voxels in half: 4x4x4 supersampling gives 0.5
    # on faces, 0.25 on edges, 0.125 at corners.
    vm = voxel_mask(_mrs_affine((4, 4, 4), (12, 12, 12)), (30, 30, 30), np.eye(4))
    m = vm.mask
    assert m[12, 12, 12] == 1.0
    assert m[10, 12, 12] == 0.5 and m[14, 12, 12] == 0.5
    assert m[10, 10, 12] == 0.25
    assert m[10, 10, 10] == 0.125
    assert m[9, 12, 12] == 0.0
    assert m.sum() == pytest.approx(64.0)


def test_oblique_and_flipped_voxels_keep_their_volume():
    size = (20, 15, 25)
    nominal = 20 * 15 * 25 / 1000
    t1_shape = (100, 100, 90)
    t1_aff = np.diag([1.0, 1.0, 1.2, 1.0])
    t1_aff[:3, 3] = (-50, -50, -54)
    vols = []
    for rot in (np.eye(3), _rotation(0.3, -0.2, 0.5), _rotation(0.7, 0.4, -1.1)):
        for flip in (np.diag([1, 1, 1]), np.diag([-1, -1, 1]), np.diag([1, -1, -1])):
            aff = _mrs_affine(size, (3.0, -4.0, 6.0), rot @ flip)
            vm = voxel_mask(aff, t1_shape, t1_aff)
            assert vm.voxel_volume_ml == pytest.approx(nominal)
            assert vm.overlap_fraction == 1.0
            vols.append(vm.mask_volume_ml)
            # centre of mass of the mask is the voxel centre
            ijk = np.argwhere(vm.mask > 0)
            w = vm.mask[vm.mask > 0]
            com = (t1_aff[:3, :3] @ (ijk * w[:, None]).sum(0) / w.sum()) + t1_aff[:3, 3]
            np.testing.assert_allclose(com, (3.0, -4.0, 6.0), atol=0.3)
    np.testing.assert_allclose(vols, nominal, rtol=0.02)


def test_oblique_t1_grid_with_las_orientation():
    # T1w stored LAS with 0.9 mm voxels and rotated; MRS voxel axis-aligned in world space.
    t1_aff = np.eye(4)
    t1_aff[:3, :3] = _rotation(0.1, 0.2, -0.15) @ np.diag([-0.9, 0.9, 0.9])
    t1_aff[:3, 3] = (45, -45, -45)
    vm = voxel_mask(_mrs_affine((18, 18, 18), (0, 0, 0)), (100, 100, 100), t1_aff)
    assert vm.overlap_fraction == 1.0
    assert vm.mask_volume_ml == pytest.approx(18 ** 3 / 1000, rel=0.02)
    corners = mrs_voxel_corners(_mrs_affine((18, 18, 18), (0, 0, 0)))
    assert np.allclose(np.abs(corners), 9)


def test_voxel_half_outside_the_field_of_view():
    # Grid x extent is [-0.5, 39.5]; a 10 mm voxel centred at x = -0.5 is half outside.
    vm = voxel_mask(_mrs_affine((10, 10, 10), (-0.5, 20, 20)), (40, 40, 40), np.eye(4))
    assert vm.overlap_fraction == pytest.approx(0.5, abs=0.02)
    assert vm.mask_volume_ml == pytest.approx(0.5, abs=0.02)
    assert vm.voxel_volume_ml == pytest.approx(1.0)


def test_voxel_fully_outside():
    vm = voxel_mask(_mrs_affine((10, 10, 10), (500, 20, 20)), (40, 40, 40), np.eye(4))
    assert vm.overlap_fraction == 0.0
    assert vm.mask.sum() == 0


def test_singular_affine_is_refused():
    with pytest.raises(ValueError, match="singular"):
        voxel_mask(np.diag([10, 10, 0, 1.0]), (10, 10, 10), np.eye(4))


def test_full_size_t1_is_fast():
    # 256x256x160 1 mm T1w and an oblique 30 mm voxel: only the bounding box is visited.
    t1_aff = np.diag([1.0, 1.0, 1.0, 1.0])
    t1_aff[:3, 3] = (-128, -128, -80)
    aff = _mrs_affine((30, 30, 30), (10, 20, 5), _rotation(0.3, 0.3, 0.3))
    t0 = time.perf_counter()
    vm = voxel_mask(aff, (256, 256, 160), t1_aff)
    assert time.perf_counter() - t0 < 3.0
    assert vm.mask_volume_ml == pytest.approx(27.0, rel=0.02)


def test_real_philips_oblique_voxel():
    shared = Path(__file__).resolve().parents[2].parent / "shared"
    base = shared / "data" / "real" / "philips_press_3t" / "sub-03" / "ses-01"
    if not base.exists():
        pytest.skip(f"shared data not found at {base}")
    import nibabel as nib

    mrs = nib.load(str(base / "mrs" / "sub-03_ses-01_acq-press_svs.nii.gz"))
    t1 = nib.load(str(base / "anat" / "sub-03_ses-01_T1w.nii.gz"))
    vm = voxel_mask(mrs.affine, t1.shape, t1.affine)
    # README: oblique 26 x 26 x 30 mm voxel
    assert vm.voxel_volume_ml == pytest.approx(26 * 26 * 30 / 1000, rel=0.01)
    assert vm.overlap_fraction == pytest.approx(1.0)
    assert vm.mask_volume_ml == pytest.approx(vm.voxel_volume_ml, rel=0.02)
