"""Choose, simulate and cache the built-in basis for a dataset's acquisition.

Sequence: the explicit ``sequence`` argument (``--sequence``), else the sidecar's
``PulseSequenceType``, else its ``SequenceName`` (Siemens ``svs_se`` = PRESS, ``svs_st`` =
STEAM, GE ``PROBE-P``/``PROBE-S``, ``*slaser*``), else the ``acq`` entity label (``press``/``steam``/``slaser``/``laser``,
the labels BIDS-MRS suggests). Edited or other sequences (MEGA, HERMES, SPECIAL, ...) are
refused with an :class:`~bidsmrs.errors.InputError` naming ``--sequence``/``--basis``.

PRESS sub-echo times: ``te1_s``/``te2_s`` arguments (``--te1``/``--te2``; one of them is
enough, the other is TE minus it), else a two-element sidecar ``PulseSequenceTiming`` that sums
to TE, else the **documented default split TE1 = TE2 = TE/2** (symmetric PRESS; logged as a
warning and recorded in ``meta["te_split"]``). STEAM TM: ``mixing_time_s`` (``--tm``) or sidecar
``MixingTime``; there is no default (an ``InputError`` names ``--tm``). semi-LASER: equal
inter-pulse spacing, or five delays in ``PulseSequenceTiming``; LASER (3 pairs of AFP pulses)
is simulated with six ideal refocusing pulses, equally spaced.

Cache: ``cache_dir/bidsmrs-basis-<sha256[:20]>.npz`` keyed by every parameter, the
simulation version, the spin-system table and the bidsmrs version; written atomically (temp
file in the same directory + ``os.replace``) so concurrent processes are safe; a corrupt
cache file is ignored and rewritten.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bidsmrs.basis.core import Basis
from bidsmrs.basis.macromolecules import MM_COMPONENTS, with_macromolecules
from bidsmrs.basis.sequences import SIMULATION_VERSION, PulseShape, simulate_basis
from bidsmrs.basis.spin_systems import DEFAULT_METABOLITES, SPIN_SYSTEMS
from bidsmrs.errors import InputError

__all__ = ["default_basis", "detect_sequence", "resolve_timing", "cache_key"]

log = logging.getLogger(__name__)

_REFUSED = ("mega", "hermes", "hercules", "special", "mqc", "lcosy", "jpress", "cosy", "edit")


def _norm(text: Any) -> str:
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


def _classify(text: Any) -> str | None:
    """Map a sequence description to press/steam/slaser/laser, 'refused:<x>' or None."""
    if text is None:
        return None
    if isinstance(text, (list, tuple)):
        text = " ".join(map(str, text))
    t = _norm(text)
    if not t:
        return None
    for bad in _REFUSED:
        if bad in t:
            return f"refused:{text}"
    if "semilaser" in t or "slaser" in t:
        return "slaser"
    if "laser" in t:
        return "laser"
    if "steam" in t or "svsst" in t or "stimulated" in t or t.startswith("probes"):
        return "steam"
    if "press" in t or "svsse" in t or "pointresolved" in t or t.startswith("probep"):
        return "press"
    return None


def detect_sequence(sequence: str | None = None, sidecar: Mapping[str, Any] | None = None,
                    entities: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """The sequence to simulate and where it came from.

    Returns
    -------
    (sequence, source)
        ``sequence`` in {"press", "steam", "slaser", "laser"}; ``source`` e.g.
        ``"PulseSequenceType"``.

    Raises
    ------
    InputError
        Nothing identifies a supported sequence (message names ``--sequence``).
    """
    sidecar = sidecar or {}
    entities = entities or {}
    acq = entities.get("acquisition", entities.get("acq"))
    candidates = [("--sequence", sequence),
                  ("PulseSequenceType", sidecar.get("PulseSequenceType")),
                  ("SequenceName", sidecar.get("SequenceName")),
                  ("acq entity", acq)]
    seen = []
    for source, value in candidates:
        kind = _classify(value)
        if value is not None:
            seen.append(f"{source}={value!r}")
        if kind is None:
            if source == "--sequence" and value is not None:
                raise InputError(f"unknown --sequence {value!r}; use press, steam, slaser or laser")
            continue
        if kind.startswith("refused:"):
            raise InputError(f"{source} {value!r} is an edited/unsupported sequence for the "
                             "built-in basis; give --basis FILE (or --sequence press|steam|slaser)")
        return kind, source
    what = "; ".join(seen) if seen else "no PulseSequenceType, SequenceName or acq label"
    raise InputError(f"cannot tell the localisation sequence ({what}): set --sequence "
                     "press|steam|slaser or give --basis FILE")


def resolve_timing(sequence: str, echo_time_s: float, *, te1_s=None, te2_s=None,
                   mixing_time_s=None, sidecar: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Sub-echo times / mixing time / delays for ``sequence`` (module docstring)."""
    sidecar = sidecar or {}
    if echo_time_s is None or not np.isfinite(echo_time_s) or echo_time_s <= 0:
        raise InputError(f"echo time {echo_time_s!r} unknown or not positive: the built-in basis "
                         "needs EchoTime (s) in the sidecar")
    if echo_time_s > 1.0:
        raise InputError(f"EchoTime {echo_time_s} looks like milliseconds; BIDS uses seconds")
    timing = sidecar.get("PulseSequenceTiming")
    if isinstance(timing, (int, float)):
        timing = [timing]
    out: dict[str, Any] = {"echo_time_s": float(echo_time_s)}
    if sequence == "press":
        if te1_s is None and te2_s is None and isinstance(timing, (list, tuple)) and len(timing) == 2 \
                and abs(sum(timing) - echo_time_s) < 1e-4:
            te1_s, te2_s = float(timing[0]), float(timing[1])
            out["te_split"] = "PulseSequenceTiming"
        elif te1_s is None and te2_s is None:
            te1_s = te2_s = echo_time_s / 2
            out["te_split"] = "default-symmetric"
            log.warning("PRESS TE1/TE2 unknown: simulating the symmetric split TE1 = TE2 = %.1f ms "
                        "(set --te1/--te2 for your scanner)", 1e3 * te1_s)
        else:
            out["te_split"] = "given"
            te1_s = echo_time_s - te2_s if te1_s is None else te1_s
            te2_s = echo_time_s - te1_s if te2_s is None else te2_s
        if te1_s < 0 or te2_s < 0 or abs(te1_s + te2_s - echo_time_s) > 1e-4:
            raise InputError(f"--te1 {te1_s} s + --te2 {te2_s} s must equal TE {echo_time_s} s")
        out.update(te1_s=float(te1_s), te2_s=float(te2_s))
    elif sequence == "steam":
        tm = mixing_time_s if mixing_time_s is not None else sidecar.get("MixingTime")
        if isinstance(tm, (list, tuple)):
            tm = tm[0] if tm else None
        if tm is not None and not isinstance(tm, (int, float)):
            raise InputError(f"MixingTime {tm!r} is not a number of seconds: set --tm")
        if tm is None:
            raise InputError("STEAM mixing time unknown (no MixingTime in the sidecar): set --tm "
                             "SECONDS")
        if tm < 0 or tm > 1.0:
            raise InputError(f"STEAM mixing time {tm} s is implausible (seconds expected): set --tm")
        out["mixing_time_s"] = float(tm)
    elif sequence in ("slaser", "laser"):
        n_ref = 4 if sequence == "slaser" else 6
        if isinstance(timing, (list, tuple)) and len(timing) == n_ref + 1 \
                and abs(sum(timing) - echo_time_s) < 1e-4 \
                and abs(sum(x * (-1) ** i for i, x in enumerate(timing))) < 1e-6:
            out["delays_s"] = [float(x) for x in timing]
        else:
            step = echo_time_s / n_ref
            out["delays_s"] = [step / 2] + [step] * (n_ref - 1) + [step / 2]
    else:  # pragma: no cover - detect_sequence guarantees the set
        raise InputError(f"unsupported sequence {sequence!r}")
    return out


