"""--quant-config schema, precedence and errors."""
from __future__ import annotations

import json

import pytest

from bidsmrs.errors import InputError, QuantificationError
from bidsmrs.quantify.config import load_quant_config
from bidsmrs.quantify.constants import TABLE_3T, table_for_field


def test_builtin_3t_values_match_design():
    cfg = load_quant_config(None, 3.0)
    assert cfg.table_label == "3T"
    assert cfg.water_values("T1") == {"gm": 1.331, "wm": 0.832, "csf": 3.817}
    assert cfg.water_values("T2") == {"gm": 0.110, "wm": 0.0792, "csf": 0.503}
    assert cfg.water_values("content") == {"gm": 0.78, "wm": 0.65, "csf": 0.97}
    assert cfg.alpha.value == 0.5
    # literature per metabolite: NAA T1 = mean(1.47, 1.35) (Mlynarik 2001)
    t1, t2 = cfg.metabolite_relaxation("NAA")
    assert t1.value == pytest.approx(1.41) and "Mlynarik" in t1.source
    assert "Wyss" in t2.source
    # no literature value: built-in default
    t1, t2 = cfg.metabolite_relaxation("Ala")
    assert (t1.value, t2.value) == (1.317, 0.207)
    # aliases of user basis names
    assert cfg.metabolite_relaxation("PCho") == cfg.metabolite_relaxation("PCh")
    assert cfg.metabolite_relaxation("sIns") == cfg.metabolite_relaxation("sI")


@pytest.mark.parametrize("b0,label", [(2.89, "3T"), (3.0, "3T"), (1.494, "1.5T"), (6.98, "7T")])
def test_field_tables_within_tolerance(b0, label):
    assert table_for_field(b0).label == label


def test_unsupported_field_needs_complete_config():
    with pytest.raises(QuantificationError, match="9.4 T.*water.T1.gm"):
        load_quant_config(None, 9.4)
    full = {"water": {"T1": {"gm": 2.0, "wm": 1.4, "csf": 4.4},
                      "T2": {"gm": 0.04, "wm": 0.045, "csf": 0.5}},
            "metabolites": {"default": {"T1": 1.5, "T2": 0.1}}}
    cfg = load_quant_config(full, 9.4)
    assert cfg.table_label == "none"
    assert cfg.metabolite_relaxation("NAA")[1].value == 0.1


def test_precedence_own_key_then_file_default_then_literature_then_builtin():
    cfg = load_quant_config({"metabolites": {"default": {"T2": 0.3}, "NAA": {"T2": 0.25}}}, 3.0)
    assert cfg.metabolite_relaxation("NAA")[1].value == 0.25          # own key
    assert cfg.metabolite_relaxation("Cr")[1].value == 0.3            # file default replaces literature
    assert cfg.metabolite_relaxation("Ala")[1].value == 0.3           # ... and the built-in default
    # T1 untouched by the file: literature where known, else built-in default
    assert cfg.metabolite_relaxation("Cr")[0] == TABLE_3T.metabolite_t1_s["Cr"]
    assert cfg.metabolite_relaxation("Ala")[0].value == 1.317
    assert "--quant-config" in cfg.metabolite_relaxation("NAA")[1].source
    # without the file default, literature values survive next to an own key
    cfg = load_quant_config({"metabolites": {"NAA": {"T1": 1.5}}}, 3.0)
    assert cfg.metabolite_relaxation("NAA")[0].value == 1.5
    assert cfg.metabolite_relaxation("Cr")[1] == TABLE_3T.metabolite_t2_s["Cr"]
    # own key given by an alias applies to the built-in name and vice versa
    cfg = load_quant_config({"metabolites": {"PCho": {"T2": 0.3}}}, 3.0)
    assert cfg.metabolite_relaxation("PCh")[1].value == 0.3


def test_water_and_alpha_overrides_partial():
    cfg = load_quant_config({"water": {"T2": {"csf": 2.0}, "content": {"gm": 0.8}}, "alpha": 0.4}, 3.0)
    assert cfg.water_values("T2") == {"gm": 0.110, "wm": 0.0792, "csf": 2.0}
    assert cfg.water_values("content")["gm"] == 0.8
    assert cfg.water_values("content")["wm"] == 0.65
    assert cfg.alpha.value == 0.4


@pytest.mark.parametrize("cfg,match", [
    ({"metabolites": {"Foo": {"T1": 1.0}}}, "unknown metabolite 'Foo'; known names: default, Ala"),
    ({"metabolites": {"NAA": {"T2": 110}}}, "looks like ms"),
    ({"water": {"T1": {"gm": 1331}}}, "looks like ms"),
    ({"water": {"T2": {"gm": -0.1}}}, "> 0 s"),
    ({"water": {"content": {"gm": 1.2}}}, r"fraction in \[0, 1\]"),
    ({"water": {"T1": {"grey": 1.3}}}, "unknown key 'grey'"),
    ({"alpha": 0}, "alpha must be > 0"),
    ({"alpha": "half"}, "finite number"),
    ({"relaxation": {}}, "unknown key 'relaxation'"),
    ({"metabolites": {"NAA": {"T3": 1}}}, "unknown key 'T3'"),
    ({"metabolites": {"tNAA": {"T2": 0.2}}}, "combined rows"),
    ({"metabolites": {"NAA": 0.2}}, "must be an object"),
])
def test_config_errors(cfg, match):
    with pytest.raises(InputError, match=match):
        load_quant_config(cfg, 3.0)


def test_basis_names_are_accepted_as_keys():
    cfg = load_quant_config({"metabolites": {"Ace": {"T2": 0.2}}}, 3.0, metabolite_names=("Ace",))
    assert cfg.metabolite_relaxation("Ace")[1].value == 0.2


def test_file_source_and_to_dict(tmp_path):
    p = tmp_path / "quant.json"
    p.write_text(json.dumps({"metabolites": {"NAA": {"T2": 0.25}}}))
    cfg = load_quant_config(p, 3.0)
    d = cfg.to_dict()
    assert d["user_config"] == str(p)
    assert d["metabolites"]["NAA"]["T2"] == {"value": 0.25, "source": f"--quant-config {p}"}
    assert d["water"]["T1"]["gm"]["source"].startswith("Wansapura")
    assert d["water"]["content"]["csf"] == {"value": 0.97, "source": "Ernst 1993 J Magn Reson B 102:1"}
    json.dumps(d)  # serialisable
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError) as err:
        load_quant_config(bad, 3.0)
    assert str(bad) in str(err.value)
