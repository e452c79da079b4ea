"""Reading and writing basis sets: LCModel ``.BASIS`` / ``.RAW``, FSL-MRS JSON, bidsmrs npz.

Formats
-------
LCModel ``.BASIS`` (Provencher, LCModel manual §9 / makebasis)
    Fortran namelists ``$SEQPAR`` (``HZPPPM`` MHz, ``ECHOT`` ms), ``$BASIS1`` (``BADELT`` s,
    ``NDATAB`` points, ``FMTBAS``), then per metabolite an optional ``$NMUSED`` and a
    ``$BASIS`` namelist (``METABO``, ``ISHIFT``) followed by ``NDATAB`` complex numbers (re, im
    pairs). These are the **frequency-domain** spectrum: makebasis zero-fills the FID to
    ``NDATAB`` (= 2 × the original points) and stores ``fft(fid_zero_filled) / sqrt(NDATAB)``
    without fftshift; ``ISHIFT`` is a circular shift in points. Verified on the ISMRM fitting
    challenge basis: the ``.BASIS`` spectrum equals ``fft(zero-padded .RAW)/64`` with
    ``NDATAB = 4096`` to 1e-5 relative (tests/unit/test_basis_files.py). We invert this and
    drop the zero-filled second half when it is empty.
LCModel ``.RAW``
    ``$NMID`` namelist (``ID``, ``FMTDAT``, ``TRAMP``, ``VOLUME``) + time-domain (re, im) pairs.
    Dwell and frequency are not in ``$NMID``: they are taken from a ``$SEQPAR`` in the file
    (``HZPPPM``, ``DWELLTIME``/``BADELT`` as written by some converters), a ``.BASIS`` or
    ``.json`` beside the files, or the ``dwell_s=`` / ``spectrometer_mhz=`` arguments.
FSL-MRS basis directory
    One JSON per metabolite with ``basis.basis_re``, ``basis.basis_im`` (FID), ``basis_dwell``
    (s), ``basis_centre`` (MHz), ``basis_width`` (Hz, line broadening applied) and
    ``basis_name``; an ``MM`` key marks a measured macromolecule (FSL-MRS
    ``docs/user_docs/basis_tools.rst``; ``fsl_mrs/utils/mrs_io/fsl_io.py``).
bidsmrs
    A directory holding ``bidsmrs_basis.json`` (index: format, version, names, dwell,
    frequency, ppm centre, macromolecule flags, meta) and ``fids.npz`` (complex array
    ``fids``, shape (n_points, n_metabolites)).

Conventions
-----------
Everything is returned in the stored NIfTI-MRS convention of :mod:`bidsmrs.spectrum` (a peak at
δ ppm is ``exp(+i2π(4.65 − δ)·SF·t)``). LCModel files from makebasis and the challenge need no
conjugation; the direction is nevertheless checked on every load (``conjugate=None``): for 1H,
if the summed spectral energy of the non-macromolecule components in the mirror band
5.1–9.1 ppm (the image of 0.2–4.2 ppm under conjugation about 4.65 ppm) exceeds the energy in
0.2–4.2 ppm, the basis is conjugated and a warning is logged. Pass ``conjugate=True/False``
to force.

Reference peak: LCModel basis spectra usually carry a reference singlet at 0 ppm (DSS/TMS)
that makebasis uses to align and scale. The challenge basis carries one with 0.1 proton
equivalents (Cr FID(0) = 5.1 = 5 protons + 0.1). With ``strip_reference=True`` (default) a
single Voigt line fitted within ±0.3 ppm of 0 ppm is subtracted from the FID when one is
found; the amplitude removed is recorded in ``meta["reference_removed"]``. The default fit
range (0.2–4.2 ppm) would not see it, but removing it restores the amplitude convention
(FID(0) = protons of the molecule).
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bidsmrs.basis.core import Basis, is_macromolecule_name
from bidsmrs.errors import InputError
from bidsmrs.io.jsonfile import read_bytes_checked
from bidsmrs.io.atomic import atomic_path, atomic_write_text

__all__ = ["load_basis", "save_basis", "write_lcmodel_basis", "read_lcmodel_raw",
           "parse_namelists", "BIDSMRS_BASIS_INDEX"]

log = logging.getLogger(__name__)

#: Index file name of the bidsmrs basis format.
BIDSMRS_BASIS_INDEX = "bidsmrs_basis.json"
_BIDSMRS_FORMAT = "bidsmrs-basis"
_BIDSMRS_FORMAT_VERSION = 1

_NAMELIST_RE = re.compile(r"[$&]\s*([A-Za-z][A-Za-z0-9_]*)(.*?)[$&]\s*END\b", re.S | re.I)
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?")
_ASSIGN_RE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:\([^)]*\))?\s*=")


# ----------------------------------------------------------------------------------------
# Namelist parsing
# ----------------------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    """One namelist value: quoted string, logical, number or list of numbers."""
    text = text.strip().rstrip(",").strip()
    if not text:
        return None
    if text[0] in "'\"":
        q = text[0]
        inner = text[1:]
        end = inner.rfind(q)
        inner = inner[:end] if end >= 0 else inner
        return inner.replace(q + q, q).strip()
    low = text.lower()
    if low in ("t", ".t.", ".true.", "true", ".true"):
        return True
    if low in ("f", ".f.", ".false.", "false", ".false"):
        return False
    nums = _NUMBER_RE.findall(text)
    vals = [float(n.replace("D", "E").replace("d", "e")) for n in nums]
    if len(vals) == 1:
        return vals[0]
    return vals if vals else text


def _parse_body(body: str) -> dict[str, Any]:
    """Key/value pairs of one namelist body (keys upper-cased)."""
    out: dict[str, Any] = {}
    # Blank out quoted strings when locating "KEY =" so '=' inside strings is harmless.
    masked = re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", lambda m: "_" * len(m.group(0)), body)
    marks = list(_ASSIGN_RE.finditer(masked))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        out[m.group(1).upper()] = _parse_value(body[m.end():end])
    return out


def parse_namelists(text: str) -> list[tuple[str, dict[str, Any], str]]:
    """Split LCModel text into ``(NAME, {KEY: value}, data_text_after)`` triples.

    ``data_text_after`` is the text between this namelist's ``$END`` and the next namelist
    (where LCModel puts the numbers).
    """
    matches = list(_NAMELIST_RE.finditer(text))
    out = []
    for i, m in enumerate(matches):
        nxt = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out.append((m.group(1).upper(), _parse_body(m.group(2)), text[m.end():nxt]))
    return out


def _numbers(text: str, path: Path) -> np.ndarray:
    toks = _NUMBER_RE.findall(text)
    try:
        vals = np.array([float(t.replace("D", "E").replace("d", "e")) for t in toks])
    except ValueError:  # pragma: no cover - regex guarantees numbers
        raise InputError("unreadable numbers in data block", path) from None
    if vals.size % 2:
        raise InputError(f"odd number of values ({vals.size}) in a complex data block", path)
    return vals[0::2] + 1j * vals[1::2]


def _read_text(path: Path) -> str:
    return read_bytes_checked(path, "a basis file").decode("latin-1")


# ----------------------------------------------------------------------------------------
# Conventions: conjugation check and reference-peak removal
# ----------------------------------------------------------------------------------------
def _band_energy(fids: np.ndarray, dwell_s: float, mhz: float, centre: float,
                 lo: float, hi: float) -> float:
    n = fids.shape[0]
    spec = np.fft.fftshift(np.fft.fft(fids, axis=0), axes=0)
    ppm = centre - np.fft.fftshift(np.fft.fftfreq(n, dwell_s)) / mhz
    sel = (ppm >= lo) & (ppm <= hi)
    return float(np.sum(np.abs(spec[sel]) ** 2))


def needs_conjugation(fids: np.ndarray, dwell_s: float, spectrometer_mhz: float,
                      ppm_centre: float = 4.65, is_mm=None) -> bool:
    """True when a 1H brain basis looks conjugated (metabolite energy mirrored above 5 ppm).

    Compares the spectral energy in 0.2–4.2 ppm with that of its mirror image about
    ``ppm_centre`` (conjugation maps δ to 2·centre − δ).
    """
    sel = np.ones(fids.shape[1], bool) if is_mm is None else ~np.asarray(is_mm, bool)
    if not sel.any():
        sel[:] = True
    f = fids[:, sel]
    inside = _band_energy(f, dwell_s, spectrometer_mhz, ppm_centre, 0.2, 4.2)
    mirror = _band_energy(f, dwell_s, spectrometer_mhz, ppm_centre,
                          2 * ppm_centre - 4.2, 2 * ppm_centre - 0.2)
    return mirror > inside


def _voigt_model(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    a_re, a_im, f_hz, lor, gau = p
    return (a_re + 1j * a_im) * np.exp((2j * np.pi * f_hz - abs(lor)) * t - (gau * t) ** 2)


def strip_reference_peak(fid: np.ndarray, dwell_s: float, spectrometer_mhz: float,
                         ppm_centre: float = 4.65, ref_ppm: float = 0.0,
                         window_ppm: float = 0.3) -> tuple[np.ndarray, complex]:
    """Remove a reference singlet near ``ref_ppm`` (default 0 ppm, DSS/TMS) from an FID.

    A Voigt line (complex amplitude, frequency, Lorentzian and Gaussian decay) plus a
    linear background is fitted to the (4× zero-filled) spectrum within ±``window_ppm``;
    the line is subtracted from the FID when it is a clear narrow peak (FWHM < 15 Hz and
    height > 5× the RMS misfit in the window). Returns ``(fid, complex amplitude removed)``; the
    amplitude is 0 when nothing was found.
    """
    from scipy.optimize import least_squares

    n = fid.shape[0]
    nz = 4 * n
    t = np.arange(n) * dwell_s
    spec = np.fft.fft(fid, nz)
    freq = np.fft.fftfreq(nz, dwell_s)
    ppm = ppm_centre - freq / spectrometer_mhz
    sel = np.abs(ppm - ref_ppm) <= window_ppm
    if sel.sum() < 8:
        return fid, 0j
    f_ref = (ppm_centre - ref_ppm) * spectrometer_mhz
    seg = spec[sel]
    k = int(np.argmax(np.abs(seg)))
    f0 = freq[sel][k]
    fr = freq[sel] - f_ref

    def resid(p):
        model = np.fft.fft(_voigt_model(t, p[:5]), nz)[sel]
        base = (p[5] + 1j * p[6]) + (p[7] + 1j * p[8]) * fr
        r = seg - model - base
        return np.concatenate([r.real, r.imag])

    p0 = np.array([0.0, 0.0, f0, 3.0, 5.0, 0, 0, 0, 0], float)
    # amplitude start: projection of the windowed spectrum on the start lineshape
    m0 = np.fft.fft(_voigt_model(t, np.r_[1.0, 0.0, p0[2:5]]), nz)[sel]
    amp0 = np.vdot(m0, seg) / np.vdot(m0, m0)
    p0[0], p0[1] = amp0.real, amp0.imag
    try:
        sol = least_squares(resid, p0, method="lm", max_nfev=400)
    except Exception:  # pragma: no cover - numerical failure: keep the data unchanged
        return fid, 0j
    a = complex(sol.x[0], sol.x[1])
    fwhm_lor_hz = abs(sol.x[3]) / np.pi
    line = _voigt_model(t, sol.x[:5])
    line_spec = np.fft.fft(line, nz)[sel]
    height = np.max(np.abs(line_spec))
    rms = np.sqrt(np.mean(sol.fun ** 2)) + 1e-30
    narrow = fwhm_lor_hz < 15 and abs(sol.x[4]) < 60 and abs(sol.x[2] - f_ref) < 0.1 * spectrometer_mhz
    if not (narrow and height > 5 * rms and abs(a) > 1e-6):
        return fid, 0j
    return fid - line, a


# ----------------------------------------------------------------------------------------
# LCModel
# ----------------------------------------------------------------------------------------
def read_lcmodel_raw(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one LCModel ``.RAW``/``.H2O`` file: the FID as stored and the merged namelists."""
    p = Path(path)
    lists = parse_namelists(_read_text(p))
    if not lists:
        raise InputError("not an LCModel .RAW file (no $NMID namelist)", p)
    params: dict[str, Any] = {}
    for _, kv, _ in lists:
        params.update(kv)
    fid = _numbers(lists[-1][2], p)
    if fid.size == 0:
        raise InputError("no data after the $NMID namelist", p)
    return fid, params


