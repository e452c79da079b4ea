"""Small spectral measurements shared by referencing and QC: peak position, peak phase,
half-height width, noise SD. All take a 1-D :class:`~bidsmrs.spectrum.Spectrum`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from bidsmrs.spectrum import Spectrum, frequency_axis_hz, hz_to_ppm, to_spectrum

#: Zero-filling factor for peak positions and widths.
ZERO_FILL = 8
#: Signal-free regions (ppm) searched, in order, for the noise SD.
NOISE_REGIONS_PPM = ((-2.0, 0.0), (9.0, 11.0), (-4.0, -2.0))
_MIN_NOISE_POINTS = 32
#: Cap (ppm) on the half-height width that sets the local fit window of :func:`fit_peak`.
MAX_FIT_HALF_WIDTH_PPM = 0.15


def zero_filled(spec: Spectrum, factor: int = ZERO_FILL) -> tuple[np.ndarray, np.ndarray]:
    """ppm axis and complex spectrum of the FID zero-filled ``factor`` times (same bin values
    at the original frequencies)."""
    n = spec.n_points * factor
    fid = np.zeros(n, complex)
    fid[: spec.n_points] = spec.fid
    ppm = hz_to_ppm(frequency_axis_hz(n, spec.dwell_s), spec.spectrometer_mhz, spec.ppm_centre)
    return ppm, to_spectrum(fid)


def in_range(ppm: np.ndarray, ppm_range: tuple[float, float]) -> np.ndarray:
    return (ppm >= min(ppm_range)) & (ppm <= max(ppm_range))


def peak_position(ppm: np.ndarray, values: np.ndarray, ppm_range: tuple[float, float]) -> tuple[float, int]:
    """Chemical shift (ppm, parabolic interpolation) and index of the maximum of real ``values``
    within ``ppm_range``; (nan, -1) when the range is empty."""
    idx = np.flatnonzero(in_range(ppm, ppm_range))
    if idx.size == 0:
        return float("nan"), -1
    i = int(idx[np.argmax(values[idx])])
    if 0 < i < len(values) - 1:
        y0, y1, y2 = values[i - 1], values[i], values[i + 1]
        den = y0 - 2 * y1 + y2
        delta = 0.5 * (y0 - y2) / den if den != 0 else 0.0
        delta = float(np.clip(delta, -0.5, 0.5))
        step = ppm[i + 1] - ppm[i]
        return float(ppm[i] + delta * step), i
    return float(ppm[i]), i


def half_height_region(values: np.ndarray, i_peak: int, frac: float = 0.5) -> np.ndarray:
    """Indices of the contiguous run around ``i_peak`` where ``values ≥ frac·values[i_peak]``."""
    level = frac * values[i_peak]
    lo = i_peak
    while lo > 0 and values[lo - 1] >= level:
        lo -= 1
    hi = i_peak
    while hi < len(values) - 1 and values[hi + 1] >= level:
        hi += 1
    return np.arange(lo, hi + 1)


@dataclass(frozen=True)
class PeakFit:
    """Local complex Lorentzian fit of one peak (see :func:`fit_peak`)."""

    ppm: float          # centre (ppm)
    phase_rad: float    # zero-order phase of the peak
    height: float       # absorption height at the centre (spectral units, background removed)
    hwhm_ppm: float     # Lorentzian half width (ppm)
    ok: bool            # the fit converged to a positive, in-window peak


def fit_peak(spec: Spectrum, ppm_range: tuple[float, float]) -> PeakFit:
    """Fit the strongest peak of the magnitude spectrum in ``ppm_range`` with
    ``A·e^{iφ}/(g − i(δ − δ0)) + b0 + b1·(δ − δ0) + b2·(δ − δ0)²`` (complex Lorentzian in ppm,
    stored convention, plus a complex quadratic background) over ±2 magnitude half-height widths of the
    8× zero-filled spectrum. The symmetric line model makes the centre and phase insensitive
    to the peak's own dispersion and to the tails of other resonances (the background)."""
    ppm, s = zero_filled(spec)
    mag = np.abs(s)
    pos, i = peak_position(ppm, mag, ppm_range)
    if i < 0:
        return PeakFit(float("nan"), 0.0, float("nan"), float("nan"), False)
    reg = half_height_region(mag, i)
    step = abs(ppm[1] - ppm[0])
    w = int(np.clip(reg.size, 4, max(4, round(MAX_FIT_HALF_WIDTH_PPM / step))))
    idx = np.arange(max(0, i - 2 * w), min(len(s), i + 2 * w + 1))
    x = ppm[idx]
    y = s[idx]
    g0 = max(reg.size * step / (2 * np.sqrt(3)), step)
    a0 = s[i] * g0
    scale = max(np.abs(y).max(), 1e-300)

    def model(p):
        a = (p[0] + 1j * p[1]) * scale
        d = (x - p[2]) / w_ppm
        return a / (p[3] - 1j * (x - p[2])) + (p[4] + 1j * p[5] + (p[6] + 1j * p[7]) * d
                                               + (p[8] + 1j * p[9]) * d * d) * scale

    def resid(p):
        r = (model(p) - y) / scale
        return np.concatenate([r.real, r.imag])

    w_ppm = max(abs(x[-1] - x[0]) / 2, step)
    p0 = [a0.real / scale, a0.imag / scale, pos, g0, 0, 0, 0, 0, 0, 0]
    try:
        sol = least_squares(resid, p0, method="lm", max_nfev=400, x_scale=[abs(a0) / scale or 1, abs(a0) / scale or 1,
                                                                step, g0, 1, 1, 1, 1, 1, 1])
        p = sol.x
    except (ValueError, np.linalg.LinAlgError):
        return PeakFit(pos, float(np.angle(s[i])), float(mag[i]), g0, False)
    a = (p[0] + 1j * p[1]) * scale
    ok = bool(p[3] > 0 and x.min() <= p[2] <= x.max())
    if not ok:
        return PeakFit(pos, float(np.angle(s[i])), float(mag[i]), g0, False)
    return PeakFit(float(p[2]), float(np.angle(a)), float(abs(a) / p[3]), float(p[3]), True)


