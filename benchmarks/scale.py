"""Participant level at scale: wall time, speed-up, peak RSS per worker, no-op rerun.

Run from the project root::

    .venv/bin/python -m benchmarks.scale [--participants 100] [--nprocs 1 2] [--markdown]

Writes a synthetic dataset of N participants (``tests.bidsfixtures.make_bids_dataset``) whose
metabolite signal is a realistic brain spectrum — the built-in simulated PRESS TE 35 ms basis
at 3 T combined with typical concentrations (``bidsmrs.demo.TYPICAL_MM``), macromolecules,
Voigt lines — 2048 points, 32 transients of seeded noise, and a water reference. Then, for each
``--nprocs`` value, runs::

    python -m bidsmrs BIDS OUT participant --skip-bids-validation --no-report \
        --tissue-fractions 0.6 0.4 0 --nprocs N -w WORK

into a fresh OUT (no segmentation; ``--report`` keeps the HTML reports) and records the wall
time, the peak RSS of every process in the tree (psutil, polled every 0.1 s) and
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (largest descendant). Finally it reruns the last
configuration on its finished output (a no-op: every run skipped) and times that. The basis
cache (``$BIDSMRS_CACHE``, default a fresh directory) is warmed while the dataset is written, so
the timings are the steady state. The concentrations/QC/tissue tables of all configurations are
compared byte for byte.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
SF_MHZ, DWELL_S, N_POINTS, TE_S = 127.74, 1 / 2000.0, 2048, 0.035


def write_dataset(root: Path, n: int, cache: Path, seed: int = 7):
    """The synthetic N-participant dataset (see module docstring)."""
    sys.path.insert(0, str(PROJECT))
    from bidsmrs.basis.select import default_basis
    from bidsmrs.demo import TYPICAL_MM
    from bidsmrs.simulate import combine_basis, peak_fid
    from tests.bidsfixtures import make_bids_dataset

    basis = default_basis(spectrometer_mhz=SF_MHZ, dwell_s=DWELL_S, n_points=N_POINTS, echo_time_s=TE_S,
                          sequence="press", cache_dir=cache)
    amps = {m: v for m, v in TYPICAL_MM.items() if m in basis.names}
    cr = amps.get("Cr", 0.0) + amps.get("PCr", 0.0)
    for name, is_mm in zip(basis.names, basis.is_macromolecule):
        if is_mm:
            amps[name] = 0.15 * cr
    met = combine_basis(basis, amps, lorentz_hz=3.0, gauss_hz=4.0, mm_lorentz_hz=18.0)
    scale = 1.0 / abs(met[0])
    met = met * scale
    # water: 2 protons × 55.51 M × water content ~0.73 × relaxation ~0.7, in the same units
    water = peak_fid(N_POINTS, DWELL_S, SF_MHZ, 4.65, amplitude=5.7e4 * scale, lorentz_hz=4.0, gauss_hz=4.0)
    rng = np.random.default_rng(seed)
    subjects = tuple(f"{i:03d}" for i in range(1, n + 1))
    return make_bids_dataset(root, subjects=subjects, n_points=N_POINTS, dwell_s=DWELL_S, sf_mhz=SF_MHZ,
                             te_s=TE_S, tr_s=2.0, n_transients=32, noise_sd=0.03, seed=seed,
                             svs_fid=met, ref_fid=water, amplitude_scale={s: float(rng.uniform(0.9, 1.1))
                                                                          for s in subjects})


class TreeMonitor:
    """Peak RSS (bytes) of every process in the tree of ``pid``, polled in a thread."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        try:
            import psutil
        except ImportError:
            return
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    role = "main" if p.pid == self.pid else "worker"
                except psutil.Error:
                    continue
                if rss > self.peak.get(p.pid, ("", 0))[1]:
                    self.peak[p.pid] = (role, rss)
            self._stop.wait(self.interval)


