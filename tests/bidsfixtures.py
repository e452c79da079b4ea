"""Write small synthetic BIDS-MRS datasets for tests (importable by every test module).

Two helpers:

- :func:`write_nifti_mrs` writes one NIfTI-MRS file (nibabel only, independent of
  ``bidsmrs.io.nifti_mrs`` so that reader tests are not circular) and its BIDS sidecar.
  ``header_extra``/``sidecar_extra`` values of ``None`` DELETE that key, which makes broken
  files easy to write.
- :func:`make_bids_dataset` writes a valid dataset (BIDS 1.10.0) with svs (+ mrsref, T1w)
  files and returns a :class:`FixtureDataset` describing what it wrote.

Example
-------
>>> from tests.bidsfixtures import make_bids_dataset
>>> ds = make_bids_dataset(tmp_path / "bids", subjects=("01", "02"), with_t1w=True)
>>> ds.svs_paths[0].name
'sub-01_acq-press_svs.nii.gz'

The metabolite spectrum is three Lorentzian singlets in the stored NIfTI-MRS convention
(``bidsmrs.simulate.peak_fid``): NAA 2.008 ppm, Cr 3.027 ppm, Cho 3.185 ppm with FID(0)
amplitudes (= peak areas) given by ``FixtureDataset.truth`` (not a basis-set model), a small
residual water peak at 4.65 ppm, plus seeded complex noise. The water reference is one peak
at 4.65 ppm.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

#: FID(0) amplitudes of the metabolite singlets (ppm, amplitude) written by make_bids_dataset.
METABOLITE_PEAKS = {"NAA": (2.008, 10.0), "Cr": (3.027, 8.0), "Cho": (3.185, 3.0)}
#: FID(0) amplitude of the water reference peak (4.65 ppm).
WATER_AMPLITUDE = 5000.0


def _json_dump(path: Path, obj: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_nifti_mrs(path, fid, *, dwell_s: float, sf_mhz: float, te_s: float | None = 0.03,
                    tr_s: float | None = 2.0, dim_tags: Sequence[str] = (), affine=None,
                    header_extra: Mapping[str, Any] | None = None,
                    sidecar_extra: Mapping[str, Any] | None = None, nucleus: str = "1H",
                    nifti_version: int = 2, write_sidecar: bool = True,
                    dtype=np.complex64) -> Path:
    """Write a NIfTI-MRS ``.nii[.gz]`` and (unless ``write_sidecar=False``) its BIDS sidecar.

    Parameters
    ----------
    path : path-like
        Output name ending in ``.nii.gz`` or ``.nii``; parents are created.
    fid : array, complex
        Shape ``(n_points,)`` or ``(n_points, d5[, d6[, d7]])``, stored NIfTI-MRS convention.
    dwell_s, sf_mhz : float
        Dwell time (s, written to ``pixdim[4]``) and spectrometer frequency (MHz).
    te_s, tr_s : float or None
        EchoTime/RepetitionTime (s) written to both header extension and sidecar (None: omitted).
    dim_tags : sequence of str
        ``dim_5``.. tags for the higher dims (omitted → no ``dim_N`` keys, i.e. defaults).
    affine : (4, 4) array, optional
        Voxel → scanner affine; default a 20 mm cube centred at the origin.
    header_extra, sidecar_extra : dict, optional
        Keys added to the header extension / sidecar; a value of None deletes the key.
    nucleus : str
        ResonantNucleus.
    nifti_version : {1, 2}
    write_sidecar : bool
    dtype : numpy dtype
        Data type on disk (a real dtype writes invalid, real-valued NIfTI-MRS).
    """
    import nibabel as nib

    path = Path(path)
    fid = np.asarray(fid)
    data = fid.reshape((1, 1, 1) + fid.shape).astype(dtype)
    if affine is None:
        affine = np.diag([20.0, 20.0, 20.0, 1.0])  # voxel centre at the scanner origin
    cls = nib.Nifti2Image if nifti_version == 2 else nib.Nifti1Image
    img = cls(data, np.asarray(affine, float))
    img.set_qform(np.asarray(affine, float), code=1)
    img.set_sform(np.asarray(affine, float), code=1)
    hdr = img.header
    hdr.set_xyzt_units("mm", "sec")
    pixdim = hdr["pixdim"].copy()
    pixdim[4] = dwell_s
    hdr["pixdim"] = pixdim
    hdr["intent_name"] = b"mrs_v0_11"
    ext: dict[str, Any] = {"SpectrometerFrequency": [float(sf_mhz)], "ResonantNucleus": [nucleus]}
    if te_s is not None:
        ext["EchoTime"] = float(te_s)
    if tr_s is not None:
        ext["RepetitionTime"] = float(tr_s)
    for i, tag in enumerate(dim_tags):
        ext[f"dim_{5 + i}"] = tag
    for k, v in (header_extra or {}).items():
        if v is None:
            ext.pop(k, None)
        else:
            ext[k] = v
    hdr.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode("utf-8")))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))

    if write_sidecar:
        side: dict[str, Any] = {
            "ResonantNucleus": [nucleus],
            "SpectrometerFrequency": [float(sf_mhz)],
            "SpectralWidth": float(1.0 / dwell_s),
            "NumberOfSpectralPoints": int(fid.shape[0]),
        }
        if te_s is not None:
            side["EchoTime"] = float(te_s)
        if tr_s is not None:
            side["RepetitionTime"] = float(tr_s)
        for k, v in (sidecar_extra or {}).items():
            if v is None:
                side.pop(k, None)
            else:
                side[k] = v
        _json_dump(sidecar_path(path), side)
    return path


def edit_sidecar(nifti_path, **changes) -> None:
    """Change keys of a NIfTI file's BIDS sidecar in place; a value of None deletes the key."""
    p = sidecar_path(nifti_path)
    d = json.loads(p.read_text())
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    p.write_text(json.dumps(d))


