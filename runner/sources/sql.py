"""SQL sources through SQLAlchemy: read-only connections, one connect, driver errors translated."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime, time
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from runner.errors import SourceError
from runner.results import ErrorCategory

if TYPE_CHECKING:
    import pyarrow as pa

_SECRET_WORDS = ("password", "passwd", "pwd", "token", "secret", "key")

# SQLAlchemy finds a dialect it does not ship by reading the entry points of every installed
# package (milliseconds per run); DuckDB's is named here, as duckdb-engine's entry point names it.
sa.dialects.registry.register("duckdb", "duckdb_engine", "Dialect")


def is_secret_key(name: str) -> bool:
    """Whether a URL query parameter holds a secret (sslpassword, access_token, api-key, …)."""
    return any(word in name.lower() for word in _SECRET_WORDS)


Interrupter = Callable[[Callable[[], None] | None], None]
"""Registers the cancel function of the statement in flight (None when it ends)."""

_SQLITE_STEPS = 10_000
"""SQLite virtual-machine steps between two looks at the deadline (well under a millisecond)."""
_CANCEL_TIMEOUT_S = 5.0
_PG_MAX_TIMEOUT_MS = 2**31 - 1
"""The largest statement_timeout PostgreSQL accepts (about 24 days)."""


class SqlSource:
    """A database reached through one SQLAlchemy URL, connected once and lazily."""

    kind = "sql"

    def __init__(self, name: str, url: str, *, on_connect: Callable[[Any], None] | None = None):
        self.name = name
        self.url = url
        self.display_url = mask_url(url)
        self._on_connect = on_connect
        self._engine: Engine | None = None
        """The engine once connected (a ``select 1`` went through)."""
        self._created: Engine | None = None
        """The one engine of this source, from when it is first needed, connected or not."""
        self._failure: SourceError | None = None
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()

    def secrets(self) -> list[str]:
        """Values that must never be printed: the URL's password and secret query values."""
        return url_secrets(self.url)

    def notes(self) -> list[str]:
        """Facts about the source every check on it should report (none for databases)."""
        return []

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
        """Run one read statement and yield its rows in batches (server-side where supported);
        ``batch=0`` fetches everything at once on an ordinary cursor. The database itself stops
        the statement at ``deadline`` (``time.monotonic()``) where it can: PostgreSQL through
        ``statement_timeout``, SQLite through a progress handler; ``interrupter`` receives the
        function that stops it sooner (DuckDB relies on that alone)."""
        with self._statement(deadline, interrupter) as conn:
            options = (
                conn.execution_options(stream_results=True, yield_per=batch) if batch else conn
            )
            result = options.execute(stmt, params)
            keys = list(result.keys())
            # partitions(batch): DuckDB's results ignore yield_per and come one row at a time.
            # Plain rows zipped with the keys: a third of the cost of RowMapping.items().
            for part in result.partitions(batch) if batch else [result.fetchall()]:
                yield [dict(zip(keys, map(jsonable, row), strict=True)) for row in part]

    def arrow(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> pa.Table:
        """Run one read statement and return its rows as an Arrow table that keeps the
        database's types (a DATE stays a date, a DECIMAL a decimal), for dataframe libraries.
        DuckDB hands its result over as Arrow; other drivers' rows are converted column by
        column. Deadlines and cancellation as in ``stream``."""
        with self._statement(deadline, interrupter) as conn:
            if conn.dialect.name == "duckdb":
                return _duckdb_arrow(conn, stmt, params)
            result = conn.execute(stmt, params)
            return rows_to_arrow(list(result.keys()), result.fetchall())

    @contextmanager
    def _statement(
        self, deadline: float | None, interrupter: Interrupter | None
    ) -> Iterator[Connection]:
        """A connection for one read statement: ``interrupter`` gets the function that stops it,
        SQLite stops it at ``deadline``, and driver errors become ``SourceError``."""
        with self.connection(deadline) as conn:
            raw = conn.connection.dbapi_connection
            if interrupter is not None:
                interrupter(lambda: interrupt(raw))
            try:
                with _sqlite_deadline(raw, deadline):
                    yield conn
            except sa.exc.DBAPIError as exc:
                raise translate_error(exc, self, connecting=False) from exc
            finally:
                if interrupter is not None:
                    interrupter(None)

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]:
        """The names of the columns ``stmt`` returns, without fetching its rows."""
        with self.connection(deadline) as conn:
            try:
                return list(conn.execute(stmt, params).keys())
            except sa.exc.DBAPIError as exc:
                raise translate_error(exc, self, connecting=False) from exc

    def dialect(self) -> sa.Dialect:
        """The SQL dialect, without connecting: compiling a statement needs no server."""
        if self._engine is not None:
            return self._engine.dialect
        # An engine connects only when used; the driver sets the dialect's paramstyle.
        return self._create().dialect

    @contextmanager
    def connection(self, deadline: float | None = None) -> Iterator[Connection]:
        """A connection in a fresh read-only transaction (on PostgreSQL ending by ``deadline``)."""
        engine = self.engine()
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise translate_error(exc, self, connecting=True) from exc
        try:
            if conn.dialect.name == "postgresql":
                # Per transaction as well as per session: a user statement that turned the
                # session default off cannot make the next check's transaction writable.
                try:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    if deadline is not None:
                        # The server keeps the deadline even when a cancel never arrives (sent
                        # before the statement began, or postrun already gone).
                        ms = statement_timeout_ms(deadline)
                        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                except sa.exc.DBAPIError as exc:
                    raise translate_error(exc, self, connecting=True) from exc
            yield conn
        finally:
            conn.rollback()
            conn.close()

    def engine(self) -> Engine:
        """The connected engine; the first failure is remembered and raised for every caller."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._engine is None:
                try:
                    self._engine = self._connect()
                except SourceError as exc:
                    self._failure = exc
                    raise
            return self._engine

    def close(self) -> None:
        if self._created is not None:
            self._created.dispose()
        self._engine = self._created = None

    def _create(self) -> Engine:
        """The source's engine, created once, before any connection: a dialect made for
        compiling and the engine that then connects are one (creating a DuckDB dialect runs a
        query, building an engine takes milliseconds)."""
        with self._create_lock:
            if self._created is None:
                self._created = self._new_engine()
            return self._created

    def _new_engine(self) -> Engine:
        try:
            url, connect_args = read_only_url(self.url)
            engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=False)
        except Exception as exc:  # bad URL or missing driver: the user's configuration
            raise SourceError(
                f"Source '{self.name}' has an unusable URL {self.display_url}: {exc}",
                category=ErrorCategory.CONFIG,
                detail=str(exc),
            ) from exc
        on_connect = self._on_connect
        if on_connect is not None:
            sa.event.listen(engine, "connect", lambda dbapi_conn, _: on_connect(dbapi_conn))
        return engine

    def _connect(self) -> Engine:
        engine = self._create()
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise translate_error(exc, self, connecting=True) from exc
        return engine


def statement_timeout_ms(deadline: float) -> int:
    """PostgreSQL's statement_timeout for a statement that must end by ``deadline``."""
    return min(max(math.ceil((deadline - monotonic()) * 1000), 1), _PG_MAX_TIMEOUT_MS)


