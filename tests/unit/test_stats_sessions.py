"""Collapsing repeated spectra and joining participant attributes."""
import numpy as np
import pandas as pd
import pytest

from bidsmrs.errors import InputError, UsageError
from bidsmrs.stats.sessions import (add_spectrum_columns, collapse_repeats, collapse_tissue, column_kind,
                                    join_participants)


def _conc():
    # sub-01: ses 1 (runs 1, 2), ses 10, ses 2; sub-02: ses 1 run 1 excluded, run 2 included
    rows = [("01", "1", "1", 1.0, True), ("01", "1", "2", 3.0, True), ("01", "10", "1", 100.0, True),
            ("01", "2", "1", 20.0, True), ("02", "1", "1", 50.0, False), ("02", "1", "2", 7.0, True),
            ("02", "2", "1", 9.0, True)]
    return pd.DataFrame([{"participant_id": f"sub-{s}", "session": ses, "acquisition": "press",
                          "volume": "dacc", "run": run, "metabolite": "Glx", "conc_tissue_corrected_mM": v,
                          "flag": "ok", "included": inc} for s, ses, run, v, inc in rows])


def test_first_session_mean_runs():
    out = collapse_repeats(_conc()).set_index("participant_id")
    assert out.loc["sub-01", "conc_tissue_corrected_mM"] == 2.0  # mean of runs 1 and 2 of ses-1
    assert out.loc["sub-01", "session"] == "1" and out.loc["sub-01", "n_spectra"] == 2
    assert out.loc["sub-02", "conc_tissue_corrected_mM"] == 7.0  # excluded run 1 dropped
    assert "flag" not in out.columns and "run" not in out.columns


def test_first_run_and_all_and_mean_sessions():
    first = collapse_repeats(_conc(), runs="first").set_index("participant_id")
    assert first.loc["sub-01", "conc_tissue_corrected_mM"] == 1.0
    assert first.loc["sub-02", "conc_tissue_corrected_mM"] == 7.0  # first *included* run
    every = collapse_repeats(_conc(), sessions="all")
    sub1 = every[every.participant_id == "sub-01"]
    assert sub1["session"].tolist() == ["1", "2", "10"]  # natural order
    assert sub1["conc_tissue_corrected_mM"].tolist() == [2.0, 20.0, 100.0]
    mean = collapse_repeats(_conc(), sessions="mean").set_index("participant_id")
    assert mean.loc["sub-01", "conc_tissue_corrected_mM"] == pytest.approx((2.0 + 20.0 + 100.0) / 3)
    assert mean.loc["sub-01", "n_spectra"] == 4
    assert mean.loc["sub-01", "session"] == "1;2;10"


def test_first_session_skips_a_session_without_included_values():
    conc = _conc()
    conc.loc[(conc.participant_id == "sub-01") & (conc.session == "1"), "included"] = False
    out = collapse_repeats(conc).set_index("participant_id")
    assert out.loc["sub-01", "session"] == "2" and out.loc["sub-01", "conc_tissue_corrected_mM"] == 20.0


def test_acquisitions_are_not_pooled_and_bad_modes_raise():
    conc = pd.concat([_conc(), _conc().assign(volume="pcc", conc_tissue_corrected_mM=0.0)])
    out = collapse_repeats(conc)
    assert len(out) == 4 and set(out.volume) == {"dacc", "pcc"}
    with pytest.raises(UsageError, match="sessions"):
        collapse_repeats(conc, sessions="last")
    with pytest.raises(UsageError, match="runs"):
        collapse_repeats(conc, runs="median")


def test_add_spectrum_columns_matches_entities_and_is_averaged():
    tissue = pd.DataFrame({"participant_id": ["01", "01"], "session": [1.0, 1.0], "acquisition": "press",
                           "volume": "dacc", "run": [1, 2], "gm_fraction": [0.4, 0.6]})
    conc = add_spectrum_columns(_conc(), tissue, ["gm_fraction"])
    out = collapse_repeats(conc).set_index("participant_id")
    assert out.loc["sub-01", "gm_fraction"] == pytest.approx(0.5)
    assert np.isnan(out.loc["sub-02", "gm_fraction"])
    with pytest.raises(InputError, match="wm_fraction.*available columns"):
        add_spectrum_columns(_conc(), tissue, ["wm_fraction"])


def test_column_kinds():
    assert column_kind(pd.Series(["31", "n/a", "40.5"]), "age") == "numeric"
    assert column_kind(pd.Series(["M", "F", "F", "n/a", "M"]), "sex") == "categorical"
    with pytest.raises(InputError, match="notes.*neither numeric nor categorical"):
        column_kind(pd.Series([f"comment {i}" for i in range(12)]), "notes")


def test_join_participants_prefix_and_errors():
    values = pd.DataFrame({"participant_id": ["01", "sub-02"], "metabolite": "Glx", "value": [1.0, 2.0]})
    participants = pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "age": ["30", "n/a"],
                                 "sex": ["M", "F"]})
    table, kinds = join_participants(values, participants, ["age", "sex"])
    assert table["participant_id"].tolist() == ["sub-01", "sub-02"]
    assert table["age"].tolist()[0] == 30.0 and np.isnan(table["age"].tolist()[1])
    assert kinds == {"age": "numeric", "sex": "categorical"}
    with pytest.raises(InputError, match="unknown column.*diagnosis.*available columns: age, sex"):
        join_participants(values, participants, ["diagnosis"])
    with pytest.raises(InputError, match="participants.tsv is missing"):
        join_participants(values, None, ["age"])
    with pytest.raises(InputError, match="sub-01 more than once"):
        join_participants(values, pd.concat([participants, participants]), ["age"])


def test_all_missing_measure_stays_a_column_and_empty_attribute_is_an_error():
    conc = _conc().assign(conc_raw_water_mM="n/a")
    out = collapse_repeats(conc)
    assert "conc_raw_water_mM" in out.columns and out["conc_raw_water_mM"].isna().all()
    with pytest.raises(InputError, match="'age' has no values"):
        column_kind(pd.Series(["n/a", np.nan]), "age")


def test_included_read_back_from_tsv_as_text():
    conc = _conc()
    conc["included"] = conc["included"].map({True: "true", False: "false"})
    out = collapse_repeats(conc).set_index("participant_id")
    assert out.loc["sub-02", "conc_tissue_corrected_mM"] == 7.0


def test_measure_becomes_value_and_tissue_collapses_per_participant():
    conc = _conc().assign(conc_raw_water_mM=1.0)
    conc.loc[0, "conc_tissue_corrected_mM"] = np.nan  # sub-01 ses-1 run 1 has no value
    out = collapse_repeats(conc, measure="conc_tissue_corrected_mM").set_index("participant_id")
    assert out.loc["sub-01", "value"] == 3.0 and out.loc["sub-01", "n_spectra"] == 1
    assert "conc_raw_water_mM" in out.columns
    with pytest.raises(InputError, match="unknown measure 'flag'"):
        collapse_repeats(conc, measure="flag")
    tissue = _conc().drop(columns=["metabolite", "conc_tissue_corrected_mM"]).assign(gm_fraction=0.5)
    per_participant = collapse_tissue(tissue)
    assert per_participant["participant_id"].tolist() == ["sub-01", "sub-02"]
    assert per_participant["gm_fraction"].tolist() == [0.5, 0.5]
    with pytest.raises(InputError, match="several acquisitions/volumes"):
        collapse_tissue(pd.concat([tissue, tissue.assign(volume="pcc")]))
