"""What a check function may use while it runs (``Context``: sources, params, SQL, samples,
notes), and the engine's handle on it (``Cancellation``: deadline, cancel, busy)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from runner import statements
from runner.errors import CheckConfigError, HistoryError, SourceError
from runner.plan import Plan, QueryRecord, SharedScan, relation_key
from runner.results import ErrorCategory
from runner.sources import FileSource, Source

if TYPE_CHECKING:
    import pyarrow as pa

    from runner.checks.base import CheckSpec, CheckType, Relation
    from runner.history.store import KeyedHistory, Point
    from runner.results import CheckResult

T = TypeVar("T")
DEFAULT_SAMPLE_LIMIT = 20
_WAIT_S = 0.05
"""How often a check waiting for a shared scan looks at its own deadline."""
_SOURCE_WIDE = frozenset({ErrorCategory.CONNECTIVITY, ErrorCategory.AUTH})
"""Errors of a source, not of a query: a check that ran its own query would get them too."""


class Cancellation:
    """The engine's handle on a running check: its deadline, a cancel that stops the statement
    in flight and starts no other, and whether one is in flight."""

    def __init__(self, name: str, deadline: float | None) -> None:
        self.name = name
        self.deadline = deadline
        """When the check must be over (``time.monotonic()``); sources stop statements by then."""
        self.cancelled = False
        self._cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop the statement in flight and start no other (called by the engine on timeout,
        and again while the statement is still running)."""
        with self._lock:
            self.cancelled = True
            cancel = self._cancel
        if cancel is not None:
            cancel()

    @property
    def busy(self) -> bool:
        """Whether a statement of the check is in flight."""
        with self._lock:
            return self._cancel is not None

    def raise_if_cancelled(self) -> None:
        if self.cancelled or (self.deadline is not None and time.monotonic() >= self.deadline):
            raise self.error()

    def interrupter(self, cancel: Callable[[], None] | None) -> None:
        """What a source is handed: it registers the function that stops its statement."""
        with self._lock:
            # A statement registering after the cancel would miss it: it must not start.
            if cancel is not None and self.cancelled:
                raise self.error()
            self._cancel = cancel

    def error(self) -> SourceError:
        return SourceError(
            f"check '{self.name}' was cancelled", category=ErrorCategory.TIMEOUT, retryable=True
        )


