"""Coil combination (S/N², WSVD) against known coil sensitivities and noise."""
import numpy as np
import pytest

from bidsmrs.errors import InputError
from bidsmrs.preprocess.coil_combine import apply_coil_weights, coil_weights, combine_coils
from tests.mrs_simulator import simulate_raw


def _snr(w, sens, cov):
    """SNR of s = Σ w_c x_c for signal ∝ sens and noise covariance cov (per part)."""
    return np.abs(np.sum(w * sens)) / np.sqrt(np.real(w @ cov @ w.conj()))


def _optimal_snr(sens, cov):
    return np.sqrt(np.real(sens.conj() @ np.linalg.solve(cov, sens)))


@pytest.fixture(scope="module")
def raw():
    return simulate_raw(3, n_dyn=16, noise_sd=1.0, n_corrupt=0)


def test_snr2_with_reference_is_within_10_percent_of_optimal(raw):
    cw = coil_weights(raw.metabolite, raw.water, "snr2")
    cov = np.diag(raw.truth.noise_sd ** 2)
    ratio = _snr(cw.weights, raw.truth.sensitivities, cov) / _optimal_snr(raw.truth.sensitivities, cov)
    assert ratio > 0.97
    assert cw.source == "reference"
    # phases are coherent: combined signal amplitude equals Σ|w||s|
    coherent = np.abs(np.sum(cw.weights * raw.truth.sensitivities)) / np.sum(np.abs(cw.weights * raw.truth.sensitivities))
    assert coherent > 0.999
    assert np.isclose(np.sum(np.abs(cw.weights)), 1.0)


def test_snr2_noise_estimate_from_tail(raw):
    cw = coil_weights(raw.metabolite, raw.water)
    np.testing.assert_allclose(cw.noise_sd, raw.truth.noise_sd, rtol=0.05)


def test_fallback_to_metabolite_first_points_is_logged(raw):
    cw = coil_weights(raw.metabolite, None, "snr2")
    assert cw.source == "metabolite"
    cov = np.diag(raw.truth.noise_sd ** 2)
    assert _snr(cw.weights, raw.truth.sensitivities, cov) / _optimal_snr(raw.truth.sensitivities, cov) > 0.9
    out = apply_coil_weights(raw.metabolite, cw)
    assert "no reference" in out.history[-1].details


def test_wsvd_handles_correlated_noise():
    raw = simulate_raw(4, n_dyn=16, noise_sd=1.0, n_corrupt=0, noise_correlation=0.6)
    sd = raw.truth.noise_sd
    mix = np.eye(8) + 0.6 * (np.ones((8, 8)) - np.eye(8))
    chol = np.linalg.cholesky(mix)
    cov = np.diag(sd) @ (chol @ chol.T) @ np.diag(sd)
    opt = _optimal_snr(raw.truth.sensitivities, cov)
    w_svd = coil_weights(raw.metabolite, raw.water, "wsvd")
    w_snr2 = coil_weights(raw.metabolite, raw.water, "snr2")
    assert w_svd.whitened
    r_svd = _snr(w_svd.weights, raw.truth.sensitivities, cov) / opt
    r_snr2 = _snr(w_snr2.weights, raw.truth.sensitivities, cov) / opt
    assert r_svd > 0.97
    assert r_svd > r_snr2


def test_all_zero_coil_is_dropped_and_same_weights_for_reference(raw):
    met = raw.metabolite.fid.copy()
    ref = raw.water.fid.copy()
    met[:, 2, :] = 0
    ref[:, 2, :] = 0
    m = raw.metabolite.replace(fid=met)
    r = raw.water.replace(fid=ref)
    cw = coil_weights(m, r)
    assert cw.dropped == (2,)
    assert cw.weights[2] == 0
    mc = apply_coil_weights(m, cw)
    rc = apply_coil_weights(r, cw, "water reference")
    assert "dropped" in mc.history[-1].details
    assert mc.history[-1].params["weights_abs"] == rc.history[-1].params["weights_abs"]
    assert mc.dim_tags == ("DIM_DYN",)


def test_all_coils_zero_is_an_input_error(raw):
    m = raw.metabolite.replace(fid=np.zeros_like(raw.metabolite.fid))
    with pytest.raises(InputError, match="every receive coil"):
        coil_weights(m, None)


def test_dimension_order_is_by_tag(raw):
    a, _ = combine_coils(raw.metabolite, raw.water)
    swapped = raw.metabolite.replace(fid=np.swapaxes(raw.metabolite.fid, 1, 2), dim_tags=("DIM_DYN", "DIM_COIL"))
    b, _ = combine_coils(swapped, raw.water)
    np.testing.assert_allclose(a.fid, b.fid, rtol=1e-10, atol=1e-12)


def test_unknown_method_rejected(raw):
    with pytest.raises(ValueError, match="unknown coil combination"):
        coil_weights(raw.metabolite, raw.water, "sum")
