"""A Spark source through Spark Connect: ``sc://host:15002`` (with Spark Connect's own
``;token=…;use_ssl=true`` parameters) or ``spark://local`` for a local Spark Connect session
started in this process (once, and shared by every source on it).

SQL for Spark is compiled by a small SQLAlchemy dialect of Spark SQL (``SparkDialect``), not
transpiled with sqlglot: the checks' user fragments (``where``, ``query``) are written in the
dialect of the database they run on, here Spark SQL, and go into the statement verbatim as
``text()``; a transpiler reading the whole statement as PostgreSQL or DuckDB would re-read
those fragments in a dialect they were not written in (backquoted names, Spark functions). The
constructs the builders generate (count, sum, max, coalesce, CASE, ``FILTER (WHERE …)``, a
window count, LIMIT) read the same in Spark SQL, so a dialect needs only Spark's quoting:
backquoted names, and string literals with backslash escapes. Spark Connect takes no bound
parameters for arbitrary placeholders, so ``:params`` are rendered by the dialect as literals
(``literal_binds``), each value through its type's literal processor: never by formatting user
values into the text. Each literal has the type the other databases bind the value as: a float
is a DOUBLE (``0.1D``; Spark reads a plain ``0.1`` as a DECIMAL), a Decimal an exact DECIMAL
(``1.50BD``), and a negative number stands in parentheses (``n -:v`` must not become ``n --5``,
a comment).

Read-only: every statement sent is the compiled form of a builder's SELECT (user fragments
passed the suite's read-only guard when it loaded), checked once more here to be a single
query (sqlglot, Spark dialect) before it is sent; postrun creates nothing in the catalog.

Timeouts: each statement runs under its own Spark operation tag (``addTag``); the check's
cancel and its deadline call ``interruptTag``, which cancels the Spark job on the server.
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import shutil
import socket
import tempfile
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import default
from sqlalchemy.sql import compiler

from runner.errors import SourceError
from runner.redact import Redactor, mask_url, url_secrets
from runner.results import ErrorCategory, SourceInfo
from runner.sources.sql import Interrupter, jsonable

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.connect.session import SparkSession

LOCAL_URL = "spark://local"
_LOCAL_MASTER = "local[2]"
_LOCAL_CONF = {
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.log.level": "OFF",  # errors reach the report as SourceError, not as JVM log lines
    "spark.sql.session.timeZone": "UTC",
    # Spark's default of 200 partitions after a shuffle is sized for a cluster; on local[2]
    # each of them is a task, and an aggregate over a small table took 0.45 s instead of 0.18 s
    "spark.sql.shuffle.partitions": "4",
}
_CONNECT_TIMEOUT_S = 10.0
_local: dict[str, SparkSession] = {}
_local_lock = threading.Lock()


def local_session() -> SparkSession:
    """The process's local Spark Connect session, started on first use (10-25 s) on a free
    loopback port (so that two processes do not meet on Spark's default 15002), and kept for
    every later source on ``spark://local``."""
    with _local_lock:
        if "session" not in _local:
            _local["session"] = _start_local()
        return _local["session"]


def _start_local() -> SparkSession:
    port = _free_port()
    # Spark makes its warehouse folder at start-up, in the working directory unless told: a
    # read-only gate leaves nothing behind, so it gets a folder of its own, removed at exit
    warehouse = tempfile.mkdtemp(prefix="postrun-spark-")
    atexit.register(shutil.rmtree, warehouse, ignore_errors=True)
    conf = {
        **_LOCAL_CONF,
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.warehouse.dir": warehouse,
    }
    with warnings.catch_warnings():
        # PySpark warns about the pandas version it was tested with, and about the static
        # settings above, which the server took when it started but a session cannot set again.
        warnings.simplefilter("ignore")
        from pyspark.sql.connect.session import SparkSession

        _quiet_query_logs()
        SparkSession._start_connect_server(_LOCAL_MASTER, dict(conf))
        builder = SparkSession.builder.remote(f"sc://localhost:{port}")
        return builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()


def _quiet_query_logs() -> None:
    """PySpark's client logs every failed query, its JVM stack trace included, as a JSON line
    on stderr (loggers of its own, which add their own handler): a gate's output stays its own,
    and the error reaches the report as a SourceError with the trace as its detail."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _reachable(url: str) -> None:
    """Fail fast when nothing listens at a Spark Connect URL's host and port (the client would
    retry for minutes); the error is the socket's, categorised as connectivity."""
    host_port = url.removeprefix("sc://").partition("/")[0].partition(";")[0]
    host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "")
    with socket.create_connection((host, int(port or 15002)), timeout=_CONNECT_TIMEOUT_S):
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the dialect -------------------------------------------------------------------------------


