"""QC metrics of a fit (bidsmrs.fitting.qc)."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.fitting import FitOptions, fit_qc, fit_spectrum
from bidsmrs.fitting.lineshape import measured_fwhm_hz, voigt_fwhm_hz
from tests.unit.test_fitting_model import N, SF, simulate, synthetic_basis


def test_qc_definitions_on_a_simulated_fit():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=21, noise_sd=0.2, lorentz_hz=4.0, gauss_hz=3.0)
    fit = fit_spectrum(spec, basis)
    qc = fit_qc(fit)
    m = fit.in_range()
    resid = (fit.data - fit.fit)[m].real
    expected_snr = np.max((fit.data - fit.baseline)[m].real) / (2 * np.sqrt(np.mean(resid ** 2)))
    assert qc["snr_lcmodel"] == pytest.approx(expected_snr)
    # The residual is noise only: RMS residual ≈ noise SD, so SNR ≈ peak / (2σ).
    sigma = 0.2 * np.sqrt(N)
    peak = np.max((fit.data - fit.baseline)[m].real)
    assert qc["snr_lcmodel"] == pytest.approx(peak / (2 * sigma), rel=0.15)
    assert qc["fit_residual_ratio"] == pytest.approx(1.0, abs=0.15)
    assert qc["fwhm_component"] == "NAA"
    # NAA basis lines have 1 Hz Lorentzian; data add 4 Hz Lorentzian and 3 Hz Gaussian.
    assert qc["fwhm_fit_hz"] == pytest.approx(voigt_fwhm_hz(5.0, 3.0), abs=0.6)
    assert qc["fwhm_fit_ppm"] == pytest.approx(qc["fwhm_fit_hz"] / SF)


def test_residual_ratio_grows_with_misfit():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=22, noise_sd=0.05)
    good = fit_qc(fit_spectrum(spec, basis))
    bad = fit_qc(fit_spectrum(spec, basis.subset(["Cr", "Cho", "Ins", "Glu", "Lac", "MM09", "MM20"]),
                              FitOptions(baseline="none")))
    assert bad["fit_residual_ratio"] > 3 * good["fit_residual_ratio"]
    assert bad["fwhm_component"] == "Cr"


def test_measured_fwhm_of_lorentzian():
    f = np.linspace(-50, 50, 4001)
    lor = 1 / (1 + (f / 3.0) ** 2)  # FWHM 6 Hz
    assert measured_fwhm_hz(lor, f) == pytest.approx(6.0, abs=0.01)
