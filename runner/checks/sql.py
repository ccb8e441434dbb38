"""sql: a query whose every row is a violation, or whose single value lies within bounds."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from pydantic import model_validator

from runner.checks.base import CheckSpec, Relation, register
from runner.context import Context
from runner.plan import Query
from runner.results import Outcome
from runner.values import excerpt


class SqlSpec(CheckSpec):
    """A query that returns the bad rows (passes on none), or one value within min/max/equals."""

    type: Literal["sql"]
    query: str
    """SELECT returning violations (one row each), or a single value when a comparator is given."""
    min: int | float | None = None
    """The single value must be at least this."""
    max: int | float | None = None
    """The single value must be at most this."""
    equals: bool | int | float | str | None = None
    """The single value must equal this."""

    @model_validator(mode="after")
    def _comparators(self) -> SqlSpec:
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("give 'equals' or 'min'/'max', not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
        return self

    @property
    def scalar(self) -> bool:
        return self.equals is not None or self.min is not None or self.max is not None

    def relations(self) -> Any:
        yield "", Relation(query=self.query, source=self.source)


def statement(spec: SqlSpec, ctx: Context) -> sa.Executable:
    """The query itself for a single value; else its violations, capped, with their total."""
    if spec.scalar:
        return ctx.text(spec.query)
    relation = Relation(query=spec.query, source=spec.source)
    stmt = ctx.select(
        relation, sa.literal_column("*"), sa.func.count().over().label("postrun_total")
    )
    # At least one row comes back even with no samples wanted: it carries the total.
    return stmt.limit(max(ctx.sample_limit, 1))


@register(SqlSpec, queries=lambda spec, ctx: [Query(statement(spec, ctx))])
def sql(spec: SqlSpec, ctx: Context) -> Outcome:
    if spec.scalar:
        return _judge_value(spec, ctx.scalar(statement(spec, ctx)))
    rows = ctx.fetch(statement(spec, ctx))
    total = int(rows[0]["postrun_total"]) if rows else 0
    failures = [{k: v for k, v in row.items() if k != "postrun_total"} for row in rows]
    first = ", ".join(f"{k}={excerpt(v)}" for k, v in failures[0].items()) if failures else ""
    failures = failures[: ctx.sample_limit]
    if total == 0:
        return Outcome(True, "query returned no violating rows", {"rows": 0}, {"rows": 0})
    message = f"query returned {total} violating row{'s' if total != 1 else ''}; first: {first}"
    return Outcome(False, message, {"rows": total}, {"rows": 0}, failures, total)


def _judge_value(spec: SqlSpec, value: Any) -> Outcome:
    observed = {"value": value}
    expected = {
        k: v
        for k, v in (("equals", spec.equals), ("min", spec.min), ("max", spec.max))
        if v is not None
    }
    if spec.equals is not None:
        passed = _same(value, spec.equals)
        return Outcome(
            passed,
            f"query returned {_quoted(value)} where {spec.equals!r} expected",
            observed,
            expected,
        )
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return Outcome(False, f"query returned {_quoted(value)}, not a number", observed, expected)
    passed = (spec.min is None or value >= spec.min) and (spec.max is None or value <= spec.max)
    bounds = " and ".join(
        b
        for b in (
            f"at least {spec.min:g}" if spec.min is not None else "",
            f"at most {spec.max:g}" if spec.max is not None else "",
        )
        if b
    )
    return Outcome(passed, f"query returned {value:g} where {bounds} expected", observed, expected)


def _quoted(value: Any) -> str:
    """The value as Python would write it, a long text cut (it may be a whole document)."""
    return repr(excerpt(value)) if isinstance(value, str) else excerpt(value)


def _same(value: Any, expected: bool | float | str) -> bool:
    if isinstance(value, int | float) and isinstance(expected, int | float):
        return float(value) == float(expected)
    return value is not None and str(value) == str(expected)
