"""Spectral registration, outlier rejection and averaging of transients with known drift."""
import numpy as np
import pytest

from bidsmrs.errors import InputError
from bidsmrs.preprocess.align import align_transients
from bidsmrs.preprocess.average import average_transients
from bidsmrs.spectrum import Spectrum
from tests.mrs_simulator import clean_metabolite_fid

N, DWELL, SF = 2048, 2.5e-4, 123.2


def _transients(seed, n_dyn=32, noise=0.25, drift=5.0, jitter=10.0, corrupt=(5, 17, 26)):
    """DIM_DYN data: clean spectrum with random-walk drift (±drift Hz), phase jitter (deg),
    noise (per part, time domain) and motion-corrupted transients."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) * DWELL
    clean = clean_metabolite_fid(N, DWELL, SF)
    walk = np.cumsum(rng.standard_normal(n_dyn))
    walk = walk - walk.mean()
    walk = drift * walk / np.max(np.abs(walk)) if n_dyn > 1 else walk
    ph = rng.normal(0, jitter, n_dyn)
    x = clean[:, None] * np.exp(1j * (2 * np.pi * np.outer(t, walk) + np.deg2rad(ph)[None, :]))
    for k in corrupt:
        x[:, k] *= 0.4 * np.exp(-np.pi * 8 * t) * np.exp(1j * 2.0)
    x = x + noise * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
    spec = Spectrum(fid=x, dwell_s=DWELL, spectrometer_mhz=SF, dim_tags=("DIM_DYN",))
    return spec, walk, ph, np.asarray(corrupt, int), clean


def _errors(res, walk, ph, good):
    f = res.freq_shift_hz + walk
    p = res.phase_deg + ph
    f = f[good] - np.median(f[good])
    p = np.rad2deg(np.angle(np.exp(1j * np.deg2rad(p - np.median(p[good])))))[good]
    return np.abs(f).max(), np.abs(p).max()


@pytest.fixture(scope="module")
def aligned():
    spec, walk, ph, bad, clean = _transients(0)
    out, res = align_transients(spec)
    return spec, walk, ph, bad, clean, out, res


def test_shifts_and_phases_match_truth(aligned):
    spec, walk, ph, bad, clean, out, res = aligned
    good = ~np.isin(np.arange(spec.fid.shape[1]), bad)
    ferr, perr = _errors(res, walk, ph, good)
    assert ferr < 0.2
    assert perr < 2.0


def test_corrupted_transients_rejected_and_few_good_ones(aligned):
    spec, walk, ph, bad, clean, out, res = aligned
    rejected = np.flatnonzero(res.rejected)
    assert set(bad) <= set(rejected)
    n_good = spec.fid.shape[1] - bad.size
    assert len(set(rejected) - set(bad)) <= 0.05 * n_good
    assert np.all(res.residual_z[bad] > 3)
    step = out.history[-1]
    assert step.method == "Frequency and phase correction"
    assert step.params["n_rejected"] == len(rejected)
    assert f"{len(rejected)} transient(s) rejected" in step.details


def test_average_of_aligned_transients_matches_truth(aligned):
    spec, walk, ph, bad, clean, out, res = aligned
    avg = average_transients(out, res.rejected)
    assert avg.fid.ndim == 1 and avg.dim_tags == ()
    assert avg.history[-1].params["n_averaged"] == spec.fid.shape[1] - res.rejected.sum()
    # up to a common frequency/phase the average is the clean FID: compare magnitude spectra
    a = np.abs(np.fft.fft(avg.fid))
    b = np.abs(np.fft.fft(clean))
    assert np.corrcoef(a, b)[0, 1] > 0.995
    naive = np.abs(np.fft.fft(spec.fid[:, ~np.isin(np.arange(spec.fid.shape[1]), bad)].mean(axis=1)))
    assert np.corrcoef(a, b)[0, 1] > np.corrcoef(naive, b)[0, 1]


def test_low_snr_is_robust():
    # per-transient NAA SNR about 5
    spec, walk, ph, bad, clean, out, res = (*_transients(1, noise=2.0),) + (None, None)
    out, res = align_transients(spec)
    good = ~np.isin(np.arange(spec.fid.shape[1]), bad)
    ferr, perr = _errors(res, walk, ph, good)
    assert ferr < 1.0
    assert perr < 15.0
    assert set(bad) <= set(np.flatnonzero(res.rejected))


def test_large_drift_found_by_coarse_search():
    spec, walk, ph, bad, clean = _transients(2, drift=15.0, corrupt=())
    out, res = align_transients(spec)
    ferr, perr = _errors(res, walk, ph, np.ones(walk.size, bool))
    assert ferr < 0.2


def test_non_finite_transient_dropped_and_recorded():
    spec, walk, ph, bad, clean = _transients(3, n_dyn=8, corrupt=())
    fid = spec.fid.copy()
    fid[100, 4] = np.nan
    out, res = align_transients(spec.replace(fid=fid))
    assert res.rejected[4] and res.non_finite[4] and np.isnan(res.freq_shift_hz[4])
    assert res.rejected.sum() == 1
    avg = average_transients(out, res.rejected)
    assert np.isfinite(avg.fid).all()
    assert avg.history[-1].params["n_averaged"] == 7


def test_single_transient_and_all_rejected():
    spec, *_ = _transients(4, n_dyn=1, corrupt=())
    out, res = align_transients(spec)
    assert res.freq_shift_hz.tolist() == [0.0] and not res.rejected.any()
    with pytest.raises(InputError, match="no usable transient"):
        average_transients(out, np.array([True]))


def test_requires_dyn_only():
    spec, *_ = _transients(5, n_dyn=4, corrupt=())
    with pytest.raises(ValueError, match="only DIM_DYN"):
        align_transients(spec.replace(fid=spec.fid[:, :, None], dim_tags=("DIM_DYN", "DIM_COIL")))
