"""Shared rendering helpers of the report pages: Jinja2 environment, safe figures, generator.

Autoescaping is always on; an SVG is marked safe only after :func:`.figures.render_svg`
has checked it. A figure that fails becomes a message on the page instead of an exception.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping

logger = logging.getLogger(__name__)

__all__ = ["template_environment", "safe_figure", "no_figure", "generator_name", "TEMPLATES"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


def template_environment():
    """The Jinja2 environment of the report templates (autoescape on, strict undefined)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def safe_figure(make: Callable[..., str], *args, caption: str = "", **kwargs) -> dict:
    """Call a figure function; return ``{"svg", "error", "caption"}`` for the templates."""
    from markupsafe import Markup

    try:
        svg = make(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the report
        logger.warning("figure %s failed: %s", getattr(make, "__name__", make), exc)
        return {"svg": None, "error": f"{type(exc).__name__}: {exc}", "caption": caption}
    return {"svg": Markup(svg), "error": None, "caption": caption}


def no_figure(error: str | None = None) -> dict:
    """Template value for a figure that is not drawn (with an optional reason)."""
    return {"svg": None, "error": error, "caption": ""}


def generator_name(output_dir: Path) -> str:
    """``bidsmrs <version>`` from OUTPUT_DIR/dataset_description.json, else the running one."""
    from bidsmrs.report.collect import read_json_or_none

    dd = read_json_or_none(Path(output_dir) / "dataset_description.json", []) or {}
    for gen in dd.get("GeneratedBy") or []:
        if isinstance(gen, Mapping) and str(gen.get("Name", "")).lower() == "bidsmrs":
            return f"bidsmrs {gen.get('Version', '')}".strip()
    from bidsmrs import __version__

    return f"bidsmrs {__version__}"
