"""SQL sources through SQLAlchemy (SQLite, PostgreSQL): read-only connections, one connect,
driver errors translated. DuckDB has its own source on its native connection
(``runner.sources.duck``), which shares the URL rules and error translation below."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from runner.errors import SourceError
from runner.redact import Redactor, mask_url, url_problem, url_secrets
from runner.results import ErrorCategory, RoleInfo, SourceInfo

if TYPE_CHECKING:
    import pyarrow as pa

Interrupter = Callable[[Callable[[], None] | None], None]
"""Registers the cancel function of the statement in flight (None when it ends)."""

_SQLITE_STEPS = 10_000
"""SQLite virtual-machine steps between two looks at the deadline (well under a millisecond)."""
_CANCEL_TIMEOUT_S = 5.0
_PG_MAX_TIMEOUT_MS = 2**31 - 1
"""The largest statement_timeout PostgreSQL accepts (about 24 days)."""


@dataclass(frozen=True)
class Access:
    """What a source may reach beyond reading its own tables (SPEC §6, read-only)."""

    files: tuple[str, ...] = ()
    """Files DuckDB may read: the files behind a file source's tables."""
    folders: tuple[str, ...] = ()
    """Folders DuckDB may read (the source's ``allow_paths``)."""
    privileged_role: bool = False
    """Whether a PostgreSQL role that can write is accepted (``allow_privileged_role``)."""


class SqlSource:
    """A database reached through one SQLAlchemy URL, connected once and lazily."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        access: Access | None = None,
    ):
        self.name = name
        self.url = url
        self.display_url = mask_url(url)
        self.access = access or Access()
        self.role: RoleInfo | None = None
        """The PostgreSQL role postrun reads as, once connected."""
        self._engine: Engine | None = None
        """The engine once connected (a ``select 1`` went through)."""
        self._created: Engine | None = None
        """The one engine of this source, from when it is first needed, connected or not."""
        self._failure: SourceError | None = None
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()

    def info(self) -> SourceInfo:
        """What the verdict says about the source: its masked URL and the role it read as."""
        return SourceInfo(
            name=self.name, kind="database", location=self.display_url, role=self.role
        )

    def secrets(self) -> list[str]:
        """Values that must never be printed: the URL's password and secret query values."""
        return url_secrets(self.url)

    fails_closed = False
    """A database skips nothing it reads (see ``FileSource.fails_closed``)."""

    def notes_for(self, sql: str) -> list[str]:
        """Facts about what ``sql`` read that its check should report (none for databases)."""
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
        The driver's rows are converted column by column. Deadlines and cancellation as in
        ``stream``."""
        with self._statement(deadline, interrupter) as conn:
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
                raise translate_error(exc.orig or exc, self, connecting=False) from exc
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
                raise translate_error(exc.orig or exc, self, connecting=False) from exc

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
            raise translate_error(exc.orig or exc, self, connecting=True) from exc
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
                    raise translate_error(exc.orig or exc, self, connecting=True) from exc
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
        compiling and the engine that then connects are one (building an engine takes
        milliseconds)."""
        with self._create_lock:
            if self._created is None:
                self._created = self._new_engine()
            return self._created

    def _new_engine(self) -> Engine:
        url, connect_args = opening_url(self)
        try:
            return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=False)
        except Exception as exc:  # a missing driver: the user's configuration
            raise unusable_url(self, exc) from exc

    def _connect(self) -> Engine:
        engine = self._create()
        path = database_file(self.url)
        if path is not None and not os.path.exists(path):
            raise missing_file(self.name, path)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
                if conn.dialect.name == "postgresql":
                    self.role = read_role(conn)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise translate_error(exc.orig or exc, self, connecting=True) from exc
        if self.role is not None and self.role.can_write and not self.access.privileged_role:
            engine.dispose()
            raise SourceError(
                privileged_role_message(self.name, self.role), category=ErrorCategory.CONFIG
            )
        return engine


_ROLE_SQL = r"""
select current_user::text as name,
       r.rolsuper as superuser,
       array(select b.rolname::text from pg_roles b
             where b.rolname in ('pg_write_all_data', 'pg_execute_server_program',
                                 'pg_read_server_files', 'pg_write_server_files')
               and pg_has_role(current_user, b.oid, 'MEMBER')
             order by 1) as memberships,
       array(select format('%I.%I', n.nspname, c.relname)
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p', 'v', 'm', 'f')
               and n.nspname <> 'information_schema' and n.nspname not like 'pg\_%'
               and has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
             order by 1 limit 6) as writable
from pg_roles r where r.rolname = current_user
"""
"""The powers of the role postrun connected as: superuser, the predefined roles that write or
reach the server's files and programs, and tables it may change (an owner may change its own)."""


def read_role(conn: Connection) -> RoleInfo:
    """What the PostgreSQL role of ``conn`` could do besides reading."""
    row = conn.execute(sa.text(_ROLE_SQL)).mappings().one()
    memberships, writable = list(row["memberships"]), list(row["writable"])
    return RoleInfo(
        name=row["name"],
        superuser=bool(row["superuser"]),
        memberships=memberships,
        writable_tables=writable[:5],
        can_write=bool(row["superuser"]) or bool(memberships) or bool(writable),
    )


