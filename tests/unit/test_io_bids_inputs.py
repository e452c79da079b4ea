"""BIDS discovery: runs, references, T1w (bidsmrs.io.bids_inputs)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bidsmrs.errors import InputError, NoDataError, UsageError
from bidsmrs.io.bids_inputs import (MrsRun, find_runs, list_sessions, list_subjects,
                                    parse_bids_name, resolve_bids_uri, sidecar_for)
from bidsmrs.io.nifti_mrs import load_nifti_mrs
from tests.bidsfixtures import edit_sidecar, make_bids_dataset, sidecar_path, water_fid, write_nifti_mrs

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL = SHARED / "data" / "real"


def _names(refs):
    return {k: Path(v).name for k, v in refs.items()}




# ---------------------------------------------------------------------------------------
def test_parse_bids_name():
    ents, suffix, ext = parse_bids_name("sub-01_ses-1_acq-press_run-01_svs.nii.gz")
    assert ents == {"sub": "01", "ses": "1", "acq": "press", "run": "01"}
    assert (suffix, ext) == ("svs", ".nii.gz")
    assert parse_bids_name("sub-01_T1w.nii") == ({"sub": "01"}, "T1w", ".nii")


def test_mrs_run_source_stem():
    run = MrsRun("01", "1", {"ses": "1", "acq": "press", "voi": "acc", "run": "1"},
                 Path("/x/sub-01_ses-1_acq-press_voi-acc_run-1_svs.nii.gz"))
    assert run.source_stem == "sub-01_ses-1_acq-press_voi-acc_run-1"
    assert run.participant_id == "sub-01" and run.reference_path is None


def test_runs_with_reference_signal_and_t1w_via_anatomical_image(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"), with_t1w=True)
    runs = find_runs(ds.root)
    assert [r.source_stem for r in runs] == ["sub-01_acq-press", "sub-02_acq-press"]
    r = runs[0]
    assert r.subject == "01" and r.session is None and dict(r.entities) == {"acq": "press"}
    assert r.svs_path == ds.svs_paths[0] and r.error is None
    assert r.reference_source == "ReferenceSignal"
    assert _names(r.references) == {k: "sub-01_acq-press_mrsref.nii.gz"
                                    for k in ("conc", "ecc", "combine")}
    assert r.t1w_path.name == "sub-01_T1w.nii.gz" and r.t1w_source == "AnatomicalImage"
    assert r.sidecar["SpectralWidth"] == pytest.approx(2000.0)
    # the discovered files load
    spec = load_nifti_mrs(r.svs_path, sidecar=r.sidecar)
    assert spec.echo_time_s == pytest.approx(0.03)


def test_runs_without_reference_signal_match_entities_and_t1w_fallback(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), sessions=("a", "b"), runs=(1, 2),
                           reference_signal=False, with_t1w=True)
    runs = find_runs(ds.root)
    assert [r.source_stem for r in runs] == [
        "sub-01_ses-a_acq-press_run-1", "sub-01_ses-a_acq-press_run-2",
        "sub-01_ses-b_acq-press_run-1", "sub-01_ses-b_acq-press_run-2"]
    for r in runs:
        assert "ReferenceSignal" not in r.sidecar
        assert r.reference_source == "entities"
        assert r.references["conc"].name == f"sub-01_ses-{r.session}_acq-press_mrsref.nii.gz"
        assert r.t1w_path.name == f"sub-01_ses-{r.session}_T1w.nii.gz" and r.t1w_source == "session"
    assert list(runs[0].entities) == ["ses", "acq", "run"]
    # session filter
    assert [r.session for r in find_runs(ds.root, session_labels=["ses-b"])] == ["b", "b"]


def test_subject_level_t1w_used_for_sessions(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), sessions=("1",), with_t1w=False,
                           reference_signal=False)
    from tests.bidsfixtures import write_t1w
    write_t1w(ds.root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    (r,) = find_runs(ds.root)
    assert r.t1w_path.name == "sub-01_T1w.nii.gz" and r.t1w_source == "subject"


def test_no_reference_no_t1w(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), with_reference=False)
    (r,) = find_runs(ds.root)
    assert r.references == {} and r.reference_source is None and r.t1w_path is None
    assert r.error is None and any("no water reference" in n for n in r.notes)


def test_several_references_by_acq_label_via_entities(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), reference_signal=False,
                           reference_acqs=("conc", "ecc", "wref"))
    (r,) = find_runs(ds.root)
    assert r.reference_source == "entities-ignoring-acq"
    assert _names(r.references) == {"conc": "sub-01_acq-conc_mrsref.nii.gz",
                                    "ecc": "sub-01_acq-ecc_mrsref.nii.gz",
                                    "combine": "sub-01_acq-wref_mrsref.nii.gz"}


def test_several_references_via_reference_signal_and_role_override(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), reference_acqs=("water", "ecc"))
    (r,) = find_runs(ds.root)
    assert r.reference_source == "ReferenceSignal"
    # "water" is not a role label: the single unlabelled reference fills conc and combine
    assert _names(r.references) == {"conc": "sub-01_acq-water_mrsref.nii.gz",
                                    "ecc": "sub-01_acq-ecc_mrsref.nii.gz",
                                    "combine": "sub-01_acq-water_mrsref.nii.gz"}
    (r,) = find_runs(ds.root, reference_roles={"conc": "ecc", "ecc": "water"})
    assert r.references["conc"].name == "sub-01_acq-ecc_mrsref.nii.gz"
    assert r.references["ecc"].name == "sub-01_acq-water_mrsref.nii.gz"
    with pytest.raises(UsageError, match="unknown reference role 'foo'"):
        find_runs(ds.root, reference_roles={"foo": "x"})


def test_labelled_conc_only_fills_other_roles_with_note(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), reference_acqs=("conc",))
    (r,) = find_runs(ds.root)
    assert set(_names(r.references).values()) == {"sub-01_acq-conc_mrsref.nii.gz"}
    assert any("using the conc reference" in n for n in r.notes)


def test_several_unlabelled_references_pick_best_entity_match(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), reference_signal=False, runs=(1,))
    mrs = ds.root / "sub-01" / "mrs"
    p = ds.params
    write_nifti_mrs(mrs / "sub-01_acq-press_run-1_mrsref.nii.gz",
                    water_fid(p["n_points"], p["dwell_s"], p["sf_mhz"]), dwell_s=p["dwell_s"],
                    sf_mhz=p["sf_mhz"])
    write_nifti_mrs(mrs / "sub-01_acq-press_run-2_mrsref.nii.gz",
                    water_fid(p["n_points"], p["dwell_s"], p["sf_mhz"]), dwell_s=p["dwell_s"],
                    sf_mhz=p["sf_mhz"])
    (r,) = find_runs(ds.root)
    # run-1 reference matches more entities than the run-less one; run-2 conflicts
    assert r.references["conc"].name == "sub-01_acq-press_run-1_mrsref.nii.gz"


def test_broken_links_fail_only_that_run(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02", "03", "04"), with_t1w=True)
    edit_sidecar(ds.svs_paths[0], ReferenceSignal="bids::sub-01/mrs/missing_mrsref.nii.gz")
    edit_sidecar(ds.svs_paths[1], ReferenceSignal="bids::../outside/sub-02_mrsref.nii.gz")
    edit_sidecar(ds.svs_paths[2], AnatomicalImage="/etc/passwd")
    runs = find_runs(ds.root)
    assert len(runs) == 4
    e1, e2, e3, e4 = (r.error for r in runs)
    assert "sub-01_acq-press_svs.json" in e1 and "ReferenceSignal" in e1 and "not found" in e1
    assert "sub-02_acq-press_svs.json" in e2 and "outside the dataset" in e2
    assert "AnatomicalImage" in e3 and "absolute path" in e3
    assert e4 is None and runs[3].references
    assert all("\n" not in e for e in (e1, e2, e3))


def test_plain_relative_reference_path_is_accepted(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",))
    edit_sidecar(ds.svs_paths[0], ReferenceSignal="sub-01/mrs/sub-01_acq-press_mrsref.nii.gz")
    (r,) = find_runs(ds.root)
    assert r.error is None and r.references["conc"].name == "sub-01_acq-press_mrsref.nii.gz"


def test_invalid_sidecar_json_fails_that_run(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"))
    sidecar_path(ds.svs_paths[0]).write_text("{not json")
    runs = find_runs(ds.root)
    assert "invalid JSON at line 1" in runs[0].error and runs[1].error is None


def test_sidecar_with_an_unparseable_value_fails_that_run(tmp_path):
    """A 5000-digit integer exceeds Python's int conversion limit (ValueError, not a
    JSONDecodeError): one run fails with a line naming the file, the other is found."""
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"))
    sidecar_path(ds.svs_paths[1]).write_text('{"EchoTime": 0.03, "Big": ' + "9" * 5000 + "}")
    runs = find_runs(ds.root)
    assert runs[0].error is None
    assert "invalid JSON value" in runs[1].error and sidecar_path(ds.svs_paths[1]).name in runs[1].error


def test_sidecar_inheritance(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",))
    (ds.root / "acq-press_svs.json").write_text(json.dumps({"Manufacturer": "Top", "EchoTime": 9}))
    meta = sidecar_for(ds.svs_paths[0], ds.root)
    assert meta["Manufacturer"] == "Top" and meta["EchoTime"] == 0.03  # own sidecar wins


def test_resolve_bids_uri(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",))
    rel = "sub-01/mrs/sub-01_acq-press_mrsref.nii.gz"
    assert resolve_bids_uri(f"bids::{rel}", ds.root) == ds.root / rel
    for bad, msg in [("bids:other:x.nii.gz", "another dataset"), ("https://x.org/a", "URL"),
                     ("bids::sub-01/../../x", "outside"), ("", "not a BIDS URI")]:
        with pytest.raises(ValueError, match=msg):
            resolve_bids_uri(bad, ds.root)


def test_request_errors(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"))
    assert list_subjects(ds.root) == ["01", "02"] and list_sessions(ds.root) == []
    assert [r.subject for r in find_runs(ds.root, participant_labels=["sub-02"])] == ["02"]
    with pytest.raises(UsageError, match="participant label.* 07 not found.*available: 01, 02"):
        find_runs(ds.root, participant_labels=["07"])
    with pytest.raises(UsageError, match="invalid participant label '../x'"):
        find_runs(ds.root, participant_labels=["../x"])
    with pytest.raises(UsageError, match="session label.* 1 not found"):
        find_runs(ds.root, session_labels=["1"])
    with pytest.raises(NoDataError, match="no single-voxel MRS data"):
        find_runs(ds.root, bids_filters={"svs": {"acquisition": "steam"}})
    assert len(find_runs(ds.root, bids_filters={"acquisition": "press"})) == 2
    # a filter file shared with other BIDS-Apps: entries for other suffixes are ignored
    shared = {"svs": {"acquisition": "press"}, "t1w": {"reconstruction": None}, "bold": {"task": "rest"}}
    assert len(find_runs(ds.root, bids_filters=shared)) == 2
    assert len(find_runs(ds.root, bids_filters={"bold": {"task": "rest"}})) == 2
    with pytest.raises(UsageError, match="invalid BIDS filter"):
        find_runs(ds.root, bids_filters={"svs": {"colour": "red"}})
    (tmp_path / "notbids").mkdir()
    with pytest.raises(InputError, match="dataset_description.json is missing"):
        find_runs(tmp_path / "notbids")
    with pytest.raises(InputError, match="BIDS directory not found"):
        find_runs(tmp_path / "nothere")
    (tmp_path / "nomrs").mkdir()
    (tmp_path / "nomrs" / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    (tmp_path / "nomrs" / "sub-01" / "anat").mkdir(parents=True)
    with pytest.raises(NoDataError):
        find_runs(tmp_path / "nomrs")


def test_many_subjects_list_at_most_ten(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=tuple(f"{i:02d}" for i in range(12)),
                           with_reference=False, n_points=64)
    with pytest.raises(UsageError) as info:
        find_runs(ds.root, participant_labels=["99"])
    assert "09, …" in str(info.value) and "10" not in str(info.value).split("available:")[1]


def test_derivatives_and_sourcedata_are_not_inputs(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",))
    for sub in ("derivatives/x/sub-01/mrs", "sourcedata/sub-01/mrs"):
        d = ds.root / sub
        d.mkdir(parents=True)
        (d / "sub-01_acq-press_svs.nii.gz").write_bytes(ds.svs_paths[0].read_bytes())
    assert [r.svs_path for r in find_runs(ds.root)] == ds.svs_paths


# ---------------------------------------------------------------------------------------
# real datasets
# ---------------------------------------------------------------------------------------
def test_real_philips_press_3t():
    root = REAL / "philips_press_3t"
    if not root.is_dir():
        pytest.skip(f"shared real data not found at {root}")
    runs = find_runs(root)
    assert [r.subject for r in runs] == ["01", "02", "03", "04"]
    for r in runs:
        assert r.error is None and r.session == "01"
        assert r.source_stem == f"sub-{r.subject}_ses-01_acq-press"
        assert r.references["conc"].name == f"sub-{r.subject}_ses-01_acq-press_mrsref.nii.gz"
    assert [r.t1w_path is not None for r in runs] == [False, False, True, True]
    assert runs[2].t1w_source == "AnatomicalImage"


def test_real_siemens_steam_three_references():
    root = REAL / "siemens_steam_7t_raw"
    if not root.is_dir():
        pytest.skip(f"shared real data not found at {root}")
    (r,) = find_runs(root, participant_labels=["01"])
    assert r.error is None and r.t1w_path is None
    assert _names(r.references) == {"conc": "sub-01_acq-conc_mrsref.nii.gz",
                                    "ecc": "sub-01_acq-ecc_mrsref.nii.gz",
                                    "combine": "sub-01_acq-wref_mrsref.nii.gz"}


def test_reference_sidecar_and_relative_path(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",))
    (r,) = find_runs(ds.root)
    assert r.bids_root == ds.root
    assert r.relative_path(r.svs_path) == "sub-01/mrs/sub-01_acq-press_svs.nii.gz"
    side = r.reference_sidecar("conc")
    assert side["WaterSuppression"] is False and "ReferenceSignal" not in side
    assert MrsRun("01", None, {}, r.svs_path).reference_sidecar() == {}


def test_fixture_dataset_contents(tmp_path):
    import numpy as np

    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"), n_coils=2, n_transients=4,
                           noise_sd=0.0, amplitude_scale={"02": 2.0})
    a, b = (load_nifti_mrs(p) for p in ds.svs_paths)
    assert a.fid.shape == (1024, 2, 4) and a.dim_tags == ("DIM_COIL", "DIM_DYN")
    np.testing.assert_allclose(b.fid, 2.0 * a.fid, rtol=1e-5, atol=1e-5)
    ref = load_nifti_mrs(ds.ref_paths[0])
    assert ref.dim_tags == ("DIM_COIL",) and abs(ref.fid[0, 0]) == pytest.approx(ds.water_amplitude,
                                                                                 rel=1e-5)
    # the NAA singlet of the truth table is where the truth says
    spec = np.abs(a.spectrum()[:, 0, 0])
    in_naa = np.abs(a.ppm - ds.truth["NAA"][0]) < 0.1
    assert abs(a.ppm[in_naa][np.argmax(spec[in_naa])] - 2.008) < 0.01
    assert a.header["EchoTime"] == 0.03 and a.header["dim_5"] == "DIM_COIL"


def test_legacy_ref_suffix_and_duplicate_extensions(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"), reference_signal=False)
    old = ds.ref_paths[0]
    old.rename(old.with_name("sub-01_acq-press_ref.nii.gz"))
    runs = find_runs(ds.root)
    assert runs[0].references["conc"].name == "sub-01_acq-press_ref.nii.gz"
    assert any("legacy suffix _ref" in n for n in runs[0].notes)
    # sub-02 has the same run twice
    import gzip
    svs = ds.svs_paths[1]
    svs.with_name(svs.name[:-3]).write_bytes(gzip.decompress(svs.read_bytes()))
    runs = find_runs(ds.root)
    assert [r.error is None for r in runs] == [True, False, False]
    assert "both .nii and .nii.gz" in runs[1].error


def test_reference_filter(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), reference_signal=False,
                           reference_acqs=("conc", "ecc"))
    (r,) = find_runs(ds.root, bids_filters={"mrsref": {"acquisition": "ecc"}})
    assert _names(r.references) == {"ecc": "sub-01_acq-ecc_mrsref.nii.gz"}


def test_entity_matched_reference_plus_role_labelled_ecc(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), reference_signal=False,
                           reference_acqs=(None, "ecc"))
    (r,) = find_runs(ds.root)
    assert _names(r.references) == {"conc": "sub-01_acq-press_mrsref.nii.gz",
                                    "ecc": "sub-01_acq-ecc_mrsref.nii.gz",
                                    "combine": "sub-01_acq-press_mrsref.nii.gz"}


def test_directory_symlink_loops_are_skipped_not_followed(tmp_path, caplog):
    """Links back to an ancestor (two kinds at once) made pybids recurse forever; they are
    now left out of the index with a warning and every run is still found."""
    import logging
    import os

    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"))
    os.symlink("..", ds.root / "sub-02" / "mrs" / "loopdir")
    (ds.root / "sub-02" / "anat").mkdir(exist_ok=True)
    os.symlink("../..", ds.root / "sub-02" / "anat" / "up")
    import signal

    def hung(*_):
        raise TimeoutError("find_runs still indexing after 60 s: following a symlink loop")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)  # a regression must fail here, not hang the suite
    try:
        with caplog.at_level(logging.WARNING):
            runs = find_runs(ds.root)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [r.subject for r in runs] == ["01", "02"] and all(r.error is None for r in runs)
    assert sum("symlink loop" in rec.getMessage() for rec in caplog.records) == 2


def test_svs_name_on_a_directory_is_skipped_with_a_warning(tmp_path, caplog):
    import logging

    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"))
    ds.svs_paths[1].unlink()
    ds.svs_paths[1].mkdir()
    with caplog.at_level(logging.WARNING):
        runs = find_runs(ds.root)
    assert [r.subject for r in runs] == ["01"]
    assert any("is a directory" in rec.getMessage() and ds.svs_paths[1].name in rec.getMessage()
               for rec in caplog.records)
