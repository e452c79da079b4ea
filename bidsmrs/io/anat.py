"""Anatomical inputs: T1w images and tissue maps from fMRIPrep/sMRIPrep or FreeSurfer.

Tissue maps are looked for in ``--anat-derivatives`` (the fMRIPrep/sMRIPrep output directory,
or a directory holding ``fmriprep/``, ``smriprep/`` or ``sourcedata/freesurfer/``):

1. ``sub-<l>[_ses-<s>][_<other entities>]_label-{GM,WM,CSF}_probseg.nii.gz`` in T1w space,
   i.e. without a ``space-`` entity or with ``space-T1w`` (also fMRIPrep < 1.4's
   ``..._T1w_class-{GM,WM,CSF}_probtissue.nii.gz``);
2. fMRIPrep's ``sub-<l>[_ses-<s>]..._desc-aseg_dseg.nii.gz`` (or ``desc-aparcaseg``), T1w space;
3. FreeSurfer ``sourcedata/freesurfer/sub-<l>/mri/aseg.mgz`` (scanner RAS via vox2ras).

Session preference: maps with the requested session; then subject-level maps without a
session (fMRIPrep's usual multi-session output, no warning); then maps of another session
(used, with a warning returned in :attr:`TissueMapFiles.warning`).

FreeSurfer labels → classes (FreeSurferColorLUT names; aparc+aseg parcel ranges included):

* GM: 3/42 Cerebral-Cortex, 8/47 Cerebellum-Cortex, 9/48 and 10/49 Thalamus, 11/50 Caudate,
  12/51 Putamen, 13/52 Pallidum, 17/53 Hippocampus, 18/54 Amygdala, 26/58 Accumbens-area,
  28/60 VentralDC, 80 non-WM-hypointensities, 1000–2999 cortical parcels (ctx-lh/rh-*).
* WM: 2/41 Cerebral-White-Matter, 7/46 Cerebellum-White-Matter, 16 Brain-Stem,
  77–79 WM-hypointensities, 85 Optic-Chiasm, 251–255 corpus callosum, 3000–5002 WM parcels
  (wm-lh/rh-*, Left/Right-UnsegmentedWhiteMatter).
* CSF: 4/43 Lateral-Ventricle, 5/44 Inf-Lat-Vent, 14 3rd-Ventricle, 15 4th-Ventricle, 24 CSF,
  72 5th-Ventricle, 31/63 choroid-plexus (lies inside the ventricles).
* Everything else (background, vessels 30/62, ...) belongs to no class.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bidsmrs.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["TissueMapFiles", "find_tissue_maps", "load_tissue_maps", "load_t1w",
           "ASEG_GM", "ASEG_WM", "ASEG_CSF"]

ASEG_GM = frozenset({3, 42, 8, 47, 9, 48, 10, 49, 11, 50, 12, 51, 13, 52, 17, 53, 18, 54,
                     26, 58, 28, 60, 80})
ASEG_WM = frozenset({2, 41, 7, 46, 16, 77, 78, 79, 85, 251, 252, 253, 254, 255})
ASEG_CSF = frozenset({4, 43, 5, 44, 14, 15, 24, 72, 31, 63})
_GM_PARCELS = (1000, 2999)
_WM_PARCELS = (3000, 5002)


@dataclass(frozen=True)
class TissueMapFiles:
    """Tissue maps found for one subject/session.

    Parameters
    ----------
    kind : str
        ``"probseg"`` (three probability maps), ``"dseg"`` (fMRIPrep aseg in T1w space)
        or ``"aseg"`` (FreeSurfer ``aseg.mgz``).
    gm, wm, csf : Path or None
        Probability maps (``kind == "probseg"``).
    dseg : Path or None
        Label image (``kind`` ``"dseg"`` or ``"aseg"``).
    session : str or None
        Session of the maps (None: subject-level maps).
    warning : str or None
        Set when the maps come from another session than the MRS data.
    """

    kind: str
    gm: Path | None = None
    wm: Path | None = None
    csf: Path | None = None
    dseg: Path | None = None
    session: str | None = None
    warning: str | None = None

    @property
    def aseg(self) -> Path | None:
        """The label image (``kind`` ``"dseg"``/``"aseg"``), else None; alias of ``dseg``."""
        return self.dseg

    @property
    def reference(self) -> Path:
        """The file named in ``segmentation_source`` (the GM map, or the label image)."""
        return self.gm if self.kind == "probseg" else self.dseg

    @property
    def source(self) -> str:
        """``anat-derivatives:<path>`` for the tissue table."""
        return f"anat-derivatives:{self.reference}"


_ENTITY = re.compile(r"([a-zA-Z0-9]+)-([a-zA-Z0-9]+)")


def _entities(name: str) -> dict[str, str]:
    stem = name.split(".", 1)[0]
    parts = stem.split("_")
    return dict(m.groups() for p in parts[:-1] if (m := _ENTITY.fullmatch(p)))


def _roots(anat_dir: Path) -> list[Path]:
    cands = [anat_dir, anat_dir / "fmriprep", anat_dir / "smriprep"]
    return [c for c in cands if c.is_dir()]


def _anat_dirs(root: Path, subject: str) -> list[Path]:
    sub = root / f"sub-{subject}"
    dirs = [sub / "anat"] + sorted(sub.glob("ses-*/anat"))
    return [d for d in dirs if d.is_dir()]


def _in_t1w_space(ents: dict[str, str]) -> bool:
    return ents.get("space", "T1w") == "T1w"


def _session_rank(map_session: str | None, session: str | None) -> int:
    """0 = same session, 1 = subject-level (no session), 2 = another session."""
    if map_session == session:
        return 0
    if map_session is None:
        return 1
    return 2


def _t1w_match(ents: dict[str, str], t1w_ents: dict[str, str]) -> int:
    """How many of the T1w's acq/rec/run/ce entities the map shares (higher is better)."""
    return sum(1 for k in ("acq", "ce", "rec", "run") if k in ents and ents.get(k) == t1w_ents.get(k))


