"""Run participants serially, in a local process pool (``--nprocs``) or on Dask (``--dask-scheduler``).

Every task is one participant: ``fn(subject, runs, settings) -> SubjectOutcome``; ``fn`` never
raises (it records failures itself). A worker that dies (killed, out of memory) is recorded as
that participant's failure; the others go on. Numeric libraries are limited to
``--omp-nthreads`` threads per worker so N workers never oversubscribe the machine.

A process pool breaks as a whole when one worker dies (``BrokenProcessPool`` for every
unfinished task), so the participants that had not finished are then retried one per fresh
process: only the participant whose own process dies again is failed.

Before a participant starts, temporary files that an interrupted earlier run left in its own
output folder (``.<name>.<random>.tmp*``, see :mod:`bidsmrs.io.atomic`) are removed, and
matplotlib's cache is kept in ``$BIDSMRS_CACHE`` (DESIGN.md §2: nothing is written outside
OUTPUT_DIR, the work directory and the cache).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Mapping, Sequence

log = logging.getLogger("bidsmrs.execution")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "NUMEXPR_NUM_THREADS")


def _load_numeric_libraries() -> None:
    """Load every native thread pool the pipeline uses, so that it can be limited.

    threadpoolctl only sees libraries that are already loaded, and scipy bundles its own
    OpenBLAS, loaded on the first ``import scipy.linalg``: without this, the first participant
    of a process ran scipy's BLAS with all cores and later ones with ``--omp-nthreads``, which
    changed the last digits of its results (serial and parallel outputs then differed).
    """
    import numpy  # noqa: F401

    try:
        import scipy.fft  # noqa: F401
        import scipy.linalg  # noqa: F401
        import scipy.optimize  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass


def quiet_library_warnings() -> None:
    """Send Python warnings of the libraries (numpy RuntimeWarning on odd input, matplotlib
    missing glyphs, ...) to the run log at DEBUG instead of the console: the console keeps
    bidsmrs's own one-line messages. Call once per process."""
    import logging
    import warnings

    log = logging.getLogger("bidsmrs.library_warnings")

    def to_log(message, category, filename, lineno, file=None, line=None):
        log.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)

    warnings.showwarning = to_log


def _limit_threads(n: int) -> None:
    """Pin numeric libraries of this (worker) process to ``n`` threads."""
    quiet_library_warnings()
    for var in _THREAD_VARS:  # for libraries that read them at load time (a worker's own environment)
        os.environ[var] = str(n)
    _load_numeric_libraries()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def set_native_threads(n: int) -> None:
    """Default thread counts for native libraries that read them from the environment once
    (ITK in the segmentation, OpenMP); values the user set explicitly are kept."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(n))


def private_library_dirs() -> None:
    """Point matplotlib's config/cache (default ``~/.cache/matplotlib``) into the bidsmrs cache."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    from bidsmrs.io.cache import cache_dir

    path = cache_dir("matplotlib")
    if path is not None:
        os.environ["MPLCONFIGDIR"] = str(path)


def _clean_participant_outputs(settings, subject: str) -> None:
    """Remove temporaries an interrupted run left in this participant's own outputs."""
    from bidsmrs.io.atomic import remove_stale_temporaries

    out = Path(settings.output_dir)
    removed = remove_stale_temporaries(out / f"sub-{subject}")
    removed += remove_stale_temporaries(out, pattern=f".sub-{subject}.html.*")
    for path in removed:
        log.info("sub-%s: removed %s, left by an interrupted run", subject, path.relative_to(out))


def _run_limited(fn, subject, runs, settings):
    """One participant in this process: caches private, stale temporaries gone, threads pinned."""
    from threadpoolctl import threadpool_limits

    private_library_dirs()
    _clean_participant_outputs(settings, subject)
    for var in _THREAD_VARS:  # libraries loaded later in this process read these
        os.environ[var] = str(settings.omp_nthreads)
    _load_numeric_libraries()
    with threadpool_limits(settings.omp_nthreads):
        return fn(subject, runs, settings)


def map_subjects(fn: Callable, by_subject: Mapping[str, Sequence], settings) -> list:
    """Apply ``fn`` to every participant; results in participant order."""
    items = sorted(by_subject.items())
    private_library_dirs()  # before any worker starts: they inherit the environment
    if settings.dask_scheduler:
        return _map_dask(fn, items, settings)
    if settings.nprocs > 1 and len(items) > 1:
        return _map_pool(fn, items, settings)
    results = []
    for i, (subject, runs) in enumerate(items, 1):
        log.info("[%d/%d] sub-%s", i, len(items), subject)
        results.append(_run_limited(fn, subject, runs, settings))
    return results


