"""Benchmark: preprocessing of 32 coils × 64 transients × 2048 points on one core.

Usage::

    python benchmarks/preprocess_speed.py [--repeats 3] [--write benchmarks/RESULTS_preprocess.md]

Single-threaded BLAS/FFT (the BIDS-App default, ``--omp-nthreads 1``) is enforced through the
environment before numpy is imported. Target: ≤ 2 s per run.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bidsmrs.preprocess import preprocess_run, spectral_qc  # noqa: E402
from tests.mrs_simulator import simulate_raw  # noqa: E402


def run(repeats: int) -> dict:
    raw = simulate_raw(0, n_coils=32, n_dyn=64, n_points=2048, noise_sd=2.0, n_corrupt=3)
    refs = {"conc": raw.water}
    preprocess_run(raw.metabolite, refs)  # warm-up (imports, FFT plans)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = preprocess_run(raw.metabolite, refs)
        times.append(time.perf_counter() - t0)
    q = spectral_qc(res.metabolite)
    return {"times": times, "n_rejected": res.qc["n_rejected"], "snr_naa": q["snr_naa"],
            "shape": raw.metabolite.fid.shape}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", type=Path, default=None, help="append a results section to this markdown file")
    args = ap.parse_args(argv)
    r = run(args.repeats)
    best, med = min(r["times"]), float(np.median(r["times"]))
    lines = [
        f"## {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"- command: `python benchmarks/preprocess_speed.py --repeats {args.repeats}` (OMP/OpenBLAS threads = 1)",
        f"- machine: {platform.machine()}, {platform.processor() or 'cpu n/a'}, {os.cpu_count()} logical cores "
        f"(shared; load average {os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, numpy {np.__version__}, {platform.system()} {platform.release()}",
        f"- data: {r['shape'][0]} points × {r['shape'][1]} coils × {r['shape'][2]} transients "
        f"(tests/mrs_simulator.py, seed 0), conc reference 32 coils × 2",
        f"- preprocess_run wall time: best {best:.3f} s, median {med:.3f} s over {args.repeats} runs "
        f"(target ≤ 2 s)",
        f"- result: {r['n_rejected']} transients rejected (3 simulated corrupted), SNR_NAA {r['snr_naa']:.0f}",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        header = "# Preprocessing speed (benchmarks/preprocess_speed.py)\n\n"
        old = args.write.read_text() if args.write.exists() else header
        args.write.write_text(old + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
