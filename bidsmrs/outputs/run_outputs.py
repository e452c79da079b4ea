"""Writers of one run's derivative files (DESIGN.md §3). They consume results, never compute science."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bidsmrs import __version__
from bidsmrs.fitting.result import FitResult
from bidsmrs.io.jsonfile import write_json
from bidsmrs.io.nifti_mrs import save_nifti_mrs
from bidsmrs.outputs import naming
from bidsmrs.outputs.columns import (CONCENTRATION_COLUMNS, QC_COLUMNS, TISSUE_COLUMNS,
                                     TRANSIENT_COLUMNS)
from bidsmrs.outputs.tables import column_sidecar, write_tsv
from bidsmrs.spectrum import Spectrum, to_fid

FIT_PARTS = ("data", "fit", "baseline", "residual")


def bids_uri(path: Path, bids_dir: Path) -> str:
    """``bids:raw:<relative path>`` for an input file (``DatasetLinks.raw`` points to BIDS_DIR)."""
    try:
        return "bids:raw:" + Path(path).resolve().relative_to(Path(bids_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def _mrs_sidecar(spectrum: Spectrum, description: str, sources: Sequence[str]) -> dict:
    return {"Description": description, "Sources": list(sources),
            "ResonantNucleus": [spectrum.nucleus], "SpectrometerFrequency": [spectrum.spectrometer_mhz],
            "SpectralWidth": spectrum.bandwidth_hz, "EchoTime": spectrum.echo_time_s,
            "RepetitionTime": spectrum.repetition_time_s}


def write_preproc(out: Path, src: str, spectrum: Spectrum, *, suffix: str, sources: Sequence[str]) -> Path:
    """The preprocessed spectrum (or water reference, ``suffix='mrsref'``) as NIfTI-MRS + sidecar."""
    rel = naming.run_file(src, "preproc", ".nii.gz", suffix=suffix)
    save_nifti_mrs(spectrum, out / rel, version=__version__)
    what = "water reference" if suffix == "mrsref" else "metabolite spectrum"
    write_json(out / naming.run_file(src, "preproc", ".json", suffix=suffix),
               _mrs_sidecar(spectrum, f"Preprocessed {what}", sources))
    return rel


def write_fit(out: Path, src: str, fit: FitResult, spectrum: Spectrum, sidecar: Mapping[str, Any]) -> Path:
    """Model fit as NIfTI-MRS: DIM_USER_0 = data, fit, baseline, residual, then each component."""
    cols = [fit.data, fit.fit, fit.baseline, fit.residual] + [fit.components[:, k] for k in range(len(fit.names))]
    fids = to_fid(np.stack(cols, axis=1), axis=0)
    labels = list(FIT_PARTS) + list(fit.names)
    fit_spec = Spectrum(fid=fids, dwell_s=spectrum.dwell_s, spectrometer_mhz=spectrum.spectrometer_mhz,
                        nucleus=spectrum.nucleus, ppm_centre=spectrum.ppm_centre, dim_tags=("DIM_USER_0",),
                        echo_time_s=spectrum.echo_time_s, repetition_time_s=spectrum.repetition_time_s,
                        affine=spectrum.affine, header=dict(spectrum.header), history=spectrum.history)
    rel = naming.run_file(src, "fit", ".nii.gz")
    save_nifti_mrs(fit_spec, out / rel, version=__version__,
                   extra_header={"dim_5_header": {"Value": labels,
                                                  "Description": "data, fit, baseline, residual, then the "
                                                                 "fitted basis components (phase-corrected)"}})
    write_json(out / naming.run_file(src, "fit", ".json"), dict(sidecar))
    return rel


def write_concentrations(out: Path, src: str, table: pd.DataFrame, **extra: Any) -> Path:
    rel = naming.run_file(src, "concentrations", ".tsv")
    write_tsv(out / rel, table[list(CONCENTRATION_COLUMNS)], column_sidecar(CONCENTRATION_COLUMNS, **extra))
    return rel


def write_qc(out: Path, src: str, qc: Mapping[str, Any], thresholds: Mapping[str, float], **extra) -> Path:
    rel = naming.run_file(src, "qc", ".tsv")
    row = {k: qc.get(k, np.nan) for k in QC_COLUMNS}
    write_tsv(out / rel, pd.DataFrame([row]), column_sidecar(QC_COLUMNS, Thresholds=dict(thresholds), **extra))
    return rel


def write_tissue(out: Path, src: str, tissue, **extra) -> Path:
    rel = naming.run_file(src, "tissue", ".tsv")
    if tissue is None:
        row = {k: np.nan for k in TISSUE_COLUMNS}
        row["segmentation_source"] = "none"
    else:
        row = {"gm_fraction": tissue.gm, "wm_fraction": tissue.wm, "csf_fraction": tissue.csf,
               "voxel_volume_ml": tissue.voxel_volume_ml, "overlap_fraction": tissue.overlap_fraction,
               "segmentation_source": tissue.source}
    write_tsv(out / rel, pd.DataFrame([row]), column_sidecar(TISSUE_COLUMNS, **extra))
    return rel


def write_quantification(out: Path, src: str, provenance: Mapping[str, Any]) -> Path:
    rel = naming.run_file(src, "quantification", ".json")
    write_json(out / rel, dict(provenance))
    return rel


def write_transients(out: Path, src: str, transients: Mapping[str, np.ndarray]) -> Path | None:
    if not transients or len(np.atleast_1d(transients.get("freq_shift_hz", []))) == 0:
        return None
    n = len(transients["freq_shift_hz"])
    table = pd.DataFrame({"transient": np.arange(n),
                          **{k: np.asarray(transients[k]) for k in TRANSIENT_COLUMNS if k in transients}})
    rel = naming.run_file(src, "transients", ".tsv")
    write_tsv(out / rel, table, column_sidecar(TRANSIENT_COLUMNS))
    return rel


def write_voxel_mask(out: Path, src: str, mask: np.ndarray, affine: np.ndarray, sidecar: Mapping) -> Path:
    import nibabel as nib

    from bidsmrs.io.atomic import atomic_path

    rel = naming.anat_file(src)
    img = nib.Nifti1Image(np.asarray(mask, np.float32), affine)
    img.header.set_xyzt_units("mm")
    with atomic_path(out / rel) as tmp:  # the temporary name keeps .nii.gz: nibabel compresses
        nib.save(img, str(tmp))
    write_json(out / naming.anat_file(src, extension=".json"), {"Type": "ROI", **dict(sidecar)})
    return rel

