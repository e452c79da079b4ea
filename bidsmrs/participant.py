"""Participant level: discover runs, process each participant, write its derivatives.

The only module (with :mod:`bidsmrs.group`) that chains the stages:
load → preprocess → fit → tissue → quantify → write → report. One participant's failure
never stops the others: it is recorded (``logs/crash-<participant>-<uuid>.txt``) and the
exit code is 1 at the end.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from bidsmrs import __version__
from bidsmrs.errors import BidsMrsError, FitError, InputError, QuantificationError
from bidsmrs.io.bids_inputs import MrsRun, find_runs
from bidsmrs.io.hashing import sha256_file
from bidsmrs.io.jsonfile import read_json, write_json
from bidsmrs.outputs import naming
from bidsmrs.outputs.dataset import write_dataset_files
from bidsmrs.settings import Settings

log = logging.getLogger("bidsmrs.participant")


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one metabolite run."""

    src: str
    status: str  # "done", "skipped" (finished before, inputs unchanged) or "failed"
    message: str = ""
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class SubjectOutcome:
    subject: str
    runs: tuple[RunOutcome, ...]
    report: str | None = None
    crash_file: str | None = None

    @property
    def failed(self) -> bool:
        return self.crash_file is not None or any(r.status == "failed" for r in self.runs)


# ---------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------
def run_participant_level(settings: Settings) -> int:
    """Run the participant level; return the exit code (0 all done, 1 some failed)."""
    from bidsmrs.execution import map_subjects

    out = settings.output_dir
    if not settings.skip_bids_validation:
        _validate_input(settings)
    runs = find_runs(settings.bids_dir, participant_labels=settings.participant_labels or None,
                     session_labels=settings.session_labels or None, bids_filters=settings.bids_filters or None)
    write_dataset_files(settings.bids_dir, out)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:8]}"
    write_json(out / naming.LOGS / f"config-{run_id}.json", {"version": __version__, **settings.to_dict()})
    handler = _log_file(out / naming.LOGS / f"{run_id}.log")
    try:
        by_subject: dict[str, list[MrsRun]] = {}
        for run in runs:
            by_subject.setdefault(run.subject, []).append(run)
        log.info("%d MRS run(s) of %d participant(s) to process", len(runs), len(by_subject))
        outcomes = map_subjects(process_subject, by_subject, settings)
        if not settings.no_report:
            _write_dataset_logs(out, sorted(by_subject))
    finally:
        logging.getLogger("bidsmrs").removeHandler(handler)
        handler.close()
    return _summarise(outcomes, out)


def _validate_input(settings: Settings) -> None:
    from bidsmrs.io.validator import run_bids_validator

    report = run_bids_validator(settings.bids_dir, participant_labels=settings.participant_labels or None)
    if not report.available:
        log.warning("bids-validator-deno is not available; the input was not validated "
                    "(use --skip-bids-validation to silence this)")
        return
    for w in report.warnings[:5]:
        log.info("bids-validator warning: %s", w)
    if report.errors:
        lines = "\n".join(f"  {e}" for e in report.errors[:20])
        raise InputError(f"the BIDS validator found {len(report.errors)} error(s) in {settings.bids_dir} "
                         f"(use --skip-bids-validation to proceed anyway):\n{lines}")


def _log_file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("bidsmrs").addHandler(handler)
    return handler


def _summarise(outcomes: Sequence[SubjectOutcome], out: Path) -> int:
    _update_failures_file(outcomes, out)
    failed = [o for o in outcomes if o.failed]
    done = sum(r.status == "done" for o in outcomes for r in o.runs)
    skipped = sum(r.status == "skipped" for o in outcomes for r in o.runs)
    log.info("participant level finished: %d run(s) processed, %d skipped (already done), %d participant(s) "
             "failed", done, skipped, len(failed))
    for o in outcomes:
        if o.report:
            log.info("report: %s", out / o.report)
    if failed:
        lines = _failure_rows(failed)
        log.error("%d participant(s) failed (details in %s):\n%s", len(failed),
                  out / naming.LOGS / "failures.tsv", "\n".join(lines))
        return 1
    return 0


def _failure_rows(failed: Sequence[SubjectOutcome]) -> list[str]:
    lines = []
    for o in failed:
        for r in o.runs:
            if r.status == "failed":
                lines.append(f"sub-{o.subject}\t{r.src}\t{r.message}")
        if o.crash_file and not any(r.status == "failed" for r in o.runs):
            lines.append(f"sub-{o.subject}\t-\tsee {o.crash_file}")
    return lines


