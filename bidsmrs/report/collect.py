"""Read one subject's participant output files back for the report (DESIGN.md §3).

The report is built from files, not in-memory objects, so it can be regenerated and tested
alone. Every reader here is tolerant: a missing file gives ``None`` and an unreadable one
adds a line to :attr:`RunFiles.problems`, so the page shows what went wrong instead of
failing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bidsmrs.outputs import naming
from bidsmrs.spectrum import frequency_axis_hz, hz_to_ppm, to_spectrum

logger = logging.getLogger(__name__)

__all__ = ["SpectrumArrays", "FitArrays", "RunFiles", "find_runs", "load_run",
           "read_table_text", "read_json_or_none", "raw_source", "load_raw_transients",
           "FIT_ENTRIES"]

#: The first entries of the fit file's DIM_USER_0, in order.
FIT_ENTRIES = ("data", "fit", "baseline", "residual")


@dataclass(frozen=True)
class SpectrumArrays:
    """A 1-D spectrum and its ppm axis (ppm decreasing with index not assumed)."""

    ppm: np.ndarray
    spectrum: np.ndarray
    spectrometer_mhz: float
    dwell_s: float | None = None


@dataclass(frozen=True)
class FitArrays:
    """Spectra of the fit file: data, fit, baseline, residual and named components."""

    ppm: np.ndarray
    data: np.ndarray
    fit: np.ndarray
    baseline: np.ndarray
    residual: np.ndarray
    components: Mapping[str, np.ndarray]
    spectrometer_mhz: float


@dataclass(frozen=True)
class RunFiles:
    """Everything the participant stage wrote for one run ``src``, as read from disk.

    Tables are kept as text rows (``dict[str, str]``, exactly as in the TSV) so the report
    shows the values of the files verbatim.
    """

    src: str
    entities: Mapping[str, str]
    paths: Mapping[str, Path]
    preproc_header: Mapping[str, Any] = field(default_factory=dict)
    preproc_sidecar: Mapping[str, Any] = field(default_factory=dict)
    preproc_affine: np.ndarray | None = None
    water_header: Mapping[str, Any] = field(default_factory=dict)
    fit_sidecar: Mapping[str, Any] = field(default_factory=dict)
    fit: FitArrays | None = None
    water: SpectrumArrays | None = None
    concentrations: tuple[dict[str, str], ...] | None = None
    concentrations_columns: tuple[str, ...] = ()
    concentrations_sidecar: Mapping[str, Any] = field(default_factory=dict)
    qc: dict[str, str] | None = None
    qc_columns: tuple[str, ...] = ()
    qc_sidecar: Mapping[str, Any] = field(default_factory=dict)
    tissue: dict[str, str] | None = None
    tissue_sidecar: Mapping[str, Any] = field(default_factory=dict)
    quantification: Mapping[str, Any] | None = None
    transients: tuple[dict[str, str], ...] | None = None
    anat_sidecar: Mapping[str, Any] = field(default_factory=dict)
    raw_path: Path | None = None
    raw_sidecar: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def processing_applied(self) -> list[dict]:
        """``ProcessingApplied`` entries of the metabolite spectrum (list of dicts)."""
        entries = self.preproc_header.get("ProcessingApplied") or []
        return [dict(e) for e in entries if isinstance(e, Mapping)]

    @property
    def water_processing_applied(self) -> list[dict]:
        entries = self.water_header.get("ProcessingApplied") or []
        return [dict(e) for e in entries if isinstance(e, Mapping)]

    @property
    def warnings(self) -> list[str]:
        return [str(w) for w in _as_list(self.concentrations_sidecar.get("Warnings"))]

    @property
    def errors(self) -> list[str]:
        return [str(e) for e in _as_list(self.concentrations_sidecar.get("Errors"))]


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def find_runs(output_dir: Path, subject: str) -> list[str]:
    """Source stems of every run of ``subject`` under ``output_dir`` (all sessions), sorted.

    A run is found by any of its concentrations, QC, fit or preproc files, so a run whose
    fit failed still appears in the report.
    """
    label = naming.check_label(subject, "subject")
    base = Path(output_dir) / f"sub-{label}"
    srcs = set()
    for desc in ("concentrations", "qc", "fit", "preproc"):
        for p in base.glob(f"**/mrs/*_desc-{desc}_svs.*"):
            src = naming.src_of(p)
            try:
                if naming.parse_src(src).get("sub") == label:
                    srcs.add(src)
            except ValueError:
                logger.warning("ignoring file with an unexpected name: %s", p)
    return sorted(srcs)


def read_json_or_none(path: Path, problems: list[str]) -> dict | None:
    """A JSON object, or None when missing (an unreadable file adds to ``problems``)."""
    from bidsmrs.io.jsonfile import read_json

    if not path.exists():
        return None
    try:
        return read_json(path)
    except Exception as exc:  # noqa: BLE001 - shown in the report
        problems.append(f"{path.name}: {exc}")
        return None


def read_table_text(path: Path, problems: list[str]) -> tuple[tuple[str, ...], list[dict[str, str]]] | None:
    """A TSV as (columns, rows of text cells), or None when missing/unreadable."""
    if not path.exists():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: cannot read ({exc})")
        return None
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        problems.append(f"{path.name}: empty table")
        return None
    cols = tuple(lines[0].split("\t"))
    rows = []
    for n, ln in enumerate(lines[1:], start=2):
        cells = ln.split("\t")
        if len(cells) != len(cols):
            problems.append(f"{path.name}: line {n} has {len(cells)} cells, header has {len(cols)}")
            continue
        rows.append(dict(zip(cols, cells)))
    return cols, rows


def _sidecar_of(path: Path) -> Path:
    name = path.name
    for ext in (".nii.gz", ".nii", ".tsv"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def _load_spectrum(path: Path, problems: list[str]):
    from bidsmrs.io.nifti_mrs import load_nifti_mrs

    if not path.exists():
        return None
    try:
        return load_nifti_mrs(path)
    except Exception as exc:  # noqa: BLE001 - shown in the report
        problems.append(f"{path.name}: {exc}")
        return None


def _ppm_axis(spec) -> np.ndarray:
    return hz_to_ppm(frequency_axis_hz(spec.n_points, spec.dwell_s), spec.spectrometer_mhz,
                     spec.ppm_centre)


def _fit_arrays(spec, problems: list[str], name: str) -> FitArrays | None:
    fid = np.asarray(spec.fid)
    if fid.ndim != 2 or fid.shape[1] < 4:
        problems.append(f"{name}: expected a 5th dimension with at least data, fit, baseline, "
                        f"residual; found shape {fid.shape}")
        return None
    n = fid.shape[1]
    hdr = spec.header.get("dim_5_header") or {}
    values = hdr.get("Value") if isinstance(hdr, Mapping) else None
    values = [str(v) for v in values] if isinstance(values, list) else []
    if len(values) == n:
        names = values
    elif len(values) == n - 4:
        names = list(FIT_ENTRIES) + values
    else:
        names = list(FIT_ENTRIES) + [f"component{i}" for i in range(1, n - 3)]
        if values:
            problems.append(f"{name}: dim_5_header lists {len(values)} names for {n} entries")
    specs = to_spectrum(fid, axis=0)
    comps = {names[i]: specs[:, i] for i in range(4, n)}
    return FitArrays(ppm=_ppm_axis(spec), data=specs[:, 0], fit=specs[:, 1],
                     baseline=specs[:, 2], residual=specs[:, 3], components=comps,
                     spectrometer_mhz=float(spec.spectrometer_mhz))


def _water_arrays(spec) -> SpectrumArrays:
    fid = np.asarray(spec.fid)
    if fid.ndim > 1:  # not averaged: show the mean
        fid = fid.reshape(fid.shape[0], -1).mean(axis=1)
    return SpectrumArrays(ppm=_ppm_axis(spec), spectrum=to_spectrum(fid),
                          spectrometer_mhz=float(spec.spectrometer_mhz))


def raw_source(output_dir: Path, sources: Any) -> Path | None:
    """The raw input file of a ``bids:raw:<path>`` source, via DatasetLinks ``raw``.

    ``DatasetLinks.raw`` may be absolute, a ``file://`` URI or relative to OUTPUT_DIR.
    Returns None when it cannot be resolved or the file does not exist.
    """
    uris = [s for s in _as_list(sources) if isinstance(s, str) and s.startswith("bids:raw:")]
    if not uris:
        return None
    dd = read_json_or_none(Path(output_dir) / "dataset_description.json", []) or {}
    links = dd.get("DatasetLinks") if isinstance(dd.get("DatasetLinks"), Mapping) else {}
    root = links.get("raw")
    if not isinstance(root, str) or not root:
        return None
    if root.startswith("file://"):
        root = root[len("file://"):]
    base = Path(root) if Path(root).is_absolute() else Path(output_dir) / root
    path = (base / uris[0][len("bids:raw:"):]).resolve()
    return path if path.is_file() else None


def load_raw_transients(run: "RunFiles") -> SpectrumArrays | None:
    """The raw metabolite transients of a run as spectra ``(n_points, n_transients)``.

    For display only: coil channels (DIM_COIL) are combined with each channel's first-point
    phase and magnitude of its summed FID; no eddy-current correction. None when the raw file
    is unavailable or has dimensions other than DIM_DYN and DIM_COIL.
    """
    if run.raw_path is None:
        return None
    from bidsmrs.io.nifti_mrs import load_nifti_mrs

    try:
        spec = load_nifti_mrs(run.raw_path)
    except Exception as exc:  # noqa: BLE001 - the figure just lacks this panel
        logger.info("raw transients of %s not loaded: %s", run.src, exc)
        return None
    fid = np.asarray(spec.fid)
    tags = list(spec.dim_tags)
    if "DIM_DYN" not in tags or any(t not in ("DIM_DYN", "DIM_COIL") for t in tags):
        return None
    if "DIM_COIL" in tags:
        c = 1 + tags.index("DIM_COIL")
        total = fid.sum(axis=tuple(a for a in range(1, fid.ndim) if a != c), keepdims=True)
        w = np.conj(total[:1]) / (np.abs(total[:1]) ** 2).sum()
        fid = (fid * w).sum(axis=c)
        tags.remove("DIM_COIL")
    return SpectrumArrays(ppm=_ppm_axis(spec), spectrum=to_spectrum(fid, axis=0),
                          spectrometer_mhz=float(spec.spectrometer_mhz), dwell_s=float(spec.dwell_s))


def load_run(output_dir: Path, src: str) -> RunFiles:
    """Read every output file of run ``src`` under ``output_dir``.

    Never raises for missing or invalid files; see :attr:`RunFiles.problems`.
    """
    out = Path(output_dir)
    problems: list[str] = []
    paths = {
        "preproc": out / naming.run_file(src, "preproc", ".nii.gz"),
        "mrsref": out / naming.run_file(src, "preproc", ".nii.gz", suffix="mrsref"),
        "fit": out / naming.run_file(src, "fit", ".nii.gz"),
        "concentrations": out / naming.run_file(src, "concentrations", ".tsv"),
        "qc": out / naming.run_file(src, "qc", ".tsv"),
        "tissue": out / naming.run_file(src, "tissue", ".tsv"),
        "quantification": out / naming.run_file(src, "quantification", ".json"),
        "transients": out / naming.run_file(src, "transients", ".tsv"),
        "anat": out / naming.anat_file(src),
    }
    pre = _load_spectrum(paths["preproc"], problems)
    wat = _load_spectrum(paths["mrsref"], problems)
    fit_spec = _load_spectrum(paths["fit"], problems)
    fit = _fit_arrays(fit_spec, problems, paths["fit"].name) if fit_spec is not None else None

    def side(key):
        return read_json_or_none(_sidecar_of(paths[key]), problems) or {}

    conc = read_table_text(paths["concentrations"], problems)
    qc = read_table_text(paths["qc"], problems)
    tissue = read_table_text(paths["tissue"], problems)
    trans = read_table_text(paths["transients"], problems)
    pre_side = side("preproc")
    raw = raw_source(out, pre_side.get("Sources"))
    raw_side = read_json_or_none(_sidecar_of(raw), problems) if raw is not None else None
    if not paths["concentrations"].exists():
        problems.append("no concentrations table (the run may have failed before quantification)")
    return RunFiles(
        src=src, entities=naming.parse_src(src),
        paths={k: v for k, v in paths.items() if v.exists()},
        preproc_header=dict(pre.header) if pre is not None else {},
        preproc_sidecar=pre_side,
        preproc_affine=None if pre is None or pre.affine is None else np.asarray(pre.affine),
        water_header=dict(wat.header) if wat is not None else {},
        fit_sidecar=side("fit"), fit=fit,
        water=_water_arrays(wat) if wat is not None else None,
        concentrations=tuple(conc[1]) if conc else None,
        concentrations_columns=conc[0] if conc else (),
        concentrations_sidecar=side("concentrations"),
        qc=(qc[1][0] if qc and qc[1] else None), qc_columns=qc[0] if qc else (),
        qc_sidecar=side("qc"),
        tissue=(tissue[1][0] if tissue and tissue[1] else None),
        tissue_sidecar=side("tissue"),
        quantification=read_json_or_none(paths["quantification"], problems),
        transients=tuple(trans[1]) if trans else None,
        anat_sidecar=side("anat"),
        raw_path=raw, raw_sidecar=raw_side or {},
        problems=tuple(problems),
    )


def to_float(text: Any) -> float | None:
    """A table cell as float (None for ``n/a``, empty or non-numeric)."""
    if text is None:
        return None
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None
