"""Bad input: one clear line naming the file and the problem, the right exit code, no traceback,
and the other participants still processed (issue 2, 'Bad input')."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bidsmrs.cli import main
from tests.bidsfixtures import make_bids_dataset, sidecar_path

BASE = ["--skip-bids-validation", "--tissue-fractions", "0.6", "0.4", "0.0", "--no-report"]


@pytest.fixture
def dataset(tmp_path):
    return make_bids_dataset(tmp_path / "ds", subjects=("01", "02"))


def _break(ds, how: str):
    svs = ds.svs_paths[0]  # sub-01
    if how == "not_nifti":
        svs.write_bytes(b"this is not a NIfTI file at all")
        return svs, "NIfTI"
    if how == "real_valued":
        import nibabel as nib

        img = nib.load(str(svs))
        data = np.asarray(img.dataobj).real.astype(np.float32)
        new = nib.Nifti2Image(data, img.affine, header=img.header)
        new.set_data_dtype(np.float32)
        nib.save(new, str(svs))
        return svs, "real"
    side = sidecar_path(svs)
    meta = json.loads(side.read_text())
    if how == "missing_sf":
        import nibabel as nib

        img = nib.load(str(svs))
        ext = img.header.extensions[0]
        hdr = json.loads(ext.get_content())
        hdr.pop("SpectrometerFrequency")
        img.header.extensions.clear()
        img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(hdr).encode()))
        nib.save(img, str(svs))
        meta.pop("SpectrometerFrequency", None)
        side.write_text(json.dumps(meta))
        return svs, "SpectrometerFrequency"
    if how == "te_ms":
        import nibabel as nib

        img = nib.load(str(svs))
        hdr = json.loads(img.header.extensions[0].get_content())
        hdr["EchoTime"] = 35
        img.header.extensions.clear()
        img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(hdr).encode()))
        nib.save(img, str(svs))
        meta["EchoTime"] = 35
        side.write_text(json.dumps(meta))
        return svs, "milliseconds"
    raise ValueError(how)


@pytest.mark.parametrize("how", ["not_nifti", "real_valued", "missing_sf", "te_ms"])
def test_broken_participant_fails_alone(dataset, tmp_path, capsys, how):
    path, word = _break(dataset, how)
    out = tmp_path / "out"
    code = main([str(dataset.root), str(out), "participant", *BASE])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if path.name in l and word.lower() in l.lower()]
    assert lines, err
    # the other participant is complete
    assert (out / "sub-02" / "mrs" / "sub-02_acq-press_desc-concentrations_svs.tsv").exists()
    assert not list((out / "sub-01").rglob("*_desc-concentrations_svs.tsv")) if (out / "sub-01").exists() else True
    assert "sub-01" in (out / "logs" / "failures.tsv").read_text()


def test_unknown_label_is_usage_error(dataset, tmp_path, capsys):
    code = main([str(dataset.root), str(tmp_path / "out"), "participant", "--participant-label", "07", *BASE])
    err = capsys.readouterr().err
    assert code == 64 and "Traceback" not in err and "07" in err


@pytest.mark.parametrize("content", [b"garbage, not a NIfTI", b""])
def test_unreadable_t1w_keeps_the_spectra_and_says_why(tmp_path, capsys, content):
    """The built-in segmentation cannot read the T1w: the run still writes its concentrations
    (tissue-corrected ones n/a) with a warning naming the file, not a crash."""
    import importlib.util

    if importlib.util.find_spec("ants") is None:
        pytest.skip("antspyx not installed (built-in segmentation unavailable)")
    from bidsmrs.outputs import naming
    from bidsmrs.outputs.tables import read_tsv

    ds = make_bids_dataset(tmp_path / "ds", subjects=("01",), with_t1w=True)
    ds.t1w_paths[0].write_bytes(content)
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", "--skip-bids-validation", "--no-report",
                 "--nprocs", "1"]) == 0
    (table,) = naming.find_concentration_tables(out)
    t = read_tsv(table).set_index("metabolite")
    assert t["conc_tissue_corrected_mM"].isna().all() and t["conc_raw_water_mM"].notna().any()
    err = capsys.readouterr().err
    assert f"{ds.t1w_paths[0].name}: built-in segmentation failed" in err and "Traceback" not in err
    assert not list((out / "logs").glob("crash-*"))


@pytest.mark.parametrize("factor", [1e30, 1e-12])
def test_water_reference_of_other_scaling_is_flagged(tmp_path, capsys, factor):
    """Metabolite data scaled by 1e30 (or 1e-12) against their water reference: the run still
    completes, with a warning that the water-scaled values cannot be brain values."""
    import nibabel as nib

    from bidsmrs.outputs import naming

    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02"))
    svs = ds.svs_paths[1]
    img = nib.load(str(svs))
    nib.save(nib.Nifti2Image(np.asarray(img.dataobj) * factor, img.affine, header=img.header), str(svs))
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", *BASE, "--nprocs", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("implausible water scaling") == 1 and "sub-02" in err.split("implausible")[0].splitlines()[-1]
    meta = json.loads((out / naming.run_file(svs.name.split("_svs")[0], "concentrations", ".json")).read_text())
    assert any("implausible water scaling" in w for w in meta["Warnings"])


def test_water_reference_without_water_keeps_the_ratios_and_names_the_file(tmp_path, capsys):
    import nibabel as nib

    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02"))
    ref = next(p for p in ds.ref_paths if "sub-02" in p.name)
    img = nib.load(str(ref))
    noise = np.random.default_rng(0).standard_normal(img.shape) * (1 + 1j)
    nib.save(nib.Nifti2Image(noise.astype(np.complex64), img.affine, header=img.header), str(ref))
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", *BASE, "--nprocs", "1"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "no peak" in ln]
    assert lines and ref.name in lines[0] and "ratios to tCr only" in lines[0]
    from bidsmrs.outputs import naming
    from bidsmrs.outputs.tables import read_tsv

    t = read_tsv(out / naming.run_file(ds.svs_paths[1].name.split("_svs")[0], "concentrations", ".tsv"))
    assert t["ratio_tcr"].notna().any() and t["conc_raw_water_mM"].isna().all()


def test_non_bids_file_name_is_an_input_error_not_a_crash(tmp_path, capsys):
    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02"))
    svs = ds.svs_paths[1]
    hostile = svs.with_name("sub-02_acq-<img src=x onerror=alert(1)>_svs.nii.gz")
    svs.rename(hostile)
    sidecar_path(svs).rename(hostile.with_name(hostile.name.replace(".nii.gz", ".json")))
    out = tmp_path / "out"
    code = main([str(ds.root), str(out), "participant", *BASE, "--nprocs", "1"])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err
    assert not list((out / "logs").glob("crash-*"))
    if code == 1:  # found by the indexer: one line naming the file
        assert "not a valid BIDS file name" in (out / "logs" / "failures.tsv").read_text()
    assert len(list(out.glob("sub-01/mrs/*_desc-concentrations_svs.tsv"))) == 1
