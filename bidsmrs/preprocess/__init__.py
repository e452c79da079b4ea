"""Preprocessing of single-voxel MRS (DESIGN.md §4): coil combination, eddy-current
correction, transient alignment and averaging, residual water removal, frequency referencing
and phasing, and spectral QC. Every step is ``Spectrum -> Spectrum`` and records itself in
``Spectrum.history``; :func:`preprocess_run` chains them.

Typical use by the orchestrator::

    res = preprocess_run(metabolite, {"conc": water, "ecc": ecc_ref}, PreprocOptions())
    res.metabolite, res.water          # 1-D processed spectra (history → ProcessingApplied)
    row = res.qc_columns()             # QC table columns; sidecar text in QC_DESCRIPTIONS
    res.transients, res.figure_data    # per-transient arrays and report figure arrays
"""
from bidsmrs.preprocess.pipeline import PreprocOptions, PreprocResult, preprocess_run
from bidsmrs.preprocess.qc import QC_DESCRIPTIONS, spectral_qc, water_qc

__all__ = ["PreprocOptions", "PreprocResult", "preprocess_run", "spectral_qc", "water_qc", "QC_DESCRIPTIONS"]
