"""End-to-end preprocessing of simulated raw multi-coil, multi-transient data with known truth."""
import numpy as np
import pytest

from bidsmrs.errors import InputError
from bidsmrs.preprocess import PreprocOptions, PreprocResult, preprocess_run, spectral_qc, water_qc
from bidsmrs.preprocess.peaks import fit_peak
from bidsmrs.spectrum import Spectrum
from tests.mrs_simulator import real_window, simulate_raw

DWELL, SF = 2.5e-4, 123.2

EXPECTED_METHODS = ["RF coil combination", "Eddy current correction", "Frequency and phase correction",
                    "Signal averaging", "Nuisance peak removal", "Frequency and phase correction", "Phasing"]


def _corr(res: PreprocResult, raw) -> float:
    a = real_window(res.metabolite.fid, DWELL, SF)
    b = real_window(raw.truth.clean_fid, DWELL, SF)
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def run():
    raw = simulate_raw(0, noise_sd=1.0)
    return raw, preprocess_run(raw.metabolite, {"conc": raw.water, "ecc": raw.water})


def test_result_matches_truth(run):
    raw, res = run
    q = spectral_qc(res.metabolite)
    assert q["snr_naa"] > 100
    assert _corr(res, raw) > 0.99
    f = fit_peak(res.metabolite, (1.9, 2.1))
    assert abs(f.ppm - 2.008) < 0.002 and abs(np.rad2deg(f.phase_rad)) < 2.0
    assert [s.method for s in res.metabolite.history] == EXPECTED_METHODS
    assert res.metabolite.fid.ndim == 1 and res.metabolite.dim_tags == ()


def test_transient_estimates_and_rejection(run):
    raw, res = run
    tr = res.transients
    assert set(tr) == {"freq_shift_hz", "phase_deg", "rejected", "residual_z"}
    n = raw.metabolite.fid.shape[2]
    good = ~np.isin(np.arange(n), raw.truth.corrupted)
    f = tr["freq_shift_hz"] + raw.truth.drift_hz
    p = tr["phase_deg"] + raw.truth.phase_deg
    f = f[good] - np.median(f[good])
    p = np.rad2deg(np.angle(np.exp(1j * np.deg2rad(p - np.median(p[good])))))[good]
    assert np.abs(f).max() < 0.2
    assert np.abs(p).max() < 2.0
    rej = set(np.flatnonzero(tr["rejected"]))
    assert set(raw.truth.corrupted) <= rej
    assert len(rej - set(raw.truth.corrupted)) <= 0.05 * good.sum()
    q = res.qc
    assert q["n_transients"] == n and q["n_rejected"] == len(rej)
    drift = raw.truth.drift_hz[good]
    assert abs(q["freq_drift_hz"] - (drift.max() - drift.min())) < 0.3
    assert q["phase_drift_deg"] > 0
    assert q["residual_water_ratio"] < 0.05
    assert q["ecc_applied"] and q["reference_peak"] == "NAA" and q["n_coils"] == 8


def test_water_reference_processed(run):
    raw, res = run
    w = res.water
    assert w.fid.ndim == 1
    assert [s.method for s in w.history] == ["RF coil combination", "Frequency and phase correction",
                                             "Signal averaging", "Eddy current correction",
                                             "Frequency and phase correction", "Phasing"]
    assert "water reference" in w.history[1].details
    # same coil weights for water and metabolite
    assert w.history[0].params["weights_abs"] == res.metabolite.history[0].params["weights_abs"]
    assert abs(water_qc(w)["fwhm_water_hz"] - raw_water_fwhm()) < 1.0
    f = fit_peak(w, (4.4, 4.9))
    assert abs(f.ppm - 4.65) < 0.002


def raw_water_fwhm():
    from bidsmrs.simulate import make_spectrum
    from tests.mrs_simulator import GAUSS_HZ
    from bidsmrs.simulate import peak_fid
    return water_qc(make_spectrum(peak_fid(2048, DWELL, SF, 4.65, lorentz_hz=4.0, gauss_hz=GAUSS_HZ),
                                  dwell_s=DWELL, spectrometer_mhz=SF))["fwhm_water_hz"]


