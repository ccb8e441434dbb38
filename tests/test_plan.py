"""Shared scans: checks on one relation are answered by one query; samples only on failure."""

from __future__ import annotations

import textwrap
import time
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from runner import load_suite
from runner.checks import registry
from runner.checks.base import CheckSpec, Relation
from runner.context import Context
from runner.errors import SourceError
from runner.explain import explain
from runner.plan import Plan, SharedScan
from runner.results import ErrorCategory, Status
from runner.sources import database
from runner.sources.duckdb_dialect import duckdb_dialect
from tests.conftest import Database, RunYaml

SNAPSHOTS = """
    create table portfolio_snapshots (
        portfolio_id varchar, snapshot_date date, daily_pnl real, total_pnl real,
        created_at timestamp
    );
    insert into portfolio_snapshots values
        ('PF-1', '2025-11-06', 1.5, 10.0, '2025-11-06 22:00:00'),
        ('PF-2', '2025-11-06', -2.0, 20.0, '2025-11-06 22:05:00'),
        ('PF-3', '2025-11-06', 0.5, 30.0, '2025-11-06 22:10:00'),
        ('PF-1', '2025-11-05', 1.0, 8.5, '2025-11-05 22:00:00');
"""
WHERE = "snapshot_date = :run_date"
FIVE_CHECKS = f"""
    - {{type: row_count, name: rows, table: portfolio_snapshots, where: "{WHERE}", equals: 3}}
    - {{type: not_null, name: daily, table: portfolio_snapshots, where: "{WHERE}",
        columns: [daily_pnl], key: portfolio_id}}
    - {{type: not_null, name: total, table: portfolio_snapshots, where: "{WHERE}",
        columns: [total_pnl], key: portfolio_id}}
    - {{type: row_count, name: portfolios, table: portfolio_snapshots, where: "{WHERE}",
        distinct: portfolio_id, min: 3}}
    - {{type: freshness, name: fresh, table: portfolio_snapshots, where: "{WHERE}",
        column: created_at, max_age: 1d, now: run_date}}
"""


def suite(db: Database, checks: str) -> str:
    return (
        "suite: plan\n"
        "params:\n  run_date: {type: date, default: 2025-11-06}\n"
        f'sources:\n  w: {{url: "{db.url}"}}\n'
        "checks:" + checks
    )


def by_name(verdict: Any) -> dict[str, Any]:
    return {c.name: c for c in verdict.checks}


def test_plan_five_checks_on_one_relation_run_one_query(db: Database, run_yaml: RunYaml) -> None:
    db.run(SNAPSHOTS)
    verdict = run_yaml(suite(db, FIVE_CHECKS))
    assert [(c.name, c.status) for c in verdict.checks] == [
        (name, Status.PASS) for name in ("rows", "daily", "total", "portfolios", "fresh")
    ], [c.message for c in verdict.checks]
    assert len(verdict.queries) == 1
    (query,) = verdict.queries
    assert (query.id, query.source) == ("q1", "w")
    assert query.checks == ["rows", "daily", "total", "portfolios", "fresh"]
    assert [c.queries for c in verdict.checks] == [["q1"]] * 5
    assert by_name(verdict)["portfolios"].message == (
        "portfolio_snapshots has 3 distinct portfolio_id values where at least 3 expected"
    )


def test_plan_a_passing_check_fetches_no_samples_a_failing_one_does(
    db: Database, run_yaml: RunYaml
) -> None:
    db.run(
        SNAPSHOTS + "update portfolio_snapshots set total_pnl = null where portfolio_id = 'PF-2';"
    )
    verdict = run_yaml(suite(db, FIVE_CHECKS))
    checks = by_name(verdict)
    assert checks["total"].status is Status.FAIL
    assert checks["total"].failures == [
        {"key": {"portfolio_id": "PF-2"}, "null_columns": ["total_pnl"]}
    ]
    assert [len(q.checks) for q in verdict.queries] == [5, 1]
    sample = verdict.queries[1]
    assert sample.checks == ["total"]
    assert "LIMIT" in sample.sql.upper()
    assert checks["total"].queries == ["q1", "q2"]
    assert all(checks[name].queries == ["q1"] for name in ("rows", "daily", "portfolios", "fresh"))


