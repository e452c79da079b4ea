"""Metabolite concentrations from fitted amplitudes (DESIGN.md §3 columns, §6.2 equations).

Amplitude convention
--------------------
A basis spectrum is the signal of ONE molecule at unit concentration (protons included,
:mod:`bidsmrs.basis.core`), so a fitted amplitude ``S_m`` counts molecules, while the water
reference amplitude ``S_w`` (FID(0)-equivalent area of the water peak, in the same scaling as
the metabolite data: same receiver gain and number of averages) counts water protons,
``H_w = 2`` per molecule.  Hence ``[M]/[water] = H_w · S_m / S_w`` before relaxation and
water-content terms.

Equations (R_x = exp(−TE/T2_x)·(1 − exp(−TR/T1_x)), d_t water contents, f_t volume
fractions, 55.51 mol/kg pure water, all concentrations in mM or mmol/kg):

* ``conc_raw_water_mM`` (bidsmrs definition; no segmentation needed): the voxel's water is
  taken as tissue water of an equal GM/WM mixture,
  ``H_w·(S_m/S_w)·55.51e3·½(d_GM R_w,GM + d_WM R_w,WM)/R_m``.
* ``conc_csf_corrected_mM``: ``conc_raw_water_mM/(1 − f_CSF)`` (CSF holds no metabolites;
  as in Osprey's CSF correction).
* ``conc_tissue_corrected_mM`` (molarity; Near 2021 eq. 4, Gasparovic 2006):
  ``H_w·(S_m/S_w)·55.51e3·Σ_t f_t d_t R_w,t / ((1 − f_CSF)·R_m)``.  With f_CSF = 0 this is the
  ISMRM fitting challenge's formula times H_w (its "relaxation-corrected water
  concentration" is 55.51e3·Σ f_t d_t e^{−TE/T2_w,t}).
* ``conc_molal_mmol_per_kg`` (molality; Near 2021 eqs. 5–6, Gasparovic 2018): the same with
  the water mole fractions ``f'_t = f_t d_t / Σ_u f_u d_u`` in place of ``f_t d_t`` and
  ``(1 − f'_CSF)`` in the denominator.
* ``conc_alpha_corrected_mM`` (Harris 2015 JMRI 42:1431, participant-level form):
  ``H_w·(S_m/S_w)·55.51e3·Σ_t f_t d_t R_w,t / R_m / (f_GM + α f_WM)`` with α = c_WM/c_GM
  (default 0.5): the concentration expected in pure GM.  Only GABA, GABA+, Glu, Gln, Glx.
  Harris's group-normalised variant multiplies this by (μ_GM + α μ_WM)/(μ_GM + μ_WM) with the
  group-mean fractions μ; it needs the group and is left to group level
  (:func:`alpha_group_factor`).

Combined rows (tNAA, tCr, tCho, Glx, GABA+): amplitude and SD from the fit covariance
(:meth:`FitResult.combined`); every concentration is the SUM of the parts' individually
relaxation-corrected concentrations, because each part relaxes with its own T1/T2 (one
relaxation factor for the sum would weight the parts wrongly).
"""
from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from bidsmrs.constants import PURE_WATER_MOLAL, WATER_PROTONS
from bidsmrs.errors import QuantificationError
from bidsmrs.fitting.result import FitResult
from bidsmrs.quantify.config import QuantConfig
from bidsmrs.quantify.constants import ALPHA_METABOLITES, TISSUES
from bidsmrs.quantify.relaxation import attenuation, water_attenuations
from bidsmrs.quantify.tissue import TissueFractions

log = logging.getLogger(__name__)

__all__ = ["COLUMNS", "Concentrations", "quantify", "molar_factor", "molal_factor",
           "raw_water_factor", "alpha_divisor", "alpha_group_factor", "table_sidecar"]

#: Contract columns of ``_desc-concentrations_svs.tsv`` in order (DESIGN.md §3).
COLUMNS = ("metabolite", "amplitude", "crlb_percent", "sd", "ratio_tcr", "conc_raw_water_mM",
           "conc_csf_corrected_mM", "conc_tissue_corrected_mM", "conc_molal_mmol_per_kg",
           "conc_alpha_corrected_mM", "flag")

#: Water-scaled concentration columns.
CONC_COLUMNS = COLUMNS[5:10]