def read_only_url(url: str) -> tuple[sa.URL, dict[str, Any]]:
    """The URL and connect arguments that open ``url`` read-only where the driver allows."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        memory = parsed.database in (None, "", ":memory:") or str(parsed.database).startswith(
            ":memory:"
        )
        return parsed, ({} if memory else {"read_only": True})
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return parsed, {}
        return parsed.set(database=f"file:{database}", query={"mode": "ro", "uri": "true"}), {}
    if backend == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", ""):
            parsed = parsed.set(drivername="postgresql+psycopg")
        options = "-c default_transaction_read_only=on"
        # prepare_threshold=0: every statement is prepared, so PostgreSQL refuses a query that
        # smuggles several statements ("commit; begin read write; delete …").
        return parsed, {"options": options, "connect_timeout": 10, "prepare_threshold": 0}
    return parsed, {}


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ***."""
    try:
        parsed = make_url(url)
    except Exception:
        return _mask_text(url, url_secrets(url))
    query = {k: ("***" if is_secret_key(k) else v) for k, v in parsed.query.items()}
    # rendering percent-encodes the query, which would show the mask as %2A%2A%2A
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def url_secrets(url: str) -> list[str]:
    """Password and secret query values found in ``url`` (best effort on unparsable URLs)."""
    found: list[str] = []
    try:
        parsed = make_url(url)
    except Exception:
        _, _, query = url.partition("?")
        userinfo = re.match(r"^[^:/]+://[^:/@]*:([^@]*)@", url)
        found = [userinfo[1]] if userinfo and userinfo[1] else []
        return found + [v for k, v in parse_qsl(query) if is_secret_key(k) and v]
    if parsed.password:
        found.append(str(parsed.password))
    for key, value in parsed.query.items():
        if is_secret_key(key):
            found.extend([value] if isinstance(value, str) else list(value))
    # also the URL-encoded forms, as drivers may echo the DSN back
    found.extend(urlencode({"": s})[1:] for s in list(found))
    return [s for s in dict.fromkeys(found) if s]


