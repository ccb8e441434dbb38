"""freshness: the newest value of a timestamp or date column is at most `max_age` old."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import field_validator
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from runner import statements
from runner.checks.base import RelationCheck, Scan, register
from runner.context import Context
from runner.errors import CheckConfigError
from runner.results import Outcome
from runner.spec import PositiveDuration

_DAY_END = time(23, 59, 59, 999999, tzinfo=UTC)


class FreshnessSpec(RelationCheck):
    """The newest value of a timestamp or date column is at most max_age old."""

    type: Literal["freshness"]
    column: str
    """Timestamp or date column whose newest value is measured. A date stands for the end of
    that day, 23:59:59.999999 UTC."""
    max_age: PositiveDuration
    """Oldest the newest value may be (e.g. 30m, 2h, 1d); an age of exactly max_age passes."""
    now: str | None = None
    """Param (type date or string) holding the moment to measure from instead of the current
    time: an ISO date (that day's end, 23:59:59.999999 UTC) or timestamp (UTC unless it has an
    offset)."""
    timezone: str = "UTC"
    """IANA time zone (e.g. Europe/Paris) of timestamps stored without an offset; timestamps
    with an offset are converted to UTC whatever this says."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not an IANA time zone name (e.g. UTC, Europe/Paris)"
            ) from None
        return value

    def sql_fragments(self) -> Iterator[tuple[str, str]]:
        # `now` names a param: the suite reports it like an undeclared `:param` in SQL.
        yield from super().sql_fragments()
        if self.now is not None:
            yield "now", f":{self.now}"


def scans(spec: FreshnessSpec) -> list[Scan]:
    """The newest value of the column and the row count."""
    newest = _AsText(sa.func.max(sa.column(spec.column)))
    return [Scan(spec.relation, {"newest": newest, "rows": sa.func.count()})]


@register(FreshnessSpec, scans=scans)
def freshness(spec: FreshnessSpec, ctx: Context) -> Outcome:
    row = ctx.scan(spec.relation)
    rows = int(row["rows"] or 0)
    now = _reference(spec, ctx)
    where = f"{spec.relation.describe()}.{spec.column}"
    expected: dict[str, Any] = {"max_age_s": spec.max_age.total_seconds(), "now": _iso(now)}
    limit = f"at most {_span(spec.max_age)}"
    if row["newest"] is None:
        why = {0: "no rows", 1: "NULL in its only row"}.get(rows, f"NULL in all {rows} rows")
        observed: dict[str, Any] = {"newest": None, "age_s": None, "rows": rows}
        message = f"{where} has no newest value: {why}; {limit} old allowed"
        return Outcome(passed=False, message=message, observed=observed, expected=expected)
    newest, note = _moment(row["newest"], spec, where)
    age = now - newest
    observed = {"newest": _iso(newest), "age_s": age.total_seconds(), "rows": rows}
    if age < timedelta(0):
        said = f"{_age_text(-age, spec.max_age)} in the future"
    else:
        said = f"{_age_text(age, spec.max_age)} old"
    message = f"{where} is {said} (newest {_iso(newest)}); {limit} allowed"
    return Outcome(
        passed=age <= spec.max_age,
        message=message,
        observed=observed,
        expected=expected,
        notes=[note] if note else [],
    )


class _AsText(statements.RowWise):
    """The value as the driver returns it; as text on DuckDB, whose Python client hands out
    TIMESTAMPTZ values as pytz-aware datetimes in the session's zone, while text keeps the
    offset as written, so the age is computed the same way on every database."""

    name = "postrun_as_text"
    inherit_cache = True


@compiles(_AsText)
def _as_is(element: _AsText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_AsText, "duckdb")
def _as_varchar(element: _AsText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS VARCHAR)"


def _moment(value: Any, spec: FreshnessSpec, where: str) -> tuple[datetime, str | None]:
    """The column's newest value as an aware UTC datetime, and a note on how it was read."""
    parsed = _parse(value)
    if parsed is None:
        raise CheckConfigError(
            f"{where}: newest value {value!r} is not a timestamp; point 'column' at a timestamp"
            " or date column (ISO 8601 text on SQLite)"
        )
    if not isinstance(parsed, datetime):
        return _day_end(parsed), f"dates in {spec.column} read as the end of the day, UTC"
    if parsed.tzinfo is None:
        local = parsed.replace(tzinfo=ZoneInfo(spec.timezone))
        return local.astimezone(UTC), f"naive timestamps in {spec.column} read as {spec.timezone}"
    return parsed.astimezone(UTC), None


def _reference(spec: FreshnessSpec, ctx: Context) -> datetime:
    """The moment ages are measured from: the `now` param's value, else the current time."""
    if spec.now is None:
        return _now()
    value = ctx.params.get(spec.now)
    if value is None:
        raise CheckConfigError(
            f"now: param '{spec.now}' has no value; pass --param {spec.now}=… "
            "or leave 'now' out to measure from the current time"
        )
    parsed = _parse(value)
    if parsed is None:
        raise CheckConfigError(
            f"now: param '{spec.now}' holds {value!r}, which is not an ISO date or timestamp"
        )
    if not isinstance(parsed, datetime):
        return _day_end(parsed)
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(value: Any) -> date | datetime | None:
    """An ISO date or timestamp (a date, datetime or text), else None."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(value.strip())
        except ValueError:
            pass
    return None


def _day_end(day: date) -> datetime:
    return datetime.combine(day, _DAY_END)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _age_text(age: timedelta, limit: timedelta) -> str:
    """``age`` in whole seconds, or finer when rounding would hide which side of ``limit`` it
    lies on (2h0.4s, not 2h, when 2h is the limit)."""
    for digits in (0, 3):
        if (_rounded(age, digits) > limit) == (age > limit):
            return _span(age, digits)
    return _span(age)


def _rounded(delta: timedelta, digits: int) -> timedelta:
    step = 10 ** (6 - digits)
    micros = delta // timedelta(microseconds=1)
    return timedelta(microseconds=(micros + step // 2) // step * step)


def _span(delta: timedelta, digits: int = 6) -> str:
    """1d2h, 3h12m, 45m10s, 1.5s: whole units, then seconds to ``digits`` decimals."""
    micros = _rounded(delta, digits) // timedelta(microseconds=1)
    minutes, micros = divmod(micros, 60_000_000)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    seconds = f"{micros / 1_000_000:.{digits}f}"
    if "." in seconds:
        seconds = seconds.rstrip("0").rstrip(".")
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if seconds != "0" or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)
