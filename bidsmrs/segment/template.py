"""MNI152 template and tissue priors shipped inside the nilearn wheel (no download)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["TemplatePriors", "load_mni152_priors", "TEMPLATE_NAME"]

logger = logging.getLogger(__name__)

#: Provenance name of the template (Fonov et al. 2009/2011, NeuroImage 47:S102, 54:313),
#: as bundled by nilearn (``nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted``).
TEMPLATE_NAME = "MNI152NLin2009aSym (nilearn package data)"


@dataclass(frozen=True)
class TemplatePriors:
    """Brain-extracted MNI152 T1w template and its tissue priors on one 1 mm grid.

    Attributes
    ----------
    t1 : numpy.ndarray
        Skull-stripped T1w template, float32 scaled to 0–1 (arbitrary units).
    gm, wm, csf : numpy.ndarray
        Tissue probabilities (float32, 0–1) inside ``mask``, 0 outside; ``csf = mask − gm − wm``
        clipped at 0, after scaling ``gm + wm`` down where it exceeds 1.
    mask : numpy.ndarray
        Boolean brain mask (template T1w > 0.2, nilearn's definition).
    affine : numpy.ndarray
        4×4 voxel-to-MNI affine (mm).
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    mask: np.ndarray
    affine: np.ndarray


def priors_from_maps(gm: np.ndarray, wm: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Make consistent GM/WM/CSF probabilities from GM and WM maps and a brain mask.

    Parameters
    ----------
    gm, wm : numpy.ndarray
        Grey- and white-matter probability maps (0–1).
    mask : numpy.ndarray
        Boolean brain mask.

    Returns
    -------
    tuple of numpy.ndarray
        ``(gm, wm, csf)`` as float32, 0 outside the mask, ``gm + wm + csf = 1`` inside it.

    Examples
    --------
    >>> g, w, c = priors_from_maps(np.array([0.7, 0.9]), np.array([0.1, 0.3]), np.array([True, True]))
    >>> [round(float(v), 3) for v in c], [round(float(v), 3) for v in g + w + c]
    ([0.2, 0.0], [1.0, 1.0])
    """
    m = np.asarray(mask, bool)
    g = np.clip(np.asarray(gm, np.float32), 0, 1) * m
    w = np.clip(np.asarray(wm, np.float32), 0, 1) * m
    total = g + w
    scale = np.where(total > 1, 1 / np.maximum(total, 1e-12), 1).astype(np.float32)
    g, w = g * scale, w * scale
    c = np.clip(m.astype(np.float32) - g - w, 0, 1)
    return g.astype(np.float32), w.astype(np.float32), c.astype(np.float32)


def load_mni152_priors() -> TemplatePriors:
    """Load nilearn's bundled 1 mm MNI152 2009 template, brain mask and GM/WM maps.

    Returns
    -------
    TemplatePriors
        Template and priors on the 197×233×189, 1 mm MNI grid.

    Raises
    ------
    ImportError
        If nilearn is not installed (``pip install nilearn``).

    Notes
    -----
    ``nilearn.datasets.load_mni152_*`` read files inside the nilearn wheel; nothing is
    fetched. nilearn's template T1w is already brain-extracted.
    """
    from nilearn import datasets  # heavy import; only when a segmentation is asked for

    t1_img = datasets.load_mni152_template(resolution=1)
    affine = np.asarray(t1_img.affine, float)
    t1 = np.asarray(t1_img.get_fdata(dtype=np.float32))
    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=1).dataobj) > 0
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32))
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32))
    g, w, c = priors_from_maps(gm, wm, mask)
    logger.debug("MNI152 priors loaded: %d brain voxels", int(mask.sum()))
    return TemplatePriors(t1=t1, gm=g, wm=w, csf=c, mask=mask, affine=affine)
