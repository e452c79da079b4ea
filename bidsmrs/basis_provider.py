"""Which basis a run is fitted with: the user's ``--basis`` or the built-in simulated one.

Loading a basis file happens once per process (memoised by path); simulated bases are cached
on disk in ``$BIDSMRS_CACHE`` (else ``~/.cache/bidsmrs``, else the work directory).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from bidsmrs.basis.core import Basis
from bidsmrs.spectrum import Spectrum

log = logging.getLogger("bidsmrs.basis")


@functools.lru_cache(maxsize=8)
def _load_user_basis(path: str) -> Basis:
    from bidsmrs.io.basis_files import load_basis

    return load_basis(path)


def basis_cache_dir(work: Path) -> Path:
    """A writable cache directory for simulated bases (the bidsmrs cache, else the work directory)."""
    from bidsmrs.io.cache import cache_dir

    return cache_dir("basis", fallback=work)


def basis_for(spectrum: Spectrum, run, settings, work: Path) -> Basis:
    """The basis for ``spectrum`` (a processed 1-D spectrum of ``run``)."""
    if settings.basis is not None:
        basis = _load_user_basis(str(settings.basis))
        log.debug("using basis %s (%d components)", settings.basis, len(basis.names))
        return basis
    from bidsmrs.basis.select import default_basis

    return default_basis(spectrometer_mhz=spectrum.spectrometer_mhz, dwell_s=spectrum.dwell_s,
                         n_points=spectrum.n_points, echo_time_s=spectrum.echo_time_s,
                         sequence=settings.sequence, te1_s=settings.te1_s, te2_s=settings.te2_s,
                         mixing_time_s=settings.tm_s if settings.tm_s is not None else spectrum.mixing_time_s,
                         sidecar=dict(run.sidecar), entities=dict(run.entities),
                         ppm_centre=spectrum.ppm_centre, cache_dir=basis_cache_dir(work))
