"""Basis sets: the Basis object, file formats, spin systems and the built-in simulation.

Public API
----------
- :class:`~bidsmrs.basis.core.Basis`
- :func:`~bidsmrs.io.basis_files.load_basis`, :func:`~bidsmrs.io.basis_files.save_basis`,
  :func:`~bidsmrs.io.basis_files.write_lcmodel_basis` (re-exported lazily)
- :func:`~bidsmrs.basis.sequences.simulate_basis`
- :func:`~bidsmrs.basis.macromolecules.with_macromolecules`
- :func:`~bidsmrs.basis.select.default_basis`
"""
from __future__ import annotations

from bidsmrs.basis.core import Basis, is_macromolecule_name

__all__ = ["Basis", "is_macromolecule_name", "load_basis", "save_basis", "write_lcmodel_basis",
           "simulate_basis", "with_macromolecules", "default_basis"]


def __getattr__(name):  # lazy imports keep `import bidsmrs.basis` light and cycle-free
    if name in ("load_basis", "save_basis", "write_lcmodel_basis"):
        from bidsmrs.io import basis_files
        return getattr(basis_files, name)
    if name == "simulate_basis":
        from bidsmrs.basis.sequences import simulate_basis
        return simulate_basis
    if name == "with_macromolecules":
        from bidsmrs.basis.macromolecules import with_macromolecules
        return with_macromolecules
    if name == "default_basis":
        from bidsmrs.basis.select import default_basis
        return default_basis
    raise AttributeError(f"module 'bidsmrs.basis' has no attribute {name!r}")
