"""Water-reference fit (bidsmrs.fitting.water) on simulated water peaks of known amplitude."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.errors import FitError
from bidsmrs.fitting import fit_water
from bidsmrs.simulate import make_spectrum, peak_fid

SF = 123.2
DWELL = 1 / 4000
N = 2048


def water(*, amplitude=5e4, lorentz_hz=4.0, gauss_hz=3.0, shift_hz=0.0, phase_deg=0.0, noise_sd=5.0,
          eddy=0.0, seed=0):
    t = np.arange(N) * DWELL
    ppm = 4.65 - shift_hz / SF
    fid = peak_fid(N, DWELL, SF, ppm, amplitude=amplitude, lorentz_hz=lorentz_hz, gauss_hz=gauss_hz,
                   phase_deg=phase_deg)
    # A small metabolite-like peak must not disturb the water amplitude.
    fid = fid + peak_fid(N, DWELL, SF, 2.0, amplitude=amplitude * 2e-4, lorentz_hz=3.0)
    if eddy:
        # Eddy-current phase modulation: φ(t) = eddy·exp(−t/20 ms) (rad), Klose 1990-style.
        fid = fid * np.exp(1j * eddy * np.exp(-t / 0.02))
    return make_spectrum(fid, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=noise_sd,
                         rng=np.random.default_rng(seed))


@pytest.mark.parametrize("kw", [
    dict(),
    dict(shift_hz=4.0, phase_deg=70.0),
    dict(shift_hz=-3.0, phase_deg=-150.0, lorentz_hz=8.0, gauss_hz=0.0),
    dict(lorentz_hz=1.0, gauss_hz=7.0, noise_sd=20.0),
    dict(eddy=1.0, phase_deg=30.0),
])
def test_amplitude_within_one_percent(kw):
    w = fit_water(water(**kw, seed=len(kw)))
    assert w.amplitude == pytest.approx(5e4, rel=0.01)


def test_position_phase_linewidth():
    w = fit_water(water(shift_hz=4.0, phase_deg=70.0, lorentz_hz=4.0, gauss_hz=3.0, noise_sd=1.0))
    assert w.ppm == pytest.approx(4.65 - 4.0 / SF, abs=0.002)
    assert w.phase_deg == pytest.approx(70.0, abs=1.0)
    # Voigt FWHM of L = 4, G = 3 Hz (Olivero & Longbothum): ≈ 5.75 Hz.
    assert w.fwhm_hz == pytest.approx(5.75, abs=0.2)
    assert w.residual_ratio < 0.01


def test_distortion_raises_residual_ratio():
    clean = fit_water(water(noise_sd=1.0))
    distorted = fit_water(water(noise_sd=1.0, eddy=1.5))
    assert distorted.residual_ratio > 5 * clean.residual_ratio


def test_no_signal_is_an_error():
    rng = np.random.default_rng(3)
    from bidsmrs.spectrum import Spectrum
    noise = Spectrum(fid=rng.standard_normal(N) + 1j * rng.standard_normal(N), dwell_s=DWELL, spectrometer_mhz=SF)
    with pytest.raises(FitError, match="no peak"):
        fit_water(noise)
