"""Discover single-voxel MRS runs, their water references and T1w images in a BIDS dataset.

BIDS-MRS facts used (BIDS 1.10, research/standards.md §1, §6):

- metabolite data ``sub-<l>[/ses-<s>]/mrs/*_svs.nii[.gz]``, references ``*_mrsref``;
- the metabolite sidecar links its references with ``ReferenceSignal`` and its T1w with
  ``AnatomicalImage``, BIDS URIs ``bids::<path relative to the dataset root>`` (str or list);
- without links, a reference is the ``mrsref`` with the same entities; several references
  are told apart by ``acq`` (``conc`` concentration scaling, ``ecc`` eddy-current correction;
  bidsmrs also reads ``wref``/``combine`` as the coil-combination reference).

Discovery never raises for a problem that concerns one run only (a broken link, an invalid
sidecar): the run comes back with ``error`` set, so the orchestrator can fail just that
participant. Errors about the request as a whole raise (UsageError, NoDataError, InputError).
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from bidsmrs.errors import BidsMrsError, InputError, NoDataError, UsageError
from bidsmrs.io.jsonfile import read_json

logger = logging.getLogger(__name__)

__all__ = [
    "MrsRun", "list_subjects", "list_sessions", "find_runs", "parse_bids_name",
    "resolve_bids_uri", "sidecar_for", "ENTITY_ORDER", "REFERENCE_ROLES", "ROLE_ACQ_LABELS",
]

#: BIDS-MRS entities after ``sub`` in schema order (short key, pybids name).
ENTITY_ORDER = (("ses", "session"), ("task", "task"), ("acq", "acquisition"), ("nuc", "nucleus"),
                ("voi", "volume"), ("rec", "reconstruction"), ("run", "run"), ("echo", "echo"),
                ("inv", "inv"))
_SHORT = [k for k, _ in ENTITY_ORDER]
_LONG_TO_SHORT = {long: short for short, long in ENTITY_ORDER}
#: Reference roles: water scaling, eddy-current correction, coil combination.
REFERENCE_ROLES = ("conc", "ecc", "combine")
#: Default ``acq`` labels naming each role.
ROLE_ACQ_LABELS = {"conc": ("conc",), "ecc": ("ecc",), "combine": ("wref", "combine")}

_LABEL_RE = re.compile(r"^[a-zA-Z0-9]+$")
_NII_EXT = (".nii.gz", ".nii")


@dataclass(frozen=True)
class MrsRun:
    """One metabolite acquisition and what belongs to it.

    Parameters
    ----------
    subject : str
        Label without ``sub-``.
    session : str or None
        Label without ``ses-``.
    entities : dict
        BIDS short key → label for every entity after ``sub`` in the file name, in schema
        order (ses, task, acq, nuc, voi, rec, run, echo, inv), labels exactly as written.
    svs_path : Path
        The metabolite NIfTI-MRS file.
    sidecar : dict
        Its JSON sidecar (BIDS inheritance applied); ``{}`` when there is none.
    references : dict
        Role (``"conc"``, ``"ecc"``, ``"combine"``) → water-reference NIfTI-MRS path.
        A role is absent when no reference serves it.
    t1w_path : Path or None
        The T1w for tissue segmentation.
    t1w_source : str or None
        ``"AnatomicalImage"``, ``"session"`` (``anat/`` of the same session) or
        ``"subject"`` (``anat/`` without session); None without T1w.
    reference_source : str or None
        ``"ReferenceSignal"``, ``"entities"`` (same entities), ``"entities-ignoring-acq"``
        (last resort) or None.
    notes : tuple of str
        Human-readable choices made during discovery (for the log and the report).
    error : str or None
        Why this run cannot be processed (one line naming the file), else None.
    bids_root : Path or None
        The dataset root the run was found in (absolute).
    """

    subject: str
    session: str | None
    entities: Mapping[str, str]
    svs_path: Path
    sidecar: Mapping[str, Any] = field(default_factory=dict)
    references: Mapping[str, Path] = field(default_factory=dict)
    t1w_path: Path | None = None
    t1w_source: str | None = None
    reference_source: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    bids_root: Path | None = None

    @property
    def source_stem(self) -> str:
        """Source name without suffix and extension, e.g. ``sub-01_ses-1_acq-press_run-1``."""
        parts = [f"sub-{self.subject}"] + [f"{k}-{v}" for k, v in self.entities.items()]
        return "_".join(parts)

    @property
    def participant_id(self) -> str:
        return f"sub-{self.subject}"

    @property
    def reference_path(self) -> Path | None:
        """The concentration (water-scaling) reference, or None."""
        return self.references.get("conc")

    def relative_path(self, path: str | os.PathLike) -> str:
        """``path`` relative to the dataset root (POSIX), e.g. for ``bids:raw:<path>`` URIs."""
        p = Path(path)
        if self.bids_root is not None:
            try:
                return p.relative_to(self.bids_root).as_posix()
            except ValueError:
                pass
        return p.as_posix()

    def reference_sidecar(self, role: str = "conc") -> dict:
        """JSON metadata (with inheritance) of the reference serving ``role``; ``{}`` if none.

        Raises InputError for an invalid JSON file.
        """
        ref = self.references.get(role)
        if ref is None:
            return {}
        root = self.bids_root if self.bids_root is not None else Path(ref).parent
        return sidecar_for(ref, root)


# ---------------------------------------------------------------------------------------
# names and paths
# ---------------------------------------------------------------------------------------
def parse_bids_name(name: str) -> tuple[dict[str, str], str, str]:
    """Split a BIDS file name into (entities in file order, suffix, extension).

    ``sub`` is included in the entities. Example:
    ``parse_bids_name("sub-01_acq-press_svs.nii.gz")`` →
    ``({"sub": "01", "acq": "press"}, "svs", ".nii.gz")``.
    """
    base = os.path.basename(name)
    stem, dot, ext = base.partition(".")
    parts = stem.split("_")
    ents: dict[str, str] = {}
    for part in parts[:-1]:
        key, sep, val = part.partition("-")
        if sep:
            ents[key] = val
    suffix = parts[-1] if "-" not in parts[-1] else ""
    if not suffix and parts:
        key, _, val = parts[-1].partition("-")
        ents[key] = val
    return ents, suffix, (dot + ext if dot else "")


def _ordered(ents: Mapping[str, str]) -> dict[str, str]:
    """Entities except ``sub`` in schema order; unknown keys after, in file order."""
    out = {k: ents[k] for k in _SHORT if k in ents}
    out.update({k: v for k, v in ents.items() if k not in out and k != "sub"})
    return out


def _check_label(label: str, what: str) -> str:
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        raise UsageError(f"invalid {what} label {label!r}: BIDS labels are letters and digits only")
    return label


def _strip(labels: Iterable[str] | str | None, prefix: str, what: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    out = []
    for lab in labels:
        lab = str(lab).strip()
        if lab.startswith(prefix):
            lab = lab[len(prefix):]
        out.append(_check_label(lab, what))
    return sorted(set(out))


def _check_dataset(bids_dir: str | os.PathLike) -> Path:
    root = Path(bids_dir)
    if not root.exists():
        raise InputError("BIDS directory not found", root)
    if not root.is_dir():
        raise InputError("not a directory, expected a BIDS dataset", root)
    desc = root / "dataset_description.json"
    if not desc.is_file():
        raise InputError("not a BIDS dataset: dataset_description.json is missing", root)
    read_json(desc)  # raises a one-line InputError when invalid
    return root.resolve()


def list_subjects(bids_dir: str | os.PathLike) -> list[str]:
    """Subject labels (without ``sub-``) of the dataset's ``sub-*`` directories, sorted."""
    root = _check_dataset(bids_dir)
    return sorted(p.name[4:] for p in root.iterdir()
                  if p.is_dir() and p.name.startswith("sub-") and _LABEL_RE.match(p.name[4:]))


