"""The Spectrum data object and its frequency/ppm axes.

Convention (the *stored* NIfTI-MRS convention, NIfTI-MRS spec Appendix A): the spectrum is
``fftshift(fft(fid))`` along the time axis with the frequency axis
``f = fftshift(fftfreq(n, dwell))`` (Hz) and

    ppm = ppm_centre − f / spectrometer_mhz

so a resonance at chemical shift δ (ppm) is ``exp(+i 2π (ppm_centre − δ)·SF · t)`` in the FID.
Every module converts between ppm and Hz only through the helpers here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from bidsmrs.constants import DEFAULT_PPM_CENTRE


@dataclass(frozen=True)
class StepRecord:
    """One processing step, for ``ProcessingApplied`` and the methods text.

    Parameters
    ----------
    method : str
        Near 2021 method keyword, e.g. ``"RF coil combination"``,
        ``"Frequency and phase correction"``, ``"Signal averaging"``,
        ``"Eddy current correction"``, ``"Nuisance peak removal"``, ``"Phasing"``.
    details : str
        One sentence with the parameters actually used (goes into the methods text).
    params : dict
        Machine-readable parameters (JSON-serialisable).
    """

    method: str
    details: str
    params: Mapping[str, Any] = field(default_factory=dict)


def hz_to_ppm(hz, spectrometer_mhz: float, ppm_centre: float = 4.65):
    """Frequency offset (Hz, stored convention) to chemical shift (ppm)."""
    return ppm_centre - np.asarray(hz) / spectrometer_mhz


def ppm_to_hz(ppm, spectrometer_mhz: float, ppm_centre: float = 4.65):
    """Chemical shift (ppm) to frequency offset (Hz, stored convention)."""
    return (ppm_centre - np.asarray(ppm)) * spectrometer_mhz


def frequency_axis_hz(n_points: int, dwell_s: float) -> np.ndarray:
    """Frequency axis (Hz) of ``fftshift(fft(fid))``."""
    return np.fft.fftshift(np.fft.fftfreq(n_points, dwell_s))


def to_spectrum(fid: np.ndarray, axis: int = 0) -> np.ndarray:
    """FID (time axis ``axis``) to spectrum, ``fftshift(fft(fid))``."""
    return np.fft.fftshift(np.fft.fft(fid, axis=axis), axes=axis)


def to_fid(spec: np.ndarray, axis: int = 0) -> np.ndarray:
    """Inverse of :func:`to_spectrum`."""
    return np.fft.ifft(np.fft.ifftshift(spec, axes=axis), axis=axis)


@dataclass(frozen=True)
class Spectrum:
    """A single-voxel MRS acquisition: the FID and everything needed to interpret it.

    Parameters
    ----------
    fid : ndarray, complex
        Time-domain data. Axis 0 is time (``n_points``); further axes are described by
        ``dim_tags`` (e.g. ``("DIM_COIL", "DIM_DYN")``). A processed spectrum is 1-D.
    dwell_s : float
        Dwell time (s); spectral width is ``1/dwell_s`` (Hz).
    spectrometer_mhz : float
        Spectrometer (Larmor) frequency of the observed nucleus (MHz).
    nucleus : str
        Resonant nucleus, e.g. ``"1H"``.
    ppm_centre : float
        Chemical shift (ppm) at 0 Hz.
    echo_time_s, repetition_time_s, mixing_time_s : float or None
        Sequence timing (s), None when unknown.
    affine : ndarray (4, 4) or None
        Voxel-to-scanner (RAS mm) affine of the NIfTI-MRS file.
    header : dict
        The NIfTI-MRS header extension (JSON) as read, for provenance and writing back.
    history : tuple of StepRecord
        Processing applied so far, in order.
    """

    fid: np.ndarray
    dwell_s: float
    spectrometer_mhz: float
    nucleus: str = "1H"
    ppm_centre: float = 4.65
    dim_tags: tuple[str, ...] = ()
    echo_time_s: float | None = None
    repetition_time_s: float | None = None
    mixing_time_s: float | None = None
    affine: np.ndarray | None = None
    header: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[StepRecord, ...] = ()

    def __post_init__(self):
        if self.fid.ndim - 1 != len(self.dim_tags):
            raise ValueError(
                f"fid has {self.fid.ndim} axes but {len(self.dim_tags)} dim tags {self.dim_tags}")

    # --- axes -------------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        return int(self.fid.shape[0])

    @property
    def bandwidth_hz(self) -> float:
        return 1.0 / self.dwell_s

    @property
    def field_strength_t(self) -> float:
        from bidsmrs.constants import GYROMAGNETIC_MHZ_PER_T

        return self.spectrometer_mhz / GYROMAGNETIC_MHZ_PER_T.get(self.nucleus, 42.577478)

    @property
    def time_s(self) -> np.ndarray:
        return np.arange(self.n_points) * self.dwell_s

    @property
    def frequency_hz(self) -> np.ndarray:
        return frequency_axis_hz(self.n_points, self.dwell_s)

    @property
    def ppm(self) -> np.ndarray:
        return hz_to_ppm(self.frequency_hz, self.spectrometer_mhz, self.ppm_centre)

    def spectrum(self) -> np.ndarray:
        """Frequency-domain data, ``fftshift(fft(fid))`` along axis 0."""
        return to_spectrum(self.fid, axis=0)

    def ppm_to_hz(self, ppm):
        return ppm_to_hz(ppm, self.spectrometer_mhz, self.ppm_centre)

    def hz_to_ppm(self, hz):
        return hz_to_ppm(hz, self.spectrometer_mhz, self.ppm_centre)

    # --- derivation -------------------------------------------------------------------
    def replace(self, **changes) -> "Spectrum":
        """A copy with fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_step(self, fid: np.ndarray, step: StepRecord, dim_tags: tuple[str, ...] | None = None,
                  **changes) -> "Spectrum":
        """A copy with new data and ``step`` appended to the history."""
        tags = self.dim_tags if dim_tags is None else dim_tags
        return dataclasses.replace(self, fid=fid, dim_tags=tags,
                                   history=self.history + (step,), **changes)

    def axis_of(self, tag: str) -> int | None:
        """The array axis (≥1) holding dimension ``tag``, or None."""
        return 1 + self.dim_tags.index(tag) if tag in self.dim_tags else None


def default_ppm_centre(nucleus: str) -> float:
    return DEFAULT_PPM_CENTRE.get(nucleus, 0.0)
