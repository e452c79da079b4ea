"""Reruns on an existing OUTPUT_DIR: results follow the inputs, never outlive them."""
from __future__ import annotations

import json

import pytest

from bidsmrs.cli import main
from bidsmrs.outputs import naming
from tests.bidsfixtures import make_bids_dataset, sidecar_path

BASE = ["--skip-bids-validation", "--tissue-fractions", "0.6", "0.4", "0.0", "--no-report", "--nprocs", "1"]


def _hash(out, src):
    return json.loads((out / naming.run_file(src, "concentrations", ".json")).read_text())["InputHash"]


@pytest.fixture
def done(tmp_path):
    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02"))
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    return ds, out


def test_reference_sidecar_change_reruns_that_run_only(done):
    ds, out = done
    srcs = [naming.src_of(p) for p in naming.find_concentration_tables(out)]
    before = {s: _hash(out, s) for s in srcs}
    ref = next(p for p in ds.ref_paths if "sub-02" in p.name)
    side = sidecar_path(ref)
    meta = json.loads(side.read_text())
    meta["RepetitionTime"] = 6.0  # enters the water's saturation correction
    side.write_text(json.dumps(meta))
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    after = {s: _hash(out, s) for s in srcs}
    changed = {s for s in srcs if before[s] != after[s]}
    assert changed == {s for s in srcs if s.startswith("sub-02")}


def test_a_run_that_now_fails_leaves_no_stale_results_and_failures_follow_the_state(done):
    ds, out = done
    svs = next(p for p in ds.svs_paths if "sub-02" in p.name)
    good = svs.read_bytes()
    src = svs.name.split("_svs")[0]
    table = out / naming.run_file(src, "concentrations", ".tsv")
    assert table.exists()
    svs.write_bytes(b"not a NIfTI file")
    assert main([str(ds.root), str(out), "participant", *BASE]) == 1
    assert not table.exists()  # the group level cannot pick up results of the old data
    assert not list(table.parent.glob(f"{src}_desc-*"))
    failures = (out / "logs" / "failures.tsv").read_text()
    assert "sub-02" in failures and "sub-01" not in failures
    # group level sees sub-02 as missing, not as data
    main([str(ds.root), str(out), "group", "--skip-bids-validation", "--no-report"])
    group = (out / "group_desc-concentrations_svs.tsv").read_text()
    assert "sub-02" not in group and "sub-01" in group
    # fixed: the failure record goes, the results come back
    svs.write_bytes(good)
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    assert table.exists()
    assert not (out / "logs" / "failures.tsv").exists()


def test_failures_of_participants_not_rerun_are_kept(done):
    ds, out = done
    svs = next(p for p in ds.svs_paths if "sub-02" in p.name)
    svs.write_bytes(b"not a NIfTI file")
    assert main([str(ds.root), str(out), "participant", *BASE]) == 1
    assert main([str(ds.root), str(out), "participant", "--participant-label", "01", *BASE]) == 0
    assert "sub-02" in (out / "logs" / "failures.tsv").read_text()
