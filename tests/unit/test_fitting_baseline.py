"""Baseline models, noise estimate and lineshape helpers of the fitter."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.fitting import baseline as bl
from bidsmrs.fitting.crlb import covariance_from_jacobian, noise_sd_from_regions
from bidsmrs.fitting.lineshape import (envelope, gauss_fwhm_from_rate, gauss_rate_from_fwhm,
                                        voigt_fwhm_hz)

PPM = np.linspace(4.2, 0.2, 300)


def test_spline_smoother_algebra():
    b = bl.spline_basis(PPM, (0.2, 4.2), 0.15)
    lam = b.lam_for_ed_per_ppm(2.0)
    assert b.effective_dimension(lam) / b.span_ppm == pytest.approx(2.0, rel=1e-3)
    # Explicit smoother S = Φ(ΦᵀΦ + λDᵀD)⁻¹Φᵀ.
    phi = b.design
    s = phi @ np.linalg.solve(phi.T @ phi + lam * b.penalty, phi.T)
    assert np.trace(s) == pytest.approx(b.effective_dimension(lam), rel=1e-6)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(PPM.size)
    assert np.allclose(b.smooth(x, lam), s @ x, atol=1e-8)
    # (I − S)^{1/2} squared is I − S.
    w = b.project_out(b.project_out(np.eye(PPM.size), lam), lam)
    assert np.allclose(w, np.eye(PPM.size) - s, atol=1e-8)
    # Coefficients reproduce the smooth.
    assert np.allclose(phi @ b.coefficients(x, lam), s @ x, atol=1e-8)


def test_spline_reproduces_smooth_curve_and_ignores_lines():
    b = bl.spline_basis(PPM, (0.2, 4.2), 0.15)
    lam = b.lam_for_ed_per_ppm(1.5)
    smooth = 3.0 + 2.0 * np.sin(PPM / 1.3)
    assert np.max(np.abs(b.smooth(smooth, lam) - smooth)) < 0.05
    # A narrow line is mostly not followed by a stiff baseline.
    line = 10.0 / (1 + ((PPM - 2.0) / 0.02) ** 2)
    assert np.max(b.smooth(line, b.lam_for_ed_per_ppm(1.0))) < 0.25 * line.max()


def test_linear_functions_are_unpenalised():
    b = bl.spline_basis(PPM, (0.2, 4.2), 0.3)
    lin = 1.0 + 0.5 * PPM
    assert np.allclose(b.smooth(lin, 1e8), lin, atol=1e-6)
    assert b.effective_dimension(1e12) == pytest.approx(2.0, abs=0.01)


def test_poly_and_none():
    p = bl.poly_basis(PPM, (0.2, 4.2), 2)
    quad = 1 - PPM + 0.3 * PPM ** 2
    assert np.allclose(p.smooth(quad, 0.0), quad)
    assert p.effective_dimension(0.0) == pytest.approx(3.0)
    n = bl.no_baseline(PPM.size, (0.2, 4.2))
    x = np.arange(PPM.size, dtype=float)
    assert np.array_equal(n.project_out(x, 0.0), x)
    assert n.effective_dimension(0.0) == 0.0


def test_noise_sd_regions_and_fallback():
    rng = np.random.default_rng(1)
    n = 2048
    ppm = 4.65 - np.fft.fftshift(np.fft.fftfreq(n, 1 / 4000)) / 123.2
    spec = 7.0 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    # A smooth tail (dispersion of a peak far away) must not inflate the estimate.
    spec = spec + 300.0 / (ppm - 4.65 + 0.1j)
    assert noise_sd_from_regions(spec, ppm) == pytest.approx(7.0, rel=0.06)
    narrow = np.linspace(4.0, 0.5, 512)
    assert noise_sd_from_regions(spec[:512], narrow) is None


def test_covariance_inverts_fisher():
    rng = np.random.default_rng(2)
    j = rng.standard_normal((200, 4))
    cov = covariance_from_jacobian(j, 2.0)
    assert np.allclose(cov, np.linalg.inv(j.T @ j / 4.0))
    pen = np.diag([0, 0, 1.0, 0])
    assert np.allclose(covariance_from_jacobian(j, 2.0, pen), np.linalg.inv(j.T @ j / 4.0 + pen))


def test_lineshape_helpers():
    assert gauss_fwhm_from_rate(gauss_rate_from_fwhm(6.0)) == pytest.approx(6.0)
    assert voigt_fwhm_hz(5.0, 0.0) == pytest.approx(5.0, rel=1e-3)
    assert voigt_fwhm_hz(0.0, 5.0) == pytest.approx(5.0)
    t = np.arange(4) * 0.01
    e = envelope(t, [1.0, 2.0], 0.0, [0.0, 10.0])
    assert e.shape == (4, 2)
    assert e[1, 1] == pytest.approx(np.exp(-np.pi * 2.0 * 0.01 + 2j * np.pi * 10.0 * 0.01))
