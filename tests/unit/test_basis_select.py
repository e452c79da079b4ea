"""default_basis: sequence detection, timings, InputErrors naming options, the npz cache."""
from __future__ import annotations

import os

import numpy as np
import pytest

from bidsmrs.basis.select import default_basis, detect_sequence, resolve_timing
from bidsmrs.errors import InputError

GRID = dict(spectrometer_mhz=127.75, dwell_s=5e-4, n_points=512)
MINI = ["Cr", "NAA", "Lac"]


@pytest.mark.parametrize("sidecar,entities,expected", [
    ({"PulseSequenceType": "PRESS"}, None, ("press", "PulseSequenceType")),
    ({"PulseSequenceType": "STEAM"}, None, ("steam", "PulseSequenceType")),
    ({"PulseSequenceType": "sLASER"}, None, ("slaser", "PulseSequenceType")),
    ({"PulseSequenceType": "semi-LASER"}, None, ("slaser", "PulseSequenceType")),
    ({"PulseSequenceType": "LASER"}, None, ("laser", "PulseSequenceType")),
    ({"SequenceName": "svs_st"}, None, ("steam", "SequenceName")),
    ({"SequenceName": "svs_se"}, None, ("press", "SequenceName")),
    ({"SequenceName": "PROBE-P"}, None, ("press", "SequenceName")),
    ({"SequenceName": "eja_svs_slaser"}, None, ("slaser", "SequenceName")),
    ({}, {"acquisition": "press"}, ("press", "acq entity")),
    ({}, {"acq": "slaser"}, ("slaser", "acq entity")),
])
def test_detect_sequence(sidecar, entities, expected):
    assert detect_sequence(None, sidecar, entities) == expected


def test_detect_sequence_override_and_errors():
    assert detect_sequence("steam", {"PulseSequenceType": "PRESS"})[0] == "steam"
    with pytest.raises(InputError, match="--sequence"):
        detect_sequence(None, {}, {})
    with pytest.raises(InputError, match="--sequence"):
        detect_sequence(None, {"PulseSequenceType": "FOO"}, {"acquisition": "conc"})
    with pytest.raises(InputError, match="--basis"):
        detect_sequence(None, {"PulseSequenceType": "MEGA-PRESS"})
    with pytest.raises(InputError, match="unknown --sequence"):
        detect_sequence("fse", {})


def test_resolve_timing_press():
    t = resolve_timing("press", 0.03)
    assert (t["te1_s"], t["te2_s"], t["te_split"]) == (0.015, 0.015, "default-symmetric")
    t = resolve_timing("press", 0.03, sidecar={"PulseSequenceTiming": [0.011, 0.019]})
    assert (t["te1_s"], t["te2_s"], t["te_split"]) == (0.011, 0.019, "PulseSequenceTiming")
    t = resolve_timing("press", 0.03, te1_s=0.012)
    assert t["te2_s"] == pytest.approx(0.018)
    with pytest.raises(InputError, match="--te1"):
        resolve_timing("press", 0.03, te1_s=0.02, te2_s=0.02)
    with pytest.raises(InputError, match="milliseconds"):
        resolve_timing("press", 30.0)


def test_resolve_timing_steam_and_slaser():
    with pytest.raises(InputError, match="--tm"):
        resolve_timing("steam", 0.011, sidecar={})
    assert resolve_timing("steam", 0.011, sidecar={"MixingTime": 0.032})["mixing_time_s"] == 0.032
    assert resolve_timing("steam", 0.011, mixing_time_s=0.02)["mixing_time_s"] == 0.02
    d = resolve_timing("slaser", 0.04)["delays_s"]
    assert d == pytest.approx([0.005, 0.01, 0.01, 0.01, 0.005])
    assert len(resolve_timing("laser", 0.06)["delays_s"]) == 7


def test_default_basis_includes_mm_and_matches_grid():
    b = default_basis(**GRID, echo_time_s=0.035, sidecar={"PulseSequenceType": "PRESS"},
                      metabolites=MINI)
    assert b.names == ("Cr", "NAA", "Lac", "MM09", "MM12", "MM14", "MM17", "MM20", "MM22", "MM30")
    assert b.is_macromolecule == (False,) * 3 + (True,) * 7
    assert (b.n_points, b.dwell_s, b.spectrometer_mhz) == (512, 5e-4, 127.75)
    assert b.meta["sequence"] == "press" and b.meta["te_split"] == "default-symmetric"
    assert b.fids[0, 0] == pytest.approx(5.0)
    with pytest.raises(InputError, match="--tm"):
        default_basis(**GRID, echo_time_s=0.011, sidecar={"PulseSequenceType": "STEAM"})


def test_cache_hit_is_identical_and_keyed(tmp_path):
    kw = dict(GRID, echo_time_s=0.03, sequence="press", te1_s=0.011, te2_s=0.019,
              metabolites=MINI, cache_dir=tmp_path)
    first = default_basis(**kw)
    files = list(tmp_path.glob("bidsmrs-basis-*.npz"))
    assert len(files) == 1 and first.meta["cache"]["status"] == "miss"
    again = default_basis(**kw)
    assert again.meta["cache"]["status"] == "hit"
    np.testing.assert_array_equal(again.fids, first.fids)
    assert again.names == first.names and again.is_macromolecule == first.is_macromolecule
    assert again.dwell_s == first.dwell_s and again.spectrometer_mhz == first.spectrometer_mhz
    other = default_basis(**dict(kw, te1_s=0.015, te2_s=0.015))
    assert len(list(tmp_path.glob("bidsmrs-basis-*.npz"))) == 2
    assert not np.allclose(other.fids[:, 2], first.fids[:, 2])  # Lac depends on TE1/TE2
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # no temporary leftovers
    # a corrupt cache file is ignored and replaced
    files[0].write_bytes(b"garbage")
    fixed = default_basis(**kw)
    assert fixed.meta["cache"]["status"] == "miss"
    np.testing.assert_array_equal(fixed.fids, first.fids)
    assert default_basis(**kw).meta["cache"]["status"] == "hit"


def test_shaped_refocusing_is_part_of_the_cache_key(tmp_path):
    from bidsmrs.basis.sequences import PulseShape

    kw = dict(GRID, echo_time_s=0.03, sequence="press", te1_s=0.011, te2_s=0.019,
              metabolites=["Lac"], include_macromolecules=False, cache_dir=tmp_path)
    ideal = default_basis(**kw)
    shaped = default_basis(**kw, refocusing=PulseShape("sinc", 5.2e-3, 1200.0, 100),
                           n_positions=9)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not np.allclose(ideal.fids, shaped.fids)
    again = default_basis(**kw, refocusing=PulseShape("sinc", 5.2e-3, 1200.0, 100), n_positions=9)
    assert again.meta["cache"]["status"] == "hit"
    np.testing.assert_array_equal(again.fids, shaped.fids)


def test_timing_from_sidecar_lists_and_bad_values():
    assert resolve_timing("steam", 0.011, sidecar={"MixingTime": [0.03]})["mixing_time_s"] == 0.03
    with pytest.raises(InputError, match="--tm"):
        resolve_timing("steam", 0.011, sidecar={"MixingTime": "thirty"})
    good = [0.005, 0.01, 0.01, 0.01, 0.005]
    assert resolve_timing("slaser", 0.04, sidecar={"PulseSequenceTiming": good})["delays_s"] == good
    bad = [0.01, 0.01, 0.01, 0.005, 0.005]  # sums to TE but forms no echo: equal spacing used
    assert resolve_timing("slaser", 0.04, sidecar={"PulseSequenceTiming": bad})["delays_s"] == \
        pytest.approx(good)
