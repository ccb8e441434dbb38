"""The rules for values from the data: what a check result keeps (bounded, JSON-native, undecodable
bytes escaped) and what a terminal is shown (controls written out, lines capped)."""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import orjson
import pytest

from runner.results import CheckError, CheckResult, ErrorCategory, Status, Verdict
from runner.values import (
    LINE_LIMIT,
    NESTED_DEPTH,
    NESTED_LIMIT,
    VALUE_LIMIT,
    cap_text,
    excerpt,
    json_value,
    printable,
    tagged_number,
    visible,
)

KB = "k" * VALUE_LIMIT


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("short", "short"),
        (KB, KB),  # exactly the limit
        (KB + "k", "k" * 997 + "… [truncated: 1025 bytes]"),
        ("é" * 600, "é" * 498 + "… [truncated: 1200 bytes]"),  # cut between characters
        ("x" * 10_000_000, "x" * 993 + "… [truncated: 10000000 bytes]"),
        ("run_\udcff.json", "run_\\xff.json"),  # a byte os.fsdecode could not decode
        ("a\ud800b", "a\\ud800b"),  # a lone surrogate from a JSON escape
        ("\udcff" * 2000, "\\xff" * 249 + "\\… [truncated: 2000 bytes]"),
        ("tab\tnew\nline\x00\x1b", "tab\tnew\nline\x00\x1b"),  # JSON escapes these itself
    ],
    ids=[
        "short",
        "at-limit",
        "one-over",
        "multibyte",
        "ten-mb",
        "undecodable",
        "surrogate",
        "undecodable-many",
        "controls",
    ],
)
def test_values_cap_text(text: str, kept: str) -> None:
    assert cap_text(text) == kept
    assert len(kept.encode()) <= VALUE_LIMIT
    assert cap_text(kept) == kept


BIG = 2**63
NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (BIG - 1, BIG - 1),
        (-BIG, -BIG),
        (BIG, {"$int": "9223372036854775808"}),
        (-BIG - 1, {"$int": "-9223372036854775809"}),
        (2**64, {"$int": "18446744073709551616"}),
        (2**127 - 1, {"$int": "170141183460469231731687303715884105727"}),
        (NAN, {"$float": "NaN"}),
        (INF, {"$float": "Infinity"}),
        (-INF, {"$float": "-Infinity"}),
        (None, None),
        (1.5, 1.5),
        (True, True),
        ("text", "text"),
        ([1, NAN, {"k": BIG}], [1, {"$float": "NaN"}, {"k": {"$int": "9223372036854775808"}}]),
        ((1, 2), [1, 2]),
        (datetime.date(2025, 11, 6), "2025-11-06"),
        ({"\udcff": "v"}, {"\\xff": "v"}),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_values_json_value_holds_only_what_json_can(value: Any, encoded: Any) -> None:
    assert json_value(value) == encoded
    orjson.dumps(encoded)  # what used to stop verdict.json
    assert json_value(encoded) == encoded


def test_values_an_integer_too_long_to_write_keeps_its_first_digits() -> None:
    value = -(10**5000) - 7  # past the 4300 digits Python writes at once
    (digits,) = json_value(value).values()
    assert digits.startswith("-1000000")
    assert digits.endswith("… [truncated: 5002 bytes]")
    assert len(digits.encode()) <= VALUE_LIMIT
    assert excerpt(value, 40) == "-100000000000… [truncated: 5002 bytes]"


@pytest.mark.parametrize(
    ("value", "marker"),
    [
        (list(range(100_000)), "… [truncated: 96501 more items]"),
        ([["x" * 100] * 50] * 100, "… [truncated: 96 more items]"),
        ({f"k{i}": "v" * 100 for i in range(1000)}, ("…", "[truncated: 850 more entries]")),
    ],
    ids=["long-list", "nested-lists", "wide-object"],
)
def test_values_nested_value_keeps_about_nested_limit_bytes(value: Any, marker: Any) -> None:
    encoded = json_value(value)
    size = len(orjson.dumps(encoded))
    assert NESTED_LIMIT - VALUE_LIMIT <= size <= NESTED_LIMIT + VALUE_LIMIT
    last = list(encoded.items())[-1] if isinstance(encoded, dict) else encoded[-1]
    assert last == marker
    assert json_value(encoded) == encoded  # a stored verdict reads back as it was written


