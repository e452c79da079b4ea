"""MRSinMRS minimum-reporting checklist (Lin et al. 2021, NMR Biomed 34:e4484), auto-filled.

The checklist has four sections: hardware, acquisition, data analysis methods and outputs,
and data quality. Each item is filled from the run's sidecars and NIfTI-MRS header, the
results tables and the fit/quantification files; every value names where it came from, and an
item the metadata do not give is stated as not available rather than guessed.
:func:`write_mrsinmrs` writes ``logs/MRSinMRS.md`` with dataset ranges and one table per run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bidsmrs.constants import GYROMAGNETIC_MHZ_PER_T
from bidsmrs.outputs import naming

logger = logging.getLogger(__name__)

__all__ = ["ChecklistItem", "checklist", "dataset_summary", "write_mrsinmrs", "NOT_AVAILABLE"]

NOT_AVAILABLE = "not available in the metadata"
SECTIONS = ("1. Hardware", "2. Acquisition", "3. Data analysis methods and outputs",
            "4. Data quality")


@dataclass(frozen=True)
class ChecklistItem:
    """One filled checklist row."""

    section: str
    item: str
    value: str
    source: str

    def as_row(self) -> tuple[str, str, str, str]:
        return (self.section, self.item, self.value, self.source)


def _first(*pairs: tuple[Mapping, str, str]) -> tuple[Any, str]:
    """The first present value among (mapping, key, source-name) triples."""
    for mapping, key, where in pairs:
        if isinstance(mapping, Mapping) and mapping.get(key) not in (None, "", []):
            val = mapping[key]
            if isinstance(val, list) and len(val) == 1:
                val = val[0]
            return val, f"{where}: {key}"
    return None, ""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _voxel_geometry(affine) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
    if affine is None:
        return None
    a = np.asarray(affine, float)
    size = tuple(float(x) for x in np.sqrt((a[:3, :3] ** 2).sum(axis=0)))
    if max(size) >= 5000:  # "unlocalised" placeholder affine
        return None
    return size, tuple(float(x) for x in a[:3, 3])


def _field_t(run) -> tuple[Any, str]:
    val, src = _first((run.preproc_sidecar, "MagneticFieldStrength", "BIDS sidecar"),
                      (run.raw_sidecar, "MagneticFieldStrength", "raw sidecar"))
    if val is not None:
        return f"{_fmt(val)} T", src
    sf, src = _first((run.preproc_header, "SpectrometerFrequency", "NIfTI-MRS header"),
                     (run.preproc_sidecar, "SpectrometerFrequency", "BIDS sidecar"))
    nuc, _ = _first((run.preproc_header, "ResonantNucleus", "h"), (run.preproc_sidecar,
                                                                    "ResonantNucleus", "s"))
    try:
        gamma = GYROMAGNETIC_MHZ_PER_T.get(str(nuc or "1H"), 42.577478)
        return f"{float(sf) / gamma:.3g} T ({_fmt(sf)} MHz)", src + " ÷ γ"
    except (TypeError, ValueError):
        return None, ""


def checklist(run) -> list[ChecklistItem]:
    """The filled MRSinMRS checklist of one run (:class:`~.collect.RunFiles`)."""
    side = {**{k: v for k, v in run.raw_sidecar.items()}, **dict(run.preproc_sidecar)}
    hdr = run.preproc_header
    items: list[ChecklistItem] = []

    def add(section: int, item: str, value: Any, source: str) -> None:
        text = _fmt(value) if value not in (None, "") else NOT_AVAILABLE
        items.append(ChecklistItem(SECTIONS[section - 1], item, text,
                                   source if value not in (None, "") else "—"))

    # 1. hardware
    add(1, "Field strength", *_field_t(run))
    add(1, "Manufacturer", *_first((side, "Manufacturer", "BIDS sidecar"),
                                   (hdr, "Manufacturer", "NIfTI-MRS header")))
    model, msrc = _first((side, "ManufacturersModelName", "BIDS sidecar"),
                         (hdr, "ManufacturersModelName", "NIfTI-MRS header"))
    sw, ssrc = _first((side, "SoftwareVersions", "BIDS sidecar"),
                      (hdr, "SoftwareVersions", "NIfTI-MRS header"))
    add(1, "Model and scanner software",
        " / ".join(_fmt(x) for x in (model, sw) if x is not None) or None,
        "; ".join(s for s in (msrc, ssrc) if s))
    rx, rsrc = _first((side, "ReceiveCoilName", "BIDS sidecar"), (hdr, "RxCoil", "NIfTI-MRS header"))
    tx, tsrc = _first((side, "TransmitCoilName", "BIDS sidecar"), (hdr, "TxCoil", "NIfTI-MRS header"))
    nuc, _ = _first((hdr, "ResonantNucleus", "h"), (side, "ResonantNucleus", "s"))
    coil = "; ".join(x for x in (f"receive {_fmt(rx)}" if rx else "",
                                 f"transmit {_fmt(tx)}" if tx else "",
                                 f"nucleus {_fmt(nuc)}" if (rx or tx) and nuc else "") if x)
    add(1, "RF coils", coil or None, "; ".join(s for s in (rsrc, tsrc) if s))
    add(1, "Additional hardware", None, "")

    # 2. acquisition
    seq = [v for v, _ in (_first((side, "PulseSequenceType", "BIDS sidecar")),
                          _first((side, "SequenceName", "BIDS sidecar"),
                                 (hdr, "SequenceName", "NIfTI-MRS header"))) if v]
    add(2, "Pulse sequence", " / ".join(dict.fromkeys(_fmt(s) for s in seq)) or None,
        "sidecar/NIfTI-MRS header: PulseSequenceType, SequenceName" if seq else "")
    geo = _voxel_geometry(run.preproc_affine)
    voi = run.entities.get("voi")
    if geo:
        loc = f"centre ({', '.join(f'{c:.1f}' for c in geo[1])}) mm, scanner RAS"
        add(2, "VOI location", (f"{voi}: " if voi else "") + loc, "NIfTI-MRS affine")
        vol = float(np.prod(geo[0])) / 1000.0
        add(2, "Nominal VOI size",
            " × ".join(f"{s:.3g}" for s in geo[0]) + f" mm ({vol:.3g} mL)", "NIfTI-MRS affine")
    else:
        add(2, "VOI location", voi and f"voi-{voi}", "file name entity" if voi else "")
        vv, vsrc = _first((run.tissue or {}, "voxel_volume_ml", "tissue table"))
        add(2, "Nominal VOI size", f"{vv} mL" if vv not in (None, "n/a") else None, vsrc)
    te, tesrc = _first((side, "EchoTime", "BIDS sidecar"), (hdr, "EchoTime", "NIfTI-MRS header"))
    tr, trsrc = _first((side, "RepetitionTime", "BIDS sidecar"),
                       (hdr, "RepetitionTime", "NIfTI-MRS header"))
    try:
        tetr = f"TE {float(te) * 1000:.4g} ms, TR {float(tr) * 1000:.5g} ms"
    except (TypeError, ValueError):
        tetr = None
    add(2, "TE / TR", tetr, "; ".join(s for s in (tesrc, trsrc) if s))
    qc = run.qc or {}
    nt, ntsrc = _first((side, "NumberOfTransients", "BIDS sidecar"), (qc, "n_transients", "QC table"))
    nrej = qc.get("n_rejected")
    add(2, "Number of transients (averages)",
        f"{_fmt(nt)} acquired" + (f", {nrej} rejected after alignment" if nrej not in
                                  (None, "n/a") else "") if nt is not None else None, ntsrc)
    swv, swsrc = _first((side, "SpectralWidth", "BIDS sidecar"), (hdr, "SpectralWidth", "NIfTI-MRS header"))
    npts, npsrc = _first((side, "NumberOfSpectralPoints", "BIDS sidecar"))
    extra = ", ".join(x for x in (f"spectral width {_fmt(swv)} Hz" if swv else "",
                                  f"{_fmt(npts)} points" if npts else "") if x)
    add(2, "Spectral width and points", extra or None, "; ".join(s for s in (swsrc, npsrc) if s))
    ws, wsrc = _first((side, "WaterSuppressionTechnique", "BIDS sidecar"),
                      (hdr, "WaterSuppressionType", "NIfTI-MRS header"),
                      (side, "WaterSuppression", "BIDS sidecar"), (hdr, "WaterSuppressed",
                                                              "NIfTI-MRS header"))
    add(2, "Water suppression", ws, wsrc)
    shim, shsrc = _first((side, "ShimSetting", "BIDS sidecar"), (side, "ShimmingMethod", "BIDS sidecar"))
    fw = qc.get("fwhm_water_hz")
    shim_text = _fmt(shim) if shim is not None else None
    if fw not in (None, "n/a"):
        shim_text = (shim_text + "; " if shim_text else "method not recorded; ") + \
            f"achieved water FWHM {fw} Hz"
        shsrc = (shsrc + "; " if shsrc else "") + "QC table: fwhm_water_hz"
    add(2, "Shimming", shim_text, shsrc)
    trig, trsrc2 = _first((hdr, "SequenceTriggered", "NIfTI-MRS header"),
                          (side, "SequenceTriggered", "BIDS sidecar"))
    add(2, "Triggering / motion correction", trig, trsrc2)

    # 3. analysis
    software = run.fit_sidecar.get("Software") if isinstance(run.fit_sidecar.get("Software"),
                                                             Mapping) else {}
    add(3, "Analysis software",
        ", ".join(f"{k} {v}" for k, v in software.items()) or None,
        "fit sidecar: Software" if software else "")
    steps = [str(e.get("Method", "")) for e in run.processing_applied]
    add(3, "Processing steps", "; ".join(steps) or None,
        "NIfTI-MRS header: ProcessingApplied" if steps else "")
    from bidsmrs.report.methods import _measures  # same definition as the methods text

    measures = _measures(run)
    add(3, "Output measures", ", ".join(measures) or None,
        "concentrations table" if measures else "")
    quant = run.quantification if isinstance(run.quantification, Mapping) else {}
    from bidsmrs.report.methods import _quant_citations, fit_options_used

    qrefs = [c.split(".")[0] for c in _quant_citations(quant)]
    add(3, "Quantification references and assumptions",
        ("constants and formulas in the quantification file" +
         (f" ({'; '.join(qrefs)})" if qrefs else "")) if quant else None,
        "quantification JSON" if quant else "")
    basis = run.fit_sidecar.get("Basis") if isinstance(run.fit_sidecar.get("Basis"), Mapping) else {}
    opts = fit_options_used(run.fit_sidecar)
    fr = run.fit_sidecar.get("FitRangePpm")
    model = "; ".join(x for x in (
        f"linear combination over {_fmt(fr)} ppm" if fr else "",
        f"basis {basis.get('source')}" if basis.get("source") else "",
        ", ".join(f"{k} {_fmt(v)}" for k, v in opts.items())) if x)
    add(3, "Fitting model and basis", model or None, "fit sidecar" if model else "")

    # 4. quality
    qside = run.qc_sidecar if isinstance(run.qc_sidecar, Mapping) else {}
    snr = qc.get("snr_naa")
    sdef = qside.get("snr_naa", {}).get("Description") if isinstance(qside.get("snr_naa"),
                                                                      Mapping) else None
    add(4, "SNR (with definition)",
        f"{snr}" + (f" — {sdef}" if sdef else "") if snr not in (None, "n/a") else None,
        "QC table: snr_naa" if snr not in (None, "n/a") else "")
    lw = [f"NAA {qc[k]} {u}" for k, u in (("fwhm_naa_hz", "Hz"), ("fwhm_naa_ppm", "ppm"))
          if qc.get(k) not in (None, "n/a")]
    if qc.get("fwhm_water_hz") not in (None, "n/a"):
        lw.append(f"water {qc['fwhm_water_hz']} Hz")
    add(4, "Linewidth (FWHM, reference peak)", "; ".join(lw) or None,
        "QC table" if lw else "")
    th = qside.get("Thresholds") if isinstance(qside.get("Thresholds"), Mapping) else {}
    add(4, "Data exclusion criteria",
        ", ".join(f"{k} = {_fmt(v)}" for k, v in th.items()) + " (flagged; exclusion at group level)"
        if th else None, "QC sidecar: Thresholds" if th else "")
    fq = []
    if run.concentrations:
        fq.append("CRLB per metabolite (concentrations table)")
    if qc.get("fit_residual_ratio") not in (None, "n/a"):
        fq.append(f"residual SD / noise SD {qc['fit_residual_ratio']}")
    add(4, "Fit quality measures", "; ".join(fq) or None, "QC and concentrations tables" if fq else "")
    add(4, "Sample spectrum", "fit figure of this run in the participant report"
        if run.fit is not None else None, f"#fit-{run.src}" if run.fit is not None else "")
    return items


def _range(values: Sequence[float], fmt: str = "{:.3g}", unit: str = "") -> str:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return NOT_AVAILABLE
    lo, hi = min(vals), max(vals)
    text = fmt.format(lo) if np.isclose(lo, hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"
    return f"{text}{unit} (n = {len(vals)})"


def dataset_summary(runs: Sequence) -> list[tuple[str, str]]:
    """Dataset-level MRSinMRS ranges (field, vendor, TE/TR, voxel size, SNR, FWHM)."""
    from bidsmrs.report.collect import to_float

    def side(run, key):
        v = run.preproc_sidecar.get(key, run.preproc_header.get(key, run.raw_sidecar.get(key)))
        return v[0] if isinstance(v, list) and len(v) == 1 else v

    vols = []
    for run in runs:
        geo = _voxel_geometry(run.preproc_affine)
        vols.append(float(np.prod(geo[0])) / 1000 if geo else
                    to_float((run.tissue or {}).get("voxel_volume_ml")))
    fields = sorted({_field_t(r)[0] or NOT_AVAILABLE for r in runs})
    vendors = sorted({f"{side(r, 'Manufacturer') or '?'} {side(r, 'ManufacturersModelName') or ''}".strip()
                      for r in runs})
    return [
        ("Spectra (runs)", str(len(runs))),
        ("Participants", str(len({r.entities.get('sub') for r in runs}))),
        ("Field strength", "; ".join(fields)),
        ("Manufacturer / model", "; ".join(vendors)),
        ("TE", _range([to_float(side(r, "EchoTime")) and to_float(side(r, "EchoTime")) * 1000
                       for r in runs], fmt="{:.4g}", unit=" ms")),
        ("TR", _range([to_float(side(r, "RepetitionTime")) and
                       to_float(side(r, "RepetitionTime")) * 1000 for r in runs], fmt="{:.5g}",
                      unit=" ms")),
        ("Voxel volume", _range(vols, unit=" mL")),
        ("SNR (NAA)", _range([to_float((r.qc or {}).get("snr_naa")) for r in runs])),
        ("FWHM NAA", _range([to_float((r.qc or {}).get("fwhm_naa_hz")) for r in runs], unit=" Hz")),
        ("Transients rejected", _range([to_float((r.qc or {}).get("n_rejected")) for r in runs],
                                       fmt="{:.0f}")),
    ]


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def write_mrsinmrs(output_dir: Path, subjects: Sequence[str]) -> Path:
    """Write ``logs/MRSinMRS.md``: dataset ranges and the filled checklist of every run."""
    from bidsmrs.io.atomic import atomic_write_text
    from bidsmrs.report.collect import find_runs, load_run

    out = Path(output_dir)
    runs = [load_run(out, src) for sub in sorted(set(subjects)) for src in find_runs(out, sub)]
    lines = ["# MRSinMRS checklist (Lin et al. 2021, NMR Biomed 34:e4484; doi:10.1002/nbm.4484)",
             "", "Filled automatically by bidsmrs from the metadata and results; items marked "
             f"\"{NOT_AVAILABLE}\" must be completed by the authors.", "",
             "## Dataset summary", "", "| Item | Value |", "|---|---|"]
    lines += [f"| {_md_escape(k)} | {_md_escape(v)} |" for k, v in dataset_summary(runs)]
    for run in runs:
        lines += ["", f"## {run.src}", "", "| Section | Item | Value | Source |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(_md_escape(c) for c in it.as_row()) + " |"
                  for it in checklist(run)]
    path = out / naming.LOGS / "MRSinMRS.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
