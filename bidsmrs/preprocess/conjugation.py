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

#: Where the main singlets are (ppm); the mirrored window is 2·centre − this.
SINGLET_WINDOW_PPM = (1.85, 3.35)


def conjugation_score(spec: Spectrum) -> float:
    """Tallest sharp peak in the mirrored singlet window divided by the tallest in the singlet window.

    Uses the magnitude spectrum summed over every higher dimension, high-pass filtered (minus
    a running median over 0.3 ppm) so that broad features such as residual-water wings do not
    count, only sharp resonances. A value well above 1 means conjugated data.
    """
    from scipy.ndimage import median_filter

    if spec.nucleus != "1H":
        return float("nan")
    mag = np.abs(spec.spectrum()).reshape(spec.n_points, -1).sum(axis=1)
    ppm = spec.ppm
    width = max(3, int(round(0.3 / abs(ppm[1] - ppm[0]))) | 1)
    sharp = mag - median_filter(mag, size=width, mode="nearest")
    lo, hi = SINGLET_WINDOW_PPM
    c = spec.ppm_centre
    normal_win = (ppm >= lo) & (ppm <= hi)
    mirror_win = (ppm >= 2 * c - hi) & (ppm <= 2 * c - lo)
    if not normal_win.any() or not mirror_win.any():
        return float("nan")
    normal, mirror = sharp[normal_win].max(), sharp[mirror_win].max()
    return float(mirror / normal) if normal > 0 else float("inf") if mirror > 0 else float("nan")


def is_conjugated(spec: Spectrum, threshold: float = 3.0) -> bool:
    """True when the mirrored window holds ``threshold`` times more signal than the normal one."""
    score = conjugation_score(spec)
    return bool(np.isfinite(score) and score > threshold) or score == float("inf")


def conjugate(spec: Spectrum, reason: str) -> Spectrum:
    """The complex conjugate of the data, recorded in the history."""
    return spec.with_step(np.conj(spec.fid), StepRecord(
        "Conjugation", f"The data were conjugated to the NIfTI-MRS frequency convention ({reason}).",
        {"reason": reason}))