class _SparkIdentifiers(compiler.IdentifierPreparer):
    def __init__(self, dialect: sa.Dialect) -> None:
        super().__init__(dialect, initial_quote="`", escape_quote="`")


class _SparkCompiler(compiler.SQLCompiler):
    def visit_table(self, table: Any, **kw: Any) -> Any:  # type: ignore[override]
        """A table in FROM carries its own name as an explicit alias: Spark does not reserve
        WHERE, so ``FROM t WHERE (flag)`` would read as ``t`` aliased ``WHERE(flag)``."""
        text = super().visit_table(table, **kw)  # type: ignore[no-untyped-call]
        if kw.get("asfrom") and not kw.get("ashint") and kw.get("enclosing_alias") is None:
            return f"{text} AS {self.preparer.quote(table.name)}"
        return text

    def render_literal_value(self, value: Any, type_: Any) -> str:
        """A param's value as a Spark SQL literal, whatever type the placeholder has (a user
        fragment's ``:name`` has none)."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return _signed(str(value))
        if isinstance(value, Decimal):
            return _signed(f"{value:f}BD")  # an exact DECIMAL, as the other databases bind it
        if isinstance(value, float):
            # a DOUBLE, as the other databases bind a float: Spark reads 0.1 as DECIMAL(1,1)
            return (
                _signed(f"{value!r}D") if math.isfinite(value) else f"CAST('{value!r}' AS DOUBLE)"
            )
        if isinstance(value, datetime):
            return f"TIMESTAMP {_string(value.isoformat(sep=' '))}"
        if isinstance(value, date):
            return f"DATE {_string(value.isoformat())}"
        if isinstance(value, str):
            return _string(value)
        return super().render_literal_value(value, type_)


def _signed(number: str) -> str:
    """A negative number in parentheses: after a minus (``n -:v``), ``-5`` would make ``--``,
    which starts a comment in Spark SQL and silently cuts the rest of the line off."""
    return f"({number})" if number.startswith("-") else number


def _string(value: str) -> str:
    """A Spark string literal: Spark reads backslash escapes in them, so both the backslash and
    the quote are escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkDialect(default.DefaultDialect):
    """Spark SQL as SQLAlchemy writes it: backquoted names, backslash-escaped strings,
    ``FILTER (WHERE …)`` on aggregates; statements are compiled with their params as literals."""

    name = "spark"
    statement_compiler = _SparkCompiler
    preparer = _SparkIdentifiers  # type: ignore[assignment]
    supports_statement_cache = True
    supports_native_boolean = True
    paramstyle = "named"
    default_paramstyle = "named"