def _mask_text(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def interrupt(dbapi_conn: Any) -> None:
    """Ask the database to stop the statement running on ``dbapi_conn``. Never blocks the caller
    and never raises: a failed cancel leaves the deadline the database keeps itself."""
    cancel_safe = getattr(dbapi_conn, "cancel_safe", None)
    if callable(cancel_safe):  # psycopg: a round trip to the server, so off the caller's thread
        threading.Thread(
            target=_quietly,
            args=(lambda: cancel_safe(timeout=_CANCEL_TIMEOUT_S),),
            name="postrun-cancel",
            daemon=True,
        ).start()
        return
    for method in ("interrupt", "cancel"):  # DuckDB and sqlite3: interrupt; other drivers: cancel
        fn = getattr(dbapi_conn, method, None)
        if callable(fn):
            _quietly(fn)
            return


def _quietly(fn: Callable[[], object]) -> None:
    # the connection may already be closed, and its statement with it
    with suppress(Exception):
        fn()


@contextmanager
def _sqlite_deadline(dbapi_conn: Any, deadline: float | None) -> Iterator[None]:
    """On SQLite, abort the statement once ``deadline`` has passed: unlike ``interrupt()``, this
    also stops a statement that began after the cancel."""
    set_handler = getattr(dbapi_conn, "set_progress_handler", None)
    if deadline is None or not callable(set_handler):
        yield
        return
    set_handler(lambda: monotonic() >= deadline, _SQLITE_STEPS)
    try:
        yield
    finally:
        set_handler(None, 0)


def _duckdb_arrow(conn: Connection, stmt: sa.Executable, params: dict[str, Any]) -> pa.Table:
    """``stmt`` run by DuckDB straight into Arrow (its DB-API cursor would copy the rows once
    more), with the parameters SQLAlchemy would bind, expanded lists included."""
    import duckdb

    compiled = stmt.compile(dialect=conn.dialect)  # type: ignore[attr-defined]
    expanded = compiled.construct_expanded_state(params)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    try:
        relation = raw.sql(expanded.statement, params=list(expanded.positional_parameters))
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        raise sa.exc.DBAPIError(expanded.statement, None, exc) from exc


def rows_to_arrow(names: list[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Driver rows as an Arrow table, each column's type inferred from its values (Decimal →
    decimal, date → date32, …); a column pyarrow cannot type (mixed values in SQLite, UUIDs)
    becomes text, and a column of NULLs only has Arrow's null type."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.Table.from_arrays([_arrow_column(c) for c in columns], names=names)


def _arrow_column(values: Sequence[Any]) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(jsonable(v)) for v in values], pa.string())


