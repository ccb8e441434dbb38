"""The exception tree of postrun.

    PostrunError                  anything postrun raises on purpose
    ├── UsageError                bad command line or params: exit 2, nothing ran
    ├── SuiteError                an invalid suite file: exit 2, every issue with file and line
    ├── SourceError               a source failed (connect, query, read); carries a category
    ├── CheckConfigError          a check whose spec cannot apply to the data it met
    ├── OutputError               a report could not be written
    └── HistoryError              the history store could not be opened, read or written

Check code never catches: sources translate driver errors into ``SourceError``
and the engine's per-check boundary turns every exception into an ``ERROR``
result (see ``engine.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.results import ErrorCategory


class PostrunError(Exception):
    """Base of every error postrun raises on purpose."""


class UsageError(PostrunError):
    """The command line or a param value is wrong; nothing was run."""


@dataclass(frozen=True)
class SuiteIssue:
    """One problem in a suite file, located by file and line."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


class SuiteError(PostrunError):
    """A suite file is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[SuiteIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class SourceError(PostrunError):
    """A source could not answer: connection, authentication, query or file read."""

    def __init__(
        self,
        message: str,
        *,
        category: ErrorCategory,
        retryable: bool = False,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.retryable = retryable
        self.detail = detail


class CheckConfigError(PostrunError):
    """A check's spec cannot be applied to the data it met (e.g. a scalar query returned rows)."""


class OutputError(PostrunError):
    """A report or verdict file could not be written."""


class HistoryError(PostrunError):
    """The history store could not be opened, read or written (the URL shown masked)."""
