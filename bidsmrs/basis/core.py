"""The Basis data object: one FID per metabolite on a common time grid.

Amplitude convention (DESIGN.md §6.2): each basis FID is the signal of ONE molecule at unit
concentration, so its value at t = 0 equals the number of protons contributing (e.g. about 5
for Cr in the ppm range simulated). Fitted amplitudes are therefore in "molecules", and the
water reference (2 protons per molecule) scales them to mM. Data are in the stored NIfTI-MRS
convention of :mod:`bidsmrs.spectrum`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from bidsmrs.spectrum import frequency_axis_hz, hz_to_ppm


@dataclass(frozen=True)
class Basis:
    """A basis set.

    Parameters
    ----------
    names : tuple of str
        Metabolite names (output names of DESIGN.md §5.2 for built-in bases; the file's own
        names for user bases).
    fids : ndarray, complex, shape (n_points, n_metabolites)
        Time-domain basis signals, stored NIfTI-MRS convention, no line broadening beyond
        what the source carries.
    dwell_s : float
        Dwell time (s).
    spectrometer_mhz : float
        Spectrometer frequency (MHz) the basis was made for.
    ppm_centre : float
        Chemical shift (ppm) at 0 Hz.
    is_macromolecule : tuple of bool
        True for MM/lipid components (fitted with their own lineshape group).
    meta : dict
        Provenance: ``source`` (file or ``"simulated"``), ``sequence``, ``echo_time_s``, ...
    """

    names: tuple[str, ...]
    fids: np.ndarray
    dwell_s: float
    spectrometer_mhz: float
    ppm_centre: float = 4.65
    is_macromolecule: tuple[bool, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.fids.ndim != 2 or self.fids.shape[1] != len(self.names):
            raise ValueError(f"basis fids shape {self.fids.shape} does not match {len(self.names)} names")
        if not self.is_macromolecule:
            object.__setattr__(self, "is_macromolecule", tuple(is_macromolecule_name(n) for n in self.names))
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate basis names: {self.names}")

    @property
    def n_points(self) -> int:
        return int(self.fids.shape[0])

    @property
    def ppm(self) -> np.ndarray:
        return hz_to_ppm(frequency_axis_hz(self.n_points, self.dwell_s), self.spectrometer_mhz,
                         self.ppm_centre)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def subset(self, names) -> "Basis":
        """A basis with only ``names`` (in that order)."""
        idx = [self.index(n) for n in names]
        return dataclasses.replace(self, names=tuple(names), fids=self.fids[:, idx],
                                   is_macromolecule=tuple(self.is_macromolecule[i] for i in idx))

    def resample(self, dwell_s: float, n_points: int, spectrometer_mhz: float | None = None,
                 ppm_centre: float | None = None) -> "Basis":
        """Resample onto another time grid (and optionally rescale to another field).

        The FIDs are interpolated in the time domain after a frequency-domain shift that
        keeps every resonance at the same ppm when the spectrometer frequency or ppm centre
        differs (same field assumed for J-coupling patterns; a different field needs a new
        simulation). Points beyond the source duration are zero.
        """
        sf_new = self.spectrometer_mhz if spectrometer_mhz is None else spectrometer_mhz
        centre_new = self.ppm_centre if ppm_centre is None else ppm_centre
        t_old = np.arange(self.n_points) * self.dwell_s
        t_new = np.arange(n_points) * dwell_s
        fids = self.fids
        if sf_new != self.spectrometer_mhz or centre_new != self.ppm_centre:
            # Re-map the frequency of every component: f_new = (c_new − δ)·SF_new with
            # δ = c_old − f_old/SF_old; for small SF changes a linear frequency scaling is an
            # adequate approximation: apply as time scaling plus a constant shift.
            scale = sf_new / self.spectrometer_mhz
            shift_hz = (centre_new - self.ppm_centre) * sf_new
            t_scaled = t_old / scale
            fids = np.stack([_interp_complex(t_old, fids[:, k], t_scaled) for k in range(fids.shape[1])], 1)
            fids = fids * np.exp(2j * np.pi * shift_hz * t_old)[:, None]
        if np.isclose(dwell_s, self.dwell_s) and n_points <= self.n_points:
            new = fids[:n_points]
        elif np.isclose(dwell_s, self.dwell_s):
            new = np.zeros((n_points, fids.shape[1]), complex)
            new[: self.n_points] = fids
        else:
            new = np.stack([_interp_complex(t_old, fids[:, k], t_new) for k in range(fids.shape[1])], 1)
        return dataclasses.replace(self, fids=new, dwell_s=dwell_s, spectrometer_mhz=sf_new,
                                   ppm_centre=centre_new)


def _interp_complex(t_old: np.ndarray, y: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """Band-limited (sinc, via zero-padded FFT) would be exact; cubic is accurate for FIDs
    sampled well above their bandwidth. We use linear-phase-safe cubic interpolation."""
    from scipy.interpolate import CubicSpline

    out = np.zeros(t_new.shape, complex)
    inside = t_new <= t_old[-1]
    cs_r = CubicSpline(t_old, y.real)
    cs_i = CubicSpline(t_old, y.imag)
    out[inside] = cs_r(t_new[inside]) + 1j * cs_i(t_new[inside])
    return out


_MM_PREFIXES = ("mm", "mac", "lip", "mmbl")


def is_lipid_name(name: str) -> bool:
    """True for lipid component names (``Lip09``, ``Lip13a`` ...)."""
    return name.lower().startswith("lip")


def is_macromolecule_name(name: str) -> bool:
    """True for macromolecule / lipid component names (``Mac``, ``MM09``, ``Lip13`` ...)."""
    low = name.lower()
    return low.startswith(_MM_PREFIXES) and not low.startswith("mme")
