"""Methods text generated from the steps that actually ran (fMRIPrep-boilerplate style).

Sources, all read back from the participant outputs (:class:`~.collect.RunFiles`):
``ProcessingApplied`` of the preprocessed metabolite spectrum and water reference (one
fragment per step, with the step's own details and parameters), the fit sidecar (range,
basis, options), the tissue table (segmentation source and fractions), the quantification
file and the concentrations table (which measures exist), and the QC thresholds.

Fragments live in ``boilerplate/`` (one small Markdown file per step, see its README) and the
references in ``boilerplate/references.md``. :func:`write_citation` writes
``logs/CITATION.md``.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Iterable, Mapping, Sequence

from bidsmrs.outputs import naming

logger = logging.getLogger(__name__)

__all__ = ["Reference", "Methods", "boilerplate_dir", "load_references", "run_methods",
           "methods_text", "write_citation", "step_fragment"]

#: Near 2021 ``Method`` keywords (lower case, substring) -> fragment name.
_STEP_FRAGMENTS = (
    ("coil", "coil_combination"),
    ("eddy", "ecc"),
    ("frequency and phase", "alignment"),
    ("align", "alignment"),
    ("averag", "averaging"),
    ("nuisance", "water_removal"),
    ("water removal", "water_removal"),
    ("phasing", "phasing"),
    ("referenc", "referencing"),
    ("frequency shift", "referencing"),
)
_MEASURE_WORDS = {
    "ratio_tcr": "ratio to total creatine",
    "conc_raw_water_mM": "water-scaled concentration without tissue correction (mM)",
    "conc_csf_corrected_mM": "CSF-corrected concentration (mM)",
    "conc_tissue_corrected_mM": "tissue- and relaxation-corrected molarity (mM)",
    "conc_molal_mmol_per_kg": "tissue- and relaxation-corrected molality (mmol/kg)",
    "conc_alpha_corrected_mM": "alpha-corrected concentration assuming a WM/GM concentration "
                               "ratio (mM)",
}


@dataclass(frozen=True)
class Reference:
    """One bibliography entry."""

    key: str
    text: str
    doi: str | None = None

    @property
    def label(self) -> str:
        """Short in-text label, e.g. ``Near et al. 2015``."""
        authors = self.text.split(". ", 1)[0]
        year = re.search(r"\b(19|20)\d{2}\b", self.text)
        names = [a.strip() for a in authors.split(",") if a.strip()]
        first = names[0].split(" ")[0] if names else self.key
        if len(names) == 2 and "et al" not in authors:
            first = f"{first} and {names[1].split(' ')[0]}"
        elif len(names) > 2 or "et al" in authors:
            first = f"{first} et al."
        return f"{first} {year.group(0)}" if year else first


@dataclass(frozen=True)
class Methods:
    """Methods paragraphs (plain text with author–year citations) and their references."""

    paragraphs: tuple[str, ...]
    references: tuple[Reference, ...]

    def to_markdown(self) -> str:
        refs = "\n".join(f"- {r.text}" + (f" doi:{r.doi}" if r.doi else "")
                         for r in self.references)
        return "\n\n".join(self.paragraphs) + ("\n\n### References\n\n" + refs if refs else "") + "\n"


def boilerplate_dir() -> Path:
    """Where the fragments are: ``bidsmrs/boilerplate`` (installed) or ``<repo>/boilerplate``."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "boilerplate", here.parent.parent / "boilerplate"):
        if (cand / "references.md").is_file():
            return cand
    raise FileNotFoundError("bidsmrs boilerplate fragments not found (expected boilerplate/ "
                            "beside the bidsmrs package)")


_REF_LINE = re.compile(r"^- \[(?P<key>[\w-]+)\]\s+(?P<text>.*?)\s*(<!--.*-->)?\s*$")


def load_references(directory: Path | None = None) -> dict[str, Reference]:
    """Parse ``references.md`` into ``{key: Reference}``."""
    path = Path(directory or boilerplate_dir()) / "references.md"
    refs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _REF_LINE.match(line)
        if not m:
            continue
        text = m.group("text")
        doi = None
        dm = re.search(r"\s*doi:(\S+)\s*$", text)
        if dm:
            doi = dm.group(1).rstrip(".")
            text = text[: dm.start()].rstrip()
        refs[m.group("key")] = Reference(m.group("key"), text, doi)
    return refs


@dataclass(frozen=True)
class _Fragment:
    text: str
    refs: tuple[str, ...]
    when: tuple[tuple[str, str], ...]


