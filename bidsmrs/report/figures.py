"""Report figures as SVG strings (matplotlib object API with the SVG canvas; no pyplot).

Every figure function returns the ``<svg ...>...</svg>`` element only (no XML prolog), ready
to inline in HTML. Output is deterministic: ``svg.hashsalt`` is set per figure (so the ids of
several figures on one page do not collide) and the date metadata is dropped, so a rerun
gives byte-identical SVG. Text is written as SVG ``<text>`` (``svg.fonttype = none``), which
matplotlib XML-escapes; :func:`render_svg` still refuses output containing a script element.
Lines are decimated to at most :data:`MAX_LINE_POINTS` points to keep pages small.
"""
from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from bidsmrs.constants import FIT_RANGE_PPM, MAIN_METABOLITES

logger = logging.getLogger(__name__)

__all__ = ["render_svg", "fit_figure", "alignment_figure", "corrected_transients", "water_figure", "voxel_figure",
           "distribution_figure", "group_spectra_figure", "qc_scatter_figure",
           "MAX_LINE_POINTS"]

#: Maximum points drawn per line (decimation keeps the reports small).
MAX_LINE_POINTS = 1500

_COLOURS = {"data": "#222222", "fit": "#d62728", "baseline": "#7f7f7f", "residual": "#1f77b4",
            "component": "#2ca02c", "rejected": "#d62728", "kept": "#1f77b4"}
#: Okabe-Ito colours for groups and tissues (colour-blind safe).
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
            "#000000")
_TISSUE_RGB = {"GM": (0.90, 0.62, 0.0), "WM": (0.34, 0.71, 0.91), "CSF": (0.0, 0.62, 0.45)}

_RC = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False, "path.simplify": True, "svg.image_inline": True}
#: Active content that must never reach an inline SVG: script-like elements, event-handler
#: attributes and javascript: URLs (inside tags; escaped text content cannot form tags).
_UNSAFE = re.compile(r"<\s*(script|foreignObject|iframe|object|embed)\b"
                     r"|<[^>]*\son[a-z]+\s*="
                     r"|<[^>]*=\s*[\"']\s*(javascript|data:text/html)", re.I)


def _figure(width_in: float, height_in: float, salt: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=96)
    fig._bidsmrs_salt = salt  # read by render_svg
    return fig


def render_svg(fig, salt: str | None = None) -> str:
    """Render a matplotlib ``Figure`` to an inline ``<svg>`` string, deterministically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    salt : str, optional
        ``svg.hashsalt`` (ids in the SVG derive from it); defaults to the salt given when
        the figure was made by this module.

    Raises
    ------
    ValueError
        The SVG would contain a script element, an event handler or a ``javascript:`` URL.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    salt = salt or getattr(fig, "_bidsmrs_salt", "bidsmrs")
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"bidsmrs-{salt}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                                 "Format": None, "Type": None})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:].strip() if start >= 0 else text
    if _UNSAFE.search(svg):
        raise ValueError("refusing to inline an SVG with active content")
    return svg


def _with_rc(func):
    """Run a figure-building function inside the report's rc settings."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper


def _decimate(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_LINE_POINTS):
    n = len(x)
    if n <= max_points:
        return (x, *ys)
    step = int(np.ceil(n / max_points))
    return (x[::step], *(y[::step] for y in ys))


