"""status_consistency: parent statuses judged against their children's outcome (seeds 001 to 003)."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb_engine
import pytest
from sqlalchemy.dialects import postgresql

from runner.checks import registry
from runner.checks.status_consistency import (
    StatusConsistencySpec,
    inconsistent_parents,
    parent_counts,
)
from runner.context import Context
from runner.errors import SuiteError
from runner.suite import load_suite
from tests.conftest import Database, RunYaml, only_check

BATCHES = """
    create table processing_jobs (
        batch_id varchar(20), run_id varchar(20), status varchar(30),
        total_files integer, files_success integer, files_failed integer, updated_at timestamp
    );
    create table file_extractions (file_id integer, run_id varchar(20), status varchar(20));
"""

EXPECT_BATCHES = """
    success: [SUCCESS]
    failure: [FAILED]
    expect:
      all_succeeded: [completed]
      some_failed: [completed_with_errors]
      all_failed: [failed]
      unfinished: [processing, queued]
"""


def body(*parts: str) -> str:
    """A check's YAML body from indented fragments."""
    return "".join(textwrap.dedent(part).strip("\n") + "\n" for part in parts)


def suite(db: Database, check: str, *, params: str = "") -> str:
    """A one-check suite on ``db``; ``check`` is the check's YAML body (without `type`)."""
    body = textwrap.indent(check.strip(), "    ")
    return (
        f'suite: t\n{params}sources:\n  w: {{url: "{db.url}"}}\n'
        f"checks:\n  - type: status_consistency\n{body}\n"
    )


def files(run_id: str, *statuses: str | None) -> str:
    """INSERT rows for file_extractions, one per status, numbered from 1."""
    values = ", ".join(
        f"({i}, '{run_id}', {'NULL' if s is None else repr(s)})" for i, s in enumerate(statuses, 1)
    )
    return f"insert into file_extractions values {values};"


def result(verdict: Any) -> dict[str, Any]:
    """The single check result without its volatile duration."""
    data = only_check(verdict)
    del data["duration_s"]
    return data


BATCH_CHECK = body(
    """
    parent: {table: processing_jobs, id: batch_id, status: status}
    children: {table: file_extractions, parent_id: run_id, status: status}
    """,
    EXPECT_BATCHES,
)

EXPECTED_MAP = {
    "all_succeeded": ["completed"],
    "some_failed": ["completed_with_errors"],
    "all_failed": ["failed"],
    "unfinished": ["processing", "queued"],
}


def test_status_consistency_flags_batch_stuck_processing_after_all_files_succeeded(
    anydb: Database, run_yaml: RunYaml
) -> None:
    # seed 001: all 7 files SUCCESS, batch_status still 'processing'
    anydb.run(
        BATCHES
        + """
        insert into processing_jobs (batch_id, status) values
            ('B-001', 'processing'), ('B-002', 'completed');
        """
        + files("B-001", *["SUCCESS"] * 7)
        + files("B-002", *["SUCCESS"] * 3)
    )
    assert result(run_yaml(suite(anydb, BATCH_CHECK))) == {
        "name": "status_consistency:processing_jobs",
        "type": "status_consistency",
        "source": "w",
        "severity": "error",
        "status": "FAIL",
        "message": "1 of 2 parents in processing_jobs contradicts its children: B-001 is "
        "'processing' though all 7 children succeeded (all_succeeded allows completed)",
        "observed": {"parents": 2, "inconsistent": 1},
        "expected": {"expect": EXPECTED_MAP},
        "failures": [
            {
                "id": "B-001",
                "status": "processing",
                "outcome": "all_succeeded",
                "allowed": ["completed"],
                "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
                "counters": {},
            }
        ],
        "failure_count": 1,
        "notes": [],
        "error": None,
        "queries": ["q1", "q2"],  # parent counts, then the inconsistent parents
    }


