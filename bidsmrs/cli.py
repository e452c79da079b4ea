"""Command line of the BIDS-App (DESIGN.md §2, contract).

``build_parser()`` is pure; ``parse_args(argv)`` checks the arguments against the file system
and returns :class:`~bidsmrs.settings.Settings`; ``main(argv)`` runs and returns the exit code:
0 all succeeded, 1 some participants failed, 64 usage error, 65 invalid input / no MRS data,
70 internal error.
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
import uuid
from pathlib import Path

from bidsmrs import __version__
from bidsmrs.errors import BidsMrsError
from bidsmrs.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DATAERR, EXIT_SOFTWARE = 0, 1, 64, 65, 70

log = logging.getLogger("bidsmrs")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit with 64 (EX_USAGE), as BIDS-Apps do."""

    def error(self, message):  # noqa: D401
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _label(prefix: str):
    def parse(value: str) -> str:
        value = value[len(prefix):] if value.startswith(prefix) else value
        if not value.isalnum() or not value.isascii():
            raise argparse.ArgumentTypeError(f"invalid label {value!r}: only letters and digits are allowed")
        return value
    return parse


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return n


def _fraction(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= f <= 1.0:
        raise argparse.ArgumentTypeError(f"tissue fraction {value} is outside [0, 1]")
    return f


def _seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < s < 1:
        raise argparse.ArgumentTypeError(f"{value} s is not a plausible echo/mixing time in seconds "
                                         "(give seconds, e.g. 0.011, not milliseconds)")
    return s


def _ppm_pair(value: str) -> tuple[float, float]:
    try:
        lo, hi = sorted(float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not LOW,HIGH in ppm") from None
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (pure: touches no file)."""
    p = _Parser(prog="bidsmrs", description="bidsmrs: single-voxel MRS BIDS-App "
                "(preprocessing, linear-combination fitting, tissue-corrected quantification, reports).")
    p.add_argument("bids_dir", type=Path, help="root of the BIDS dataset (read only)")
    p.add_argument("output_dir", type=Path, help="output folder (a BIDS derivative dataset)")
    p.add_argument("analysis_level", choices=["participant", "group"], help="processing stage")
    p.add_argument("--version", action="version", version=f"bidsmrs {__version__}")
    p.add_argument("-v", "--verbose", dest="verbosity", action="count", default=0,
                   help="more output (repeat for debug)")

    g = p.add_argument_group("selecting data")
    g.add_argument("--participant-label", "--participant_label", dest="participant_labels", nargs="+",
                   type=_label("sub-"), default=[], metavar="LABEL",
                   help="participants to process (with or without 'sub-'); default: all")
    g.add_argument("--session-label", "--session_label", dest="session_labels", nargs="+",
                   type=_label("ses-"), default=[], metavar="LABEL", help="sessions to process")
    g.add_argument("--bids-filter-file", type=Path, metavar="JSON",
                   help='pybids filters, e.g. {"svs": {"acquisition": "press"}}')
    g.add_argument("--skip-bids-validation", "--skip_bids_validation", "--skip_bids_validator",
                   action="store_true", help="do not run bids-validator-deno on the input")

    g = p.add_argument_group("basis and fitting")
    g.add_argument("--basis", type=Path, help="LCModel .BASIS, a directory of .RAW, an FSL-MRS basis "
                   "directory or a bidsmrs basis; default: simulated for the data's sequence, TE and field")
    g.add_argument("--sequence", choices=["press", "steam", "slaser"],
                   help="sequence for the simulated basis (overrides the metadata)")
    g.add_argument("--te1", dest="te1_s", type=_seconds, metavar="S", help="PRESS first echo time (s)")
    g.add_argument("--te2", dest="te2_s", type=_seconds, metavar="S", help="PRESS second echo time (s)")
    g.add_argument("--tm", dest="tm_s", type=_seconds, metavar="S", help="STEAM mixing time (s)")
    g.add_argument("--fit-range", dest="fit_ppm", type=_ppm_pair, default=(0.2, 4.2), metavar="LOW,HIGH",
                   help="fit range in ppm (default 0.2,4.2)")
    g.add_argument("--baseline", choices=["spline", "poly", "none"], default="spline",
                   help="baseline model (default: penalised spline)")
    g.add_argument("--lipids", choices=["auto", "always", "never"], default="auto",
                   help="LCModel simulated lipid components (Lip09, Lip13a/b, Lip20): added when the "
                        "spectrum shows lipid signal (default auto), always, or never")

    g = p.add_argument_group("preprocessing")
    g.add_argument("--coil-combination", choices=["snr2", "wsvd"], default="snr2",
                   help="coil combination: S/N²-weighted (Hall 2014, default) or WSVD (Rodgers & Robson 2010)")
    g.add_argument("--align-range", dest="align_ppm", type=_ppm_pair, default=(1.8, 4.2), metavar="LOW,HIGH",
                   help="ppm window for spectral registration of transients (default 1.8,4.2)")
    g.add_argument("--reject-mads", type=float, default=3.0,
                   help="reject transients whose residual exceeds this many scaled MADs (default 3)")

    g = p.add_argument_group("tissue and quantification")
    g.add_argument("--anat-derivatives", type=Path, metavar="DIR",
                   help="fMRIPrep/sMRIPrep output with *_label-{GM,WM,CSF}_probseg.nii.gz in T1w space")
    g.add_argument("--tissue-fractions", nargs=3, type=_fraction, metavar=("GM", "WM", "CSF"),
                   help="fixed tissue fractions when there is no T1w (phantoms, simulations)")
    g.add_argument("--quant-config", type=Path, metavar="JSON",
                   help="override quantification constants (JSON; schema in README.md and bidsmrs/quantify/config.py)")

    g = p.add_argument_group("quality control")
    g.add_argument("--qc-max-crlb", type=float, default=20.0, help="flag metabolites above this %%CRLB (20)")
    g.add_argument("--qc-min-snr", type=float, default=10.0, help="flag spectra below this NAA SNR (10)")
    g.add_argument("--qc-max-fwhm-ppm", type=float, default=0.1, help="flag spectra above this NAA FWHM (0.1 ppm)")

    g = p.add_argument_group("group level")
    g.add_argument("--group-by", metavar="COLUMN", help="participants.tsv column defining the groups")
    g.add_argument("--covariates", nargs="+", default=[], metavar="COLUMN",
                   help="covariates from participants.tsv or the tissue table (e.g. age sex gm_fraction)")
    g.add_argument("--correlate", nargs="+", default=[], metavar="COLUMN",
                   help="clinical scores to correlate with each metabolite")
    g.add_argument("--measure", default="conc_tissue_corrected_mM",
                   help="concentrations column compared between groups (default conc_tissue_corrected_mM)")

    g = p.add_argument_group("performance and run control")
    g.add_argument("--nprocs", "--n-cpus", type=_positive_int, default=None,
                   help="participants processed in parallel (default: all cores)")
    g.add_argument("--omp-nthreads", type=_positive_int, default=1, help="threads per process (default 1)")
    g.add_argument("--dask-scheduler", metavar="ADDRESS", help="run participants on this Dask scheduler")
    g.add_argument("-w", "--work-dir", type=Path, help="work directory (default: a temporary one, removed)")
    g.add_argument("--force", action="store_true", help="recompute participants that are already finished")
    g.add_argument("--no-report", action="store_true", help="do not write HTML reports")
    return p


def parse_args(argv=None) -> Settings:
    """Parse and check arguments; exits 64 with a one-line message on usage errors."""
    parser = build_parser()
    opts = parser.parse_args(argv)
    bids_dir = opts.bids_dir.expanduser().resolve()
    output_dir = opts.output_dir.expanduser().resolve()
    if not bids_dir.is_dir():
        parser.error(f"BIDS_DIR {opts.bids_dir} does not exist or is not a directory")
    if output_dir == bids_dir:
        parser.error("OUTPUT_DIR must not be BIDS_DIR; use e.g. BIDS_DIR/derivatives/bidsmrs")
    if bids_dir in output_dir.parents and (bids_dir / "derivatives") not in output_dir.parents:
        parser.error(f"OUTPUT_DIR {opts.output_dir} is inside BIDS_DIR (the input is never written); "
                     "use BIDS_DIR/derivatives/bidsmrs or a folder outside the dataset")
    work_dir = opts.work_dir.expanduser().resolve() if opts.work_dir else None
    if work_dir is not None and (work_dir == bids_dir or bids_dir in work_dir.parents):
        parser.error("--work-dir must not be inside BIDS_DIR (the input is never written)")
    filters = {}
    if opts.bids_filter_file is not None:
        from bidsmrs.io.jsonfile import read_json

        try:
            filters = read_json(opts.bids_filter_file)
        except BidsMrsError as exc:
            parser.error(str(exc))
    for path, name in ((opts.basis, "--basis"), (opts.quant_config, "--quant-config"),
                       (opts.anat_derivatives, "--anat-derivatives")):
        if path is not None and not path.expanduser().exists():
            parser.error(f"{name} {path} does not exist")
    if opts.tissue_fractions is not None and sum(opts.tissue_fractions) <= 0:
        parser.error("--tissue-fractions must not all be zero")
    if opts.quant_config is not None and opts.analysis_level == "participant":
        _check_quant_config(parser, opts.quant_config, opts.basis)
    _check_writable(parser, output_dir, "OUTPUT_DIR")  # last: creates it, so only for a command that runs
    if work_dir is not None:
        _check_writable(parser, work_dir, "--work-dir")
    nprocs = opts.nprocs or _available_cores()
    return Settings(
        bids_dir=bids_dir, output_dir=output_dir, analysis_level=opts.analysis_level,
        participant_labels=tuple(sorted(set(opts.participant_labels))),
        session_labels=tuple(sorted(set(opts.session_labels))), bids_filters=filters,
        skip_bids_validation=opts.skip_bids_validation,
        basis=opts.basis.expanduser().resolve() if opts.basis else None, sequence=opts.sequence,
        te1_s=opts.te1_s, te2_s=opts.te2_s, tm_s=opts.tm_s,
        anat_derivatives=opts.anat_derivatives.expanduser().resolve() if opts.anat_derivatives else None,
        tissue_fractions=tuple(opts.tissue_fractions) if opts.tissue_fractions else None,
        quant_config=opts.quant_config.expanduser().resolve() if opts.quant_config else None,
        qc_max_crlb=opts.qc_max_crlb, qc_min_snr=opts.qc_min_snr, qc_max_fwhm_ppm=opts.qc_max_fwhm_ppm,
        group_by=opts.group_by, covariates=tuple(opts.covariates), correlate=tuple(opts.correlate),
        measure=opts.measure, nprocs=nprocs, omp_nthreads=opts.omp_nthreads,
        dask_scheduler=opts.dask_scheduler, work_dir=work_dir, force=opts.force, no_report=opts.no_report,
        verbosity=opts.verbosity, coil_combination=opts.coil_combination, align_ppm=tuple(opts.align_ppm),
        reject_mads=opts.reject_mads, fit_ppm=tuple(opts.fit_ppm), baseline=opts.baseline,
        lipids=opts.lipids)


def _check_writable(parser, path: Path, name: str) -> None:
    """Create ``path`` if needed and prove a file can be written there (exit 64 if not)."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".bidsmrs-write-test-"):
            pass
    except OSError as exc:
        parser.error(f"{name} {path} is not writable ({exc.strerror or exc})")


def _check_quant_config(parser, path: Path, basis: Path | None) -> None:
    """Fail early (exit 64) on a --quant-config that no run could use, rather than once per run.

    Checked against the 3 T tables; field-specific gaps are still reported per run. Metabolite keys
    may name the components of a --basis file.
    """
    from bidsmrs.errors import QuantificationError
    from bidsmrs.quantify import load_quant_config

    names: tuple[str, ...] = ()
    if basis is not None:
        from bidsmrs.io.basis_files import load_basis

        try:
            names = load_basis(basis.expanduser()).names
        except BidsMrsError as exc:
            parser.error(f"--basis: {exc}")
    try:
        load_quant_config(path.expanduser(), 3.0, metabolite_names=names)
    except QuantificationError:
        pass  # depends on the data's field strength: reported per run
    except BidsMrsError as exc:
        parser.error(f"--quant-config: {exc}")


def _available_cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (test capture, redirection)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it
        pass


def _setup_logging(verbosity: int) -> None:
    level = logging.INFO if verbosity <= 0 else logging.DEBUG  # progress lines are INFO
    root = logging.getLogger("bidsmrs")
    root.setLevel(logging.DEBUG)
    if not any(getattr(h, "_bidsmrs_console", False) for h in root.handlers):
        handler = _StderrHandler()
        handler._bidsmrs_console = True
        handler.setFormatter(logging.Formatter("bidsmrs: %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        if getattr(h, "_bidsmrs_console", False):
            h.setLevel(level)


def main(argv=None) -> int:
    """Run the BIDS-App; return the exit code."""
    settings = parse_args(argv)
    _setup_logging(settings.verbosity)
    from bidsmrs.execution import private_library_dirs, quiet_library_warnings, set_native_threads

    private_library_dirs()  # matplotlib's cache/config out of $HOME
    import warnings

    shown = warnings.showwarning
    quiet_library_warnings()
    set_native_threads(settings.omp_nthreads)  # ITK reads its thread count once, at first use
    try:
        if settings.analysis_level == "participant":
            from bidsmrs.participant import run_participant_level

            return run_participant_level(settings)
        from bidsmrs.group import run_group_level

        return run_group_level(settings)
    except BidsMrsError as exc:
        print(f"bidsmrs: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bidsmrs: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line on the console, the traceback in logs/
        crash = _write_crash(settings.output_dir, "main")
        where = (f"traceback in {crash}" if crash else
                 f"{type(exc).__name__}: {exc} (no traceback file: logs/ is not writable)")
        print(f"bidsmrs: internal error (a bug); {where}", file=sys.stderr)
        return EXIT_SOFTWARE
    finally:
        warnings.showwarning = shown  # main() may be called as a library function


def _write_crash(output_dir: Path, name: str) -> Path | None:
    try:
        logs = output_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"crash-{name}-{uuid.uuid4().hex[:8]}.txt"
        path.write_text(traceback.format_exc())
        return path
    except OSError:
        return None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