def _load_fragment(name: str, directory: Path | None = None) -> _Fragment:
    path = Path(directory or boilerplate_dir()) / f"{name}.md"
    raw = path.read_text(encoding="utf-8")
    refs: list[str] = []
    when: list[tuple[str, str]] = []
    body = raw
    if raw.startswith("---"):
        head, _, body = raw[3:].partition("\n---")
        for line in head.splitlines():
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if key == "refs":
                refs += [v.strip() for v in val.split(",") if v.strip()]
            elif key == "when" and "=>" in val:
                word, _, ref = val.partition("=>")
                when.append((word.strip().lower(), ref.strip()))
    return _Fragment(" ".join(body.split()), tuple(refs), tuple(when))


def step_fragment(method: str, details: str = "") -> str:
    """Fragment name for a ``ProcessingApplied`` step (``other_step`` if unknown).

    The Near 2021 keyword "Frequency and phase correction" covers both transient alignment
    and frequency referencing; the step's details tell them apart.
    """
    low = method.lower()
    det = str(details).lower()
    if "frequency and phase" in low and "referenc" in det and "registration" not in det:
        return "referencing"
    for word, name in _STEP_FRAGMENTS:
        if word in low:
            return name
    return "other_step"


#: Lists longer than this are summarised ("32 values") in prose.
MAX_LIST_IN_TEXT = 6


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST_IN_TEXT:
            return f"{len(value)} values"
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def details_text(details: str) -> str:
    """A ``ProcessingApplied`` Details string as prose: sentence + ``parameters: k = v, ...``."""
    text = str(details or "").strip()
    sentence, sep, params = text.partition("Parameters: ")
    sentence = sentence.strip().rstrip(".").strip()
    if sep:
        try:
            obj = json.loads(params)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, Mapping) and obj:
            ptxt = ", ".join(f"{k} = {_fmt_value(v)}" for k, v in obj.items())
        else:
            ptxt = params.strip()
        sentence = f"{sentence}; parameters: {ptxt}" if sentence else f"parameters: {ptxt}"
    return sentence or "no details recorded"


class _Builder:
    """Collects paragraphs and cited references in first-cited order."""

    def __init__(self, refs: Mapping[str, Reference], directory: Path | None):
        self.refs = refs
        self.directory = directory
        self.paragraphs: list[str] = []
        self.cited: dict[str, Reference] = {}

    def cite(self, keys: Iterable[str]) -> str:
        labels = []
        for key in keys:
            ref = self.refs.get(key)
            if ref is None:
                logger.warning("boilerplate cites unknown reference %r", key)
                continue
            self.cited.setdefault(key, ref)
            labels.append(ref.label)
        return "; ".join(dict.fromkeys(labels))

    def add(self, fragment: str, **fields: Any) -> str:
        frag = _load_fragment(fragment, self.directory)
        text = Template(frag.text).safe_substitute({k: str(v) for k, v in fields.items()})
        low = text.lower()
        keys = list(frag.refs) + [ref for word, ref in frag.when if word in low]
        cite = self.cite(keys)
        if cite:
            text = text.rstrip()
            end = "." if text.endswith(".") else ""
            text = f"{text[:-1] if end else text} ({cite}){end}"
        self.paragraphs.append(text)
        return text


def _num(text: Any) -> str:
    return "n/a" if text in (None, "", "n/a") else str(text)


def _value(v: Any) -> Any:
    """A constant that may be written as ``{"value": x, "source": ...}``."""
    return v.get("value") if isinstance(v, Mapping) and "value" in v else v


def _water_constants(quant: Mapping | None) -> str:
    """A sentence with the water relaxation times and contents, when the file has them."""
    if not isinstance(quant, Mapping):
        return ""
    consts = quant.get("constants") if isinstance(quant.get("constants"), Mapping) else quant
    water = consts.get("water")
    if not isinstance(water, Mapping):
        return "The constants used are listed in the quantification file."
    parts = []
    for key, label, unit in (("T1", "water T1", " s"), ("T2", "water T2", " s"),
                             ("content", "water content", "")):
        vals = water.get(key)
        if isinstance(vals, Mapping):
            tissues = [t for t in ("gm", "wm", "csf") if t in vals]
            if tissues:
                parts.append(f"{label} (" + "/".join(t.upper() for t in tissues) + ") "
                             + "/".join(_fmt_value(_value(vals[t])) for t in tissues) + unit)
    text = "Constants: " + "; ".join(parts) + "." if parts else ""
    alpha = _value(consts.get("alpha"))
    if alpha is not None:
        text += f" Alpha (WM/GM concentration ratio) {_fmt_value(alpha)}."
    return (text + " All values used, with their sources, are listed in the quantification "
            "file.").strip()


