"""row_count: the number of rows equals a number or another relation's count, or lies in bounds."""

from __future__ import annotations

import re
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

from runner.checks.base import Relation, RelationCheck, register
from runner.context import Context
from runner.plan import Scan
from runner.results import Outcome

_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def _tolerance(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _TOLERANCE.match(value):
        raise ValueError(f"{value!r} is not a count (3) or a percentage (1%)")
    return value


def _equals_kind(value: object) -> str:
    """A mapping is a relation, anything else a count: only that branch's errors are shown."""
    return "Relation" if isinstance(value, dict | Relation) else "int"


Count = Annotated[int, Field(ge=0, strict=True)]
_TOLERANCE_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _TOLERANCE.pattern},
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
        Annotated[str, BeforeValidator(_tolerance), WithJsonSchema(_TOLERANCE_SCHEMA)] | None
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

    @model_validator(mode="after")
    def _one_comparator(self) -> RowCountSpec:
        given = [
            self.equals is not None,
            self.min is not None or self.max is not None,
            self.between is not None,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'equals', 'min'/'max' or 'between'")
        if self.tolerance is not None and self.equals is None:
            raise ValueError("'tolerance' applies to 'equals' only")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError("'between' must be [low, high] with low <= high")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
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
    target = spec.relation.describe()
    counted = f"distinct {spec.distinct} values" if spec.distinct else "rows"
    if spec.distinct:
        observed["distinct"] = spec.distinct
    if spec.equals is not None:
        if isinstance(spec.equals, Relation):
            expected_count = int(ctx.scan(spec.equals)["count"])
            against = f"{spec.equals.describe()} has {expected_count}"
            expected: dict[str, Any] = {
                "equals": expected_count,
                "relation": spec.equals.describe(),
            }
        else:
            expected_count = spec.equals
            against = f"{expected_count} expected"
            expected = {"equals": expected_count}
        slack = _slack(spec.tolerance, expected_count)
        if spec.tolerance is not None:
            expected["tolerance"] = spec.tolerance
            against += f" (±{spec.tolerance})"
        passed = abs(count - expected_count) <= slack
        return Outcome(
            passed, f"{target} has {count} {counted} where {against}", observed, expected
        )
    low, high = spec.between if spec.between is not None else (spec.min, spec.max)
    expected = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
    passed = (low is None or count >= low) and (high is None or count <= high)
    message = f"{target} has {count} {counted} where {_range(low, high)} expected"
    return Outcome(passed, message, observed, expected)


def _slack(tolerance: str | None, expected: int) -> float:
    if tolerance is None:
        return 0
    match = _TOLERANCE.match(tolerance)
    assert match is not None
    amount = float(match[1])
    return expected * amount / 100 if match[2] else amount


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}" if low == high else f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"
