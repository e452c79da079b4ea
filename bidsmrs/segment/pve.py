"""Partial-volume tissue fractions from one T1w and template priors (Bayesian, pure NumPy).

Each brain voxel has unknown volume fractions ``f = (f_CSF, f_GM, f_WM)`` on the simplex. Its
bias-corrected intensity is ``y = f·μ + ε`` with ``ε ~ N(0, σ²)`` (linear partial-volume
model, as in FSL FAST's PVE, Zhang et al. 2001, IEEE TMI 20:45). A single intensity cannot
identify three fractions, so the registered template priors ``π(x)`` enter as a Dirichlet
prior ``p(f) ∝ Π f_k^(α·π_k − 1)``, whose mean is ``π(x)`` (template-driven priors as in SPM's
unified segmentation, Ashburner & Friston 2005, NeuroImage 26:839). The posterior mean of
``f`` is computed on a grid over the simplex (fractions of 0 are evaluated at half a grid
step). ``μ`` comes from regressing intensities on the priors (unbiased if the priors are
calibrated probabilities); ``σ`` (and optionally ``μ``) is then estimated by EM.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["PveParameters", "simplex_grid", "regression_means", "fit_pve", "CLASSES"]

logger = logging.getLogger(__name__)

#: Class order used throughout this module: CSF, GM, WM (increasing T1w intensity).
CLASSES = ("csf", "gm", "wm")


@dataclass(frozen=True)
class PveParameters:
    """Fitted parameters of the partial-volume model.

    Attributes
    ----------
    means : tuple of float
        Pure-tissue intensities (CSF, GM, WM), input intensity units.
    noise_sd : float
        Intensity noise SD (input intensity units).
    concentration : float
        Dirichlet concentration ``α`` of the template prior (dimensionless).
    iterations : int
        EM iterations run.
    """

    means: tuple[float, float, float]
    noise_sd: float
    concentration: float
    iterations: int


def simplex_grid(n_steps: int = 10) -> np.ndarray:
    """All (CSF, GM, WM) fractions that are multiples of ``1/n_steps``.

    Parameters
    ----------
    n_steps : int
        Divisions per edge (≥ 1); ``(n+1)(n+2)/2`` points.

    Returns
    -------
    numpy.ndarray
        ``(M, 3)`` rows summing to 1.

    Examples
    --------
    >>> simplex_grid(1).tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    >>> simplex_grid(10).shape
    (66, 3)
    """
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    rows = [(i, j, n_steps - i - j) for i in range(n_steps + 1) for j in range(n_steps + 1 - i)]
    return np.asarray(rows, float) / n_steps


def regression_means(y: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Pure-class means from the least-squares fit ``y ≈ priors @ μ`` (intensity units).

    Unbiased when the priors are calibrated probabilities of the voxel fractions.

    Examples
    --------
    >>> p = np.array([[1, 0, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1.0]])
    >>> np.round(regression_means(p @ [1.0, 2.0, 3.0], p), 6).tolist()
    [1.0, 2.0, 3.0]
    """
    mu, *_ = np.linalg.lstsq(np.asarray(priors, float), np.asarray(y, float), rcond=None)
    return mu


def _posterior(y, priors, grid, log_grid, means, sd, alpha):
    log_r = (alpha * priors - 1.0) @ log_grid.T
    resid = (y[:, None] - (grid @ means)[None, :]) / sd
    log_r -= 0.5 * resid * resid
    log_r -= log_r.max(axis=1, keepdims=True)
    r = np.exp(log_r)
    r /= r.sum(axis=1, keepdims=True)
    return r


