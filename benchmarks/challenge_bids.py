"""The ISMRM fitting challenge through the normal bidsmrs CLI (issue 3, item 5).

Converts challenge datasets to a BIDS-MRS dataset in a temporary folder (one participant per
dataset, NIfTI-MRS metabolite + water reference), runs ``bidsmrs participant`` with the
challenge basis (``--basis press3T_30ms.BASIS``), ``--tissue-fractions 0.6 0.4 0`` and a
``--quant-config`` holding the challenge constants, then compares
``conc_tissue_corrected_mM`` with the truth of datasets 1–10 (``../shared/bench``).

    .venv/bin/python -m benchmarks.challenge_bids [--datasets 1-10] [--keep DIR] [--nprocs 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SF_MHZ = 123.2
DWELL_S = 1.0 / 4000.0
TE_S = 0.030
TR_S = 1000.0  # "TR >> T1" in the challenge: long enough that saturation terms are exactly 1

#: The challenge's quantification constants (its README): GM/WM 0.6/0.4 (given on the command line),
#: water contents 0.78/0.65, water T2 GM/WM 110/80 ms, metabolite T2 160 ms.
CHALLENGE_QUANT_CONFIG = {
    "water": {"T2": {"gm": 0.110, "wm": 0.080}, "content": {"gm": 0.78, "wm": 0.65}},
    "metabolites": {"default": {"T2": 0.160}},
}


def shared_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared"


def write_challenge_bids(root: Path, datasets, shared: Path) -> Path:
    """Write challenge ``datasets`` (numbers) as ``sub-dsNN`` participants under ``root``."""
    from bidsmrs.io.jsonfile import write_json
    from bidsmrs.io.nifti_mrs import save_nifti_mrs
    from bidsmrs.spectrum import Spectrum

    base = shared / "data" / "mrs_fitting_challenge"
    write_json(root / "dataset_description.json", {"Name": "ISMRM MRS fitting challenge (Marjanska 2022)",
                                                   "BIDSVersion": "1.10.0", "License": "CC-BY-SA-4.0",
                                                   "Authors": ["Marjanska M", "Deelchand D", "Kreis R"]})
    rows = []
    files = {f"ds{n:02d}": base / "datasets_text" / f"dataset{n}.txt" for n in datasets}
    files["crtest"] = base / "Cr_water_scaling_text" / "Cr_10mM_test_water_scaling.txt"
    for label, path in files.items():
        cols = np.loadtxt(path)
        metab = cols[:, 0] + 1j * cols[:, 1]
        water = cols[:, 2] + 1j * cols[:, 3]
        sub = f"sub-{label}"
        rows.append(sub)
        mrs = root / sub / "mrs"
        common = {"SpectrometerFrequency": [SF_MHZ], "ResonantNucleus": ["1H"], "EchoTime": TE_S,
                  "RepetitionTime": TR_S, "SpectralWidth": 1 / DWELL_S}
        for suffix, fid, extra in (("svs", metab, {"PulseSequenceType": "PRESS", "WaterSuppression": True,
                                                    "ReferenceSignal": f"bids::{sub}/mrs/{sub}_acq-press_mrsref.nii.gz"}),
                                   ("mrsref", water, {"WaterSuppression": False})):
            spec = Spectrum(fid=fid, dwell_s=DWELL_S, spectrometer_mhz=SF_MHZ, echo_time_s=TE_S,
                            repetition_time_s=TR_S, affine=np.diag([20.0, 20.0, 20.0, 1.0]))
            save_nifti_mrs(spec, mrs / f"{sub}_acq-press_{suffix}.nii.gz", program="benchmarks.challenge_bids")
            write_json(mrs / f"{sub}_acq-press_{suffix}.json", {**common, **extra})
    (root / "participants.tsv").write_text("participant_id\n" + "\n".join(rows) + "\n")
    return root


def run(datasets, shared: Path, workdir: Path, nprocs: int = 1) -> pd.DataFrame:
    """Convert, run the CLI, return the long table of estimates (participant, metabolite, estimate_mM)."""
    from bidsmrs.cli import main
    from bidsmrs.outputs import naming
    from bidsmrs.outputs.tables import read_tsv

    bids = write_challenge_bids(workdir / "bids", datasets, shared)
    config = workdir / "challenge_quant.json"
    config.write_text(json.dumps(CHALLENGE_QUANT_CONFIG))
    out = workdir / "out"
    basis = shared / "data" / "mrs_fitting_challenge" / "basisset_LCModel" / "press3T_30ms.BASIS"
    code = main([str(bids), str(out), "participant", "--basis", str(basis), "--tissue-fractions", "0.6", "0.4",
                 "0", "--quant-config", str(config), "--skip-bids-validation", "--no-report",
                 "--nprocs", str(nprocs)])
    if code != 0:
        raise RuntimeError(f"bidsmrs exited with {code}")
    rows = []
    for path in naming.find_concentration_tables(out):
        label = naming.src_of(path).split("_")[0].replace("sub-", "")
        t = read_tsv(path)
        rows += [{"participant": label, "metabolite": m, "estimate_mM": v}
                 for m, v in zip(t.metabolite, t.conc_tissue_corrected_mM)]
    return pd.DataFrame(rows)


def summarise(est: pd.DataFrame, shared: Path, datasets) -> dict:
    """The bench/README.md metrics of the CLI estimates, and the creatine test (tCr, mM)."""
    from benchmarks.challenge import SUMS, metrics, read_table

    table: dict[str, dict[int, float]] = {}
    for row in est.itertuples():
        if row.participant.startswith("ds"):
            table.setdefault(row.metabolite, {})[int(row.participant[2:])] = row.estimate_mM
    for name, parts in SUMS.items():
        if all(p in table for p in parts):
            table[name] = {d: sum(table[p][d] for p in parts) for d in table[parts[0]]}
    truth = read_table(shared / "bench" / "challenge_truth_datasets_1-10.csv")
    fsl = read_table(shared / "bench" / "fslmrs_2.4.8_newton_datasets_1-10.csv")
    scored = [d for d in datasets if d <= 10]
    ours = metrics(table, truth, scored) if scored else {}
    theirs = metrics(fsl, truth, scored) if scored else {}
    cr = est[(est.participant == "crtest") & (est.metabolite == "tCr")].estimate_mM
    return {"bidsmrs": ours, "fslmrs": theirs, "creatine_tCr_mM": float(cr.iloc[0]) if len(cr) else float("nan")}



#: Rows shown for datasets without truth (11–28): enough to spot a failed fit at a glance.
SANITY_ROWS = ("tNAA", "tCr", "tCho", "Glx", "Ins", "Lac", "Mac")


def print_estimates(est: pd.DataFrame, datasets) -> None:
    """Print tissue-corrected estimates (mM) of ``datasets`` that have no truth here (no metrics)."""
    if not datasets:
        return
    wide = est.pivot_table(index="participant", columns="metabolite", values="estimate_mM")
    labels = [f"ds{d:02d}" for d in datasets if f"ds{d:02d}" in wide.index]
    cols = [c for c in SANITY_ROWS if c in wide.columns]
    print("no truth for these datasets (estimates only, mM):")
    print(f"{'dataset':<9}" + "".join(f"{c:>9}" for c in cols))
    for label in labels:
        print(f"{label:<9}" + "".join(f"{wide.loc[label, c]:>9.2f}" for c in cols))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="1-10")
    p.add_argument("--shared", type=Path, default=shared_dir())
    p.add_argument("--keep", type=Path, help="keep the BIDS dataset and outputs here")
    p.add_argument("--nprocs", type=int, default=1)
    opts = p.parse_args(argv)
    from benchmarks.challenge import _parse_range

    datasets = _parse_range(opts.datasets)
    t0 = time.perf_counter()
    if opts.keep:
        opts.keep.mkdir(parents=True, exist_ok=True)
        est = run(datasets, opts.shared, opts.keep, opts.nprocs)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            est = run(datasets, opts.shared, Path(tmp), opts.nprocs)
    wall = time.perf_counter() - t0
    res = summarise(est, opts.shared, datasets)
    print(f"bidsmrs CLI on challenge datasets {opts.datasets} + creatine test: {wall:.1f} s wall")
    print_estimates(est, [d for d in datasets if d > 10])
    if any(d <= 10 for d in datasets):
        print(f"{'metric':<18}{'bidsmrs':>10}{'FSL-MRS':>10}")
        for key in ("mm_all", "per_all", "mm_high", "per_high", "median_per_high", "median_per_all"):
            print(f"{key:<18}{res['bidsmrs'][key]:>10.3f}{res['fslmrs'][key]:>10.3f}")
    print(f"creatine test (tCr, expected 10.8 ± 0.2 mM): {res['creatine_tCr_mM']:.2f} mM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
