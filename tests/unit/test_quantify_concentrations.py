"""Concentrations table: each formula against hand-computed values (DESIGN.md §6.2)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bidsmrs.errors import QuantificationError
from bidsmrs.fitting.result import FitResult
from bidsmrs.quantify.concentrations import COLUMNS, quantify
from bidsmrs.quantify.config import load_quant_config
from bidsmrs.quantify.tissue import fixed_fractions

E = math.exp


def _fit(names, amps, sds=None, cov=None):
    amps = np.asarray(amps, float)
    n = len(amps)
    if cov is None:
        sds = 0.05 * amps if sds is None else np.asarray(sds, float)
        cov = np.diag(sds ** 2)
    z = np.zeros(8)
    return FitResult(tuple(names), amps, np.asarray(cov, float), z, z, z, z, np.zeros((8, n)),
                     (0.2, 4.2), 1.0)


def _row(conc, name):
    t = conc.table
    return t[t.metabolite == name].iloc[0]


# A config with round numbers, so the expected values below are written out by hand.
CFG = {"water": {"T1": {"gm": 1.3, "wm": 0.8, "csf": 4.0},
                 "T2": {"gm": 0.1, "wm": 0.08, "csf": 0.5}},
       "metabolites": {"default": {"T1": 1.4, "T2": 0.2}, "NAA": {"T2": 0.3}},
       "alpha": 0.5}
TE, TR = 0.03, 2.0


def _rw(t1, t2):
    return E(-TE / t2) * (1 - E(-TR / t1))


RW = {"gm": _rw(1.3, 0.1), "wm": _rw(0.8, 0.08), "csf": _rw(4.0, 0.5)}
D = {"gm": 0.78, "wm": 0.65, "csf": 0.97}


@pytest.fixture(scope="module")
def cfg():
    return load_quant_config(CFG, 3.0)


@pytest.mark.parametrize("fgm,fwm,fcsf", [(0.6, 0.4, 0.0), (0.42, 0.28, 0.3)])
def test_every_formula_by_hand(cfg, fgm, fwm, fcsf):
    fit = _fit(["Cr", "NAA"], [4.0, 6.0])
    sw = 5000.0
    conc = quantify(fit, water_amplitude=sw, tissue=fixed_fractions(fgm, fwm, fcsf),
                    echo_time_s=TE, repetition_time_s=TR, config=cfg)
    f = {"gm": fgm, "wm": fwm, "csf": fcsf}
    for name, amp, t2m in (("Cr", 4.0, 0.2), ("NAA", 6.0, 0.3)):   # NAA has its own T2
        rm = E(-TE / t2m) * (1 - E(-TR / 1.4))
        base = 2 * amp / sw * 55510.0 / rm
        raw = base * (0.5 * 0.78 * RW["gm"] + 0.5 * 0.65 * RW["wm"])
        molar = base * (fgm * 0.78 * RW["gm"] + fwm * 0.65 * RW["wm"] + fcsf * 0.97 * RW["csf"]) / (1 - fcsf)
        wsum = fgm * 0.78 + fwm * 0.65 + fcsf * 0.97
        mf = {t: f[t] * D[t] / wsum for t in f}
        molal = base * sum(mf[t] * RW[t] for t in f) / (1 - mf["csf"])
        r = _row(conc, name)
        assert r.conc_raw_water_mM == pytest.approx(raw, rel=1e-12)
        assert r.conc_csf_corrected_mM == pytest.approx(raw / (1 - fcsf), rel=1e-12)
        assert r.conc_tissue_corrected_mM == pytest.approx(molar, rel=1e-12)
        assert r.conc_molal_mmol_per_kg == pytest.approx(molal, rel=1e-12)
        assert math.isnan(r.conc_alpha_corrected_mM)          # not an alpha metabolite
    if fcsf == 0:
        assert _row(conc, "Cr").conc_csf_corrected_mM == _row(conc, "Cr").conc_raw_water_mM
    assert conc.provenance["metabolites"]["NAA"]["T2_s"]["value"] == 0.3
    assert conc.provenance["metabolites"]["Cr"]["T2_s"]["value"] == 0.2


def test_alpha_correction_harris_2015(cfg):
    fit = _fit(["GABA", "MM09", "Glu", "Gln", "Cr", "PCr"], [1.0, 0.5, 8.0, 3.0, 4.0, 3.0])
    fr = fixed_fractions(0.5, 0.3, 0.2)
    conc = quantify(fit, water_amplitude=5000.0, tissue=fr, echo_time_s=TE, repetition_time_s=TR,
                    config=cfg)
    # Harris 2015: C = C_water * sum_t f_t d_t R_w,t / R_m / (f_GM + alpha f_WM)
    rm = E(-TE / 0.2) * (1 - E(-TR / 1.4))
    water = 0.5 * 0.78 * RW["gm"] + 0.3 * 0.65 * RW["wm"] + 0.2 * 0.97 * RW["csf"]
    for name, amp in (("GABA", 1.0), ("Glu", 8.0), ("Gln", 3.0)):
        expected = 2 * amp / 5000.0 * 55510.0 * water / rm / (0.5 + 0.5 * 0.3)
        assert _row(conc, name).conc_alpha_corrected_mM == pytest.approx(expected, rel=1e-12)
    # combined rows: Glx and GABA+ get alpha values, sums of their parts
    glx = _row(conc, "Glx")
    assert glx.conc_alpha_corrected_mM == pytest.approx(
        _row(conc, "Glu").conc_alpha_corrected_mM + _row(conc, "Gln").conc_alpha_corrected_mM)
    gp = _row(conc, "GABA+")
    assert gp.conc_alpha_corrected_mM == pytest.approx(
        2 * 1.5 / 5000.0 * 55510.0 * water / rm / 0.65)
    assert math.isnan(_row(conc, "tCr").conc_alpha_corrected_mM)
    assert math.isnan(_row(conc, "MM09").conc_alpha_corrected_mM)
    # pure GM: alpha-corrected == tissue-corrected molarity
    conc = quantify(fit, water_amplitude=5000.0, tissue=fixed_fractions(1, 0, 0), echo_time_s=TE,
                    repetition_time_s=TR, config=cfg)
    r = _row(conc, "GABA")
    assert r.conc_alpha_corrected_mM == pytest.approx(r.conc_tissue_corrected_mM)


def test_fitting_challenge_convention():
    """f GM/WM/CSF 0.6/0.4/0, water T2 0.110/0.080 s, metabolite T2 0.160 s, TR >> T1.

    The challenge README: [M] = water_conc * (1/exp(-TE/T2_m)) * S_m/S_w with
    water_conc = (1 mol/18.015 g) * (0.6*0.78*exp(-30/110) + 0.4*0.65*exp(-30/80)) = 29697 mM.
    1 mol/18.015 g is 55.51 mol/kg (our PURE_WATER_MOLAL), and its "area" ratio counts water
    molecules, i.e. our S_w/H_w with H_w = 2 protons.  So ours must equal
    H_w * README formula (to the 55.51 vs 1000/18.015 rounding).
    """
    te = 0.030
    water_conc_mM = 1e6 / 18.015 * (0.6 * 0.78 * E(-30 / 110) + 0.4 * 0.65 * E(-30 / 80))
    assert round(water_conc_mM) == 29697
    metab_relax = 1 / E(-30 / 160)
    assert round(metab_relax, 3) == 1.206
    cfg = load_quant_config({"water": {"T2": {"gm": 0.110, "wm": 0.080}},
                             "metabolites": {"default": {"T2": 0.160}}}, 2.89)
    fit = _fit(["Cr", "PCr"], [3.7, 1.3])
    sw = 1234.5
    conc = quantify(fit, water_amplitude=sw, tissue=fixed_fractions(0.6, 0.4, 0.0),
                    echo_time_s=te, repetition_time_s=1000.0, config=cfg)
    for name, amp in (("Cr", 3.7), ("PCr", 1.3), ("tCr", 5.0)):
        readme = water_conc_mM * metab_relax * amp / sw
        assert _row(conc, name).conc_tissue_corrected_mM == pytest.approx(2 * readme, rel=1e-4)


def test_combined_rows_sum_parts_and_use_covariance(cfg):
    cov = np.array([[0.04, -0.03], [-0.03, 0.09]])     # anticorrelated Cr/PCr
    fit = _fit(["Cr", "PCr"], [4.0, 3.0], cov=cov)
    conc = quantify(fit, water_amplitude=5000.0, tissue=fixed_fractions(0.6, 0.4, 0),
                    echo_time_s=TE, repetition_time_s=TR, config=cfg)
    tcr = _row(conc, "tCr")
    assert tcr.amplitude == 7.0
    assert tcr.sd == pytest.approx(math.sqrt(0.04 + 0.09 - 0.06))
    assert tcr.crlb_percent == pytest.approx(100 * math.sqrt(0.07) / 7)
    for col in COLUMNS[5:9]:
        assert tcr[col] == pytest.approx(_row(conc, "Cr")[col] + _row(conc, "PCr")[col])
    assert tcr.ratio_tcr == 1.0
    assert _row(conc, "Cr").ratio_tcr == pytest.approx(4 / 7)


def test_combined_row_relaxation_is_per_part():
    # NAA and NAAG with different T2: tNAA is the sum of the separately corrected values,
    # not tNAA amplitude with one relaxation factor.
    cfg = load_quant_config({"metabolites": {"NAA": {"T1": 1.4, "T2": 0.3},
                                             "NAAG": {"T1": 1.4, "T2": 0.1}}}, 3.0)
    fit = _fit(["NAA", "NAAG"], [10.0, 2.0])
    conc = quantify(fit, water_amplitude=5000.0, tissue=fixed_fractions(1, 0, 0),
                    echo_time_s=0.1, repetition_time_s=TR, config=cfg)
    naa, naag, t = (_row(conc, n).conc_tissue_corrected_mM for n in ("NAA", "NAAG", "tNAA"))
    assert t == pytest.approx(naa + naag)
    assert naag / naa == pytest.approx(0.2 * E(0.1 / 0.1) / E(0.1 / 0.3))


def test_table_columns_flags_and_not_detected(cfg):
    fit = _fit(["Cr", "PCr", "NAA", "Lac", "GABA"], [4.0, 3.0, 6.0, 0.0, 0.2],
               sds=[0.2, 0.2, 0.3, 0.1, 0.1])
    conc = quantify(fit, water_amplitude=5000.0, tissue=fixed_fractions(0.6, 0.4, 0),
                    echo_time_s=TE, repetition_time_s=TR, config=cfg, crlb_threshold_percent=20)
    assert tuple(conc.table.columns) == COLUMNS
    assert list(conc.table.metabolite) == ["Cr", "PCr", "NAA", "Lac", "GABA", "tCr"]
    lac = _row(conc, "Lac")
    assert lac.flag == "not_detected"
    for col in ("ratio_tcr", *COLUMNS[5:9]):
        assert lac[col] == 0.0                                   # 0, never n/a
    assert _row(conc, "GABA").flag == "high_crlb"                # 50 %
    assert _row(conc, "GABA").crlb_percent == pytest.approx(50)
    assert _row(conc, "NAA").flag == "ok"


def test_ratios_only_without_water_or_tissue(cfg):
    fit = _fit(["Cr", "PCr", "NAA"], [4.0, 3.0, 10.5])
    conc = quantify(fit, water_amplitude=None, tissue=None, echo_time_s=None,
                    repetition_time_s=None, config=cfg)
    assert _row(conc, "NAA").ratio_tcr == pytest.approx(1.5)
    assert conc.table[list(COLUMNS[5:10])].isna().all().all()
    assert any("no water reference" in n for n in conc.notes)
    # water but no tissue: only the raw water-scaled column
    conc = quantify(fit, water_amplitude=5000.0, tissue=None, echo_time_s=TE,
                    repetition_time_s=TR, config=cfg)
    assert conc.table.conc_raw_water_mM.notna().all()
    assert conc.table[list(COLUMNS[6:10])].isna().all().all()


def test_no_creatine_gives_nan_ratios(cfg):
    conc = quantify(_fit(["NAA", "Glu"], [4.0, 3.0]), water_amplitude=None, tissue=None,
                    echo_time_s=None, repetition_time_s=None, config=cfg)
    assert conc.table.ratio_tcr.isna().all()


@pytest.mark.parametrize("te,tr,sw,match", [
    (None, 2.0, 100.0, "EchoTime unknown"),
    (0.03, None, 100.0, "RepetitionTime unknown"),
    (30.0, 2.0, 100.0, "looks like ms"),
    (0.03, 2.0, 0.0, "positive number"),
    (0.03, 2.0, float("nan"), "positive number"),
])
def test_water_scaling_errors(cfg, te, tr, sw, match):
    with pytest.raises(QuantificationError, match=match):
        quantify(_fit(["Cr"], [1.0]), water_amplitude=sw, tissue=None, echo_time_s=te,
                 repetition_time_s=tr, config=cfg)


def test_separate_water_timing(cfg):
    fit = _fit(["Cr"], [4.0])
    kw = dict(water_amplitude=5000.0, tissue=fixed_fractions(1, 0, 0), echo_time_s=TE,
              repetition_time_s=TR, config=cfg)
    same = _row(quantify(fit, **kw), "Cr").conc_tissue_corrected_mM
    other = _row(quantify(fit, water_repetition_time_s=10.0, **kw), "Cr").conc_tissue_corrected_mM
    assert other / same == pytest.approx((1 - E(-10 / 1.3)) / (1 - E(-TR / 1.3)))


def test_provenance_is_complete(cfg):
    conc = quantify(_fit(["Cr", "PCr"], [4.0, 3.0]), water_amplitude=5000.0,
                    tissue=fixed_fractions(0.6, 0.4, 0), echo_time_s=TE, repetition_time_s=TR,
                    config=cfg)
    p = conc.provenance
    for key in ("amplitude_convention", "water_protons", "constants", "formulas", "citations",
                "water_attenuation", "tissue_fractions", "metabolites"):
        assert key in p
    assert p["water_protons"] == 2
    assert "Near 2021" in p["formulas"]["conc_tissue_corrected_mM"]
    assert p["water_attenuation"]["gm"] == pytest.approx(RW["gm"])
    import json

    json.dumps(p)


def test_challenge_creatine_10mM_dataset_gives_10_8_mM():
    """DESIGN §6.2 creatine test on the real challenge file: expect 10.8 ± 0.2 mM.

    Amplitudes are estimated here with a minimal Voigt fit of the Cr basis (the test data's
    first FID point is halved, so it is left out) and a mono-exponential fit of the water FID:
    this checks the amplitude convention (basis = one molecule, water = 2 protons), not the
    production fitter.
    """
    from pathlib import Path

    from scipy.optimize import least_squares

    shared = Path(__file__).resolve().parents[2].parent / "shared"
    chal = shared / "data" / "mrs_fitting_challenge"
    data_file = chal / "Cr_water_scaling_text" / "Cr_10mM_test_water_scaling.txt"
    if not data_file.exists():
        pytest.skip(f"fitting challenge data not found at {chal}")
    d = np.loadtxt(data_file)
    met, wat = d[:, 0] + 1j * d[:, 1], d[:, 2] + 1j * d[:, 3]
    b = np.loadtxt(chal / "basisset_text" / "Cr.txt")
    basis = b[:, 0] + 1j * b[:, 1]
    t = np.arange(met.size) / 4000.0                      # spectral width 4000 Hz (README)

    def model(p, sig):
        a, lor, gau, f, ph = p
        return a * sig * np.exp(-lor * t - gau * t * t + 2j * np.pi * f * t + 1j * ph)

    def res(p, sig, data):
        r = (model(p, sig) - data)[1:]
        return np.r_[r.real, r.imag]

    s_m = least_squares(res, [8, 5, 0, 0, 0], args=(basis, met)).x[0]
    s_w = least_squares(res, [abs(wat[1]), 10, 0, 0, 0], args=(np.ones_like(wat), wat)).x[0]
    cfg = load_quant_config({"water": {"T2": {"gm": 0.110, "wm": 0.080}},
                             "metabolites": {"default": {"T2": 0.160}}}, 123.2 / 42.577478)
    conc = quantify(_fit(["Cr"], [s_m]), water_amplitude=s_w,
                    tissue=fixed_fractions(0.6, 0.4, 0.0), echo_time_s=0.030,
                    repetition_time_s=1000.0, config=cfg)
    assert _row(conc, "Cr").conc_tissue_corrected_mM == pytest.approx(10.8, abs=0.2)


def test_table_sidecar_describes_every_column():
    from bidsmrs.quantify.concentrations import table_sidecar

    side = table_sidecar()
    assert list(side) == list(COLUMNS)
    assert side["conc_molal_mmol_per_kg"]["Units"] == "mmol/kg"
    assert set(side["flag"]["Levels"]) == {"ok", "high_crlb", "not_detected"}


def test_alpha_helpers():
    from bidsmrs.quantify.concentrations import alpha_divisor, alpha_group_factor

    f = {"gm": 0.5, "wm": 0.3, "csf": 0.2}
    assert alpha_divisor(f, 0.5) == pytest.approx(0.65 / 0.8)
    assert math.isnan(alpha_divisor({"gm": 0, "wm": 0, "csf": 1}, 0.5))
    # Harris 2015 group normalisation: (mu_GM + alpha mu_WM)/(mu_GM + mu_WM)
    assert alpha_group_factor(f, 0.6, 0.4, 0.5) == pytest.approx(0.8)