def test_figure_data(run):
    raw, res = run
    fd = res.figure_data
    assert fd["ppm"].min() >= 0.2 and fd["ppm"].max() <= 4.2 and np.all(np.diff(fd["ppm"]) > 0)
    assert fd["before"].shape == fd["after"].shape == (32, fd["ppm"].size)
    assert fd["rejected"].sum() == res.qc["n_rejected"]
    # aligned transients agree better with each other than the raw ones
    good = ~fd["rejected"]
    assert fd["after"][good].std(axis=0).mean() < 0.5 * fd["before"][good].std(axis=0).mean()


@pytest.mark.slow
def test_low_snr_correlation_close_to_ideal():
    raw = simulate_raw(5, noise_sd=8.0)
    res = preprocess_run(raw.metabolite, {"conc": raw.water})
    snr = spectral_qc(res.metabolite)["snr_naa"]
    assert snr >= 20
    # ideal: the same noise, perfectly combined, corrected and averaged (oracle)
    t = np.arange(2048) * DWELL
    s = raw.truth.sensitivities
    w = s.conj() / raw.truth.noise_sd ** 2
    comb = np.einsum("ncd,c->nd", raw.metabolite.fid, w) / np.sum(w * s)
    comb *= np.exp(-1j * (raw.truth.eddy_phase_rad + np.deg2rad(30.0)))[:, None]
    comb *= np.exp(-1j * (2 * np.pi * np.outer(t, raw.truth.drift_hz) + np.deg2rad(raw.truth.phase_deg)[None, :]))
    keep = ~np.isin(np.arange(32), raw.truth.corrupted)
    oracle = comb[:, keep].mean(axis=1) - raw.truth.water_fid
    ideal = np.corrcoef(real_window(oracle, DWELL, SF), real_window(raw.truth.clean_fid, DWELL, SF))[0, 1]
    assert _corr(res, raw) > 0.99 * ideal


def test_wsvd_option(run):
    raw, _ = run
    res = preprocess_run(raw.metabolite, {"conc": raw.water}, PreprocOptions(coil_method="wsvd"))
    assert res.qc["coil_method"] == "wsvd"
    assert _corr(res, raw) > 0.99


def test_already_averaged_data():
    raw = simulate_raw(1, noise_sd=0.2, n_corrupt=0, drift_hz=0, phase_jitter_deg=0, ec_hz=0)
    w = raw.truth.sensitivities.conj()
    fid = np.einsum("ncd,c->n", raw.metabolite.fid, w) / 32 * np.exp(-1j * np.deg2rad(30.0))
    spec = Spectrum(fid=fid, dwell_s=DWELL, spectrometer_mhz=SF)
    res = preprocess_run(spec, {})
    assert res.transients == {} and res.water is None
    assert res.qc["n_transients"] == 1 and res.qc["n_rejected"] == 0
    assert [s.method for s in res.metabolite.history] == ["Nuisance peak removal", "Frequency and phase correction",
                                                          "Phasing"]
    assert res.qc["residual_water_ratio"] < 0.05
    assert _corr(res, raw) > 0.99
    assert "before" not in res.figure_data and res.figure_data["average"].size == res.figure_data["ppm"].size


def test_single_transient_dimension():
    raw = simulate_raw(2, noise_sd=0.2, n_dyn=1, n_corrupt=0, drift_hz=0, phase_jitter_deg=0)
    res = preprocess_run(raw.metabolite, {"conc": raw.water})
    assert res.qc["n_transients"] == 1 and res.transients["freq_shift_hz"].tolist() == [0.0]
    assert _corr(res, raw) > 0.99


def test_edit_and_unknown_dims_refused():
    raw = simulate_raw(3, n_dyn=4, n_corrupt=0)
    edit = raw.metabolite.replace(fid=raw.metabolite.fid[..., None].repeat(2, -1),
                                  dim_tags=("DIM_COIL", "DIM_DYN", "DIM_EDIT"))
    with pytest.raises(InputError, match=r"edited data \(DIM_EDIT\) are not supported yet"):
        preprocess_run(edit, {})
    other = edit.replace(dim_tags=("DIM_COIL", "DIM_DYN", "DIM_INDIRECT_0"))
    with pytest.raises(InputError, match="DIM_INDIRECT_0"):
        preprocess_run(other, {})
    one = raw.metabolite.replace(fid=raw.metabolite.fid[..., None], dim_tags=("DIM_COIL", "DIM_DYN", "DIM_USER_0"))
    res = preprocess_run(one, {"conc": raw.water})
    assert any("DIM_USER_0" in n for n in res.qc["notes"])


