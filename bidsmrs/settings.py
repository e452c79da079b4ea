"""Settings of one bidsmrs invocation, built once by :mod:`bidsmrs.cli` and passed explicitly."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Everything the command line decided. Numeric code never sees this object.

    Paths are absolute. Times are in seconds, thresholds in the units of their names.
    """

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    participant_labels: tuple[str, ...] = ()
    session_labels: tuple[str, ...] = ()
    bids_filters: dict = field(default_factory=dict)
    skip_bids_validation: bool = False
    basis: Path | None = None
    sequence: str | None = None
    te1_s: float | None = None
    te2_s: float | None = None
    tm_s: float | None = None
    anat_derivatives: Path | None = None
    tissue_fractions: tuple[float, float, float] | None = None
    quant_config: Path | None = None
    qc_max_crlb: float = 20.0
    qc_min_snr: float = 10.0
    qc_max_fwhm_ppm: float = 0.1
    group_by: str | None = None
    covariates: tuple[str, ...] = ()
    correlate: tuple[str, ...] = ()
    measure: str = "conc_tissue_corrected_mM"
    nprocs: int = 1
    omp_nthreads: int = 1
    dask_scheduler: str | None = None
    work_dir: Path | None = None
    force: bool = False
    no_report: bool = False
    verbosity: int = 0
    coil_combination: str = "snr2"
    align_ppm: tuple[float, float] = (1.8, 4.2)
    reject_mads: float = 3.0
    fit_ppm: tuple[float, float] = (0.2, 4.2)
    baseline: str = "spline"
    lipids: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable view (paths as strings) for ``logs/config.json``."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def processing_key(self) -> dict[str, Any]:
        """The settings that change participant results (for resumability hashes)."""
        keys = ("basis", "sequence", "te1_s", "te2_s", "tm_s", "anat_derivatives", "tissue_fractions",
                "quant_config", "qc_max_crlb", "qc_min_snr", "qc_max_fwhm_ppm", "coil_combination",
                "align_ppm", "reject_mads", "fit_ppm", "baseline", "lipids")
        d = self.to_dict()
        return {k: d[k] for k in keys}
