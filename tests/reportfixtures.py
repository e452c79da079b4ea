"""A fake participant output tree for the report tests (DESIGN.md §3 file formats).

:func:`make_participant_tree` writes, for each requested run, exactly the files the
participant stage writes (preprocessed and fit NIfTI-MRS, concentrations/QC/tissue TSVs with
sidecars, quantification JSON, transients TSV, voxel mask on a small T1w with tissue maps),
from a seeded synthetic spectrum, so the report can be built and checked without fitting.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bidsmrs.io.jsonfile import write_json
from bidsmrs.io.nifti_mrs import save_nifti_mrs
from bidsmrs.outputs import naming
from bidsmrs.outputs.tables import write_tsv
from bidsmrs.spectrum import Spectrum, StepRecord

SF_MHZ = 123.25
DWELL_S = 1 / 2000.0
N_POINTS = 2048
PPM_CENTRE = 4.65

#: (name, ppm, relative amplitude, linewidth Hz) of the fake metabolite components.
COMPONENTS = (
    ("NAA", 2.008, 1.0, 5.0), ("Cr", 3.027, 0.45, 5.0), ("PCr", 3.03, 0.35, 5.0),
    ("GPC", 3.21, 0.2, 5.0), ("PCh", 3.20, 0.08, 5.0), ("Ins", 3.56, 0.35, 7.0),
    ("Glu", 2.35, 0.3, 9.0), ("Gln", 2.45, 0.12, 9.0), ("GABA", 3.01, 0.08, 9.0),
    ("MM09", 0.9, 0.25, 25.0), ("Lac", 1.31, 0.05, 6.0),
)

QC_COLUMNS = ("snr_naa", "snr_lcmodel", "fwhm_naa_hz", "fwhm_naa_ppm", "fwhm_water_hz",
              "fit_residual_ratio", "n_transients", "n_rejected", "freq_drift_hz",
              "phase_drift_deg", "residual_water_ratio", "flag")
CONC_COLUMNS = ("metabolite", "amplitude", "crlb_percent", "sd", "ratio_tcr", "conc_raw_water_mM",
                "conc_csf_corrected_mM", "conc_tissue_corrected_mM", "conc_molal_mmol_per_kg",
                "conc_alpha_corrected_mM", "flag")

STEPS = (
    StepRecord("RF coil combination",
               "Coil channels combined with S/N^2 weights and phases from the first 4 points "
               "of the water reference (Hall 2014).", {"method": "snr_weighted", "n_points": 4}),
    StepRecord("Eddy current correction",
               "Phase of the water reference FID subtracted point by point (Klose 1990).",
               {"reference": "mrsref"}),
    StepRecord("Frequency and phase correction",
               "Spectral registration of 64 transients to their median over 1.8-4.2 ppm; "
               "2 transients rejected at 3 scaled MADs.",
               {"ppm_range": [1.8, 4.2], "reject_mads": 3.0, "n_rejected": 2,
                "freq_shift_hz": [round(0.05 * k, 3) for k in range(64)]}),
    StepRecord("Signal averaging", "62 transients averaged.", {"n_averaged": 62}),
    StepRecord("Nuisance peak removal",
               "HLSVD with 25 components; components within 4.4-5.0 ppm removed.",
               {"n_components": 25, "ppm_range": [4.4, 5.0]}),
    StepRecord("Frequency and phase correction",
               "Frequency referenced to the NAA peak at 2.008 ppm (shift 1.20 Hz).",
               {"reference_ppm": 2.008, "shift_hz": 1.2}),
    StepRecord("Phasing", "Zero-order phase from the tCr/NAA region (-3.1 deg).",
               {"phase0_deg": -3.1}),
)


@dataclass(frozen=True)
class FixtureRun:
    """One run of the fake tree: its source stem and what it has."""

    src: str
    with_water: bool = True
    with_transients: bool = True
    with_t1w: bool = True
    raw_coils: int = 0


def _fid(ppm: float, amp: float, lw_hz: float, t: np.ndarray, phase: float = 0.0) -> np.ndarray:
    f = (PPM_CENTRE - ppm) * SF_MHZ
    return amp * np.exp(1j * (2 * np.pi * f * t + phase) - np.pi * lw_hz * t)


def _spectrum(fid: np.ndarray, tags=(), header=None, history=(), affine=None) -> Spectrum:
    return Spectrum(fid=fid, dwell_s=DWELL_S, spectrometer_mhz=SF_MHZ, nucleus="1H",
                    ppm_centre=PPM_CENTRE, dim_tags=tuple(tags), echo_time_s=0.03,
                    repetition_time_s=2.0, affine=affine, header=dict(header or {}),
                    history=tuple(history))


def _mrs_affine() -> np.ndarray:
    """A 20 mm isotropic voxel centred at (4, 10, 14) mm (scanner RAS)."""
    aff = np.diag([20.0, 20.0, 20.0, 1.0])
    aff[:3, 3] = (4.0, 10.0, 14.0)
    return aff


def _write_anat(root: Path, out: Path, src: str, subject: str, rng) -> None:
    """A small fake T1w (3 mm), tissue maps and a fractional voxel mask (sidecar as contract)."""
    import nibabel as nib

    shape = (48, 56, 48)
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    aff[:3, 3] = -np.array(shape) * 1.5
    ijk = np.indices(shape).astype(float)
    centre = np.array(shape)[:, None, None, None] / 2
    r = np.sqrt((((ijk - centre) / (np.array([20, 24, 20])[:, None, None, None])) ** 2).sum(0))
    csf = np.clip(1 - np.abs(r - 0.15) / 0.12, 0, 1) + np.clip((r - 0.92) / 0.08, 0, 1) * (r < 1)
    gm = np.clip(1 - np.abs(r - 0.8) / 0.15, 0, 1) * (r < 1)
    wm = np.clip(1 - gm - csf, 0, 1) * (r < 0.95)
    t1 = (gm * 600 + wm * 900 + csf * 200 + rng.normal(0, 20, shape)) * (r < 1.05)
    anat_raw = root / "rawdata" / f"sub-{subject}" / "anat"
    anat_raw.mkdir(parents=True, exist_ok=True)
    t1_path = anat_raw / f"sub-{subject}_T1w.nii.gz"
    if not t1_path.exists():
        nib.save(nib.Nifti1Image(t1.astype(np.float32), aff), str(t1_path))
    maps = {}
    for label, arr in (("GM", gm), ("WM", wm), ("CSF", csf)):
        p = out / naming.probseg_file(subject, naming.parse_src(src).get("ses"), label)
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            nib.save(nib.Nifti1Image(arr.astype(np.float32), aff), str(p))
        maps[label] = str(p)
    # fractional mask: the 20 mm MRS voxel in T1w space
    world = aff[:3, :3] @ ijk.reshape(3, -1) + aff[:3, 3:4]
    inv = np.linalg.inv(_mrs_affine())
    vox = inv[:3, :3] @ world + inv[:3, 3:4]
    inside = np.all(np.abs(vox) <= 0.5, axis=0).reshape(shape).astype(np.float32)
    mask_path = out / naming.anat_file(src)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(inside, aff), str(mask_path))
    write_json(str(mask_path).replace(".nii.gz", ".json"), {
        "Sources": [f"bids:raw:sub-{subject}/anat/sub-{subject}_T1w.nii.gz"],
        "T1wPath": str(t1_path),
        "TissueMaps": maps,
    })


def _write_raw(root: Path, src: str, clean: np.ndarray, table: pd.DataFrame, n_coils: int,
               rng: np.random.Generator, inject: str) -> None:
    """Raw transients whose drifts are undone by the table's corrections (+ raw sidecar)."""
    t = np.arange(N_POINTS) * DWELL_S
    f = table["freq_shift_hz"].to_numpy(float)
    ph = np.deg2rad(table["phase_deg"].to_numpy(float))
    dyn = clean[:, None] / 8 * np.exp(-1j * (2 * np.pi * np.outer(t, f) + ph[None, :]))
    dyn = dyn + rng.normal(0, 0.3, dyn.shape) + 1j * rng.normal(0, 0.3, dyn.shape)
    tags: tuple[str, ...] = ("DIM_DYN",)
    if n_coils:
        sens = np.exp(1j * np.linspace(0, 2.5, n_coils)) * np.linspace(1, 0.3, n_coils)
        dyn = dyn[:, None, :] * sens[None, :, None]
        tags = ("DIM_COIL", "DIM_DYN")
    path = root / "rawdata" / naming.subject_dir(src) / "mrs" / f"{src}_svs.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_nifti_mrs(_spectrum(dyn, tags=tags, affine=_mrs_affine()), path, version="0.1.0")
    write_json(path.with_name(f"{src}_svs.json"), {
        "Manufacturer": "Siemens" + inject, "ManufacturersModelName": "Prisma",
        "MagneticFieldStrength": 2.89, "TransmitCoilName": "Body", "ShimSetting": [1, 2, 3],
        "SpectrometerFrequency": [SF_MHZ], "ResonantNucleus": ["1H"], "EchoTime": 0.03,
        "RepetitionTime": 2.0})


