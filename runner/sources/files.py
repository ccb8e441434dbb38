"""File sources: globs of result files, and their contents as SQL tables in an in-process DuckDB."""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from runner.errors import SourceError
from runner.results import ErrorCategory, SourceInfo
from runner.sources.duck import DuckDBSource, sandbox_duckdb
from runner.sources.objects import Store, any_url, is_url, listing, secret_values
from runner.sources.objects import inspect as inspect_objects
from runner.sources.sql import Access, Interrupter, read_only_url

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
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""What a file table may be called: a plain identifier (it becomes a DuckDB view name)."""
_GLOB_CHARS = frozenset("*?[")


class TableEngine(Protocol):
    """What runs statements over a file source's tables: DuckDB (a ``DuckDBSource``) by default,
    Spark with ``engine: spark`` (``runner.sources.spark_files``)."""

    def stream(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        batch: int = 50_000,
        deadline: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]: ...

    def arrow(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> pa.Table: ...

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]: ...


@dataclass(frozen=True)
class FileTable:
    """Files whose contents are exposed as one SQL table."""

    name: str
    patterns: tuple[str, ...]
    format: str


def infer_format(pattern: str) -> str | None:
    """The file format a glob's suffix implies, if any."""
    return _SUFFIX_FORMATS.get(Path(pattern).suffix.lower())


