"""ISMRM MRS fitting challenge benchmark (datasets 1–10, truth in ``/work/shared/bench``).

Run from the project root::

    .venv/bin/python -m benchmarks.challenge [--shared /work/shared] [--datasets 1-10] [--bootstrap N] [--floor]

Loads the challenge text data (4 columns: re/im metabolite FID, re/im water FID; 2048 points,
4000 Hz, 123.2 MHz, PRESS TE 30 ms; stored convention checked: NAA appears at 2.008 ppm without
conjugation), fits with the challenge basis, scales to water with the challenge convention
(DESIGN.md §6.2) and prints per-metabolite errors and the metrics of ``bench/README.md`` next
to FSL-MRS 2.4.8's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bidsmrs.basis.core import Basis
from bidsmrs.spectrum import Spectrum, to_spectrum

CHALLENGE_SF_MHZ = 123.2
CHALLENGE_DWELL_S = 1.0 / 4000.0
CHALLENGE_TE_S = 0.030

#: Challenge water-scaling constants (challenge README; DESIGN.md §6.2): GM/WM 0.6/0.4, water
#: contents 0.78/0.65, water T2 110/80 ms, metabolite T2 160 ms, TR ≫ T1, 2 water protons.
WATER_ATTENUATION = 0.6 * 0.78 * np.exp(-30 / 110) + 0.4 * 0.65 * np.exp(-30 / 80)
METABOLITE_ATTENUATION = np.exp(-30 / 160)
PURE_WATER_MM = 55.51e3

#: The sums of the truth table and the individual metabolites left out of the "all" metrics.
SUMS = {"NAA+NAAG": ("NAA", "NAAG"), "Cr+PCr": ("Cr", "PCr"), "Glu+Gln": ("Glu", "Gln"),
        "Ins+Gly": ("Ins", "Gly"), "GPC+PCho": ("GPC", "PCho"), "Glc+Tau": ("Glc", "Tau")}
HIGH = ("NAA+NAAG", "Cr+PCr", "Glu+Gln", "Ins+Gly", "GPC+PCho")
EXCLUDED_FROM_ALL = ("Cr", "PCr", "PCho", "GPC")


def default_shared() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared"


def challenge_dir(shared: Path) -> Path:
    return shared / "data" / "mrs_fitting_challenge"


def remove_reference_peak(fid: np.ndarray, dwell_s: float, sf_mhz: float, ppm_centre: float = 4.65,
                          window_ppm: float = 0.25) -> np.ndarray:
    """Remove the 0 ppm reference singlet carried by the challenge basis spectra.

    The singlet (FID amplitude ≈ 0.1, i.e. its area is 0.1 protons) is modelled as one
    damped complex exponential at 0 ppm; its amplitude and damping are estimated by
    least squares in the frequency domain over ±``window_ppm`` around 0 ppm.
    """
    from scipy.optimize import least_squares

    n = fid.size
    t = np.arange(n) * dwell_s
    f0 = ppm_centre * sf_mhz
    spec = to_spectrum(fid)
    ppm = ppm_centre - np.fft.fftshift(np.fft.fftfreq(n, dwell_s)) / sf_mhz
    m = np.abs(ppm) < window_ppm

    def model(p):
        a = p[0] + 1j * p[1]
        return a * np.exp((-np.pi * p[2] + 2j * np.pi * (f0 + p[3])) * t)

    def resid(p):
        r = spec[m] - to_spectrum(model(p))[m]
        return np.concatenate([r.real, r.imag])

    fit = least_squares(resid, [0.1, 0.0, 3.0, 0.0], bounds=([-10, -10, 0, -5], [10, 10, 50, 5]))
    return fid - model(fit.x)


def load_challenge_basis_text(shared: Path, remove_reference: bool = True) -> Basis:
    """The challenge basis from ``basisset_text/*.txt`` (private loader until
    :func:`bidsmrs.io.basis_files.load_basis` is used)."""
    folder = challenge_dir(shared) / "basisset_text"
    names, fids = [], []
    for path in sorted(folder.glob("*.txt")):
        x = np.loadtxt(path)
        fid = x[:, 0] + 1j * x[:, 1]
        if remove_reference:
            fid = remove_reference_peak(fid, CHALLENGE_DWELL_S, CHALLENGE_SF_MHZ)
        names.append(path.stem)
        fids.append(fid)
    return Basis(names=tuple(names), fids=np.stack(fids, 1), dwell_s=CHALLENGE_DWELL_S,
                 spectrometer_mhz=CHALLENGE_SF_MHZ, meta={"source": str(folder)})


def load_challenge_basis(shared: Path) -> Basis:
    """The challenge basis (``basisset_LCModel/press3T_30ms.BASIS``) through
    :func:`bidsmrs.io.basis_files.load_basis` (which checks the conjugation and removes the 0 ppm
    reference singlet); the private text loader is the fallback when that reader is missing."""
    try:
        from bidsmrs.io.basis_files import load_basis
    except ImportError:  # pragma: no cover - only before the reader existed
        return load_challenge_basis_text(shared)
    return load_basis(challenge_dir(shared) / "basisset_LCModel" / "press3T_30ms.BASIS")


def load_dataset(path: Path) -> tuple[Spectrum, Spectrum]:
    """Metabolite and water spectra of one challenge text dataset."""
    x = np.loadtxt(path)
    kw = dict(dwell_s=CHALLENGE_DWELL_S, spectrometer_mhz=CHALLENGE_SF_MHZ, echo_time_s=CHALLENGE_TE_S,
              repetition_time_s=None)
    met = Spectrum(fid=x[:, 0] + 1j * x[:, 1], **kw)
    wat = Spectrum(fid=x[:, 2] + 1j * x[:, 3], **kw)
    return met, wat


def to_mm(amplitude: float, water_amplitude: float) -> float:
    """Challenge water scaling (DESIGN.md §6.2, f_CSF = 0): basis units → mM."""
    return amplitude / water_amplitude * 2.0 * WATER_ATTENUATION / METABOLITE_ATTENUATION * PURE_WATER_MM


def read_table(path: Path) -> dict[str, dict[int, float]]:
    import pandas as pd

    df = pd.read_csv(path, index_col=0)
    out = {}
    for name, row in df.iterrows():
        out[str(name)] = {int(k): float(v) for k, v in row.items() if np.isfinite(v)}
    return out


def estimates_table(fit, water_amp: float) -> dict[str, float]:
    est = {n: to_mm(fit.amplitude(n), water_amp) for n in fit.names}
    for s, parts in SUMS.items():
        if all(p in est for p in parts):
            est[s] = sum(est[p] for p in parts)
    return est


def metrics(est: dict[str, dict[int, float]], truth: dict[str, dict[int, float]], datasets) -> dict[str, float]:
    """The bench/README.md metrics: mean and median |error| (mM) and |percent| for ``all``
    (every metabolite and sum except Cr, PCr, PCho, GPC) and ``high`` (the five sums)."""
    def collect(names):
        mm, per = [], []
        for name in names:
            for d in datasets:
                if name not in truth or d not in truth[name] or name not in est or d not in est[name]:
                    continue
                tv, ev = truth[name][d], est[name][d]
                mm.append(abs(ev - tv))
                if tv != 0:
                    per.append(100 * abs(ev - tv) / tv)
        return np.array(mm), np.array(per)

    all_names = [n for n in truth if n not in EXCLUDED_FROM_ALL and n != "lipids"]
    mm_all, per_all = collect(all_names)
    mm_high, per_high = collect(HIGH)
    return {"mm_all": mm_all.mean(), "per_all": per_all.mean(), "mm_high": mm_high.mean(),
            "per_high": per_high.mean(), "median_per_high": np.median(per_high),
            "median_per_all": np.median(per_all), "median_mm_all": np.median(mm_all)}


def creatine_test(shared: Path, basis: Basis, options=None) -> float:
    """Cr concentration (mM) of ``Cr_10mM_test_water_scaling`` (expected 10.8 ± 0.2, DESIGN.md §6.2)."""
    from bidsmrs.fitting import FitOptions, fit_spectrum, fit_water

    met, wat = load_dataset(challenge_dir(shared) / "Cr_water_scaling_text" / "Cr_10mM_test_water_scaling.txt")
    fit = fit_spectrum(met, basis.subset(["Cr"]), options or FitOptions())
    return to_mm(fit.amplitude("Cr"), fit_water(wat).amplitude)


def run(shared: Path, datasets=range(1, 11), options=None, verbose=True):
    from bidsmrs.fitting import FitOptions, fit_spectrum, fit_water

    options = options or FitOptions()
    basis = load_challenge_basis(shared)
    truth = read_table(shared / "bench" / "challenge_truth_datasets_1-10.csv")
    fsl = read_table(shared / "bench" / "fslmrs_2.4.8_newton_datasets_1-10.csv")
    est: dict[str, dict[int, float]] = {}
    times = []
    for d in datasets:
        met, wat = load_dataset(challenge_dir(shared) / "datasets_text" / f"dataset{d}.txt")
        t0 = time.perf_counter()
        fit = fit_spectrum(met, basis, options)
        times.append(time.perf_counter() - t0)
        w = fit_water(wat)
        for name, v in estimates_table(fit, w.amplitude).items():
            est.setdefault(name, {})[d] = v
    ours = metrics(est, truth, list(datasets))
    theirs = metrics(fsl, truth, list(datasets))
    cr = creatine_test(shared, basis, options)
    if verbose:
        names = [n for n in truth if n in est]
        print("metabolite  " + " ".join(f"{d:>7d}" for d in datasets) + "   (estimate − truth, mM)")
        for n in names:
            print(f"{n:<11s} " + " ".join(f"{est[n][d] - truth[n].get(d, np.nan):7.3f}" for d in datasets))
        print()
        print(f"{'metric':<18s}{'bidsmrs':>10s}{'FSL-MRS':>10s}")
        for k in ours:
            print(f"{k:<18s}{ours[k]:10.3f}{theirs[k]:10.3f}")
        print(f"\ncreatine test: {cr:.3f} mM (expected 10.8 ± 0.2)")
        print(f"fit time per dataset: median {np.median(times):.3f} s")
    return ours, theirs, cr, est


def noise_floor(shared: Path, datasets=range(1, 11), repeats: int = 10, options=None, verbose=True):
    """Parametric bootstrap of the ``high`` metrics: what the fitter scores on data that the
    model describes exactly, at each dataset's own noise level.

    For each dataset the fitted model (phase restored) plus fresh complex white noise of the
    estimated SD is refitted; the "truth" is the first fit. The mean over ``repeats`` is the
    expected score from noise alone (the Cramér–Rao floor of this model on these spectra).
    """
    from bidsmrs.fitting import FitOptions, fit_spectrum, fit_water
    from bidsmrs.spectrum import to_fid

    options = options or FitOptions()
    basis = load_challenge_basis(shared)
    items = []
    for d in datasets:
        met, wat = load_dataset(challenge_dir(shared) / "datasets_text" / f"dataset{d}.txt")
        fit = fit_spectrum(met, basis, options)
        p = fit.params
        phase = np.exp(1j * np.deg2rad(p["phase0_deg"] + p["phase1_deg_per_ppm"] * (fit.ppm - p["phase1_reference_ppm"])))
        items.append((d, met, to_fid(fit.fit * phase), fit, fit_water(wat).amplitude))
    scores = []
    for rep in range(repeats):
        est: dict[str, dict[int, float]] = {}
        ref: dict[str, dict[int, float]] = {}
        for d, met, clean, fit, wamp in items:
            rng = np.random.default_rng(1000 * rep + d)
            sd = fit.noise_sd / np.sqrt(met.n_points)
            noisy = met.replace(fid=clean + sd * (rng.standard_normal(clean.size) + 1j * rng.standard_normal(clean.size)))
            for name, v in estimates_table(fit_spectrum(noisy, basis, options), wamp).items():
                est.setdefault(name, {})[d] = v
            for name, v in estimates_table(fit, wamp).items():
                ref.setdefault(name, {})[d] = v
        m = metrics(est, ref, list(datasets))
        scores.append(m)
        if verbose:
            print(f"bootstrap {rep}: mm_high {m['mm_high']:.3f} per_high {m['per_high']:.3f}", flush=True)
    out = {k: float(np.mean([s[k] for s in scores])) for k in ("mm_high", "per_high", "median_per_high")}
    if verbose:
        print(f"noise floor (mean of {repeats}): " + ", ".join(f"{k} {v:.3f}" for k, v in out.items()))
    return out


def expected_error_floor(shared: Path, datasets=range(1, 11), options=None, verbose=True) -> dict:
    """Expected metrics of an unbiased estimator from the Cramér–Rao bounds, two ways.

    ``oracle``: only the amplitudes and a complex-constant baseline are unknown; every
    non-linear parameter (phases, shifts, widths) is taken as known at the fitted values, i.e.
    the linear-model bound ``σ²·(XᵀX)⁻¹`` with ``X`` the unit-amplitude fitted components
    (real and imaginary parts stacked). ``full``: the fitter's own CRLBs (full model).
    For a Gaussian error of SD σ the expected |error| is ``σ·√(2/π)``; the metrics are then
    averaged like :func:`metrics` (non-negativity, which can only help low-concentration
    metabolites, is ignored). Amplitudes fitted as 0 are left out of the oracle design.
    """
    from bidsmrs.fitting import FitOptions, fit_spectrum, fit_water

    options = options or FitOptions()
    basis = load_challenge_basis(shared)
    truth = read_table(shared / "bench" / "challenge_truth_datasets_1-10.csv")
    names_all = [n for n in truth if n not in EXCLUDED_FROM_ALL and n != "lipids"]
    acc = {k: {"mm": [], "per": [], "high": []} for k in ("oracle", "full")}
    k_mean_abs = np.sqrt(2 / np.pi)
    for d in datasets:
        met, wat = load_dataset(challenge_dir(shared) / "datasets_text" / f"dataset{d}.txt")
        fit = fit_spectrum(met, basis, options)
        wamp = fit_water(wat).amplitude
        m = fit.in_range()
        keep = fit.amplitudes > 0
        a = fit.components[m][:, keep] / fit.amplitudes[keep]
        names = [n for n, k in zip(fit.names, keep) if k]
        x = np.vstack([a.real, a.imag])
        const = np.zeros((x.shape[0], 2))
        const[:a.shape[0], 0] = const[a.shape[0]:, 1] = 1.0
        x = np.hstack([x, const])
        cov_oracle = np.linalg.inv(x.T @ x) * fit.noise_sd ** 2
        for name in names_all:
            if d not in truth[name]:
                continue
            parts = SUMS.get(name, (name,))
            w = np.zeros(x.shape[1])
            for part in parts:
                if part in names:
                    w[names.index(part)] = 1.0
            idx = [fit.names.index(part) for part in parts if part in fit.names]
            if not idx:
                continue
            sd = {"oracle": np.sqrt(w @ cov_oracle @ w),
                  "full": np.sqrt(fit.covariance[np.ix_(idx, idx)].sum())}
            tv = truth[name][d]
            for key, v in sd.items():
                e = k_mean_abs * to_mm(v, wamp)
                acc[key]["mm"].append(e)
                if tv != 0:
                    acc[key]["per"].append(100 * e / tv)
                    if name in HIGH:
                        acc[key]["high"].append(100 * e / tv)
    out = {k: {"mm_all": float(np.mean(v["mm"])), "per_all": float(np.mean(v["per"])),
               "per_high": float(np.mean(v["high"]))} for k, v in acc.items()}
    if verbose:
        print(f"\nexpected error of an unbiased estimator (Cramér–Rao), datasets {list(datasets)}:")
        for k, v in out.items():
            print(f"  {k:<7s} mm_all {v['mm_all']:.3f} mM  per_all {v['per_all']:.1f} %  per_high {v['per_high']:.2f} %")
    return out


def _parse_range(text: str):
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(v) for v in text.split(",")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=default_shared())
    p.add_argument("--datasets", default="1-10")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N",
                   help="also estimate the noise floor of the 'high' metrics with N bootstrap repeats")
    p.add_argument("--floor", action="store_true",
                   help="also print the expected metrics of an unbiased estimator (Cramér–Rao bounds)")
    a = p.parse_args(argv)
    if not (a.shared / "bench").is_dir():
        print(f"{a.shared}: no challenge data/truth found", file=sys.stderr)
        return 2
    ds = _parse_range(a.datasets)
    if any(d > 10 for d in ds):
        print("truth exists for datasets 1-10 only", file=sys.stderr)
        return 2
    run(a.shared, ds)
    if a.bootstrap:
        noise_floor(a.shared, ds, a.bootstrap)
    if a.floor:
        expected_error_floor(a.shared, ds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
