"""Group level: read the participant tables in OUTPUT_DIR, gate on QC, compare groups, report.

Never recomputes participant results. Participants present in the input dataset but without
outputs (failed or not run) are listed in the QC table with ``included = false``.
"""
from __future__ import annotations

import json

import logging
import warnings
from pathlib import Path

import pandas as pd

from bidsmrs import __version__
from bidsmrs.errors import InputError, NoDataError
from bidsmrs.outputs import naming
from bidsmrs.outputs.columns import CONCENTRATION_COLUMNS, ENTITY_COLUMNS, QC_COLUMNS, TISSUE_COLUMNS
from bidsmrs.outputs.dataset import write_dataset_files
from bidsmrs.outputs.tables import column_sidecar, read_tsv, write_tsv
from bidsmrs.settings import Settings

log = logging.getLogger("bidsmrs.group")

_ENTITY_KEYS = {"participant_id": "sub", "session": "ses", "acquisition": "acq", "volume": "voi", "run": "run"}
MEASURES = ("conc_tissue_corrected_mM", "conc_molal_mmol_per_kg", "conc_raw_water_mM", "ratio_tcr")


def _entities(src: str) -> dict[str, str]:
    ents = naming.parse_src(src)
    row = {col: ents.get(key, "n/a") for col, key in _ENTITY_KEYS.items()}
    row["participant_id"] = f"sub-{ents['sub']}"
    return row


def _read_finished(output_dir: Path, src: str, table_path: Path) -> tuple[pd.DataFrame | None, dict, str | None]:
    """``(table, sidecar, None)`` for a finished run's concentrations, else ``(None, {}, why)``.

    A finished run has its concentrations TSV, that TSV's sidecar with the input hash, and its
    QC TSV, all written atomically; anything else was damaged or removed after the run.
    """
    from bidsmrs.io.jsonfile import read_json

    try:
        side = read_json(table_path.with_suffix(".json"))
    except InputError:
        return None, {}, "the concentrations sidecar (.json) is missing or unreadable"
    if "InputHash" not in side:
        return None, {}, "the concentrations sidecar has no InputHash (not a finished run)"
    if not (output_dir / naming.run_file(src, "qc", ".tsv")).is_file():
        return None, {}, "the QC table is missing"
    try:
        table = read_tsv(table_path)
    except Exception as exc:  # pandas parser errors on a damaged file
        return None, {}, f"the concentrations table cannot be read ({type(exc).__name__})"
    missing = [c for c in ("metabolite", "amplitude", "flag") if c not in table.columns]
    # every row ends with its flag ("ok" or the failed checks): a cut-off row has none
    if missing or (table["metabolite"].fillna("") == "").any() or (table["flag"].fillna("") == "").any():
        return None, {}, "the concentrations table is incomplete (cut-off rows or columns)"
    return table, side, None


def collect_tables(output_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, dict]]:
    """Long concentrations, QC and tissue tables (entity columns first) from participant outputs,
    and each run's ``ProcessingSettings`` (source name → settings)."""
    conc, qc, tissue = [], [], []
    processing: dict[str, dict] = {}
    for path in naming.find_concentration_tables(output_dir):
        src = naming.src_of(path)
        table, side, problem = _read_finished(output_dir, src, path)
        if problem:
            log.warning("%s: %s; left out of the group tables (rerun the participant level)", src, problem)
            continue
        if isinstance(side.get("ProcessingSettings"), dict):
            processing[src] = side["ProcessingSettings"]
        ents = _entities(src)
        conc.append(pd.DataFrame({**{k: [v] * len(table) for k, v in ents.items()}, **{c: table[c] for c in table}}))
        for desc, store in (("qc", qc), ("tissue", tissue)):
            p = output_dir / naming.run_file(src, desc, ".tsv")
            if p.exists():
                t = read_tsv(p)
                store.append(pd.concat([pd.DataFrame([ents] * len(t)), t.reset_index(drop=True)], axis=1))
    if not conc:
        raise NoDataError(f"no participant outputs (*_desc-concentrations_svs.tsv) in {output_dir}; "
                          "run the participant level first")
    cols = lambda extra: list(ENTITY_COLUMNS) + list(extra)  # noqa: E731
    conc_df = pd.concat(conc, ignore_index=True).reindex(columns=cols(CONCENTRATION_COLUMNS))
    qc_df = (pd.concat(qc, ignore_index=True) if qc else pd.DataFrame()).reindex(columns=cols(QC_COLUMNS))
    tis_df = (pd.concat(tissue, ignore_index=True) if tissue else pd.DataFrame()).reindex(
        columns=cols(TISSUE_COLUMNS))
    return conc_df, qc_df, tis_df, processing