def _update_failures_file(outcomes: Sequence[SubjectOutcome], out: Path) -> None:
    """``logs/failures.tsv`` lists the participants whose latest run failed: rows of the
    participants processed now are replaced (dropped when they succeeded), others kept; the
    file is removed when nothing is left."""
    from bidsmrs.io.atomic import atomic_write_text

    path = out / naming.LOGS / "failures.tsv"
    header = "participant\trun\tproblem"
    processed = {f"sub-{o.subject}" for o in outcomes}
    kept = []
    if path.is_file():
        kept = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
                if ln.strip() and ln.split("\t", 1)[0] not in processed]
    rows = kept + _failure_rows([o for o in outcomes if o.failed])
    if rows:
        atomic_write_text(path, "\n".join([header, *rows]) + "\n")
    elif path.is_file():
        _remove_stale(path)


# ---------------------------------------------------------------------------------------
# one participant
# ---------------------------------------------------------------------------------------
def process_subject(subject: str, runs: Sequence[MrsRun], settings: Settings) -> SubjectOutcome:
    """Process every run of one participant, then write its report. Never raises."""
    out = settings.output_dir
    try:
        outcomes = []
        with _work_dir(settings, subject) as work:
            for run in runs:
                outcomes.append(_process_run_safely(run, settings, work))
        report = None
        changed = any(o.status != "skipped" for o in outcomes)
        existing = out / naming.report_file(subject)
        if not settings.no_report and any(o.status != "failed" for o in outcomes):
            if changed or not existing.exists():
                report = _write_report(out, subject, outcomes)
            else:
                report = str(naming.report_file(subject))
        elif changed or (outcomes and all(o.status == "failed" for o in outcomes)):
            _remove_stale(existing)  # a report of earlier inputs (or without the failure) no longer matches
        return SubjectOutcome(subject, tuple(outcomes), report)
    except Exception:  # a bug outside a run: record, never propagate
        crash = _crash_file(out, f"sub-{subject}")
        log.error("sub-%s: internal error; traceback in %s", subject, crash)
        return SubjectOutcome(subject, (), None, str(crash))


@contextmanager
def _work_dir(settings: Settings, subject: str) -> Iterator[Path]:
    if settings.work_dir is not None:
        path = settings.work_dir / f"sub-{subject}"
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix=f"bidsmrs-sub-{subject}-") as tmp:
            yield Path(tmp)


def _process_run_safely(run: MrsRun, settings: Settings, work: Path) -> RunOutcome:
    src = run.source_stem
    t0 = time.perf_counter()
    try:
        if run.error:
            raise InputError(run.error)
        key = input_hash(run, settings)
        if not settings.force and _finished(settings.output_dir, src, key):
            log.info("%s: already finished with the same inputs and settings; skipped (--force to redo)", src)
            return RunOutcome(src, "skipped")
        warnings = process_run(run, settings, work, key)
        dt = time.perf_counter() - t0
        log.info("%s: done in %.1f s", src, dt)
        return RunOutcome(src, "done", warnings=tuple(warnings), seconds=dt)
    except BidsMrsError as exc:
        log.error("%s: %s", src, exc)
        _remove_stale_outputs(settings.output_dir, src)
        return RunOutcome(src, "failed", str(exc), seconds=time.perf_counter() - t0)
    except Exception as exc:  # a bug or an unforeseen input: one line here, traceback in logs/
        crash = _crash_file(settings.output_dir, f"sub-{run.subject}")
        log.error("%s: %s: %s (traceback in %s)", src, type(exc).__name__, exc, crash)
        _remove_stale_outputs(settings.output_dir, src)
        return RunOutcome(src, "failed", f"{type(exc).__name__}: {exc} (traceback in {crash.name})",
                          seconds=time.perf_counter() - t0)


