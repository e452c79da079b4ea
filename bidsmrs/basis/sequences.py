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
  LASER (Garwood & DelaBarre 2001): the same with six refocusing pulses (``"laser"``).
* pulse–acquire (``"fid"``): 90 – acquire (tests and the amplitude convention).

Every metabolite is normalised by a reference singlet at the receiver frequency sent through
the same events, so phase and overall scale are sequence independent: a singlet of k protons
has FID(0) = k (real, positive) at any TE.

Shaped refocusing pulses (``refocusing=PulseShape(...)``, PRESS and (semi-)LASER): each
refocusing pulse (or adiabatic pair) selects a slice along its own direction; the signal is
averaged over ``n_positions`` positions spanning 1.6 slice thicknesses per direction (the
transition bands included). Because the signal is linear in ρ, averaging after each
direction is exact and costs ``n_positions`` instead of ``n_positions²`` propagations. A
spin's offset during the pulse is its chemical shift from the pulse carrier plus
``position × bandwidth`` (slice-select gradient), so chemical-shift displacement and imperfect
flip angles are modelled; J coupling during the pulse is neglected (per-spin propagators,
tensor product), as in fast simulators; delays are centre-to-centre. Excitation stays ideal.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from bidsmrs.basis.core import Basis
from bidsmrs.basis.density_matrix import (acquired_lines, build_operators, evolve, lines_to_fid,
                                          pulse, rotate_group, select_order,
                                          single_spin_propagators, thermal_state)
from bidsmrs.basis.spin_systems import DEFAULT_METABOLITES, SpinGroup, get_molecule

__all__ = ["Pulse", "Delay", "PulseShape", "ShapedPulse", "SpatialAverage", "press_events",
           "steam_events", "slaser_events",
           "pulse_acquire_events", "sequence_events", "simulate_group", "simulate_basis",
           "SEQUENCES", "SIMULATION_VERSION"]

log = logging.getLogger(__name__)

#: Bump when simulated output changes (part of the cache key in :mod:`bidsmrs.basis.select`).
SIMULATION_VERSION = "1"

SEQUENCES = ("press", "steam", "slaser", "laser", "fid")


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


