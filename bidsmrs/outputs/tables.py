"""TSV tables with JSON sidecars (BIDS tabular files), written atomically.

Missing values are ``n/a``; floats are written with 6 significant digits so that reruns are
byte-identical; booleans as ``true``/``false``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from bidsmrs.io.atomic import atomic_write_text
from bidsmrs.io.jsonfile import write_json


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{float(value):.6g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value)
    if text in ("", "nan", "None"):
        return "n/a"
    return text.replace("\t", " ").replace("\n", " ")


def format_tsv(table: pd.DataFrame) -> str:
    """The TSV text of ``table`` (header + rows, ``n/a`` for missing)."""
    lines = ["\t".join(str(c) for c in table.columns)]
    for row in table.itertuples(index=False):
        lines.append("\t".join(_cell(v) for v in row))
    return "\n".join(lines) + "\n"


def write_tsv(path: Path, table: pd.DataFrame, sidecar: Mapping[str, Any] | None = None) -> None:
    """Write ``table`` as TSV and, if given, its JSON sidecar (same name, ``.json``).

    The sidecar is written first, so a table never exists without its dictionary: the
    concentrations TSV marks a finished run (DESIGN.md §3) and its sidecar holds the input hash.
    """
    path = Path(path)
    if sidecar is not None:
        write_json(path.with_suffix(".json"), dict(sidecar))
    atomic_write_text(path, format_tsv(table))


def read_tsv(path: Path) -> pd.DataFrame:
    """Read a bidsmrs TSV (``n/a`` as NaN; label-like columns kept as strings)."""
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                       dtype={"participant_id": str, "session": str, "acquisition": str, "volume": str,
                              "run": str, "metabolite": str, "flag": str})


def column_sidecar(columns: Mapping[str, tuple[str, str | None]], **extra: Any) -> dict[str, Any]:
    """A BIDS column dictionary: ``{name: (description, units)}`` -> sidecar dict (+ file-level keys)."""
    out: dict[str, Any] = {}
    for name, (description, units) in columns.items():
        entry = {"Description": description}
        if units:
            entry["Units"] = units
        out[name] = entry
    out.update(extra)
    return out
