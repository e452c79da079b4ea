"""Tissue fractions of a run's voxel: fixed, from fMRIPrep-style maps, or from the built-in segmentation.

Order of preference (DESIGN.md §6.1): ``--tissue-fractions`` > ``--anat-derivatives`` probability
maps > built-in segmentation of the run's T1w (written to OUTPUT_DIR as
``sub-<l>[_ses-<s>]_label-{GM,WM,CSF}_probseg.nii.gz`` and reused by later runs and reruns whose
T1w is unchanged) > none (tissue-corrected columns are then n/a).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bidsmrs.errors import QuantificationError
from bidsmrs.io.bids_inputs import MrsRun
from bidsmrs.io.hashing import sha256_file
from bidsmrs.outputs import naming
from bidsmrs.spectrum import Spectrum

log = logging.getLogger("bidsmrs.tissue")


def tissue_for(run: MrsRun, spectrum: Spectrum, settings, work: Path):
    """Return ``(TissueFractions | None, notes, mask)``; ``mask`` = (array, affine, sidecar) or None."""
    from bidsmrs.quantify import fixed_fractions, fractions_from_maps, voxel_mask

    if settings.tissue_fractions is not None:
        return fixed_fractions(*settings.tissue_fractions), [], None
    notes: list[str] = []
    maps = None
    if settings.anat_derivatives is not None:
        maps = _derivative_maps(run, settings, notes)
    if maps is None and run.t1w_path is not None:
        maps = _builtin_maps(run, settings, notes, work)
    if maps is None:
        notes.append("no T1w or tissue maps: tissue-corrected concentrations are not available "
                     "(use --tissue-fractions or --anat-derivatives)")
        return None, notes, None
    gm, wm, csf, affine, source, sidecar = maps
    if spectrum.affine is None:
        notes.append("the MRS file has no voxel geometry: tissue fractions cannot be computed")
        return None, notes, None
    vm = voxel_mask(spectrum.affine, gm.shape, affine)
    if vm.overlap_fraction < 0.5:
        notes.append(f"only {vm.overlap_fraction:.0%} of the MRS voxel lies inside the T1w field of view")
    if float(np.sum(vm.mask)) <= 0:
        notes.append("the MRS voxel does not overlap the T1w: tissue fractions not available")
        return None, notes, None
    try:
        tissue = fractions_from_maps(vm, gm, wm, csf, source=source)
    except QuantificationError as exc:  # e.g. the voxel holds no tissue (outside the brain)
        notes.append(f"tissue fractions not available: {exc.message}")
        return None, notes, (vm.mask, vm.affine, sidecar)
    return tissue, notes, (vm.mask, vm.affine, sidecar)


def _derivative_maps(run: MrsRun, settings, notes):
    from bidsmrs.io.anat import find_tissue_maps, load_tissue_maps

    files = find_tissue_maps(settings.anat_derivatives, run.subject, run.session, run.t1w_path)
    if files is None:
        notes.append(f"no tissue probability maps for sub-{run.subject} in {settings.anat_derivatives}")
        return None
    if files.warning:
        notes.append(files.warning)
    gm, wm, csf, affine = load_tissue_maps(files)
    rel = _rel(files.reference, settings.anat_derivatives)
    sidecar = {"Sources": [str(p) for p in _map_paths(files)], "TissueMaps": _map_dict(files)}
    if run.t1w_path is not None:
        sidecar["T1wPath"] = str(run.t1w_path)
    return gm, wm, csf, affine, f"anat-derivatives:{rel}", sidecar


def _builtin_maps(run: MrsRun, settings, notes, work: Path):
    import nibabel as nib

    from bidsmrs.io.atomic import atomic_path
    from bidsmrs.io.jsonfile import read_json, write_json

    out = settings.output_dir
    t1_hash = sha256_file(run.t1w_path)
    paths = {lab: out / naming.probseg_file(run.subject, run.session, lab) for lab in ("GM", "WM", "CSF")}
    sidecar_path = paths["GM"].with_name(paths["GM"].name.replace(".nii.gz", ".json"))
    method = None
    if all(p.exists() for p in paths.values()) and sidecar_path.exists():
        meta = read_json(sidecar_path)
        if meta.get("T1wSha256") == t1_hash:
            method = meta.get("Method", "builtin")
            log.info("sub-%s: reusing the segmentation of %s", run.subject, run.t1w_path.name)
    if method is None:
        try:
            from bidsmrs.segment import segment_t1w_file
        except ImportError as exc:  # optional heavy dependency missing
            notes.append(f"built-in segmentation unavailable ({exc}); tissue-corrected concentrations are not "
                         "available (use --anat-derivatives or --tissue-fractions)")
            return None
        log.info("sub-%s: segmenting %s (built-in pipeline; can take a minute)", run.subject, run.t1w_path.name)
        try:
            seg = segment_t1w_file(run.t1w_path, scratch_dir=work)
            affine = nib.load(str(run.t1w_path)).affine
        except Exception as exc:  # unreadable, empty or unregistrable T1w: the spectra stay usable
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            log.debug("segmentation of %s failed", run.t1w_path, exc_info=True)
            notes.append(f"{run.t1w_path.name}: built-in segmentation failed ({type(exc).__name__}: {reason}); "
                         "tissue-corrected concentrations are not available (check the T1w, or use "
                         "--anat-derivatives or --tissue-fractions)")
            return None
        for lab, arr in (("GM", seg.gm), ("WM", seg.wm), ("CSF", seg.csf)):
            img = nib.Nifti1Image(np.asarray(arr, np.float32), affine)
            with atomic_path(paths[lab]) as tmp:
                nib.save(img, str(tmp))
            write_json(paths[lab].with_name(paths[lab].name.replace(".nii.gz", ".json")),
                       {"Sources": [str(run.t1w_path)], "Method": seg.method, "T1wSha256": t1_hash,
                        "Description": f"{lab} probability from the bidsmrs built-in segmentation"})
        method = seg.method
    imgs = [nib.load(str(paths[lab])) for lab in ("GM", "WM", "CSF")]
    gm, wm, csf = (np.asarray(i.dataobj, np.float32) for i in imgs)
    sidecar = {"Sources": [str(run.t1w_path)], "T1wPath": str(run.t1w_path),
               "TissueMaps": {lab: str(p) for lab, p in paths.items()}}
    return gm, wm, csf, imgs[0].affine, f"builtin:{method}", sidecar


def _map_paths(files):
    return [p for p in (getattr(files, k, None) for k in ("gm", "wm", "csf", "aseg")) if p is not None]


def _map_dict(files):
    return {k.upper(): str(getattr(files, k)) for k in ("gm", "wm", "csf", "aseg")
            if getattr(files, k, None) is not None}


def _rel(path, base) -> str:
    if path is None:
        return "n/a"
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return str(path)


