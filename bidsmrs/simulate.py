"""Seeded forward models: synthetic FIDs with known truth, for tests, demo and benchmarks.

Lineshape parameters are full widths at half maximum in Hz:
Lorentzian ``exp(−π·L·t)`` has FWHM ``L``; Gaussian ``exp(−(π·G·t)²/(4 ln 2))`` has FWHM ``G``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from bidsmrs.basis.core import Basis
from bidsmrs.spectrum import Spectrum, ppm_to_hz, to_fid, to_spectrum


def voigt_decay(time_s: np.ndarray, lorentz_hz: float = 0.0, gauss_hz: float = 0.0) -> np.ndarray:
    """Voigt envelope with Lorentzian and Gaussian FWHM (Hz)."""
    return np.exp(-np.pi * lorentz_hz * time_s - (np.pi * gauss_hz * time_s) ** 2 / (4 * np.log(2)))


def combine_basis(basis: Basis, amplitudes: Mapping[str, float], *, lorentz_hz: float = 0.0,
                  gauss_hz: float = 0.0, shift_hz: float = 0.0, mm_lorentz_hz: float | None = None,
                  mm_shift_hz: float | None = None) -> np.ndarray:
    """Noise-free FID ``Σ c_m b_m(t)`` with a common Voigt broadening and shift.

    Macromolecule components get ``mm_lorentz_hz``/``mm_shift_hz`` when given.
    Unknown names raise KeyError (tests must not silently drop a metabolite).
    """
    t = np.arange(basis.n_points) * basis.dwell_s
    out = np.zeros(basis.n_points, complex)
    for name, amp in amplitudes.items():
        k = basis.index(name)
        mm = basis.is_macromolecule[k]
        lw = mm_lorentz_hz if (mm and mm_lorentz_hz is not None) else lorentz_hz
        sh = mm_shift_hz if (mm and mm_shift_hz is not None) else shift_hz
        out += amp * basis.fids[:, k] * voigt_decay(t, lw, gauss_hz) * np.exp(2j * np.pi * sh * t)
    return out


def peak_fid(n_points: int, dwell_s: float, spectrometer_mhz: float, ppm: float, *,
             amplitude: float = 1.0, lorentz_hz: float = 2.0, gauss_hz: float = 0.0,
             phase_deg: float = 0.0, ppm_centre: float = 4.65) -> np.ndarray:
    """A single Voigt peak at ``ppm`` whose FID starts at ``amplitude·e^{iφ}``."""
    t = np.arange(n_points) * dwell_s
    f = ppm_to_hz(ppm, spectrometer_mhz, ppm_centre)
    return (amplitude * np.exp(1j * np.deg2rad(phase_deg)) * np.exp(2j * np.pi * f * t)
            * voigt_decay(t, lorentz_hz, gauss_hz))


def smooth_baseline_fid(n_points: int, dwell_s: float, spectrometer_mhz: float, *, amplitude: float,
                        rng: np.random.Generator, ppm_centre: float = 4.65, n_bumps: int = 4,
                        ppm_range=(0.0, 4.5), width_ppm=(0.6, 1.5)) -> np.ndarray:
    """A smooth random baseline: broad Gaussians in the spectrum, returned as an FID.

    ``amplitude`` is the peak height of each bump relative to a unit-area sharp peak, in
    the frequency domain units of ``to_spectrum``.
    """
    freq = np.fft.fftshift(np.fft.fftfreq(n_points, dwell_s))
    ppm = ppm_centre - freq / spectrometer_mhz
    spec = np.zeros(n_points, complex)
    for _ in range(n_bumps):
        c = rng.uniform(*ppm_range)
        w = rng.uniform(*width_ppm)
        ph = rng.uniform(-np.pi, np.pi)
        spec += amplitude * rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((ppm - c) / (w / 2.355)) ** 2) * np.exp(1j * ph)
    return to_fid(spec)


def make_spectrum(fid: np.ndarray, *, dwell_s: float, spectrometer_mhz: float, noise_sd: float = 0.0,
                  rng: np.random.Generator | None = None, phase0_deg: float = 0.0,
                  echo_time_s: float | None = 0.035, repetition_time_s: float | None = 2.0,
                  ppm_centre: float = 4.65, dim_tags: tuple[str, ...] = ()) -> Spectrum:
    """Wrap a synthetic FID (any shape, time first) into a Spectrum, adding phase and complex noise.

    ``noise_sd`` is the SD of each of the real and imaginary parts of the time-domain noise.
    """
    data = np.asarray(fid, complex) * np.exp(1j * np.deg2rad(phase0_deg))
    if noise_sd > 0:
        if rng is None:
            raise ValueError("noise needs an explicit rng (seeded)")
        data = data + noise_sd * (rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape))
    return Spectrum(fid=data, dwell_s=dwell_s, spectrometer_mhz=spectrometer_mhz, ppm_centre=ppm_centre,
                    echo_time_s=echo_time_s, repetition_time_s=repetition_time_s, dim_tags=dim_tags,
                    affine=np.eye(4))


def spectral_noise_sd(time_noise_sd: float, n_points: int) -> float:
    """SD of the real part of ``to_spectrum`` noise for time-domain noise SD (per part)."""
    return time_noise_sd * np.sqrt(n_points)


__all__ = ["voigt_decay", "combine_basis", "peak_fid", "smooth_baseline_fid", "make_spectrum",
           "spectral_noise_sd", "to_spectrum"]