def expand(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Regular files matching any of ``patterns`` (as ``glob`` matches them), sorted, without
    duplicates. Paths stay strings, and whether a match is a file is read from its folder's
    directory entries, one listing per folder rather than a ``stat`` per file: a result folder
    holds tens of thousands of files."""
    return sorted({path for pattern in patterns for path in _listed(pattern)})


def _listed(pattern: str) -> list[str]:
    """The regular files ``pattern`` matches. The common glob, a pattern of file names in some
    folders (``results/*/run_*.json``), lists each folder once, matching and typing its entries
    together: the strings ``glob`` would give, without its listing again to tell files."""
    folder, name = os.path.split(pattern)
    if not _GLOB_CHARS & set(name) or name == "**":
        by_folder: dict[str, list[str]] = {}
        for path in glob.glob(pattern, recursive=True):
            by_folder.setdefault(os.path.dirname(path), []).append(path)
        return [p for folder, paths in by_folder.items() for p in _files_among(folder, paths)]
    if not _GLOB_CHARS & set(folder):
        folders = [folder]
    else:  # with a trailing slash glob gives folders only; "**" also matches no folder at all
        folders = glob.glob(os.path.join(folder, ""), recursive=True)
        folders += [""] if folder == "**" else []
    return [path for folder in folders for path in _files_named(folder, name)]


def _files_named(folder: str, pattern: str) -> list[str]:
    """The regular files (or links to one) in ``folder`` whose names match ``pattern``; names
    starting with a dot only when the pattern does, as ``glob`` has it."""
    try:
        with os.scandir(folder or ".") as listing:
            entries = {entry.name: entry for entry in listing}
    except OSError:  # not a folder, gone, or not readable: glob matches nothing there either
        return []
    names = entries if pattern.startswith(".") else [n for n in entries if n[0] != "."]
    prefix = os.path.join(folder, "")  # "" or the folder with one trailing slash, as glob joins
    return [prefix + name for name in fnmatch.filter(names, pattern) if _is_file(entries[name])]


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # from the directory entry; a stat only for a link
    except OSError:
        return False


def _files_among(folder: str, paths: list[str]) -> list[str]:
    """Those of ``paths`` (all in ``folder``) that are regular files, or links to one."""
    if len(paths) == 1:
        return paths if os.path.isfile(paths[0]) else []
    try:
        with os.scandir(folder or ".") as entries:
            names = {e.name for e in entries if e.is_file()}  # a stat only for links
    except OSError:
        return [p for p in paths if os.path.isfile(p)]
    return [p for p in paths if os.path.basename(p) in names]


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
    """Result files matched by globs; optional tables over their contents, queried with DuckDB
    (in memory, sandboxed to the files behind the tables and the source's ``allow_paths``)."""

    def __init__(
        self,
        name: str,
        patterns: list[str],
        tables: list[FileTable],
        *,
        allow_paths: tuple[str, ...] = (),
        unreadable: Literal["error", "skip"] = "error",
        store: Store | None = None,
    ) -> None:
        self.name = name
        self.store = store or Store()
        """How files named by URL (``s3://…``) are reached."""
        self.unreadable = unreadable
        """What a skipped file means for a check that read its table: with "error" (the
        default) the check can FAIL on what it saw but never PASS (SPEC §6)."""
        self.patterns = tuple(patterns)
        self.tables = tables
        self.display_url = ", ".join(self.patterns) or ", ".join(
            p for t in tables for p in t.patterns
        )
        self._allow_paths = allow_paths
        self._sql = (
            DuckDBSource(
                name,
                "duckdb:///:memory:",
                access=Access(folders=allow_paths),
                on_connect=self._views,
            )
            if tables
            else None
        )
        """DuckDB over the tables; none for a source without tables (no DuckDB imported)."""
        self._files: dict[str, list[str]] = {}
        """Table name → the readable files behind it, once the tables are prepared."""
        self._prepared = False
        self._skipped: dict[str, str] = {}
        """Table name → the note naming the files skipped behind it."""
        self._empty: dict[str, str] = {}
        self._lock = threading.Lock()

    def info(self) -> SourceInfo:
        return SourceInfo(name=self.name, kind="files", location=self.display_url)

    def secrets(self) -> list[str]:
        return secret_values()

    @property
    def fails_closed(self) -> bool:
        """Whether a check that read a table with skipped files may not PASS."""
        return self.unreadable == "error"

    def notes_for(self, sql: str) -> list[str]:
        """The notes about files skipped behind the tables ``sql`` may read: every table whose
        name appears in it as a word (a column of that name counts too: when in doubt, the
        files it may have missed are named)."""
        return [note for table, note in self._skipped.items() if _names(sql, table)]

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
        """Query the tables into Arrow; see ``DuckDBSource.arrow``."""
        with self._tables(interrupter, deadline) as sql:
            return sql.arrow(stmt, params, interrupter, deadline=deadline)

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]:
        """The names of the columns ``stmt`` returns; see ``DuckDBSource.columns``."""
        with self._tables(None, deadline) as sql:
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
        """Query the tables (DuckDB in memory); see ``DuckDBSource.stream``."""
        with self._tables(interrupter, deadline) as sql:
            yield from sql.stream(stmt, params, interrupter, batch=batch, deadline=deadline)

    def dialect(self) -> sa.Dialect:
        """DuckDB's dialect, without reading a file (``--explain`` reads no data)."""
        if self._sql is None:
            raise self._no_tables()
        return self._sql.dialect()

    def close(self) -> None:
        if self._sql is not None:
            self._sql.close()

    @contextmanager
    def _tables(
        self, interrupter: Interrupter | None, deadline: float | None
    ) -> Iterator[TableEngine]:
        """The DuckDB over the tables, its errors naming a table whose files all failed (the
        interrupter and deadline are the statement's: an engine that reads the files when it
        prepares its tables stops at them too)."""
        self._prepare_tables()
        assert self._sql is not None  # there are tables
        try:
            yield self._sql
        except SourceError as exc:
            raise self._explain_empty(exc) from exc

    def _prepare_tables(self) -> None:
        """Find the readable files behind each table, once, before DuckDB first connects."""
        with self._lock:
            if self._prepared:
                return
            if self._sql is None:
                raise self._no_tables()
            for table in self.tables:
                self._prepare(table)
            files = tuple(f for listed in self._files.values() for f in listed)
            self._sql.access = Access(files=files, folders=self._allow_paths)
            self._prepared = True

    def _no_tables(self) -> SourceError:
        return SourceError(
            f"Source '{self.name}' has no tables; add 'tables:' to query its files",
            category=ErrorCategory.CONFIG,
        )

    def _prepare(self, table: FileTable) -> None:
        import duckdb  # not at module level: a file source without tables never needs it

        remote = any_url(table.patterns)
        listed = listing(table.patterns, self.store) if remote else {}
        files = list(listed) if remote else expand(table.patterns)
        known = self._object_problems(table, listed)
        good: list[str] = []
        bad: list[str] = []
        config = read_only_url("duckdb:///:memory:")[1]["config"]
        with duckdb.connect(config=config) as probe:  # one for all files: connecting takes ms
            self._register(probe, files)
            sandbox_duckdb(probe, files, [])
            for path in files:
                problem = known.get(path) or self._reason(path, table.format, probe, remote)
                (bad.append(f"{path} ({problem})") if problem else good.append(path))
        if bad:
            self._skipped[table.name] = unread_note(table.name, bad, len(files))
        if not good:
            self._empty[table.name] = ", ".join(table.patterns)
            return
        self._files[table.name] = good

    @staticmethod
    def _reason(path: str, fmt: str, probe: Any, remote: bool) -> str | None:
        if remote:  # the inspector has read every JSON object already
            return _unreadable_reason(path, fmt, probe, inspected=True)
        return _unreadable_reason(path, fmt, probe)

    def _object_problems(self, table: FileTable, listed: dict[str, int]) -> dict[str, str]:
        """URL → why the JSON object cannot be read, for a JSON table over objects: all of them
        read concurrently, ahead of DuckDB's probe of each."""
        if not listed or table.format not in ("json", "ndjson"):
            return {}
        from runner.sources.json_files import JsonFileInspector

        found = inspect_objects(JsonFileInspector(), listed, self.store, lambda: None)
        return {problem.path: problem.reason for problem in reversed(found.problems)}

    def _register(self, conn: Any, files: list[str]) -> None:
        """Let DuckDB read the objects among ``files`` through their fsspec filesystems (the
        sandbox still allows only the files listed)."""
        for scheme in dict.fromkeys(f.partition("://")[0] for f in files if is_url(f)):
            conn.register_filesystem(self.store.filesystem(f"{scheme}://"))

    def _views(self, dbapi_conn: Any) -> None:
        """Each table as a view over its files, built through DuckDB's relation API: neither a
        table name nor a file name is ever pasted into SQL."""
        self._register(dbapi_conn, [f for files in self._files.values() for f in files])
        formats = {table.name: table.format for table in self.tables}
        for name, files in self._files.items():
            read(dbapi_conn, formats[name], files).create_view(name, replace=True)

    def _explain_empty(self, exc: SourceError) -> SourceError:
        for table, patterns in self._empty.items():
            if exc.category is ErrorCategory.SCHEMA_MISMATCH and table in exc.message:
                return SourceError(
                    f"Table '{table}' of source '{self.name}' has no readable files ({patterns})",
                    category=ErrorCategory.DATA_MALFORMED,
                    detail=exc.detail,
                )
        return exc


def unread_note(table: str, bad: list[str], total: int, what: str = "skipped as unreadable") -> str:
    """The note naming the files behind ``table`` that were not read (each ``path (reason)``,
    the first five listed): what a check that read the table reports, and what keeps it from
    passing (SPEC §6). ``what`` says what became of them."""
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"{len(bad)} of {total} files behind table '{table}' {what}: {'; '.join(bad[:5])}{more}"


def _names(sql: str, table: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(table)}(?![A-Za-z0-9_])", sql, re.I) is not None


def read(conn: Any, fmt: str, files: list[str]) -> Any:
    """A DuckDB relation over ``files`` read as ``fmt``, columns matched by name across files."""
    if fmt == "json":
        return conn.read_json(files, union_by_name=True)
    if fmt == "ndjson":
        return conn.read_json(files, format="newline_delimited", union_by_name=True)
    if fmt == "csv":
        return conn.read_csv(files, union_by_name=True)
    return conn.read_parquet(files, union_by_name=True)


def _unreadable_reason(
    path: str, fmt: str, probe: duckdb.DuckDBPyConnection, *, inspected: bool = False
) -> str | None:
    """Why DuckDB could not read ``path`` as ``fmt``, or None when it can (asking ``probe``).
    A JSON file must be complete, valid JSON (the inspector's reason says how it is not), and
    JSON DuckDB reads to its end: it refuses some valid JSON (a lone surrogate escape, nesting
    past 128 levels), which only a full read finds, where reading the schema samples the first
    records. ``inspected``: the inspector has read the file already (an object, read
    concurrently with the others)."""
    import duckdb

    full_read = fmt in ("json", "ndjson")
    if full_read and not inspected:
        from runner.sources.json_files import JsonFileInspector

        problems = JsonFileInspector().inspect(path)
        if problems:
            return problems[0].reason
    try:
        relation = read(probe, fmt, [str(path)])
        if full_read:
            relation.aggregate("count(*)").fetchall()
        else:
            relation.columns  # noqa: B018  (reading the schema is the probe)
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None
