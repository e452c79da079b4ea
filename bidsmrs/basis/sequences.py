"""Localisation sequences with ideal pulses, and the built-in basis simulation.

Each sequence is a list of events: ``Pulse(flip_deg, phase_deg, order_after)`` and
``Delay(seconds)``; ``order_after`` is the 1H coherence order kept after the pulse (the
crusher-selected pathway, detection at order +1, see :mod:`bidsmrs.basis.density_matrix`).

* PRESS (Bottomley 1987): 90 – TE1/2 – 180 – (TE1+TE2)/2 – 180 – TE2/2 – acquire;
  pathway +1 → −1 → +1.
* STEAM (Frahm 1987): 90 – TE/2 – 90 – TM – 90 – TE/2 – acquire; pathway −1 → 0 → +1
  (zero-quantum coherences during TM are kept: gradients do not dephase them).
  The stimulated echo carries half the magnetisation; the basis is scaled by 2 so that the
  amplitude convention (FID(0) = protons) holds, as a water reference measured with the same
  sequence carries the same factor ½.
* semi-LASER (Scheenen 2008) with ideal refocusing: 90 – d0 – 180 – d1 – 180 – d2 – 180 – d3 –
  180 – d4 – acquire, pathway +1 −1 +1 −1 +1; default ``d = (TE/8, TE/4, TE/4, TE/4, TE/8)``
  (equal inter-pulse spacing; pass ``slaser_delays_s`` for a scanner's exact timing).
* pulse–acquire (``"fid"``): 90 – acquire (tests and the amplitude convention).

Every metabolite is normalised by a reference singlet at the receiver frequency sent through
the same events, so phase and overall scale are sequence independent: a singlet of k protons
has FID(0) = k (real, positive) at any TE.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from bidsmrs.basis.core import Basis
from bidsmrs.basis.density_matrix import (acquired_lines, build_operators, evolve, lines_to_fid,
                                          pulse, select_order, thermal_state)
from bidsmrs.basis.spin_systems import DEFAULT_METABOLITES, SpinGroup, get_molecule

__all__ = ["Pulse", "Delay", "press_events", "steam_events", "slaser_events",
           "pulse_acquire_events", "sequence_events", "simulate_group", "simulate_basis",
           "SEQUENCES", "SIMULATION_VERSION"]

log = logging.getLogger(__name__)

#: Bump when simulated output changes (part of the cache key in :mod:`bidsmrs.basis.select`).
SIMULATION_VERSION = "1"

SEQUENCES = ("press", "steam", "slaser", "fid")


@dataclass(frozen=True)
class Pulse:
    """Ideal pulse: flip angle (deg), phase (deg), coherence order kept afterwards."""

    flip_deg: float
    phase_deg: float = 0.0
    order_after: int = 1


@dataclass(frozen=True)
class Delay:
    """Free precession (s)."""

    seconds: float


def _check_nonneg(**kw):
    for k, v in kw.items():
        if v is None or not np.isfinite(v) or v < 0:
            raise ValueError(f"{k} must be a non-negative number of seconds, got {v!r}")


def press_events(te1_s: float, te2_s: float) -> list:
    """PRESS with ideal pulses (TE = TE1 + TE2)."""
    _check_nonneg(te1_s=te1_s, te2_s=te2_s)
    return [Pulse(90, 90, +1), Delay(te1_s / 2), Pulse(180, 0, -1),
            Delay((te1_s + te2_s) / 2), Pulse(180, 0, +1), Delay(te2_s / 2)]


def steam_events(echo_time_s: float, mixing_time_s: float) -> list:
    """STEAM with ideal pulses."""
    _check_nonneg(echo_time_s=echo_time_s, mixing_time_s=mixing_time_s)
    return [Pulse(90, 90, -1), Delay(echo_time_s / 2), Pulse(90, 90, 0), Delay(mixing_time_s),
            Pulse(90, 90, +1), Delay(echo_time_s / 2)]


def slaser_events(echo_time_s: float, delays_s: Sequence[float] | None = None) -> list:
    """semi-LASER with four ideal refocusing pulses (delays d0..d4, Σ = TE)."""
    if delays_s is None:
        _check_nonneg(echo_time_s=echo_time_s)
        te = echo_time_s
        delays_s = (te / 8, te / 4, te / 4, te / 4, te / 8)
    if len(delays_s) != 5:
        raise ValueError("semi-LASER needs 5 delays (excitation→180, 3 inter-pulse, 180→echo)")
    d = [float(x) for x in delays_s]
    _check_nonneg(**{f"d{i}": x for i, x in enumerate(d)})
    if abs(d[0] - d[1] + d[2] - d[3] + d[4]) > 1e-9:
        raise ValueError(f"semi-LASER delays {d} do not form an echo (d0−d1+d2−d3+d4 ≠ 0)")
    ev: list = [Pulse(90, 90, +1), Delay(d[0])]
    order = +1
    for k in range(4):
        order = -order
        ev += [Pulse(180, 0, order), Delay(d[k + 1])]
    return ev


def pulse_acquire_events() -> list:
    return [Pulse(90, 90, +1)]


def sequence_events(sequence: str, *, echo_time_s: float | None = None,
                    te1_s: float | None = None, te2_s: float | None = None,
                    mixing_time_s: float | None = None,
                    slaser_delays_s: Sequence[float] | None = None) -> list:
    """Events of a named sequence (``press``, ``steam``, ``slaser``, ``fid``)."""
    seq = sequence.lower().replace("-", "").replace("_", "")
    if seq == "press":
        if te1_s is None and te2_s is None:
            raise ValueError("PRESS needs te1_s and te2_s (or use bidsmrs.basis.select)")
        if te1_s is None:
            te1_s = echo_time_s - te2_s
        if te2_s is None:
            te2_s = echo_time_s - te1_s
        if echo_time_s is not None and abs(te1_s + te2_s - echo_time_s) > 1e-6:
            raise ValueError(f"TE1 + TE2 = {te1_s + te2_s} s differs from TE = {echo_time_s} s")
        return press_events(te1_s, te2_s)
    if seq == "steam":
        if mixing_time_s is None:
            raise ValueError("STEAM needs mixing_time_s")
        return steam_events(echo_time_s, mixing_time_s)
    if seq in ("slaser", "semilaser", "laser"):
        return slaser_events(echo_time_s, slaser_delays_s)
    if seq in ("fid", "pulseacquire"):
        return pulse_acquire_events()
    raise ValueError(f"unknown sequence {sequence!r}; known: {', '.join(SEQUENCES)}")


def simulate_group(group: SpinGroup, events: Iterable, spectrometer_mhz: float,
                   ppm_centre: float = 4.65) -> tuple[np.ndarray, np.ndarray]:
    """Lines ``(amplitudes, frequencies_hz)`` of one spin group after ``events`` (unnormalised)."""
    ops = build_operators(group, spectrometer_mhz, ppm_centre)
    rho = thermal_state(ops)
    for ev in events:
        if isinstance(ev, Pulse):
            rho = select_order(pulse(rho, ops, ev.flip_deg, ev.phase_deg), ops, ev.order_after)
        elif isinstance(ev, Delay):
            rho = evolve(rho, ops, ev.seconds)
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown event {ev!r}")
    return acquired_lines(rho, ops)


def _reference_amplitude(events, spectrometer_mhz, ppm_centre) -> complex:
    amps, _ = simulate_group(SpinGroup((ppm_centre,)), events, spectrometer_mhz, ppm_centre)
    ref = complex(amps.sum())
    if abs(ref) < 1e-12:
        raise ValueError("the sequence leaves no signal on the selected coherence pathway")
    return ref


def simulate_basis(*, sequence: str, spectrometer_mhz: float, dwell_s: float, n_points: int,
                   echo_time_s: float | None = None, te1_s: float | None = None,
                   te2_s: float | None = None, mixing_time_s: float | None = None,
                   metabolites: Sequence[str] | None = None, nucleus: str = "1H",
                   ppm_centre: float = 4.65, lorentz_hz: float = 0.0,
                   slaser_delays_s: Sequence[float] | None = None) -> Basis:
    """Simulate a metabolite basis with ideal pulses (density matrix, strong coupling).

    Parameters
    ----------
    sequence : {"press", "steam", "slaser", "fid"}
    spectrometer_mhz : float
        1H frequency (MHz).
    dwell_s, n_points : float, int
        Time grid of the output FIDs.
    echo_time_s : float
        TE (s); for PRESS ``te1_s + te2_s`` must equal it when both are given.
    te1_s, te2_s : float, optional
        PRESS sub-echo times (s).
    mixing_time_s : float, optional
        STEAM TM (s).
    metabolites : sequence of str, optional
        Names of :mod:`bidsmrs.basis.spin_systems` (default: DESIGN.md §5.2 list).
    nucleus : str
        Only ``"1H"`` is supported.
    ppm_centre : float
        Chemical shift at 0 Hz (ppm).
    lorentz_hz : float
        Optional Lorentzian FWHM (Hz) applied to every FID; default 0 (no broadening).
    slaser_delays_s : sequence of 5 floats, optional
        Exact semi-LASER delays.

    Returns
    -------
    Basis
        Stored NIfTI-MRS convention; one molecule per column (FID(0) of a singlet = protons);
        ``meta`` holds the sequence, timings and proton counts.
    """
    if nucleus != "1H":
        raise ValueError(f"only 1H basis simulation is implemented, not {nucleus!r}")
    if n_points <= 0 or dwell_s <= 0 or spectrometer_mhz <= 0:
        raise ValueError("n_points, dwell_s and spectrometer_mhz must be positive")
    events = sequence_events(sequence, echo_time_s=echo_time_s, te1_s=te1_s, te2_s=te2_s,
                             mixing_time_s=mixing_time_s, slaser_delays_s=slaser_delays_s)
    names = tuple(DEFAULT_METABOLITES if metabolites is None else metabolites)
    ref = _reference_amplitude(events, spectrometer_mhz, ppm_centre)
    fids = np.zeros((n_points, len(names)), complex)
    protons = {}
    for k, name in enumerate(names):
        mol = get_molecule(name)
        amps_all, freqs_all = [], []
        for group in mol.groups:
            amps, freqs = simulate_group(group, events, spectrometer_mhz, ppm_centre)
            amps_all.append(amps * group.scale / ref)
            freqs_all.append(freqs)
        fids[:, k] = lines_to_fid(np.concatenate(amps_all), np.concatenate(freqs_all), n_points,
                                  dwell_s, lorentz_hz)
        protons[name] = mol.n_protons
    seq = sequence.lower()
    meta = {"source": "simulated", "simulator": "bidsmrs.basis.sequences",
            "simulation_version": SIMULATION_VERSION, "sequence": seq,
            "echo_time_s": echo_time_s, "te1_s": te1_s, "te2_s": te2_s,
            "mixing_time_s": mixing_time_s, "pulses": "ideal", "lorentz_hz": lorentz_hz,
            "slaser_delays_s": None if slaser_delays_s is None else list(slaser_delays_s),
            "n_protons": protons,
            "spin_systems": "Govindaraju 2000 NMR Biomed 13:129 (bidsmrs.basis.spin_systems)"}
    basis = Basis(names=names, fids=fids, dwell_s=float(dwell_s),
                  spectrometer_mhz=float(spectrometer_mhz), ppm_centre=ppm_centre,
                  is_macromolecule=(False,) * len(names), meta=meta)
    log.debug("simulated %d metabolites for %s", len(names), seq)
    return basis


def _replace(basis: Basis, **kw) -> Basis:  # small helper for callers
    return dataclasses.replace(basis, **kw)