def run_bidsmrs(bids: Path, out: Path, work: Path, nprocs: int, env: dict, report: bool, label: str) -> dict:
    cmd = [sys.executable, "-m", "bidsmrs", str(bids), str(out), "participant", "--skip-bids-validation",
           "--tissue-fractions", "0.6", "0.4", "0", "--nprocs", str(nprocs), "-w", str(work)]
    if not report:
        cmd.append("--no-report")
    t0 = time.perf_counter()
    with open(out.parent / f"{label}.stderr", "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=str(PROJECT))
        with TreeMonitor(proc.pid) as mon:
            code = proc.wait()
    wall = time.perf_counter() - t0
    workers = [rss for role, rss in mon.peak.values() if role == "worker"]
    main = [rss for role, rss in mon.peak.values() if role == "main"]
    return {"cmd": cmd, "code": code, "wall_s": wall, "main_rss": max(main, default=0),
            "worker_rss": max(workers, default=0), "n_workers_seen": len(workers)}


def tables(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*_desc-*_svs.tsv"))
            if any(f"_desc-{d}_" in p.name for d in ("concentrations", "qc", "tissue"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one, removed)")
    ap.add_argument("--report", action="store_true", help="also write the HTML reports")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown results block")
    a = ap.parse_args(argv)

    scratch = Path(a.dir or tempfile.mkdtemp(prefix="bidsmrs-scale-")).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("BIDSMRS_CACHE") or scratch / "cache")
    env = {**os.environ, "BIDSMRS_CACHE": str(cache), "PYTHONPATH": str(PROJECT)}
    t0 = time.perf_counter()
    ds = write_dataset(scratch / "bids", a.participants, cache)
    t_write = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in ds.root.rglob("*") if p.is_file())
    print(f"dataset: {a.participants} participants, {size / 1e6:.1f} MB, written in {t_write:.1f} s",
          file=sys.stderr)

    results, ref_tables = [], None
    for n in a.nprocs:
        out, work = scratch / f"out-n{n}", scratch / f"work-n{n}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        r = run_bidsmrs(ds.root, out, work, n, env, a.report, f"run-n{n}")
        t = tables(out)
        r["n_tables"] = len(t)
        r["identical"] = None if ref_tables is None else (t == ref_tables)
        ref_tables = ref_tables or t
        results.append((n, r))
        print(f"--nprocs {n}: exit {r['code']}, {r['wall_s']:.1f} s, {r['wall_s'] / a.participants:.2f} s/participant, "
              f"peak RSS main {r['main_rss'] / 2**20:.0f} MiB, worker {r['worker_rss'] / 2**20:.0f} MiB, "
              f"{r['n_tables']} tables, identical to first: {r['identical']}", file=sys.stderr)
    children_maxrss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n_last = a.nprocs[-1]
    rerun = run_bidsmrs(ds.root, scratch / f"out-n{n_last}", scratch / f"work-n{n_last}", n_last, env, a.report,
                        f"rerun-n{n_last}")
    log_text = (scratch / f"rerun-n{n_last}.stderr").read_text()
    skipped_line = next((ln for ln in log_text.splitlines() if "participant level finished" in ln), "")
    print(f"no-op rerun (--nprocs {n_last}): exit {rerun['code']}, {rerun['wall_s']:.1f} s; {skipped_line}",
          file=sys.stderr)

    base = dict(results).get(1)
    if a.markdown:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        uname = (subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
                 or " ".join(platform.uname()))
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or os.cpu_count()
        print(f"Date {now}; `uname -a`: `{uname}`; `nproc`: {nproc}; Python {platform.python_version()} "
              f"({os.cpu_count()} CPUs); load average at the end: "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
        print(f"Command: `.venv/bin/python -m benchmarks.scale --participants {a.participants} "
              f"--nprocs {' '.join(map(str, a.nprocs))}{' --report' if a.report else ''} --markdown`\n")
        print(f"Dataset: {a.participants} participants, {size / 1e6:.1f} MB, written in {t_write:.1f} s\n")
        print("| --nprocs | exit | wall s | s/participant | speed-up | peak RSS main MiB | "
              "peak RSS per worker MiB | tables identical |")
        print("|---|---|---|---|---|---|---|---|")
        for n, r in results:
            sp = f"{base['wall_s'] / r['wall_s']:.2f}" if base else "n/a"
            wr = f"{r['worker_rss'] / 2**20:.0f}" if r["n_workers_seen"] else "(in main)"
            print(f"| {n} | {r['code']} | {r['wall_s']:.1f} | {r['wall_s'] / a.participants:.2f} | {sp} | "
                  f"{r['main_rss'] / 2**20:.0f} | {wr} | {r['identical'] if r['identical'] is not None else '-'} |")
        print(f"\nNo-op rerun (--nprocs {n_last}): {rerun['wall_s']:.1f} s, exit {rerun['code']}; log: "
              f"`{skipped_line.strip()}`\n")
        print(f"getrusage(RUSAGE_CHILDREN).ru_maxrss (largest single descendant): {children_maxrss_mib:.0f} MiB")
    if a.dir is None:
        shutil.rmtree(scratch, ignore_errors=True)
    ok = all(r["code"] == 0 and r["identical"] in (None, True) for _, r in results) and rerun["code"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
