"""Voigt fit of the processed water reference (the denominator of water scaling).

Two fits of the same Voigt model ``A·e^{iφ}·exp((−πL + i2πf)t − g·t²)``:

1. **Amplitude** (``WaterFit.amplitude``): a fit of the FID magnitude ``|s(t)|`` with
   ``A·exp(−πL·t − g·t²)`` over the points where ``|s(t)|`` exceeds 10 noise SDs (the Rician
   bias is then below 0.5 %). The magnitude is unchanged by any zero-order phase, frequency
   shift and eddy-current phase modulation (a time-dependent phase, Klose 1990), so the
   amplitude extrapolated to ``t = 0`` is robust to all three; it is not a raw integral or the
   raw first point, which is left out of the fit (some vendors store it halved, the
   discrete-FT convention, and digital filters can corrupt it).
2. **Position, phase, linewidth** (``ppm``, ``phase_deg``, ``fwhm_hz``, ``residual_ratio``):
   a complex frequency-domain fit over a window around the water peak with a complex linear
   baseline, started from fit 1.

Units: ``amplitude`` is the FID(t = 0) magnitude of the fitted peak in data units, i.e. the
units in which basis amplitudes are measured (:mod:`bidsmrs.basis.core`); water has 2 protons
per molecule (DESIGN.md §6.2).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from bidsmrs.errors import FitError
from bidsmrs.fitting.crlb import noise_sd_from_regions
from bidsmrs.fitting.lineshape import gauss_fwhm_from_rate, voigt_fwhm_hz
from bidsmrs.spectrum import Spectrum, to_spectrum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WaterFit:
    """Result of :func:`fit_water`.

    Parameters
    ----------
    amplitude : float
        FID(t = 0) magnitude of the fitted water peak (data units).
    fwhm_hz : float
        FWHM of the fitted Voigt line (Hz).
    ppm : float
        Chemical shift of the peak (ppm).
    phase_deg : float
        Zero-order phase of the peak (degrees).
    residual_ratio : float
        RMS residual / RMS (data − baseline) over the fit window of the frequency-domain fit
        (0 = perfect Voigt; eddy-current or shimming distortions raise it).
    lorentz_hz, gauss_hz : float
        Lorentzian and Gaussian FWHM (Hz) of the fitted line.
    amplitude_spectral : float
        Amplitude of the frequency-domain fit (for comparison with ``amplitude``).
    """

    amplitude: float
    fwhm_hz: float
    ppm: float
    phase_deg: float
    residual_ratio: float
    lorentz_hz: float = float("nan")
    gauss_hz: float = float("nan")
    amplitude_spectral: float = float("nan")


def _time_noise_sd(spectrum: Spectrum, spec: np.ndarray) -> float:
    sd = noise_sd_from_regions(spec, spectrum.ppm)
    if sd is not None and sd > 0:
        return sd / np.sqrt(spectrum.n_points)
    tail = spectrum.fid[-max(spectrum.n_points // 10, 8):]
    tail = tail - tail.mean()
    return float(np.sqrt(np.mean(np.abs(tail) ** 2) / 2))


def fit_water(spectrum: Spectrum, window_ppm: float | None = None) -> WaterFit:
    """Fit the water peak of a processed water-reference spectrum (module doc).

    Parameters
    ----------
    spectrum : Spectrum
        One averaged water-reference FID (1-D).
    window_ppm : float, optional
        Half-width of the frequency-domain window (ppm); default max(0.5 ppm, 8 FWHM).

    Raises
    ------
    FitError
        When the data are not 1-D, not finite, or carry no peak above the noise.
    """
    fid = np.asarray(spectrum.fid)
    if fid.ndim > 1 and all(n == 1 for n in fid.shape[1:]):  # singleton higher dimensions
        spectrum = spectrum.replace(fid=fid.reshape(-1), dim_tags=())
        fid = spectrum.fid
    if fid.ndim != 1:
        raise FitError(f"fit_water needs one averaged FID, got shape {fid.shape}")
    if not np.all(np.isfinite(fid)):
        raise FitError("the water reference contains NaN or infinite values")
    t = spectrum.time_s
    spec = to_spectrum(fid)
    sigma_t = _time_noise_sd(spectrum, spec)
    mag = np.abs(fid)
    strong = mag > 10 * sigma_t
    # The contiguous run of strong points from the second point on: the first point is left
    # out (some vendors store it halved, the discrete-FT convention; filters can corrupt it),
    # and a following weak point or two is skipped.
    start = 1 + int(np.argmax(strong[1:5])) if strong[1:5].any() else 1
    run = strong[start:]
    n_strong = int(np.argmin(run)) if not run.all() else run.size
    if n_strong < 8:
        raise FitError("the water reference has no peak clearly above the noise "
                       f"(|FID| > 10 noise SD for only {n_strong} points)")
    sel = np.arange(start, start + n_strong)

    # --- 1. magnitude envelope fit ------------------------------------------------------------
    tt, yy = t[sel], mag[sel]
    k = max(int(0.3 * n_strong), 3)
    slope = np.polyfit(tt[:k], np.log(yy[:k]), 1)[0]
    l0 = float(np.clip(-slope / np.pi, 0.5, 200.0))

    def env_resid(p):
        return (p[0] * np.exp(-np.pi * p[1] * tt - p[2] * tt * tt) - yy) / sigma_t

    fit1 = least_squares(env_resid, [yy[0], l0, 0.0], bounds=([0, 0, 0], [np.inf, 1e3, 1e6]),
                         x_scale=[yy[0], 1.0, 10.0], method="trf")
    amp, lw, grate = (float(v) for v in fit1.x)

    # --- 2. complex frequency-domain fit -----------------------------------------------------
    freq = spectrum.frequency_hz
    i_peak = int(np.argmax(np.abs(spec)))
    f0 = float(freq[i_peak])
    fwhm0 = voigt_fwhm_hz(lw, gauss_fwhm_from_rate(grate))
    half_hz = (window_ppm * spectrum.spectrometer_mhz) if window_ppm else max(0.5 * spectrum.spectrometer_mhz, 8 * fwhm0)
    win = np.abs(freq - f0) <= half_hz
    fw = freq[win]
    x = (fw - f0) / half_hz
    data = spec[win]

    def design(p):
        f, lorentz, g = p
        line = to_spectrum(np.exp((-np.pi * lorentz + 2j * np.pi * f) * t - g * t * t))[win]
        return np.stack([line, np.ones_like(x), x], axis=1)

    def solve(p):
        a = design(p)
        coef, *_ = np.linalg.lstsq(a, data, rcond=None)
        return a, coef

    def spec_resid(p):
        a, coef = solve(p)
        r = data - a @ coef
        return np.concatenate([r.real, r.imag])

    fit2 = least_squares(spec_resid, [f0, max(lw, 0.1), grate], method="trf",
                         bounds=([f0 - half_hz / 2, 0, 0], [f0 + half_hz / 2, 1e3, 1e6]),
                         x_scale=[0.1, 0.1, 10.0])
    a, coef = solve(fit2.x)
    resid = data - a @ coef
    signal = data - a[:, 1:] @ coef[1:]
    ratio = float(np.linalg.norm(resid) / max(np.linalg.norm(signal), 1e-300))
    f_fit, l_fit, g_fit = (float(v) for v in fit2.x)
    gauss_hz = gauss_fwhm_from_rate(g_fit)
    log.debug("water: amplitude %.6g (envelope) vs %.6g (spectral)", amp, abs(coef[0]))
    return WaterFit(amplitude=amp, fwhm_hz=voigt_fwhm_hz(l_fit, gauss_hz), ppm=float(spectrum.hz_to_ppm(f_fit)),
                    phase_deg=float(np.rad2deg(np.angle(coef[0]))), residual_ratio=ratio,
                    lorentz_hz=l_fit, gauss_hz=gauss_hz, amplitude_spectral=float(abs(coef[0])))


__all__ = ["WaterFit", "fit_water"]
