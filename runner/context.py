"""What a check function may use while it runs: sources, params, SQL helpers, sample limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runner.errors import CheckConfigError, SourceError
from runner.results import ErrorCategory

if TYPE_CHECKING:
    from runner.checks.base import CheckSpec, Relation
    from runner.sources import FileSource, Source

DEFAULT_SAMPLE_LIMIT = 20


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
    ) -> None:
        self.spec = spec
        self.sources = sources
        self.params = params
        self.sample_limit = sample_limit
        self.deadline = deadline
        """When the check must be over (``time.monotonic()``); sources stop statements by then."""
        self.notes: list[str] = []
        self.queries: list[str] = []
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

    def fetch(self, stmt: sa.Executable, source: str | None = None) -> list[dict[str, Any]]:
        """Run ``stmt`` on a source (the check's own by default); rows as JSON-ready dicts."""
        target = self._before(stmt, source)
        rows = target.execute(stmt, self.params, self._interrupter, deadline=self.deadline)
        self._collect_notes(target)
        return rows

    def stream(
        self, stmt: sa.Executable, source: str | None = None, *, batch: int = 50_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Run ``stmt`` and yield its rows in batches, for work that must not hold them all."""
        target = self._before(stmt, source)
        yield from target.stream(
            stmt, self.params, self._interrupter, batch=batch, deadline=self.deadline
        )
        self._collect_notes(target)

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

    def _before(self, stmt: sa.Executable, source: str | None) -> Source:
        if self.cancelled or self._overdue():  # between two statements: do not start another
            raise self._cancelled_error()
        target = self.source(source)
        self.queries.append(_compile(stmt, target))
        return target

    def _collect_notes(self, source: Source) -> None:
        for note in source.notes():
            if note not in self.notes:
                self.notes.append(note)

    def relation_source(self, relation: Relation) -> str | None:
        return relation.source or self.spec.source

    # --- cancellation ---------------------------------------------------------------------

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


def _compile(stmt: sa.Executable, source: Source) -> str:
    """The SQL as the source will see it, for the record (the source may be unreachable)."""
    if not isinstance(stmt, sa.ClauseElement):
        return str(stmt)
    try:
        return str(stmt.compile(dialect=source.dialect()))
    except (SourceError, sa.exc.SQLAlchemyError):
        return str(stmt)
