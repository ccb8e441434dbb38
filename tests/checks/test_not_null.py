"""not_null: listed columns hold no NULLs, or at most max_nulls / max_null_fraction of the rows."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from runner import RunOptions
from tests.conftest import Database, RunYaml, only_check


@pytest.fixture
def snapshots(anydb: Database) -> Database:
    """Eight snapshots inserted out of key order; NULLs in daily_pnl and cumulative_pnl."""
    anydb.run(
        """
        create table portfolio_snapshots (
            portfolio_id varchar(10), snapshot_date date, daily_pnl float, cumulative_pnl float
        );
        insert into portfolio_snapshots values
            ('PF-7', '2025-11-06', null, 1.0),
            ('PF-2', '2025-11-06', 1.5, null),
            ('PF-5', '2025-11-06', null, null),
            ('PF-1', '2025-11-06', 2.0, 3.0),
            ('PF-3', '2025-11-06', null, 4.0),
            ('PF-4', '2025-11-05', null, 5.0),
            ('PF-6', '2025-11-06', 0.5, 6.0),
            ('PF-8', '2025-11-06', null, 7.0);
        """
    )
    return anydb


def suite(db: Database, check: str) -> str:
    return textwrap.dedent(
        f"""\
        suite: pnl
        params:
          run_date: {{type: date, default: 2025-11-06}}
        sources:
          w: {{url: "{db.url}"}}
        checks:
          - {check}
        """
    )


def nulls_at(*keys: str, columns: tuple[str, ...] = ("daily_pnl",)) -> list[dict[str, Any]]:
    return [{"key": {"portfolio_id": k}, "null_columns": list(columns)} for k in keys]


CASES = [
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: [portfolio_id, snapshot_date]}",
        {
            "status": "PASS",
            "message": "portfolio_snapshots: no column over its NULL limit in 8 rows",
            "observed": {"rows": 8, "nulls": {"portfolio_id": 0, "snapshot_date": 0}},
            "expected": {"max_nulls": 0},
            "failures": [],
            "failure_count": 0,
        },
        id="pass",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: [daily_pnl, cumulative_pnl],"
        " key: portfolio_id}",
        {
            "status": "FAIL",
            "message": "portfolio_snapshots has NULLs in 6 of 8 rows"
            " (daily_pnl 5, cumulative_pnl 2)",
            "observed": {"rows": 8, "nulls": {"daily_pnl": 5, "cumulative_pnl": 2}},
            "expected": {"max_nulls": 0},
            "failures": [
                *nulls_at("PF-2", columns=("cumulative_pnl",)),
                *nulls_at("PF-3", "PF-4"),
                *nulls_at("PF-5", columns=("daily_pnl", "cumulative_pnl")),
                *nulls_at("PF-7", "PF-8"),
            ],
            "failure_count": 6,
        },
        id="fail-per-column-counts-samples-by-key",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: [daily_pnl, cumulative_pnl],"
        " key: [portfolio_id], max_nulls: 2}",
        {
            "status": "FAIL",
            "message": "portfolio_snapshots has NULLs in 5 of 8 rows (daily_pnl 5)",
            "observed": {"rows": 8, "nulls": {"daily_pnl": 5, "cumulative_pnl": 2}},
            "expected": {"max_nulls": 2},
            "failures": nulls_at("PF-3", "PF-4", "PF-5", "PF-7", "PF-8"),
            "failure_count": 5,
        },
        id="max-nulls-only-failing-columns-count",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: daily_pnl, max_nulls: 5}",
        {
            "status": "PASS",
            "message": "portfolio_snapshots: no column over its NULL limit in 8 rows",
            "observed": {"rows": 8, "nulls": {"daily_pnl": 5}},
            "expected": {"max_nulls": 5},
            "failures": [],
            "failure_count": 0,
        },
        id="max-nulls-at-boundary",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: daily_pnl, max_nulls: 4,"
        " key: portfolio_id}",
        {
            "status": "FAIL",
            "message": "portfolio_snapshots has NULLs in 5 of 8 rows (daily_pnl 5)",
            "observed": {"rows": 8, "nulls": {"daily_pnl": 5}},
            "expected": {"max_nulls": 4},
            "failures": nulls_at("PF-3", "PF-4", "PF-5", "PF-7", "PF-8"),
            "failure_count": 5,
        },
        id="max-nulls-one-over",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: daily_pnl,"
        " max_null_fraction: 0.625}",
        {
            "status": "PASS",
            "message": "portfolio_snapshots: no column over its NULL limit in 8 rows",
            "observed": {"rows": 8, "nulls": {"daily_pnl": 5}},
            "expected": {"max_null_fraction": 0.625},
            "failures": [],
            "failure_count": 0,
        },
        id="max-null-fraction-at-boundary",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: daily_pnl,"
        " max_null_fraction: 0.6, key: portfolio_id}",
        {
            "status": "FAIL",
            "message": "portfolio_snapshots has NULLs in 5 of 8 rows (daily_pnl 5)",
            "observed": {"rows": 8, "nulls": {"daily_pnl": 5}},
            "expected": {"max_null_fraction": 0.6},
            "failures": nulls_at("PF-3", "PF-4", "PF-5", "PF-7", "PF-8"),
            "failure_count": 5,
        },
        id="max-null-fraction-over",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: [daily_pnl],"
        " where: 'snapshot_date = :run_date', key: portfolio_id}",
        {
            "status": "FAIL",
            "message": "portfolio_snapshots has NULLs in 4 of 7 rows (daily_pnl 4)",
            "observed": {"rows": 7, "nulls": {"daily_pnl": 4}},
            "expected": {"max_nulls": 0},
            "failures": nulls_at("PF-3", "PF-5", "PF-7", "PF-8"),
            "failure_count": 4,
        },
        id="where-with-param",
    ),
    pytest.param(
        '{type: not_null, query: "select portfolio_id, daily_pnl from portfolio_snapshots'
        " where portfolio_id in ('PF-1', 'PF-3')\", columns: daily_pnl, key: portfolio_id}",
        {
            "status": "FAIL",
            "message": "query has NULLs in 1 of 2 rows (daily_pnl 1)",
            "observed": {"rows": 2, "nulls": {"daily_pnl": 1}},
            "expected": {"max_nulls": 0},
            "failures": nulls_at("PF-3"),
            "failure_count": 1,
        },
        id="query-relation",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: daily_pnl,"
        " where: \"snapshot_date > '2030-01-01'\"}",
        {
            "status": "PASS",
            "message": "portfolio_snapshots: no column over its NULL limit in 0 rows",
            "observed": {"rows": 0, "nulls": {"daily_pnl": 0}},
            "expected": {"max_nulls": 0},
            "failures": [],
            "failure_count": 0,
        },
        id="no-rows",
    ),
    pytest.param(
        "{type: not_null, table: portfolio_snapshots, columns: daily_pnl,"
        " where: \"snapshot_date > '2030-01-01'\", max_null_fraction: 0}",
        {
            "status": "PASS",
            "message": "portfolio_snapshots: no column over its NULL limit in 0 rows",
            "observed": {"rows": 0, "nulls": {"daily_pnl": 0}},
            "expected": {"max_null_fraction": 0.0},
            "failures": [],
            "failure_count": 0,
        },
        id="no-rows-with-fraction",
    ),
]


@pytest.mark.parametrize(("check", "expected"), CASES)
def test_not_null_judges_columns(
    snapshots: Database, run_yaml: RunYaml, check: str, expected: dict[str, Any]
) -> None:
    result = only_check(run_yaml(suite(snapshots, check)))
    assert {k: result[k] for k in expected} == expected
    assert result["error"] is None


def test_not_null_sample_is_capped_but_count_is_true_total(
    snapshots: Database, run_yaml: RunYaml
) -> None:
    result = only_check(
        run_yaml(
            suite(
                snapshots,
                "{type: not_null, table: portfolio_snapshots, columns: daily_pnl,"
                " key: portfolio_id}",
            ),
            options=RunOptions(sample_limit=3),
        )
    )
    # the lowest keys; on DuckDB, which keeps insertion order, the first bad rows as inserted
    # (no sort of every bad row), shown in key order
    first = ("PF-3", "PF-5", "PF-7") if snapshots.kind == "duckdb" else ("PF-3", "PF-4", "PF-5")
    assert (result["failures"], result["failure_count"]) == (nulls_at(*first), 5)
    assert result["message"] == "portfolio_snapshots has NULLs in 5 of 8 rows (daily_pnl 5)"


def test_not_null_without_samples_still_counts(snapshots: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(
            suite(snapshots, "{type: not_null, table: portfolio_snapshots, columns: daily_pnl}"),
            options=RunOptions(sample_limit=0),
        )
    )
    assert (result["status"], result["failures"], result["failure_count"]) == ("FAIL", [], 5)


def test_not_null_without_key_samples_empty_keys(snapshots: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(
            suite(snapshots, "{type: not_null, table: portfolio_snapshots, columns: daily_pnl}"),
            options=RunOptions(sample_limit=2),
        )
    )
    assert result["failures"] == [
        {"key": {}, "null_columns": ["daily_pnl"]},
        {"key": {}, "null_columns": ["daily_pnl"]},
    ]


def test_not_null_fraction_boundary_is_exact(anydb: Database, run_yaml: RunYaml) -> None:
    """29 of 100 is exactly 0.29, although 0.29 * 100 is 28.999… in floating point."""
    rows = ", ".join(f"({i}, {'null' if i <= 29 else i})" for i in range(1, 101))
    anydb.run(f"create table t (id integer, v integer); insert into t values {rows};")
    verdict = run_yaml(
        suite(anydb, "{type: not_null, table: t, columns: v, max_null_fraction: 0.29}")
        + "  - {type: not_null, table: t, columns: v, max_null_fraction: 0.28}\n"
    )
    assert [(c.status, c.failure_count) for c in verdict.checks] == [("PASS", 0), ("FAIL", 29)]


SPARK_NO_NOPE = (
    "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name"
    " `nope` cannot be resolved. Did you mean one of the following? [`daily_pnl`,"
    " `snapshot_date`, `portfolio_id`, `cumulative_pnl`]."
)


@pytest.mark.parametrize(
    ("check", "messages"),
    [
        (
            "{type: not_null, table: portfolio_snapshots, columns: [daily_pnl, nope]}",
            {
                "duckdb": 'Binder Error: Referenced column "nope" not found in FROM clause!',
                "sqlite": "no such column: nope",
                "postgresql": 'column "nope" does not exist',
                "spark": SPARK_NO_NOPE + " SQLSTATE: 42703; line 1 pos 82;",
            },
        ),
        (
            "{type: not_null, table: portfolio_snapshots, columns: daily_pnl, key: nope}",
            {
                "duckdb": 'Binder Error: Referenced column "nope" not found in FROM clause!',
                "sqlite": "no such column: nope",
                "postgresql": 'column "nope" does not exist',
                "spark": SPARK_NO_NOPE + " SQLSTATE: 42703; line 1 pos 7;",  # the sample's
            },
        ),
    ],
    ids=["missing-column", "missing-key-column"],
)
def test_not_null_missing_column_is_error(
    snapshots: Database, run_yaml: RunYaml, check: str, messages: dict[str, str]
) -> None:
    result = only_check(run_yaml(suite(snapshots, check)))
    assert (result["status"], result["message"], result["error"]["category"]) == (
        "ERROR",
        "Source 'w' refused the query: " + messages[snapshots.kind],
        "schema_mismatch",
    )


def test_not_null_where_with_or_keeps_its_meaning(anydb: Database, run_yaml: RunYaml) -> None:
    anydb.run(
        """
        create table t (id int, kind varchar(5), v int);
        insert into t values (1, 'a', null), (2, 'b', 5), (3, 'c', null);
        """
    )
    result = only_check(
        run_yaml(
            f"""
            suite: s
            sources: {{db: {{url: "{anydb.url}"}}}}
            checks:
              - {{type: not_null, table: t, where: "kind = 'a' or kind = 'b' -- not c", columns: [v], key: [id]}}
            """
        )
    )
    assert (result["observed"], result["failures"]) == (
        {"rows": 2, "nulls": {"v": 1}},
        [{"key": {"id": 1}, "null_columns": ["v"]}],
    )


@pytest.mark.parametrize(
    ("columns", "limits", "sample_limit", "failure_count", "statements"),
    [
        # one failing column: its NULL count from the scan
        ("[daily_pnl, cumulative_pnl]", "max_nulls: 2", 1, 5, 2),
        # every column fails: the scan's count of rows with a NULL in any
        ("[daily_pnl, cumulative_pnl]", "max_nulls: 0", 1, 6, 2),
        # some fail, not all, more than the sample: counted by a query of its own
        ("[daily_pnl, cumulative_pnl, portfolio_id]", "max_nulls: 0", 1, 6, 3),
        # some fail, not all, the sample holds them all: no count
        ("[daily_pnl, cumulative_pnl, portfolio_id]", "max_nulls: 0", 20, 6, 2),
    ],
    ids=["one-column", "all-columns", "some-columns-counted", "some-columns-in-sample"],
)
def test_not_null_failure_count_is_the_rows_with_a_null_in_a_failing_column(
    snapshots: Database,
    run_yaml: RunYaml,
    columns: str,
    limits: str,
    sample_limit: int,
    failure_count: int,
    statements: int,
) -> None:
    """PF-7, 5, 3, 4, 8 lack daily_pnl; PF-2 and PF-5 lack cumulative_pnl: 6 rows in all."""
    check = f"{{type: not_null, table: portfolio_snapshots, columns: {columns}, {limits}}}"
    verdict = run_yaml(suite(snapshots, check), options=RunOptions(sample_limit=sample_limit))
    (result,) = verdict.checks
    assert (result.status, result.failure_count) == ("FAIL", failure_count)
    assert len(result.failures) == min(sample_limit, failure_count)
    assert len(verdict.queries) == statements
    assert all("OVER" not in q.sql.upper() for q in verdict.queries)
