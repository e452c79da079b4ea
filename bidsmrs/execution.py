"""Run participants serially, in a local process pool (``--nprocs``) or on Dask (``--dask-scheduler``).

Every task is one participant: ``fn(subject, runs, settings) -> SubjectOutcome``; ``fn`` never
raises (it records failures itself). A worker that dies (killed, out of memory) is recorded as
that participant's failure; the others go on. Numeric libraries are limited to
``--omp-nthreads`` threads per worker so N workers never oversubscribe the machine.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Mapping, Sequence

log = logging.getLogger("bidsmrs.execution")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "NUMEXPR_NUM_THREADS")


def _limit_threads(n: int) -> None:
    """Pin numeric libraries of this (worker) process to ``n`` threads."""
    for var in _THREAD_VARS:  # for libraries that read them at load time (a worker's own environment)
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def _run_limited(fn, subject, runs, settings):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(settings.omp_nthreads):
        return fn(subject, runs, settings)


def map_subjects(fn: Callable, by_subject: Mapping[str, Sequence], settings) -> list:
    """Apply ``fn`` to every participant; results in participant order."""
    items = sorted(by_subject.items())
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
    with ProcessPoolExecutor(max_workers=workers, initializer=_limit_threads,
                             initargs=(settings.omp_nthreads,)) as pool:
        futures = {pool.submit(fn, subject, runs, settings): subject for subject, runs in items}
        for done, fut in enumerate(as_completed(futures), 1):
            subject = futures[fut]
            try:
                results[subject] = fut.result()
            except Exception as exc:  # the worker process died
                log.error("sub-%s: worker process failed: %s", subject, exc)
                results[subject] = _failed(subject, f"worker process failed: {exc}")
            log.info("[%d/%d] sub-%s finished", done, len(items), subject)
    return [results[s] for s, _ in items]


def _map_dask(fn, items, settings) -> list:
    try:
        from distributed import Client
    except ImportError:
        from bidsmrs.errors import UsageError

        raise UsageError("--dask-scheduler needs the optional Dask support: pip install 'bidsmrs[dask]'") from None
    log.info("submitting %d participants to the Dask scheduler at %s", len(items), settings.dask_scheduler)
    results = {}
    with Client(settings.dask_scheduler) as client:
        futures = {client.submit(_run_limited, fn, subject, runs, settings, key=f"bidsmrs-sub-{subject}",
                                 pure=False): subject for subject, runs in items}
        from distributed import as_completed as dask_completed

        for done, fut in enumerate(dask_completed(list(futures)), 1):
            subject = futures[fut]
            try:
                results[subject] = fut.result()
            except Exception as exc:
                log.error("sub-%s: Dask task failed: %s", subject, exc)
                results[subject] = _failed(subject, f"Dask task failed: {exc}")
            log.info("[%d/%d] sub-%s finished", done, len(items), subject)
    return [results[s] for s, _ in items]
