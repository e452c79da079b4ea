"""Group comparisons: power, false-positive rate, agreement with statsmodels, errors.

Replications are run as "metabolites" of one call (each metabolite is one simulated
study of the same participants), which also exercises the per-metabolite loop.
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from bidsmrs.errors import InputError, UsageError
from bidsmrs.stats import (STATS_COLUMNS, QcThresholds, add_spectrum_columns, collapse_repeats, gate_metabolites,
                           gate_spectra)
from bidsmrs.stats.anova import group_sizes, group_statistics, holm

EFFECT = {"hc": 0.0, "ntrs": 0.0, "trs": 1.0}  # trs differs from the others by 1 SD
NULL = {"hc": 0.0, "ntrs": 0.0, "trs": 0.0}


def simulate(seed, means, reps, n=20, covariate_effects=True):
    """``reps`` independent studies, each with its own ``n`` participants per group.

    Study ``r`` is metabolite ``rep<r>``; its participants (``sub-r<r>x<i>``) have fresh
    ages and sexes, which affect the value when ``covariate_effects``.
    """
    rng = np.random.default_rng(seed)
    groups = np.tile(np.repeat(list(means), n), reps)
    size = len(groups)
    study = np.repeat(np.arange(reps), n * len(means))
    pid = [f"sub-r{r:04d}x{i:03d}" for r, i in zip(study, np.tile(np.arange(n * len(means)), reps))]
    age = rng.normal(40, 10, size).round(1)
    sex = rng.choice(["M", "F"], size)
    mu = np.array([means[g] for g in groups])
    if covariate_effects:
        mu = mu + 0.03 * (age - 40) + 0.5 * (sex == "M")
    participants = pd.DataFrame({"participant_id": pid, "group": groups, "age": age, "sex": sex})
    values = pd.DataFrame({"participant_id": pid, "metabolite": [f"rep{r:04d}" for r in study],
                           "value": mu + rng.normal(0, 1, size)})
    return values, participants


def test_columns_are_the_contract():
    values, participants = simulate(0, EFFECT, 2)
    result = group_statistics(values, participants, group_by="group", covariates=["age", "sex"],
                              measure_name="conc_tissue_corrected_mM")
    assert tuple(result.columns) == STATS_COLUMNS
    one = result[result.metabolite == "rep0000"]
    assert one["term"].tolist() == ["group", "age", "sex"] + ["posthoc"] * 3 + ["assumption"] * 2
    assert one[one.term == "posthoc"]["contrast"].tolist() == ["hc-ntrs", "hc-trs", "ntrs-trs"]
    assert one[one.term == "assumption"]["test"].tolist() == ["levene", "shapiro"]
    assert set(one[one.term == "group"]["test"]) == {"ancova"}
    assert (result["measure"] == "conc_tissue_corrected_mM").all()
    assert one[one.term == "group"]["n"].item() == 60 and (one[one.term == "posthoc"]["n"] == 40).all()


def test_power_and_right_pair_with_covariates():
    values, participants = simulate(1, EFFECT, 200)
    result = group_statistics(values, participants, group_by="group", covariates=["age", "sex"],
                              measure_name="x")
    omnibus = result[result.term == "group"].set_index("metabolite")["p"]
    power = (omnibus < 0.05).mean()
    assert power >= 0.80, power  # measured 0.92 (seed 1)
    posthoc = result[result.term == "posthoc"]
    detected = posthoc[posthoc.metabolite.isin(omnibus[omnibus < 0.05].index)]
    best = detected.loc[detected.groupby("metabolite")["p"].idxmin(), "contrast"]
    assert best.str.contains("trs").mean() >= 0.95  # the most significant pair involves trs
    null_pair = posthoc[posthoc.contrast == "hc-ntrs"]
    assert (null_pair["p_holm"] < 0.05).mean() <= 0.10
    d = posthoc[posthoc.contrast == "hc-trs"]["effect_size"]
    assert d.mean() == pytest.approx(-1.0, abs=0.1)  # Cohen's d of the adjusted difference


def test_post_hoc_names_the_single_different_pair():
    means = {"hc": 0.0, "ntrs": 0.5, "trs": 1.0}  # only hc-trs differs by 1 SD
    values, participants = simulate(2, means, 200, covariate_effects=False)
    result = group_statistics(values, participants, group_by="group", measure_name="x")
    omnibus = result[result.term == "group"].set_index("metabolite")["p"]
    posthoc = result[(result.term == "posthoc") & result.metabolite.isin(omnibus[omnibus < 0.05].index)]
    best = posthoc.loc[posthoc.groupby("metabolite")["p"].idxmin(), "contrast"]
    assert (best == "hc-trs").mean() >= 0.85  # measured 0.92


@pytest.mark.parametrize("covariates", [(), ("age", "sex")])
def test_false_positive_rate(covariates):
    values, participants = simulate(3, NULL, 1000, covariate_effects=bool(covariates))
    result = group_statistics(values, participants, group_by="group", covariates=covariates, measure_name="x")
    p = result[result.term == "group"]["p"]
    assert 0.03 <= (p < 0.05).mean() <= 0.07, (p < 0.05).mean()  # measured 0.054 (ANOVA), 0.055 (ANCOVA)
    assert (p < 0.01).mean() <= 0.02
    posthoc = result[result.term == "posthoc"]
    family = posthoc.groupby("metabolite")["p_holm"].min()
    assert (family < 0.05).mean() <= 0.07  # Holm keeps the family-wise error of the pairs


def test_ancova_matches_statsmodels_fitted_directly():
    values, participants = simulate(6, EFFECT, 1)
    rng = np.random.default_rng(6)
    values["gm_fraction"] = rng.uniform(0.4, 0.7, len(values))  # covariate from the tissue table
    result = group_statistics(values, participants, group_by="group", covariates=["age", "sex", "gm_fraction"],
                              measure_name="x").set_index(["term", "contrast"], drop=False)
    data = values.merge(participants, on="participant_id")
    fit = smf.ols("value ~ C(group) + age + C(sex) + gm_fraction", data=data).fit()
    table = anova_lm(fit, typ=2)
    for ours, theirs in [("group", "C(group)"), ("age", "age"), ("sex", "C(sex)"), ("gm_fraction", "gm_fraction")]:
        row = result[result.term == ours].iloc[0]
        assert row["statistic"] == pytest.approx(table.loc[theirs, "F"], rel=1e-9)
        assert row["p"] == pytest.approx(table.loc[theirs, "PR(>F)"], rel=1e-9)
        assert row["df_num"] == table.loc[theirs, "df"] and row["df_den"] == table.loc["Residual", "df"]
        ss = table.loc[theirs, "sum_sq"]
        assert row["effect_size"] == pytest.approx(ss / (ss + table.loc["Residual", "sum_sq"]), rel=1e-9)
    # adjusted difference trs - hc = coefficient of trs (hc is the reference)
    names = fit.params.index
    trs, ntrs = (names == "C(group)[T.trs]").astype(float), (names == "C(group)[T.ntrs]").astype(float)
    for contrast, vector in [("hc-trs", -trs), ("ntrs-trs", ntrs - trs)]:
        direct = fit.t_test(vector)
        row = result.loc[("posthoc", contrast)]
        assert row["statistic"] == pytest.approx(float(np.squeeze(direct.tvalue)), rel=1e-9)
        assert row["p"] == pytest.approx(float(np.squeeze(direct.pvalue)), rel=1e-9)
        assert row["effect_size"] == pytest.approx(float(np.squeeze(direct.effect)) / np.sqrt(fit.mse_resid))
    posthoc = result[result.term == "posthoc"]
    np.testing.assert_allclose(posthoc["p_holm"], multipletests(posthoc["p"], method="holm")[1])
    sizes = group_sizes(values, participants, group_by="group", covariates=["age", "sex", "gm_fraction"],
                        measure_name="x").set_index("group")
    assert sizes.loc["trs", "adjusted_mean"] - sizes.loc["hc", "adjusted_mean"] == pytest.approx(
        fit.params["C(group)[T.trs]"])
    assert sizes["n"].tolist() == [20, 20, 20]


def test_anova_without_covariates_equals_one_way_anova():
    values, participants = simulate(7, EFFECT, 1, covariate_effects=False)
    result = group_statistics(values, participants, group_by="group", measure_name="x")
    row = result[result.term == "group"].iloc[0]
    data = values.merge(participants, on="participant_id")
    f, p = stats.f_oneway(*[data.loc[data.group == g, "value"] for g in ("hc", "ntrs", "trs")])
    assert row["test"] == "anova"
    assert row["statistic"] == pytest.approx(f) and row["p"] == pytest.approx(p)
    sizes = group_sizes(values, participants, group_by="group", measure_name="x")
    np.testing.assert_allclose(sizes["adjusted_mean"], sizes["mean"])


def test_holm_across_metabolites_for_omnibus_rows():
    values, participants = simulate(8, EFFECT, 5)
    result = group_statistics(values, participants, group_by="group", covariates=["age"], measure_name="x")
    for term in ("group", "age"):
        rows = result[result.term == term]
        np.testing.assert_allclose(rows["p_holm"], multipletests(rows["p"], method="holm")[1])
    assert result[result.term == "assumption"]["p_holm"].isna().all()
    p = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(holm(p)[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="holm")[1])
    assert np.isnan(holm(p)[1])


def test_group_order_sets_contrast_names():
    values, participants = simulate(9, EFFECT, 1)
    result = group_statistics(values, participants, group_by="group", measure_name="x",
                              group_order=["trs", "ntrs", "hc"])
    assert result[result.term == "posthoc"]["contrast"].tolist() == ["trs-ntrs", "trs-hc", "ntrs-hc"]
    with pytest.raises(UsageError, match="group_order lacks group"):
        group_statistics(values, participants, group_by="group", measure_name="x", group_order=["trs", "hc"])


def test_qc_exclusions_change_n():
    """Gate -> collapse -> statistics: an excluded spectrum and a high-CRLB value lower n."""
    _, participants = simulate(10, EFFECT, 1)
    rng = np.random.default_rng(10)
    pid = participants["participant_id"]
    qc = pd.DataFrame({"participant_id": pid, "session": "n/a", "acquisition": "n/a", "volume": "n/a",
                       "run": "n/a", "snr_naa": 30.0, "fwhm_naa_ppm": 0.05})
    qc.loc[0, "snr_naa"] = 5.0  # first hc participant: whole spectrum excluded
    conc = pd.concat([qc[["participant_id", "session", "acquisition", "volume", "run"]].assign(
        metabolite=m, amplitude=1.0, crlb_percent=5.0, flag="ok",
        conc_tissue_corrected_mM=rng.normal(10, 1, len(pid))) for m in ("Glx", "GABA")], ignore_index=True)
    last_trs = (conc.participant_id == pid.iloc[59]) & (conc.metabolite == "GABA")
    conc.loc[last_trs, "crlb_percent"] = 40.0
    gated = gate_metabolites(conc, gate_spectra(qc, QcThresholds()), QcThresholds())
    values = collapse_repeats(gated).rename(columns={"conc_tissue_corrected_mM": "value"})
    result = group_statistics(values, participants, group_by="group", measure_name="conc_tissue_corrected_mM")
    n = result[result.term == "group"].set_index("metabolite")["n"]
    assert n["Glx"] == 59 and n["GABA"] == 58
    sizes = group_sizes(values, participants, group_by="group",
                        measure_name="conc_tissue_corrected_mM").set_index(["metabolite", "group"])["n"]
    assert sizes[("GABA", "hc")] == 19 and sizes[("GABA", "trs")] == 19 and sizes[("Glx", "trs")] == 20


def test_errors_the_user_can_cause():
    values, participants = simulate(11, EFFECT, 1)
    with pytest.raises(InputError, match=r"unknown column\(s\) diagnosis; available columns: group, age, sex"):
        group_statistics(values, participants, group_by="diagnosis", measure_name="x")
    with pytest.raises(InputError, match="participants.tsv is missing"):
        group_statistics(values, None, group_by="group", measure_name="x")
    small = values[~values.participant_id.isin([f"sub-r0000x{i:03d}" for i in range(41, 60)])]
    with pytest.raises(InputError,
                       match=r"no metabolite can be tested; rep0000: group 'trs' of 'group' has n=1 for rep0000"):
        group_statistics(small, participants, group_by="group", measure_name="x")
    notes = participants.assign(notes=[f"free text {i}" for i in range(len(participants))])
    with pytest.raises(InputError, match="'notes' is neither numeric nor categorical"):
        group_statistics(values, notes, group_by="group", covariates=["notes"], measure_name="x")
    with pytest.raises(InputError, match="more than one rep0000 value"):
        group_statistics(pd.concat([values, values]), participants, group_by="group", measure_name="x")
    with pytest.raises(UsageError, match="cannot also be a covariate"):
        group_statistics(values, participants, group_by="group", covariates=["group"], measure_name="x")


def test_text_covariate_with_few_levels_is_categorical_and_constant_one_is_dropped():
    values, participants = simulate(12, EFFECT, 1)
    participants["site"] = "A"
    result = group_statistics(values, participants, group_by="group", covariates=["sex", "site"],
                              measure_name="x")
    assert result[result.term == "sex"]["df_num"].item() == 1
    assert "site" not in set(result["term"])


def test_chain_on_tables_read_as_text():
    """participants.tsv read with dtype=str, tissue covariate merged per spectrum: same model."""
    values, participants = simulate(13, EFFECT, 1)
    rng = np.random.default_rng(13)
    entities = {"session": "n/a", "acquisition": "press", "volume": "dacc", "run": "n/a"}
    conc = values.assign(**entities, conc_tissue_corrected_mM=values["value"].astype(str), crlb_percent="5",
                         amplitude="1", flag="ok").drop(columns="value")
    tissue = participants[["participant_id"]].assign(**entities, gm_fraction=rng.uniform(0.4, 0.7, 60))
    qc = participants[["participant_id"]].assign(**entities, snr_naa="40", fwhm_naa_ppm="0.04")
    gated = gate_metabolites(conc, gate_spectra(qc))
    per_participant = collapse_repeats(add_spectrum_columns(gated, tissue, ["gm_fraction"]))
    as_text = participants.astype(str)
    result = group_statistics(per_participant.rename(columns={"conc_tissue_corrected_mM": "value"}), as_text,
                              group_by="group", covariates=["age", "sex", "gm_fraction"], measure_name="m")
    data = values.merge(participants, on="participant_id").merge(tissue[["participant_id", "gm_fraction"]])
    fit = smf.ols("value ~ C(group) + age + C(sex) + gm_fraction", data=data).fit()
    table = anova_lm(fit, typ=2)
    assert result[result.term == "group"]["statistic"].item() == pytest.approx(table.loc["C(group)", "F"])
    assert result[result.term == "gm_fraction"]["p"].item() == pytest.approx(table.loc["gm_fraction", "PR(>F)"])


def test_numeric_group_codes_are_labels():
    values, participants = simulate(14, EFFECT, 1)
    participants["arm"] = participants["group"].map({"hc": 1, "ntrs": 2, "trs": 3})
    result = group_statistics(values, participants, group_by="arm", measure_name="x")
    assert result[result.term == "posthoc"]["contrast"].tolist() == ["1-2", "1-3", "2-3"]
    assert result[result.term == "group"]["df_num"].item() == 2


def test_untestable_metabolites_are_skipped_not_fatal(caplog):
    """A metabolite with the same value for everyone (tCr as a ratio to tCr) or too few values
    for the covariate model is skipped with a warning; the others are tested."""
    import logging

    rng = np.random.default_rng(5)
    n = 8
    pid = [f"sub-{i:02d}" for i in range(n)]
    participants = pd.DataFrame({"participant_id": pid, "group": ["hc", "pt"] * (n // 2),
                                 "age": rng.uniform(20, 60, n)})
    values = pd.concat([
        pd.DataFrame({"participant_id": pid, "metabolite": "tNAA", "value": rng.normal(1.4, 0.1, n)}),
        pd.DataFrame({"participant_id": pid, "metabolite": "tCr", "value": 1.0}),
        pd.DataFrame({"participant_id": pid[:3], "metabolite": "GABA", "value": rng.normal(0.2, 0.02, 3)}),
    ])
    with caplog.at_level(logging.WARNING):
        frame = group_statistics(values, participants, group_by="group", covariates=["age"], measure_name="ratio_tcr")
    assert set(frame["metabolite"]) == {"tNAA"}
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "tCr: the same value for every participant" in text and "GABA" in text
    with pytest.raises(InputError, match="no metabolite can be tested"):
        group_statistics(values[values.metabolite != "tNAA"], participants, group_by="group", covariates=["age"],
                         measure_name="ratio_tcr")


def test_no_variation_within_groups_is_skipped(caplog):
    import logging

    pid = [f"sub-{i:02d}" for i in range(6)]
    participants = pd.DataFrame({"participant_id": pid, "group": ["a", "b"] * 3})
    values = pd.concat([pd.DataFrame({"participant_id": pid, "metabolite": "X", "value": [0.0, 1.0] * 3}),
                        pd.DataFrame({"participant_id": pid, "metabolite": "Y",
                                      "value": [1.0, 2.0, 1.5, 2.2, 0.9, 2.5]})])
    with caplog.at_level(logging.WARNING):
        frame = group_statistics(values, participants, group_by="group", measure_name="x")
    assert set(frame["metabolite"]) == {"Y"}
    assert any("no variation within the groups" in r.getMessage() for r in caplog.records)
