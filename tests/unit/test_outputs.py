"""Output naming and table writing (DESIGN.md §3)."""
from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest

from bidsmrs.outputs import naming
from bidsmrs.outputs.dataset import dataset_description, write_dataset_files
from bidsmrs.outputs.tables import format_tsv, read_tsv, write_tsv


def test_naming_doctests():
    result = doctest.testmod(naming)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("src,expected", [
    ("sub-01_acq-press", "sub-01/mrs/sub-01_acq-press_desc-qc_svs.tsv"),
    ("sub-01_ses-pre_acq-press_voi-dacc_run-2", "sub-01/ses-pre/mrs/sub-01_ses-pre_acq-press_voi-dacc_run-2_desc-qc_svs.tsv"),
])
def test_run_file(src, expected):
    assert naming.run_file(src, "qc", ".tsv").as_posix() == expected


@pytest.mark.parametrize("bad", ["sub-../x", "../sub-01", "sub-01/../../etc", "sub-01_acq-a/b"])
def test_paths_cannot_escape(bad):
    with pytest.raises(ValueError):
        naming.run_file(bad, "qc", ".tsv")


def test_src_round_trip():
    ents = {"sub": "01", "ses": "1", "acq": "press", "run": "2"}
    src = naming.build_src({"run": "2", "acq": "press", "sub": "01", "ses": "1"})
    assert src == "sub-01_ses-1_acq-press_run-2"
    assert naming.parse_src(src) == ents


def test_tsv_na_and_format(tmp_path):
    df = pd.DataFrame({"metabolite": ["NAA", "Lac"], "value": [1.23456789, np.nan], "ok": [True, False]})
    text = format_tsv(df)
    assert text.splitlines() == ["metabolite\tvalue\tok", "NAA\t1.23457\ttrue", "Lac\tn/a\tfalse"]
    write_tsv(tmp_path / "x.tsv", df, {"value": {"Units": "mM"}})
    back = read_tsv(tmp_path / "x.tsv")
    assert np.isnan(back.loc[1, "value"]) and back.loc[0, "metabolite"] == "NAA"
    assert json.loads((tmp_path / "x.json").read_text())["value"]["Units"] == "mM"


def test_dataset_files_idempotent(tmp_path):
    bids, out = tmp_path / "ds", tmp_path / "ds" / "derivatives" / "bidsmrs"
    write_dataset_files(bids, out)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    write_dataset_files(bids, out)
    assert first == {p.name: p.read_bytes() for p in out.iterdir()}
    desc = dataset_description(bids, out)
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "bidsmrs"
    assert desc["DatasetLinks"]["raw"] == "../.."


def test_table_never_exists_without_its_sidecar(tmp_path, monkeypatch):
    """The concentrations TSV marks a finished run, so it is written after its sidecar (hash)."""
    from bidsmrs.outputs import tables

    def interrupted(path, text):
        raise KeyboardInterrupt  # as if the process were stopped between the two writes

    monkeypatch.setattr(tables, "atomic_write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_tsv(tmp_path / "x.tsv", pd.DataFrame({"a": [1]}), {"InputHash": "abc"})
    assert (tmp_path / "x.json").exists() and not (tmp_path / "x.tsv").exists()
