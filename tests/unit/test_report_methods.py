"""Methods text, CITATION.md, references and the MRSinMRS checklist."""
from __future__ import annotations

import json

import pytest

from bidsmrs.outputs import naming
from bidsmrs.report.collect import find_runs, load_run
from bidsmrs.report.methods import (details_text, load_references, methods_text, run_methods,
                                    step_fragment, write_citation)
from bidsmrs.report.mrsinmrs import NOT_AVAILABLE, checklist, write_mrsinmrs
from tests.reportfixtures import STEPS, FixtureRun, make_participant_tree


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("methods") / "out"
    make_participant_tree(out, "01")
    return out


def _params_words(params: dict) -> list[str]:
    words = []
    for k, v in params.items():
        if isinstance(v, list) and len(v) > 6:
            v = f"{len(v)} values"
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in v) + "]"
        elif isinstance(v, float):
            v = f"{v:.6g}"
        words.append(f"{k} = {v}")
    return words


def test_methods_names_each_step_with_parameters(out):
    run = load_run(out, find_runs(out, "01")[0])
    text = methods_text(run)
    for step in STEPS:
        assert step.details.rstrip(".") in text, step.method
        for w in _params_words(step.params):
            assert w in text, (step.method, w)
    # step-specific wording and citations chosen from what ran
    assert "spectral registration" in text and "Near et al. 2015" in text
    # "Frequency and phase correction" used for referencing gets the referencing wording
    assert "chemical-shift axis was referenced and the zero-order phase adjusted (Frequency " \
           "referenced to the NAA peak" in text
    assert text.count("corrected for frequency and phase drift") == 1
    assert "Klose 1990" in text and "Pijnappel et al. 1992" in text
    assert "Hall et al. 2014" in text and "Rodgers" not in text  # S/N² weights, not WSVD
    assert "0.2–4.2 ppm" in text and "builtin:simulated" in text
    assert "TE 30 ms" in text and "GM 0.55" in text
    assert "water T1 (GM/WM/CSF) 1.331/0.832/3.817 s" in text and "Alpha (WM/GM concentration ratio) 0.5" in text
    assert "Wyss PO et al." in text  # constants' sources from the quantification file
    assert "Phasing" not in text and "A zero-order phase correction was applied" in text
    assert "doi:10.1002/mrm.25094" in text  # reference list


def test_methods_omit_steps_that_did_not_run(tmp_path):
    from bidsmrs.io.nifti_mrs import load_nifti_mrs, save_nifti_mrs

    out = tmp_path / "out"
    src = make_participant_tree(out, "05", runs=[FixtureRun("sub-05_acq-press", with_t1w=False,
                                                            with_water=False)])[0]
    path = out / naming.run_file(src, "preproc", ".nii.gz")
    spec = load_nifti_mrs(path)
    hdr = dict(spec.header)
    hdr["ProcessingApplied"] = [e for e in hdr["ProcessingApplied"]
                                if e["Method"] != "Eddy current correction"]
    save_nifti_mrs(spec.replace(header=hdr), path)
    for p in out.glob("sub-05/mrs/*concentrations*.tsv"):  # no water: ratios only
        lines = p.read_text().splitlines()
        cols = lines[0].split("\t")
        keep = [i for i, c in enumerate(cols) if not c.startswith("conc_")]
        p.write_text("\n".join("\t".join(ln.split("\t")[i] for i in keep) for ln in lines) + "\n")
    m = run_methods(load_run(out, src))
    text = " ".join(m.paragraphs)
    assert "Eddy" not in text and "klose1990" not in [r.key for r in m.references]
    assert "relative to total creatine only" in text
    assert "unsuppressed water reference was processed" not in text


def test_details_text_and_fragment_mapping():
    assert details_text('Done. Parameters: {"a": 1, "b": [1.5, 2]}') == \
        "Done; parameters: a = 1, b = [1.5, 2]"
    assert details_text("") == "no details recorded"
    assert step_fragment("RF coil combination") == "coil_combination"
    assert step_fragment("Frequency and phase correction") == "alignment"
    assert step_fragment("Frequency and phase correction",
                         "Frequency referenced to the NAA peak at 2.008 ppm") == "referencing"
    assert step_fragment("Zero-filling") == "other_step"


def test_references_have_dois_and_unique_keys():
    refs = load_references()
    assert {"near2015", "near2021", "lin2021", "gasparovic2006", "gasparovic2018",
            "klose1990", "provencher1993"} <= set(refs)
    assert refs["gasparovic2018"].doi == "10.1002/nbm.3914"
    assert refs["near2015"].label == "Near et al. 2015"
    assert refs["rodgers2010"].label == "Rodgers and Robson 2010"
    assert all(r.doi for k, r in refs.items() if k != "bidsmrs")


def test_write_citation(out):
    path = write_citation(out, ["01"])
    assert path == out / "logs" / "CITATION.md"
    text = path.read_text()
    assert text.startswith("# Methods") and "### References" in text
    assert "Runs described: 2." in text
    assert "sub-01_acq-press_run-2" not in text or "differ" in text


