"""Spectral quality measures of preprocessed (1-D) spectra.

Definitions (copied into the QC sidecar):

``snr_naa``
    NAA signal-to-noise ratio (Kreis 2020, NMR Biomed e4347): the height of the NAA singlet
    in the real part of the spectrum, zero-order phased on the NAA peak, above a local linear
    baseline (through the medians of 1.75–1.85 and 2.15–2.25 ppm), divided by the standard
    deviation of the real part of the spectrum in a signal-free region (−2 to 0 ppm, else 9–11
    ppm, else −4 to −2 ppm) after removing a quadratic trend; no factor 2. The height is read
    on the 8× zero-filled spectrum (the maximum between bins); the noise SD on the original
    bins.
``fwhm_naa_hz``, ``fwhm_naa_ppm``
    Full width at half maximum of the NAA singlet (1.9–2.1 ppm) in the same baseline-corrected
    real spectrum, zero-filled 8×, half-height crossings interpolated linearly; Hz = ppm ×
    spectrometer frequency (MHz).
``fwhm_water_hz``
    Full width at half maximum of the water peak (4.2–5.1 ppm) of the water reference's real
    spectrum, zero-order phased on the water peak, zero-filled 8×, half-height crossings
    interpolated linearly.
"""
from __future__ import annotations

import numpy as np

from bidsmrs.constants import PPM_NAA, PPM_WATER
from bidsmrs.preprocess.peaks import fwhm_ppm, in_range, noise_sd, peak_phase, peak_position, zero_filled
from bidsmrs.spectrum import Spectrum

#: BIDS sidecar entries (Description, Units) of the QC columns computed by preprocessing.
QC_DESCRIPTIONS = {
    "snr_naa": {
        "Description": "NAA signal-to-noise ratio (Kreis 2020, NMR Biomed e4347): height of the NAA singlet "
                       "in the real spectrum, zero-order phased on NAA, above a local linear baseline through "
                       "the medians of 1.75-1.85 and 2.15-2.25 ppm (8x zero-filled, maximum between bins), "
                       "divided by the SD of the real spectrum in a signal-free region (-2 to 0 ppm, else 9-11, "
                       "else -4 to -2 ppm) after removing a quadratic trend; no factor 2.",
        "Units": "arbitrary"},
    "fwhm_naa_hz": {
        "Description": "Full width at half maximum of the NAA singlet (1.9-2.1 ppm) in the phased, "
                       "baseline-corrected real spectrum, 8x zero-filled, half-height crossings interpolated "
                       "linearly.",
        "Units": "Hz"},
    "fwhm_naa_ppm": {"Description": "fwhm_naa_hz divided by the spectrometer frequency (MHz).", "Units": "ppm"},
    "fwhm_water_hz": {
        "Description": "Full width at half maximum of the water peak (4.2-5.1 ppm) of the preprocessed water "
                       "reference's real spectrum, zero-order phased on water, 8x zero-filled, half-height "
                       "crossings interpolated linearly.",
        "Units": "Hz"},
    "n_transients": {"Description": "Number of transients (DIM_DYN entries) acquired; 1 for averaged data.",
                     "Units": "count"},
    "n_rejected": {"Description": "Transients excluded from the average: residual against the aligned median "
                                  "> 3 scaled MADs (robust z-score), or non-finite samples.",
                   "Units": "count"},
    "freq_drift_hz": {"Description": "Range (max - min) of the frequency corrections applied by spectral "
                                     "registration (Near 2015) to the accepted transients; 0 without alignment.",
                      "Units": "Hz"},
    "phase_drift_deg": {"Description": "Circular range of the zero-order phase corrections applied to the "
                                       "accepted transients; 0 without alignment.",
                        "Units": "degrees"},
    "residual_water_ratio": {"Description": "Maximum absolute real part of the final phased spectrum within "
                                            "4.4-5.0 ppm (after HLSVD water removal) divided by its maximum "
                                            "real part within 1.9-2.1 ppm (NAA).",
                             "Units": "ratio"},
}

NAA_WINDOW_PPM = (PPM_NAA - 0.1, PPM_NAA + 0.1)
BASELINE_FLANKS_PPM = ((1.75, 1.85), (2.15, 2.25))
WATER_WINDOW_PPM = (PPM_WATER - 0.45, PPM_WATER + 0.45)


def _one_d(spec: Spectrum) -> Spectrum:
    if spec.fid.ndim == 1:
        return spec
    fid = spec.fid
    while fid.ndim > 1:
        fid = fid.mean(axis=-1)
    return spec.replace(fid=fid, dim_tags=())


def _local_baseline(ppm: np.ndarray, real: np.ndarray) -> np.ndarray | None:
    pts = []
    for reg in BASELINE_FLANKS_PPM:
        m = in_range(ppm, reg)
        if not m.any():
            return None
        pts.append((float(np.mean(ppm[m])), float(np.median(real[m]))))
    (x0, y0), (x1, y1) = pts
    return y0 + (ppm - x0) * (y1 - y0) / (x1 - x0)


def spectral_qc(spectrum: Spectrum) -> dict:
    """NAA SNR and linewidth of a metabolite spectrum (definitions in the module docstring).

    Returns a dict with ``snr_naa``, ``fwhm_naa_hz``, ``fwhm_naa_ppm``, ``naa_ppm`` (position
    found), ``noise_sd`` (spectral units) and ``noise_region_ppm``; NaN where undefined.
    """
    spec = _one_d(spectrum)
    phi = peak_phase(spec, (NAA_WINDOW_PPM,))
    spec = spec.replace(fid=spec.fid * np.exp(-1j * phi))
    sd, region = noise_sd(spec)
    out = {"snr_naa": float("nan"), "fwhm_naa_hz": float("nan"), "fwhm_naa_ppm": float("nan"),
           "naa_ppm": float("nan"), "noise_sd": sd, "noise_region_ppm": list(region) if region else None}
    # the 8× zero-filled spectrum interpolates between bins (values at the original bins are
    # unchanged), so the height is that of the peak maximum, not of the nearest bin
    ppm, s = zero_filled(spec)
    real = s.real
    base = _local_baseline(ppm, real)
    if base is None:
        return out
    pos, i = peak_position(ppm, real - base, NAA_WINDOW_PPM)
    if i < 0:
        return out
    height = float(real[i] - base[i])
    out["snr_naa"] = height / sd if sd > 0 else float("nan")
    out["naa_ppm"] = pos
    w = fwhm_ppm(ppm, real - base, i)
    out["fwhm_naa_ppm"] = w
    out["fwhm_naa_hz"] = w * spec.spectrometer_mhz
    return out


def water_qc(spectrum: Spectrum) -> dict:
    """Water linewidth of a water reference: ``fwhm_water_hz`` (and ``water_ppm``)."""
    spec = _one_d(spectrum)
    phi = peak_phase(spec, (WATER_WINDOW_PPM,))
    spec = spec.replace(fid=spec.fid * np.exp(-1j * phi))
    ppm, s = zero_filled(spec)
    pos, i = peak_position(ppm, s.real, WATER_WINDOW_PPM)
    if i < 0:
        return {"fwhm_water_hz": float("nan"), "water_ppm": float("nan")}
    w = fwhm_ppm(ppm, s.real, i)
    return {"fwhm_water_hz": w * spec.spectrometer_mhz, "water_ppm": pos}


__all__ = ["spectral_qc", "water_qc", "QC_DESCRIPTIONS"]
