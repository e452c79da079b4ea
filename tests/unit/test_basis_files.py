"""Basis file readers/writers: formats, conventions (ppm direction, scaling, reference peak)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bidsmrs.basis.core import Basis
from bidsmrs.errors import InputError
from bidsmrs.io.basis_files import load_basis, parse_namelists, save_basis, write_lcmodel_basis
from bidsmrs.simulate import peak_fid

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CHALLENGE = SHARED / "data" / "mrs_fitting_challenge" / "basisset_LCModel"


def _need_challenge():
    if not (CHALLENGE / "press3T_30ms.BASIS").exists():
        pytest.skip(f"challenge basis not found under {CHALLENGE}")


def _peak_ppm(basis: Basis, name: str, lo: float, hi: float, zf: int = 16) -> float:
    fid = basis.fids[:, basis.index(name)]
    n = zf * basis.n_points
    spec = np.fft.fftshift(np.fft.fft(fid, n))
    ppm = basis.ppm_centre - np.fft.fftshift(np.fft.fftfreq(n, basis.dwell_s)) / basis.spectrometer_mhz
    sel = (ppm > lo) & (ppm < hi)
    return float(ppm[sel][np.argmax(spec.real[sel])])


@pytest.fixture(scope="module")
def challenge_basis():
    _need_challenge()
    return load_basis(CHALLENGE / "press3T_30ms.BASIS")


@pytest.fixture(scope="module")
def challenge_raw():
    _need_challenge()
    return load_basis(CHALLENGE)


def test_basis_file_peaks_at_literature_ppm(challenge_basis):
    b = challenge_basis
    assert b.dwell_s == pytest.approx(0.00025, rel=1e-6)
    assert b.spectrometer_mhz == pytest.approx(123.2617, rel=1e-6)
    assert b.n_points == 2048  # makebasis zero-filling (NDATAB 4096) dropped
    assert _peak_ppm(b, "Cr", 2.9, 3.1) == pytest.approx(3.027, abs=0.004)
    assert _peak_ppm(b, "Cr", 3.8, 4.0) == pytest.approx(3.913, abs=0.004)
    assert _peak_ppm(b, "NAA", 1.9, 2.1) == pytest.approx(2.008, abs=0.004)
    assert b.meta["conjugated"] is False
    assert b.is_macromolecule[b.index("Mac")] and not b.is_macromolecule[b.index("Cr")]


def test_reference_peak_removed_and_amplitude_convention(challenge_basis):
    b = challenge_basis
    # the challenge files carry a 0.1-proton reference singlet at 0 ppm (Cr FID(0) = 5.1)
    assert b.meta["reference_removed"]["Cr"] == pytest.approx(0.1, abs=0.002)
    assert b.fids[0, b.index("Cr")].real == pytest.approx(5.0, abs=0.01)
    assert b.fids[0, b.index("sIns")].real == pytest.approx(6.0, abs=0.01)
    spec = np.fft.fftshift(np.fft.fft(b.fids[:, b.index("Cr")]))
    sel = np.abs(b.ppm) < 0.2
    x = b.ppm[sel]
    for part in (spec[sel].real, spec[sel].imag):  # smooth (truncation tails only), no peak
        resid = part - np.polyval(np.polyfit(x, part, 2), x)
        assert np.max(np.abs(resid)) < 1.0  # the reference peak was ~63 high
    kept = load_basis(CHALLENGE / "press3T_30ms.BASIS", strip_reference=False)
    assert kept.fids[0, kept.index("Cr")].real == pytest.approx(5.1, abs=1e-3)


def test_basis_and_raw_agree(challenge_basis, challenge_raw):
    for name in challenge_basis.names:
        x = challenge_basis.fids[:, challenge_basis.index(name)]
        y = challenge_raw.fids[:, challenge_raw.index(name)]
        assert np.linalg.norm(x - y) / np.linalg.norm(y) < 1e-4, name
    assert challenge_raw.dwell_s == pytest.approx(challenge_basis.dwell_s)  # from .BASIS beside


def test_lcmodel_round_trip(tmp_path, challenge_raw):
    sub = challenge_raw.subset(["Cr", "NAA", "Mac"])
    out = write_lcmodel_basis(sub, tmp_path / "x.BASIS", echo_time_ms=30)
    back = load_basis(out, strip_reference=False)
    assert back.names == sub.names
    assert back.n_points == sub.n_points
    np.testing.assert_allclose(back.fids, sub.fids, atol=1e-6 * np.abs(sub.fids).max())
    assert back.meta["echo_time_s"] == pytest.approx(0.030)
    assert back.is_macromolecule == (False, False, True)


def test_bidsmrs_round_trip(tmp_path):
    fid = peak_fid(512, 2.5e-4, 123.2, 2.008, amplitude=3.0)
    b = Basis(names=("NAA", "MM09"), fids=np.stack([fid, 0.5 * fid], 1), dwell_s=2.5e-4,
              spectrometer_mhz=123.2, meta={"source": "simulated", "echo_time_s": 0.03})
    save_basis(b, tmp_path / "b")
    back = load_basis(tmp_path / "b")
    np.testing.assert_array_equal(back.fids, b.fids)
    assert back.names == b.names and back.is_macromolecule == (False, True)
    assert back.meta["echo_time_s"] == 0.03


def _write_fsl(d: Path, name: str, fid: np.ndarray, mm: bool = False):
    obj = {"basis": {"basis_re": fid.real.tolist(), "basis_im": fid.imag.tolist(),
                     "basis_dwell": 2.5e-4, "basis_centre": 123.2, "basis_width": 1.0,
                     "basis_name": name}}
    if mm:
        obj["MM"] = {}
    (d / f"{name}.json").write_text(json.dumps(obj))


def test_fsl_directory_and_conjugation_detection(tmp_path):
    cr = peak_fid(1024, 2.5e-4, 123.2, 3.027, amplitude=3.0) + peak_fid(
        1024, 2.5e-4, 123.2, 3.913, amplitude=2.0)
    d1 = tmp_path / "fsl"
    d1.mkdir()
    _write_fsl(d1, "Cr", cr)
    _write_fsl(d1, "MMexp", 0.1 * cr, mm=True)
    b = load_basis(d1)
    assert b.names == ("Cr", "MMexp") and b.is_macromolecule == (False, True)
    assert b.spectrometer_mhz == 123.2 and b.meta["conjugated"] is False
    assert _peak_ppm(b, "Cr", 2.9, 3.1) == pytest.approx(3.027, abs=0.003)
    d2 = tmp_path / "fsl_conj"
    d2.mkdir()
    _write_fsl(d2, "Cr", np.conj(cr))
    b2 = load_basis(d2)
    assert b2.meta["conjugated"] is True
    assert _peak_ppm(b2, "Cr", 2.9, 3.1) == pytest.approx(3.027, abs=0.003)
    b3 = load_basis(d2, conjugate=False)
    assert _peak_ppm(b3, "Cr", 6.0, 6.5) == pytest.approx(2 * 4.65 - 3.027, abs=0.003)


def test_raw_without_grid_needs_arguments(tmp_path):
    _need_challenge()
    (tmp_path / "Cr.RAW").write_text((CHALLENGE / "Cr.RAW").read_text())
    with pytest.raises(InputError, match="dwell_s"):
        load_basis(tmp_path)
    b = load_basis(tmp_path, dwell_s=0.00025, spectrometer_mhz=123.2)
    assert b.names == ("Cr",) and b.n_points == 2048


def test_unreadable_inputs_raise_one_line_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_basis(tmp_path / "missing.BASIS")
    bad = tmp_path / "junk.BASIS"
    bad.write_text("hello\n")
    with pytest.raises(InputError) as ei:
        load_basis(bad)
    assert "junk.BASIS" in str(ei.value) and "\n" not in str(ei.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no basis"):
        load_basis(tmp_path / "empty")
    j = tmp_path / "fsl"
    j.mkdir()
    (j / "x.json").write_text('{"a": 1}')
    with pytest.raises(InputError, match="basis_re"):
        load_basis(j)
    dup = tmp_path / "dup"
    dup.mkdir()
    fid = peak_fid(256, 2.5e-4, 123.2, 3.0)
    _write_fsl(dup, "Cr", fid)
    (dup / "Cr2.json").write_text((dup / "Cr.json").read_text())  # same basis_name twice
    with pytest.raises(InputError, match="duplicate"):
        load_basis(dup)


def test_namelist_parser_handles_strings_and_arrays():
    text = " $SEQPAR\n HZPPPM = 123.2, SEQ = 'PRESS ''x''', ECHOT = 3.0D1\n $END\n" \
           " $NMUSED PPMAPP = 0.1 -0.4, AUTOSC = F $END 1 2 3 4"
    (n1, kv1, _), (n2, kv2, data) = parse_namelists(text)
    assert n1 == "SEQPAR" and kv1["HZPPPM"] == 123.2 and kv1["SEQ"] == "PRESS 'x'"
    assert kv1["ECHOT"] == 30.0
    assert kv2["PPMAPP"] == [0.1, -0.4] and kv2["AUTOSC"] is False
    assert data.split() == ["1", "2", "3", "4"]