def read_participants(bids_dir: Path) -> pd.DataFrame | None:
    path = Path(bids_dir) / "participants.tsv"
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"participant_id": str})
    except Exception as exc:  # malformed TSV: one line naming the file
        raise InputError(f"cannot read participants.tsv: {exc}", path) from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in df.columns:  # " control " and "control" are one group
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].map(lambda v: v.strip() if isinstance(v, str) else v)
    if "participant_id" not in df.columns:
        raise InputError("participants.tsv has no participant_id column", path)
    dup = sorted(set(df.loc[df["participant_id"].duplicated(), "participant_id"].astype(str)))
    if dup:
        raise InputError(f"participants.tsv lists {', '.join(dup[:5])} more than once", path)
    return df


def _missing_participants(bids_dir: Path, conc: pd.DataFrame, settings: Settings) -> list[str]:
    """Participants with raw svs data selected by the request but no usable outputs."""
    present = set(conc["participant_id"])
    rows = []
    for path in Path(bids_dir).glob("sub-*/**/mrs/*_svs.nii*"):
        try:
            rows.append(_entities(path.name.split("_svs")[0]))
        except (KeyError, ValueError):  # not a BIDS name: find_runs reports it at the participant level
            continue
    expected = set(_select(pd.DataFrame(rows, columns=list(_ENTITY_KEYS)), settings)["participant_id"])
    if settings.participant_labels:
        expected &= {f"sub-{label}" for label in settings.participant_labels}
    return sorted(expected - present)


def run_group_level(settings: Settings) -> int:
    """Write the group tables, statistics and report; return the exit code."""
    out = settings.output_dir
    conc, qc, tissue, processing = collect_tables(out)
    if settings.participant_labels:
        keep = {f"sub-{label}" for label in settings.participant_labels}
        conc, qc, tissue = (t[t["participant_id"].isin(keep)] for t in (conc, qc, tissue))
    conc, qc, tissue = (_select(t, settings) for t in (conc, qc, tissue))
    if conc.empty:
        raise NoDataError("no participant outputs match --session-label / --bids-filter-file at the group level")
    _warn_mixed_settings(processing, conc)
    write_dataset_files(settings.bids_dir, out)
    participants = read_participants(settings.bids_dir)
    missing = _missing_participants(settings.bids_dir, conc, settings)
    log.info("group level: %d spectra of %d participants (%d participant(s) without outputs)",
             qc.shape[0], conc["participant_id"].nunique(), len(missing))

    from bidsmrs.stats.qc_gating import QcThresholds, gate_metabolites, gate_spectra

    thresholds = QcThresholds(max_crlb_percent=settings.qc_max_crlb, min_snr=settings.qc_min_snr,
                              max_fwhm_ppm=settings.qc_max_fwhm_ppm)
    gated_qc = gate_spectra(qc, thresholds)
    if missing:
        extra = pd.DataFrame({"participant_id": missing, "included": False,
                              "exclusion_reason": "no participant outputs (failed or not run)"})
        gated_qc = pd.concat([gated_qc, extra], ignore_index=True)
    gated_conc = gate_metabolites(conc, gated_qc, thresholds)
    stats, stats_error = None, None
    if settings.group_by or settings.correlate:
        try:
            stats = _statistics(gated_conc, tissue, participants, settings)
        except InputError as exc:  # the tables are still written; no stale statistics are left
            stats_error = exc
    entity_sidecar = dict(ENTITY_COLUMNS)
    write_tsv(out / naming.GROUP_CONCENTRATIONS, gated_conc,
              column_sidecar({**entity_sidecar, **CONCENTRATION_COLUMNS,
                              "included": ("False if the spectrum or this metabolite failed QC", None),
                              "exclusion_reason": ("Why the value is excluded ('' when included)", None)},
                             BidsmrsVersion=__version__))
    write_tsv(out / naming.GROUP_QC, gated_qc,
              column_sidecar({**entity_sidecar, **QC_COLUMNS,
                              "included": ("False if the spectrum fails a QC threshold or has no outputs", None),
                              "exclusion_reason": ("';'-separated QC failures", None)},
                             Thresholds={"qc_max_crlb": settings.qc_max_crlb, "qc_min_snr": settings.qc_min_snr,
                                         "qc_max_fwhm_ppm": settings.qc_max_fwhm_ppm}))
    for measure in MEASURES:
        wide = _wide(gated_conc, measure)
        what, unit = CONCENTRATION_COLUMNS[measure]
        metabolite_columns = {c: (f"{c}: {what[0].lower() + what[1:]} (n/a when it fails QC)", unit)
                              for c in wide.columns if c not in entity_sidecar}
        write_tsv(out / naming.wide_group_file(measure), wide,
                  column_sidecar({**entity_sidecar, **metabolite_columns}, Measure=measure,
                                 Description=f"{measure} per spectrum (rows) and metabolite (columns); "
                                             "values failing QC are n/a"))
    if stats is not None:
        write_tsv(out / naming.GROUP_STATS, stats, _stats_sidecar(settings))
    else:  # statistics of an earlier run with other options would not match these tables
        for stale in (out / naming.GROUP_STATS, (out / naming.GROUP_STATS).with_suffix(".json")):
            stale.unlink(missing_ok=True)
    if not settings.no_report:
        _report(out, gated_conc, gated_qc, stats, participants, settings)
    log.info("group tables written to %s", out)
    if stats_error is not None:
        raise InputError(f"group tables written, but no statistics: {stats_error}") from None
    return 0