def _remove_stale_outputs(out: Path, src: str) -> None:
    """Delete a failed run's outputs from an earlier run (other inputs or settings; a run with
    unchanged inputs is skipped before it can fail), so that the group level and the reports
    never use results that no longer match the data. Never raises."""
    try:
        mrs_dir = out / naming.run_file(src, "concentrations", ".tsv").parent
        anat_dir = out / naming.anat_file(src).parent
        fig_dir = out / naming.figure_file(src, "fit").parent
        stale = [p for d in (mrs_dir, anat_dir, fig_dir) if d.is_dir() for p in d.glob(f"{src}_desc-*")]
    except (ValueError, OSError):  # a source name that is no BIDS name has no outputs
        return
    for path in stale:
        _remove_stale(path)
    if stale:
        log.warning("%s: removed %d output file(s) of an earlier run (they no longer match the inputs)",
                    src, len(stale))


def _remove_stale(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove stale output %s: %s", path, exc)


def _crash_file(out: Path, name: str) -> Path:
    path = out / naming.LOGS / f"crash-{name}-{uuid.uuid4().hex[:8]}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(traceback.format_exc())
    return path


# ---------------------------------------------------------------------------------------
# resumability
# ---------------------------------------------------------------------------------------

def input_hash(run: MrsRun, settings: Settings) -> str:
    """Hash of everything a run's results depend on: input files, sidecar, settings, version."""
    files = [run.svs_path, *sorted(set(run.references.values()))]
    if run.t1w_path is not None and settings.tissue_fractions is None:
        files.append(run.t1w_path)
    if settings.quant_config is not None:
        files.append(settings.quant_config)
    if settings.anat_derivatives is not None and settings.tissue_fractions is None:
        subject_dir = settings.anat_derivatives / f"sub-{run.subject}"
        files += sorted(p for p in subject_dir.rglob("*.nii*") if p.is_file()) if subject_dir.is_dir() else []
    if settings.basis is not None:
        files += sorted(p for p in ([settings.basis] if settings.basis.is_file() else settings.basis.rglob("*"))
                        if p.is_file())
    # the T1w's own sidecar; the references' metadata below, with BIDS inheritance (their EchoTime,
    # RepetitionTime, ... enter the results)
    if run.t1w_path is not None and _sidecar_of(Path(run.t1w_path)).is_file():
        files.append(_sidecar_of(Path(run.t1w_path)))
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(json.dumps(settings.processing_key(), sort_keys=True).encode())
    h.update(json.dumps(dict(run.sidecar), sort_keys=True, default=str).encode())
    for role in sorted(run.references):
        try:
            meta = run.reference_sidecar(role)
        except BidsMrsError as exc:  # the run reports it; the hash just has to differ
            meta = {"unreadable": str(exc)}
        h.update(json.dumps({role: meta}, sort_keys=True, default=str).encode())
    for f in files:
        h.update(str(f.name).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _naming_file(path, func, *args):
    """``func(*args)``, with a bidsmrs error that names no file re-raised naming ``path``."""
    try:
        return func(*args)
    except BidsMrsError as exc:
        if exc.path is None and path is not None:
            raise type(exc)(exc.message, Path(path).name) from None
        raise


def _sidecar_of(nifti: Path) -> Path:
    name = nifti.name
    stem = name[:-7] if name.endswith(".nii.gz") else name[:-4] if name.endswith(".nii") else nifti.stem
    return nifti.with_name(stem + ".json")


def _finished(out: Path, src: str, key: str) -> bool:
    sidecar = out / naming.run_file(src, "concentrations", ".json")
    table = out / naming.run_file(src, "concentrations", ".tsv")
    if not (table.exists() and sidecar.exists()):
        return False
    try:
        return read_json(sidecar).get("InputHash") == key
    except BidsMrsError:
        return False


# ---------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------
def process_run(run: MrsRun, settings: Settings, work: Path, key: str) -> list[str]:
    """Process one metabolite run end to end and write its files; return warnings."""
    from bidsmrs.fitting import fit_qc, fit_spectrum, fit_water
    from bidsmrs.fitting.model import FitOptions
    from bidsmrs.io.nifti_mrs import load_nifti_mrs
    from bidsmrs.outputs import run_outputs as ro
    from bidsmrs.preprocess import PreprocOptions, preprocess_run, spectral_qc, water_qc
    from bidsmrs.quantify import load_quant_config, quantify

    out, src = settings.output_dir, run.source_stem
    warnings: list[str] = list(run.notes)
    log.info("%s: loading %s", src, run.svs_path.name)
    metabolite = load_nifti_mrs(run.svs_path, sidecar=run.sidecar)
    loaded = {}
    references = {}
    for role, path in run.references.items():
        if path not in loaded:
            loaded[path] = load_nifti_mrs(path, sidecar=run.reference_sidecar(role))
        references[role] = loaded[path]
    for role, ref in references.items():
        if abs(ref.spectrometer_mhz - metabolite.spectrometer_mhz) > 1e-3 * metabolite.spectrometer_mhz:
            raise InputError(f"water reference ({role}) SpectrometerFrequency {ref.spectrometer_mhz:g} MHz differs "
                             f"from the metabolite data's {metabolite.spectrometer_mhz:g} MHz", run.references[role])
    from bidsmrs.io.validator import check_mrs_metadata

    warnings += [f"metadata: {problem}" for problem in check_mrs_metadata(run)]

    log.info("%s: preprocessing", src)
    try:
        pre = preprocess_run(metabolite, references, PreprocOptions(
            coil_method=settings.coil_combination, align_ppm_range=settings.align_ppm,
            reject_mad=settings.reject_mads))
    except BidsMrsError as exc:
        if exc.path is None:  # name the file the problem is about
            raise type(exc)(exc.message, run.svs_path) from None
        raise
    spectrum = pre.metabolite
    warnings += [f"preprocessing: {note}" for note in pre.qc.get("notes", [])]

    log.info("%s: fitting", src)
    from bidsmrs.basis_provider import basis_for

    basis = _naming_file(run.svs_path, basis_for, spectrum, run, settings, work)
    if basis.meta.get("te_split") == "default-symmetric":
        warnings.append(f"PRESS TE1/TE2 unknown (no PulseSequenceTiming): the basis was simulated with "
                        f"TE1 = TE2 = {1e3 * basis.meta.get('te1_s', 0):.1f} ms; set --te1/--te2 for your scanner")
    fit_options = FitOptions(ppm_range=settings.fit_ppm, baseline=settings.baseline, lipids=settings.lipids)
    fit = fit_spectrum(spectrum, basis, fit_options)
    if str(fit.params.get("lipids", "")).startswith("added (auto"):
        warnings.append(f"fit: lipid signal in the spectrum; LCModel lipid components were {fit.params['lipids']}; "
                        "metabolites under the lipid bands (Lac, Glu/Gln, NAA, MM) depend on the lipid model, "
                        "check the voxel placement (scalp, lesion)")
    water_path = run.references.get("conc")
    water = None
    if pre.water is not None:
        try:
            water = _naming_file(water_path, fit_water, pre.water)
        except FitError as exc:  # no usable water signal: the ratios are still good
            warnings.append(f"{exc}; concentrations are reported as ratios to tCr only")
            log.warning("%s: %s; concentrations are reported as ratios to tCr only", src, exc)
            water = None
    else:
        warnings.append("no water reference: concentrations are reported as ratios to tCr only")

    from bidsmrs.tissue_provider import tissue_for

    tissue, tissue_notes, mask = tissue_for(run, spectrum, settings, work)
    warnings += tissue_notes
    for note in tissue_notes:  # on the console too: they decide which columns are filled
        log.warning("%s: %s", run.source_stem, note)

    config = load_quant_config(settings.quant_config, spectrum.field_strength_t, metabolite_names=basis.names)
    quant_kwargs = dict(tissue=tissue, echo_time_s=spectrum.echo_time_s,
                        repetition_time_s=spectrum.repetition_time_s, config=config,
                        crlb_threshold_percent=settings.qc_max_crlb)
    if pre.water is not None:  # the water reference may have its own TE/TR
        quant_kwargs.update(water_echo_time_s=pre.water.echo_time_s,
                            water_repetition_time_s=pre.water.repetition_time_s)
    try:
        conc = quantify(fit, water_amplitude=water.amplitude if water else None, **quant_kwargs)
    except QuantificationError as exc:
        warnings.append(f"no water-scaled concentrations: {exc.message}")
        conc = quantify(fit, water_amplitude=None, **quant_kwargs)

    implausible = _implausible_scaling(conc.table)
    if implausible:
        warnings.append(implausible)
        log.warning("%s: %s", src, implausible)

    qc = {**pre.qc, **spectral_qc(spectrum), **fit_qc(fit)}
    if pre.water is not None:
        qc.update(water_qc(pre.water))
    qc["flag"] = qc_flag(qc, settings)

    sources = [ro.bids_uri(run.svs_path, settings.bids_dir)] + [
        ro.bids_uri(p, settings.bids_dir) for p in sorted(set(run.references.values()))]
    log.info("%s: writing outputs", src)
    # the concentrations TSV marks a finished run; drop an older one first so that a run killed
    # while rewriting its files is never taken as finished with the new hash and old tables
    (out / naming.run_file(src, "concentrations", ".tsv")).unlink(missing_ok=True)
    ro.write_preproc(out, src, spectrum, suffix="svs", sources=sources[:1])
    if pre.water is not None:
        ro.write_preproc(out, src, pre.water, suffix="mrsref", sources=sources[1:])
    ro.write_fit(out, src, fit, spectrum, {
        "Description": "Linear-combination model fit", "Sources": sources,
        "FitRangePpm": list(fit.fit_range_ppm), "FitOptions": _jsonable(fit_options),
        "FitParameters": dict(fit.params), "Basis": dict(basis.meta) | {"names": list(fit.names)},
        "WaterFit": _jsonable(water) if water is not None else None,
        "Software": _software_versions()})
    ro.write_transients(out, src, pre.transients)
    ro.write_tissue(out, src, tissue, Sources=sources)
    ro.write_quantification(out, src, conc.provenance)
    ro.write_qc(out, src, qc, {"qc_max_crlb": settings.qc_max_crlb, "qc_min_snr": settings.qc_min_snr,
                               "qc_max_fwhm_ppm": settings.qc_max_fwhm_ppm}, Sources=sources)
    if mask is not None:
        ro.write_voxel_mask(out, src, *mask)
    # written last: its presence (with the hash) marks the run as finished
    ro.write_concentrations(out, src, conc.table, Sources=sources, InputHash=key, Warnings=warnings,
                            BidsmrsVersion=__version__, ProcessingSettings=settings.processing_key())
    return warnings


#: Water-scaled tCr (mM, before tissue correction) outside this range is not tissue, tumour or
#: phantom: an order-of-magnitude scaling error (tCr is 5–10 mM in grey and white matter, lower
#: in tumours; the range leaves a factor of 10–50 either way).
PLAUSIBLE_TCR_MM = (0.1, 100.0)


def _implausible_scaling(table) -> str | None:
    """A warning when the water-scaled tCr is far outside any brain value (the water reference
    does not belong to the data: other voxel, other scaling or units), else None."""
    import math

    rows = table[table["metabolite"] == "tCr"] if "metabolite" in table else table.iloc[0:0]
    if rows.empty or "conc_raw_water_mM" not in rows:
        return None
    value = float(rows["conc_raw_water_mM"].iloc[0])
    lo, hi = PLAUSIBLE_TCR_MM
    if math.isnan(value) or value == 0.0 or lo <= value <= hi:  # 0: no creatine fitted (e.g. a phantom)
        return None
    return (f"implausible water scaling: tCr = {value:.3g} mM (brain: about 5-10 mM); check that the water "
            "reference belongs to these data (same voxel, same scaling and units)")


def qc_flag(qc: dict, settings: Settings) -> str:
    """``ok`` or the ';'-joined QC failures (never drops data: a flag only)."""
    import math

    flags = []
    snr = qc.get("snr_naa")
    if snr is not None and not math.isnan(snr) and snr < settings.qc_min_snr:
        flags.append("low_snr")
    fwhm = qc.get("fwhm_naa_ppm")
    if fwhm is not None and not math.isnan(fwhm) and fwhm > settings.qc_max_fwhm_ppm:
        flags.append("broad_linewidth")
    return ";".join(flags) or "ok"


def _jsonable(obj) -> dict:
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(obj)


def _software_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"bidsmrs": __version__}
    for pkg in ("numpy", "scipy", "nibabel", "pandas", "pybids", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _write_dataset_logs(out: Path, subjects: Sequence[str]) -> None:
    """logs/CITATION.md and logs/MRSinMRS.md (never raises)."""
    from bidsmrs.report.participant import safe_write_dataset_logs

    safe_write_dataset_logs(out, list(subjects))


def _write_report(out: Path, subject: str, outcomes: Sequence[RunOutcome]) -> str | None:
    try:
        from bidsmrs.report.participant import safe_write_participant_report
    except ImportError:
        return None
    messages = [f"{o.src}: {o.message}" for o in outcomes if o.status == "failed"]
    messages += [f"{o.src}: {w}" for o in outcomes for w in o.warnings]
    path = safe_write_participant_report(out, subject, messages=messages)
    return str(Path(path).relative_to(out)) if path else None
