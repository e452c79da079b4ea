"""Group-level selection of spectra by session, acquisition and run (same request as participant level)."""
import dataclasses

import pandas as pd

from bidsmrs.group import _select
from bidsmrs.settings import Settings


def test_select_by_session_acquisition_and_run(tmp_path):
    table = pd.DataFrame({"participant_id": ["sub-01"] * 4, "session": ["pre", "pre", "post", "post"],
                          "acquisition": ["press", "acc", "press", "press"], "run": ["n/a", "n/a", "01", "02"],
                          "metabolite": "tNAA"})
    base = Settings(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="group")
    assert len(_select(table, base)) == 4
    s = dataclasses.replace(base, session_labels=("post",))
    assert set(_select(table, s)["session"]) == {"post"}
    s = dataclasses.replace(base, bids_filters={"svs": {"acquisition": "press"}})
    assert list(_select(table, s)["acquisition"]) == ["press"] * 3
    s = dataclasses.replace(base, bids_filters={"acquisition": "acc"})  # a flat filter means svs
    assert list(_select(table, s)["session"]) == ["pre"]
    s = dataclasses.replace(base, bids_filters={"svs": {"run": 2}})
    assert list(_select(table, s)["run"]) == ["02"]
    s = dataclasses.replace(base, bids_filters={"svs": {"run": 1.0}})
    assert list(_select(table, s)["run"]) == ["01"]
    s = dataclasses.replace(base, bids_filters={"bold": {"task": "rest"}})  # not about MRS: everything
    assert len(_select(table, s)) == 4
