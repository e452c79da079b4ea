"""HLSVD residual water removal."""
import numpy as np
import pytest

from bidsmrs.preprocess.peaks import fit_peak
from bidsmrs.preprocess.water_removal import hlsvd, remove_water
from bidsmrs.simulate import make_spectrum, peak_fid
from tests.mrs_simulator import clean_metabolite_fid

N, DWELL, SF = 2048, 2.5e-4, 123.2


def test_hlsvd_recovers_damped_sinusoids():
    t = np.arange(N) * DWELL
    fid = (3.0 * np.exp(1j * 0.3) * np.exp((2j * np.pi * 150.0 - 20.0) * t)
           + 1.5 * np.exp((2j * np.pi * -310.0 - 45.0) * t))
    comps = hlsvd(fid, DWELL, n_components=4)
    order = np.argsort(-np.abs(comps.amplitude))[:2]
    np.testing.assert_allclose(np.sort(comps.frequency_hz[order]), [-310.0, 150.0], atol=1e-6)
    np.testing.assert_allclose(np.sort(np.abs(comps.amplitude[order])), [1.5, 3.0], rtol=1e-6)
    np.testing.assert_allclose(sorted(comps.damping_per_s[order]), [20.0, 45.0], rtol=1e-6)


@pytest.mark.parametrize("water_ppm,amp", [(4.68, 300.0), (4.75, 60.0)])
def test_removes_water_and_keeps_naa(water_ppm, amp):
    rng = np.random.default_rng(7)
    clean = clean_metabolite_fid(N, DWELL, SF)
    water = peak_fid(N, DWELL, SF, water_ppm, amplitude=amp, lorentz_hz=8.0, gauss_hz=4.0, phase_deg=50.0)
    noisy = make_spectrum(clean + water, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.01, rng=rng)
    out = remove_water(noisy)
    ppm = out.ppm
    win = (ppm > 4.4) & (ppm < 5.0)
    water_spec = np.abs(np.fft.fftshift(np.fft.fft(water)))
    left = np.abs(out.spectrum() - np.fft.fftshift(np.fft.fft(clean)))
    assert left[win].max() < 0.01 * water_spec[win].max()          # ≥ 99% of the water peak removed
    ref = fit_peak(make_spectrum(clean, dwell_s=DWELL, spectrometer_mhz=SF), (1.9, 2.1))
    got = fit_peak(out, (1.9, 2.1))
    assert abs(got.height / ref.height - 1) < 0.01                 # NAA amplitude within 1%
    before = fit_peak(noisy, (1.9, 2.1))
    assert out.history[-1].method == "Nuisance peak removal"
    assert out.history[-1].params["n_removed"] >= 1
    assert np.all(np.abs(np.array(out.history[-1].params["removed_ppm"]) - 4.7) <= 0.3)
    assert before.ok


def test_configurable_range_leaves_other_peaks():
    clean = clean_metabolite_fid(N, DWELL, SF)
    spec = make_spectrum(clean, dwell_s=DWELL, spectrometer_mhz=SF)
    out = remove_water(spec, ppm_range=(2.9, 3.1))  # removes tCr instead
    ppm = out.ppm
    cr = (ppm > 3.0) & (ppm < 3.05)
    naa = (ppm > 1.98) & (ppm < 2.03)
    assert np.abs(out.spectrum()[cr]).max() < 0.05 * np.abs(spec.spectrum()[cr]).max()
    np.testing.assert_allclose(np.abs(out.spectrum()[naa]), np.abs(spec.spectrum()[naa]), rtol=0.02)


def test_requires_1d():
    spec = make_spectrum(np.ones((N, 2), complex), dwell_s=DWELL, spectrometer_mhz=SF, dim_tags=("DIM_DYN",))
    with pytest.raises(ValueError, match="1-D"):
        remove_water(spec)


def test_halved_first_point_does_not_shift_baseline():
    """Some exports halve the first FID point; removing water must not offset the spectrum."""
    clean = clean_metabolite_fid(N, DWELL, SF)
    water = peak_fid(N, DWELL, SF, 4.68, amplitude=100.0, lorentz_hz=8.0, gauss_hz=4.0)
    x = clean + water
    x[0] *= 0.5
    out = remove_water(make_spectrum(x, dwell_s=DWELL, spectrometer_mhz=SF))
    truth = clean.copy()
    truth[0] *= 0.5
    ppm = out.ppm
    flat = (ppm < -1.0) | (ppm > 6.0)
    err = np.abs(out.spectrum() - np.fft.fftshift(np.fft.fft(truth)))[flat]
    assert err.max() < 0.01 * np.abs(np.fft.fft(water)).max()
    assert abs(out.history[-1].params["first_point_scale"] - 0.5) < 0.05


def test_dominant_nuisance_peak_near_4_2_ppm_is_removed():
    """A peak 10× NAA at 4.16 ppm (residual water far off its frequency / an artefact, as in
    the fitting challenge's dataset 24) is removed; NAA and Cr are untouched; clean data pass."""
    from bidsmrs.preprocess.pipeline import PreprocOptions, _remove_nuisance_peak

    clean = clean_metabolite_fid(N, DWELL, SF)
    art = peak_fid(N, DWELL, SF, 4.16, amplitude=60.0, lorentz_hz=18.0, phase_deg=90.0)
    spec = make_spectrum(clean + art, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.01,
                         rng=np.random.default_rng(11))
    notes = []
    out = _remove_nuisance_peak(spec, PreprocOptions(), notes)
    ppm = out.ppm
    win = (ppm > 4.05) & (ppm < 4.27)
    art_spec = np.abs(np.fft.fftshift(np.fft.fft(art)))
    left = np.abs(out.spectrum() - np.fft.fftshift(np.fft.fft(clean)))
    assert left[win].max() < 0.05 * art_spec[win].max()
    ref = make_spectrum(clean, dwell_s=DWELL, spectrometer_mhz=SF)
    for window in ((1.9, 2.1), (2.95, 3.1)):
        assert abs(fit_peak(out, window).height / fit_peak(ref, window).height - 1) < 0.02
    assert len(notes) == 1 and "4.16 ppm" in notes[0]
    plain = make_spectrum(clean, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.01, rng=np.random.default_rng(12))
    notes = []
    assert _remove_nuisance_peak(plain, PreprocOptions(), notes) is plain and notes == []


def test_preprocess_run_removes_the_nuisance_peak_and_notes_it():
    """The same artefact through the whole chain (already-averaged input): removed, noted, and
    the spectrum still referenced on NAA."""
    from bidsmrs.preprocess.pipeline import PreprocOptions, preprocess_run

    clean = clean_metabolite_fid(N, DWELL, SF)
    art = peak_fid(N, DWELL, SF, 4.16, amplitude=60.0, lorentz_hz=18.0, phase_deg=90.0)
    spec = make_spectrum(clean + art, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.01,
                         rng=np.random.default_rng(13))
    res = preprocess_run(spec)
    assert any("4.16 ppm" in n and "removed" in n for n in res.qc["notes"])
    assert res.qc["reference_peak"] == "NAA"
    ppm = res.metabolite.ppm
    win = (ppm > 4.05) & (ppm < 4.27)
    assert np.abs(res.metabolite.spectrum()[win]).max() < 0.1 * np.abs(np.fft.fft(art)).max()
    off = preprocess_run(spec, options=PreprocOptions(nuisance_ppm_range=None))
    assert not any("4.16 ppm" in n for n in off.qc["notes"])
