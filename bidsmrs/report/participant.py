"""Participant report ``sub-<label>.html`` built from the participant output files.

The page is self-contained (inline CSS and SVG, no JavaScript, a Content-Security-Policy that
forbids scripts and remote loads). Every string read from a file is escaped by Jinja2's
autoescaping; SVGs come from :mod:`.figures`, whose text matplotlib escapes. Contract anchors
(DESIGN.md §7): ``run-<src>``, ``fit-<src>``, ``qc-<src>``, ``conc-<src>``.

:func:`safe_write_participant_report` never raises: a failure is logged to
``logs/report-<subject>-<uuid>.err`` and the participant still succeeds.
"""
from __future__ import annotations

import logging
import traceback
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from bidsmrs.outputs import naming
from bidsmrs.report import figures
from bidsmrs.report.collect import RunFiles, find_runs, load_run, to_float
from bidsmrs.report.render import generator_name, no_figure, safe_figure, template_environment

logger = logging.getLogger(__name__)

__all__ = ["write_participant_report", "safe_write_participant_report", "render_participant",
           "safe_write_dataset_logs"]

#: QC columns compared with a threshold: column -> (threshold key, "min" or "max").
_QC_LIMITS = {"snr_naa": ("qc_min_snr", "min"), "fwhm_naa_ppm": ("qc_max_fwhm_ppm", "max")}


def _save_figure(output_dir: Path, src: str, desc: str, fig: dict) -> None:
    """Write a figure to ``figure_file(src, desc)`` when its desc is a registered one."""
    if not fig.get("svg") or desc not in naming.DESCRIPTIONS:
        return
    from bidsmrs.io.atomic import atomic_write_text

    atomic_write_text(Path(output_dir) / naming.figure_file(src, desc),
                      '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
                      + str(fig["svg"]) + "\n")


