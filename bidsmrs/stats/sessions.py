"""From spectra to one row per participant.

The group tables hold one row per spectrum (and, for concentrations, per metabolite).
A participant may have several runs in a session and several sessions; the group
statistics need one value per participant and metabolite. This module

- normalises the BIDS entity columns so tables read from different files join
  (:func:`normalise_entities`, :func:`add_spectrum_columns`);
- collapses repeated spectra (:func:`collapse_repeats`, :func:`collapse_tissue`);
- joins participant attributes from ``participants.tsv`` and decides whether each one is
  numeric or categorical (:func:`join_participants`, :func:`column_kind`).

All functions are pure: they take DataFrames and return new ones.
"""
from __future__ import annotations

import logging
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from bidsmrs.errors import InputError, UsageError

log = logging.getLogger(__name__)

#: Entity columns of the group tables (DESIGN.md §3, group long table).
ENTITY_COLUMNS = ("participant_id", "session", "acquisition", "volume", "run")

#: Strings that mean "missing" in BIDS TSV files and in hand-written participants.tsv.
MISSING_STRINGS = frozenset({"", "n/a", "na", "nan", "none", "null"})

#: A text column is categorical when it has at most this many distinct values ...
MAX_CATEGORICAL_LEVELS = 10

SESSION_MODES = ("first", "all", "mean")
RUN_MODES = ("mean", "first")


def _label(value) -> str:
    """One entity label as a string; missing values become ``'n/a'``; ``1.0`` becomes ``'1'``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return "n/a" if text.lower() in MISSING_STRINGS else text


def participant_label(value) -> str:
    """``'01'`` or ``'sub-01'`` -> ``'sub-01'`` (the form participants.tsv uses)."""
    text = _label(value)
    return text if text.startswith("sub-") or text == "n/a" else f"sub-{text}"


def normalise_entities(table: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``table`` whose entity columns are comparable strings.

    Missing entities (NaN, None, empty, ``n/a``) become ``'n/a'``, labels read as numbers
    (``1.0``) become ``'1'``, and ``participant_id`` always carries the ``sub-`` prefix.
    Entity columns absent from ``table`` are added as ``'n/a'``.
    """
    out = table.copy()
    for col in ENTITY_COLUMNS:
        if col not in out.columns:
            out[col] = "n/a"
        convert = participant_label if col == "participant_id" else _label
        out[col] = out[col].map(convert).astype(object)
    return out


