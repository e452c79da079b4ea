"""Frequency referencing and zero-order phasing of averaged (1-D) spectra.

Metabolite spectra: the NAA singlet is moved to 2.008 ppm; when NAA is absent or weak (no
narrow line inside its search window, see :func:`singlet_checks`; e.g. tumour spectra, where
broad lipid bands sit under 2.0 ppm) the tCr singlet (3.027 ppm) is used, then the tCho singlet
(3.21 ppm), and failing those the water peak (4.65 ppm; chemical shifts from Govindaraju 2000).

Peak position and phase: the strongest line of the 8× zero-filled magnitude spectrum within
±0.15 ppm of the target (±0.45 ppm for water) is fitted locally with a complex Lorentzian plus
a complex quadratic background (:func:`bidsmrs.preprocess.peaks.fit_peak`), which makes the
centre and phase insensitive to the line's own dispersion and to the tails of other
resonances. Zero-order phase: the angle of ``Σ height·e^{iφ}`` of the NAA and tCr fits.

Large offsets: the search windows above hold the singlets only for offsets up to ≈ 0.1 ppm.
A coarse search (:func:`coarse_offset_ppm`) first matches the NAA/tCr/tCho singlet pattern
(2.008/3.027/3.21 ppm) over ±0.4 ppm on the magnitude spectrum with its broad bands removed;
when at least two of the three singlets support an offset of ≥ 0.05 ppm, :func:`coarse_reference`
moves the spectrum by it before any step that looks in fixed ppm windows (no ECC-corrected
water reference to rely on, or metabolites shifted relative to it by B0 drift, a mis-set centre
frequency, or a water reference recorded at another frequency).

Water reference: the water peak is moved to 4.65 ppm and phased the same way on itself.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy.ndimage import median_filter

from bidsmrs.constants import PPM_CR, PPM_NAA, PPM_WATER
from bidsmrs.preprocess.peaks import (fit_peak, in_range, noise_sd, peak_phase, peak_position, phased_peak_position,
                                      zero_filled)
from bidsmrs.spectrum import Spectrum, StepRecord

logger = logging.getLogger(__name__)

#: name → (target ppm, search window ppm)
#: The tCr window stops 0.1 ppm short of tCho and the tCho window 0.1 ppm short of tCr, so
#: that the larger of the two neighbours (tCho in tumours) is not taken for the other.
PPM_TCHO = 3.21  # N(CH3)3 of GPC 3.212 / PCh 3.208 (Govindaraju 2000), the in-vivo tCho singlet
REFERENCE_PEAKS = {
    "NAA": (PPM_NAA, (PPM_NAA - 0.15, PPM_NAA + 0.15)),
    "Cr": (PPM_CR, (PPM_CR - 0.12, PPM_CR + 0.08)),
    "Cho": (PPM_TCHO, (PPM_TCHO - 0.08, PPM_TCHO + 0.12)),
    "water": (PPM_WATER, (PPM_WATER - 0.45, PPM_WATER + 0.45)),
}
#: With ``"auto"``, the last-resort water peak is used only within this distance (ppm) of 4.65.
MAX_WATER_FALLBACK_PPM = 0.15
#: Minimum peak magnitude / noise SD for NAA or Cr to be used for referencing.
MIN_PEAK_SNR = 5.0
#: Minimum peak magnitude relative to the tallest usable singlet (see :func:`singlet_checks`).
MIN_REL_HEIGHT = 0.2
#: Largest half width (ppm) of a usable NAA/Cr/tCho reference line.
MAX_HWHM_PPM = 0.1
#: A usable reference line is also at most this many times as wide as the narrowest of the three
#: singlet fits: the NAA, tCr and tCho singlets share one shim-limited width, while a broad lipid or
#: MM band under NAA (Lip20, MM20: FWHM ≈ 0.15 ppm, LCModel manual) is several times wider.
MAX_WIDTH_RATIO = 2.0
#: When only one of the three singlet fits converges there is nothing to compare its width with:
#: it must then be narrower than this (ppm; 16 Hz FWHM at 3 T, below the 0.15 ppm lipid bands).
MAX_LONE_HWHM_PPM = 0.065
#: Coarse search: largest global offset (ppm) looked for; offsets below ``COARSE_MIN_OFFSET_PPM``
#: are left to the search windows of ``REFERENCE_PEAKS`` (±0.08–0.15 ppm around each singlet).
COARSE_MAX_OFFSET_PPM = 0.4
COARSE_MIN_OFFSET_PPM = 0.05
#: Width of the running median removed before the coarse match: at least 0.2 ppm and 30 Hz, i.e.
#: several singlet widths, so that broad lipid/MM bands (FWHM ≥ 0.15 ppm) and the baseline go
#: while the singlets stay.
COARSE_SMOOTH_PPM = 0.2
COARSE_SMOOTH_HZ = 30.0
#: The coarse shift is applied only when the pattern matches clearly worse with no offset (score
#: ratio); an ambiguous match leaves the spectrum to the search windows.
COARSE_MAX_SCORE_AT_ZERO = 0.7
#: Regions (ppm) whose peaks set the metabolite zero-order phase (NAA and tCr singlets).
PHASE_REGIONS_PPM = ((PPM_NAA - 0.1, PPM_NAA + 0.1), (PPM_CR - 0.1, PPM_CR + 0.1))


def find_peak(spec: Spectrum, name: str) -> tuple[float, float]:
    """Position (ppm) and magnitude / noise SD of the reference peak ``name`` (NAA, Cr, water)."""
    _, window = REFERENCE_PEAKS[name]
    pos, height, _ = phased_peak_position(spec, window)
    sd, _ = noise_sd(spec)
    if not np.isfinite(pos):
        return pos, float("nan")
    return pos, float(height / sd) if sd > 0 else float("inf")


SINGLETS = ("NAA", "Cr", "Cho")


def singlet_checks(spec: Spectrum) -> dict[str, tuple[bool, float]]:
    """Which of the NAA, tCr and tCho singlets are usable as references: ``name → (usable, ppm)``.

    A singlet is usable when a local complex-Lorentzian fit converges inside its search window
    (not at the edges, where the tail of a neighbouring large peak would put the maximum) to a
    line with HWHM < ``MAX_HWHM_PPM`` and ≤ ``MAX_WIDTH_RATIO`` × the narrowest such fit among
    the three (≤ ``MAX_LONE_HWHM_PPM`` when it is the only one), with magnitude
    ≥ ``MIN_PEAK_SNR`` × noise SD and ≥ ``MIN_REL_HEIGHT`` × the tallest of the narrow singlets
    (so a large broad lipid band, e.g. in a tumour, neither passes for NAA nor hides tCr and
    tCho).
    """
    ppm, s = zero_filled(spec)
    mag = np.abs(s)
    found = {}
    for name in SINGLETS:
        window = REFERENCE_PEAKS[name][1]
        fit = fit_peak(spec, window)
        margin = 0.1 * (window[1] - window[0])
        if fit.ok and fit.hwhm_ppm < MAX_HWHM_PPM and window[0] + margin <= fit.ppm <= window[1] - margin:
            found[name] = fit
    out = {name: (False, float("nan")) for name in SINGLETS}
    if not found:
        return out
    narrowest = min(f.hwhm_ppm for f in found.values())
    limit = MAX_WIDTH_RATIO * narrowest if len(found) > 1 else MAX_LONE_HWHM_PPM
    heights = {}
    for name, fit in found.items():
        pos, snr = find_peak(spec, name)
        if fit.hwhm_ppm <= limit and np.isfinite(pos) and snr >= MIN_PEAK_SNR:
            _, i = peak_position(ppm, mag, REFERENCE_PEAKS[name][1])
            heights[name] = (float(mag[i]), pos)
        else:
            out[name] = (False, pos if np.isfinite(pos) else fit.ppm)
    if heights:
        tallest = max(h for h, _ in heights.values())
        for name, (h, pos) in heights.items():
            out[name] = (h >= MIN_REL_HEIGHT * tallest, pos)
    return out


def coarse_offset_ppm(spec: Spectrum, max_offset_ppm: float = COARSE_MAX_OFFSET_PPM) -> tuple[float, int, float]:
    """Global frequency offset of the NAA/tCr/tCho singlet pattern (ppm, found − expected).

    The 8× zero-filled magnitude spectrum minus its running median (``COARSE_SMOOTH_PPM`` /
    ``COARSE_SMOOTH_HZ``; removes broad bands and baseline, keeps narrow lines) is sampled at
    2.008, 3.027 and 3.21 ppm + offset for every offset within ±``max_offset_ppm`` on the
    zero-filled grid; the offset maximising the sum of the square roots of the three samples
    (square roots, so that matching all three beats putting one tall singlet on another) wins.

    Returns
    -------
    offset_ppm : float
        Best offset (0.0 when the spectrum has no points there).
    support : int
        How many of the three singlets stand ≥ ``MIN_PEAK_SNR`` × noise SD above the running
        median at that offset (0–3).
    score_at_zero : float
        Match score with no offset relative to the best one (1.0 when the best is 0; close to
        1 when the match cannot tell the two apart).
    """
    targets = np.array([PPM_NAA, PPM_CR, PPM_TCHO])
    ppm, s = zero_filled(spec)
    step = abs(ppm[1] - ppm[0])
    width_ppm = max(COARSE_SMOOTH_PPM, COARSE_SMOOTH_HZ / spec.spectrometer_mhz)
    margin = max_offset_ppm + width_ppm
    m = in_range(ppm, (targets.min() - margin, targets.max() + margin))
    if m.sum() < 8:
        return 0.0, 0, 1.0
    order = np.argsort(ppm[m])
    x, mag = ppm[m][order], np.abs(s[m])[order]
    size = max(3, int(round(width_ppm / step)) | 1)
    excess = np.clip(mag - median_filter(mag, size=size, mode="nearest"), 0.0, None)
    offsets = np.arange(-max_offset_ppm, max_offset_ppm + step / 2, step)
    samples = np.stack([np.interp(t + offsets, x, excess) for t in targets])
    score = np.sqrt(samples).sum(axis=0)
    best = int(np.argmax(score))
    zero = float(np.interp(0.0, offsets, score) / score[best]) if score[best] > 0 else 1.0
    sd, _ = noise_sd(spec)
    support = int(np.sum(samples[:, best] >= MIN_PEAK_SNR * sd)) if np.isfinite(sd) and sd > 0 else 0
    return float(offsets[best]), support, zero


def coarse_reference(spec: Spectrum) -> Spectrum:
    """Move a 1-D metabolite spectrum by its coarse singlet-pattern offset when that is clear.

    Applied only when :func:`coarse_offset_ppm` finds an offset of at least
    ``COARSE_MIN_OFFSET_PPM`` supported by at least two of the three singlets and clearly better
    than no offset (score at zero ≤ ``COARSE_MAX_SCORE_AT_ZERO`` × the best); otherwise the
    spectrum is returned unchanged (no step recorded). Run it before anything that looks in
    fixed ppm windows (water and nuisance-peak removal, :func:`reference_metabolite`).
    """
    offset, support, score_at_zero = coarse_offset_ppm(spec)
    if abs(offset) < COARSE_MIN_OFFSET_PPM or support < 2 or score_at_zero > COARSE_MAX_SCORE_AT_ZERO:
        return spec
    hz = float(offset * spec.spectrometer_mhz)  # moves every resonance from p to p − offset
    details = (f"Coarse frequency correction: the NAA/tCr/tCho singlet pattern (2.008/3.027/3.21 ppm) was found "
               f"{offset:+.3f} ppm off ({support} of 3 singlets there); shifted by {hz:+.2f} Hz before the "
               f"ppm-window steps.")
    params = {"coarse_offset_ppm": round(offset, 5), "singlets_supporting": support, "shift_hz": round(hz, 4)}
    return spec.with_step(shift_hz(spec, hz), StepRecord("Frequency and phase correction", details, params))


def shift_hz(spec: Spectrum, hz: float) -> np.ndarray:
    """FID with every resonance moved by ``hz`` (Hz, stored convention) along axis 0."""
    t = spec.time_s.reshape((-1,) + (1,) * (spec.fid.ndim - 1))
    return spec.fid * np.exp(2j * np.pi * hz * t)


def reference_metabolite(spec: Spectrum, water: Spectrum | None = None, peak: str = "auto") -> Spectrum:
    """Shift a 1-D metabolite spectrum so that NAA (or Cr, or water) is at its reference ppm.

    Parameters
    ----------
    spec : Spectrum
        Averaged metabolite spectrum.
    water : Spectrum or None
        Same data before water removal, used only when the water peak is the last resort.
    peak : {"auto", "NAA", "Cr", "Cho", "water"}
        Force a reference peak; ``"auto"`` tries NAA, Cr, Cho (:func:`singlet_checks`), then
        water, in that order.
    """
    chosen = None
    pos = float("nan")
    tried = []
    if peak == "auto":
        checks = singlet_checks(spec)
        for name in SINGLETS:
            tried.append(name)
            if checks[name][0]:
                chosen, pos = name, checks[name][1]
                break
    elif peak != "water":
        chosen, pos = peak, find_peak(spec, peak)[0]
    if chosen is None:
        src = water if water is not None else spec
        pos, _ = find_peak(src, "water")
        chosen = "water"
        if peak == "auto" and abs(pos - PPM_WATER) > MAX_WATER_FALLBACK_PPM:
            # scanners put water at the centre frequency: a "water" peak this far off is another
            # signal (lipid, artefact), and a wrong shift would be worse than none
            step = StepRecord("Frequency and phase correction",
                              f"No usable reference peak (NAA, Cr, Cho weak or absent; the largest peak near "
                              f"water is at {pos:.2f} ppm); frequency referencing skipped.",
                              {"reference_peak": None, "shift_hz": 0.0})
            return spec.with_step(spec.fid, step)
    target = REFERENCE_PEAKS[chosen][0]
    if not np.isfinite(pos):
        step = StepRecord("Frequency and phase correction",
                          "No reference peak found; frequency referencing skipped.",
                          {"reference_peak": None, "shift_hz": 0.0})
        return spec.with_step(spec.fid, step)
    hz = float(spec.ppm_to_hz(target) - spec.ppm_to_hz(pos))
    failed = [n for n in tried if n != chosen]
    fallback = f" ({', '.join(failed)} absent or weak)" if failed and peak == "auto" else ""
    details = (f"Frequency referenced to the {chosen} peak at {target:.3f} ppm{fallback}: found at "
               f"{pos:.4f} ppm, shifted by {hz:+.2f} Hz.")
    params = {"reference_peak": chosen, "target_ppm": target, "found_ppm": round(pos, 5), "shift_hz": round(hz, 4)}
    return spec.with_step(shift_hz(spec, hz), StepRecord("Frequency and phase correction", details, params))


def phase_metabolite(spec: Spectrum, ppm_ranges=None) -> Spectrum:
    """Zero-order phase a 1-D metabolite spectrum on its NAA and tCr singlets.

    Without ``ppm_ranges``: NAA and tCr when both pass the reference-peak checks (or neither
    of them nor tCho does); otherwise the one that passes plus tCho (a broad lipid band under
    NAA has its own lineshape and would bias the phase).
    """
    if ppm_ranges is None:
        checks = singlet_checks(spec)
        usable = [name for name in ("NAA", "Cr") if checks[name][0]]
        if len(usable) < 2 and checks["Cho"][0]:
            usable.append("Cho")
        ppm_ranges = (PHASE_REGIONS_PPM if len(usable) in (0, 2) and "Cho" not in usable else
                      tuple((REFERENCE_PEAKS[n][0] - 0.1, REFERENCE_PEAKS[n][0] + 0.1) for n in usable))
    phi = peak_phase(spec, ppm_ranges)
    regs = ", ".join(f"{min(r):g}–{max(r):g}" for r in ppm_ranges)
    details = f"Zero-order phase {np.rad2deg(-phi):+.2f}° applied, from the singlet peaks at {regs} ppm."
    params = {"phase0_deg": round(float(np.rad2deg(-phi)), 4), "ppm_ranges": [list(map(float, r)) for r in ppm_ranges]}
    return spec.with_step(spec.fid * np.exp(-1j * phi), StepRecord("Phasing", details, params))


def reference_water(spec: Spectrum) -> Spectrum:
    """Move the water peak of a 1-D water reference to 4.65 ppm and zero-order phase it on itself."""
    pos, _ = find_peak(spec, "water")
    hz = float(spec.ppm_to_hz(PPM_WATER) - spec.ppm_to_hz(pos)) if np.isfinite(pos) else 0.0
    shifted = spec.with_step(shift_hz(spec, hz), StepRecord(
        "Frequency and phase correction",
        f"Water reference: water peak found at {pos:.4f} ppm, shifted by {hz:+.2f} Hz to {PPM_WATER} ppm.",
        {"reference_peak": "water", "target_ppm": PPM_WATER, "found_ppm": round(pos, 5) if np.isfinite(pos) else None,
         "shift_hz": round(hz, 4)}))
    window = REFERENCE_PEAKS["water"][1]
    phi = peak_phase(shifted, (window,))
    return shifted.with_step(shifted.fid * np.exp(-1j * phi), StepRecord(
        "Phasing", f"Water reference zero-order phase {np.rad2deg(-phi):+.2f}° applied, from the water peak.",
        {"phase0_deg": round(float(np.rad2deg(-phi)), 4)}))


__all__ = ["reference_metabolite", "phase_metabolite", "reference_water", "find_peak", "shift_hz",
           "coarse_offset_ppm", "coarse_reference", "REFERENCE_PEAKS", "MIN_PEAK_SNR"]
