"""Group report ``group.html``: distributions, mean spectra, QC scatter, exclusions, statistics.

Reads the group tables given by the group stage (long concentrations table and per-spectrum QC
table with ``included``/``exclusion_reason``) plus each spectrum's fit NIfTI-MRS and sidecars
from OUTPUT_DIR (found through :mod:`bidsmrs.outputs.naming`). Self-contained like the
participant report; every string is escaped.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from bidsmrs.constants import FIT_RANGE_PPM
from bidsmrs.outputs import naming
from bidsmrs.report import figures
from bidsmrs.report.collect import load_run, to_float
from bidsmrs.report.render import generator_name, safe_figure, template_environment

if TYPE_CHECKING:
    import pandas

logger = logging.getLogger(__name__)

__all__ = ["write_group_report", "render_group", "ENTITY_COLUMNS"]

#: Entity columns of the group tables, and the BIDS entity each holds.
ENTITY_COLUMNS = {"participant_id": "sub", "session": "ses", "acquisition": "acq",
                  "volume": "voi", "run": "run"}
STATS_COLUMNS = ("metabolite", "measure", "term", "contrast", "test", "statistic", "df_num",
                 "df_den", "p", "p_holm", "effect_size", "effect_size_type", "n")
_GRID = np.linspace(FIT_RANGE_PPM[1], FIT_RANGE_PPM[0], 1200)


def _label(value: Any) -> str | None:
    """An entity cell as a BIDS label (None for missing); ``1.0`` -> ``"1"``."""
    if value is None:
        return None
    if isinstance(value, float):
        if not np.isfinite(value):
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    if text in ("", "n/a", "nan", "None", "<NA>"):
        return None
    return text


def _key(row: Mapping[str, Any]) -> tuple:
    out = []
    for col, ent in ENTITY_COLUMNS.items():
        v = _label(row.get(col))
        if ent == "sub" and v is not None:
            v = v.removeprefix("sub-")
        out.append(v)
    return tuple(out)


def _src_index(output_dir: Path) -> dict[tuple, str]:
    """(sub, ses, acq, voi, run) -> src for every run with outputs under ``output_dir``."""
    index = {}
    for p in sorted(Path(output_dir).glob("sub-*/**/mrs/*_desc-*_svs.*")):
        src = naming.src_of(p)
        try:
            ent = naming.parse_src(src)
        except ValueError:
            continue
        index.setdefault(tuple(ent.get(e) for e in ENTITY_COLUMNS.values()), src)
    return index


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def _truthy(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return str(v).strip().lower() in ("true", "1", "yes", "included")


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "n/a"
        return f"{v:.4g}"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    text = str(v)
    return "n/a" if text in ("nan", "None", "<NA>", "") else text


def _groups(frame, group_by: str | None, participants) -> list[str]:
    """The group label of every row of ``frame`` (``all`` when no grouping)."""
    if not group_by:
        return ["all"] * len(frame)
    if group_by in frame.columns:
        return [_fmt(v) for v in frame[group_by]]
    if participants is not None and group_by in participants.columns:
        lut = {str(pid).removeprefix("sub-"): _fmt(g)
               for pid, g in zip(participants["participant_id"], participants[group_by])}
        return [lut.get(str(pid).removeprefix("sub-"), "n/a") for pid in frame["participant_id"]]
    raise ValueError(f"group-by column {group_by!r} is in neither the tables nor participants.tsv")


def _included_lookup(qc) -> dict[tuple, tuple[bool, str]]:
    out = {}
    if qc is None or len(qc) == 0:
        return out
    for row in qc.to_dict("records"):
        inc = _truthy(row.get("included", True))
        out[_key(row)] = (inc, _fmt(row.get("exclusion_reason", "")))
    return out


def _report_link(output_dir: Path, key: tuple, src: str | None) -> str | None:
    sub = key[0]
    if not sub:
        return None
    try:
        name = naming.report_file(sub).as_posix()
    except ValueError:  # not a valid BIDS label: no report can exist
        return None
    if not (Path(output_dir) / name).exists():
        return None
    return f"{name}#run-{src}" if src else name


def _mean_spectra(output_dir: Path, rows: list[dict], srcs: Mapping[tuple, str]):
    """Per (acquisition, volume) stratum: per group mean/SD of normalised data and fit.

    Returns (figures dict stratum -> svg dict, runs read (light copies), problems).
    """
    acc: dict[tuple, dict[str, dict[str, list]]] = {}
    light = []
    problems = []
    seen = set()
    for r in rows:
        key, src = r["key"], srcs.get(r["key"])
        if src is None or src in seen:
            continue
        seen.add(src)
        run = load_run(output_dir, src)
        light.append(dataclasses.replace(run, fit=None, water=None))
        problems += [f"{src}: {p}" for p in run.problems]
        if run.fit is None or not r["included"]:
            continue
        f = run.fit
        order = np.argsort(f.ppm)
        data = np.interp(_GRID, f.ppm[order], np.real(f.data)[order])
        fit = np.interp(_GRID, f.ppm[order], np.real(f.fit)[order])
        scale = float(np.max(np.abs(fit))) or 1.0
        stratum = (key[2] or "", key[3] or "")
        g = acc.setdefault(stratum, {}).setdefault(r["group"], {"data": [], "fit": []})
        g["data"].append(data / scale)
        g["fit"].append(fit / scale)
    figs = {}
    for stratum, groups in sorted(acc.items()):
        arrays = {name: {"mean": np.mean(v["data"], axis=0), "sd": np.std(v["data"], axis=0),
                         "fit_mean": np.mean(v["fit"], axis=0), "n": np.array(len(v["data"]))}
                  for name, v in groups.items()}
        title = " ".join(x for x in (f"acq-{stratum[0]}" if stratum[0] else "",
                                     f"voi-{stratum[1]}" if stratum[1] else "") if x)
        figs[title or "all spectra"] = safe_figure(
            figures.group_spectra_figure, _GRID, arrays, title=title,
            salt=f"groupspec-{_slug(title)}",
            caption="Included spectra, each scaled to the maximum of its own fit, interpolated to "
                    "a common ppm axis; shaded band = ±1 SD across spectra, dashed = mean fit.")
    return figs, light, problems


def _distribution_figures(conc, rows_meta, measure: str, units: str) -> list[dict]:
    out = []
    mets = list(dict.fromkeys(str(m) for m in conc["metabolite"]))
    for met in mets:
        sub = conc[conc["metabolite"].astype(str) == met]
        vals, grps, exc = [], [], []
        for row in sub.to_dict("records"):
            v = to_float(row.get(measure))
            if v is None:
                continue
            meta = rows_meta.get(_key(row), {"group": "n/a", "included": True})
            vals.append(v)
            grps.append(meta["group"])
            # metabolite-level gating (e.g. CRLB) when the table has it, else the spectrum's
            included = _truthy(row["included"]) if "included" in row else meta["included"]
            exc.append(not (included and meta["included"]))
        if not vals:
            continue
        fig = safe_figure(figures.distribution_figure, vals, grps, exc,
                      ylabel=f"{met} {measure}" + (f" ({units})" if units else ""), title=met,
                      salt=f"dist-{_slug(met)}",
                      caption=f"{met}: {measure} by group; boxes over included values, crosses "
                              "= excluded by QC, rings = outliers (1.5 IQR).")
        n_inc = sum(1 for e in exc if not e)
        out.append({"metabolite": met, "id": f"dist-{_slug(met)}", "figure": fig,
                    "n": len(vals), "n_included": n_inc})
    return out


def render_group(output_dir: Path, *, concentrations: pandas.DataFrame, qc: pandas.DataFrame,
                 stats: pandas.DataFrame | None = None, group_by: str | None = None,
                 participants: pandas.DataFrame | None = None,
                 measure: str = "conc_tissue_corrected_mM", thresholds: dict | None = None) -> str:
    """The HTML text of the group report (see :func:`write_group_report`)."""
    from bidsmrs.report.mrsinmrs import dataset_summary

    out = Path(output_dir)
    if measure not in concentrations.columns:
        raise ValueError(f"measure {measure!r} is not a column of the concentrations table "
                         f"(columns: {', '.join(map(str, concentrations.columns))})")
    srcs = _src_index(out)
    inc = _included_lookup(qc)
    qc_frame = qc if qc is not None else concentrations.drop_duplicates(list(ENTITY_COLUMNS))
    qgroups = _groups(qc_frame, group_by, participants)
    rows = []
    for row, grp in zip(qc_frame.to_dict("records"), qgroups):
        key = _key(row)
        included, reason = inc.get(key, (True, ""))
        src = srcs.get(key)
        rows.append({"key": key, "src": src, "group": grp, "included": included,
                     "reason": reason if not included else "",
                     "snr": to_float(row.get("snr_naa")), "fwhm": to_float(row.get("fwhm_naa_ppm")),
                     "row": row, "link": _report_link(out, key, src)})
    meta = {r["key"]: r for r in rows}
    cgroups = _groups(concentrations, group_by, participants)
    for row, grp in zip(concentrations.to_dict("records"), cgroups):
        meta.setdefault(_key(row), {"group": grp, "included": inc.get(_key(row), (True, ""))[0]})

    th = dict(thresholds or {})
    if not th:  # fall back to the thresholds recorded with the participants' QC tables
        for r in rows:
            if r["src"]:
                from bidsmrs.report.collect import read_json_or_none

                side = read_json_or_none(out / naming.run_file(r["src"], "qc", ".json"), []) or {}
                if isinstance(side.get("Thresholds"), Mapping):
                    th = dict(side["Thresholds"])
                    break
    units = ""
    if "mM" in measure:
        units = "mM"
    elif "mmol_per_kg" in measure:
        units = "mmol/kg"

    dists = _distribution_figures(concentrations, meta, measure, units)
    spectra, light_runs, problems = _mean_spectra(out, rows, srcs)
    scatter = safe_figure(figures.qc_scatter_figure, [r["snr"] if r["snr"] is not None else np.nan
                                                  for r in rows],
                      [r["fwhm"] if r["fwhm"] is not None else np.nan for r in rows],
                      [r["included"] for r in rows], min_snr=to_float(th.get("qc_min_snr")),
                      max_fwhm_ppm=to_float(th.get("qc_max_fwhm_ppm")),
                      labels=[str(r["key"][0]) for r in rows], salt="qcscatter",
                      caption="NAA SNR against NAA linewidth per spectrum; dashed/dotted lines "
                              "are the QC thresholds.")
    spectra_rows = []
    for r in rows:
        k = r["key"]
        spectra_rows.append({
            "cells": [f"sub-{k[0]}" if k[0] else "n/a", k[1] or "n/a", k[2] or "n/a",
                      k[3] or "n/a", k[4] or "n/a", r["group"], _fmt(r["row"].get("snr_naa")),
                      _fmt(r["row"].get("fwhm_naa_ppm")), "yes" if r["included"] else "no",
                      r["reason"] or ""],
            "link": r["link"], "included": r["included"]})
    stats_ctx = None
    if stats is not None and len(stats):
        cols = [c for c in STATS_COLUMNS if c in stats.columns] + \
            [c for c in stats.columns if c not in STATS_COLUMNS]
        srows = []
        for row in stats.to_dict("records"):
            p = to_float(row.get("p_holm"))
            srows.append({"cells": [_fmt(row.get(c)) for c in cols],
                          "sig": p is not None and p < 0.05})
        stats_ctx = {"columns": cols, "rows": srows}
    group_counts = {}
    for r in rows:
        g = group_counts.setdefault(r["group"], [0, 0])
        g[0] += 1
        g[1] += int(r["included"])
    subjects = sorted({r["key"][0] for r in rows if r["key"][0]})
    reports = []
    for sub in subjects:
        link = _report_link(out, (sub,), None)
        reports.append((f"sub-{sub}", link or "", link is not None))
    env = template_environment()
    return env.get_template("group.html.j2").render(
        generator=generator_name(out), measure=measure, group_by=group_by or "",
        n_spectra=len(rows), n_included=sum(r["included"] for r in rows),
        n_participants=len(subjects), group_counts=sorted(group_counts.items()),
        dists=dists, spectra=spectra, scatter=scatter, thresholds=sorted(th.items()),
        exclusions=[s for s in spectra_rows if not s["included"]], spectra_rows=spectra_rows,
        stats=stats_ctx, mrsinmrs=dataset_summary(light_runs) if light_runs else [],
        reports=reports, problems=problems)


def write_group_report(output_dir: Path, *, concentrations: pandas.DataFrame, qc: pandas.DataFrame,
                       stats: pandas.DataFrame | None = None, group_by: str | None = None,
                       participants: pandas.DataFrame | None = None,
                       measure: str = "conc_tissue_corrected_mM",
                       thresholds: dict | None = None) -> Path:
    """Write ``OUTPUT_DIR/group.html``; return its path.

    Parameters
    ----------
    output_dir : Path
        OUTPUT_DIR (participant outputs and reports are read from it).
    concentrations : pandas.DataFrame
        Long table: ``participant_id, session, acquisition, volume, run`` + concentration
        columns (``metabolite``, ``measure`` column, ...).
    qc : pandas.DataFrame
        One row per spectrum: entity columns + QC columns + ``included``, ``exclusion_reason``.
    stats : pandas.DataFrame, optional
        Statistics table (DESIGN.md §8 columns); shown when given.
    group_by : str, optional
        Column of the tables or of ``participants`` that defines groups.
    participants : pandas.DataFrame, optional
        participants.tsv (``participant_id`` + phenotype columns).
    measure : str
        Concentrations column plotted per metabolite.
    thresholds : dict, optional
        ``qc_max_crlb``, ``qc_min_snr``, ``qc_max_fwhm_ppm``; default: the participants' QC
        sidecars.
    """
    from bidsmrs.io.atomic import atomic_write_text

    html = render_group(output_dir, concentrations=concentrations, qc=qc, stats=stats,
                        group_by=group_by, participants=participants, measure=measure,
                        thresholds=thresholds)
    path = Path(output_dir) / naming.GROUP_REPORT
    atomic_write_text(path, html)
    logger.info("wrote %s (%.0f kB)", path, len(html.encode()) / 1024)
    return path
