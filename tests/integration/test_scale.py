"""Many participants, process pools, Dask, interruption, read-only inputs (DESIGN.md §2, §3, §9).

Every run here is checked against one serial reference run of the same dataset: the
concentrations, QC and tissue tables must be byte-identical whatever the execution backend,
after an interruption and rerun, or with a read-only input.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bidsmrs.cli import main
from bidsmrs.io.atomic import is_temporary_name
from tests.bidsfixtures import make_bids_dataset

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scale")]

PROJECT = Path(__file__).resolve().parents[2]
SUBJECTS = ("01", "02", "03", "04")
BASE = ["--skip-bids-validation", "--no-report", "--tissue-fractions", "0.6", "0.4", "0"]
TABLES = ("concentrations", "qc", "tissue")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def tables(out: Path) -> dict[str, bytes]:
    """Relative path → bytes of every concentrations/QC/tissue TSV under ``out``."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*_svs.tsv"))
            if any(f"_desc-{t}_" in p.name for t in TABLES)}


def final_files(out: Path) -> set[str]:
    """Output files that are not logs (names of a complete run)."""
    return {p.relative_to(out).as_posix() for p in out.rglob("*")
            if p.is_file() and "logs" not in p.relative_to(out).parts}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: type, mode, size, mtime (ns) and sha256 of files."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
            snap[p.relative_to(root).as_posix()] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                                   st.st_size, st.st_mtime_ns, digest)
    st = root.stat()
    snap["."] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), None, st.st_mtime_ns, None)
    return snap


def env_for(cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "MPLCONFIGDIR", "DENO_", "PYTEST_", "BIDSMRS_"))}
    env.update(BIDSMRS_CACHE=str(cache), PYTHONPATH=str(PROJECT))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def concentrations_of(out: Path, sub: str) -> Path:
    return out / f"sub-{sub}" / "mrs" / f"sub-{sub}_acq-press_desc-concentrations_svs.tsv"


# ---------------------------------------------------------------------------------------
# fixtures: one dataset, one serial reference run
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bidsmrs-cache")


