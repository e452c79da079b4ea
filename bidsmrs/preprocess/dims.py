"""Dimension handling by NIfTI-MRS tag (never by position).

Every preprocessing step addresses the higher dimensions of :class:`~bidsmrs.spectrum.Spectrum`
through ``dim_tags`` (``DIM_COIL``, ``DIM_DYN``, ...). These helpers move a tagged axis to a
known place and back.
"""
from __future__ import annotations

import numpy as np

from bidsmrs.spectrum import Spectrum

DIM_COIL = "DIM_COIL"
DIM_DYN = "DIM_DYN"
DIM_EDIT = "DIM_EDIT"

#: Tags the preprocessing understands.
SUPPORTED_TAGS = (DIM_COIL, DIM_DYN)


def move_tag_last(fid: np.ndarray, tags: tuple[str, ...], tag: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Move the axis of ``tag`` to the last position; returns the array and the new tag order."""
    ax = 1 + tags.index(tag)
    out = np.moveaxis(fid, ax, -1)
    new_tags = tuple(t for t in tags if t != tag) + (tag,)
    return out, new_tags


def drop_tag(tags: tuple[str, ...], tag: str) -> tuple[str, ...]:
    """``tags`` without ``tag``."""
    return tuple(t for t in tags if t != tag)


def size_of(spec: Spectrum, tag: str) -> int:
    """Length of dimension ``tag`` (1 when absent)."""
    ax = spec.axis_of(tag)
    return 1 if ax is None else int(spec.fid.shape[ax])


def mean_over_tag(fid: np.ndarray, tags: tuple[str, ...], tag: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Mean over the axis of ``tag`` (no-op when absent)."""
    if tag not in tags:
        return fid, tags
    return fid.mean(axis=1 + tags.index(tag)), drop_tag(tags, tag)


def squeeze_to(fid: np.ndarray, tags: tuple[str, ...], keep: tuple[str, ...]) -> np.ndarray:
    """Reorder to ``(n_points, *keep)``, averaging every other tagged axis.

    Tags in ``keep`` that are absent become axes of length 1.
    """
    out = fid
    cur = tuple(tags)
    for t in [t for t in cur if t not in keep]:
        out, cur = mean_over_tag(out, cur, t)
    for t in keep:
        if t not in cur:
            out = out[..., None]
            cur = cur + (t,)
    order = [0] + [1 + cur.index(t) for t in keep]
    return np.transpose(out, order)
