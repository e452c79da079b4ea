"""Built-in basis simulation: wall time on one core, and agreement with the challenge basis.

Run from the project root::

    .venv/bin/python -m benchmarks.basis_sim [--repeats 3] [--markdown] [--fit]

Times ``simulate_basis`` for the 20 default metabolites (PRESS TE 30 = 11 + 19 ms at
123.26 MHz, 2048 points, 4 kHz: the fitting-challenge grid; PRESS at 3 T Philips grid; STEAM
and semi-LASER at 7 T, 4096 points), BLAS limited to one thread (target ≤ 10 s for PRESS), then
compares the PRESS basis with the challenge's LCModel basis when ``../shared`` is present:
Pearson correlation of the absorption spectra over 0.2–4.2 ppm at the reference's 2 Hz
Lorentzian (without and with one rigid shift ≤ 0.006 ppm) and the area ratio over that range
and over the whole spectrum.
With ``--fit`` it also fits challenge datasets 1–10 with the challenge basis and with the
built-in one (plus the challenge's measured ``Mac``) and prints the bench metrics.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

CASES = {
    "PRESS 30 ms (11/19), 123.26 MHz, 2048 pts": dict(
        sequence="press", spectrometer_mhz=123.261703, dwell_s=2.5e-4, n_points=2048,
        echo_time_s=0.030, te1_s=0.011, te2_s=0.019),
    "PRESS 35 ms (sym.), 127.75 MHz, 2048 pts": dict(
        sequence="press", spectrometer_mhz=127.75, dwell_s=5e-4, n_points=2048,
        echo_time_s=0.035, te1_s=0.0175, te2_s=0.0175),
    "STEAM 11 ms, TM 32 ms, 297.2 MHz, 4096 pts": dict(
        sequence="steam", spectrometer_mhz=297.22, dwell_s=1 / 12004.8, n_points=4096,
        echo_time_s=0.011, mixing_time_s=0.032),
    "sLASER 35 ms, 297.2 MHz, 4096 pts": dict(
        sequence="slaser", spectrometer_mhz=297.22, dwell_s=1 / 12004.8, n_points=4096,
        echo_time_s=0.035),
}
SHAPED = {
    "PRESS 30 ms shaped sinc 5.2 ms/1.2 kHz, 41 pos., 123.26 MHz": dict(
        sequence="press", spectrometer_mhz=123.261703, dwell_s=2.5e-4, n_points=2048,
        echo_time_s=0.030, te1_s=0.011, te2_s=0.019, shape=("sinc", 5.2e-3, 1200.0, 200)),
    "sLASER 35 ms shaped HS1 3.5 ms/5 kHz, 41 pos., 297.2 MHz": dict(
        sequence="slaser", spectrometer_mhz=297.22, dwell_s=1 / 12004.8, n_points=4096,
        echo_time_s=0.035, shape=("hs1", 3.5e-3, 5000.0, 200)),
}
ALIAS = {"PCh": "PCho", "sI": "sIns"}


def _area(fid, dwell, sel, fwhm_hz=4.0):
    t = np.arange(fid.size) * dwell
    f = fid * np.exp(-(np.pi * fwhm_hz * t) ** 2 / (4 * np.log(2)))
    f[0] *= 0.5
    return 2 * np.fft.fftshift(np.fft.fft(f))[sel].real.sum() / fid.size


def compare_with_challenge(basis, challenge_dir: Path
                           ) -> list[tuple[str, float, float, float, float]]:
    """Per metabolite: (name, corr without shift, best corr with a shift <= 0.006 ppm,
    area ratio over 0.2-4.2 ppm, area ratio over the whole spectrum).

    The whole-spectrum ratio (= FID(0) ratio) separates true amplitude differences from a
    multiplet that merely sits on the other side of the 4.2 ppm window edge (PCh OCH2).
    """
    from bidsmrs.io.basis_files import load_basis

    ref = load_basis(challenge_dir)
    t = np.arange(basis.n_points) * basis.dwell_s
    sel = (basis.ppm >= 0.2) & (basis.ppm <= 4.2)
    rows = []
    for name in basis.names:
        x = basis.fids[:, basis.index(name)] * np.exp(-np.pi * 2.0 * t)
        y = ref.fids[:, ref.index(ALIAS.get(name, name))]
        ys = np.fft.fftshift(np.fft.fft(y))[sel].real
        corr0, best = None, -1.0
        for sh in np.linspace(-0.006, 0.006, 25):
            xs = np.fft.fftshift(np.fft.fft(
                x * np.exp(-2j * np.pi * sh * basis.spectrometer_mhz * t)))[sel].real
            c = float(np.corrcoef(xs, ys)[0, 1])
            best = max(best, c)
            if abs(sh) < 1e-12:
                corr0 = c
        every = np.ones(basis.n_points, bool)
        rows.append((name, corr0, best, _area(x, basis.dwell_s, sel) / _area(y, basis.dwell_s, sel),
                     _area(x, basis.dwell_s, every) / _area(y, basis.dwell_s, every)))
    return rows


def fit_challenge_with_builtin(shared: Path) -> dict[str, dict[str, float]]:
    """Challenge datasets 1–10 fitted with the challenge basis and with the built-in PRESS
    basis (+ the challenge's measured ``Mac``, since the data contain it): bench metrics."""
    import dataclasses

    from benchmarks.challenge import (challenge_dir, creatine_test, estimates_table,
                                      load_challenge_basis, load_dataset, metrics, read_table)
    from bidsmrs.basis.sequences import simulate_basis
    from bidsmrs.fitting import FitOptions, fit_spectrum, fit_water

    ref = load_challenge_basis(shared)
    ren = {"PCh": "PCho", "sI": "sIns"}
    sim = simulate_basis(sequence="press", spectrometer_mhz=ref.spectrometer_mhz,
                         dwell_s=ref.dwell_s, n_points=ref.n_points, echo_time_s=0.03,
                         te1_s=0.011, te2_s=0.019,
                         metabolites=[n for n in CHALLENGE_METABOLITES])
    names = tuple(ren.get(n, n) for n in sim.names)
    builtin = dataclasses.replace(
        sim, names=names + ("Mac",),
        fids=np.concatenate([sim.fids, ref.fids[:, [ref.index("Mac")]]], 1),
        is_macromolecule=(False,) * len(names) + (True,))
    truth = read_table(shared / "bench" / "challenge_truth_datasets_1-10.csv")
    out = {}
    for label, basis in (("challenge basis", ref), ("built-in + challenge Mac", builtin)):
        est: dict[str, dict[int, float]] = {}
        for d in range(1, 11):
            met, wat = load_dataset(challenge_dir(shared) / "datasets_text" / f"dataset{d}.txt")
            fit = fit_spectrum(met, basis, FitOptions())
            for n, v in estimates_table(fit, fit_water(wat).amplitude).items():
                est.setdefault(n, {})[d] = v
        m = metrics(est, truth, list(range(1, 11)))
        m["creatine_test_mM"] = creatine_test(shared, basis)
        out[label] = {k: float(v) for k, v in m.items()}
    return out


CHALLENGE_METABOLITES = ("Ala", "Asp", "Asc", "Cr", "GABA", "Glc", "Gln", "Glu", "Gly", "GPC",
                         "GSH", "Ins", "sI", "Lac", "PCr", "PCh", "PE", "NAA", "NAAG", "Tau")


def main(argv=None) -> int:
    from bidsmrs.basis.sequences import simulate_basis

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--fit", action="store_true",
                   help="also fit challenge datasets 1-10 with the built-in basis (~1 min)")
    a = p.parse_args(argv)
    machine = platform.processor() or platform.machine()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine}, "
          f"python {platform.python_version()}, numpy {np.__version__}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}")
    print("| case | median s | min s |\n|---|---|---|" if a.markdown else "")
    press = None
    for label, kw in CASES.items():
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            b = simulate_basis(**kw)
            times.append(time.perf_counter() - t0)
        if press is None:
            press = b
        line = f"| {label} | {np.median(times):.2f} | {min(times):.2f} |"
        print(line if a.markdown else line.replace("|", " ").strip())
    from bidsmrs.basis.sequences import PulseShape

    for label, kw in SHAPED.items():
        kw = dict(kw)
        shape = PulseShape(*kw.pop("shape"))
        t0 = time.perf_counter()
        simulate_basis(**kw, refocusing=shape, n_positions=41)
        line = f"| {label} | {time.perf_counter() - t0:.2f} | (1 run) |"
        print(line if a.markdown else line.replace("|", " ").strip())
    root = Path(__file__).resolve().parents[1]
    challenge = root.parent / "shared" / "data" / "mrs_fitting_challenge" / "basisset_LCModel"
    if not challenge.is_dir():
        print(f"{challenge}: not found, skipping the comparison", file=sys.stderr)
        return 0
    print("\n| metabolite | corr (no shift) | corr (best shift ≤ 0.006 ppm) | area ratio 0.2–4.2 ppm "
          "| area ratio whole spectrum |")
    print("|---|---|---|---|---|")
    for name, c0, c1, r, r_all in compare_with_challenge(press, challenge):
        print(f"| {name} | {c0:.4f} | {c1:.4f} | {r:.3f} | {r_all:.3f} |")
    if a.fit:
        res = fit_challenge_with_builtin(root.parent / "shared")
        keys = list(next(iter(res.values())))
        print("\n| basis | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for label, m in res.items():
            print(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