def write_run(out: Path, run: FixtureRun, *, rng: np.random.Generator, inject: str = "",
              snr_naa: float = 42.5, root: Path | None = None) -> None:
    """Write every participant output file of one run under ``out`` (see module docstring)."""
    src = run.src
    ent = naming.parse_src(src)
    t = np.arange(N_POINTS) * DWELL_S
    comps = {name: _fid(ppm, amp * 100.0, lw, t) for name, ppm, amp, lw in COMPONENTS}
    noise = (rng.normal(0, 0.6, N_POINTS) + 1j * rng.normal(0, 0.6, N_POINTS))
    baseline = _fid(1.5, 30.0, 400.0, t) + _fid(3.5, 20.0, 500.0, t)
    fit = sum(comps.values()) + baseline
    data = fit + noise
    residual = data - fit

    # --- preprocessed metabolite (+ water) spectrum -----------------------------------
    header = {"Manufacturer": "Siemens" + inject, "ManufacturersModelName": "Prisma",
              "SoftwareVersions": "syngo MR XA30", "RxCoil": "Head_32",
              "SequenceName": "svs_se", "WaterSuppressed": True, "WaterSuppressionType": "CHESS"}
    pre = _spectrum(data, header=header, history=STEPS, affine=_mrs_affine())
    p = out / naming.run_file(src, "preproc", ".nii.gz")
    p.parent.mkdir(parents=True, exist_ok=True)
    save_nifti_mrs(pre, p, version="0.1.0")
    write_json(str(p).replace(".nii.gz", ".json"), {
        "SpectrometerFrequency": [SF_MHZ], "ResonantNucleus": ["1H"], "EchoTime": 0.03,
        "RepetitionTime": 2.0, "SpectralWidth": 2000.0, "NumberOfSpectralPoints": N_POINTS,
        "Manufacturer": "Siemens" + inject, "ManufacturersModelName": "Prisma",
        "MagneticFieldStrength": 2.89, "ReceiveCoilName": "Head_32", "PulseSequenceType": "PRESS",
        "NumberOfTransients": 64,
        "Sources": [f"bids:raw:{naming.subject_dir(src).as_posix()}/mrs/{src}_svs.nii.gz"]})
    if run.with_water:
        wat = _spectrum(_fid(4.65, 5000.0, 6.0, t) + 0.5 * noise, history=STEPS[:2],
                        affine=_mrs_affine())
        save_nifti_mrs(wat, out / naming.run_file(src, "preproc", ".nii.gz", suffix="mrsref"),
                       version="0.1.0")

    # --- fit ----------------------------------------------------------------------------
    names = [n for n, *_ in COMPONENTS]
    stack = np.stack([data, fit, baseline, residual] + [comps[n] for n in names], axis=1)
    fit_spec = _spectrum(stack, tags=("DIM_USER_0",), affine=_mrs_affine())
    fp = out / naming.run_file(src, "fit", ".nii.gz")
    save_nifti_mrs(fit_spec, fp, version="0.1.0", extra_header={"dim_5_header": {
        "Value": ["data", "fit", "baseline", "residual"] + names,
        "Description": "data, model fit, baseline, residual, then one entry per basis component"}})
    write_json(str(fp).replace(".nii.gz", ".json"), {
        "FitRangePpm": [0.2, 4.2],
        "FitOptions": {"baseline": "pspline", "knot_spacing_ppm": 0.3, "lineshape": "voigt"},
        "FitParameters": {"phase0_deg": -3.1, "phase1_deg_per_ppm": 0.2, "shift_hz": 1.2,
                          "lorentz_hz": 2.5, "gauss_hz": 3.0},
        "Basis": {"source": "builtin:simulated" + inject, "sequence": "press",
                  "echo_time_s": 0.03, "names": names, "n_points": N_POINTS},
        "Software": {"bidsmrs": "0.1.0", "numpy": np.__version__}})

    # --- tables -------------------------------------------------------------------------
    conc_rows = []
    for i, (name, _ppm, amp, _lw) in enumerate(COMPONENTS):
        crlb = 4.0 + 3.5 * i
        conc_rows.append({"metabolite": name, "amplitude": amp, "crlb_percent": crlb,
                          "sd": amp * crlb / 100, "ratio_tcr": amp / 0.8,
                          "conc_raw_water_mM": amp * 10, "conc_csf_corrected_mM": amp * 10.5,
                          "conc_tissue_corrected_mM": amp * 12.0,
                          "conc_molal_mmol_per_kg": amp * 11.0,
                          "conc_alpha_corrected_mM": amp * 13 if name in ("GABA", "Glu", "Gln")
                          else None,
                          "flag": "ok" if crlb <= 20 else "high_crlb"})
    conc_rows.append({"metabolite": "tCr", "amplitude": 0.8, "crlb_percent": 3.0, "sd": 0.024,
                      "ratio_tcr": 1.0, "conc_raw_water_mM": 8.0, "conc_csf_corrected_mM": 8.4,
                      "conc_tissue_corrected_mM": 9.6, "conc_molal_mmol_per_kg": 8.8,
                      "conc_alpha_corrected_mM": None, "flag": "ok"})
    conc = pd.DataFrame(conc_rows, columns=list(CONC_COLUMNS))
    write_tsv(out / naming.run_file(src, "concentrations", ".tsv"), conc, {
        "metabolite": {"Description": "Metabolite name"},
        "crlb_percent": {"Description": "Cramer-Rao lower bound relative to amplitude",
                         "Units": "%"},
        "conc_tissue_corrected_mM": {"Description": "Tissue-corrected molarity", "Units": "mM"},
        "Sources": [f"bids::{naming.run_file(src, 'fit', '.nii.gz').as_posix()}"],
        "Warnings": ["Lac amplitude near zero" + inject],
        "Errors": [],
    })
    qc = pd.DataFrame([{"snr_naa": snr_naa, "snr_lcmodel": 21.25, "fwhm_naa_hz": 6.1234,
                        "fwhm_naa_ppm": 6.1234 / SF_MHZ, "fwhm_water_hz": 7.5,
                        "fit_residual_ratio": 1.0312, "n_transients": 64, "n_rejected": 2,
                        "freq_drift_hz": 3.25, "phase_drift_deg": 8.5,
                        "residual_water_ratio": 0.042,
                        "flag": "ok" if snr_naa >= 10 else "low_snr"}], columns=list(QC_COLUMNS))
    write_tsv(out / naming.run_file(src, "qc", ".tsv"), qc, {
        "snr_naa": {"Description": "NAA peak height divided by the SD of the noise "
                                   "(Kreis 2020)" + inject},
        "fwhm_naa_hz": {"Description": "Full width at half maximum of NAA", "Units": "Hz"},
        "fwhm_naa_ppm": {"Description": "Full width at half maximum of NAA", "Units": "ppm"},
        "Thresholds": {"qc_max_crlb": 20, "qc_min_snr": 10, "qc_max_fwhm_ppm": 0.1},
    })
    tissue = pd.DataFrame([{"gm_fraction": 0.55, "wm_fraction": 0.35, "csf_fraction": 0.1,
                            "voxel_volume_ml": 8.0, "overlap_fraction": 1.0,
                            "segmentation_source": "builtin:fixture"}])
    write_tsv(out / naming.run_file(src, "tissue", ".tsv"), tissue, {
        "gm_fraction": {"Description": "Grey matter fraction"}})
    write_json(out / naming.run_file(src, "quantification", ".json"), {
        "constants": {
            "water": {"T1": {"gm": {"value": 1.331, "source": "Wansapura 1999"},
                             "wm": {"value": 0.832, "source": "Wansapura 1999"},
                             "csf": {"value": 3.817, "source": "Lu 2005"}},
                      "T2": {"gm": {"value": 0.110, "source": "Wansapura 1999"},
                             "wm": {"value": 0.0792, "source": "Wansapura 1999"},
                             "csf": {"value": 0.503, "source": "Piechnik 2009"}},
                      "content": {"gm": {"value": 0.78, "source": "Ernst 1993"},
                                  "wm": {"value": 0.65, "source": "Ernst 1993"},
                                  "csf": {"value": 0.97, "source": "Ernst 1993"}}},
            "alpha": {"value": 0.5, "source": "Harris 2015"}},
        "metabolites": {"NAA": {"T1_s": {"value": 1.47, "source": "Mlynarik 2001"},
                                "T2_s": {"value": 0.25, "source": "Wyss 2018"}}},
        "echo_time_s": 0.03, "repetition_time_s": 2.0,
        "formulas": {"conc_tissue_corrected_mM": "Gasparovic 2006 / Near 2021 eq. 4"},
        "citations": {"Gasparovic 2006": "Gasparovic C et al. Use of tissue water. MRM 2006"
                      + inject,
                      "Wyss 2018": "Wyss PO et al. In vivo estimation of transverse relaxation "
                                   "time constant (T2) of 17 human brain metabolites at 3T. "
                                   "MRM 2018;80:452"}})
    if run.with_transients:
        n = 64
        rej = np.zeros(n, bool)
        rej[[5, 40]] = True
        tr = pd.DataFrame({"transient": np.arange(1, n + 1),
                           "freq_shift_hz": np.round(np.linspace(-4, 4, n) + rng.normal(0, .5, n), 4),
                           "phase_deg": np.round(rng.normal(0, 15, n), 3),
                           "residual_z": np.round(np.where(rej, 4.5, rng.normal(0, 0.8, n)), 3),
                           "rejected": rej})
        write_tsv(out / naming.run_file(src, "transients", ".tsv"), tr)
        _write_raw(root or out.parent, src, fit - baseline, tr, run.raw_coils, rng, inject)
    if run.with_t1w:
        _write_anat(root or out.parent, out, src, ent["sub"], rng)


