"""status_consistency: every parent's status is one its children's outcome allows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator

from runner.checks.base import CheckSpec, Query, Relation, register
from runner.context import Context
from runner.results import Outcome
from runner.spec import Duration, Spec
from runner.threshold import too_few_rows

OUTCOMES = ("all_succeeded", "some_failed", "all_failed", "unfinished", "no_children")
COUNTS = ("total", "succeeded", "failed")
_SHOWN = 3
_ZERO: sa.ColumnClause[int] = sa.literal_column("0")
_ONE: sa.ColumnClause[int] = sa.literal_column("1")


class _OnCheckSource(Relation):
    @model_validator(mode="after")
    def _no_own_source(self) -> _OnCheckSource:
        if self.source is not None:
            raise ValueError("parent and children are read from the check's 'source'; drop it here")
        return self


class Parents(_OnCheckSource):
    """The parent rows (batches, runs, jobs) whose status is judged."""

    id: str
    """Column identifying a parent; children point at it with `parent_id`."""
    status: str
    """Column holding the parent's status; NULL is never an allowed status."""
    updated_at: str | None = None
    """Column with the parent's last change (naive UTC timestamp); needed by `settle`."""
    source: str | None = None
    """Not allowed: parent and children are both read from the check's `source`."""


class Children(_OnCheckSource):
    """The child rows (files, items, wallets) whose statuses decide the parent's outcome."""

    parent_id: str
    """Column holding the parent's `id`."""
    status: str
    """Column holding the child's status (listed in `success` / `failure`, else unfinished)."""
    source: str | None = None
    """Not allowed: parent and children are both read from the check's `source`."""


class Expect(Spec):
    """Outcome → statuses a parent may have with it; an outcome left out allows any status."""

    all_succeeded: list[str] | None = None
    """Every child succeeded."""
    some_failed: list[str] | None = None
    """All children finished, some failed and some succeeded."""
    all_failed: list[str] | None = None
    """Every child failed."""
    unfinished: list[str] | None = None
    """At least one child has a status in neither `success` nor `failure` (or NULL)."""
    no_children: list[str] | None = None
    """The parent has no children."""


class Counters(Spec):
    """Parent columns that must equal the counts of its children."""

    total: str | None = None
    """Column that must equal the number of children."""
    succeeded: str | None = None
    """Column that must equal the number of succeeded children."""
    failed: str | None = None
    """Column that must equal the number of failed children."""


class StatusConsistencySpec(CheckSpec):
    """Every parent's status is one the `expect` map allows for its children's outcome."""

    type: Literal["status_consistency"]
    parent: Parents
    """Parents: `table` (+ `where`) or `query`, with the `id` and `status` columns."""
    children: Children
    """Children: `table` (+ `where`) or `query`, with the `parent_id` and `status` columns."""
    success: list[str]
    """Child statuses that mean success."""
    failure: list[str] = Field(default_factory=list)
    """Child statuses that mean failure; any other child status (or NULL) is unfinished."""
    expect: Expect
    """Allowed parent statuses per outcome; an outcome left out allows any non-NULL status."""
    counters: Counters | None = None
    """Parent columns that must equal the child counts (`total`, `succeeded`, `failed`)."""
    settle: Duration | None = None
    """Skip parents updated less than this long ago (e.g. 10m); a NULL `updated_at` is checked."""
    min_rows: Annotated[int, Field(ge=1)] | None = None
    """Fewest parents the check must see (default: none); fewer fail: an empty parent relation
    usually means a batch that wrote nothing."""

    @model_validator(mode="after")
    def _consistent(self) -> StatusConsistencySpec:
        if not self.success:
            raise ValueError("'success' must list at least one child status")
        both = sorted(set(self.success) & set(self.failure))
        if both:
            raise ValueError(f"'{both[0]}' is listed in both 'success' and 'failure'")
        if not _expected(self.expect):
            raise ValueError(f"'expect' must map at least one outcome ({', '.join(OUTCOMES)})")
        if self.counters is not None and not _counter_columns(self.counters):
            raise ValueError("'counters' must name at least one of total, succeeded, failed")
        if self.settle is not None and self.parent.updated_at is None:
            raise ValueError(
                "'settle' needs 'parent.updated_at' to tell when a parent last changed"
            )
        return self

    def target(self) -> str:
        return self.parent.describe()

    def relations(self) -> Iterator[tuple[str, Relation]]:
        yield "parent", self.parent
        yield "children", self.children


def queries(spec: StatusConsistencySpec, ctx: Context) -> list[Query]:
    """The parents' count, and the inconsistent parents' bounded sample with their total."""
    counts, inconsistent = _statements(spec, ctx, settle_cutoff(spec))
    return [Query(counts), Query(ctx.violations_statement(inconsistent))]