def _in_range(ppm: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (ppm >= min(lo, hi)) & (ppm <= max(lo, hi))


def _main_components(components: Mapping[str, np.ndarray], main: Sequence[str]) -> dict:
    """The main metabolites' components in ``main`` order, plus the summed macromolecules."""
    out = {name: components[name] for name in main if name in components}
    mm = [v for k, v in components.items()
          if k.upper().startswith(("MM", "MAC", "LIP")) and k not in out]
    if mm:
        out["MM + lipids"] = np.sum(mm, axis=0)
    return out


@_with_rc
def fit_figure(ppm: np.ndarray, data: np.ndarray, fit: np.ndarray, baseline: np.ndarray,
               residual: np.ndarray, components: Mapping[str, np.ndarray] | None = None, *,
               ppm_range: tuple[float, float] = FIT_RANGE_PPM,
               main: Sequence[str] = MAIN_METABOLITES, title: str = "",
               salt: str = "fit") -> str:
    """Data, fit, baseline, residual (offset above) and main components (stacked below).

    Spectra are complex with the phase already corrected; the real part (absorption) is
    drawn. The ppm axis decreases from left to right.
    """
    sel = _in_range(ppm, *ppm_range)
    order = np.argsort(ppm[sel])
    x = ppm[sel][order]
    d, f, b, r = (np.real(a)[sel][order] for a in (data, fit, baseline, residual))
    comps = {k: np.real(v)[sel][order]
             for k, v in _main_components(components or {}, main).items()}
    span = float(np.ptp(np.concatenate([d, f]))) or 1.0
    gap = 0.08 * span

    fig = _figure(7.5, 4.2 + 0.32 * len(comps), salt)
    ax = fig.add_axes((0.04, 0.09, 0.86, 0.84))
    xs, d_, f_, b_, r_ = _decimate(x, d, f, b, r)
    ax.plot(xs, d_, color=_COLOURS["data"], lw=0.7, label="data")
    ax.plot(xs, f_, color=_COLOURS["fit"], lw=0.9, label="fit")
    ax.plot(xs, b_, color=_COLOURS["baseline"], lw=0.8, ls="--", label="baseline")
    r_off = max(d.max(), f.max()) + gap - r.min()
    ax.plot(xs, r_ + r_off, color=_COLOURS["residual"], lw=0.6, label="residual (offset)")
    ax.axhline(r_off, color=_COLOURS["residual"], lw=0.3, alpha=0.5)
    level = min(d.min(), b.min()) - gap
    for name, y in comps.items():
        xc, yc = _decimate(x, y)
        top = float(y.max())
        off = level - top
        ax.plot(xc, yc + off, color=_COLOURS["component"], lw=0.7)
        ax.text(1.005, off, name, transform=ax.get_yaxis_transform(), fontsize=8,
                va="bottom", ha="left", color=_COLOURS["component"])
        level = min(off + float(y.min()) - 0.25 * gap, off - 0.7 * gap)  # room for the label
    ax.set_xlim(max(ppm_range), min(ppm_range))
    ax.set_xlabel("Chemical shift (ppm)")
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=7, frameon=False, ncol=4)
    if title:
        ax.set_title(title, fontsize=9, loc="right")
    return render_svg(fig)


def _cells(rows: Sequence[Mapping[str, str]], col: str) -> np.ndarray:
    out = []
    for row in rows:
        try:
            out.append(float(row.get(col, "nan")))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.asarray(out, float)


def corrected_transients(spectra: np.ndarray, dwell_s: float, freq_shift_hz, phase_deg) -> np.ndarray:
    """Apply recorded per-transient corrections: FID × ``e^{i(2π f t + φ)}`` (NaN → 0).

    ``spectra`` is ``n_points × n_transients``; the corrections are those *applied* by the
    alignment step (:mod:`bidsmrs.preprocess.align`), so the result is the aligned data.
    """
    from bidsmrs.spectrum import to_fid, to_spectrum

    f = np.nan_to_num(np.asarray(freq_shift_hz, float))
    ph = np.deg2rad(np.nan_to_num(np.asarray(phase_deg, float)))
    t = np.arange(spectra.shape[0]) * dwell_s
    corr = np.exp(1j * (2 * np.pi * np.outer(t, f) + ph[None, :]))
    return to_spectrum(to_fid(spectra, axis=0) * corr, axis=0)


def _display_phase(spectra: np.ndarray, sel: np.ndarray) -> complex:
    """One zero-order phase factor that makes the mean spectrum mostly absorptive in ``sel``."""
    mean = spectra[sel].mean(axis=1)
    best, best_val = 1.0 + 0j, -np.inf
    for deg in range(0, 360, 2):
        f = np.exp(-1j * np.deg2rad(deg))
        val = np.real(mean * f).sum() - 0.5 * np.abs(np.imag(mean * f)).sum()
        if val > best_val:
            best, best_val = f, val
    return best


