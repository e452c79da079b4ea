"""Correlations of metabolite values with clinical scores (e.g. ``panss_total``).

For each clinical column, each subset (``pooled`` = all participants, and each group when
``group_by`` is given) and each metabolite, on complete cases:

``test = "pearson"``
    Pearson r, p from the t distribution with n − 2 df (``df_den``).
``test = "spearman"``
    Spearman ρ (scipy), ``df_den`` = n − 2.

``test = "partial_pearson"`` (only with covariates)
    Pearson r of the residuals of value and score after each is regressed (OLS with
    intercept) on the covariates (numeric linearly, categorical as treatment-coded
    dummies); p from t = r·√(df / (1 − r²)) with df = n − 2 − k, k = number of covariate
    regressors (``df_den``).

For n ≤ ``EXACT_MAX_N`` the Pearson and Spearman p values come from the exact permutation
distribution (all n! pairings, two-sided): the t approximation gives p = 0 for any perfect
correlation, e.g. three points in order, whose exact p is 1/3. The partial correlation's p is
then the permutation p of the covariate-adjusted residuals (Kennedy 1995, J Bus Econ Stat 13:85).

Rows use the columns of :data:`bidsmrs.stats.anova.STATS_COLUMNS`: ``term`` = the clinical
column, ``contrast`` = group name or ``pooled``, ``statistic`` = ``effect_size`` = r (or ρ),
``effect_size_type`` = ``r``/``rho``/``partial_r``, ``p_holm`` = Holm across metabolites
for the same clinical column, test and subset. A subset too small for a test (n < 3, or
df < 1 for the partial correlation) or with a constant variable gives no row (logged).
The pooled analysis does not adjust for group unless the group column is a covariate;
covariates constant within a subset are left out there (logged).
"""
from __future__ import annotations

import functools
import itertools
import logging
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bidsmrs.errors import InputError, UsageError
from bidsmrs.stats.anova import check_values, holm, stats_frame
from bidsmrs.stats.sessions import join_participants

log = logging.getLogger(__name__)

POOLED = "pooled"
#: Largest n whose Pearson/Spearman p values are exact permutation p values (8! = 40 320 pairings).
EXACT_MAX_N = 8


