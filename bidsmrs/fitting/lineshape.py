"""Voigt lineshape terms applied to basis FIDs in the time domain.

A basis FID ``b(t)`` is broadened and shifted as

    b(t) · exp(−π·L·t − g·t² + i·2π·ε·t)

with ``L`` the extra Lorentzian FWHM (Hz), ``g`` the Gaussian decay rate (Hz², ``g =
(π·G)² / (4 ln 2)`` for a Gaussian FWHM ``G`` in Hz, as in :func:`bidsmrs.simulate.voigt_decay`)
and ``ε`` the frequency shift (Hz, stored convention: a positive shift lowers the ppm).
Fitting ``g`` rather than ``G`` keeps the derivative non-zero at ``G = 0``.
"""
from __future__ import annotations

import numpy as np

_FOUR_LN2 = 4.0 * np.log(2.0)


def gauss_rate_from_fwhm(gauss_hz: float) -> float:
    """Gaussian decay rate ``g`` (Hz²) of a Gaussian line with FWHM ``gauss_hz`` (Hz)."""
    return float((np.pi * gauss_hz) ** 2 / _FOUR_LN2)


def gauss_fwhm_from_rate(rate_hz2: float) -> float:
    """Gaussian FWHM (Hz) from the decay rate ``g`` (Hz²) of ``exp(−g·t²)``."""
    return float(np.sqrt(max(rate_hz2, 0.0) * _FOUR_LN2) / np.pi)


def voigt_fwhm_hz(lorentz_hz: float, gauss_hz: float) -> float:
    """FWHM (Hz) of a Voigt profile from its Lorentzian and Gaussian FWHM (Hz).

    Olivero & Longbothum 1977 (J Quant Spectrosc Radiat Transf 17:233) approximation,
    accurate to 0.02 %: ``0.5346·L + sqrt(0.2166·L² + G²)``.
    """
    lorentz_hz = max(float(lorentz_hz), 0.0)
    return float(0.5346 * lorentz_hz + np.sqrt(0.2166 * lorentz_hz ** 2 + float(gauss_hz) ** 2))


def envelope(time_s: np.ndarray, lorentz_hz, gauss_rate_hz2, shift_hz) -> np.ndarray:
    """``exp(−π·L·t − g·t² + i2π·ε·t)``; arguments broadcast against ``time_s[:, None]``.

    Parameters
    ----------
    time_s : ndarray (n,)
        Time axis (s).
    lorentz_hz, gauss_rate_hz2, shift_hz : float or ndarray (k,)
        Lorentzian FWHM (Hz), Gaussian rate (Hz²), shift (Hz), one per column.

    Returns
    -------
    ndarray complex (n, k) (or (n,) when all arguments are scalars).
    """
    t = np.asarray(time_s, float)
    lw = np.asarray(lorentz_hz, float)
    g = np.asarray(gauss_rate_hz2, float)
    sh = np.asarray(shift_hz, float)
    if lw.ndim or g.ndim or sh.ndim:
        t = t[:, None]
    return np.exp((-np.pi * lw + 2j * np.pi * sh) * t - g * t * t)


def measured_fwhm_hz(spectrum_real: np.ndarray, freq_hz: np.ndarray) -> float:
    """FWHM (Hz) of the largest peak of a real (absorption) spectrum, by linear interpolation
    of the half-maximum crossings; ``nan`` when the crossings are not found."""
    y = np.asarray(spectrum_real, float)
    i = int(np.argmax(y))
    half = y[i] / 2.0
    if not np.isfinite(half) or half <= 0:
        return float("nan")
    left = i
    while left > 0 and y[left] > half:
        left -= 1
    right = i
    while right < y.size - 1 and y[right] > half:
        right += 1
    if y[left] > half or y[right] > half:
        return float("nan")

    def cross(a, b):
        fa, fb, ya, yb = freq_hz[a], freq_hz[b], y[a], y[b]
        return fa + (half - ya) * (fb - fa) / (yb - ya)

    return float(abs(cross(right - 1, right) - cross(left, left + 1)))
