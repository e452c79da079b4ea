"""fMRIPrep/sMRIPrep tissue-map discovery and loading."""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from bidsmrs.errors import InputError
from bidsmrs.io.anat import (ASEG_CSF, ASEG_GM, ASEG_WM, aseg_to_probabilities, find_tissue_maps,
                             load_t1w, load_tissue_maps)

AFF = np.diag([1.0, 1.0, 1.0, 1.0])


def _img(path, data, affine=AFF):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(np.asarray(data, np.float32), affine).to_filename(str(path))
    return path


def _probsegs(d, prefix, shape=(4, 4, 4), value=0.25):
    for lab in ("GM", "WM", "CSF"):
        _img(d / f"{prefix}_label-{lab}_probseg.nii.gz", np.full(shape, value))


def test_without_sessions_ignores_template_space(tmp_path):
    anat = tmp_path / "sub-01" / "anat"
    _probsegs(anat, "sub-01_space-MNI152NLin2009cAsym")
    _probsegs(anat, "sub-01")
    _img(anat / "sub-01_desc-aseg_dseg.nii.gz", np.zeros((4, 4, 4)))
    found = find_tissue_maps(tmp_path, "sub-01")
    assert found.kind == "probseg"
    assert found.gm.name == "sub-01_label-GM_probseg.nii.gz"
    assert found.csf.name == "sub-01_label-CSF_probseg.nii.gz"
    assert found.warning is None
    assert found.source == f"anat-derivatives:{found.gm}"


def test_space_t1w_entity_and_fmriprep_subfolder(tmp_path):
    _probsegs(tmp_path / "fmriprep" / "sub-02" / "anat", "sub-02_space-T1w")
    found = find_tissue_maps(tmp_path, "02")
    assert found.gm.name == "sub-02_space-T1w_label-GM_probseg.nii.gz"


def test_sessions_prefer_same_then_subject_level_then_other_with_warning(tmp_path):
    sub = tmp_path / "sub-01"
    _probsegs(sub / "ses-1" / "anat", "sub-01_ses-1")
    _probsegs(sub / "ses-2" / "anat", "sub-01_ses-2")
    found = find_tissue_maps(tmp_path, "01", session="2")
    assert found.session == "2" and found.warning is None
    assert found.gm.name == "sub-01_ses-2_label-GM_probseg.nii.gz"
    # another session only: used with a warning naming both sessions
    found = find_tissue_maps(tmp_path, "01", session="3")
    assert found.session in ("1", "2")
    assert "session" in found.warning and "3" in found.warning
    # subject-level (no session) maps beat another session's, without a warning
    _probsegs(sub / "anat", "sub-01")
    found = find_tissue_maps(tmp_path, "01", session="ses-3")
    assert found.session is None and found.warning is None
    assert found.gm.name == "sub-01_label-GM_probseg.nii.gz"


def test_t1w_entities_break_ties(tmp_path):
    anat = tmp_path / "sub-01" / "anat"
    _probsegs(anat, "sub-01_acq-mprage")
    _probsegs(anat, "sub-01_acq-mp2rage")
    t1w = tmp_path / "raw" / "sub-01" / "anat" / "sub-01_acq-mp2rage_T1w.nii.gz"
    found = find_tissue_maps(tmp_path, "01", t1w_path=t1w)
    assert "acq-mp2rage" in found.gm.name


def test_aseg_dseg_fallback_and_label_classes(tmp_path):
    labels = np.zeros((3, 3, 3))
    labels[0, 0, 0] = 3      # Left-Cerebral-Cortex
    labels[0, 0, 1] = 2      # Left-Cerebral-White-Matter
    labels[0, 0, 2] = 4      # Left-Lateral-Ventricle
    labels[0, 1, 0] = 1021   # ctx-lh-pericalcarine (aparc+aseg)
    labels[0, 1, 1] = 5001   # Left-UnsegmentedWhiteMatter
    labels[0, 1, 2] = 30     # Left-vessel: no class
    _img(tmp_path / "sub-01" / "anat" / "sub-01_desc-aparcaseg_dseg.nii.gz", labels)
    _img(tmp_path / "sub-01" / "anat" / "sub-01_desc-aseg_dseg.nii.gz", labels)
    found = find_tissue_maps(tmp_path, "01")
    assert found.kind == "dseg" and found.dseg.name == "sub-01_desc-aseg_dseg.nii.gz"
    gm, wm, csf, aff = load_tissue_maps(found)
    assert gm[0, 0, 0] == 1 and gm[0, 1, 0] == 1 and gm.sum() == 2
    assert wm[0, 0, 1] == 1 and wm[0, 1, 1] == 1 and wm.sum() == 2
    assert csf[0, 0, 2] == 1 and csf.sum() == 1
    assert (gm + wm + csf)[0, 1, 2] == 0
    np.testing.assert_array_equal(aff, AFF)
    assert not (ASEG_GM & ASEG_WM) and not (ASEG_GM & ASEG_CSF) and not (ASEG_WM & ASEG_CSF)