def find_tissue_maps(anat_derivatives_dir, subject: str, session: str | None = None,
                     t1w_path=None) -> TissueMapFiles | None:
    """Find GM/WM/CSF maps in T1w space for ``subject`` (label without ``sub-``).

    Parameters
    ----------
    anat_derivatives_dir : path
        fMRIPrep/sMRIPrep output directory (or its parent).
    subject : str
        Participant label (a leading ``sub-`` is stripped).
    session : str or None
        Session of the MRS data (a leading ``ses-`` is stripped).
    t1w_path : path or None
        The raw T1w the MRS voxel belongs to; among equally good candidates, maps whose
        ``acq``/``ce``/``rec``/``run`` entities match it are preferred.

    Returns
    -------
    TissueMapFiles or None
        None when nothing usable exists for the subject.

    Raises
    ------
    InputError
        ``anat_derivatives_dir`` does not exist, or a probseg set is incomplete (e.g. GM and
        WM but no CSF).
    """
    root_dir = Path(anat_derivatives_dir)
    if not root_dir.is_dir():
        raise InputError("--anat-derivatives directory not found", root_dir)
    subject = subject[4:] if subject.startswith("sub-") else subject
    if session is not None and session.startswith("ses-"):
        session = session[4:]
    t1w_ents = _entities(Path(t1w_path).name) if t1w_path is not None else {}

    probsets: dict[tuple, dict[str, Path]] = {}
    dsegs: list[tuple[tuple, Path]] = []
    for root in _roots(root_dir):
        for d in _anat_dirs(root, subject):
            for f in sorted(d.iterdir()):
                name = f.name
                if not name.startswith(f"sub-{subject}_") or not name.endswith((".nii.gz", ".nii")):
                    continue
                ents = _entities(name)
                if not _in_t1w_space(ents) or ents.get("sub") != subject:
                    continue
                suffix = name.split(".", 1)[0].rsplit("_", 1)[-1]
                # fMRIPrep < 1.4 wrote ..._T1w_class-GM_probtissue.nii.gz
                label = ents.get("label") if suffix == "probseg" else (
                    ents.get("class") if suffix == "probtissue" else None)
                key_ents = tuple(sorted((k, v) for k, v in ents.items() if k not in ("label", "class")))
                if label in ("GM", "WM", "CSF"):
                    probsets.setdefault((str(d),) + key_ents, {})[label] = f
                elif suffix == "dseg" and ents.get("desc") in ("aseg", "aparcaseg"):
                    dsegs.append(((str(d),) + key_ents, f))

    def score(key: tuple, ents: dict[str, str], extra: int = 0) -> tuple:
        # same session first, then T1w entity match, then fewest entities; key = stable order
        return (_session_rank(ents.get("ses"), session), -_t1w_match(ents, t1w_ents),
                len(ents), extra, key)

    complete = []
    for key, labels in probsets.items():
        if set(labels) != {"GM", "WM", "CSF"}:
            missing = sorted({"GM", "WM", "CSF"} - set(labels))
            raise InputError(f"incomplete tissue maps: {', '.join(missing)} probseg missing",
                             next(iter(labels.values())))
        ents = _entities(labels["GM"].name)
        complete.append((score(key, ents), labels, ents))
    if complete:
        complete.sort(key=lambda c: c[0])
        _, labels, ents = complete[0]
        return TissueMapFiles("probseg", gm=labels["GM"], wm=labels["WM"], csf=labels["CSF"],
                              session=ents.get("ses"),
                              warning=_session_warning(ents.get("ses"), session, labels["GM"]))
    if dsegs:
        scored = sorted(((score(k, _entities(f.name), int("aparc" in f.name)), f)
                         for k, f in dsegs), key=lambda c: c[0])
        f = scored[0][1]
        ses = _entities(f.name).get("ses")
        return TissueMapFiles("dseg", dseg=f, session=ses, warning=_session_warning(ses, session, f))
    for fs in (root_dir / "sourcedata" / "freesurfer", root_dir / "freesurfer", root_dir):
        aseg = fs / f"sub-{subject}" / "mri" / "aseg.mgz"
        if aseg.is_file():
            return TissueMapFiles("aseg", dseg=aseg)
    return None