@register(StatusConsistencySpec, queries=queries)
def status_consistency(spec: StatusConsistencySpec, ctx: Context) -> Outcome:
    cutoff = settle_cutoff(spec)
    counts, inconsistent = _statements(spec, ctx, cutoff)
    totals = ctx.fetch(counts)[0]
    rows, count = ctx.violations(inconsistent)
    checked = int(totals["parents"]) - int(totals["settling"] or 0)
    observed: dict[str, Any] = {"parents": checked, "inconsistent": count}
    target = spec.parent.describe()
    settling = ""
    if cutoff is not None:
        observed["settling"] = int(totals["settling"] or 0)
        within = _duration(spec.settle)
        settling = f" ({observed['settling']} updated within {within} left out as settling)"
    expected: dict[str, Any] = {"expect": _expected(spec.expect)}
    if spec.counters is not None:
        expected["counters"] = _counter_columns(spec.counters)
    if spec.min_rows is not None:
        expected["min_rows"] = spec.min_rows
    few = too_few_rows(spec.min_rows, checked, target, "parents")
    if few is not None and not count:
        return Outcome(passed=False, message=few, observed=observed, expected=expected)
    failures = [_failure(spec, row) for row in rows]
    reasons = [
        _describe(spec, f, bool(r["bad_status"])) for f, r in zip(failures, rows, strict=True)
    ]
    if not count:
        message = f"all {checked} parents in {target} agree with their children{settling}"
        return Outcome(passed=True, message=message, observed=observed, expected=expected)
    shown = "; ".join(reasons[:_SHOWN])
    more = f"; and {count - _SHOWN} more" if count > _SHOWN else ""
    message = f"{_contradicting(count, checked, target)}{settling}: {shown}{more}"
    return Outcome(
        passed=False,
        message=message,
        observed=observed,
        expected=expected,
        failures=failures,
        failure_count=count,
    )


def _contradicting(count: int, checked: int, target: str) -> str:
    """ "the only parent in X contradicts its children", "1 of 6 parents … contradicts its
    children", "2 of 6 parents … contradict their children"."""
    if count == checked == 1:
        return f"the only parent in {target} contradicts its children"
    verb = "contradicts its" if count == 1 else "contradict their"
    return f"{count} of {checked} parents in {target} {verb} children"


