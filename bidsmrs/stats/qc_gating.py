"""QC gating: which spectra and which metabolite values enter the group statistics.

Nothing is dropped silently: every row keeps its values and gains ``included`` (bool)
and ``exclusion_reason`` (``;``-joined reason codes, empty when included), and
:func:`exclusion_log` lists what was left out and why.

Definitions (copied into the group tables' JSON sidecars; :func:`exclusion_criteria`
returns them as text with the thresholds in use):

Spectrum level (``group_desc-qc_svs.tsv``, one row per spectrum)
    ``low_snr``
        ``snr_naa < min_snr`` (NAA peak height / noise SD, Kreis 2020).
    ``missing_snr``
        ``snr_naa`` is missing (n/a), so the criterion cannot be checked.
    ``broad_linewidth``
        ``fwhm_naa_ppm > max_fwhm_ppm``.
    ``missing_linewidth``
        ``fwhm_naa_ppm`` is missing.
    A criterion whose threshold is None is not applied.

Metabolite level (``group_desc-concentrations_svs.tsv``, one row per spectrum and metabolite)
    every reason of its spectrum
        An excluded spectrum excludes all its metabolites (``spectrum_excluded`` when the
        QC table gives no reason); a spectrum absent from the QC table gives ``missing_qc``.
    ``high_crlb``
        ``crlb_percent > max_crlb_percent`` (or the metabolite's entry in
        ``crlb_overrides``).
    ``missing_crlb``
        ``crlb_percent`` missing for a detected metabolite.
    ``not_detected``
        The fit gave amplitude 0 (``flag`` contains ``not_detected``, or ``amplitude`` is
        0). Its relative CRLB is infinite, reported as 999 % by LCModel and FSL-MRS
        (``fsl_mrs/utils/results.py``: ``perc_SD[perc_SD > 999] = 999``), so a %CRLB
        filter excludes it: bidsmrs does the same by default and names the reason
        separately so it shows in the log. Excluding low estimates by relative CRLB biases
        group means upwards (Kreis 2016, MRM 75:15); with
        ``QcThresholds(keep_not_detected=True)`` such rows stay included with their
        reported value (0), and only the other criteria apply to them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from bidsmrs.errors import UsageError
from bidsmrs.stats.sessions import ENTITY_COLUMNS, as_bool, normalise_entities, to_numeric_or_none

log = logging.getLogger(__name__)

SPECTRUM_REASONS = ("low_snr", "missing_snr", "broad_linewidth", "missing_linewidth")
METABOLITE_REASONS = ("missing_qc", "spectrum_excluded", "high_crlb", "missing_crlb", "not_detected")


@dataclass(frozen=True)
class QcThresholds:
    """Inclusion thresholds (DESIGN.md §2: ``--qc-max-crlb``, ``--qc-min-snr``, ``--qc-max-fwhm-ppm``).

    Parameters
    ----------
    max_crlb_percent : float or None
        Largest relative CRLB (%) a metabolite value may have (Bonny & Pagès 2018: 20 %).
    min_snr : float or None
        Smallest ``snr_naa`` a spectrum may have.
    max_fwhm_ppm : float or None
        Largest ``fwhm_naa_ppm`` a spectrum may have.
    crlb_overrides : mapping of str to float
        Per-metabolite CRLB limits replacing ``max_crlb_percent`` (e.g. ``{"GABA": 30}``).
    keep_not_detected : bool
        Keep metabolites the fit did not detect (value 0) instead of excluding them.

    None disables a criterion.
    """

    max_crlb_percent: float | None = 20.0
    min_snr: float | None = 10.0
    max_fwhm_ppm: float | None = 0.1
    crlb_overrides: Mapping[str, float] = field(default_factory=dict)
    keep_not_detected: bool = False

    def __post_init__(self):
        limits = {"max_crlb_percent": self.max_crlb_percent, "min_snr": self.min_snr,
                  "max_fwhm_ppm": self.max_fwhm_ppm}
        limits.update({f"crlb_overrides[{k}]": v for k, v in dict(self.crlb_overrides).items()})
        for name, value in limits.items():
            if value is not None and not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise UsageError(f"QC threshold {name} must be a number >= 0, not {value!r}")
        object.__setattr__(self, "crlb_overrides", MappingProxyType(dict(self.crlb_overrides)))

    def crlb_limit(self, metabolite: str) -> float | None:
        """The CRLB limit (%) that applies to ``metabolite``."""
        return self.crlb_overrides.get(metabolite, self.max_crlb_percent)

    def to_dict(self) -> dict:
        """Plain dict for JSON sidecars and ``logs/config.json``."""
        return {"max_crlb_percent": self.max_crlb_percent, "min_snr": self.min_snr,
                "max_fwhm_ppm": self.max_fwhm_ppm, "crlb_overrides": dict(self.crlb_overrides),
                "keep_not_detected": self.keep_not_detected}


def exclusion_criteria(thresholds: QcThresholds) -> dict[str, str]:
    """Reason code -> definition with the thresholds in use (for JSON sidecars)."""
    t = thresholds
    crlb = f"crlb_percent > {t.max_crlb_percent}"
    if t.crlb_overrides:
        crlb += " (" + ", ".join(f"{k}: > {v}" for k, v in t.crlb_overrides.items()) + ")"
    return {
        "low_snr": f"spectrum: snr_naa < {t.min_snr}" if t.min_snr is not None else "not applied",
        "missing_snr": "spectrum: snr_naa is n/a",
        "broad_linewidth": (f"spectrum: fwhm_naa_ppm > {t.max_fwhm_ppm}"
                            if t.max_fwhm_ppm is not None else "not applied"),
        "missing_linewidth": "spectrum: fwhm_naa_ppm is n/a",
        "missing_qc": "metabolite: its spectrum has no row in the QC table",
        "spectrum_excluded": "metabolite: its spectrum is excluded without a stated reason",
        "high_crlb": f"metabolite: {crlb}" if t.max_crlb_percent is not None or t.crlb_overrides else "not applied",
        "missing_crlb": "metabolite: crlb_percent is n/a for a detected metabolite",
        "not_detected": ("metabolite: fitted amplitude 0 (relative CRLB infinite, 999 % in LCModel/FSL-MRS); "
                         + ("kept with value 0" if t.keep_not_detected else "excluded")),
        "(spectrum reasons)": "metabolite: every reason of its spectrum applies to all its metabolites",
    }


def _numeric(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        return pd.Series(np.nan, index=table.index, dtype=float)
    converted = to_numeric_or_none(table[column])
    if converted is None:  # text such as "inf" mixed with numbers
        converted = pd.to_numeric(table[column], errors="coerce")
    return converted.astype(float)


def _join(reasons: pd.DataFrame) -> pd.Series:
    """Boolean columns named by reason -> ``;``-joined reason strings per row."""
    if reasons.empty:
        return pd.Series("", index=reasons.index, dtype=object)
    names = np.array(reasons.columns, dtype=object)
    return pd.Series([";".join(names[row]) for row in reasons.to_numpy(dtype=bool)],
                     index=reasons.index, dtype=object)


def gate_spectra(qc: pd.DataFrame, thresholds: QcThresholds = QcThresholds()) -> pd.DataFrame:
    """Mark each spectrum included or excluded.

    Parameters
    ----------
    qc : DataFrame
        One row per spectrum: entity columns, ``snr_naa``, ``fwhm_naa_ppm`` ...
    thresholds : QcThresholds

    Returns
    -------
    DataFrame
        Copy of ``qc`` (entity columns normalised, see
        :func:`bidsmrs.stats.sessions.normalise_entities`) with ``included`` (bool) and
        ``exclusion_reason`` (codes of the module docstring, ``;``-joined, ``""`` when
        included). A value exactly at a threshold passes.
    """
    out = normalise_entities(qc)
    snr = _numeric(out, "snr_naa")
    fwhm = _numeric(out, "fwhm_naa_ppm")
    reasons = pd.DataFrame(index=out.index)
    if thresholds.min_snr is not None:
        reasons["low_snr"] = snr < thresholds.min_snr
        reasons["missing_snr"] = snr.isna()
    if thresholds.max_fwhm_ppm is not None:
        reasons["broad_linewidth"] = fwhm > thresholds.max_fwhm_ppm
        reasons["missing_linewidth"] = fwhm.isna()
    out["exclusion_reason"] = _join(reasons)
    out["included"] = out["exclusion_reason"] == ""
    log.info("QC: %d of %d spectra included", int(out["included"].sum()), len(out))
    return out


def _not_detected(conc: pd.DataFrame) -> pd.Series:
    flagged = pd.Series(False, index=conc.index)
    if "flag" in conc.columns:
        tokens = conc["flag"].astype(str).str.replace(",", ";").str.split(";")
        flagged = tokens.map(lambda parts: "not_detected" in [p.strip() for p in parts])
    return flagged.astype(bool) | (_numeric(conc, "amplitude") == 0)


def gate_metabolites(conc: pd.DataFrame, gated_qc: pd.DataFrame,
                     thresholds: QcThresholds = QcThresholds()) -> pd.DataFrame:
    """Mark each metabolite value included or excluded.

    Parameters
    ----------
    conc : DataFrame
        Group long table: entity columns, ``metabolite``, ``amplitude``, ``crlb_percent``,
        ``flag`` and the concentration columns.
    gated_qc : DataFrame
        Output of :func:`gate_spectra`.
    thresholds : QcThresholds

    Returns
    -------
    DataFrame
        Copy of ``conc`` (entity columns normalised) with ``included`` and
        ``exclusion_reason``: the spectrum's reasons, then ``missing_qc``, ``high_crlb``,
        ``missing_crlb`` or ``not_detected`` (module docstring). Values are never changed.
    """
    keys = list(ENTITY_COLUMNS)
    out = normalise_entities(conc).drop(columns=["included", "exclusion_reason"], errors="ignore")
    spectra = normalise_entities(gated_qc).drop_duplicates(keys)
    reason = spectra["exclusion_reason"].fillna("").astype(str) if "exclusion_reason" in spectra else ""
    spectra = spectra[keys].assign(_spectrum=np.where(as_bool(spectra["included"]), "",
                                                      np.where(reason == "", "spectrum_excluded", reason)))
    merged = out[keys].merge(spectra, on=keys, how="left")
    merged.index = out.index

    crlb = _numeric(out, "crlb_percent")
    limit = out["metabolite"].map(lambda m: thresholds.crlb_limit(str(m))).astype(float)
    absent = out["metabolite"].map(lambda m: thresholds.crlb_limit(str(m)) is None)
    undetected = _not_detected(out)
    reasons = pd.DataFrame(index=out.index)
    reasons["missing_qc"] = merged["_spectrum"].isna()
    reasons["not_detected"] = undetected & (not thresholds.keep_not_detected)
    reasons["high_crlb"] = ~undetected & ~absent & (crlb > limit)
    reasons["missing_crlb"] = ~undetected & ~absent & crlb.isna()
    own = _join(reasons)
    spectrum = merged["_spectrum"].fillna("")
    out["exclusion_reason"] = [";".join(p for p in pair if p) for pair in zip(spectrum, own)]
    out["included"] = out["exclusion_reason"] == ""
    log.info("QC: %d of %d metabolite values included", int(out["included"].sum()), len(out))
    return out


def exclusion_log(gated_conc: pd.DataFrame, gated_qc: pd.DataFrame) -> pd.DataFrame:
    """What was excluded and why, for the group report.

    One row per excluded spectrum (``level`` = ``spectrum``, ``metabolite`` = NaN), then one
    row per excluded metabolite value of an included spectrum (``level`` = ``metabolite``);
    metabolites excluded only because their spectrum was are not repeated.

    Returns
    -------
    DataFrame
        Entity columns, ``level``, ``metabolite``, ``exclusion_reason``, and the values
        the criteria looked at: ``snr_naa``, ``fwhm_naa_ppm``, ``crlb_percent``.
    """
    keys = list(ENTITY_COLUMNS)
    qc = normalise_entities(gated_qc)
    spectra = qc[~as_bool(qc["included"])]
    spectra = spectra.assign(level="spectrum", metabolite=np.nan,
                             snr_naa=_numeric(spectra, "snr_naa"),
                             fwhm_naa_ppm=_numeric(spectra, "fwhm_naa_ppm"), crlb_percent=np.nan)
    conc = normalise_entities(gated_conc)
    bad = set(map(tuple, spectra[keys].to_numpy()))
    own = conc[~as_bool(conc["included"])]
    own = own.loc[np.array([tuple(k) not in bad for k in own[keys].to_numpy()], dtype=bool)]
    own = own.assign(level="metabolite", crlb_percent=_numeric(own, "crlb_percent"))
    own = own.merge(qc[keys + ["snr_naa", "fwhm_naa_ppm"]].drop_duplicates(keys), on=keys, how="left") \
        if {"snr_naa", "fwhm_naa_ppm"} <= set(qc.columns) else own.assign(snr_naa=np.nan, fwhm_naa_ppm=np.nan)
    columns = keys + ["level", "metabolite", "exclusion_reason", "snr_naa", "fwhm_naa_ppm", "crlb_percent"]
    parts = [p[columns] for p in (spectra, own) if not p.empty]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)
