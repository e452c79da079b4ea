"""Linear-combination model fitting of MR spectra (DESIGN.md §5).

Public API::

    fit_spectrum(spectrum, basis, options=FitOptions()) -> FitResult
    fit_water(spectrum) -> WaterFit
    fit_qc(fit) -> dict

Typical use after preprocessing (``pre = preprocess_run(...)``)::

    fit = fit_spectrum(pre.metabolite, basis, FitOptions(ppm_range=(0.2, 4.2)))
    water = fit_water(pre.water) if pre.water is not None else None
    qc = fit_qc(fit)            # snr_lcmodel, fit_residual_ratio, fwhm_fit_hz, fwhm_fit_ppm
    s_w = water.amplitude       # same units as fit.amplitudes (basis FID(0) = protons)

Modules: :mod:`.model` (model, variable projection, options), :mod:`.baseline` (spline /
polynomial baselines), :mod:`.lineshape` (Voigt terms), :mod:`.crlb` (noise SD, Fisher
information), :mod:`.water` (water-reference fit), :mod:`.qc` (fit quality metrics),
:mod:`.result` (FitResult).
"""
from bidsmrs.fitting.model import FitOptions, fit_spectrum
from bidsmrs.fitting.qc import fit_qc
from bidsmrs.fitting.result import FitResult
from bidsmrs.fitting.water import WaterFit, fit_water

__all__ = ["FitOptions", "FitResult", "WaterFit", "fit_spectrum", "fit_water", "fit_qc"]
