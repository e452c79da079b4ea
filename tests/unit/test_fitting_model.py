"""Linear-combination fit (bidsmrs.fitting.model) on simulated spectra with known truth."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.basis.core import Basis
from bidsmrs.errors import FitError
from bidsmrs.fitting import FitOptions, fit_qc, fit_spectrum
from bidsmrs.simulate import combine_basis, make_spectrum, peak_fid, smooth_baseline_fid

SF = 123.2
DWELL = 1 / 4000
N = 2048

#: A small synthetic basis: (ppm, protons, J-like splitting in Hz) per line; multiplets are
#: pairs of lines. FID(0) = number of protons (basis amplitude convention).
LINES = {
    "NAA": [(2.008, 3.0), (2.49, 0.5), (2.67, 0.5)],
    "Cr": [(3.027, 3.0), (3.913, 2.0)],
    "Cho": [(3.185, 9.0)],
    "Ins": [(3.52, 2.0), (3.61, 2.0), (4.05, 1.0), (3.27, 1.0)],
    "Glu": [(2.04, 1.0), (2.12, 1.0), (2.34, 1.0), (2.36, 1.0), (3.74, 1.0)],
    "Lac": [(1.31, 1.5), (1.33, 1.5)],
}
MM_LINES = {"MM09": [(0.91, 3.0)], "MM20": [(2.02, 2.0), (1.45, 1.5), (1.7, 1.0), (3.0, 1.5)]}
TRUTH = {"NAA": 12.0, "Cr": 8.0, "Cho": 1.5, "Ins": 6.0, "Glu": 10.0, "Lac": 1.0, "MM09": 4.0, "MM20": 5.0}


def synthetic_basis(with_mm: bool = True, names=None) -> Basis:
    fids, out_names = [], []
    table = dict(LINES)
    if with_mm:
        table.update(MM_LINES)
    for name, lines in table.items():
        lw = 14.0 if name.startswith("MM") else 1.0
        fid = sum(peak_fid(N, DWELL, SF, ppm, amplitude=h, lorentz_hz=lw) for ppm, h in lines)
        fids.append(fid)
        out_names.append(name)
    if names is not None:
        out_names = list(names)
    return Basis(names=tuple(out_names), fids=np.stack(fids, 1), dwell_s=DWELL, spectrometer_mhz=SF)


def simulate(basis: Basis, *, seed: int, noise_sd: float, lorentz_hz=4.0, gauss_hz=3.0, shift_hz=1.5,
             phase0_deg=20.0, baseline_amp=0.0, truth=None):
    truth = truth or {k: v for k, v in TRUTH.items() if k in basis.names}
    rng = np.random.default_rng(seed)
    fid = combine_basis(basis, truth, lorentz_hz=lorentz_hz, gauss_hz=gauss_hz, shift_hz=shift_hz,
                        mm_lorentz_hz=lorentz_hz, mm_shift_hz=shift_hz)
    if baseline_amp:
        fid = fid + smooth_baseline_fid(N, DWELL, SF, amplitude=baseline_amp, rng=np.random.default_rng(seed + 1000))
    return make_spectrum(fid, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=noise_sd, rng=rng,
                         phase0_deg=phase0_deg), truth


@pytest.mark.parametrize("noise_sd,lorentz_hz,gauss_hz,tol", [
    (0.0, 4.0, 3.0, 0.005),    # noise-free: exact recovery
    (0.05, 3.0, 2.0, 0.04),    # high SNR
    (0.2, 8.0, 5.0, 0.12),     # low SNR, broad lines
])
def test_amplitudes_recovered_with_baseline_and_mm(noise_sd, lorentz_hz, gauss_hz, tol):
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=1, noise_sd=noise_sd, lorentz_hz=lorentz_hz, gauss_hz=gauss_hz,
                           baseline_amp=20.0 if noise_sd else 0.0)
    fit = fit_spectrum(spec, basis)
    for name in ("NAA", "Cr", "Glu", "Ins"):
        assert fit.amplitude(name) == pytest.approx(truth[name], rel=tol), name
    assert fit.combined(["NAA", "Cr"])[0] == pytest.approx(truth["NAA"] + truth["Cr"], rel=tol)
    assert fit.params["phase0_deg"] == pytest.approx(20.0, abs=3.0)
    assert fit.params["shift_hz"]["metabolites"] == pytest.approx(1.5, abs=0.5)


def test_noise_free_recovers_lineshape_parameters():
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=2, noise_sd=0.0, lorentz_hz=5.0, gauss_hz=4.0, shift_hz=-3.0,
                           phase0_deg=-35.0)
    fit = fit_spectrum(spec, basis, FitOptions(baseline="none"))
    assert fit.params["lorentz_hz"]["metabolites"] == pytest.approx(5.0, abs=0.05)
    assert fit.params["gauss_hz"] == pytest.approx(4.0, abs=0.1)
    assert fit.params["shift_hz"]["metabolites"] == pytest.approx(-3.0, abs=0.02)
    assert fit.params["phase0_deg"] == pytest.approx(-35.0, abs=0.2)
    for name, v in truth.items():
        assert fit.amplitude(name) == pytest.approx(v, rel=2e-3), name
    # Fit arrays: phase removed, fit = components + baseline, residual ≈ 0 in range.
    m = fit.in_range()
    assert np.allclose(fit.fit, fit.components.sum(axis=1) + fit.baseline)
    assert np.max(np.abs(fit.residual[m])) < 1e-3 * np.max(np.abs(fit.data[m]))


def test_large_initial_offsets_are_found():
    """Robust initialisation: 8 Hz shift and 150° phase."""
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=3, noise_sd=0.05, shift_hz=8.0, phase0_deg=150.0)
    fit = fit_spectrum(spec, basis)
    assert fit.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.03)
    assert fit.params["shift_hz"]["metabolites"] == pytest.approx(8.0, abs=0.5)


def test_crlb_matches_empirical_sd():
    """CRLB from the Fisher information ≈ SD of the estimates over seeded noise realisations."""
    basis = synthetic_basis()
    opts = FitOptions(baseline_smoothness=1.0, metabolite_shifts=False)
    estimates, sds = [], []
    for seed in range(40):
        spec, truth = simulate(basis, seed=100 + seed, noise_sd=0.3, baseline_amp=0.0)
        fit = fit_spectrum(spec, basis, opts)
        estimates.append([fit.amplitude(n) for n in ("NAA", "Cr", "Glu", "Ins")] + [fit.combined(["NAA", "Cr"])[0]])
        sds.append(list(fit.sd[[fit.names.index(n) for n in ("NAA", "Cr", "Glu", "Ins")]]) + [fit.combined(["NAA", "Cr"])[1]])
    emp = np.std(np.array(estimates), axis=0, ddof=1)
    crlb = np.mean(np.array(sds), axis=0)
    # 40 samples: the SD estimate itself has ~11 % relative error.
    assert np.all(np.abs(crlb / emp - 1) < 0.3), (crlb, emp)


def test_noise_sd_estimated_from_signal_free_region():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=4, noise_sd=0.2)
    fit = fit_spectrum(spec, basis)
    assert fit.noise_sd == pytest.approx(0.2 * np.sqrt(N), rel=0.08)
    qc = fit_qc(fit)
    assert qc["fit_residual_ratio"] == pytest.approx(1.0, abs=0.15)


def test_any_names_and_no_macromolecules():
    names = ("alpha", "beta", "gamma", "delta", "eps", "zeta")
    basis = synthetic_basis(with_mm=False, names=names)
    truth = dict(zip(names, (12.0, 8.0, 1.5, 6.0, 10.0, 1.0)))
    spec, _ = simulate(basis, seed=5, noise_sd=0.05, truth=truth)
    fit = fit_spectrum(spec, basis)
    assert fit.names == names
    assert not any(fit.is_macromolecule)
    assert fit.amplitude("alpha") == pytest.approx(12.0, rel=0.03)
    assert set(fit.params["shift_hz"]) == {"metabolites"}


def test_deterministic():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=6, noise_sd=0.1, baseline_amp=10.0)
    a = fit_spectrum(spec, basis)
    b = fit_spectrum(spec, basis)
    assert np.array_equal(a.amplitudes, b.amplitudes)
    assert np.array_equal(a.covariance, b.covariance)


@pytest.mark.parametrize("baseline", ["poly", "none"])
def test_other_baselines(baseline):
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=7, noise_sd=0.05)
    fit = fit_spectrum(spec, basis, FitOptions(baseline=baseline))
    assert fit.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.03)
    assert fit.params["baseline"]["kind"] == baseline


def test_absent_metabolite_is_zero_or_small():
    basis = synthetic_basis()
    truth = {k: v for k, v in TRUTH.items() if k != "Lac"}
    spec, _ = simulate(basis, seed=8, noise_sd=0.05, truth=truth)
    fit = fit_spectrum(spec, basis)
    assert fit.amplitude("Lac") < 0.1
    assert np.all(fit.amplitudes >= 0)


def test_combined_sd_uses_covariance():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=9, noise_sd=0.2)
    fit = fit_spectrum(spec, basis)
    i, j = fit.names.index("NAA"), fit.names.index("Glu")
    _, sd = fit.combined(["NAA", "Glu"])
    expected = np.sqrt(fit.covariance[i, i] + fit.covariance[j, j] + 2 * fit.covariance[i, j])
    assert sd == pytest.approx(expected)
    assert fit.covariance[i, j] != 0.0


def test_combined_sd_leaves_out_parts_held_at_zero():
    """A part fitted as exactly 0 is known under the constrained CRLB: the sum's SD equals the
    SD of the non-zero part (its detection-limit variance would inflate e.g. tCho when PCh = 0)."""
    basis = synthetic_basis()
    truth = {k: v for k, v in TRUTH.items() if k != "Lac"}
    spec, _ = simulate(basis, seed=8, noise_sd=0.05, truth=truth)
    fit = fit_spectrum(spec, basis)
    zero = [n for n in fit.names if fit.amplitude(n) == 0.0]
    assert zero, "the absent metabolite should be held at zero here"
    k = fit.names.index(zero[0])
    assert fit.sd[k] > 0  # the detection limit is still reported for the part itself
    amp, sd = fit.combined(["NAA", zero[0]])
    assert amp == pytest.approx(fit.amplitude("NAA"))
    assert sd == pytest.approx(fit.sd[fit.names.index("NAA")])
    # every part at zero: the detection limit of the sum
    assert fit.combined([zero[0]])[1] == pytest.approx(fit.sd[k])


def test_errors_are_clear():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=10, noise_sd=0.05)
    with pytest.raises(FitError, match="fit range"):
        fit_spectrum(spec, basis, FitOptions(ppm_range=(30.0, 31.0)))
    other = Basis(names=basis.names, fids=basis.fids, dwell_s=DWELL, spectrometer_mhz=297.2)
    with pytest.raises(FitError, match="differs"):
        fit_spectrum(spec, other)
    with pytest.raises(FitError, match="one averaged FID"):
        fit_spectrum(spec.replace(fid=np.stack([spec.fid, spec.fid], 1), dim_tags=("DIM_DYN",)), basis)
    with pytest.raises(ValueError):
        FitOptions(baseline="wavelet")


def test_basis_resampled_to_data_grid():
    """A basis with twice the points and a slightly different field still fits."""
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=11, noise_sd=0.05)
    long_fids = np.stack([
        sum(peak_fid(2 * N, DWELL, SF * 1.002, p, amplitude=h, lorentz_hz=14.0 if n.startswith("MM") else 1.0)
            for p, h in (LINES | MM_LINES)[n]) for n in basis.names], 1)
    other = Basis(names=basis.names, fids=long_fids, dwell_s=DWELL, spectrometer_mhz=SF * 1.002)
    fit = fit_spectrum(spec, other)
    assert fit.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.03)


def test_component_outside_fit_range_and_single_component():
    basis = synthetic_basis()
    far = peak_fid(N, DWELL, SF, 5.4, amplitude=2.0, lorentz_hz=1.0)
    fids = np.column_stack([basis.fids, far])
    with_far = Basis(names=basis.names + ("Far",), fids=fids, dwell_s=DWELL, spectrometer_mhz=SF)
    spec, truth = simulate(basis, seed=12, noise_sd=0.05)
    fit = fit_spectrum(spec, with_far)
    assert fit.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.03)
    assert np.all(np.isfinite(fit.sd[:len(basis.names)]))
    single = basis.subset(["NAA"])
    spec1, _ = simulate(single, seed=13, noise_sd=0.05, truth={"NAA": 10.0})
    fit1 = fit_spectrum(spec1, single)
    assert fit1.amplitude("NAA") == pytest.approx(10.0, rel=0.02)


def test_noise_only_does_not_crash():
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=14, noise_sd=0.2, truth={"NAA": 0.0})
    fit = fit_spectrum(spec, basis)
    assert np.all(fit.amplitudes >= 0)
    assert np.all(np.isfinite(fit.amplitudes))
    assert fit_qc(fit)["fit_residual_ratio"] == pytest.approx(1.0, abs=0.2)


def test_only_macromolecules():
    basis = synthetic_basis().subset(["MM09", "MM20"])
    spec, truth = simulate(basis, seed=15, noise_sd=0.02)
    fit = fit_spectrum(spec, basis)
    assert fit.amplitude("MM20") == pytest.approx(truth["MM20"], rel=0.05)
    assert set(fit.params["shift_hz"]) == {"macromolecules"}


def test_auto_baseline_smoothness_adapts():
    """Stiffest candidate for a constant offset, a more flexible one for a wavy baseline."""
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=16, noise_sd=0.05)
    offset = spec.replace(fid=spec.fid + np.r_[30.0 + 20.0j, np.zeros(N - 1)])  # constant in the spectrum
    flat = fit_spectrum(offset, basis)
    # The constant candidate (ED 1 per part over the 4 ppm range) wins.
    assert flat.params["baseline"]["penalty_order"] == 1
    assert flat.params["baseline"]["ed_per_ppm"] == pytest.approx(0.25, rel=0.05)
    assert flat.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.02)
    ppm = spec.ppm
    wavy_spec = 25.0 * np.exp(-0.5 * ((ppm - 1.2) / 0.25) ** 2) + 20.0 * np.exp(-0.5 * ((ppm - 3.4) / 0.3) ** 2)
    from bidsmrs.spectrum import to_fid
    wavy = spec.replace(fid=spec.fid + to_fid(wavy_spec.astype(complex)))
    fit = fit_spectrum(wavy, basis)
    assert fit.params["baseline"]["ed_per_ppm"] > 1.0
    assert fit.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.03)
    assert fit.amplitude("Cr") == pytest.approx(truth["Cr"], rel=0.05)


def test_per_metabolite_shift_recovered():
    basis = synthetic_basis()
    truth = {k: v for k, v in TRUTH.items()}
    t = np.arange(N) * DWELL
    fid = sum((v * basis.fids[:, basis.index(k)] * (np.exp(2j * np.pi * 1.5 * t) if k == "Cho" else 1.0))
              for k, v in truth.items())
    from bidsmrs.simulate import voigt_decay
    fid = fid * voigt_decay(t, 3.0, 2.0)
    spec = make_spectrum(fid, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.01, rng=np.random.default_rng(17))
    fit = fit_spectrum(spec, basis)
    d = fit.params["metabolite_shift_hz"]
    assert d["Cho"] - d["NAA"] == pytest.approx(1.5, abs=0.3)
    fixed = fit_spectrum(spec, basis, FitOptions(metabolite_shifts=False))
    assert abs(fit.amplitude("Cho") - 1.5) < abs(fixed.amplitude("Cho") - 1.5)
    assert fit.amplitude("Cho") == pytest.approx(1.5, rel=0.03)


def test_analytic_jacobian_matches_finite_differences(monkeypatch):
    """The Golub–Pereyra projected Jacobian equals central differences of the residual."""
    import bidsmrs.fitting.model as model

    captured = {}
    original = model._optimise

    def capture(prob, theta0, lower, upper, n_free=None):
        captured.setdefault("prob", prob)
        captured.setdefault("theta", theta0.copy())
        return original(prob, theta0, lower, upper, n_free)

    monkeypatch.setattr(model, "_optimise", capture)
    basis = synthetic_basis()
    spec, _ = simulate(basis, seed=18, noise_sd=0.1, baseline_amp=10.0)
    fit_spectrum(spec, basis)
    prob, theta = captured["prob"], captured["theta"] + 0.01
    jac = prob.jacobian(theta)
    num = np.zeros_like(jac)
    for k in range(theta.size):
        h = 1e-6 * max(1.0, abs(theta[k]))
        up, dn = theta.copy(), theta.copy()
        up[k] += h
        dn[k] -= h
        num[:, k] = (prob.residual(up) - prob.residual(dn)) / (2 * h)
    rel = np.linalg.norm(jac - num, axis=0) / np.maximum(np.linalg.norm(num, axis=0), 1e-12)
    assert np.all(rel < 1e-4), rel


def test_singleton_dimensions_are_squeezed():
    basis = synthetic_basis()
    spec, truth = simulate(basis, seed=19, noise_sd=0.05)
    wrapped = spec.replace(fid=spec.fid[:, None, None], dim_tags=("DIM_COIL", "DIM_DYN"))
    fit = fit_spectrum(wrapped, basis)
    assert fit.amplitude("NAA") == pytest.approx(truth["NAA"], rel=0.03)


def test_noise_from_residual_when_no_signal_free_region():
    """1 kHz bandwidth at 123 MHz spans 0.6–8.7 ppm: no signal-free region, residual is used."""
    basis = synthetic_basis()
    dwell, n = 1 / 1000, 512
    t = np.arange(n) * dwell
    fid = sum(TRUTH[name] * sum(peak_fid(n, dwell, SF, p, amplitude=h, lorentz_hz=1.0)
                                 for p, h in LINES[name]) for name in LINES)
    fid = fid * np.exp(-np.pi * 4.0 * t)
    spec = make_spectrum(fid, dwell_s=dwell, spectrometer_mhz=SF, noise_sd=0.3, rng=np.random.default_rng(20))
    fit = fit_spectrum(spec, basis.subset(list(LINES)), FitOptions(ppm_range=(1.0, 4.2)))
    assert "residual" in fit.params["noise_sd_source"]
    assert fit.noise_sd == pytest.approx(0.3 * np.sqrt(n), rel=0.15)
    assert fit.amplitude("NAA") == pytest.approx(TRUTH["NAA"], rel=0.05)
