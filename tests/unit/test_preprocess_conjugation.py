"""Data stored with the opposite frequency convention are detected and conjugated back."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.preprocess import preprocess_run
from bidsmrs.preprocess.conjugation import conjugation_score, is_conjugated
from bidsmrs.simulate import make_spectrum, peak_fid

SF, DWELL, N = 123.2, 1 / 2000, 2048


def _metabolite(rng, n_transients=8, conj=False):
    fid = sum(peak_fid(N, DWELL, SF, ppm, amplitude=a, lorentz_hz=4) for ppm, a in
              ((2.008, 10), (3.027, 8), (3.185, 3), (4.65, 60)))
    data = np.repeat(fid[:, None], n_transients, axis=1)
    spec = make_spectrum(data, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.05, rng=rng, dim_tags=("DIM_DYN",),
                         phase0_deg=30)
    return spec.replace(fid=np.conj(spec.fid)) if conj else spec


def _water(conj=False):
    w = make_spectrum(peak_fid(N, DWELL, SF, 4.65, amplitude=5000, lorentz_hz=5, phase_deg=20), dwell_s=DWELL,
                      spectrometer_mhz=SF)
    return w.replace(fid=np.conj(w.fid)) if conj else w


def test_score_separates_conventions():
    good = _metabolite(np.random.default_rng(0))
    bad = _metabolite(np.random.default_rng(0), conj=True)
    assert conjugation_score(good) < 0.3 < 3 < conjugation_score(bad)
    assert not is_conjugated(good) and is_conjugated(bad)


def test_conjugated_input_gives_the_same_result():
    ref = preprocess_run(_metabolite(np.random.default_rng(1)), {"conc": _water()})
    res = preprocess_run(_metabolite(np.random.default_rng(1), conj=True), {"conc": _water(conj=True)})
    assert any("conjugated" in n for n in res.qc["notes"])
    assert "Conjugation" in [h.method for h in res.metabolite.history]
    a, b = ref.metabolite.spectrum(), res.metabolite.spectrum()
    assert np.corrcoef(a.real, b.real)[0, 1] > 0.999
    assert abs(ref.water.fid[0]) == pytest.approx(abs(res.water.fid[0]), rel=1e-6)


def test_real_data_not_flagged(shared_dir):
    from bidsmrs.io.nifti_mrs import load_nifti_mrs

    for path in sorted((shared_dir / "data" / "real").rglob("*_svs.nii.gz")):
        spec = load_nifti_mrs(path)
        assert not is_conjugated(spec), path
        assert is_conjugated(spec.replace(fid=np.conj(spec.fid))), path


@pytest.mark.parametrize("n_transients", [1, 32])
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_low_snr_conjugated_data_are_detected(n_transients, seed):
    """NAA at about 10× the noise SD of the averaged spectrum, one averaged spectrum or 32
    transients of ≈ 1.8× each, with a 0.2 ppm frequency offset: the summed NAA/tCr/tCho pattern
    (transients averaged coherently first) still decides, and unconjugated data are not flagged."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) * DWELL
    fid = sum(peak_fid(N, DWELL, SF, ppm, amplitude=a, lorentz_hz=4) for ppm, a in
              ((2.008, 1.0), (3.027, 0.8), (3.185, 0.35))) * np.exp(-2j * np.pi * 0.2 * SF * t)
    # NAA height on the average ≈ A/(π·lw·dwell) = 159; its spectral noise SD 0.35·√N ≈ 15.8
    noise = 0.35 * np.sqrt(n_transients)
    data = np.repeat(fid[:, None], n_transients, axis=1) if n_transients > 1 else fid
    tags = ("DIM_DYN",) if n_transients > 1 else ()
    good = make_spectrum(data, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=noise, rng=rng, dim_tags=tags,
                         phase0_deg=70)
    bad = good.replace(fid=np.conj(good.fid))
    assert not is_conjugated(good) and is_conjugated(bad), (conjugation_score(good), conjugation_score(bad))


@pytest.mark.parametrize("centre_ppm", [2.0, 2.5, 3.0])
def test_data_centred_on_the_metabolites_are_not_judged(centre_ppm):
    """With the transmitter on the metabolites the mirror images 2c − δ fall on NAA, lipids or
    water, so the test cannot tell: no score, never flagged (a lipid-rich spectrum centred at
    2.0 ppm scored 2.1 and was wrongly conjugated)."""
    t = np.arange(N) * DWELL
    fid = sum(peak_fid(N, DWELL, SF, ppm, amplitude=a, lorentz_hz=lw) for ppm, a, lw in
              ((2.008, 1.0, 4), (3.027, 0.8, 4), (3.21, 0.4, 4), (1.3, 30.0, 20), (0.9, 10.0, 20), (2.1, 8.0, 20)))
    fid = fid * np.exp(2j * np.pi * (centre_ppm - 4.65) * SF * t)
    spec = make_spectrum(fid, dwell_s=DWELL, spectrometer_mhz=SF, noise_sd=0.01, rng=np.random.default_rng(1),
                         ppm_centre=centre_ppm)
    assert np.isnan(conjugation_score(spec)) and not is_conjugated(spec)
