"""``bidsmrs-demo OUTDIR``: write a small BIDS-MRS dataset with known truth, then run bidsmrs on it.

The dataset (``OUTDIR/bids``): 6 participants in two groups of 3 (the smallest design in which the
group level's ANCOVA with one covariate has residual degrees of freedom) (participants.tsv: ``group``, ``age``,
``sex``), PRESS TE 35 ms at 3 T, a metabolite acquisition with 32 transients (frequency drift,
phase jitter, noise, macromolecules and a smooth baseline) and a water reference, and a synthetic
T1w whose GM/WM/CSF probability maps are written as an fMRIPrep-style tree in
``OUTDIR/anat_derivatives``. ``OUTDIR/truth.tsv`` holds the true ``conc_tissue_corrected_mM``
(column ``conc_mM``) and ratio to tCr (``ratio_tcr``) of every metabolite. Outputs go to
``OUTDIR/bidsmrs``.

Truth is defined through the same quantification equations the pipeline uses (DESIGN.md §6.2)
with the true tissue fractions of the voxel, so the demo measures everything upstream of them:
preprocessing, fitting and tissue fractions.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SF_MHZ = 127.74  # 3 T
DWELL_S = 1 / 2000.0
N_POINTS = 2048
TE_S = 0.035
TE1_S, TE2_S = 0.011, 0.024  # PRESS sub-echo times, declared as PulseSequenceTiming
TR_S = 2.0
N_TRANSIENTS = 32
SEED = 20261122

#: Typical grey/white-matter brain concentrations (mM, tissue-corrected molarity), order of
#: magnitude from de Graaf, In Vivo NMR Spectroscopy (3rd ed., 2019) table 2.1 and Govindaraju 2000.
TYPICAL_MM = {"NAA": 10.5, "NAAG": 1.4, "Cr": 4.6, "PCr": 4.0, "GPC": 1.0, "PCh": 0.6, "Ins": 6.0,
              "Glu": 10.0, "Gln": 3.5, "GABA": 1.4, "GSH": 1.8, "Lac": 0.6, "Tau": 1.4, "Asp": 2.0,
              "sI": 0.3, "PE": 1.4, "Asc": 1.0, "Gly": 0.6, "Glc": 1.0, "Ala": 0.3}

PARTICIPANTS = (  # id, group, age, sex, voxel centre offset (mm), rotation about z (deg)
    ("01", "control", 34, "F", (0.0, 0.0, 0.0), 0.0),
    ("02", "control", 41, "M", (4.0, -3.0, 2.0), 12.0),
    ("03", "control", 29, "M", (2.0, 5.0, -3.0), 5.0),
    ("04", "patient", 38, "F", (-3.0, 4.0, -2.0), -8.0),
    ("05", "patient", 45, "M", (-5.0, -2.0, 3.0), 0.0),
    ("06", "patient", 31, "F", (3.0, 2.0, 0.0), 15.0),
)


# ---------------------------------------------------------------------------------------
# synthetic anatomy
# ---------------------------------------------------------------------------------------
def synthetic_head(voxel_mm: float = 2.0, shape=(80, 96, 80)):
    """A simple head: ellipsoidal brain with cortex (GM), white matter, ventricles and CSF.

    Returns ``(t1w, gm, wm, csf, affine)``; probability maps include partial volume.
    """
    from scipy.ndimage import gaussian_filter

    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -(np.array(shape) - 1) / 2 * voxel_mm
    ijk = np.indices(shape, dtype=float).reshape(3, -1).T
    xyz = (ijk * voxel_mm + affine[:3, 3]).T.reshape((3,) + tuple(shape))
    x, y, z = xyz

    def ellipsoid(a, b, c, centre=(0, 0, 0)):
        return ((x - centre[0]) / a) ** 2 + ((y - centre[1]) / b) ** 2 + ((z - centre[2]) / c) ** 2

    head = ellipsoid(70, 86, 68) <= 1
    brain = ellipsoid(64, 80, 62) <= 1
    wm = ellipsoid(52, 68, 50) <= 1
    # cortical folding: modulate the GM/WM boundary, and deep grey matter islands
    fold = 0.06 * np.sin(x / 7.0) * np.cos(y / 9.0)
    wm = ellipsoid(52, 68, 50) <= 1 + fold
    ventricles = (ellipsoid(9, 22, 9, (6, 5, 8)) <= 1) | (ellipsoid(9, 22, 9, (-6, 5, 8)) <= 1)
    deep_gm = (ellipsoid(10, 14, 10, (16, -8, -2)) <= 1) | (ellipsoid(10, 14, 10, (-16, -8, -2)) <= 1)
    sulcal_csf = brain & ~(ellipsoid(61, 77, 59) <= 1 + 0.04 * np.cos(x / 5.0))
    label = np.zeros(shape, np.int8)  # 0 bg, 1 csf, 2 gm, 3 wm
    label[head & ~brain] = 0
    label[brain] = 2
    label[wm] = 3
    label[deep_gm] = 2
    label[ventricles | sulcal_csf] = 1
    probs = [gaussian_filter((label == k).astype(float), 0.6) for k in (1, 2, 3)]
    total = np.maximum(sum(probs), 1e-9)
    inside = brain.astype(float)
    csf, gm, wm_p = (p / total * inside for p in probs)
    t1w = 0.3 * csf + 0.65 * gm + 1.0 * wm_p + 0.15 * (head & ~brain)
    rng = np.random.default_rng(SEED)
    t1w = np.abs(t1w + rng.normal(0, 0.02, shape)) * 1000
    return t1w.astype(np.float32), gm.astype(np.float32), wm_p.astype(np.float32), csf.astype(np.float32), affine


def voxel_affine(centre_mm, size_mm=(20.0, 20.0, 20.0), rot_z_deg=0.0) -> np.ndarray:
    """NIfTI-MRS affine of one voxel: columns are the edge vectors, translation the centre."""
    a = np.deg2rad(rot_z_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(size_mm)
    aff[:3, 3] = centre_mm
    return aff


#: Voxel centre (mm, synthetic head space): medial frontal, spanning cortex and white matter
#: like a dorsal anterior cingulate voxel.
BASE_CENTRE_MM = (0.0, 34.0, 46.0)


# ---------------------------------------------------------------------------------------
# spectra
# ---------------------------------------------------------------------------------------
def _scaling_per_amplitude(basis, tissue, config, water_amplitude):
    """conc_tissue_corrected_mM per unit basis amplitude for each metabolite (the pipeline's equations)."""
    from bidsmrs.fitting.result import FitResult
    from bidsmrs.quantify import quantify

    n = len(basis.names)
    ones = np.ones(n)
    empty = np.zeros(basis.n_points, complex)
    fit = FitResult(names=basis.names, amplitudes=ones, covariance=np.eye(n) * 1e-6, ppm=basis.ppm,
                    data=empty, fit=empty, baseline=empty, components=np.zeros((basis.n_points, n), complex),
                    fit_range_ppm=(0.2, 4.2), noise_sd=1.0, is_macromolecule=basis.is_macromolecule)
    conc = quantify(fit, water_amplitude=water_amplitude, tissue=tissue, echo_time_s=TE_S,
                    repetition_time_s=TR_S, config=config)
    table = conc.table.set_index("metabolite")
    return {m: float(table.loc[m, "conc_tissue_corrected_mM"]) for m in basis.names}


@dataclass(frozen=True)
class SyntheticAcquisition:
    """One participant's synthetic data and the truth behind it."""

    transients: np.ndarray      # (n_points, n_transients) complex, stored convention
    water: np.ndarray           # (n_points,) complex
    amplitudes: dict            # basis amplitudes (molecules) used
    drift_hz: np.ndarray        # per-transient frequency offset applied (Hz)
    phase_deg: np.ndarray       # per-transient zero-order phase applied (degrees)


def make_participant_data(basis, true_mM: dict, tissue, config, rng) -> SyntheticAcquisition:
    """Metabolite transients with drift, phase jitter and noise, a water FID, and the truth."""
    from bidsmrs.simulate import combine_basis, peak_fid, smooth_baseline_fid

    water_amplitude = 2.0e4
    per_amp = _scaling_per_amplitude(basis, tissue, config, water_amplitude)
    amps = {m: true_mM[m] / per_amp[m] for m in true_mM if m in basis.names}
    mm_names = [n for n, is_mm in zip(basis.names, basis.is_macromolecule) if is_mm]
    cr_amp = amps.get("Cr", 0) + amps.get("PCr", 0)
    for name in mm_names:  # macromolecules at a realistic size relative to creatine
        amps[name] = 0.15 * cr_amp * rng.uniform(0.8, 1.2)
    lorentz_hz, gauss_hz = rng.uniform(2.5, 4.0), rng.uniform(3.0, 5.0)
    clean = combine_basis(basis, amps, lorentz_hz=lorentz_hz, gauss_hz=gauss_hz, mm_lorentz_hz=lorentz_hz + 15)
    baseline = smooth_baseline_fid(N_POINTS, DWELL_S, SF_MHZ, amplitude=0.02 * np.abs(np.fft.fft(clean)).max(),
                                   rng=rng, ppm_centre=4.65)
    residual_water = peak_fid(N_POINTS, DWELL_S, SF_MHZ, 4.68, amplitude=0.5 * cr_amp * 5, lorentz_hz=8.0,
                              phase_deg=rng.uniform(-90, 90))
    clean = clean + baseline + residual_water
    t = np.arange(N_POINTS) * DWELL_S
    drift = np.cumsum(rng.normal(0, 0.4, N_TRANSIENTS))
    phases = rng.normal(0, 4, N_TRANSIENTS)
    noise_sd = np.abs(clean[0]) * 0.03  # per transient, time domain; NAA SNR ~ 70 after averaging
    transients = np.stack([clean * np.exp(2j * np.pi * drift[k] * t + 1j * np.deg2rad(phases[k]))
                           for k in range(N_TRANSIENTS)], axis=1)
    transients = transients + noise_sd * (rng.standard_normal(transients.shape)
                                          + 1j * rng.standard_normal(transients.shape))
    water = peak_fid(N_POINTS, DWELL_S, SF_MHZ, 4.65, amplitude=water_amplitude, lorentz_hz=lorentz_hz + 1.0,
                     gauss_hz=gauss_hz)
    water = water + noise_sd * 0.2 * (rng.standard_normal(N_POINTS) + 1j * rng.standard_normal(N_POINTS))
    return SyntheticAcquisition(transients, water, amps, drift, phases)


def truth_rows(participant_id: str, true_mM: dict, amps: dict) -> list[dict]:
    from bidsmrs.constants import COMBINATIONS

    tcr = amps.get("Cr", 0) + amps.get("PCr", 0)
    rows = [{"participant_id": participant_id, "metabolite": m, "conc_mM": true_mM[m], "ratio_tcr": amps[m] / tcr}
            for m in true_mM]
    for name, parts in COMBINATIONS.items():
        present = [p for p in parts if p in true_mM]
        if len(present) >= 2:
            rows.append({"participant_id": participant_id, "metabolite": name,
                         "conc_mM": sum(true_mM[p] for p in present),
                         "ratio_tcr": sum(amps[p] for p in present) / tcr})
    return rows


# ---------------------------------------------------------------------------------------
# writing the dataset
# ---------------------------------------------------------------------------------------
def write_demo_dataset(outdir: Path, *, cache_dir: Path | None = None) -> dict[str, Path]:
    """Write ``bids/``, ``anat_derivatives/`` and ``truth.tsv`` under ``outdir``; return their paths."""
    import nibabel as nib

    from bidsmrs.basis.select import default_basis
    from bidsmrs.io.atomic import atomic_path, atomic_write_text
    from bidsmrs.io.jsonfile import write_json
    from bidsmrs.io.nifti_mrs import save_nifti_mrs
    from bidsmrs.quantify import fractions_from_maps, load_quant_config, voxel_mask
    from bidsmrs.spectrum import Spectrum

    outdir = Path(outdir)
    bids, deriv = outdir / "bids", outdir / "anat_derivatives"
    rng = np.random.default_rng(SEED)
    basis = default_basis(spectrometer_mhz=SF_MHZ, dwell_s=DWELL_S, n_points=N_POINTS, echo_time_s=TE_S,
                          sequence="press", te1_s=TE1_S, te2_s=TE2_S, cache_dir=cache_dir)
    config = load_quant_config(None, SF_MHZ / 42.577478)
    t1w, gm, wm, csf, t1_affine = synthetic_head()

    write_json(bids / "dataset_description.json", {
        "Name": "bidsmrs demo: synthetic PRESS 3 T", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "License": "CC0", "Authors": ["bidsmrs"],
        "GeneratedBy": [{"Name": "bidsmrs-demo", "Description": "synthetic data with known truth"}]})
    atomic_write_text(bids / "README", "Synthetic single-voxel MRS dataset written by bidsmrs-demo.\n")
    write_json(deriv / "dataset_description.json", {
        "Name": "synthetic tissue maps", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "bidsmrs-demo"}]})
    participants, truth = [], []
    for label, group, age, sex, offset, rot in PARTICIPANTS:
        sub = f"sub-{label}"
        participants.append({"participant_id": sub, "group": group, "age": age, "sex": sex})
        centre = np.add(BASE_CENTRE_MM, offset)
        aff = voxel_affine(centre, rot_z_deg=rot)
        vm = voxel_mask(aff, gm.shape, t1_affine)
        tissue = fractions_from_maps(vm, gm, wm, csf, source="truth")
        scale = rng.uniform(0.9, 1.1, len(TYPICAL_MM))
        true_mM = {m: v * s for (m, v), s in zip(TYPICAL_MM.items(), scale)}
        if group == "patient":
            true_mM["Glu"] *= 0.85
        acq = make_participant_data(basis, true_mM, tissue, config, rng)
        transients, water, amps = acq.transients, acq.water, acq.amplitudes
        truth += truth_rows(sub, true_mM, amps)

        anat = bids / sub / "anat"
        with atomic_path(anat / f"{sub}_T1w.nii.gz") as tmp:
            nib.save(nib.Nifti1Image(t1w, t1_affine), str(tmp))
        write_json(anat / f"{sub}_T1w.json", {"MagneticFieldStrength": 3, "Manufacturer": "Synthetic"})
        for lab, arr in (("GM", gm), ("WM", wm), ("CSF", csf)):
            with atomic_path(deriv / sub / "anat" / f"{sub}_label-{lab}_probseg.nii.gz") as tmp:
                nib.save(nib.Nifti1Image(arr, t1_affine), str(tmp))

        mrs = bids / sub / "mrs"
        common = {"SpectrometerFrequency": [SF_MHZ], "ResonantNucleus": ["1H"], "EchoTime": TE_S,
                  "RepetitionTime": TR_S}
        metab = Spectrum(fid=transients, dwell_s=DWELL_S, spectrometer_mhz=SF_MHZ, dim_tags=("DIM_DYN",),
                         echo_time_s=TE_S, repetition_time_s=TR_S, affine=aff,
                         header={"WaterSuppressed": True, "SequenceName": "PRESS"})
        ref = Spectrum(fid=water, dwell_s=DWELL_S, spectrometer_mhz=SF_MHZ, echo_time_s=TE_S,
                       repetition_time_s=TR_S, affine=aff, header={"WaterSuppressed": False})
        save_nifti_mrs(metab, mrs / f"{sub}_acq-press_svs.nii.gz", program="bidsmrs-demo")
        save_nifti_mrs(ref, mrs / f"{sub}_acq-press_mrsref.nii.gz", program="bidsmrs-demo")
        write_json(mrs / f"{sub}_acq-press_svs.json", {
            **common, "SpectralWidth": 1 / DWELL_S, "NumberOfSpectralPoints": N_POINTS,
            "NumberOfTransients": N_TRANSIENTS, "PulseSequenceType": "PRESS", "WaterSuppression": True,
            "PulseSequenceTiming": [TE1_S, TE2_S], "AcquisitionVoxelSize": [20, 20, 20],
            "MagneticFieldStrength": 3, "Manufacturer": "Synthetic",
            "ReferenceSignal": f"bids::{sub}/mrs/{sub}_acq-press_mrsref.nii.gz",
            "AnatomicalImage": f"bids::{sub}/anat/{sub}_T1w.nii.gz"})
        write_json(mrs / f"{sub}_acq-press_mrsref.json", {
            **common, "SpectralWidth": 1 / DWELL_S, "NumberOfSpectralPoints": N_POINTS,
            "WaterSuppression": False, "MagneticFieldStrength": 3})
    pd_participants = pd.DataFrame(participants)
    atomic_write_text(bids / "participants.tsv", pd_participants.to_csv(sep="\t", index=False))
    write_json(bids / "participants.json", {
        "group": {"Description": "Study group", "Levels": {"control": "healthy control", "patient": "patient"}},
        "age": {"Description": "Age at scan", "Units": "year"},
        "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}}})
    truth_path = outdir / "truth.tsv"
    atomic_write_text(truth_path, pd.DataFrame(truth).to_csv(sep="\t", index=False, float_format="%.6g"))
    return {"bids": bids, "anat_derivatives": deriv, "truth": truth_path}


def main(argv=None) -> int:
    """Console entry point ``bidsmrs-demo OUTDIR``."""
    parser = argparse.ArgumentParser(prog="bidsmrs-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="folder for the demo dataset and results")
    parser.add_argument("--nprocs", type=int, default=None, help="participants in parallel")
    parser.add_argument("--no-run", action="store_true", help="only write the dataset")
    opts = parser.parse_args(argv)
    from bidsmrs.cli import main as cli_main

    outdir = opts.outdir.resolve()
    print(f"bidsmrs-demo: writing the demo dataset to {outdir}", file=sys.stderr)
    paths = write_demo_dataset(outdir)
    if opts.no_run:
        return 0
    results = outdir / "bidsmrs"
    extra = ["--nprocs", str(opts.nprocs)] if opts.nprocs else []
    code = cli_main([str(paths["bids"]), str(results), "participant",
                     "--anat-derivatives", str(paths["anat_derivatives"]), *extra])
    if code not in (0, 1):
        return code
    gcode = cli_main([str(paths["bids"]), str(results), "group", "--group-by", "group", "--covariates", "age"])
    print("\nbidsmrs-demo: reports")
    for report in sorted(results.glob("sub-*.html")) + sorted(results.glob("group.html")):
        print(f"  {report}")
    print(f"  truth: {paths['truth']}")
    return max(code, gcode)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