def test_plan_one_scan_per_table_whatever_the_wheres(db: Database, run_yaml: RunYaml) -> None:
    db.run(SNAPSHOTS)
    checks = """
    - {type: row_count, name: today, table: portfolio_snapshots, where: "snapshot_date = :run_date", equals: 3}
    - {type: row_count, name: all, table: portfolio_snapshots, equals: 4}
    - {type: row_count, name: by_query, query: "select * from portfolio_snapshots", min: 1}
    - {type: not_null, name: all_pnl, table: portfolio_snapshots, columns: daily_pnl}
    - {type: row_count, name: yesterday, table: portfolio_snapshots, where: "snapshot_date < :run_date", equals: 1}
    """
    verdict = run_yaml(suite(db, checks))
    assert [c.status for c in verdict.checks] == [Status.PASS] * 5, [
        c.message for c in verdict.checks
    ]
    assert [q.checks for q in verdict.queries] == [
        ["today", "all", "all_pnl", "yesterday"],
        ["by_query"],
    ]
    fused = verdict.queries[0].sql.upper()
    assert fused.count("FILTER (WHERE") == 2
    assert " OR " not in fused  # a check reads the whole table: no outer WHERE


def test_plan_wheres_of_one_table_count_each_its_own_rows(db: Database, run_yaml: RunYaml) -> None:
    db.run(
        SNAPSHOTS + "update portfolio_snapshots set daily_pnl = null where portfolio_id = 'PF-2';"
    )
    checks = """
    - {type: row_count, name: today, table: portfolio_snapshots, where: "snapshot_date = :run_date", equals: 3}
    - {type: not_null, name: today_pnl, table: portfolio_snapshots, where: "snapshot_date = :run_date", columns: daily_pnl, key: portfolio_id}
    - {type: not_null, name: old_pnl, table: portfolio_snapshots, where: "snapshot_date < :run_date", columns: daily_pnl}
    - {type: row_count, name: old_or_pf3, table: portfolio_snapshots, where: "snapshot_date < :run_date or portfolio_id = 'PF-3'", equals: 2}
    - {type: row_count, name: old_pf, table: portfolio_snapshots, where: "snapshot_date < :run_date", distinct: portfolio_id, equals: 1}
    """
    verdict = run_yaml(suite(db, checks))
    statuses = {c.name: c.status for c in verdict.checks}
    assert statuses == {
        "today": Status.PASS,
        "today_pnl": Status.FAIL,
        "old_pnl": Status.PASS,
        "old_or_pf3": Status.PASS,
        "old_pf": Status.PASS,
    }, [c.message for c in verdict.checks]
    assert by_name(verdict)["today_pnl"].message == (
        "portfolio_snapshots has NULLs in 1 of 3 rows (daily_pnl 1)"
    )
    assert by_name(verdict)["old_pnl"].observed == {"rows": 1, "nulls": {"daily_pnl": 0}}
    scan = verdict.queries[0]
    assert scan.checks == ["today", "today_pnl", "old_pnl", "old_or_pf3", "old_pf"]
    # every check names a where: the scan reads only rows one of them wants
    outer = scan.sql.rpartition("\nWHERE ")[2]
    assert outer.count(") OR (") == 2, scan.sql


def test_plan_one_check_two_wheres_on_one_table_is_one_query(
    db: Database, run_yaml: RunYaml
) -> None:
    db.run(SNAPSHOTS)
    checks = """
    - type: row_count
      name: today_vs_yesterday
      table: portfolio_snapshots
      where: "snapshot_date = :run_date"
      equals: {table: portfolio_snapshots, where: "snapshot_date < :run_date"}
      tolerance: 2
    - {type: row_count, name: rows, table: portfolio_snapshots, min: 1}
    """
    verdict = run_yaml(suite(db, checks))
    assert [c.status for c in verdict.checks] == [Status.PASS] * 2
    assert by_name(verdict)["today_vs_yesterday"].expected["equals"] == 1
    assert [q.checks for q in verdict.queries] == [["today_vs_yesterday", "rows"]]
    assert by_name(verdict)["today_vs_yesterday"].queries == ["q1"]