class Described(Protocol):
    """A source as its errors describe it."""

    name: str
    url: str
    display_url: str

    def secrets(self) -> list[str]: ...


def opening_url(source: Described) -> tuple[sa.URL, dict[str, Any]]:
    """The source's URL and connect arguments as postrun opens it (``read_only_url``); an
    unusable URL is a configuration error naming the source."""
    problem = url_problem(source.url)
    if problem is not None:
        raise SourceError(
            f"Source '{source.name}' has an unusable URL {source.display_url}: it {problem}",
            category=ErrorCategory.CONFIG,
        )
    try:
        return read_only_url(source.url)
    except Exception as exc:  # an unparsable URL: the user's configuration
        raise unusable_url(source, exc) from exc


def unusable_url(source: Described, exc: Exception) -> SourceError:
    detail = Redactor(source.secrets())(str(exc))
    return SourceError(
        f"Source '{source.name}' has an unusable URL {source.display_url}: {detail}",
        category=ErrorCategory.CONFIG,
        detail=detail,
    )


def missing_file(source: str, path: str) -> SourceError:
    """A database file that is not there: the suite names the wrong file, or no batch wrote
    it, and waiting will not help."""
    return SourceError(
        f"Source '{source}': database file {path} does not exist (check the URL and the params "
        "that name it)",
        category=ErrorCategory.CONFIG,
    )


def privileged_role_message(source: str, role: RoleInfo) -> str:
    """Why a role that can write is refused, and how to make one that cannot."""
    if role.superuser:
        power = "is a superuser"
    elif role.memberships:
        power = f"is a member of {', '.join(role.memberships)}"
    else:
        more = " and more" if len(role.writable_tables) >= 5 else ""
        power = f"can write {', '.join(role.writable_tables)}{more}"
    return (
        f"Source '{source}' connects as role '{role.name}', which {power}: postrun reads only "
        "through a role that cannot write. Connect as a read-only role (CREATE ROLE "
        "postrun_reader LOGIN PASSWORD '…'; GRANT CONNECT ON DATABASE <db> TO postrun_reader; "
        "GRANT USAGE ON SCHEMA <schema> TO postrun_reader; GRANT SELECT ON ALL TABLES IN SCHEMA "
        "<schema> TO postrun_reader; see the README's security model), or set "
        "'allow_privileged_role: true' on the source to accept it."
    )


def statement_timeout_ms(deadline: float) -> int:
    """PostgreSQL's statement_timeout for a statement that must end by ``deadline``."""
    return min(max(math.ceil((deadline - monotonic()) * 1000), 1), _PG_MAX_TIMEOUT_MS)


def read_only_url(url: str) -> tuple[sa.URL, dict[str, Any]]:
    """The URL and connect arguments that open ``url`` read-only, whatever the URL says: a
    DuckDB ``access_mode`` or SQLite ``mode=rwc`` in it is overridden, as are PostgreSQL
    ``options`` that would turn read-only transactions off (``url_access_problem`` refuses
    such URLs when a suite loads; this is the lock for every other caller)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        return _duckdb_url(parsed)
    if backend == "sqlite":
        return _sqlite_url(parsed), {}
    if backend == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", ""):
            parsed = parsed.set(drivername="postgresql+psycopg")
        user_options = parsed.query.get("options", "")
        parsed = parsed.difference_update_query(["options"])
        # The last -c wins: postrun's setting comes after whatever the URL asked for.
        options = " ".join(
            o for o in (_text(user_options), "-c default_transaction_read_only=on") if o
        )
        # prepare_threshold=0: every statement is prepared, so PostgreSQL refuses a query that
        # smuggles several statements ("commit; begin read write; delete …").
        return parsed, {"options": options, "connect_timeout": 10, "prepare_threshold": 0}
    return parsed, {}


def url_access_problem(url: str) -> str | None:
    """Why ``url`` asks for more than a read-only connection (refused at load), or None."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    try:
        parsed = make_url(url)
    except Exception:  # the connection reports an unusable URL with its own message
        return None
    backend = parsed.get_backend_name()
    query = {k.lower(): _text(v) for k, v in parsed.query.items()}
    if backend == "duckdb":
        for key in query:
            if _duckdb_open_key(key):
                return (
                    f"sets {key}: postrun opens DuckDB read-only with its own sandbox, and a URL "
                    "cannot change that (remove it; give extra folders in 'allow_paths')"
                )
    if backend == "sqlite" and _sqlite_mode(parsed) not in (None, "ro"):
        return (
            f"opens SQLite with mode={_sqlite_mode(parsed)}: postrun reads SQLite read-only "
            "(remove mode, or use mode=ro)"
        )
    if backend == "postgresql":
        options = query.get("options", "").lower()
        for word in _PG_OPTION_WORDS:
            if word in options:
                return (
                    f"passes options that set {word}: postrun's PostgreSQL sessions are "
                    "read-only and a URL cannot change that (remove it from 'options')"
                )
    return None


