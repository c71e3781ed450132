"""Errors that point at the place in the user's data where something is wrong."""

from __future__ import annotations

from dataclasses import dataclass


class RowError(ValueError):
    """One row is unusable. Raised by format and task code, which do not know where the row came from;
    the pipeline adds the file and line."""


class DataError(Exception):
    """The input as a whole is unusable (missing file, unknown format, unreadable JSON document)."""


@dataclass(frozen=True)
class Rejected:
    """A row that was not taken, with where it was and why."""

    path: str
    line: int
    reason: str
    raw: object  # the parsed row when it parsed, else the raw text of the line

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"
