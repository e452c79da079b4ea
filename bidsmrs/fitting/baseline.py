"""Baseline models for the linear-combination fit, in a form that variable projection can use.

The complex baseline ``B(ν) = Φ(ν)·(β_re + i·β_im)`` uses one real design matrix ``Φ``
(n_points × K) for the real and imaginary parts. For a penalised fit

    min_β ‖r − Φβ‖² + λ‖Dβ‖²

the minimum over β is ``rᵀ(I − S_λ)r`` with the smoother ``S_λ = Φ(ΦᵀΦ + λDᵀD)⁻¹Φᵀ``, so the
baseline can be profiled out of the fit exactly (variable projection). We diagonalise ``S_λ``
for all λ at once (Demmler–Reinsch basis, see Ruppert, Wand & Carroll 2003, *Semiparametric
Regression*, §5.5.2): ``S_λ = Q·diag(1/(1 + λ·s))·Qᵀ`` with orthonormal ``Q``.

Baselines:

- ``"spline"``: cubic B-splines on equally spaced knots (ppm) with a second-difference
  penalty (P-splines; Eilers & Marx 1996, Stat Sci 11:89), as LCModel (Provencher 1993) and
  ABfit (Wilson 2021) use. The smoothness is summarised by the effective dimension
  ``ED = trace(S_λ)`` per part (real or imaginary), reported per ppm.
- ``"poly"``: Legendre polynomials up to ``order`` on the fit range, no penalty.
- ``"none"``: no baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline


@dataclass(frozen=True)
class BaselineBasis:
    """A baseline design diagonalised for fast penalised projection.

    Parameters
    ----------
    kind : str
        ``"spline"``, ``"poly"`` or ``"none"``.
    design : ndarray (n, K)
        Real design matrix Φ on the fit-range points.
    q : ndarray (n, K)
        Orthonormal Demmler–Reinsch basis of the column space of Φ.
    s : ndarray (K,)
        Penalty eigenvalues (0 for unpenalised directions).
    to_coef : ndarray (K, K)
        Maps Demmler–Reinsch coordinates to design coefficients: ``β = to_coef @ (Qᵀ·r·w)``.
    penalty : ndarray (K, K)
        ``DᵀD`` in design coordinates (zeros for unpenalised bases).
    span_ppm : float
        Width of the fit range (ppm), to express ED per ppm.
    """

    kind: str
    design: np.ndarray
    q: np.ndarray
    s: np.ndarray
    to_coef: np.ndarray
    penalty: np.ndarray
    span_ppm: float

    @property
    def n_coef(self) -> int:
        return int(self.design.shape[1])

    def weights(self, lam: float) -> np.ndarray:
        """Shrinkage ``w_k = 1/(1 + λ·s_k)`` of each Demmler–Reinsch direction."""
        return 1.0 / (1.0 + lam * self.s)

    def effective_dimension(self, lam: float) -> float:
        """``trace(S_λ)`` for one part (real or imaginary)."""
        return float(np.sum(self.weights(lam))) if self.n_coef else 0.0

    def lam_for_ed_per_ppm(self, ed_per_ppm: float) -> float:
        """λ giving ``ED/span = ed_per_ppm`` (clipped to the attainable range)."""
        if self.kind != "spline":
            return 0.0
        target = ed_per_ppm * self.span_ppm
        n_free = float(np.sum(self.s <= 1e-9 * max(self.s.max(), 1.0)))
        target = float(np.clip(target, n_free + 1e-3, self.n_coef - 1e-3))
        lo, hi = -12.0, 12.0
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            if self.effective_dimension(10.0 ** mid) > target:
                lo = mid
            else:
                hi = mid
        return float(10.0 ** (0.5 * (lo + hi)))

    def sqrt_residual_operator(self, lam: float) -> np.ndarray:
        """Coefficients ``d`` such that ``(I − S_λ)^{1/2} x = x − Q·(d ⊙ Qᵀx)``."""
        w = self.weights(lam)
        return 1.0 - np.sqrt(np.clip(1.0 - w, 0.0, None))

    def project_out(self, x: np.ndarray, lam: float) -> np.ndarray:
        """Apply ``(I − S_λ)^{1/2}`` to the columns of ``x`` (n × ...; real or complex)."""
        if not self.n_coef:
            return x
        d = self.sqrt_residual_operator(lam)
        qt = self.q.T @ x.reshape(x.shape[0], -1)
        out = x.reshape(x.shape[0], -1) - self.q @ (d[:, None] * qt)
        return out.reshape(x.shape)

    def smooth(self, r: np.ndarray, lam: float) -> np.ndarray:
        """Penalised least-squares baseline fitted to ``r`` (n,), real or complex: ``S_λ·r``."""
        if not self.n_coef:
            return np.zeros_like(r)
        return self.q @ (self.weights(lam) * (self.q.T @ r))

    def coefficients(self, r: np.ndarray, lam: float) -> np.ndarray:
        """Design coefficients β of the baseline fitted to ``r``."""
        if not self.n_coef:
            return np.zeros(0, dtype=r.dtype)
        return self.to_coef @ (self.weights(lam) * (self.q.T @ r))


def _diagonalise(kind: str, design: np.ndarray, penalty: np.ndarray, span_ppm: float) -> BaselineBasis:
    gram = design.T @ design
    gram = gram + 1e-10 * np.trace(gram) / max(gram.shape[0], 1) * np.eye(gram.shape[0])
    chol = np.linalg.cholesky(gram)
    chol_inv = np.linalg.inv(chol)
    m = chol_inv @ penalty @ chol_inv.T
    s, u = np.linalg.eigh(0.5 * (m + m.T))
    s = np.clip(s, 0.0, None)
    to_coef = chol_inv.T @ u
    q = design @ to_coef
    return BaselineBasis(kind=kind, design=design, q=q, s=s, to_coef=to_coef, penalty=penalty,
                         span_ppm=span_ppm)


def spline_basis(ppm: np.ndarray, ppm_range: tuple[float, float], knot_spacing_ppm: float,
                 penalty_order: int = 2) -> BaselineBasis:
    """Cubic P-spline baseline on ``ppm`` (the fit-range points).

    Knots are equally spaced (about ``knot_spacing_ppm`` apart) over ``ppm_range`` and extended
    by three spacings on each side, so every point is covered by four splines. The penalty is
    on differences of order ``penalty_order`` of the coefficients: its null space (what an
    infinitely stiff baseline can still do) is the polynomials of degree ``penalty_order − 1``
    (1: a constant offset; 2: a straight line).
    """
    lo, hi = float(min(ppm_range)), float(max(ppm_range))
    span = hi - lo
    n_int = max(int(np.ceil(span / knot_spacing_ppm - 1e-9)), 1)
    h = span / n_int
    knots = lo + h * np.arange(-3, n_int + 4)
    n_coef = knots.size - 4
    x = np.clip(np.asarray(ppm, float), lo, hi)
    design = BSpline.design_matrix(x, knots, 3, extrapolate=False).toarray()
    d2 = np.diff(np.eye(n_coef), n=int(penalty_order), axis=0)
    return _diagonalise("spline", design, d2.T @ d2, span)


def poly_basis(ppm: np.ndarray, ppm_range: tuple[float, float], order: int) -> BaselineBasis:
    """Legendre polynomial baseline of degree ``order`` over ``ppm_range`` (unpenalised)."""
    lo, hi = float(min(ppm_range)), float(max(ppm_range))
    x = 2.0 * (np.asarray(ppm, float) - lo) / (hi - lo) - 1.0
    design = np.polynomial.legendre.legvander(x, int(order))
    k = design.shape[1]
    return _diagonalise("poly", design, np.zeros((k, k)), hi - lo)


def no_baseline(n_points: int, ppm_range: tuple[float, float]) -> BaselineBasis:
    """The empty baseline."""
    z = np.zeros((n_points, 0))
    return BaselineBasis(kind="none", design=z, q=z, s=np.zeros(0), to_coef=np.zeros((0, 0)),
                         penalty=np.zeros((0, 0)), span_ppm=float(abs(ppm_range[1] - ppm_range[0])))