def list_sessions(bids_dir: str | os.PathLike, subject: str | None = None) -> list[str]:
    """Session labels (without ``ses-``) in the dataset or of one subject, sorted."""
    root = _check_dataset(bids_dir)
    subs = [subject] if subject else list_subjects(root)
    out = set()
    for s in subs:
        sdir = root / f"sub-{s}"
        if sdir.is_dir():
            out.update(p.name[4:] for p in sdir.iterdir()
                       if p.is_dir() and p.name.startswith("ses-") and _LABEL_RE.match(p.name[4:]))
    return sorted(out)


def resolve_bids_uri(uri: str, bids_dir: str | os.PathLike, *, field_name: str = "URI") -> Path:
    """Resolve a ``bids::path`` URI (or a plain path relative to the dataset root).

    Raises
    ------
    ValueError
        The URI names another dataset, is absolute, leaves the dataset (``..``), or the file
        does not exist. The message is one line naming ``field_name`` and the URI.
    """
    root = Path(bids_dir).resolve()
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"{field_name} {uri!r} is not a BIDS URI or relative path")
    text = uri.strip()
    if text.startswith("bids:"):
        rest = text[len("bids:"):]
        name, sep, rel = rest.partition(":")
        if not sep:
            raise ValueError(f"{field_name} {uri!r} is not a valid BIDS URI (expected bids::<path>)")
        if name:
            raise ValueError(f"{field_name} {uri!r} points to another dataset ({name!r}); only "
                             "bids::<path> within this dataset is supported")
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        raise ValueError(f"{field_name} {uri!r} is a URL, not a file in this dataset")
    else:
        rel = text
    if os.path.isabs(rel) or rel.startswith(("/", "\\")):
        raise ValueError(f"{field_name} {uri!r} is an absolute path; it must be relative to the "
                         "dataset root")
    parts = Path(rel).parts
    if ".." in parts:
        raise ValueError(f"{field_name} {uri!r} points outside the dataset ('..')")
    target = root / rel
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError(f"{field_name} {uri!r}: file not found in the dataset") from None
    if resolved != root and root not in resolved.parents and not target.is_symlink():
        raise ValueError(f"{field_name} {uri!r} points outside the dataset")
    if not resolved.is_file():
        raise ValueError(f"{field_name} {uri!r} is not a file")
    return target


