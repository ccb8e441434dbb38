"""sql: a query whose every row is a violation, or whose single value lies within bounds."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from pydantic import model_validator

from runner.checks.base import CheckSpec, Query, Relation, register
from runner.context import Context
from runner.results import Outcome
from runner.threshold import Threshold, threshold_problem
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
        problem = threshold_problem(min=self.min, max=self.max, equals=self.equals)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def threshold(self) -> Threshold:
        return Threshold.of(min=self.min, max=self.max, equals=self.equals)

    @property
    def scalar(self) -> bool:
        return self.equals is not None or self.min is not None or self.max is not None

    def relations(self) -> Any:
        yield "", Relation(query=self.query, source=self.source)


def statement(spec: SqlSpec, ctx: Context) -> sa.Executable:
    """The query itself for a single value; else its violations, capped, with their total."""
    if spec.scalar:
        return ctx.text(spec.query)
    return ctx.violations_statement(_rows(spec, ctx))


def queries(spec: SqlSpec, ctx: Context) -> list[Query]:
    return [Query(statement(spec, ctx))]


@register(SqlSpec, queries=queries)
def sql(spec: SqlSpec, ctx: Context) -> Outcome:
    if spec.scalar:
        return _judge_value(spec, ctx.scalar(statement(spec, ctx)))
    failures, total = ctx.violations(_rows(spec, ctx))
    if total == 0:
        return Outcome(
            passed=True,
            message="query returned no violating rows",
            observed={"rows": 0},
            expected={"rows": 0},
        )
    first = ", ".join(f"{k}={excerpt(v)}" for k, v in failures[0].items()) if failures else ""
    message = f"query returned {total} violating row{'s' if total != 1 else ''}; first: {first}"
    return Outcome(
        passed=False,
        message=message,
        observed={"rows": total},
        expected={"rows": 0},
        failures=failures,
        failure_count=total,
    )


def _rows(spec: SqlSpec, ctx: Context) -> sa.Select[Any]:
    return ctx.select(Relation(query=spec.query, source=spec.source), sa.literal_column("*"))


def _judge_value(spec: SqlSpec, value: Any) -> Outcome:
    threshold = spec.threshold
    if spec.equals is not None:
        message = f"query returned {_quoted(value)} where {spec.equals!r} expected"
    elif value is None or isinstance(value, bool) or not isinstance(value, int | float):
        message = f"query returned {_quoted(value)}, not a number"
    else:
        bounds = " and ".join(
            f"{word} {bound:g}"
            for word, bound in (("at least", spec.min), ("at most", spec.max))
            if bound is not None
        )
        message = f"query returned {value:g} where {bounds} expected"
    return Outcome(
        passed=threshold.holds(value),
        message=message,
        observed={"value": value},
        expected=threshold.expected(),
    )


def _quoted(value: Any) -> str:
    """The value as Python would write it, a long text cut (it may be a whole document)."""
    return repr(excerpt(value)) if isinstance(value, str) else excerpt(value)