#: Units per column (for the TSV's JSON sidecar).
UNITS = {"amplitude": "a.u. (basis units: molecules)", "crlb_percent": "%",
         "sd": "a.u. (basis units)", "ratio_tcr": "ratio to tCr amplitude",
         "conc_raw_water_mM": "mM", "conc_csf_corrected_mM": "mM",
         "conc_tissue_corrected_mM": "mM", "conc_molal_mmol_per_kg": "mmol/kg",
         "conc_alpha_corrected_mM": "mM"}

_PURE_WATER_MM = PURE_WATER_MOLAL * 1e3  # mmol/kg (= mM at 1 kg/l)

_DESCRIPTIONS = {
    "metabolite": "Basis component or combined metabolite (tNAA, tCr, tCho, Glx, GABA+)",
    "amplitude": "Fitted amplitude in basis units (one molecule at unit concentration)",
    "crlb_percent": "Cramer-Rao lower bound as percent of the amplitude (n/a when not detected)",
    "sd": "Cramer-Rao standard deviation of the amplitude (combined rows: from the covariance)",
    "ratio_tcr": "Amplitude divided by the tCr (Cr+PCr) amplitude",
    "conc_raw_water_mM": "Water-scaled, relaxation-corrected, no tissue correction (voxel water "
                         "taken as equal GM/WM tissue water)",
    "conc_csf_corrected_mM": "conc_raw_water_mM / (1 - CSF fraction)",
    "conc_tissue_corrected_mM": "Tissue-corrected molarity (Near 2021 eq. 4; Gasparovic 2006)",
    "conc_molal_mmol_per_kg": "Tissue-corrected molality (Near 2021 eqs. 5-6; Gasparovic 2018)",
    "conc_alpha_corrected_mM": "GM-equivalent concentration, alpha correction c_WM/c_GM = alpha "
                               "(Harris 2015); GABA, GABA+, Glu, Gln, Glx only",
    "flag": "ok, high_crlb (CRLB above the threshold) or not_detected (amplitude 0)",
}


def table_sidecar() -> dict[str, dict[str, str]]:
    """BIDS data dictionary (``Description``, ``Units``) for the concentrations TSV."""
    out = {}
    for col in COLUMNS:
        entry = {"Description": _DESCRIPTIONS[col]}
        if col in UNITS:
            entry["Units"] = UNITS[col]
        if col == "flag":
            entry["Levels"] = {"ok": "passes the CRLB threshold",
                               "high_crlb": "CRLB above the threshold (flagged, not dropped)",
                               "not_detected": "fitted amplitude is 0"}
        out[col] = entry
    return out


@dataclass(frozen=True)
class Concentrations:
    """Quantification result of one spectrum.

    Parameters
    ----------
    table : pandas.DataFrame
        Exactly :data:`COLUMNS`, one row per basis component then the combined rows; NaN
        where not applicable (written as ``n/a``).
    provenance : dict
        Every constant, formula and citation used (``_desc-quantification_svs.json``).
    notes : tuple of str
        Why some columns are empty (no water reference, no tissue fractions, ...).
    """

    table: pd.DataFrame
    provenance: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --- scale factors (S_m/S_w -> concentration); pure, tested one by one -------------------
def raw_water_factor(r_met: float, r_water: Mapping[str, float],
                     content: Mapping[str, float]) -> float:
    """mM per unit ``S_m/S_w`` without segmentation (equal GM/WM tissue water)."""
    water = 0.5 * (content["gm"] * r_water["gm"] + content["wm"] * r_water["wm"])
    return WATER_PROTONS * _PURE_WATER_MM * water / r_met


def molar_factor(fractions: Mapping[str, float], r_met: float, r_water: Mapping[str, float],
                 content: Mapping[str, float]) -> float:
    """mM per unit ``S_m/S_w``: Near 2021 eq. 4 / Gasparovic 2006 (tissue-corrected molarity)."""
    water = sum(fractions[t] * content[t] * r_water[t] for t in TISSUES)
    non_csf = 1.0 - fractions["csf"]
    if non_csf <= 0:
        return math.nan
    return WATER_PROTONS * _PURE_WATER_MM * water / (non_csf * r_met)


def molal_factor(fractions: Mapping[str, float], r_met: float, r_water: Mapping[str, float],
                 content: Mapping[str, float]) -> float:
    """mmol/kg per unit ``S_m/S_w``: Near 2021 eqs. 5–6 / Gasparovic 2018 (molality)."""
    total = sum(fractions[t] * content[t] for t in TISSUES)
    if total <= 0:
        return math.nan
    mole = {t: fractions[t] * content[t] / total for t in TISSUES}
    water = sum(mole[t] * r_water[t] for t in TISSUES)
    non_csf = 1.0 - mole["csf"]
    if non_csf <= 0:
        return math.nan
    return WATER_PROTONS * _PURE_WATER_MM * water / (non_csf * r_met)


