"""One rule for every numeric judgement: `min`, `max`, `equals`, `between` and a `tolerance`
(absolute, `3`, or relative to the expected value, `1%`). Check types keep their own field names
and types in the suite; they validate and judge through here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")
"""A tolerance as written: a count (`3`) or a percentage (`1%`)."""

Number = int | float


def parse_tolerance(value: object) -> object:
    """A tolerance as a suite writes it (`3`, `1.5`, `"1%"`) → its text; anything else raises."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not TOLERANCE.match(value):
        raise ValueError(f"{value!r} is not a count (3) or a percentage (1%)")
    return value


def threshold_problem(
    *,
    min: Number | None = None,
    max: Number | None = None,
    equals: object = None,
    between: Sequence[Number] | None = None,
    tolerance: str | None = None,
    one_required: bool = False,
) -> str | None:
    """Why these comparators do not make one judgement, or None (for a spec's validator)."""
    given = [equals is not None, min is not None or max is not None, between is not None]
    if sum(given) > 1 or (one_required and not any(given)):
        choices = ["'equals'", "'min'/'max'"] + (["'between'"] if between is not None else [])
        if one_required:
            return "give exactly one of 'equals', 'min'/'max' or 'between'"
        return f"give {' or '.join(choices)}, not both"
    if tolerance is not None and equals is None:
        return "'tolerance' applies to 'equals' only"
    if between is not None and between[0] > between[1]:
        return "'between' must be [low, high] with low <= high"
    if min is not None and max is not None and min > max:
        return "'min' must not exceed 'max'"
    return None


@dataclass(frozen=True)
class Threshold:
    """What a measured value must satisfy. ``equals`` may be a text or a boolean (compared as
    such); bounds and tolerance apply to numbers."""

    min: Number | None = None
    max: Number | None = None
    equals: bool | Number | str | None = None
    tolerance: str | None = None

    @classmethod
    def of(
        cls,
        *,
        min: Number | None = None,
        max: Number | None = None,
        equals: bool | Number | str | None = None,
        between: Sequence[Number] | None = None,
        tolerance: str | None = None,
    ) -> Threshold:
        low, high = (between[0], between[1]) if between is not None else (min, max)
        return cls(min=low, max=high, equals=equals, tolerance=tolerance)

    def holds(self, value: Any) -> bool:
        """Whether ``value`` satisfies the threshold (a missing or non-numeric value does not
        satisfy a bound)."""
        if self.equals is not None:
            return self._equal(value)
        if not _number(value):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def slack(self) -> float:
        """How far from ``equals`` a value may be: the tolerance, a percentage of ``equals``
        when it says %."""
        match = TOLERANCE.match(self.tolerance) if self.tolerance is not None else None
        if match is None or not _number(self.equals):
            return 0.0
        amount = float(match[1])
        return abs(float(self.equals)) * amount / 100 if match[2] else amount  # type: ignore[arg-type]

    def expected(self) -> dict[str, Any]:
        """The threshold for the verdict's ``expected``."""
        shown = {"equals": self.equals, "min": self.min, "max": self.max}
        shown["tolerance"] = self.tolerance
        return {k: v for k, v in shown.items() if v is not None}

    def describe(self) -> str:
        """In words, for a message: `3`, `at least 3`, `between 1 and 5`, `at most 9` (the
        tolerance apart: ``margin``)."""
        if self.equals is not None:
            return f"{self.equals!r}" if isinstance(self.equals, str) else f"{self.equals}"
        low, high = self.min, self.max
        if low is not None and high is not None:
            return _shown(low) if low == high else f"between {_shown(low)} and {_shown(high)}"
        return f"at least {_shown(low)}" if low is not None else f"at most {_shown(high)}"

    def margin(self) -> str:
        """The tolerance in words: ` (±1%)`, or nothing."""
        return f" (±{self.tolerance})" if self.tolerance is not None else ""

    def _equal(self, value: Any) -> bool:
        # A boolean counts as the number it is: SQLite returns true as 1.
        if isinstance(value, int | float) and isinstance(self.equals, int | float):
            return abs(float(value) - float(self.equals)) <= self.slack()
        return value is not None and str(value) == str(self.equals)


def _shown(value: Number | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def too_few_rows(min_rows: int | None, rows: int, what: str, noun: str = "rows") -> str | None:
    """The failure message when a relation has fewer than ``min_rows`` (an empty run date
    usually means a batch that wrote nothing), or None when it has enough or no minimum is set."""
    if min_rows is None or rows >= min_rows:
        return None
    return (
        f"{what} has {rows} {noun if rows != 1 else noun[:-1]} where at least {min_rows} "
        "expected (min_rows): "
        "did the batch write nothing?"
    )
