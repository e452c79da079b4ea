"""Test helper: raw multi-coil, multi-transient SVS data with known truth.

A small brain-like spectrum of Voigt lines (singlets of NAA, Cr, Cho and a few
multiplet-like groups, a broad MM line) is
- received by ``n_coils`` coils with known complex sensitivities and noise SDs,
- acquired as ``n_dyn`` transients with a frequency drift (random walk rescaled to ±``drift_hz``)
  and zero-order phase jitter,
- distorted by a Klose-type eddy-current phase ``φ(t) = 2π·ec_hz·ec_tau_s·(1 − e^{−t/ec_tau_s})``
  shared with the water reference,
- with residual water at ``water_ppm`` and ``n_corrupt`` motion-corrupted transients
  (amplitude loss, broadening, large phase change).
Everything is seeded; the truth is returned alongside the data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bidsmrs.simulate import peak_fid
from bidsmrs.spectrum import Spectrum

#: (ppm, FID(0) amplitude, Lorentzian FWHM Hz) of the metabolite lines.
PEAKS = (
    (2.008, 3.0, 3.0),   # NAA CH3
    (2.49, 0.4, 4.0), (2.67, 0.4, 4.0),  # NAA CH2 (crude)
    (3.027, 2.5, 3.0),   # tCr CH3
    (3.92, 1.6, 3.5),    # tCr CH2
    (3.185, 0.9, 3.0),   # tCho
    (3.52, 0.6, 5.0), (3.61, 0.6, 5.0),  # Ins (crude)
    (2.34, 0.5, 6.0), (2.36, 0.5, 6.0), (3.75, 0.6, 6.0),  # Glu (crude)
    (0.9, 1.0, 25.0), (1.3, 0.6, 25.0),  # MM / lipid
)
GAUSS_HZ = 3.0


@dataclass(frozen=True)
class RawTruth:
    """Known parameters of a simulated raw acquisition."""

    clean_fid: np.ndarray          # noise-free metabolite FID, unit sensitivity, no drift/EC/water
    water_fid: np.ndarray          # noise-free residual-water FID in the metabolite data
    reference_fid: np.ndarray      # noise-free water reference FID (unit sensitivity, no EC)
    sensitivities: np.ndarray      # complex (n_coils,)
    noise_sd: np.ndarray           # (n_coils,), per real/imag part
    drift_hz: np.ndarray           # (n_dyn,) frequency offset of each transient
    phase_deg: np.ndarray          # (n_dyn,) phase jitter of each transient
    corrupted: np.ndarray          # indices of motion-corrupted transients
    eddy_phase_rad: np.ndarray     # (n_points,)


@dataclass(frozen=True)
class RawData:
    metabolite: Spectrum   # (n_points, DIM_COIL, DIM_DYN)
    water: Spectrum        # (n_points, DIM_COIL, DIM_DYN)
    truth: RawTruth


def clean_metabolite_fid(n_points: int, dwell_s: float, spectrometer_mhz: float, peaks=PEAKS) -> np.ndarray:
    """Noise-free metabolite FID (referenced: NAA at 2.008 ppm, zero phase)."""
    out = np.zeros(n_points, complex)
    for ppm, amp, lw in peaks:
        out += peak_fid(n_points, dwell_s, spectrometer_mhz, ppm, amplitude=amp, lorentz_hz=lw, gauss_hz=GAUSS_HZ)
    return out


def simulate_raw(seed: int = 0, *, n_coils: int = 8, n_dyn: int = 32, n_points: int = 2048,
                 dwell_s: float = 2.5e-4, spectrometer_mhz: float = 123.2, noise_sd: float = 0.02,
                 drift_hz: float = 5.0, phase_jitter_deg: float = 10.0, n_corrupt: int = 3,
                 ec_hz: float = 20.0, ec_tau_s: float = 0.02, water_amplitude: float = 15.0,
                 water_ppm: float = 4.72, reference_amplitude: float = 3000.0, n_ref_dyn: int = 2,
                 noise_correlation: float = 0.0, coil_noise_spread: tuple[float, float] = (0.7, 1.4),
                 receiver_phase_deg: float = 30.0) -> RawData:
    """Simulate a raw acquisition (see the module docstring). ``noise_sd`` is per coil per
    transient (times a per-coil factor in ``coil_noise_spread``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points) * dwell_s
    clean = clean_metabolite_fid(n_points, dwell_s, spectrometer_mhz)
    water = peak_fid(n_points, dwell_s, spectrometer_mhz, water_ppm, amplitude=water_amplitude, lorentz_hz=8.0,
                     gauss_hz=GAUSS_HZ, phase_deg=40.0)
    ref = peak_fid(n_points, dwell_s, spectrometer_mhz, 4.65, amplitude=reference_amplitude, lorentz_hz=4.0,
                   gauss_hz=GAUSS_HZ)
    sens = rng.uniform(0.3, 1.0, n_coils) * np.exp(1j * rng.uniform(-np.pi, np.pi, n_coils))
    sd = noise_sd * rng.uniform(*coil_noise_spread, n_coils)
    walk = np.cumsum(rng.standard_normal(n_dyn))
    walk = walk - walk.mean()
    walk = drift_hz * walk / np.max(np.abs(walk)) if n_dyn > 1 and drift_hz > 0 else np.zeros(n_dyn)
    jitter = rng.normal(0.0, phase_jitter_deg, n_dyn) if phase_jitter_deg > 0 else np.zeros(n_dyn)
    corrupted = np.sort(rng.choice(n_dyn, size=n_corrupt, replace=False)) if n_corrupt else np.zeros(0, int)
    ec = 2 * np.pi * ec_hz * ec_tau_s * (1 - np.exp(-t / ec_tau_s)) if ec_hz else np.zeros(n_points)
    rx = np.deg2rad(receiver_phase_deg)

    def noise(shape_extra):
        shape = (n_points, n_coils) + shape_extra
        z = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
        if noise_correlation:
            mix = np.eye(n_coils) + noise_correlation * (np.ones((n_coils, n_coils)) - np.eye(n_coils))
            chol = np.linalg.cholesky(mix)
            z = np.einsum("cd,nd...->nc...", chol, z)
        return z * sd.reshape((1, n_coils) + (1,) * len(shape_extra))

    met = np.empty((n_points, n_coils, n_dyn), complex)
    for k in range(n_dyn):
        sig = (clean + water) * np.exp(1j * (2 * np.pi * walk[k] * t + np.deg2rad(jitter[k])))
        if k in corrupted:
            sig = 0.4 * sig * np.exp(-np.pi * 8.0 * t) * np.exp(1j * np.deg2rad(120.0))
        sig = sig * np.exp(1j * (ec + rx))
        met[:, :, k] = sig[:, None] * sens[None, :]
    met = met + noise((n_dyn,))
    refd = (ref * np.exp(1j * (ec + rx)))[:, None, None] * sens[None, :, None] * np.ones((1, 1, n_ref_dyn))
    refd = refd + noise((n_ref_dyn,))
    tags = ("DIM_COIL", "DIM_DYN")
    common = dict(dwell_s=dwell_s, spectrometer_mhz=spectrometer_mhz, dim_tags=tags, echo_time_s=0.03,
                  repetition_time_s=2.0, affine=np.eye(4))
    truth = RawTruth(clean_fid=clean, water_fid=water, reference_fid=ref, sensitivities=sens, noise_sd=sd,
                     drift_hz=walk, phase_deg=jitter, corrupted=corrupted, eddy_phase_rad=ec)
    return RawData(metabolite=Spectrum(fid=met, **common), water=Spectrum(fid=refd, **common), truth=truth)


def real_window(spec_fid: np.ndarray, dwell_s: float, spectrometer_mhz: float,
                ppm_range=(0.2, 4.2), ppm_centre: float = 4.65) -> np.ndarray:
    """Real spectrum of a 1-D FID restricted to ``ppm_range`` (for correlations)."""
    n = spec_fid.shape[0]
    f = np.fft.fftshift(np.fft.fftfreq(n, dwell_s))
    ppm = ppm_centre - f / spectrometer_mhz
    s = np.fft.fftshift(np.fft.fft(spec_fid)).real
    return s[(ppm >= min(ppm_range)) & (ppm <= max(ppm_range))]