@_with_rc
def alignment_figure(transients: Sequence[Mapping[str, str]], *, raw_ppm: np.ndarray | None = None,
                     raw_spectra: np.ndarray | None = None, dwell_s: float | None = None,
                     ppm_range: tuple[float, float] = (1.8, 4.2), title: str = "",
                     salt: str = "align", max_transients: int = 64) -> str:
    """Per-transient corrections with rejected transients marked; optionally before/after.

    ``transients`` are the rows of the ``desc-transients`` table (text cells): frequency
    shift, phase and residual z-score are drawn per transient. With ``raw_spectra``
    (``n_points × n_transients``, the raw transients as spectra) and ``dwell_s``, two more
    panels overlay the transients before and after applying the recorded corrections
    ``e^{i(2π f t + φ)}`` (real part, one common zero-order phase for display; rejected
    transients in red). The overlay lines are rasterised to keep the SVG small.
    """
    idx = _cells(transients, "transient")
    if np.all(np.isnan(idx)):
        idx = np.arange(len(transients), dtype=float)
    rejected = np.array([str(r.get("rejected", "false")).lower() in ("true", "1", "yes")
                         for r in transients], bool)
    panels = [("freq_shift_hz", "Frequency shift (Hz)"), ("phase_deg", "Phase (deg)"),
              ("residual_z", "Residual (z)")]
    overlay = (raw_spectra is not None and raw_ppm is not None and dwell_s
               and raw_spectra.ndim == 2 and raw_spectra.shape[1] == len(transients))
    fig = _figure(7.5, 4.6 + (2.6 if overlay else 0), salt)
    if overlay:
        gs = fig.add_gridspec(5, 2, height_ratios=(2.6, 0.35, 1.4, 1.4, 1.4), hspace=0.15,
                              left=0.1, right=0.98, top=0.94, bottom=0.07, wspace=0.08)
        axes = [fig.add_subplot(gs[2 + i, :]) for i in range(3)]
        for ax in axes[1:]:
            ax.sharex(axes[0])
        after = corrected_transients(raw_spectra, float(dwell_s),
                                     _cells(transients, "freq_shift_hz"),
                                     _cells(transients, "phase_deg"))
        sel = _in_range(raw_ppm, *ppm_range)
        rot = _display_phase(after, sel)
        order = np.argsort(raw_ppm[sel])
        x = raw_ppm[sel][order]
        step = max(1, int(np.ceil(len(transients) / max_transients)))
        shown = np.arange(0, len(transients), step)
        ylim = None
        for col, (data, name) in enumerate(((raw_spectra, "before alignment"),
                                            (after, "after alignment"))):
            ax = fig.add_subplot(gs[0, col])
            y = np.real(data[sel][order] * rot)
            for k in shown:
                if not rejected[k]:
                    ax.plot(x, y[:, k], lw=0.4, alpha=0.35, color=_COLOURS["kept"], rasterized=True)
            for k in np.flatnonzero(rejected):
                ax.plot(x, y[:, k], lw=0.6, alpha=0.9, color=_COLOURS["rejected"], rasterized=True)
            ax.set_xlim(max(ppm_range), min(ppm_range))
            ylim = ylim or (float(y.min()), float(y.max()) * 1.05)
            ax.set_ylim(*ylim)
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("ppm", fontsize=8)
    else:
        axes = fig.subplots(len(panels), 1, sharex=True)
        fig.subplots_adjust(left=0.1, right=0.98, top=0.92, bottom=0.1, hspace=0.15)
    for ax, (col, label) in zip(axes, panels):
        y = _cells(transients, col)
        ax.plot(idx, y, color=_COLOURS["kept"], lw=0.6, marker="o", ms=2.5, label="kept")
        if rejected.any():
            ax.plot(idx[rejected], y[rejected], ls="none", marker="x", ms=6, mew=1.5,
                    color=_COLOURS["rejected"], label="rejected")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3, lw=0.4)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[0].legend(loc="upper right", fontsize=7, frameon=False, ncol=2)
    axes[-1].set_xlabel("Transient")
    n_rej = int(rejected.sum())
    fig.suptitle((title + " — " if title else "") + f"{len(transients)} transients, "
                 f"{n_rej} rejected", fontsize=9, x=0.01, ha="left")
    return render_svg(fig)


