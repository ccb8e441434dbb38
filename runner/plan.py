"""Plans a run's SQL before it starts: every check that reads the same relation (same source,
table and `where`, or query) is answered by one aggregate query, a shared scan, which the first
of those checks to need it runs for all of them.

A check type declares the aggregates it needs through ``register(..., scans=...)`` and reads them
back with ``ctx.scan(relation)``; it never sees whether the values came from its own query or a
shared one. Failure samples are not part of a scan: a check fetches them itself, only when it
failed, with a LIMIT. The plan is handed the check types; it runs nothing itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runner import statements
from runner.results import QueryInfo

if TYPE_CHECKING:
    from runner.checks.base import CheckSpec, CheckType, Relation
    from runner.results import CheckResult


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
    (``count(*)`` wanted by three checks) are computed once. The first check that needs it runs
    it (``claim``), the others wait for its row (``Context.scan``)."""

    def __init__(self, relation: Relation, source: str) -> None:
        self.relation = relation
        self.source = source
        self.columns: dict[str, sa.ColumnElement[Any]] = {}
        """Fused label (a0, a1, …) → aggregate, in suite order."""
        self.labels: dict[str, dict[str, str]] = {}
        """Check name → its own label → fused label."""
        self.done = threading.Event()
        """Set once the query ended, answered or not."""
        self.row: dict[str, Any] | None = None
        """Its answer; None while it runs, or when it failed."""
        self.record: QueryRecord | None = None
        self._by_key: dict[ExpressionKey, str] = {}
        self._lock = threading.Lock()
        self._claimed = False

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

    def statement(self, params: Mapping[str, Any]) -> sa.Select[Any]:
        labelled = (e.label(k) for k, e in self.columns.items())
        return statements.select(self.relation, params, *labelled)

    def claim(self) -> bool:
        """Whether the caller is the first to need the query, and so the one to run it."""
        with self._lock:
            first, self._claimed = not self._claimed, True
            return first

    def answered(self, record: QueryRecord | None, row: dict[str, Any] | None) -> None:
        """The query ended: its record and row, both None if it failed (the checks waiting
        then run their own queries, which answer them alone)."""
        self.record, self.row = record, row
        self.done.set()

    def joined(self, check: str) -> QueryRecord | None:
        """Count ``check`` among those the query answered; its record, if it ran."""
        with self._lock:
            if self.record is not None:
                self.record.checks.append(check)
            return self.record

    def values(self, check: str) -> dict[str, Any] | None:
        """The check's aggregates from the answer; None when the query failed."""
        if self.row is None:
            return None
        return {label: self.row[fused] for label, fused in self.labels[check].items()}


@dataclass
class Plan:
    """The shared scans of a run, found before any check starts."""

    scans: dict[RelationKey, SharedScan] = field(default_factory=dict)

    @classmethod
    def of(cls, checks: Iterable[CheckSpec], kinds: Mapping[str, CheckType]) -> Plan:
        """Group the scans of ``checks`` (in suite order, so the SQL is deterministic) by
        relation; a relation only one check reads keeps that check's own query."""
        plan = cls()
        for check in checks:
            declare = kinds[check.type].scans
            for scan in declare(check) if declare is not None else ():
                key = relation_key(scan.relation, check.source)
                shared = plan.scans.setdefault(key, SharedScan(scan.relation, key[0]))
                shared.add(check.name, scan.columns)
        plan.scans = {k: s for k, s in plan.scans.items() if len(s.labels) > 1}
        return plan

    def shared(self, relation: Relation, check: CheckSpec) -> SharedScan | None:
        """The shared scan that answers ``check``'s scan of ``relation``, if any."""
        shared = self.scans.get(relation_key(relation, check.source))
        return shared if shared is not None and check.name in shared.labels else None


def number_queries(
    results: list[CheckResult],
    records: Mapping[str, list[QueryRecord]],
    redact: Callable[[str], str],
) -> tuple[list[CheckResult], list[QueryInfo]]:
    """Number the statements the run sent (q1, q2, … in suite order, then in the order each
    check used them) and name on each result the ones that answered it."""
    ids: dict[int, str] = {}
    sent: list[QueryRecord] = []
    named: list[CheckResult] = []
    for result in results:
        mine: list[str] = []
        for record in records.get(result.name, ()):
            if id(record) not in ids:
                ids[id(record)] = f"q{len(ids) + 1}"
                sent.append(record)
            mine.append(ids[id(record)])
        named.append(result.model_copy(update={"queries": mine}) if mine else result)
    order = [c.name for c in results]
    queries = [
        QueryInfo(
            id=ids[id(r)],
            source=r.source,
            sql=redact(r.sql),
            checks=sorted(r.checks, key=order.index),
            duration_s=r.duration_s,
        )
        for r in sent
    ]
    return named, queries