def test_nan_transient_dropped_and_nan_1d_refused():
    raw = simulate_raw(4, noise_sd=0.5, n_dyn=8, n_corrupt=0)
    fid = raw.metabolite.fid.copy()
    fid[10, 3, 5] = np.nan
    res = preprocess_run(raw.metabolite.replace(fid=fid), {"conc": raw.water})
    assert res.transients["rejected"][5] and np.isnan(res.transients["freq_shift_hz"][5])
    assert np.isfinite(res.metabolite.fid).all()
    flat = Spectrum(fid=np.full(2048, np.nan, complex), dwell_s=DWELL, spectrometer_mhz=SF)
    with pytest.raises(InputError, match="NaN"):
        preprocess_run(flat, {})
    bad_ref = raw.water.replace(fid=np.where(np.arange(2048)[:, None, None] == 3, np.nan, raw.water.fid))
    with pytest.raises(InputError, match="'conc' reference"):
        preprocess_run(raw.metabolite, {"conc": bad_ref})


def test_zero_coil_dropped_in_pipeline():
    raw = simulate_raw(6, noise_sd=0.5, n_dyn=8, n_corrupt=0)
    m = raw.metabolite.fid.copy()
    m[:, 1] = 0
    res = preprocess_run(raw.metabolite.replace(fid=m), {"conc": raw.water})
    assert res.qc["n_coils_dropped"] == 1
    assert _corr(res, raw) > 0.99


def test_reference_with_other_dwell_or_points():
    raw = simulate_raw(7, noise_sd=0.5, n_dyn=8, n_corrupt=0)
    other_dwell = raw.water.replace(dwell_s=DWELL / 2)
    res = preprocess_run(raw.metabolite, {"conc": raw.water, "ecc": other_dwell})
    assert not res.qc["ecc_applied"]
    assert any("eddy-current correction skipped" in n for n in res.qc["notes"])
    short = raw.water.replace(fid=raw.water.fid[:1024])
    res = preprocess_run(raw.metabolite, {"conc": short})
    assert res.qc["ecc_applied"]
    ecc = [s for s in res.metabolite.history if s.method == "Eddy current correction"][0]
    assert "1024 points" in ecc.details
    assert _corr(res, raw) > 0.99


def test_reference_with_other_coil_count_uses_own_weights():
    raw = simulate_raw(8, noise_sd=0.5, n_dyn=8, n_corrupt=0)
    ref = raw.water.replace(fid=raw.water.fid[:, :4])
    res = preprocess_run(raw.metabolite, {"conc": ref})
    assert any("own coil weights" in n for n in res.qc["notes"])
    assert res.metabolite.history[0].params["source"] == "metabolite"
    assert res.water is not None


def test_unknown_role_rejected():
    raw = simulate_raw(9, n_dyn=2, n_corrupt=0)
    with pytest.raises(ValueError, match="unknown reference role"):
        preprocess_run(raw.metabolite, {"quant": raw.water})


def test_history_params_are_json_serialisable(run):
    import json

    raw, res = run
    for step in res.metabolite.history + res.water.history:
        json.dumps(dict(step.params), allow_nan=False)
        assert step.details.endswith(".") and step.details.count(". ") == 0
    json.dumps(res.qc, allow_nan=False)


def test_qc_columns_and_descriptions(run):
    from bidsmrs.preprocess import QC_DESCRIPTIONS

    raw, res = run
    cols = res.qc_columns()
    assert set(cols) == set(QC_DESCRIPTIONS)
    assert cols["snr_naa"] == spectral_qc(res.metabolite)["snr_naa"]
    assert cols["n_rejected"] == res.qc["n_rejected"] and np.isfinite(cols["fwhm_water_hz"])
    assert all(d["Description"] and d["Units"] for d in QC_DESCRIPTIONS.values())


def test_non_proton_data_skip_proton_steps():
    raw = simulate_raw(10, n_dyn=4, n_corrupt=0, noise_sd=0.5)
    p31 = raw.metabolite.replace(nucleus="31P", ppm_centre=0.0, spectrometer_mhz=49.9)
    res = preprocess_run(p31, {})
    assert [s.method for s in res.metabolite.history] == ["RF coil combination", "Frequency and phase correction",
                                                          "Signal averaging"]
    assert any("31P" in n for n in res.qc["notes"])


