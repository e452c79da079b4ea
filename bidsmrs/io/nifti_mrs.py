"""Read and write single-voxel NIfTI-MRS files with nibabel only.

Format facts (NIfTI-MRS specification v0.11, Clarke et al. 2022 MRM 88:2358,
doi:10.1002/mrm.29418; research/standards.md §2):

- complex data, ``dim[0]`` 4–7; dims 1–3 spatial (1×1×1 for SVS), dim 4 the FID,
  dims 5–7 tagged by header keys ``dim_5``..``dim_7`` (defaults DIM_COIL, DIM_DYN,
  DIM_INDIRECT_0);
- dwell time = ``pixdim[4]`` in the ``xyzt_units`` time unit (unknown → seconds, as the
  reference tools do);
- header extension code 44 (JSON) with required arrays ``SpectrometerFrequency`` (MHz)
  and ``ResonantNucleus``; ``SpecFreqChemShift`` + ``RxOffset`` (ppm) give the chemical shift
  at 0 Hz;
- data are stored so that ``ppm = ppm_centre − f/SF`` for ``fftshift(fft(fid))``
  (spec Appendix A), which is the convention of :mod:`bidsmrs.spectrum`; no conjugation.

Every problem with an input file becomes a one-line :class:`~bidsmrs.errors.InputError`.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import math
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bidsmrs.constants import DEFAULT_PPM_CENTRE
from bidsmrs.errors import InputError
from bidsmrs.io.atomic import atomic_path
from bidsmrs.spectrum import Spectrum, StepRecord

logger = logging.getLogger(__name__)

__all__ = [
    "load_nifti_mrs", "save_nifti_mrs", "read_header_extension", "bids_sidecar_for",
    "processing_entry", "KNOWN_DIM_TAGS", "DEFAULT_DIM_TAGS", "MAX_DATA_BYTES", "INTENT_NAME", "MIN_POINTS",
]

#: Dimension tags defined by NIfTI-MRS 0.11 (``dim_5``..``dim_7`` values).
KNOWN_DIM_TAGS = frozenset({
    "DIM_COIL", "DIM_DYN", "DIM_INDIRECT_0", "DIM_INDIRECT_1", "DIM_INDIRECT_2",
    "DIM_PHASE_CYCLE", "DIM_EDIT", "DIM_MEAS", "DIM_USER_0", "DIM_USER_1", "DIM_USER_2",
    "DIM_ISIS", "DIM_METCYCLE",
})
#: Meaning of dims 5, 6, 7 when the header does not say (NIfTI-MRS spec §"Data array").
DEFAULT_DIM_TAGS = ("DIM_COIL", "DIM_DYN", "DIM_INDIRECT_0")
#: Refuse files whose declared data exceed this many bytes (before reading them).
MAX_DATA_BYTES = 2 * 1024 ** 3
#: Fewer spectral points than this per FID cannot be a spectrum (refused with a clear message).
MIN_POINTS = 16
#: Spectral widths (Hz) of real single-voxel acquisitions lie well inside this range (1H at
#: 1.5–11.7 T: about 1–20 kHz; X nuclei down to a few hundred Hz).
SPECTRAL_WIDTH_RANGE_HZ = (100.0, 1.0e6)
#: ``intent_name`` written (NIfTI-MRS standard version 0.11).
INTENT_NAME = "mrs_v0_11"
#: NIfTI-MRS code of the JSON header extension.
ECODE_MRS = 44

_TIME_UNIT_S = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0}
#: EchoTime/MixingTime above this (s) is taken for milliseconds.
_MAX_TE_S = 1.0
#: RepetitionTime above this (s) is taken for milliseconds (100 s is legitimate).
_MAX_TR_S = 1000.0
_SW_RTOL = 0.01
_SF_RTOL = 1e-6


# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------
def _as_list(value) -> list:
    """Scalar or sequence → list (NIfTI-MRS arrays vs BIDS scalars)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.ravel().tolist()
    return [value]


