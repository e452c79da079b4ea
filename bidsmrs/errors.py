"""User-facing exceptions.

Every error a user can cause carries a one-line message that names the file (when there
is one) and the problem, so the command line can print it without a traceback.
"""
from __future__ import annotations

from pathlib import Path


class BidsMrsError(Exception):
    """Base class of all errors bidsmrs raises on purpose."""

    exit_code = 70

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(BidsMrsError):
    """The command line asks for something impossible (exit 64)."""

    exit_code = 64


class InputError(BidsMrsError):
    """An input file or the dataset is invalid (exit 65 when it stops the whole run)."""

    exit_code = 65


class NoDataError(InputError):
    """The request matches no MRS data."""


class FitError(BidsMrsError):
    """The model could not be fitted to a spectrum."""

    exit_code = 1


class QuantificationError(BidsMrsError):
    """Concentrations cannot be computed honestly (e.g. TE or TR missing)."""

    exit_code = 1
