"""Synthetic validation of the segmentation on the MNI152 template (used by tests and benchmarks).

The template's own GM/WM maps are the truth (CSF = brain − GM − WM). The template is moved by
a known rigid transform (only the affine changes, so truth and output share one voxel grid),
multiplied by a smooth bias field and given Gaussian noise inside the brain (zeros outside, as
after brain extraction).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .template import TemplatePriors

__all__ = ["MRS_VOXELS_MNI", "SyntheticT1w", "rigid_matrix", "synthetic_t1w", "with_head",
           "downsample2", "cube_weights", "voxel_fractions"]

#: Centres (MNI152, mm) of ten typical 2×2×2 cm single-voxel MRS placements. Sources: DLPFC
#: from the TMS target of Fox et al. 2012 (Biol Psychiatry 72:595, −38, 44, 26), mirrored for
#: the right side; posterior cingulate from Andrews-Hanna et al. 2010 (Neuron 65:550, pCC
#: −8, −56, 26). The others are anatomical landmarks read off the MNI152 template for typical
#: MRS placements (approximate): supragenual dACC, left thalamus, midline occipital (calcarine)
#: cortex, left hippocampal body, right cerebellar hemisphere, pons, left frontal white matter
#: (corona radiata).
MRS_VOXELS_MNI: dict[str, tuple[float, float, float]] = {
    "dACC": (0.0, 22.0, 30.0),
    "DLPFC_L": (-38.0, 44.0, 26.0),
    "DLPFC_R": (38.0, 44.0, 26.0),
    "thalamus_L": (-10.0, -18.0, 8.0),
    "occipital": (0.0, -84.0, 6.0),
    "PCC": (-8.0, -56.0, 26.0),
    "hippocampus_L": (-28.0, -22.0, -14.0),
    "cerebellum_R": (24.0, -66.0, -36.0),
    "pons": (0.0, -26.0, -32.0),
    "frontal_WM_L": (-26.0, 20.0, 28.0),
}

#: Edge of the cubic MRS voxels (mm).
VOXEL_EDGE_MM = 20.0


@dataclass(frozen=True)
class SyntheticT1w:
    """A degraded copy of the template with its ground truth.

    Attributes
    ----------
    data : numpy.ndarray
        Synthetic T1w intensities (float32, arbitrary units), 0 outside the brain.
    affine : numpy.ndarray
        4×4 voxel-to-world affine (mm) = rigid × template affine.
    gm, wm, csf : numpy.ndarray
        True tissue probabilities on the same voxel grid.
    rigid : numpy.ndarray
        4×4 rigid world transform applied (template mm → subject mm).
    bias : numpy.ndarray
        Multiplicative bias field applied (dimensionless).
    """

    data: np.ndarray
    affine: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    rigid: np.ndarray
    bias: np.ndarray


def rigid_matrix(rotation_deg: tuple[float, float, float],
                 translation_mm: tuple[float, float, float]) -> np.ndarray:
    """4×4 rigid transform: rotations about x, y, z (degrees, applied in that order), then a shift (mm).

    Examples
    --------
    >>> np.round(rigid_matrix((0, 0, 90), (1, 2, 3)) @ [1, 0, 0, 1], 6).tolist()
    [1.0, 3.0, 3.0, 1.0]
    """
    ax, ay, az = np.deg2rad(rotation_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rz @ ry @ rx
    m[:3, 3] = translation_mm
    return m


def _world_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    return (affine[:3, :3].astype(np.float32) @ ijk + affine[:3, 3:4].astype(np.float32)).reshape(3, *shape)


def downsample2(priors: TemplatePriors) -> TemplatePriors:
    """Average 2×2×2 blocks of every template map (1 mm → 2 mm grid; odd edges cropped)."""
    def block(a: np.ndarray) -> np.ndarray:
        s = [n - n % 2 for n in a.shape]
        b = np.asarray(a[: s[0], : s[1], : s[2]], np.float32)
        return b.reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5))

    affine = priors.affine.copy()
    affine[:3, :3] = priors.affine[:3, :3] * 2
    affine[:3, 3] = priors.affine[:3, :3] @ [0.5, 0.5, 0.5] + priors.affine[:3, 3]
    mask = block(priors.mask.astype(np.float32))
    t1 = block(priors.t1) * (mask >= 0.5)
    return TemplatePriors(t1=t1, gm=block(priors.gm), wm=block(priors.wm), csf=block(priors.csf),
                          mask=mask >= 0.5, affine=affine)


def synthetic_t1w(priors: TemplatePriors, *, rotation_deg=(8.0, -5.0, 6.0),
                  translation_mm=(6.0, -9.0, 4.0), bias_amplitude=0.2, noise_fraction=0.03,
                  intensity: str = "maps", rng: np.random.Generator | None = None) -> SyntheticT1w:
    """Degrade the template T1w into a synthetic brain-extracted subject with known truth.

    Parameters
    ----------
    priors : TemplatePriors
        Template and truth maps (e.g. from ``load_mni152_priors`` or ``downsample2``).
    rotation_deg, translation_mm : tuple of float
        Rigid motion (degrees about x, y, z; mm).
    bias_amplitude : float
        Half peak-to-peak of the log bias field (0.2 → intensities scaled by ~0.82–1.22).
    noise_fraction : float
        Gaussian noise SD as a fraction of the mean white-matter intensity.
    intensity : {"maps", "template"}
        ``"maps"``: the clean image is synthesised from the truth maps (``Σ p_t·μ_t`` with the
        template's pure-tissue means), so image and truth agree (a BrainWeb-like phantom).
        ``"template"``: the template T1w itself; its population-average GM/WM maps then
        disagree with its intensities in deep grey matter, brainstem and cerebellum.
    rng : numpy.random.Generator, optional
        Random generator (default: seeded with 0).

    Returns
    -------
    SyntheticT1w
    """
    rng = np.random.default_rng(0) if rng is None else rng
    rigid = rigid_matrix(rotation_deg, translation_mm)
    xyz = _world_coordinates(priors.t1.shape, priors.affine)
    x, y, z = xyz[0] / 70.0, xyz[1] / 90.0, xyz[2] / 70.0
    log_bias = 0.6 * x + 0.5 * y * z - 0.4 * z + 0.3 * (x * x - y * y)
    log_bias = bias_amplitude * log_bias / float(np.max(np.abs(log_bias[priors.mask])))
    bias = np.exp(log_bias).astype(np.float32)
    means = [float(np.mean(priors.t1[p > 0.9])) for p in (priors.gm, priors.wm, priors.csf)]
    if intensity == "maps":
        clean = (priors.gm * means[0] + priors.wm * means[1] + priors.csf * means[2]).astype(np.float32)
    elif intensity == "template":
        clean = priors.t1
    else:
        raise ValueError(f"unknown intensity {intensity!r}")
    wm_level = means[1]
    noisy = clean * bias + rng.normal(0, noise_fraction * wm_level, priors.t1.shape).astype(np.float32)
    data = np.where(priors.mask, np.maximum(noisy, 1e-3), 0).astype(np.float32)
    return SyntheticT1w(data=data, affine=rigid @ priors.affine, gm=priors.gm, wm=priors.wm,
                        csf=priors.csf, rigid=rigid, bias=bias)


def with_head(synth: SyntheticT1w, *, rng: np.random.Generator | None = None) -> SyntheticT1w:
    """Wrap a brain-only synthetic T1w in a crude head: CSF rim, skull, scalp and noisy air.

    Layers by distance from the brain (mm): 0–3 CSF (0.3 × WM), 3–8 skull (0.1 × WM), 8–14
    scalp fat (1.1 × WM), then air with Rayleigh-like noise (|N(0, 0.03 × WM)|). The truth
    maps are unchanged (tissue only inside the brain).

    Parameters
    ----------
    synth : SyntheticT1w
        Brain-only phantom from ``synthetic_t1w``.
    rng : numpy.random.Generator, optional
        Random generator (default: seeded with 1).

    Returns
    -------
    SyntheticT1w
        Same truth and affine, new ``data``.
    """
    rng = np.random.default_rng(1) if rng is None else rng
    brain = synth.data > 0
    zooms = np.sqrt((synth.affine[:3, :3] ** 2).sum(axis=0))
    dist = ndimage.distance_transform_edt(~brain, sampling=zooms)
    wm = float(np.median(synth.data[synth.wm > 0.9])) if np.any(synth.wm > 0.9) else float(synth.data.max())
    level = np.select([dist <= 0, dist <= 3, dist <= 8, dist <= 14], [0.0, 0.3 * wm, 0.1 * wm, 1.1 * wm], 0.0)
    noise = rng.normal(0, 0.03 * wm, synth.data.shape)
    outside = np.abs(level + noise).astype(np.float32)
    data = np.where(brain, synth.data, outside).astype(np.float32)
    return SyntheticT1w(data=data, affine=synth.affine, gm=synth.gm, wm=synth.wm, csf=synth.csf,
                        rigid=synth.rigid, bias=synth.bias)


def cube_weights(shape: tuple[int, ...], affine: np.ndarray, centre_mm, edge_mm: float = VOXEL_EDGE_MM,
                 frame: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the voxels whose centres lie in an axis-aligned cube.

    Parameters
    ----------
    shape : tuple of int
        Grid shape.
    affine : numpy.ndarray
        4×4 voxel-to-world affine (mm) of the grid.
    centre_mm : sequence of float
        Cube centre in the cube's frame (mm).
    edge_mm : float
        Cube edge (mm); half-open interval ``[-edge/2, edge/2)`` on each axis.
    frame : numpy.ndarray, optional
        4×4 transform from the cube's frame to world (e.g. the rigid motion of a synthetic
        subject, so the cube is defined in template coordinates); identity if None.

    Returns
    -------
    numpy.ndarray
        Boolean mask, ``shape``.
    """
    to_frame = np.linalg.inv(np.eye(4) if frame is None else frame) @ affine
    xyz = _world_coordinates(shape, to_frame) - np.asarray(centre_mm, np.float32).reshape(3, 1, 1, 1)
    half = edge_mm / 2
    return np.all((xyz >= -half) & (xyz < half), axis=0)


def voxel_fractions(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """GM/WM/CSF fractions ``Σ w·p_t / Σ w·(p_GM+p_WM+p_CSF)`` (dimensionless, length-3 array)."""
    w = np.asarray(weights, np.float64)
    sums = np.array([np.sum(w * p) for p in (gm, wm, csf)])
    total = sums.sum()
    return sums / total if total > 0 else np.full(3, np.nan)
