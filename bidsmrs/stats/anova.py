"""Group comparison per metabolite: one-way ANOVA or ANCOVA with post-hoc contrasts.

Model, per metabolite (complete cases only)::

    value ~ C(group) + covariate_1 + C(categorical_covariate) + ...      (statsmodels OLS)

Rows of the result (DESIGN.md §8 columns, :data:`STATS_COLUMNS`):

``term = "group"``
    Omnibus group effect: type II F test (``anova_lm(typ=2)``; with no covariates this is
    the one-way ANOVA F). ``test`` is ``anova`` or ``ancova``. Effect size partial η² =
    SS_group / (SS_group + SS_residual). ``p_holm``: Holm across the metabolites analysed
    together (same measure).
``term = <covariate>``
    Type II F test of that covariate, partial η², Holm across metabolites as above.
``term = "posthoc"``, ``contrast = "a-b"``
    t test of the difference of the adjusted group means (the group coefficients of the
    same OLS model, so covariates are held equal; ``df_den`` = residual df). ``p_holm``:
    Holm across the pairs of that metabolite. Cohen's d = (adjusted mean a − adjusted
    mean b) / √MSE of the model (root mean squared residual). ``n`` = n_a + n_b.
``term = "assumption"``
    Reported, never blocking: ``levene`` (Brown–Forsythe variant, centred on the median)
    of the model residuals across groups, and ``shapiro`` (Shapiro–Wilk) of the residuals.
    ``p_holm`` is n/a.

Missing values (contrast of omnibus rows, df of t tests, ...) are NaN (``n/a`` in TSV).
"""
from __future__ import annotations

import logging
import warnings
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from bidsmrs.errors import InputError, UsageError
from bidsmrs.stats.sessions import join_participants

log = logging.getLogger(__name__)

#: Columns of ``group_desc-stats_svs.tsv`` (DESIGN.md §8, contract).
STATS_COLUMNS = ("metabolite", "measure", "term", "contrast", "test", "statistic", "df_num",
                 "df_den", "p", "p_holm", "effect_size", "effect_size_type", "n")

GROUP_SIZE_COLUMNS = ("metabolite", "measure", "group", "n", "mean", "sd", "adjusted_mean")


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values; NaN entries stay NaN and are not counted."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def stats_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame with exactly :data:`STATS_COLUMNS` (missing cells NaN)."""
    frame = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    for col in ("statistic", "df_num", "df_den", "p", "p_holm", "effect_size"):
        frame[col] = frame[col].astype(float)
    frame["n"] = frame["n"].astype(int)
    return frame


def check_values(values: pd.DataFrame) -> None:
    missing = [c for c in ("participant_id", "metabolite", "value") if c not in values.columns]
    if missing:
        raise InputError(f"the values table lacks column(s) {', '.join(missing)}")
    dup = values.duplicated(["participant_id", "metabolite"])
    if dup.any():
        row = values[dup].iloc[0]
        raise InputError(f"{row['participant_id']} has more than one {row['metabolite']} value: collapse "
                         "repeated sessions/runs and select one acquisition and volume first")