@_with_rc
def water_figure(ppm: np.ndarray, spectrum: np.ndarray, *, ppm_range=(3.65, 5.65),
                 fwhm_hz: float | None = None, title: str = "", salt: str = "water") -> str:
    """Processed water reference: real part and magnitude around 4.65 ppm."""
    sel = _in_range(ppm, *ppm_range)
    order = np.argsort(ppm[sel])
    x = ppm[sel][order]
    re_, mag = np.real(spectrum)[sel][order], np.abs(spectrum)[sel][order]
    x, re_, mag = _decimate(x, re_, mag)
    fig = _figure(5.0, 2.6, salt)
    ax = fig.add_axes((0.06, 0.17, 0.9, 0.72))
    ax.plot(x, re_, color=_COLOURS["data"], lw=0.8, label="real")
    ax.plot(x, mag, color=_COLOURS["baseline"], lw=0.8, ls="--", label="magnitude")
    ax.set_xlim(max(ppm_range), min(ppm_range))
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("Chemical shift (ppm)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    text = title
    if fwhm_hz is not None:
        text = (text + " — " if text else "") + f"FWHM {fwhm_hz:.3g} Hz"
    if text:
        ax.set_title(text, fontsize=9, loc="left")
    return render_svg(fig)


def _load(path: Path):
    import nibabel as nib

    img = nib.load(str(path))
    arr = np.asarray(img.dataobj, dtype=np.float32)
    while arr.ndim > 3:
        arr = arr[..., 0]
    return arr, img.affine


def _sample(arr: np.ndarray, affine: np.ndarray, world: np.ndarray) -> np.ndarray:
    """Nearest-neighbour values of ``arr`` at world points ``(3, ...)`` (0 outside)."""
    shape = world.shape[1:]
    inv = np.linalg.inv(affine)
    vox = np.rint(inv[:3, :3] @ world.reshape(3, -1) + inv[:3, 3:4]).astype(int)
    ok = np.all((vox >= 0) & (vox < np.array(arr.shape)[:, None]), axis=0)
    out = np.zeros(vox.shape[1], dtype=np.float32)
    out[ok] = arr[vox[0, ok], vox[1, ok], vox[2, ok]]
    return out.reshape(shape)


@_with_rc
def voxel_figure(t1w_path: Path, mask_path: Path, tissue_maps: Mapping[str, Path] | None = None,
                 *, title: str = "", salt: str = "voxel", margin_mm: float = 60.0) -> str:
    """The voxel (mask contour) on the T1w in three planes through the voxel centre.

    Planes are axis-aligned in scanner RAS space through the mask's centre of mass, each
    covering ``margin_mm`` around the voxel; the T1w, the mask and the tissue maps are sampled
    there (nearest neighbour), so they may be on different grids. Sagittal: anterior to the
    right; coronal and axial: subject's right on the left (radiological), as labelled.
    """
    t1, t1_aff = _load(t1w_path)
    mask, m_aff = _load(mask_path)
    if mask.max() <= 0:
        raise ValueError("the voxel mask is empty")
    maps = {}
    for label, p in (tissue_maps or {}).items():
        try:
            maps[str(label).upper()] = _load(Path(p))
        except Exception as exc:  # noqa: BLE001 - the figure is still useful without them
            logger.warning("tissue map %s unreadable: %s", p, exc)
    ijk = np.indices(mask.shape).reshape(3, -1)
    w = mask.ravel() > 0
    pts = m_aff[:3, :3] @ ijk[:, w] + m_aff[:3, 3:4]
    centre = np.average(pts, axis=1, weights=mask.ravel()[w])
    lo_pt, hi_pt = pts.min(axis=1) - margin_mm, pts.max(axis=1) + margin_mm
    step = float(min(np.sqrt((t1_aff[:3, :3] ** 2).sum(axis=0)).min(), 2.0))
    finite = t1[t1 > 0]
    lo, hi = np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0)

    fig = _figure(7.5, 2.9, salt)
    planes = (("Sagittal", 0, (1, 2), ("P", "A")), ("Coronal", 1, (0, 2), ("R", "L")),
              ("Axial", 2, (0, 1), ("R", "L")))
    for k, (name, fixed, (a, b), (left, right)) in enumerate(planes):
        ua = np.arange(lo_pt[a], hi_pt[a] + step, step)
        ub = np.arange(lo_pt[b], hi_pt[b] + step, step)
        grid = np.zeros((3, len(ub), len(ua)))
        grid[fixed] = centre[fixed]
        grid[a] = ua[None, :]
        grid[b] = ub[:, None]
        g = np.clip((_sample(t1, t1_aff, grid) - lo) / max(hi - lo, 1e-6), 0, 1)
        rgb = np.repeat(g[..., None], 3, axis=2)
        if maps:
            colour = np.zeros(g.shape + (3,))
            total = np.zeros(g.shape)
            for label, (arr, aff) in maps.items():
                p = np.clip(np.nan_to_num(_sample(arr, aff, grid)), 0, 1)
                colour += p[..., None] * np.asarray(_TISSUE_RGB.get(label, (1, 1, 1)))
                total += p
            alpha = 0.35 * np.clip(total, 0, 1)[..., None]
            rgb = rgb * (1 - alpha) + colour / np.maximum(total, 1e-6)[..., None] * alpha
        m = _sample(mask, m_aff, grid)
        ax = fig.add_axes((0.01 + k * 0.33, 0.1, 0.31, 0.78))
        flip = a == 0  # radiological: subject's right (low x) on the left after flipping
        extent = (ua[-1], ua[0], ub[0], ub[-1]) if flip else (ua[0], ua[-1], ub[0], ub[-1])
        ax.imshow(rgb[:, ::-1] if flip else rgb, origin="lower", extent=extent,
                  interpolation="nearest")
        if m.max() > 0:
            ax.contour(ua, ub, m, levels=[0.5], colors=["#ff2a2a"], linewidths=1.2)
        ax.set_xlim(extent[0], extent[1])
        ax.set_axis_off()
        ax.set_title(f"{name} ({'xyz'[fixed]} = {centre[fixed]:.0f} mm)", fontsize=8)
        ax.text(0.01, 0.02, left if not flip else "R", transform=ax.transAxes, color="w", fontsize=7)
        ax.text(0.99, 0.02, right if not flip else "L", transform=ax.transAxes, color="w",
                fontsize=7, ha="right")
    if maps:
        from matplotlib.patches import Patch

        handles = [Patch(color=_TISSUE_RGB.get(k, (1, 1, 1)), label=k) for k in maps]
        handles.append(Patch(edgecolor="#ff2a2a", facecolor="none", label="voxel"))
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7,
                   frameon=False)
    if title:
        fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return render_svg(fig)


