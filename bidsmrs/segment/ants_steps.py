"""Thin wrappers around antspyx: N4, template registration and Atropos (no files left behind).

Every function takes and returns ``ants.ANTsImage`` objects. Temporary files that ANTs needs
(transforms, Atropos priors/posteriors) live in a private temporary directory that is removed
before the function returns.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

import numpy as np

__all__ = ["import_ants", "to_ants", "from_ants", "n4_correct", "register_template",
           "warp_to_subject", "atropos_posteriors"]

logger = logging.getLogger(__name__)


def import_ants():
    """Import antspyx, with an actionable error if it is missing."""
    try:
        import ants  # noqa: PLC0415 - heavy (≈2 s); imported only when segmenting
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the built-in T1w segmentation needs antspyx: pip install 'antspyx>=0.6'") from exc
    return ants


def to_ants(data: np.ndarray, affine: np.ndarray):
    """NumPy array + 4×4 RAS affine (mm) → ``ANTsImage`` (same voxel order, LPS physical space)."""
    import nibabel as nib

    ants = import_ants()
    img = nib.Nifti1Image(np.asarray(data, np.float32), np.asarray(affine, float))
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(np.asarray(affine, float), code=1)
    img.header.set_sform(np.asarray(affine, float), code=1)
    return ants.from_nibabel_nifti(img)


def from_ants(image) -> np.ndarray:
    """``ANTsImage`` → float32 NumPy array in the image's voxel order."""
    return np.asarray(image.numpy(), np.float32)


def resample_mm(image, spacing_mm: float, *, nearest: bool = False):
    """Resample an ``ANTsImage`` to isotropic ``spacing_mm`` (linear, or nearest neighbour)."""
    ants = import_ants()
    return ants.resample_image(image, (spacing_mm,) * 3, use_voxels=False, interp_type=1 if nearest else 0)


def n4_correct(image, mask, *, work_spacing_mm: float = 2.0, shrink_factor: int = 2,
               iterations: Sequence[int] = (50, 50, 30)):
    """N4 bias-field correction estimated on a coarse copy and applied at full resolution.

    Parameters
    ----------
    image, mask : ANTsImage
        T1w and a foreground mask (non-zero = use) on the same grid.
    work_spacing_mm : float
        Isotropic spacing (mm) of the copy on which the field is estimated; with
        ``shrink_factor`` 2 the B-spline fit sees 4 mm samples, enough for a smooth field.
    shrink_factor : int
        N4 shrink factor on the coarse copy.
    iterations : sequence of int
        N4 iterations per fitting level.

    Returns
    -------
    ANTsImage
        Corrected T1w (same grid as ``image``), 0 outside the mask.
    """
    ants = import_ants()
    small = resample_mm(image, work_spacing_mm)
    small_mask = ants.resample_image_to_target(mask, small, interp_type="nearestNeighbor")
    field = ants.n4_bias_field_correction(small, mask=small_mask, shrink_factor=shrink_factor,
                                          convergence={"iters": list(iterations), "tol": 1e-7},
                                          return_bias_field=True)
    field_full = ants.resample_image_to_target(field, image, interp_type="linear")
    bias = from_ants(field_full)
    data = from_ants(image)
    m = from_ants(mask) > 0
    corrected = np.where(m & (bias > 0), data / np.where(bias > 0, bias, 1), 0).astype(np.float32)
    return image.new_image_like(corrected)


