"""Preprocessing of one metabolite acquisition and its water references (DESIGN.md §4).

Order (Near 2021 consensus): coil combination → eddy-current correction → transient
alignment and outlier rejection → averaging → residual water removal → frequency
referencing → zero-order phasing. The water reference (role ``"conc"``) goes through coil
combination (same weights as the metabolite when it has the same coils), alignment of its
transients on the water peak (4.2–5.1 ppm, no rejection) and averaging, eddy-current
correction, frequency referencing to 4.65 ppm and phasing.

Documented behaviour for awkward inputs:

- ``DIM_EDIT`` → :class:`InputError`; any other tag than ``DIM_COIL``/``DIM_DYN`` of length > 1
  → :class:`InputError` naming the tag; such tags of length 1 are squeezed (noted).
- Non-finite samples: transients (``DIM_DYN`` entries) containing NaN/inf are dropped and
  recorded as rejected; coils that are entirely zero or non-finite are dropped; data without
  ``DIM_DYN`` that contain non-finite samples, or a reference that does, → InputError.
- A reference whose coil count differs from the metabolite's is combined with its own weights
  (noted: water scaling then carries the two combinations' scale difference).
- An eddy-current reference with a different dwell time is not used (ECC skipped, noted);
  one with fewer/more points is used with a linear continuation of its phase (noted in the
  step details).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from bidsmrs.errors import InputError
from bidsmrs.preprocess.align import align_transients
from bidsmrs.preprocess.average import average_transients
from bidsmrs.preprocess.coil_combine import apply_coil_weights, coil_weights
from bidsmrs.preprocess.dims import DIM_COIL, DIM_DYN, DIM_EDIT, SUPPORTED_TAGS, size_of
from bidsmrs.preprocess.eddy_current import eddy_current_correct
from bidsmrs.preprocess.peaks import in_range
from bidsmrs.preprocess.qc import spectral_qc, water_qc
from bidsmrs.preprocess.reference import coarse_reference, phase_metabolite, reference_metabolite, reference_water
from bidsmrs.preprocess.conjugation import conjugate, conjugation_score, is_conjugated
from bidsmrs.preprocess.water_removal import N_COMPONENTS, remove_water
from bidsmrs.spectrum import Spectrum

logger = logging.getLogger(__name__)

ROLES = ("conc", "ecc", "combine")


@dataclass(frozen=True)
class PreprocOptions:
    """Options of :func:`preprocess_run` (defaults follow DESIGN.md §4).

    Parameters
    ----------
    coil_method : {"snr2", "wsvd"}
        Coil combination (see :mod:`bidsmrs.preprocess.coil_combine`; default S/N²).
    eddy_current : bool
        Apply Klose ECC when an ``"ecc"`` (else ``"conc"``) reference exists.
    align : bool
        Spectral registration of transients.
    align_ppm_range : (float, float)
        Registration window (ppm).
    align_iterations : int
        Registration passes against the running median.
    reject_mad : float or None
        Outlier threshold (scaled MADs of the residual); None disables rejection.
    max_shift_hz : float
        Half-width of the coarse frequency search (Hz).
    reference_align_ppm_range : (float, float)
        Registration window (ppm) for the transients of water references (no rejection).
    auto_conjugate : bool
        Detect data stored with the opposite frequency convention (metabolites mirrored about
        the centre frequency, :mod:`bidsmrs.preprocess.conjugation`) and conjugate them and
        their references back, with a note.
    remove_water : bool
        HLSVD removal of residual water (see ``water_removal_min_ratio``).
    water_removal_min_ratio : float
        Remove water only when the largest magnitude in ``water_ppm_range`` exceeds this
        multiple of the largest magnitude in 1.9–2.1 ppm (NAA), i.e. when there is residual
        water to speak of; 0 always removes. Well-suppressed or simulated spectra then keep
        their 4.4–5.0 ppm metabolite signals and the fit baseline is not disturbed (on the ISMRM
        fitting challenge, unconditional removal raised the summed-metabolite error from 3.0 %
        to 3.2 %); in vivo residual water is usually several times NAA (2–25× on the Philips
        example data), so it is removed.
        HLSVD removal of residual water.
    water_ppm_range : (float, float)
        Components removed by HLSVD (ppm).
    small_water_ppm_range : (float, float) or None
        When the water peak is at most ``water_removal_min_ratio`` × NAA, HLSVD components are
        removed only within this narrower window around 4.65 ppm (None: nothing is removed).
        Even residual water of 0.3–1 × NAA biases the fit (its tail under 3.5–4.2 ppm lowered Ins
        by 5 % on simulated spectra), while the wide window disturbed well-suppressed spectra
        (ISMRM challenge datasets 1–10: summed-metabolite error 3.19 % → 3.48 % with the wide
        window always, 3.13 % with this narrow one).
    nuisance_ppm_range : (float, float)
        After water removal, the largest magnitude within this range (ppm) is checked again:
        a peak there that still exceeds ``water_removal_min_ratio`` × the NAA-region peak
        cannot be a metabolite (residual water far off its frequency, a spurious echo or
        another artefact) and would wreck the fit; HLSVD components within
        ± ``nuisance_half_width_ppm`` of it are removed, with a note. ``None`` disables it.
    nuisance_half_width_ppm : float
        Half-width (ppm) of the window removed around such a peak.
    hlsvd_components : int
        HLSVD model order.
    reference_peak : {"auto", "NAA", "Cr", "Cho", "water"}
        Frequency-reference peak.
    figure_ppm_range : (float, float)
        Range (ppm) of the arrays in ``figure_data``.
    figure_max_transients : int
        At most this many transients in ``figure_data`` (evenly subsampled).
    """

    coil_method: str = "snr2"
    eddy_current: bool = True
    align: bool = True
    align_ppm_range: tuple[float, float] = (1.8, 4.2)
    align_iterations: int = 2
    reject_mad: float | None = 3.0
    max_shift_hz: float = 20.0
    reference_align_ppm_range: tuple[float, float] = (4.2, 5.1)
    auto_conjugate: bool = True
    remove_water: bool = True
    water_removal_min_ratio: float = 1.0
    water_ppm_range: tuple[float, float] = (4.4, 5.0)
    small_water_ppm_range: tuple[float, float] | None = (4.5, 4.85)
    nuisance_ppm_range: tuple[float, float] | None = (4.0, 5.5)
    nuisance_half_width_ppm: float = 0.15
    hlsvd_components: int = N_COMPONENTS
    reference_peak: str = "auto"
    figure_ppm_range: tuple[float, float] = (0.2, 4.2)
    figure_max_transients: int = 64

    def __post_init__(self):
        if self.coil_method not in ("snr2", "wsvd"):
            raise ValueError(f"coil_method must be 'snr2' or 'wsvd', not {self.coil_method!r}")
        if self.reference_peak not in ("auto", "NAA", "Cr", "Cho", "water"):
            raise ValueError(f"reference_peak must be auto, NAA, Cr, Cho or water, not {self.reference_peak!r}")
        if self.reject_mad is not None and not self.reject_mad > 0:
            raise ValueError(f"reject_mad must be positive or None, not {self.reject_mad!r}")
        if self.align_iterations < 1:
            raise ValueError("align_iterations must be at least 1")
        for name in ("align_ppm_range", "water_ppm_range", "reference_align_ppm_range", "figure_ppm_range"):
            rng = getattr(self, name)
            if len(rng) != 2 or not rng[0] < rng[1]:
                raise ValueError(f"{name} must be (low, high) in ppm, got {rng!r}")


@dataclass(frozen=True)
class PreprocResult:
    """Output of :func:`preprocess_run`.

    Parameters
    ----------
    metabolite : Spectrum
        1-D processed metabolite spectrum with its history.
    water : Spectrum or None
        1-D processed ``"conc"`` water reference.
    transients : dict
        Per-transient arrays ``freq_shift_hz``, ``phase_deg``, ``rejected``, ``residual_z``
        (empty without ``DIM_DYN``).
    qc : dict
        ``n_transients``, ``n_rejected``; ``freq_drift_hz`` (range of the frequency corrections
        of the accepted transients) and ``phase_drift_deg`` (circular range of their phase
        corrections), both 0 when alignment is off or there is one transient;
        ``residual_water_ratio`` (maximum absolute real part in the water window, 4.4–5.0 ppm,
        of the final phased spectrum divided by its maximum real part in 1.9–2.1 ppm, the NAA
        peak); ``coil_method``, ``n_coils``, ``n_coils_dropped``, ``ecc_applied``,
        ``reference_peak`` (NAA, Cr, Cho or water) and ``notes`` (fallbacks taken, as sentences).
    figure_data : dict
        ``ppm`` (ascending ppm axis restricted to ``figure_ppm_range``), ``before`` and
        ``after`` (real spectra, transients × ppm, before/after alignment, referenced and
        phased like the final spectrum), ``transient_index``, ``rejected``, ``average``.
    """

    metabolite: Spectrum
    water: Spectrum | None
    transients: dict = field(default_factory=dict)
    qc: dict = field(default_factory=dict)
    figure_data: dict = field(default_factory=dict)

    def qc_columns(self) -> dict:
        """The preprocessing QC columns of DESIGN.md §3 (``snr_naa``, ``fwhm_naa_hz``,
        ``fwhm_naa_ppm``, ``fwhm_water_hz``, ``n_transients``, ``n_rejected``, ``freq_drift_hz``,
        ``phase_drift_deg``, ``residual_water_ratio``); NaN where undefined (e.g. no water
        reference). Definitions: :data:`bidsmrs.preprocess.qc.QC_DESCRIPTIONS`."""
        sq = spectral_qc(self.metabolite)
        wq = water_qc(self.water) if self.water is not None else {"fwhm_water_hz": float("nan")}
        return {"snr_naa": sq["snr_naa"], "fwhm_naa_hz": sq["fwhm_naa_hz"], "fwhm_naa_ppm": sq["fwhm_naa_ppm"],
                "fwhm_water_hz": wq["fwhm_water_hz"], "n_transients": self.qc["n_transients"],
                "n_rejected": self.qc["n_rejected"], "freq_drift_hz": self.qc["freq_drift_hz"],
                "phase_drift_deg": self.qc["phase_drift_deg"],
                "residual_water_ratio": self.qc["residual_water_ratio"]}


def _normalise_dims(spec: Spectrum, role: str, notes: list) -> Spectrum:
    """Refuse DIM_EDIT and unknown tags of length > 1; squeeze unknown tags of length 1."""
    if DIM_EDIT in spec.dim_tags:
        raise InputError(f"edited data (DIM_EDIT) are not supported yet ({role}); "
                         "MEGA/HERMES processing is a later milestone")
    fid, tags = spec.fid, spec.dim_tags
    for tag in [t for t in tags if t not in SUPPORTED_TAGS]:
        ax = 1 + tags.index(tag)
        if fid.shape[ax] != 1:
            raise InputError(f"the {role} has a dimension {tag} of length {fid.shape[ax]}, which preprocessing "
                             f"cannot handle (supported: {', '.join(SUPPORTED_TAGS)})")
        fid = np.take(fid, 0, axis=ax)
        tags = tags[: ax - 1] + tags[ax:]
        notes.append(f"{role}: length-1 dimension {tag} ignored")
    if len(set(tags)) != len(tags):
        raise InputError(f"the {role} has repeated dimension tags {tags}")
    if tags != spec.dim_tags:
        spec = spec.replace(fid=fid, dim_tags=tags)
    return spec


def _range(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.max() - a.min()) if a.size else 0.0


def _circular_range_deg(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    if not a.size:
        return 0.0
    centre = np.angle(np.mean(np.exp(1j * np.deg2rad(a))))
    rel = np.rad2deg(np.angle(np.exp(1j * (np.deg2rad(a) - centre))))
    return float(rel.max() - rel.min())


def _water_to_naa_magnitude(spec: Spectrum, water_range) -> float:
    """max |S| in ``water_range`` / max |S| in 1.9–2.1 ppm (phase-independent, before phasing)."""
    ppm = spec.ppm
    mag = np.abs(spec.spectrum())
    w = in_range(ppm, water_range)
    m = in_range(ppm, (1.9, 2.1))
    if not w.any() or not m.any() or not mag[m].max() > 0:
        return float("nan")
    return float(mag[w].max() / mag[m].max())


def _remove_nuisance_peak(met: Spectrum, options: PreprocOptions, notes: list) -> Spectrum:
    """HLSVD removal around a dominant peak left in ``options.nuisance_ppm_range`` (see
    :class:`PreprocOptions`); returns ``met`` unchanged when there is none."""
    ppm = met.ppm
    mag = np.abs(met.spectrum())
    w = in_range(ppm, options.nuisance_ppm_range)
    m = in_range(ppm, (1.9, 2.1))
    if not w.any() or not m.any() or not mag[m].max() > 0:
        return met
    inside = np.flatnonzero(w)
    k = inside[int(np.argmax(mag[w]))]
    if k in (inside[0], inside[-1]) or mag[k] < max(mag[k - 1], mag[k + 1]):
        return met  # the tail of something outside the range (e.g. removed water), not a peak
    ratio = float(mag[k] / mag[m].max())
    if not ratio > options.water_removal_min_ratio:
        return met
    centre = float(ppm[k])
    lo = max(centre - options.nuisance_half_width_ppm, options.nuisance_ppm_range[0])
    window = (lo, centre + options.nuisance_half_width_ppm)
    notes.append(f"a peak at {centre:.2f} ppm, {ratio:.1f} x the NAA-region peak, remained after water "
                 f"removal (not a metabolite); HLSVD components within {window[0]:.2f}-{window[1]:.2f} ppm "
                 "were removed")
    return remove_water(met, window, options.hlsvd_components)


def _residual_water_ratio(spec: Spectrum, water_range) -> float:
    """max |Re S| within ``water_range`` / max Re S within 1.9–2.1 ppm of the final (phased)
    spectrum; the real part is used because the dispersion tails of nearby metabolite peaks
    would dominate a magnitude measure."""
    ppm = spec.ppm
    real = spec.spectrum().real
    w = in_range(ppm, water_range)
    m = in_range(ppm, (1.9, 2.1))
    if not w.any() or not m.any() or not real[m].max() > 0:
        return float("nan")
    return float(np.abs(real[w]).max() / real[m].max())


def _last_params(spec: Spectrum, method: str, key: str, default=0.0):
    for st in reversed(spec.history):
        if st.method == method and key in st.params:
            v = st.params[key]
            return default if v is None else v
    return default


def _figure_data(before: Spectrum | None, after: Spectrum | None, rejected, final: Spectrum,
                 shift_hz: float, phase_deg: float, opts: PreprocOptions) -> dict:
    ppm = final.ppm
    sel = in_range(ppm, opts.figure_ppm_range)
    order = np.argsort(ppm[sel])
    out: dict[str, Any] = {"ppm": ppm[sel][order], "average": final.spectrum().real[sel][order]}
    if before is None or after is None:
        return out
    n_tr = before.fid.shape[1]
    idx = np.unique(np.linspace(0, n_tr - 1, min(n_tr, opts.figure_max_transients)).round().astype(int))
    t = before.time_s[:, None]
    corr = np.exp(2j * np.pi * shift_hz * t + 1j * np.deg2rad(phase_deg))
    for name, s in (("before", before), ("after", after)):
        fid = np.where(np.isfinite(s.fid[:, idx]), s.fid[:, idx], 0) * corr
        sp = np.fft.fftshift(np.fft.fft(fid, axis=0), axes=0).real
        out[name] = sp[sel][order].T
    out["transient_index"] = idx
    out["rejected"] = np.asarray(rejected, bool)[idx]
    return out


def preprocess_run(metabolite: Spectrum, references: Mapping[str, Spectrum] | None = None,
                   options: PreprocOptions = PreprocOptions()) -> PreprocResult:
    """Preprocess one metabolite acquisition and its references.

    Parameters
    ----------
    metabolite : Spectrum
        Raw or partly processed metabolite data (time first; any of ``DIM_COIL``, ``DIM_DYN``).
    references : mapping role → Spectrum
        ``"conc"`` (water for quantification), ``"ecc"`` (eddy-current reference),
        ``"combine"`` (coil-combination reference); any may be missing and one object may
        serve several roles.
    options : PreprocOptions

    Returns
    -------
    PreprocResult
    """
    refs = dict(references or {})
    unknown = set(refs) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown reference role(s) {sorted(unknown)}; known: {ROLES}")
    notes: list[str] = []
    met = _normalise_dims(metabolite, "metabolite data", notes)
    if met.axis_of(DIM_DYN) is None and not np.isfinite(met.fid).all():
        ok = False
        ax = met.axis_of(DIM_COIL)
        if ax is not None:  # acceptable only when confined to entirely non-finite coils (dropped)
            fin = np.isfinite(np.moveaxis(met.fid, ax, -1).reshape(-1, met.fid.shape[ax]))
            ok = bool(fin.all(axis=0).any() and (fin.all(axis=0) | ~fin.any(axis=0)).all())
        if not ok:
            raise InputError("metabolite data contain NaN/inf samples and no DIM_DYN to drop them from")
    # distinct reference objects (one object may serve several roles)
    distinct: dict[int, Spectrum] = {}
    for role, r in refs.items():
        if id(r) not in distinct:
            r2 = _normalise_dims(r, f"'{role}' reference", notes)
            if not np.isfinite(r2.fid).all():
                raise InputError(f"the '{role}' reference contains NaN/inf samples")
            distinct[id(r)] = r2
    # 0. frequency convention: conjugated exports show NAA/Cr/Cho mirrored about the centre
    if options.auto_conjugate and np.isfinite(met.fid).all() and is_conjugated(met):
        score = conjugation_score(met)
        reason = f"NAA/Cr/Cho region mirrored about {met.ppm_centre:g} ppm (score {score:.1f})"
        met = conjugate(met, reason)
        distinct = {k: conjugate(r, "conjugated with the metabolite data") for k, r in distinct.items()}
        notes.append(f"the data were stored conjugated and have been conjugated back: {reason}")

    # 1. coil combination -----------------------------------------------------------------
    n_coils = size_of(met, DIM_COIL)
    cw = None
    if met.axis_of(DIM_COIL) is not None:
        weight_ref = None
        for role in ("combine", "conc", "ecc"):
            r = refs.get(role)
            if r is not None and distinct[id(r)].axis_of(DIM_COIL) is not None \
                    and size_of(distinct[id(r)], DIM_COIL) == n_coils:
                weight_ref = distinct[id(r)]
                break
        if weight_ref is None:
            notes.append("coil weights from the metabolite data (no matching water reference)")
        cw = coil_weights(met, weight_ref, options.coil_method)
        met = apply_coil_weights(met, cw, "metabolite data")
    for key, r in list(distinct.items()):
        if r.axis_of(DIM_COIL) is None:
            continue
        if cw is not None and size_of(r, DIM_COIL) == cw.n_coils:
            distinct[key] = apply_coil_weights(r, cw, "water reference")
        else:
            own = coil_weights(r, None, options.coil_method)
            notes.append("a reference was combined with its own coil weights (coil count differs from the "
                         "metabolite data)")
            distinct[key] = apply_coil_weights(r, own, "water reference")
    # references: align (water window, no rejection) and average their transients
    for key, r in list(distinct.items()):
        if options.align and size_of(r, DIM_DYN) >= 2 and r.dim_tags == (DIM_DYN,):
            r, _ = align_transients(r, options.reference_align_ppm_range, options.align_iterations,
                                    reject_mad=None, max_shift_hz=options.max_shift_hz, role="water reference")
        distinct[key] = average_transients(r, role="water reference")

    # 2. eddy-current correction ----------------------------------------------------------
    ecc_ref = None
    ecc_applied = False
    if options.eddy_current:
        src = refs.get("ecc", refs.get("conc"))
        if src is not None:
            ecc_ref = distinct[id(src)]
            if not np.isclose(ecc_ref.dwell_s, met.dwell_s, rtol=1e-6):
                notes.append(f"eddy-current correction skipped: reference dwell {ecc_ref.dwell_s:g} s differs "
                             f"from the metabolite dwell {met.dwell_s:g} s")
                ecc_ref = None
            else:
                met = eddy_current_correct(met, ecc_ref, "metabolite data")
                ecc_applied = True
    water = distinct[id(refs["conc"])] if "conc" in refs else None
    if water is not None and ecc_ref is not None:
        if np.isclose(ecc_ref.dwell_s, water.dwell_s, rtol=1e-6):
            water = eddy_current_correct(water, ecc_ref, "water reference")
        else:
            notes.append(f"water reference not eddy-current corrected: its dwell {water.dwell_s:g} s differs "
                         f"from the eddy-current reference's {ecc_ref.dwell_s:g} s")

    # 3. alignment, rejection, averaging ---------------------------------------------------
    transients: dict[str, np.ndarray] = {}
    n_tr = size_of(met, DIM_DYN)
    before = after = None
    rejected = np.zeros(n_tr, bool)
    if met.axis_of(DIM_DYN) is not None:
        before = met
        if options.align and n_tr >= 2:
            met, ar = align_transients(met, options.align_ppm_range, options.align_iterations,
                                       options.reject_mad, options.max_shift_hz)
            transients = {k: np.asarray(v) for k, v in ar.as_dict().items()}
            rejected = ar.rejected
        else:
            finite = np.isfinite(met.fid).all(axis=0)
            rejected = ~finite
            transients = {"freq_shift_hz": np.where(finite, 0.0, np.nan),
                          "phase_deg": np.where(finite, 0.0, np.nan),
                          "rejected": rejected.copy(), "residual_z": np.full(n_tr, np.nan)}
        after = met
        met = average_transients(met, rejected, "metabolite data")

    proton = met.nucleus == "1H"
    if not proton:
        notes.append(f"nucleus {met.nucleus}: water removal, frequency referencing and phasing (1H only) skipped")
    # 4. coarse frequency correction (large offsets), then residual water removal -----------
    coarse_hz = 0.0
    if proton and options.reference_peak == "auto":
        shifted = coarse_reference(met)
        coarse_hz = float(shifted.history[-1].params["shift_hz"]) if shifted is not met else 0.0
        met = shifted
    before_water = met
    if options.remove_water and proton:
        ratio = _water_to_naa_magnitude(met, options.water_ppm_range)
        if not ratio <= options.water_removal_min_ratio:  # NaN (no NAA region) also removes
            met = remove_water(met, options.water_ppm_range, options.hlsvd_components)
        elif options.small_water_ppm_range is not None:
            met = remove_water(met, options.small_water_ppm_range, options.hlsvd_components)
            notes.append(f"small residual water ({ratio:.2f} x the NAA-region peak): HLSVD components within "
                         f"{options.small_water_ppm_range[0]:g}-{options.small_water_ppm_range[1]:g} ppm removed")
        else:
            notes.append(f"residual water not removed: its peak is {ratio:.2f} x the NAA-region peak "
                         f"(threshold {options.water_removal_min_ratio:g})")
        if options.nuisance_ppm_range is not None:
            met = _remove_nuisance_peak(met, options, notes)

    # 5. frequency referencing and phasing -------------------------------------------------
    ref_peak, shift, phase0 = None, 0.0, 0.0
    if proton:
        met = reference_metabolite(met, before_water, options.reference_peak)
        ref_peak = _last_params(met, "Frequency and phase correction", "reference_peak", None)
        shift = coarse_hz + float(_last_params(met, "Frequency and phase correction", "shift_hz", 0.0))
        met = phase_metabolite(met)
        phase0 = float(_last_params(met, "Phasing", "phase0_deg", 0.0))
        if water is not None and water.nucleus == "1H":
            water = reference_water(water)

    acc = ~rejected
    fs = transients.get("freq_shift_hz", np.zeros(0))
    ph = transients.get("phase_deg", np.zeros(0))
    qc = {
        "n_transients": int(n_tr),
        "n_rejected": int(rejected.sum()),
        "freq_drift_hz": _range(fs[acc]) if fs.size else 0.0,
        "phase_drift_deg": _circular_range_deg(ph[acc]) if ph.size else 0.0,
        "residual_water_ratio": _residual_water_ratio(met, options.water_ppm_range),
        "coil_method": cw.method if cw is not None else None,
        "n_coils": int(n_coils),
        "n_coils_dropped": len(cw.dropped) if cw is not None else 0,
        "ecc_applied": ecc_applied,
        "reference_peak": ref_peak,
        "notes": list(notes),
    }
    for n_ in notes:
        logger.info("preprocessing: %s", n_)
    fig = _figure_data(before, after, rejected, met, shift, phase0, options)
    return PreprocResult(metabolite=met, water=water, transients=transients, qc=qc, figure_data=fig)


__all__ = ["PreprocOptions", "PreprocResult", "preprocess_run", "ROLES"]
