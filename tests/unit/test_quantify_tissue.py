"""Tissue fractions from probability maps and fixed fractions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bidsmrs.errors import QuantificationError, UsageError
from bidsmrs.quantify.tissue import TissueFractions, fixed_fractions, fractions_from_maps
from bidsmrs.quantify.voxel_mask import voxel_mask


def _box_mask():
    # 10 x 8 x 6 mm box covering grid voxels 10..19, 10..17, 10..15 exactly
    aff = np.eye(4)
    aff[:3, :3] = np.diag([10, 8, 6])
    aff[:3, 3] = (14.5, 13.5, 12.5)
    return voxel_mask(aff, (40, 40, 40), np.eye(4))


def test_fractions_from_maps_analytic():
    vm = _box_mask()
    gm = np.zeros((40, 40, 40))
    wm = np.zeros_like(gm)
    csf = np.zeros_like(gm)
    gm[:13] = 0.8           # x slabs 10, 11, 12 of the box: 3/10 of its volume
    csf[:13] = 0.2
    wm[13:] = 1.0
    gm[25:] = 1.0            # outside the box: must not count
    tf = fractions_from_maps(vm, gm, wm, csf, source="anat-derivatives:/x/sub-01_label-GM_probseg.nii.gz")
    assert tf.gm == pytest.approx(0.24)
    assert tf.csf == pytest.approx(0.06)
    assert tf.wm == pytest.approx(0.70)
    assert tf.gm + tf.wm + tf.csf == pytest.approx(1.0)
    assert tf.voxel_volume_ml == pytest.approx(0.48)
    assert tf.overlap_fraction == 1.0
    assert tf.source.startswith("anat-derivatives:")


def test_fractions_normalise_over_tissue_probability():
    # probabilities summing to 0.5 (e.g. partly outside the brain mask) are renormalised
    vm = _box_mask()
    gm = np.full((40, 40, 40), 0.25)
    wm = np.full_like(gm, 0.25)
    csf = np.zeros_like(gm)
    tf = fractions_from_maps(vm, gm, wm, csf, source="builtin:test")
    assert (tf.gm, tf.wm, tf.csf) == pytest.approx((0.5, 0.5, 0.0))


def test_fractions_from_maps_errors():
    vm = _box_mask()
    z = np.zeros((40, 40, 40))
    with pytest.raises(QuantificationError, match="no GM, WM or CSF"):
        fractions_from_maps(vm, z, z, z, source="x")
    with pytest.raises(QuantificationError, match="shape"):
        fractions_from_maps(vm, np.zeros((10, 10, 10)), z, z, source="x")
    out = voxel_mask(np.diag([10, 10, 10, 1.0]) + np.array([[0, 0, 0, 900]] + [[0] * 4] * 3),
                     (40, 40, 40), np.eye(4))
    with pytest.raises(QuantificationError, match="does not overlap"):
        fractions_from_maps(out, z + 1, z, z, source="x")


def test_fixed_fractions_normalise_and_validate():
    tf = fixed_fractions(60, 40, 0)
    assert (tf.gm, tf.wm, tf.csf) == pytest.approx((0.6, 0.4, 0.0))
    assert tf.source == "fixed"
    assert math.isnan(tf.voxel_volume_ml) and math.isnan(tf.overlap_fraction)
    with pytest.raises(UsageError, match=">= 0"):
        fixed_fractions(0.6, -0.1, 0.5)
    with pytest.raises(UsageError, match="sum to 0"):
        fixed_fractions(0, 0, 0)


def test_to_row_has_contract_columns():
    row = TissueFractions(0.5, 0.3, 0.2, 27.0, 1.0, "builtin:atropos").to_row()
    assert list(row) == ["gm_fraction", "wm_fraction", "csf_fraction", "voxel_volume_ml",
                         "overlap_fraction", "segmentation_source"]
    assert row["segmentation_source"] == "builtin:atropos"


def test_tissue_sidecar_matches_row_columns():
    from bidsmrs.quantify.tissue import TISSUE_SIDECAR

    assert list(TISSUE_SIDECAR) == list(TissueFractions(1, 0, 0).to_row())
