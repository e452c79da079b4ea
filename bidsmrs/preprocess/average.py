"""Signal averaging over ``DIM_DYN`` (excluding rejected transients)."""
from __future__ import annotations

import numpy as np

from bidsmrs.errors import InputError
from bidsmrs.preprocess.dims import DIM_DYN, drop_tag
from bidsmrs.spectrum import Spectrum, StepRecord


def average_transients(spec: Spectrum, exclude: np.ndarray | None = None, role: str = "metabolite") -> Spectrum:
    """Mean over ``DIM_DYN`` of the transients not in ``exclude`` (boolean mask).

    Transients with non-finite samples are always excluded. Raises InputError when nothing
    is left to average. Without ``DIM_DYN`` the spectrum is returned unchanged.
    """
    ax = spec.axis_of(DIM_DYN)
    if ax is None:
        return spec
    fid = np.moveaxis(spec.fid, ax, -1)
    d = fid.shape[-1]
    keep = np.ones(d, bool) if exclude is None else ~np.asarray(exclude, bool)
    keep &= np.isfinite(fid).reshape(-1, d).all(axis=0)
    if not keep.any():
        raise InputError(f"no usable transient left to average in the {role} (all rejected or non-finite)")
    out = fid[..., keep].mean(axis=-1)
    n_keep = int(keep.sum())
    details = f"Averaged {n_keep} of {d} transients of the {role}" + (
        f" ({d - n_keep} excluded)." if n_keep < d else ".")
    step = StepRecord("Signal averaging", details, {"n_averaged": n_keep, "n_transients": int(d)})
    return spec.with_step(out, step, dim_tags=drop_tag(spec.dim_tags, DIM_DYN))


__all__ = ["average_transients"]