#: Settings holding a path: compared by file name only.
_PATH_SETTINGS = ("basis", "quant_config", "anat_derivatives")


def _warn_mixed_settings(processing: dict[str, dict], conc: pd.DataFrame) -> None:
    """Warn when the selected spectra were processed with different settings (``processing``:
    source name → the ``ProcessingSettings`` of its concentrations sidecar), e.g. two participant
    runs with different --fit-range or --baseline, whose results are not comparable."""
    selected = {tuple(str(v) for v in row)
                for row in conc[list(_ENTITY_KEYS)].drop_duplicates().itertuples(index=False)}
    seen = {}
    for src, key in processing.items():
        if tuple(str(v) for v in _entities(src).values()) in selected:
            # QC thresholds only flag (the group level re-gates); paths differ between mounts
            seen[src] = {k: (Path(str(v)).name if k in _PATH_SETTINGS and v is not None else v)
                         for k, v in key.items() if not k.startswith("qc_")}
    if len({json.dumps(v, sort_keys=True, default=str) for v in seen.values()}) > 1:
        options = sorted({k for v in seen.values() for k in v
                          if len({json.dumps(w.get(k), default=str) for w in seen.values()}) > 1})
        log.warning("the spectra in these group tables were processed with different settings (%s differ); "
                    "rerun the participant level with one set of options for comparable results",
                    ", ".join(options))


#: Group-level selection by entity: settings attribute / svs filter key → table column.
_SELECT_COLUMNS = {"session": "session", "acquisition": "acquisition", "run": "run", "volume": "volume"}


