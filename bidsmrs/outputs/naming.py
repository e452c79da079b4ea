"""Every output path of bidsmrs, in one place (DESIGN.md §3).

Paths are relative to OUTPUT_DIR. ``src`` is the source metabolite file's stem without its
suffix, e.g. ``sub-01_ses-1_acq-press_run-1`` (entities in BIDS order).

>>> run_file("sub-01_ses-1_acq-press", "concentrations", ".tsv")
PosixPath('sub-01/ses-1/mrs/sub-01_ses-1_acq-press_desc-concentrations_svs.tsv')
>>> figure_file("sub-01_acq-press", "fit")
PosixPath('sub-01/figures/sub-01_acq-press_desc-fit_svs.svg')
"""
from __future__ import annotations

import re
from pathlib import Path

#: BIDS entity order for MRS files (bids-specification entities.yaml).
ENTITY_ORDER = ("sub", "ses", "task", "acq", "nuc", "voi", "rec", "run", "echo", "inv")

#: desc labels bidsmrs writes, with their descriptions (-> descriptions.tsv).
DESCRIPTIONS = {
    "preproc": "Preprocessed, averaged spectrum (NIfTI-MRS) with ProcessingApplied",
    "fit": "Linear-combination model fit: DIM_USER_0 = data, fit, baseline, residual, then components",
    "concentrations": "Metabolite amplitudes, CRLB, ratios and water-scaled concentrations",
    "qc": "Spectral quality metrics and flags",
    "tissue": "Grey matter, white matter and CSF fractions in the MRS voxel",
    "quantification": "Constants, formulas and citations used for quantification",
    "transients": "Per-transient frequency and phase corrections and rejections",
    "voxel": "Fractional MRS voxel mask on the T1w grid",
    "align": "Figure: transients before and after alignment",
    "water": "Figure: processed water reference",
}

_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_SRC = re.compile(r"^sub-[A-Za-z0-9]+(_[a-z]+-[A-Za-z0-9]+)*$")


def check_label(label: str, what: str = "label") -> str:
    """Return ``label`` if it is a valid BIDS label, else raise ValueError (no path tricks)."""
    if not _LABEL.match(label or ""):
        raise ValueError(f"invalid BIDS {what} {label!r}: only letters and digits are allowed")
    return label


def parse_src(src: str) -> dict[str, str]:
    """Entities of a source stem: ``'sub-01_ses-1_acq-press'`` -> ``{'sub': '01', 'ses': '1', 'acq': 'press'}``."""
    if not _SRC.match(src):
        raise ValueError(f"not a BIDS source stem: {src!r}")
    return dict(part.split("-", 1) for part in src.split("_"))


def build_src(entities: dict[str, str]) -> str:
    """Inverse of :func:`parse_src`, in BIDS entity order."""
    parts = [f"{k}-{check_label(str(entities[k]), k)}" for k in ENTITY_ORDER if entities.get(k) not in (None, "")]
    return "_".join(parts)


def subject_dir(src: str) -> Path:
    ent = parse_src(src)
    base = Path(f"sub-{ent['sub']}")
    return base / f"ses-{ent['ses']}" if "ses" in ent else base


def run_file(src: str, desc: str, extension: str, suffix: str = "svs") -> Path:
    """``sub-<l>/[ses-<s>/]mrs/<src>_desc-<desc>_<suffix><extension>``."""
    return subject_dir(src) / "mrs" / f"{src}_desc-{desc}_{suffix}{extension}"


def anat_file(src: str, desc: str = "voxel", suffix: str = "mask", extension: str = ".nii.gz") -> Path:
    """``sub-<l>/[ses-<s>/]anat/<src>_desc-voxel_mask.nii.gz``."""
    return subject_dir(src) / "anat" / f"{src}_desc-{desc}_{suffix}{extension}"


def probseg_file(subject: str, session: str | None, label: str) -> Path:
    """Tissue probability map written when bidsmrs segmented the T1w itself."""
    base = Path(f"sub-{subject}") / (f"ses-{session}" if session else "") / "anat"
    stem = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    return base / f"{stem}_label-{label}_probseg.nii.gz"


def figure_file(src: str, desc: str) -> Path:
    """``sub-<l>/figures/<src>_desc-<desc>_svs.svg`` (figures are per subject, fMRIPrep style)."""
    return Path(f"sub-{parse_src(src)['sub']}") / "figures" / f"{src}_desc-{desc}_svs.svg"


def report_file(subject: str) -> Path:
    return Path(f"sub-{check_label(subject, 'subject')}.html")


GROUP_CONCENTRATIONS = Path("group_desc-concentrations_svs.tsv")
GROUP_QC = Path("group_desc-qc_svs.tsv")
GROUP_STATS = Path("group_desc-stats_svs.tsv")
GROUP_REPORT = Path("group.html")
LOGS = Path("logs")


def wide_group_file(measure: str) -> Path:
    """Wide table (one row per spectrum, one column per metabolite) for one measure."""
    return Path(f"group_desc-{measure.replace('_', '')}_svs.tsv")


def find_concentration_tables(output_dir: Path) -> list[Path]:
    """All participant concentration tables under ``output_dir`` (sorted)."""
    return sorted(Path(output_dir).glob("sub-*/**/mrs/*_desc-concentrations_svs.tsv"))


def src_of(path: Path) -> str:
    """Source stem of a run file name (``..._desc-x_svs.ext`` -> ``src``)."""
    name = Path(path).name
    return name.split("_desc-")[0]