@pytest.fixture(autouse=True)
def _private_env(cache, monkeypatch):
    monkeypatch.setenv("BIDSMRS_CACHE", str(cache))
    monkeypatch.setenv("MPLCONFIGDIR", str(cache / "matplotlib"))  # restored after each test
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):  # execution pins them in-process; undo after
        monkeypatch.setenv(var, os.environ.get(var, "1"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_bids_dataset(tmp_path_factory.mktemp("scale") / "bids", subjects=SUBJECTS, n_transients=8,
                             n_points=1024, seed=11)


@pytest.fixture(scope="module")
def reference(dataset, cache, tmp_path_factory) -> Path:
    """Serial, uninterrupted run of the whole dataset."""
    out = tmp_path_factory.mktemp("ref") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIDSMRS_CACHE", str(cache))
        mp.setenv("MPLCONFIGDIR", str(cache / "matplotlib"))
        code = main([str(dataset.root), str(out), "participant", *BASE, "--nprocs", "1"])
    assert code == 0
    assert len(tables(out)) == 3 * len(SUBJECTS)
    return out


# ---------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------
def test_parallel_equals_serial(dataset, reference, tmp_path):
    out = tmp_path / "out"
    assert main([str(dataset.root), str(out), "participant", *BASE, "--nprocs", "2"]) == 0
    assert tables(out) == tables(reference)
    assert final_files(out) == final_files(reference)


def test_dask_local_cluster_equals_serial(dataset, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        out = tmp_path / "out"
        code = main([str(dataset.root), str(out), "participant", *BASE, "--dask-scheduler",
                     cluster.scheduler_address])
    assert code == 0
    assert tables(out) == tables(reference)


# ---------------------------------------------------------------------------------------
# interruption and resumption
# ---------------------------------------------------------------------------------------
def test_sigkill_then_rerun_equals_uninterrupted(dataset, reference, cache, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bidsmrs", str(dataset.root), str(out), "participant", *BASE, "--nprocs", "1",
           "-w", str(tmp_path / "work")]
    first = concentrations_of(out, SUBJECTS[0])
    with open(tmp_path / "killed.stderr", "w") as err:  # a file: a full pipe would block the child
        proc = subprocess.Popen(cmd, env=env_for(cache), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 240
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert first.exists(), "the first participant never finished"
    assert not concentrations_of(out, SUBJECTS[-1]).exists(), "the run finished before it could be killed"

    # whatever has a final name is complete (atomic writes)
    import nibabel as nib
    import numpy as np
    import pandas as pd

    for p in out.rglob("*"):
        if not p.is_file() or is_temporary_name(p.name):
            continue
        if p.name.endswith(".json"):
            json.loads(p.read_text())
        elif p.name.endswith(".tsv"):
            assert len(pd.read_csv(p, sep="\t")) >= 1, p
        elif p.name.endswith(".nii.gz"):
            assert np.asarray(nib.load(str(p)).dataobj).size > 0, p  # a truncated gzip raises
    # what SIGKILL leaves in the middle of a write: a temporary file (never a final name)
    stale = out / f"sub-{SUBJECTS[1]}" / "mrs" / f".sub-{SUBJECTS[1]}_acq-press_desc-qc_svs.tsv.k1ll3d00.tmp.tsv"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("snr_naa\tsnr_lc")

    rerun = subprocess.run(cmd, env=env_for(cache), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"sub-{SUBJECTS[0]}_acq-press: already finished" in rerun.stderr
    assert "skipped" in rerun.stderr
    assert f"sub-{SUBJECTS[-1]}_acq-press: done" in rerun.stderr
    assert tables(out) == tables(reference)
    assert final_files(out) == final_files(reference)
    leftovers = [p for p in out.rglob("*") if is_temporary_name(p.name)]
    assert not leftovers, leftovers


def test_rerun_of_finished_output_is_a_noop(dataset, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*_svs.*")}
    assert main([str(dataset.root), str(out), "participant", *BASE, "--nprocs", "2"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*_svs.*")} == before


# ---------------------------------------------------------------------------------------
# read-only input, nothing written elsewhere
# ---------------------------------------------------------------------------------------
@pytest.fixture
def public_tmp():
    """A world-readable scratch dir (pytest's tmp_path is 0700, closed to an unprivileged user)."""
    path = Path(tempfile.mkdtemp(prefix="bidsmrs-scale-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:  # read-only dirs cannot be emptied by a non-root owner
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def _read_only(root: Path) -> None:
    for p in [*root.rglob("*"), root]:
        if not p.is_symlink():
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)


def test_read_only_input_is_untouched(dataset, reference, cache, public_tmp, tmp_path):
    bids = public_tmp / "bids"
    shutil.copytree(dataset.root, bids)
    _read_only(bids)
    before = snapshot(bids)
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", *BASE, "--nprocs", "1"]) == 0
    assert snapshot(bids) == before
    assert tables(out) == tables(reference)

    # as an unprivileged user the read-only bits are real (root ignores them)
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("unprivileged part needs root and setpriv")
    nobody = 65534
    home, ucache, uout = public_tmp / "home", public_tmp / "cache", public_tmp / "uout"
    for d in (home, ucache):
        d.mkdir()
    shutil.copytree(cache, ucache, dirs_exist_ok=True)  # the simulated basis, already cached
    uout.mkdir()
    for p in [home, ucache, uout, *ucache.rglob("*")]:
        os.chown(p, nobody, nobody)
    cmd = [setpriv, f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", sys.executable, "-m", "bidsmrs",
           str(bids), str(uout / "out"), "participant", *BASE, "--nprocs", "1", "--participant-label",
           SUBJECTS[0]]
    proc = subprocess.run(cmd, env=env_for(ucache, HOME=home, TMPDIR=public_tmp / "home"), capture_output=True,
                          text=True, timeout=600, cwd=str(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert snapshot(bids) == before
    rel = concentrations_of(uout / "out", SUBJECTS[0]).relative_to(uout / "out").as_posix()
    assert (uout / "out" / rel).read_bytes() == tables(reference)[rel]


def test_nothing_written_outside_output_and_cache(dataset, reference, cache, tmp_path):
    """HOME, TMPDIR and the current directory stay empty: reports and the validator included."""
    home, tmp, cwd = tmp_path / "home", tmp_path / "tmp", tmp_path / "cwd"
    for d in (home, tmp, cwd):
        d.mkdir()
    before = snapshot(dataset.root)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bidsmrs", str(dataset.root), str(out), "participant", "--participant-label",
           SUBJECTS[0], "--tissue-fractions", "0.6", "0.4", "0", "--nprocs", "1"]  # report + validator on
    proc = subprocess.run(cmd, env=env_for(cache, HOME=home, TMPDIR=tmp), capture_output=True, text=True,
                          timeout=600, cwd=str(cwd))
    assert proc.returncode == 0, proc.stderr[-3000:]
    from bidsmrs.io.validator import find_validator

    if find_validator():  # the validator's runtime (deno) caches in ~/.cache unless told otherwise
        assert "bids-validator-deno is not available" not in proc.stderr, proc.stderr[-2000:]
    written = {d.name: sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) for d in (home, tmp, cwd)}
    assert written == {"home": [], "tmp": [], "cwd": []}
    assert snapshot(dataset.root) == before
    assert (out / f"sub-{SUBJECTS[0]}.html").is_file()
    rel = concentrations_of(out, SUBJECTS[0]).relative_to(out).as_posix()
    assert (out / rel).read_bytes() == tables(reference)[rel]


# ---------------------------------------------------------------------------------------
# failures of one participant
# ---------------------------------------------------------------------------------------
def _fail_for(subject: str, action):
    import bidsmrs.basis_provider as bp

    real = bp.basis_for

    def basis_for(spectrum, run, settings, work):
        if run.subject == subject:
            action()
        return real(spectrum, run, settings, work)
    return basis_for


def test_unexpected_exception_in_one_participant(dataset, reference, tmp_path, monkeypatch, capsys):
    def boom():
        raise RuntimeError("injected failure for the scale test")

    monkeypatch.setattr("bidsmrs.basis_provider.basis_for", _fail_for("02", boom))
    out = tmp_path / "out"
    code = main([str(dataset.root), str(out), "participant", *BASE, "--nprocs", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    crashes = list((out / "logs").glob("crash-sub-02-*.txt"))
    assert len(crashes) == 1, sorted(p.name for p in (out / "logs").iterdir())
    text = crashes[0].read_text()
    assert "Traceback" in text and "RuntimeError: injected failure for the scale test" in text
    lines = [ln for ln in err.splitlines() if "injected failure" in ln]
    assert lines and all("sub-02" in ln and crashes[0].name in ln for ln in lines), err
    assert len([ln for ln in lines if ln.startswith("bidsmrs: sub-02")]) == 1, err  # one line at the failure
    assert "sub-02" in (out / "logs" / "failures.tsv").read_text()
    ref = tables(reference)
    got = tables(out)
    assert not any(k.startswith("sub-02/") for k in got)
    assert got == {k: v for k, v in ref.items() if not k.startswith("sub-02/")}


def test_worker_process_killed_fails_only_its_participant(dataset, reference, tmp_path, monkeypatch, capsys):
    import multiprocessing

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the injected failure reaches pool workers only with the fork start method")
    monkeypatch.setattr("bidsmrs.basis_provider.basis_for",
                        _fail_for("03", lambda: os.kill(os.getpid(), signal.SIGKILL)))
    out = tmp_path / "out"
    code = main([str(dataset.root), str(out), "participant", *BASE, "--nprocs", "2"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert "sub-03" in (out / "logs" / "failures.tsv").read_text()
    assert "died" in (out / "logs" / "failures.tsv").read_text()
    ref = tables(reference)
    assert tables(out) == {k: v for k, v in ref.items() if not k.startswith("sub-03/")}


def test_group_level_writes_nothing_in_home(dataset, reference, cache, tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    proc = subprocess.run([sys.executable, "-m", "bidsmrs", str(dataset.root), str(out), "group"],
                          env=env_for(cache, HOME=home, TMPDIR=tmp), capture_output=True, text=True, timeout=600,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "group.html").is_file()
    written = sorted(p.relative_to(tmp_path).as_posix() for d in (home, tmp) for p in d.rglob("*"))
    assert written == []


def test_noop_rerun_keeps_reports(dataset, tmp_path):
    out = tmp_path / "out"
    argv = [str(dataset.root), str(out), "participant", "--skip-bids-validation", "--tissue-fractions", "0.6", "0.4",
            "0", "--nprocs", "1", "--participant-label", SUBJECTS[0]]
    assert main(argv) == 0
    report = out / f"sub-{SUBJECTS[0]}.html"
    before = report.stat().st_mtime_ns
    assert main(argv) == 0
    assert report.stat().st_mtime_ns == before


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "nonsense-address"])
def test_unreachable_dask_scheduler_is_a_one_line_usage_error(dataset, tmp_path, capsys, monkeypatch, address):
    pytest.importorskip("distributed")
    from bidsmrs import execution

    monkeypatch.setattr(execution, "DASK_CONNECT_TIMEOUT_S", 2)
    code = main([str(dataset.root), str(tmp_path / "out"), "participant", *BASE, "--dask-scheduler", address])
    err = capsys.readouterr().err
    assert code == 64 and "cannot connect to the Dask scheduler" in err and "Traceback" not in err
    assert not list((tmp_path / "out" / "logs").glob("crash-*"))