def fit_options_used(fit_sidecar: Mapping) -> dict:
    """The fit sidecar's ``FitOptions``, with ``lipids`` replaced by what the rule decided when it
    added lipid components (``FitParameters.lipids``)."""
    opts = dict(fit_sidecar.get("FitOptions")) if isinstance(fit_sidecar.get("FitOptions"), Mapping) else {}
    params = fit_sidecar.get("FitParameters") if isinstance(fit_sidecar.get("FitParameters"), Mapping) else {}
    lipid_mode = opts.get("lipids")
    if str(params.get("lipids", "")).startswith("added"):
        opts["lipids"] = f"LCModel simulated lipids (Lip09, Lip13a, Lip13b, Lip20) {params['lipids']}"
    # settings of a baseline model that was not used would misdescribe the fit
    baseline = opts.get("baseline")
    if baseline is not None and baseline != "spline":
        opts = {k: v for k, v in opts.items() if not k.startswith("baseline_")}
    if baseline is not None and baseline != "poly":
        opts.pop("poly_order", None)
    if lipid_mode in ("never", "always"):  # the auto rule's thresholds did not apply
        opts = {k: v for k, v in opts.items() if not k.startswith("lipid_")}
    return opts


def _author_year(citation: str) -> tuple[str, str]:
    """(first author's surname, first 4-digit year) of a reference text, to spot the same work
    cited in two formats ("Gasparovic C, Song T, ... 2006;55:1219" and "Gasparovic C et al. ...
    2006;55:1219-1226")."""
    surname = citation.strip().split(" ", 1)[0].rstrip(",.").lower()
    year = re.search(r"(19|20)\d\d", citation)
    return surname, year.group(0) if year else citation.strip().lower()


def _quant_citations(quant: Any) -> list[str]:
    cites = quant.get("citations", quant.get("Citations")) if isinstance(quant, Mapping) else None
    if isinstance(cites, Mapping):
        return [str(v) for v in cites.values()]
    if isinstance(cites, (list, tuple)):
        return [str(v) for v in cites]
    return []


def _measures(run) -> list[str]:
    if not run.concentrations:
        return []
    out = []
    for col in run.concentrations_columns:
        if col in _MEASURE_WORDS and any(r.get(col, "n/a") != "n/a" for r in run.concentrations):
            out.append(col)
    return out


def _step_sentences(b: _Builder, entries: Sequence[Mapping]) -> None:
    for e in entries:
        method = str(e.get("Method", "processing step"))
        det = details_text(e.get("Details", ""))
        prog = str(e.get("Program", ""))
        if prog and prog.lower() != "bidsmrs":
            det += f"; performed by {prog} {e.get('Version', '')}".rstrip()
        b.add(step_fragment(method, str(e.get("Details", ""))), method=method, details=det)