# --------------------------------------------------------------------------------------
# group figures
# --------------------------------------------------------------------------------------
@_with_rc
def distribution_figure(values: Sequence[float], groups: Sequence[str],
                        excluded: Sequence[bool], *, ylabel: str, title: str = "",
                        salt: str = "dist") -> str:
    """Box plot per group of the included values, every point drawn (jitter seeded).

    Excluded spectra (QC) are drawn as red crosses and left out of the boxes; included
    points beyond 1.5 IQR of their group are circled (outliers).
    """
    v = np.asarray(values, float)
    g = np.asarray([str(x) for x in groups])
    exc = np.asarray(excluded, bool)
    labels = sorted(set(g.tolist()))
    rng = np.random.default_rng(0)
    fig = _figure(3.2 + 0.5 * len(labels), 3.0, salt)
    ax = fig.add_axes((0.2, 0.14, 0.76, 0.74))
    boxes = [v[(g == lab) & ~exc & np.isfinite(v)] for lab in labels]
    ax.boxplot([b if len(b) else [np.nan] for b in boxes], positions=range(len(labels)),
               widths=0.5, showfliers=False, medianprops={"color": "#333333"})
    for i, lab in enumerate(labels):
        sel = (g == lab) & np.isfinite(v)
        xj = i + rng.uniform(-0.15, 0.15, sel.sum())
        vi, ei = v[sel], exc[sel]
        colour = _PALETTE[i % len(_PALETTE)]
        ax.plot(xj[~ei], vi[~ei], ls="none", marker="o", ms=4, alpha=0.8, color=colour)
        if ei.any():
            ax.plot(xj[ei], vi[ei], ls="none", marker="x", ms=6, mew=1.5,
                    color=_COLOURS["rejected"], label="excluded (QC)")
        inc = vi[~ei]
        if len(inc) >= 4:
            q1, q3 = np.percentile(inc, [25, 75])
            out = (~ei) & ((vi < q1 - 1.5 * (q3 - q1)) | (vi > q3 + 1.5 * (q3 - q1)))
            if out.any():
                ax.plot(xj[out], vi[out], ls="none", marker="o", ms=9, mfc="none", mew=1.0,
                        color="#000000", label="outlier (1.5 IQR)")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([f"{lab}\n(n={len(b)})" for lab, b in zip(labels, boxes)], fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    if uniq:
        ax.legend(uniq.values(), uniq.keys(), fontsize=7, frameon=False, loc="best")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return render_svg(fig)


@_with_rc
def group_spectra_figure(ppm: np.ndarray, groups: Mapping[str, Mapping[str, np.ndarray]], *,
                         ppm_range: tuple[float, float] = FIT_RANGE_PPM, title: str = "",
                         salt: str = "groupspec") -> str:
    """Mean ± SD of the spectra (shaded) and mean fit (dashed) per group.

    ``groups[name]`` has ``"mean"``, ``"sd"``, ``"fit_mean"`` (real arrays on ``ppm``) and
    ``"n"`` (a 0-d array).
    """
    sel = _in_range(ppm, *ppm_range)
    order = np.argsort(ppm[sel])
    x = ppm[sel][order]
    fig = _figure(7.5, 3.6, salt)
    ax = fig.add_axes((0.04, 0.13, 0.94, 0.78))
    for i, (name, arr) in enumerate(sorted(groups.items())):
        colour = _PALETTE[i % len(_PALETTE)]
        mean, sd, fm = (np.asarray(arr[k])[sel][order] for k in ("mean", "sd", "fit_mean"))
        xs, m_, s_, f_ = _decimate(x, mean, sd, fm)
        ax.fill_between(xs, m_ - s_, m_ + s_, color=colour, alpha=0.2, lw=0)
        ax.plot(xs, m_, color=colour, lw=0.8, label=f"{name} (n={int(arr['n'])}) mean ± SD")
        ax.plot(xs, f_, color=colour, lw=0.8, ls="--", label=f"{name} mean fit")
    ax.set_xlim(max(ppm_range), min(ppm_range))
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("Chemical shift (ppm)")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return render_svg(fig)


@_with_rc
def qc_scatter_figure(snr: Sequence[float], fwhm_ppm: Sequence[float], included: Sequence[bool],
                      *, min_snr: float | None = None, max_fwhm_ppm: float | None = None,
                      labels: Sequence[str] = (), salt: str = "qcscatter") -> str:
    """SNR against NAA linewidth (ppm) per spectrum, with the QC thresholds as lines."""
    s = np.asarray(snr, float)
    w = np.asarray(fwhm_ppm, float)
    inc = np.asarray(included, bool)
    fig = _figure(5.0, 3.6, salt)
    ax = fig.add_axes((0.13, 0.13, 0.83, 0.8))
    ax.plot(w[inc], s[inc], ls="none", marker="o", ms=5, color=_COLOURS["kept"],
            label="included")
    if (~inc).any():
        ax.plot(w[~inc], s[~inc], ls="none", marker="x", ms=7, mew=1.5,
                color=_COLOURS["rejected"], label="excluded")
    if min_snr is not None:
        ax.axhline(min_snr, color="#555555", ls="--", lw=0.8, label=f"min SNR {min_snr:g}")
    if max_fwhm_ppm is not None:
        ax.axvline(max_fwhm_ppm, color="#555555", ls=":", lw=0.8,
                   label=f"max FWHM {max_fwhm_ppm:g} ppm")
    for xi, yi, lab in zip(w, s, labels):
        if np.isfinite(xi) and np.isfinite(yi) and len(labels) <= 40:
            ax.annotate(lab, (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel("NAA FWHM (ppm)")
    ax.set_ylabel("SNR (NAA)")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return render_svg(fig)