class _Design:
    """Per-metabolite model data: safe column names, levels, formula."""

    def __init__(self, values, participants, group_by, covariates, group_order):
        if not group_by:
            raise UsageError("group statistics need a group column (--group-by)")
        covariates = list(dict.fromkeys(covariates))
        if group_by in covariates:
            raise UsageError(f"'{group_by}' is the group column and cannot also be a covariate")
        check_values(values)
        table, kinds = join_participants(values, participants, [group_by] + covariates)
        table = table.copy()
        table["value"] = pd.to_numeric(table["value"], errors="coerce")
        if group_order is None:
            source = participants if participants is not None and group_by in participants else table
            source, _ = join_participants(source[["participant_id", group_by]], None, [group_by])
            levels = sorted(source[group_by].dropna().unique(), key=str)
        else:
            levels = [str(g) for g in group_order]
            unknown = sorted(set(table[group_by].dropna()) - set(levels))
            if unknown:
                raise UsageError(f"group_order lacks group(s) {', '.join(unknown)} of '{group_by}'")
        if len(levels) < 2:
            raise InputError(f"column '{group_by}' has {len(levels)} group(s); a comparison needs at least 2")
        self.group_by, self.levels, self.kinds = group_by, levels, kinds
        self.names = {"_g": group_by}
        data = pd.DataFrame({"participant_id": table["participant_id"], "metabolite": table["metabolite"],
                             "_y": table["value"],
                             "_g": pd.Categorical(table[group_by], categories=levels)})
        terms = ["C(_g)"]
        for i, cov in enumerate(covariates):
            safe = f"_c{i}"
            data[safe] = table[cov].to_numpy()
            self.names[safe] = cov
            terms.append(safe if kinds[cov] == "numeric" else f"C({safe})")
        self.data, self.terms = data, terms

    def subset(self, metabolite) -> pd.DataFrame:
        """Complete cases of one metabolite; raises for a group with < 2 participants."""
        rows = self.data[self.data["metabolite"] == metabolite]
        complete = rows.dropna(subset=[c for c in rows.columns if c.startswith("_")])
        if len(complete) < len(rows):
            log.warning("%s: %d participant(s) left out for missing value, group or covariate",
                        metabolite, len(rows) - len(complete))
        counts = complete["_g"].value_counts()
        for level in self.levels:
            if counts.get(level, 0) < 2:
                raise InputError(f"group '{level}' of '{self.group_by}' has n={counts.get(level, 0)} for "
                                 f"{metabolite} after QC exclusion; at least 2 are needed")
        return complete

    def formula(self, data: pd.DataFrame) -> tuple[str, list[str]]:
        """Formula without covariates that are constant in ``data`` (they are logged)."""
        kept = ["C(_g)"]
        for term in self.terms[1:]:
            safe = term[2:-1] if term.startswith("C(") else term
            if data[safe].nunique() < 2:
                log.warning("covariate '%s' is constant in these data and is left out", self.names[safe])
            else:
                kept.append(term)
        return "_y ~ " + " + ".join(kept), kept

    def name(self, term: str) -> str:
        safe = term[2:-1] if term.startswith("C(") else term
        return "group" if safe == "_g" else self.names[safe]


def _fit(design: _Design, data: pd.DataFrame):
    formula, terms = design.formula(data)
    n_params = 1 + sum(data[t[2:-1]].nunique() - 1 if t.startswith("C(") else 1 for t in terms)
    if len(data) <= n_params:
        raise InputError(f"too few participants (n={len(data)}) for a model with {n_params} parameters")
    fit = smf.ols(formula, data=data).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = anova_lm(fit, typ=2)
    return fit, table, terms


def _contrast_vector(fit, a: str, b: str) -> np.ndarray:
    vector = np.zeros(len(fit.params))
    names = list(fit.params.index)
    for level, sign in ((a, 1.0), (b, -1.0)):
        name = f"C(_g)[T.{level}]"
        if name in names:  # the reference level has no coefficient
            vector[names.index(name)] = sign
    return vector


def _metabolite_rows(design: _Design, metabolite, measure: str, test: str) -> list[dict]:
    data = design.subset(metabolite)
    fit, table, terms = _fit(design, data)
    n = int(fit.nobs)
    ss_resid, df_resid = table.loc["Residual", "sum_sq"], table.loc["Residual", "df"]
    base = {"metabolite": metabolite, "measure": measure}
    rows = []
    for term in terms:
        ss = table.loc[term, "sum_sq"]
        rows.append({**base, "term": design.name(term), "contrast": np.nan, "test": test,
                     "statistic": table.loc[term, "F"], "df_num": table.loc[term, "df"], "df_den": df_resid,
                     "p": table.loc[term, "PR(>F)"], "effect_size": ss / (ss + ss_resid),
                     "effect_size_type": "partial_eta_squared", "n": n})
    root_mse = np.sqrt(fit.mse_resid)
    counts = data["_g"].value_counts()
    pairs = []
    for a, b in combinations(design.levels, 2):
        result = fit.t_test(_contrast_vector(fit, a, b))
        diff = float(np.squeeze(result.effect))
        pairs.append({**base, "term": "posthoc", "contrast": f"{a}-{b}", "test": "t",
                      "statistic": float(np.squeeze(result.tvalue)), "df_num": np.nan, "df_den": fit.df_resid,
                      "p": float(np.squeeze(result.pvalue)), "effect_size": diff / root_mse,
                      "effect_size_type": "cohens_d", "n": int(counts[a] + counts[b])})
    for row, p in zip(pairs, holm([r["p"] for r in pairs])):
        row["p_holm"] = p
    rows += pairs
    resid = fit.resid
    groups = [resid[data["_g"] == level] for level in design.levels]
    lev = stats.levene(*groups, center="median")
    rows.append({**base, "term": "assumption", "contrast": np.nan, "test": "levene",
                 "statistic": lev.statistic, "df_num": len(groups) - 1, "df_den": n - len(groups),
                 "p": lev.pvalue, "effect_size": np.nan, "effect_size_type": np.nan, "n": n})
    sw = stats.shapiro(resid) if n >= 3 else None
    rows.append({**base, "term": "assumption", "contrast": np.nan, "test": "shapiro",
                 "statistic": sw.statistic if sw else np.nan, "df_num": np.nan, "df_den": np.nan,
                 "p": sw.pvalue if sw else np.nan, "effect_size": np.nan, "effect_size_type": np.nan, "n": n})
    return rows


