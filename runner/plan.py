"""Plans a run's SQL before it starts: every check that reads the same relation (same source,
table and `where`, or query) is answered by one aggregate query, a shared scan, which the first
of those checks to need it runs for all of them.

A check type declares the aggregates it needs through ``register(..., scans=...)`` and reads them
back with ``ctx.scan(relation)``; it never sees whether the values came from its own query or a
shared one. Failure samples are not part of a scan: a check fetches them itself, only when it
failed, with a LIMIT.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runner.errors import SourceError
from runner.results import QueryInfo

if TYPE_CHECKING:
    from runner.checks.base import CheckSpec, Relation
    from runner.context import Context
    from runner.results import CheckResult
    from runner.suite import Suite


@dataclass(frozen=True)
class Scan:
    """The aggregates one check needs over one relation: label → expression (e.g. count(*))."""

    relation: Relation
    columns: dict[str, sa.ColumnElement[Any]]


@dataclass(frozen=True)
class Query:
    """A statement a check runs on its own rather than through a scan (for --explain)."""

    statement: sa.Executable
    source: str | None = None
    """Source it runs on; the check's own when None."""


@dataclass
class QueryRecord:
    """One statement a run sent to a source, and the checks its answer served."""

    source: str
    sql: str
    checks: list[str]
    duration_s: float | None = None
    """Wall time of the statement; None when it never returned."""


RelationKey = tuple[str, str | None, str | None, str | None]


def relation_key(relation: Relation, check_source: str | None) -> RelationKey:
    """What makes two relations one scan: the same source, table and where, or query text."""
    return (relation.source or check_source or "", relation.table, relation.where, relation.query)


ExpressionKey = tuple[str, str, tuple[tuple[str, str, Any], ...]]


def expression_key(expression: sa.ColumnElement[Any]) -> ExpressionKey:
    """What makes two expressions one (two aggregates one column of a shared scan): their SQL
    and the values bound in it (`x > 5` and `x > 6` print alike, as `x > :param_1`), each with
    its type; and their class, since a construct that compiles differently per dialect
    (freshness reads max() as text on DuckDB) must not merge with a plain one that prints the
    same. Values are never rendered into the SQL, which some types cannot be: the key cannot
    fail on them."""
    compiled = expression.compile()
    values = tuple(
        (name, repr(compiled.binds[name].type), _hashable(value))
        for name, value in compiled.params.items()
    )
    return type(expression).__name__, str(compiled), values


def _hashable(value: Any) -> Any:
    """``value`` as a dict key that equals another only for an equal value of the same type
    (``1``, ``1.0`` and ``True`` are equal in Python, not in SQL); anything but a plain value
    by its repr, whose hash cannot raise."""
    if isinstance(value, list | tuple):
        return type(value).__name__, tuple(_hashable(v) for v in value)
    if value is None or isinstance(value, _PLAIN):
        return type(value).__name__, value
    return type(value).__name__, repr(value)


_PLAIN = (str, bytes, int, float, date, time, timedelta)


class SharedScan:
    """One aggregate query over a relation answering several checks; identical aggregates
    (``count(*)`` wanted by three checks) are computed once."""

    def __init__(self, relation: Relation, source: str) -> None:
        self.relation = relation
        self.source = source
        self.columns: dict[str, sa.ColumnElement[Any]] = {}
        """Fused label (a0, a1, …) → aggregate, in suite order."""
        self.labels: dict[str, dict[str, str]] = {}
        """Check name → its own label → fused label."""
        self._by_key: dict[ExpressionKey, str] = {}
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._row: dict[str, Any] | None = None
        self._record: QueryRecord | None = None

    def add(self, check: str, columns: dict[str, sa.ColumnElement[Any]]) -> None:
        mine = self.labels.setdefault(check, {})
        for label, expression in columns.items():
            key = expression_key(expression)
            if key not in self._by_key:
                self._by_key[key] = f"a{len(self.columns)}"
                self.columns[self._by_key[key]] = expression
            mine[label] = self._by_key[key]

    @property
    def checks(self) -> list[str]:
        return list(self.labels)

    def statement(self, ctx: Context) -> sa.Select[Any]:
        return ctx.select(self.relation, *(e.label(k) for k, e in self.columns.items()))

    def values(self, check: str, ctx: Context) -> dict[str, Any] | None:
        """The check's aggregates from the shared query, run now if no check has run it yet;
        None when that query failed: each check then runs its own and gets its own error."""
        with self._lock:
            first, self._started = not self._started, True
        if first:
            try:
                rows, self._record = ctx.fetch_recorded(self.statement(ctx), self.source)
                self._row = rows[0]
            except SourceError:
                pass  # a bad column of one check must not fail the others: see above
            finally:
                self._done.set()
        else:
            ctx.wait(self._done)
            if self._record is not None:
                with self._lock:
                    self._record.checks.append(check)
                ctx.share(self._record, self.source)
        if self._row is None:
            return None
        return {label: self._row[fused] for label, fused in self.labels[check].items()}