_DUCKDB_OPEN_WORDS = (
    "access_mode",
    "read_only",
    "extension",
    "external_access",
    "allowed_",
    "lock_configuration",
    "secret",
    "motherduck",
    "saas_mode",
    "attach_mode",
    "temp_directory",
)
"""DuckDB settings a URL may not give: how the file is opened, where extensions come from, what
the sandbox allows (``runner.sources.duck.sandbox_duckdb`` sets and locks those itself once
connected)."""
_PG_OPTION_WORDS = ("read_only", "role", "session_authorization")
_DUCKDB_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""Given when DuckDB opens: nothing is fetched or loaded behind postrun's back."""


def duckdb_file(url: str) -> str | None:
    """The database file a DuckDB URL opens (None for another database or in memory)."""
    return database_file(url, backends=("duckdb",))


def database_file(url: str, backends: tuple[str, ...] = ("duckdb", "sqlite")) -> str | None:
    """The database file a DuckDB or SQLite URL opens (None for a server or in memory)."""
    try:
        parsed = make_url(url)
    except Exception:  # the connection reports an unusable URL
        return None
    database = parsed.database
    if parsed.get_backend_name() not in backends or _is_memory(database) or database is None:
        return None
    if database.startswith("file:"):  # a SQLite URI: file:/path?mode=…
        return database.removeprefix("file:").partition("?")[0]
    return database


def _duckdb_url(parsed: sa.URL) -> tuple[sa.URL, dict[str, Any]]:
    unsafe = [k for k in parsed.query if _duckdb_open_key(k)]
    parsed = parsed.difference_update_query(unsafe)
    config = dict(_DUCKDB_CONFIG)
    if _is_memory(parsed.database):
        return parsed, {"config": config}
    return parsed, {"read_only": True, "config": config}


def _duckdb_open_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _DUCKDB_OPEN_WORDS)


def _sqlite_url(parsed: sa.URL) -> sa.URL:
    """A SQLite URL as a read-only ``file:`` URI; one that already is a URI gets ``mode=ro``."""
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return parsed
    if database.startswith("file:"):
        path, _, inline = database.partition("?")
        kept = [p for p in inline.split("&") if p and not p.lower().startswith("mode=")]
        database = path + ("?" + "&".join(kept) if kept else "")
        return parsed.set(database=database).update_query_dict({"mode": "ro", "uri": "true"})
    return parsed.set(database=f"file:{database}").update_query_dict({"mode": "ro", "uri": "true"})


def _sqlite_mode(parsed: sa.URL) -> str | None:
    database = parsed.database or ""
    inline = [p for p in database.partition("?")[2].split("&") if p.lower().startswith("mode=")]
    given = [*(p.partition("=")[2] for p in inline), *_values(parsed.query.get("mode"))]
    return next((m for m in given if m != "ro"), given[0] if given else None)


def _values(value: str | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _text(value: str | tuple[str, ...]) -> str:
    return " ".join(_values(value))


def _is_memory(database: str | None) -> bool:
    return database in (None, "") or str(database).startswith(":memory:")


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
    """A database value as plain Python (unbounded integers, NaN and infinities included); the
    check result makes it what verdict.json can hold (``runner.values``)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():  # numeric 'NaN' and 'Infinity' (PostgreSQL 14+)
            return float(value)
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


def translate_error(orig: BaseException, source: Described, *, connecting: bool) -> SourceError:
    """One ``SourceError`` with a category for whatever the driver raised."""
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
    if type(orig).__name__ == "PermissionException":
        message += (
            " (postrun's DuckDB reads only the source's own files: name other folders in the "
            "source's 'allow_paths')"
        )
    redact = Redactor(source.secrets())
    return SourceError(redact(message), category=category, retryable=retryable, detail=redact(raw))


def categorize(orig: BaseException, text: str, *, connecting: bool) -> tuple[ErrorCategory, bool]:
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate in _PG_CODES:
            return _PG_CODES[sqlstate]
        if sqlstate[:2] in _PG_CLASSES:
            return _PG_CLASSES[sqlstate[:2]]
    kind = type(orig).__name__
    if kind == "PermissionException":  # DuckDB's sandbox: the suite reached outside its files
        return ErrorCategory.CONFIG, False
    if kind == "InterruptException":
        return ErrorCategory.TIMEOUT, True
    if kind == "CatalogException":
        return ErrorCategory.SCHEMA_MISMATCH, False
    if "configuration has been locked" in text:  # DuckDB's sandbox: SET refused
        return ErrorCategory.CONFIG, False
    if kind in ("ConversionException", "InvalidInputException") and "read-only" not in text:
        return ErrorCategory.DATA_MALFORMED, False
    for hint, category, retryable in _MESSAGE_HINTS:
        if hint in text:
            return category, retryable
    if connecting:
        return ErrorCategory.CONNECTIVITY, True
    return ErrorCategory.QUERY, False
