"""row_count: equals a number or another relation (with tolerance), or min / max / between."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from tests.conftest import Database, RunYaml, only_check


def values(rows: list[tuple[Any, ...]]) -> str:
    return ", ".join("(" + ", ".join(repr(v) for v in row) + ")" for row in rows)


@pytest.fixture
def warehouse(anydb: Database) -> Database:
    """100 portfolios (90 active); 97 snapshots on 2025-11-06 and 3 on 2025-11-05."""
    portfolios = [(i, 1 if i <= 90 else 0) for i in range(1, 101)]
    snapshots = [(i, "2025-11-06") for i in range(1, 98)] + [
        (i, "2025-11-05") for i in range(98, 101)
    ]
    anydb.run(
        f"""
        create table portfolios (portfolio_id integer, active integer);
        insert into portfolios values {values(portfolios)};
        create table portfolio_snapshots (portfolio_id integer, snapshot_date date);
        insert into portfolio_snapshots values {values(snapshots)};
        create table empty_table (id integer);
        """
    )
    return anydb


def suite(db: Database, check: str) -> str:
    return textwrap.dedent(
        f"""\
        suite: counts
        params:
          run_date: {{type: date, default: 2025-11-06}}
          n: {{type: int, default: 97}}
        sources:
          w: {{url: "{db.url}"}}
        checks:
          - {check}
        """
    )


ON_DAY = "table: portfolio_snapshots, where: 'snapshot_date = :run_date'"

CASES = [
    pytest.param(
        "{type: row_count, table: portfolio_snapshots, equals: 100}",
        ("PASS", "portfolio_snapshots has 100 rows where 100 expected"),
        {"count": 100},
        {"equals": 100},
        id="equals-number",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, equals: 100}}",
        ("FAIL", "portfolio_snapshots has 97 rows where 100 expected"),
        {"count": 97},
        {"equals": 100},
        id="equals-number-with-where-fails",
    ),
    pytest.param(
        "{type: row_count, table: empty_table, equals: 0}",
        ("PASS", "empty_table has 0 rows where 0 expected"),
        {"count": 0},
        {"equals": 0},
        id="equals-zero",
    ),
    pytest.param(
        "{type: row_count, table: portfolio_snapshots, equals: {table: portfolios}}",
        ("PASS", "portfolio_snapshots has 100 rows where portfolios has 100"),
        {"count": 100},
        {"equals": 100, "relation": "portfolios"},
        id="equals-relation",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, equals: {{table: portfolios, where: 'active = 1'}}}}",
        ("FAIL", "portfolio_snapshots has 97 rows where portfolios has 90"),
        {"count": 97},
        {"equals": 90, "relation": "portfolios"},
        id="equals-relation-with-where-fails",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY},"
        " equals: {query: 'select * from portfolios where portfolio_id <= :n'}}",
        ("PASS", "portfolio_snapshots has 97 rows where query has 97"),
        {"count": 97},
        {"equals": 97, "relation": "query"},
        id="equals-query-relation-with-param",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, equals: {{table: portfolios}}, tolerance: 3}}",
        ("PASS", "portfolio_snapshots has 97 rows where portfolios has 100 (±3)"),
        {"count": 97},
        {"equals": 100, "relation": "portfolios", "tolerance": "3"},
        id="tolerance-absolute-at-boundary",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, equals: {{table: portfolios}}, tolerance: 2}}",
        ("FAIL", "portfolio_snapshots has 97 rows where portfolios has 100 (±2)"),
        {"count": 97},
        {"equals": 100, "relation": "portfolios", "tolerance": "2"},
        id="tolerance-absolute-one-over",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, equals: {{table: portfolios}}, tolerance: 3%}}",
        ("PASS", "portfolio_snapshots has 97 rows where portfolios has 100 (±3%)"),
        {"count": 97},
        {"equals": 100, "relation": "portfolios", "tolerance": "3%"},
        id="tolerance-percent-at-boundary",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, equals: {{table: portfolios}}, tolerance: 2.9%}}",
        ("FAIL", "portfolio_snapshots has 97 rows where portfolios has 100 (±2.9%)"),
        {"count": 97},
        {"equals": 100, "relation": "portfolios", "tolerance": "2.9%"},
        id="tolerance-percent-just-under",
    ),
    pytest.param(
        "{type: row_count, table: portfolios, equals: 97, tolerance: 3}",
        ("PASS", "portfolios has 100 rows where 97 expected (±3)"),
        {"count": 100},
        {"equals": 97, "tolerance": "3"},
        id="tolerance-above-expected",
    ),
    pytest.param(
        "{type: row_count, table: portfolios, equals: 96, tolerance: 3}",
        ("FAIL", "portfolios has 100 rows where 96 expected (±3)"),
        {"count": 100},
        {"equals": 96, "tolerance": "3"},
        id="tolerance-above-expected-one-over",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, min: 97}}",
        ("PASS", "portfolio_snapshots has 97 rows where at least 97 expected"),
        {"count": 97},
        {"min": 97},
        id="min-at-boundary",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, min: 98}}",
        ("FAIL", "portfolio_snapshots has 97 rows where at least 98 expected"),
        {"count": 97},
        {"min": 98},
        id="min-one-over",
    ),
    pytest.param(
        "{type: row_count, table: empty_table, min: 1}",
        ("FAIL", "empty_table has 0 rows where at least 1 expected"),
        {"count": 0},
        {"min": 1},
        id="min-on-empty-table",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, max: 97}}",
        ("PASS", "portfolio_snapshots has 97 rows where at most 97 expected"),
        {"count": 97},
        {"max": 97},
        id="max-at-boundary",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, max: 96}}",
        ("FAIL", "portfolio_snapshots has 97 rows where at most 96 expected"),
        {"count": 97},
        {"max": 96},
        id="max-one-under",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, min: 90, max: 99}}",
        ("PASS", "portfolio_snapshots has 97 rows where between 90 and 99 expected"),
        {"count": 97},
        {"min": 90, "max": 99},
        id="min-and-max",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, between: [97, 120]}}",
        ("PASS", "portfolio_snapshots has 97 rows where between 97 and 120 expected"),
        {"count": 97},
        {"min": 97, "max": 120},
        id="between-at-low-boundary",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, between: [98, 120]}}",
        ("FAIL", "portfolio_snapshots has 97 rows where between 98 and 120 expected"),
        {"count": 97},
        {"min": 98, "max": 120},
        id="between-below",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, between: [97, 97]}}",
        ("PASS", "portfolio_snapshots has 97 rows where 97 expected"),
        {"count": 97},
        {"min": 97, "max": 97},
        id="between-single-value",
    ),
    pytest.param(
        "{type: row_count, query: 'select * from portfolio_snapshots"
        " where snapshot_date = :run_date', equals: 97}",
        ("PASS", "query has 97 rows where 97 expected"),
        {"count": 97},
        {"equals": 97},
        id="query-relation-with-param",
    ),
    pytest.param(
        "{type: row_count, query: 'select * from portfolios;  ', equals: 100}",
        ("PASS", "query has 100 rows where 100 expected"),
        {"count": 100},
        {"equals": 100},
        id="query-with-trailing-semicolon",
    ),
    pytest.param(
        '{type: row_count, query: "select * from portfolios -- all, active or not", equals: 100}',
        ("PASS", "query has 100 rows where 100 expected"),
        {"count": 100},
        {"equals": 100},
        id="query-with-trailing-comment",
    ),
    pytest.param(
        "{type: row_count, query: 'select portfolio_id % 10 as bucket from portfolios',"
        " distinct: bucket, equals: 10}",
        ("PASS", "query has 10 distinct bucket values where 10 expected"),
        {"count": 10, "distinct": "bucket"},
        {"equals": 10},
        id="distinct",
    ),
    pytest.param(
        "{type: row_count, query: 'select case when active = 1 then portfolio_id end as pid"
        " from portfolios', distinct: pid, equals: {table: portfolios, where: 'active = 1'}}",
        ("PASS", "query has 90 distinct pid values where portfolios has 90"),
        {"count": 90, "distinct": "pid"},
        {"equals": 90, "relation": "portfolios"},
        id="distinct-leaves-out-nulls",
    ),
    pytest.param(
        f"{{type: row_count, {ON_DAY}, distinct: portfolio_id, min: 98}}",
        (
            "FAIL",
            "portfolio_snapshots has 97 distinct portfolio_id values where at least 98 expected",
        ),
        {"count": 97, "distinct": "portfolio_id"},
        {"min": 98},
        id="distinct-with-where-fails",
    ),
]


@pytest.mark.parametrize(("check", "outcome", "observed", "expected"), CASES)
def test_row_count_judges_count(
    warehouse: Database,
    run_yaml: RunYaml,
    check: str,
    outcome: tuple[str, str],
    observed: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    result = only_check(run_yaml(suite(warehouse, check)))
    assert (result["status"], result["message"]) == outcome
    assert (result["observed"], result["expected"]) == (observed, expected)
    assert (result["failures"], result["failure_count"], result["error"]) == ([], 0, None)


def test_row_count_equals_relation_in_another_source(tmp_path: Any, run_yaml: RunYaml) -> None:
    duck = Database("duckdb", tmp_path / "w.duckdb")
    lite = Database("sqlite", tmp_path / "ref.sqlite")
    duck.run(
        f"create table snapshots (id int); insert into snapshots values {values([(1,), (2,)])};"
    )
    lite.run(
        f"create table portfolios (id int); insert into portfolios values {values([(1,), (2,), (3,)])};"
    )
    verdict = run_yaml(
        f"""\
        suite: cross
        sources:
          warehouse: {{url: "{duck.url}"}}
          reference: {{url: "{lite.url}"}}
        checks:
          - type: row_count
            name: exact
            source: warehouse
            table: snapshots
            equals: {{table: portfolios, source: reference}}
          - type: row_count
            name: close enough
            source: warehouse
            table: snapshots
            equals: {{table: portfolios, source: reference}}
            tolerance: 1
          - type: row_count
            name: reversed
            source: reference
            table: portfolios
            equals: {{table: snapshots, source: warehouse}}
            tolerance: 50%
        """
    )
    assert [(c.name, c.status, c.message, c.source) for c in verdict.checks] == [
        ("exact", "FAIL", "snapshots has 2 rows where portfolios has 3", "warehouse"),
        ("close enough", "PASS", "snapshots has 2 rows where portfolios has 3 (±1)", "warehouse"),
        ("reversed", "PASS", "portfolios has 3 rows where snapshots has 2 (±50%)", "reference"),
    ]


def test_row_count_missing_reference_table_is_error(warehouse: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(suite(warehouse, "{type: row_count, table: portfolios, equals: {table: nope}}"))
    )
    assert (result["status"], result["error"]["category"]) == ("ERROR", "schema_mismatch")
    assert (result["observed"], result["expected"]) == ({}, {})
