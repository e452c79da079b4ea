"""Bayesian partial-volume model (bidsmrs.segment.pve): pure NumPy, no ANTs."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.segment.pve import (fit_pve, fit_pve_volume, regression_means, robust_class_sd, simplex_grid,
                                  simplex_weights, smooth_in_mask)


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


def test_simplex_weights_integrate_the_simplex():
    for n in (1, 4, 10):
        g = simplex_grid(n)
        w = simplex_weights(g)
        # every lattice point carries (number of small triangles it touches) / 6
        assert np.isclose(w.sum(), n * n / 2)
        assert np.all(w[np.all(g > 0, axis=1)] == 1.0)
        assert np.allclose(np.sort(w[np.isclose(g.max(axis=1), 1.0)]), 1 / 6)


def test_robust_class_sd_ignores_mislabelled_voxels():
    rng = np.random.default_rng(5)
    y = np.r_[rng.normal(870.0, 20.0, 20000), rng.normal(650.0, 20.0, 2000)]  # 9 % is really GM
    priors = np.tile([0.0, 0.05, 0.95], (y.size, 1))
    sd = robust_class_sd(y, priors)
    assert 19 < sd < 25 and np.std(y) > 60
    assert robust_class_sd(y[:10], priors[:10]) is None  # too few confident voxels


def test_smooth_in_mask_follows_a_linear_field_from_sparse_samples():
    shape = (40, 40, 40)
    mask = np.zeros(shape, bool)
    mask[4:36, 4:36, 4:36] = True
    x = np.nonzero(mask)[0].astype(float)
    field = 0.01 * (x - 20)
    rng = np.random.default_rng(6)
    weights = (rng.random(x.size) < 0.2).astype(float)  # a fifth of the voxels are observed
    smooth = smooth_in_mask(np.where(weights > 0, field, 0.0), weights, mask, (2.0, 2.0, 2.0), 8.0)
    inner = (x > 10) & (x < 30)
    np.testing.assert_allclose(smooth[inner], field[inner], atol=0.02)


def _folded_phantom(rng, bias_amplitude=0.08):
    """Folded GM/WM/CSF volume (2 mm voxels), smoothed truth as priors, smooth bias and noise."""
    from scipy import ndimage

    shape = (56, 56, 56)
    i, j, k = np.indices(shape, dtype=float)
    s = np.sin(2 * np.pi * i / 20) + np.sin(2 * np.pi * j / 22) + np.sin(2 * np.pi * k / 18)
    wm = np.clip(s - 0.3, 0, 1)
    csf = np.clip(-s - 1.6, 0, 1)
    gm = 1 - wm - csf
    truth = np.stack([csf, gm, wm], axis=-1)
    priors = np.stack([ndimage.gaussian_filter(t, 1.5) for t in (csf, gm, wm)], axis=-1)
    bias = np.exp(bias_amplitude * ((i - 28) / 28 + 0.5 * ((k - 28) / 28) ** 2))
    y = (truth @ np.array([300.0, 650.0, 870.0])) * bias + rng.normal(0, 15.0, shape)
    mask = np.ones(shape, bool)
    mask[:3], mask[-3:], mask[:, :3], mask[:, -3:], mask[:, :, :3], mask[:, :, -3:] = (False,) * 6
    return y[mask], priors[mask], truth[mask], bias[mask], mask


def test_fit_pve_volume_removes_a_residual_bias_and_beats_the_plain_fit():
    rng = np.random.default_rng(7)
    y, priors, truth, bias, mask = _folded_phantom(rng)
    plain, _ = fit_pve(y, priors)
    fractions, params, field = fit_pve_volume(y, priors, mask, (2.0, 2.0, 2.0), bias_sigma_mm=15.0)
    assert fractions.shape == truth.shape and field.shape == y.shape
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-5)
    # the estimated residual bias follows the true one (up to a global scale)
    assert np.corrcoef(np.log(field), np.log(bias))[0, 1] > 0.9
    # regional fractions (8 octants) are closer to the truth than without the bias correction
    x = np.nonzero(mask)
    octant = (x[0] >= 28) * 4 + (x[1] >= 28) * 2 + (x[2] >= 28)
    def worst(f):
        return max(np.abs(f[octant == o].mean(axis=0) - truth[octant == o].mean(axis=0)).max() for o in range(8))
    assert worst(fractions) < 0.03 < worst(plain)
    # σ is the noise-level SD of the white matter, not inflated by the template misfit
    assert 10 < params.noise_sd < 30


def test_fit_pve_volume_without_pure_voxels_falls_back_to_a_plain_fit():
    rng = np.random.default_rng(8)
    shape = (30, 30, 30)
    mask = np.ones(shape, bool)
    n = mask.sum()
    truth = rng.dirichlet([4.0, 10.0, 6.0], size=n)  # mixtures only: no voxel is pure
    priors = 0.6 * truth + 0.4 * np.array([0.2, 0.5, 0.3])
    y = truth @ np.array([300.0, 650.0, 870.0]) + rng.normal(0, 10.0, n)
    fractions, params, field = fit_pve_volume(y, priors, mask, (1.0, 1.0, 1.0), pure_fraction=0.99)
    assert fractions.shape == (n, 3) and np.all(field == 1)
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-5)
