"""The bidsmrs cache: the one place outside OUTPUT_DIR and the work directory we may write (DESIGN.md §2)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str, fallback: Path | None = None) -> Path | None:
    """A writable ``<cache>/<name>`` folder, created if needed.

    ``<cache>`` is ``$BIDSMRS_CACHE``, else ``~/.cache/bidsmrs``; when neither is writable,
    ``fallback/<name>`` (created) or None without a fallback.
    """
    for base in (os.environ.get("BIDSMRS_CACHE"), Path.home() / ".cache" / "bidsmrs"):
        if not base:
            continue
        path = Path(base) / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    if fallback is None:
        return None
    path = Path(fallback) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
