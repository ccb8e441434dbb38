"""row_count: the number of rows equals a number or another relation's count, or lies in bounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from runner.checks.base import Relation, RelationCheck, Scan, register
from runner.context import Context
from runner.history.judge import ChangeSpec, judge_change
from runner.results import Outcome
from runner.threshold import TOLERANCE, Threshold, parse_tolerance, threshold_problem


def _equals_kind(value: object) -> str:
    """A mapping is a relation, anything else a count: only that branch's errors are shown."""
    return "Relation" if isinstance(value, dict | Relation) else "int"


Count = Annotated[int, Field(ge=0, strict=True)]
_TOLERANCE_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": TOLERANCE.pattern},
    ]
}


class RowCountSpec(RelationCheck):
    """The relation's row count equals a number or another relation's count, or lies in bounds."""

    type: Literal["row_count"]
    equals: (
        Annotated[
            Annotated[Count, Tag("int")] | Annotated[Relation, Tag("Relation")],
            Discriminator(_equals_kind),
        ]
        | None
    ) = None
    """Exact count: a number, or another relation (`table`/`where` or `query`, any `source`)."""
    tolerance: (
        Annotated[str, BeforeValidator(parse_tolerance), WithJsonSchema(_TOLERANCE_SCHEMA)] | None
    ) = None
    """Allowed difference from `equals`: a count (`3`) or a percentage of the expected (`1%`)."""
    min: Count | None = None
    """At least this many rows."""
    max: Count | None = None
    """At most this many rows."""
    between: Annotated[list[Count], Field(min_length=2, max_length=2)] | None = None
    """Inclusive range [low, high]."""
    distinct: str | None = None
    """Count the distinct non-NULL values of this column instead of the rows (e.g. portfolios
    with a snapshot, not snapshots)."""
    change: ChangeSpec | None = None
    """Compare with the median count of recent runs of the same history key: `{window: 7,
    min_history: 5, max_drop: 30%, max_rise: 50%}`; with it no fixed comparator is needed."""

    @model_validator(mode="after")
    def _one_comparator(self) -> RowCountSpec:
        problem = threshold_problem(
            min=self.min,
            max=self.max,
            equals=self.equals,
            between=self.between,
            tolerance=self.tolerance,
            one_required=self.change is None,
        )
        if problem is not None:
            raise ValueError(problem)
        return self

    def relations(self) -> Iterator[tuple[str, Relation]]:
        yield from super().relations()
        if isinstance(self.equals, Relation):
            yield "equals", self.equals


def scans(spec: RowCountSpec) -> list[Scan]:
    """The count of the relation (rows, or distinct values), and of the `equals` relation."""
    counted = sa.func.count(sa.distinct(sa.column(spec.distinct))) if spec.distinct else None
    wanted = [Scan(spec.relation, {"count": counted if counted is not None else sa.func.count()})]
    if isinstance(spec.equals, Relation):
        wanted.append(Scan(spec.equals, {"count": sa.func.count()}))
    return wanted


@register(RowCountSpec, scans=scans)
def row_count(spec: RowCountSpec, ctx: Context) -> Outcome:
    count = int(ctx.scan(spec.relation)["count"])
    observed: dict[str, Any] = {"count": count}
    if spec.distinct:
        observed["distinct"] = spec.distinct
    counted = f"distinct {spec.distinct} values" if spec.distinct else "rows"
    has = f"{spec.relation.describe()} has {count} {counted}"
    passed, words = True, [has]
    expected: dict[str, Any] = {}
    if _fixed(spec):
        threshold, expected, against = _threshold(spec, ctx)
        passed, words = threshold.holds(count), [f"{has} where {against}"]
    notes: list[str] = []
    if spec.change is not None:
        past = ctx.history(
            "count", window=spec.change.window, include_failed=spec.change.include_failed
        )
        judged = judge_change(spec.change, count, past)
        passed = passed and judged.passed
        words = [*words[:1], judged.words]
        observed |= {k: v for k, v in judged.observed.items() if v is not None}
        expected = expected | ({"change": judged.expected} if judged.expected else {})
        notes = judged.notes
    return Outcome(
        passed=passed,
        message="; ".join(words),
        observed=observed,
        expected=expected,
        notes=notes,
    )


def _fixed(spec: RowCountSpec) -> bool:
    """Whether the spec gives a fixed comparator (it may give only `change`)."""
    bounds = (spec.equals, spec.min, spec.max, spec.between)
    return any(bound is not None for bound in bounds)


def _threshold(spec: RowCountSpec, ctx: Context) -> tuple[Threshold, dict[str, Any], str]:
    """The threshold (an `equals` relation counted now), what the verdict says was expected,
    and the words after "where"."""
    if isinstance(spec.equals, Relation):
        other = int(ctx.scan(spec.equals)["count"])
        threshold = Threshold.of(equals=other, tolerance=spec.tolerance)
        expected = {"equals": other, "relation": spec.equals.describe()} | threshold.expected()
        words = f"{spec.equals.describe()} has {threshold.describe()}{threshold.margin()}"
        return threshold, expected, words
    threshold = Threshold.of(
        min=spec.min,
        max=spec.max,
        equals=spec.equals,
        between=spec.between,
        tolerance=spec.tolerance,
    )
    return threshold, threshold.expected(), f"{threshold.describe()} expected{threshold.margin()}"