def alpha_divisor(fractions: Mapping[str, float], alpha: float) -> float:
    """``(f_GM + α f_WM)/(1 − f_CSF)``: molar tissue-corrected value / this = alpha-corrected.

    Harris 2015: C_α = C_water·Σ f_t d_t R_w,t / R_m / (f_GM + α f_WM); the molar value
    divides the same numerator by (1 − f_CSF).
    """
    non_csf = 1.0 - fractions["csf"]
    d = fractions["gm"] + alpha * fractions["wm"]
    return math.nan if non_csf <= 0 or d <= 0 else d / non_csf


def alpha_group_factor(fractions: Mapping[str, float], mean_gm: float, mean_wm: float,
                       alpha: float) -> float:
    """Harris 2015 group normalisation: multiply the alpha-corrected value by this.

    ``(μ_GM + α μ_WM)/(μ_GM + μ_WM)`` with the group-mean fractions μ (for group level).
    """
    return (mean_gm + alpha * mean_wm) / (mean_gm + mean_wm)


# --- the table --------------------------------------------------------------------------
def quantify(fit: FitResult, *, water_amplitude: float | None, tissue: TissueFractions | None,
             echo_time_s: float | None, repetition_time_s: float | None, config: QuantConfig,
             crlb_threshold_percent: float = 20.0, water_echo_time_s: float | None = None,
             water_repetition_time_s: float | None = None) -> Concentrations:
    """Concentrations table of one fitted spectrum.

    Parameters
    ----------
    fit : FitResult
        Amplitudes (basis units) and their covariance.
    water_amplitude : float or None
        Water reference amplitude ``S_w`` in the metabolite data's scaling (see module doc);
        None → ratios only (every water-scaled column NaN).
    tissue : TissueFractions or None
        None → only ``conc_raw_water_mM`` is water-scaled; CSF-, tissue-, molal- and
        alpha-corrected columns need fractions.
    echo_time_s, repetition_time_s : float or None
        Metabolite acquisition TE and TR (s); required with a water amplitude.
    config : QuantConfig
        Relaxation times, water contents and alpha (:func:`load_quant_config`).
    crlb_threshold_percent : float
        Rows with %CRLB above this are flagged ``high_crlb`` (never dropped).
    water_echo_time_s, water_repetition_time_s : float or None
        Water reference TE/TR (s) when they differ from the metabolite's (default: same).

    Raises
    ------
    QuantificationError
        Water scaling asked (``water_amplitude`` given) but TE or TR missing or implausible,
        or the water amplitude is not a positive number. The caller then calls again with
        ``water_amplitude=None`` and records the reason.
    """
    notes: list[str] = []
    water_scaled = water_amplitude is not None
    te_w = tr_w = None
    if water_scaled:
        _check_timing(echo_time_s, repetition_time_s)
        te_w = echo_time_s if water_echo_time_s is None else water_echo_time_s
        tr_w = repetition_time_s if water_repetition_time_s is None else water_repetition_time_s
        _check_timing(te_w, tr_w, what="water reference ")
        if (isinstance(water_amplitude, bool) or not isinstance(water_amplitude, numbers.Real)
                or not math.isfinite(water_amplitude) or water_amplitude <= 0):
            raise QuantificationError(f"water reference amplitude must be a positive number, "
                                      f"got {water_amplitude!r}")
        if tissue is None:
            notes.append("no tissue fractions: only conc_raw_water_mM is water-scaled")
    else:
        notes.append("no water reference: water-scaled columns are n/a (ratios only)")

    names = list(fit.names)
    amps = np.asarray(fit.amplitudes, float)
    sds = np.asarray(fit.sd, float)

    # per-component relaxation and concentration factors
    per_met: dict[str, dict[str, Any]] = {}
    r_water: dict[str, float] = {}
    content = config.water_values("content")
    fr = tissue.as_dict() if tissue is not None else None
    if water_scaled:
        r_water = water_attenuations(te_w, tr_w, config.water_values("T1"), config.water_values("T2"))
    alpha_div = alpha_divisor(fr, config.alpha.value) if fr is not None else math.nan
    conc: dict[str, dict[str, float]] = {}
    for name, a in zip(names, amps):
        t1, t2 = config.metabolite_relaxation(name)
        row = dict.fromkeys(CONC_COLUMNS, math.nan)
        info: dict[str, Any] = {"T1_s": {"value": t1.value, "source": t1.source},
                                "T2_s": {"value": t2.value, "source": t2.source}}
        if water_scaled:
            r_m = attenuation(echo_time_s, repetition_time_s, t1.value, t2.value)
            info["attenuation"] = r_m
            ratio = float(a) / float(water_amplitude)
            row["conc_raw_water_mM"] = ratio * raw_water_factor(r_m, r_water, content)
            if fr is not None:
                molar = ratio * molar_factor(fr, r_m, r_water, content)
                row["conc_csf_corrected_mM"] = (row["conc_raw_water_mM"] / (1 - fr["csf"])
                                                if fr["csf"] < 1 else math.nan)
                row["conc_tissue_corrected_mM"] = molar
                row["conc_molal_mmol_per_kg"] = ratio * molal_factor(fr, r_m, r_water, content)
                # every row gets it here (combined rows sum their parts); blanked below for
                # metabolites outside ALPHA_METABOLITES
                row["conc_alpha_corrected_mM"] = molar / alpha_div
        per_met[name] = info
        conc[name] = row

    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        rows.append(_row(name, float(amps[i]), float(sds[i]), conc[name]))
    for cname, parts in fit.combinations().items():
        a, sd = fit.combined(parts)
        summed = {k: float(sum(conc[p][k] for p in parts)) for k in CONC_COLUMNS}
        rows.append(_row(cname, a, sd, summed))
    for r in rows:
        if r["metabolite"] not in ALPHA_METABOLITES:
            r["conc_alpha_corrected_mM"] = math.nan

    tcr_amp, tcr_from = _tcr_amplitude(fit)
    if tcr_from is None:
        notes.append("no Cr or PCr in the basis: ratio_tcr is n/a")
    for r in rows:
        r["ratio_tcr"] = r["amplitude"] / tcr_amp if tcr_amp and tcr_amp > 0 else math.nan
        r["flag"] = _flag(r["amplitude"], r["crlb_percent"], crlb_threshold_percent)
        if r["flag"] == "not_detected":
            r["crlb_percent"] = math.nan

    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in COLUMNS[1:-1]:
        table[col] = table[col].astype(float)
    provenance = _provenance(config, tissue, water_amplitude, echo_time_s, repetition_time_s,
                             te_w, tr_w, r_water, per_met, fit, tcr_from, crlb_threshold_percent,
                             notes)
    return Concentrations(table=table, provenance=provenance, notes=tuple(notes))


