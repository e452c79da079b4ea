"""Convenience: segment a T1w NIfTI file (reads it with nibabel; writes nothing)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .pipeline import segment_t1w
from .result import Segmentation

__all__ = ["segment_t1w_file"]


def segment_t1w_file(path: str | Path, *, n_threads: int = 1, **options) -> Segmentation:
    """Read a 3-D T1w NIfTI with nibabel and segment it (see ``segment_t1w`` for ``options``).

    Parameters
    ----------
    path : str or pathlib.Path
        T1w NIfTI file (``.nii`` or ``.nii.gz``); a trailing singleton 4th dimension is dropped.
    n_threads : int
        ITK threads.

    Returns
    -------
    Segmentation
    """
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.get_fdata(dtype=np.float32))
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    return segment_t1w(data, img.affine, n_threads=n_threads, **options)
