"""File sources: globs of result files, and their contents as SQL tables in an in-process DuckDB."""

from __future__ import annotations

import glob
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import SourceError
from runner.results import ErrorCategory
from runner.sources.sql import Interrupter, SqlSource

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import sqlalchemy as sa

FORMATS = ("json", "ndjson", "csv", "parquet")
_SUFFIX_FORMATS = {
    ".json": "json",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
}
_READERS = {
    "json": "read_json_auto({files}, union_by_name = true)",
    "ndjson": "read_json_auto({files}, format = 'newline_delimited', union_by_name = true)",
    "csv": "read_csv_auto({files}, union_by_name = true)",
    "parquet": "read_parquet({files}, union_by_name = true)",
}
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class FileTable:
    """Files whose contents are exposed as one SQL table."""

    name: str
    patterns: tuple[str, ...]
    format: str


def infer_format(pattern: str) -> str | None:
    """The file format a glob's suffix implies, if any."""
    return _SUFFIX_FORMATS.get(Path(pattern).suffix.lower())


def expand(patterns: tuple[str, ...] | list[str]) -> list[Path]:
    """Regular files matching any of ``patterns``, sorted, without duplicates."""
    found = {Path(p) for pattern in patterns for p in glob.glob(pattern, recursive=True)}
    return sorted(p for p in found if p.is_file())


def glob_root(pattern: str) -> Path:
    """The fixed leading folder of a glob: ``/data/results/*/run_*.json`` → ``/data/results``."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


class FileSource:
    """Result files matched by globs; optional tables over their contents, queried with DuckDB."""

    kind = "files"

    def __init__(self, name: str, patterns: list[str], tables: list[FileTable]) -> None:
        self.name = name
        self.patterns = tuple(patterns)
        self.tables = tables
        self.display_url = ", ".join(self.patterns) or ", ".join(
            p for t in tables for p in t.patterns
        )
        self._sql: SqlSource | None = None
        self._views: dict[str, str] = {}
        self._skipped: list[str] = []
        self._empty: dict[str, str] = {}
        self._lock = threading.Lock()

    def paths(self) -> list[Path]:
        return expand(self.patterns)

    def roots(self) -> list[Path]:
        return [glob_root(p) for p in self.patterns]

    def secrets(self) -> list[str]:
        return []

    def notes(self) -> list[str]:
        return list(self._skipped)

    def execute(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        parts = self.stream(stmt, params, interrupter, deadline=deadline)
        return [row for part in parts for row in part]

    def arrow(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> pa.Table:
        """Query the tables into Arrow; see ``SqlSource.arrow``."""
        with self._tables() as sql:
            return sql.arrow(stmt, params, interrupter, deadline=deadline)

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]:
        """The names of the columns ``stmt`` returns; see ``SqlSource.columns``."""
        with self._tables() as sql:
            return sql.columns(stmt, params, deadline=deadline)

    def stream(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        batch: int = 50_000,
        deadline: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Query the tables (DuckDB in memory); see ``SqlSource.stream``."""
        with self._tables() as sql:
            yield from sql.stream(stmt, params, interrupter, batch=batch, deadline=deadline)

    def dialect(self) -> sa.Dialect:
        return self._sql_source().dialect()

    def close(self) -> None:
        if self._sql is not None:
            self._sql.close()

    @contextmanager
    def _tables(self) -> Iterator[SqlSource]:
        """The DuckDB over the tables, its errors naming a table whose files all failed."""
        sql = self._sql_source()
        try:
            yield sql
        except SourceError as exc:
            raise self._explain_empty(exc) from exc

    def _sql_source(self) -> SqlSource:
        with self._lock:
            if self._sql is None:
                if not self.tables:
                    raise SourceError(
                        f"Source '{self.name}' has no tables; add 'tables:' to query its files",
                        category=ErrorCategory.CONFIG,
                    )
                for table in self.tables:
                    self._prepare(table)
                self._sql = SqlSource(
                    self.name, "duckdb:///:memory:", on_connect=self._create_views
                )
            return self._sql

    def _prepare(self, table: FileTable) -> None:
        import duckdb  # not at module level: a file source without tables never needs it

        files = expand(table.patterns)
        good: list[Path] = []
        bad: list[str] = []
        with duckdb.connect() as probe:  # one for all files: connecting takes milliseconds
            for path in files:
                problem = _unreadable_reason(path, table.format, probe)
                (bad.append(f"{path} ({problem})") if problem else good.append(path))
        if bad:
            self._skipped.append(
                f"{len(bad)} of {len(files)} files behind table '{table.name}' skipped as "
                f"unreadable: {'; '.join(bad[:5])}"
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            )
        if not good:
            self._empty[table.name] = ", ".join(table.patterns)
            return
        listing = "[" + ", ".join(_sql_string(str(p)) for p in good) + "]"
        reader = _READERS[table.format].format(files=listing)
        self._views[table.name] = f'CREATE VIEW "{table.name}" AS SELECT * FROM {reader}'

    def _create_views(self, dbapi_conn: Any) -> None:
        for ddl in self._views.values():
            dbapi_conn.execute(ddl)

    def _explain_empty(self, exc: SourceError) -> SourceError:
        for table, patterns in self._empty.items():
            if exc.category is ErrorCategory.SCHEMA_MISMATCH and table in exc.message:
                return SourceError(
                    f"Table '{table}' of source '{self.name}' has no readable files ({patterns})",
                    category=ErrorCategory.DATA_MALFORMED,
                    detail=exc.detail,
                )
        return exc


def _unreadable_reason(path: Path, fmt: str, probe: duckdb.DuckDBPyConnection) -> str | None:
    """Why DuckDB could not read ``path`` as ``fmt``, or None when it can (asking ``probe``).
    A JSON file must be complete, valid JSON (the inspector's reason says how it is not), and
    JSON DuckDB reads to its end: it refuses some valid JSON (a lone surrogate escape, nesting
    past 128 levels), which only a full read finds, where DESCRIBE samples the first records."""
    import duckdb

    statement = "DESCRIBE SELECT * FROM {reader}"
    if fmt in ("json", "ndjson"):
        from runner.sources.json_files import JsonFileInspector

        problems = JsonFileInspector().inspect(path)
        if problems:
            return problems[0].reason
        statement = "SELECT count(*) FROM {reader}"
    reader = _READERS[fmt].format(files=_sql_string(str(path)))
    try:
        probe.execute(statement.format(reader=reader))
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
