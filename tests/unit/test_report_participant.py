"""Participant report: anchors, figures, QC/concentration values, escaping, robustness."""
from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bidsmrs.outputs import naming
from bidsmrs.report import participant as part
from bidsmrs.report.participant import safe_write_participant_report, write_participant_report
from tests.reportfixtures import FixtureRun, make_participant_tree

INJECT = "<script>alert('x')</script>"


class _Tables(HTMLParser):
    """Collect the text cells of every table that has an id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self._stack: list[str | None] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._stack.append(dict(attrs).get("id"))
            if self._stack[-1]:
                self.tables[self._stack[-1]] = []
        elif tag == "tr" and self._stack and self._stack[-1]:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self._stack:
            self._stack.pop()
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._stack[-1]].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[list[str]]]:
    p = _Tables()
    p.feed(html)
    return p.tables


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    srcs = make_participant_tree(out, "01", inject=INJECT)
    make_participant_tree(out, "02", runs=[FixtureRun("sub-02_ses-pre_acq-press_voi-dacc_run-1",
                                                      with_t1w=False)], snr_naa=5.0, seed=1)
    report = write_participant_report(out, "sub-01", messages=["run 3 failed: " + INJECT])
    return out, srcs, report, report.read_text(encoding="utf-8")


def test_every_run_has_anchored_section_and_fit_svg(tree):
    out, srcs, report, html = tree
    assert report == out / "sub-01.html"
    for src in srcs:
        assert f'<section class="run" id="run-{src}">' in html
        m = re.search(rf'<figure id="fit-{re.escape(src)}">\s*(<svg.*?</svg>)', html, re.S)
        assert m, f"no SVG inside fit-{src}"
        assert "Chemical shift (ppm)" in m.group(1)
        assert f'id="qc-{src}"' in html and f'id="conc-{src}"' in html
        assert (out / naming.figure_file(src, "fit")).read_text().count("<svg") == 1
    # navigation between runs
    assert f'href="#run-{srcs[1]}">next run' in html


def test_qc_values_equal_tsv(tree):
    out, srcs, _, html = tree
    tables = _tables(html)
    for src in srcs:
        row = _tsv(out / naming.run_file(src, "qc", ".tsv"))[0]
        shown = {r[0]: r[1] for r in tables[f"qc-{src}"][1:]}
        assert shown == row
    # thresholds used are shown with the status they imply
    assert "≥ 10 (qc_min_snr)" in html and "≤ 0.1 (qc_max_fwhm_ppm)" in html


def test_concentrations_table_equals_tsv_and_flags(tree):
    out, srcs, _, html = tree
    tables = _tables(html)
    rows = _tsv(out / naming.run_file(srcs[0], "concentrations", ".tsv"))
    shown = tables[f"conc-{srcs[0]}"]
    columns = list(rows[0])
    # header cells are "<name>" followed by the sidecar's units, if any
    assert all(h.startswith(c) for h, c in zip(shown[0], columns)) and len(shown[0]) == len(columns)
    header = columns
    body = [dict(zip(header, r)) for r in shown[1:]]
    assert [r["metabolite"] for r in body] == [r["metabolite"] for r in rows]
    for got, want in zip(body, rows):
        assert got["crlb_percent"] == want["crlb_percent"]
        assert got["conc_tissue_corrected_mM"] == want["conc_tissue_corrected_mM"]
        assert got["flag"] == want["flag"]
    # a CRLB above qc_max_crlb (20) is highlighted
    gln = re.search(r'<tr class="warn"><td class="">Ins</td>', html)
    assert gln, "Ins (CRLB 21.5 % > 20 %) should be highlighted"


def test_low_snr_run_fails_qc_visibly(tree):
    out, *_ = tree
    html = write_participant_report(out, "02").read_text()
    src = "sub-02_ses-pre_acq-press_voi-dacc_run-1"
    qc = {r[0]: r for r in _tables(html)[f"qc-{src}"][1:]}
    assert qc["snr_naa"][1] == "5" and qc["snr_naa"][4] == "fail"
    assert qc["flag"][1] == "low_snr" and qc["flag"][4] == "fail"
    assert "No T1-weighted image was used" in html


def test_sidecar_strings_are_escaped(tree):
    _, _, _, html = tree
    assert "<script" not in html.lower()
    # the injected strings appear, escaped: warnings, manufacturer, QC definition, messages
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert html.count(escaped) >= 4
    assert "default-src 'none'" in html  # CSP: no scripts or remote loads even if one slipped in


def test_svg_text_from_inputs_is_escaped():
    import numpy as np

    from bidsmrs.report.figures import fit_figure, render_svg

    ppm = np.linspace(4.5, 0, 200)
    y = np.exp(-((ppm - 2.0) / 0.05) ** 2)
    svg = fit_figure(ppm, y, y, 0 * y, 0 * y, {INJECT: y}, main=(INJECT,), title=INJECT)
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    from matplotlib.figure import Figure

    fig = Figure()
    fig.text(0.5, 0.5, "x", url="javascript:alert(1)")
    with pytest.raises(ValueError):
        render_svg(fig, "bad")


def test_report_is_self_contained_small_and_deterministic(tree):
    out, _, report, html = tree
    assert report.stat().st_size < 3 * 1024 ** 2
    assert not re.search(r'<(link|script|img)\b[^>]*(src|href)="https?:', html)
    assert "<script" not in html
    again = write_participant_report(out, "01", messages=["run 3 failed: " + INJECT])
    assert again.read_text(encoding="utf-8") == html


def test_figures_written_and_voxel_planes(tree):
    out, srcs, _, html = tree
    vox = (out / naming.figure_file(srcs[0], "voxel")).read_text()
    assert vox.count("<image") == 3 and "Sagittal" in vox and "GM" in vox
    align = (out / naming.figure_file(srcs[0], "align")).read_text()
    assert "64 transients, 2 rejected" in align
    assert not (out / naming.figure_file(srcs[1], "align")).exists()  # no transients in run 2
    assert "Processed water reference" in html


def test_missing_and_broken_files_are_reported_not_fatal(tmp_path):
    out = tmp_path / "out"
    src = make_participant_tree(out, "03", runs=[FixtureRun("sub-03_acq-press", with_t1w=False,
                                                            with_transients=False)])[0]
    (out / naming.run_file(src, "fit", ".nii.gz")).unlink()
    (out / naming.run_file(src, "qc", ".json")).write_text("{broken")
    html = write_participant_report(out, "03").read_text()
    assert f'id="fit-{src}"' in html and "no fit file for this run" in html
    assert "invalid JSON" in html
    assert f'id="conc-{src}"' in html


def test_no_runs_gives_a_page(tmp_path):
    (tmp_path / "dataset_description.json").write_text('{"Name": "x"}')
    html = write_participant_report(tmp_path, "09").read_text()
    assert "No MRS outputs were found" in html


def test_safe_write_logs_and_returns_none(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(part, "render_participant", boom)
    assert safe_write_participant_report(tmp_path, "01") is None
    errs = list((tmp_path / "logs").glob("report-01-*.err"))
    assert len(errs) == 1 and "template exploded" in errs[0].read_text()
    assert not (tmp_path / "sub-01.html").exists()


def test_alignment_before_after_from_raw_transients(tree):
    out, srcs, _, _ = tree
    align = (out / naming.figure_file(srcs[0], "align")).read_text()
    assert "before alignment" in align and "after alignment" in align


@pytest.mark.parametrize("coils", [0, 4])
def test_recorded_corrections_align_the_raw_transients(tmp_path, coils):
    import numpy as np

    from bidsmrs.report.collect import load_raw_transients, load_run
    from bidsmrs.report.figures import corrected_transients

    out = tmp_path / "out"
    src = make_participant_tree(out, "07", runs=[FixtureRun("sub-07_acq-press", with_t1w=False,
                                                            raw_coils=coils)])[0]
    run = load_run(out, src)
    assert run.raw_path is not None and run.raw_path.name == f"{src}_svs.nii.gz"
    raw = load_raw_transients(run)
    assert raw.spectrum.shape == (2048, 64)
    rows = run.transients
    after = corrected_transients(raw.spectrum, raw.dwell_s, [r["freq_shift_hz"] for r in rows],
                                 [r["phase_deg"] for r in rows])
    sel = (raw.ppm > 1.8) & (raw.ppm < 4.2)

    def spread(spec):  # SD across transients relative to the mean signal
        return np.abs(spec[sel] - spec[sel].mean(axis=1, keepdims=True)).mean() / \
            np.abs(spec[sel].mean(axis=1)).mean()

    assert spread(after) < 0.5 * spread(raw.spectrum)
    assert spread(after) < 0.25


def test_voxel_figure_finds_a_moved_t1w_through_sources(tmp_path):
    import json

    out = tmp_path / "out"
    src = make_participant_tree(out, "08", runs=[FixtureRun("sub-08_acq-press",
                                                            with_transients=False)])[0]
    side = out / naming.anat_file(src, extension=".json")
    meta = json.loads(side.read_text())
    meta["T1wPath"] = "/nonexistent/mount/sub-08_T1w.nii.gz"
    side.write_text(json.dumps(meta))
    html = write_participant_report(out, "08").read_text()
    assert "Figure not available" not in html
    assert (out / naming.figure_file(src, "voxel")).read_text().count("<image") == 3


def test_render_svg_guard_allows_escaped_text_but_not_active_content():
    from matplotlib.figure import Figure

    from bidsmrs.report.figures import render_svg

    fig = Figure()
    fig.text(0.1, 0.5, "x onload=1 javascript: <script>")  # text only: escaped, allowed
    svg = render_svg(fig, "ok")
    assert "&lt;script&gt;" in svg and "<script" not in svg
