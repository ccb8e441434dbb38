"""The history store: postrun's own database of runs, check results and numeric observations
(SQLAlchemy Core; SQLite by default, any SQLAlchemy URL for a team), its versioned schema and the
migration step that creates and upgrades it. Never a checked source; samples stay in the reports.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from runner.errors import HistoryError
from runner.redact import Redactor, mask_url, url_secrets

if TYPE_CHECKING:
    from runner.results import Verdict

SCHEMA_VERSION = 1
"""The schema this postrun writes; ``MIGRATIONS`` brings an older store up to it."""
BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's transaction before giving up."""
_LOCK_KEY = 0x706F_7374  # PostgreSQL advisory lock held while the schema is created or migrated

metadata = sa.MetaData()
schema_version = sa.Table(
    "postrun_schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)
runs = sa.Table(
    "postrun_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, unique=True),
    sa.Column("suite", sa.String(200), nullable=False),
    sa.Column("suite_sha256", sa.String(64), nullable=False),
    sa.Column("history_key", sa.Text, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Index("postrun_runs_by_key", "suite", "history_key", "started_at"),
)
checks = sa.Table(
    "postrun_checks",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("postrun_runs.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("error_category", sa.String(32)),
    sa.Column("failure_count", sa.Integer, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)
observations = sa.Table(
    "postrun_observations",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("postrun_runs.id"), nullable=False),
    sa.Column("check_name", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index("postrun_observations_by_run", "run", "check_name", "key"),
)

MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    1: metadata.create_all,
}
"""Schema version → the step that brings a store at the version before it there."""

PASSING = ("PASS", "WARN")
"""Run verdicts whose values are history for `change` / `anomaly` (unless include_failed)."""


@dataclass(frozen=True)
class Point:
    """One past value: the run it was observed in, when that run started, and the value."""

    run_id: str
    started_at: str
    value: float


@dataclass(frozen=True)
class KeyedHistory:
    """The store as one run's checks read it: the runs of its suite under its history key."""

    store: HistoryStore
    suite: str
    key: str

    def series(self, check: str, value: str, *, window: int, include_failed: bool) -> list[Point]:
        return self.store.series(
            self.suite, self.key, check, value, window=window, include_failed=include_failed
        )


class HistoryStore:
    """One store, opened on first use; every method raises ``HistoryError`` (URL masked)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = mask_url(url)
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def record(self, verdict: Verdict, key: str) -> None:
        """Add the run, its checks and their numeric observations in one transaction."""
        run_row = {
            "run_id": verdict.run_id,
            "suite": verdict.suite.name,
            "suite_sha256": verdict.suite.sha256,
            "history_key": key,
            "params": json.dumps(verdict.params, sort_keys=True),
            "started_at": verdict.started_at,
            "finished_at": verdict.finished_at,
            "duration_s": verdict.duration_s,
            "verdict": verdict.verdict.value,
            "exit_code": verdict.exit_code,
            "counts": json.dumps(verdict.counts),
        }
        with self._failing("written"), self._connect(write=True) as conn:
            run = int(
                conn.execute(sa.insert(runs).values(run_row).returning(runs.c.id)).scalar_one()
            )
            conn.execute(sa.insert(checks), [_check_row(run, i, c) for i, c in _enum(verdict)])
            values = [
                {"run": run, "check_name": c.name, "key": k, "value": v}
                for c in verdict.checks
                for k, v in numeric_observations(c.observed, c.expected)
            ]
            if values:
                conn.execute(sa.insert(observations), values)

    def series(
        self,
        suite: str,
        key: str,
        check: str,
        value: str,
        *,
        window: int,
        include_failed: bool = False,
    ) -> list[Point]:
        """The last ``window`` values of ``check``'s observation ``value`` in runs of ``suite``
        under ``key`` (passing runs only, unless ``include_failed``), oldest first."""
        stmt = (
            sa.select(runs.c.run_id, runs.c.started_at, observations.c.value)
            .join(observations, observations.c.run == runs.c.id)
            .where(
                runs.c.suite == suite,
                runs.c.history_key == key,
                observations.c.check_name == check,
                observations.c.key == value,
            )
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(window)
        )
        if not include_failed:
            stmt = stmt.where(runs.c.verdict.in_(PASSING))
        with self._failing("read"), self._connect() as conn:
            rows = conn.execute(stmt).all()
        return [Point(r.run_id, r.started_at, float(r.value)) for r in reversed(rows)]

    def fetch(self, stmt: sa.Executable) -> list[sa.Row[Any]]:
        """Rows of a read-only statement over the store's tables (``runner.history.query``)."""
        with self._failing("read"), self._connect() as conn:
            return list(conn.execute(stmt).all())

    def tuples(self, stmt: sa.Executable) -> list[tuple[Any, ...]]:
        """``fetch`` as plain tuples, for the many rows a period holds."""
        with self._failing("read"), self._connect() as conn:
            return conn.execute(stmt).all()  # type: ignore[return-value]  # rows are tuples

    # --- inside ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Any driver error as a ``HistoryError`` that names the store (masked) and what failed."""
        try:
            yield
        except HistoryError:
            raise
        except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            reason = Redactor(url_secrets(self.url))(reason.replace(self.url, self.shown))
            raise HistoryError(f"history store {self.shown} could not be {what}: {reason}") from exc

    @contextlib.contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sa.Connection]:
        engine = self._opened()
        with engine.connect() as conn:
            conn.execution_options(postrun_write=write)
            with conn.begin():
                yield conn

    def _opened(self) -> sa.Engine:
        with self._lock:  # a run's checks read it from several threads
            return self._open()

    def _open(self) -> sa.Engine:
        if self._engine is None:
            engine = _create_engine(self.url)
            try:
                _migrate(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine


def numeric_observations(
    observed: Mapping[str, Any], expected: Mapping[str, Any]
) -> Iterator[tuple[str, float]]:
    """A check's numbers as (key, value): ``observed`` flattened with dots
    (``nulls.daily_pnl``), then ``expected`` under ``expected.`` (e.g. an anomaly band)."""
    yield from _flat(observed, "")
    yield from _flat(expected, "expected.")


def _flat(values: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, float]]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                yield f"{prefix}{key}", number


def _enum(verdict: Verdict) -> Iterator[tuple[int, Any]]:
    return enumerate(verdict.checks)


def _check_row(run: int, position: int, check: Any) -> dict[str, Any]:
    return {
        "run": run,
        "position": position,
        "name": check.name,
        "type": check.type,
        "status": check.status.value,
        "error_category": check.error.category.value if check.error is not None else None,
        "failure_count": check.failure_count,
        "duration_s": check.duration_s,
        "message": check.message,
    }


def _create_engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, poolclass=NullPool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, poolclass=NullPool, connect_args={"check_same_thread": False})

    # pysqlite starts transactions itself, late; postrun starts them: a writer takes the write
    # lock at once (BEGIN IMMEDIATE), so two processes never deadlock upgrading a read lock.
    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None
        cursor = dbapi.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("postrun_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _migrate(engine: sa.Engine) -> None:
    """Create the schema, or bring it up to ``SCHEMA_VERSION``, one process at a time."""
    if _version(engine) == SCHEMA_VERSION:
        return
    with engine.connect() as conn:
        conn.execution_options(postrun_write=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
            found = _read_version(conn)
            if found > SCHEMA_VERSION:
                raise HistoryError(
                    f"history store {mask_url(str(engine.url))} has schema version {found}, "
                    f"newer than this postrun's {SCHEMA_VERSION}: upgrade postrun"
                )
            for step in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
            if found < SCHEMA_VERSION:
                conn.execute(sa.delete(schema_version))
                conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION))


def _version(engine: sa.Engine) -> int:
    """The store's schema version, 0 when it has none yet: one select in the common case (the
    inspector's table listing costs more than the run's whole record)."""
    try:
        with engine.connect() as conn, conn.begin():
            found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        if schema_version.name not in str(exc):
            raise  # not a missing table: the store cannot be reached
        return 0  # no table yet: _migrate looks again under its lock
    return int(found or 0)


def _read_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table(schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(found or 0)
