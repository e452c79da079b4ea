"""Atomic file writes: a file appears under its final name only when it is complete.

Every writer in bidsmrs goes through :func:`atomic_path` (temporary file in the same
directory, then ``os.replace``), so an interrupted run or a parallel worker never leaves a
partial file with a final name (DESIGN.md §3: "All writes are atomic").
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "remove_stale_temporaries",
           "is_temporary_name"]

#: Names made by :func:`atomic_path`: ``.<final name>.<8 random chars>.tmp[<final suffixes>]``.
_TMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^/]*)?$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The parent directory is created if needed. The temporary name keeps the final name's
    suffixes (e.g. ``.nii.gz``) so that libraries choosing a format from the extension
    behave the same. On an exception the temporary file is removed and the exception
    propagates; ``path`` is left untouched.

    Parameters
    ----------
    path : path-like
        Final file name.

    Yields
    ------
    pathlib.Path
        Where to write. It does not exist yet when yielded (the caller creates it).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final.suffixes[-2:]) if final.suffixes else ""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}",
                                    dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # Let the writer create the file: it then gets the usual umask-based mode instead of
    # mkstemp's 0600, and writers that refuse to overwrite work too.
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer did not create the temporary file")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the final path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` (UTF-8 by default, ``\\n`` newlines) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def is_temporary_name(name: str) -> bool:
    """True for a temporary name made by :func:`atomic_path` (``.x.tsv.ab12cd34.tmp.tsv``)."""
    return bool(_TMP_RE.match(name))


def remove_stale_temporaries(directory: str | os.PathLike, *, pattern: str = "**/*") -> list[Path]:
    """Delete temporary files that an interrupted writer (SIGKILL, power loss) left behind.

    Only names made by :func:`atomic_path` that match ``pattern`` (a glob relative to
    ``directory``, recursive by default) are removed; call it only where no other process is
    writing (e.g. a participant's own output folder before processing it). Returns the
    removed paths; a missing ``directory`` is not an error.
    """
    root = Path(directory)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for path in root.glob(pattern):
        if is_temporary_name(path.name) and (path.is_file() or path.is_symlink()):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
