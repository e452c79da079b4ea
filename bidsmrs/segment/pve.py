"""Partial-volume tissue fractions from one T1w and template priors (Bayesian, pure NumPy).

Each brain voxel has unknown volume fractions ``f = (f_CSF, f_GM, f_WM)`` on the simplex. Its
bias-corrected intensity is ``y = f·μ + ε`` with ``ε ~ N(0, σ²)`` (linear partial-volume
model, as in FSL FAST's PVE, Zhang et al. 2001, IEEE TMI 20:45). A single intensity cannot
identify three fractions, so the registered template priors ``π(x)`` enter as a Dirichlet
prior ``p(f) ∝ Π f_k^(α·π_k − 1)``, whose mean is ``π(x)`` (template-driven priors as in SPM's
unified segmentation, Ashburner & Friston 2005, NeuroImage 26:839). The posterior mean of
``f`` is computed on a grid over the simplex (fractions of 0 are evaluated at half a grid
step; lattice points carry quadrature weights, ``simplex_weights``). ``μ`` comes from
regressing intensities on the priors (unbiased if the priors are calibrated probabilities).

``fit_pve`` estimates ``σ`` by EM (or takes it as given). ``fit_pve_volume``, used by the
pipeline, fixes ``σ`` to the robust SD of the white-matter interior (``robust_class_sd``), so
that the misfit of the template is not absorbed as noise, and removes the smooth residual bias
left by N4 using the voxels that the fit calls pure GM or WM (``smooth_in_mask``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["PveParameters", "simplex_grid", "simplex_weights", "regression_means", "fit_pve",
           "robust_class_sd", "smooth_in_mask", "fit_pve_volume", "CLASSES"]

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


def simplex_weights(grid: np.ndarray) -> np.ndarray:
    """Quadrature weights of simplex-lattice points: 1 inside, 1/2 on an edge, 1/6 at a vertex.

    Each weight is proportional to the area of the simplex that the point represents, so that
    sums over the grid approximate integrals over the simplex. Without them, the edges and
    vertices (one or two fractions 0) are over-weighted and the posterior mean is pulled
    towards the pure and two-tissue points.

    Examples
    --------
    >>> simplex_weights(simplex_grid(2)).tolist()
    [0.16666666666666666, 0.5, 0.16666666666666666, 0.5, 0.5, 0.16666666666666666]
    """
    nonzero = (np.asarray(grid) > 1e-9).sum(axis=1)
    return np.select([nonzero == 3, nonzero == 2], [1.0, 0.5], 1.0 / 6)


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


def _posterior(y, priors, grid, log_grid, log_weights, means, sd, alpha):
    log_r = (alpha * priors - 1.0) @ log_grid.T + log_weights[None, :]
    resid = (y[:, None] - (grid @ means)[None, :]) / sd
    log_r -= 0.5 * resid * resid
    log_r -= log_r.max(axis=1, keepdims=True)
    r = np.exp(log_r)
    r /= r.sum(axis=1, keepdims=True)
    return r


def fit_pve(intensity: np.ndarray, priors: np.ndarray, *, concentration: float = 20.0,
            n_steps: int = 10, max_iter: int = 10, tol: float = 1e-3, prior_floor: float = 0.02,
            em_voxels: int = 200_000, confident_prior: float = 0.8,
            update_means: bool = False, noise_sd: float | None = None,
            chunk: int = 200_000) -> tuple[np.ndarray, PveParameters]:
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
    noise_sd : float, optional
        Fixed intensity noise SD (input units), e.g. measured from the image
        (``image_noise_sd``); then ``σ`` is not estimated by EM (``μ`` still is if
        ``update_means``). If None, ``σ`` is estimated by EM.
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
    log_weights = np.log(simplex_weights(grid))
    means = regression_means(y, pri)
    sd = float(np.std(y - pri @ means)) if noise_sd is None else max(float(noise_sd) / scale, 1e-4)
    fixed_sd = noise_sd is not None
    # σ is learnt where the template is confident (interior of tissues), so that the misfit of
    # the priors at tissue borders of a real brain is not mistaken for noise.
    confident = np.flatnonzero(pri.max(axis=1) >= confident_prior)
    if confident.size < 1000:
        confident = np.arange(y.size)
    if confident.size > em_voxels:
        confident = np.sort(np.random.default_rng(0).choice(confident, em_voxels, replace=False))
    y_em, pri_em = y[confident], pri[confident]
    it = 0
    for it in range(1, 0 if fixed_sd and not update_means else max_iter + 1):
        ss = 0.0
        a = np.zeros((3, 3))
        b = np.zeros(3)
        for start in range(0, y_em.size, chunk):
            yc, pc = y_em[start:start + chunk], pri_em[start:start + chunk]
            r = _posterior(yc, pc, grid, log_grid, log_weights, means, sd, concentration)
            w = r.sum(axis=0)
            a += grid.T @ (w[:, None] * grid)
            b += grid.T @ (r.T @ yc)
            pred = grid @ means
            ss += float(np.sum(r * (yc[:, None] - pred[None, :]) ** 2))
        new_sd = sd if fixed_sd else max(np.sqrt(ss / y_em.size), 1e-4)
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
        r = _posterior(y[start:start + chunk], pri[start:start + chunk], grid, log_grid, log_weights,
                       means, sd, concentration)
        fractions[start:start + chunk] = r @ grid
    logger.debug("PVE: %d EM iterations, means %s, noise SD %.4g", it, means * scale, sd * scale)
    params = PveParameters(means=tuple(float(m) for m in means * scale), noise_sd=float(sd * scale),
                           concentration=float(concentration), iterations=it)
    return fractions, params


def robust_class_sd(intensity: np.ndarray, priors: np.ndarray, *, tissue: int = 2,
                    confident_prior: float = 0.9, min_voxels: int = 1000) -> float | None:
    """Robust intensity SD of one tissue where the template is confident (input units).

    ``1.4826 × MAD`` of the intensities of the voxels whose prior for ``tissue`` (column of
    ``priors``; default 2 = WM) is at least ``confident_prior``. The median absolute deviation
    ignores the minority of voxels that the template mislabels, which an EM estimate of ``σ``
    would absorb as noise. White matter is used by default: it is the most homogeneous tissue
    and its interior is where an affine-registered template is most reliable.

    Returns
    -------
    float or None
        The SD, or None if fewer than ``min_voxels`` voxels qualify or the MAD is 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[rng.normal(100, 5, 5000), np.full(500, 40.0)]  # 10 % mislabelled voxels
    >>> p = np.tile([0.0, 0.0, 1.0], (5500, 1))
    >>> round(robust_class_sd(y, p), 1), round(float(np.std(y)), 1)  # true SD 5
    (5.7, 17.9)
    """
    y = np.asarray(intensity, np.float64).ravel()
    sel = y[np.asarray(priors)[:, tissue] >= confident_prior]
    if sel.size < min_voxels:
        return None
    sd = float(1.4826 * np.median(np.abs(sel - np.median(sel))))
    return sd if sd > 0 else None


def smooth_in_mask(values: np.ndarray, weights: np.ndarray, mask: np.ndarray, zooms, sigma_mm: float,
                   *, block: int = 4) -> np.ndarray:
    """Weighted (normalised) Gaussian smoothing of values given on the voxels of a mask.

    ``Σ G·w·v / Σ G·w`` with a Gaussian ``G`` of SD ``sigma_mm``, computed on ``block``³-voxel
    block sums (a field this smooth does not need the fine grid) and interpolated back
    (trilinear). Where no weight is near, the result extrapolates the nearest weighted values.

    Parameters
    ----------
    values, weights : numpy.ndarray
        ``(N,)`` values and non-negative weights of the ``N`` voxels of ``mask`` (C order).
    mask : numpy.ndarray
        3-D boolean mask.
    zooms : sequence of float
        Voxel size (mm) along the three axes.
    sigma_mm : float
        Gaussian SD (mm).
    block : int
        Block edge (voxels).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` smoothed values.
    """
    from scipy import ndimage

    m = np.asarray(mask, bool)
    num = np.zeros(m.shape)
    den = np.zeros(m.shape)
    num[m] = np.asarray(values, float) * weights
    den[m] = weights
    pad = [(0, (-s) % block) for s in m.shape]
    num, den = np.pad(num, pad), np.pad(den, pad)
    sh = [s // block for s in num.shape]
    num = num.reshape(sh[0], block, sh[1], block, sh[2], block).sum(axis=(1, 3, 5))
    den = den.reshape(sh[0], block, sh[1], block, sh[2], block).sum(axis=(1, 3, 5))
    sig = [sigma_mm / (float(z) * block) for z in zooms]
    num = ndimage.gaussian_filter(num, sig, mode="constant")
    den = ndimage.gaussian_filter(den, sig, mode="constant")
    field = num / np.maximum(den, 1e-6 * max(float(den.max()), 1e-12))
    coords = [(i + 0.5) / block - 0.5 for i in np.nonzero(m)]
    return ndimage.map_coordinates(field, coords, order=1, mode="nearest")


def fit_pve_volume(intensity: np.ndarray, priors: np.ndarray, mask: np.ndarray, zooms, *,
                   concentration: float = 20.0, bias_iterations: int = 3, bias_sigma_mm: float = 15.0,
                   pure_fraction: float = 0.9, robust_noise: bool = True,
                   bias_voxels: float = 0.25, **options) -> tuple[np.ndarray, PveParameters, np.ndarray]:
    """Partial-volume fractions of the brain voxels of an image, with residual-bias correction.

    ``fit_pve`` plus two data-driven steps that use the image geometry:

    1. Noise: ``σ`` is fixed to the robust SD of the white-matter interior
       (``robust_class_sd``) instead of being fitted by EM, which lets it absorb the misfit
       of the template and makes the result follow the template rather than the image.
    2. Residual bias (as in FSL FAST's bias re-estimation, Zhang et al. 2001): after a fit,
       the voxels that are confidently pure GM or WM (posterior fraction ≥ ``pure_fraction``)
       give ``log(y / μ_tissue)``; its weighted Gaussian smoothing (``bias_sigma_mm``, median
       set to 0) is divided out and the model refitted, ``bias_iterations`` times. This
       removes the smooth field that N4 leaves (N4 flattens regions of mixed tissue such as the
       brainstem and cerebellum, which look like bias to it).

    Parameters
    ----------
    intensity : numpy.ndarray
        ``(N,)`` bias-corrected intensities of the voxels of ``mask`` (C order).
    priors : numpy.ndarray
        ``(N, 3)`` template priors (CSF, GM, WM).
    mask : numpy.ndarray
        3-D boolean brain mask.
    zooms : sequence of float
        Voxel size (mm).
    concentration : float
        Dirichlet concentration ``α`` of the template prior.
    bias_iterations : int
        Residual-bias updates (0: none).
    bias_sigma_mm : float
        Gaussian SD (mm) of the residual bias field.
    pure_fraction : float
        Posterior fraction above which a voxel counts as pure tissue for the bias update.
    robust_noise : bool
        Fix ``σ`` to the robust white-matter SD (False: EM estimate, as ``fit_pve``).
    bias_voxels : float
        Fraction of the voxels (a fixed, seeded random subset) fitted in the intermediate
        passes that only feed the bias update; the final pass fits every voxel.
    **options
        Passed to ``fit_pve``.

    Returns
    -------
    fractions : numpy.ndarray
        ``(N, 3)`` float32 volume fractions (CSF, GM, WM).
    params : PveParameters
        Of the final fit (means and ``σ`` in the units of the corrected intensities).
    bias : numpy.ndarray
        ``(N,)`` multiplicative residual bias that was divided out (1 = none).
    """
    y = np.asarray(intensity, np.float64).ravel()
    pri = np.clip(np.asarray(priors, np.float64), 0, None)
    if pri.shape != (y.size, 3):
        raise ValueError(f"priors must have shape ({y.size}, 3), got {pri.shape}")
    pri = pri / np.maximum(pri.sum(axis=1, keepdims=True), 1e-12)
    log_bias = np.zeros(y.size)
    subset = np.arange(y.size)
    if 0 < bias_voxels < 1 and y.size * bias_voxels >= 10_000:
        subset = np.sort(np.random.default_rng(0).choice(y.size, int(y.size * bias_voxels), replace=False))
    for it in range(bias_iterations):
        yc = y / np.exp(log_bias)
        sd = robust_class_sd(yc, pri) if robust_noise else None
        fractions, params = fit_pve(yc[subset], pri[subset], concentration=concentration, noise_sd=sd,
                                    **options)
        means = np.asarray(params.means)
        tissue = fractions.argmax(axis=1)
        pure = (fractions.max(axis=1) >= pure_fraction) & (tissue > 0)  # GM or WM, not CSF
        if pure.sum() < 500:
            logger.debug("residual bias: too few pure voxels (%d), stopping", int(pure.sum()))
            break
        ratio = np.zeros(y.size)
        weight = np.zeros(y.size)
        ratio[subset] = np.where(pure, np.log(np.maximum(yc[subset], 1e-12) / means[tissue]), 0.0)
        weight[subset] = pure
        update = smooth_in_mask(ratio, weight, mask, zooms, bias_sigma_mm)
        log_bias += update - np.median(update)
        logger.debug("residual bias iteration %d: σ %.4g, field 1–99 %% %s", it + 1, params.noise_sd,
                     np.round(np.exp(np.percentile(log_bias, [1, 99])), 3))
    yc = y / np.exp(log_bias)
    sd = robust_class_sd(yc, pri) if robust_noise else None
    fractions, params = fit_pve(yc, pri, concentration=concentration, noise_sd=sd, **options)
    return fractions, params, np.exp(log_bias).astype(np.float32)
