"""Residual water removal by HLSVD (Pijnappel 1992, J Magn Reson 97:122).

The FID ``x_n`` (first ``N`` points) is modelled as a sum of ``K`` exponentially damped
sinusoids ``Σ_k a_k z_k^n``. Following the state-space method of Kung et al. (1983, J Opt
Soc Am 73:1799), as used by Pijnappel 1992: build the ``L × (N−L+1)`` Hankel matrix
``H[i, j] = x[i+j]`` (``L = N/2``), take its ``K`` leading left singular vectors ``U_K``
(computed as the leading eigenvectors of ``H·Hᴴ``), and obtain the signal poles ``z_k`` as
the eigenvalues of ``Z = U_K↑⁺ U_K↓`` (``U_K↑``/``U_K↓``: ``U_K`` without its last/first
row, ``⁺``: least-squares pseudo-inverse). Frequencies are ``arg(z_k)/(2π Δt)``, dampings
``−ln|z_k|/Δt``; complex amplitudes by linear least squares on the ``N`` points. Components
whose frequency lies within the water window (default 4.4–5.0 ppm) are subtracted from the
whole FID. The fit starts at the second FID point and the removed model's first point is
scaled like the data's own (vendors may halve the first point), so that removal does not
shift the spectral baseline. A component with ``|z| > 1`` (growing) is subtracted as undamped so it cannot
blow up beyond the fitted points.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from bidsmrs.spectrum import Spectrum, StepRecord

logger = logging.getLogger(__name__)

#: Default number of HLSVD components.
N_COMPONENTS = 25
#: Default maximum number of leading FID points used to build the Hankel matrix.
N_FIT_POINTS = 512


@dataclass(frozen=True)
class HlsvdComponents:
    """Damped sinusoids ``a·zⁿ``: frequency (Hz), damping (1/s), complex amplitude."""

    frequency_hz: np.ndarray
    damping_per_s: np.ndarray
    amplitude: np.ndarray
    poles: np.ndarray

    def fid(self, n_points: int, select: np.ndarray | None = None) -> np.ndarray:
        """Model FID (``n_points``) of all or the ``select``-ed components."""
        sel = np.ones(self.poles.shape, bool) if select is None else select
        z = self.poles[sel]
        z = np.where(np.abs(z) > 1, z / np.abs(z), z)
        n = np.arange(n_points)[:, None]
        return (np.power(z[None, :], n) @ self.amplitude[sel]) if z.size else np.zeros(n_points, complex)


def hlsvd(fid: np.ndarray, dwell_s: float, n_components: int = N_COMPONENTS,
          n_fit_points: int = N_FIT_POINTS) -> HlsvdComponents:
    """Decompose a 1-D FID into damped sinusoids by HLSVD (see the module docstring)."""
    x = np.asarray(fid, complex)
    n = min(x.shape[0], n_fit_points)
    xs = x[:n]
    lrows = n // 2
    h = scipy.linalg.hankel(xs[:lrows], xs[lrows - 1:n])
    k = int(min(n_components, min(h.shape) - 1))
    # leading left singular vectors of H = leading eigenvectors of the Hermitian H·Hᴴ (L × L);
    # much cheaper than a full SVD and accurate for the dominant signal subspace
    gram = h @ h.conj().T
    _, vecs = scipy.linalg.eigh(gram, subset_by_index=[lrows - k, lrows - 1], check_finite=False)
    uk = vecs[:, ::-1]
    zmat, *_ = np.linalg.lstsq(uk[:-1], uk[1:], rcond=None)
    poles = np.linalg.eigvals(zmat)
    poles = poles[np.abs(poles) > 0]
    vand = np.power(poles[None, :], np.arange(n)[:, None])
    amp, *_ = np.linalg.lstsq(vand, xs, rcond=None)
    freq = np.angle(poles) / (2 * np.pi * dwell_s)
    damp = -np.log(np.abs(poles)) / dwell_s
    return HlsvdComponents(frequency_hz=freq, damping_per_s=damp, amplitude=amp, poles=poles)


def remove_water(spec: Spectrum, ppm_range: tuple[float, float] = (4.4, 5.0), n_components: int = N_COMPONENTS,
                 n_fit_points: int = N_FIT_POINTS) -> Spectrum:
    """Subtract the HLSVD components within ``ppm_range`` from a 1-D spectrum.

    Parameters
    ----------
    spec : Spectrum
        1-D (averaged) data.
    ppm_range : (float, float)
        Chemical-shift window (ppm) of the components removed.
    n_components : int
        HLSVD model order K.
    n_fit_points : int
        Maximum number of leading FID points in the Hankel matrix.
    """
    if spec.fid.ndim != 1:
        raise ValueError(f"remove_water needs 1-D data, got dims {spec.dim_tags}")
    x = spec.fid
    # fit from the second point on: some exports scale the first FID point (e.g. by 1/2)
    comps = hlsvd(x[1:], spec.dwell_s, n_components, n_fit_points)
    ppm = spec.hz_to_ppm(comps.frequency_hz)
    sel = (ppm >= min(ppm_range)) & (ppm <= max(ppm_range))
    model = np.empty(spec.n_points, complex)
    model[1:] = comps.fid(spec.n_points - 1, sel)
    # the first point is extrapolated back (a·z⁻¹) and scaled as the data scale theirs
    back = comps.amplitude / comps.poles
    m0_all = back.sum()
    first_scale = float(np.clip(np.real(x[0] / m0_all), 0.0, 1.5)) if abs(m0_all) > 0 else 1.0
    model[0] = first_scale * back[sel].sum()
    n_used = min(spec.n_points - 1, n_fit_points)
    note = f", first point scaled by {first_scale:.2f} as in the data" if abs(first_scale - 1) > 0.1 else ""
    details = (f"Residual water removed by HLSVD (Pijnappel 1992): {len(comps.poles)} components fitted "
               f"to FID points 2–{n_used + 1}, {int(sel.sum())} within {min(ppm_range):g}–{max(ppm_range):g} ppm "
               f"subtracted{note}.")
    params = {"ppm_range": [float(min(ppm_range)), float(max(ppm_range))], "n_components": int(n_components),
              "n_fit_points": int(n_used), "n_removed": int(sel.sum()),
              "removed_ppm": np.round(ppm[sel], 4).tolist(), "first_point_scale": round(first_scale, 4)}
    return spec.with_step(x - model, StepRecord("Nuisance peak removal", details, params))


__all__ = ["hlsvd", "remove_water", "HlsvdComponents", "N_COMPONENTS", "N_FIT_POINTS"]