def test_plan_one_bad_column_fails_alone_the_others_still_pass(
    db: Database, run_yaml: RunYaml
) -> None:
    db.run(SNAPSHOTS)
    checks = FIVE_CHECKS.replace("columns: [total_pnl]", "columns: [total_pnl_typo]")
    verdict = run_yaml(suite(db, checks))
    statuses = {c.name: c.status for c in verdict.checks}
    assert statuses == {
        "rows": Status.PASS,
        "daily": Status.PASS,
        "total": Status.ERROR,
        "portfolios": Status.PASS,
        "fresh": Status.PASS,
    }
    total = by_name(verdict)["total"]
    assert total.error is not None
    assert total.error.category in {ErrorCategory.QUERY, ErrorCategory.SCHEMA_MISMATCH}
    assert "total_pnl_typo" in total.error.detail
    notes = {c.name: c.notes for c in verdict.checks}
    fell_back = (
        "the query shared with 4 other check(s) over portfolio_snapshots failed; "
        "this check ran its own"
    )
    assert all(notes[name][0] == fell_back for name in statuses), notes


def test_plan_fused_sql_computes_each_aggregate_once(duck: Database, tmp_path: Any) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(suite(duck, FIVE_CHECKS))
    loaded = load_suite(path, env={})
    plan = Plan.of(loaded.checks, registry())
    (scan,) = plan.scans
    stmt = scan.statement({"run_date": "2025-11-06"})
    assert str(stmt.compile(dialect=duckdb_dialect())) == (
        "SELECT count(*) AS a0, count(*) - count(daily_pnl) AS a1, "
        "count(*) - count(total_pnl) AS a2, count(DISTINCT portfolio_id) AS a3, "
        "CAST(max(created_at) AS VARCHAR) AS a4 \n"
        "FROM portfolio_snapshots \nWHERE (snapshot_date = $1\n)"
    )
    assert str(stmt.compile(dialect=postgresql.dialect())) == (
        "SELECT count(*) AS a0, count(*) - count(daily_pnl) AS a1, "
        "count(*) - count(total_pnl) AS a2, count(DISTINCT portfolio_id) AS a3, "
        "max(created_at) AS a4 \n"
        "FROM portfolio_snapshots \nWHERE (snapshot_date = %(run_date)s\n)"
    )
    assert scan.labels == {
        ("rows", WHERE): {"count": "a0"},
        ("daily", WHERE): {"rows": "a0", "nulls_0": "a1"},
        ("total", WHERE): {"rows": "a0", "nulls_0": "a2"},
        ("portfolios", WHERE): {"count": "a3"},
        ("fresh", WHERE): {"newest": "a4", "rows": "a0"},
    }


MIXED_WHERES = f"""
    - {{type: row_count, name: rows, table: portfolio_snapshots, where: "{WHERE}", equals: 3}}
    - {{type: not_null, name: daily, table: portfolio_snapshots, where: "{WHERE}",
        columns: [daily_pnl], key: portfolio_id}}
    - {{type: row_count, name: history, table: portfolio_snapshots, where: "snapshot_date < :run_date",
        min: 1}}
    - {{type: freshness, name: fresh, table: portfolio_snapshots, column: created_at, max_age: 1d,
        now: run_date}}
"""


