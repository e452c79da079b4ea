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

    src = shared / "data" / "mrs_fitting_challenge" / "datasets_text"
    write_json(root / "dataset_description.json", {"Name": "ISMRM MRS fitting challenge (Marjanska 2022)",
                                                   "BIDSVersion": "1.10.0", "License": "CC-BY-SA-4.0",
                                                   "Authors": ["Marjanska M", "Deelchand D", "Kreis R"]})
    rows = []
    for n in datasets:
        cols = np.loadtxt(src / f"dataset{n}.txt")
        metab = cols[:, 0] + 1j * cols[:, 1]
        water = cols[:, 2] + 1j * cols[:, 3]
        sub = f"sub-ds{n:02d}"
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
    """Convert, run the CLI, return the long table of estimates (dataset, metabolite, estimate_mM)."""
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
        n = int(naming.src_of(path).split("_")[0].replace("sub-ds", ""))
        t = read_tsv(path)
        rows += [{"dataset": n, "metabolite": m, "estimate_mM": v}
                 for m, v in zip(t.metabolite, t.conc_tissue_corrected_mM)]
    return pd.DataFrame(rows)


def _parse_range(text: str):
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="1-10")
    p.add_argument("--shared", type=Path, default=shared_dir())
    p.add_argument("--keep", type=Path, help="keep the BIDS dataset and outputs here")
    p.add_argument("--nprocs", type=int, default=1)
    opts = p.parse_args(argv)
    from benchmarks.challenge import estimates_from_table, print_metrics

    datasets = _parse_range(opts.datasets)
    t0 = time.perf_counter()
    if opts.keep:
        opts.keep.mkdir(parents=True, exist_ok=True)
        est = run(datasets, opts.shared, opts.keep, opts.nprocs)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            est = run(datasets, opts.shared, Path(tmp), opts.nprocs)
    print(f"bidsmrs CLI on {len(datasets)} datasets: {time.perf_counter() - t0:.1f} s wall")
    print_metrics(estimates_from_table(est), opts.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