def _sidecar_candidates(path: Path, root: Path) -> list[Path]:
    """JSON files that apply to ``path`` by BIDS inheritance, most general first."""
    ents, suffix, _ = parse_bids_name(path.name)
    rel_dirs = path.parent.relative_to(root).parts
    dirs = [root] + [root.joinpath(*rel_dirs[: i + 1]) for i in range(len(rel_dirs))]
    out = []
    for d in dirs:
        try:
            jsons = sorted(d.glob(f"*_{suffix}.json")) + sorted(d.glob(f"{suffix}.json"))
        except OSError:
            continue
        level = []
        for j in jsons:
            jents, jsuf, _ = parse_bids_name(j.name)
            if jsuf != suffix and j.name != f"{suffix}.json":
                continue
            if all(ents.get(k) == v for k, v in jents.items()):
                level.append((len(jents), j))
        out.extend(j for _, j in sorted(level, key=lambda x: x[0]))
    return out


def sidecar_for(path: str | os.PathLike, bids_dir: str | os.PathLike) -> dict:
    """The JSON metadata of a BIDS data file with inheritance (top level first, own last).

    Raises InputError (naming the JSON file) for an invalid JSON file.
    """
    root = Path(bids_dir).resolve()
    p = Path(path)
    p = p if p.is_absolute() else root / p
    try:
        cands = _sidecar_candidates(p, root)
    except ValueError:  # not under root
        own = Path(str(p)[: -len(parse_bids_name(p.name)[2])] + ".json")
        cands = [own] if own.is_file() else []
    meta: dict = {}
    for c in cands:
        meta.update(read_json(c))
    return meta


# ---------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------
def _normalise_filters(bids_filters: Mapping | None) -> tuple[dict, dict, dict]:
    """(svs, mrsref, t1w) pybids filters from ``{"svs": {...}, "mrsref": {...}, "t1w": {...}}``.

    A flat dict of entities is taken as the svs filter.
    """
    if not bids_filters:
        return {}, {}, {}
    if not isinstance(bids_filters, Mapping):
        raise UsageError("BIDS filters must be a JSON object such as {\"svs\": {\"acquisition\": "
                         "\"press\"}}")
    keys = set(bids_filters)
    known = {"svs", "mrsref", "t1w"}
    # a per-suffix filter file (e.g. shared with fMRIPrep: "bold", "t2w", ...): the entries for other
    # suffixes do not concern MRS; a value that is not an object means a flat entity filter instead
    per_suffix = all(isinstance(v, Mapping) or v is None for v in bids_filters.values()) and any(
        isinstance(v, Mapping) for v in bids_filters.values())
    if per_suffix:
        other = sorted(keys - known)
        if other:
            logger.info("BIDS filter entries for %s are not about MRS and are ignored", ", ".join(other))
        out = []
        for k in ("svs", "mrsref", "t1w"):
            v = bids_filters.get(k, {}) or {}
            if not isinstance(v, Mapping):
                raise UsageError(f"BIDS filter {k!r} must be an object of entity: value")
            out.append(dict(v))
        return out[0], out[1], out[2]
    return dict(bids_filters), {}, {}


