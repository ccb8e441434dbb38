"""not_null: listed columns hold no NULLs (or at most `max_nulls` / `max_null_fraction`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator

from runner.checks.base import Key, RelationCheck, register
from runner.context import Context
from runner.plan import Scan
from runner.results import Outcome


class NotNullSpec(RelationCheck):
    """Each listed column has no NULLs (or at most max_nulls / max_null_fraction of the rows)."""

    type: Literal["not_null"]
    columns: Annotated[Key, Field(min_length=1)]
    """Columns that must be filled."""
    key: Key = Field(default_factory=list)
    """Columns that identify a row in failure samples (e.g. [portfolio_id])."""
    max_nulls: Annotated[int, Field(ge=0)] | None = None
    """NULLs allowed per column (default 0)."""
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] | None = None
    """Share of rows allowed to be NULL per column, 0..1."""

    @model_validator(mode="after")
    def _one_limit(self) -> NotNullSpec:
        if self.max_nulls is not None and self.max_null_fraction is not None:
            raise ValueError("give at most one of 'max_nulls' or 'max_null_fraction'")
        return self


def scans(spec: NotNullSpec) -> list[Scan]:
    """The row count and the NULL count of every listed column."""
    columns: dict[str, sa.ColumnElement[Any]] = {"rows": sa.func.count()}
    for i, column in enumerate(spec.columns):
        columns[f"nulls_{i}"] = sa.func.count() - sa.func.count(sa.column(column))
    return [Scan(spec.relation, columns)]


@register(NotNullSpec, scans=scans)
def not_null(spec: NotNullSpec, ctx: Context) -> Outcome:
    counts = ctx.scan(spec.relation)
    rows = int(counts["rows"] or 0)
    nulls = {c: int(counts[f"nulls_{i}"] or 0) for i, c in enumerate(spec.columns)}
    bad = [c for c, n in nulls.items() if _over_limit(spec, n, rows)]
    observed: dict[str, Any] = {"rows": rows, "nulls": nulls}
    expected = _expected(spec)
    target = spec.relation.describe()
    if not bad:
        return Outcome(
            True, f"{target}: no column over its NULL limit in {rows} rows", observed, expected
        )
    sample = ctx.fetch(null_rows(spec, ctx, bad))
    failures = [_failure(row, spec, bad) for row in sample[: ctx.sample_limit]]
    failure_count = int(sample[0]["postrun_total"]) if sample else 0
    listing = ", ".join(f"{c} {nulls[c]}" for c in bad)
    message = f"{target} has NULLs in {failure_count} of {rows} rows ({listing})"
    return Outcome(False, message, observed, expected, failures, failure_count)


def null_rows(spec: NotNullSpec, ctx: Context, bad: list[str]) -> sa.Select[Any]:
    """A bounded sample of rows with a NULL in any failing column, and their total."""
    any_null = sa.or_(*(sa.column(c).is_(None) for c in bad))
    shown: list[sa.ColumnClause[Any]] = [sa.column(c) for c in dict.fromkeys([*spec.key, *bad])]
    order: list[sa.ColumnClause[Any]] = [sa.column(c) for c in spec.key]
    stmt = ctx.select(spec.relation, *shown, sa.func.count().over().label("postrun_total"))
    # At least one row comes back even with no samples wanted: it carries the total.
    return stmt.where(any_null).order_by(*order).limit(max(ctx.sample_limit, 1))


def _over_limit(spec: NotNullSpec, nulls: int, rows: int) -> bool:
    if spec.max_null_fraction is not None:
        # Divide rather than multiply: 0.29 * 100 is 28.999…, while 29 / 100 == 0.29 exactly.
        return nulls > 0 and nulls / rows > spec.max_null_fraction
    return nulls > (spec.max_nulls or 0)


def _expected(spec: NotNullSpec) -> dict[str, Any]:
    if spec.max_null_fraction is not None:
        return {"max_null_fraction": spec.max_null_fraction}
    return {"max_nulls": spec.max_nulls or 0}


def _failure(row: dict[str, Any], spec: NotNullSpec, bad: list[str]) -> dict[str, Any]:
    return {
        "key": {k: row[k] for k in spec.key},
        "null_columns": [c for c in bad if row[c] is None],
    }
