"""Parametrised macromolecule (MM) basis components: Gaussian lines at fixed ppm.

Positions, widths and relative amplitudes follow the LCModel manual's simulated
macromolecule set (Provencher, LCModel & LCMgui User's Manual, section on simulated lipid
and MM spectra: the default ``MM09 … MM20`` entries; based on Behar 1994 MRM 32:294 and
Seeger 2003 MRM 49:19), which Osprey and spant also use:

========  =========  =============  ===========================
name      ppm        FWHM (ppm)     amplitude (proton equiv.)
========  =========  =============  ===========================
MM09      0.91       0.14           3
MM12      1.21       0.15           2
MM14      1.43       0.17           2
MM17      1.67       0.15           2
MM20      2.08/1.95  0.15/0.15      1.33/0.33
MM22      2.25       0.20           0.33
MM30      3.00       0.20           0.40
========  =========  =============  ===========================

LCModel lumps the 2.25 and 3.00 ppm lines into MM20; bidsmrs keeps them as separate
components ``MM22`` and ``MM30`` (DESIGN.md §5.1) so that each is fitted freely.

Lipids (same LCModel manual table; also spant's ``get_lip*_paras``), used by the fitter when a
spectrum carries lipid signal (:attr:`bidsmrs.fitting.FitOptions.lipids`):

========  ==================  ==================  ================
name      ppm                 FWHM (ppm)          amplitude
========  ==================  ==================  ================
Lip09     0.89                0.14                3
Lip13a    1.28                0.15                2
Lip13b    1.28                0.089               2
Lip20     2.04 / 2.25 / 2.80  0.15 / 0.15 / 0.20  1.33 / 0.67 / 0.87
========  ==================  ==================  ================
Widths are in ppm (so they scale with field in Hz); each component's FID(0) equals its
amplitude, i.e. the same "protons of one molecule" convention as the metabolites.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from bidsmrs.basis.core import Basis
from bidsmrs.spectrum import ppm_to_hz

__all__ = ["GaussianLine", "MM_COMPONENTS", "LIPID_COMPONENTS", "mm_fid", "with_macromolecules",
           "with_lipids"]


@dataclass(frozen=True)
class GaussianLine:
    """One Gaussian line: centre (ppm), FWHM (ppm), amplitude (proton equivalents = FID(0))."""

    ppm: float
    fwhm_ppm: float
    amplitude: float


#: name → lines (LCModel manual; see module docstring).
MM_COMPONENTS: dict[str, tuple[GaussianLine, ...]] = {
    "MM09": (GaussianLine(0.91, 0.14, 3.0),),
    "MM12": (GaussianLine(1.21, 0.15, 2.0),),
    "MM14": (GaussianLine(1.43, 0.17, 2.0),),
    "MM17": (GaussianLine(1.67, 0.15, 2.0),),
    "MM20": (GaussianLine(2.08, 0.15, 1.33), GaussianLine(1.95, 0.15, 0.33)),
    "MM22": (GaussianLine(2.25, 0.20, 0.33),),
    "MM30": (GaussianLine(3.00, 0.20, 0.40),),
}

#: name → lines of the LCModel manual's simulated lipids (see module docstring).
LIPID_COMPONENTS: dict[str, tuple[GaussianLine, ...]] = {
    "Lip09": (GaussianLine(0.89, 0.14, 3.0),),
    "Lip13a": (GaussianLine(1.28, 0.15, 2.0),),
    "Lip13b": (GaussianLine(1.28, 0.089, 2.0),),
    "Lip20": (GaussianLine(2.04, 0.15, 1.33), GaussianLine(2.25, 0.15, 0.67),
              GaussianLine(2.80, 0.20, 0.87)),
}


def mm_fid(lines, n_points: int, dwell_s: float, spectrometer_mhz: float,
           ppm_centre: float = 4.65) -> np.ndarray:
    """FID of a sum of Gaussian lines, stored convention.

    A Gaussian of FWHM ``w`` Hz is ``exp(−(π w t)² / (4 ln 2))`` in time (FID(0) = amplitude).
    """
    t = np.arange(n_points) * dwell_s
    out = np.zeros(n_points, complex)
    for ln in lines:
        f = ppm_to_hz(ln.ppm, spectrometer_mhz, ppm_centre)
        w_hz = ln.fwhm_ppm * spectrometer_mhz
        out += ln.amplitude * np.exp(2j * np.pi * f * t - (np.pi * w_hz * t) ** 2 / (4 * np.log(2)))
    return out


def with_macromolecules(basis: Basis, names=None) -> Basis:
    """``basis`` with the MM components appended (those whose name is absent).

    Parameters
    ----------
    basis : Basis
    names : iterable of str, optional
        Subset of :data:`MM_COMPONENTS` (default all, in table order).
    """
    return _with_components(basis, MM_COMPONENTS, names, "macromolecules",
                            "LCModel manual simulated MM (Gaussian lines)")


def with_lipids(basis: Basis, names=None) -> Basis:
    """``basis`` with the lipid components of :data:`LIPID_COMPONENTS` appended (those absent).

    Parameters
    ----------
    basis : Basis
    names : iterable of str, optional
        Subset of :data:`LIPID_COMPONENTS` (default all, in table order).
    """
    return _with_components(basis, LIPID_COMPONENTS, names, "lipids",
                            "LCModel manual simulated lipids (Gaussian lines)")


def _with_components(basis: Basis, table, names, key: str, source: str) -> Basis:
    names = list(table) if names is None else list(names)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise KeyError(f"unknown {key} components {unknown}; known: {list(table)}")
    add = [n for n in names if n not in basis.names]
    if not add:
        return basis
    cols = np.stack([mm_fid(table[n], basis.n_points, basis.dwell_s,
                            basis.spectrometer_mhz, basis.ppm_centre) for n in add], 1)
    meta = dict(basis.meta)
    meta[key] = {"components": add, "source": source}
    return dataclasses.replace(basis, names=basis.names + tuple(add),
                               fids=np.concatenate([basis.fids, cols.astype(basis.fids.dtype)], 1),
                               is_macromolecule=tuple(basis.is_macromolecule) + (True,) * len(add),
                               meta=meta)