@pytest.mark.parametrize(
    ("dialect", "bound", "newest"),
    [
        (duckdb_dialect(), "$1", "CAST(max(created_at) AS VARCHAR)"),
        (postgresql.dialect(), "%(run_date)s", "max(created_at)"),
        (sqlite.dialect(), "?", "max(created_at)"),
    ],
    ids=["duckdb", "postgresql", "sqlite"],
)
def test_plan_fused_sql_filters_each_where_exactly(
    dialect: sa.Dialect, bound: str, newest: str, tmp_path: Any
) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(suite(Database("duckdb", tmp_path / "x.duckdb"), MIXED_WHERES))
    loaded = load_suite(path, env={})
    (scan,) = Plan.of(loaded.checks, registry()).scans
    today = f"FILTER (WHERE (snapshot_date = {bound}\n))"
    before = f"FILTER (WHERE (snapshot_date < {bound}\n))"
    assert str(scan.statement({"run_date": "2025-11-06"}).compile(dialect=dialect)) == (
        f"SELECT count(*) {today} AS a0, count(*) {today} - count(daily_pnl) {today} AS a1, "
        f"count(*) {before} AS a2, {newest} AS a3, count(*) AS a4 \n"
        "FROM portfolio_snapshots"
    )


def test_plan_skipped_checks_are_left_out_of_the_scan(db: Database, run_yaml: RunYaml) -> None:
    from runner import RunOptions

    db.run(SNAPSHOTS)
    verdict = run_yaml(suite(db, FIVE_CHECKS), options=RunOptions(only=["rows", "daily"]))
    assert [q.checks for q in verdict.queries] == [["rows", "daily"]]
    assert "total_pnl" not in verdict.queries[0].sql


def test_plan_a_waiting_check_keeps_its_own_deadline() -> None:
    """Another check runs the shared scan (it never answers here): the waiting check stops at its
    own deadline."""
    relation = Relation(table="t")
    shared = SharedScan(relation, "w")
    shared.add("waiting", None, {"n": sa.func.count()})
    shared.add("running", None, {"n": sa.func.count()})
    assert shared.claim()  # the running check took it
    spec = CheckSpec.model_construct(type="row_count", name="waiting", source="w")
    plan = Plan(scans=[shared])
    deadline = time.monotonic() + 0.2
    ctx = Context(spec, registry()[spec.type], {}, {}, deadline=deadline, plan=plan)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        ctx.scan(relation)
    assert 0.15 <= time.monotonic() - started < 2
    assert (caught.value.category, caught.value.message) == (
        ErrorCategory.TIMEOUT,
        "check 'waiting' was cancelled",
    )


def test_plan_explain_prints_each_statement_once_without_connecting(tmp_path: Any) -> None:
    path = tmp_path / "suite.yml"
    unreachable = "postgresql://gate:s3cr3t-pw@127.0.0.1:1/warehouse"
    text = suite(Database("postgresql", tmp_path, dsn=unreachable), FIVE_CHECKS)
    text += "    - {type: sql, name: no_future, query: select 1 where 1 = 0}\n"
    path.write_text(text)
    loaded = load_suite(path, env={})
    selected = {c.name or "": c.name != "total" for c in loaded.checks}
    shown = explain(loaded, selected, registry(), sample_limit=5)
    assert shown == textwrap.dedent(
        """\
        plan of suite 'plan': 5 of 6 checks

        check 'rows' (row_count)
          q1 on source 'w', one query for 4 checks: rows, daily, portfolios, fresh
            SELECT count(*) AS a0, count(*) - count(daily_pnl) AS a1, count(DISTINCT portfolio_id) AS a2, max(created_at) AS a3
            FROM portfolio_snapshots
            WHERE (snapshot_date = %(run_date)s
            )

        check 'daily' (not_null)
          q1 (shared, above)
          q2 on source 'w', if the check fails: its sample
            SELECT portfolio_id, daily_pnl
            FROM portfolio_snapshots
            WHERE (snapshot_date = %(run_date)s
            ) AND daily_pnl IS NULL ORDER BY portfolio_id
             LIMIT %(param_1)s::INTEGER

        check 'portfolios' (row_count)
          q1 (shared, above)

        check 'fresh' (freshness)
          q1 (shared, above)

        check 'no_future' (sql)
          q3 on source 'w'
            SELECT *, count(*) OVER () AS postrun_total
            FROM (select 1 where 1 = 0) AS q
             LIMIT %(param_1)s::INTEGER

        3 statements (1 of them only when their check fails)."""
    )
    assert "s3cr3t" not in shown


