"""Fractional mask of a single MRS voxel on a T1w (or tissue-map) grid (DESIGN.md §6.1).

The MRS voxel is the box of voxel index 0 ± 0.5 along dims 1–3 of the NIfTI-MRS affine
(so it may be oblique and flipped in world space).  Each T1w voxel is supersampled by a
regular ``s × s × s`` grid of points at the sub-voxel centres; its mask value is the share of
those points inside the MRS box.  Only T1w voxels in the bounding box of the MRS voxel are
visited.  Pure numpy/nibabel: no FSL, no SPM.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from nibabel.affines import apply_affine

log = logging.getLogger(__name__)

__all__ = ["VoxelMask", "voxel_mask", "mrs_voxel_corners"]


@dataclass(frozen=True)
class VoxelMask:
    """The MRS voxel on a 3-D grid.

    Parameters
    ----------
    mask : ndarray float32, shape of the grid
        Each grid voxel's share (0–1) inside the MRS voxel.
    affine : ndarray (4, 4)
        The grid's voxel-to-world affine (to write the mask as NIfTI).
    voxel_volume_ml : float
        Nominal MRS voxel volume (ml) from the MRS affine: ``|det A[:3, :3]| / 1000``.
    overlap_fraction : float
        Share of the MRS voxel inside the grid's field of view (0–1).
    """

    mask: np.ndarray
    affine: np.ndarray
    voxel_volume_ml: float
    overlap_fraction: float

    @property
    def mask_volume_ml(self) -> float:
        """Volume (ml) covered by the mask: Σ mask × grid voxel volume."""
        return float(self.mask.sum(dtype=np.float64) * abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)


def mrs_voxel_corners(mrs_affine: np.ndarray) -> np.ndarray:
    """World coordinates (mm) of the 8 corners of the MRS voxel, shape (8, 3)."""
    idx = np.array([[i, j, k] for i in (-0.5, 0.5) for j in (-0.5, 0.5) for k in (-0.5, 0.5)])
    return apply_affine(np.asarray(mrs_affine, float), idx)


def _subsample_offsets(n: int) -> np.ndarray:
    """Offsets (voxel units) of the n³ sub-voxel centres around a voxel centre, (n³, 3)."""
    g = (np.arange(n) + 0.5) / n - 0.5
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)


def voxel_mask(mrs_affine: np.ndarray, t1_shape, t1_affine: np.ndarray, *,
               supersample: int = 4, overlap_samples: int = 24) -> VoxelMask:
    """Fractional mask of the MRS voxel on the grid ``(t1_shape, t1_affine)``.

    Parameters
    ----------
    mrs_affine : ndarray (4, 4)
        NIfTI-MRS voxel-to-world (RAS mm) affine; the voxel is index 0 ± 0.5 in dims 1–3.
    t1_shape : tuple of int
        Grid shape (only the first three dims are used).
    t1_affine : ndarray (4, 4)
        Grid voxel-to-world (RAS mm) affine.
    supersample : int
        Points per grid-voxel edge (4 → 64 points per voxel).
    overlap_samples : int
        Points per MRS-voxel edge used to measure ``overlap_fraction``.

    Returns
    -------
    VoxelMask

    Raises
    ------
    ValueError
        Singular affines or a non-positive ``supersample``.
    """
    mrs_affine = np.asarray(mrs_affine, float)
    t1_affine = np.asarray(t1_affine, float)
    shape = tuple(int(s) for s in tuple(t1_shape)[:3])
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    det_mrs = np.linalg.det(mrs_affine[:3, :3])
    if abs(det_mrs) < 1e-12 or abs(np.linalg.det(t1_affine[:3, :3])) < 1e-12:
        raise ValueError("singular affine: cannot place the MRS voxel")

    # grid voxel index -> MRS voxel index
    to_mrs = np.linalg.inv(mrs_affine) @ t1_affine
    # bounding box of the MRS voxel in grid indices, clipped to the grid
    corners = apply_affine(np.linalg.inv(t1_affine), mrs_voxel_corners(mrs_affine))
    lo = np.maximum(np.floor(corners.min(0) + 0.5).astype(int), 0)
    hi = np.minimum(np.floor(corners.max(0) + 0.5).astype(int) + 1, shape)  # exclusive

    mask = np.zeros(shape, np.float32)
    if np.all(hi > lo):
        lin = to_mrs[:3, :3]
        off = _subsample_offsets(supersample) @ lin.T            # (s³, 3) in MRS units
        jj, kk = np.meshgrid(np.arange(lo[1], hi[1]), np.arange(lo[2], hi[2]), indexing="ij")
        for i in range(lo[0], hi[0]):                            # one slab at a time
            centres = np.stack([np.full(jj.shape, i), jj, kk], -1).reshape(-1, 3)
            c_mrs = centres @ lin.T + to_mrs[:3, 3]              # (n, 3)
            inside = np.all(np.abs(c_mrs[:, None, :] + off[None, :, :]) <= 0.5, axis=2)
            mask[i, lo[1]:hi[1], lo[2]:hi[2]] = inside.mean(1).reshape(jj.shape)

    overlap = _overlap_fraction(mrs_affine, shape, t1_affine, overlap_samples)
    if overlap < 1.0:
        log.info("MRS voxel is %.1f%% inside the anatomical field of view", 100 * overlap)
    return VoxelMask(mask=mask, affine=t1_affine, voxel_volume_ml=float(abs(det_mrs) / 1000.0),
                     overlap_fraction=overlap)


def _overlap_fraction(mrs_affine, shape, t1_affine, n: int) -> float:
    """Share of n³ regularly spaced points of the MRS voxel that fall inside the grid."""
    pts = _subsample_offsets(n)                                   # MRS index, centred on 0
    ijk = apply_affine(np.linalg.inv(t1_affine) @ mrs_affine, pts)
    inside = np.all((ijk >= -0.5) & (ijk < np.asarray(shape) - 0.5), axis=1)
    return float(inside.mean())
