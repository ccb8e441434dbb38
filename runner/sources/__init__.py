"""Where checks read from: SQL databases (SQLAlchemy) and result files (globs; tables as DuckDB
views, or Spark views with `engine: spark`: ``runner.sources.spark_files``).

Every source offers the same ``Source`` protocol; the context, the engine and the reports know
no other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from runner.sources.duck import DuckDBSource
from runner.sources.files import FileSource
from runner.sources.sql import Access, Interrupter, SqlSource

if TYPE_CHECKING:
    import pyarrow as pa
    import sqlalchemy as sa

    from runner.results import SourceInfo


def database(name: str, url: str, *, access: Access | None = None) -> DuckDBSource | SqlSource:
    """The source for a database URL: DuckDB on its own connection, every other database
    through SQLAlchemy (a Spark URL is ``runner.sources.spark``'s)."""
    scheme = url.partition(":")[0].partition("+")[0].lower()
    if scheme == "duckdb":
        return DuckDBSource(name, url, access=access)
    return SqlSource(name, url, access=access)


def is_spark_url(url: str) -> bool:
    """Whether ``url`` names a Spark source (``sc://`` Spark Connect, or ``spark://local``);
    ``runner.sources.spark`` is imported only for one, and PySpark only once it connects."""
    return url.startswith(("sc://", "spark://"))


class Source(Protocol):
    """What a check may read through: statements with bound params, each stopped at its
    deadline or by the function it hands the interrupter; driver errors as ``SourceError``."""

    name: str

    @property
    def fails_closed(self) -> bool:
        """Whether a check that read skipped (unreadable) data may not PASS."""

    def info(self) -> SourceInfo:
        """What the verdict says of the source, never a secret."""

    def secrets(self) -> list[str]:
        """Values that must never be printed (a URL's password, tokens)."""

    def notes_for(self, sql: str) -> list[str]:
        """Facts about what ``sql`` read that its check should report (skipped files)."""

    def execute(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run one read statement; its rows as JSON-ready dicts."""

    def stream(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        batch: int = 50_000,
        deadline: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Run one read statement; its rows in batches."""

    def arrow(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> pa.Table:
        """Run one read statement; its rows as Arrow, with the database's own types."""

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]:
        """The names of the columns ``stmt`` returns, without fetching its rows."""

    def dialect(self) -> sa.Dialect:
        """The SQL dialect, without connecting or reading anything."""

    def close(self) -> None:
        """Release what the source holds (connections, workers)."""


__all__ = [
    "DuckDBSource",
    "FileSource",
    "Interrupter",
    "Source",
    "SqlSource",
    "database",
    "is_spark_url",
]
