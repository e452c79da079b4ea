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

Water reference: the water peak is moved to 4.65 ppm and phased the same way on itself.
"""
from __future__ import annotations

import logging

import numpy as np

from bidsmrs.constants import PPM_CR, PPM_NAA, PPM_WATER
from bidsmrs.preprocess.peaks import fit_peak, noise_sd, peak_phase, peak_position, phased_peak_position, zero_filled
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
           "REFERENCE_PEAKS", "MIN_PEAK_SNR"]
