"""Wall time of one linear-combination fit on one core.

Run from the project root::

    .venv/bin/python -m benchmarks.fit_speed [--repeats 20]

Fits challenge dataset 1 with the full challenge basis (21 spectra incl. the measured
macromolecules), default options (spline baseline with automatic smoothness, per-metabolite
shifts, CRLB), BLAS limited to one thread, and prints the median wall and CPU time (target
≤ 0.2 s). The basis comes from the LCModel ``.BASIS`` file (123.26 MHz), so every fit includes
resampling it to the data's 123.2 MHz grid. On a shared machine the CPU time is the steadier
number.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    from benchmarks.challenge import challenge_dir, default_shared, load_challenge_basis, load_dataset
    from bidsmrs.fitting import FitOptions, fit_spectrum, fit_water

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--dataset", type=int, default=1)
    a = p.parse_args(argv)
    shared = default_shared()
    path = challenge_dir(shared) / "datasets_text" / f"dataset{a.dataset}.txt"
    if not path.exists():
        print(f"{path}: not found", file=sys.stderr)
        return 2
    basis = load_challenge_basis(shared)
    met, wat = load_dataset(path)
    opts = FitOptions()
    fit_spectrum(met, basis, opts)  # warm-up (imports, caches)
    times, cpu, wtimes = [], [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fit = fit_spectrum(met, basis, opts)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        fit_water(wat)
        wtimes.append(time.perf_counter() - t0)
    print(f"fit_spectrum: median {np.median(times):.3f} s (min {np.min(times):.3f}, max {np.max(times):.3f}) "
          f"over {a.repeats} runs; CPU median {np.median(cpu):.3f} s; "
          f"{fit.params['n_function_evals']} model evaluations")
    print(f"fit_water:    median {np.median(wtimes):.4f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
