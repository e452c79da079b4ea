"""QC gating of spectra and metabolite values, and the exclusion log."""
import numpy as np
import pandas as pd
import pytest

from bidsmrs.errors import UsageError
from bidsmrs.stats.qc_gating import (QcThresholds, exclusion_criteria, exclusion_log, gate_metabolites,
                                     gate_spectra)


def _qc():
    return pd.DataFrame({
        "participant_id": ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"],
        "session": [np.nan] * 5, "acquisition": ["press"] * 5, "volume": ["dacc"] * 5,
        "run": [1.0, 1.0, 1.0, 1.0, 1.0],  # read as floats from a TSV with n/a elsewhere
        "snr_naa": [25.0, 9.0, 10.0, 30.0, np.nan],
        "fwhm_naa_ppm": [0.05, 0.05, 0.1, 0.12, 0.05],
        "flag": ["ok"] * 5,
    })


def _conc():
    rows = []
    for sub in ["01", "02", "03", "04", "05"]:
        for met, crlb, amp, flag in [("NAA", 3.0, 10.0, "ok"), ("GABA", 25.0, 1.0, "high_crlb"),
                                     ("Gln", np.inf, 0.0, "not_detected"), ("Glx", 20.0, 5.0, "ok")]:
            rows.append({"participant_id": sub, "session": "n/a", "acquisition": "press", "volume": "dacc",
                         "run": "1", "metabolite": met, "amplitude": amp, "crlb_percent": crlb,
                         "conc_tissue_corrected_mM": amp, "flag": flag})
    return pd.DataFrame(rows)


def test_gate_spectra_reasons_and_boundaries():
    gated = gate_spectra(_qc(), QcThresholds())
    assert list(gated["included"]) == [True, False, True, False, False]
    assert list(gated["exclusion_reason"]) == ["", "low_snr", "", "broad_linewidth", "missing_snr"]
    assert gated["participant_id"].tolist()[0] == "sub-01"
    assert gated["run"].tolist()[0] == "1" and gated["session"].tolist()[0] == "n/a"


def test_gate_spectra_joins_several_reasons_and_disabled_criteria():
    qc = _qc().assign(snr_naa=5.0, fwhm_naa_ppm=0.5)
    assert set(gate_spectra(qc)["exclusion_reason"]) == {"low_snr;broad_linewidth"}
    relaxed = gate_spectra(qc, QcThresholds(min_snr=None, max_fwhm_ppm=None))
    assert relaxed["included"].all()


def test_gate_metabolites_default_rules():
    qc = gate_spectra(_qc())
    gated = gate_metabolites(_conc(), qc)
    sub1 = gated[gated.participant_id == "sub-01"].set_index("metabolite")
    assert sub1.loc["NAA", "included"] and sub1.loc["Glx", "included"]  # 20 % is at the limit: passes
    assert sub1.loc["GABA", "exclusion_reason"] == "high_crlb"
    assert sub1.loc["Gln", "exclusion_reason"] == "not_detected"
    sub2 = gated[gated.participant_id == "sub-02"].set_index("metabolite")
    assert not sub2["included"].any()
    assert sub2.loc["NAA", "exclusion_reason"] == "low_snr"
    assert sub2.loc["GABA", "exclusion_reason"] == "low_snr;high_crlb"
    # values are never changed
    assert gated["conc_tissue_corrected_mM"].tolist() == _conc()["conc_tissue_corrected_mM"].tolist()


def test_crlb_override_and_keep_not_detected():
    qc = gate_spectra(_qc())
    thresholds = QcThresholds(crlb_overrides={"GABA": 30.0}, keep_not_detected=True)
    gated = gate_metabolites(_conc(), qc, thresholds).set_index(["participant_id", "metabolite"])
    assert gated.loc[("sub-01", "GABA"), "included"]
    assert gated.loc[("sub-01", "Gln"), "included"]
    assert gated.loc[("sub-01", "Gln"), "conc_tissue_corrected_mM"] == 0.0
    assert gated.loc[("sub-02", "Gln"), "exclusion_reason"] == "low_snr"


