"""The same suites against a real PostgreSQL server: results, read-only sessions, error categories."""

from __future__ import annotations

import pytest

from runner import RunOptions
from tests.conftest import Database, RunYaml, only_check
from tests.test_seeds import SEED_001, SEED_001_DATA, SEED_003, SEED_004, _portfolios

pytestmark = pytest.mark.postgres


def test_postgres_seed_001_stuck_batch(pg: Database, run_yaml: RunYaml) -> None:
    pg.run(SEED_001_DATA.format(stuck_status="processing", stuck_success=0, summary=""))
    verdict = run_yaml(SEED_001.replace("URL", pg.url))
    batch, summary = verdict.checks
    assert [(f["id"], f["status"], f["outcome"]) for f in batch.failures] == [
        ("R-2", "processing", "all_succeeded")
    ]
    assert summary.status.value == "PASS"


def test_postgres_seed_003_green_run(pg: Database, run_yaml: RunYaml) -> None:
    pg.run("""
        create table ingestion_runs (run_id varchar(10), status varchar(10));
        create table processed_files (run_id varchar(10), file_path varchar(40),
                                      status varchar(10), error_category varchar(20));
        insert into ingestion_runs values ('I-1', 'SUCCESS'), ('I-2', 'SUCCESS');
        insert into processed_files values ('I-1', 'a', 'SUCCESS', null),
          ('I-2', 'b', 'SUCCESS', null), ('I-2', 'c', 'FAILED', 'timeout');
        """)
    verdict = run_yaml(SEED_003.replace("URL", pg.url))
    assert [c.status.value for c in verdict.checks] == ["FAIL", "PASS"]
    assert verdict.checks[0].failures[0]["id"] == "I-2"


def test_postgres_seed_004_zero_snapshots(pg: Database, run_yaml: RunYaml) -> None:
    _portfolios(pg, snapshots="", volatility=True)
    verdict = run_yaml(SEED_004.replace("URL", pg.url), {"run_date": "2025-11-06"})
    assert [c.status.value for c in verdict.checks] == ["FAIL", "FAIL", "PASS", "PASS"]
    assert verdict.checks[0].message == "portfolio_snapshots has 0 rows where portfolios has 58"
    assert verdict.checks[1].failure_count == 58


@pytest.mark.usefixtures("no_sqlguard")
def test_postgres_session_is_read_only(pg: Database, run_yaml: RunYaml) -> None:
    """As the owner, who could write: the read-only transaction alone refuses the write."""
    pg.run("create table t (a int); insert into t values (1); create sequence s;")
    verdict = run_yaml(f"""
        suite: w
        sources: {{db: {{url: "{pg.dsn}", allow_privileged_role: true}}}}
        checks:
          - {{type: sql, query: "select nextval('s') as n", equals: 1}}
          - {{type: row_count, table: t, equals: 1}}
        """)
    write, count = verdict.checks
    assert write.status.value == "ERROR"
    assert "read-only transaction" in write.message  # a side effect the SQL text hides
    assert count.status.value == "PASS"


@pytest.mark.parametrize(
    ("change", "category", "retryable"),
    [
        (
            lambda url: url.replace("postrun:", "postrun:wrong", 1).replace("@", "x@", 1),
            "auth",
            False,
        ),
        (lambda url: url.rsplit(":", 1)[0] + ":9/db", "connectivity", True),
    ],
    ids=["wrong-password", "closed-port"],
)
def test_postgres_connection_errors_are_categorised(
    pg: Database, run_yaml: RunYaml, change, category: str, retryable: bool
) -> None:
    url = change(pg.url)
    result = only_check(
        run_yaml(f"""
        suite: c
        sources: {{db: {{url: "{url}"}}}}
        checks: [{{type: row_count, table: t, min: 1}}]
        """)
    )
    assert (result["status"], result["error"]["category"], result["error"]["retryable"]) == (
        "ERROR",
        category,
        retryable,
    )
    password = url.split(":")[2].split("@")[0]
    assert password not in str(result)


def test_postgres_missing_table_is_schema_mismatch(pg: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(f"""
        suite: m
        sources: {{db: {{url: "{pg.url}"}}}}
        checks: [{{type: row_count, table: nope, min: 1}}]
        """)
    )
    assert (result["status"], result["error"]["category"]) == ("ERROR", "schema_mismatch")


@pytest.mark.parametrize(
    "attack",
    [
        # several statements in one query: refused, never run
        "{type: sql, query: 'commit; begin read write; delete from t; commit; select 1 as n', equals: 1}",
        # a session setting flipped by one check must not make the next check writable
        "{type: sql, query: 'set default_transaction_read_only = off', equals: 1}",
    ],
    ids=["stacked-statements", "session-default-flipped"],
)
@pytest.mark.usefixtures("no_sqlguard")
def test_postgres_read_only_cannot_be_talked_out_of(
    pg: Database, run_yaml: RunYaml, attack: str
) -> None:
    pg.run("create table t (a int); insert into t values (1), (2);")
    verdict = run_yaml(
        f"""
        suite: w
        sources: {{db: {{url: "{pg.dsn}", allow_privileged_role: true}}}}
        checks:
          - {attack}
          - {{type: sql, name: write, query: "delete from t where a = 1 returning a", equals: 1}}
          - {{type: row_count, name: intact, table: t, equals: 2}}
        """,
        options=RunOptions(jobs=1),
    )
    statuses = {c.name: c.status.value for c in verdict.checks}
    assert statuses["write"] == "ERROR"
    assert "read-only transaction" in verdict.checks[1].message
    assert statuses["intact"] == "PASS"
