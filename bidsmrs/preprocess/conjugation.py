"""Detect and undo data stored with the opposite frequency convention (conjugated FIDs).

Some exports store the complex conjugate of the NIfTI-MRS convention (research/standards.md
§2.4; FSL-MRS checks this with ``--conj_fid``). In a conjugated 1H spectrum every resonance
appears mirrored about the receiver frequency: NAA (2.01 ppm), Cr (3.03) and Cho (3.19) land
at 2c − δ ≈ 6.1–7.3 ppm for c = 4.65, where brain spectra have almost no signal. The test is
phase-independent (magnitude spectra summed over coils and transients).
"""
from __future__ import annotations

import numpy as np

from bidsmrs.spectrum import Spectrum, StepRecord

#: The main singlets (ppm; NAA, tCr, tCho, Govindaraju 2000) whose mirror images 2·centre − δ
#: are looked for, allowing one common frequency offset up to ``MAX_OFFSET_PPM``.
SINGLETS_PPM = (2.008, 3.027, 3.21)
MAX_OFFSET_PPM = 0.4
#: Running-median width (ppm) removed from the magnitude spectrum: broad features do not count.
SMOOTH_PPM = 0.3
#: The test needs the mirror images to land where brain spectra have no signal, above water:
#: their search windows must start at or above this (ppm). True for the usual centre at water
#: (mirrors at 5.7–7.7 ppm); for data centred on the metabolites (SpecFreqChemShift ≲ 4.3 ppm)
#: the mirrors would fall on NAA, lipids or water and the check is skipped.
MIN_MIRROR_PPM = 5.0


def _pattern_height(ppm: np.ndarray, sharp: np.ndarray, targets: np.ndarray) -> float:
    """Largest summed height of ``sharp`` at ``targets + offset`` over |offset| ≤ MAX_OFFSET_PPM."""
    order = np.argsort(ppm)
    x, y = ppm[order], sharp[order]
    step = abs(x[1] - x[0])
    offsets = np.arange(-MAX_OFFSET_PPM, MAX_OFFSET_PPM + step / 2, step)
    return float(np.max(sum(np.interp(t + offsets, x, y, left=0.0, right=0.0) for t in targets)))


def conjugation_score(spec: Spectrum) -> float:
    """Height of the mirrored NAA/tCr/tCho pattern divided by that of the normal pattern.

    Uses the magnitude spectrum (phase-independent) of the transients' mean, summed over the
    other higher dimensions (coils), minus a running median over ``SMOOTH_PPM`` so that broad
    features such as residual-water wings do not count, only sharp resonances. Each pattern's
    height is the summed height at its three singlet positions, at the common frequency offset
    (≤ ``MAX_OFFSET_PPM``) where that sum is largest; summing three lines rather than taking one
    peak keeps noise from deciding at low SNR. A value well above 1 means conjugated data.
    """
    from scipy.ndimage import median_filter

    if spec.nucleus != "1H":
        return float("nan")
    data = spec
    dyn = spec.axis_of("DIM_DYN")
    if dyn is not None:  # transients: averaged coherently first (their SNR adds, their noise does not)
        data = spec.replace(fid=spec.fid.mean(axis=dyn),
                            dim_tags=tuple(t for i, t in enumerate(spec.dim_tags) if i + 1 != dyn))
    mag = np.abs(data.spectrum()).reshape(spec.n_points, -1).sum(axis=1)
    ppm = spec.ppm
    width = max(3, int(round(SMOOTH_PPM / abs(ppm[1] - ppm[0]))) | 1)
    sharp = np.clip(mag - median_filter(mag, size=width, mode="nearest"), 0.0, None)
    targets = np.asarray(SINGLETS_PPM)
    mirrored = 2 * spec.ppm_centre - targets
    lo, hi = ppm.min(), ppm.max()
    if targets.min() - MAX_OFFSET_PPM < lo or mirrored.max() + MAX_OFFSET_PPM > hi:
        return float("nan")
    if mirrored.min() - MAX_OFFSET_PPM < MIN_MIRROR_PPM:  # the mirrors would fall on real signals
        return float("nan")
    normal = _pattern_height(ppm, sharp, targets)
    mirror = _pattern_height(ppm, sharp, mirrored)
    return float(mirror / normal) if normal > 0 else float("inf") if mirror > 0 else float("nan")


def is_conjugated(spec: Spectrum, threshold: float = 2.0) -> bool:
    """True when the mirrored singlet pattern is ``threshold`` times taller than the normal one.

    Measured scores (synthetic NAA at 10× the noise SD, 20 noise draws): 0.16–0.30 for data in
    the NIfTI-MRS convention and 3.3–6.0 conjugated; real Philips/Siemens data 0.02–0.03, and
    42–56 when conjugated.
    """
    score = conjugation_score(spec)
    return bool(np.isfinite(score) and score > threshold) or score == float("inf")


def conjugate(spec: Spectrum, reason: str) -> Spectrum:
    """The complex conjugate of the data, recorded in the history."""
    return spec.with_step(np.conj(spec.fid), StepRecord(
        "Conjugation", f"The data were conjugated to the NIfTI-MRS frequency convention ({reason}).",
        {"reason": reason}))