def group_statistics(values: pd.DataFrame, participants: pd.DataFrame | None, *, group_by: str,
                     covariates: Sequence[str] = (), measure_name: str,
                     group_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Compare groups per metabolite (ANOVA, or ANCOVA with covariates), with post-hoc tests.

    Parameters
    ----------
    values : DataFrame
        One row per participant and metabolite: ``participant_id``, ``metabolite``,
        ``value``; extra columns (e.g. ``gm_fraction`` averaged over the same spectra,
        see :func:`bidsmrs.stats.sessions.add_spectrum_columns`) can serve as covariates
        and take precedence over participants.tsv columns of the same name.
    participants : DataFrame or None
        participants.tsv as read.
    group_by : str
        Group column (always categorical, e.g. ``group`` with trs/ntrs/hc).
    covariates : sequence of str
        Numeric covariates enter linearly; text columns with few levels (``sex``) enter as
        categorical (treatment coded).
    measure_name : str
        Name of the concentration column analysed (the ``measure`` column).
    group_order : sequence of str, optional
        Order of the groups, which sets the contrast names (``a-b`` for ``a`` before
        ``b``). Default: sorted group labels of participants.tsv.

    Returns
    -------
    DataFrame
        Exactly :data:`STATS_COLUMNS`; rows described in the module docstring, metabolites
        in the order of first appearance in ``values``.

    Raises
    ------
    InputError
        Unknown column (lists the available ones), participants.tsv missing, a group with
        fewer than 2 participants for a metabolite after QC (names group, metabolite, n),
        free-text covariate, or too few participants for the model.
    UsageError
        No group column, or the group column also given as a covariate.
    """
    design = _Design(values, participants, group_by, covariates, group_order)
    test = "ancova" if len(design.terms) > 1 else "anova"
    rows = []
    for metabolite in pd.unique(design.data["metabolite"]):
        rows += _metabolite_rows(design, metabolite, measure_name, test)
    frame = stats_frame(rows)
    across = frame["term"].isin(["group", *[design.names[t] for t in design.names if t != "_g"]])
    for _, index in frame[across].groupby("term").groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p"])
    return frame


def group_sizes(values: pd.DataFrame, participants: pd.DataFrame | None, *, group_by: str,
                covariates: Sequence[str] = (), measure_name: str,
                group_order: Sequence[str] | None = None) -> pd.DataFrame:
    """n, mean, SD and adjusted mean per group and metabolite, on the data the model uses.

    Same arguments as :func:`group_statistics`. ``adjusted_mean`` is the model prediction
    for the group at the mean of the numeric covariates and the sample proportions of the
    categorical ones (estimated marginal mean); with no covariates it equals ``mean``.

    Returns
    -------
    DataFrame
        Columns :data:`GROUP_SIZE_COLUMNS`, one row per metabolite and group.
    """
    design = _Design(values, participants, group_by, covariates, group_order)
    rows = []
    for metabolite in pd.unique(design.data["metabolite"]):
        data = design.subset(metabolite)
        fit, _, _ = _fit(design, data)
        exog = pd.DataFrame(fit.model.exog, columns=fit.model.exog_names)
        centre = exog.mean()
        for level in design.levels:
            point = centre.copy()
            point[[c for c in point.index if c.startswith("C(_g)[T.")]] = 0.0
            if f"C(_g)[T.{level}]" in point.index:
                point[f"C(_g)[T.{level}]"] = 1.0
            y = data.loc[data["_g"] == level, "_y"]
            rows.append({"metabolite": metabolite, "measure": measure_name, "group": level, "n": len(y),
                         "mean": y.mean(), "sd": y.std(ddof=1),
                         "adjusted_mean": float(point.to_numpy() @ fit.params.to_numpy())})
    return pd.DataFrame(rows, columns=list(GROUP_SIZE_COLUMNS))