def fit_pve(intensity: np.ndarray, priors: np.ndarray, *, concentration: float = 20.0,
            n_steps: int = 10, max_iter: int = 10, tol: float = 1e-3, prior_floor: float = 0.02,
            em_voxels: int = 200_000, confident_prior: float = 0.8,
            update_means: bool = False, chunk: int = 200_000) -> tuple[np.ndarray, PveParameters]:
    """Posterior-mean (CSF, GM, WM) volume fractions of brain voxels.

    Parameters
    ----------
    intensity : numpy.ndarray
        ``(N,)`` bias-corrected T1w intensities of the brain voxels (any positive units).
    priors : numpy.ndarray
        ``(N, 3)`` template priors (CSF, GM, WM) of the same voxels.
    concentration : float
        Dirichlet concentration ``α`` (dimensionless): larger trusts the template more. With
        20, a voxel with prior (0.5, 0.5, 0) has a prior SD of 0.11 per fraction (Beta(10, 10)).
    n_steps : int
        Simplex grid resolution (fraction step ``1/n_steps``).
    max_iter : int
        Maximum EM iterations.
    tol : float
        Stop when ``μ`` and ``σ`` change by less than ``tol`` × (WM − CSF mean).
    prior_floor : float
        Mixed into every prior row (``(1 − floor)·π + floor/3``) so that no tissue is
        excluded outright where the registration is imperfect.
    em_voxels : int
        ``σ`` is estimated on at most this many voxels (a fixed, seeded subsample), which
        keeps the cost near one posterior pass over the brain.
    confident_prior : float
        ``σ`` is estimated only on voxels whose largest prior is at least this (tissue
        interiors), so that template misfit at tissue borders does not inflate it.
    update_means : bool
        Also re-estimate ``μ`` in EM (weighted least squares over the posterior), starting
        from the regression on the priors. Off by default: on the MNI152 phantoms it moved
        the GM/WM split of the pons by a further 0.04 (benchmarks/RESULTS_segmentation.md).
    chunk : int
        Voxels per vectorised block (memory ``chunk × grid`` floats).

    Returns
    -------
    fractions : numpy.ndarray
        ``(N, 3)`` float32 volume fractions (CSF, GM, WM), rows summing to 1.
    params : PveParameters

    Raises
    ------
    ValueError
        If shapes disagree or the means are not ordered CSF < GM < WM (not a T1w contrast).
    """
    y = np.asarray(intensity, np.float64).ravel()
    pri = np.clip(np.asarray(priors, np.float64), 0, None)
    if pri.shape != (y.size, 3):
        raise ValueError(f"priors must have shape ({y.size}, 3), got {pri.shape}")
    pri = pri / np.maximum(pri.sum(axis=1, keepdims=True), 1e-12)
    pri = (1 - prior_floor) * pri + prior_floor / 3
    scale = float(np.percentile(y, 99)) or 1.0
    y = y / scale
    grid = simplex_grid(n_steps)
    log_grid = np.log(np.maximum(grid, 0.5 / n_steps))
    means = regression_means(y, pri)
    sd = float(np.std(y - pri @ means))
    # σ is learnt where the template is confident (interior of tissues), so that the misfit of
    # the priors at tissue borders of a real brain is not mistaken for noise.
    confident = np.flatnonzero(pri.max(axis=1) >= confident_prior)
    if confident.size < 1000:
        confident = np.arange(y.size)
    if confident.size > em_voxels:
        confident = np.sort(np.random.default_rng(0).choice(confident, em_voxels, replace=False))
    y_em, pri_em = y[confident], pri[confident]
    it = 0
    for it in range(1, max_iter + 1):
        ss = 0.0
        a = np.zeros((3, 3))
        b = np.zeros(3)
        for start in range(0, y_em.size, chunk):
            yc, pc = y_em[start:start + chunk], pri_em[start:start + chunk]
            r = _posterior(yc, pc, grid, log_grid, means, sd, concentration)
            w = r.sum(axis=0)
            a += grid.T @ (w[:, None] * grid)
            b += grid.T @ (r.T @ yc)
            pred = grid @ means
            ss += float(np.sum(r * (yc[:, None] - pred[None, :]) ** 2))
        new_sd = max(np.sqrt(ss / y_em.size), 1e-4)
        new_means = np.linalg.solve(a, b) if update_means else means
        change = max(abs(new_sd - sd), float(np.max(np.abs(new_means - means))))
        change /= max(abs(new_means[2] - new_means[0]), 1e-12)
        means, sd = new_means, new_sd
        if change < tol:
            break
    if not (means[0] < means[1] < means[2]):
        raise ValueError(f"tissue means not ordered CSF < GM < WM: {means * scale}")
    fractions = np.empty((y.size, 3), np.float32)
    for start in range(0, y.size, chunk):
        r = _posterior(y[start:start + chunk], pri[start:start + chunk], grid, log_grid,
                       means, sd, concentration)
        fractions[start:start + chunk] = r @ grid
    logger.debug("PVE: %d EM iterations, means %s, noise SD %.4g", it, means * scale, sd * scale)
    params = PveParameters(means=tuple(float(m) for m in means * scale), noise_sd=float(sd * scale),
                           concentration=float(concentration), iterations=it)
    return fractions, params