def sidecar_path(nifti_path) -> Path:
    """``x.nii.gz`` / ``x.nii`` → ``x.json``."""
    p = Path(nifti_path)
    name = p.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return p.with_name(name[: -len(ext)] + ".json")
    return p.with_suffix(".json")


def metabolite_fid(n_points: int, dwell_s: float, sf_mhz: float, *, lorentz_hz: float = 4.0,
                   water_amplitude: float = 50.0, scale: float = 1.0) -> np.ndarray:
    """Noise-free metabolite FID: the singlets of :data:`METABOLITE_PEAKS` + residual water."""
    from bidsmrs.simulate import peak_fid

    fid = np.zeros(n_points, complex)
    for ppm, amp in METABOLITE_PEAKS.values():
        fid += peak_fid(n_points, dwell_s, sf_mhz, ppm, amplitude=scale * amp, lorentz_hz=lorentz_hz)
    if water_amplitude:
        fid += peak_fid(n_points, dwell_s, sf_mhz, 4.65, amplitude=water_amplitude,
                        lorentz_hz=lorentz_hz)
    return fid


def water_fid(n_points: int, dwell_s: float, sf_mhz: float, *, lorentz_hz: float = 4.0,
              amplitude: float = WATER_AMPLITUDE) -> np.ndarray:
    """Noise-free water-reference FID (one peak at 4.65 ppm)."""
    from bidsmrs.simulate import peak_fid

    return peak_fid(n_points, dwell_s, sf_mhz, 4.65, amplitude=amplitude, lorentz_hz=lorentz_hz)


