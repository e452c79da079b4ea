"""Built-in T1w tissue segmentation: N4 → MNI152 registration → partial-volume model with template priors."""
from __future__ import annotations

import logging
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import ants_steps
from .pve import fit_pve_volume
from .itk_threads import itk_threads
from .result import Segmentation
from .skullstrip import head_mask, is_skull_stripped, nonzero_mask
from .template import TEMPLATE_NAME, TemplatePriors, load_mni152_priors

__all__ = ["segment_t1w", "METHOD", "METHOD_ATROPOS"]

logger = logging.getLogger(__name__)

METHOD = "ants-n4+mni152-registration+bayesian-pve"
METHOD_ATROPOS = "ants-n4+mni152-registration+atropos"

#: Isotropic spacing (mm) at which N4 and the registrations run.
WORK_SPACING_MM = 2.0
#: Weight of a flat (1/3, 1/3, 1/3) prior blended into the warped template priors given to
#: Atropos, so that no class is impossible where the registration is imperfect (dimensionless).
FLAT_PRIOR_BLEND = 0.05
#: Dilation (voxels of the work grid) of the first-pass brain mask of a head image.
HEAD_BRAIN_DILATION = 3
#: Scalp + skull thickness (mm) peeled off the head mask before the first-pass registration
#: of a head image, so that the brain template is not stretched onto the scalp.
SCALP_EROSION_MM = 10.0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _normalised_priors(warped: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    stack = np.clip(np.stack(warped), 0, None)
    total = stack.sum(axis=0)
    flat = np.full_like(stack, 1.0 / len(warped))
    norm = np.where(total > 1e-3, stack / np.maximum(total, 1e-3), flat)
    blended = (1 - FLAT_PRIOR_BLEND) * norm + FLAT_PRIOR_BLEND * flat
    return [np.where(mask, p, 0).astype(np.float32) for p in blended]


def _brain_from_head(ants, corrected, head: np.ndarray, affine: np.ndarray, template_small,
                     priors: TemplatePriors, tmp: str, affine_iterations):
    """First pass for a head image: affine-register the brain template, return a dilated brain mask."""
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    inner = ndimage.distance_transform_edt(head, sampling=zooms) > SCALP_EROSION_MM
    peeled = corrected * corrected.new_image_like(inner.astype(np.float32))
    small = ants_steps.resample_mm(peeled, WORK_SPACING_MM)
    transforms = ants_steps.register_template(small, template_small, deformable=False,
                                              affine_iterations=affine_iterations, tmpdir=tmp)
    mask_small = ants_steps.warp_to_subject(small, priors.mask.astype(np.float32), priors.affine,
                                            transforms) >= 0.5
    mask_small = ndimage.binary_dilation(mask_small, iterations=HEAD_BRAIN_DILATION)
    mask_img = small.new_image_like(mask_small.astype(np.float32))
    return ants.resample_image_to_target(mask_img, corrected, interp_type="nearestNeighbor")


def segment_t1w(t1w_data: np.ndarray, t1w_affine: np.ndarray, *, n_threads: int = 1,
                skull_stripped: bool | None = None, deformable: bool = False,
                tissue_model: str = "pve",
                affine_iterations: tuple[int, ...] = (300, 150, 50),
                syn_iterations: tuple[int, ...] = (40, 20, 0),
                atropos_iterations: int = 5, prior_weight: float | None = None,
                mrf_weight: float = 0.1, priors: TemplatePriors | None = None,
                scratch_dir: str | Path | None = None) -> Segmentation:
    """Segment a T1w image into GM, WM and CSF probability maps on its own grid.

    Parameters
    ----------
    t1w_data : numpy.ndarray
        3-D T1w intensities (arbitrary units), skull-stripped or not.
    t1w_affine : numpy.ndarray
        4×4 voxel-to-world (RAS) affine, mm.
    n_threads : int
        ITK threads (see ``itk_threads`` for when the setting takes effect).
    skull_stripped : bool, optional
        Whether the T1w is already brain-extracted; guessed by ``is_skull_stripped`` if None.
    deformable : bool
        Add a SyN stage after the affine registration of the template. Off by default: on the
        synthetic benchmark the coarse SyN stage degraded the priors (see
        benchmarks/RESULTS_segmentation.md).
    tissue_model : {"pve", "atropos"}
        ``"pve"``: Bayesian partial-volume model with template priors (``pve.fit_pve_volume``;
        volume fractions). ``"atropos"``: ANTs Atropos posteriors with the template priors.
    affine_iterations, syn_iterations : tuple of int
        Iterations per resolution level of the registration stages (run on a 2 mm grid).
    atropos_iterations : int
        EM iterations of Atropos (``tissue_model="atropos"`` only).
    prior_weight : float
        PVE: Dirichlet concentration of the template prior (default 20). Atropos: prior
        weight (default 0.25).
    mrf_weight : float
        Atropos MRF weight (``tissue_model="atropos"`` only).
    priors : TemplatePriors, optional
        Template and priors; nilearn's MNI152 2009 template if None.
    scratch_dir : str or pathlib.Path, optional
        Where the temporary transform and Atropos files go (a private sub-directory, deleted
        at the end); the system temporary directory if None. The participant stage passes
        its work directory, so that ``--work-dir`` holds every intermediate file.

    Returns
    -------
    Segmentation
        GM/WM/CSF probabilities (float32, sum ≤ 1, 0 outside the brain) and brain mask on the
        T1w grid.

    Notes
    -----
    1. Skull-stripped input: the brain mask is the largest non-zero blob. Otherwise a head
       mask weights N4 and the brain mask comes from the registered template mask.
    2. N4 (Tustison et al. 2010, IEEE TMI 29:1310) is estimated on a 2 mm copy.
    3. The brain-extracted MNI152 template is registered to the corrected T1w at 2 mm
       (Mattes MI affine; optional SyN, Avants et al. 2008, Med Image Anal 12:26) and its
       GM/WM/CSF maps are warped to the T1w grid (head images: a first affine pass on the
       head with ``SCALP_EROSION_MM`` peeled off gives the brain mask).
    4. At native resolution, the Bayesian partial-volume model (default; ``pve.fit_pve_volume``:
       noise SD from the white-matter interior, residual bias re-estimated from confidently pure
       GM/WM voxels) gives volume fractions; or Atropos (Avants et al. 2011,
       Neuroinformatics 9:381) gives class posteriors.
    """
    if tissue_model not in ("pve", "atropos"):
        raise ValueError(f"unknown tissue_model {tissue_model!r}")
    data = np.nan_to_num(np.asarray(t1w_data, np.float32))
    affine = np.asarray(t1w_affine, float)
    if data.ndim != 3:
        raise ValueError(f"T1w must be 3-D, got shape {data.shape}")
    stripped = is_skull_stripped(data, affine) if skull_stripped is None else bool(skull_stripped)
    logger.info("T1w %s, skull-stripped=%s", data.shape, stripped)
    priors = load_mni152_priors() if priors is None else priors

    scratch = str(scratch_dir) if scratch_dir is not None else None
    with itk_threads(n_threads), tempfile.TemporaryDirectory(prefix="bidsmrs-seg-", dir=scratch) as tmp:
        ants = ants_steps.import_ants()
        image = ants_steps.to_ants(data, affine)
        fg = nonzero_mask(data) if stripped else head_mask(data)
        fg_img = image.new_image_like(fg.astype(np.float32))
        corrected = ants_steps.n4_correct(image, fg_img, work_spacing_mm=WORK_SPACING_MM)

        template = ants_steps.to_ants(priors.t1, priors.affine)
        template_small = ants_steps.resample_mm(template, WORK_SPACING_MM)
        if stripped:
            brain_img = fg_img
        else:
            brain_img = _brain_from_head(ants, corrected, fg, affine, template_small, priors, tmp,
                                         affine_iterations)
        fixed = corrected * brain_img
        fixed_small = ants_steps.resample_mm(fixed, WORK_SPACING_MM)
        mask_small = ants.resample_image_to_target(brain_img, fixed_small, interp_type="nearestNeighbor")
        transforms = ants_steps.register_template(
            fixed_small, template_small, fixed_mask=mask_small, deformable=deformable,
            affine_iterations=affine_iterations, syn_iterations=syn_iterations, tmpdir=tmp)
        warped = [ants_steps.warp_to_subject(image, p, priors.affine, transforms)
                  for p in (priors.gm, priors.wm, priors.csf, priors.mask.astype(np.float32))]
        if stripped:
            brain = fg
        else:
            brain = (warped[3] >= 0.5) & fg
        if tissue_model == "atropos":
            priors_here = _normalised_priors(warped[:3], brain)
            weight = 0.25 if prior_weight is None else prior_weight
            model_details: tuple[tuple[str, str], ...] = ()
            brain_ants = image.new_image_like(brain.astype(np.float32))
            posteriors = ants_steps.atropos_posteriors(
                corrected, brain_ants, priors_here, prior_weight=weight,
                mrf_weight=mrf_weight, iterations=atropos_iterations, scratch_dir=tmp)
            stack = np.clip(np.stack(posteriors), 0, 1) * brain
        elif tissue_model == "pve":
            weight = 20.0 if prior_weight is None else prior_weight
            intensity = ants_steps.from_ants(corrected)[brain]
            p = np.stack([warped[2][brain], warped[0][brain], warped[1][brain]], axis=1)  # CSF, GM, WM
            p = np.clip(p, 0, None)
            empty = p.sum(axis=1) < 1e-3  # inside the subject's mask, outside the template's
            p[empty] = 1.0 / 3
            zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
            fractions, params, residual_bias = fit_pve_volume(intensity, p, brain, zooms, concentration=weight)
            stack = np.zeros((3,) + data.shape, np.float32)
            for k, col in enumerate((1, 2, 0)):  # GM, WM, CSF
                stack[k][brain] = fractions[:, col]
            low, high = np.percentile(residual_bias, [1, 99])
            logger.info("PVE means (CSF, GM, WM) %s, noise SD %.4g, residual bias 1-99 %% %.3f-%.3f",
                        params.means, params.noise_sd, low, high)
            model_details = (("noise_sd", "robust SD of the white-matter interior"),
                             ("residual_bias_range", f"{low:.3f}-{high:.3f}"))
        else:
            raise ValueError(f"unknown tissue_model {tissue_model!r}")

    stack /= np.maximum(stack.sum(axis=0), 1.0)
    gm, wm, csf = (p.astype(np.float32) for p in stack)
    details = (
        ("antspyx", _version("antspyx")),
        ("nilearn", _version("nilearn")),
        ("template", TEMPLATE_NAME),
        ("skull_stripped_input", str(stripped)),
        ("registration", "affine+SyN" if deformable else "affine"),
        ("tissue_model", tissue_model),
        ("prior_weight", str(weight)),
    ) + model_details
    return Segmentation(gm=gm, wm=wm, csf=csf, brain_mask=brain, affine=affine.copy(),
                        method=METHOD_ATROPOS if tissue_model == "atropos" else METHOD,
                        details=details)