def _statements(
    spec: StatusConsistencySpec, ctx: Context, cutoff: datetime | None
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """What the check sends, in order: the parents' count, then the inconsistent parents."""
    return parent_counts(spec, ctx, cutoff), inconsistent_parents(spec, ctx, cutoff)


def settle_cutoff(spec: StatusConsistencySpec) -> datetime | None:
    """Parents updated after this naive UTC moment are still settling."""
    if spec.settle is None:
        return None
    return datetime.now(UTC).replace(tzinfo=None) - spec.settle


def inconsistent_parents(
    spec: StatusConsistencySpec, ctx: Context, cutoff: datetime | None = None
) -> sa.Select[Any]:
    """The inconsistent parents, ordered by id."""
    parents = _parents(spec, ctx, cutoff).cte("postrun_parents")
    children = _children(spec, ctx).cte("postrun_children")
    outcome = sa.case(
        (children.c.parent_id.is_(None), _name("no_children")),
        (children.c.unfinished > _ZERO, _name("unfinished")),
        (children.c.failed == _ZERO, _name("all_succeeded")),
        (children.c.succeeded == _ZERO, _name("all_failed")),
        else_=_name("some_failed"),
    )
    counters = _counter_columns(spec.counters)
    judged = sa.select(
        parents.c.id,
        parents.c.status,
        outcome.label("outcome"),
        *(sa.func.coalesce(children.c[k], _ZERO).label(k) for k in (*COUNTS, "unfinished")),
        *(parents.c[f"counter_{k}"] for k in counters),
    ).select_from(parents.outerjoin(children, parents.c.id == children.c.parent_id))
    if cutoff is not None:
        updated = parents.c.updated_at
        judged = judged.where(sa.or_(updated.is_(None), updated <= _cutoff(cutoff)))
    judged_cte = judged.cte("postrun_judged")
    bad_status = sa.case(
        (judged_cte.c.status.is_(None), _ONE),
        *(
            (judged_cte.c.outcome == _name(o), _flag(judged_cte.c.status.in_(_values(o, s)), 0))
            for o, s in _expected(spec.expect).items()
        ),
        else_=_ZERO,
    )
    flagged = sa.select(
        judged_cte,
        bad_status.label("bad_status"),
        *(
            _flag(judged_cte.c[f"counter_{k}"] == judged_cte.c[k], 0).label(f"{k}_differs")
            for k in counters
        ),
    ).cte("postrun_flagged")
    bad = [flagged.c.bad_status == _ONE, *(flagged.c[f"{k}_differs"] == _ONE for k in counters)]
    return sa.select(flagged).where(sa.or_(*bad)).order_by(flagged.c.id)


def parent_counts(
    spec: StatusConsistencySpec, ctx: Context, cutoff: datetime | None = None
) -> sa.Select[Any]:
    """How many parents there are, and how many of them are still settling."""
    settling: sa.ColumnElement[Any] = _ZERO
    if cutoff is not None and spec.parent.updated_at is not None:
        settling = sa.func.sum(_flag(sa.column(spec.parent.updated_at) > _cutoff(cutoff)))
    return ctx.select(spec.parent, sa.func.count().label("parents"), settling.label("settling"))


def _parents(spec: StatusConsistencySpec, ctx: Context, cutoff: datetime | None) -> sa.Select[Any]:
    columns = {"id": spec.parent.id, "status": spec.parent.status}
    if cutoff is not None and spec.parent.updated_at is not None:
        columns["updated_at"] = spec.parent.updated_at
    columns |= {f"counter_{k}": c for k, c in _counter_columns(spec.counters).items()}
    return ctx.select(spec.parent, *(sa.column(c).label(label) for label, c in columns.items()))


def _children(spec: StatusConsistencySpec, ctx: Context) -> sa.Select[Any]:
    """Child counts per parent; a status in neither list (or NULL) is unfinished."""
    status: sa.ColumnClause[Any] = sa.column(spec.children.status)
    succeeded = status.in_(_values("success", spec.success))
    failed = status.in_(_values("failure", spec.failure))
    parent_id: sa.ColumnClause[Any] = sa.column(spec.children.parent_id)
    return ctx.select(
        spec.children,
        parent_id.label("parent_id"),
        sa.func.count().label("total"),
        sa.func.sum(_flag(succeeded)).label("succeeded"),
        sa.func.sum(_flag(failed)).label("failed"),
        sa.func.sum(_flag(sa.or_(succeeded, failed), 0)).label("unfinished"),
    ).group_by(parent_id)


def _flag(condition: sa.ColumnElement[bool], when: int = 1) -> sa.ColumnElement[int]:
    """``when`` where ``condition`` is true, the other of 1/0 where it is false or NULL."""
    return sa.case(
        (condition, sa.literal_column(str(when))), else_=sa.literal_column(str(1 - when))
    )


def _values(name: str, values: list[str]) -> sa.BindParameter[Any]:
    """Statuses as one expanding bound parameter, named postrun_* to keep clear of suite params."""
    return sa.bindparam(f"postrun_{name}", values, expanding=True)


def _name(outcome: str) -> sa.ColumnElement[str]:
    return sa.literal_column(f"'{outcome}'")  # one of OUTCOMES, never user text


def _cutoff(cutoff: datetime) -> sa.BindParameter[datetime]:
    return sa.bindparam("postrun_settle_cutoff", cutoff, type_=sa.DateTime())


def _expected(expect: Expect) -> dict[str, list[str]]:
    return expect.model_dump(exclude_none=True)


def _counter_columns(counters: Counters | None) -> dict[str, str]:
    return counters.model_dump(exclude_none=True) if counters else {}


def _failure(spec: StatusConsistencySpec, row: dict[str, Any]) -> dict[str, Any]:
    counters = _counter_columns(spec.counters)
    return {
        "id": row["id"],
        "status": row["status"],
        "outcome": row["outcome"],
        "allowed": _expected(spec.expect).get(row["outcome"]),
        "children": {k: int(row[k]) for k in (*COUNTS, "unfinished")},
        "counters": {
            column: {"parent": row[f"counter_{k}"], "children": int(row[k])}
            for k, column in counters.items()
            if row[f"{k}_differs"]
        },
    }


_PHRASES = {
    "all_succeeded": "all {total} children succeeded",
    "some_failed": "{failed} of {total} children failed",
    "all_failed": "all {total} children failed",
    "unfinished": "{unfinished} of {total} children are unfinished",
    "no_children": "it has no children",
}
_ONE_CHILD = _PHRASES | {
    "all_succeeded": "its only child succeeded",
    "all_failed": "its only child failed",
    "unfinished": "its only child is unfinished",
}
_COUNTER_PHRASES = {
    "total": "{n} children",
    "succeeded": "{n} children succeeded",
    "failed": "{n} children failed",
}


def _describe(spec: StatusConsistencySpec, failure: dict[str, Any], bad_status: bool) -> str:
    """One parent in words: B-003 is 'processing' though all 7 children succeeded (…)."""
    status = "NULL" if failure["status"] is None else repr(failure["status"])
    counts = failure["children"]
    phrases = _ONE_CHILD if counts["total"] == 1 else _PHRASES
    children = phrases[failure["outcome"]].format(**counts)
    if bad_status:
        allowed = failure["allowed"]
        allows = "any status but NULL" if allowed is None else ", ".join(allowed) or "no status"
        text = (
            f"{failure['id']} is {status} though {children} ({failure['outcome']} allows {allows})"
        )
    else:
        text = f"{failure['id']} ({status}, {children})"
    kinds = {column: k for k, column in _counter_columns(spec.counters).items()}
    mismatches = [
        f"{column} is {_sql_value(v['parent'])} but "
        + _COUNTER_PHRASES[kinds[column]].format(n=v["children"])
        for column, v in failure["counters"].items()
    ]
    return ", ".join([text, *mismatches]) if bad_status else f"{text}: " + ", ".join(mismatches)


def _duration(value: timedelta | None) -> str:
    seconds = int(value.total_seconds()) if value is not None else 0
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _sql_value(value: Any) -> str:
    return "NULL" if value is None else str(value)
