"""Density-matrix simulation of one spin group with the full (strong-coupling) Hamiltonian.

Physics (Levitt, *Spin Dynamics*, 2nd ed., ch. 14–15; de Graaf, *In Vivo NMR Spectroscopy*,
3rd ed., ch. 8): in the rotating frame of the 1H receiver at ``ppm_centre``

    H = Σ_k 2π ν_k I_zk + Σ_{k<l, both 1H} 2π J_kl I_k·I_l + Σ_{k<l, heteronuclear} 2π J_kl I_zk S_zl

with ``ν_k = (δ_k − ppm_centre)·SF`` (Hz). Heteronuclear spins (31P) are never pulsed or
detected. Ideal pulses are rotations ``exp(−iθ(cos φ F_x + sin φ F_y))`` of the 1H spins.
Gradient crushers / phase cycling are modelled by coherence-transfer-pathway selection: after
each pulse only the chosen total 1H coherence order ``p = m_row − m_col`` is kept (Bodenhausen
et al. 1984 J Magn Reson 58:370). The signal is ``Tr(ρ(t) F⁻)``, which detects order +1;
with ``ν_k`` as above a line at δ appears as ``exp(+i2π(ppm_centre − δ)·SF·t)``, the stored
convention of :mod:`bidsmrs.spectrum`.

Efficiency: the Hamiltonian commutes with the total 1H and heteronuclear Z magnetisation, so it
is diagonalised block by block (eigenvectors never mix blocks), once per spin group; every
free precession is then ``V e^{−iDτ} V†`` and the acquisition is an exact sum of damped-free
lines ``Σ a_k e^{i2π f_k t}`` computed from the eigenbasis (no time stepping).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

import numpy as np

from bidsmrs.basis.spin_systems import SpinGroup

__all__ = ["SpinOperators", "build_operators", "pulse", "select_order", "evolve",
           "acquired_lines", "lines_to_fid", "thermal_state"]

_SIGMA_Z = np.diag([0.5, -0.5])
_RAISE = np.array([[0.0, 1.0], [0.0, 0.0]])   # I+ in the (α, β) basis
_LOWER = _RAISE.T                              # I−


def _embed(single: np.ndarray, k: int, n: int) -> np.ndarray:
    """Operator ``single`` acting on spin k of n (Zeeman product basis, spin 0 most significant)."""
    mats = [np.eye(2)] * n
    mats[k] = single
    return reduce(np.kron, mats)


@dataclass(frozen=True)
class SpinOperators:
    """Operators of one spin group at one field, built once and reused.

    Attributes
    ----------
    n_spins, is_proton : int, ndarray of bool
    m_proton : ndarray (N,)
        Total 1H magnetic quantum number of each Zeeman basis state.
    order : ndarray (N, N) of int
        1H coherence order ``m_row − m_col`` of every density-matrix element.
    eigvecs : ndarray (N, N), complex
        Block-diagonal unitary diagonalising the Hamiltonian.
    eigvals_rad_s : ndarray (N,)
        Eigenvalues (rad/s).
    detect_eig : ndarray (N, N)
        ``F⁻`` in the eigenbasis.
    """

    n_spins: int
    is_proton: np.ndarray
    m_proton: np.ndarray
    order: np.ndarray
    eigvecs: np.ndarray
    eigvals_rad_s: np.ndarray
    detect_eig: np.ndarray
    _cache: dict = field(default_factory=dict, compare=False, repr=False)


def build_operators(group: SpinGroup, spectrometer_mhz: float, ppm_centre: float = 4.65
                    ) -> SpinOperators:
    """Hamiltonian eigen-decomposition and detection operator of ``group``."""
    n = group.n_spins
    is_h = group.is_proton
    dim = 2 ** n
    iz = [np.diag(_embed(_SIGMA_Z, k, n)).copy() for k in range(n)]  # diagonals only
    m_h = np.sum([iz[k] for k in range(n) if is_h[k]], axis=0) if is_h.any() else np.zeros(dim)
    m_x = np.sum([iz[k] for k in range(n) if not is_h[k]], axis=0) if (~is_h).any() else np.zeros(dim)

    ham = np.zeros((dim, dim))
    nu = (np.asarray(group.shifts_ppm) - ppm_centre) * spectrometer_mhz
    diag = np.zeros(dim)
    for k in range(n):
        if is_h[k]:
            diag += 2 * np.pi * nu[k] * iz[k]
    jm = group.j_matrix()
    for k in range(n):
        for l_ in range(k + 1, n):
            j = jm[k, l_]
            if j == 0:
                continue
            diag += 2 * np.pi * j * iz[k] * iz[l_]  # I_zk I_zl (weak part)
            if is_h[k] and is_h[l_]:
                # flip-flop part ½(I+_k I−_l + I−_k I+_l) of I_k·I_l (strong coupling)
                ff = 0.5 * (_embed(_RAISE, k, n) @ _embed(_LOWER, l_, n)
                            + _embed(_LOWER, k, n) @ _embed(_RAISE, l_, n))
                ham += 2 * np.pi * j * ff
    ham += np.diag(diag)

    # block diagonalisation by (m_H, m_X)
    keys = np.round(m_h * 2).astype(int) * 1000 + np.round(m_x * 2).astype(int)
    vecs = np.zeros((dim, dim), complex)
    vals = np.zeros(dim)
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        w, v = np.linalg.eigh(ham[np.ix_(idx, idx)])
        vals[idx] = w
        vecs[np.ix_(idx, idx)] = v
    order = np.round(m_h[:, None] - m_h[None, :]).astype(int)
    f_minus = sum(_embed(_LOWER, k, n) for k in range(n) if is_h[k])
    detect = vecs.conj().T @ f_minus @ vecs
    return SpinOperators(n_spins=n, is_proton=is_h, m_proton=m_h, order=order, eigvecs=vecs,
                         eigvals_rad_s=vals, detect_eig=detect)


def thermal_state(ops: SpinOperators) -> np.ndarray:
    """Equilibrium deviation density matrix ``F_z`` of the 1H spins (Zeeman basis).

    Scaled by ``2^(1−n)`` so that each 1H spin contributes ``Tr(I_z²) = 1/2`` as a lone spin
    does, whatever the size of the group (signal per proton independent of the group).
    """
    return np.diag(ops.m_proton).astype(complex) / 2.0 ** (ops.n_spins - 1)


def _rotation(ops: SpinOperators, flip_rad: float, phase_rad: float) -> np.ndarray:
    key = ("rot", round(flip_rad, 12), round(phase_rad, 12))
    if key not in ops._cache:
        c, s = np.cos(flip_rad / 2), np.sin(flip_rad / 2)
        r = np.array([[c, -1j * np.exp(-1j * phase_rad) * s],
                      [-1j * np.exp(1j * phase_rad) * s, c]])
        mats = [r if h else np.eye(2) for h in ops.is_proton]
        ops._cache[key] = reduce(np.kron, mats)
    return ops._cache[key]


def pulse(rho: np.ndarray, ops: SpinOperators, flip_deg: float, phase_deg: float = 0.0
          ) -> np.ndarray:
    """Ideal (hard, non-selective) pulse on all 1H spins: ``R ρ R†``."""
    r = _rotation(ops, np.deg2rad(flip_deg), np.deg2rad(phase_deg))
    return r @ rho @ r.conj().T


def select_order(rho: np.ndarray, ops: SpinOperators, order: int) -> np.ndarray:
    """Keep only density-matrix elements of 1H coherence order ``order`` (crusher selection)."""
    return np.where(ops.order == order, rho, 0)


def evolve(rho: np.ndarray, ops: SpinOperators, tau_s: float) -> np.ndarray:
    """Free precession for ``tau_s`` seconds under the full Hamiltonian."""
    if tau_s == 0:
        return rho
    key = ("U", round(tau_s, 15))
    if key not in ops._cache:
        v = ops.eigvecs
        ops._cache[key] = (v * np.exp(-1j * ops.eigvals_rad_s * tau_s)[None, :]) @ v.conj().T
    u = ops._cache[key]
    return u @ rho @ u.conj().T


def acquired_lines(rho: np.ndarray, ops: SpinOperators, tol: float = 1e-10
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Lines ``(amplitudes, frequencies_hz)`` of the FID ``Tr(ρ(t)F⁻) = Σ a e^{i2πft}``.

    Lines with the same frequency (to 1e-6 Hz) are merged; lines below ``tol`` × the largest
    are dropped.
    """
    v = ops.eigvecs
    rho_e = v.conj().T @ rho @ v
    contrib = rho_e * ops.detect_eig.T
    r, c = np.nonzero(np.abs(contrib) > 0)
    amps = contrib[r, c]
    freqs = -(ops.eigvals_rad_s[r] - ops.eigvals_rad_s[c]) / (2 * np.pi)
    if amps.size == 0:
        return amps, freqs
    keep = np.abs(amps) > tol * np.abs(amps).max()
    amps, freqs = amps[keep], freqs[keep]
    key = np.round(freqs * 1e6).astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    merged = np.zeros(uniq.size, complex)
    np.add.at(merged, inv, amps)
    f_out = np.zeros(uniq.size)
    np.add.at(f_out, inv, freqs)
    counts = np.bincount(inv)
    return merged, f_out / counts


def lines_to_fid(amps: np.ndarray, freqs_hz: np.ndarray, n_points: int, dwell_s: float,
                 lorentz_hz: float = 0.0, chunk: int = 256) -> np.ndarray:
    """FID ``Σ_k a_k exp(i2π f_k t) · exp(−π L t)`` on ``n_points`` samples of ``dwell_s``."""
    t = np.arange(n_points) * dwell_s
    out = np.zeros(n_points, complex)
    for s in range(0, amps.size, chunk):
        ph = np.exp(2j * np.pi * np.outer(t, freqs_hz[s:s + chunk]))
        out += ph @ amps[s:s + chunk]
    if lorentz_hz:
        out *= np.exp(-np.pi * lorentz_hz * t)
    return out
