"""Group comparison per metabolite: one-way ANOVA or ANCOVA with post-hoc contrasts.

Model, per metabolite (complete cases only)::

    value ~ C(group) + covariate_1 + C(categorical_covariate) + ...      (statsmodels OLS)

Rows of the result (DESIGN.md §8 columns, :data:`STATS_COLUMNS`):

``term = "group"``
    Omnibus group effect: type II F test; with no covariates this is the one-way ANOVA F.
    It is computed as the Wald F test (``OLSResults.f_test``) that the term's coefficients
    are zero, which for a model without interactions is exactly what
    ``statsmodels.stats.anova.anova_lm(typ=2)`` reports (the tests check this), about 20
    times faster because no formula is parsed per metabolite. Type II SS = F·df·MSE.
    ``test`` is ``anova`` or ``ancova``. Effect size partial η² = SS_group / (SS_group +
    SS_residual). ``p_holm``: Holm across the metabolites analysed together (same measure).
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
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from bidsmrs.errors import InputError, UsageError
from bidsmrs.stats.sessions import join_participants

log = logging.getLogger(__name__)

#: Columns of ``group_desc-stats_svs.tsv`` (DESIGN.md §8, contract).
STATS_COLUMNS = ("metabolite", "measure", "term", "contrast", "test", "statistic", "df_num",
                 "df_den", "p", "p_holm", "effect_size", "effect_size_type", "n")

GROUP_SIZE_COLUMNS = ("metabolite", "measure", "group", "n", "mean", "sd", "adjusted_mean")


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaN entries stay NaN and are not counted.

    The k-th smallest of m p-values becomes max over j <= k of min(1, (m - j + 1) p_(j))
    (as ``statsmodels.stats.multitest.multipletests(method="holm")``, which is much slower
    per call).
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        steps = p[order] * np.arange(ok.size, 0, -1)
        out[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return out


def stats_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame with exactly :data:`STATS_COLUMNS` (missing cells NaN)."""
    frame = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    for col in ("statistic", "df_num", "df_den", "p", "p_holm", "effect_size"):
        frame[col] = frame[col].astype(float)
    frame["n"] = frame["n"].astype(int)
    return frame


def check_values(values: pd.DataFrame) -> None:
    """Raise InputError unless ``values`` has one ``value`` per participant and metabolite."""
    missing = [c for c in ("participant_id", "metabolite", "value") if c not in values.columns]
    if missing:
        raise InputError(f"the values table lacks column(s) {', '.join(missing)}")
    dup = values.duplicated(["participant_id", "metabolite"])
    if dup.any():
        row = values[dup].iloc[0]
        raise InputError(f"{row['participant_id']} has more than one {row['metabolite']} value: select one "
                         "session and acquisition for the statistics (group level --session-label, or "
                         '--bids-filter-file with {"svs": {"acquisition": "..."}})')


