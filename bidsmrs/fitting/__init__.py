"""Linear-combination model fitting of MR spectra (DESIGN.md §5).

Public API::

    fit_spectrum(spectrum, basis, options=FitOptions()) -> FitResult
    fit_water(spectrum) -> WaterFit
    fit_qc(fit) -> dict
"""
from bidsmrs.fitting.model import FitOptions, fit_spectrum
from bidsmrs.fitting.qc import fit_qc
from bidsmrs.fitting.result import FitResult
from bidsmrs.fitting.water import WaterFit, fit_water

__all__ = ["FitOptions", "FitResult", "WaterFit", "fit_spectrum", "fit_water", "fit_qc"]
