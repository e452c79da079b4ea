"""Correlations with clinical scores: known rho recovered, confounder removed, Holm."""
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from bidsmrs.errors import InputError, UsageError
from bidsmrs.stats import STATS_COLUMNS
from bidsmrs.stats.correlation import correlations, partial_pearson


def _table(rng, n, metabolites):
    pid = [f"sub-{i:03d}" for i in range(n)]
    values = pd.concat([pd.DataFrame({"participant_id": pid, "metabolite": m, "value": v})
                        for m, v in metabolites.items()])
    return pid, values


def test_known_rho_recovered_pooled_and_per_group():
    rng = np.random.default_rng(0)
    n, rho = 400, 0.6
    xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    pid, values = _table(rng, n, {"Glx": xy[:, 0]})
    participants = pd.DataFrame({"participant_id": pid, "panss_total": xy[:, 1] * 10 + 60,
                                 "group": np.where(np.arange(n) % 2, "trs", "ntrs")})
    result = correlations(values, participants, columns=["panss_total"], group_by="group",
                          measure_name="conc_tissue_corrected_mM")
    assert tuple(result.columns) == STATS_COLUMNS
    assert set(result["contrast"]) == {"pooled", "ntrs", "trs"}
    pooled = result[(result.contrast == "pooled")].set_index("test")
    assert pooled.loc["pearson", "statistic"] == pytest.approx(rho, abs=0.08)
    # Spearman rho of a bivariate normal: (6/pi) asin(rho/2)
    assert pooled.loc["spearman", "statistic"] == pytest.approx(6 / np.pi * np.arcsin(rho / 2), abs=0.08)
    assert pooled.loc["pearson", "n"] == n and pooled.loc["pearson", "df_den"] == n - 2
    assert (result[result.contrast == "trs"]["n"] == n // 2).all()
    assert (result["term"] == "panss_total").all() and (result["p"] < 1e-6).all()
    assert "partial_pearson" not in set(result["test"])


def test_partial_correlation_removes_a_confounder():
    """Glx and the score are related only through age: Pearson finds it, the partial r does not."""
    rng = np.random.default_rng(1)
    n, reps = 100, 200
    age = rng.normal(40, 12, n)
    score = 0.5 * age + rng.normal(0, 3, n)
    glx = {f"rep{r:03d}": 0.05 * age + rng.normal(0, 0.3, n) for r in range(reps)}
    pid, values = _table(rng, n, glx)
    participants = pd.DataFrame({"participant_id": pid, "age": age, "score": score,
                                 "sex": rng.choice(["M", "F"], n)})
    result = correlations(values, participants, columns=["score"], covariates=["age", "sex"])
    pearson = result[result.test == "pearson"]
    partial = result[result.test == "partial_pearson"]
    assert (pearson["p"] < 0.05).mean() == 1.0 and pearson["statistic"].mean() > 0.5
    assert (partial["p"] < 0.05).mean() <= 0.08  # nominal 0.05
    assert abs(partial["statistic"].mean()) < 0.03
    assert (partial["df_den"] == n - 2 - 2).all() and (partial["effect_size_type"] == "partial_r").all()
    # the partial r equals the correlation of the parts of Glx and score that age does not explain
    one = values[values.metabolite == "rep000"]["value"].to_numpy()
    resid = [v - np.polyval(np.polyfit(age, v, 1), age) for v in (one, score)]
    with_age_only = correlations(values[values.metabolite == "rep000"], participants, columns=["score"],
                                 covariates=["age"])
    assert with_age_only.set_index("test").loc["partial_pearson", "statistic"] == pytest.approx(
        np.corrcoef(*resid)[0, 1])


def test_partial_pearson_formula_for_one_covariate():
    rng = np.random.default_rng(2)
    z = rng.normal(size=50)
    x = z + rng.normal(size=50)
    y = 0.5 * z + 0.3 * x + rng.normal(size=50)
    r = np.corrcoef([x, y, z])
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    got, p, df = partial_pearson(x, y, z[:, None])
    assert got == pytest.approx(expected) and df == 47 and 0 < p < 1


def test_holm_across_metabolites_and_small_groups_skipped():
    rng = np.random.default_rng(3)
    n = 30
    score = rng.normal(size=n)
    pid, values = _table(rng, n, {m: score * k + rng.normal(size=n) for m, k in
                                  (("NAA", 0.0), ("Glx", 0.5), ("GABA", 1.0))})
    groups = np.array(["hc"] * 28 + ["trs"] * 2)
    participants = pd.DataFrame({"participant_id": pid, "score": score, "group": groups})
    result = correlations(values, participants, columns=["score"], group_by="group")
    assert "trs" not in set(result["contrast"])  # n=2: too small, logged, no row
    for _, rows in result.groupby(["test", "contrast"]):
        assert len(rows) == 3
        np.testing.assert_allclose(rows["p_holm"], multipletests(rows["p"], method="holm")[1])


def test_correlation_errors():
    rng = np.random.default_rng(4)
    pid, values = _table(rng, 10, {"Glx": rng.normal(size=10)})
    participants = pd.DataFrame({"participant_id": pid, "sex": ["M", "F"] * 5, "score": rng.normal(size=10)})
    with pytest.raises(InputError, match="'sex' is not numeric"):
        correlations(values, participants, columns=["sex"])
    with pytest.raises(InputError, match="unknown column.*panss.*available columns: sex, score"):
        correlations(values, participants, columns=["panss"])
    with pytest.raises(InputError, match="participants.tsv is missing"):
        correlations(values, None, columns=["score"])
    with pytest.raises(UsageError):
        correlations(values, participants, columns=[])
    with pytest.raises(UsageError, match="both correlated and a covariate"):
        correlations(values, participants, columns=["score"], covariates=["score"])


@pytest.mark.parametrize("n", [3, 4, 6])
def test_small_samples_get_exact_permutation_p_values(n):
    """A perfect correlation of n points is no evidence for n = 3: its exact two-sided p is
    2/n! (1/3 for n = 3), where the t approximation gave p = 0."""
    import math

    pid, values = _table(None, n, {"tNAA": np.arange(n, dtype=float)})
    participants = pd.DataFrame({"participant_id": pid, "age": 20.0 + 3.0 * np.arange(n)})
    result = correlations(values, participants, columns=["age"]).set_index("test")
    for test in ("pearson", "spearman"):
        assert abs(result.loc[test, "statistic"]) == pytest.approx(1.0)
        assert result.loc[test, "p"] == pytest.approx(2 / math.factorial(n))
    # the exact p of an imperfect correlation matches a direct enumeration
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=6), rng.normal(size=6)
    pid, values = _table(None, 6, {"Glx": x})
    participants = pd.DataFrame({"participant_id": pid, "age": y})
    p = correlations(values, participants, columns=["age"]).set_index("test").loc["pearson", "p"]
    from itertools import permutations

    r0 = abs(np.corrcoef(x, y)[0, 1])
    rs = [abs(np.corrcoef(x, np.array(perm))[0, 1]) for perm in permutations(y)]
    assert p == pytest.approx(np.mean(np.array(rs) >= r0 - 1e-12))


def test_exact_p_edge_cases():
    """r = 0 in exact arithmetic gives p = 1 (float noise must not count), and a small-sample
    partial correlation gets a residual-permutation p, not the t test's p ≈ 0."""
    from bidsmrs.stats.correlation import _exact_p

    x, y = np.array([0.9, 0.7, 1.0, 1.0]), np.array([1.3, 1.4, 1.5, 1.3])
    assert _exact_p(x, y) == pytest.approx(1.0)
    n = 5
    pid, values = _table(None, n, {"tNAA": np.arange(n, dtype=float)})
    participants = pd.DataFrame({"participant_id": pid, "age": 2.0 * np.arange(n) + 1.0,
                                 "sex": ["F", "M", "F", "M", "M"]})
    result = correlations(values, participants, columns=["age"], covariates=["sex"]).set_index("test")
    assert result.loc["partial_pearson", "p"] >= 1 / 120 - 1e-12  # at least one pairing of 5! (t test: ~1e-100)