def run_methods(run, *, version: str | None = None, directory: Path | None = None) -> Methods:
    """Methods paragraphs and references for one run (:class:`~.collect.RunFiles`)."""
    refs = load_references(directory)
    b = _Builder(refs, directory)
    if version is None:
        version = str(run.fit_sidecar.get("Software", {}).get("bidsmrs", "")) if isinstance(
            run.fit_sidecar.get("Software"), Mapping) else ""
        if not version:
            from bidsmrs import __version__ as version
    b.add("intro", version=version)
    _step_sentences(b, run.processing_applied)
    water_steps = [str(e.get("Method", "")) for e in run.water_processing_applied]
    if water_steps:
        b.add("water_reference", steps=", ".join(dict.fromkeys(water_steps)))

    fs = run.fit_sidecar
    if fs:
        fr = fs.get("FitRangePpm") or []
        basis = fs.get("Basis") if isinstance(fs.get("Basis"), Mapping) else {}
        bd = []
        if basis.get("sequence"):
            bd.append(f"sequence {basis['sequence']}")
        if basis.get("echo_time_s") is not None:
            try:
                bd.append(f"TE {float(basis['echo_time_s']) * 1000:.4g} ms")
            except (TypeError, ValueError):
                pass
        if basis.get("n_points"):
            bd.append(f"{basis['n_points']} points")
        names = basis.get("names") or (list(run.fit.components) if run.fit else [])
        opts = fit_options_used(fs)
        b.add("fitting",
              fit_range="–".join(_fmt_value(v) for v in fr) if len(fr) == 2 else "n/a",
              basis=basis.get("source", "n/a"), basis_details=", ".join(bd) or "details n/a",
              n_components=len(names),
              options="; ".join(f"{k} = {_fmt_value(v)}" for k, v in opts.items()) or "defaults")

    if run.tissue:
        src = str(run.tissue.get("segmentation_source", ""))
        fr = {k: _num(run.tissue.get(f"{k}_fraction")) for k in ("gm", "wm", "csf")}
        if src == "fixed":
            b.add("tissue_fixed", **fr)
        else:
            if src.startswith("anat-derivatives:"):
                how = f"from the tissue probability maps in {src.split(':', 1)[1]}"
            elif src.startswith("builtin:"):
                how = f"from bidsmrs' own segmentation of the T1-weighted image ({src.split(':', 1)[1]})"
            else:
                how = f"({src or 'source not recorded'})"
            b.add("tissue_segmentation", source=how, **fr)

    measures = _measures(run)
    words = "; ".join(_MEASURE_WORDS[m] for m in measures) or "none"
    water_scaled = any(m.startswith("conc_") for m in measures)
    if water_scaled:
        q = run.quantification or {}
        te = q.get("echo_time_s", q.get("EchoTime", run.preproc_header.get("EchoTime")))
        tr = q.get("repetition_time_s", q.get("RepetitionTime",
                                               run.preproc_header.get("RepetitionTime")))
        b.add("quantification", water="using the unsuppressed water reference",
              te=f"{float(te) * 1000:.4g} ms" if _isnum(te) else "n/a",
              tr=f"{float(tr):.4g} s" if _isnum(tr) else "n/a",
              measures=words, constants=_water_constants(run.quantification))
        known = {_author_year(r.text) for r in b.cited.values()}
        for i, c in enumerate(_quant_citations(q), start=1):
            if _author_year(c) not in known:  # constants' sources not already cited (in any format)
                known.add(_author_year(c))
                b.cited.setdefault(f"quant-{i}", Reference(f"quant-{i}", c))
    elif measures:
        b.add("quantification_ratio", measures=words)

    th = run.qc_sidecar.get("Thresholds") if isinstance(run.qc_sidecar, Mapping) else None
    if isinstance(th, Mapping) and th:
        parts = []
        if "qc_min_snr" in th:
            parts.append(f"the NAA SNR was below {_fmt_value(th['qc_min_snr'])}")
        if "qc_max_fwhm_ppm" in th:
            parts.append(f"the NAA linewidth exceeded {_fmt_value(th['qc_max_fwhm_ppm'])} ppm")
        if "qc_max_crlb" in th:
            parts.append(f"(per metabolite) the CRLB exceeded {_fmt_value(th['qc_max_crlb'])}%")
        b.add("qc", thresholds=", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "")
              + parts[-1] if parts else "thresholds were not recorded")
    b.add("reporting")
    refs_sorted = sorted(b.cited.values(), key=lambda r: (r.label.lower(), r.key))
    return Methods(tuple(b.paragraphs), tuple(refs_sorted))


def _isnum(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def methods_text(run_files) -> str:
    """Markdown methods text (paragraphs + references) for one run or several.

    Parameters
    ----------
    run_files : RunFiles or sequence of RunFiles
        Runs read with :func:`bidsmrs.report.collect.load_run`. With several runs the text
        of the first is given in full; steps whose details differ in other runs are listed
        per run after it.
    """
    runs = [run_files] if hasattr(run_files, "src") else list(run_files)
    if not runs:
        return "No runs were processed.\n"
    first = run_methods(runs[0])
    out = [first.to_markdown().split("\n\n### References")[0]]
    refs = {r.key: r for r in first.references}
    extra = []
    for run in runs[1:]:
        m = run_methods(run)
        for r in m.references:
            refs.setdefault(r.key, r)
        diff = [p for p in m.paragraphs if p not in first.paragraphs]
        if diff:
            extra.append(f"- `{run.src}`: " + " ".join(diff))
    if extra:
        out.append(f"Details that differ in other runs (the text above is for `{runs[0].src}`):"
                   "\n\n" + "\n".join(extra))
    out.append("### References\n\n" + "\n".join(
        f"- {r.text}" + (f" doi:{r.doi}" if r.doi else "") for r in refs.values()))
    return "\n\n".join(out) + "\n"


def write_citation(output_dir: Path, subjects: Sequence[str]) -> Path:
    """Write ``logs/CITATION.md`` (methods text + references) for ``subjects``; return its path."""
    from bidsmrs.io.atomic import atomic_write_text
    from bidsmrs.report.collect import find_runs, load_run

    out = Path(output_dir)
    runs = [load_run(out, src) for sub in sorted(set(subjects)) for src in find_runs(out, sub)]
    head = ("# Methods (generated by bidsmrs)\n\n"
            "This text was generated from the processing steps recorded in the outputs. "
            "You may copy it into your manuscript (it is released under CC0); check it and "
            "cite the references.\n\n"
            f"Runs described: {len(runs)}.\n\n")
    path = out / naming.LOGS / "CITATION.md"
    atomic_write_text(path, head + methods_text(runs))
    return path