@pytest.mark.parametrize("kw", [{"coil_method": "sum"}, {"reference_peak": "Glu"}, {"reject_mad": 0},
                                {"align_iterations": 0}, {"water_ppm_range": (5.0, 4.4)}])
def test_options_validated(kw):
    with pytest.raises(ValueError):
        PreprocOptions(**kw)


@pytest.mark.parametrize("offset_ppm", [0.25, -0.3])
def test_large_frequency_offset_is_corrected_before_the_ppm_window_steps(offset_ppm):
    """Metabolite data 0.25–0.3 ppm off (no water reference to correct it): the coarse search
    moves them before water/nuisance-peak removal, so the tCr CH2 line (3.92 ppm, at 4.17 ppm
    in the raw data) is not removed as a nuisance peak and the result matches the truth."""
    raw = simulate_raw(1, noise_sd=0.2, n_corrupt=0, drift_hz=0, phase_jitter_deg=0, ec_hz=0)
    w = raw.truth.sensitivities.conj()
    t = np.arange(raw.metabolite.n_points) * DWELL
    fid = (np.einsum("ncd,c->n", raw.metabolite.fid, w) / 32 * np.exp(-1j * np.deg2rad(30.0))
           * np.exp(-2j * np.pi * offset_ppm * SF * t))
    res = preprocess_run(Spectrum(fid=fid, dwell_s=DWELL, spectrometer_mhz=SF), {})
    methods = [s.method for s in res.metabolite.history]
    assert methods[0] == "Frequency and phase correction"
    assert res.metabolite.history[0].params["coarse_offset_ppm"] == pytest.approx(offset_ppm, abs=0.01)
    assert abs(fit_peak(res.metabolite, (1.9, 2.1)).ppm - 2.008) < 0.002
    cr2 = fit_peak(res.metabolite, (3.85, 4.0))
    assert cr2.ok and abs(cr2.ppm - 3.92) < 0.01
    assert _corr(res, raw) > 0.99


def test_coarse_search_ignores_an_ambiguous_match(monkeypatch):
    """A pattern match hardly better than no offset at all (score ratio 0.9) is not acted on."""
    from bidsmrs.preprocess import reference

    raw = simulate_raw(1, noise_sd=0.2, n_corrupt=0, drift_hz=0, phase_jitter_deg=0, ec_hz=0)
    fid = np.einsum("ncd,c->n", raw.metabolite.fid, raw.truth.sensitivities.conj()) / 32
    spec = Spectrum(fid=fid, dwell_s=DWELL, spectrometer_mhz=SF)
    monkeypatch.setattr(reference, "coarse_offset_ppm", lambda s: (0.2, 3, 0.9))
    assert reference.coarse_reference(spec) is spec


def test_small_residual_water_is_removed_in_a_narrow_window():
    """Residual water below the NAA peak (ratio ≈ 0.5) is still removed, by HLSVD within
    4.5–4.85 ppm only: the water tail leaves the fit range and the 3.9–4.2 ppm lines stay."""
    from bidsmrs.simulate import peak_fid
    from tests.mrs_simulator import clean_metabolite_fid

    clean = clean_metabolite_fid(2048, DWELL, SF)
    water = peak_fid(2048, DWELL, SF, 4.68, amplitude=1.6, lorentz_hz=8.0, phase_deg=30.0)
    rng = np.random.default_rng(3)
    noisy = clean + water + 0.01 * (rng.standard_normal(2048) + 1j * rng.standard_normal(2048))
    res = preprocess_run(Spectrum(fid=noisy, dwell_s=DWELL, spectrometer_mhz=SF), {})
    note = next(n for n in res.qc["notes"] if "small residual water" in n)
    ratio = float(note.split("(")[1].split(" x")[0])
    assert 0.2 < ratio < 1.0
    assert res.qc["residual_water_ratio"] < 0.05
    ppm = res.metabolite.ppm
    keep = (ppm > 3.8) & (ppm < 4.2)
    after = res.metabolite.spectrum()[keep]
    truth = Spectrum(fid=clean, dwell_s=DWELL, spectrometer_mhz=SF).spectrum()[keep]
    assert np.corrcoef(np.abs(after), np.abs(truth))[0, 1] > 0.995
    # the option off: the water stays
    off = preprocess_run(Spectrum(fid=noisy, dwell_s=DWELL, spectrometer_mhz=SF), {},
                         PreprocOptions(small_water_ppm_range=None))
    assert off.qc["residual_water_ratio"] > 0.2