def _row(name: str, amplitude: float, sd: float, conc: Mapping[str, float]) -> dict[str, Any]:
    with np.errstate(divide="ignore", invalid="ignore"):
        crlb = 100.0 * sd / amplitude if amplitude > 0 else math.nan
    return {"metabolite": name, "amplitude": amplitude, "crlb_percent": crlb, "sd": sd,
            "ratio_tcr": math.nan, **{k: conc[k] for k in CONC_COLUMNS}, "flag": ""}


def _flag(amplitude: float, crlb: float, threshold: float) -> str:
    if amplitude <= 0:
        return "not_detected"
    if not np.isfinite(crlb) or crlb > threshold:
        return "high_crlb"
    return "ok"


def _tcr_amplitude(fit: FitResult) -> tuple[float, str | None]:
    """tCr amplitude: Cr+PCr (covariance-consistent), a ``tCr`` component, or Cr/PCr alone."""
    combos = fit.combinations()
    if "tCr" in combos:
        return fit.combined(combos["tCr"])[0], "+".join(combos["tCr"])
    for name in ("tCr", "Cr+PCr", "Cr", "PCr"):
        if name in fit.names:
            return fit.amplitude(name), name
    return math.nan, None


def _check_timing(te: float | None, tr: float | None, what: str = "") -> None:
    if te is None or tr is None:
        missing = " and ".join(n for n, v in (("EchoTime", te), ("RepetitionTime", tr)) if v is None)
        raise QuantificationError(f"{what}{missing} unknown: water-scaled concentrations need "
                                  f"TE and TR (ratios to tCr only)")
    if not (math.isfinite(te) and te > 0):
        raise QuantificationError(f"{what}EchoTime {te!r} s is not a positive number")
    if te > 1.0:
        raise QuantificationError(f"{what}EchoTime {te:g} s looks like ms (TE must be in s)")
    if not (math.isfinite(tr) and tr > 0):
        raise QuantificationError(f"{what}RepetitionTime {tr!r} s is not a positive number")