def register_template(fixed, moving, *, fixed_mask=None, deformable: bool = True,
                      affine_iterations: Sequence[int] = (300, 150, 50),
                      syn_iterations: Sequence[int] = (40, 20, 0), tmpdir: str):
    """Register a template (moving) to a subject (fixed): affine, then optional SyN.

    Parameters
    ----------
    fixed, moving : ANTsImage
        Subject and template T1w, ideally at a coarse spacing (2 mm) for speed.
    fixed_mask : ANTsImage, optional
        Metric mask in subject space (applied to the SyN stage).
    deformable : bool
        Run a SyN stage after the affine one.
    affine_iterations : sequence of int
        Iterations per level (shrink factors 4, 2, 1; smoothing 2, 1, 0 voxels), Mattes MI.
    syn_iterations : sequence of int
        SyN iterations per level (Mattes MI).
    tmpdir : str
        Directory for the transform files (caller-owned temporary directory).

    Returns
    -------
    list of str
        Forward transform files (template → subject), for ``warp_to_subject``.
    """
    ants = import_ants()
    n = len(affine_iterations)
    shrink = tuple(2 ** k for k in range(n - 1, -1, -1))
    sigmas = tuple(range(n - 1, -1, -1))
    affine = ants.registration(fixed, moving, type_of_transform="Affine", aff_metric="mattes",
                               aff_iterations=tuple(affine_iterations), aff_shrink_factors=shrink,
                               aff_smoothing_sigmas=sigmas,
                               outprefix=os.path.join(tmpdir, "affine_"))
    transforms = list(affine["fwdtransforms"])
    if not deformable:
        return transforms
    syn = ants.registration(fixed, moving, type_of_transform="SyNOnly", initial_transform=transforms,
                            syn_metric="mattes", reg_iterations=tuple(syn_iterations), mask=fixed_mask,
                            outprefix=os.path.join(tmpdir, "syn_"))
    fwd = list(syn["fwdtransforms"])
    logger.debug("registration transforms: %s", fwd)
    return fwd


def warp_to_subject(reference, template_map: np.ndarray, template_affine: np.ndarray,
                    transforms: Sequence[str]) -> np.ndarray:
    """Warp a template-space map onto the subject grid (linear interpolation), as float32."""
    ants = import_ants()
    moving = to_ants(template_map, template_affine)
    warped = ants.apply_transforms(fixed=reference, moving=moving, transformlist=list(transforms),
                                   interpolator="linear")
    return from_ants(warped)


def atropos_posteriors(image, mask, priors: Sequence[np.ndarray], *, prior_weight: float = 0.25,
                       mrf_weight: float = 0.1, iterations: int = 5,
                       scratch_dir: str | None = None) -> list[np.ndarray]:
    """Atropos finite-mixture segmentation with prior probability images.

    Parameters
    ----------
    image, mask : ANTsImage
        Bias-corrected T1w and brain mask on the same grid.
    priors : sequence of numpy.ndarray
        One prior probability map per class (GM, WM, CSF order is kept), on the image grid.
    prior_weight : float
        Atropos prior weight (0 = priors only initialise; 0.25 is the ANTs cortical-thickness
        default, Tustison et al. 2014, NeuroImage 99:166).
    mrf_weight : float
        MRF smoothing factor (radius 1 voxel).
    iterations : int
        Maximum EM iterations.
    scratch_dir : str, optional
        Parent of the private temporary directory (system temporary directory if None).

    Returns
    -------
    list of numpy.ndarray
        Posterior probability maps (float32), one per prior, in the prior order.

    Notes
    -----
    Calls the Atropos binding of antspyx directly (``ants.internal``) so that its prior and
    posterior files live in a private temporary directory that is deleted afterwards
    (``ants.atropos`` leaves them in the system temporary directory).
    """
    ants = import_ants()
    from ants.internal import get_lib_fn

    k = len(priors)
    with tempfile.TemporaryDirectory(prefix="bidsmrs-atropos-", dir=scratch_dir) as tmp:
        prior_pattern = os.path.join(tmp, "prior%02d.nii.gz")
        post_pattern = os.path.join(tmp, "posterior%02d.nii.gz")
        # Every input goes through a file so that all share the float32 NIfTI header geometry
        # (ITK refuses inputs whose origins differ by more than 1e-6 relative).
        image_path, mask_path = os.path.join(tmp, "t1w.nii.gz"), os.path.join(tmp, "mask.nii.gz")
        ants.image_write(image, image_path)
        ants.image_write(mask.clone("unsigned int"), mask_path)
        for i, p in enumerate(priors, start=1):
            ants.image_write(image.new_image_like(np.asarray(p, np.float32)), prior_pattern % i)
        args = ["-d", "3", "-a", image_path, "-x", mask_path,
                "-i", f"PriorProbabilityImages[{k},{prior_pattern},{prior_weight}]",
                "-m", f"[{mrf_weight},1x1x1]", "-c", f"[{int(iterations)},0.0]",
                "-k", "Gaussian", "-o", f"[{os.path.join(tmp, 'labels.nii.gz')},{post_pattern}]"]
        status = get_lib_fn("Atropos")(args)
        if status != 0:
            raise RuntimeError(f"Atropos failed with status {status}")
        return [from_ants(ants.image_read(post_pattern % i)) for i in range(1, k + 1)]
