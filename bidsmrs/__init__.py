"""bidsmrs: a BIDS-App for single-voxel MR spectroscopy."""
from importlib import metadata as _metadata
from pathlib import Path as _Path


def _read_version() -> str:
    try:
        return _metadata.version("bidsmrs")
    except _metadata.PackageNotFoundError:  # running from a source tree
        vfile = _Path(__file__).resolve().parent.parent / "version"
        return vfile.read_text().strip() if vfile.exists() else "0+unknown"


__version__ = _read_version()
