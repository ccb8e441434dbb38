"""Great Expectations suites without Great Expectations: reads a GX 1.x suite JSON and compiles the
expectations postrun can push down into SQL aggregates, with GX's own semantics (NULLs, `mostly`,
`strict_min`/`strict_max`, `row_condition`). Whatever does not compile is left for GX itself
(runner/gx/fallback.py).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from runner.errors import CheckConfigError

_CONDITION_KEYS = ("row_condition", "condition_parser")
TYPE_EXPECTATIONS = (
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
)
"""Expectations GX judges from a table's declared column types, which a query has not."""

SEVERITIES = {"critical": "error", "warning": "warn", "info": "warn"}
"""GX severity → what a failure of the expectation means to postrun."""


@dataclass(frozen=True)
class Expectation:
    """One expectation of a suite, as GX serializes it."""

    index: int
    type: str
    kwargs: dict[str, Any]
    severity: str = "critical"

    @property
    def column(self) -> str | None:
        column = self.kwargs.get("column")
        return column if isinstance(column, str) else None

    @property
    def condition(self) -> sa.ColumnElement[bool] | None:
        """The `row_condition` as SQL, or None when there is none or it does not compile."""
        raw = self.kwargs.get("row_condition")
        return None if raw is None else compile_condition(raw, self.kwargs.get("condition_parser"))

    def unconditioned(self) -> Expectation:
        """This expectation without its `row_condition` (applied in SQL instead)."""
        kwargs = {k: v for k, v in self.kwargs.items() if k not in _CONDITION_KEYS}
        return replace(self, kwargs=kwargs)

    def describe(self) -> str:
        target = self.column or ", ".join(self.kwargs.get("column_list", ()))
        if "column_A" in self.kwargs:
            target = f"{self.kwargs['column_A']}, {self.kwargs['column_B']}"
        return f"{self.type}({target})" if target else self.type


@dataclass(frozen=True)
class GxSuite:
    """A GX ExpectationSuite read from its JSON file."""

    name: str
    expectations: tuple[Expectation, ...]
    raw: dict[str, Any] = field(repr=False, hash=False, compare=False)


