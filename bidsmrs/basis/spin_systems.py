"""Spin systems of brain metabolites: chemical shifts (ppm), J couplings (Hz), proton counts.

Source: Govindaraju V, Young K, Maudsley AA. Proton NMR chemical shifts and coupling constants
for brain metabolites. NMR Biomed 2000;13:129–153, including its corrigendum values (GABA, PCh,
GPC, Tau) as collated in the authors' online MIDAS table. The per-molecule ``source`` field
names which of the two applies. Govind V, Young K, Maudsley AA. Corrigendum. NMR Biomed
2015;28:923–924 published further corrections; its numbers could not be found in the sources
searchable here (2026-11-22: the MIDAS table, spant ``mol_parameters.R``, VeSPA
``metabolites.xml`` and an FID-A-derived table carry the 2000 values wherever they define Asp,
Gln, Glu, GSH, NAAG and PCh), so no value was changed and none was guessed or fitted. Shifts are at
37 °C, pH 7, referenced to DSS at 0 ppm. Against the ISMRM fitting-challenge basis (simulated
with slightly different parameters, e.g. its Cr CH3 sits at 3.024 ppm) the agreement is
documented in benchmarks/RESULTS_basis.md (Asp, Gln, GSH differ most; the PCh area gap over
0.2–4.2 ppm comes from where its OCH2 multiplet sits, not from its proton count).

Representation
--------------
A :class:`Molecule` is a set of independent :class:`SpinGroup` s (weakly coupled or
uncoupled fragments, e.g. the acetyl CH3 and the aspartate CH–CH2 of NAA), each simulated
separately and summed, as VeSPA/FID-A/spant do.

* An uncoupled group of ``k`` equivalent protons (a singlet) is ONE spin with ``scale = k``:
  its signal is exactly ``k`` times that of one proton.
* Coupled equivalent protons (e.g. the Lac CH3 coupled to its CH) are listed as separate spins
  with identical shifts and couplings (magnetically equivalent spins; the coupling *among*
  them has no observable effect and is set to 0), so multiplet patterns are right.
* ``scale`` also carries anomer fractions (Glc: 0.36 α, 0.64 β, the equilibrium ratio the
  ISMRM fitting challenge also uses).
* Heteronuclear spins (``"31P"``) split proton lines through weak coupling ``J·Iz·Sz`` and are
  never pulsed or detected. 14N couplings (≤ 2.8 Hz, quadrupolar-relaxed in vivo) are omitted.

Proton count of a molecule (``Molecule.n_protons``) = Σ over groups of ``scale`` × number of
1H spins; it equals FID(0) of an ideal pulse–acquire simulation (the amplitude convention of
:mod:`bidsmrs.basis.core`). Exchangeable NH/OH protons and resonances above 4.7 ppm (except
Glc-α H1 and the Asc/NAA/NAAG/GSH CH groups near 4.4–4.6 ppm, kept for completeness) are not
simulated.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

__all__ = ["SpinGroup", "Molecule", "SPIN_SYSTEMS", "DEFAULT_METABOLITES", "get_molecule"]


@dataclass(frozen=True)
class SpinGroup:
    """One coupled fragment.

    Parameters
    ----------
    shifts_ppm : tuple of float
        Chemical shift of each spin (ppm). For heteronuclear spins the value is unused.
    couplings_hz : tuple of (int, int, float)
        Scalar couplings ``(i, j, J_Hz)`` between spins i and j (0-based, i ≠ j).
    scale : float
        Signal multiplier of the whole group (protons per simulated spin for singlets,
        anomer fraction for Glc).
    nuclei : tuple of str
        Nucleus of each spin; empty means all ``"1H"``.
    """

    shifts_ppm: tuple[float, ...]
    couplings_hz: tuple[tuple[int, int, float], ...] = ()
    scale: float = 1.0
    nuclei: tuple[str, ...] = ()

    def __post_init__(self):
        n = len(self.shifts_ppm)
        if self.nuclei and len(self.nuclei) != n:
            raise ValueError("nuclei and shifts_ppm differ in length")
        for i, j, _ in self.couplings_hz:
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise ValueError(f"bad coupling indices ({i}, {j}) for {n} spins")

    @property
    def n_spins(self) -> int:
        return len(self.shifts_ppm)

    @property
    def spin_nuclei(self) -> tuple[str, ...]:
        return self.nuclei if self.nuclei else ("1H",) * self.n_spins

    @property
    def is_proton(self) -> np.ndarray:
        return np.array([nuc == "1H" for nuc in self.spin_nuclei])

    def j_matrix(self) -> np.ndarray:
        """Symmetric J matrix (Hz), zero diagonal."""
        j = np.zeros((self.n_spins, self.n_spins))
        for a, b, val in self.couplings_hz:
            j[a, b] = j[b, a] = val
        return j

    @property
    def n_protons(self) -> float:
        return float(self.scale * self.is_proton.sum())


@dataclass(frozen=True)
class Molecule:
    """A metabolite: name (DESIGN.md §5.2 output name), spin groups and citation."""

    name: str
    groups: tuple[SpinGroup, ...]
    source: str = "Govindaraju 2000 NMR Biomed 13:129"

    @property
    def n_protons(self) -> float:
        return float(sum(g.n_protons for g in self.groups))


def _singlet(ppm: float, protons: float) -> SpinGroup:
    return SpinGroup((ppm,), (), float(protons))


_G2000 = "Govindaraju 2000 NMR Biomed 13:129"
_G2000C = "Govindaraju 2000 NMR Biomed 13:129 (corrigendum values)"

_TABLE = (
    Molecule("Ace", (_singlet(1.9040, 3),), _G2000),
    Molecule("Ala", (SpinGroup((3.7746, 1.4667, 1.4667, 1.4667),
                               ((0, 1, 7.234), (0, 2, 7.234), (0, 3, 7.234))),), _G2000),
    Molecule("Asc", (SpinGroup((4.4965, 4.0072, 3.7469, 3.7194),
                               ((0, 1, 2.07), (1, 2, 6.00), (1, 3, 7.60), (2, 3, -11.52))),),
             _G2000),
    Molecule("Asp", (SpinGroup((3.8914, 2.8011, 2.6533),
                               ((0, 1, 3.647), (0, 2, 9.107), (1, 2, -17.426))),), _G2000),
    Molecule("Cr", (_singlet(3.0270, 3), _singlet(3.9130, 2)), _G2000),
    Molecule("PCr", (_singlet(3.0290, 3), _singlet(3.9300, 2)), _G2000),
    # GABA: 4CH2 (3.0128 ×2), 3CH2 (1.889 ×2), 2CH2 (2.284 ×2)
    Molecule("GABA", (SpinGroup((3.0128, 3.0128, 1.8890, 1.8890, 2.2840, 2.2840),
                                ((0, 1, -12.021), (0, 2, 5.372), (0, 3, 7.127), (1, 2, 10.578),
                                 (1, 3, 6.982), (2, 3, -13.121), (2, 4, 7.755), (2, 5, 7.432),
                                 (3, 4, 6.173), (3, 5, 7.933), (4, 5, -10.744))),), _G2000C),
    # Glucose: α (0.36) and β (0.64) anomers; H1, H2, H3, H4, H5, H6, H6'
    Molecule("Glc", (
        SpinGroup((5.2160, 3.5190, 3.6980, 3.3950, 3.8220, 3.8260, 3.7490),
                  ((0, 1, 3.80), (1, 2, 9.60), (2, 3, 9.40), (3, 4, 9.90), (4, 5, 1.50),
                   (4, 6, 6.00), (5, 6, -12.10)), scale=0.36),
        SpinGroup((4.6300, 3.2300, 3.4730, 3.3870, 3.4520, 3.8820, 3.7070),
                  ((0, 1, 8.00), (1, 2, 9.10), (2, 3, 9.40), (3, 4, 8.90), (4, 5, 1.60),
                   (4, 6, 5.40), (5, 6, -12.30)), scale=0.64)), _G2000),
    Molecule("Gln", (SpinGroup((3.7530, 2.1290, 2.1090, 2.4320, 2.4540),
                               ((0, 1, 5.847), (0, 2, 6.500), (1, 2, -14.504), (1, 3, 9.165),
                                (1, 4, 6.347), (2, 3, 6.324), (2, 4, 9.209), (3, 4, -15.371))),),
             _G2000),
    Molecule("Glu", (SpinGroup((3.7433, 2.0375, 2.1200, 2.3378, 2.3520),
                               ((0, 1, 7.331), (0, 2, 4.651), (1, 2, -14.849), (1, 3, 6.413),
                                (1, 4, 8.406), (2, 3, 8.478), (2, 4, 6.875), (3, 4, -15.915))),),
             _G2000),
    Molecule("Gly", (_singlet(3.5480, 2),), _G2000),
    # GPC: N(CH3)3 singlet; glycerol moiety (with 31P); choline CH2–CH2 (with 31P; 14N omitted)
    Molecule("GPC", (
        _singlet(3.2120, 9),
        SpinGroup((3.6050, 3.6720, 3.9030, 3.8710, 3.9460, 0.0),
                  ((0, 1, -14.78), (0, 2, 5.77), (1, 2, 4.53), (1, 3, 5.77), (1, 4, 4.53),
                   (3, 4, -14.78), (3, 5, 6.03), (4, 5, 6.03)),
                  nuclei=("1H", "1H", "1H", "1H", "1H", "31P")),
        SpinGroup((4.3120, 4.3120, 3.6590, 3.6590, 0.0),
                  ((0, 1, -9.32), (0, 2, 3.10), (0, 3, 5.90), (0, 4, 6.03), (1, 2, 5.90),
                   (1, 3, 3.10), (1, 4, 6.03), (2, 3, -9.32)),
                  nuclei=("1H", "1H", "1H", "1H", "31P"))), _G2000C),
    # PCh: N(CH3)3 singlet (9 H, one spin × 9: exact for an uncoupled group); choline CH2–CH2
    # with 31P. The OCH2 at 4.2805 ppm lies just above the usual 4.2 ppm fit-range edge (the
    # fitting-challenge basis puts it near 4.1–4.2 ppm; whole-spectrum areas agree to 0.6 %).
    Molecule("PCh", (
        _singlet(3.2080, 9),
        SpinGroup((4.2805, 4.2805, 3.6410, 3.6410, 0.0),
                  ((0, 1, -14.89), (0, 2, 2.284), (0, 3, 7.231), (0, 4, 6.298), (1, 2, 7.326),
                   (1, 3, 2.235), (1, 4, 6.249), (2, 3, -14.19)),
                  nuclei=("1H", "1H", "1H", "1H", "31P"))), _G2000C),
    # GSH: glycine CH2 singlet; cysteine CH–CH2; glutamate CH–CH2–CH2
    Molecule("GSH", (
        _singlet(3.7690, 2),
        SpinGroup((4.5608, 2.9264, 2.9747), ((0, 1, 7.09), (0, 2, 4.71), (1, 2, -14.06))),
        SpinGroup((3.7690, 2.1590, 2.1460, 2.5100, 2.5600),
                  ((0, 1, 6.34), (0, 2, 6.36), (1, 2, -15.48), (1, 3, 6.70), (1, 4, 7.60),
                   (2, 3, 7.60), (2, 4, 6.70), (3, 4, -15.92)))), _G2000),
    # myo-inositol H1..H6
    Molecule("Ins", (SpinGroup((3.5217, 4.0538, 3.5217, 3.6144, 3.2690, 3.6144),
                               ((0, 1, 2.889), (0, 5, 9.998), (1, 2, 3.006), (2, 3, 9.997),
                                (3, 4, 9.485), (4, 5, 9.482))),), _G2000),
    Molecule("Lac", (SpinGroup((4.0974, 1.3142, 1.3142, 1.3142),
                               ((0, 1, 6.933), (0, 2, 6.933), (0, 3, 6.933))),), _G2000),
    Molecule("NAA", (_singlet(2.0080, 3),
                     SpinGroup((4.3817, 2.6727, 2.4863),
                               ((0, 1, 3.861), (0, 2, 9.821), (1, 2, -15.592)))), _G2000),
    # NAAG: acetyl singlet; aspartyl CH–CH2; glutamate CH–CH2–CH2 (J as tabulated by MIDAS
    # for the glutamyl moiety; small contribution).
    Molecule("NAAG", (
        _singlet(2.0420, 3),
        SpinGroup((4.6070, 2.7210, 2.5190), ((0, 1, 4.412), (0, 2, 9.515), (1, 2, -15.910))),
        SpinGroup((4.1280, 1.8810, 2.0490, 2.1900, 2.1800),
                  ((0, 1, 4.61), (0, 2, 8.42), (1, 2, -14.28), (1, 3, 10.56), (1, 4, 6.09),
                   (2, 3, 4.90), (2, 4, 11.11), (3, 4, -15.02)))), _G2000),
    # Phosphoethanolamine: OCH2 (3.9765 ×2, coupled to 31P), NCH2 (3.2160 ×2)
    Molecule("PE", (SpinGroup((3.9765, 3.9765, 3.2160, 3.2160, 0.0),
                              ((0, 1, -14.56), (0, 2, 3.182), (0, 3, 6.716), (1, 2, 7.204),
                               (1, 3, 2.980), (2, 3, -14.71), (0, 4, 7.288), (1, 4, 7.088)),
                              nuclei=("1H", "1H", "1H", "1H", "31P")),), _G2000),
    Molecule("sI", (_singlet(3.3400, 6),), _G2000),
    Molecule("Tau", (SpinGroup((3.4206, 3.4206, 3.2459, 3.2459),
                               ((0, 1, -12.438), (0, 2, 6.742), (0, 3, 6.464), (1, 2, 6.403),
                                (1, 3, 6.792), (2, 3, -12.93))),), _G2000C),
)

#: Molecule table keyed by output name (read-only).
SPIN_SYSTEMS: Mapping[str, Molecule] = MappingProxyType({m.name: m for m in _TABLE})

#: The default metabolites of the built-in basis (DESIGN.md §5.2 contract names, in order).
DEFAULT_METABOLITES: tuple[str, ...] = ("Asc", "Asp", "Cr", "PCr", "GABA", "Glc", "Gln", "Glu",
                                        "Gly", "GPC", "PCh", "GSH", "Ins", "Lac", "NAA", "NAAG",
                                        "PE", "sI", "Tau", "Ala")

_ALIASES = {"pcho": "PCh", "sins": "sI", "scyllo": "sI", "mi": "Ins", "myo": "Ins",
            "lactate": "Lac", "glucose": "Glc", "acetate": "Ace"}


def get_molecule(name: str) -> Molecule:
    """Look a molecule up by output name (case-insensitive; ``PCho``/``sIns`` aliases)."""
    if name in SPIN_SYSTEMS:
        return SPIN_SYSTEMS[name]
    low = name.lower()
    for key, mol in SPIN_SYSTEMS.items():
        if key.lower() == low:
            return mol
    if low in _ALIASES:
        return SPIN_SYSTEMS[_ALIASES[low]]
    raise KeyError(f"unknown metabolite {name!r}; known: {', '.join(SPIN_SYSTEMS)}")
