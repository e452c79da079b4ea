"""Valid data recorded away from the usual frequency set-up, through the CLI: a transmitter
centred on the metabolites (SpecFreqChemShift 2.0 ppm) and metabolite data 0.25 ppm off their
water reference (B0 drift between the two acquisitions). Both must give the same ratios and
water-scaled concentrations as the plain acquisition."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bidsmrs.cli import main
from tests.bidsfixtures import write_nifti_mrs

SF, DWELL, N, TE = 123.2, 1.0 / 2000.0, 2048, 0.030
TRUTH = {"NAA": 10.0, "NAAG": 1.0, "Cr": 4.5, "PCr": 4.0, "GPC": 1.0, "PCh": 0.5, "Ins": 6.0, "Glu": 10.0,
         "Gln": 3.0, "Tau": 1.5, "GSH": 1.5}
WATER_AMPLITUDE = 4.0e4


def _write(root, sub, met, water, centre_ppm, rng):
    t = np.arange(N) * DWELL
    # the same signals seen by a receiver centred at centre_ppm instead of 4.65 ppm
    recentre = np.exp(2j * np.pi * (centre_ppm - 4.65) * SF * t)
    mrs = root / f"sub-{sub}" / "mrs"
    hdr = {"SpecFreqChemShift": centre_ppm} if centre_ppm != 4.65 else {}
    noise = 0.02 * (rng.standard_normal((N, 16)) + 1j * rng.standard_normal((N, 16)))
    ref = f"bids::sub-{sub}/mrs/sub-{sub}_acq-press_mrsref.nii.gz"
    write_nifti_mrs(mrs / f"sub-{sub}_acq-press_svs.nii.gz", (met * recentre)[:, None] + noise, dwell_s=DWELL,
                    sf_mhz=SF, te_s=TE, dim_tags=("DIM_DYN",),
                    header_extra={**hdr, "WaterSuppressed": True},
                    sidecar_extra={"PulseSequenceType": "PRESS", "PulseSequenceTiming": [0.011, 0.019],
                                   "WaterSuppression": True, "ReferenceSignal": ref})
    write_nifti_mrs(mrs / f"sub-{sub}_acq-press_mrsref.nii.gz", water * recentre, dwell_s=DWELL, sf_mhz=SF,
                    te_s=TE, header_extra={**hdr, "WaterSuppressed": False},
                    sidecar_extra={"PulseSequenceType": "PRESS", "WaterSuppression": False})


@pytest.mark.slow
def test_centre_frequency_and_offset_do_not_change_the_result(tmp_path):
    from bidsmrs.basis.select import default_basis
    from bidsmrs.outputs import naming
    from bidsmrs.outputs.tables import read_tsv
    from bidsmrs.simulate import combine_basis, peak_fid

    basis = default_basis(spectrometer_mhz=SF, dwell_s=DWELL, n_points=N, echo_time_s=TE, sequence="press",
                          te1_s=0.011, te2_s=0.019, cache_dir=tmp_path / "cache")
    met = combine_basis(basis, TRUTH, lorentz_hz=4.0, gauss_hz=4.0)
    met = met + peak_fid(N, DWELL, SF, 4.68, amplitude=30.0, lorentz_hz=8.0)  # residual water
    water = peak_fid(N, DWELL, SF, 4.65, amplitude=WATER_AMPLITUDE, lorentz_hz=5.0, gauss_hz=4.0)
    t = np.arange(N) * DWELL
    root = tmp_path / "bids"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.10.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-plain\nsub-centre2\nsub-offset\n")
    rng = np.random.default_rng(0)
    _write(root, "plain", met, water, 4.65, rng)
    _write(root, "centre2", met, water, 2.0, rng)
    _write(root, "offset", met * np.exp(-2j * np.pi * 0.25 * SF * t), water, 4.65, rng)  # +0.25 ppm

    out = tmp_path / "out"
    code = main([str(root), str(out), "participant", "--skip-bids-validation", "--no-report",
                 "--tissue-fractions", "0.6", "0.4", "0", "--nprocs", "1"])
    assert code == 0
    tables = {naming.src_of(p).split("_")[0]: read_tsv(p).set_index("metabolite")
              for p in naming.find_concentration_tables(out)}
    assert set(tables) == {"sub-plain", "sub-centre2", "sub-offset"}
    true_ratio = (TRUTH["NAA"] + TRUTH["NAAG"]) / (TRUTH["Cr"] + TRUTH["PCr"])
    scaled = {}
    for sub, t_ in tables.items():
        assert t_.loc["tNAA", "ratio_tcr"] == pytest.approx(true_ratio, rel=0.04), sub
        assert t_.loc["tCho", "ratio_tcr"] == pytest.approx(1.5 / 8.5, rel=0.08), sub
        assert t_.loc["Ins", "ratio_tcr"] == pytest.approx(6.0 / 8.5, rel=0.08), sub
        scaled[sub] = t_.loc["tNAA", "conc_tissue_corrected_mM"]
    # the same water scaling in all three (the water peak found at 4.65 ppm each time)
    assert scaled["sub-centre2"] == pytest.approx(scaled["sub-plain"], rel=0.02)
    assert scaled["sub-offset"] == pytest.approx(scaled["sub-plain"], rel=0.02)