def spark_sql(stmt: sa.Executable, params: dict[str, Any], dialect: sa.Dialect) -> str:
    """``stmt`` as the Spark SQL text sent, its params rendered as literals by the dialect."""
    if isinstance(stmt, sa.ClauseElement):
        names = {b.key for b in _binds(stmt)}
        bound = stmt.params({k: v for k, v in params.items() if k in names}) if names else stmt
        return str(bound.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return str(stmt)


def _binds(stmt: sa.ClauseElement) -> list[sa.BindParameter[Any]]:
    from sqlalchemy.sql import visitors

    return [e for e in visitors.iterate(stmt) if isinstance(e, sa.BindParameter)]


_QUERY_HEAD = re.compile(r"\s*(\(\s*)*(select|with|values|from|table)\b", re.IGNORECASE)


def single_query_problem(sql: str) -> str | None:
    """Why ``sql`` is not one read query as Spark reads it, or None."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = sqlglot.parse(sql, read="spark")
    except sqlglot.errors.SqlglotError:
        # Spark parses what sqlglot cannot; but Spark runs a command as soon as it reads it, so
        # such a text must at least begin as a query does (the suite's guard read its tokens).
        return None if _QUERY_HEAD.match(sql) else "postrun sends Spark a single read query only"
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        return "postrun sends Spark a single read query only"
    return None


# --- the source --------------------------------------------------------------------------------


class SparkSource:
    """Spark tables and views through one Spark Connect session, connected once and lazily."""

    fails_closed = False
    """Spark skips nothing it reads (see ``FileSource.fails_closed``)."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.display_url = mask_url(url)
        self._session: SparkSession | None = None
        self._failure: SourceError | None = None
        self._lock = threading.Lock()
        self._dialect = SparkDialect()

    def info(self) -> SourceInfo:
        return SourceInfo(name=self.name, kind="database", location=self.display_url)

    def secrets(self) -> list[str]:
        return url_secrets(self.url)

    def notes_for(self, sql: str) -> list[str]:
        return []

    def dialect(self) -> sa.Dialect:
        return self._dialect

    def execute(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run one read statement; its rows as JSON-ready dicts."""
        table = self.arrow(stmt, params, interrupter, deadline=deadline)
        return arrow_rows(table)

    def stream(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        batch: int = 50_000,
        deadline: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Run one read statement; its rows in batches of at most ``batch``. Spark Connect hands
        the answer over as Arrow batches, fetched whole before the first one is yielded: the
        checks that stream (samples, GX's fallback) read bounded statements."""
        table = self.arrow(stmt, params, interrupter, deadline=deadline)
        for part in table.to_batches(max_chunksize=batch or None):
            yield arrow_rows(part)

    def arrow(
        self,
        stmt: sa.Executable,
        params: dict[str, Any],
        interrupter: Interrupter | None = None,
        *,
        deadline: float | None = None,
    ) -> pa.Table:
        """Run one read statement; its rows as Arrow, with Spark's own types."""
        sql = self._checked(stmt, params)
        session = self.session()
        with self._tagged(session, interrupter, deadline):
            return self._call(lambda: session.sql(sql).toArrow())

    def columns(
        self, stmt: sa.Executable, params: dict[str, Any], *, deadline: float | None = None
    ) -> list[str]:
        """The names of the columns ``stmt`` returns: Spark analyses it, runs nothing."""
        sql = self._checked(stmt, params)
        session = self.session()
        names: list[str] = self._call(lambda: list(session.sql(sql).columns))
        return names

    def session(self) -> SparkSession:
        """The connected session; the first failure is remembered and raised for every caller."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._session is None:
                try:
                    self._session = self._connect()
                except SourceError as exc:
                    self._failure = exc
                    raise
            return self._session

    def close(self) -> None:
        """Release a remote session (the local one serves the whole process)."""
        session, self._session = self._session, None
        if session is not None and self.url != LOCAL_URL:
            with _quiet():
                session.stop()

    # --- inside ---------------------------------------------------------------------------

    def _connect(self) -> SparkSession:
        try:
            if self.url == LOCAL_URL:
                return local_session()
            if not self.url.startswith("sc://"):
                raise SourceError(
                    f"Source '{self.name}' has an unusable URL {self.display_url}: a Spark "
                    "source is sc://host:port (Spark Connect) or spark://local",
                    category=ErrorCategory.CONFIG,
                )
            _reachable(self.url)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the pandas version PySpark was tested with
                from pyspark.sql.connect.session import SparkSession

            _quiet_query_logs()
            session = SparkSession.builder.remote(self.url).create()
            # naive timestamps (params, the settle cutoff) are UTC in postrun, as on spark://local
            session.conf.set("spark.sql.session.timeZone", "UTC")
            session.sql("SELECT 1").collect()  # a server that cannot answer fails here
            return session
        except SourceError:
            raise
        except Exception as exc:
            raise self._error(exc, connecting=True) from exc

    def _checked(self, stmt: sa.Executable, params: dict[str, Any]) -> str:
        sql = spark_sql(stmt, params, self._dialect)
        problem = single_query_problem(sql)
        if problem is not None:
            raise SourceError(
                f"Source '{self.name}' refused the statement: {problem}",
                category=ErrorCategory.CONFIG,
            )
        return sql

    @contextmanager
    def _tagged(
        self, session: SparkSession, interrupter: Interrupter | None, deadline: float | None
    ) -> Iterator[None]:
        """The statement runs under a tag of its own; the interrupter and the deadline cancel
        the Spark job through it."""
        tag = f"postrun-{uuid.uuid4().hex}"
        session.addTag(tag)
        stop = _Interrupt(session, tag)
        timer = None
        if deadline is not None:
            timer = threading.Timer(max(deadline - monotonic(), 0.0), stop)
            timer.daemon = True
            timer.start()
        try:
            if interrupter is not None:
                interrupter(stop)
            yield
        except SourceError:
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if interrupter is not None:
                interrupter(None)
            session.removeTag(tag)
        if stop.fired:  # the job ended as it was cancelled: its answer is not trusted
            raise SourceError(
                f"Source '{self.name}': the statement was cancelled",
                category=ErrorCategory.TIMEOUT,
                retryable=True,
            )

    def _call(self, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except Exception as exc:
            if _is_pyspark_error(exc):
                raise self._error(exc, connecting=False) from exc
            raise

    def _error(self, exc: BaseException, *, connecting: bool) -> SourceError:
        raw = str(exc).strip()
        first = raw.splitlines()[0] if raw else type(exc).__name__
        category, retryable = categorize(exc)
        if connecting and category not in (ErrorCategory.AUTH, ErrorCategory.CONFIG):
            category, retryable = ErrorCategory.CONNECTIVITY, True
        if connecting:
            message = f"Could not connect to source '{self.name}' ({self.display_url}): {first}"
        else:
            message = f"Source '{self.name}' refused the query: {first}"
        redact = Redactor(self.secrets())
        return SourceError(
            redact(message), category=category, retryable=retryable, detail=redact(raw)
        )


class _Interrupt:
    """Cancels the Spark operations under one tag; remembers that it did."""

    def __init__(self, session: SparkSession, tag: str) -> None:
        self.session = session
        self.tag = tag
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        with _quiet():
            self.session.interruptTag(self.tag)


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except Exception:  # the session or the operation is already gone
        return


def arrow_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """Arrow rows as JSON-ready dicts (``jsonable`` values, as the SQL sources give them)."""
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return (
        [dict(zip(names, map(jsonable, row), strict=True)) for row in zip(*columns, strict=True)]
        if columns
        else [{} for _ in range(table.num_rows)]
    )


# --- Spark errors → SourceError --------------------------------------------------------------

_CONDITIONS = {
    "TABLE_OR_VIEW_NOT_FOUND": (ErrorCategory.SCHEMA_MISMATCH, False),
    "UNRESOLVED_COLUMN": (ErrorCategory.SCHEMA_MISMATCH, False),
    "SCHEMA_NOT_FOUND": (ErrorCategory.SCHEMA_MISMATCH, False),
    "UNRESOLVED_ROUTINE": (ErrorCategory.QUERY, False),
    "PARSE_SYNTAX_ERROR": (ErrorCategory.CONFIG, False),
    "PARSE_EMPTY_STATEMENT": (ErrorCategory.CONFIG, False),
    "OPERATION_CANCELED": (ErrorCategory.TIMEOUT, True),
    "CAST_INVALID_INPUT": (ErrorCategory.DATA_MALFORMED, False),
    "DIVIDE_BY_ZERO": (ErrorCategory.DATA_MALFORMED, False),
    "INSUFFICIENT_PERMISSIONS": (ErrorCategory.AUTH, False),
}
_SQLSTATE_CLASSES = {
    "42": (ErrorCategory.QUERY, False),
    "22": (ErrorCategory.DATA_MALFORMED, False),
    "28": (ErrorCategory.AUTH, False),
    "08": (ErrorCategory.CONNECTIVITY, True),
}
_GRPC_CODES = {
    "UNAVAILABLE": (ErrorCategory.CONNECTIVITY, True),
    "DEADLINE_EXCEEDED": (ErrorCategory.CONNECTIVITY, True),
    "UNAUTHENTICATED": (ErrorCategory.AUTH, False),
    "PERMISSION_DENIED": (ErrorCategory.AUTH, False),
    "CANCELLED": (ErrorCategory.TIMEOUT, True),
}


def categorize(exc: BaseException) -> tuple[ErrorCategory, bool]:
    """The category of a Spark error: from its error condition, its SQLSTATE, the gRPC status
    a failed connection carries, or its message."""
    condition = _call_or_none(exc, "getCondition")
    if condition:
        head = condition.partition(".")[0]
        if head in _CONDITIONS:
            return _CONDITIONS[head]
    state = _call_or_none(exc, "getSqlState")
    if state and state[:2] in _SQLSTATE_CLASSES:
        return _SQLSTATE_CLASSES[state[:2]]
    text = str(exc)
    for code, found in _GRPC_CODES.items():
        if f"StatusCode.{code}" in text or f"status = {code}" in text:
            return found
    if "cancel" in text.lower() or "interrupt" in text.lower():
        return ErrorCategory.TIMEOUT, True
    if isinstance(exc, OSError) or type(exc).__name__ in (
        "SparkConnectGrpcException",
        "RetriesExceeded",
    ):
        return ErrorCategory.CONNECTIVITY, True
    return ErrorCategory.QUERY, False


def _call_or_none(exc: BaseException, method: str) -> str | None:
    fn = getattr(exc, method, None)
    if not callable(fn):
        return None
    try:
        value = fn()
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _is_pyspark_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("pyspark.", "grpc"))
