"""Spin-system table: proton counts, symmetric J matrices, shifts in range, names."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.basis.spin_systems import DEFAULT_METABOLITES, SPIN_SYSTEMS, SpinGroup, get_molecule

# Non-exchangeable protons simulated per molecule (Govindaraju 2000 structures).
EXPECTED_PROTONS = {"Ace": 3, "Ala": 4, "Asc": 4, "Asp": 3, "Cr": 5, "PCr": 5, "GABA": 6, "Glc": 7,
                    "Gln": 5, "Glu": 5, "Gly": 2, "GPC": 18, "PCh": 13, "GSH": 10, "Ins": 6,
                    "Lac": 4, "NAA": 6, "NAAG": 11, "PE": 4, "sI": 6, "Tau": 4}


def test_every_default_metabolite_is_in_the_table():
    assert set(DEFAULT_METABOLITES) <= set(SPIN_SYSTEMS)
    assert len(DEFAULT_METABOLITES) == 20
    assert set(EXPECTED_PROTONS) == set(SPIN_SYSTEMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PROTONS))
def test_proton_counts(name):
    assert SPIN_SYSTEMS[name].n_protons == pytest.approx(EXPECTED_PROTONS[name])


@pytest.mark.parametrize("name", sorted(SPIN_SYSTEMS))
def test_j_symmetric_and_shifts_in_range(name):
    for g in SPIN_SYSTEMS[name].groups:
        j = g.j_matrix()
        assert np.allclose(j, j.T) and np.all(np.diag(j) == 0)
        assert np.all(np.abs(j) < 20)  # 1H–1H / 1H–31P couplings in these molecules are < 20 Hz
        h = np.asarray(g.shifts_ppm)[g.is_proton]
        assert np.all((h > 0.5) & (h < 5.5))
        assert g.n_spins <= 7  # simulation cost bounded (2^7 states)


def test_glucose_anomer_fractions_and_key_singlets():
    glc = SPIN_SYSTEMS["Glc"]
    assert [g.scale for g in glc.groups] == [0.36, 0.64]
    assert SPIN_SYSTEMS["Cr"].groups[0].shifts_ppm == (3.027,)
    assert SPIN_SYSTEMS["NAA"].groups[0].shifts_ppm == (2.008,)
    assert SPIN_SYSTEMS["NAA"].groups[0].scale == 3


def test_aliases_and_errors():
    assert get_molecule("PCho").name == "PCh"
    assert get_molecule("sIns").name == "sI"
    assert get_molecule("naa").name == "NAA"
    with pytest.raises(KeyError, match="unknown metabolite"):
        get_molecule("Unobtainium")
    with pytest.raises(ValueError):
        SpinGroup((1.0, 2.0), ((0, 0, 5.0),))
