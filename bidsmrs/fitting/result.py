"""FitResult: what a linear-combination fit returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from bidsmrs.constants import COMBINATIONS


@dataclass(frozen=True)
class FitResult:
    """Result of fitting one spectrum with a basis.

    All spectra are frequency-domain arrays on the full ``ppm`` axis of the data, with the
    fitted zero/first-order phase REMOVED (so the real part is absorption-mode), i.e. what
    a fit figure draws.

    Parameters
    ----------
    names : tuple of str
        Basis component names, in basis order.
    amplitudes : ndarray (n,)
        Fitted concentrations in basis units (≥ 0).
    covariance : ndarray (n, n)
        Covariance of the amplitudes (basis units²) from the Fisher information of the full
        model (linear and non-linear parameters) at the solution.
    ppm : ndarray (n_points,)
        ppm axis.
    data, fit, baseline : ndarray complex (n_points,)
        Phase-corrected data, full model (incl. baseline), baseline alone.
    components : ndarray complex (n_points, n)
        Each component's contribution (amplitude × shaped basis), phase-corrected.
    fit_range_ppm : (float, float)
        ppm range used by the fit (low, high).
    noise_sd : float
        SD of the spectral noise (real part), from a signal-free region.
    is_macromolecule : tuple of bool
    params : dict
        Non-linear parameters: ``phase0_deg``, ``phase1_deg_per_ppm``, ``shift_hz``
        (per group), ``lorentz_hz`` (per group), ``gauss_hz``, ``baseline`` description,
        ``n_function_evals``, ... (JSON-serialisable).
    """

    names: tuple[str, ...]
    amplitudes: np.ndarray
    covariance: np.ndarray
    ppm: np.ndarray
    data: np.ndarray
    fit: np.ndarray
    baseline: np.ndarray
    components: np.ndarray
    fit_range_ppm: tuple[float, float]
    noise_sd: float
    is_macromolecule: tuple[bool, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0, None))

    @property
    def crlb_percent(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.amplitudes > 0, 100 * self.sd / self.amplitudes, np.inf)

    @property
    def residual(self) -> np.ndarray:
        return self.data - self.fit

    def in_range(self) -> np.ndarray:
        """Boolean mask of the fit range on ``ppm``."""
        lo, hi = self.fit_range_ppm
        return (self.ppm >= lo) & (self.ppm <= hi)

    def amplitude(self, name: str) -> float:
        return float(self.amplitudes[self.names.index(name)])

    def combined(self, parts) -> tuple[float, float]:
        """Sum of the amplitudes of ``parts`` present in the fit and its SD (from the covariance).

        Parts fitted as exactly zero are held there by the non-negativity constraint and count
        as known in the constrained CRLB (see ``covariance``): their detection-limit variance is
        left out of the sum's SD, unless every part is zero (then the SD is that of the sum's
        detection limit).
        """
        idx = [self.names.index(p) for p in parts if p in self.names]
        w = np.zeros(len(self.names))
        w[idx] = 1.0
        total = float(w @ self.amplitudes)
        v = w * (self.amplitudes > 0) if np.any(self.amplitudes[idx] > 0) else w
        return total, float(np.sqrt(max(v @ self.covariance @ v, 0.0)))

    def combinations(self) -> dict[str, tuple[str, ...]]:
        """Combined rows (DESIGN.md §5.2) whose parts exist: name -> parts present (≥ 2)."""
        out = {}
        for name, parts in COMBINATIONS.items():
            present = tuple(p for p in parts if p in self.names)
            if len(present) >= 2 and name not in self.names:
                out[name] = present
        return out
