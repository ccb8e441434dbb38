"""DuckDB sources on DuckDB's own Python connection, with no SQLAlchemy engine in between.

Statements are still built once, as SQLAlchemy constructs, and compiled by ``DuckDBDialect``:
PostgreSQL's compiler (what DuckDB's SQL follows) with DuckDB's reserved words and ``$n``
parameters. What DuckDB then runs is exactly what ``--explain`` prints. Running it on the
native connection spares a run the import of an engine, its pool and its result machinery
(a tenth of a second of every ``postrun check`` process).

One root connection per source is opened read-only and sandboxed (``sandbox_duckdb``); each
statement runs on a cursor of it (``DuckDBPyConnection.cursor()``, a duplicate sharing the
root's database and settings), so checks run in parallel and each can be interrupted alone.
DuckDB keeps one database instance per file, and once its configuration is locked a second
connection could not even turn its progress bar off, while a cursor inherits the root's
settings. A file source's views live on the root, so every cursor sees them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from runner.errors import SourceError
from runner.redact import mask_url, url_secrets
from runner.results import ErrorCategory, SourceInfo
from runner.sources import sql
from runner.sources.sql import (
    Access,
    Interrupter,
    jsonable,
    missing_file,
    opening_url,
)
from runner.sources.sql import translate_error as _translate

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import sqlalchemy as sa


class DuckDBSource:
    """A DuckDB database file (or an in-memory database) read through one sandboxed root
    connection, opened once and lazily."""

    fails_closed = False
    """A database skips nothing it reads (see ``FileSource.fails_closed``)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        access: Access | None = None,
        on_connect: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.display_url = mask_url(url)
        self.access = access or Access()
        """What the sandbox allows besides the database file (a file source sets its files
        before the first statement)."""
        self.role = None
        self._on_connect = on_connect
        """Called with the root connection once it is sandboxed (a file source's views)."""
        from runner.sources.duckdb_dialect import duckdb_dialect

        self._dialect = duckdb_dialect()
        """Made here, on the thread that opens the sources: SQLAlchemy's PostgreSQL package
        (whose compiler DuckDB's dialect uses) imports itself circularly, and two check threads
        importing it at once could see it half-initialised."""
        self._root: duckdb.DuckDBPyConnection | None = None
        self._failure: SourceError | None = None
        self._lock = threading.Lock()

    def info(self) -> SourceInfo:
        return SourceInfo(name=self.name, kind="database", location=self.display_url)

    def secrets(self) -> list[str]:
        return url_secrets(self.url)

    def notes_for(self, sql: str) -> list[str]:
        return []

    def dialect(self) -> sa.Dialect:
        """DuckDB's dialect, without opening the database (``--explain`` reads nothing)."""
        return self._dialect

    def execute(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run one read statement and return its rows as JSON-ready dicts."""
        parts = self.stream(stmt, params, interrupter, batch=0, deadline=deadline)
        return [row for part in parts for row in part]

    def stream(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        batch: int = 50_000,
        deadline: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Run one read statement and yield its rows in batches of ``batch`` (``0``: all at
        once). DuckDB has no server-side deadline: ``interrupter`` receives the function that
        stops the statement, which the engine calls at the deadline."""
        sql, args = self._compile(stmt, params)
        with self._cursor(interrupter) as cursor:
            cursor.execute(sql, args)
            keys, parsers = _columns(cursor)
            while True:
                rows = cursor.fetchmany(batch) if batch else cursor.fetchall()
                if rows:
                    yield _rows(keys, parsers, rows)
                if not batch or len(rows) < batch:
                    return

    def arrow(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> pa.Table:
        """Run one read statement straight into Arrow, DuckDB's types kept (a DATE stays a
        date, a DECIMAL a decimal), for dataframe libraries."""
        sql, args = self._compile(stmt, params)
        with self._cursor(interrupter) as cursor:
            return cursor.sql(sql, params=args).to_arrow_table()

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]:
        """The names of the columns ``stmt`` returns, without fetching its rows."""
        sql, args = self._compile(stmt, params)
        with self._cursor(None) as cursor:
            cursor.execute(sql, args)
            return [d[0] for d in cursor.description or ()]

    def close(self) -> None:
        with self._lock:
            if self._root is not None:
                with suppress(Exception):  # closed already with the process's last cursor
                    self._root.close()
            self._root = None

    def _compile(self, stmt: sa.Executable, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The statement's text for DuckDB and its positional parameters, lists expanded for
        ``IN`` as SQLAlchemy expands them."""
        compiled = stmt.compile(dialect=self.dialect())  # type: ignore[attr-defined]
        expanded = compiled.construct_expanded_state(params)
        return expanded.statement, list(expanded.positional_parameters)

    @contextmanager
    def _cursor(self, interrupter: Interrupter | None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the root for one statement: ``interrupter`` gets the function that stops
        it, and DuckDB's errors become ``SourceError``."""
        import duckdb

        cursor = self._new_cursor()
        if interrupter is not None:
            interrupter(lambda: sql.interrupt(cursor))  # looked up when called (tests wrap it)
        try:
            yield cursor
        except duckdb.Error as exc:
            raise _translate(exc, self, connecting=False) from exc
        finally:
            if interrupter is not None:
                interrupter(None)
            cursor.close()

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the root, which is opened first if need be (a connection is not made to
        be shared between threads: cursors are taken from it one at a time). The first failure
        to open is remembered and raised for every caller."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._root is None:
                try:
                    self._root = self._connect()
                except SourceError as exc:
                    self._failure = exc
                    raise
            return self._root.cursor()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        url, connect_args = opening_url(self)
        database = url.database if url.database not in (None, "") else ":memory:"
        memory = database.startswith(":memory:")
        if not memory and not os.path.exists(database):
            raise missing_file(self.name, database)
        config = {**{k: _text(v) for k, v in url.query.items()}, **connect_args["config"]}
        try:
            read_only = connect_args.get("read_only", False)
            root = duckdb.connect(database, read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise _translate(exc, self, connecting=True) from exc
        try:
            self._prepare(root, None if memory else database)
        except BaseException as exc:
            root.close()
            if isinstance(exc, duckdb.Error):
                raise _translate(exc, self, connecting=True) from exc
            raise
        return root

    def _prepare(self, root: duckdb.DuckDBPyConnection, database: str | None) -> None:
        access = self.access  # read now: a file source learns its files late
        files = (*(() if database is None else (database,)), *access.files)
        if _sandboxed(root):
            # DuckDB keeps one instance, and so one sandbox, per file: another source of this
            # process opened it first, and may only have allowed what this one needs too.
            if not _allows(root, files, access.folders):
                raise SourceError(
                    f"Source '{self.name}' reads {database}, which another source opened with "
                    "other allow_paths: DuckDB keeps one sandbox per file, so give the sources "
                    "on one file the same allow_paths",
                    category=ErrorCategory.CONFIG,
                )
        else:
            sandbox_duckdb(root, files, access.folders)
        if self._on_connect is not None:
            self._on_connect(root)


def sandbox_duckdb(conn: Any, files: Sequence[str], folders: Sequence[str]) -> None:
    """Lock a fresh DuckDB connection down: no file outside ``files`` and ``folders`` (the
    source's own database file, the files behind its tables, its ``allow_paths``), no network,
    no extension installed or loaded, and the configuration locked so that no statement can
    undo it (DuckDB takes the allowed paths only once it is open). No progress bar is drawn on
    postrun's stdout."""
    conn.execute("SET enable_progress_bar = false")
    conn.execute("SET allowed_paths = $1", [list(files)])
    conn.execute("SET allowed_directories = $1", [[_folder(f) for f in folders]])
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


def _sandboxed(conn: Any) -> bool:
    row = conn.execute("select current_setting('enable_external_access')").fetchone()
    return row is not None and row[0] is False


def _allows(conn: Any, files: Sequence[str], folders: Sequence[str]) -> bool:
    row = conn.execute(
        "select current_setting('allowed_paths'), current_setting('allowed_directories')"
    ).fetchone()
    paths, directories = (set(row[0]), set(row[1])) if row is not None else (set(), set())
    return set(files) <= paths and {_folder(f) for f in folders} <= directories


def _folder(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def _text(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else " ".join(value)


Parser = Callable[[Any], Any] | None


def _columns(cursor: duckdb.DuckDBPyConnection) -> tuple[list[str], list[Parser]]:
    """The result's column names, and for each how its values are read: a JSON column's text
    is parsed (as SQLAlchemy's JSON type reads it), every other value taken as DuckDB gives it."""
    description = cursor.description or []
    keys = [d[0] for d in description]
    parsers: list[Parser] = [_json if str(d[1]) == "JSON" else None for d in description]
    return keys, parsers


def _json(text: Any) -> Any:
    return text if text is None else json.loads(text)


def _rows(
    keys: list[str], parsers: list[Parser], rows: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    if not any(parsers):  # plain rows zipped with the keys: the common case, kept cheap
        return [dict(zip(keys, map(jsonable, row), strict=True)) for row in rows]
    return [
        {
            key: jsonable(value if parse is None else parse(value))
            for key, parse, value in zip(keys, parsers, row, strict=True)
        }
        for row in rows
    ]
