"""Quantification constants actually used: built-in literature values + ``--quant-config``.

Schema (DESIGN.md §6.2, **contract**; every key optional, seconds and fractions)::

    {"water":       {"T1": {"gm": 1.331, "wm": 0.832, "csf": 3.817},
                     "T2": {"gm": 0.110, "wm": 0.0792, "csf": 0.503},
                     "content": {"gm": 0.78, "wm": 0.65, "csf": 0.97}},
     "metabolites": {"default": {"T1": 1.317, "T2": 0.207}, "NAA": {"T1": 1.47, "T2": 0.25}},
     "alpha": 0.5}

Precedence for a metabolite's T1 (and, independently, its T2): the metabolite's own key in
the file > the file's ``default`` (which replaces every built-in per-metabolite value) >
the built-in literature value > the built-in default.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from bidsmrs.constants import COMBINATIONS
from bidsmrs.errors import InputError, QuantificationError
from bidsmrs.quantify import constants as C

#: Above these values a relaxation time "looks like ms" (no brain water or metabolite T1
#: exceeds ~5 s, nor T2 ~3 s, at 1.5–7 T; CSF T2 values up to 2.6 s are in use).
MAX_PLAUSIBLE_T1_S = 10.0
MAX_PLAUSIBLE_T2_S = 5.0

_TOP_KEYS = ("water", "metabolites", "alpha")
_WATER_KEYS = ("T1", "T2", "content")
_RELAX_KEYS = ("T1", "T2")


@dataclass(frozen=True)
class QuantConfig:
    """Every constant quantification uses, with its source.

    Parameters
    ----------
    field_strength_t : float
        Field strength of the data (T).
    table_label : str
        Built-in table used (``"3T"``), or ``"none"`` when the field has no table.
    water_t1_s, water_t2_s, water_content : dict tissue -> Sourced
        Water T1 (s), T2 (s) and relative water content of ``gm``, ``wm``, ``csf``.
    alpha : Sourced
        c_WM/c_GM for the alpha correction (Harris 2015).
    metabolite_t1_s, metabolite_t2_s : dict name -> Sourced
        Per-metabolite values after applying precedence to the *explicitly listed* names
        (file keys and built-in literature); other names use the defaults.
    default_t1_s, default_t2_s : Sourced
        Values for metabolites not listed (the file's ``default`` or the built-in one).
    user_file : str or None
        Where overrides came from (path, ``"dict"``), None for pure defaults.
    """

    field_strength_t: float
    table_label: str
    water_t1_s: Mapping[str, C.Sourced]
    water_t2_s: Mapping[str, C.Sourced]
    water_content: Mapping[str, C.Sourced]
    alpha: C.Sourced
    metabolite_t1_s: Mapping[str, C.Sourced] = field(default_factory=dict)
    metabolite_t2_s: Mapping[str, C.Sourced] = field(default_factory=dict)
    default_t1_s: C.Sourced = C.Sourced(C.DEFAULT_METABOLITE_T1, C.DEFAULT_METABOLITE_SOURCE)
    default_t2_s: C.Sourced = C.Sourced(C.DEFAULT_METABOLITE_T2, C.DEFAULT_METABOLITE_SOURCE)
    user_file: str | None = None

    # --- look-ups ------------------------------------------------------------------------
    def metabolite_relaxation(self, name: str) -> tuple[C.Sourced, C.Sourced]:
        """(T1, T2) in s, with sources, for a basis component ``name``.

        Names are matched by their built-in spelling (``PCho`` -> ``PCh``), both here and
        for the keys of the file.
        """
        key = C.canonical_metabolite(name)
        return (self.metabolite_t1_s.get(key, self.default_t1_s),
                self.metabolite_t2_s.get(key, self.default_t2_s))

    def water_values(self, kind: str) -> dict[str, float]:
        """Plain ``{tissue: value}`` for ``kind`` in ``"T1"``, ``"T2"``, ``"content"``."""
        src = {"T1": self.water_t1_s, "T2": self.water_t2_s, "content": self.water_content}[kind]
        return {t: src[t].value for t in C.TISSUES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of every value and its source (quantification JSON)."""
        def sv(s: C.Sourced) -> dict[str, Any]:
            return {"value": s.value, "source": s.source}

        return {
            "field_strength_t": self.field_strength_t,
            "relaxation_table": self.table_label,
            "user_config": self.user_file,
            "units": {"T1": "s", "T2": "s", "content": "fraction of pure water",
                      "alpha": "c_WM/c_GM"},
            "water": {
                "T1": {t: sv(self.water_t1_s[t]) for t in C.TISSUES},
                "T2": {t: sv(self.water_t2_s[t]) for t in C.TISSUES},
                "content": {t: sv(self.water_content[t]) for t in C.TISSUES},
            },
            "metabolites": {
                "default": {"T1": sv(self.default_t1_s), "T2": sv(self.default_t2_s)},
                **{name: {"T1": sv(self.metabolite_relaxation(name)[0]),
                          "T2": sv(self.metabolite_relaxation(name)[1])}
                   for name in sorted(set(self.metabolite_t1_s) | set(self.metabolite_t2_s))},
            },
            "alpha": sv(self.alpha),
        }


def load_quant_config(source: str | os.PathLike | Mapping[str, Any] | None,
                      field_strength_t: float, *,
                      metabolite_names: Iterable[str] = ()) -> QuantConfig:
    """Build the :class:`QuantConfig` for data at ``field_strength_t`` (T).

    Parameters
    ----------
    source : path, dict or None
        A ``--quant-config`` JSON file, the same content as a dict, or None (defaults).
    field_strength_t : float
        Field strength of the data (T); selects the built-in table (±10 %).
    metabolite_names : iterable of str
        Basis names accepted as metabolite keys besides the built-in ones (for ``--basis``
        sets with their own names).

    Raises
    ------
    InputError
        Unreadable file, unknown key (the message lists the known ones), a value that is not
        a positive number of seconds (e.g. a T2 of 110 "looks like ms"), a water content
        outside [0, 1], or a non-positive alpha.
    QuantificationError
        No built-in table for this field and the file does not give every water T1/T2 and
        the metabolite default T1/T2.
    """
    where, raw = _read_source(source)
    _check_keys(raw, _TOP_KEYS, where, "top level")
    table = C.table_for_field(float(field_strength_t))

    water = raw.get("water", {}) or {}
    _require_mapping(water, where, "water")
    _check_keys(water, _WATER_KEYS, where, "water")
    for kind in _WATER_KEYS:
        _require_mapping(water.get(kind, {}), where, f"water.{kind}")
        _check_keys(water.get(kind, {}), C.TISSUES, where, f"water.{kind}")

    mets = raw.get("metabolites", {}) or {}
    _require_mapping(mets, where, "metabolites")
    known = sorted(set(C.DEFAULT_METABOLITES) | set(C.METABOLITE_ALIASES) | set(metabolite_names))
    for key, val in mets.items():
        if key == "default":
            pass
        elif key in COMBINATIONS and key not in known:
            raise InputError(f"metabolites.{key}: combined rows are computed from their parts "
                             f"({', '.join(COMBINATIONS[key])}); set those instead", where)
        elif key not in known:
            raise InputError(f"metabolites: unknown metabolite {key!r}; known names: "
                             f"default, {', '.join(known)}", where)
        _require_mapping(val, where, f"metabolites.{key}")
        _check_keys(val, _RELAX_KEYS, where, f"metabolites.{key}")

    user = f"--quant-config {where}" if where else None
    if table is None:
        missing = [f"water.{k}.{t}" for k in ("T1", "T2") for t in C.TISSUES
                   if t not in water.get(k, {})]
        missing += [f"metabolites.default.{k}" for k in _RELAX_KEYS
                    if k not in mets.get("default", {})]
        if missing:
            raise QuantificationError(
                f"no built-in relaxation table for {field_strength_t:g} T (built-in: 1.5, 3, 7 T "
                f"± {C.FIELD_TOLERANCE_FRACTION:.0%}); give {', '.join(missing)} in --quant-config")

    def relax(value: Any, kind: str, label: str) -> C.Sourced:
        return C.Sourced(_seconds(value, kind, where, label), user or "")

    water_sources: dict[str, dict[str, C.Sourced]] = {}
    for kind in ("T1", "T2"):
        built = {} if table is None else (table.water_t1_s if kind == "T1" else table.water_t2_s)
        water_sources[kind] = {
            t: (relax(water[kind][t], kind, f"water.{kind}.{t}") if t in water.get(kind, {})
                else built[t]) for t in C.TISSUES}
    content = {
        t: (C.Sourced(_fraction(water["content"][t], where, f"water.content.{t}"), user or "")
            if t in water.get("content", {}) else C.Sourced(C.WATER_CONTENT[t], C.WATER_CONTENT_SOURCE))
        for t in C.TISSUES}

    alpha = C.Sourced(C.ALPHA_DEFAULT, C.ALPHA_SOURCE)
    if "alpha" in raw:
        a = _number(raw["alpha"], where, "alpha")
        if not a > 0:
            raise InputError(f"alpha must be > 0 (c_WM/c_GM), got {a}", where)
        alpha = C.Sourced(a, user or "")

    file_default = mets.get("default", {})
    per_met: dict[str, dict[str, C.Sourced]] = {}
    defaults: dict[str, C.Sourced] = {}
    for kind in _RELAX_KEYS:
        if kind in file_default:
            # the file's default replaces every built-in per-metabolite value
            defaults[kind] = relax(file_default[kind], kind, f"metabolites.default.{kind}")
            values: dict[str, C.Sourced] = {}
        else:
            defaults[kind] = table.default_t1_s if kind == "T1" else table.default_t2_s
            values = dict(table.metabolite_t1_s if kind == "T1" else table.metabolite_t2_s)
        for key, val in mets.items():
            if key != "default" and kind in val:
                values[C.canonical_metabolite(key)] = relax(val[kind], kind,
                                                            f"metabolites.{key}.{kind}")
        per_met[kind] = values

    return QuantConfig(
        field_strength_t=float(field_strength_t),
        table_label="none" if table is None else table.label,
        water_t1_s=water_sources["T1"], water_t2_s=water_sources["T2"], water_content=content,
        alpha=alpha, metabolite_t1_s=per_met["T1"], metabolite_t2_s=per_met["T2"],
        default_t1_s=defaults["T1"], default_t2_s=defaults["T2"], user_file=where or None)


# --- validation helpers -------------------------------------------------------------------
def _read_source(source) -> tuple[str, Mapping[str, Any]]:
    if source is None:
        return "", {}
    if isinstance(source, Mapping):
        return "quant-config", source
    from bidsmrs.io.jsonfile import read_json

    path = Path(source)
    return str(path), read_json(path)


def _require_mapping(value: Any, where: str, label: str) -> None:
    if not isinstance(value, Mapping):
        raise InputError(f"{label} must be an object, got {type(value).__name__}",
                         where or "quant-config")


def _check_keys(mapping: Mapping[str, Any], allowed: Iterable[str], where: str, label: str) -> None:
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            raise InputError(f"{label}: unknown key {key!r}; allowed: {', '.join(allowed)}",
                             where or "quant-config")


def _number(value: Any, where: str, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{label} must be a finite number, got {value!r}", where or "quant-config")
    return float(value)


def _seconds(value: Any, kind: str, where: str, label: str) -> float:
    v = _number(value, where, label)
    limit = MAX_PLAUSIBLE_T1_S if kind == "T1" else MAX_PLAUSIBLE_T2_S
    if v <= 0:
        raise InputError(f"{label} must be > 0 s, got {v}", where or "quant-config")
    if v > limit:
        raise InputError(f"{label} = {v:g} looks like ms; relaxation times are in seconds "
                         f"(e.g. {v / 1000:g})", where or "quant-config")
    return v


def _fraction(value: Any, where: str, label: str) -> float:
    v = _number(value, where, label)
    if not 0.0 <= v <= 1.0:
        raise InputError(f"{label} must be a fraction in [0, 1], got {v:g}", where or "quant-config")
    return v
