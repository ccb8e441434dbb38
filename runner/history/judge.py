"""How a value is judged against its own past: the `change:` block (a drop or rise from the median
of recent runs) and the `anomaly` band (median / MAD, or ratios of the median). Pure arithmetic on
the points the store returned; part of the check contract, it imports nothing of the runtime."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from runner.spec import Spec
from runner.threshold import TOLERANCE, parse_tolerance

MAD_SCALE = 1.4826
"""MAD times this estimates the standard deviation of normally distributed values."""
MAD_FLOOR = 0.01
"""A spread of at least 1% of |median|: a history of equal values does not flag a tiny change."""

_AMOUNT_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": TOLERANCE.pattern},
    ]
}
Amount = Annotated[str, BeforeValidator(parse_tolerance), WithJsonSchema(_AMOUNT_SCHEMA)]


class PastPoint(Protocol):
    """A past value and the run it came from (``runner.history.store.Point``)."""

    @property
    def run_id(self) -> str: ...
    @property
    def value(self) -> float: ...


class ChangeSpec(Spec):
    """How far a value may move from the median of its recent runs (same history key)."""

    window: int = Field(default=7, ge=1)
    """How many recent runs the median is taken over."""
    min_history: int = Field(default=5, ge=1)
    """With fewer past runs than this the check passes with a note ("learning: 3 of 5 runs")."""
    max_drop: Amount | None = None
    """Largest fall below the median: a percentage of it (`30%`) or an amount (`500`)."""
    max_rise: Amount | None = None
    """Largest rise above the median: a percentage of it (`50%`) or an amount (`500`)."""
    include_failed: bool = False
    """Use runs whose verdict was FAIL or ERROR as history too."""

    @model_validator(mode="after")
    def _bounded(self) -> ChangeSpec:
        if self.max_drop is None and self.max_rise is None:
            raise ValueError("give 'max_drop', 'max_rise' or both")
        if self.min_history > self.window:
            raise ValueError("'min_history' must not exceed 'window'")
        return self


@dataclass
class Judgement:
    """A value against its past: whether it holds, the words for a message, the facts for
    ``observed`` / ``expected``, and notes (learning)."""

    passed: bool
    words: str
    observed: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def learning(history: Sequence[PastPoint], min_history: int) -> Judgement | None:
    """A pass with a note while fewer than ``min_history`` past runs are known, else None."""
    if len(history) >= min_history:
        return None
    note = f"learning: {len(history)} of {min_history} runs"
    return Judgement(True, f"{note} of history, not judged yet", notes=[note])


def judge_change(change: ChangeSpec, value: float, history: Sequence[PastPoint]) -> Judgement:
    """``value`` against the median of ``history``, allowed ``max_drop`` below and ``max_rise``
    above it."""
    waiting = learning(history, change.min_history)
    if waiting is not None:
        return waiting
    median = statistics.median(p.value for p in history)
    low = median - _amount(change.max_drop, median) if change.max_drop is not None else None
    high = median + _amount(change.max_rise, median) if change.max_rise is not None else None
    passed = (low is None or value >= low) and (high is None or value <= high)
    moved = (value - median) / abs(median) * 100 if median else None
    how = f"{moved:+.1f}% vs" if moved is not None else "vs"
    words = (
        f"{how} the median {_num(median)} of the last {len(history)} runs "
        f"({_band(low, high)} allowed)"
    )
    expected = {"median": median, "low": low, "high": high, "runs": _runs(history)}
    return Judgement(
        passed,
        words,
        observed={"change_pct": round(moved, 2) if moved is not None else None},
        expected={k: v for k, v in expected.items() if v is not None},
    )


def judge_band(
    value: float,
    history: Sequence[PastPoint],
    *,
    deviations: float,
    min_ratio: float | None,
    max_ratio: float | None,
) -> Judgement:
    """``value`` against a band around the median of ``history``: ``min_ratio`` / ``max_ratio``
    of it when given, else ``deviations`` scaled MADs either side."""
    median = statistics.median(p.value for p in history)
    if min_ratio is not None or max_ratio is not None:
        low = median * min_ratio if min_ratio is not None else None
        high = median * max_ratio if max_ratio is not None else None
        method = "ratio"
        spread = None
    else:
        mad = statistics.median(abs(p.value - median) for p in history)
        spread = max(MAD_SCALE * mad, MAD_FLOOR * abs(median)) or 1.0
        low, high = median - deviations * spread, median + deviations * spread
        method = "mad"
    passed = (low is None or value >= low) and (high is None or value <= high)
    distance = _distance(value, median, low, high, spread)
    words = (
        f"expected {_band(low, high)} (median {_num(median)} of {len(history)} runs: "
        f"{', '.join(p.run_id for p in history)}){distance}"
    )
    expected = {"method": method, "median": median, "low": low, "high": high}
    expected["runs"] = _runs(history)
    observed: dict[str, Any] = {"median": median}
    if spread is not None:
        observed["deviations"] = round((value - median) / spread, 2)
    shown = {k: v for k, v in expected.items() if v is not None}
    return Judgement(passed, words, observed=observed, expected=shown)


def _distance(
    value: float, median: float, low: float | None, high: float | None, spread: float | None
) -> str:
    if (low is None or value >= low) and (high is None or value <= high):
        return ""
    if spread is not None:
        side = "below" if value < median else "above"
        return f"; {abs(value - median) / spread:.1f} deviations {side} the median"
    edge = low if low is not None and value < low else high
    return f"; {abs(value - (edge or 0.0)):g} {'below' if value < median else 'above'} the band"


def _amount(text: str, median: float) -> float:
    match = TOLERANCE.match(text)
    if match is None:  # validated when the suite was loaded
        raise ValueError(f"{text!r} is not an amount")
    amount = float(match[1])
    return abs(median) * amount / 100 if match[2] else amount


def _band(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{_num(low)} to {_num(high)}"
    return f"at least {_num(low)}" if low is not None else f"at most {_num(high)}"


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:,.3g}"


def _runs(history: Sequence[PastPoint]) -> list[str]:
    return [p.run_id for p in history]
