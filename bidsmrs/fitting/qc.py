"""Fit quality metrics (DESIGN.md §3 QC columns) computed from a :class:`FitResult`.

Definitions (all over the fit range of the result, real parts of the phase-corrected spectra):

- ``snr_lcmodel``: ``max(data − baseline) / (2·RMS(residual))``, the LCModel/TARQUIN
  definition (LCModel manual; peers.md §4.2), residual = data − fit.
- ``fit_residual_ratio``: ``SD(residual) / noise_sd`` with the noise SD of the fit (from a
  signal-free region); ≈ 1 for a fit that explains everything but noise (Osprey/spant "Q").
- ``fwhm_fit_hz`` / ``fwhm_fit_ppm``: FWHM of the fitted lineshape, measured on the fitted
  (noise-free, baseline-free) component of the reference singlet: NAA if present, else Cr,
  else the largest non-macromolecule component; ``nan`` when none is fitted.
- ``fwhm_component``: the component used for ``fwhm_fit_hz``.
"""
from __future__ import annotations

import numpy as np

from bidsmrs.fitting.lineshape import measured_fwhm_hz
from bidsmrs.fitting.result import FitResult

_FWHM_CANDIDATES = ("NAA", "Cr", "PCr", "tCr", "GPC", "PCho", "PCh", "Cho")


def _fwhm_component(fit: FitResult) -> int | None:
    for name in _FWHM_CANDIDATES:
        if name in fit.names and fit.amplitude(name) > 0:
            return fit.names.index(name)
    peaks = [(np.max(fit.components[:, k].real), k) for k in range(len(fit.names))
             if not (fit.is_macromolecule and fit.is_macromolecule[k]) and fit.amplitudes[k] > 0]
    return max(peaks)[1] if peaks else None


def fit_qc(fit: FitResult) -> dict:
    """QC metrics of a fit (module doc for definitions).

    Returns
    -------
    dict
        ``snr_lcmodel``, ``fit_residual_ratio``, ``fwhm_fit_hz``, ``fwhm_fit_ppm``,
        ``fwhm_component`` (str or None).
    """
    m = fit.in_range()
    resid = (fit.data - fit.fit)[m].real
    rms = float(np.sqrt(np.mean(resid ** 2)))
    peak = float(np.max((fit.data - fit.baseline)[m].real))
    snr = peak / (2 * rms) if rms > 0 else float("inf")
    ratio = float(np.std(resid) / fit.noise_sd) if fit.noise_sd > 0 else float("nan")
    k = _fwhm_component(fit)
    fwhm_hz = float("nan")
    if k is not None and fit.ppm.size > 1:
        # Hz spacing from the ppm axis: SF = Δf/Δppm is not stored; recover it from params.
        sf = fit.params.get("spectrometer_mhz")
        comp = fit.components[:, k].real
        if sf:
            freq = -(fit.ppm - fit.ppm[0]) * float(sf)
            fwhm_hz = measured_fwhm_hz(comp, freq)
    sf = fit.params.get("spectrometer_mhz")
    return {
        "snr_lcmodel": float(snr),
        "fit_residual_ratio": ratio,
        "fwhm_fit_hz": fwhm_hz,
        "fwhm_fit_ppm": float(fwhm_hz / float(sf)) if sf and np.isfinite(fwhm_hz) else float("nan"),
        "fwhm_component": fit.names[k] if k is not None else None,
    }
