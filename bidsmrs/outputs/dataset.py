"""Dataset-level files of the derivative dataset: written idempotently by every participant run."""
from __future__ import annotations

import os
from pathlib import Path

from bidsmrs import __version__
from bidsmrs.io.atomic import atomic_write_text
from bidsmrs.io.jsonfile import write_json
from bidsmrs.outputs.naming import DESCRIPTIONS

BIDS_VERSION = "1.10.0"

#: Files that BIDS has no derivative rule for (research/standards.md §3.4), so that
#: bids-validator-deno reports 0 errors on OUTPUT_DIR. (Tested with 3.0.2: ``*_desc-*_svs.*``
#: does not match ``x_desc-qc_svs.tsv`` in its ignore library, ``sub-*/**/mrs/*_desc-*`` does.)
BIDSIGNORE = """*.html
figures
logs
sub-*/**/mrs/*_desc-*
*_desc-voxel_mask.*
group_*
"""


def dataset_description(bids_dir: Path, output_dir: Path) -> dict:
    """The derivative ``dataset_description.json`` content."""
    generated = {"Name": "bidsmrs", "Version": __version__,
                 "Description": "Single-voxel MRS preprocessing, fitting and quantification"}
    tag = os.environ.get("BIDSMRS_CONTAINER_TAG")
    if tag:
        generated["Container"] = {"Type": os.environ.get("BIDSMRS_CONTAINER_TYPE", "docker"), "Tag": tag}
    try:
        raw = os.path.relpath(bids_dir, output_dir)
    except ValueError:  # different drives (Windows)
        raw = str(bids_dir)
    return {"Name": "bidsmrs outputs", "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
            "GeneratedBy": [generated], "DatasetLinks": {"raw": raw}}


def write_dataset_files(bids_dir: Path, output_dir: Path) -> None:
    """Write dataset_description.json, .bidsignore and descriptions.tsv (same content every time)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / "dataset_description.json", dataset_description(bids_dir, output_dir))
    atomic_write_text(output_dir / ".bidsignore", BIDSIGNORE)
    rows = ["desc_id\tdescription"] + [f"desc-{k}\t{v}" for k, v in DESCRIPTIONS.items()]
    atomic_write_text(output_dir / "descriptions.tsv", "\n".join(rows) + "\n")