def _is_sourced(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "value" in obj and set(obj) <= {"value", "source", "units"}


def _text(obj: Any) -> str:
    if _is_sourced(obj):
        return _text(obj["value"]) + (f" ({obj['source']})" if obj.get("source") else "")
    if isinstance(obj, Mapping):
        return "; ".join(f"{k}: {_text(v)}" for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return ", ".join(_text(v) for v in obj)
    if isinstance(obj, float):
        return f"{obj:.6g}"
    return "n/a" if obj is None else str(obj)


def _flatten(obj: Any, prefix: str = "", depth: int = 3) -> list[tuple[str, str]]:
    """Nested dicts -> (key path, text) rows; below ``depth`` levels values are inlined."""
    if isinstance(obj, Mapping) and depth > 0 and not _is_sourced(obj):
        rows: list[tuple[str, str]] = []
        for k, v in obj.items():
            rows += _flatten(v, f"{prefix} › {k}" if prefix else str(k), depth - 1)
        return rows
    return [(prefix, _text(obj))]


def _thresholds(run: RunFiles) -> dict:
    th = run.qc_sidecar.get("Thresholds") if isinstance(run.qc_sidecar, Mapping) else None
    return dict(th) if isinstance(th, Mapping) else {}


def _qc_rows(run: RunFiles) -> list[dict]:
    th = _thresholds(run)
    rows = []
    for col in run.qc_columns:
        value = (run.qc or {}).get(col, "n/a")
        meta = run.qc_sidecar.get(col) if isinstance(run.qc_sidecar.get(col), Mapping) else {}
        status, limit = "", ""
        if col in _QC_LIMITS and _QC_LIMITS[col][0] in th:
            key, kind = _QC_LIMITS[col]
            lim = to_float(th[key])
            v = to_float(value)
            limit = f"{'≥' if kind == 'min' else '≤'} {th[key]} ({key})"
            if v is not None and lim is not None:
                ok = v >= lim if kind == "min" else v <= lim
                status = "ok" if ok else "fail"
        if col == "flag":
            status = "ok" if value == "ok" else "fail"
        rows.append({"name": col, "value": value, "units": meta.get("Units", ""),
                     "description": meta.get("Description", ""), "threshold": limit,
                     "status": status})
    return rows


def _conc_table(run: RunFiles) -> dict | None:
    if not run.concentrations:
        return None
    max_crlb = to_float(_thresholds(run).get("qc_max_crlb"))
    cols = []
    for c in run.concentrations_columns:
        meta = run.concentrations_sidecar.get(c)
        meta = meta if isinstance(meta, Mapping) else {}
        cols.append({"name": c, "units": meta.get("Units", ""),
                     "description": meta.get("Description", "")})
    rows = []
    for r in run.concentrations:
        flag = r.get("flag", "n/a")
        crlb = to_float(r.get("crlb_percent"))
        high = max_crlb is not None and crlb is not None and crlb > max_crlb
        cells = []
        for c in run.concentrations_columns:
            text = r.get(c, "n/a")
            cls = "num" if to_float(text) is not None or text == "n/a" else ""
            if (c == "crlb_percent" and high) or (c == "flag" and flag not in ("ok", "n/a")):
                cls += " fail"
            cells.append({"text": text, "cls": cls.strip()})
        rows.append({"cells": cells, "cls": "warn" if (high or flag not in ("ok", "n/a")) else ""})
    return {"columns": cols, "rows": rows}


def _software(run: RunFiles, generator: str) -> list[tuple[str, str]]:
    rows = {}
    name, _, ver = generator.partition(" ")
    rows[name] = ver
    sw = run.fit_sidecar.get("Software")
    if isinstance(sw, Mapping):
        for k, v in sw.items():
            rows[str(k)] = str(v)
    for e in run.processing_applied + run.water_processing_applied:
        prog = str(e.get("Program", ""))
        if prog and prog not in rows:
            rows[prog] = str(e.get("Version", ""))
    return sorted(rows.items(), key=lambda kv: kv[0].lower())


def _fit_info(run: RunFiles) -> list[tuple[str, str]]:
    fs = run.fit_sidecar
    rows = []
    if fs.get("FitRangePpm") is not None:
        rows.append(("Fit range (ppm)", _text(fs["FitRangePpm"])))
    for key, label in (("FitOptions", "Option"), ("FitParameters", "Parameter"),
                       ("Basis", "Basis")):
        val = fs.get(key)
        if isinstance(val, Mapping):
            rows += _flatten(val, label, depth=1)
    return rows


def _summary(run: RunFiles) -> dict:
    qc = run.qc or {}
    n_flagged = sum(1 for r in run.concentrations or () if r.get("flag", "ok") not in ("ok", "n/a"))
    flag = qc.get("flag", "n/a") if run.qc else "missing"
    return {"flag": flag, "snr": qc.get("snr_naa", "n/a"), "fwhm": qc.get("fwhm_naa_ppm", "n/a"),
            "n_flagged": n_flagged, "n_errors": len(run.errors) + len(run.problems),
            "n_warnings": len(run.warnings), "failed": flag != "ok"}


def _run_context(output_dir: Path, run: RunFiles, generator: str, *,
                 write_figures: bool) -> dict:
    from bidsmrs.report.methods import run_methods
    from bidsmrs.report.mrsinmrs import checklist

    src = run.src
    fit_fig = no_figure()
    if run.fit is not None:
        f = run.fit
        fr = run.fit_sidecar.get("FitRangePpm")
        rng = tuple(float(x) for x in fr) if isinstance(fr, list) and len(fr) == 2 else (0.2, 4.2)
        fit_fig = safe_figure(
            figures.fit_figure, f.ppm, f.data, f.fit, f.baseline, f.residual, f.components,
            ppm_range=(min(0.2, *rng), max(4.2, *rng)), salt=f"fit-{src}",
            caption=("Real part of the phased spectrum (data), model fit, baseline and residual "
                     "(offset above); main metabolites' components below, same scale. "
                     f"Fit range {rng[0]:g}–{rng[1]:g} ppm."))
    else:
        fit_fig["error"] = "no fit file for this run"
    align_fig = no_figure()
    if run.transients:
        from bidsmrs.report.collect import load_raw_transients

        raw = load_raw_transients(run)
        ok = raw is not None and raw.spectrum.ndim == 2 and raw.spectrum.shape[1] == len(run.transients)
        caption = ("Frequency and phase corrections per transient from spectral registration; "
                   "crosses mark rejected transients.")
        if ok:
            caption = ("Top: raw transients (real part, 1.8–4.2 ppm) before and after the "
                       "recorded frequency and phase corrections, one common zero-order phase "
                       "for display, rejected transients in red (display only: coil channels "
                       "combined by first-point phase, no eddy-current correction). " + caption)
        align_fig = safe_figure(figures.alignment_figure, run.transients,
                                raw_ppm=raw.ppm if ok else None,
                                raw_spectra=raw.spectrum if ok else None,
                                dwell_s=raw.dwell_s if ok else None, salt=f"align-{src}",
                                caption=caption)
    water_fig = no_figure()
    if run.water is not None:
        water_fig = safe_figure(figures.water_figure, run.water.ppm, run.water.spectrum,
                            fwhm_hz=to_float((run.qc or {}).get("fwhm_water_hz")),
                            salt=f"water-{src}",
                            caption="Processed water reference (real part and magnitude).")
    voxel_fig = no_figure()
    t1 = run.anat_sidecar.get("T1wPath")
    if t1 and not Path(t1).is_file():  # e.g. moved dataset or another container mount
        from bidsmrs.report.collect import raw_source

        t1 = raw_source(output_dir, run.anat_sidecar.get("Sources")) or t1
    if "anat" in run.paths and t1:
        maps = run.anat_sidecar.get("TissueMaps") if isinstance(
            run.anat_sidecar.get("TissueMaps"), Mapping) else None
        t1p = Path(t1)
        voxel_fig = safe_figure(figures.voxel_figure, t1p, run.paths["anat"], maps,
                            salt=f"voxel-{src}",
                            caption="Voxel (red contour) on the T1-weighted image, three planes "
                                    "through its centre" + (", with GM/WM/CSF maps overlaid."
                                                            if maps else "."))
    elif "anat" in run.paths:
        voxel_fig["error"] = "the voxel mask sidecar does not give the T1w path"
    if write_figures:
        for desc, fig in (("fit", fit_fig), ("align", align_fig), ("voxel", voxel_fig),
                          ("water", water_fig)):
            try:
                _save_figure(output_dir, src, desc, fig)
            except OSError as exc:
                logger.warning("cannot write figure %s of %s: %s", desc, src, exc)

    from bidsmrs.report.methods import details_text

    steps = [{"spectrum": which, "method": e.get("Method", ""),
              "summary": details_text(e.get("Details", "")), "details": str(e.get("Details", "")),
              "program": f"{e.get('Program', '')} {e.get('Version', '')}".strip()}
             for which, entries in (("metabolite", run.processing_applied),
                                    ("water reference", run.water_processing_applied))
             for e in entries]
    tissue = []
    if run.tissue:
        for k, v in run.tissue.items():
            meta = run.tissue_sidecar.get(k) if isinstance(run.tissue_sidecar.get(k), Mapping) else {}
            tissue.append((k + (f" ({meta['Units']})" if meta.get("Units") else ""), v))
    try:
        methods = run_methods(run)
    except Exception as exc:  # noqa: BLE001 - shown on the page
        logger.warning("methods text for %s failed: %s", src, exc)
        from bidsmrs.report.methods import Methods

        methods = Methods((f"The methods text could not be generated: {exc}",), ())
    th = _thresholds(run)
    return {
        "src": src, "label": src.split("_", 1)[1] if "_" in src else src,
        "entities": sorted(run.entities.items()),
        "errors": run.errors, "warnings": run.warnings, "problems": list(run.problems),
        "qc": _qc_rows(run) if run.qc else None,
        "thresholds": sorted(th.items()),
        "max_crlb_text": f"{th['qc_max_crlb']}%" if "qc_max_crlb" in th else "the threshold",
        "fit_figure": fit_fig, "fit_info": _fit_info(run),
        "conc": _conc_table(run), "align_figure": align_fig, "steps": steps,
        "water_figure": water_fig, "voxel_figure": voxel_fig, "tissue": tissue,
        "water_fit": (_flatten(run.fit_sidecar["WaterFit"], depth=1)
                      if isinstance(run.fit_sidecar.get("WaterFit"), Mapping) else []),
        "quant": _flatten(run.quantification, depth=5) if run.quantification else [],
        "methods": methods,
        "mrsinmrs": [it.as_row() for it in checklist(run)],
        "software": _software(run, generator),
        "summary": _summary(run), "prev": None, "next": None,
    }


def render_participant(output_dir: Path, subject: str, *, messages: Sequence[str] = (),
                       write_figures: bool = True) -> str:
    """The HTML text of the participant report (see :func:`write_participant_report`)."""
    out = Path(output_dir)
    label = naming.check_label(subject.removeprefix("sub-"), "subject")
    generator = generator_name(out)
    runs = [_run_context(out, load_run(out, src), generator, write_figures=write_figures)
            for src in find_runs(out, label)]
    for i, run in enumerate(runs):
        run["prev"] = runs[i - 1]["src"] if i > 0 else None
        run["next"] = runs[i + 1]["src"] if i + 1 < len(runs) else None
    env = template_environment()
    return env.get_template("participant.html.j2").render(
        subject=label, runs=runs, messages=[str(m) for m in messages], generator=generator)


def write_participant_report(output_dir: Path, subject: str, *,
                             messages: Sequence[str] = ()) -> Path:
    """Write ``OUTPUT_DIR/sub-<label>.html`` for every run of ``subject``; return its path.

    Parameters
    ----------
    output_dir : Path
        The BIDS-App OUTPUT_DIR holding the participant's outputs.
    subject : str
        Participant label, with or without ``sub-``.
    messages : sequence of str
        Messages from the run to show at the top (e.g. runs that failed before writing
        outputs); escaped like everything else.

    Returns
    -------
    Path
        The report path. Figures are also written to ``figure_file(src, desc)``.
    """
    from bidsmrs.io.atomic import atomic_write_text

    label = subject.removeprefix("sub-")
    html = render_participant(output_dir, label, messages=messages)
    path = Path(output_dir) / naming.report_file(label)
    atomic_write_text(path, html)
    logger.info("wrote %s (%.0f kB)", path, len(html.encode()) / 1024)
    return path


def safe_write_participant_report(output_dir: Path, subject: str, *,
                                  messages: Sequence[str] = ()) -> Path | None:
    """:func:`write_participant_report` that never raises.

    On failure the traceback goes to ``logs/report-<subject>-<uuid>.err`` and None is
    returned, so a report bug never fails the participant.
    """
    try:
        return write_participant_report(output_dir, subject, messages=messages)
    except Exception:  # noqa: BLE001 - by design
        text = traceback.format_exc()
        safe = "".join(ch for ch in str(subject) if ch.isalnum()) or "unknown"
        logger.error("report for sub-%s failed; see logs/report-%s-*.err", safe, safe)
        try:
            from bidsmrs.io.atomic import atomic_write_text

            err = Path(output_dir) / naming.LOGS / f"report-{safe}-{uuid.uuid4().hex}.err"
            atomic_write_text(err, text)
        except Exception:  # noqa: BLE001 - logging only
            logger.exception("could not write the report error file")
        return None


def safe_write_dataset_logs(output_dir: Path, subjects: Sequence[str]) -> list[Path]:
    """Write ``logs/CITATION.md`` and ``logs/MRSinMRS.md`` for ``subjects``; never raises.

    Returns the files written (a failure is logged and that file skipped).
    """
    from bidsmrs.report.methods import write_citation
    from bidsmrs.report.mrsinmrs import write_mrsinmrs

    labels = [str(s).removeprefix("sub-") for s in subjects]
    written = []
    for writer in (write_citation, write_mrsinmrs):
        try:
            written.append(writer(Path(output_dir), labels))
        except Exception:  # noqa: BLE001 - logs are never fatal
            logger.exception("%s failed", writer.__name__)
    return written