def _looping_dir_links(root: Path) -> list[Path]:
    """Directory symlinks under ``root`` that point to themselves or to one of their ancestors
    (or cannot be resolved): following them never ends."""
    found = []
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        for name in dirnames:
            link = Path(dirpath) / name
            if not link.is_symlink():
                continue
            try:
                target = link.resolve(strict=True)
            except (OSError, RuntimeError):
                found.append(link)
                continue
            here = link.parent.resolve()
            if target == here or target in here.parents:
                found.append(link)
    return found


def _make_layout(root: Path):
    import re

    from bids import BIDSLayout, BIDSLayoutIndexer
    from bids.layout.validation import DEFAULT_LOCATIONS_TO_IGNORE

    loops = _looping_dir_links(root)
    for link in loops:
        logger.warning("%s: directory symlink loop (points to %s); not indexed", link, os.readlink(link))
    ignore = list(DEFAULT_LOCATIONS_TO_IGNORE) + [
        re.compile("^" + re.escape("/" + link.relative_to(root).as_posix()) + "(/|$)") for link in loops]
    try:
        return BIDSLayout(str(root), validate=False,
                          indexer=BIDSLayoutIndexer(validate=False, index_metadata=False, ignore=ignore))
    except Exception as exc:
        raise InputError(f"cannot index the BIDS dataset ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})", root) from None


def _is_raw_mrs_path(path: Path, root: Path, subject: str) -> bool:
    """True for ``sub-X/[ses-Y/]mrs/<file>`` (excludes derivatives/, sourcedata/, …)."""
    try:
        rel = path.relative_to(root).parts
    except ValueError:
        return False
    if len(rel) == 3:
        return rel[0] == f"sub-{subject}" and rel[1] == "mrs"
    if len(rel) == 4:
        return rel[0] == f"sub-{subject}" and rel[1].startswith("ses-") and rel[2] == "mrs"
    return False


def _nifti_files(directory: Path, suffix: str) -> list[Path]:
    if not directory.is_dir():
        return []
    out = [p for p in directory.iterdir()
           if p.name.endswith(tuple(f"_{suffix}{e}" for e in _NII_EXT))
           and (p.is_file() or p.is_symlink())]  # broken links fail later with a clear message
    return sorted(out)


def _role_of(acq: str | None, role_labels: Mapping[str, tuple[str, ...]]) -> str | None:
    if acq is None:
        return None
    for role, labels in role_labels.items():
        if acq.lower() in (lab.lower() for lab in labels):
            return role
    return None


def _shared(ref_ents: Mapping[str, str], svs_ents: Mapping[str, str]) -> int:
    return sum(1 for k, v in ref_ents.items() if svs_ents.get(k) == v)


def _assign_roles(refs: Sequence[Path], svs_ents: Mapping[str, str],
                  role_labels: Mapping[str, tuple[str, ...]], notes: list[str]) -> dict[str, Path]:
    """Roles from ``acq`` labels; unlabelled references fill the remaining roles."""
    roles: dict[str, Path] = {}
    unlabelled: list[Path] = []
    for ref in refs:
        ents = _ordered(parse_bids_name(ref.name)[0])
        role = _role_of(ents.get("acq"), role_labels)
        if role is None:
            unlabelled.append(ref)
        elif role in roles:
            notes.append(f"several {role!r} references; using {roles[role].name}, ignoring {ref.name}")
        else:
            roles[role] = ref
    fill: Path | None = None
    if len(unlabelled) == 1:
        fill = unlabelled[0]
    elif len(unlabelled) > 1:
        scored = sorted(unlabelled, key=lambda r: (-_shared(
            _ordered(parse_bids_name(r.name)[0]), svs_ents), r.name))
        fill = scored[0]
        notes.append(f"{len(unlabelled)} unlabelled references "
                     f"({', '.join(r.name for r in unlabelled)}); using {fill.name}, the best "
                     "entity match")
    if fill is None and roles and "conc" in roles:
        missing = [r for r in REFERENCE_ROLES if r not in roles]
        if missing:
            notes.append(f"no reference labelled for {', '.join(missing)}; using the conc reference "
                         f"{roles['conc'].name}")
            fill = roles["conc"]
    if fill is not None:
        for role in REFERENCE_ROLES:
            roles.setdefault(role, fill)
    return {r: roles[r] for r in REFERENCE_ROLES if r in roles}