def _grid_from_params(params: Mapping[str, Any]) -> tuple[float | None, float | None]:
    dwell = None
    for key in ("BADELT", "DWELLTIME", "DELTAT"):
        if isinstance(params.get(key), float) and params[key] > 0:
            dwell = float(params[key])
            break
    mhz = params.get("HZPPPM")
    mhz = float(mhz) if isinstance(mhz, float) and mhz > 0 else None
    return dwell, mhz


def _load_lcmodel_basis(p: Path, ppm_centre: float) -> Basis:
    lists = parse_namelists(_read_text(p))
    names = [n for n, _, _ in lists]
    if "BASIS1" not in names or "BASIS" not in names:
        raise InputError("not an LCModel .BASIS file (no $BASIS1 and $BASIS namelists)", p)
    head: dict[str, Any] = {}
    for n, kv, _ in lists:
        if n in ("SEQPAR", "BASIS1"):
            head.update(kv)
    dwell, mhz = _grid_from_params(head)
    if dwell is None or mhz is None:
        raise InputError("BADELT (dwell) or HZPPPM (frequency) missing or negative "
                         "(an encrypted LCModel basis cannot be read)", p)
    ndatab = int(head.get("NDATAB", 0) or 0)
    mets, specs = [], []
    for n, kv, data in lists:
        if n != "BASIS":
            continue
        name = str(kv.get("METABO") or kv.get("ID") or f"met{len(mets)}").strip()
        spec = _numbers(data, p)
        if ndatab and spec.size != ndatab:
            raise InputError(f"metabolite {name!r} has {spec.size} points, NDATAB says {ndatab}", p)
        ishift = int(kv.get("ISHIFT", 0) or 0)
        if ishift:
            spec = np.roll(spec, -ishift)
        mets.append(name)
        specs.append(spec)
    if not mets:
        raise InputError("no metabolite ($BASIS namelist) found", p)
    nd = specs[0].size
    if any(s.size != nd for s in specs):
        raise InputError("metabolites have different numbers of points", p)
    fids = np.fft.ifft(np.stack(specs, 1), axis=0) * np.sqrt(nd)
    half = nd // 2
    if nd % 2 == 0 and np.max(np.abs(fids[half:])) < 1e-3 * np.max(np.abs(fids[:half])):
        fids = fids[:half]  # drop makebasis's zero filling
    te = head.get("ECHOT")
    meta = {"source": str(p), "format": "lcmodel-basis",
            "echo_time_s": float(te) / 1e3 if isinstance(te, float) and te > 0 else None,
            "sequence": str(head.get("SEQ") or "").strip() or None}
    return Basis(names=tuple(mets), fids=fids, dwell_s=dwell, spectrometer_mhz=mhz,
                 ppm_centre=ppm_centre, meta=meta)


