"""not_null: listed columns hold no NULLs (or at most `max_nulls` / `max_null_fraction`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator

from runner.checks.base import SAMPLE, Query, RelationCheck, Scan, register
from runner.context import Context
from runner.results import Outcome
from runner.spec import Key
from runner.threshold import Threshold, too_few_rows


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
    min_rows: Annotated[int, Field(ge=1)] | None = None
    """Fewest rows the check must see (default: none); fewer fail: an empty relation usually means
    a batch that wrote nothing."""

    @model_validator(mode="after")
    def _one_limit(self) -> NotNullSpec:
        if self.max_nulls is not None and self.max_null_fraction is not None:
            raise ValueError("give at most one of 'max_nulls' or 'max_null_fraction'")
        return self


def scans(spec: NotNullSpec) -> list[Scan]:
    """The row count and the NULL count of every listed column; with several columns, the
    rows with a NULL in any of them (the failure count when they all fail)."""
    columns: dict[str, sa.ColumnElement[Any]] = {"rows": sa.func.count()}
    for i, column in enumerate(spec.columns):
        columns[f"nulls_{i}"] = sa.func.count() - sa.func.count(sa.column(column))
    if len(spec.columns) > 1:
        columns["rows_with_nulls"] = sa.func.count(sa.case((_any_null(spec.columns), _ONE)))
    return [Scan(spec.relation, columns)]


def queries(spec: NotNullSpec, ctx: Context) -> list[Query]:
    """The sample of rows with NULLs, when the check fails (here as if every column did); with
    three columns or more, the count of rows with a NULL in the failing ones, when some fail
    but not all (the scan counts each column, and the rows with a NULL in any)."""
    wanted = [Query(ctx.sample_statement(null_rows(spec, ctx, spec.columns)), when=SAMPLE)]
    if len(spec.columns) > 2:
        some = f"if some but not all of its {len(spec.columns)} columns fail: their rows"
        wanted.append(Query(null_count(spec, ctx, spec.columns), when=some))
    return wanted


@register(NotNullSpec, scans=scans, queries=queries)
def not_null(spec: NotNullSpec, ctx: Context) -> Outcome:
    counts = ctx.scan(spec.relation)
    rows = int(counts["rows"] or 0)
    nulls = {c: int(counts[f"nulls_{i}"] or 0) for i, c in enumerate(spec.columns)}
    bad = [c for c, n in nulls.items() if not _within(spec, n, rows)]
    observed: dict[str, Any] = {"rows": rows, "nulls": nulls}
    expected = _expected(spec)
    target = spec.relation.describe()
    few = too_few_rows(spec.min_rows, rows, target)
    if few is not None:
        return Outcome(passed=False, message=few, observed=observed, expected=expected)
    if not bad:
        message = f"{target}: no column over its NULL limit in {rows} rows"
        return Outcome(passed=True, message=message, observed=observed, expected=expected)
    sample = ctx.sample(null_rows(spec, ctx, bad))
    if len(bad) == 1:
        failure_count = nulls[bad[0]]
    elif len(bad) == len(spec.columns):
        failure_count = int(counts["rows_with_nulls"])
    elif len(sample) < ctx.sample_limit:
        failure_count = len(sample)  # the sample holds them all
    else:
        failure_count = int(ctx.scalar(null_count(spec, ctx, bad)))
    listing = ", ".join(f"{c} {nulls[c]}" for c in bad)
    return Outcome(
        passed=False,
        message=f"{target} has NULLs in {failure_count} of {rows} rows ({listing})",
        observed=observed,
        expected=expected,
        failures=[_failure(row, spec, bad) for row in sample],
        failure_count=failure_count,
    )


def null_rows(spec: NotNullSpec, ctx: Context, bad: list[str]) -> sa.Select[Any]:
    """The rows with a NULL in any failing column, keyed and ordered by ``key``."""
    shown: list[sa.ColumnClause[Any]] = [sa.column(c) for c in dict.fromkeys([*spec.key, *bad])]
    order: list[sa.ColumnClause[Any]] = [sa.column(c) for c in spec.key]
    return ctx.select(spec.relation, *shown).where(_any_null(bad)).order_by(*order)


def null_count(spec: NotNullSpec, ctx: Context, bad: list[str]) -> sa.Select[Any]:
    """How many rows have a NULL in any failing column."""
    return ctx.select(spec.relation, sa.func.count()).where(_any_null(bad))


def _any_null(columns: list[str]) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.column(c).is_(None) for c in columns))


_ONE: sa.ColumnElement[int] = sa.literal_column("1")


def _within(spec: NotNullSpec, nulls: int, rows: int) -> bool:
    if nulls == 0:
        return True
    if spec.max_null_fraction is not None:
        # Divide rather than multiply: 0.29 * 100 is 28.999…, while 29 / 100 == 0.29 exactly.
        return Threshold(max=spec.max_null_fraction).holds(nulls / rows)
    return Threshold(max=spec.max_nulls or 0).holds(nulls)


def _expected(spec: NotNullSpec) -> dict[str, Any]:
    limit: dict[str, Any] = {"max_nulls": spec.max_nulls or 0}
    if spec.max_null_fraction is not None:
        limit = {"max_null_fraction": spec.max_null_fraction}
    return limit | ({"min_rows": spec.min_rows} if spec.min_rows is not None else {})


def _failure(row: dict[str, Any], spec: NotNullSpec, bad: list[str]) -> dict[str, Any]:
    return {
        "key": {k: row[k] for k in spec.key},
        "null_columns": [c for c in bad if row[c] is None],
    }