class _Design:
    """Participants' data joined with the group and covariates, under safe column names."""

    def __init__(self, values, participants, group_by, covariates, group_order):
        if not group_by:
            raise UsageError("group statistics need a group column (--group-by)")
        covariates = list(dict.fromkeys(covariates))
        if group_by in covariates:
            raise UsageError(f"'{group_by}' is the group column and cannot also be a covariate")
        reserved = sorted({"group", "posthoc", "assumption"} & set(covariates))
        if reserved:
            raise UsageError(f"a covariate cannot be named {reserved[0]!r} (a reserved term of the stats table)")
        check_values(values)
        table, kinds = join_participants(values, participants, [group_by] + covariates, categorical=[group_by])
        if group_order is None:
            source = participants if participants is not None and group_by in participants else table
            source, _ = join_participants(source[["participant_id", group_by]], None, [group_by],
                                          categorical=[group_by])
            levels = sorted(source[group_by].dropna().unique(), key=str)
        else:
            levels = [str(g) for g in group_order]
            unknown = sorted(set(table[group_by].dropna()) - set(levels))
            if unknown:
                raise UsageError(f"group_order lacks group(s) {', '.join(unknown)} of '{group_by}'")
        if len(levels) < 2:
            raise InputError(f"column '{group_by}' has {len(levels)} group(s); a comparison needs at least 2")
        self.group_by, self.levels = group_by, levels
        self.covariates = [(f"_c{i}", cov, kinds[cov]) for i, cov in enumerate(covariates)]
        data = pd.DataFrame({"participant_id": table["participant_id"], "metabolite": table["metabolite"],
                             "_y": pd.to_numeric(table["value"], errors="coerce"), "_g": table[group_by]})
        for safe, cov, _ in self.covariates:
            data[safe] = table[cov].to_numpy()
        self.data = data
        self.metabolites = dict(tuple(data.groupby("metabolite", sort=False)))

    def subset(self, metabolite) -> pd.DataFrame:
        """Complete cases of one metabolite; raises for a group with < 2 participants."""
        rows = self.metabolites[metabolite]
        complete = rows.dropna(subset=[c for c in rows.columns if c.startswith("_")])
        if len(complete) < len(rows):
            log.warning("%s: %d participant(s) left out for missing value, group or covariate",
                        metabolite, len(rows) - len(complete))
        groups = complete["_g"].to_numpy()
        for level in self.levels:
            if (groups == level).sum() < 2:
                raise InputError(f"group '{level}' of '{self.group_by}' has n={(groups == level).sum()} for "
                                 f"{metabolite} (after QC exclusion; or not processed); at least 2 are needed")
        return complete

    def matrix(self, data: pd.DataFrame) -> tuple[np.ndarray, list[str], dict[str, list[int]]]:
        """Design matrix of ``value ~ C(group) + covariates`` (treatment coding).

        Returns the matrix, its column names and, per term (``group`` or covariate name),
        the indices of its columns. Covariates constant in ``data`` are left out (logged).
        """
        columns = {"Intercept": np.ones(len(data))}
        terms = {"group": []}
        for level in self.levels[1:]:  # the first level is the reference
            terms["group"].append(len(columns))
            columns[f"group[T.{level}]"] = (data["_g"].to_numpy() == level).astype(float)
        for safe, cov, kind in self.covariates:
            column = data[safe]
            if column.nunique() < 2:
                log.warning("covariate '%s' is constant in these data and is left out", cov)
                continue
            terms[cov] = []
            if kind == "numeric":
                terms[cov].append(len(columns))
                columns[cov] = column.to_numpy(float)
            else:
                for level in sorted(column.unique())[1:]:
                    terms[cov].append(len(columns))
                    columns[f"{cov}[T.{level}]"] = (column == level).to_numpy(float)
        matrix = np.column_stack(list(columns.values()))
        if len(data) <= matrix.shape[1]:
            raise InputError(f"too few participants (n={len(data)}) for a model with {matrix.shape[1]} parameters")
        if np.linalg.matrix_rank(matrix) < matrix.shape[1]:
            raise InputError("the group and covariates are collinear: "
                             f"{', '.join(t for t in terms if t != 'group') or 'group'}")
        return matrix, list(columns), terms


def _fit(design: _Design, data: pd.DataFrame):
    matrix, names, terms = design.matrix(data)
    return sm.OLS(data["_y"].to_numpy(float), matrix).fit(), names, terms


