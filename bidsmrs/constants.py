"""Physical constants and spectroscopic conventions (with sources).

Quantification constants (relaxation times, water contents) live in
:mod:`bidsmrs.quantify.constants`; this module holds the ones every stage shares.
"""
from __future__ import annotations

#: Gyromagnetic ratio / 2π in MHz/T (CODATA 2018 for 1H; others as used by NIfTI-MRS tools).
GYROMAGNETIC_MHZ_PER_T = {"1H": 42.577478, "2H": 6.536, "13C": 10.7084, "31P": 17.235, "19F": 40.078}

#: Chemical shift (ppm) at 0 Hz (the receiver frequency) when the data carry no
#: ``SpecFreqChemShift``: water at body temperature for 1H (NIfTI-MRS definitions 0.11).
DEFAULT_PPM_CENTRE = {"1H": 4.65, "2H": 4.8, "13C": 0.0, "31P": 0.0}

#: Reference singlets (ppm) used for frequency referencing (Govindaraju 2000).
PPM_NAA = 2.008
PPM_CR = 3.027
PPM_CHO = 3.185
PPM_WATER = 4.65

#: Default fit range (ppm) for 1H metabolite spectra (DESIGN.md §5.1).
FIT_RANGE_PPM = (0.2, 4.2)

#: Molar concentration of pure water, mol/kg (= mol/L at 1 kg/L); Gasparovic 2006.
PURE_WATER_MOLAL = 55.51

#: Protons per water molecule.
WATER_PROTONS = 2

#: Combined metabolites reported as extra rows (DESIGN.md §5.2).  Each tuple lists
#: alternative spellings; a combined row is written when at least two parts exist.
COMBINATIONS = {
    "tNAA": ("NAA", "NAAG"),
    "tCr": ("Cr", "PCr"),
    "tCho": ("GPC", "PCh", "PCho"),
    "Glx": ("Glu", "Gln"),
    "GABA+": ("GABA", "MM09", "MM_GABA"),
}

#: Main metabolites drawn in fit figures.
MAIN_METABOLITES = ("NAA", "Cr", "PCr", "GPC", "PCh", "PCho", "Ins", "Glu", "Gln", "GABA")