def _grid_beside(directory: Path) -> tuple[float | None, float | None]:
    """Dwell/frequency from a ``.BASIS`` or JSON file in ``directory``."""
    for b in sorted(directory.glob("*.BASIS")) + sorted(directory.glob("*.basis")):
        lists = parse_namelists(_read_text(b))
        head: dict[str, Any] = {}
        for n, kv, _ in lists:
            if n in ("SEQPAR", "BASIS1"):
                head.update(kv)
        dwell, mhz = _grid_from_params(head)
        if dwell and mhz:
            return dwell, mhz
    for j in sorted(directory.glob("*.json")):
        try:
            obj = json.loads(j.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(obj, dict):
            continue
        dwell = obj.get("dwell_s", obj.get("DwellTime", obj.get("dwelltime")))
        mhz = obj.get("spectrometer_mhz", obj.get("SpectrometerFrequency", obj.get("centralFrequency")))
        if isinstance(mhz, list):
            mhz = mhz[0] if mhz else None
        if isinstance(dwell, (int, float)) and isinstance(mhz, (int, float)):
            mhz = float(mhz)
            return float(dwell), (mhz / 1e6 if mhz > 1e5 else mhz)
    return None, None


def _load_raw_files(files: list[Path], where: Path, dwell_s, spectrometer_mhz, ppm_centre):
    fids, names, grids = [], [], []
    for f in files:
        fid, params = read_lcmodel_raw(f)
        fids.append(fid)
        names.append(f.stem)
        grids.append(_grid_from_params(params))
    n = fids[0].size
    if any(x.size != n for x in fids):
        raise InputError("the .RAW files have different numbers of points", where)
    dwell = dwell_s or next((g[0] for g in grids if g[0]), None)
    mhz = spectrometer_mhz or next((g[1] for g in grids if g[1]), None)
    if dwell is None or mhz is None:
        d2, m2 = _grid_beside(where if where.is_dir() else where.parent)
        dwell, mhz = dwell or d2, mhz or m2
    if dwell is None or mhz is None:
        raise InputError(".RAW files carry no dwell time or spectrometer frequency: put the .BASIS file beside "
                         'them, or a JSON file such as {"dwell_s": 0.00025, "spectrometer_mhz": 123.2}', where)
    meta = {"source": str(where), "format": "lcmodel-raw"}
    return Basis(names=tuple(names), fids=np.stack(fids, 1), dwell_s=float(dwell),
                 spectrometer_mhz=float(mhz), ppm_centre=ppm_centre, meta=meta)


# ----------------------------------------------------------------------------------------
# FSL-MRS JSON
# ----------------------------------------------------------------------------------------
def _load_fsl_dir(d: Path, files: list[Path], ppm_centre: float) -> Basis:
    names, fids, mm, widths = [], [], [], []
    dwell = mhz = None
    for f in files:
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable FSL-MRS basis JSON ({exc})", f) from None
        b = obj.get("basis") if isinstance(obj, dict) else None
        if not isinstance(b, dict) or "basis_re" not in b or "basis_im" not in b:
            raise InputError("not an FSL-MRS basis file (no basis.basis_re/basis_im)", f)
        try:
            fid = np.asarray(b["basis_re"], float) + 1j * np.asarray(b["basis_im"], float)
            d_ = float(b["basis_dwell"])
            c_ = float(b["basis_centre"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"FSL-MRS basis file lacks a valid field ({exc})", f) from None
        c_ = c_ / 1e6 if c_ > 1e5 else c_  # basis_centre is MHz; tolerate Hz
        if dwell is None:
            dwell, mhz = d_, c_
        elif not (np.isclose(d_, dwell, rtol=1e-6) and np.isclose(c_, mhz, rtol=1e-4)):
            raise InputError(f"dwell/frequency ({d_}, {c_}) differ from the other files "
                             f"({dwell}, {mhz})", f)
        if fids and fid.size != fids[0].size:
            raise InputError(f"{fid.size} points, other files have {fids[0].size}", f)
        name = str(b.get("basis_name") or f.stem)
        names.append(name)
        fids.append(fid)
        mm.append(("MM" in obj) or is_macromolecule_name(name))
        widths.append(b.get("basis_width"))
    meta = {"source": str(d), "format": "fsl-mrs", "basis_width_hz": widths}
    return Basis(names=tuple(names), fids=np.stack(fids, 1), dwell_s=float(dwell),
                 spectrometer_mhz=float(mhz), ppm_centre=ppm_centre, is_macromolecule=tuple(mm),
                 meta=meta)


# ----------------------------------------------------------------------------------------
# bidsmrs format
# ----------------------------------------------------------------------------------------
def save_basis(basis: Basis, path: str | os.PathLike) -> Path:
    """Write ``basis`` in the bidsmrs format (directory with index JSON + ``fids.npz``).

    Both files are written atomically; the index is written last, so a directory whose
    index exists is complete. Returns the directory.
    """
    from bidsmrs.io.jsonfile import dumps_json

    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_path(d / "fids.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, fids=np.asarray(basis.fids, np.complex128))
    index = {"format": _BIDSMRS_FORMAT, "format_version": _BIDSMRS_FORMAT_VERSION,
             "names": list(basis.names), "dwell_s": basis.dwell_s,
             "spectrometer_mhz": basis.spectrometer_mhz, "ppm_centre": basis.ppm_centre,
             "is_macromolecule": list(basis.is_macromolecule), "n_points": basis.n_points,
             "meta": _jsonable_meta(basis.meta)}
    atomic_write_text(d / BIDSMRS_BASIS_INDEX, dumps_json(index))
    return d


def _jsonable_meta(meta: Mapping[str, Any]) -> dict:
    from bidsmrs.io.jsonfile import to_jsonable

    out = {}
    for k, v in dict(meta).items():
        try:
            out[str(k)] = to_jsonable(v)
        except TypeError:
            out[str(k)] = str(v)
    return out


def _load_bidsmrs(d: Path, ppm_centre_default: float) -> Basis:
    from bidsmrs.io.jsonfile import read_json

    idx = read_json(d / BIDSMRS_BASIS_INDEX)
    if idx.get("format") != _BIDSMRS_FORMAT:
        raise InputError(f"index format {idx.get('format')!r} is not {_BIDSMRS_FORMAT!r}",
                         d / BIDSMRS_BASIS_INDEX)
    try:
        with np.load(d / "fids.npz") as z:
            fids = np.asarray(z["fids"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read basis data ({exc})", d / "fids.npz") from None
    try:
        return Basis(names=tuple(idx["names"]), fids=fids, dwell_s=float(idx["dwell_s"]),
                     spectrometer_mhz=float(idx["spectrometer_mhz"]),
                     ppm_centre=float(idx.get("ppm_centre", ppm_centre_default)),
                     is_macromolecule=tuple(bool(x) for x in idx.get("is_macromolecule", ())),
                     meta=dict(idx.get("meta") or {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"inconsistent basis index ({exc})", d / BIDSMRS_BASIS_INDEX) from None


# ----------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------
def load_basis(path: str | os.PathLike, *, dwell_s: float | None = None,
               spectrometer_mhz: float | None = None, ppm_centre: float = 4.65,
               conjugate: bool | None = None, strip_reference: bool = True) -> Basis:
    """Load a basis set from any supported format (see module docstring).

    Parameters
    ----------
    path : path-like
        LCModel ``.BASIS`` file, a ``.RAW`` file or directory of ``.RAW`` files, an FSL-MRS
        basis directory (``*.json``), or a bidsmrs basis directory.
    dwell_s, spectrometer_mhz : float, optional
        Dwell time (s) and frequency (MHz) for ``.RAW`` files that do not carry them (they
        override what is found beside the files).
    ppm_centre : float
        Chemical shift (ppm) at 0 Hz of the file's data (4.65 for 1H in LCModel and FSL-MRS).
    conjugate : bool or None
        Conjugate the FIDs; None = decide from the data (module docstring).
    strip_reference : bool
        Remove a reference singlet at 0 ppm when present (LCModel bases).

    Returns
    -------
    Basis
        Stored NIfTI-MRS convention; names as in the file; ``meta`` records ``source``,
        ``format``, ``conjugated`` and ``reference_removed`` (protons per metabolite).

    Raises
    ------
    InputError
        Missing/unreadable file, unknown format, inconsistent grids, missing dwell/frequency.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("basis not found", p)
    try:
        return _load_any(p, dwell_s, spectrometer_mhz, ppm_centre, conjugate, strip_reference)
    except ValueError as exc:  # e.g. duplicate metabolite names, inconsistent shapes
        raise InputError(f"invalid basis ({exc})", p) from None


def _load_any(p: Path, dwell_s, spectrometer_mhz, ppm_centre, conjugate, strip_reference):
    if p.is_dir():
        if (p / BIDSMRS_BASIS_INDEX).exists():
            return _load_bidsmrs(p, ppm_centre)  # our own files: trusted as written
        raws = sorted([f for f in p.iterdir() if f.suffix.upper() == ".RAW" and f.is_file()])
        jsons = sorted([f for f in p.iterdir() if f.suffix.lower() == ".json" and f.is_file()])
        bases = sorted([f for f in p.iterdir() if f.suffix.upper() == ".BASIS" and f.is_file()])
        if raws:
            basis = _load_raw_files(raws, p, dwell_s, spectrometer_mhz, ppm_centre)
        elif jsons:
            basis = _load_fsl_dir(p, jsons, ppm_centre)
        elif len(bases) == 1:
            basis = _load_lcmodel_basis(bases[0], ppm_centre)
        else:
            raise InputError("directory holds no basis (.RAW files, FSL-MRS .json files, a single "
                             f".BASIS or {BIDSMRS_BASIS_INDEX})", p)
    else:
        suf = p.suffix.upper()
        if suf == ".RAW":
            basis = _load_raw_files([p], p, dwell_s, spectrometer_mhz, ppm_centre)
        elif suf == ".JSON":
            basis = _load_fsl_dir(p.parent, [p], ppm_centre)
        elif suf == ".NPZ" and (p.parent / BIDSMRS_BASIS_INDEX).exists():
            return _load_bidsmrs(p.parent, ppm_centre)
        else:
            text_head = _read_text(p)[:20000].upper()
            if "$BASIS1" not in text_head and "&BASIS1" not in text_head:
                raise InputError("unknown basis format (expected an LCModel .BASIS with $BASIS1, "
                                 ".RAW files, an FSL-MRS or a bidsmrs basis directory)", p)
            basis = _load_lcmodel_basis(p, ppm_centre)
    return _normalise(basis, conjugate, strip_reference)


def _normalise(basis: Basis, conjugate: bool | None, strip_reference: bool) -> Basis:
    import dataclasses

    fids = np.array(basis.fids, dtype=complex)
    if conjugate is None:
        conjugate = needs_conjugation(fids, basis.dwell_s, basis.spectrometer_mhz,
                                      basis.ppm_centre, basis.is_macromolecule)
        if conjugate:
            log.warning("%s: basis spectra appear mirrored about %.2f ppm; conjugating",
                        basis.meta.get("source"), basis.ppm_centre)
    if conjugate:
        fids = np.conj(fids)
    removed = {}
    if strip_reference:
        for k, name in enumerate(basis.names):
            new, amp = strip_reference_peak(fids[:, k], basis.dwell_s, basis.spectrometer_mhz,
                                            basis.ppm_centre)
            if amp != 0:
                fids[:, k] = new
                removed[name] = round(abs(amp), 6)
    meta = dict(basis.meta)
    meta.update(conjugated=bool(conjugate), reference_removed=removed)
    return dataclasses.replace(basis, fids=fids, meta=meta)


def _fortran_e(x: float, width: int = 16, digits: int = 8) -> str:
    """Fortran ``E{width}.{digits}`` (0.xxxxxE+yy) formatting."""
    if x == 0 or not np.isfinite(x):
        mant, exp = 0.0, 0
    else:
        exp = int(np.floor(np.log10(abs(x)))) + 1
        mant = x / 10.0 ** exp
        if round(abs(mant), digits) >= 1.0:
            mant /= 10
            exp += 1
    s = f"{mant:.{digits}f}"
    return f"{s}E{exp:+03d}".rjust(width)


def write_lcmodel_basis(basis: Basis, path: str | os.PathLike, *, echo_time_ms: float | None = None,
                        sequence: str = "", id_basis: str = "bidsmrs") -> Path:
    """Export ``basis`` as an LCModel ``.BASIS`` file (atomic write).

    The FIDs are zero-filled to ``NDATAB = 2·n_points`` and stored as
    ``fft(fid)/sqrt(NDATAB)`` with format ``(6E16.8)``, the layout makebasis produces
    (module docstring). No reference peak is added; ``ECHOT`` comes from ``echo_time_ms`` or
    ``basis.meta['echo_time_s']``.
    """
    p = Path(path)
    nd = 2 * basis.n_points
    if echo_time_ms is None:
        te = basis.meta.get("echo_time_s") if basis.meta else None
        echo_time_ms = 1e3 * te if te else -1.0
    lines = [" $SEQPAR", " FWHMBA = -1.,", f" HZPPPM = {basis.spectrometer_mhz!r},",
             f" ECHOT = {float(echo_time_ms)!r},", f" SEQ = '{sequence}'", " $END",
             " $BASIS1", f" IDBASI = '{id_basis}',", " FMTBAS = '(6E16.8)',",
             f" BADELT = {basis.dwell_s!r},", f" NDATAB = {nd}", " $END"]
    specs = np.fft.fft(basis.fids, n=nd, axis=0) / np.sqrt(nd)
    for k, name in enumerate(basis.names):
        safe = name.replace("'", "''")
        lines += [" $NMUSED", f" FILRAW = '{safe}.RAW',", " $END",
                  " $BASIS", f" ID = '{safe}',", f" METABO = '{safe}',", " CONC = 1.,",
                  " TRAMP = 1.,", " VOLUME = 1.,", " ISHIFT = 0", " $END"]
        vals = np.empty(2 * nd)
        vals[0::2] = specs[:, k].real
        vals[1::2] = specs[:, k].imag
        for i in range(0, vals.size, 6):
            lines.append("".join(_fortran_e(v) for v in vals[i:i + 6]))
    atomic_write_text(p, "\n".join(lines) + "\n")
    return p