def peak_phase(spec: Spectrum, ppm_ranges) -> float:
    """Zero-order phase (rad) of the strongest peaks in ``ppm_ranges``: the angle of
    ``Σ height_k·e^{iφ_k}`` over the local fits of :func:`fit_peak`."""
    total = 0j
    for rng in ppm_ranges:
        f = fit_peak(spec, rng)
        if np.isfinite(f.height):
            total += f.height * np.exp(1j * f.phase_rad)
    return float(np.angle(total)) if total != 0 else 0.0


def phased_peak_position(spec: Spectrum, ppm_range: tuple[float, float]) -> tuple[float, float, float]:
    """Centre (ppm), magnitude height and phase (rad) of the strongest peak in ``ppm_range``
    (:func:`fit_peak`; the magnitude maximum when the fit fails)."""
    ppm, s = zero_filled(spec)
    mag = np.abs(s)
    pos, i = peak_position(ppm, mag, ppm_range)
    if i < 0:
        return float("nan"), float("nan"), 0.0
    f = fit_peak(spec, ppm_range)
    return (f.ppm if f.ok else pos), float(mag[i]), f.phase_rad


def fwhm_ppm(ppm: np.ndarray, values: np.ndarray, i_peak: int) -> float:
    """Full width at half height (ppm) of the real peak at ``i_peak`` (linear interpolation
    of the two half-height crossings); nan when a crossing is missing."""
    half = values[i_peak] / 2.0
    if not half > 0:
        return float("nan")
    lo = i_peak
    while lo > 0 and values[lo] > half:
        lo -= 1
    hi = i_peak
    while hi < len(values) - 1 and values[hi] > half:
        hi += 1
    if values[lo] > half or values[hi] > half:
        return float("nan")

    def cross(a, b):
        return ppm[a] + (half - values[a]) * (ppm[b] - ppm[a]) / (values[b] - values[a])

    return float(abs(cross(lo, lo + 1) - cross(hi, hi - 1)))


def noise_sd(spec: Spectrum, regions=NOISE_REGIONS_PPM) -> tuple[float, tuple[float, float] | None]:
    """SD of the real spectrum (no zero-filling) in the first signal-free region with at least
    32 points, after removing a quadratic trend; returns (sd, region) or (nan, None)."""
    ppm = spec.ppm
    s = spec.spectrum().real
    for reg in regions:
        m = in_range(ppm, reg)
        if m.sum() >= _MIN_NOISE_POINTS:
            x = ppm[m]
            y = s[m]
            coef = np.polyfit(x - x.mean(), y, 2)
            resid = y - np.polyval(coef, x - x.mean())
            return float(np.std(resid, ddof=3)), reg
    return float("nan"), None


__all__ = ["zero_filled", "peak_position", "peak_phase", "phased_peak_position", "fit_peak", "PeakFit",
           "half_height_region", "fwhm_ppm", "noise_sd",
           "in_range", "NOISE_REGIONS_PPM", "ZERO_FILL"]
