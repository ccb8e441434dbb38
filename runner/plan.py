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
    from runner.checks.base import CheckSpec, CheckType, Relation, Scan
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


Part = tuple[str, str | None]
"""What a shared scan answers: a check, and the `where` it reads the table with."""


class SharedScan:
    """One aggregate query over a table (or query) answering several checks; identical
    aggregates (``count(*)`` wanted by three checks) are computed once. Checks that read the
    table with different `where`s share it too: each of their aggregates counts only its own
    rows (``FILTER (WHERE …)``), and the query reads the rows any of them wants. The first check
    that needs it runs it (``claim``), the others wait for its row (``Context.scan``)."""

    def __init__(self, relation: Relation, source: str) -> None:
        self.relation = relation.model_copy(update={"where": None})
        """The table or query, without a `where`: each part has its own."""
        self.source = source
        self.columns: dict[str, tuple[str | None, sa.ColumnElement[Any]]] = {}
        """Fused label (a0, a1, …) → the `where` it counts under, and its aggregate."""
        self.labels: dict[Part, dict[str, str]] = {}
        """(check, where) → the check's own label → fused label."""
        self.done = threading.Event()
        """Set once the query ended, answered or not."""
        self.row: dict[str, Any] | None = None
        """Its answer; None while it runs, or when it failed."""
        self.record: QueryRecord | None = None
        self.source_error: Exception | None = None
        """Set when the query failed because its source could not be reached or logged into:
        every check waiting gets that error, none runs a query of its own that would fail the
        same way."""
        self._by_key: dict[tuple[str | None, ExpressionKey], str] = {}
        self._lock = threading.Lock()
        self._claimed = False

    def add(self, check: str, where: str | None, columns: dict[str, sa.ColumnElement[Any]]) -> None:
        mine = self.labels.setdefault((check, where), {})
        for label, expression in columns.items():
            key = where, expression_key(expression)
            if key not in self._by_key:
                self._by_key[key] = f"a{len(self.columns)}"
                self.columns[self._by_key[key]] = where, expression
            mine[label] = self._by_key[key]

    @property
    def checks(self) -> list[str]:
        """The checks it answers, in suite order."""
        return list(dict.fromkeys(check for check, _ in self.labels))

    @property
    def wheres(self) -> list[str | None]:
        return list(dict.fromkeys(where for _, where in self.labels))

    def statement(self, params: Mapping[str, Any]) -> sa.Select[Any]:
        wheres = self.wheres
        if len(wheres) == 1:
            relation = self.relation.model_copy(update={"where": wheres[0]})
            labelled = (e.label(k) for k, (_, e) in self.columns.items())
            return statements.select(relation, params, *labelled)
        columns = []
        for label, (where, expression) in self.columns.items():
            if where is not None:
                scoped = statements.filtered(expression, statements.condition(where, params))
                assert scoped is not None, "Plan.of fuses filterable aggregates only"
                columns.append(scoped.label(label))
            else:
                columns.append(expression.label(label))
        stmt = statements.select(self.relation, params, *columns)
        if None in wheres:
            return stmt  # a check reads the whole table
        return stmt.where(sa.or_(*(statements.condition(w, params) for w in wheres if w)))

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
            if self.record is not None and check not in self.record.checks:
                self.record.checks.append(check)
            return self.record

    def values(self, check: str, where: str | None) -> dict[str, Any] | None:
        """The check's aggregates from the answer; None when the query failed."""
        if self.row is None:
            return None
        return {label: self.row[fused] for label, fused in self.labels[check, where].items()}


@dataclass
class Plan:
    """The shared scans of a run, found before any check starts."""

    scans: list[SharedScan] = field(default_factory=list)
    _index: dict[tuple[str, RelationKey], SharedScan] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for shared in self.scans:
            for check, where in shared.labels:
                relation = shared.relation.model_copy(update={"where": where})
                self._index[check, relation_key(relation, shared.source)] = shared

    @classmethod
    def of(cls, checks: Iterable[CheckSpec], kinds: Mapping[str, CheckType]) -> Plan:
        """Group the scans of ``checks`` (in suite order, so the SQL is deterministic) by
        table: one query per table whatever the `where`s, except for a relation whose
        aggregates cannot be filtered (it keeps a query of its own, shared by the checks that
        read it with the same `where`). A relation only one check reads keeps its own query."""
        parts: dict[RelationKey, list[tuple[str, Scan]]] = {}
        for check in checks:
            declare = kinds[check.type].scans
            for scan in declare(check) if declare is not None else ():
                parts.setdefault(relation_key(scan.relation, check.source), []).append(
                    (check.name, scan)
                )
        groups: dict[object, list[tuple[RelationKey, list[tuple[str, Scan]]]]] = {}
        for key, wanted in parts.items():
            fusable = all(
                statements.filtered(e, sa.true()) is not None
                for _, scan in wanted
                for e in scan.columns.values()
            )
            group = (key[0], key[1], key[3]) if fusable else key
            groups.setdefault(group, []).append((key, wanted))
        scans = []
        for members in groups.values():
            first_key, first = members[0]
            shared = SharedScan(first[0][1].relation, first_key[0])
            for key, wanted in members:
                for name, scan in wanted:
                    shared.add(name, key[2], scan.columns)
            if len(shared.labels) > 1:
                scans.append(shared)
        return cls(scans)

    def shared(self, relation: Relation, check: CheckSpec) -> SharedScan | None:
        """The shared scan that answers ``check``'s scan of ``relation``, if any."""
        return self._index.get((check.name, relation_key(relation, check.source)))


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
