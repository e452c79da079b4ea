"""The result of a T1w tissue segmentation: GM/WM/CSF probability maps on the T1w grid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Segmentation"]


@dataclass(frozen=True)
class Segmentation:
    """Tissue probability maps on the voxel grid of the input T1w.

    Attributes
    ----------
    gm, wm, csf : numpy.ndarray
        Grey-matter, white-matter and CSF probabilities (float32, dimensionless, 0–1), same
        shape as the T1w; ``gm + wm + csf <= 1`` everywhere and 0 outside ``brain_mask``.
    brain_mask : numpy.ndarray
        Boolean brain mask, same shape as the T1w.
    affine : numpy.ndarray
        4×4 voxel-to-world affine of the T1w (mm), copied from the input.
    method : str
        Short provenance tag of the pipeline, e.g. ``"ants-n4+mni152-registration+atropos"``.
    details : tuple of (str, str)
        Extra provenance (library versions, template, skull-stripping decision), as
        ``(key, value)`` pairs.
    """

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray
    method: str
    details: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        shape = self.brain_mask.shape
        for name in ("gm", "wm", "csf"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, brain_mask {shape}")
        if np.asarray(self.affine).shape != (4, 4):
            raise ValueError("affine must be 4x4")

    def fractions(self, weights: np.ndarray | None = None) -> tuple[float, float, float]:
        """Tissue fractions (GM, WM, CSF), dimensionless, summing to 1.

        Parameters
        ----------
        weights : numpy.ndarray, optional
            Voxel weights on the T1w grid (e.g. a fractional MRS-voxel mask); whole brain if None.

        Returns
        -------
        tuple of float
            ``f_t = Σ w·p_t / Σ w·(p_GM + p_WM + p_CSF)``; NaNs if the weighted total is 0.
        """
        w = self.brain_mask.astype(np.float64) if weights is None else np.asarray(weights, float)
        sums = [float(np.sum(w * p, dtype=np.float64)) for p in (self.gm, self.wm, self.csf)]
        total = sum(sums)
        if total <= 0:
            return (float("nan"),) * 3
        return tuple(s / total for s in sums)  # type: ignore[return-value]
