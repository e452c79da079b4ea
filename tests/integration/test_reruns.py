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


def test_inherited_reference_sidecar_change_reruns(done):
    """RepetitionTime of the references moved to a dataset-level ``acq-press_mrsref.json`` (BIDS
    inheritance) and then changed: every run is recomputed."""
    ds, out = done
    srcs = [naming.src_of(p) for p in naming.find_concentration_tables(out)]
    for ref in ds.ref_paths:
        side = sidecar_path(ref)
        meta = json.loads(side.read_text())
        meta.pop("RepetitionTime", None)
        side.write_text(json.dumps(meta))
    top = ds.root / "acq-press_mrsref.json"
    top.write_text(json.dumps({"RepetitionTime": 6.0}))
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    first = {s: _hash(out, s) for s in srcs}
    top.write_text(json.dumps({"RepetitionTime": 9.0}))
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    assert all(_hash(out, s) != first[s] for s in srcs)


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


def _participants(ds, rows):
    (ds.root / "participants.tsv").write_text("\n".join("\t".join(r) for r in rows) + "\n")


def test_group_level_participants_tsv_problems(tmp_path, capsys):
    """Whitespace around values is not a new group; duplicate rows or no participant_id column
    are one-line input errors; a statistics error writes no group file (no half-updated mix)."""
    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02", "03", "04"))
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    grp = ["--skip-bids-validation", "--no-report", "--group-by", "group", "--qc-max-crlb", "1000", "--qc-min-snr", "0"]
    _participants(ds, [("participant_id", "group"), ("sub-01", "hc"), ("sub-02", " hc "), ("sub-03", "pt"),
                       ("sub-04", "pt ")])
    assert main([str(ds.root), str(out), "group", *grp]) == 0
    stats = (out / "group_desc-stats_svs.tsv").read_text()
    assert " hc " not in stats
    cases = [([("participant_id", "group"), ("sub-01", "hc"), ("sub-01", "pt")], "more than once"),
             ([("subject", "group"), ("sub-01", "hc")], "no participant_id column")]
    for rows, word in cases:
        _participants(ds, rows)
        assert main([str(ds.root), str(out), "group", *grp]) == 65
        err = capsys.readouterr().err.strip().splitlines()
        assert word in err[-1] and "participants.tsv" in err[-1] and "Traceback" not in "\n".join(err)
    # one participant in a group: the tables are written, the statistics of the earlier run removed
    assert (out / "group_desc-stats_svs.tsv").exists()
    _participants(ds, [("participant_id", "group"), ("sub-01", "hc"), ("sub-02", "hc"), ("sub-03", "pt"),
                       ("sub-04", "contorl")])
    assert main([str(ds.root), str(out), "group", *grp]) == 65
    assert "group tables written, but no statistics" in capsys.readouterr().err
    assert not (out / "group_desc-stats_svs.tsv").exists()
    assert (out / "group_desc-concentrations_svs.tsv").exists()


def test_group_level_selects_a_session_for_the_statistics(tmp_path):
    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02", "03", "04"), sessions=("pre", "post"))
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", *BASE]) == 0
    grp = ["--skip-bids-validation", "--no-report", "--group-by", "group", "--qc-max-crlb", "1000", "--qc-min-snr", "0"]
    assert main([str(ds.root), str(out), "group", *grp, "--session-label", "pre"]) == 0
    conc = (out / "group_desc-concentrations_svs.tsv").read_text().splitlines()
    header = conc[0].split("\t")
    sessions = {row.split("\t")[header.index("session")] for row in conc[1:]}
    assert sessions == {"pre"}
    assert (out / "group_desc-stats_svs.tsv").exists()


@pytest.mark.parametrize("damage", ["cut_table", "no_qc", "no_sidecar"])
def test_group_level_leaves_out_damaged_participant_outputs(done, capsys, damage):
    """Outputs are written atomically, so a cut-off table or a missing QC table/sidecar was
    damaged afterwards: the group level warns and leaves that run out rather than reading a
    cut-off row as data."""
    ds, out = done
    table = next(p for p in naming.find_concentration_tables(out) if "sub-02" in p.name)
    src = naming.src_of(table)
    if damage == "cut_table":
        text = table.read_text()
        table.write_text(text[: text.rindex("\t", 0, len(text) - 20)])
    elif damage == "no_qc":
        (out / naming.run_file(src, "qc", ".tsv")).unlink()
    else:
        table.with_suffix(".json").unlink()
    assert main([str(ds.root), str(out), "group", "--skip-bids-validation", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert f"{src}:" in err and "left out of the group tables" in err
    group = (out / "group_desc-concentrations_svs.tsv").read_text()
    assert not any(line.startswith("sub-02") for line in group.splitlines())
    qc = (out / "group_desc-qc_svs.tsv").read_text()
    assert any(line.startswith("sub-02") and "no participant outputs" in line for line in qc.splitlines())


def test_group_level_warns_about_mixed_processing_settings(tmp_path, capsys):
    ds = make_bids_dataset(tmp_path / "ds", subjects=("01", "02"))
    out = tmp_path / "out"
    assert main([str(ds.root), str(out), "participant", *BASE, "--participant-label", "01",
                 "--fit-range", "0.5,4.0"]) == 0
    assert main([str(ds.root), str(out), "participant", *BASE, "--participant-label", "02"]) == 0
    capsys.readouterr()
    assert main([str(ds.root), str(out), "group", "--skip-bids-validation", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "processed with different settings (fit_ppm differ)" in err
    assert main([str(ds.root), str(out), "participant", *BASE, "--participant-label", "01"]) == 0
    capsys.readouterr()
    assert main([str(ds.root), str(out), "group", "--skip-bids-validation", "--no-report"]) == 0
    assert "different settings" not in capsys.readouterr().err


def test_wide_group_tables_describe_every_column(done):
    ds, out = done
    assert main([str(ds.root), str(out), "group", "--skip-bids-validation", "--no-report"]) == 0
    for measure in ("ratio_tcr", "conc_tissue_corrected_mM"):
        tsv = out / naming.wide_group_file(measure)
        side = json.loads(tsv.with_suffix(".json").read_text())
        columns = tsv.read_text().splitlines()[0].split("\t")
        assert all(c in side for c in columns), [c for c in columns if c not in side]
        assert "tNAA" in side and side["tNAA"]["Units"] == ("ratio" if measure == "ratio_tcr" else "mM")