def test_status_consistency_passes_when_every_batch_matches_its_files(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(
        BATCHES
        + """
        insert into processing_jobs (batch_id, status) values
            ('B-001', 'completed'), ('B-002', 'completed_with_errors'), ('B-003', 'failed'),
            ('B-004', 'queued');
        """
        + files("B-001", *["SUCCESS"] * 7)
        + files("B-002", "SUCCESS", "FAILED")
        + files("B-003", "FAILED", "FAILED")
        + files("B-004", "SUCCESS", "PENDING")
    )
    got = result(run_yaml(suite(anydb, BATCH_CHECK)))
    assert (got["status"], got["failure_count"], got["failures"]) == ("PASS", 0, [])
    assert got["message"] == "all 4 parents in processing_jobs agree with their children"
    assert got["observed"] == {"parents": 4, "inconsistent": 0}


SEED_001_JOBS = (
    BATCHES
    + """
    insert into processing_jobs (batch_id, run_id, status, files_success) values
        ('B-1', 'R-1', 'completed', 7),
        ('B-2', NULL, 'completed', 2);
    """
    + files("R-1", *["SUCCESS"] * 7)
    + files("B-2", "SUCCESS", "SUCCESS")
)


def test_status_consistency_joins_on_the_effective_run_id(
    anydb: Database, run_yaml: RunYaml
) -> None:
    # seed 001: files carry coalesce(run_id, batch_id); joining on batch_id loses B-1's files
    anydb.run(SEED_001_JOBS)
    check = body(
        """
        parent:
          query: select coalesce(run_id, batch_id) as batch_key, status, files_success
                 from processing_jobs
          id: batch_key
          status: status
        children: {table: file_extractions, parent_id: run_id, status: status}
        counters: {succeeded: files_success}
        """,
        EXPECT_BATCHES + "      no_children: [queued]\n",
    )
    got = result(run_yaml(suite(anydb, check)))
    assert (got["name"], got["status"], got["failure_count"]) == (
        "status_consistency:query",
        "PASS",
        0,
    )
    naive = check.replace(
        "query: select coalesce(run_id, batch_id) as batch_key, status, files_success\n"
        "         from processing_jobs\n  id: batch_key",
        "table: processing_jobs\n  id: batch_id",
    )
    got = result(run_yaml(suite(anydb, naive)))
    assert got["failures"] == [
        {
            "id": "B-1",
            "status": "completed",
            "outcome": "no_children",
            "allowed": ["queued"],
            "children": {"total": 0, "succeeded": 0, "failed": 0, "unfinished": 0},
            "counters": {"files_success": {"parent": 7, "children": 0}},
        }
    ]
    assert got["message"] == (
        "1 of 2 parents in processing_jobs contradicts its children: B-1 is 'completed' "
        "though it has no children (no_children allows queued), "
        "files_success is 7 but 0 children succeeded"
    )


def test_status_consistency_flags_counters_that_differ_from_child_counts(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(
        BATCHES
        + """
        insert into processing_jobs values
            ('B-001', NULL, 'completed', 7, 0, 0, NULL),
            ('B-002', NULL, 'completed', 7, 7, NULL, NULL),
            ('B-003', NULL, 'completed', 7, 7, 0, NULL);
        """
        + files("B-001", *["SUCCESS"] * 7)
        + files("B-002", *["SUCCESS"] * 7)
        + files("B-003", *["SUCCESS"] * 7)
    )
    check = BATCH_CHECK + (
        "counters: {total: total_files, succeeded: files_success, failed: files_failed}\n"
    )
    got = result(run_yaml(suite(anydb, check)))
    assert got["failures"] == [
        {
            "id": "B-001",
            "status": "completed",
            "outcome": "all_succeeded",
            "allowed": ["completed"],
            "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
            "counters": {"files_success": {"parent": 0, "children": 7}},
        },
        {
            "id": "B-002",
            "status": "completed",
            "outcome": "all_succeeded",
            "allowed": ["completed"],
            "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
            "counters": {"files_failed": {"parent": None, "children": 0}},
        },
    ]
    assert got["message"] == (
        "2 of 3 parents in processing_jobs contradict their children: "
        "B-001 ('completed', all 7 children succeeded): files_success is 0 but 7 children "
        "succeeded; B-002 ('completed', all 7 children succeeded): files_failed is NULL but 0 "
        "children failed"
    )
    assert got["expected"] == {
        "expect": EXPECTED_MAP,
        "counters": {
            "total": "total_files",
            "succeeded": "files_success",
            "failed": "files_failed",
        },
    }


WALLETS = """
    create table batch_jobs (job_id varchar(10), status varchar(20));
    create table wallet_results (job_id varchar(10), wallet varchar(10), status varchar(20));
    insert into batch_jobs values ('J-1', '{status}');
    insert into wallet_results values
        ('J-1', 'w1', 'failed'), ('J-1', 'w2', 'timeout'), ('J-1', 'w3', 'failed');
"""
WALLET_CHECK = body(
    """
    parent: {table: batch_jobs, id: job_id, status: status}
    children: {table: wallet_results, parent_id: job_id, status: status}
    success: [succeeded]
    failure: [failed, timeout]
    expect: {all_succeeded: [Completed], some_failed: [Completed], all_failed: [Failed]}
    """
)


@pytest.mark.parametrize(
    ("status", "verdict", "count"), [("Completed", "FAIL", 1), ("Failed", "PASS", 0)]
)
def test_status_consistency_job_completed_though_every_wallet_failed(
    anydb: Database, run_yaml: RunYaml, status: str, verdict: str, count: int
) -> None:
    # seed 002: the job was always 'Completed', even when every wallet failed or timed out
    anydb.run(WALLETS.format(status=status))
    got = result(run_yaml(suite(anydb, WALLET_CHECK)))
    assert (got["status"], got["failure_count"]) == (verdict, count)
    if count:
        assert got["message"] == (
            "the only parent in batch_jobs contradicts its children: J-1 is 'Completed' though "
            "all 3 children failed (all_failed allows Failed)"
        )
        assert got["failures"][0]["children"] == {
            "total": 3,
            "succeeded": 0,
            "failed": 3,
            "unfinished": 0,
        }


RUNS = """
    create table ingestion_runs (run_id varchar(10), status varchar(20), run_date date);
    create table processed_files (run_id varchar(10), path varchar(40), status varchar(20));
    insert into ingestion_runs values
        ('R-1', '{status}', '2025-11-06'), ('R-0', 'SUCCESS', '2025-11-05');
    insert into processed_files values
        ('R-1', 'a.json', 'SUCCESS'), ('R-1', 'b.json', 'FAILED'), ('R-1', 'c.json', 'SUCCESS'),
        ('R-1', 'd.json', 'FAILED'), ('R-1', 'e.json', 'SUCCESS'), ('R-0', 'f.json', 'FAILED');
"""
RUN_CHECK = body(
    """
    parent: {table: ingestion_runs, where: "run_date = :run_date", id: run_id, status: status}
    children: {table: processed_files, parent_id: run_id, status: status}
    success: [SUCCESS]
    failure: [FAILED]
    expect: {all_succeeded: [SUCCESS], some_failed: [PARTIAL], all_failed: [FAILED]}
    """
)
RUN_PARAMS = "params:\n  run_date: {type: date, required: true}\n"


@pytest.mark.parametrize(
    ("status", "verdict", "count"), [("SUCCESS", "FAIL", 1), ("PARTIAL", "PASS", 0)]
)
def test_status_consistency_run_green_though_files_failed(
    anydb: Database, run_yaml: RunYaml, status: str, verdict: str, count: int
) -> None:
    # seed 003: the run was SUCCESS while files FAILED; some_failed must be PARTIAL.
    # R-0 (SUCCESS with only failed files) is outside the :run_date window and not judged.
    anydb.run(RUNS.format(status=status))
    verdict_ = run_yaml(suite(anydb, RUN_CHECK, params=RUN_PARAMS), {"run_date": "2025-11-06"})
    got = result(verdict_)
    assert (got["status"], got["failure_count"], got["observed"]["parents"]) == (verdict, count, 1)
    if count:
        assert got["failures"] == [
            {
                "id": "R-1",
                "status": "SUCCESS",
                "outcome": "some_failed",
                "allowed": ["PARTIAL"],
                "children": {"total": 5, "succeeded": 3, "failed": 2, "unfinished": 0},
                "counters": {},
            }
        ]
        assert got["message"] == (
            "the only parent in ingestion_runs contradicts its children: R-1 is 'SUCCESS' "
            "though 2 of 5 children failed (some_failed allows PARTIAL)"
        )


def test_status_consistency_judges_parents_without_children(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(
        BATCHES
        + """
        insert into processing_jobs (batch_id, status) values
            ('B-001', 'queued'), ('B-002', 'completed');
        """
    )
    check = BATCH_CHECK + "  no_children: [queued]\n"
    got = result(run_yaml(suite(anydb, check)))
    assert got["failures"] == [
        {
            "id": "B-002",
            "status": "completed",
            "outcome": "no_children",
            "allowed": ["queued"],
            "children": {"total": 0, "succeeded": 0, "failed": 0, "unfinished": 0},
            "counters": {},
        }
    ]


def test_status_consistency_unfinished_children_and_null_statuses(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(
        BATCHES
        + """
        insert into processing_jobs (batch_id, status) values
            ('B-001', 'processing'), ('B-002', 'completed'), ('B-003', 'completed'),
            ('B-004', NULL), ('B-005', NULL);
        """
        + files("B-001", "SUCCESS", "RUNNING")
        + files("B-002", "SUCCESS", "FAILED", "RUNNING")
        + files("B-003", "SUCCESS", None)
        + files("B-004", "SUCCESS")
    )
    # B-005 has no children and no_children is not in `expect` (any status), but NULL never is
    got = result(run_yaml(suite(anydb, BATCH_CHECK)))
    assert [(f["id"], f["status"], f["outcome"], f["children"]) for f in got["failures"]] == [
        ("B-002", "completed", "unfinished", _children(3, 1, 1, 1)),
        ("B-003", "completed", "unfinished", _children(2, 1, 0, 1)),
        ("B-004", None, "all_succeeded", _children(1, 1, 0, 0)),
        ("B-005", None, "no_children", _children(0, 0, 0, 0)),
    ]
    assert got["failures"][3]["allowed"] is None
    assert got["message"] == (
        "4 of 5 parents in processing_jobs contradict their children: B-002 is 'completed' "
        "though 1 of 3 children are unfinished (unfinished allows processing, queued); "
        "B-003 is 'completed' though 1 of 2 children are unfinished (unfinished allows "
        "processing, queued); B-004 is NULL though its only child succeeded (all_succeeded "
        "allows completed); and 1 more"
    )


def test_status_consistency_without_failure_statuses_counts_the_rest_unfinished(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(
        BATCHES
        + "insert into processing_jobs (batch_id, status) values ('B-1', 'completed');"
        + files("B-1", "SUCCESS", "FAILED")
    )
    check = BATCH_CHECK.replace("failure: [FAILED]\n", "").replace(
        "unfinished: [processing, queued]", "unfinished: []"
    )
    got = result(run_yaml(suite(anydb, check)))
    assert [(f["outcome"], f["allowed"], f["children"]) for f in got["failures"]] == [
        ("unfinished", [], _children(2, 1, 0, 1))
    ]
    assert got["message"].endswith(
        "B-1 is 'completed' though 1 of 2 children are unfinished (unfinished allows no status)"
    )


def _children(total: int, succeeded: int, failed: int, unfinished: int) -> dict[str, int]:
    return {"total": total, "succeeded": succeeded, "failed": failed, "unfinished": unfinished}


def test_status_consistency_settle_leaves_out_recently_updated_parents(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(
        BATCHES
        + """
        insert into processing_jobs (batch_id, status, updated_at) values
            ('B-old', 'processing', '2000-01-01 00:00:00'),
            ('B-new', 'processing', '2999-01-01 00:00:00'),
            ('B-unknown', 'processing', NULL);
        """
        + files("B-old", "SUCCESS")
        + files("B-new", "SUCCESS")
        + files("B-unknown", "SUCCESS")
    )
    check = BATCH_CHECK.replace("status: status}", "status: status, updated_at: updated_at}", 1)
    got = result(run_yaml(suite(anydb, check + "settle: 15m\n")))
    assert [f["id"] for f in got["failures"]] == ["B-old", "B-unknown"]
    assert got["observed"] == {"parents": 2, "inconsistent": 2, "settling": 1}
    assert got["message"].startswith(
        "2 of 2 parents in processing_jobs contradict their children "
        "(1 updated within 15m left out as settling): B-old is 'processing'"
    )


def test_status_consistency_missing_column_is_an_error(anydb: Database, run_yaml: RunYaml) -> None:
    anydb.run(BATCHES)
    got = result(run_yaml(suite(anydb, BATCH_CHECK.replace("id: batch_id", "id: batch_key"))))
    assert got["status"] == "ERROR"
    assert got["error"]["category"] == "schema_mismatch"
    assert got["error"]["retryable"] is False


EXPECT_BLOCK = (
    "expect:\n  all_succeeded: [completed]\n  some_failed: [completed_with_errors]\n"
    "  all_failed: [failed]\n  unfinished: [processing, queued]"
)

# a check that fails validation has no derived name yet: the suite labels it by position
INVALID = "check #1 (status_consistency)"
NAMED = "check 'status_consistency:processing_jobs'"


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (
            ("unfinished: [processing, queued]", "partial: [PARTIAL]"),
            14,
            f"{INVALID}: unknown key 'partial'",
        ),
        (
            ("success: [SUCCESS]", "success: []"),
            5,
            f"{INVALID}: 'success' must list at least one child status",
        ),
        (
            ("unfinished: [processing, queued]", "unfinished: [x]\nsettle: 10m"),
            5,
            f"{INVALID}: 'settle' needs 'parent.updated_at' to tell when a parent last changed",
        ),
        (
            (EXPECT_BLOCK, "expect: {}"),
            5,
            f"{INVALID}: 'expect' must map at least one outcome (all_succeeded, some_failed, "
            "all_failed, unfinished, no_children)",
        ),
        (
            ("failure: [FAILED]", "failure: [FAILED, SUCCESS]"),
            5,
            f"{INVALID}: 'SUCCESS' is listed in both 'success' and 'failure'",
        ),
        (
            ("status: status}", "status: status, source: w}"),
            6,
            f"{INVALID}: parent: parent and children are read from the check's 'source'; "
            "drop it here",
        ),
        (
            ("children: {table", "children: {where: ':nope', table"),
            7,
            f"{NAMED}: children.where uses :nope, which is not a declared param",
        ),
    ],
)
def test_status_consistency_config_mistakes(
    tmp_path: Path, change: tuple[str, str], line: int, reason: str
) -> None:
    db = Database("duckdb", tmp_path / "x.duckdb")
    path = tmp_path / "suite.yml"
    path.write_text(suite(db, BATCH_CHECK.replace(*change, 1)))
    with pytest.raises(SuiteError) as exc:
        load_suite(path, env={})
    assert str(exc.value) == f"{path}:{line}: {reason}"


SQL_SPEC = StatusConsistencySpec.model_validate(
    {
        "type": "status_consistency",
        "name": "batches",
        "parent": {
            "table": "processing_jobs",
            "where": "kind = 'ocr' or kind = :kind",
            "id": "batch_id",
            "status": "status",
            "updated_at": "updated_at",
        },
        "children": {
            "query": "select run_id, status from file_extractions",
            "parent_id": "run_id",
            "status": "status",
        },
        "success": ["SUCCESS"],
        "failure": ["FAILED"],
        "expect": {"all_succeeded": ["completed"], "unfinished": ["processing"]},
        "counters": {"succeeded": "files_success"},
        "settle": "10m",
    }
)

DUCKDB_SQL = """\
WITH postrun_parents AS 
(SELECT batch_id AS id, status AS status, updated_at AS updated_at, files_success AS counter_succeeded 
FROM processing_jobs 
WHERE (kind = 'ocr' or kind = %(kind)s
)), 
postrun_children AS 
(SELECT run_id AS parent_id, count(*) AS total, sum(CASE WHEN (status IN (__[POSTCOMPILE_postrun_success])) THEN 1 ELSE 0 END) AS succeeded, sum(CASE WHEN (status IN (__[POSTCOMPILE_postrun_failure])) THEN 1 ELSE 0 END) AS failed, sum(CASE WHEN (status IN (__[POSTCOMPILE_postrun_success]) OR status IN (__[POSTCOMPILE_postrun_failure])) THEN 0 ELSE 1 END) AS unfinished 
FROM (select run_id, status from file_extractions) AS q GROUP BY run_id), 
postrun_judged AS 
(SELECT postrun_parents.id AS id, postrun_parents.status AS status, CASE WHEN (postrun_children.parent_id IS NULL) THEN 'no_children' WHEN (postrun_children.unfinished > 0) THEN 'unfinished' WHEN (postrun_children.failed = 0) THEN 'all_succeeded' WHEN (postrun_children.succeeded = 0) THEN 'all_failed' ELSE 'some_failed' END AS outcome, coalesce(postrun_children.total, 0) AS total, coalesce(postrun_children.succeeded, 0) AS succeeded, coalesce(postrun_children.failed, 0) AS failed, coalesce(postrun_children.unfinished, 0) AS unfinished, postrun_parents.counter_succeeded AS counter_succeeded 
FROM postrun_parents LEFT OUTER JOIN postrun_children ON postrun_parents.id = postrun_children.parent_id 
WHERE postrun_parents.updated_at IS NULL OR postrun_parents.updated_at <= %(postrun_settle_cutoff)s), 
postrun_flagged AS 
(SELECT postrun_judged.id AS id, postrun_judged.status AS status, postrun_judged.outcome AS outcome, postrun_judged.total AS total, postrun_judged.succeeded AS succeeded, postrun_judged.failed AS failed, postrun_judged.unfinished AS unfinished, postrun_judged.counter_succeeded AS counter_succeeded, CASE WHEN (postrun_judged.status IS NULL) THEN 1 WHEN (postrun_judged.outcome = 'all_succeeded') THEN CASE WHEN (postrun_judged.status IN (__[POSTCOMPILE_postrun_all_succeeded])) THEN 0 ELSE 1 END WHEN (postrun_judged.outcome = 'unfinished') THEN CASE WHEN (postrun_judged.status IN (__[POSTCOMPILE_postrun_unfinished])) THEN 0 ELSE 1 END ELSE 0 END AS bad_status, CASE WHEN (postrun_judged.counter_succeeded = postrun_judged.succeeded) THEN 0 ELSE 1 END AS succeeded_differs 
FROM postrun_judged)
 SELECT postrun_flagged.id, postrun_flagged.status, postrun_flagged.outcome, postrun_flagged.total, postrun_flagged.succeeded, postrun_flagged.failed, postrun_flagged.unfinished, postrun_flagged.counter_succeeded, postrun_flagged.bad_status, postrun_flagged.succeeded_differs, count(*) OVER () AS postrun_total 
FROM postrun_flagged 
WHERE postrun_flagged.bad_status = 1 OR postrun_flagged.succeeded_differs = 1 ORDER BY postrun_flagged.id 
 LIMIT %(param_1)s"""  # noqa: W291


def test_status_consistency_sql_duckdb() -> None:
    ctx = Context(SQL_SPEC, registry()[SQL_SPEC.type], sources={}, params={"kind": "pdf"})
    stmt = ctx.violations_statement(
        inconsistent_parents(SQL_SPEC, ctx, datetime(2025, 11, 6, 12, 0))
    )
    assert str(stmt.compile(dialect=duckdb_engine.Dialect())) == DUCKDB_SQL


def test_status_consistency_sql_postgresql() -> None:
    ctx = Context(SQL_SPEC, registry()[SQL_SPEC.type], sources={}, params={"kind": "pdf"})
    stmt = ctx.violations_statement(
        inconsistent_parents(SQL_SPEC, ctx, datetime(2025, 11, 6, 12, 0))
    )
    # the same statement; PostgreSQL casts the settle cutoff and the LIMIT parameter
    expected = DUCKDB_SQL.replace(
        "%(postrun_settle_cutoff)s", "%(postrun_settle_cutoff)s::TIMESTAMP WITHOUT TIME ZONE"
    ).replace("LIMIT %(param_1)s", "LIMIT %(param_1)s::INTEGER")
    assert str(stmt.compile(dialect=postgresql.dialect())) == expected
    counts = parent_counts(SQL_SPEC, ctx, datetime(2025, 11, 6, 12, 0))
    assert str(counts.compile(dialect=postgresql.dialect())) == (
        "SELECT count(*) AS parents, sum(CASE WHEN (updated_at > "
        "%(postrun_settle_cutoff)s::TIMESTAMP WITHOUT TIME ZONE) THEN 1 ELSE 0 END) AS settling "
        "\nFROM processing_jobs \nWHERE (kind = 'ocr' or kind = %(kind)s\n)"
    )


def test_status_consistency_tables_named_like_its_own_steps(
    anydb: Database, run_yaml: RunYaml
) -> None:
    """Tables called parents, children, judged or flagged are read as such (the statement's own
    steps are named postrun_…; SQLite took a table `parents` for a circular reference)."""
    anydb.run(
        """
        create table parents (id varchar(10), status varchar(20));
        insert into parents values ('B1', 'completed');
        create table children (parent_id varchar(10), status varchar(20));
        insert into children values ('B1', 'FAILED');
        create table judged (x integer);
        create table flagged (x integer);
        """
    )
    verdict = run_yaml(
        f"""\
        suite: named
        sources:
          w: {{url: "{anydb.url}"}}
        checks:
          - type: status_consistency
            parent: {{table: parents, id: id, status: status}}
            children: {{table: children, parent_id: parent_id, status: status}}
            success: [SUCCESS]
            failure: [FAILED]
            expect: {{all_failed: [failed]}}
        """
    )
    result = only_check(verdict)
    assert (result["status"], result["failure_count"]) == ("FAIL", 1), result["message"]