def _match_references(svs: Path, svs_ents: Mapping[str, str], candidates: Sequence[Path],
                      notes: list[str], role_labels: Mapping[str, tuple[str, ...]] | None = None
                      ) -> tuple[list[Path], str | None]:
    """References with the same entities; ignoring ``acq`` only as a last resort.

    With an entity match, references that differ only by a role ``acq`` label
    (e.g. ``acq-ecc``) are added for their role.
    """
    def conflicts(ref: Path, ignore: tuple[str, ...]) -> bool:
        ents = _ordered(parse_bids_name(ref.name)[0])
        return any(k not in ignore and svs_ents.get(k) != v for k, v in ents.items())

    tier1 = [c for c in candidates if not conflicts(c, ())]
    tier2 = [c for c in candidates if not conflicts(c, ("acq",))]
    if tier1:
        best = max(_shared(_ordered(parse_bids_name(c.name)[0]), svs_ents) for c in tier1)
        chosen = [c for c in tier1
                  if _shared(_ordered(parse_bids_name(c.name)[0]), svs_ents) == best]
        extra = [c for c in tier2 if c not in tier1 and role_labels and _role_of(
            _ordered(parse_bids_name(c.name)[0]).get("acq"), role_labels) is not None]
        if extra:
            notes.append(f"also using role-labelled reference(s) {', '.join(c.name for c in extra)}")
        return chosen + extra, "entities"
    if tier2:
        notes.append(f"no reference with the same entities as {svs.name}; matched ignoring acq: "
                     f"{', '.join(c.name for c in tier2)}")
        return tier2, "entities-ignoring-acq"
    return [], None