def _failed(subject: str, message: str):
    from bidsmrs.participant import RunOutcome, SubjectOutcome

    return SubjectOutcome(subject, (RunOutcome(f"sub-{subject}", "failed", message),))


def _map_pool(fn, items, settings) -> list:
    workers = min(settings.nprocs, len(items))
    log.info("processing %d participants with %d worker processes (%d thread(s) each)",
             len(items), workers, settings.omp_nthreads)
    results = {}
    unfinished = []
    with ProcessPoolExecutor(max_workers=workers, initializer=_limit_threads,
                             initargs=(settings.omp_nthreads,)) as pool:
        futures = {pool.submit(_run_limited, fn, subject, runs, settings): (subject, runs)
                   for subject, runs in items}
        for fut in as_completed(futures):
            subject, runs = futures[fut]
            try:
                results[subject] = fut.result()
            except BrokenProcessPool:  # some worker died: every unfinished task lands here
                unfinished.append((subject, runs))
                continue
            except Exception as exc:  # e.g. the result could not be sent back
                log.error("sub-%s: worker process failed: %s: %s", subject, type(exc).__name__, exc)
                results[subject] = _failed(subject, f"worker process failed: {type(exc).__name__}: {exc}")
            log.info("[%d/%d] sub-%s finished", len(results), len(items), subject)
    if unfinished:
        log.warning("a worker process died (killed or out of memory); retrying %d unfinished participant(s) "
                    "one per process", len(unfinished))
        results.update(_map_isolated(fn, sorted(unfinished), settings, workers, len(results), len(items)))
    return [results[s] for s, _ in items]


def _map_isolated(fn, items, settings, workers: int, done: int, total: int) -> dict:
    """Each participant in a fresh single-worker pool (at most ``workers`` at a time)."""
    results = {}
    queue = list(items)
    running: dict = {}
    while queue or running:
        while queue and len(running) < workers:
            subject, runs = queue.pop(0)
            ex = ProcessPoolExecutor(max_workers=1, initializer=_limit_threads, initargs=(settings.omp_nthreads,))
            running[ex.submit(_run_limited, fn, subject, runs, settings)] = (subject, ex)
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for fut in finished:
            subject, ex = running.pop(fut)
            try:
                results[subject] = fut.result()
            except BrokenProcessPool:
                log.error("sub-%s: its worker process died (killed or out of memory)", subject)
                results[subject] = _failed(subject, "worker process died (killed, e.g. out of memory); "
                                                    "see the log for its last step")
            except Exception as exc:
                log.error("sub-%s: worker process failed: %s: %s", subject, type(exc).__name__, exc)
                results[subject] = _failed(subject, f"worker process failed: {type(exc).__name__}: {exc}")
            ex.shutdown(wait=True)
            done += 1
            log.info("[%d/%d] sub-%s finished", done, total, subject)
    return results


#: Seconds to wait for the Dask scheduler before giving up with a usage error.
DASK_CONNECT_TIMEOUT_S = 20


def _map_dask(fn, items, settings) -> list:
    from bidsmrs.errors import UsageError

    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask-scheduler needs the optional Dask support: pip install 'bidsmrs[dask]'") from None
    log.info("submitting %d participants to the Dask scheduler at %s", len(items), settings.dask_scheduler)
    results = {}
    try:
        client = Client(settings.dask_scheduler, timeout=DASK_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:  # unreachable or malformed address
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UsageError(f"cannot connect to the Dask scheduler {settings.dask_scheduler!r}: {reason}") from None
    with client:
        futures = {client.submit(_run_limited, fn, subject, runs, settings, key=f"bidsmrs-sub-{subject}",
                                 pure=False): subject for subject, runs in items}
        from distributed import as_completed as dask_completed

        for done, fut in enumerate(dask_completed(list(futures)), 1):
            subject = futures[fut]
            try:
                results[subject] = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not run
                log.error("sub-%s: Dask task failed: %s: %s", subject, type(exc).__name__, exc)
                results[subject] = _failed(subject, f"Dask task failed: {type(exc).__name__}: {exc}")
            log.info("[%d/%d] sub-%s finished", done, len(items), subject)
    return [results[s] for s, _ in items]
