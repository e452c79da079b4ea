"""Density-matrix simulation: singlets, J evolution, strong coupling, sequences, challenge basis."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bidsmrs.basis.sequences import (press_events, pulse_acquire_events, simulate_basis,
                                     simulate_group, slaser_events, steam_events)
from bidsmrs.basis.spin_systems import SpinGroup, get_molecule

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CHALLENGE = SHARED / "data" / "mrs_fitting_challenge" / "basisset_LCModel"
SF = 123.261703  # challenge basis HZPPPM (MHz)
DWELL = 0.00025


def _gauss(fid, dwell, fwhm_hz):
    t = np.arange(fid.shape[0]) * dwell
    return fid * np.exp(-(np.pi * fwhm_hz * t) ** 2 / (4 * np.log(2)))


def _area(fid, dwell, sel, fwhm_hz=4.0):
    """Integral of the absorption spectrum over ``sel`` = the FID(0) of the lines inside.

    Gaussian apodisation removes truncation ripple; halving the first point removes the
    constant x(0)/2 offset a one-sided FID puts under every bin (so Σ Re X = n·x(0)/2 lies in
    the peaks alone).
    """
    f = _gauss(fid, dwell, fwhm_hz)
    f[0] *= 0.5
    return 2 * np.fft.fftshift(np.fft.fft(f))[sel].real.sum() / fid.size


def _window_area(basis, name, lo, hi, fwhm_hz=4.0):
    sel = (basis.ppm >= lo) & (basis.ppm <= hi)
    return _area(basis.fids[:, basis.index(name)], basis.dwell_s, sel, fwhm_hz)


def _peak_ppm(basis, name, lo, hi, zf=16):
    fid = _gauss(basis.fids[:, basis.index(name)], basis.dwell_s, 2.0)
    n = zf * basis.n_points
    spec = np.fft.fftshift(np.fft.fft(fid, n)).real
    ppm = basis.ppm_centre - np.fft.fftshift(np.fft.fftfreq(n, basis.dwell_s)) / basis.spectrometer_mhz
    sel = (ppm > lo) & (ppm < hi)
    return float(ppm[sel][np.argmax(spec[sel])])


@pytest.fixture(scope="module")
def press30():
    return simulate_basis(sequence="press", spectrometer_mhz=SF, dwell_s=DWELL, n_points=2048,
                          echo_time_s=0.030, te1_s=0.011, te2_s=0.019)


def _lines(name, events, mhz):
    """All lines of a molecule, normalised like simulate_basis: (amplitudes, ppm)."""
    ref, _ = simulate_group(SpinGroup((4.65,)), events, mhz)
    amps, ppm = [], []
    for g in get_molecule(name).groups:
        a, f = simulate_group(g, events, mhz)
        amps.append(a * g.scale / ref.sum())
        ppm.append(4.65 - f / mhz)
    return np.concatenate(amps), np.concatenate(ppm)


def test_singlets_position_and_area_per_proton(press30):
    b = press30
    assert _peak_ppm(b, "Cr", 2.9, 3.1) == pytest.approx(3.027, abs=0.002)
    assert _peak_ppm(b, "Cr", 3.8, 4.0) == pytest.approx(3.913, abs=0.002)
    assert _peak_ppm(b, "NAA", 1.9, 2.1) == pytest.approx(2.008, abs=0.002)
    # areas of the absorption spectrum (FID-based, apodised) per singlet: protons
    assert _window_area(b, "Cr", 2.95, 3.10) == pytest.approx(3.0, abs=0.015)
    assert _window_area(b, "Cr", 3.85, 3.98) == pytest.approx(2.0, abs=0.015)
    assert _window_area(b, "NAA", 1.95, 2.06) == pytest.approx(3.0, abs=0.015)
    # exact: line amplitudes of the singlets
    amps, ppm = _lines("NAA", press_events(0.011, 0.019), SF)
    assert amps[np.abs(ppm - 2.008) < 1e-6].sum() == pytest.approx(3.0, abs=1e-9)
    # amplitude convention: FID(0) of an all-singlet molecule = its protons, real and positive
    for name, protons in (("Cr", 5), ("PCr", 5), ("sI", 6), ("Gly", 2)):
        assert b.fids[0, b.index(name)] == pytest.approx(protons, abs=1e-9)
    assert b.names[:3] == ("Asc", "Asp", "Cr") and len(b.names) == 20
    assert not any(b.is_macromolecule)


@pytest.mark.parametrize("te_s", [0.030, 0.100, 0.144])
def test_lactate_doublet_follows_cos_pi_j_te(te_s):
    """In the weak-coupling limit the Lac CH3 in-phase signal is 3·cos(πJ·TE).

    Checked at 600 MHz (Δν/J ≈ 240). At 123 MHz (Δν/J ≈ 50) residual strong coupling moves
    it by up to 1.3 % of 3 H (verified against a brute-force expm simulation below), so 3 T
    is checked with that tolerance.
    """
    j_hz = 6.933  # Govindaraju 2000
    expected = 3 * np.cos(np.pi * j_hz * te_s)
    for mhz, tol in ((600.0, 0.03), (SF, 0.045)):
        amps, ppm = _lines("Lac", press_events(te_s / 3, 2 * te_s / 3), mhz)
        ch3 = amps[(ppm > 1.0) & (ppm < 1.6)].sum()
        assert ch3.real == pytest.approx(expected, abs=tol), mhz
    b = simulate_basis(sequence="press", spectrometer_mhz=600.0, dwell_s=1 / 6000,
                       n_points=8192, echo_time_s=te_s, te1_s=te_s / 3, te2_s=2 * te_s / 3,
                       metabolites=["Lac"])
    assert _window_area(b, "Lac", 1.0, 1.6) == pytest.approx(expected, abs=0.04)


def _brute_force_fid(group, steps, mhz, n_points, dwell):
    """Independent reference: full Hamiltonian with scipy expm, Zeeman basis, time stepping."""
    from functools import reduce

    from scipy.linalg import expm

    n = group.n_spins
    ops2 = {"x": np.array([[0, 1], [1, 0]]) / 2, "y": np.array([[0, -1j], [1j, 0]]) / 2,
            "z": np.diag([0.5, -0.5]), "m": np.array([[0, 0], [1, 0]])}

    def emb(o, k):
        m = [np.eye(2)] * n
        m[k] = o
        return reduce(np.kron, m)

    ix, iy, iz = ([emb(ops2[c], k) for k in range(n)] for c in "xyz")
    ham = sum(2 * np.pi * (group.shifts_ppm[k] - 4.65) * mhz * iz[k] for k in range(n))
    jm = group.j_matrix()
    for a in range(n):
        for b in range(a + 1, n):
            ham = ham + 2 * np.pi * jm[a, b] * (ix[a] @ ix[b] + iy[a] @ iy[b] + iz[a] @ iz[b])
    fx, fy, fz = sum(ix), sum(iy), sum(iz)
    fm = sum(emb(ops2["m"], k) for k in range(n))
    mz = np.real(np.diag(fz))
    order = np.round(mz[:, None] - mz[None, :]).astype(int)
    rho = fz.astype(complex)
    for kind, a1, a2 in steps:
        if kind == "p":
            r = expm(-1j * np.deg2rad(a1) * (np.cos(np.deg2rad(a2[1])) * fx
                                             + np.sin(np.deg2rad(a2[1])) * fy))
            rho = np.where(order == a2[0], r @ rho @ r.conj().T, 0)
        else:
            u = expm(-1j * ham * a1)
            rho = u @ rho @ u.conj().T
    u = expm(-1j * ham * dwell)
    out = np.empty(n_points, complex)
    for k in range(n_points):
        out[k] = np.trace(rho @ fm)
        rho = u @ rho @ u.conj().T
    return out / 2 ** (n - 1)


@pytest.mark.parametrize("name", ["Glu", "Lac"])
def test_matches_brute_force_expm_simulation(name):
    from bidsmrs.basis.density_matrix import lines_to_fid
    from bidsmrs.basis.sequences import Delay, Pulse

    group = get_molecule(name).groups[0]
    for events in (press_events(0.01, 0.02), steam_events(0.03, 0.02)):
        steps = [("p", e.flip_deg, (e.order_after, e.phase_deg)) if isinstance(e, Pulse)
                 else ("d", e.seconds, None) for e in events if isinstance(e, (Pulse, Delay))]
        ref = _brute_force_fid(group, steps, 123.26, 256, 2.5e-4)
        a, f = simulate_group(group, events, 123.26)
        ours = lines_to_fid(a, f, 256, 2.5e-4)
        assert np.abs(ours - ref).max() < 1e-9 * np.abs(ref).max()


def _ab_lines(delta_hz, j_hz):
    """Analytic AB spectrum (pulse-acquire): offsets from the centre (Hz) and intensities/2H."""
    d = np.hypot(delta_hz, j_hz)
    sin2t = j_hz / d
    off = np.array([-(d + j_hz) / 2, -(d - j_hz) / 2, (d - j_hz) / 2, (d + j_hz) / 2])
    inten = np.array([1 - sin2t, 1 + sin2t, 1 + sin2t, 1 - sin2t]) / 2  # sums to 2 protons
    return off, inten


def test_strongly_coupled_ab_system_matches_analytic_spectrum():
    mhz, j = 123.2, 12.0
    delta_ppm = 0.05  # Δν = 6.16 Hz < J: strongly coupled
    group = SpinGroup((3.0, 3.0 + delta_ppm), ((0, 1, j),))
    ref_amp, _ = simulate_group(SpinGroup((4.65,)), pulse_acquire_events(), mhz)
    amps, freqs = simulate_group(group, pulse_acquire_events(), mhz)
    amps = amps / ref_amp.sum()
    centre_hz = (4.65 - (3.0 + delta_ppm / 2)) * mhz
    order = np.argsort(freqs)
    off, inten = _ab_lines(delta_ppm * mhz, j)
    np.testing.assert_allclose(np.sort(freqs - centre_hz), off, atol=1e-6)
    np.testing.assert_allclose(amps[order].real, inten, atol=1e-9)
    assert np.abs(amps.imag).max() < 1e-9


def test_sequences_agree_at_zero_te_and_normalise_singlets():
    kw = dict(spectrometer_mhz=297.2, dwell_s=1 / 12000, n_points=1024, metabolites=["Glu", "Cr"])
    fid = simulate_basis(sequence="fid", **kw)
    for seq, extra in (("press", dict(echo_time_s=0.0, te1_s=0.0, te2_s=0.0)),
                       ("steam", dict(echo_time_s=0.0, mixing_time_s=0.0)),
                       ("slaser", dict(echo_time_s=0.0))):
        other = simulate_basis(sequence=seq, **kw, **extra)
        np.testing.assert_allclose(other.fids, fid.fids, atol=1e-9)
    # at a real TE the singlet keeps FID(0) = 5 in every sequence (STEAM's factor ½ removed)
    for seq, extra in (("steam", dict(echo_time_s=0.011, mixing_time_s=0.03)),
                       ("slaser", dict(echo_time_s=0.035)), ("laser", dict(echo_time_s=0.035))):
        b = simulate_basis(sequence=seq, **kw, **extra)
        assert b.fids[0, b.index("Cr")] == pytest.approx(5.0, abs=1e-9)
        assert b.meta["sequence"] == seq
    # J evolution differs between PRESS and STEAM at the same TE (sanity: not all equal)
    p = simulate_basis(sequence="press", echo_time_s=0.03, te1_s=0.015, te2_s=0.015, **kw)
    s = simulate_basis(sequence="steam", echo_time_s=0.03, mixing_time_s=0.02, **kw)
    assert np.abs(p.fids[:, 0] - s.fids[:, 0]).max() > 0.05


def test_event_builders_validate():
    assert len(press_events(0.011, 0.019)) == 6
    assert len(steam_events(0.011, 0.03)) == 6
    assert len(slaser_events(0.04)) == 10
    with pytest.raises(ValueError, match="echo"):
        slaser_events(0.04, [0.01, 0.01, 0.01, 0.01, 0.02])
    with pytest.raises(ValueError):
        press_events(-0.01, 0.02)
    with pytest.raises(ValueError, match="TE1"):
        simulate_basis(sequence="press", spectrometer_mhz=SF, dwell_s=DWELL, n_points=64,
                       echo_time_s=0.03, te1_s=0.01, te2_s=0.01, metabolites=["Cr"])
    with pytest.raises(ValueError, match="only 1H"):
        simulate_basis(sequence="fid", spectrometer_mhz=SF, dwell_s=DWELL, n_points=64,
                       nucleus="31P")


# ---------------------------------------------------------------------------------------
# Against the ISMRM fitting challenge basis (PRESS TE 30 = 11 + 19 ms, 123.2 MHz, ideal
# pulses, 2 Hz Lorentzian in the reference). Metric: Pearson correlation of the real
# (absorption) spectra over 0.2–4.2 ppm at the reference's own 2 Hz linewidth, allowing one
# rigid frequency offset ≤ 0.006 ppm per metabolite (the reference's singlets sit up to
# 0.003 ppm from Govindaraju 2000, e.g. Cr at 3.024, and the fitter estimates shifts anyway).
# Metabolites below 0.99 are listed with their measured floor (benchmarks/RESULTS_basis.md,
# re-measured 2026-11-22 03:00 UTC: Asp 0.9361, Gln 0.9584, GSH 0.9167, Glu 0.9891,
# NAAG 0.9880, GABA 0.9900): they follow different spin parameters in the challenge
# simulation, not a simulator error. Floors sit ≤ 0.002 below the deterministic measurement.
# ---------------------------------------------------------------------------------------
KNOWN_BELOW_099 = {"Asp": 0.935, "Gln": 0.957, "GSH": 0.915, "Glu": 0.988, "NAAG": 0.987,
                   "GABA": 0.989}
# |area ratio − 1| over 0.2–4.2 ppm, measured: PCh 0.0728 (its OCH2 multiplet lies above the
# 4.2 ppm edge with Govindaraju's 4.2805 ppm, below it in the reference), Asp 0.0315, NAAG 0.0255
AREA_TOL = {"PCh": 0.075, "Asp": 0.033, "NAAG": 0.027}
# |area ratio − 1| over the whole spectrum (= FID(0) ratio), measured: Asp 0.0297, NAAG 0.0213,
# all others ≤ 0.0136 (GSH); default 0.015
AREA_TOL_ALL = {"Asp": 0.032, "NAAG": 0.023}
ALIAS = {"PCh": "PCho", "sI": "sIns"}


def _best_corr(x, y, dwell, mhz, sel, max_shift_ppm=0.006):
    t = np.arange(x.size) * dwell
    ys = np.fft.fftshift(np.fft.fft(y))[sel].real
    best = -1.0
    for sh in np.linspace(-max_shift_ppm, max_shift_ppm, 25):
        xs = np.fft.fftshift(np.fft.fft(x * np.exp(-2j * np.pi * sh * mhz * t)))[sel].real
        best = max(best, float(np.corrcoef(xs, ys)[0, 1]))
    return best


def test_against_challenge_basis(press30):
    if not CHALLENGE.is_dir():
        pytest.skip(f"challenge basis not found under {CHALLENGE}")
    from bidsmrs.io.basis_files import load_basis

    ref = load_basis(CHALLENGE)
    b = press30
    t = np.arange(b.n_points) * DWELL
    sel = (b.ppm >= 0.2) & (b.ppm <= 4.2)
    failures = []
    for name in b.names:
        x = b.fids[:, b.index(name)] * np.exp(-np.pi * 2.0 * t)  # match the reference's 2 Hz
        y = ref.fids[:, ref.index(ALIAS.get(name, name))]
        corr = _best_corr(x, y, DWELL, SF, sel)
        floor = KNOWN_BELOW_099.get(name, 0.99)
        # areas over the fit range, both Gaussian-apodised (4 Hz) to remove truncation ripple
        ratio = _area(x, DWELL, sel) / _area(y, DWELL, sel)
        every = np.ones(b.n_points, bool)
        ratio_all = _area(x, DWELL, every) / _area(y, DWELL, every)
        if (corr < floor or abs(ratio - 1) > AREA_TOL.get(name, 0.02)
                or abs(ratio_all - 1) > AREA_TOL_ALL.get(name, 0.015)):
            failures.append(f"{name}: corr {corr:.4f} (floor {floor}), area ratio {ratio:.3f}, "
                            f"whole-spectrum area ratio {ratio_all:.4f}")
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize("name", ["Asp", "Gln"])
def test_challenge_multiplets_are_reproduced_exactly_with_refitted_spin_parameters(name):
    """The gap to the challenge basis is the spin table, not the simulation.

    Starting from our (Govindaraju 2000) parameters, a least-squares refit of the shifts and
    couplings alone (same PRESS 11 + 19 ms ideal-pulse simulation, no amplitude, phase or
    linewidth freedom beyond one scale) reproduces the reference spectra of the two worst
    metabolites to a correlation > 0.99999 with shifts within 0.011 ppm and couplings within
    0.35 Hz of ours (benchmarks/RESULTS_basis.md). A simulator with a wrong sub-echo split,
    coherence pathway or strong-coupling treatment could not do that."""
    if not CHALLENGE.is_dir():
        pytest.skip(f"challenge basis not found under {CHALLENGE}")
    from scipy.optimize import least_squares

    from bidsmrs.basis.density_matrix import lines_to_fid
    from bidsmrs.io.basis_files import load_basis

    ref = load_basis(CHALLENGE)
    y = ref.fids[:, ref.index(name)]
    events = press_events(0.011, 0.019)
    norm = complex(simulate_group(SpinGroup((4.65,)), events, SF)[0].sum())
    (group,) = get_molecule(name).groups
    n_s, n = group.n_spins, y.size
    ppm = 4.65 - np.fft.fftshift(np.fft.fftfreq(n, DWELL)) / SF
    sel = (ppm > 0.2) & (ppm < 4.2)
    target = np.fft.fftshift(np.fft.fft(y))[sel]

    def model(p):
        g = SpinGroup(tuple(p[:n_s]), tuple((i, j, float(v)) for (i, j, _), v in
                                            zip(group.couplings_hz, p[n_s:-1])))
        amps, freqs = simulate_group(g, events, SF)
        return p[-1] * np.fft.fftshift(np.fft.fft(lines_to_fid(amps / norm, freqs, n, DWELL, 2.0)))[sel]

    def resid(p):
        r = model(p) - target
        return np.concatenate([r.real, r.imag])

    p0 = np.array(list(group.shifts_ppm) + [c[2] for c in group.couplings_hz] + [1.0])
    fit = least_squares(resid, p0, x_scale=np.r_[np.full(n_s, 0.005), np.full(p0.size - n_s - 1, 0.3), 0.01],
                        diff_step=1e-5)
    corr0 = np.corrcoef(model(p0).real, target.real)[0, 1]
    corr = np.corrcoef(model(fit.x).real, target.real)[0, 1]
    assert corr0 < 0.96 and corr > 0.99999
    assert np.abs(fit.x[:n_s] - p0[:n_s]).max() < 0.011
    assert np.abs(fit.x[n_s:-1] - p0[n_s:-1]).max() < 0.35
    assert fit.x[-1] == pytest.approx(1.0, abs=0.002)


def test_pch_area_gap_is_the_och2_window_edge_not_protons(press30):
    """PCh's 7 % area gap over 0.2–4.2 ppm is where the OCH2 multiplet sits, not its protons.

    Proton count (9 N-CH3 + 4 CH2) and the N(CH3)3 grouping agree with the reference: the
    whole-spectrum area and the 3.10–3.30 ppm singlet window match within 1 % / 0.5 %. Our
    OCH2 (Govindaraju 2000: 4.2805 ppm) lies in 4.2–4.5 ppm; the reference's lies in 4.0–4.2.
    """
    if not CHALLENGE.is_dir():
        pytest.skip(f"challenge basis not found under {CHALLENGE}")
    from bidsmrs.io.basis_files import load_basis

    ref = load_basis(CHALLENGE)
    b = press30
    t = np.arange(b.n_points) * DWELL
    x = b.fids[:, b.index("PCh")] * np.exp(-np.pi * 2.0 * t)
    y = ref.fids[:, ref.index("PCho")]

    def win(f, lo, hi):
        return _area(f, DWELL, (b.ppm >= lo) & (b.ppm <= hi))

    assert get_molecule("PCh").n_protons == 13
    assert win(x, -11, 21) / win(y, -11, 21) == pytest.approx(1.0, abs=0.01)  # measured 0.9941
    assert win(x, 3.10, 3.30) / win(y, 3.10, 3.30) == pytest.approx(1.0, abs=0.005)  # 0.9989
    # OCH2: ours above the 4.2 ppm edge, the reference's below it (measured 1.127 vs 0.336
    # and 0.346 vs 1.079 in 4.2–4.5 / 4.0–4.2 ppm)
    assert win(x, 4.2, 4.5) > 1.0 and win(y, 4.2, 4.5) < 0.4
    assert win(x, 4.0, 4.2) < 0.4 and win(y, 4.0, 4.2) > 1.0


# ---------------------------------------------------------------------------------------
# Shaped, slice-selective refocusing pulses
# ---------------------------------------------------------------------------------------
def test_single_spin_shaped_180_refocuses_like_ideal_on_resonance():
    from bidsmrs.basis.density_matrix import single_spin_propagators
    from bidsmrs.basis.sequences import PulseShape

    b1, ph, sw, dt = PulseShape("sinc", 5e-3, 1200.0, 200).waveform()
    u = single_spin_propagators(np.array([0.0, 3000.0]), b1, ph, sw, dt)
    np.testing.assert_allclose(u[0], [[0, -1j], [-1j, 0]], atol=1e-6)  # exp(−iπ I_x)
    assert abs(u[1, 1, 0]) ** 2 < 0.01  # far outside the slice: no inversion
    b1, ph, sw, dt = PulseShape("hs1", 3.5e-3, 5000.0, 400).waveform()
    u = single_spin_propagators(np.linspace(-1500, 1500, 7), b1, ph, sw, dt)
    assert np.all(np.abs(u[:, 1, 0]) ** 2 > 0.99)  # adiabatic: inverts the whole central band


def test_shaped_press_inside_flat_slice_centre_equals_ideal(monkeypatch):
    import bidsmrs.basis.sequences as seqmod
    from bidsmrs.basis.sequences import PulseShape

    # only positions where a broadband sinc is a perfect 180° (|x| ≤ 0.05 slice)
    monkeypatch.setattr(seqmod, "_positions",
                        lambda n, extent: tuple(np.linspace(-0.05, 0.05, int(n))))
    kw = dict(spectrometer_mhz=SF, dwell_s=DWELL, n_points=1024, echo_time_s=0.03, te1_s=0.011,
              te2_s=0.019, metabolites=["Glu", "Lac", "Cr"])
    ideal = simulate_basis(sequence="press", **kw)
    shaped = simulate_basis(sequence="press", refocusing=PulseShape("sinc", 0.2e-3, 5e4, 100),
                            n_positions=3, **kw)
    for k in range(3):
        x, y = ideal.fids[:, k], shaped.fids[:, k]
        assert abs(np.vdot(x, y)) / np.linalg.norm(x) / np.linalg.norm(y) > 0.999
    assert shaped.fids[0, 2] == pytest.approx(5.0, abs=1e-3)
    assert shaped.meta["pulses"]["refocusing"]["kind"] == "sinc"


@pytest.mark.parametrize("bw_hz", [1200.0, 3000.0])
def test_chemical_shift_displacement_cancels_lactate_at_te144(bw_hz):
    """PRESS TE 144 ms, 3 T: where the slices of CH3 (1.31) and CH (4.10) do not overlap, the
    CH3 is not J-inverted. Sharp-profile estimate per direction d = Δν/BW:
    S = 3·[−(1−d)² + (1 − (1−d)²)]; the simulated sinc profile is within 0.35 of it."""
    from bidsmrs.basis.sequences import PulseShape

    d = (4.0974 - 1.3142) * SF / bw_hz
    overlap = (1 - d) ** 2
    expected = 3 * (-overlap + (1 - overlap))
    b = simulate_basis(sequence="press", spectrometer_mhz=SF, dwell_s=DWELL, n_points=4096,
                       echo_time_s=0.144, te1_s=0.072, te2_s=0.072, metabolites=["Lac"],
                       refocusing=PulseShape("sinc", 5.2e-3, bw_hz, 200), n_positions=41)
    value = _window_area(b, "Lac", 1.0, 1.6)
    assert value == pytest.approx(expected, abs=0.35)
    assert value > -2.5  # clearly less inverted than with ideal pulses (−3)


def test_shaped_slaser_normalised_and_better_than_press():
    from bidsmrs.basis.sequences import PulseShape

    kw = dict(spectrometer_mhz=SF, dwell_s=DWELL, n_points=4096, echo_time_s=0.144,
              metabolites=["Lac", "Cr"], n_positions=21)
    sl = simulate_basis(sequence="slaser", refocusing=PulseShape("hs1", 3.5e-3, 5000.0, 200), **kw)
    pr = simulate_basis(sequence="press", te1_s=0.072, te2_s=0.072,
                        refocusing=PulseShape("sinc", 5.2e-3, 1200.0, 200), **kw)
    assert sl.fids[0, 1] == pytest.approx(5.0, abs=0.01)
    # semi-LASER's wide-band adiabatic pulses keep most of the inverted Lac doublet
    assert _window_area(sl, "Lac", 1.0, 1.6) < -2.0 < _window_area(pr, "Lac", 1.0, 1.6)
    with pytest.raises(ValueError, match="do not fit"):
        simulate_basis(sequence="press", spectrometer_mhz=SF, dwell_s=DWELL, n_points=64,
                       echo_time_s=0.01, te1_s=0.004, te2_s=0.006, metabolites=["Cr"],
                       refocusing=PulseShape("sinc", 5.2e-3, 1200.0))
    with pytest.raises(ValueError, match="PRESS and"):
        simulate_basis(sequence="steam", spectrometer_mhz=SF, dwell_s=DWELL, n_points=64,
                       echo_time_s=0.01, mixing_time_s=0.02, metabolites=["Cr"],
                       refocusing=PulseShape())
