"""Literature defaults for water-referenced quantification (DESIGN.md §6.2).

Every number carries its source so that ``_desc-quantification_svs.json`` can cite it.
All times are in seconds, water contents are fractions (g water / ml tissue relative to
pure water, "water visibility" in Gasparovic 2006).

Field strengths
---------------
Built-in relaxation tables exist for 1.5, 3 and 7 T.  A measured field strength ``B0`` is
matched to a table when ``|B0 − nominal| ≤ FIELD_TOLERANCE_FRACTION · nominal`` (10 %),
which covers vendor "3 T" systems (Siemens 2.89 T, Philips/GE 3.0 T), 1.5 T (1.49–1.5 T) and
7 T (6.98 T).  Other fields have no built-in table: the user must supply every water T1/T2
and the metabolite default T1/T2 with ``--quant-config``.

Metabolite values (3 T)
-----------------------
* T1: Mlynárik 2001 (NMR Biomed 14:325) for NAA (acetyl singlet), Cr/PCr (3.03 ppm),
  choline compounds (GPC, PCh), Ins and Glu; GABA from Puts 2013 (JMRI 37:999).
  Mlynárik reports GM-rich and WM-rich values; we use their mean, because the voxel mixes
  both and one value per metabolite is applied.
* T2: Wyss 2018 (MRM 80:452), 17 metabolites at 3 T; GM = mean of the occipital and pACC
  values, WM = parietal WM value, and we again use the GM/WM mean (for GABA and Tau, where
  no WM value is given, the GM value).
* The per-voxel-type T1 and T2 numbers are as tabulated (with these citations) in Osprey's
  ``lookUpRelaxTimes`` (schorschinho/osprey, OspreyQuantify.m) and averaged by us; they were
  not re-checked against the papers' own tables (the papers were not accessible here).
* Anything else: 1.317 s / 0.207 s (DESIGN.md §6.2 built-in default; the mean metabolite
  values used by spant's ``amp_scaling``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

#: Tissue compartments, in the order used everywhere.
TISSUES = ("gm", "wm", "csf")

#: Relative water content (water visibility) of GM, WM, CSF (Ernst 1993, J Magn Reson B
#: 102:1; as used by Gasparovic 2006 MRM 55:1219).
WATER_CONTENT = {"gm": 0.78, "wm": 0.65, "csf": 0.97}
WATER_CONTENT_SOURCE = "Ernst 1993 J Magn Reson B 102:1"

#: Default c_WM/c_GM ratio for the alpha correction (Harris 2015 JMRI 42:1431).
ALPHA_DEFAULT = 0.5
ALPHA_SOURCE = "Harris 2015 JMRI 42:1431"

#: Metabolites whose alpha-corrected concentration is reported (DESIGN.md §3).
ALPHA_METABOLITES = ("GABA", "GABA+", "Glu", "Gln", "Glx")

#: Built-in metabolite relaxation default (DESIGN.md §6.2), s.
DEFAULT_METABOLITE_T1 = 1.317
DEFAULT_METABOLITE_T2 = 0.207
DEFAULT_METABOLITE_SOURCE = "bidsmrs built-in default (DESIGN.md §6.2; spant amp_scaling mean values)"

#: Relative tolerance when matching a measured field strength to a table (see module doc).
FIELD_TOLERANCE_FRACTION = 0.10

#: Alternative spellings of metabolite names in user basis sets -> built-in output name.
METABOLITE_ALIASES = {
    "PCho": "PCh", "Cho": "PCh", "mI": "Ins", "mIns": "Ins", "Ins": "Ins", "myo-Ins": "Ins",
    "sIns": "sI", "Scyllo": "sI", "Scy": "sI", "sI": "sI", "Glyc": "Gly",
}

#: Default metabolite names (DESIGN.md §5.2 contract names).
DEFAULT_METABOLITES = ("Asc", "Asp", "Cr", "PCr", "GABA", "Glc", "Gln", "Glu", "Gly", "GPC",
                       "PCh", "GSH", "Ins", "Lac", "NAA", "NAAG", "PE", "sI", "Tau", "Ala")


@dataclass(frozen=True)
class Sourced:
    """A number with its citation."""

    value: float
    source: str


@dataclass(frozen=True)
class RelaxationTable:
    """Literature relaxation times (s) at one nominal field strength.

    Parameters
    ----------
    field_t : float
        Nominal field strength (T).
    water_t1_s, water_t2_s : dict tissue -> Sourced
        Water T1 and T2 of GM, WM and CSF (s).
    metabolite_t1_s, metabolite_t2_s : dict name -> Sourced
        Per-metabolite values from the literature (s); names not listed use the default.
    default_t1_s, default_t2_s : Sourced
        Value for metabolites without a literature entry (s).
    """

    field_t: float
    water_t1_s: Mapping[str, Sourced]
    water_t2_s: Mapping[str, Sourced]
    metabolite_t1_s: Mapping[str, Sourced] = field(default_factory=dict)
    metabolite_t2_s: Mapping[str, Sourced] = field(default_factory=dict)
    default_t1_s: Sourced = Sourced(DEFAULT_METABOLITE_T1, DEFAULT_METABOLITE_SOURCE)
    default_t2_s: Sourced = Sourced(DEFAULT_METABOLITE_T2, DEFAULT_METABOLITE_SOURCE)

    @property
    def label(self) -> str:
        return f"{self.field_t:g}T"


# --- 3 T ---------------------------------------------------------------------------------
_WANSAPURA = "Wansapura 1999 JMRI 9:531"
_LU = "Lu 2005 JMRI 22:13"
_PIECHNIK = "Piechnik 2009 MRM 61:579"
_MLYNARIK = "Mlynarik 2001 NMR Biomed 14:325 (mean of GM and WM values)"
_PUTS = "Puts 2013 JMRI 37:999"
_WYSS = "Wyss 2018 MRM 80:452 (mean of GM and WM values)"
_WYSS_GM = "Wyss 2018 MRM 80:452 (GM value; no WM value reported)"


def _mean(*values: float) -> float:
    return round(sum(values) / len(values), 4)


# Mlynárik 2001 T1 (s): (GM-rich, WM-rich) pairs.
_T1_3T_PAIRS = {
    "NAA": (1.47, 1.35), "Cr": (1.46, 1.24), "PCr": (1.46, 1.24), "GPC": (1.30, 1.08),
    "PCh": (1.30, 1.08), "Ins": (1.23, 1.01), "Glu": (1.27, 1.17),
}
# Wyss 2018 T2 (s): (GM = mean of OCC and pACC, WM = PVWM) pairs; None = no WM value.
_T2_3T_PAIRS = {
    "Asc": (_mean(0.125, 0.105), 0.172), "Asp": (_mean(0.111, 0.090), 0.148),
    "Cr": (_mean(0.148, 0.144), 0.166), "PCr": (_mean(0.148, 0.144), 0.166),
    "GABA": (_mean(0.102, 0.075), None), "Glc": (_mean(0.117, 0.088), 0.155),
    "Gln": (_mean(0.122, 0.099), 0.168), "Glu": (_mean(0.135, 0.122), 0.124),
    "Gly": (_mean(0.102, 0.081), 0.152), "GPC": (_mean(0.274, 0.222), 0.218),
    "PCh": (_mean(0.274, 0.221), 0.213), "GSH": (_mean(0.100, 0.077), 0.145),
    "Lac": (_mean(0.110, 0.099), 0.159), "Ins": (_mean(0.244, 0.229), 0.161),
    "NAA": (_mean(0.253, 0.263), 0.343), "NAAG": (_mean(0.128, 0.107), 0.185),
    "PE": (_mean(0.119, 0.086), 0.158), "sI": (_mean(0.125, 0.107), 0.170),
    "Tau": (_mean(0.123, 0.102), None),
}


def _t1_3t() -> dict[str, Sourced]:
    out = {k: Sourced(_mean(*v), _MLYNARIK) for k, v in _T1_3T_PAIRS.items()}
    out["GABA"] = Sourced(1.31, _PUTS)
    return out


def _t2_3t() -> dict[str, Sourced]:
    return {k: (Sourced(gm, _WYSS_GM) if wm is None else Sourced(_mean(gm, wm), _WYSS))
            for k, (gm, wm) in _T2_3T_PAIRS.items()}


TABLE_3T = RelaxationTable(
    field_t=3.0,
    water_t1_s={"gm": Sourced(1.331, _WANSAPURA), "wm": Sourced(0.832, _WANSAPURA),
                "csf": Sourced(3.817, _LU)},
    water_t2_s={"gm": Sourced(0.110, _WANSAPURA), "wm": Sourced(0.0792, _WANSAPURA),
                "csf": Sourced(0.503, _PIECHNIK)},
    metabolite_t1_s=_t1_3t(),
    metabolite_t2_s=_t2_3t(),
)

# --- 1.5 T and 7 T -------------------------------------------------------------------------
# Coarser than the 3 T table (no per-metabolite values): check them for your protocol and
# override with --quant-config when you have better values.
# * Water T1 of GM/WM: Wright 2008 MAGMA 21:121 (same MPRAGE method at 1.5, 3 and 7 T:
#   WM/GM 0.646/1.197 s at 1.5 T, 0.838/1.607 s at 3 T, 1.126/1.939 s at 7 T).
# * CSF T1 ~4.4 s and barely field dependent (Rooney 2007 MRM 57:308, 4.43 s at 7 T as
#   surveyed in FSL-MRS's constants); at 1.5 T we keep the 3 T value of Lu 2005.
# * Water T2 at 7 T GM/WM 0.050/0.055 s and metabolite default T1/T2 1.43/0.160 s: the
#   literature survey of FSL-MRS's constants (Pradhan 2015 Magn Reson Imaging 33:1013 for T2).
# * 1.5 T water and metabolite T2 and metabolite T1: the 3 T values (T2 of brain water
#   differs between 1.5 and 3 T by less than between measurement methods); metabolite T2 are
#   somewhat longer at 1.5 T, so water-scaled values are slightly overestimated there.
# * CSF T2 0.503 s (Piechnik 2009, 3 T) at all fields.
_WRIGHT = "Wright 2008 MAGMA 21:121"
_FSLMRS_7T = "FSL-MRS constants literature survey, 7 T"
_CSF_T2 = _PIECHNIK + " (3 T value, used at all fields)"

TABLE_1P5T = RelaxationTable(
    field_t=1.5,
    water_t1_s={"gm": Sourced(1.197, _WRIGHT), "wm": Sourced(0.646, _WRIGHT),
                "csf": Sourced(3.817, _LU + " (3 T value; CSF T1 barely field dependent)")},
    water_t2_s={"gm": Sourced(0.110, _WANSAPURA + " (3 T value)"),
                "wm": Sourced(0.0792, _WANSAPURA + " (3 T value)"),
                "csf": Sourced(0.503, _CSF_T2)},
    default_t1_s=Sourced(DEFAULT_METABOLITE_T1, DEFAULT_METABOLITE_SOURCE + " (3 T value)"),
    default_t2_s=Sourced(DEFAULT_METABOLITE_T2, DEFAULT_METABOLITE_SOURCE + " (3 T value)"),
)

TABLE_7T = RelaxationTable(
    field_t=7.0,
    water_t1_s={"gm": Sourced(1.939, _WRIGHT), "wm": Sourced(1.126, _WRIGHT),
                "csf": Sourced(4.43, "Rooney 2007 MRM 57:308 (via " + _FSLMRS_7T + ")")},
    water_t2_s={"gm": Sourced(0.050, "Pradhan 2015 Magn Reson Imaging 33:1013 (via " + _FSLMRS_7T + ")"),
                "wm": Sourced(0.055, "Pradhan 2015 Magn Reson Imaging 33:1013 (via " + _FSLMRS_7T + ")"),
                "csf": Sourced(0.503, _CSF_T2)},
    default_t1_s=Sourced(1.43, _FSLMRS_7T + " (mean of NAA, Cr, Cho)"),
    default_t2_s=Sourced(0.160, _FSLMRS_7T + " (metabolites)"),
)

TABLES = {1.5: TABLE_1P5T, 3.0: TABLE_3T, 7.0: TABLE_7T}


def table_for_field(field_strength_t: float) -> RelaxationTable | None:
    """The built-in table matching ``field_strength_t`` (T) within 10 %, or None."""
    for nominal, table in TABLES.items():
        if abs(field_strength_t - nominal) <= FIELD_TOLERANCE_FRACTION * nominal:
            return table
    return None


def canonical_metabolite(name: str) -> str:
    """Built-in output name for a basis name (``PCho`` -> ``PCh``, ``sIns`` -> ``sI``)."""
    return METABOLITE_ALIASES.get(name, name)