@dataclass(frozen=True)
class PulseShape:
    """A shaped refocusing pulse (slice-selective; J coupling neglected during it).

    Parameters
    ----------
    kind : {"sinc", "hs1"}
        ``"sinc"``: Hamming-windowed sinc, time-bandwidth product ``duration·bandwidth``,
        scaled to 180° on resonance (a conventional PRESS refocusing pulse).
        ``"hs1"``: hyperbolic-secant adiabatic full passage (Silver 1984 / Garwood &
        DelaBarre 2001), β = 5.3, frequency sweep ±bandwidth/2, peak B1 at adiabaticity
        factor 5 (semi-LASER/LASER pulses, used in pairs).
    duration_s : float
        Pulse length (s).
    bandwidth_hz : float
        Slice-profile bandwidth (Hz); the slice thickness corresponds to this bandwidth.
    n_steps : int
        Piecewise-constant steps.
    centre_ppm : float or None
        Carrier of the pulse (ppm); None = the receiver frequency (``ppm_centre``).
    """

    kind: str = "sinc"
    duration_s: float = 5e-3
    bandwidth_hz: float = 1200.0
    n_steps: int = 200
    centre_ppm: float | None = None

    def waveform(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(b1_hz, phase_rad, sweep_hz, dt_s)`` of the pulse."""
        n = int(self.n_steps)
        dt = self.duration_s / n
        tau = (np.arange(n) + 0.5) / n - 0.5  # −½ … ½
        if self.kind == "sinc":
            tbw = self.duration_s * self.bandwidth_hz
            shape = np.sinc(tbw * tau) * (0.54 + 0.46 * np.cos(2 * np.pi * tau))
            b1 = shape * 0.5 / (shape.sum() * dt)  # Σ 2π·b1·dt = π (180°)
            return b1, np.zeros(n), np.zeros(n), dt
        if self.kind == "hs1":
            beta = 5.3
            x = 2 * tau
            sweep = 0.5 * self.bandwidth_hz * np.tanh(beta * x)
            rate = 2 * np.pi * self.bandwidth_hz * beta / self.duration_s  # |dω/dt| at centre
            b1_max = np.sqrt(5.0 * rate) / (2 * np.pi)
            return b1_max / np.cosh(beta * x), np.zeros(n), sweep, dt
        raise ValueError(f"unknown pulse kind {self.kind!r}; use 'sinc' or 'hs1'")


@dataclass(frozen=True)
class ShapedPulse:
    """A shaped pulse inside a :class:`SpatialAverage` block (order kept afterwards)."""

    shape: PulseShape
    order_after: int


@dataclass(frozen=True)
class SpatialAverage:
    """Events run at each position across one slice direction, then averaged.

    ``positions`` are in units of the slice thickness (0 = slice centre); a spin at
    position x sees an extra offset ``x · bandwidth_hz`` during the block's shaped pulses
    (slice-select gradient). Averaging is exact for the signal because it is linear in ρ.
    """

    events: tuple
    positions: tuple[float, ...]


def _positions(n: int, extent: float) -> tuple[float, ...]:
    return tuple(np.linspace(-extent / 2, extent / 2, int(n)))


def _check_nonneg(**kw):
    for k, v in kw.items():
        if v is None or not np.isfinite(v) or v < 0:
            raise ValueError(f"{k} must be a non-negative number of seconds, got {v!r}")


def press_events(te1_s: float, te2_s: float, refocusing: PulseShape | None = None,
                 n_positions: int = 41, extent: float = 1.6) -> list:
    """PRESS (TE = TE1 + TE2) with ideal pulses, or shaped slice-selective refocusing.

    With ``refocusing`` the two 180° pulses are shaped and spatially resolved along two
    directions (``n_positions`` across ``extent`` slice thicknesses each); delays are
    centre-to-centre, i.e. shortened by the pulse half-durations.
    """
    _check_nonneg(te1_s=te1_s, te2_s=te2_s)
    if refocusing is None:
        return [Pulse(90, 90, +1), Delay(te1_s / 2), Pulse(180, 0, -1),
                Delay((te1_s + te2_s) / 2), Pulse(180, 0, +1), Delay(te2_s / 2)]
    half = refocusing.duration_s / 2
    d = [te1_s / 2 - half, (te1_s + te2_s) / 2 - 2 * half, te2_s / 2 - half]
    if min(d) < 0:
        raise ValueError(f"refocusing pulses of {refocusing.duration_s} s do not fit TE1/TE2")
    pos = _positions(n_positions, extent)
    return [Pulse(90, 90, +1), Delay(d[0]),
            SpatialAverage((ShapedPulse(refocusing, -1),), pos), Delay(d[1]),
            SpatialAverage((ShapedPulse(refocusing, +1),), pos), Delay(d[2])]


def steam_events(echo_time_s: float, mixing_time_s: float) -> list:
    """STEAM with ideal pulses."""
    _check_nonneg(echo_time_s=echo_time_s, mixing_time_s=mixing_time_s)
    return [Pulse(90, 90, -1), Delay(echo_time_s / 2), Pulse(90, 90, 0), Delay(mixing_time_s),
            Pulse(90, 90, +1), Delay(echo_time_s / 2)]


def slaser_events(echo_time_s: float, delays_s: Sequence[float] | None = None,
                  n_refocus: int = 4, refocusing: PulseShape | None = None,
                  n_positions: int = 41, extent: float = 1.6) -> list:
    """(semi-)LASER with ``n_refocus`` ideal refocusing pulses (4 = semi-LASER, 6 = LASER).

    ``delays_s`` = (excitation→1st 180, inter-pulse delays..., last 180→echo), length
    ``n_refocus + 1``, summing to TE; default equal spacing TE/n with half delays at both ends.
    """
    if delays_s is None:
        _check_nonneg(echo_time_s=echo_time_s)
        step = echo_time_s / n_refocus
        delays_s = [step / 2] + [step] * (n_refocus - 1) + [step / 2]
    d = [float(x) for x in delays_s]
    if len(d) < 2 or len(d) % 2 == 0:
        raise ValueError("(semi-)LASER needs an even number of refocusing pulses "
                         "(an odd number of delays)")
    _check_nonneg(**{f"d{i}": x for i, x in enumerate(d)})
    if abs(sum(x * (-1) ** i for i, x in enumerate(d))) > 1e-9:
        raise ValueError(f"(semi-)LASER delays {d} do not form an echo (d0−d1+d2−… ≠ 0)")
    if refocusing is None:
        ev: list = [Pulse(90, 90, +1), Delay(d[0])]
        order = +1
        for k in range(len(d) - 1):
            order = -order
            ev += [Pulse(180, 0, order), Delay(d[k + 1])]
        return ev
    # shaped: pairs of adiabatic pulses share one slice direction (their phases cancel)
    n_pulses = len(d) - 1
    if n_pulses % 2:
        raise ValueError("shaped (semi-)LASER needs pairs of refocusing pulses")
    t = refocusing.duration_s
    inner = [d[0] - t / 2] + [x - t for x in d[1:-1]] + [d[-1] - t / 2]
    if min(inner) < 0:
        raise ValueError(f"refocusing pulses of {t} s do not fit the (semi-)LASER delays {d}")
    pos = _positions(n_positions, extent)
    ev = [Pulse(90, 90, +1), Delay(inner[0])]
    for k in range(0, n_pulses, 2):
        ev.append(SpatialAverage((ShapedPulse(refocusing, -1), Delay(inner[k + 1]),
                                  ShapedPulse(refocusing, +1)), pos))
        ev.append(Delay(inner[k + 2]))
    return ev


def pulse_acquire_events() -> list:
    return [Pulse(90, 90, +1)]


def sequence_events(sequence: str, *, echo_time_s: float | None = None,
                    te1_s: float | None = None, te2_s: float | None = None,
                    mixing_time_s: float | None = None,
                    slaser_delays_s: Sequence[float] | None = None,
                    refocusing: PulseShape | None = None, n_positions: int = 41) -> list:
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
        return press_events(te1_s, te2_s, refocusing, n_positions)
    if seq == "steam":
        if refocusing is not None:
            raise ValueError("shaped pulses are implemented for PRESS and (semi-)LASER only")
        if mixing_time_s is None:
            raise ValueError("STEAM needs mixing_time_s")
        return steam_events(echo_time_s, mixing_time_s)
    if seq in ("slaser", "semilaser"):
        return slaser_events(echo_time_s, slaser_delays_s, 4, refocusing, n_positions)
    if seq == "laser":
        return slaser_events(echo_time_s, slaser_delays_s, 6, refocusing, n_positions)
    if seq in ("fid", "pulseacquire"):
        return pulse_acquire_events()
    raise ValueError(f"unknown sequence {sequence!r}; known: {', '.join(SEQUENCES)}")


def simulate_group(group: SpinGroup, events: Iterable, spectrometer_mhz: float,
                   ppm_centre: float = 4.65) -> tuple[np.ndarray, np.ndarray]:
    """Lines ``(amplitudes, frequencies_hz)`` of one spin group after ``events`` (unnormalised)."""
    ops = build_operators(group, spectrometer_mhz, ppm_centre)
    rho = _run(thermal_state(ops), ops, events, spectrometer_mhz, ppm_centre, None)
    return acquired_lines(rho, ops)


def _run(rho, ops, events, spectrometer_mhz, ppm_centre, props=None):
    """Apply ``events``; ``props`` maps a ShapedPulse's index in ``events`` to its per-spin
    propagators at the current position (set by the enclosing SpatialAverage)."""
    for i, ev in enumerate(events):
        if isinstance(ev, Pulse):
            rho = select_order(pulse(rho, ops, ev.flip_deg, ev.phase_deg), ops, ev.order_after)
        elif isinstance(ev, Delay):
            rho = evolve(rho, ops, ev.seconds)
        elif isinstance(ev, SpatialAverage):
            pos = np.asarray(ev.positions, float)
            # propagators of every shaped pulse at every position, vectorised: (P, S, 2, 2)
            all_props = {}
            for j, sub in enumerate(ev.events):
                if isinstance(sub, ShapedPulse):
                    shp = sub.shape
                    carrier = (0.0 if shp.centre_ppm is None
                               else (shp.centre_ppm - ppm_centre) * spectrometer_mhz)
                    offsets = (ops.offsets_hz[None, :] - carrier
                               + pos[:, None] * shp.bandwidth_hz)
                    b1, ph, sw, dt = _waveform(shp)
                    all_props[j] = single_spin_propagators(offsets, b1, ph, sw, dt)
            acc = np.zeros_like(rho)
            for k in range(pos.size):
                acc += _run(rho, ops, ev.events, spectrometer_mhz, ppm_centre,
                            {j: v[k] for j, v in all_props.items()})
            rho = acc / pos.size
        elif isinstance(ev, ShapedPulse):
            if props is None or i not in props:
                raise ValueError("a ShapedPulse must sit inside a SpatialAverage block")
            rho = select_order(rotate_group(rho, ops, props[i]), ops, ev.order_after)
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown event {ev!r}")
    return rho


@lru_cache(maxsize=32)
def _waveform(shape: PulseShape):
    return shape.waveform()


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
                   slaser_delays_s: Sequence[float] | None = None,
                   refocusing: PulseShape | None = None, n_positions: int = 41) -> Basis:
    """Simulate a metabolite basis (density matrix, strong coupling).

    Ideal pulses by default; with ``refocusing`` the PRESS / (semi-)LASER refocusing pulses
    are shaped and slice-selective, and the signal is averaged over ``n_positions`` positions
    per direction (chemical-shift displacement and imperfect refocusing included).

    Parameters
    ----------
    sequence : {"press", "steam", "slaser", "laser", "fid"}
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
    slaser_delays_s : sequence of floats, optional
        Exact (semi-)LASER delays (5 for semi-LASER, 7 for LASER).
    refocusing : PulseShape, optional
        Shaped refocusing pulse (PRESS, semi-LASER, LASER); None = ideal pulses.
    n_positions : int
        Spatial positions per direction for shaped pulses.

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
                             mixing_time_s=mixing_time_s, slaser_delays_s=slaser_delays_s,
                             refocusing=refocusing, n_positions=n_positions)
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
            "mixing_time_s": mixing_time_s, "lorentz_hz": lorentz_hz,
            "pulses": "ideal" if refocusing is None else {
                "refocusing": dataclasses.asdict(refocusing), "n_positions": n_positions},
            "slaser_delays_s": None if slaser_delays_s is None else list(slaser_delays_s),
            "n_protons": protons,
            "spin_systems": "Govindaraju 2000 NMR Biomed 13:129 (bidsmrs.basis.spin_systems)"}
    basis = Basis(names=names, fids=fids, dwell_s=float(dwell_s),
                  spectrometer_mhz=float(spectrometer_mhz), ppm_centre=ppm_centre,
                  is_macromolecule=(False,) * len(names), meta=meta)
    log.debug("simulated %d metabolites for %s", len(names), seq)
    return basis