def _select(table: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Rows of the spectra that ``--session-label`` and the svs part of ``--bids-filter-file``
    select (the same request as at the participant level), so that the statistics can be run
    on one session or acquisition of a study that has several."""
    wanted: dict[str, set[str]] = {}
    if settings.session_labels:
        wanted["session"] = {str(s) for s in settings.session_labels}
    from bidsmrs.io.bids_inputs import _normalise_filters  # the participant level's reading of the file

    svs = _normalise_filters(settings.bids_filters or None)[0]
    for key, column in _SELECT_COLUMNS.items():
        if key in svs and svs[key] is not None:
            vals = svs[key] if isinstance(svs[key], (list, tuple)) else [svs[key]]
            labels = {str(v) for v in vals}
            if key == "run":  # runs may be zero-padded in names, integers (or 1.0) in filters
                labels = {_run_label(v) for v in vals}
            wanted[column] = labels
    for column, labels in wanted.items():
        if column in table.columns:
            values = table[column].astype(str)
            if column == "run":
                values = values.map(_run_label)
            table = table[values.isin(labels)]
    return table


def _run_label(value) -> str:
    """A run index as a plain integer string ("01", 1, 1.0 → "1"); other values unchanged."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else str(value)


def _wide(conc: pd.DataFrame, measure: str) -> pd.DataFrame:
    keys = list(ENTITY_COLUMNS)
    vals = conc.assign(value=conc[measure].where(conc.get("included", True).astype(bool)))
    wide = vals.pivot_table(index=keys, columns="metabolite", values="value", aggfunc="first", dropna=False)
    wide = wide.reset_index()
    wide.columns.name = None
    return wide


def _statistics(conc, tissue, participants, settings: Settings) -> pd.DataFrame:
    from bidsmrs.stats import sessions

    if participants is None:
        raise InputError("participants.tsv is missing: --group-by/--correlate need it", settings.bids_dir)
    measure = settings.measure
    if measure not in CONCENTRATION_COLUMNS or measure in ("metabolite", "flag"):
        raise InputError(f"--measure {measure} is not a concentrations column; choose one of "
                         f"{', '.join(c for c in CONCENTRATION_COLUMNS if c not in ('metabolite', 'flag'))}")
    tissue_cols = [c for c in ("gm_fraction", "wm_fraction", "csf_fraction")
                   if c in tissue.columns and tissue[c].notna().any()]
    if tissue_cols:  # per-spectrum covariates, averaged over exactly the spectra used
        conc = sessions.add_spectrum_columns(conc, tissue, tissue_cols)
    values = sessions.collapse_repeats(conc, measure=measure)
    values = values[values["value"].notna()]
    if settings.group_by:
        values = _analysable(values, participants, settings.group_by)
    frames = []
    with warnings.catch_warnings():  # tiny groups make scipy's normality tests warn; n is reported
        warnings.simplefilter("ignore", RuntimeWarning)
        frames += _tests(values, participants, settings, measure)
    return pd.concat(frames, ignore_index=True)


def _tests(values, participants, settings: Settings, measure: str) -> list[pd.DataFrame]:
    from bidsmrs.stats import anova, correlation

    frames = []
    if settings.group_by:
        frames.append(anova.group_statistics(values, participants, group_by=settings.group_by,
                                             covariates=settings.covariates, measure_name=measure))
    if settings.correlate:
        frames.append(correlation.correlations(values, participants, columns=settings.correlate,
                                               covariates=settings.covariates, group_by=settings.group_by,
                                               measure_name=measure))
    return frames


def _analysable(values: pd.DataFrame, participants: pd.DataFrame, group_by: str) -> pd.DataFrame:
    """Drop metabolites in which a group has fewer than 2 participants after QC (logged).

    When no metabolite is left, all are kept so that the statistics raise their own clear
    error naming the group and its n.
    """
    if group_by not in participants.columns:
        return values  # group_statistics names the available columns
    groups = participants.set_index("participant_id")[group_by]
    counts = values.assign(group=values["participant_id"].map(groups)).groupby(["metabolite", "group"]).size()
    n_groups = groups.dropna().nunique()
    ok = [m for m in values["metabolite"].unique()
          if m in counts.index.get_level_values(0) and len(counts[m]) == n_groups and counts[m].min() >= 2]
    skipped = sorted(set(values["metabolite"]) - set(ok))
    if ok and skipped:
        log.warning("group statistics skip %d metabolite(s) with fewer than 2 participants per group after QC: %s",
                    len(skipped), ", ".join(skipped))
        return values[values["metabolite"].isin(ok)]
    return values


def _stats_sidecar(settings: Settings) -> dict:
    cols = {
        "metabolite": ("Metabolite", None), "measure": ("Concentrations column analysed", None),
        "term": ("'group' (omnibus), a covariate, 'posthoc', 'assumption' or a correlated column", None),
        "contrast": ("Pairwise contrast (a-b), group name or 'pooled'; n/a for omnibus rows", None),
        "test": ("Statistical test", None), "statistic": ("Test statistic (F, t, r or rho)", None),
        "df_num": ("Numerator degrees of freedom", None), "df_den": ("Denominator degrees of freedom", None),
        "p": ("Uncorrected p value", None),
        "p_holm": ("Holm-corrected p value (across post-hoc pairs, or across metabolites)", None),
        "effect_size": ("Effect size", None), "effect_size_type": ("partial_eta_squared, cohen_d, r, ...", None),
        "n": ("Participants in the analysis", None)}
    return column_sidecar(cols, GroupBy=settings.group_by, Covariates=list(settings.covariates),
                          Correlate=list(settings.correlate))


def _report(out, conc, qc, stats, participants, settings: Settings) -> None:
    try:
        from bidsmrs.report.group import write_group_report
    except ImportError:
        return
    try:
        path = write_group_report(out, concentrations=conc, qc=qc, stats=stats, group_by=settings.group_by,
                                  participants=participants, measure=settings.measure,
                                  thresholds={"qc_max_crlb": settings.qc_max_crlb,
                                              "qc_min_snr": settings.qc_min_snr,
                                              "qc_max_fwhm_ppm": settings.qc_max_fwhm_ppm})
        log.info("group report: %s", path)
        from bidsmrs.report.participant import safe_write_dataset_logs

        safe_write_dataset_logs(out, sorted({p.split("-", 1)[1] for p in conc["participant_id"].dropna()}))
    except Exception:  # a report failure never fails the group level
        import traceback
        import uuid

        err = out / naming.LOGS / f"report-group-{uuid.uuid4().hex[:8]}.err"
        err.parent.mkdir(parents=True, exist_ok=True)
        err.write_text(traceback.format_exc())
        log.error("the group report could not be written; traceback in %s", err)