def add_spectrum_columns(conc: pd.DataFrame, table: pd.DataFrame,
                         columns: Sequence[str]) -> pd.DataFrame:
    """Add per-spectrum columns (e.g. ``gm_fraction`` from the tissue table) to ``conc``.

    Rows are matched on the entity columns. Do this before :func:`collapse_repeats`, which
    then averages the added columns like the concentrations, so a covariate such as the
    grey-matter fraction belongs to the same spectra as the value it adjusts.

    Raises
    ------
    InputError
        When a requested column is not in ``table``.
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"unknown column(s) {', '.join(missing)} in the spectrum table; "
                         f"available columns: {', '.join(map(str, table.columns))}")
    right = normalise_entities(table)[list(ENTITY_COLUMNS) + list(columns)]
    if right.duplicated(list(ENTITY_COLUMNS)).any():
        raise InputError("the spectrum table has more than one row for the same spectrum")
    left = normalise_entities(conc).drop(columns=[c for c in columns if c in conc.columns])
    return left.merge(right, on=list(ENTITY_COLUMNS), how="left")


def _sort_key(label: str):
    """Natural order of labels: numbers numerically (2 < 10), then text, ``n/a`` last."""
    if label == "n/a":
        return (2, 0, "")
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0, label)


def _numeric_columns(table: pd.DataFrame, exclude: Iterable[str]) -> list[str]:
    skip = set(exclude)
    return [c for c in table.columns
            if c not in skip and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])]


def _coerce_numeric(table: pd.DataFrame, exclude: Iterable[str]) -> pd.DataFrame:
    """Turn text columns that hold only numbers and missing markers into floats."""
    out = table.copy()
    skip = set(exclude)
    for col in out.columns:
        if col in skip or pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
            continue
        converted = to_numeric_or_none(out[col])
        if converted is not None:
            out[col] = converted
    return out


def to_numeric_or_none(series: pd.Series) -> pd.Series | None:
    """``series`` as floats when every non-missing value is a number, else None.

    A column with only missing values (e.g. water-scaled columns without a water
    reference) becomes all-NaN floats.
    """
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    text = series.map(lambda v: np.nan if _label(v) == "n/a" else v)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.isna().sum() != text.isna().sum():
        return None
    return numbers.astype(float)


def as_bool(series: pd.Series) -> pd.Series:
    """``included`` as booleans, also when read back from a TSV (``true``/``false``)."""
    if pd.api.types.is_bool_dtype(series):
        return series
    return series.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes")).astype(bool)


def collapse_repeats(conc: pd.DataFrame, *, sessions: str = "first", runs: str = "mean",
                     measure: str | None = None) -> pd.DataFrame:
    """One row per participant (and acquisition, volume, metabolite) from repeated spectra.

    Parameters
    ----------
    conc : DataFrame
        Group long table (entity columns, optionally ``metabolite``, numeric measure
        columns). When it has an ``included`` column (from
        :func:`bidsmrs.stats.qc_gating.gate_metabolites`), excluded rows are dropped first.
        Works the same on the QC or tissue tables (no ``metabolite`` column).
    sessions : {"first", "all", "mean"}
        ``"first"``: keep the first session, in natural label order (``2`` before ``10``),
        among those with an included value for that metabolite; ``"all"``: keep every
        session as its own row (longitudinal use); ``"mean"``: average the per-session
        values, each session weighted equally.
    runs : {"mean", "first"}
        Within a session, average the included runs, or keep the first included one.
    measure : str, optional
        A concentrations column (e.g. ``conc_tissue_corrected_mM``) to return as ``value``,
        the input of :func:`bidsmrs.stats.anova.group_statistics`; rows where it is missing
        are dropped. The other numeric columns are kept.

    Returns
    -------
    DataFrame
        Columns ``participant_id``, ``session`` (the session used; for ``"mean"`` the
        ``;``-joined labels averaged), ``acquisition``, ``volume``, ``metabolite`` (when
        present), every numeric column of ``conc`` (means or first values) and
        ``n_spectra`` (how many spectra the row is made of). Acquisitions and volumes of
        interest are never pooled: select one before group statistics. Keys with no
        included spectrum are absent.

    Raises
    ------
    UsageError
        For an unknown ``sessions`` or ``runs`` mode.
    InputError
        When ``measure`` is not a numeric column of ``conc``.

    Notes
    -----
    Because the choice is made among included spectra, a participant whose first session
    failed QC contributes the next session; the ``session`` column records which one.
    """
    if sessions not in SESSION_MODES:
        raise UsageError(f"sessions must be one of {', '.join(SESSION_MODES)}, not {sessions!r}")
    if runs not in RUN_MODES:
        raise UsageError(f"runs must be one of {', '.join(RUN_MODES)}, not {runs!r}")
    table = normalise_entities(conc)
    if "included" in table.columns:
        table = table[as_bool(table["included"])]
    table = _coerce_numeric(table, exclude=list(ENTITY_COLUMNS) + ["metabolite"])
    keys = ["participant_id", "acquisition", "volume"] + (["metabolite"] if "metabolite" in table else [])
    values = _numeric_columns(table, exclude=keys + ["session", "run", "n_spectra"])
    if measure is not None and measure not in values:
        raise InputError(f"unknown measure '{measure}'; numeric columns: {', '.join(values)}")
    if measure is not None:
        table = table.dropna(subset=[measure])
    table = table[keys + ["session", "run"] + values]

    per_session = _reduce(table, keys + ["session"], "run", values, runs)
    if sessions == "all":
        out = per_session.assign(_order=per_session["session"].map(_sort_key))
        out = out.sort_values(keys + ["_order"], kind="stable")
    elif sessions == "first":
        out = _reduce(per_session, keys, "session", values, "first", count="n_spectra")
    else:
        out = _reduce(per_session, keys, "session", values, "mean", count="n_spectra")
    out = out[keys[:1] + ["session"] + keys[1:] + values + ["n_spectra"]].reset_index(drop=True)
    return out if measure is None else out.rename(columns={measure: "value"})


def collapse_tissue(tissue: pd.DataFrame, *, sessions: str = "first", runs: str = "mean") -> pd.DataFrame:
    """One row per participant of the tissue table (``gm_fraction`` ...), for covariates.

    Same rules as :func:`collapse_repeats`. Prefer :func:`add_spectrum_columns` on the
    gated concentrations before collapsing: it averages the fractions of exactly the
    spectra whose values are used (this function averages all spectra, also excluded ones).

    Raises
    ------
    InputError
        When a participant has spectra from several acquisitions or volumes of interest
        (their fractions differ; select one first).
    """
    out = collapse_repeats(tissue.drop(columns=["included"], errors="ignore"), sessions=sessions, runs=runs)
    dup = out["participant_id"][out["participant_id"].duplicated()]
    if not dup.empty:
        raise InputError(f"{dup.iloc[0]} has tissue fractions for several acquisitions/volumes; select one")
    return out.drop(columns=["session", "acquisition", "volume", "n_spectra"])


def _reduce(table: pd.DataFrame, keys: list[str], over: str, values: list[str], mode: str,
            count: str | None = None) -> pd.DataFrame:
    """Reduce rows differing only in ``over`` to one per ``keys`` (mean or first)."""
    if table.empty:
        return pd.DataFrame(columns=keys + [over] + values + ["n_spectra"])
    table = table.assign(_order=table[over].map(_sort_key)).sort_values(keys + ["_order"], kind="stable")
    grouped = table.groupby(keys, sort=True, dropna=False)
    if mode == "first":
        out = grouped.head(1).drop(columns="_order")
        return out if count else out.assign(n_spectra=1)
    labels = grouped[over].agg(";".join)
    n = grouped[count].sum() if count else grouped.size()
    return pd.concat([labels, grouped[values].mean(), n.rename("n_spectra")], axis=1).reset_index()


def column_kind(series: pd.Series, name: str) -> str:
    """``'numeric'`` or ``'categorical'`` for a participant attribute.

    Numbers (possibly stored as text, with ``n/a`` for missing) are numeric. Booleans and
    text with few distinct values (at most 10, and at most half the non-missing values,
    but 2 levels are always allowed) are categorical, e.g. ``sex`` with M/F.

    Raises
    ------
    InputError
        For free text (too many distinct values to be a category) or an empty column.
    """
    present = series.map(_label)
    present = present[present != "n/a"]
    if present.empty:
        raise InputError(f"column '{name}' has no values")
    if to_numeric_or_none(series) is not None:
        return "numeric"
    levels = present.nunique()
    if levels <= max(2, min(MAX_CATEGORICAL_LEVELS, len(present) // 2)):
        return "categorical"
    raise InputError(f"column '{name}' is neither numeric nor categorical "
                     f"({levels} distinct text values in {len(present)} rows)")


def join_participants(values: pd.DataFrame, participants: pd.DataFrame | None, columns: Sequence[str],
                      categorical: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, str]]:
    """Add participant attributes to a per-participant table and type them.

    Parameters
    ----------
    values : DataFrame
        Must have ``participant_id``. A requested column already in ``values`` (e.g.
        ``gm_fraction`` merged from the tissue table) is taken from there; the others
        come from ``participants``.
    participants : DataFrame or None
        ``participants.tsv`` as read; None when the dataset has none.
    columns : sequence of str
        Columns needed (group, covariates, clinical scores).
    categorical : sequence of str
        Columns that are categories whatever they hold (the group column: codes 1/2/3
        become the labels ``'1'``, ``'2'``, ``'3'``).

    Returns
    -------
    table : DataFrame
        ``values`` with the requested columns; numeric ones as float, categorical ones
        as strings with NaN for missing.
    kinds : dict
        Column -> ``'numeric'`` or ``'categorical'`` (see :func:`column_kind`).

    Raises
    ------
    InputError
        participants.tsv missing or without ``participant_id``, duplicated participants,
        an unknown column (the message lists the available ones), or free text.
    """
    if "participant_id" not in values.columns:
        raise InputError("the values table has no participant_id column")
    table = values.copy()
    table["participant_id"] = table["participant_id"].map(participant_label)
    wanted = [c for c in dict.fromkeys(columns) if c not in values.columns]
    if wanted:
        if participants is None:
            raise InputError(f"participants.tsv is missing; it is needed for column(s) {', '.join(wanted)}")
        if "participant_id" not in participants.columns:
            raise InputError("participants.tsv has no participant_id column")
        unknown = [c for c in wanted if c not in participants.columns]
        if unknown:
            available = [c for c in participants.columns if c != "participant_id"]
            available += [c for c in values.columns if c not in ("participant_id", "metabolite", "value")]
            raise InputError(f"unknown column(s) {', '.join(unknown)}; available columns: "
                             f"{', '.join(map(str, dict.fromkeys(available)))}")
        info = participants[["participant_id"] + wanted].copy()
        info["participant_id"] = info["participant_id"].map(participant_label)
        dup = info["participant_id"][info["participant_id"].duplicated()]
        if not dup.empty:
            raise InputError(f"participants.tsv lists {dup.iloc[0]} more than once")
        absent = sorted(set(table["participant_id"]) - set(info["participant_id"]))
        if absent:
            log.warning("%d participant(s) not in participants.tsv, left out: %s",
                        len(absent), ", ".join(absent))
        table = table.merge(info, on="participant_id", how="left")
    kinds = {}
    for col in dict.fromkeys(columns):
        kinds[col] = "categorical" if col in categorical else column_kind(table[col], col)
        if kinds[col] == "numeric":
            table[col] = to_numeric_or_none(table[col])
        else:
            labels = table[col].map(_label)
            table[col] = labels.where(labels != "n/a", np.nan)
    return table, kinds
