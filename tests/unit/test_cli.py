"""The command-line contract (DESIGN.md §2): parser, checks, exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bidsmrs import __version__
from bidsmrs.cli import EXIT_USAGE, build_parser, main, parse_args


def _dataset(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0"}))
    return root


def test_parser_is_pure_and_strips_prefixes():
    opts = build_parser().parse_args(["/nonexistent", "/out", "participant", "--participant-label", "sub-01", "02",
                                      "--session-label", "ses-pre"])
    assert opts.participant_labels == ["01", "02"]
    assert opts.session_labels == ["pre"]


@pytest.mark.parametrize("alias", ["--participant-label", "--participant_label"])
def test_participant_label_aliases(alias):
    opts = build_parser().parse_args(["/d", "/o", "group", alias, "01"])
    assert opts.participant_labels == ["01"]


@pytest.mark.parametrize("argv", [
    ["/d", "/o", "sideways"],                                   # bad analysis level
    ["/d", "/o", "participant", "--participant-label", "../x"],  # path trick in a label
    ["/d", "/o", "participant", "--tissue-fractions", "0.6", "0.4"],
    ["/d", "/o", "participant", "--tissue-fractions", "0.6", "1.4", "0"],
    ["/d", "/o", "participant", "--te1", "11"],                  # milliseconds
    ["/d", "/o", "participant", "--nprocs", "0"],
    ["/d", "/o", "participant", "--no-such-option"],
])
def test_usage_errors_exit_64(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_missing_bids_dir_is_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args([str(tmp_path / "missing"), str(tmp_path / "out"), "participant"])
    assert exc.value.code == 64
    assert "does not exist" in capsys.readouterr().err


def test_output_equal_input_refused(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    with pytest.raises(SystemExit) as exc:
        parse_args([str(ds), str(ds), "participant"])
    assert exc.value.code == 64
    assert "OUTPUT_DIR must not be BIDS_DIR" in capsys.readouterr().err


def test_output_inside_input_refused_except_derivatives(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    with pytest.raises(SystemExit) as exc:
        parse_args([str(ds), str(ds / "sub-01"), "participant"])
    assert exc.value.code == 64
    assert "inside BIDS_DIR" in capsys.readouterr().err
    assert not (ds / "sub-01" / "logs").exists()
    s = parse_args([str(ds), str(ds / "derivatives" / "bidsmrs"), "participant"])
    assert s.output_dir == (ds / "derivatives" / "bidsmrs").resolve()
    with pytest.raises(SystemExit) as exc:  # derivatives/ itself would mix with other pipelines
        parse_args([str(ds), str(ds / "derivatives"), "participant"])
    assert exc.value.code == 64


def test_refused_command_creates_no_output_dir(tmp_path):
    ds = _dataset(tmp_path / "ds")
    with pytest.raises(SystemExit):
        parse_args([str(ds), str(tmp_path / "out"), "participant", "-w", str(ds / "work")])
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_one_line_usage_error(tmp_path, capsys, monkeypatch):
    """A read-only OUTPUT_DIR (e.g. a read-only bind mount) fails before any work, in one line."""
    import tempfile

    ds = _dataset(tmp_path / "ds")

    def refuse(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(SystemExit) as exc:
        parse_args([str(ds), str(tmp_path / "out"), "participant"])
    assert exc.value.code == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert "not writable (Read-only file system)" in err[-1] and "Traceback" not in "".join(err)


def test_work_dir_inside_input_refused(tmp_path):
    ds = _dataset(tmp_path / "ds")
    with pytest.raises(SystemExit) as exc:
        parse_args([str(ds), str(tmp_path / "out"), "participant", "-w", str(ds / "work")])
    assert exc.value.code == 64


def test_settings_from_args(tmp_path):
    ds = _dataset(tmp_path / "ds")
    s = parse_args([str(ds), str(tmp_path / "out"), "participant", "--participant-label", "02", "sub-01",
                    "--tissue-fractions", "0.6", "0.4", "0", "--nprocs", "2", "--fit-range", "4.0,0.5"])
    assert s.participant_labels == ("01", "02")
    assert s.tissue_fractions == (0.6, 0.4, 0.0)
    assert s.nprocs == 2
    assert s.fit_ppm == (0.5, 4.0)
    assert s.to_dict()["bids_dir"] == str(ds)
    assert s.lipids == "auto"
    never = parse_args([str(ds), str(tmp_path / "out"), "participant", "--lipids", "never"])
    assert never.lipids == "never" and never.processing_key() != s.processing_key()


def test_no_mrs_data_exits_65_with_one_line(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    (ds / "sub-01" / "anat").mkdir(parents=True)
    code = main([str(ds), str(tmp_path / "out"), "participant", "--skip-bids-validation"])
    err = capsys.readouterr().err
    assert code == 65
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def test_unknown_participant_label_exits_64(tmp_path, capsys):
    from tests.bidsfixtures import make_bids_dataset

    ds = tmp_path / "ds"
    make_bids_dataset(ds, subjects=["01"])
    code = main([str(ds), str(tmp_path / "out"), "participant", "--participant-label", "99",
                 "--skip-bids-validation"])
    err = capsys.readouterr().err
    assert code == 64
    assert "99" in err and "Traceback" not in err


@pytest.mark.parametrize("content,word", [
    ('{"water": {"T2": {"gm": 110}}}', "ms"),                 # milliseconds
    ('{"metabolites": {"Unobtainium": {"T2": 0.2}}}', "Unobtainium"),
    ("{not json", "JSON"),
])
def test_bad_quant_config_fails_before_any_run(tmp_path, capsys, content, word):
    ds = _dataset(tmp_path / "ds")
    cfg = tmp_path / "q.json"
    cfg.write_text(content)
    with pytest.raises(SystemExit) as exc:
        parse_args([str(ds), str(tmp_path / "out"), "participant", "--quant-config", str(cfg)])
    assert exc.value.code == 64
    err = capsys.readouterr().err
    assert "--quant-config" in err and word.lower() in err.lower()


def test_library_warnings_go_to_the_log_not_the_console(capsys, caplog, monkeypatch):
    import logging
    import warnings

    from bidsmrs.execution import quiet_library_warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored afterwards
    quiet_library_warnings()
    with caplog.at_level(logging.DEBUG, logger="bidsmrs"), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Glyph 8722 missing from font", UserWarning)
    assert "Glyph" not in capsys.readouterr().err
    assert any("Glyph 8722" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