def _session_warning(map_session: str | None, session: str | None, path: Path) -> str | None:
    if map_session is None or map_session == session:
        return None
    want = f"session {session}" if session else "data without sessions"
    return (f"tissue maps of session {map_session} used for {want} ({path}); the voxel is "
            f"placed by scanner coordinates, check that the head did not move between sessions")


# --- loading ------------------------------------------------------------------------------
def _load(path: Path):
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"cannot read image ({type(exc).__name__}: {exc})", path) from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"expected a 3-D image, got shape {data.shape}", path)
    return data, np.asarray(img.affine, float)


def load_t1w(path) -> tuple[np.ndarray, np.ndarray]:
    """T1w image as float32 array and its voxel-to-world (RAS mm) affine.

    Raises
    ------
    InputError
        Missing, unreadable or not 3-D.
    """
    data, affine = _load(Path(path))
    return np.asarray(data, np.float32), affine


def aseg_to_probabilities(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-hot GM, WM, CSF float32 maps from FreeSurfer labels (module doc for the lists)."""
    lab = np.asarray(labels).astype(np.int64)
    gm = np.isin(lab, list(ASEG_GM)) | ((lab >= _GM_PARCELS[0]) & (lab <= _GM_PARCELS[1]))
    wm = np.isin(lab, list(ASEG_WM)) | ((lab >= _WM_PARCELS[0]) & (lab <= _WM_PARCELS[1]))
    csf = np.isin(lab, list(ASEG_CSF))
    return gm.astype(np.float32), wm.astype(np.float32), csf.astype(np.float32)


def load_tissue_maps(files: TissueMapFiles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GM, WM, CSF maps (float32, one grid) and that grid's affine.

    Raises
    ------
    InputError
        A file is unreadable, or the three probability maps are not on the same grid.
    """
    if files.kind in ("dseg", "aseg"):
        labels, affine = _load(files.dseg)
        gm, wm, csf = aseg_to_probabilities(labels)
        return gm, wm, csf, affine
    maps = [_load(p) for p in (files.gm, files.wm, files.csf)]
    (gm, a0), rest = maps[0], maps[1:]
    for (m, a), p in zip(rest, (files.wm, files.csf)):
        if m.shape != gm.shape or not np.allclose(a, a0, atol=1e-3):
            raise InputError(f"not on the same grid as {files.gm.name} "
                             f"(shape {m.shape} vs {gm.shape})", p)
    return tuple(np.asarray(m, np.float32) for m, _ in maps) + (a0,)
