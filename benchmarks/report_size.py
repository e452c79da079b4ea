"""Size and render time of the participant and group reports on the test fixtures.

Usage::

    python benchmarks/report_size.py [--runs 1 4] [--group 20] [--repeat 3] [--write]

``--write`` appends a dated entry to ``benchmarks/RESULTS_report.md`` (date, machine,
command, numbers). Each participant measurement builds a fresh fixture tree (one subject with
N runs, each with T1w, tissue maps, water reference and 64 transients) in a temporary
directory and times :func:`write_participant_report` (best and median of ``--repeat``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bidsmrs.report.group import write_group_report  # noqa: E402
from bidsmrs.report.participant import write_participant_report  # noqa: E402
from tests.reportfixtures import FixtureRun, group_tables, make_participant_tree  # noqa: E402


def _time(fn, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def participant(n_runs: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        runs = [FixtureRun(f"sub-01_acq-press_run-{i}") for i in range(1, n_runs + 1)]
        make_participant_tree(out, "01", runs=runs)
        best, median, path = _time(lambda: write_participant_report(out, "01"), repeat)
        html = Path(path).read_text(encoding="utf-8")
        return {"what": f"participant, {n_runs} run(s)", "bytes": Path(path).stat().st_size,
                "svgs": html.count("<svg"), "best_s": best, "median_s": median}


def group(n_subjects: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        srcs = []
        for i in range(1, n_subjects + 1):
            srcs += make_participant_tree(out, f"{i:02d}", seed=i, runs=[
                FixtureRun(f"sub-{i:02d}_acq-press_run-1", with_t1w=False)])
        conc, qc = group_tables(out, srcs, excluded=srcs[:1])
        best, median, path = _time(
            lambda: write_group_report(out, concentrations=conc, qc=qc), repeat)
        html = Path(path).read_text(encoding="utf-8")
        return {"what": f"group, {n_subjects} participants", "bytes": Path(path).stat().st_size,
                "svgs": html.count("<svg"), "best_s": best, "median_s": median}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--group", type=int, default=20, help="participants in the group report (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS_report.md")
    args = ap.parse_args(argv)
    rows = [participant(n, args.repeat) for n in args.runs]
    if args.group:
        rows.append(group(args.group, args.repeat))
    lines = ["| Report | Size (kB) | SVG figures | Best (s) | Median (s) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['bytes'] / 1024:.0f} | {r['svgs']} | {r['best_s']:.2f} "
                     f"| {r['median_s']:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        cmd = "python benchmarks/report_size.py " + " ".join(argv if argv is not None else sys.argv[1:])
        import matplotlib

        entry = (f"\n## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
                 f"- Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs "
                 f"(shared), {platform.platform()}\n"
                 f"- Python {platform.python_version()}, matplotlib {matplotlib.__version__}\n"
                 f"- Command: `{cmd.strip()}`\n\n{table}\n")
        res = ROOT / "benchmarks" / "RESULTS_report.md"
        head = "" if res.exists() else (
            "# Report size and render time\n\nProduced by `benchmarks/report_size.py` on the "
            "fixtures of `tests/reportfixtures.py` (2048-point spectra, 11 components, "
            "48×56×48 T1w). Target: a typical participant report under 3 MB.\n")
        with open(res, "a", encoding="utf-8") as fh:
            fh.write(head + entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