def write_t1w(path, *, shape=(32, 32, 32), voxel_mm: float = 2.0, seed: int = 0) -> Path:
    """A small synthetic T1w centred at the scanner origin (bright sphere, dark rim) + sidecar."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(float)
    centre = (np.asarray(shape) - 1) / 2.0
    r = np.sqrt(sum((idx[i] - centre[i]) ** 2 for i in range(3))) * voxel_mm
    vol = np.where(r < 20, 800.0, np.where(r < 26, 500.0, np.where(r < 28, 150.0, 10.0)))
    vol = (vol + rng.normal(0, 5, shape)).astype(np.float32)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -centre * voxel_mm
    img = nib.Nifti1Image(vol, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    _json_dump(sidecar_path(path), {"MagneticFieldStrength": 2.9})
    return path


@dataclass(frozen=True)
class FixtureDataset:
    """What :func:`make_bids_dataset` wrote (all paths absolute).

    ``svs_paths``/``ref_paths``/``t1w_paths`` are sorted lists; ``truth`` maps metabolite name
    → (ppm, FID(0) amplitude) of the metabolite spectrum; ``water_amplitude`` is the FID(0)
    amplitude of the water reference; ``params`` echoes the acquisition parameters.
    """

    root: Path
    subjects: tuple[str, ...]
    sessions: tuple[str, ...] | None
    svs_paths: list[Path] = field(default_factory=list)
    ref_paths: list[Path] = field(default_factory=list)
    t1w_paths: list[Path] = field(default_factory=list)
    truth: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    water_amplitude: float = WATER_AMPLITUDE
    params: Mapping[str, Any] = field(default_factory=dict)


def make_bids_dataset(root, subjects: Sequence[str] = ("01", "02"), sessions: Sequence[str] | None = None,
                      *, with_reference: bool = True, reference_signal: bool = True,
                      with_t1w: bool = False, anatomical_image: bool = True,
                      acq: str | None = "press", runs: Sequence[int] | None = None,
                      reference_acqs: Sequence[str | None] = (None,), n_points: int = 1024,
                      dwell_s: float = 1.0 / 2000.0, sf_mhz: float = 123.2, te_s: float = 0.03,
                      tr_s: float = 2.0, n_transients: int = 1, n_coils: int = 1,
                      noise_sd: float = 0.05, lorentz_hz: float = 4.0, seed: int = 0,
                      participants: Mapping[str, Mapping[str, Any]] | None = None,
                      svs_sidecar_extra: Mapping[str, Any] | None = None,
                      nifti_version: int = 2, svs_fid: np.ndarray | None = None,
                      ref_fid: np.ndarray | None = None,
                      amplitude_scale: Mapping[str, float] | None = None) -> FixtureDataset:
    """Write a small valid BIDS-MRS dataset under ``root`` and describe it.

    Parameters
    ----------
    root : path-like
        Dataset root (created).
    subjects : sequence of str
        Subject labels (without ``sub-``).
    sessions : sequence of str, optional
        Session labels; every subject gets every session. None: no session level.
    with_reference : bool
        Write ``mrsref`` water references.
    reference_signal : bool
        Link references (and the T1w) from the svs sidecar with ``ReferenceSignal``/
        ``AnatomicalImage`` BIDS URIs; False leaves discovery to entity matching.
    with_t1w : bool
        Write ``anat/sub-X[_ses-Y]_T1w.nii.gz`` (per session when there are sessions).
    anatomical_image : bool
        With ``reference_signal``, also write ``AnatomicalImage`` for the T1w.
    acq : str or None
        ``acq`` label of the svs files.
    runs : sequence of int, optional
        Write one svs per run index (``run-<i>``); references carry no run entity.
    reference_acqs : sequence of (str or None)
        ``acq`` label of each reference; ``(None,)`` = one reference with the svs's ``acq``;
        e.g. ``("conc", "ecc", "wref")`` writes three references.
    n_points, dwell_s, sf_mhz, te_s, tr_s : acquisition parameters (points, s, MHz, s, s).
    n_transients, n_coils : int
        > 1 adds ``DIM_COIL`` (dim 5) and/or ``DIM_DYN`` dims to the svs (references get coils).
    noise_sd : float
        Time-domain noise SD per real/imaginary part of each transient (seeded).
    lorentz_hz : float
        Lorentzian FWHM (Hz) of every peak.
    seed : int
        Seed of the noise generator (one stream for the whole dataset).
    participants : dict, optional
        Extra participants.tsv columns per subject, e.g. ``{"01": {"age": 30, "group": "hc"}}``.
        Default columns: ``age``, ``sex``, ``group`` (alternating hc/pt).
    svs_sidecar_extra : dict, optional
        Added to every svs sidecar (None deletes a key).
    nifti_version : {1, 2}
    svs_fid, ref_fid : complex array (n_points,), optional
        Noise-free metabolite / water FIDs replacing the default singlets (e.g. a
        ``bidsmrs.simulate.combine_basis`` signal); coils, transients and noise are added.
        ``truth`` is then empty for ``svs_fid``.
    amplitude_scale : dict, optional
        Subject label → factor applied to that subject's metabolite signal (known group
        differences for group-level tests); default 1.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    _json_dump(root / "dataset_description.json", {
        "Name": "bidsmrs synthetic test dataset", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "License": "CC0", "Authors": ["bidsmrs tests"]})
    (root / "README").write_text("Synthetic single-voxel MRS dataset written by "
                                 "tests/bidsfixtures.py for bidsmrs tests.\n", encoding="utf-8")
    cols = ["participant_id", "age", "sex", "group"]
    rows = []
    for i, sub in enumerate(subjects):
        row = {"participant_id": f"sub-{sub}", "age": 20 + 3 * i, "sex": "MF"[i % 2],
               "group": ("hc", "pt")[i % 2]}
        row.update((participants or {}).get(sub, {}))
        for k in row:
            if k not in cols:
                cols.append(k)
        rows.append(row)
    lines = ["\t".join(cols)] + ["\t".join(str(r.get(c, "n/a")) for c in cols) for r in rows]
    (root / "participants.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _json_dump(root / "participants.json", {
        "age": {"Description": "age of the participant", "Units": "year"},
        "sex": {"Description": "sex of the participant", "Levels": {"M": "male", "F": "female"}},
        "group": {"Description": "study group", "Levels": {"hc": "healthy control",
                                                           "pt": "patient"}}})

    svs_paths, ref_paths, t1w_paths = [], [], []
    higher = []
    tags = []
    if n_coils > 1:
        higher.append(n_coils)
        tags.append("DIM_COIL")
    if n_transients > 1:
        higher.append(n_transients)
        tags.append("DIM_DYN")
    met = (metabolite_fid(n_points, dwell_s, sf_mhz, lorentz_hz=lorentz_hz) if svs_fid is None
           else np.asarray(svs_fid, complex))
    wat = (water_fid(n_points, dwell_s, sf_mhz, lorentz_hz=lorentz_hz) if ref_fid is None
           else np.asarray(ref_fid, complex))
    if met.shape != (n_points,) or wat.shape != (n_points,):
        raise ValueError(f"svs_fid/ref_fid must have shape ({n_points},)")
    coil_gain = np.exp(1j * np.linspace(0, 2.0, max(n_coils, 1))) * np.linspace(1.0, 0.5, max(n_coils, 1))

    for sub in subjects:
        for ses in (sessions or (None,)):
            sdir = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "")
            prefix = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
            t1 = None
            if with_t1w:
                t1 = write_t1w(sdir / "anat" / f"{prefix}_T1w.nii.gz", seed=seed)
                t1w_paths.append(t1)
            refs = []
            if with_reference:
                for racq in reference_acqs:
                    label = acq if racq is None else racq
                    name = prefix + (f"_acq-{label}" if label else "") + "_mrsref.nii.gz"
                    rfid = wat[:, None] * coil_gain[None, :] if n_coils > 1 else wat.copy()
                    rfid = rfid + noise_sd * (rng.standard_normal(rfid.shape)
                                              + 1j * rng.standard_normal(rfid.shape))
                    rpath = write_nifti_mrs(sdir / "mrs" / name, rfid, dwell_s=dwell_s, sf_mhz=sf_mhz,
                                            te_s=te_s, tr_s=tr_s,
                                            dim_tags=("DIM_COIL",) if n_coils > 1 else (),
                                            sidecar_extra={"WaterSuppression": False},
                                            nifti_version=nifti_version)
                    refs.append(rpath)
                    ref_paths.append(rpath)
            for run in (runs or (None,)):
                name = (prefix + (f"_acq-{acq}" if acq else "") + (f"_run-{run}" if run else "")
                        + "_svs.nii.gz")
                fid = met * float((amplitude_scale or {}).get(sub, 1.0))
                if n_coils > 1:
                    fid = fid[:, None] * coil_gain[None, :]
                if n_transients > 1:
                    fid = np.repeat(fid[..., None], n_transients, axis=-1)
                fid = fid + noise_sd * (rng.standard_normal(fid.shape) + 1j * rng.standard_normal(fid.shape))
                side: dict[str, Any] = {"WaterSuppression": True}
                if acq:
                    side["PulseSequenceType"] = acq.upper()
                if n_transients > 1:
                    side["NumberOfTransients"] = n_transients
                if reference_signal and refs:
                    uris = [f"bids::{r.relative_to(root).as_posix()}" for r in refs]
                    side["ReferenceSignal"] = uris[0] if len(uris) == 1 else uris
                if reference_signal and anatomical_image and t1 is not None:
                    side["AnatomicalImage"] = f"bids::{t1.relative_to(root).as_posix()}"
                side.update(svs_sidecar_extra or {})
                svs_paths.append(write_nifti_mrs(
                    sdir / "mrs" / name, fid, dwell_s=dwell_s, sf_mhz=sf_mhz, te_s=te_s, tr_s=tr_s,
                    dim_tags=tuple(tags), sidecar_extra=side, nifti_version=nifti_version))
    return FixtureDataset(
        root=root.resolve(), subjects=tuple(subjects), sessions=tuple(sessions) if sessions else None,
        svs_paths=sorted(p.resolve() for p in svs_paths), ref_paths=sorted(p.resolve() for p in ref_paths),
        t1w_paths=sorted(p.resolve() for p in t1w_paths),
        truth={} if svs_fid is not None else dict(METABOLITE_PEAKS),
        water_amplitude=WATER_AMPLITUDE if ref_fid is None else float(abs(wat[0])),
        params=dict(n_points=n_points, dwell_s=dwell_s, sf_mhz=sf_mhz, te_s=te_s, tr_s=tr_s,
                    n_transients=n_transients, n_coils=n_coils, noise_sd=noise_sd,
                    lorentz_hz=lorentz_hz, seed=seed,
                    amplitude_scale=dict(amplitude_scale or {})))
