"""Run the BIDS validator and the MRS checks it does not do.

``run_bids_validator`` calls the schema validator packaged on PyPI as
``bids-validator-deno`` (console script of that name; ``--format json``; exit code 16 when
there are errors; config file format ``{"ignore": [{"code": ..., "location": <glob>}]}``,
research/standards.md §5.2). Issues located in subjects that were not requested are
ignored through a temporary config file written outside the dataset.

``check_mrs_metadata`` covers what validator 3.x skips for MRS (research/standards.md §5.2
"Gaps"): ``voi``→BodyPart/BodyPartDetails, ``nuc``→ResonantNucleus, ``inv``→InversionTime,
resolution of ReferenceSignal/AnatomicalImage, sidecar vs NIfTI-MRS header consistency of
SpectrometerFrequency/ResonantNucleus, SpectralWidth ≈ 1/dwell, and seconds for EchoTime.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from bidsmrs.errors import BidsMrsError

logger = logging.getLogger(__name__)

__all__ = ["ValidatorReport", "run_bids_validator", "find_validator", "validator_config",
           "check_mrs_metadata", "VALIDATOR_EXECUTABLE", "ERROR_EXIT_CODE"]

#: Console script installed by the PyPI package ``bids-validator-deno``.
VALIDATOR_EXECUTABLE = "bids-validator-deno"
#: Exit code of bids-validator-deno when the dataset has errors.
ERROR_EXIT_CODE = 16


@dataclass(frozen=True)
class ValidatorReport:
    """Outcome of a validator run.

    Parameters
    ----------
    available : bool
        False when the validator could not be run (missing, crashed, timed out, unreadable
        output); ``message`` says why and ``errors``/``warnings`` are empty.
    errors, warnings : list of str
        One line per issue: ``CODE[/subCode] location: message``.
    raw : dict
        The validator's JSON output (``{}`` when unavailable).
    returncode : int or None
    message : str
        Why the validator is unavailable, or a one-line summary.
    version : str or None
        Validator version when known.
    """

    available: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    message: str = ""
    version: str | None = None

    @property
    def ok(self) -> bool:
        """True when the validator ran and found no errors."""
        return self.available and not self.errors


def find_validator() -> str | None:
    """Path of ``bids-validator-deno``: next to ``sys.executable`` first, then on PATH."""
    here = Path(sys.executable).parent / VALIDATOR_EXECUTABLE
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(VALIDATOR_EXECUTABLE)


def _package_version() -> str | None:
    """Version of the installed ``bids-validator-deno`` package, if any."""
    from importlib import metadata

    try:
        return metadata.version("bids-validator-deno")
    except metadata.PackageNotFoundError:
        return None


def _deno_dir(fallback: Path) -> str:
    """``$BIDSMRS_CACHE/deno`` (else ``~/.cache/bidsmrs/deno``) when writable, else ``fallback/deno``."""
    from bidsmrs.io.cache import cache_dir

    return str(cache_dir("deno", fallback))


def _subject_dirs(root: Path) -> list[str]:
    try:
        return sorted(p.name[4:] for p in root.iterdir() if p.is_dir() and p.name.startswith("sub-"))
    except OSError:
        return []


def validator_config(bids_dir: str | os.PathLike,
                     participant_labels: Iterable[str] | None = None) -> dict:
    """Config that ignores every issue located in subjects that were not requested."""
    if not participant_labels:
        return {"ignore": []}
    wanted = {str(lab).removeprefix("sub-") for lab in participant_labels}
    others = [s for s in _subject_dirs(Path(bids_dir)) if s not in wanted]
    # location globs without a leading "/" are gitignore-style (TESTED with 3.0.2)
    return {"ignore": [{"location": f"sub-{s}/**"} for s in others]}


def _first_line(text: Any) -> str:
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _format_issue(issue: Mapping, code_messages: Mapping, limit: int = 240) -> str:
    """``CODE[/subCode] location: message`` on one line.

    The issue's own message is used unless it is a schema field description (then the
    code's generic message, which says what is wrong, is clearer).
    """
    code = str(issue.get("code", "UNKNOWN"))
    sub = issue.get("subCode")
    loc = issue.get("location") or "/"
    own = _first_line(issue.get("issueMessage"))
    msg = own if own and not own.startswith("Field description") else \
        _first_line(code_messages.get(code)) or own
    if len(msg) > limit:
        msg = msg[: limit - 1] + "…"
    head = f"{code}/{sub}" if sub else code
    return f"{head} {loc}: {msg}" if msg else f"{head} {loc}"


def run_bids_validator(bids_dir: str | os.PathLike, *, participant_labels: Iterable[str] | None = None,
                       timeout_s: float = 600, executable: str | None = None) -> ValidatorReport:
    """Validate ``bids_dir`` with bids-validator-deno, restricted to the requested participants.

    Parameters
    ----------
    bids_dir : path-like
    participant_labels : iterable of str, optional
        Labels (with or without ``sub-``); issues located in other subjects are ignored.
    timeout_s : float
        Seconds before the validator is stopped (the report is then ``available=False``).
    executable : str, optional
        Validator executable (default: :func:`find_validator`).

    Returns
    -------
    ValidatorReport
        Never raises for a validator problem: a missing or failing validator gives
        ``available=False`` with ``message`` (the CLI turns it into a warning).
    """
    exe = executable or find_validator()
    if not exe:
        return ValidatorReport(False, message=f"{VALIDATOR_EXECUTABLE} not found (pip install "
                                              "bids-validator-deno); BIDS validation skipped")
    root = Path(bids_dir)
    cfg = validator_config(root, participant_labels)
    env = dict(os.environ, NO_COLOR="1", DENO_NO_UPDATE_CHECK="1")
    with tempfile.TemporaryDirectory(prefix="bidsmrs-validator-") as tmp:
        # deno caches in ~/.cache/deno by default: keep it in bidsmrs's own cache (DESIGN.md §2:
        # nothing is written outside OUTPUT_DIR, the work dir and $BIDSMRS_CACHE)
        env.setdefault("DENO_DIR", _deno_dir(Path(tmp)))
        cfg_path = Path(tmp) / "config.json"
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
        cmd = [exe, str(root), "--format", "json", "--config", str(cfg_path)]
        logger.debug("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env,
                                  stdin=subprocess.DEVNULL, cwd=tmp)
        except subprocess.TimeoutExpired:
            return ValidatorReport(False, message=f"{VALIDATOR_EXECUTABLE} timed out after "
                                                  f"{timeout_s:g} s; BIDS validation skipped")
        except OSError as exc:
            return ValidatorReport(False, message=f"{VALIDATOR_EXECUTABLE} could not be run "
                                                  f"({exc.strerror or exc}); BIDS validation skipped")
    if proc.returncode not in (0, ERROR_EXIT_CODE):
        tail = _first_line(proc.stderr[-2000:]) or _first_line(proc.stdout[-2000:])
        return ValidatorReport(False, returncode=proc.returncode,
                               message=f"{VALIDATOR_EXECUTABLE} failed (exit {proc.returncode}"
                                       f"{': ' + tail if tail else ''}); BIDS validation skipped")
    try:
        raw = json.loads(proc.stdout)
        issues = raw.get("issues", {})
        items = issues.get("issues", []) if isinstance(issues, Mapping) else list(issues)
        code_messages = issues.get("codeMessages", {}) if isinstance(issues, Mapping) else {}
    except (json.JSONDecodeError, AttributeError, TypeError):
        return ValidatorReport(False, returncode=proc.returncode,
                               message=f"{VALIDATOR_EXECUTABLE} output is not the expected JSON; "
                                       "BIDS validation skipped")
    errors = [_format_issue(i, code_messages) for i in items if i.get("severity") == "error"]
    warnings = [_format_issue(i, code_messages) for i in items if i.get("severity") == "warning"]
    if proc.returncode == ERROR_EXIT_CODE and not errors:
        errors = ["validator reported errors (exit 16) without details"]
    return ValidatorReport(True, errors=errors, warnings=warnings, raw=raw,
                           returncode=proc.returncode,
                           message=f"{len(errors)} error(s), {len(warnings)} warning(s)",
                           version=_package_version())


# ---------------------------------------------------------------------------------------
# MRS checks the validator skips
# ---------------------------------------------------------------------------------------
def _as_list(v) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _numbers(v) -> list[float] | None:
    try:
        return [float(x) for x in _as_list(v)]
    except (TypeError, ValueError):
        return None


def check_mrs_metadata(run) -> list[str]:
    """Problems with one MRS run that bids-validator-deno does not detect.

    Parameters
    ----------
    run : bidsmrs.io.bids_inputs.MrsRun

    Returns
    -------
    list of str
        One line per problem, each naming the file; empty when all is well.
    """
    from bidsmrs.io.bids_inputs import sidecar_for
    from bidsmrs.io.nifti_mrs import read_header_extension

    problems: list[str] = []
    svs = Path(run.svs_path)
    side_name = svs.name.rsplit(".nii", 1)[0] + ".json"
    side_path = svs.with_name(side_name)
    sidecar = dict(run.sidecar or {})

    def add(path, msg):
        problems.append(f"{path}: {msg}")

    if run.error:
        problems.append(run.error)
    ents = dict(run.entities)
    # required sidecar fields (BIDS MRSRequiredFields)
    for key in ("ResonantNucleus", "SpectrometerFrequency", "SpectralWidth", "EchoTime"):
        if key not in sidecar:
            add(side_path, f"required field {key} missing")
    # voi → BodyPart, BodyPartDetails (schema check MRSSampleVOI)
    if "voi" in ents:
        for key in ("BodyPart", "BodyPartDetails"):
            if not sidecar.get(key):
                add(side_path, f"entity voi-{ents['voi']} requires {key} in the sidecar")
    # nuc → ResonantNucleus with the same label
    if "nuc" in ents:
        nuclei = [str(n) for n in _as_list(sidecar.get("ResonantNucleus"))]
        if "".join(nuclei).upper() != ents["nuc"].upper():
            add(side_path, f"entity nuc-{ents['nuc']} does not match ResonantNucleus {nuclei}")
    # inv → InversionTime > 0 ; echo → EchoTime
    if "inv" in ents:
        ti = _numbers(sidecar.get("InversionTime"))
        if not ti or any(not (t > 0) for t in ti):
            add(side_path, f"entity inv-{ents['inv']} requires a positive InversionTime (s)")
    te = _numbers(sidecar.get("EchoTime"))
    if te is None:
        add(side_path, "EchoTime must be a number (s)")
    elif te and any(t > 1.0 for t in te):
        add(side_path, f"EchoTime {te[0]:g} looks like milliseconds; BIDS requires seconds")
    elif te and any(t <= 0 for t in te):
        add(side_path, "EchoTime must be positive (s)")
    # header vs sidecar consistency (MRS_NIFTI_CONSISTENCY; not evaluated by the validator)
    sf_side = _numbers(sidecar.get("SpectrometerFrequency"))
    nuc_side = [str(n).upper() for n in _as_list(sidecar.get("ResonantNucleus"))]
    try:
        hdr = read_header_extension(svs)
    except BidsMrsError as exc:
        problems.append(str(exc))
        hdr = None
    if hdr is not None:
        sf_hdr = _numbers(hdr.get("SpectrometerFrequency"))
        if sf_side and sf_hdr and (len(sf_side) != len(sf_hdr) or any(
                not math.isclose(a, b, rel_tol=1e-6) for a, b in zip(sf_side, sf_hdr))):
            add(svs, f"sidecar SpectrometerFrequency {sf_side} differs from NIfTI-MRS header {sf_hdr}")
        nuc_hdr = [str(n).upper() for n in _as_list(hdr.get("ResonantNucleus"))]
        if nuc_side and nuc_hdr and nuc_side != nuc_hdr:
            add(svs, f"sidecar ResonantNucleus {nuc_side} differs from NIfTI-MRS header {nuc_hdr}")
        sw = _numbers(sidecar.get("SpectralWidth"))
        dwell = _dwell_s(svs)
        if sw and dwell and abs(sw[0] - 1.0 / dwell) > 0.01 / dwell:
            add(svs, f"sidecar SpectralWidth {sw[0]:g} Hz is inconsistent with 1/dwell "
                     f"{1.0 / dwell:.6g} Hz")
    # references: exist, are mrsref NIfTI files, same field
    for role, ref in dict(run.references).items():
        ref = Path(ref)
        if not ref.name.endswith(("_mrsref.nii.gz", "_mrsref.nii")):
            add(side_path, f"reference for {role} ({ref.name}) is not an _mrsref file")
        try:
            rhdr = read_header_extension(ref)
        except BidsMrsError as exc:
            problems.append(str(exc))
            continue
        rsf = _numbers(rhdr.get("SpectrometerFrequency"))
        try:
            rside = sidecar_for(ref, run.bids_root) if run.bids_root is not None else {}
        except BidsMrsError as exc:
            problems.append(str(exc))
            rside = {}
        rsf_side = _numbers(rside.get("SpectrometerFrequency"))
        if rsf and rsf_side and (len(rsf) != len(rsf_side) or any(
                not math.isclose(a, b, rel_tol=1e-6) for a, b in zip(rsf_side, rsf))):
            add(ref, f"sidecar SpectrometerFrequency {rsf_side} differs from NIfTI-MRS header {rsf}")
        rnuc = [str(n).upper() for n in _as_list(rhdr.get("ResonantNucleus"))]
        rnuc_side = [str(n).upper() for n in _as_list(rside.get("ResonantNucleus"))]
        if rnuc and rnuc_side and rnuc != rnuc_side:
            add(ref, f"sidecar ResonantNucleus {rnuc_side} differs from NIfTI-MRS header {rnuc}")
        base = sf_side or (_numbers(hdr.get("SpectrometerFrequency")) if hdr else None)
        if rsf and base and not math.isclose(rsf[0], base[0], rel_tol=1e-4):
            add(ref, f"reference SpectrometerFrequency {rsf[0]:g} MHz differs from the metabolite "
                     f"data's {base[0]:g} MHz")
    if run.t1w_path is not None and not str(run.t1w_path).endswith((".nii", ".nii.gz")):
        add(side_path, f"AnatomicalImage {Path(run.t1w_path).name} is not a NIfTI image")
    # de-duplicate, keep order
    return list(dict.fromkeys(problems))


def _dwell_s(path: Path) -> float | None:
    try:
        import nibabel as nib

        hdr = nib.load(str(path)).header
        unit = hdr.get_xyzt_units()[1]
        scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0}.get(unit)
        dwell = float(hdr["pixdim"][4]) * scale if scale else None
        return dwell if dwell and math.isfinite(dwell) and dwell > 0 else None
    except Exception:  # the loader reports unreadable files with a proper message
        return None