def test_freesurfer_aseg_mgz(tmp_path):
    mri = tmp_path / "sourcedata" / "freesurfer" / "sub-01" / "mri"
    mri.mkdir(parents=True)
    nib.MGHImage(np.full((3, 3, 3), 42, np.int32), AFF).to_filename(str(mri / "aseg.mgz"))
    found = find_tissue_maps(tmp_path, "01")
    assert found.kind == "aseg"
    gm, wm, csf, _ = load_tissue_maps(found)
    assert gm.sum() == 27 and wm.sum() == 0


def test_nothing_found_and_missing_dir(tmp_path):
    (tmp_path / "sub-01" / "anat").mkdir(parents=True)
    assert find_tissue_maps(tmp_path, "01") is None
    assert find_tissue_maps(tmp_path, "02") is None
    with pytest.raises(InputError, match="not found"):
        find_tissue_maps(tmp_path / "nope", "01")


def test_incomplete_probseg_set(tmp_path):
    anat = tmp_path / "sub-01" / "anat"
    _img(anat / "sub-01_label-GM_probseg.nii.gz", np.ones((2, 2, 2)))
    _img(anat / "sub-01_label-WM_probseg.nii.gz", np.ones((2, 2, 2)))
    with pytest.raises(InputError, match="CSF probseg missing"):
        find_tissue_maps(tmp_path, "01")


def test_load_tissue_maps_values_and_grid_check(tmp_path):
    anat = tmp_path / "sub-01" / "anat"
    _img(anat / "sub-01_label-GM_probseg.nii.gz", np.full((4, 4, 4), 0.5))
    _img(anat / "sub-01_label-WM_probseg.nii.gz", np.full((4, 4, 4), 0.3))
    _img(anat / "sub-01_label-CSF_probseg.nii.gz", np.full((4, 4, 4, 1), 0.2))  # 4-D singleton
    gm, wm, csf, aff = load_tissue_maps(find_tissue_maps(tmp_path, "01"))
    assert gm.shape == wm.shape == csf.shape == (4, 4, 4)
    assert gm.dtype == np.float32
    assert (gm[0, 0, 0], wm[0, 0, 0], csf[0, 0, 0]) == pytest.approx((0.5, 0.3, 0.2))
    shifted = AFF.copy()
    shifted[0, 3] = 5
    _img(anat / "sub-01_label-WM_probseg.nii.gz", np.full((4, 4, 4), 0.3), shifted)
    with pytest.raises(InputError, match="same grid"):
        load_tissue_maps(find_tissue_maps(tmp_path, "01"))


def test_load_t1w_and_unreadable(tmp_path):
    p = _img(tmp_path / "sub-01_T1w.nii.gz", np.arange(24).reshape(2, 3, 4))
    data, aff = load_t1w(p)
    assert data.shape == (2, 3, 4) and data.dtype == np.float32 and data[1, 2, 3] == 23
    np.testing.assert_array_equal(aff, AFF)
    bad = tmp_path / "bad_T1w.nii.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"not a nifti")
    with pytest.raises(InputError) as err:
        load_t1w(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(InputError, match="not found"):
        load_t1w(tmp_path / "missing.nii.gz")
    with pytest.raises(InputError, match="3-D"):
        load_t1w(_img(tmp_path / "x.nii.gz", np.zeros((2, 2, 2, 3))))


def test_aseg_to_probabilities_one_hot():
    gm, wm, csf = aseg_to_probabilities(np.array([[[3, 41, 24, 0]]]))
    np.testing.assert_array_equal(gm.ravel(), [1, 0, 0, 0])
    np.testing.assert_array_equal(wm.ravel(), [0, 1, 0, 0])
    np.testing.assert_array_equal(csf.ravel(), [0, 0, 1, 0])


def test_reference_and_aseg_alias(tmp_path):
    _img(tmp_path / "sub-01" / "anat" / "sub-01_desc-aseg_dseg.nii.gz", np.zeros((2, 2, 2)))
    found = find_tissue_maps(tmp_path, "01")
    assert found.aseg == found.dseg == found.reference
    assert found.gm is None
    assert found.source == f"anat-derivatives:{found.dseg}"


def test_legacy_fmriprep_probtissue_names(tmp_path):
    anat = tmp_path / "fmriprep" / "sub-01" / "anat"
    for lab in ("GM", "WM", "CSF"):
        _img(anat / f"sub-01_T1w_class-{lab}_probtissue.nii.gz", np.ones((2, 2, 2)))
    found = find_tissue_maps(tmp_path, "01")
    assert found.kind == "probseg"
    assert found.csf.name == "sub-01_T1w_class-CSF_probtissue.nii.gz"