@dataclass
class Plan:
    """The shared scans of a run, found before any check starts."""

    scans: dict[RelationKey, SharedScan] = field(default_factory=dict)

    @classmethod
    def of(cls, checks: Iterable[CheckSpec]) -> Plan:
        """Group the scans of ``checks`` (in suite order, so the SQL is deterministic) by
        relation; a relation only one check reads keeps that check's own query."""
        from runner.checks import REGISTRY

        plan = cls()
        for check in checks:
            declare = REGISTRY[check.type].scans
            if declare is None or check.name is None:
                continue
            for scan in declare(check):
                key = relation_key(scan.relation, check.source)
                shared = plan.scans.setdefault(key, SharedScan(scan.relation, key[0]))
                shared.add(check.name, scan.columns)
        plan.scans = {k: s for k, s in plan.scans.items() if len(s.labels) > 1}
        return plan

    def shared(self, relation: Relation, check: CheckSpec) -> SharedScan | None:
        return self.scans.get(relation_key(relation, check.source))


def number_queries(
    results: list[CheckResult], contexts: dict[str, Context], redact: Callable[[str], str]
) -> tuple[list[CheckResult], list[QueryInfo]]:
    """Number the statements the run sent (q1, q2, … in suite order, then in the order each
    check used them) and name on each result the ones that answered it."""
    ids: dict[int, str] = {}
    records: list[QueryRecord] = []
    named: list[CheckResult] = []
    for result in results:
        ctx = contexts.get(result.name)
        mine: list[str] = []
        for record in ctx.queries if ctx is not None else ():
            if id(record) not in ids:
                ids[id(record)] = f"q{len(ids) + 1}"
                records.append(record)
            mine.append(ids[id(record)])
        named.append(result.model_copy(update={"queries": mine}) if mine else result)
    queries = [
        QueryInfo(
            id=ids[id(r)],
            source=r.source,
            sql=redact(r.sql),
            checks=sorted(r.checks, key=[c.name for c in results].index),
            duration_s=r.duration_s,
        )
        for r in records
    ]
    return named, queries


def explain(suite: Suite, selected: dict[str, bool], *, sample_limit: int) -> str:
    """What a run of ``suite`` would send to its sources, without connecting to any: each
    statement once, numbered, under the first check it answers (``postrun check --explain``)."""
    from runner.context import Context, compile_sql

    checks = [c for c in suite.checks if selected.get(c.name or "")]
    plan = Plan.of(checks)
    sources = {name: config.open() for name, config in suite.sources.items()}
    lines = [f"plan of suite '{suite.name}': {len(checks)} of {len(suite.checks)} checks"]
    numbers: dict[int, str] = {}
    count = 0
    try:
        for check in checks:
            ctx = Context(check, sources, suite.params, sample_limit=sample_limit, plan=plan)
            lines.append(f"\ncheck '{check.name}' ({check.type})")
            steps = list(_statements(check, ctx, plan))
            if not steps:
                lines.append("  no SQL: reads files")
            for shared, stmt, source in steps:
                if shared is not None and id(shared) in numbers:
                    lines.append(f"  {numbers[id(shared)]} (shared, above)")
                    continue
                count += 1
                who = ""
                if shared is not None:
                    numbers[id(shared)] = f"q{count}"
                    who = f", one query for {len(shared.labels)} checks: {', '.join(shared.checks)}"
                lines.append(f"  q{count} on source '{source}'{who}")
                sql = compile_sql(stmt, sources[source]) if source in sources else str(stmt)
                lines += [f"    {line.rstrip()}" for line in sql.splitlines()]
    finally:
        for opened in sources.values():
            opened.close()
    lines.append(
        f"\n{count} statements. A failing row-level check also fetches up to {sample_limit} "
        "sample rows with one more query."
    )
    return "\n".join(lines)


def _statements(
    check: CheckSpec, ctx: Context, plan: Plan
) -> Iterator[tuple[SharedScan | None, sa.Executable, str]]:
    """The check's scans (a shared one, or its own query) and its other statements."""
    from runner.checks import REGISTRY

    kind = REGISTRY[check.type]
    for scan in kind.scans(check) if kind.scans is not None else ():
        shared = plan.shared(scan.relation, check)
        if shared is not None:
            yield shared, shared.statement(ctx), shared.source
        else:
            source = ctx.relation_source(scan.relation) or ""
            yield None, ctx.scan_statement(scan.relation), source
    for query in kind.queries(check, ctx) if kind.queries is not None else ():
        yield None, query.statement, query.source or check.source or ""