def _float_list(value, name: str, path: Path, where: str) -> list[float]:
    out = []
    for v in _as_list(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(f"{where} {name} must be a number or list of numbers, got {v!r}", path)
        out.append(float(v))
    return out


def _str_list(value, name: str, path: Path, where: str) -> list[str]:
    out = []
    for v in _as_list(value):
        if not isinstance(v, str):
            raise InputError(f"{where} {name} must be a string or list of strings, got {v!r}", path)
        out.append(v.strip())
    return out


def _first_number(value, name: str, path: Path, where: str) -> float | None:
    vals = _float_list(value, name, path, where)
    if not vals:
        return None
    if len(vals) > 1:
        logger.debug("%s: %s %s has several values; using the first", path, where, name)
    return vals[0]


def _check_path(path: Path) -> None:
    """Missing file, dangling link, symlink loop, directory, empty file → InputError."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError("symlink loop", path) from None
        if path.is_symlink():
            target = os.readlink(path)
            hint = "; run `datalad get` on it" if "annex" in target else ""
            raise InputError(f"broken symlink (target {target} not found{hint})", path) from None
        if exc.errno == errno.ENOENT:
            raise InputError("file not found", path) from None
        raise InputError(f"cannot access file ({exc.strerror})", path) from None
    if path.is_dir():
        raise InputError("is a directory, expected a NIfTI-MRS file (.nii or .nii.gz)", path)
    if st.st_size == 0:
        raise InputError("empty file (0 bytes), not a NIfTI-MRS file", path)
    if not os.access(path, os.R_OK):
        raise InputError("file is not readable (permission denied)", path)


def _sniff(path: Path) -> None:
    """Cheap format checks before nibabel sees the file.

    gzip magic for ``.gz`` and a complete, CRC-checked gzip stream (nibabel stops reading at
    the end of the data, so a missing or damaged gzip trailer would otherwise go unnoticed);
    NIfTI ``sizeof_hdr`` (348/540) and ``dim[0]`` in 1–7.
    """
    import gzip
    import struct
    import zlib

    gz = path.name.endswith(".gz")
    try:
        with open(path, "rb") as fh:
            head = fh.read(540)
            if gz:
                if head[:2] != b"\x1f\x8b":
                    raise InputError("not a NIfTI file: named .gz but not gzip-compressed", path)
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh) as stream:
                    head = stream.read(540)
                    total = len(head)
                    while total <= MAX_DATA_BYTES + (1 << 20):  # to the end: checks size and CRC
                        block = stream.read(1 << 20)
                        if not block:
                            break
                        total += len(block)
    except InputError:
        raise
    except EOFError:
        raise InputError("file truncated or corrupt: the gzip stream ends early (incomplete copy or "
                         "download?)", path) from None
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"not a readable NIfTI file ({_short(exc, path=path)})", path) from None
    if len(head) < 4:
        raise InputError("not a NIfTI file: shorter than a NIfTI header", path)
    sizes = {struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]} & {348, 540}
    if not sizes:
        raise InputError("not a NIfTI file: no NIfTI-1/NIfTI-2 header (sizeof_hdr is not 348/540)",
                         path)
    if not gz and path.stat().st_size < min(sizes):
        raise InputError(f"file truncated: {path.stat().st_size} bytes, shorter than the "
                         f"{min(sizes)}-byte NIfTI header", path)
    size = min(sizes)
    if len(head) >= size:
        fmt, off = ("q", 16) if size == 540 else ("h", 40)
        ndims = {struct.unpack(f"{e}{fmt}", head[off: off + struct.calcsize(fmt)])[0] for e in "<>"}
        if not ndims & set(range(1, 8)):
            shown = min(ndims, key=abs)
            raise InputError(f"invalid NIfTI header: dim[0] = {shown} (the number of dimensions must be 1 "
                             "to 7; NIfTI-MRS uses 4 to 7)", path)


def _check_not_truncated(img, path: Path) -> None:
    """An uncompressed file shorter than its header's vox_offset + data size → InputError.

    Checked before the header extension is parsed, so a file cut inside its extension is
    reported as truncated (not as "no extension"). Invalid dims are left to the later checks.
    """
    if path.name.endswith(".gz"):
        return
    try:
        shape = _declared_shape(img, path)
        itemsize = img.header.get_data_dtype().itemsize
    except Exception:
        return
    nbytes = int(np.prod(shape, dtype=np.float64) * itemsize)
    if nbytes > MAX_DATA_BYTES:
        return  # refused with its own message
    offset = getattr(img.dataobj, "offset", None)
    expected = int(offset if offset is not None else img.header.get_data_offset()) + nbytes
    size = path.stat().st_size
    if size < expected:
        raise InputError(f"file truncated: {size} bytes, the header declares {expected}", path)


def _load_image(path: Path):
    import nibabel as nib

    _sniff(path)
    try:
        # no memory map: a file changed while mapped would kill the process (SIGBUS)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            img = nib.load(str(path), mmap=False)
        for w in caught:
            logger.warning("%s: nibabel: %s", path, _short(w.message, path=path))
    except Exception as exc:  # nibabel raises many types for garbage input
        raise InputError(f"not a readable NIfTI file ({type(exc).__name__}: "
                         f"{_short(exc, path=path)})", path) from None
    if not isinstance(img, nib.Nifti1Image):  # Nifti2Image is a subclass
        raise InputError(f"not a NIfTI-1/2 image (nibabel read it as {type(img).__name__})", path)
    return img


def _short(exc: BaseException, limit: int = 120, path: Path | None = None) -> str:
    """One-line, bounded text of an exception, without repeating the file name."""
    text = str(exc)
    if path is not None:
        text = text.replace(str(path), "file").replace(path.name, "file")
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_extension_content(content, path: Path) -> dict:
    if isinstance(content, Mapping):
        return dict(content)
    if isinstance(content, (bytes, bytearray)):
        try:
            content = bytes(content).rstrip(b"\x00 \t\r\n").decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("NIfTI-MRS header extension is not UTF-8 JSON", path) from None
    if not isinstance(content, str):
        raise InputError(f"NIfTI-MRS header extension has unexpected type {type(content).__name__}",
                         path)
    try:
        obj = json.loads(content.rstrip("\x00 \t\r\n"))
    except json.JSONDecodeError as exc:
        raise InputError(f"NIfTI-MRS header extension is not valid JSON (line {exc.lineno} "
                         f"column {exc.colno}: {exc.msg})", path) from None
    if not isinstance(obj, dict):
        raise InputError("NIfTI-MRS header extension must be a JSON object", path)
    return obj


def _extension_dict(img, path: Path) -> dict:
    exts = img.header.extensions
    codes = exts.get_codes()
    if ECODE_MRS not in codes:
        raise InputError("not NIfTI-MRS: no header extension with code 44 (MRS JSON)", path)
    return _parse_extension_content(exts[codes.index(ECODE_MRS)].get_content(), path)


def read_header_extension(path: str | os.PathLike) -> dict:
    """The NIfTI-MRS JSON header extension of ``path`` (no data read)."""
    p = Path(path)
    _check_path(p)
    return _extension_dict(_load_image(p), p)


def _declared_shape(img, path: Path) -> tuple[int, ...]:
    dim = [int(d) for d in np.asarray(img.header["dim"]).tolist()]
    ndim = dim[0]
    if ndim < 4 or ndim > 7:
        raise InputError(f"NIfTI-MRS needs 4 to 7 dimensions (x, y, z, time, ...), file has {ndim}",
                         path)
    shape = tuple(dim[1: ndim + 1])
    if any(s < 1 for s in shape):
        raise InputError(f"invalid dimension sizes {shape} in the NIfTI header", path)
    return shape


def _dwell_s(img, path: Path) -> float:
    hdr = img.header
    try:
        raw = float(hdr["pixdim"][4])
    except (IndexError, TypeError, ValueError):
        raise InputError("cannot read the dwell time (pixdim[4])", path) from None
    unit = hdr.get_xyzt_units()[1]
    if unit not in _TIME_UNIT_S:
        raise InputError(f"dim 4 must be time (dwell time in pixdim[4]); its unit is {unit!r}", path)
    dwell = raw * _TIME_UNIT_S[unit]
    if not math.isfinite(dwell) or dwell <= 0:
        raise InputError(f"dwell time pixdim[4] = {raw} {unit} is not a positive finite number",
                         path)
    lo, hi = SPECTRAL_WIDTH_RANGE_HZ
    if not lo <= 1.0 / dwell <= hi:
        raise InputError(f"dwell time pixdim[4] = {raw:g} {unit} gives a spectral width of {1.0 / dwell:g} Hz, "
                         f"outside any MRS acquisition ({lo:g}–{hi:g} Hz); check pixdim[4] and its unit", path)
    return dwell


def _dim_tags(ext: Mapping, ndim: int, path: Path) -> list[str]:
    tags = []
    for n in range(5, ndim + 1):
        tag = ext.get(f"dim_{n}", DEFAULT_DIM_TAGS[n - 5])
        if not isinstance(tag, str) or tag.strip() not in KNOWN_DIM_TAGS:
            raise InputError(f"unknown dimension tag dim_{n} = {tag!r} (known: "
                             f"{', '.join(sorted(KNOWN_DIM_TAGS))})", path)
        tags.append(tag.strip())
    if len(set(tags)) != len(tags):
        raise InputError(f"dimension tags repeat: {tags}", path)
    return tags


def _timing(ext: Mapping, sidecar: Mapping, key: str, path: Path) -> float | None:
    """A timing value (s) from the header extension, else the sidecar."""
    vals = {}
    for where, src in (("header", ext), ("sidecar", sidecar)):
        if src.get(key) is not None:
            val = _first_number(src[key], key, path, where)
            if val is not None:
                if not math.isfinite(val):
                    raise InputError(f"{where} {key} {val} is not finite", path)
                vals[where] = val
    if len(vals) == 2 and not math.isclose(vals["header"], vals["sidecar"], rel_tol=0.01):
        logger.warning("%s: %s differs between NIfTI-MRS header (%g) and sidecar (%g); using the "
                       "header", path, key, vals["header"], vals["sidecar"])
    return vals.get("header", vals.get("sidecar"))


def _check_consistency(ext: Mapping, sidecar: Mapping, path: Path, dwell_s: float):
    """Spectrometer frequency/nucleus from header and sidecar; raise on disagreement."""
    sf_h = _float_list(ext.get("SpectrometerFrequency"), "SpectrometerFrequency", path, "header")
    sf_s = _float_list(sidecar.get("SpectrometerFrequency"), "SpectrometerFrequency", path,
                       "sidecar")
    if not sf_h and not sf_s:
        raise InputError("SpectrometerFrequency missing from both the NIfTI-MRS header and the "
                         "JSON sidecar", path)
    if sf_h and sf_s and (len(sf_h) != len(sf_s) or not np.allclose(sf_h, sf_s, rtol=_SF_RTOL,
                                                                       atol=0)):
        raise InputError(f"sidecar SpectrometerFrequency {sf_s} MHz differs from NIfTI-MRS header "
                         f"{sf_h} MHz", path)
    sf = (sf_h or sf_s)[0]
    if not math.isfinite(sf) or sf <= 0:
        raise InputError(f"SpectrometerFrequency {sf} MHz is not a positive number", path)

    nuc_h = _str_list(ext.get("ResonantNucleus"), "ResonantNucleus", path, "header")
    nuc_s = _str_list(sidecar.get("ResonantNucleus"), "ResonantNucleus", path, "sidecar")
    if nuc_h and nuc_s and [n.upper() for n in nuc_h] != [n.upper() for n in nuc_s]:
        raise InputError(f"sidecar ResonantNucleus {nuc_s} differs from NIfTI-MRS header {nuc_h}",
                         path)
    if nuc_h or nuc_s:
        nucleus = (nuc_h or nuc_s)[0]
    else:
        nucleus = "1H"
        logger.warning("%s: ResonantNucleus missing from header and sidecar; assuming 1H", path)

    sw_bw = 1.0 / dwell_s
    if sidecar.get("SpectralWidth") is not None:
        sw = _first_number(sidecar["SpectralWidth"], "SpectralWidth", path, "sidecar")
        if sw is None:
            raise InputError("sidecar SpectralWidth is empty", path)
        if not math.isfinite(sw) or abs(sw - sw_bw) > _SW_RTOL * sw_bw:
            raise InputError(f"sidecar SpectralWidth {sw:g} Hz is inconsistent with 1/dwell = "
                             f"{sw_bw:.6g} Hz (pixdim[4])", path)
    if ext.get("SpectralWidth") is not None:
        try:
            sw = float(_as_list(ext["SpectralWidth"])[0])
        except (TypeError, ValueError, IndexError):
            sw = float("nan")
        if not abs(sw - sw_bw) <= _SW_RTOL * sw_bw:
            logger.warning("%s: header SpectralWidth %s Hz differs from 1/dwell %.6g Hz; "
                           "using the dwell time", path, ext["SpectralWidth"], sw_bw)
    return sf, nucleus


def _check_timing(te, tr, tm, path: Path) -> None:
    if te is not None:
        if te <= 0:
            raise InputError(f"EchoTime {te:g} must be positive (seconds)", path)
        if te > _MAX_TE_S:
            raise InputError(f"EchoTime {te:g} looks like milliseconds; BIDS requires seconds", path)
    if tm is not None and tm > _MAX_TE_S:
        raise InputError(f"MixingTime {tm:g} looks like milliseconds; BIDS requires seconds", path)
    if tr is not None:
        if tr <= 0:
            raise InputError(f"RepetitionTime {tr:g} must be positive (seconds)", path)
        if tr > _MAX_TR_S:
            raise InputError(f"RepetitionTime {tr:g} looks like milliseconds; BIDS requires seconds",
                             path)
        if te is not None and tr < te:
            raise InputError(f"RepetitionTime {tr:g} s is shorter than EchoTime {te:g} s", path)


def _ppm_centre(ext: Mapping, nucleus: str, path: Path) -> float:
    """Chemical shift (ppm) at 0 Hz: SpecFreqChemShift (or the nucleus default) + RxOffset."""
    centre = _first_number(ext.get("SpecFreqChemShift"), "SpecFreqChemShift", path, "header")
    if centre is None:
        centre = DEFAULT_PPM_CENTRE.get(nucleus, DEFAULT_PPM_CENTRE.get(nucleus.upper(), 0.0))
    rx = _first_number(ext.get("RxOffset"), "RxOffset", path, "header")
    return float(centre + (rx or 0.0))


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def load_nifti_mrs(path: str | os.PathLike, *, sidecar: Mapping | None = None) -> Spectrum:
    """Load a single-voxel NIfTI-MRS file into a :class:`~bidsmrs.spectrum.Spectrum`.

    Parameters
    ----------
    path : path-like
        ``.nii`` or ``.nii.gz``, NIfTI-1 or NIfTI-2, with the code-44 JSON extension.
    sidecar : dict, optional
        The BIDS JSON sidecar. Used for values missing from the header extension
        (SpectrometerFrequency, ResonantNucleus, EchoTime, RepetitionTime, MixingTime) and
        checked against it (SpectrometerFrequency, ResonantNucleus, SpectralWidth ≈ 1/dwell).

    Returns
    -------
    Spectrum
        ``fid`` complex128 of shape ``(n_points, *higher)`` with the 3 spatial dims squeezed
        and trailing singleton higher dims dropped; ``dim_tags`` name the higher dims;
        ``header`` is the extension as read; ``history`` is empty.

    Raises
    ------
    InputError
        One line naming the file and the problem, for any invalid input.
    """
    p = Path(path)
    side = dict(sidecar or {})
    try:
        return _load(p, side)
    except InputError:
        raise
    except MemoryError:
        raise InputError("not enough memory to read the file", p) from None
    except Exception as exc:  # corrupt header fields nibabel cannot interpret, etc.
        logger.debug("%s: unexpected error while reading", p, exc_info=True)
        raise InputError(f"invalid or corrupt NIfTI-MRS file ({type(exc).__name__}: "
                         f"{_short(exc, path=p)})", p) from None


def _load(p: Path, side: dict) -> Spectrum:
    """:func:`load_nifti_mrs` without the final catch-all."""
    _check_path(p)
    img = _load_image(p)
    _check_not_truncated(img, p)
    ext = _extension_dict(img, p)

    shape = _declared_shape(img, p)
    dtype = img.header.get_data_dtype()
    if dtype.kind != "c":
        raise InputError(f"data are real-valued ({dtype}); NIfTI-MRS requires complex", p)
    nbytes = int(np.prod(shape, dtype=np.float64) * dtype.itemsize)
    if nbytes > MAX_DATA_BYTES:
        raise InputError(f"declared data size {shape} ({nbytes / 1024 ** 3:.1f} GiB) exceeds the "
                         f"{MAX_DATA_BYTES / 1024 ** 3:.0f} GiB limit; refusing to read", p)
    if not p.name.endswith(".gz"):
        # a loaded header has vox_offset reset by nibabel; the array proxy keeps the real one
        offset = getattr(img.dataobj, "offset", None)
        expected = int(offset if offset is not None else img.header.get_data_offset()) + nbytes
        size = p.stat().st_size
        if size < expected:
            raise InputError(f"file truncated: {size} bytes, the header declares {expected}", p)
    if shape[:3] != (1, 1, 1):
        raise InputError(f"not single-voxel: spatial dims are {'x'.join(map(str, shape[:3]))} "
                         "(MRSI is not supported)", p)
    dwell = _dwell_s(img, p)
    tags = _dim_tags(ext, len(shape), p)
    sf, nucleus = _check_consistency(ext, side, p, dwell)

    te = _timing(ext, side, "EchoTime", p)
    tr = _timing(ext, side, "RepetitionTime", p)
    tm = _timing(ext, side, "MixingTime", p)
    if tm is not None and tm <= 0:
        logger.warning("%s: MixingTime %g is not positive; ignored", p, tm)
        tm = None
    _check_timing(te, tr, tm, p)

    try:
        data = np.asanyarray(img.dataobj)
    except MemoryError:
        raise InputError("not enough memory to read the data", p) from None
    except Exception as exc:  # truncated gzip, short file, ...
        raise InputError(f"cannot read the data, file truncated or corrupt "
                         f"({type(exc).__name__}: {_short(exc, path=p)})", p) from None
    if data.size != int(np.prod(shape)):
        raise InputError(f"data size {data.shape} does not match the header dims {shape}", p)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values are counted below
        data = np.asarray(data, dtype=np.complex128).reshape(shape)[0, 0, 0]
    # drop trailing singleton higher dims (and their tags)
    while data.ndim > 1 and data.shape[-1] == 1:
        data = data[..., 0]
        tags.pop()
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise InputError(f"data contain {bad} non-finite samples (NaN/Inf) out of {data.size}", p)
    n_time = data.shape[0]
    if data.ndim > 1 and n_time < 128 and max(data.shape[1:]) >= 8 * n_time:
        other = tags[int(np.argmax(data.shape[1:]))] if tags else "another"
        raise InputError(f"FIDs of only {n_time} points but {max(data.shape[1:])} entries along {other}: the "
                         f"time and {other} dimensions look swapped (time must be dim 4)", p)
    if n_time < MIN_POINTS:
        raise InputError(f"FIDs of {n_time} point(s); at least {MIN_POINTS} spectral points are needed", p)
    if not np.any(data):
        raise InputError("data are all zero (no signal)", p)

    return Spectrum(
        fid=data, dwell_s=dwell, spectrometer_mhz=sf, nucleus=nucleus,
        ppm_centre=_ppm_centre(ext, nucleus, p), dim_tags=tuple(tags),
        echo_time_s=te, repetition_time_s=tr, mixing_time_s=tm,
        affine=np.asarray(img.affine, dtype=float), header=ext, history=())


# ---------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------
def processing_entry(step: StepRecord, *, program: str, version: str, time: str) -> dict:
    """One NIfTI-MRS ``ProcessingApplied`` entry for a step (Near 2021 method keyword)."""
    details = step.details.strip()
    if step.params:
        params = json.dumps(_plain(step.params), sort_keys=True, allow_nan=False,
                            default=str)
        details = f"{details} Parameters: {params}" if details else f"Parameters: {params}"
    return {"Time": time, "Program": program, "Version": version, "Method": step.method,
            "Details": details}


def _plain(obj):
    from bidsmrs.io.jsonfile import to_jsonable

    return to_jsonable(obj)


def _carry_dim_headers(old: Mapping, new_tags: tuple[str, ...], sizes: tuple[int, ...]) -> dict:
    """``dim_N_info``/``dim_N_header`` of the old header moved to the new position of their tag.

    Dropped when the tag is gone or a ``dim_N_header`` list no longer matches the dim size.
    """
    out: dict[str, Any] = {}
    for n_old in range(5, 8):
        tag = old.get(f"dim_{n_old}", None)
        if tag is None or tag not in new_tags:
            continue
        n_new = 5 + new_tags.index(tag)
        size = sizes[n_new - 5]
        info = old.get(f"dim_{n_old}_info")
        if info is not None:
            out[f"dim_{n_new}_info"] = info
        hdr = old.get(f"dim_{n_old}_header")
        if isinstance(hdr, Mapping):
            ok = all(not isinstance(v, list) or len(v) == size
                     for v in (x.get("Value", x) if isinstance(x, Mapping) else x
                               for x in hdr.values()))
            if ok:
                out[f"dim_{n_new}_header"] = dict(hdr)
            else:
                logger.debug("dropping stale dim_%d_header (size changed)", n_old)
    return out


def _header_for(spectrum: Spectrum, program: str, version: str,
                extra_header: Mapping | None) -> dict:
    hdr = {k: v for k, v in dict(spectrum.header).items()
           if not (k.startswith("dim_") and k[4:5] in "567")}
    hdr.update(_carry_dim_headers(spectrum.header, spectrum.dim_tags, spectrum.fid.shape[1:]))
    for i, tag in enumerate(spectrum.dim_tags):
        hdr[f"dim_{5 + i}"] = tag
    hdr["SpectrometerFrequency"] = [float(spectrum.spectrometer_mhz)]
    hdr["ResonantNucleus"] = [spectrum.nucleus]
    hdr["SpectralWidth"] = float(1.0 / spectrum.dwell_s)
    for key, val in (("EchoTime", spectrum.echo_time_s), ("RepetitionTime",
                                                         spectrum.repetition_time_s),
                     ("MixingTime", spectrum.mixing_time_s)):
        if val is None:
            hdr.pop(key, None)
        else:
            hdr[key] = float(val)
    # chemical shift at 0 Hz: load() computes SpecFreqChemShift (or default) + RxOffset
    rx = hdr.get("RxOffset")
    rx0 = float(_as_list(rx)[0]) if _as_list(rx) else 0.0
    default = DEFAULT_PPM_CENTRE.get(spectrum.nucleus, 0.0)
    centre = float(spectrum.ppm_centre) - rx0
    if "SpecFreqChemShift" in hdr or not math.isclose(centre, default, abs_tol=1e-9):
        hdr["SpecFreqChemShift"] = centre
    # provenance
    existing = [dict(e) for e in _as_list(hdr.get("ProcessingApplied")) if isinstance(e, Mapping)]
    seen = Counter((e.get("Program"), e.get("Method"), e.get("Details")) for e in existing)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for step in spectrum.history:
        entry = processing_entry(step, program=program, version=version, time=now)
        key = (entry["Program"], entry["Method"], entry["Details"])
        if seen[key] > 0:
            seen[key] -= 1
            continue
        existing.append(entry)
    if existing:
        hdr["ProcessingApplied"] = existing
    if extra_header:
        hdr.update(_plain(dict(extra_header)))
    return _plain(hdr)


def save_nifti_mrs(spectrum: Spectrum, path: str | os.PathLike, *, program: str = "bidsmrs",
                   version: str | None = None, extra_header: Mapping | None = None) -> Path:
    """Write ``spectrum`` as a NIfTI-2 NIfTI-MRS file (atomic); return the path.

    The file has ``intent_name`` ``mrs_v0_11``, complex64 data of shape
    ``1×1×1×n_points×…``, ``dim_N`` tags for every higher dim, the spectrum's affine
    (scanner qform and sform; ``diag(10000,10000,10000,1)`` — "unlocalised" — when None),
    ``pixdim[4]`` = dwell (s) and a header extension = ``spectrum.header`` updated with
    SpectrometerFrequency, ResonantNucleus, SpectralWidth, EchoTime, RepetitionTime,
    MixingTime, SpecFreqChemShift (when needed to reproduce ``ppm_centre``) and
    ``ProcessingApplied`` = existing entries + one per ``spectrum.history`` step not already
    listed. ``extra_header`` keys (e.g. ``dim_5_header``) are applied last.
    Output is deterministic apart from the ``Time`` of new ProcessingApplied entries.
    """
    import nibabel as nib

    if version is None:
        from bidsmrs import __version__ as version
    if spectrum.fid.ndim > 4:
        raise ValueError(f"NIfTI-MRS allows at most 3 higher dims, spectrum has {spectrum.fid.ndim - 1}")
    for tag in spectrum.dim_tags:
        if tag not in KNOWN_DIM_TAGS:
            raise ValueError(f"unknown NIfTI-MRS dimension tag {tag!r}")
    hdr_ext = _header_for(spectrum, program, str(version), extra_header)
    data = np.asarray(spectrum.fid).astype(np.complex64).reshape((1, 1, 1) + spectrum.fid.shape)
    affine = (np.diag([10000.0, 10000.0, 10000.0, 1.0]) if spectrum.affine is None
              else np.asarray(spectrum.affine, dtype=float))
    img = nib.Nifti2Image(data, affine)
    hdr = img.header
    hdr.set_data_dtype(np.complex64)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    hdr.set_xyzt_units("mm", "sec")
    pixdim = hdr["pixdim"].copy()
    pixdim[4] = float(spectrum.dwell_s)
    hdr["pixdim"] = pixdim
    hdr["intent_name"] = INTENT_NAME.encode()
    payload = json.dumps(hdr_ext, sort_keys=True, allow_nan=False).encode("utf-8")
    hdr.extensions.append(nib.nifti1.Nifti1Extension(ECODE_MRS, payload))
    final = Path(path)
    with atomic_path(final) as tmp:
        nib.save(img, str(tmp))
    return final


def bids_sidecar_for(spectrum: Spectrum, **extra) -> dict:
    """The REQUIRED/RECOMMENDED BIDS-MRS sidecar keys for ``spectrum`` (arrays as NIfTI-MRS).

    Keys: ResonantNucleus, SpectrometerFrequency (arrays), SpectralWidth (Hz), EchoTime,
    RepetitionTime, MixingTime (s, when known), NumberOfSpectralPoints; ``extra`` is merged
    last.
    """
    out: dict[str, Any] = {
        "ResonantNucleus": [spectrum.nucleus],
        "SpectrometerFrequency": [float(spectrum.spectrometer_mhz)],
        "SpectralWidth": float(1.0 / spectrum.dwell_s),
        "NumberOfSpectralPoints": int(spectrum.n_points),
    }
    for key, val in (("EchoTime", spectrum.echo_time_s), ("RepetitionTime",
                                                         spectrum.repetition_time_s),
                     ("MixingTime", spectrum.mixing_time_s)):
        if val is not None:
            out[key] = float(val)
    out.update(extra)
    return out
