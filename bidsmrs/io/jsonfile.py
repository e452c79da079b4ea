"""Reading and writing JSON files (BIDS sidecars, tables' data dictionaries, configs).

``read_json`` turns every problem into a one-line :class:`~bidsmrs.errors.InputError`
naming the file; ``write_json`` is atomic and deterministic (sorted keys, indent 2),
converts numpy scalars/arrays and writes NaN/±Inf as ``null`` (JSON has no NaN).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from bidsmrs.errors import InputError
from bidsmrs.io.atomic import atomic_write_text

__all__ = ["read_json", "write_json", "to_jsonable", "dumps_json"]


def read_bytes_checked(path: Path, what: str = "a file") -> bytes:
    """A file's bytes, or a one-line :class:`InputError` naming it (missing, a directory, unreadable)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, expected {what}", path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", path) from None


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object from ``path``.

    Raises
    ------
    InputError
        The file is missing or unreadable, is not UTF-8, is not valid JSON (message gives
        line and column), or its top level is not an object.
    """
    p = Path(path)
    raw = read_bytes_checked(p, "a JSON file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (invalid byte at offset {exc.start})", p) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                         p) from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply", p) from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise InputError(f"invalid JSON value: {exc}", p) from None
    if not isinstance(obj, dict):
        raise InputError(f"JSON top level must be an object, found {type(obj).__name__}", p)
    return obj


def to_jsonable(obj: Any) -> Any:
    """Recursively convert ``obj`` to plain JSON types.

    numpy scalars → Python numbers, arrays → lists, tuples/sets → lists, Paths → str,
    non-finite floats → None, complex → ``[real, imag]``, dataclass-free mappings keep
    their keys as str.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (complex, np.complexfloating)):
        return [to_jsonable(obj.real), to_jsonable(obj.imag)]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()] if obj.ndim else to_jsonable(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=str)]
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def dumps_json(obj: Any) -> str:
    """The text :func:`write_json` writes (sorted keys, indent 2, trailing newline)."""
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (parent dirs created); return the path."""
    return atomic_write_text(path, dumps_json(obj))
