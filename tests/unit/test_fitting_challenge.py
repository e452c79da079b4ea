"""Regression on the ISMRM fitting challenge datasets 1–10 and the creatine water-scaling test.

Needs ``/work/shared`` (located relative to the project root); skipped when absent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CHALLENGE = SHARED / "data" / "mrs_fitting_challenge"

pytestmark = pytest.mark.skipif(not (CHALLENGE / "datasets_text").is_dir() or not (SHARED / "bench").is_dir(),
                                reason=f"challenge data/truth not found under {SHARED}")


@pytest.fixture(scope="module")
def basis():
    from benchmarks.challenge import load_challenge_basis

    return load_challenge_basis(SHARED)


def test_challenge_basis_convention(basis):
    """Cr at 3.027 ppm without conjugation; FID(0) ≈ protons (Cr: 5) after removing the 0 ppm reference."""
    from bidsmrs.spectrum import to_spectrum

    k = basis.index("Cr")
    spec = to_spectrum(basis.fids[:, k])
    ppm = basis.ppm
    sel = (ppm > 2.9) & (ppm < 3.2)
    assert abs(ppm[sel][np.argmax(spec[sel].real)] - 3.027) < 0.02
    assert abs(basis.fids[0, k]) == pytest.approx(5.0, abs=0.02)
    near0 = np.abs(ppm) < 0.1
    assert np.max(np.abs(spec[near0])) < 0.05 * np.max(np.abs(spec))


def test_datasets_1_to_10_combined_metabolites(basis):
    from benchmarks.challenge import run

    ours, fsl, cr, _ = run(SHARED, range(1, 11), verbose=False)
    # Loose regression bounds (measured 2026-11-22: per_high 3.0, per_all 15.9, mm_all 0.31;
    # the noise floor of per_high is ≈ 2.7, see benchmarks/RESULTS_fitting.md).
    assert ours["per_high"] <= 4.0
    assert ours["per_all"] <= 18.0
    assert ours["mm_all"] <= 0.36
    assert ours["mm_all"] < fsl["mm_all"] and ours["per_all"] < fsl["per_all"]
    assert cr == pytest.approx(10.8, abs=0.2)


def test_expected_error_floor_oracle_below_full_model():
    """The Cramér–Rao expectation with every non-linear parameter known (oracle) is below the
    full model's, and both sit near the measured errors (RESULTS_fitting.md: oracle per_high
    2.08 %, full 2.73 %, measured 3.0 %): the benchmark's floor is computed consistently."""
    from benchmarks.challenge import expected_error_floor

    floor = expected_error_floor(SHARED, range(1, 11), verbose=False)
    for key in ("mm_all", "per_all", "per_high"):
        assert 0 < floor["oracle"][key] < floor["full"][key], key
    assert 1.5 < floor["oracle"]["per_high"] < floor["full"]["per_high"] < 4.0