def read_suite(path: str) -> GxSuite:
    """The suite in ``path`` (cached while the file is unchanged)."""
    stat = Path(path).stat()
    return _read_suite(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _read_suite(path: str, mtime: int, size: int) -> GxSuite:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckConfigError(f"{path}: not a readable GX suite ({exc})") from exc
    items = raw.get("expectations") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise CheckConfigError(f"{path}: a GX suite needs an 'expectations' list")
    expectations = []
    for i, item in enumerate(items):
        kind = item.get("type") or item.get("expectation_type") if isinstance(item, dict) else None
        if not isinstance(kind, str) or not isinstance(item.get("kwargs", {}), dict):
            raise CheckConfigError(f"{path}: expectation {i} has no 'type' or bad 'kwargs'")
        meta = item.get("meta") or {}
        severity = str(meta.get("severity") or item.get("severity") or "critical").lower()
        if severity not in SEVERITIES:
            raise CheckConfigError(
                f"{path}: expectation {i}: severity '{severity}' is not one of "
                f"{', '.join(SEVERITIES)}"
            )
        expectations.append(Expectation(i, kind, dict(item.get("kwargs", {})), severity))
    return GxSuite(str(raw.get("name", Path(path).stem)), tuple(expectations), raw)


# --- row conditions ------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}
_STRING_CONDITION = re.compile(
    r"""^\s*col\(\s*(?P<q>["'])(?P<col>[^"']+)(?P=q)\s*\)\s*(?:
        (?P<op>==|!=|<=|>=|<|>)\s*(?:(?P<num>[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
        |"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')
        |\.(?P<null>notnull)\(\))\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


def compile_condition(condition: Any, parser: str | None) -> sa.ColumnElement[bool] | None:
    """GX's `row_condition` as SQL, or None when it cannot be compiled (GX must run it)."""
    if isinstance(condition, dict):
        return _structured(condition)
    if isinstance(condition, str) and parser in (
        None,
        "great_expectations",
        "great_expectations__experimental__",
    ):
        return _legacy_string(condition)
    return None


def _structured(condition: dict[str, Any]) -> sa.ColumnElement[bool] | None:
    kind = condition.get("type")
    if kind in ("and", "or"):
        parts = [_structured(c) for c in condition.get("conditions", [])]
        if not parts or any(p is None for p in parts):
            return None
        clauses = [p for p in parts if p is not None]
        return sa.and_(*clauses) if kind == "and" else sa.or_(*clauses)
    column = condition.get("column", {})
    name = column.get("name") if isinstance(column, dict) else None
    if not isinstance(name, str):
        return None
    col: sa.ColumnClause[Any] = sa.column(name)
    if kind == "nullity":
        return col.is_(None) if condition.get("is_null") else col.is_not(None)
    operator, parameter = condition.get("operator"), condition.get("parameter")
    if kind != "comparison" or parameter is None:
        return None
    if operator in ("IN", "NOT_IN") and isinstance(parameter, list):
        values = [literal(v) for v in parameter]
        return col.in_(values) if operator == "IN" else col.not_in(values)
    if operator in _OPERATORS and isinstance(parameter, str | int | float | bool):
        result: sa.ColumnElement[bool] = _OPERATORS[operator](col, literal(parameter))
        return result
    return None


def _legacy_string(text: str) -> sa.ColumnElement[bool] | None:
    match = _STRING_CONDITION.match(text)
    if match is None:
        return None
    col: sa.ColumnClause[Any] = sa.column(match["col"])
    if match["null"]:
        return col.is_not(None)
    number = match["num"]
    value: Any = (
        (float(number) if re.search(r"[.eE]", number) else int(number))
        if number is not None
        else (match["dq"] if match["dq"] is not None else match["sq"])
    )
    result: sa.ColumnElement[bool] = _OPERATORS[match["op"]](col, literal(value))
    return result


def literal(value: Any) -> sa.ColumnElement[Any]:
    """``value`` written into the SQL, so that the statements a run records and `--explain`
    prints show the values an expectation compares with."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        if isinstance(value, bool):
            return sa.true() if value else sa.false()
        raise ValueError(f"{value!r} is not a number, string or boolean")
    rendered = sa.literal(value).compile(compile_kwargs={"literal_binds": True})
    return sa.literal_column(str(rendered))


# --- expectations --------------------------------------------------------------------------

Values = dict[str, Any]


@dataclass(frozen=True)
class Compiled:
    """An expectation as SQL: aggregates over the relation (fused into the run's shared scan),
    a row predicate for failure samples, and how GX judges the numbers."""

    expectation: Expectation
    aggregates: dict[str, sa.ColumnElement[Any]]
    judge: Callable[[Values], dict[str, Any]]
    """Aggregate values (plus `bad` from `grouped`, `other` from `other_table`) → GX's result."""
    unexpected: sa.ColumnElement[bool] | None = None
    """The rows GX counts as unexpected, for `partial_unexpected_list`."""
    grouped: tuple[str, ...] = ()
    """Columns whose duplicated value groups are unexpected (uniqueness): one query of its own."""
    where: sa.ColumnElement[bool] | None = None
    """The rows uniqueness is judged on (row_condition and NULL handling)."""
    other_table: str | None = None
    needs_regex: bool = False


def compile_expectation(exp: Expectation) -> Compiled | None:
    """``exp`` as SQL, or None when GX itself must evaluate it."""
    build = _COMPILERS.get(exp.type)
    if build is None:
        return None
    condition = exp.condition if exp.kwargs.get("row_condition") is not None else sa.true()
    if condition is None:
        return None
    try:
        return build(exp, condition)
    except (KeyError, TypeError, ValueError):
        return None  # kwargs postrun does not know how to read: GX judges (and explains) them


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    if isinstance(condition, sa.sql.elements.True_):
        return sa.func.count()
    return sa.func.count(sa.case((condition, sa.literal_column("1"))))


def _map(
    exp: Expectation, cond: sa.ColumnElement[bool], ok: Callable[[Any], sa.ColumnElement[bool]]
) -> Compiled:
    """A column map expectation: NULLs are skipped, `mostly` is over the non-NULL rows."""
    col: sa.ColumnClause[Any] = sa.column(exp.kwargs["column"])
    bad = sa.and_(cond, col.is_not(None), sa.not_(ok(col)))
    aggregates = {"rows": _count(cond), "nonnull": _count(sa.and_(cond, col.is_not(None)))}
    aggregates["bad"] = _count(bad)
    return Compiled(exp, aggregates, _map_judge(exp, "nonnull"), bad)


def _map_judge(exp: Expectation, considered: str | None) -> Callable[[Values], dict[str, Any]]:
    mostly = float(exp.kwargs.get("mostly", 1))

    def judge(v: Values) -> dict[str, Any]:
        rows, bad = int(v["rows"] or 0), int(v["bad"] or 0)
        base = int(v[considered] or 0) if considered else rows
        success = rows == 0 or base == 0 or (base - bad) / base >= mostly
        percent = bad / base * 100 if rows and base else None
        result = {"element_count": rows, "unexpected_count": bad, "unexpected_percent": percent}
        return {"success": success, "result": result}

    return judge


def _between(col: sa.ColumnElement[Any], kwargs: dict[str, Any]) -> sa.ColumnElement[bool]:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is None and high is None:
        raise ValueError("min_value or max_value is required")
    parts = []
    if low is not None:
        parts.append(col > literal(low) if kwargs.get("strict_min") else col >= literal(low))
    if high is not None:
        parts.append(col < literal(high) if kwargs.get("strict_max") else col <= literal(high))
    return sa.and_(*parts)


def _in_range(value: Any, kwargs: dict[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if value is None:
        return False
    above = low is None or (value > low if kwargs.get("strict_min") else value >= low)
    below = high is None or (value < high if kwargs.get("strict_max") else value <= high)
    return bool(above and below)


def _metric(
    exp: Expectation, expression: sa.ColumnElement[Any], check: Callable[[Any], bool]
) -> Compiled:
    def judge(v: Values) -> dict[str, Any]:
        value = v["value"]
        return {"success": check(value), "result": {"observed_value": value}}

    return Compiled(exp, {"value": expression}, judge)


def _column_metric(fn: Callable[[Any], sa.ColumnElement[Any]]) -> Callable[..., Compiled]:
    def build(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
        col: sa.ColumnClause[Any] = sa.column(exp.kwargs["column"])
        if exp.kwargs.get("min_value") is None and exp.kwargs.get("max_value") is None:
            raise ValueError("min_value or max_value is required")
        expression = fn(sa.case((cond, col)))
        return _metric(exp, expression, lambda value: _in_range(value, exp.kwargs))

    return build


def _row_count_equal(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    wanted = int(exp.kwargs["value"])
    return _metric(exp, _count(cond), lambda value: value == wanted)


def _row_count_between(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    return _metric(exp, _count(cond), lambda value: _in_range(value, exp.kwargs))


def _other_table(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    def judge(v: Values) -> dict[str, Any]:
        observed = {"self": v["value"], "other": v["other"]}
        return {"success": v["value"] == v["other"], "result": {"observed_value": observed}}

    return Compiled(exp, {"value": _count(cond)}, judge, other_table=exp.kwargs["other_table_name"])


def _nullness(want_null: bool) -> Callable[..., Compiled]:
    def build(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
        col: sa.ColumnClause[Any] = sa.column(exp.kwargs["column"])
        bad = sa.and_(cond, col.is_not(None) if want_null else col.is_(None))
        aggregates = {"rows": _count(cond), "bad": _count(bad)}
        return Compiled(exp, aggregates, _map_judge(exp, None), bad)

    return build


def _in_set(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    values = [literal(v) for v in exp.kwargs["value_set"]]
    return _map(exp, cond, lambda col: col.in_(values))


def _not_in_set(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    values = [literal(v) for v in exp.kwargs["value_set"]]
    return _map(exp, cond, lambda col: col.not_in(values))


def _values_between(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    return _map(exp, cond, lambda col: _between(col, exp.kwargs))


def _regex(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    pattern = str(exp.kwargs["regex"])
    compiled = _map(exp, cond, lambda col: RegexMatch(col, literal(pattern)))
    return Compiled(exp, compiled.aggregates, compiled.judge, compiled.unexpected, needs_regex=True)


def _unique(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    col: sa.ColumnClause[Any] = sa.column(exp.kwargs["column"])
    where = sa.and_(cond, col.is_not(None))
    aggregates = {"rows": _count(cond), "nonnull": _count(where)}
    return Compiled(
        exp, aggregates, _map_judge(exp, "nonnull"), grouped=(exp.kwargs["column"],), where=where
    )


def _compound_unique(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    names = [str(c) for c in exp.kwargs["column_list"]]
    cols: list[sa.ColumnClause[Any]] = [sa.column(c) for c in names]
    ignore = exp.kwargs.get("ignore_row_if", "all_values_are_missing")
    missing = {
        "all_values_are_missing": sa.and_(*(c.is_(None) for c in cols)),
        "any_value_is_missing": sa.or_(*(c.is_(None) for c in cols)),
        "never": sa.false(),
    }[ignore]
    where = sa.and_(cond, sa.not_(missing))
    aggregates = {"rows": _count(cond), "considered": _count(where)}
    judge = _map_judge(exp, "considered")
    return Compiled(exp, aggregates, judge, grouped=tuple(names), where=where)


def _pair_equal(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    a: sa.ColumnClause[Any] = sa.column(exp.kwargs["column_A"])
    b: sa.ColumnClause[Any] = sa.column(exp.kwargs["column_B"])
    ignore = exp.kwargs.get("ignore_row_if", "both_values_are_missing")
    missing = {
        "both_values_are_missing": sa.and_(a.is_(None), b.is_(None)),
        "either_value_is_missing": sa.or_(a.is_(None), b.is_(None)),
        "neither": sa.false(),
    }[ignore]
    considered = sa.and_(cond, sa.not_(missing))
    ok = sa.and_(a == b, sa.not_(sa.or_(a.is_(None), b.is_(None))))
    bad = sa.and_(considered, sa.not_(ok))
    aggregates = {"rows": _count(cond), "considered": _count(considered), "bad": _count(bad)}
    return Compiled(exp, aggregates, _map_judge(exp, "considered"), bad)


def _distinct_in_set(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    col: sa.ColumnClause[Any] = sa.column(exp.kwargs["column"])
    values = [literal(v) for v in exp.kwargs["value_set"]]
    outside = sa.func.count(sa.distinct(sa.case((sa.and_(cond, col.not_in(values)), col))))

    def judge(v: Values) -> dict[str, Any]:
        outside = int(v["value"])  # GX counts distinct values outside the set
        return {"success": outside == 0, "result": {"unexpected_count": outside}}

    return Compiled(exp, {"value": outside}, judge, sa.and_(cond, col.not_in(values)))


def _column_exists(exp: Expectation, cond: sa.ColumnElement[bool]) -> Compiled:
    if "column_index" in exp.kwargs and exp.kwargs["column_index"] is not None:
        raise ValueError("column_index is left to GX")

    def judge(v: Values) -> dict[str, Any]:
        return {"success": exp.kwargs["column"] in v["columns"], "result": {}}

    return Compiled(exp, {}, judge)


class RegexMatch(sa.sql.expression.ColumnElement[bool]):
    """``column ~ pattern`` on PostgreSQL, ``regexp_matches(column, pattern)`` elsewhere
    (GX's re.search semantics: unanchored). SQLite has no regex: GX runs those there."""

    inherit_cache = True
    type = sa.Boolean()

    def __init__(self, column: sa.ColumnElement[Any], pattern: sa.ColumnElement[Any]) -> None:
        self.column = column
        self.pattern = pattern


@compiles(RegexMatch)
def _regex_default(element: RegexMatch, compiler: Any, **kw: Any) -> str:
    column, pattern = (
        compiler.process(element.column, **kw),
        compiler.process(element.pattern, **kw),
    )
    return f"regexp_matches({column}, {pattern})"


@compiles(RegexMatch, "postgresql")
def _regex_postgresql(element: RegexMatch, compiler: Any, **kw: Any) -> str:
    column, pattern = (
        compiler.process(element.column, **kw),
        compiler.process(element.pattern, **kw),
    )
    return f"({column} ~ {pattern})"


@compiles(RegexMatch, "spark")
def _regex_spark(element: RegexMatch, compiler: Any, **kw: Any) -> str:
    column, pattern = (
        compiler.process(element.column, **kw),
        compiler.process(element.pattern, **kw),
    )
    return f"({column} RLIKE {pattern})"  # Java regex, found anywhere in the value


_COMPILERS: dict[str, Callable[[Expectation, sa.ColumnElement[bool]], Compiled]] = {
    "expect_table_row_count_to_equal": _row_count_equal,
    "expect_table_row_count_to_be_between": _row_count_between,
    "expect_table_row_count_to_equal_other_table": _other_table,
    "expect_column_to_exist": _column_exists,
    "expect_column_values_to_not_be_null": _nullness(want_null=False),
    "expect_column_values_to_be_null": _nullness(want_null=True),
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_not_be_in_set": _not_in_set,
    "expect_column_values_to_be_between": _values_between,
    "expect_column_values_to_be_unique": _unique,
    "expect_column_values_to_match_regex": _regex,
    "expect_column_min_to_be_between": _column_metric(sa.func.min),
    "expect_column_max_to_be_between": _column_metric(sa.func.max),
    "expect_column_mean_to_be_between": _column_metric(sa.func.avg),
    "expect_column_sum_to_be_between": _column_metric(sa.func.sum),
    "expect_column_distinct_values_to_be_in_set": _distinct_in_set,
    "expect_compound_columns_to_be_unique": _compound_unique,
    "expect_column_pair_values_to_be_equal": _pair_equal,
}
COMPILED_TYPES = tuple(_COMPILERS)
"""The GX expectation types postrun runs as SQL (`postrun list` shows them)."""
