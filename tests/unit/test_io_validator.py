"""BIDS validator wrapper and bidsmrs's own MRS checks (bidsmrs.io.validator)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bidsmrs.io.bids_inputs import find_runs
from bidsmrs.io.validator import (check_mrs_metadata, find_validator, run_bids_validator,
                                  validator_config)
from tests.bidsfixtures import edit_sidecar, make_bids_dataset, write_nifti_mrs

SHARED = Path(__file__).resolve().parents[2].parent / "shared"




@pytest.fixture(scope="module")
def validator():
    exe = find_validator()
    if exe is None:
        pytest.skip("bids-validator-deno is not installed")
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"bids-validator-deno cannot run here: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"bids-validator-deno --version failed: {proc.stderr.strip()[:200]}")
    return exe


def test_config_ignores_only_unrequested_subjects(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02", "03"), n_points=64)
    assert validator_config(ds.root) == {"ignore": []}
    cfg = validator_config(ds.root, ["sub-02"])
    assert cfg == {"ignore": [{"location": "sub-01/**"}, {"location": "sub-03/**"}]}


def test_missing_executable_is_unavailable(tmp_path):
    rep = run_bids_validator(tmp_path, executable=str(tmp_path / "no-such-validator"))
    assert not rep.available and not rep.ok and rep.errors == []
    assert "could not be run" in rep.message


def test_validator_not_installed(tmp_path, monkeypatch):
    import bidsmrs.io.validator as v

    monkeypatch.setattr(v, "find_validator", lambda: None)
    rep = v.run_bids_validator(tmp_path)
    assert not rep.available and "not found" in rep.message and rep.raw == {}


def test_validator_valid_and_broken_datasets(tmp_path, validator):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"), with_t1w=True, n_points=256)
    rep = run_bids_validator(ds.root)
    assert rep.available and rep.returncode == 0 and rep.errors == [] and rep.ok
    assert rep.raw["summary"]["subjects"] and "mrs" in rep.raw["summary"]["dataTypes"]
    # break sub-02: required SpectralWidth removed, a file with a non-BIDS name
    edit_sidecar(ds.svs_paths[1], SpectralWidth=None)
    (ds.root / "sub-02" / "mrs" / "sub-02_acq-press_ref.nii.gz").write_bytes(
        ds.ref_paths[1].read_bytes())
    rep = run_bids_validator(ds.root)
    assert rep.available and rep.returncode == 16 and not rep.ok
    assert any(e.startswith("SIDECAR_KEY_REQUIRED/SpectralWidth /sub-02/") for e in rep.errors)
    assert any("sub-02_acq-press_ref.nii.gz" in e for e in rep.errors)
    assert all("\n" not in e for e in rep.errors + rep.warnings)
    # restricted to sub-01, the dataset is valid; the dataset itself is untouched
    before = sorted(p.relative_to(ds.root) for p in ds.root.rglob("*"))
    rep = run_bids_validator(ds.root, participant_labels=["01"])
    assert rep.ok and rep.returncode == 0
    assert sorted(p.relative_to(ds.root) for p in ds.root.rglob("*")) == before


def test_check_mrs_metadata_clean_and_real(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), with_t1w=True, n_points=64,
                           reference_acqs=("conc", "ecc"))
    (run,) = find_runs(ds.root)
    assert check_mrs_metadata(run) == []
    real = SHARED / "data" / "real"
    if real.is_dir():
        for name in ("philips_press_3t", "siemens_steam_7t_raw"):
            for r in find_runs(real / name):
                assert check_mrs_metadata(r) == [], r.source_stem


def test_check_mrs_metadata_finds_what_the_validator_skips(tmp_path):
    ds = make_bids_dataset(tmp_path / "bids", subjects=("01",), n_points=64)
    mrs = ds.root / "sub-01" / "mrs"
    p = ds.params
    fid = ds.svs_paths[0]
    # voi without BodyPart, nuc mismatching the nucleus, inv without InversionTime,
    # sidecar SF differing from the header, TE in ms, SpectralWidth off
    name = mrs / "sub-01_acq-press_nuc-31P_voi-acc_inv-1_svs.nii.gz"
    import nibabel as nib
    import numpy as np
    data = np.asanyarray(nib.load(str(fid)).dataobj)[0, 0, 0]
    write_nifti_mrs(name, data, dwell_s=p["dwell_s"], sf_mhz=p["sf_mhz"],
                    sidecar_extra={"SpectrometerFrequency": [127.7], "EchoTime": 30,
                                   "SpectralWidth": 4000.0,
                                   "ReferenceSignal": "bids::sub-01/mrs/nope_mrsref.nii.gz"})
    runs = {r.source_stem: r for r in find_runs(ds.root)}
    problems = check_mrs_metadata(runs["sub-01_acq-press_nuc-31P_voi-acc_inv-1"])
    text = "\n".join(problems)
    assert "voi-acc requires BodyPart" in text and "voi-acc requires BodyPartDetails" in text
    assert "nuc-31P does not match ResonantNucleus ['1H']" in text
    assert "inv-1 requires a positive InversionTime" in text
    assert "EchoTime 30 looks like milliseconds" in text
    assert "sidecar SpectrometerFrequency [127.7] differs from NIfTI-MRS header [123.2]" in text
    assert "SpectralWidth 4000 Hz is inconsistent with 1/dwell 2000 Hz" in text
    assert "ReferenceSignal" in text and "not found" in text
    # a reference whose sidecar disagrees with its header
    edit_sidecar(ds.ref_paths[0], SpectrometerFrequency=[297.2])
    problems = check_mrs_metadata(runs["sub-01_acq-press"])
    assert any("mrsref.nii.gz: sidecar SpectrometerFrequency [297.2] differs" in x for x in problems)
    assert all("\n" not in x for x in problems)