def jsonable(value: Any) -> Any:
    """A database value as something verdict.json can hold."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


# --- driver errors → SourceError -------------------------------------------------------------

_PG_CLASSES = {
    "28": (ErrorCategory.AUTH, False),
    "08": (ErrorCategory.CONNECTIVITY, True),
    "57": (ErrorCategory.CONNECTIVITY, True),
    "53": (ErrorCategory.CONNECTIVITY, True),
    "22": (ErrorCategory.DATA_MALFORMED, False),
    "42": (ErrorCategory.QUERY, False),
}
_PG_CODES = {
    "57014": (ErrorCategory.TIMEOUT, True),
    "42P01": (ErrorCategory.SCHEMA_MISMATCH, False),
    "42703": (ErrorCategory.SCHEMA_MISMATCH, False),
    "3F000": (ErrorCategory.SCHEMA_MISMATCH, False),
    "25006": (ErrorCategory.QUERY, False),
}
_MESSAGE_HINTS = [
    ("password authentication failed", ErrorCategory.AUTH, False),
    ("authentication failed", ErrorCategory.AUTH, False),
    ("permission denied", ErrorCategory.AUTH, False),
    ("no such table", ErrorCategory.SCHEMA_MISMATCH, False),
    ("no such column", ErrorCategory.SCHEMA_MISMATCH, False),
    ("catalog error", ErrorCategory.SCHEMA_MISMATCH, False),
    ("referenced column", ErrorCategory.SCHEMA_MISMATCH, False),
    ("does not exist", ErrorCategory.SCHEMA_MISMATCH, False),
    ("server closed the connection", ErrorCategory.CONNECTIVITY, True),
    ("terminating connection", ErrorCategory.CONNECTIVITY, True),
    ("connection is closed", ErrorCategory.CONNECTIVITY, True),
    ("consuming input failed", ErrorCategory.CONNECTIVITY, True),
    ("interrupt", ErrorCategory.TIMEOUT, True),
    ("canceling statement", ErrorCategory.TIMEOUT, True),
    ("conversion error", ErrorCategory.DATA_MALFORMED, False),
    ("could not convert", ErrorCategory.DATA_MALFORMED, False),
    ("malformed json", ErrorCategory.DATA_MALFORMED, False),
    ("file is not a database", ErrorCategory.DATA_MALFORMED, False),
]


def translate_error(exc: sa.exc.DBAPIError, source: SqlSource, *, connecting: bool) -> SourceError:
    """One ``SourceError`` with a category for whatever the driver raised."""
    orig = exc.orig if exc.orig is not None else exc
    raw = str(orig).strip()
    first_line = raw.splitlines()[0] if raw else type(orig).__name__
    category, retryable = categorize(orig, raw.lower(), connecting=connecting)
    if connecting and category not in (ErrorCategory.AUTH, ErrorCategory.CONFIG):
        category, retryable = ErrorCategory.CONNECTIVITY, True
    if connecting:
        message = (
            f"Could not connect to source '{source.name}' ({source.display_url}): {first_line}"
        )
    else:
        message = f"Source '{source.name}' refused the query: {first_line}"
    secrets = source.secrets()
    return SourceError(
        _mask_text(message, secrets),
        category=category,
        retryable=retryable,
        detail=_mask_text(raw, secrets),
    )


def categorize(orig: BaseException, text: str, *, connecting: bool) -> tuple[ErrorCategory, bool]:
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate in _PG_CODES:
            return _PG_CODES[sqlstate]
        if sqlstate[:2] in _PG_CLASSES:
            return _PG_CLASSES[sqlstate[:2]]
    kind = type(orig).__name__
    if kind == "InterruptException":
        return ErrorCategory.TIMEOUT, True
    if kind == "CatalogException":
        return ErrorCategory.SCHEMA_MISMATCH, False
    if kind in ("ConversionException", "InvalidInputException") and "read-only" not in text:
        return ErrorCategory.DATA_MALFORMED, False
    for hint, category, retryable in _MESSAGE_HINTS:
        if hint in text:
            return category, retryable
    if connecting:
        return ErrorCategory.CONNECTIVITY, True
    return ErrorCategory.QUERY, False