def test_missing_qc_and_missing_crlb():
    conc = _conc()
    conc.loc[(conc.participant_id == "01") & (conc.metabolite == "NAA"), "crlb_percent"] = np.nan
    qc = gate_spectra(_qc()[lambda t: t.participant_id != "sub-05"])
    gated = gate_metabolites(conc, qc).set_index(["participant_id", "metabolite"])
    assert gated.loc[("sub-01", "NAA"), "exclusion_reason"] == "missing_crlb"
    assert gated.loc[("sub-05", "NAA"), "exclusion_reason"] == "missing_qc"


def test_exclusion_log_lists_spectra_once_and_metabolites_of_included_spectra():
    qc = gate_spectra(_qc())
    conc = gate_metabolites(_conc(), qc)
    log = exclusion_log(conc, qc)
    spectra = log[log.level == "spectrum"]
    assert sorted(spectra.participant_id) == ["sub-02", "sub-04", "sub-05"]
    assert spectra.metabolite.isna().all()
    mets = log[log.level == "metabolite"]
    assert sorted(set(mets.participant_id)) == ["sub-01", "sub-03"]
    assert sorted(mets[mets.participant_id == "sub-01"].metabolite) == ["GABA", "Gln"]
    assert mets.set_index(["participant_id", "metabolite"]).loc[("sub-01", "GABA"), "crlb_percent"] == 25.0
    assert spectra.set_index("participant_id").loc["sub-02", "snr_naa"] == 9.0


def test_exclusion_log_empty_when_all_included():
    qc = gate_spectra(_qc(), QcThresholds(min_snr=None, max_fwhm_ppm=None))
    conc = gate_metabolites(_conc(), qc, QcThresholds(max_crlb_percent=None, keep_not_detected=True))
    assert conc["included"].all()
    log = exclusion_log(conc, qc)
    assert log.empty and "exclusion_reason" in log.columns


def test_thresholds_validated_frozen_and_described():
    with pytest.raises(UsageError, match="min_snr"):
        QcThresholds(min_snr=-1)
    with pytest.raises(UsageError, match="GABA"):
        QcThresholds(crlb_overrides={"GABA": float("nan")})
    t = QcThresholds(crlb_overrides={"GABA": 30.0})
    with pytest.raises(Exception):
        t.min_snr = 3  # frozen
    with pytest.raises(TypeError):
        t.crlb_overrides["NAA"] = 1  # read-only mapping
    assert t.crlb_limit("GABA") == 30.0 and t.crlb_limit("NAA") == 20.0
    text = exclusion_criteria(t)
    assert "snr_naa < 10.0" in text["low_snr"] and "GABA: > 30.0" in text["high_crlb"]
    assert t.to_dict()["crlb_overrides"] == {"GABA": 30.0}


def test_gated_qc_read_back_from_tsv():
    """'' reasons read back as NaN and included as text still gate the metabolites."""
    qc = gate_spectra(_qc())
    qc["exclusion_reason"] = qc["exclusion_reason"].replace("", np.nan)
    qc["included"] = qc["included"].map({True: "true", False: "false"})
    extra = pd.DataFrame({"participant_id": ["sub-06"], "acquisition": "press", "volume": "dacc", "run": "1",
                          "included": [False], "exclusion_reason": [np.nan]})
    conc = pd.concat([_conc(), _conc()[lambda t: t.participant_id == "01"].assign(participant_id="06")])
    gated = gate_metabolites(conc, pd.concat([qc, extra]))
    by = gated.set_index(["participant_id", "metabolite"])["exclusion_reason"]
    assert by[("sub-01", "NAA")] == "" and by[("sub-02", "NAA")] == "low_snr"
    assert (gated[gated.participant_id == "sub-06"]["exclusion_reason"].str.startswith("spectrum_excluded")).all()