def make_participant_tree(out: Path, subject: str = "01", *,
                          runs: Sequence[FixtureRun] | None = None, inject: str = "",
                          seed: int = 0, snr_naa: float = 42.5) -> list[str]:
    """Write a fake participant output tree for ``subject`` under ``out``; return the srcs.

    Parameters
    ----------
    out : Path
        OUTPUT_DIR (created). The fake T1w goes to ``out.parent / "rawdata"``.
    runs : sequence of FixtureRun, optional
        Default: two runs (``acq-press_run-1`` with everything, ``acq-press_run-2`` without
        transients and T1w).
    inject : str
        Appended to several free-text sidecar strings (e.g. ``"<script>x</script>"``) to test
        escaping.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if runs is None:
        runs = (FixtureRun(f"sub-{subject}_acq-press_run-1"),
                FixtureRun(f"sub-{subject}_acq-press_run-2", with_transients=False,
                           with_t1w=False))
    rng = np.random.default_rng(seed)
    for run in runs:
        write_run(out, run, rng=rng, inject=inject, snr_naa=snr_naa)
    dd = out / "dataset_description.json"
    if not dd.exists():
        write_json(dd, {"Name": "bidsmrs outputs", "BIDSVersion": "1.10.0",
                        "DatasetType": "derivative",
                        "GeneratedBy": [{"Name": "bidsmrs", "Version": "0.1.0"}],
                        "DatasetLinks": {"raw": str(out.parent / "rawdata")}})
    (out / "logs").mkdir(exist_ok=True)
    return [r.src for r in runs]


def group_tables(out: Path, srcs: Sequence[str], *, excluded: Sequence[str] = ()):
    """Long concentrations and per-spectrum QC tables (group-stage format) from the run files.

    Spectra whose src is in ``excluded`` get ``included = False`` and reason ``low_snr``.
    """
    from bidsmrs.outputs.tables import read_tsv

    conc, qc = [], []
    for src in srcs:
        ent = naming.parse_src(src)
        ids = {"participant_id": f"sub-{ent['sub']}", "session": ent.get("ses", "n/a"),
               "acquisition": ent.get("acq", "n/a"), "volume": ent.get("voi", "n/a"),
               "run": ent.get("run", "n/a")}
        c = read_tsv(out / naming.run_file(src, "concentrations", ".tsv"))
        q = read_tsv(out / naming.run_file(src, "qc", ".tsv"))
        for frame in (c, q):
            for k, v in reversed(list(ids.items())):
                frame.insert(0, k, v)
        q["included"] = src not in excluded
        q["exclusion_reason"] = "low_snr" if src in excluded else "n/a"
        conc.append(c)
        qc.append(q)
    return pd.concat(conc, ignore_index=True), pd.concat(qc, ignore_index=True)
