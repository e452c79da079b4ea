"""Eddy-current correction (Klose 1990, MRM 14:26).

The unsuppressed water reference, acquired with the same gradients, carries the
time-dependent phase ``φ(t)`` that eddy currents add to every resonance. Subtracting the
reference's unwrapped phase point by point from the metabolite FID (``x(t)·e^{−iφ(t)}``)
removes it. The frequency at which water belongs, 4.65 ppm on the reference's own ppm axis
(``SpecFreqChemShift``), is put back (``x(t)·e^{−i(φ(t) − 2π·f_water·t)}``), so that the
reference itself ends as a positive absorption line at 4.65 ppm: the water's frequency error
and zero-order phase are removed, but data recorded with the transmitter away from water
(e.g. centred on the metabolites at 2.0–3.0 ppm) keep their ppm scale. With the usual
water-centred data (``f_water`` = 0 Hz) this is Klose's correction exactly.

Where the reference's magnitude falls below ``SNR_FLOOR`` times its noise SD the phase is
noise; from there on the phase is continued linearly (the water's frequency and phase
fitted on the last quarter of the reliable points, residuals weighted by the reference
magnitude), as is the phase beyond the reference's last point when the reference is shorter
than the data. The reference's noise SD comes from first differences of its last quarter.
"""
from __future__ import annotations

import logging

import numpy as np

from bidsmrs.constants import PPM_WATER
from bidsmrs.spectrum import Spectrum, StepRecord

logger = logging.getLogger(__name__)

#: Reference magnitude / noise SD below which its phase is no longer used point by point.
SNR_FLOOR = 10.0
#: Fraction of the FID (its end) used for the reference's noise SD (from first differences).
_NOISE_TAIL = 0.25


def _one_d(spec: Spectrum) -> np.ndarray:
    fid = spec.fid
    while fid.ndim > 1:
        fid = fid.mean(axis=-1)
    return fid


def eddy_current_phase(reference: Spectrum, n_points: int) -> tuple[np.ndarray, int]:
    """Phase (rad) to subtract, on ``n_points`` samples of the reference's dwell.

    Returns the phase and the number of points where it is taken point by point (the rest is
    the linear continuation).
    """
    ref = _one_d(reference)
    n_ref = ref.shape[0]
    tail = ref[int(n_ref * (1 - _NOISE_TAIL)):]
    # first differences remove the slowly varying signal left in the tail
    sd = np.sqrt(np.mean(np.abs(np.diff(tail)) ** 2) / 4.0) if tail.size > 2 else 0.0
    mag = np.abs(ref)
    below = np.flatnonzero(mag <= SNR_FLOOR * sd) if sd > 0 else np.flatnonzero(mag == 0)
    n_good = int(below[0]) if below.size else n_ref
    n_good = max(n_good, min(n_ref, 2))
    phase_good = np.unwrap(np.angle(ref[:n_good]))
    phase = np.empty(n_points)
    k = min(n_good, n_points)
    phase[:k] = phase_good[:k]
    if n_points > n_good:
        seg = np.arange(n_good - max(8, n_good // 4), n_good) if n_good > 8 else np.arange(n_good)
        if seg.size >= 2:  # phase noise ∝ 1/|ref|: weight the residuals by |ref|
            slope, icpt = np.polyfit(seg, phase_good[seg], 1, w=mag[seg])
        else:
            slope, icpt = 0.0, phase_good[-1]
        rest = np.arange(n_good, n_points)
        phase[n_good:] = icpt + slope * rest
    return phase, k


def eddy_current_correct(spec: Spectrum, reference: Spectrum, role: str = "metabolite") -> Spectrum:
    """Remove the reference's phase evolution from every FID of ``spec`` (any dims).

    Parameters
    ----------
    spec : Spectrum
        Data to correct (coil-combined; transients may still be present).
    reference : Spectrum
        Coil-combined water reference; remaining dimensions are averaged.
    role : str
        Name used in the step details (``"metabolite"``, ``"water reference"``).

    Raises
    ------
    ValueError
        When the reference's dwell time differs from the data's (the caller decides to skip).
    """
    if not np.isclose(reference.dwell_s, spec.dwell_s, rtol=1e-6):
        raise ValueError(f"reference dwell {reference.dwell_s:g} s differs from data dwell {spec.dwell_s:g} s")
    n = spec.n_points
    phase, k = eddy_current_phase(reference, n)
    # 0 Hz when the reference is centred on water; only 1H references have water at 4.65 ppm
    water_hz = float(reference.ppm_to_hz(PPM_WATER)) if reference.nucleus == "1H" else 0.0
    keep = 2 * np.pi * water_hz * np.arange(n) * spec.dwell_s
    corr = np.exp(-1j * (phase - keep)).reshape((n,) + (1,) * (spec.fid.ndim - 1))
    n_ref = reference.n_points
    extra = []
    if k < n:
        extra.append(f"point by point over the first {k} points, linear continuation beyond "
                     f"(reference below {SNR_FLOOR:g}×noise or shorter)")
    if n_ref != n:
        extra.append(f"reference has {n_ref} points, data {n}")
    if water_hz != 0.0:
        extra.append(f"its water frequency kept at {PPM_WATER} ppm, {water_hz:+.1f} Hz from the reference's "
                     f"centre at {reference.ppm_centre:g} ppm")
    details = (f"Eddy-current correction (Klose 1990) of the {role}: the unwrapped phase of the water "
               f"reference was subtracted point by point" + (" (" + "; ".join(extra) + ")" if extra else "")
               + ".")
    params = {"reference_points": int(n_ref), "points_point_by_point": int(k), "snr_floor": SNR_FLOOR,
              "water_frequency_kept_hz": round(water_hz, 4)}
    return spec.with_step(spec.fid * corr, StepRecord("Eddy current correction", details, params))


__all__ = ["eddy_current_correct", "eddy_current_phase", "SNR_FLOOR"]
