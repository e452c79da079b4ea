"""Group report: per-metabolite plots, exclusions, links, statistics, MRSinMRS summary."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from bidsmrs.report.group import write_group_report
from bidsmrs.report.participant import write_participant_report
from tests.reportfixtures import COMPONENTS, FixtureRun, group_tables, make_participant_tree

INJECT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    out = tmp_path_factory.mktemp("group") / "out"
    srcs = []
    for i in range(1, 5):
        sub = f"{i:02d}"
        srcs += make_participant_tree(
            out, sub, runs=[FixtureRun(f"sub-{sub}_acq-press_voi-dacc_run-1", with_t1w=False,
                                       with_transients=False)],
            seed=i, snr_naa=6.0 if i == 4 else 40.0)
        if i != 3:  # sub-03 has no report: no link
            write_participant_report(out, sub)
    conc, qc = group_tables(out, srcs, excluded=[srcs[3]])
    # metabolite-level gating as the group stage writes it: Lac fails CRLB everywhere
    conc["included"] = (conc["metabolite"] != "Lac") & ~conc["participant_id"].eq("sub-04")
    parts = pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-03", "sub-04"],
                          "diagnosis": ["hc", "trs", "hc", "trs" + INJECT]})
    stats = pd.DataFrame([{"metabolite": "NAA", "measure": "conc_tissue_corrected_mM",
                           "term": "group", "contrast": "n/a", "test": "anova",
                           "statistic": 4.25, "df_num": 1, "df_den": 1, "p": 0.0123456,
                           "p_holm": 0.0246912, "effect_size": 0.5, "effect_size_type":
                           "partial_eta2", "n": 3}])
    path = write_group_report(out, concentrations=conc, qc=qc, stats=stats, group_by="diagnosis",
                              participants=parts)
    return out, srcs, path, path.read_text(encoding="utf-8")


def test_each_metabolite_has_a_plot(group):
    _, _, path, html = group
    assert path.name == "group.html"
    names = [c[0] for c in COMPONENTS] + ["tCr"]
    for name in names:
        m = re.search(rf'<div class="dist" id="dist-{name}">.*?<svg.*?</svg>', html, re.S)
        assert m, name
        n_inc = 0 if name == "Lac" else 3
        assert f"{name} <span class=\"small\">({n_inc} of 4 values included)</span>" in html


def test_links_to_participant_reports_and_runs(group):
    _, srcs, _, html = group
    for i, src in enumerate(srcs, start=1):
        sub = f"sub-{i:02d}"
        if i == 3:
            assert f'href="{sub}.html' not in html and f"{sub} <span class=\"small\">(no report)" in html
        else:
            assert f'<a href="{sub}.html">{sub}</a>' in html
            assert f'<a href="{sub}.html#run-{src}">{sub}</a>' in html


def test_exclusion_log_and_scatter(group):
    _, srcs, _, html = group
    log = html.split('id="exclusions"')[1].split("<h3>All spectra</h3>")[0]
    assert "sub-04" in log and "low_snr" in log and "sub-01" not in log
    qc = html.split('<section id="qc">')[1].split("</section>")[0]
    assert "<svg" in qc and "min SNR 10" in qc and "max FWHM 0.1 ppm" in qc


def test_stats_table_and_escaping(group):
    _, _, _, html = group
    stats = html.split('id="stats-table"')[1].split("</table>")[0]
    assert "<td>0.01235</td>" in stats and "<td>0.02469</td>" in stats
    assert '<tr class="warn">' in stats
    assert "<script" not in html and "&lt;script&gt;" in html


def test_mean_spectra_and_mrsinmrs_summary(group):
    _, _, _, html = group
    spectra = html.split('<section id="spectra">')[1].split("</section>")[0]
    assert "acq-press voi-dacc" in spectra and spectra.count("<svg") == 1
    assert "hc (n=2) mean ± SD" in spectra and "trs (n=1) mean ± SD" in spectra
    mr = html.split('<section id="mrsinmrs">')[1].split("</section>")[0]
    assert "<td>TE</td><td>30 ms (n = 4)</td>" in mr
    assert "<td>SNR (NAA)</td><td>6–40 (n = 4)</td>" in mr


def test_unknown_measure_or_group_column_is_an_error(group):
    out, srcs, _, _ = group
    conc, qc = group_tables(out, srcs)
    with pytest.raises(ValueError, match="measure"):
        write_group_report(out, concentrations=conc, qc=qc, measure="nope")
    with pytest.raises(ValueError, match="group-by"):
        write_group_report(out, concentrations=conc, qc=qc, group_by="nope")


def test_participants_without_outputs_are_listed(group):
    out, srcs, _, _ = group
    conc, qc = group_tables(out, srcs)
    extra = pd.DataFrame({"participant_id": ["sub-09", "sub-bad_label"], "included": False,
                          "exclusion_reason": "no participant outputs (failed or not run)"})
    html = write_group_report(out, concentrations=conc, qc=pd.concat([qc, extra], ignore_index=True)
                              ).read_text()
    log = html.split('id="exclusions"')[1].split("<h3>All spectra</h3>")[0]
    assert "sub-09" in log and "no participant outputs (failed or not run)" in log
    assert "sub-09 <span class=\"small\">(no report)</span>" in html
