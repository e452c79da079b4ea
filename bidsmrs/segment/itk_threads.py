"""Run ITK/ANTs code with a chosen number of threads without changing the caller's environment."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["itk_threads", "ITK_THREADS_VARIABLE"]

logger = logging.getLogger(__name__)

ITK_THREADS_VARIABLE = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"


@contextlib.contextmanager
def itk_threads(n_threads: int) -> Iterator[None]:
    """Set ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` for the duration of a block, then restore it.

    Parameters
    ----------
    n_threads : int
        Number of ITK threads (≥ 1).

    Notes
    -----
    ITK reads this variable once per process, at its first multi-threaded call, and keeps the
    value (measured with antspyx 0.6.3: later changes of the variable do not change the thread
    pool). The setting therefore takes effect only if the block contains the first ITK call of
    the process; a BIDS-App should also set the variable at start-up (or in the container
    ``ENV``) so that every segmentation honours it.

    Examples
    --------
    >>> before = os.environ.get(ITK_THREADS_VARIABLE)
    >>> with itk_threads(1):
    ...     os.environ[ITK_THREADS_VARIABLE]
    '1'
    >>> os.environ.get(ITK_THREADS_VARIABLE) == before
    True
    """
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    previous = os.environ.get(ITK_THREADS_VARIABLE)
    os.environ[ITK_THREADS_VARIABLE] = str(int(n_threads))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ITK_THREADS_VARIABLE, None)
        else:
            os.environ[ITK_THREADS_VARIABLE] = previous
