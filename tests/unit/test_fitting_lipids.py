"""Lipid components: LCModel's simulated lipid lines, added automatically when a spectrum
carries lipid signal (FitOptions.lipids="auto") and never when it does not."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.basis.core import is_lipid_name
from bidsmrs.basis.macromolecules import LIPID_COMPONENTS, mm_fid, with_lipids
from bidsmrs.fitting import FitOptions, fit_spectrum
from tests.unit.test_fitting_model import DWELL, N, SF, simulate, synthetic_basis

#: Lipid contamination (basis units, FID(0) = amplitude × protons of each line): ~10× tCr at
#: 1.3 ppm, as in a voxel touching the scalp or a necrotic lesion.
LIPID_TRUTH = {"Lip09": 10.0, "Lip13a": 40.0, "Lip13b": 20.0, "Lip20": 12.0}


def _contaminated(seed: int, noise_sd: float = 0.05):
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=seed, noise_sd=noise_sd, lorentz_hz=4.0, gauss_hz=3.0,
                           phase0_deg=0.0, shift_hz=0.0)
    t = np.arange(N) * DWELL
    lip = sum(a * mm_fid(LIPID_COMPONENTS[n], N, DWELL, SF) for n, a in LIPID_TRUTH.items())
    lip = lip * np.exp(-np.pi * 4.0 * t)  # the same Lorentzian broadening as the metabolites
    return basis, spec.replace(fid=spec.fid + lip), truth


def test_lipid_table_is_the_lcmodel_set():
    assert set(LIPID_COMPONENTS) == {"Lip09", "Lip13a", "Lip13b", "Lip20"}
    assert [ln.ppm for ln in LIPID_COMPONENTS["Lip20"]] == [2.04, 2.25, 2.80]
    b = with_lipids(synthetic_basis())
    assert all(is_lipid_name(n) for n in b.names[-4:]) and all(b.is_macromolecule[-4:])
    k = b.index("Lip13a")
    assert b.fids[0, k].real == pytest.approx(2.0)  # FID(0) = amplitude (proton equivalents)
    assert with_lipids(b) is b  # nothing added twice


def test_auto_adds_lipids_to_contaminated_spectrum_and_recovers_metabolites():
    basis, spec, truth = _contaminated(seed=3)
    auto = fit_spectrum(spec, basis, FitOptions())
    never = fit_spectrum(spec, basis, FitOptions(lipids="never"))
    assert auto.params["lipids"].startswith("added")
    assert "Lip13a" in auto.names and auto.params["groups"]["Lip13a"] == "lipids"
    assert auto.combined(["Lip13a", "Lip13b"])[0] == pytest.approx(60.0, rel=0.1)
    for name in ("NAA", "Cr", "Glu", "Lac"):
        assert auto.amplitude(name) == pytest.approx(truth[name], rel=0.12), name
    # without lipids the 1.3 ppm lipid is pushed into lactate (the failure this prevents)
    assert never.amplitude("Lac") > 3 * truth["Lac"]
    assert abs(auto.amplitude("Lac") - truth["Lac"]) < abs(never.amplitude("Lac") - truth["Lac"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_leaves_clean_spectrum_alone(seed):
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=seed, noise_sd=0.05)
    auto = fit_spectrum(spec, basis, FitOptions())
    never = fit_spectrum(spec, basis, FitOptions(lipids="never"))
    assert not any(is_lipid_name(n) for n in auto.names)
    np.testing.assert_allclose(auto.amplitudes, never.amplitudes, rtol=1e-10, atol=1e-12)


def test_always_and_basis_lipids_are_fitted_as_their_own_group():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=4, noise_sd=0.05)
    always = fit_spectrum(spec, basis, FitOptions(lipids="always"))
    assert set(LIPID_COMPONENTS) <= set(always.names)
    assert set(always.params["shift_hz"]) == {"metabolites", "macromolecules", "lipids"}
    given = fit_spectrum(spec, with_lipids(basis, ["Lip13a"]), FitOptions(lipids="never"))
    assert given.params["groups"]["Lip13a"] == "lipids"
    assert "lipids" not in given.params  # nothing was added
    with pytest.raises(ValueError, match="lipids"):
        FitOptions(lipids="sometimes")


def test_auto_never_adds_lipids_without_creatine_to_compare():
    """Without Cr/PCr in the basis the size rule cannot be applied: no lipids (BIC alone would
    add them to any imperfect fit)."""
    basis, spec, _ = _contaminated(seed=5)
    no_cr = basis.subset([n for n in basis.names if n != "Cr"])
    fit = fit_spectrum(spec, no_cr, FitOptions())
    assert not any(is_lipid_name(n) for n in fit.names)
    assert "lipids/tCr nan" in fit.params["lipids"]


def test_only_lipids_inside_the_fit_range_are_used():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=6, noise_sd=0.05)
    fit = fit_spectrum(spec, basis, FitOptions(lipids="always", ppm_range=(1.8, 4.2)))
    assert [n for n in fit.names if is_lipid_name(n)] == ["Lip20"]  # 2.04/2.25/2.80 ppm lines
    plain = fit_spectrum(spec, basis, FitOptions(lipids="auto", ppm_range=(3.5, 4.2)))
    assert not any(is_lipid_name(n) for n in plain.names) and "lipids" not in plain.params


def test_auto_needs_a_visible_lipid_peak():
    """Broad lipid signal smaller than the tCr singlet at 1.3 ppm (peak ratio < 1) is left to
    the MM/baseline model even where the amplitude and BIC rules alone would add lipids; the
    same contamination, larger, is modelled. The decision is recorded in params["lipids"]."""
    from bidsmrs.fitting.model import _lipid_peak_to_creatine

    basis, spec, truth = _contaminated(seed=3)
    clean, _ = simulate(basis, seed=3, noise_sd=0.05, lorentz_hz=4.0, gauss_hz=3.0, phase0_deg=0.0, shift_hz=0.0)
    lipid = spec.fid - clean.fid
    small = spec.replace(fid=clean.fid + 0.2 * lipid)  # lipids 2× tCr in amplitude, peak 0.4× tCr
    never = fit_spectrum(small, basis, FitOptions(lipids="never"))
    assert _lipid_peak_to_creatine(never) < 1.0
    # without the visibility rule the lipids would be added (amplitude ≥ tCr, BIC prefers them)
    loose = fit_spectrum(small, basis, FitOptions(lipid_min_peak_ratio_tcr=0.0))
    assert loose.params["lipids"].startswith("added")
    auto = fit_spectrum(small, basis, FitOptions())
    assert auto.params["lipids"].startswith("not added") and "1.3 ppm peak" in auto.params["lipids"]
    np.testing.assert_allclose(auto.amplitudes, never.amplitudes, rtol=1e-10, atol=1e-12)
    big = fit_spectrum(spec, basis, FitOptions(lipids="never"))
    assert _lipid_peak_to_creatine(big) > 1.0
