"""Receive-coil combination of ``DIM_COIL`` data.

Two methods (combined signal ``s(t) = Σ_c w_c·x_c(t)`` with complex weights ``w_c``):

``"snr2"`` (default)
    S/N²-weighted combination (Hall 2014, NeuroImage 86:35): ``w_c ∝ (S_c/σ_c²)·e^{−iφ_c}``
    where ``S_c e^{iφ_c}`` is the mean of the first points of the coil's FID in the weighting
    signal (the water reference when there is one, otherwise the metabolite data averaged over
    all other dimensions) and ``σ_c`` is the coil's noise SD from the tail of the metabolite
    FIDs. This is the maximum-SNR combination for uncorrelated coil noise and is the default
    because it needs nothing but the data and is robust for any number of coils.
``"wsvd"``
    Whitened singular value decomposition (Rodgers & Robson 2010, MRM 63:881): the data are
    pre-whitened with the inverse square root of the coil noise covariance (estimated from the
    FID tails), the weights are the first right singular vector of the whitened weighting
    signal (time × coil), mapped back through the whitening matrix. Accounts for correlated
    coil noise.

Weights are normalised so that ``Σ|w_c| = 1``; the absolute scale is therefore arbitrary but
identical for the metabolite data and every reference combined with the same weights, so
water-scaled concentrations are unaffected. All-zero (or entirely non-finite) coils get zero
weight and are reported.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bidsmrs.errors import InputError
from bidsmrs.preprocess.dims import DIM_COIL, move_tag_last, squeeze_to
from bidsmrs.spectrum import Spectrum, StepRecord

logger = logging.getLogger(__name__)

METHODS = ("snr2", "wsvd")
#: Number of leading FID points whose mean gives the coil amplitude and phase.
N_FIRST_POINTS = 4
#: Fraction of the FID (its end) used as signal-free noise samples.
NOISE_TAIL_FRACTION = 0.25


@dataclass(frozen=True)
class CoilWeights:
    """Complex coil weights and how they were obtained.

    Parameters
    ----------
    weights : ndarray, complex, shape (n_coils,)
        ``s(t) = Σ_c weights[c]·x_c(t)``; zero for dropped coils; ``Σ|w| = 1``.
    method : str
        ``"snr2"`` or ``"wsvd"``.
    source : str
        Which signal gave amplitudes/phases: ``"reference"`` or ``"metabolite"``.
    dropped : tuple of int
        Indices of coils that were all zero or non-finite.
    noise_sd : ndarray, shape (n_coils,)
        Noise SD per coil (per real/imaginary part, data units); NaN for dropped coils.
    whitened : bool
        True when WSVD used a noise covariance for pre-whitening.
    note : str
        Free text about fallbacks (empty when none).
    """

    weights: np.ndarray
    method: str
    source: str
    dropped: tuple[int, ...] = ()
    noise_sd: np.ndarray | None = None
    whitened: bool = False
    note: str = ""

    @property
    def n_coils(self) -> int:
        return int(self.weights.shape[0])


def _coil_matrix(spec: Spectrum) -> np.ndarray:
    """``(n_points, n_coils, n_rest)`` view of the data, any other dims flattened into n_rest."""
    fid, tags = move_tag_last(spec.fid, spec.dim_tags, DIM_COIL)
    n, nc = fid.shape[0], fid.shape[-1]
    return np.moveaxis(fid.reshape(n, -1, nc), 2, 1)


def bad_coils(spec: Spectrum) -> np.ndarray:
    """Boolean mask of coils that are all zero or have no finite sample."""
    x = _coil_matrix(spec)
    finite = np.isfinite(x)
    nonzero = np.abs(np.where(finite, x, 0)) > 0
    return ~(finite.any(axis=(0, 2)) & nonzero.any(axis=(0, 2)))


def noise_samples(spec: Spectrum, tail_fraction: float = NOISE_TAIL_FRACTION) -> np.ndarray:
    """Noise samples per coil from the FID tails, ``(n_samples, n_coils)``, mean removed per FID.

    Transients containing non-finite samples are ignored.
    """
    x = _coil_matrix(spec)
    n = x.shape[0]
    start = int(n * (1.0 - tail_fraction))
    tail = x[start:]
    good = np.isfinite(tail).all(axis=(0, 1))
    tail = tail[:, :, good]
    tail = tail - tail.mean(axis=0, keepdims=True)
    return np.moveaxis(tail, 1, 2).reshape(-1, x.shape[1])


def _first_points(sig: Spectrum) -> np.ndarray:
    """Mean of the first points per coil of ``sig`` averaged over every non-coil dimension."""
    fid = squeeze_to(np.where(np.isfinite(sig.fid), sig.fid, 0), sig.dim_tags, (DIM_COIL,))
    return fid[:N_FIRST_POINTS].mean(axis=0)


def coil_weights(data: Spectrum, reference: Spectrum | None = None, method: str = "snr2") -> CoilWeights:
    """Estimate coil weights.

    Parameters
    ----------
    data : Spectrum
        Metabolite data with ``DIM_COIL`` (gives the noise estimate; and the amplitudes and
        phases when ``reference`` is None).
    reference : Spectrum or None
        Water reference with ``DIM_COIL`` and the same number of coils (gives amplitudes and
        phases, Hall 2014).
    method : {"snr2", "wsvd"}
        See the module docstring.
    """
    if method not in METHODS:
        raise ValueError(f"unknown coil combination method {method!r}; choose one of {METHODS}")
    if data.axis_of(DIM_COIL) is None:
        raise ValueError("data have no DIM_COIL dimension")
    n_coils = data.fid.shape[data.axis_of(DIM_COIL)]
    note = []
    if reference is not None:
        if reference.axis_of(DIM_COIL) is None or reference.fid.shape[reference.axis_of(DIM_COIL)] != n_coils:
            note.append("the reference's coil dimension does not match the data; weights from the data")
            reference = None
    source = "reference" if reference is not None else "metabolite"
    bad = bad_coils(data)
    if reference is not None:
        bad = bad | bad_coils(reference)
    if bad.all():
        raise InputError("every receive coil is all zero or non-finite")
    use = ~bad

    noise = noise_samples(data)
    sd = np.sqrt(np.mean(np.abs(noise) ** 2, axis=0) / 2.0) if noise.shape[0] else np.zeros(n_coils)
    sd = np.where(use, sd, np.nan)
    if not np.all(sd[use] > 0):
        if np.any(sd[use] > 0):
            sd = np.where(use & ~(sd > 0), np.nanmin(sd[use][sd[use] > 0]), sd)
        else:
            note.append("no noise found in the FID tails; equal noise assumed")
            sd = np.where(use, 1.0, np.nan)

    first = _first_points(reference if reference is not None else data)
    w = np.zeros(n_coils, complex)
    whitened = False
    if method == "snr2":
        w[use] = np.abs(first[use]) / sd[use] ** 2 * np.exp(-1j * np.angle(first[use]))
    else:
        sig = reference if reference is not None else data
        x = squeeze_to(np.where(np.isfinite(sig.fid), sig.fid, 0), sig.dim_tags, (DIM_COIL,))[:, use]
        nz = noise[:, use]
        if nz.shape[0] >= 4 * nz.shape[1]:
            cov = (nz.conj().T @ nz) / nz.shape[0]
            evals, evecs = np.linalg.eigh(cov)
            evals = np.maximum(evals, evals.max() * 1e-12)
            whiten = evecs @ np.diag(evals ** -0.5) @ evecs.conj().T  # C^{-1/2}, Hermitian
            whitened = True
        else:
            whiten = np.diag(1.0 / sd[use])
            note.append("too few noise samples for a covariance; diagonal pre-whitening")
        y = x @ whiten.T
        _, _, vh = np.linalg.svd(y, full_matrices=False)
        v1 = vh[0].conj()
        wu = whiten.T @ v1
        ref_pt = np.sum(wu * first[use])
        wu = wu * np.exp(-1j * np.angle(ref_pt))
        w[use] = wu
    total = np.sum(np.abs(w))
    if not total > 0:
        raise InputError("coil weights are all zero (no signal in the first FID points of any coil)")
    w = w / total
    dropped = tuple(int(i) for i in np.flatnonzero(bad))
    if dropped:
        note.append(f"coil(s) {list(dropped)} all zero or non-finite, dropped")
    return CoilWeights(weights=w, method=method, source=source, dropped=dropped, noise_sd=sd,
                       whitened=whitened, note="; ".join(note))


def apply_coil_weights(spec: Spectrum, cw: CoilWeights, role: str = "metabolite") -> Spectrum:
    """Combine the ``DIM_COIL`` axis of ``spec`` with weights ``cw`` (a ``StepRecord`` is appended)."""
    ax = spec.axis_of(DIM_COIL)
    if ax is None:
        return spec
    if spec.fid.shape[ax] != cw.n_coils:
        raise ValueError(f"{spec.fid.shape[ax]} coils but {cw.n_coils} weights")
    fid, tags = move_tag_last(spec.fid, spec.dim_tags, DIM_COIL)
    w = cw.weights
    used = w != 0
    out = np.tensordot(fid[..., used], w[used], axes=([-1], [0]))
    new_tags = tags[:-1]
    label = ("S/N²-weighted (Hall 2014)" if cw.method == "snr2"
             else "whitened-SVD (Rodgers & Robson 2010)")
    src = "the water reference" if cw.source == "reference" else "the metabolite data (no reference)"
    details = (f"{label} combination of {cw.n_coils} coils ({cw.n_coils - len(cw.dropped)} used) applied to the "
               f"{role}, weights and phases from the mean of the first {N_FIRST_POINTS} FID points of {src}, "
               f"noise SD from the last {int(NOISE_TAIL_FRACTION * 100)}% of the metabolite FIDs"
               + (", noise pre-whitened" if cw.whitened else "")
               + (f"; {cw.note}" if cw.note else "") + ".")
    params = {"method": cw.method, "source": cw.source, "n_coils": cw.n_coils, "dropped": list(cw.dropped),
              "weights_abs": np.abs(cw.weights).round(6).tolist(),
              "weights_phase_deg": np.rad2deg(np.angle(cw.weights)).round(3).tolist(),
              "whitened": cw.whitened, "n_first_points": N_FIRST_POINTS, "note": cw.note}
    return spec.with_step(out, StepRecord("RF coil combination", details, params), dim_tags=new_tags)


def combine_coils(spec: Spectrum, reference: Spectrum | None = None,
                  method: str = "snr2") -> tuple[Spectrum, CoilWeights]:
    """Estimate weights (see :func:`coil_weights`) and combine ``spec``; returns both."""
    cw = coil_weights(spec, reference, method)
    return apply_coil_weights(spec, cw), cw


__all__ = ["CoilWeights", "coil_weights", "apply_coil_weights", "combine_coils", "bad_coils",
           "noise_samples", "METHODS"]