def test_mrsinmrs_checklist_values(out):
    run = load_run(out, find_runs(out, "01")[0])
    items = {i.item: i for i in checklist(run)}
    assert items["Field strength"].value == "2.89 T"
    assert items["Manufacturer"].value == "Siemens"
    assert items["TE / TR"].value == "TE 30 ms, TR 2000 ms"
    assert items["Nominal VOI size"].value == "20 × 20 × 20 mm (8 mL)"
    assert items["Number of transients (averages)"].value.startswith("64 acquired, 2 rejected")
    assert items["Water suppression"].value == "CHESS"
    assert items["Additional hardware"].value == NOT_AVAILABLE
    assert "Kreis 2020" in items["SNR (with definition)"].value
    assert {i.section for i in items.values()} == {
        "1. Hardware", "2. Acquisition", "3. Data analysis methods and outputs",
        "4. Data quality"}


def test_write_mrsinmrs(out):
    path = write_mrsinmrs(out, ["01"])
    text = path.read_text()
    assert "| Spectra (runs) | 2 |" in text
    assert "| TE | 30 ms (n = 2) |" in text
    assert text.count("## sub-01_acq-press_run-") == 2
    json.dumps(text)  # plain text


def test_mrsinmrs_uses_the_raw_sidecar(out):
    run = load_run(out, find_runs(out, "01")[0])  # run-1 has raw transients with a sidecar
    items = {i.item: i for i in checklist(run)}
    assert "transmit Body" in items["RF coils"].value
    assert items["Shimming"].value.startswith("1, 2, 3; achieved water FWHM 7.5 Hz")


def test_safe_write_dataset_logs(out, monkeypatch):
    from bidsmrs.report import mrsinmrs
    from bidsmrs.report.participant import safe_write_dataset_logs

    paths = safe_write_dataset_logs(out, ["sub-01"])
    assert [p.name for p in paths] == ["CITATION.md", "MRSinMRS.md"]

    def boom(*a, **k):
        raise RuntimeError("x")

    monkeypatch.setattr(mrsinmrs, "write_mrsinmrs", boom)
    assert [p.name for p in safe_write_dataset_logs(out, ["01"])] == ["CITATION.md"]


def test_methods_say_when_lipids_were_added(tmp_path):
    """The automatic lipid step shows in the methods text only when it added the lipids."""
    out = tmp_path / "out"
    src = make_participant_tree(out, "06")[0]
    path = out / naming.run_file(src, "fit", ".json")
    side = json.loads(path.read_text())
    side["FitOptions"]["lipids"] = "auto"
    path.write_text(json.dumps(side))
    assert "LCModel simulated lipids" not in methods_text(load_run(out, src))
    side["FitParameters"]["lipids"] = "added (auto: BIC 3599 -> 2637, lipids/tCr 25)"
    path.write_text(json.dumps(side))
    text = methods_text(load_run(out, src))
    assert "lipids = LCModel simulated lipids (Lip09, Lip13a, Lip13b, Lip20) added (auto: BIC 3599" in text


def test_methods_list_only_the_options_of_the_baseline_used():
    from bidsmrs.report.methods import fit_options_used

    poly = fit_options_used({"FitOptions": {"baseline": "poly", "poly_order": 3, "baseline_knot_spacing_ppm": 0.15,
                                            "lipids": "never", "lipid_min_ratio_tcr": 1.0, "ppm_range": [0.2, 4.2]}})
    assert poly == {"baseline": "poly", "poly_order": 3, "lipids": "never", "ppm_range": [0.2, 4.2]}
    spline = fit_options_used({"FitOptions": {"baseline": "spline", "poly_order": 2, "baseline_knot_spacing_ppm": 0.15,
                                              "lipids": "auto", "lipid_min_ratio_tcr": 1.0}})
    assert "poly_order" not in spline and spline["baseline_knot_spacing_ppm"] == 0.15
    assert spline["lipid_min_ratio_tcr"] == 1.0
    always = fit_options_used({"FitOptions": {"lipids": "always", "lipid_min_ratio_tcr": 1.0},
                               "FitParameters": {"lipids": "added (always)"}})
    assert "lipid_min_ratio_tcr" not in always and always["lipids"].endswith("added (always)")


def test_the_same_work_in_two_formats_is_one_reference():
    from bidsmrs.report.methods import _author_year

    long = ("Gasparovic C, Song T, Devier D, et al. Use of tissue water as a concentration reference. "
            "Magn Reson Med. 2006;55(6):1219-1226.")
    short = "Gasparovic C et al. Use of tissue water as a concentration reference. Magn Reson Med 2006;55:1219-1226"
    assert _author_year(long) == _author_year(short) == ("gasparovic", "2006")
    assert _author_year("Near J et al. ... NMR Biomed 2021;34:e4257") != _author_year("Near J, Edden R. MRM 2015;73:44")
