"""GM/WM/CSF fractions of the MRS voxel (DESIGN.md §3 tissue columns, §6.1).

``f_t = Σ mask·p_t / Σ mask·(p_GM + p_WM + p_CSF)`` with the fractional voxel mask and the
tissue probability maps on the same grid (each map constant within its voxel).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from bidsmrs.errors import QuantificationError, UsageError
from bidsmrs.quantify.voxel_mask import VoxelMask

log = logging.getLogger(__name__)

__all__ = ["TissueFractions", "fractions_from_maps", "fixed_fractions", "TISSUE_SIDECAR"]

#: BIDS data dictionary for ``_desc-tissue_svs.tsv`` (DESIGN.md §3 columns).
TISSUE_SIDECAR = {
    "gm_fraction": {"Description": "Grey-matter volume fraction of the MRS voxel", "Units": "1"},
    "wm_fraction": {"Description": "White-matter volume fraction of the MRS voxel", "Units": "1"},
    "csf_fraction": {"Description": "CSF volume fraction of the MRS voxel", "Units": "1"},
    "voxel_volume_ml": {"Description": "Nominal MRS voxel volume from the NIfTI-MRS affine",
                        "Units": "ml"},
    "overlap_fraction": {"Description": "Share of the MRS voxel inside the anatomical field "
                                        "of view", "Units": "1"},
    "segmentation_source": {"Description": "anat-derivatives:<GM map path>, builtin:<method> "
                                           "or fixed (--tissue-fractions)"},
}


@dataclass(frozen=True)
class TissueFractions:
    """Volume fractions of the MRS voxel.

    Parameters
    ----------
    gm, wm, csf : float
        Fractions of grey matter, white matter and CSF (sum 1).
    voxel_volume_ml : float
        Nominal MRS voxel volume (ml), NaN when unknown (fixed fractions).
    overlap_fraction : float
        Share of the MRS voxel inside the anatomical field of view, NaN when unknown.
    source : str
        ``anat-derivatives:<path of the GM map>``, ``builtin:<method>`` or ``fixed``.
    """

    gm: float
    wm: float
    csf: float
    voxel_volume_ml: float = math.nan
    overlap_fraction: float = math.nan
    source: str = "fixed"

    def as_dict(self) -> dict[str, float]:
        """``{"gm": ..., "wm": ..., "csf": ...}``."""
        return {"gm": self.gm, "wm": self.wm, "csf": self.csf}

    def to_row(self) -> dict[str, object]:
        """One row of ``_desc-tissue_svs.tsv`` (contract column names, DESIGN.md §3)."""
        return {"gm_fraction": self.gm, "wm_fraction": self.wm, "csf_fraction": self.csf,
                "voxel_volume_ml": self.voxel_volume_ml,
                "overlap_fraction": self.overlap_fraction,
                "segmentation_source": self.source}


def _normalised(gm: float, wm: float, csf: float) -> tuple[float, float, float]:
    vals = np.array([gm, wm, csf], float)
    if not np.all(np.isfinite(vals)) or np.any(vals < 0):
        raise UsageError(f"--tissue-fractions must be finite and >= 0, got "
                         f"GM {gm}, WM {wm}, CSF {csf}")
    total = vals.sum()
    if total <= 0:
        raise UsageError("--tissue-fractions sum to 0")
    gm_, wm_, csf_ = (vals / total).tolist()
    return gm_, wm_, csf_


def fixed_fractions(gm: float, wm: float, csf: float) -> TissueFractions:
    """Fractions given by the user (``--tissue-fractions GM WM CSF``), normalised to sum 1.

    Raises
    ------
    UsageError
        A negative or non-finite value, or all zero (exit 64).
    """
    if not math.isclose(gm + wm + csf, 1.0, abs_tol=1e-3):
        log.info("tissue fractions %g/%g/%g normalised to sum 1", gm, wm, csf)
    g, w, c = _normalised(gm, wm, csf)
    return TissueFractions(g, w, c, source="fixed")


def fractions_from_maps(mask: VoxelMask, gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, *,
                        source: str) -> TissueFractions:
    """Tissue fractions in the voxel from probability maps on the mask's grid.

    Parameters
    ----------
    mask : VoxelMask
        From :func:`bidsmrs.quantify.voxel_mask.voxel_mask` on the maps' grid.
    gm, wm, csf : ndarray
        Probability maps (0–1), same 3-D shape as ``mask.mask``.
    source : str
        Segmentation source for the tissue table (``anat-derivatives:<path>``, ...).

    Raises
    ------
    QuantificationError
        Shapes differ, or the voxel contains no tissue (outside the maps or the brain).
    """
    m = mask.mask
    for name, p in (("GM", gm), ("WM", wm), ("CSF", csf)):
        if np.shape(p)[:3] != m.shape:
            raise QuantificationError(f"{name} map shape {np.shape(p)} differs from the voxel "
                                      f"mask grid {m.shape}")
    # Only the bounding box of the mask matters: restrict for speed.
    nz = np.nonzero(m)
    if nz[0].size == 0:
        raise QuantificationError("the MRS voxel does not overlap the tissue maps' field of view")
    box = tuple(slice(a.min(), a.max() + 1) for a in nz)
    w = m[box].astype(np.float64)
    sums = [float(np.sum(w * np.clip(np.nan_to_num(np.asarray(p, np.float64)[box]), 0, None)))
            for p in (gm, wm, csf)]  # NaN (outside a map's mask) and negative values count as 0
    total = sum(sums)
    if total <= 0:
        raise QuantificationError("the MRS voxel contains no GM, WM or CSF in the tissue maps")
    g, wm_, c = (s / total for s in sums)
    return TissueFractions(g, wm_, c, voxel_volume_ml=mask.voxel_volume_ml,
                           overlap_fraction=mask.overlap_fraction, source=source)
