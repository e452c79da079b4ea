"""Klose eddy-current correction with a simulated eddy-current phase."""
import numpy as np
import pytest

from bidsmrs.preprocess.eddy_current import eddy_current_correct
from bidsmrs.simulate import make_spectrum, peak_fid
from tests.mrs_simulator import clean_metabolite_fid

N, DWELL, SF = 2048, 2.5e-4, 123.2


def _ec_phase(t, hz=25.0, tau=0.03):
    return 2 * np.pi * hz * tau * (1 - np.exp(-t / tau))


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(11)
    t = np.arange(N) * DWELL
    ec = _ec_phase(t)
    clean = clean_metabolite_fid(N, DWELL, SF)
    met = make_spectrum(clean * np.exp(1j * ec), dwell_s=DWELL, spectrometer_mhz=SF)
    ref_fid = peak_fid(N, DWELL, SF, 4.65, amplitude=2000.0, lorentz_hz=5.0, gauss_hz=3.0)
    ref = make_spectrum(ref_fid * np.exp(1j * ec), dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.5, rng=rng)
    return clean, met, ref, ec


def test_ecc_removes_eddy_phase_below_one_degree(signals):
    clean, met, ref, ec = signals
    out = eddy_current_correct(met, ref)
    resid = np.rad2deg(np.angle(out.fid / clean))
    k = out.history[-1].params["points_point_by_point"]
    assert k > 500
    # where the reference phase is measurable (|ref| > 300 noise SD, phase noise < 0.2°)
    strong = np.abs(ref.fid) > 300 * 0.5
    assert strong.sum() > 300
    assert np.max(np.abs(resid[strong])) < 1.0
    assert np.sqrt(np.mean(resid[:k] ** 2)) < 3.0
    # beyond the reliable part the linear continuation stays close (EC phase has settled)
    assert np.max(np.abs(resid[k:])) < 10.0
    # without correction the error is large
    assert np.max(np.abs(np.rad2deg(np.angle(met.fid / clean)))) > 100
    assert out.history[-1].method == "Eddy current correction"


def test_ecc_of_reference_leaves_a_real_positive_fid(signals):
    _, _, ref, _ = signals
    out = eddy_current_correct(ref, ref, "water reference")
    k = out.history[-1].params["points_point_by_point"]
    assert np.all(np.abs(np.angle(out.fid[:k])) < 1e-9)


def test_ecc_broadcasts_over_transients(signals):
    clean, met, ref, ec = signals
    stacked = met.replace(fid=np.stack([met.fid, 2 * met.fid], 1), dim_tags=("DIM_DYN",))
    out = eddy_current_correct(stacked, ref)
    np.testing.assert_allclose(out.fid[:, 1], 2 * eddy_current_correct(met, ref).fid)


def test_shorter_reference_uses_linear_continuation(signals):
    clean, met, ref, ec = signals
    short = ref.replace(fid=ref.fid[:1024])
    out = eddy_current_correct(met, short)
    assert "1024 points" in out.history[-1].details
    resid = np.rad2deg(np.angle(out.fid / clean))
    strong = (np.abs(ref.fid) > 300 * 0.5) & (np.arange(N) < 1024)
    assert np.max(np.abs(resid[strong])) < 1.0
    assert np.max(np.abs(resid[1024:])) < 15.0  # noise-limited slope extrapolated over 1024 points


def test_dwell_mismatch_raises(signals):
    _, met, ref, _ = signals
    with pytest.raises(ValueError, match="dwell"):
        eddy_current_correct(met, ref.replace(dwell_s=DWELL / 2))


@pytest.mark.parametrize("centre_ppm", [2.0, 3.0])
def test_ecc_keeps_the_ppm_scale_of_data_centred_away_from_water(centre_ppm):
    """Transmitter on the metabolites (SpecFreqChemShift 2.0/3.0 ppm): after the correction the
    water reference is a positive absorption line at 4.65 ppm and an NAA singlet stays at
    2.008 ppm (plain Klose would move both by the water's 2.65/1.65 ppm offset)."""
    from bidsmrs.preprocess.peaks import fit_peak

    t = np.arange(N) * DWELL
    ec = np.exp(1j * _ec_phase(t))
    kw = dict(dwell_s=DWELL, spectrometer_mhz=SF, ppm_centre=centre_ppm)
    water = make_spectrum(peak_fid(N, DWELL, SF, 4.65, amplitude=2000.0, lorentz_hz=5.0, phase_deg=40.0,
                                   ppm_centre=centre_ppm) * ec, **kw)
    naa = make_spectrum(peak_fid(N, DWELL, SF, 2.008, amplitude=30.0, lorentz_hz=4.0, phase_deg=40.0,
                                 ppm_centre=centre_ppm) * ec, **kw)  # same receiver phase as the water
    w = eddy_current_correct(water, water, "water reference")
    fw = fit_peak(w, (4.2, 5.1))
    assert abs(fw.ppm - 4.65) < 1e-3 and abs(np.rad2deg(fw.phase_rad)) < 1.0
    m = eddy_current_correct(naa, water)
    fm = fit_peak(m, (1.8, 2.2))
    assert abs(fm.ppm - 2.008) < 1e-3
    assert abs(np.rad2deg(fm.phase_rad)) < 1.0
    assert w.history[-1].params["water_frequency_kept_hz"] == pytest.approx((centre_ppm - 4.65) * SF, abs=1e-3)


def test_ecc_of_water_centred_data_is_plain_klose(signals):
    """Centre at 4.65 ppm: nothing is put back, the result is x(t)·e^{−iφ(t)} to rounding."""
    from bidsmrs.preprocess.eddy_current import eddy_current_phase

    _, met, ref, _ = signals
    phase, _ = eddy_current_phase(ref, N)
    np.testing.assert_allclose(eddy_current_correct(met, ref).fid, met.fid * np.exp(-1j * phase), rtol=0, atol=1e-9)


def test_ecc_of_x_nucleus_puts_nothing_back(signals):
    """Only 1H references have water at 4.65 ppm: a 31P reference (centre 0 ppm) is plain Klose."""
    from bidsmrs.preprocess.eddy_current import eddy_current_phase

    _, met, ref, _ = signals
    p_ref = ref.replace(nucleus="31P", ppm_centre=0.0)
    p_met = met.replace(nucleus="31P", ppm_centre=0.0)
    out = eddy_current_correct(p_met, p_ref)
    phase, _ = eddy_current_phase(p_ref, N)
    np.testing.assert_allclose(out.fid, p_met.fid * np.exp(-1j * phase), rtol=0, atol=1e-9)
    assert out.history[-1].params["water_frequency_kept_hz"] == 0.0
