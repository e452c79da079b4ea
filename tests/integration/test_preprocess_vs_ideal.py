"""Issue 4: fitting the preprocessed demo data gives concentrations within 5% of fitting the
ideal averaged data (the same transients with their known drift and phase removed exactly)."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs import demo
from bidsmrs.fitting import fit_spectrum
from bidsmrs.preprocess import preprocess_run
from bidsmrs.quantify import fixed_fractions, load_quant_config
from bidsmrs.spectrum import Spectrum

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory):
    from bidsmrs.basis.select import default_basis

    basis = default_basis(spectrometer_mhz=demo.SF_MHZ, dwell_s=demo.DWELL_S, n_points=demo.N_POINTS,
                          echo_time_s=demo.TE_S, sequence="press", te1_s=demo.TE1_S, te2_s=demo.TE2_S,
                          cache_dir=tmp_path_factory.mktemp("basis"))
    config = load_quant_config(None, 3.0)
    acq = demo.make_participant_data(basis, dict(demo.TYPICAL_MM), fixed_fractions(0.5, 0.4, 0.1), config,
                                     np.random.default_rng(7))
    return basis, acq


def _spectrum(fid, tags=()):
    return Spectrum(fid=fid, dwell_s=demo.DWELL_S, spectrometer_mhz=demo.SF_MHZ, dim_tags=tags,
                    echo_time_s=demo.TE_S, repetition_time_s=demo.TR_S, affine=np.eye(4))


def test_preprocessed_fit_matches_ideal_fit(acquisition):
    basis, acq = acquisition
    t = np.arange(demo.N_POINTS) * demo.DWELL_S
    undo = np.exp(-2j * np.pi * acq.drift_hz[None, :] * t[:, None] - 1j * np.deg2rad(acq.phase_deg)[None, :])
    ideal = _spectrum((acq.transients * undo).mean(axis=1))
    ideal = preprocess_run(ideal).metabolite  # same water removal/referencing as the real path
    processed = preprocess_run(_spectrum(acq.transients, ("DIM_DYN",)), {"conc": _spectrum(acq.water)})
    assert processed.qc["n_transients"] == demo.N_TRANSIENTS
    fit_ideal = fit_spectrum(ideal, basis)
    fit_pre = fit_spectrum(processed.metabolite, basis)
    for name in ("tNAA", "tCr", "tCho", "Ins", "Glx"):
        parts = fit_ideal.combinations().get(name, (name,))
        a, _ = fit_ideal.combined(parts)
        b, _ = fit_pre.combined(parts)
        assert abs(b - a) / a < 0.05, (name, a, b)
    # the recorded corrections (applied shifts) undo the simulated drift, up to a common offset
    est = np.asarray(processed.transients["freq_shift_hz"])
    assert np.max(np.abs((est - est.mean()) + (acq.drift_hz - acq.drift_hz.mean()))) < 0.3
