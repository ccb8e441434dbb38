"""What a check function may use while it runs: sources, params, SQL helpers, sample limits."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from runner.errors import CheckConfigError, SourceError
from runner.plan import Plan, QueryRecord, relation_key
from runner.results import ErrorCategory

if TYPE_CHECKING:
    import pyarrow as pa

    from runner.checks.base import CheckSpec, Relation
    from runner.sources import FileSource, Source

T = TypeVar("T")
DEFAULT_SAMPLE_LIMIT = 20
_POSTCOMPILE = re.compile(r"\(?__\[POSTCOMPILE_(\w+)\]\)?")
_WAIT_S = 0.05
"""How often a check waiting for a shared scan looks at its own deadline."""


class Context:
    """The view one running check has of the run. Built by the engine, one per check."""

    def __init__(
        self,
        spec: CheckSpec,
        sources: dict[str, Source],
        params: dict[str, Any],
        *,
        sample_limit: int = DEFAULT_SAMPLE_LIMIT,
        deadline: float | None = None,
        plan: Plan | None = None,
    ) -> None:
        self.spec = spec
        self.sources = sources
        self.params = params
        self.sample_limit = sample_limit
        self.deadline = deadline
        """When the check must be over (``time.monotonic()``); sources stop statements by then."""
        self.plan = plan or Plan()
        self.notes: list[str] = []
        self.unseen: list[str] = []
        """Notes on files skipped behind tables the check read, where that source fails closed:
        the check may FAIL on what it saw, never PASS (the engine sees to it)."""
        self.queries: list[QueryRecord] = []
        """Every statement whose answer the check used, in order (shared scans included)."""
        self._cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self.cancelled = False

    # --- sources --------------------------------------------------------------------------

    def source(self, name: str | None = None) -> Source:
        """The named source, or the check's own."""
        key = name or self.spec.source
        if key is None or key not in self.sources:
            raise CheckConfigError(f"check '{self.spec.name}' names no known source ({key!r})")
        return self.sources[key]

    def file_source(self, name: str | None = None) -> FileSource:
        from runner.sources import FileSource

        source = self.source(name)
        if not isinstance(source, FileSource):
            raise CheckConfigError(f"source '{source.name}' is not a file source")
        return source

    # --- SQL ------------------------------------------------------------------------------

    def text(self, sql: str) -> sa.TextClause:
        """A user SQL fragment; its ``:name`` placeholders become bound params (lists expand)."""
        clause = sa.text(sql)
        lists: list[sa.BindParameter[Any]] = [
            sa.bindparam(name, expanding=True)
            for name in clause._bindparams
            if isinstance(self.params.get(name), list | tuple)
        ]
        return clause.bindparams(*lists) if lists else clause

    def from_clause(self, relation: Relation) -> sa.FromClause:
        """The relation as something to select from: a table, or the query as a subquery."""
        if relation.table is not None:
            schema, _, name = relation.table.rpartition(".")
            return sa.table(name, schema=schema or None)
        assert relation.query is not None
        # A trailing ';' or '-- comment' would break the enclosing parentheses.
        query = relation.query.strip().rstrip(";").rstrip()
        if "--" in query.rpartition("\n")[2]:
            query += "\n"
        return self.text(query).columns().subquery("q")

    def select(self, relation: Relation, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """``SELECT columns FROM relation [WHERE where]``."""
        stmt = sa.select(*columns).select_from(self.from_clause(relation))
        if relation.where is not None:
            # Parenthesised so that `a or b` keeps its meaning when callers add conditions;
            # the newline ends a trailing `-- comment` before the closing parenthesis.
            stmt = stmt.where(self.text(f"({relation.where}\n)"))
        return stmt

    def scan(self, relation: Relation) -> dict[str, Any]:
        """The aggregates the check's type declared (``scans``) over ``relation``, label →
        value: from the run's shared scan of that relation when other checks read it too."""
        shared = self.plan.shared(relation, self.spec)
        if shared is not None and self.spec.name in shared.labels:
            values = shared.values(self.spec.name, self)
            if values is not None:
                return values
            self.notes.append(
                f"the query shared with {len(shared.labels) - 1} other check(s) over "
                f"{relation.describe()} failed; this check ran its own"
            )
        return self.fetch(self.scan_statement(relation), self.relation_source(relation))[0]

    def scan_statement(self, relation: Relation) -> sa.Select[Any]:
        """The query that answers the check's scan of ``relation`` when no other check shares it."""
        columns = self._own_scan(relation)
        return self.select(relation, *(e.label(k) for k, e in columns.items()))

    def fetch(self, stmt: sa.Executable, source: str | None = None) -> list[dict[str, Any]]:
        """Run ``stmt`` on a source (the check's own by default); rows as JSON-ready dicts."""
        return self.fetch_recorded(stmt, source)[0]

    def fetch_recorded(
        self, stmt: sa.Executable, source: str | None = None
    ) -> tuple[list[dict[str, Any]], QueryRecord]:
        """``fetch``, and the record of the statement (which other checks may share)."""
        target, record = self._before(stmt, source)
        run = partial(target.execute, stmt, self.params, self._interrupter, deadline=self.deadline)
        return self._timed(target, record, run), record

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

    def share(self, record: QueryRecord, source: str) -> None:
        """Count ``record``, run by another check, among the statements this check used."""
        self.queries.append(record)
        self._collect_notes(self.source(source), record.sql)

    def wait(self, done: threading.Event) -> None:
        """Wait for another check's statement to finish, within this check's own deadline."""
        while not done.wait(_WAIT_S):
            self.raise_if_cancelled()

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

    def _before(self, stmt: sa.Executable, source: str | None) -> tuple[Source, QueryRecord]:
        """The source to run ``stmt`` on, and the statement's record, kept from now on."""
        self.raise_if_cancelled()  # between two statements: do not start another
        target = self.source(source)
        record = QueryRecord(target.name, compile_sql(stmt, target), [self.spec.name or ""])
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

    def relation_source(self, relation: Relation) -> str | None:
        return relation.source or self.spec.source

    def _own_scan(self, relation: Relation) -> dict[str, sa.ColumnElement[Any]]:
        from runner.checks import REGISTRY

        declare = REGISTRY[self.spec.type].scans
        key = relation_key(relation, self.spec.source)
        columns: dict[str, sa.ColumnElement[Any]] = {}
        for scan in declare(self.spec) if declare is not None else ():
            if relation_key(scan.relation, self.spec.source) == key:
                columns |= scan.columns
        if not columns:
            raise RuntimeError(f"check type '{self.spec.type}' declares no scan of {key}")
        return columns

    # --- cancellation ---------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the statement in flight and start no other (called by the engine on timeout,
        and again while the statement is still running)."""
        with self._lock:
            self.cancelled = True
            cancel = self._cancel
        if cancel is not None:
            cancel()

    def raise_if_cancelled(self) -> None:
        """Raise a timeout once the engine cancelled the check or its deadline passed: long
        work outside the database (reading files) calls this between steps."""
        if self.cancelled or self._overdue():
            raise self._cancelled_error()

    @property
    def busy(self) -> bool:
        """Whether a statement of this check is in flight."""
        with self._lock:
            return self._cancel is not None

    def _interrupter(self, cancel: Callable[[], None] | None) -> None:
        with self._lock:
            # A statement registering after the cancel would miss it: it must not start.
            if cancel is not None and self.cancelled:
                raise self._cancelled_error()
            self._cancel = cancel

    def _overdue(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _cancelled_error(self) -> SourceError:
        return SourceError(
            f"check '{self.spec.name}' was cancelled",
            category=ErrorCategory.TIMEOUT,
            retryable=True,
        )


def compile_sql(stmt: sa.Executable, source: Source) -> str:
    """The SQL as the source will see it, for the record (the source may be unreachable)."""
    if not isinstance(stmt, sa.ClauseElement):
        return str(stmt)
    try:
        sql = str(stmt.compile(dialect=source.dialect()))
    except (SourceError, sa.exc.SQLAlchemyError):
        sql = str(stmt)
    # An IN list is expanded when the statement runs; show it as the named parameter it is.
    return _POSTCOMPILE.sub(r"(:\1)", sql)