def _table_fingerprint() -> str:
    items = [(m.name, [(g.shifts_ppm, g.couplings_hz, g.scale, g.nuclei) for g in m.groups])
             for m in SPIN_SYSTEMS.values()]
    mm = [(k, [(ln.ppm, ln.fwhm_ppm, ln.amplitude) for ln in v]) for k, v in MM_COMPONENTS.items()]
    return hashlib.sha256(repr((items, mm)).encode()).hexdigest()[:16]


def cache_key(params: Mapping[str, Any]) -> str:
    """Stable hash of the simulation parameters, code version and tables."""
    from bidsmrs import __version__

    payload = dict(params)
    payload.update(simulation_version=SIMULATION_VERSION, tables=_table_fingerprint(),
                   bidsmrs_version=__version__)
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _cache_read(path: Path) -> Basis | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            return Basis(names=tuple(str(n) for n in z["names"]), fids=np.array(z["fids"]),
                         dwell_s=float(z["dwell_s"]), spectrometer_mhz=float(z["spectrometer_mhz"]),
                         ppm_centre=float(z["ppm_centre"]),
                         is_macromolecule=tuple(bool(x) for x in z["is_macromolecule"]), meta=meta)
    except (OSError, KeyError, ValueError) as exc:
        log.warning("ignoring unreadable basis cache %s (%s)", path, exc)
        return None