def test_plan_aggregates_differing_only_in_a_bound_value_are_not_merged(db: Database) -> None:
    """`count(CASE WHEN x > 5 …)` and `… x > 6 …` print alike (the values are placeholders):
    each check must still get its own number. Equal aggregates, values and all, share one."""
    db.run("create table t (x integer); insert into t values (1), (2), (3), (4), (5), (6), (7);")
    x: sa.ColumnClause[Any] = sa.column("x")

    def over(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.count(sa.case((condition, sa.literal_column("1"))))

    wanted = {
        "above_5": over(x > 5),
        "above_3": over(x > 3),
        "above_5_again": over(x > 5),
        "above_3_float": over(x > 3.5),
        "in_1_2": over(x.in_([1, 2])),
        "in_1_3_4": over(x.in_([1, 3, 4])),
        "in_1_2_again": over(x.in_([1, 2])),
    }
    relation = Relation(table="t", source="w")
    shared = SharedScan(relation, "w")
    for name, aggregate in wanted.items():
        shared.add(name, None, {"n": aggregate})
    plan = Plan(scans=[shared])
    source = database("w", db.url)
    try:
        got = {}
        for name in wanted:
            spec = CheckSpec.model_construct(type="row_count", name=name, source="w")
            got[name] = Context(spec, registry()[spec.type], {"w": source}, {}, plan=plan).scan(
                relation
            )["n"]
    finally:
        source.close()
    assert got == {
        "above_5": 2,
        "above_3": 4,
        "above_5_again": 2,
        "above_3_float": 4,
        "in_1_2": 2,
        "in_1_3_4": 3,
        "in_1_2_again": 2,
    }
    assert {name: labels["n"] for (name, _), labels in shared.labels.items()} == {
        "above_5": "a0",
        "above_3": "a1",
        "above_5_again": "a0",
        "above_3_float": "a2",
        "in_1_2": "a3",
        "in_1_3_4": "a4",
        "in_1_2_again": "a3",
    }


def test_plan_expression_key_never_renders_values() -> None:
    """Values no dialect can write as a literal (a date bound without a type, a dict) or that
    Python cannot hash still key an aggregate, by value and type: 1, 1.0 and True differ."""
    d: sa.ColumnClause[Any] = sa.column("d")
    x: sa.ColumnClause[Any] = sa.column("x")
    wanted: dict[str, sa.ColumnElement[Any]] = {
        "date_6": sa.func.count(sa.case((d > sa.bindparam("p", date(2026, 2, 6)), 1))),
        "date_7": sa.func.count(sa.case((d > sa.bindparam("p", date(2026, 2, 7)), 1))),
        "dict": sa.func.max(d == sa.bindparam("q", {"a": [1]}, type_=sa.types.NullType())),
        "dict_again": sa.func.max(d == sa.bindparam("q", {"a": [1]}, type_=sa.types.NullType())),
        "int": sa.func.sum(x + sa.bindparam("r", 1, type_=sa.types.NullType())),
        "float": sa.func.sum(x + sa.bindparam("r", 1.0, type_=sa.types.NullType())),
        "bool": sa.func.sum(x + sa.bindparam("r", True, type_=sa.types.NullType())),
    }
    shared = SharedScan(Relation(table="t"), "w")
    for name, aggregate in wanted.items():
        shared.add(name, None, {"v": aggregate})
    assert {name: labels["v"] for (name, _), labels in shared.labels.items()} == {
        "date_6": "a0",
        "date_7": "a1",
        "dict": "a2",
        "dict_again": "a2",
        "int": "a3",
        "float": "a4",
        "bool": "a5",
    }
