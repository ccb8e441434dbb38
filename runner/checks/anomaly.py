"""anomaly: a number (a query's single value, or another check's observation) lies in the band its
own recent runs set: median ± scaled MADs, or ratios of the median."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from runner.checks.base import CheckSpec, Query, Relation, register
from runner.context import Context
from runner.errors import CheckConfigError, SourceError
from runner.history.judge import judge_band, learning
from runner.results import Outcome
from runner.spec import Spec


class Metric(Spec):
    """The number judged: `{query, source}` returning one value, or `{check, value}` reading an
    observation of another check of this run (e.g. `{check: snapshots, value: count}`)."""

    query: str | None = None
    """A SELECT returning one number; `:param` placeholders are bound parameters."""
    source: str | None = None
    """Source the query runs on; the check's own when left out."""
    check: str | None = None
    """Name of another check of the suite whose observation is judged (it runs first)."""
    value: str | None = None
    """The observation of `check` (its `observed` key; nested keys with dots: `nulls.daily_pnl`)."""

    @model_validator(mode="after")
    def _one_metric(self) -> Metric:
        if (self.query is None) == (self.check is None):
            raise ValueError("give exactly one of 'query' or 'check'")
        if self.check is not None and (self.value is None or self.source is not None):
            raise ValueError("'check' takes 'value' (the observation to read), not 'source'")
        if self.query is not None and self.value is not None:
            raise ValueError("'value' applies to 'check'; a 'query' returns the value itself")
        return self


class AnomalySpec(CheckSpec):
    """A number lies in the band its own recent runs set (median ± MADs, or ratios of it)."""

    type: Literal["anomaly"]
    metric: Metric
    """What is judged: `{query, source}` or `{check, value}`."""
    deviations: float = Field(default=3.0, gt=0)
    """Width of the band either side of the median, in scaled MADs (median / MAD method)."""
    min_ratio: float | None = Field(default=None, ge=0)
    """Lowest value allowed as a fraction of the median (e.g. 0.5); replaces the MAD band."""
    max_ratio: float | None = Field(default=None, ge=0)
    """Highest value allowed as a multiple of the median (e.g. 2); replaces the MAD band."""
    window: int = Field(default=14, ge=1)
    """How many recent runs make the history."""
    min_history: int = Field(default=5, ge=1)
    """With fewer past runs than this the check passes with a note ("learning: 3 of 5 runs")."""
    include_failed: bool = False
    """Use runs whose verdict was FAIL or ERROR as history too."""

    @model_validator(mode="after")
    def _consistent(self) -> AnomalySpec:
        if self.min_history > self.window:
            raise ValueError("'min_history' must not exceed 'window'")
        low, high = self.min_ratio, self.max_ratio
        if low is not None and high is not None and low > high:
            raise ValueError("'min_ratio' must not exceed 'max_ratio'")
        return self

    def target(self) -> str:
        return self.metric.check or "query"

    def after(self) -> list[str]:
        return [self.metric.check] if self.metric.check is not None else []

    def needs_source(self) -> bool:
        return self.metric.query is not None and self.metric.source is None

    def relations(self) -> Iterator[tuple[str, Relation]]:
        if self.metric.query is not None:
            yield "metric", Relation(query=self.metric.query, source=self.metric.source)


def queries(spec: AnomalySpec, ctx: Context) -> list[Query]:
    if spec.metric.query is None:
        return []
    return [Query(ctx.text(spec.metric.query), source=spec.metric.source)]


@register(AnomalySpec, queries=queries)
def anomaly(spec: AnomalySpec, ctx: Context) -> Outcome:
    metric = spec.metric
    history = ctx.history(
        metric.value or "value",
        window=spec.window,
        include_failed=spec.include_failed,
        check=metric.check or spec.name,
    )
    value, what = _measure(spec, ctx)
    waiting = learning(history, spec.min_history)
    if waiting is not None:
        return Outcome(
            passed=True,
            message=f"{what} is {value:g}; {waiting.words}",
            observed={"value": value},
            notes=waiting.notes,
        )
    judged = judge_band(
        value,
        history,
        deviations=spec.deviations,
        min_ratio=spec.min_ratio,
        max_ratio=spec.max_ratio,
    )
    verb = "is" if judged.passed else "is out of its usual band:"
    return Outcome(
        passed=judged.passed,
        message=f"{what} {verb} {value:g}, {judged.words}",
        observed={"value": value} | judged.observed,
        expected=judged.expected,
    )


def _measure(spec: AnomalySpec, ctx: Context) -> tuple[float, str]:
    """The metric's value now, and how to name it in the message."""
    metric = spec.metric
    if metric.query is not None:
        return _number(ctx.scalar(ctx.text(metric.query), metric.source), "the query's value")
    assert metric.check is not None and metric.value is not None  # the spec's validator
    result = ctx.result(metric.check)
    if result.error is not None:  # the same cause: its source is down, its query broke, …
        raise SourceError(
            result.error.message,
            category=result.error.category,
            retryable=result.error.retryable,
            detail=f"check '{metric.check}', whose {metric.value} this check judges, ended ERROR",
        )
    if result.status.value == "SKIP":
        raise CheckConfigError(
            f"check '{metric.check}' was not run (SKIP), so its {metric.value} is unknown"
        )
    found: Any = result.observed
    for part in metric.value.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return _number(found, f"{metric.check} {metric.value}")


def _number(value: Any, what: str) -> tuple[float, str]:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise CheckConfigError(f"{what} is {value!r}, not a number to judge against its history")
    return float(value), what