def _cache_write(path: Path, basis: Basis) -> None:
    from bidsmrs.io.atomic import atomic_path
    from bidsmrs.io.jsonfile import to_jsonable

    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, fids=basis.fids, names=np.array(basis.names),
                         dwell_s=basis.dwell_s, spectrometer_mhz=basis.spectrometer_mhz,
                         ppm_centre=basis.ppm_centre,
                         is_macromolecule=np.array(basis.is_macromolecule, bool),
                         meta_json=json.dumps(to_jsonable(dict(basis.meta)), sort_keys=True))
    except OSError as exc:  # a read-only cache must not stop the analysis
        log.warning("cannot write basis cache %s (%s)", path, exc)


def default_basis(*, spectrometer_mhz: float, dwell_s: float, n_points: int,
                  echo_time_s: float, sequence: str | None = None, te1_s: float | None = None,
                  te2_s: float | None = None, mixing_time_s: float | None = None,
                  sidecar: Mapping[str, Any] | None = None,
                  entities: Mapping[str, Any] | None = None,
                  cache_dir: str | os.PathLike | None = None,
                  metabolites: Sequence[str] | None = None, include_macromolecules: bool = True,
                  ppm_centre: float = 4.65, refocusing: PulseShape | None = None,
                  n_positions: int = 41) -> Basis:
    """The built-in simulated basis for an acquisition (ideal pulses + MM components).

    Parameters
    ----------
    spectrometer_mhz, dwell_s, n_points : float, float, int
        The data's 1H frequency (MHz), dwell (s) and number of points; the basis is
        simulated on exactly this grid and field.
    echo_time_s : float
        TE (s).
    sequence : str, optional
        ``--sequence`` override (press, steam, slaser, laser).
    te1_s, te2_s, mixing_time_s : float, optional
        ``--te1``/``--te2``/``--tm`` overrides (s).
    sidecar : mapping, optional
        BIDS sidecar / NIfTI-MRS header (``PulseSequenceType``, ``SequenceName``,
        ``PulseSequenceTiming``, ``MixingTime``).
    entities : mapping, optional
        BIDS entities (``acquisition``/``acq`` used).
    cache_dir : path-like, optional
        Directory for the npz cache; None disables caching.
    metabolites : sequence of str, optional
        Default: DESIGN.md §5.2 list.
    include_macromolecules : bool
        Append MM09 … MM30 (:mod:`bidsmrs.basis.macromolecules`).
    ppm_centre : float
        Chemical shift at 0 Hz of the data (pass ``spectrum.ppm_centre``).
    refocusing : PulseShape, optional
        Shaped slice-selective refocusing pulse (PRESS, semi-LASER, LASER); default ideal.
    n_positions : int
        Spatial positions per direction when ``refocusing`` is given.

    Returns
    -------
    Basis
        ``meta`` records sequence, its source, timings, ``te_split``, ``cache`` (hit/miss).

    Raises
    ------
    InputError
        Sequence, TE or TM cannot be determined (message names the option to set).
    """
    seq, seq_source = detect_sequence(sequence, sidecar, entities)
    timing = resolve_timing(seq, echo_time_s, te1_s=te1_s, te2_s=te2_s,
                            mixing_time_s=mixing_time_s, sidecar=sidecar)
    mets = tuple(DEFAULT_METABOLITES if metabolites is None else metabolites)
    params = {"sequence": seq, "spectrometer_mhz": round(float(spectrometer_mhz), 6),
              "dwell_s": float(dwell_s), "n_points": int(n_points), "ppm_centre": float(ppm_centre),
              "metabolites": list(mets), "mm": bool(include_macromolecules),
              "refocusing": None if refocusing is None else dataclasses.asdict(refocusing),
              "n_positions": int(n_positions) if refocusing is not None else None,
              **{k: v for k, v in timing.items() if k != "te_split"}}
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"bidsmrs-basis-{cache_key(params)}.npz"
        if path.exists():
            cached = _cache_read(path)
            if cached is not None:
                meta = dict(cached.meta)
                meta["cache"] = {"status": "hit", "path": str(path)}
                return dataclasses.replace(cached, meta=meta)
    basis = simulate_basis(sequence=seq, spectrometer_mhz=float(spectrometer_mhz),
                           dwell_s=float(dwell_s), n_points=int(n_points),
                           echo_time_s=timing["echo_time_s"], te1_s=timing.get("te1_s"),
                           te2_s=timing.get("te2_s"), mixing_time_s=timing.get("mixing_time_s"),
                           metabolites=mets, ppm_centre=ppm_centre,
                           slaser_delays_s=timing.get("delays_s"), refocusing=refocusing,
                           n_positions=n_positions)
    if include_macromolecules:
        basis = with_macromolecules(basis)
    meta = dict(basis.meta)
    meta.update(sequence=seq, sequence_source=seq_source, te_split=timing.get("te_split"),
                cache_key=None if path is None else path.name)
    basis = dataclasses.replace(basis, meta=meta)
    if path is not None:
        _cache_write(path, basis)
        meta = dict(meta)
        meta["cache"] = {"status": "miss", "path": str(path)}
        basis = dataclasses.replace(basis, meta=meta)
    return basis
