"""Preprocessing of single-voxel MRS (DESIGN.md §4): coil combination, eddy-current
correction, transient alignment and averaging, residual water removal, frequency referencing
and phasing, and spectral QC. Every step is ``Spectrum -> Spectrum`` and records itself in
``Spectrum.history``; :func:`preprocess_run` chains them."""
from bidsmrs.preprocess.pipeline import PreprocOptions, PreprocResult, preprocess_run
from bidsmrs.preprocess.qc import spectral_qc, water_qc

__all__ = ["PreprocOptions", "PreprocResult", "preprocess_run", "spectral_qc", "water_qc"]