_CITATIONS = {
    "Near 2021": "Near J et al. Preprocessing, analysis and quantification in single-voxel "
                 "magnetic resonance spectroscopy: experts' consensus recommendations. "
                 "NMR Biomed 2021;34:e4257",
    "Gasparovic 2006": "Gasparovic C et al. Use of tissue water as a concentration reference for "
                       "proton spectroscopic imaging. Magn Reson Med 2006;55:1219-1226",
    "Gasparovic 2018": "Gasparovic C et al. Errors in 1H-MRS estimates of brain metabolite "
                       "concentrations caused by failing to take into account tissue-specific "
                       "signal relaxation. NMR Biomed 2018;31:e3914",
    "Harris 2015": "Harris AD, Puts NAJ, Edden RAE. Tissue correction for GABA-edited MRS: "
                   "considerations of voxel composition, tissue segmentation, and tissue "
                   "relaxations. J Magn Reson Imaging 2015;42:1431-1440",
    "Ernst 1993": "Ernst T, Kreis R, Ross BD. Absolute quantitation of water and metabolites in "
                  "the human brain. I. Compartments and water. J Magn Reson B 1993;102:1-8",
}

_FORMULAS = {
    "conc_raw_water_mM": "H_w*(S_m/S_w)*55510*0.5*(d_gm*R_w_gm + d_wm*R_w_wm)/R_m "
                         "(bidsmrs definition: equal GM/WM tissue water, no segmentation)",
    "conc_csf_corrected_mM": "conc_raw_water_mM/(1 - f_csf)",
    "conc_tissue_corrected_mM": "H_w*(S_m/S_w)*55510*sum_t(f_t*d_t*R_w_t)/((1 - f_csf)*R_m) "
                                "(Near 2021 eq. 4; Gasparovic 2006)",
    "conc_molal_mmol_per_kg": "H_w*(S_m/S_w)*55510*sum_t(f'_t*R_w_t)/((1 - f'_csf)*R_m), "
                              "f'_t = f_t*d_t/sum_u(f_u*d_u) (Near 2021 eqs. 5-6; Gasparovic 2018)",
    "conc_alpha_corrected_mM": "H_w*(S_m/S_w)*55510*sum_t(f_t*d_t*R_w_t)/R_m/(f_gm + alpha*f_wm) "
                               "(Harris 2015, participant-level form; GABA, GABA+, Glu, Gln, Glx)",
    "R_x": "exp(-TE/T2_x)*(1 - exp(-TR/T1_x))",
    "ratio_tcr": "amplitude / amplitude of tCr (Cr+PCr)",
    "combined_rows": "amplitude and sd from the fit covariance; concentrations are sums of the "
                     "parts' individually relaxation-corrected values",
}


def _provenance(config, tissue, water_amplitude, te, tr, te_w, tr_w, r_water, per_met, fit,
                tcr_from, crlb_threshold, notes) -> dict[str, Any]:
    return {
        "amplitude_convention": "basis spectrum = one molecule at unit concentration (protons "
                                "included); water reference = 2 protons per molecule",
        "water_protons": WATER_PROTONS,
        "pure_water_mmol_per_kg": _PURE_WATER_MM,
        "water_amplitude": water_amplitude,
        "echo_time_s": te, "repetition_time_s": tr,
        "water_echo_time_s": te_w, "water_repetition_time_s": tr_w,
        "tissue_fractions": None if tissue is None else {**tissue.as_dict(),
                                                         "source": tissue.source},
        "water_attenuation": r_water or None,
        "constants": config.to_dict(),
        "metabolites": {n: per_met[n] for n in fit.names},
        "combined_rows": {k: list(v) for k, v in fit.combinations().items()},
        "tcr_reference": tcr_from,
        "crlb_threshold_percent": crlb_threshold,
        "formulas": dict(_FORMULAS),
        "units": dict(UNITS),
        "citations": dict(_CITATIONS),
        "notes": list(notes),
        "assumptions": ["90 degree excitation; relaxation attenuation exp(-TE/T2)*(1-exp(-TR/T1))",
                        "STEAM mixing-time T1 decay is not modelled",
                        "one T1/T2 per metabolite for all tissues; per-tissue water T1/T2"],
    }
