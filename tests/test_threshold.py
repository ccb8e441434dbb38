"""One Threshold for every numeric judgement: min/max/equals/between/tolerance, their validation
and their words."""

from __future__ import annotations

from typing import Any

import pytest

from runner.threshold import Threshold, parse_tolerance, threshold_problem


@pytest.mark.parametrize(
    ("threshold", "value", "holds"),
    [
        (Threshold(min=3), 3, True),
        (Threshold(min=3), 2, False),
        (Threshold(max=3), 3, True),
        (Threshold(max=3), 3.5, False),
        (Threshold.of(between=[1, 5]), 5, True),
        (Threshold.of(between=[1, 5]), 0, False),
        (Threshold(min=1, max=1), 1, True),
        (Threshold(equals=96, tolerance="3"), 99, True),
        (Threshold(equals=96, tolerance="3"), 100, False),
        (Threshold(equals=200, tolerance="1%"), 202, True),
        (Threshold(equals=200, tolerance="1%"), 203, False),
        (Threshold(equals=-200, tolerance="1%"), -202, True),  # a share of |expected|
        (Threshold(equals=0, tolerance="10%"), 0, True),
        (Threshold(equals=0, tolerance="10%"), 1, False),
        (Threshold(equals=1.5), 1.5, True),
        (Threshold(equals=True), 1, True),  # SQLite answers true as 1
        (Threshold(equals=True), 0, False),
        (Threshold(equals="done"), "done", True),
        (Threshold(equals="done"), "DONE", False),
        (Threshold(equals="7"), 7, True),  # a text compares as text
        (Threshold(equals="done"), None, False),
        (Threshold(min=0), None, False),  # a bound never holds for a missing value
        (Threshold(min=0), "12", False),  # nor for a text
        (Threshold(min=0), True, False),  # nor for a boolean
    ],
)
def test_threshold_holds(threshold: Threshold, value: Any, holds: bool) -> None:
    assert threshold.holds(value) is holds


@pytest.mark.parametrize(
    ("threshold", "words", "expected"),
    [
        (Threshold(min=3), "at least 3", {"min": 3}),
        (Threshold(max=2.5), "at most 2.5", {"max": 2.5}),
        (Threshold.of(between=[1, 5]), "between 1 and 5", {"min": 1, "max": 5}),
        (Threshold(min=4, max=4), "4", {"min": 4, "max": 4}),
        (Threshold(min=10_000_000), "at least 10000000", {"min": 10_000_000}),
        (Threshold(equals=96, tolerance="1%"), "96", {"equals": 96, "tolerance": "1%"}),
        (Threshold(equals="done"), "'done'", {"equals": "done"}),
    ],
)
def test_threshold_words_and_expected(
    threshold: Threshold, words: str, expected: dict[str, Any]
) -> None:
    assert threshold.describe() == words
    assert threshold.expected() == expected


def test_threshold_margin() -> None:
    assert Threshold(equals=96, tolerance="3").margin() == " (±3)"
    assert Threshold(equals=96).margin() == ""


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"min": 1, "max": 5}, None),
        ({"equals": 3, "tolerance": "1%"}, None),
        ({"min": 6, "max": 5}, "'min' must not exceed 'max'"),
        ({"equals": 3, "min": 1}, "give 'equals' or 'min'/'max', not both"),
        ({"tolerance": "3", "min": 1}, "'tolerance' applies to 'equals' only"),
        ({"between": [5, 1]}, "'between' must be [low, high] with low <= high"),
        (
            {"between": [1, 5], "min": 1, "one_required": True},
            "give exactly one of 'equals', 'min'/'max' or 'between'",
        ),
        ({"one_required": True}, "give exactly one of 'equals', 'min'/'max' or 'between'"),
        ({}, None),
    ],
)
def test_threshold_problem(given: dict[str, Any], problem: str | None) -> None:
    assert threshold_problem(**given) == problem


@pytest.mark.parametrize(
    ("value", "parsed"), [(3, "3"), (1.5, "1.5"), ("1%", "1%"), (" 2 % ", " 2 % ")]
)
def test_threshold_tolerance_parses(value: object, parsed: str) -> None:
    assert parse_tolerance(value) == parsed


@pytest.mark.parametrize("value", [True, "-1", "1 %%", "abc", None, [1]])
def test_threshold_tolerance_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="is not a count"):
        parse_tolerance(value)
