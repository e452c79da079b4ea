"""Noise level and Cramér–Rao lower bounds of the linear-combination model.

Noise SD
    Estimated from signal-free parts of the spectrum: ppm > 9.5 and ppm < −1.0 (1H; beyond the
    metabolites, water and lipids), whatever part of the axis exists, leaving out the outer 3 %
    of the spectral width on each side (anti-aliasing filter roll-off). Each region is cut into
    chunks of about 64 points; within each chunk a quadratic is removed from the real and the
    imaginary parts (the slowly varying absorption and dispersion tails of peaks, e.g. water),
    and the SD is the pooled RMS of what is left (corrected for the fitted coefficients). When fewer than 64 points are
    available, ``None`` is returned and the caller falls back to the fit residual.

CRLB
    For a model ``m(p)`` with white Gaussian noise of SD ``σ`` (real and imaginary parts), the
    Fisher information is ``F = JᵀJ/σ²`` with the Jacobian ``J`` of the stacked real and
    imaginary model over the fit range with respect to all parameters (amplitudes, baseline
    coefficients, non-linear parameters). Quadratic penalties (baseline roughness, priors on
    per-metabolite shifts and first-order phase) enter as their Hessians, i.e. the Bayesian
    (posterior) information. The covariance is ``F⁻¹`` (Cavassila et al. 2001, NMR Biomed
    14:278).
"""
from __future__ import annotations

import numpy as np

NOISE_REGIONS_PPM = ((9.5, np.inf), (-np.inf, -1.0))
EDGE_FRACTION = 0.03
MIN_NOISE_POINTS = 64
CHUNK_POINTS = 64


def noise_sd_from_regions(spec: np.ndarray, ppm: np.ndarray, regions=NOISE_REGIONS_PPM) -> float | None:
    """SD of the real part of the spectral noise from signal-free regions (see module doc).

    Parameters
    ----------
    spec : ndarray complex (n,)
        Spectrum (``fftshift(fft(fid))``).
    ppm : ndarray (n,)
        Its ppm axis.

    Returns
    -------
    float or None
        Noise SD (spectrum units), or None when too few signal-free points exist.
    """
    n = ppm.size
    edge = int(np.ceil(EDGE_FRACTION * n))
    keep = np.zeros(n, bool)
    keep[edge:n - edge] = True
    resid = []
    n_coef = 0
    for lo, hi in regions:
        region = np.flatnonzero(keep & (ppm > lo) & (ppm < hi))
        if region.size < 16:
            continue
        # Chunks of ~CHUNK_POINTS points, each detrended by its own quadratic (removes the
        # slowly varying absorption and dispersion tails of peaks outside the region).
        n_chunks = max(int(round(region.size / CHUNK_POINTS)), 1)
        for chunk in np.array_split(region, n_chunks):
            x = ppm[chunk]
            x = (x - x.mean()) / max(np.ptp(x), 1e-12)
            v = np.vander(x, 3)
            for part in (spec[chunk].real, spec[chunk].imag):
                coef, *_ = np.linalg.lstsq(v, part, rcond=None)
                resid.append(part - v @ coef)
                n_coef += 3
    if not resid:
        return None
    r = np.concatenate(resid)
    if r.size < 2 * MIN_NOISE_POINTS:
        return None
    dof = max(r.size - n_coef, 1)
    return float(np.sqrt(np.sum(r * r) / dof))


def covariance_from_jacobian(jac: np.ndarray, noise_sd: float, penalty_hessian: np.ndarray | None = None) -> np.ndarray:
    """Parameter covariance ``(JᵀJ/σ² + H_pen)⁻¹`` (pseudo-inverse when singular).

    Parameters
    ----------
    jac : ndarray (n_residuals, n_params)
        Jacobian of the (unweighted) model, real and imaginary parts stacked.
    noise_sd : float
        Noise SD of each part (same units as the model).
    penalty_hessian : ndarray (n_params, n_params), optional
        Half the Hessian of the penalty terms, already divided by σ² where they are in data
        units (so that the objective is ``‖r‖²/σ² + pᵀH p``).
    """
    fisher = jac.T @ jac / noise_sd ** 2
    if penalty_hessian is not None:
        fisher = fisher + penalty_hessian
    # Scale to unit diagonal for a well-conditioned inversion.
    d = np.sqrt(np.clip(np.diag(fisher), 1e-300, None))
    scaled = fisher / np.outer(d, d)
    try:
        inv = np.linalg.inv(scaled)
        if not np.all(np.isfinite(inv)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(scaled, rcond=1e-12, hermitian=True)
    return inv / np.outer(d, d)