def _exact_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided exact permutation p of Pearson's r between ``x`` and ``y``: the fraction of all
    n! pairings whose |r| is at least the observed |r|."""
    ys = y[_permutations(len(y))]  # (n!, n)
    xc = x - x.mean()
    yc = ys - ys.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (yc @ xc) / (np.sqrt((xc ** 2).sum()) * np.sqrt((yc ** 2).sum(axis=1)))
    observed = abs(float(r[0]))  # the identity pairing comes first
    return float(np.mean(np.abs(r) >= observed - 1e-12))  # absolute: r = 0 is ~1e-17 in floats


@functools.lru_cache(maxsize=None)
def _permutations(n: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n))), dtype=np.intp)


def _regressors(data: pd.DataFrame, covariates: Sequence[str], kinds: dict[str, str]) -> np.ndarray:
    """Design matrix (without intercept) of the covariates that vary in ``data``."""
    blocks = []
    for cov in covariates:
        column = data[cov]
        if column.nunique() < 2:
            log.warning("covariate '%s' is constant in this subset and is left out", cov)
            continue
        if kinds[cov] == "numeric":
            blocks.append(column.to_numpy(float)[:, None])
        else:
            blocks.append(pd.get_dummies(column, drop_first=True).to_numpy(float))
    return np.hstack(blocks) if blocks else np.empty((len(data), 0))


def partial_pearson(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float, int]:
    """Partial correlation of ``x`` and ``y`` given the columns of ``z``.

    Returns
    -------
    r, p, df
        Correlation of the OLS residuals (intercept added), two-sided p, and df = n − 2 − k.
    """
    design = np.column_stack([np.ones(len(x)), z])
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    df = len(x) - 2 - z.shape[1]
    r = float(np.dot(rx, ry) / np.sqrt(np.dot(rx, rx) * np.dot(ry, ry)))
    r = float(np.clip(r, -1.0, 1.0))
    t = r * np.sqrt(df / max(1.0 - r * r, np.finfo(float).tiny))
    return r, float(2 * stats.t.sf(abs(t), df)), df


def _subset_rows(data: pd.DataFrame, column: str, covariates, kinds, contrast, metabolite, measure):
    base = {"metabolite": metabolite, "measure": measure, "term": column, "contrast": contrast,
            "df_num": np.nan, "n": len(data)}
    x, y = data["value"].to_numpy(float), data[column].to_numpy(float)
    if len(data) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        # n=0 is common (e.g. no PANSS for controls): not worth a warning
        log.log(logging.WARNING if len(data) else logging.INFO,
                "%s vs %s (%s): n=%d or a constant variable, no correlation", metabolite, column, contrast, len(data))
        return []
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    p_pearson, p_spearman = pr.pvalue, sr.pvalue
    if len(x) <= EXACT_MAX_N:  # Spearman's ρ is Pearson's r of the ranks
        p_pearson = _exact_p(x, y)
        p_spearman = _exact_p(stats.rankdata(x), stats.rankdata(y))
    rows = [{**base, "test": "pearson", "statistic": pr.statistic, "df_den": len(x) - 2, "p": p_pearson,
             "effect_size": pr.statistic, "effect_size_type": "r"},
            {**base, "test": "spearman", "statistic": sr.statistic, "df_den": len(x) - 2, "p": p_spearman,
             "effect_size": sr.statistic, "effect_size_type": "rho"}]
    if covariates:
        z = _regressors(data, covariates, kinds)
        if len(x) - 2 - z.shape[1] < 1:
            log.warning("%s vs %s (%s): n=%d too small for a partial correlation with %d regressors",
                        metabolite, column, contrast, len(x), z.shape[1])
        else:
            r, p, df = partial_pearson(x, y, z)
            if len(x) <= EXACT_MAX_N:  # residual permutation (Kennedy 1995): the t test gives p ≈ 0 here
                design = np.column_stack([np.ones(len(x)), z])
                rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
                ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
                p = _exact_p(rx, ry)
            rows.append({**base, "test": "partial_pearson", "statistic": r, "df_den": df, "p": p,
                         "effect_size": r, "effect_size_type": "partial_r"})
    return rows


def correlations(values: pd.DataFrame, participants: pd.DataFrame | None, *, columns: Sequence[str],
                 covariates: Sequence[str] = (), group_by: str | None = None,
                 measure_name: str = "value") -> pd.DataFrame:
    """Correlate each metabolite's value with clinical scores, pooled and per group.

    Parameters
    ----------
    values : DataFrame
        ``participant_id``, ``metabolite``, ``value`` (one row per participant and
        metabolite); extra columns can serve as covariates.
    participants : DataFrame or None
        participants.tsv as read.
    columns : sequence of str
        Clinical columns (numeric) to correlate with (``--correlate``).
    covariates : sequence of str
        Covariates of the partial correlation (``--covariates``).
    group_by : str, optional
        Also correlate within each group.
    measure_name : str
        Name of the concentration column analysed (the ``measure`` column).

    Returns
    -------
    DataFrame
        Columns of :data:`bidsmrs.stats.anova.STATS_COLUMNS` (module docstring).

    Raises
    ------
    InputError
        Unknown column, participants.tsv missing, non-numeric clinical column, free-text
        covariate.
    UsageError
        No clinical column, or a clinical column also given as a covariate.
    """
    columns, covariates = list(dict.fromkeys(columns)), list(dict.fromkeys(covariates))
    if not columns:
        raise UsageError("correlations need at least one clinical column (--correlate)")
    clash = set(columns) & set(covariates)
    if clash:
        raise UsageError(f"column(s) {', '.join(sorted(clash))} cannot be both correlated and a covariate")
    check_values(values)
    needed = columns + covariates + ([group_by] if group_by and group_by not in covariates else [])
    table, kinds = join_participants(values, participants, needed, categorical=[group_by] if group_by else [])
    for column in columns:
        if kinds[column] != "numeric":
            raise InputError(f"column '{column}' is not numeric and cannot be correlated")
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    subsets = [(POOLED, table)]
    if group_by:
        subsets += [(str(g), part) for g, part in table.groupby(group_by, sort=True)]
    rows = []
    for column in columns:
        for contrast, part in subsets:
            for metabolite, data in part.groupby("metabolite", sort=False):
                data = data.dropna(subset=["value", column, *covariates])
                rows += _subset_rows(data, column, covariates, kinds, contrast, metabolite, measure_name)
    frame = stats_frame(rows)
    for _, index in frame.groupby(["term", "test", "contrast"]).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p"])
    return frame