class Context:
    """The view one running check has of the run. Built by the engine, one per check, with the
    check's type (what it declared it reads) and the run's plan (the shared scans)."""

    def __init__(
        self,
        spec: CheckSpec,
        kind: CheckType,
        sources: dict[str, Source],
        params: dict[str, Any],
        *,
        sample_limit: int = DEFAULT_SAMPLE_LIMIT,
        deadline: float | None = None,
        plan: Plan | None = None,
        history: KeyedHistory | None = None,
        results: Mapping[str, CheckResult] | None = None,
    ) -> None:
        self.spec = spec
        self.kind = kind
        self.sources = sources
        self.params = params
        self.sample_limit = sample_limit
        self.plan = plan or Plan()
        self.cancellation = Cancellation(spec.name, deadline)
        self.notes: list[str] = []
        self.unseen: list[str] = []
        """Notes on files skipped behind tables the check read, where that source fails closed:
        the check may FAIL on what it saw, never PASS (the engine sees to it)."""
        self.queries: list[QueryRecord] = []
        """Every statement whose answer the check used, in order (shared scans included)."""
        self.past = history
        """The run's history (its suite and history key), None when history is off."""
        self.results = results if results is not None else {}
        """The results of the checks that have ended, by name (those named by ``after()``)."""

    @property
    def deadline(self) -> float | None:
        return self.cancellation.deadline

    # --- sources --------------------------------------------------------------------------

    def source(self, name: str | None = None) -> Source:
        """The named source, or the check's own."""
        key = name or self.spec.source
        if key is None or key not in self.sources:
            raise CheckConfigError(f"check '{self.spec.name}' names no known source ({key!r})")
        return self.sources[key]

    def file_source(self, name: str | None = None) -> FileSource:
        source = self.source(name)
        if not isinstance(source, FileSource):
            raise CheckConfigError(f"source '{source.name}' is not a file source")
        return source

    def relation_source(self, relation: Relation) -> str | None:
        return relation.source or self.spec.source

    # --- building statements (``runner.statements``, the params bound) ---------------------

    def text(self, sql: str) -> sa.TextClause:
        """A user SQL fragment; its ``:name`` placeholders become bound params (lists expand)."""
        return statements.text(sql, self.params)

    def from_clause(self, relation: Relation) -> sa.FromClause:
        """The relation as something to select from: a table, or the query as a subquery."""
        return statements.from_clause(relation, self.params)

    def select(self, relation: Relation, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """``SELECT columns FROM relation [WHERE where]``."""
        return statements.select(relation, self.params, *columns)

    def violations_statement(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        """``stmt``'s bad rows as the bounded sample ``violations`` fetches."""
        return statements.violations(stmt, self.sample_limit)

    def sample_statement(self, stmt: sa.Select[Any], source: str | None = None) -> sa.Select[Any]:
        """``stmt``'s first rows as the bounded sample ``sample`` fetches from ``source`` (the
        check's own by default): on DuckDB the first found, then sorted (``statements.sample``)."""
        try:
            storage_order = self.source(source).dialect().name == "duckdb"
        except SourceError:  # a source with no SQL: the plain form, which it will refuse
            storage_order = False
        return statements.sample(stmt, self.sample_limit, storage_order=storage_order)

    def scan_statement(self, relation: Relation) -> sa.Select[Any]:
        """The query of the check's own scan of ``relation``, or the shared one that answers
        it when other checks read the relation too."""
        shared = self.plan.shared(relation, self.spec)
        if shared is not None:
            return shared.statement(self.params)
        columns = self._own_scan(relation)
        return self.select(relation, *(e.label(k) for k, e in columns.items()))

    # --- running statements ---------------------------------------------------------------

    def scan(self, relation: Relation) -> dict[str, Any]:
        """The aggregates the check's type declared (``scans``) over ``relation``, label →
        value: from the run's shared scan of that relation when other checks read it too."""
        shared = self.plan.shared(relation, self.spec)
        if shared is not None:
            values = self._shared(shared, relation.where)
            if values is not None:
                return values
            others = len(shared.checks) - 1
            with_others = f" with {others} other check(s)" if others else ""
            self.notes.append(
                f"the query shared{with_others} over {relation.describe()} failed; "
                "this check ran its own"
            )
        columns = self._own_scan(relation)
        own = self.select(relation, *(e.label(k) for k, e in columns.items()))
        return self.fetch(own, self.relation_source(relation))[0]

    def fetch(self, stmt: sa.Executable, source: str | None = None) -> list[dict[str, Any]]:
        """Run ``stmt`` on a source (the check's own by default); rows as JSON-ready dicts."""
        return self._fetch(stmt, source)[0]

    def violations(
        self, stmt: sa.Select[Any], source: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """The rows ``stmt`` selects are bad: a bounded sample of them and how many there are,
        in one query. The sample holds one row even when ``sample_limit`` is 0, for a message
        to name (the engine keeps ``sample_limit`` of them in the result)."""
        rows = self.fetch(self.violations_statement(stmt), source)
        total = int(rows[0][statements.TOTAL]) if rows else 0
        return [{k: v for k, v in row.items() if k != statements.TOTAL} for row in rows], total

    def sample(self, stmt: sa.Select[Any], source: str | None = None) -> list[dict[str, Any]]:
        """A bounded sample of the bad rows ``stmt`` selects, when the check knows how many
        there are (from its scan): no count over all of them, only the first rows in the
        statement's order (one row even when ``sample_limit`` is 0, for a message to name)."""
        return self.fetch(self.sample_statement(stmt, source), source)

    def fetch_arrow(self, stmt: sa.Executable, source: str | None = None) -> pa.Table:
        """Run ``stmt`` and return its rows as an Arrow table with the database's own types,
        for check types that hand rows to a dataframe library (pandera, GX)."""
        target, record = self._before(stmt, source)
        run = partial(target.arrow, stmt, self.params, self._interrupter, deadline=self.deadline)
        return self._timed(target, record, run)

    def columns(self, relation: Relation) -> list[str]:
        """The relation's column names, from a select that returns no rows."""
        stmt = self.columns_statement(relation)
        target, record = self._before(stmt, self.relation_source(relation))
        run = partial(target.columns, stmt, self.params, deadline=self.deadline)
        return self._timed(target, record, run)

    def columns_statement(self, relation: Relation) -> sa.Select[Any]:
        return self.select(relation, sa.literal_column("*")).where(sa.false())

    def stream(
        self, stmt: sa.Executable, source: str | None = None, *, batch: int = 50_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Run ``stmt`` and yield its rows in batches, for work that must not hold them all;
        its duration on record runs to the last batch (the caller's work on them included)."""
        target, record = self._before(stmt, source)
        started = time.perf_counter()
        yield from target.stream(
            stmt, self.params, self._interrupter, batch=batch, deadline=self.deadline
        )
        record.duration_s = round(time.perf_counter() - started, 4)
        self._collect_notes(target, record.sql)

    def scalar(self, stmt: sa.Executable, source: str | None = None) -> Any:
        """The single value ``stmt`` returns."""
        rows = self.fetch(stmt, source)
        if len(rows) != 1:
            raise CheckConfigError(f"expected one row with one value, got {len(rows)} rows")
        if len(rows[0]) != 1:
            raise CheckConfigError(
                f"expected one row with one value, got one row with {len(rows[0])} values"
            )
        return next(iter(rows[0].values()))

    def history(
        self, value: str, *, window: int, include_failed: bool, check: str | None = None
    ) -> list[Point]:
        """The last ``window`` values of observation ``value`` of ``check`` (this check by
        default) in earlier runs with this run's history key, oldest first. No store is a
        config error, an unreadable one ERROR / connectivity: never a pass on unseen history."""
        if self.past is None:
            raise CheckConfigError(
                f"check '{self.spec.name}' compares with past runs, but history is off "
                "(--history off, $POSTRUN_HISTORY or the suite's history: off): give a store"
            )
        self.raise_if_cancelled()
        try:
            return self.past.series(
                check or self.spec.name, value, window=window, include_failed=include_failed
            )
        except HistoryError as exc:
            raise SourceError(
                str(exc), category=ErrorCategory.CONNECTIVITY, retryable=True, detail=str(exc)
            ) from exc

    def result(self, name: str) -> CheckResult:
        """The result of check ``name``, which this check declared it reads (``after()``)."""
        if name not in self.results:
            raise RuntimeError(f"check '{self.spec.name}' reads '{name}', which has not ended")
        return self.results[name]

    def raise_if_cancelled(self) -> None:
        """Raise a timeout once the engine cancelled the check or its deadline passed: long
        work outside the database (reading files) calls this between steps."""
        self.cancellation.raise_if_cancelled()

    # --- inside ---------------------------------------------------------------------------

    def _fetch(
        self, stmt: sa.Executable, source: str | None
    ) -> tuple[list[dict[str, Any]], QueryRecord]:
        target, record = self._before(stmt, source)
        run = partial(target.execute, stmt, self.params, self._interrupter, deadline=self.deadline)
        return self._timed(target, record, run), record

    def _shared(self, shared: SharedScan, where: str | None) -> dict[str, Any] | None:
        """The check's values from a shared scan, which the first check to need it runs for
        all; None when that query failed (each check then runs its own and gets its own
        error: a bad column of one check must not fail the others)."""
        if shared.claim():
            row: dict[str, Any] | None = None
            record: QueryRecord | None = None
            try:
                rows, record = self._fetch(shared.statement(self.params), shared.source)
                row = rows[0]
            except SourceError as exc:
                if exc.category in _SOURCE_WIDE:
                    shared.source_error = exc
                    raise
            finally:
                shared.answered(record, row)
        else:
            while not shared.done.wait(_WAIT_S):
                self.raise_if_cancelled()
            if shared.source_error is not None:
                raise shared.source_error
            record = shared.joined(self.spec.name)
            if record is not None and all(r is not record for r in self.queries):
                self.queries.append(record)
                self._collect_notes(self.source(shared.source), record.sql)
        return shared.values(self.spec.name, where)

    def _before(self, stmt: sa.Executable, source: str | None) -> tuple[Source, QueryRecord]:
        """The source to run ``stmt`` on, and the statement's record, kept from now on."""
        self.raise_if_cancelled()  # between two statements: do not start another
        target = self.source(source)
        record = QueryRecord(target.name, compile_sql(stmt, target), [self.spec.name])
        self.queries.append(record)
        return target, record

    def _timed(self, target: Source, record: QueryRecord, run: Callable[[], T]) -> T:
        """``run()``'s answer, its duration kept in ``record`` and the source's notes taken."""
        started = time.perf_counter()
        answer = run()
        record.duration_s = round(time.perf_counter() - started, 4)
        self._collect_notes(target, record.sql)
        return answer

    def _collect_notes(self, source: Source, sql: str) -> None:
        for note in source.notes_for(sql):
            if note not in self.notes:
                self.notes.append(note)
            if source.fails_closed and note not in self.unseen:
                self.unseen.append(note)

    def _interrupter(self, cancel: Callable[[], None] | None) -> None:
        self.cancellation.interrupter(cancel)

    def _own_scan(self, relation: Relation) -> dict[str, sa.ColumnElement[Any]]:
        declare = self.kind.scans
        key = relation_key(relation, self.spec.source)
        columns: dict[str, sa.ColumnElement[Any]] = {}
        for scan in declare(self.spec) if declare is not None else ():
            if relation_key(scan.relation, self.spec.source) == key:
                columns |= scan.columns
        if not columns:
            raise RuntimeError(f"check type '{self.spec.type}' declares no scan of {key}")
        return columns


def compile_sql(stmt: sa.Executable, source: Source) -> str:
    """The SQL as the source will see it, for the record (the source may be unreachable)."""
    try:
        dialect = source.dialect()
    except SourceError:
        dialect = None
    return statements.compile_sql(stmt, dialect)