def _metabolite_rows(design: _Design, metabolite, data: pd.DataFrame, measure: str, test: str) -> list[dict]:
    """Rows of one metabolite; ``data`` = ``design.subset(metabolite)``."""
    fit, names, terms = _fit(design, data)
    n = int(fit.nobs)
    base = {"metabolite": metabolite, "measure": measure}
    rows = []
    for term, index in terms.items():
        # Wald F test that the term's coefficients are 0: the type II test of a main effect
        wald = fit.f_test(np.eye(len(names))[index])
        f, df_num = float(np.squeeze(wald.fvalue)), float(wald.df_num)
        ss = f * df_num * fit.scale  # type II sum of squares of the term
        rows.append({**base, "term": term, "contrast": np.nan, "test": test, "statistic": f,
                     "df_num": df_num, "df_den": fit.df_resid, "p": float(wald.pvalue),
                     "effect_size": ss / (ss + fit.ssr), "effect_size_type": "partial_eta_squared", "n": n})
    root_mse = np.sqrt(fit.scale)
    groups = data["_g"].to_numpy()
    pairs = []
    for a, b in combinations(design.levels, 2):
        vector = np.zeros(len(names))
        for level, sign in ((a, 1.0), (b, -1.0)):
            if f"group[T.{level}]" in names:  # the reference level has no coefficient
                vector[names.index(f"group[T.{level}]")] = sign
        result = fit.t_test(vector)
        diff = float(np.squeeze(result.effect))
        pairs.append({**base, "term": "posthoc", "contrast": f"{a}-{b}", "test": "t",
                      "statistic": float(np.squeeze(result.tvalue)), "df_num": np.nan, "df_den": fit.df_resid,
                      "p": float(np.squeeze(result.pvalue)), "effect_size": diff / root_mse,
                      "effect_size_type": "cohen_d", "n": int(np.isin(groups, [a, b]).sum())})
    for row, p in zip(pairs, holm([r["p"] for r in pairs])):
        row["p_holm"] = p
    rows += pairs
    resid = fit.resid
    lev = stats.levene(*[resid[groups == level] for level in design.levels], center="median")
    k = len(design.levels)
    rows.append({**base, "term": "assumption", "contrast": np.nan, "test": "levene",
                 "statistic": lev.statistic, "df_num": k - 1, "df_den": n - k,
                 "p": lev.pvalue, "effect_size": np.nan, "effect_size_type": np.nan, "n": n})
    sw = stats.shapiro(resid)
    rows.append({**base, "term": "assumption", "contrast": np.nan, "test": "shapiro",
                 "statistic": sw.statistic, "df_num": np.nan, "df_den": np.nan,
                 "p": sw.pvalue, "effect_size": np.nan, "effect_size_type": np.nan, "n": n})
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
        Unknown column (lists the available ones), participants.tsv missing, free-text
        covariate, or no metabolite testable. A metabolite that cannot be tested (a group with
        fewer than 2 participants after QC, too few participants for the model, or the same
        value for everyone, e.g. tCr as a ratio to tCr) is skipped with a warning naming it.
    UsageError
        No group column, or the group column also given as a covariate.
    """
    design = _Design(values, participants, group_by, covariates, group_order)
    test = "ancova" if design.covariates else "anova"
    rows, skipped = [], []
    for metabolite in design.metabolites:
        try:
            data = design.subset(metabolite)
            y = data["_y"].to_numpy(float)
            tol = 1e-9 * max(float(np.abs(y).max()) if y.size else 0.0, 1e-300)
            if y.size and np.ptp(y) <= tol:
                skipped.append((metabolite, "the same value for every participant (e.g. tCr as a ratio to tCr)"))
                continue
            if all(np.ptp(g["_y"].to_numpy(float)) <= tol for _, g in data.groupby("_g")):
                skipped.append((metabolite, "no variation within the groups (an F test is undefined)"))
                continue
            rows += _metabolite_rows(design, metabolite, data, measure_name, test)
        except InputError as exc:  # one sparse metabolite must not stop the others
            skipped.append((metabolite, exc.message))
    if skipped and (rows or len(skipped) < len(design.metabolites)):
        log.warning("group statistics skip %d metabolite(s): %s", len(skipped),
                    "; ".join(f"{m}: {why}" for m, why in skipped))
    elif skipped:
        raise InputError(f"no metabolite can be tested; {skipped[0][0]}: {skipped[0][1]}")
    frame = stats_frame(rows)
    across = ~frame["term"].isin(["posthoc", "assumption"])
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
    for metabolite in design.metabolites:
        data = design.subset(metabolite)
        fit, names, terms = _fit(design, data)
        centre = fit.model.exog.mean(axis=0)
        centre[terms["group"]] = 0.0
        for level in design.levels:
            point = centre.copy()
            if f"group[T.{level}]" in names:
                point[names.index(f"group[T.{level}]")] = 1.0
            y = data.loc[data["_g"] == level, "_y"]
            rows.append({"metabolite": metabolite, "measure": measure_name, "group": level, "n": len(y),
                         "mean": y.mean(), "sd": y.std(ddof=1), "adjusted_mean": float(point @ fit.params)})
    return pd.DataFrame(rows, columns=list(GROUP_SIZE_COLUMNS))
