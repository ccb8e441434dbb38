"""freshness: the newest value of a timestamp or date column is at most max_age old."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb_engine
import pytest
from sqlalchemy.dialects import postgresql

from runner.checks import freshness, registry
from runner.checks.freshness import FreshnessSpec
from runner.context import Context
from runner.errors import SuiteError
from runner.suite import load_suite
from tests.conftest import Database, RunYaml, only_check

PARAMS = """\
  as_of: {type: string, default: "2025-11-07T01:02:00Z"}
  run_date: {type: date, default: 2025-11-07}
  kind: {type: string, default: audit}
"""
UTC_NOTE = "naive timestamps in created_at read as UTC"
DATE_NOTE = "dates in snapshot_date read as the end of the day, UTC"
NOW = "2025-11-07T01:02:00Z"


@pytest.fixture
def events(anydb: Database) -> Database:
    """Naive timestamps; the newest is 2025-11-06 21:50, one NULL, one summer row."""
    anydb.run(
        """
        create table events (id int, kind varchar(10), created_at timestamp);
        insert into events values
            (1, 'load', '2025-11-06 20:00:00'),
            (2, 'load', '2025-11-06 21:50:00'),
            (3, 'audit', '2025-11-05 08:00:00'),
            (4, 'load', null),
            (5, 'summer', '2025-07-01 12:00:00');
        create table snapshots (portfolio_id varchar(10), snapshot_date date);
        insert into snapshots values ('PF-1', '2025-11-05'), ('PF-2', '2025-11-06');
        """
    )
    return anydb


def suite(db: Database, check: str, params: str = PARAMS) -> str:
    return (
        f'suite: fresh\nparams:\n{params}sources:\n  w: {{url: "{db.url}"}}\nchecks:\n  - {check}\n'
    )


def judged(
    passed: bool,
    message: str,
    newest: str | None,
    age_s: float | None,
    *,
    rows: int = 5,
    max_age_s: float,
    now: str = NOW,
    notes: tuple[str, ...] = (UTC_NOTE,),
) -> dict[str, Any]:
    return {
        "status": "PASS" if passed else "FAIL",
        "message": message,
        "observed": {"newest": newest, "age_s": age_s, "rows": rows},
        "expected": {"max_age_s": max_age_s, "now": now},
        "notes": list(notes),
        "error": None,
    }


CASES = [
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 2h, now: as_of}",
        {},
        judged(
            False,
            "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 2h allowed",
            "2025-11-06T21:50:00Z",
            11520.0,
            max_age_s=7200.0,
        ),
        id="stale",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 4h, now: as_of}",
        {},
        judged(
            True,
            "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 4h allowed",
            "2025-11-06T21:50:00Z",
            11520.0,
            max_age_s=14400.0,
        ),
        id="fresh",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 192m, now: as_of}",
        {},
        judged(
            True,
            "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 3h12m allowed",
            "2025-11-06T21:50:00Z",
            11520.0,
            max_age_s=11520.0,
        ),
        id="exactly-max-age-passes",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 11519s, now: as_of}",
        {},
        judged(
            False,
            "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z);"
            " at most 3h11m59s allowed",
            "2025-11-06T21:50:00Z",
            11520.0,
            max_age_s=11519.0,
        ),
        id="one-second-over-fails",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 192m, now: as_of}",
        {"as_of": "2025-11-07T01:02:00.4Z"},
        judged(
            False,
            "events.created_at is 3h12m0.4s old (newest 2025-11-06T21:50:00Z);"
            " at most 3h12m allowed",
            "2025-11-06T21:50:00Z",
            11520.4,
            max_age_s=11520.0,
            now="2025-11-07T01:02:00.400000Z",
        ),
        id="fraction-shown-when-it-decides",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 2h, now: as_of}",
        {"as_of": "2025-11-07T02:02:00+01:00"},
        judged(
            False,
            "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 2h allowed",
            "2025-11-06T21:50:00Z",
            11520.0,
            max_age_s=7200.0,
        ),
        id="now-param-timestamp-with-offset",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 2h, now: as_of}",
        {"as_of": "2025-11-07 01:02:00"},
        judged(
            False,
            "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 2h allowed",
            "2025-11-06T21:50:00Z",
            11520.0,
            max_age_s=7200.0,
        ),
        id="now-param-naive-timestamp-is-utc",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 130m, now: run_date}",
        {"run_date": "2025-11-06"},
        judged(
            True,
            "events.created_at is 2h10m old (newest 2025-11-06T21:50:00Z); at most 2h10m allowed",
            "2025-11-06T21:50:00Z",
            7799.999999,
            max_age_s=7800.0,
            now="2025-11-06T23:59:59.999999Z",
        ),
        id="now-param-date-is-its-day-end",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 1d, now: as_of,"
        " where: 'kind = :kind'}",
        {},
        judged(
            False,
            "events.created_at is 1d17h2m old (newest 2025-11-05T08:00:00Z); at most 1d allowed",
            "2025-11-05T08:00:00Z",
            147720.0,
            rows=1,
            max_age_s=86400.0,
        ),
        id="where-with-param",
    ),
    pytest.param(
        '{type: freshness, query: "select created_at from events where id = 1",'
        " column: created_at, max_age: 6h, now: as_of}",
        {},
        judged(
            True,
            "query.created_at is 5h2m old (newest 2025-11-06T20:00:00Z); at most 6h allowed",
            "2025-11-06T20:00:00Z",
            18120.0,
            rows=1,
            max_age_s=21600.0,
        ),
        id="query-relation",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 4h, now: as_of,"
        " timezone: Europe/Paris}",
        {},
        judged(
            False,
            "events.created_at is 4h12m old (newest 2025-11-06T20:50:00Z); at most 4h allowed",
            "2025-11-06T20:50:00Z",
            15120.0,
            max_age_s=14400.0,
            notes=("naive timestamps in created_at read as Europe/Paris",),
        ),
        id="timezone-winter-utc+1",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 130d, now: as_of,"
        " timezone: Europe/Paris, where: \"kind = 'summer'\"}",
        {},
        judged(
            True,
            "events.created_at is 128d15h2m old (newest 2025-07-01T10:00:00Z);"
            " at most 130d allowed",
            "2025-07-01T10:00:00Z",
            11113320.0,
            rows=1,
            max_age_s=11232000.0,
            notes=("naive timestamps in created_at read as Europe/Paris",),
        ),
        id="timezone-summer-utc+2",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 1h, now: as_of}",
        {"as_of": "2025-11-06T21:00:00Z"},
        judged(
            True,
            "events.created_at is 50m in the future (newest 2025-11-06T21:50:00Z);"
            " at most 1h allowed",
            "2025-11-06T21:50:00Z",
            -3000.0,
            max_age_s=3600.0,
            now="2025-11-06T21:00:00Z",
        ),
        id="newest-after-now",
    ),
    pytest.param(
        "{type: freshness, table: snapshots, column: snapshot_date, max_age: 1d, now: run_date}",
        {},
        judged(
            True,
            "snapshots.snapshot_date is 1d old (newest 2025-11-06T23:59:59.999999Z);"
            " at most 1d allowed",
            "2025-11-06T23:59:59.999999Z",
            86400.0,
            rows=2,
            max_age_s=86400.0,
            now="2025-11-07T23:59:59.999999Z",
            notes=(DATE_NOTE,),
        ),
        id="date-column-date-now-at-boundary",
    ),
    pytest.param(
        "{type: freshness, table: snapshots, column: snapshot_date, max_age: 23h, now: run_date}",
        {},
        judged(
            False,
            "snapshots.snapshot_date is 1d old (newest 2025-11-06T23:59:59.999999Z);"
            " at most 23h allowed",
            "2025-11-06T23:59:59.999999Z",
            86400.0,
            rows=2,
            max_age_s=82800.0,
            now="2025-11-07T23:59:59.999999Z",
            notes=(DATE_NOTE,),
        ),
        id="date-column-stale",
    ),
    pytest.param(
        "{type: freshness, table: snapshots, column: snapshot_date, max_age: 62m, now: as_of}",
        {},
        judged(
            False,
            "snapshots.snapshot_date is 1h2m0.000001s old (newest 2025-11-06T23:59:59.999999Z);"
            " at most 1h2m allowed",
            "2025-11-06T23:59:59.999999Z",
            3720.000001,
            rows=2,
            max_age_s=3720.0,
            notes=(DATE_NOTE,),
        ),
        id="date-column-timestamp-now",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 2h, now: as_of,"
        " where: \"kind = 'none'\"}",
        {},
        judged(
            False,
            "events.created_at has no newest value: no rows; at most 2h old allowed",
            None,
            None,
            rows=0,
            max_age_s=7200.0,
            notes=(),
        ),
        id="empty-relation-fails",
    ),
    pytest.param(
        "{type: freshness, table: events, column: created_at, max_age: 2h, now: as_of,"
        " where: 'id = 4'}",
        {},
        judged(
            False,
            "events.created_at has no newest value: NULL in its only row; at most 2h old allowed",
            None,
            None,
            rows=1,
            max_age_s=7200.0,
            notes=(),
        ),
        id="only-nulls-fails",
    ),
]


@pytest.mark.parametrize(("check", "params", "expected"), CASES)
def test_freshness_judges_the_newest_value(
    events: Database,
    run_yaml: RunYaml,
    check: str,
    params: dict[str, str],
    expected: dict[str, Any],
) -> None:
    result = only_check(run_yaml(suite(events, check), params))
    assert {k: result[k] for k in expected} == expected


def test_freshness_counts_null_rows(anydb: Database, run_yaml: RunYaml) -> None:
    anydb.run("create table t (created_at timestamp); insert into t values (null), (null);")
    result = only_check(
        run_yaml(suite(anydb, "{type: freshness, table: t, column: created_at, max_age: 1h}"))
    )
    assert (result["status"], result["message"], result["observed"]) == (
        "FAIL",
        "t.created_at has no newest value: NULL in all 2 rows; at most 1h old allowed",
        {"newest": None, "age_s": None, "rows": 2},
    )


def test_freshness_measures_from_the_clock_without_now(
    events: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(freshness, "_now", lambda: datetime(2025, 11, 7, 1, 2, tzinfo=UTC))
    result = only_check(
        run_yaml(suite(events, "{type: freshness, table: events, column: created_at, max_age: 2h}"))
    )
    assert {k: result[k] for k in ("status", "message", "expected")} == {
        "status": "FAIL",
        "message": "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 2h allowed",
        "expected": {"max_age_s": 7200.0, "now": NOW},
    }


# Spark's tables are made from DuckDB's (tests/conftest.py): its timestamptz is Spark's TIMESTAMP
AWARE_TYPE = {"postgresql": "timestamptz", "duckdb": "timestamptz", "sqlite": "text"}
AWARE_TYPE["spark"] = AWARE_TYPE["duckdb"]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_freshness_converts_aware_values_to_utc(
    anydb: Database, run_yaml: RunYaml, zone: str
) -> None:
    """PostgreSQL and DuckDB timestamptz, Spark's TIMESTAMP (an instant), ISO text with an offset
    on SQLite; `timezone` is only for naive values (Spark's TIMESTAMP_NTZ)."""
    anydb.run(
        f"""
        create table events (created_at {AWARE_TYPE[anydb.kind]});
        insert into events values ('2025-11-06 22:50:00+01:00'), ('2025-11-06 19:00:00+00:00');
        """
    )
    check = (
        "{type: freshness, table: events, column: created_at, max_age: 2h, now: as_of,"
        f" timezone: {zone}}}"
    )
    result = only_check(run_yaml(suite(anydb, check)))
    assert {k: result[k] for k in ("status", "message", "observed", "notes")} == {
        "status": "FAIL",
        "message": "events.created_at is 3h12m old (newest 2025-11-06T21:50:00Z); at most 2h allowed",
        "observed": {"newest": "2025-11-06T21:50:00Z", "age_s": 11520.0, "rows": 2},
        "notes": [],
    }


@pytest.mark.parametrize(
    ("value", "shown"),
    [("yesterday", "'yesterday'"), ("2025-13-45 10:00:00", "'2025-13-45 10:00:00'")],
)
def test_freshness_text_that_is_no_timestamp_is_a_config_error(
    anydb: Database, run_yaml: RunYaml, value: str, shown: str
) -> None:
    anydb.run(
        f"create table events (created_at varchar(30)); insert into events values ('{value}');"
    )
    result = only_check(
        run_yaml(suite(anydb, "{type: freshness, table: events, column: created_at, max_age: 1h}"))
    )
    assert (result["status"], result["message"], result["error"]["category"]) == (
        "ERROR",
        f"events.created_at: newest value {shown} is not a timestamp; point 'column' at a"
        " timestamp or date column (ISO 8601 text on SQLite)",
        "config",
    )


def test_freshness_number_column_is_a_config_error(anydb: Database, run_yaml: RunYaml) -> None:
    anydb.run("create table events (created_at int); insert into events values (1762465800);")
    result = only_check(
        run_yaml(suite(anydb, "{type: freshness, table: events, column: created_at, max_age: 1h}"))
    )
    assert (result["status"], result["error"]["category"]) == ("ERROR", "config")
    assert "newest value" in result["message"]
    assert "1762465800" in result["message"]
    assert result["message"].endswith(
        " is not a timestamp; point 'column' at a timestamp or date column"
        " (ISO 8601 text on SQLite)"
    )


MISSING_COLUMN = {
    "duckdb": 'Binder Error: Referenced column "nope" not found in FROM clause!',
    "sqlite": "no such column: nope",
    "postgresql": 'column "nope" does not exist',
    "spark": "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with"
    " name `nope` cannot be resolved. Did you mean one of the following? [`id`, `kind`,"
    " `created_at`]. SQLSTATE: 42703; line 1 pos 11;",
}


def test_freshness_missing_column_is_a_schema_mismatch(events: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(suite(events, "{type: freshness, table: events, column: nope, max_age: 1h}"))
    )
    assert (result["status"], result["message"], result["error"]["category"]) == (
        "ERROR",
        "Source 'w' refused the query: " + MISSING_COLUMN[events.kind],
        "schema_mismatch",
    )


@pytest.mark.parametrize(
    ("params", "given", "message"),
    [
        (
            "  as_of: {type: string}\n",
            {},
            "now: param 'as_of' has no value; pass --param as_of=… or leave 'now' out to"
            " measure from the current time",
        ),
        (
            "  as_of: {type: string}\n",
            {"as_of": "tomorrow"},
            "now: param 'as_of' holds 'tomorrow', which is not an ISO date or timestamp",
        ),
        (
            "  as_of: {type: int, default: 3}\n",
            {},
            "now: param 'as_of' holds 3, which is not an ISO date or timestamp",
        ),
    ],
    ids=["no-value", "not-iso", "wrong-type"],
)
def test_freshness_now_param_that_is_no_moment_is_a_config_error(
    duck: Database, run_yaml: RunYaml, params: str, given: dict[str, str], message: str
) -> None:
    duck.run("create table events (created_at timestamp);")
    check = "{type: freshness, table: events, column: created_at, max_age: 1h, now: as_of}"
    result = only_check(run_yaml(suite(duck, check, params), given))
    assert (result["status"], result["message"], result["error"]["category"]) == (
        "ERROR",
        message,
        "config",
    )


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (
            "{type: freshness, table: events, column: created_at, max_age: soon}",
            "check #1 (freshness): max_age: 'soon' is not a duration (use e.g. 30s, 5m, 2h10m, 1d)",
        ),
        (
            "{type: freshness, table: events, column: created_at, max_age: 0s}",
            "check #1 (freshness): max_age: must be longer than 0s",
        ),
        (
            "{type: freshness, table: events, column: created_at, max_age: 1h, now: asof}",
            "check 'freshness:events': now uses :asof, which is not a declared param"
            " (did you mean 'as_of'?)",
        ),
        (
            "{type: freshness, table: events, column: created_at, max_age: 1h,"
            " timezone: Mars/Base}",
            "check #1 (freshness): timezone: 'Mars/Base' is not an IANA time zone name"
            " (e.g. UTC, Europe/Paris)",
        ),
        (
            "{type: freshness, table: events, max_age: 1h}",
            "check #1 (freshness): missing required key 'column'",
        ),
        (
            "{type: freshness, table: events, column: created_at, max_agee: 1h}",
            "check #1 (freshness): unknown key 'max_agee' (did you mean 'max_age'?)",
        ),
    ],
    ids=[
        "max-age-soon",
        "max-age-zero",
        "now-undeclared",
        "timezone-unknown",
        "no-column",
        "misspelt-key",
    ],
)
def test_freshness_config_mistakes_are_suite_errors(
    tmp_path: Path, check: str, reason: str
) -> None:
    db = Database("duckdb", tmp_path / "x.duckdb")
    path = tmp_path / "suite.yml"
    path.write_text(suite(db, check))
    with pytest.raises(SuiteError) as exc:
        load_suite(path, env={})
    assert str(exc.value) == f"{path}:9: {reason}"


SQL_SPEC = FreshnessSpec.model_validate(
    {
        "type": "freshness",
        "table": "analytics.events",
        "where": "kind = :kind",
        "column": "created_at",
        "max_age": "2h",
    }
)


def test_freshness_sql_duckdb_reads_the_newest_value_as_text() -> None:
    ctx = Context(SQL_SPEC, registry()[SQL_SPEC.type], sources={}, params={"kind": "load"})
    assert str(ctx.scan_statement(SQL_SPEC.relation).compile(dialect=duckdb_engine.Dialect())) == (
        "SELECT CAST(max(created_at) AS VARCHAR) AS newest, count(*) AS rows \n"
        "FROM analytics.events \nWHERE (kind = %(kind)s\n)"
    )


def test_freshness_sql_postgresql() -> None:
    ctx = Context(SQL_SPEC, registry()[SQL_SPEC.type], sources={}, params={"kind": "load"})
    assert str(ctx.scan_statement(SQL_SPEC.relation).compile(dialect=postgresql.dialect())) == (
        "SELECT max(created_at) AS newest, count(*) AS rows \n"
        "FROM analytics.events \nWHERE (kind = %(kind)s\n)"
    )
