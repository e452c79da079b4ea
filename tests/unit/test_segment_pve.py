"""Bayesian partial-volume model (bidsmrs.segment.pve): pure NumPy, no ANTs."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.segment.pve import fit_pve, regression_means, simplex_grid


def _mixtures(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random (CSF, GM, WM) fractions: mostly two-tissue mixtures, as at real boundaries."""
    f = rng.dirichlet([0.4, 0.8, 0.8], size=n)
    return f


def _calibrated(rng: np.random.Generator, n: int, concentration: float = 15.0):
    """(priors, truth) with E[truth | prior] = prior, as for population tissue maps."""
    priors = 0.98 * _mixtures(rng, n) + 0.02 / 3
    truth = np.array([rng.dirichlet(concentration * p) for p in priors])
    return priors, truth


def test_simplex_grid_rows_sum_to_one_and_cover_vertices():
    g = simplex_grid(4)
    assert g.shape == (15, 3)
    np.testing.assert_allclose(g.sum(axis=1), 1.0)
    for vertex in np.eye(3):
        assert np.any(np.all(np.isclose(g, vertex), axis=1))


def test_regression_means_recovers_pure_intensities():
    rng = np.random.default_rng(1)
    p = _mixtures(rng, 5000)
    y = p @ np.array([30.0, 70.0, 95.0]) + rng.normal(0, 1.0, 5000)
    np.testing.assert_allclose(regression_means(y, p), [30, 70, 95], atol=0.5)


def test_fit_pve_recovers_fractions_when_priors_are_informative():
    rng = np.random.default_rng(2)
    priors, truth = _calibrated(rng, 20000)
    y = truth @ np.array([300.0, 650.0, 870.0]) + rng.normal(0, 25.0, truth.shape[0])
    fractions, params = fit_pve(y, priors)
    assert fractions.shape == truth.shape and fractions.dtype == np.float32
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-5)
    # better than the priors alone, and unbiased on average
    err = np.abs(fractions - truth).mean(axis=0)
    err_prior = np.abs(priors - truth).mean(axis=0)
    assert np.all(err < err_prior)
    assert np.all(np.abs((fractions - truth).mean(axis=0)) < 0.05)
    assert params.means[0] < params.means[1] < params.means[2]
    assert 10 < params.noise_sd < 60


def test_fit_pve_follows_intensity_against_a_wrong_prior():
    rng = np.random.default_rng(3)
    priors, truth = _calibrated(rng, 10000)
    wrong = slice(0, 300)  # 3 % misregistered: the template says GM, the voxels are pure WM
    truth[wrong] = [0.0, 0.0, 1.0]
    priors[wrong] = [0.1, 0.8, 0.1]
    y = truth @ np.array([300.0, 650.0, 870.0]) + rng.normal(0, 25.0, truth.shape[0])
    fractions, _ = fit_pve(y, priors, concentration=10.0)
    stronger, _ = fit_pve(y, priors, concentration=40.0)
    assert stronger[wrong, 2].mean() < fractions[wrong, 2].mean()  # α sets the trust in the template
    # the intensity pulls the fractions well away from the wrong prior (0.1 WM, 0.8 GM)
    assert fractions[wrong, 2].mean() > 0.25
    assert fractions[wrong, 1].mean() < 0.7


def test_fit_pve_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        fit_pve(np.ones(10), np.ones((9, 3)))
    rng = np.random.default_rng(4)
    p = _mixtures(rng, 3000)
    y_inverted = p @ np.array([900.0, 600.0, 300.0])  # T2-like contrast
    with pytest.raises(ValueError, match="ordered"):
        fit_pve(y_inverted, p)