def test_values_nested_value_keeps_at_most_nested_depth_levels() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(5000):  # deeper than Python's recursion limit
        inner.append([])
        inner = inner[0]
    encoded = json_value(deep)
    for _ in range(NESTED_DEPTH):
        (encoded,) = encoded
    assert encoded == f"… [truncated: nested deeper than {NESTED_DEPTH} levels]"
    assert json_value(json_value(deep)) == json_value(deep)


@pytest.mark.parametrize(
    ("value", "number"),
    [({"$int": "123"}, "123"), ({"$float": "NaN"}, "NaN"), ({"$int": 1}, None), ("1", None)],
)
def test_values_tagged_number(value: Any, number: str | None) -> None:
    assert tagged_number(value) == number


def test_values_a_check_result_keeps_every_text_within_the_limit() -> None:
    huge = "x" * 5_000_000
    result = CheckResult(
        name="big",
        type="sql",
        source="d",
        severity="error",
        status=Status.ERROR,
        message=huge,
        observed={"value": huge, huge: 1},
        expected={"value": NAN},
        failures=[{"big": BIG, "text": huge, "file": "run_\udcff.json"}],
        notes=[huge],
        error=CheckError(category=ErrorCategory.QUERY, retryable=False, message=huge, detail=huge),
        duration_s=0.1,
    )
    cut = "x" * 994 + "… [truncated: 5000000 bytes]"
    assert result.model_dump(mode="json") | {"error": None} == {
        "name": "big",
        "type": "sql",
        "source": "d",
        "severity": "error",
        "status": "ERROR",
        "message": cut,
        "observed": {"value": cut, cut: 1},
        "expected": {"value": {"$float": "NaN"}},
        "failures": [
            {"big": {"$int": "9223372036854775808"}, "text": cut, "file": "run_\\xff.json"}
        ],
        "failure_count": 0,
        "notes": [cut],
        "error": None,
        "duration_s": 0.1,
        "queries": [],
    }
    assert result.error is not None and result.error.message == cut
    assert result.error.detail == "x" * 2018 + "… [truncated: 5000000 bytes]"
    assert CheckResult.model_validate_json(orjson.dumps(result.model_dump(mode="json"))) == result


def test_values_the_verdict_schema_says_how_values_are_encoded() -> None:
    schema = Verdict.model_json_schema()
    result = schema["$defs"]["CheckResult"]["properties"]
    for field in ("observed", "expected", "failures"):
        text = result[field]["description"]
        assert '{"$int": "<decimal digits>"}' in text, field
        assert '{"$float": "NaN"}' in text and "null is always NULL" in text, field
        assert f'at most {VALUE_LIMIT} bytes: a longer one keeps its start and ends in "… ' in text
        assert "\\xNN" in text
    assert '{"$int"' in schema["properties"]["params"]["description"]


# --- what is printed ----------------------------------------------------------------------------

ESC, BEL, CSI = "\x1b", "\x07", "\x9b"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"{ESC}]0;pwned{BEL}title", "\\x1b]0;pwned\\x07title"),
        (f"{ESC}[31mred{ESC}[0m", "\\x1b[31mred\\x1b[0m"),
        (f"{CSI}2J", "\\x9b2J"),  # the one-byte CSI of C1
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
        ("run_\udcff.json", "run_\\xff.json"),
        ("plain — ünïcode ✓", "plain — ünïcode ✓"),
    ],
    ids=[
        "title",
        "colour",
        "c1",
        "nul-del",
        "spacing",
        "bidi-override",
        "bidi-isolate",
        "byte",
        "ok",
    ],
)
def test_values_printable_writes_controls_out(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_values_printable_keeps_intended_lines_and_caps_each() -> None:
    text = "first\n" + "y" * 5000 + f"\nthird{ESC}"
    assert printable(text, lines=True) == "first\n" + "y" * (LINE_LIMIT - 1) + "…\nthird\\x1b"
    assert printable("z" * LINE_LIMIT) == "z" * LINE_LIMIT


def test_values_visible_keeps_tab_and_newline_only_when_asked() -> None:
    assert visible("a\tb\nc\rd\x00", spacing=True) == "a\tb\nc\\rd\\x00"
    assert visible("a\tb\nc", spacing=False) == "a\\tb\\nc"


def test_values_excerpt() -> None:
    assert excerpt("x" * 300) == "x" * 174 + "… [truncated: 300 bytes]"
    assert excerpt([1, "a", NAN]) == '[1,"a",{"$float":"NaN"}]'
    assert (excerpt(None), excerpt(2.5), excerpt(2**70)) == ("None", "2.5", str(2**70))
    assert json.loads(excerpt({"k": "v"})) == {"k": "v"}