def _uris(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _discover_run(root: Path, svs: Path, role_labels: Mapping[str, tuple[str, ...]],
                  ref_filter: Mapping, t1_filter: Mapping) -> MrsRun:
    ents_all, _, _ = parse_bids_name(svs.name)
    subject = ents_all.get("sub", "")
    ents = _ordered(ents_all)
    session = ents.get("ses")
    notes: list[str] = []
    bad = [f"{k}-{v}" for k, v in ents_all.items() if not _LABEL_RE.match(str(v))]
    if bad:
        return MrsRun(subject, session, ents, svs, bids_root=root,
                      error=f"{svs}: not a valid BIDS file name (entity {bad[0]!r}: labels are letters and digits)")
    try:
        sidecar = sidecar_for(svs, root)
    except BidsMrsError as exc:
        return MrsRun(subject, session, ents, svs, error=str(exc), bids_root=root)

    side_json = Path(str(svs)[: -len(parse_bids_name(svs.name)[2])] + ".json")
    base = dict(subject=subject, session=session, entities=ents, svs_path=svs, sidecar=sidecar,
                bids_root=root)
    try:
        # --- references ------------------------------------------------------------------
        references: dict[str, Path] = {}
        ref_source = None
        uris = _uris(sidecar.get("ReferenceSignal"))
        if uris:
            refs = []
            for uri in uris:
                try:
                    refs.append(resolve_bids_uri(uri, root, field_name="ReferenceSignal"))
                except ValueError as exc:
                    raise InputError(str(exc), side_json) from None
            references = _assign_roles(refs, ents, role_labels, notes)
            ref_source = "ReferenceSignal"
        else:
            cands = _nifti_files(svs.parent, "mrsref")
            cands = [c for c in cands if _passes(c, ref_filter)]
            refs, ref_source = _match_references(svs, ents, cands, notes, role_labels)
            if not refs:
                # pre-1.10 BIDS-MRS drafts and some lab datasets (e.g. HBCD) use the suffix _ref
                legacy = [c for c in _nifti_files(svs.parent, "ref") if _passes(c, ref_filter)]
                refs, ref_source = _match_references(svs, ents, legacy, notes, role_labels)
                if refs:
                    notes.append(f"using reference(s) with the legacy suffix _ref (BIDS 1.10 "
                                 f"names it _mrsref): {', '.join(r.name for r in refs)}")
            if refs:
                references = _assign_roles(refs, ents, role_labels, notes)
            else:
                notes.append("no water reference found: water-scaled concentrations unavailable")
        # --- T1w -------------------------------------------------------------------------
        t1w, t1_source = None, None
        anat_uris = _uris(sidecar.get("AnatomicalImage"))
        if anat_uris:
            for uri in anat_uris:
                try:
                    path = resolve_bids_uri(uri, root, field_name="AnatomicalImage")
                except ValueError as exc:
                    raise InputError(str(exc), side_json) from None
                if t1w is None:
                    t1w, t1_source = path, "AnatomicalImage"
            if len(anat_uris) > 1:
                notes.append(f"AnatomicalImage lists {len(anat_uris)} images; using {t1w.name}")
        else:
            places = []
            if session:
                places.append((root / f"sub-{subject}" / f"ses-{session}" / "anat", "session"))
            places.append((root / f"sub-{subject}" / "anat", "subject"))
            for directory, source in places:
                found = [p for p in _nifti_files(directory, "T1w") if _passes(p, t1_filter)]
                if found:
                    found.sort(key=lambda p: (-_shared(_ordered(parse_bids_name(p.name)[0]), ents),
                                              p.name))
                    t1w, t1_source = found[0], source
                    if len(found) > 1:
                        notes.append(f"{len(found)} T1w images in {directory.name}/; using "
                                     f"{t1w.name}")
                    break
    except BidsMrsError as exc:
        return MrsRun(**base, notes=tuple(notes), error=str(exc))
    for n in notes:
        logger.info("%s: %s", svs.name, n)
    return MrsRun(**base, references=references, reference_source=ref_source, t1w_path=t1w,
                  t1w_source=t1_source, notes=tuple(notes))


def _access_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened (symlink loop, dangling symlink, ...), else None.

    Checked at discovery so that a run with such a file fails alone with one line, before
    anything (e.g. the resumability hash) tries to read it.
    """
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path}: symlink loop"
        if os.path.islink(path):
            target = os.readlink(path)
            hint = "; run `datalad get` on it" if "annex" in target else ""
            return f"{path}: broken symlink (target {target} not found{hint})"
        if exc.errno == errno.ENOENT:
            return f"{path}: file not found"
        return f"{path}: cannot access file ({exc.strerror})"
    return None


def _with_access_check(run: MrsRun) -> MrsRun:
    if run.error:
        return run
    for path in [run.svs_path, *run.references.values()]:  # the T1w is checked where it is used
        problem = _access_problem(path)
        if problem:
            return dataclasses.replace(run, error=problem)
    return run


def _passes(path: Path, filters: Mapping) -> bool:
    """Apply simple pybids-style entity filters (long or short names) to a file name."""
    if not filters:
        return True
    ents = parse_bids_name(path.name)[0]
    for key, want in filters.items():
        short = _LONG_TO_SHORT.get(key, {"subject": "sub"}.get(key, key))
        if short in ("suffix", "extension", "datatype"):
            continue
        have = ents.get(short)
        wants = want if isinstance(want, (list, tuple)) else [want]
        if want is None:
            if have is not None:
                return False
        elif have is None or str(have) not in [str(w) for w in wants]:
            # runs are integers in pybids: compare without zero padding too
            if not (have is not None and short in ("run", "echo", "inv") and have.isdigit()
                    and int(have) in [int(w) for w in wants if str(w).isdigit()]):
                return False
    return True


def find_runs(bids_dir: str | os.PathLike, *, participant_labels: Iterable[str] | None = None,
              session_labels: Iterable[str] | None = None, bids_filters: Mapping | None = None,
              reference_roles: Mapping[str, str | Sequence[str]] | None = None) -> list[MrsRun]:
    """All single-voxel MRS runs (``datatype='mrs', suffix='svs'``) matching the request.

    Parameters
    ----------
    bids_dir : path-like
        Root of a BIDS dataset.
    participant_labels, session_labels : iterable of str, optional
        Labels with or without ``sub-``/``ses-``; all when None.
    bids_filters : dict, optional
        pybids filters, either ``{"svs": {...}, "mrsref": {...}, "t1w": {...}}`` (as in a
        ``--bids-filter-file``) or a flat dict applied to the svs files, e.g.
        ``{"acquisition": "press"}``.
    reference_roles : dict, optional
        Role → ``acq`` label(s) overriding :data:`ROLE_ACQ_LABELS`, e.g.
        ``{"conc": "water"}``.

    Returns
    -------
    list of MrsRun
        Sorted by file name. Runs with a problem of their own have ``error`` set.

    Raises
    ------
    InputError
        ``bids_dir`` is not a BIDS dataset.
    UsageError
        Invalid or unknown labels/filters (message lists available labels, at most 10).
    NoDataError
        The request matches no svs file.
    """
    root = _check_dataset(bids_dir)
    subjects = _strip(participant_labels, "sub-", "participant")
    sessions = _strip(session_labels, "ses-", "session")
    available = list_subjects(root)
    if subjects is not None:
        unknown = [s for s in subjects if s not in available]
        if unknown:
            shown = ", ".join(available[:10]) + (", …" if len(available) > 10 else "")
            raise UsageError(f"participant label(s) {', '.join(unknown)} not found in {root}; "
                             f"available: {shown or 'none'}")
    if sessions is not None:
        have = list_sessions(root)
        unknown = [s for s in sessions if s not in have]
        if unknown:
            shown = ", ".join(have[:10]) + (", …" if len(have) > 10 else "")
            raise UsageError(f"session label(s) {', '.join(unknown)} not found in {root}; "
                             f"available: {shown or 'none (the dataset has no sessions)'}")
    svs_filter, ref_filter, t1_filter = _normalise_filters(bids_filters)
    role_labels = dict(ROLE_ACQ_LABELS)
    for role, labels in (reference_roles or {}).items():
        if role not in REFERENCE_ROLES:
            raise UsageError(f"unknown reference role {role!r}; roles are "
                             f"{', '.join(REFERENCE_ROLES)}")
        role_labels[role] = (labels,) if isinstance(labels, str) else tuple(labels)

    layout = _make_layout(root)
    query: dict[str, Any] = {k: v for k, v in svs_filter.items()
                             if k not in ("datatype", "suffix", "extension")}
    if subjects is not None:
        query["subject"] = subjects
    if sessions is not None:
        query["session"] = sessions
    try:
        files = layout.get(datatype="mrs", suffix="svs", extension=[".nii.gz", ".nii"],
                           return_type="filename", **query)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"invalid BIDS filter: {' '.join(str(exc).split())[:200]}") from None
    for pattern in ("sub-*/mrs/*_svs.nii*", "sub-*/ses-*/mrs/*_svs.nii*"):  # pybids lists files only
        for odd in sorted(root.glob(pattern)):
            if odd.is_dir() and not odd.is_symlink() and (subjects is None or any(
                    odd.relative_to(root).parts[0] == f"sub-{s}" for s in subjects)):
                logger.warning("%s: is a directory, not a NIfTI-MRS file; skipped", odd)

    runs = []
    for f in sorted(set(files), key=lambda x: os.path.basename(x)):
        path = Path(f)
        sub = parse_bids_name(path.name)[0].get("sub", "")
        if not _is_raw_mrs_path(path, root, sub):
            continue
        runs.append(_with_access_check(_discover_run(root, path, role_labels, ref_filter, t1_filter)))
    stems: dict[str, int] = {}
    for r in runs:
        stems[r.source_stem] = stems.get(r.source_stem, 0) + 1
    runs = [r if stems[r.source_stem] == 1 or r.error else dataclasses.replace(
        r, error=f"{r.svs_path}: the same run exists as both .nii and .nii.gz; keep one")
        for r in runs]
    if not runs:
        what = []
        if subjects:
            what.append(f"participant(s) {', '.join(subjects)}")
        if sessions:
            what.append(f"session(s) {', '.join(sessions)}")
        if svs_filter:
            what.append(f"filters {svs_filter}")
        raise NoDataError("no single-voxel MRS data (mrs/*_svs.nii[.gz])"
                          + (f" for {'; '.join(what)}" if what else ""), root)
    return runs
