"""Parametrised macromolecule components."""
from __future__ import annotations

import numpy as np
import pytest

from bidsmrs.basis.core import Basis
from bidsmrs.basis.macromolecules import MM_COMPONENTS, mm_fid, with_macromolecules
from bidsmrs.simulate import peak_fid


def _base():
    fid = peak_fid(2048, 2.5e-4, 123.2, 2.008, amplitude=3.0, lorentz_hz=0.0)
    return Basis(names=("NAA",), fids=fid[:, None], dwell_s=2.5e-4, spectrometer_mhz=123.2)


def test_components_positions_widths_and_amplitudes():
    b = with_macromolecules(_base())
    assert b.names == ("NAA", "MM09", "MM12", "MM14", "MM17", "MM20", "MM22", "MM30")
    assert b.is_macromolecule == (False,) + (True,) * 7
    n = 16 * b.n_points
    ppm = b.ppm_centre - np.fft.fftshift(np.fft.fftfreq(n, b.dwell_s)) / b.spectrometer_mhz
    for name, centre in (("MM09", 0.91), ("MM12", 1.21), ("MM14", 1.43), ("MM17", 1.67),
                         ("MM20", 2.08), ("MM22", 2.25), ("MM30", 3.00)):
        fid = b.fids[:, b.index(name)]
        assert fid[0].real == pytest.approx(sum(ln.amplitude for ln in MM_COMPONENTS[name]))
        spec = np.fft.fftshift(np.fft.fft(fid, n)).real
        assert ppm[np.argmax(spec)] == pytest.approx(centre, abs=0.005)
    # MM09 FWHM 0.14 ppm
    spec = np.fft.fftshift(np.fft.fft(b.fids[:, b.index("MM09")], n)).real
    above = ppm[spec >= spec.max() / 2]
    assert above.max() - above.min() == pytest.approx(0.14, abs=0.005)


def test_idempotent_and_subset():
    b = with_macromolecules(with_macromolecules(_base()))
    assert len(b.names) == 8
    s = with_macromolecules(_base(), names=["MM09"])
    assert s.names == ("NAA", "MM09")
    with pytest.raises(KeyError):
        with_macromolecules(_base(), names=["MM99"])


def test_gaussian_fid_shape():
    fid = mm_fid(MM_COMPONENTS["MM12"], 256, 1e-3, 123.2)
    t = np.arange(256) * 1e-3
    w = 0.15 * 123.2
    np.testing.assert_allclose(np.abs(fid), 2.0 * np.exp(-(np.pi * w * t) ** 2 / (4 * np.log(2))),
                               atol=1e-12)
