"""One test per incident in seeds/: rebuild its data shape, assert postrun names exactly what broke,
and that the clean variant of the same batch passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner import Verdict
from tests.conftest import Database, RunYaml


def results(verdict: Verdict) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    return {c.name: (c.status.value, c.failures) for c in verdict.checks}


# --- 000: a truncated result file flipped a good batch to "failed" ------------------------------

RUNS = [
    "run_20260101_204611",
    "run_20260101_204618",
    "run_20260101_204636",
    "run_20260101_204641",
    "run_20260101_204646",
]
BATCH_ID = "42fb1529-08ec-43f1-94be-5ebf94fa3db4"


def _write_etl_batch(folder: Path, *, broken: bool) -> None:
    folder.mkdir()
    for run_id in RUNS:
        rows = [
            {"date_key": 20250101 + i, "label": f"day {i} of the fiscal calendar"}
            for i in range(100)
        ]
        document = {
            "run_id": run_id,
            "pipeline": "DIM_DATE",
            "batch_id": BATCH_ID,
            "status": "completed",
            "steps": [{"sample_data": rows}],
        }
        text = json.dumps(document, indent=2)
        if broken and run_id == "run_20260101_204618":
            lines = text.splitlines(keepends=True)
            text = "".join(lines[:314]) + lines[314][:22]  # cut at line 315 column 23
        (folder / f"{run_id}.json").write_text(text)
    operations = [{"run_id": r, "status": "completed"} for r in RUNS]
    status = "failed" if broken else "completed"
    batch = {"batch_id": BATCH_ID, "status": status, "operations": operations}
    (folder / f"batch_{BATCH_ID}.json").write_text(json.dumps(batch))


SEED_000 = """\
    suite: etl
    sources:
      results:
        files: results/run_*.json
        tables: {batch_jobs: "results/batch_*.json"}
    checks:
      - type: json_integrity
        name: result files
        expected: [run_20260101_204611.json, run_20260101_204618.json, run_20260101_204636.json,
                   run_20260101_204641.json, run_20260101_204646.json]
      - type: status_consistency
        name: batch status
        parent: {query: "select cast(batch_id as varchar) as batch_id, status from batch_jobs", id: batch_id, status: status}
        children:
          query: >-
            select cast(b.batch_id as varchar) as batch_id, op.status
            from batch_jobs b cross join unnest(b.operations) as u(op)
          parent_id: batch_id
          status: status
        success: [completed]
        failure: [failed]
        expect: {all_succeeded: [completed], some_failed: [completed_with_errors], all_failed: [failed]}
    """


@pytest.mark.parametrize("broken", [True, False])
def test_seed_000_truncated_result_file(tmp_path: Path, run_yaml: RunYaml, broken: bool) -> None:
    _write_etl_batch(tmp_path / "results", broken=broken)
    verdict = run_yaml(SEED_000)
    if not broken:
        assert verdict.status.value == "PASS", verdict.checks
        return
    files, batch = verdict.checks
    assert files.status.value == "FAIL"
    assert files.failures == [
        {
            "path": str(tmp_path / "results" / "run_20260101_204618.json"),
            "reason": "truncated",
            "message": files.failures[0]["message"],
            "line": 315,
            "column": 23,
            "offset": files.failures[0]["offset"],
        }
    ]
    assert files.failures[0]["message"].startswith("truncated at line 315 column 23")
    assert batch.status.value == "FAIL"
    assert [(f["id"], f["status"], f["outcome"]) for f in batch.failures] == [
        (BATCH_ID, "failed", "all_succeeded")
    ]
    # the truncated batch-job table source skips nothing: the batch file itself is intact
    assert batch.notes == []


# --- 001: batch stuck in "processing" after every file succeeded --------------------------------

SEED_001_DATA = """
    create table processing_jobs (batch_id varchar, run_id varchar, status varchar,
                                  total_files int, files_success int, files_failed int);
    create table file_extractions (run_id varchar, file_path varchar, status varchar);
    create table run_summaries (run_id varchar, total_files int);
    insert into processing_jobs values
      ('B-1', null, 'completed', 2, 2, 0),
      ('B-2', 'R-2', '{stuck_status}', 7, {stuck_success}, 0),
      ('B-3', null, 'completed_with_errors', 2, 1, 1);
    insert into file_extractions values
      ('B-1', 'a.pdf', 'SUCCESS'), ('B-1', 'b.pdf', 'SUCCESS'),
      ('B-3', 'c.pdf', 'SUCCESS'), ('B-3', 'd.pdf', 'FAILED');
    insert into file_extractions values ('R-2', 'f1.pdf', 'SUCCESS'), ('R-2', 'f2.pdf', 'SUCCESS'),
      ('R-2', 'f3.pdf', 'SUCCESS'), ('R-2', 'f4.pdf', 'SUCCESS'), ('R-2', 'f5.pdf', 'SUCCESS'),
      ('R-2', 'f6.pdf', 'SUCCESS'), ('R-2', 'f7.pdf', 'SUCCESS');
    insert into run_summaries values ('B-1', 2), ('B-3', 2){summary};
    """

SEED_001 = """\
    suite: ingestion
    sources:
      db: {url: "URL"}
    checks:
      - type: status_consistency
        name: batch status
        parent:
          query: >-
            select coalesce(run_id, batch_id) as effective_run_id, status,
                   total_files, files_success, files_failed
            from processing_jobs
          id: effective_run_id
          status: status
        children: {table: file_extractions, parent_id: run_id, status: status}
        success: [SUCCESS]
        failure: [FAILED]
        expect:
          all_succeeded: [completed]
          some_failed: [completed_with_errors]
          all_failed: [failed]
          unfinished: [processing, queued]
        counters: {total: total_files, succeeded: files_success, failed: files_failed}
      - type: reference
        name: completed batches have a summary
        each:
          query: >-
            select coalesce(run_id, batch_id) as effective_run_id from processing_jobs
            where status like 'completed%'
          key: effective_run_id
        has: {table: run_summaries, key: run_id}
    """


@pytest.mark.parametrize("stuck", [True, False])
def test_seed_001_batch_stuck_processing(db: Database, run_yaml: RunYaml, stuck: bool) -> None:
    db.run(
        SEED_001_DATA.format(
            stuck_status="processing" if stuck else "completed",
            stuck_success=0 if stuck else 7,
            summary="" if stuck else ", ('R-2', 7)",
        )
    )
    verdict = run_yaml(SEED_001.replace("URL", db.url))
    if not stuck:
        assert verdict.status.value == "PASS", verdict.checks
        return
    batch, summary = verdict.checks
    assert batch.failures == [
        {
            "id": "R-2",
            "status": "processing",
            "outcome": "all_succeeded",
            "allowed": ["completed"],
            "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
            "counters": {"files_success": {"parent": 0, "children": 7}},
        }
    ]
    # the stuck batch is not "completed", so the summary check has nothing to say about it
    assert summary.status.value == "PASS"


def test_seed_001_completed_batch_without_summary(db: Database, run_yaml: RunYaml) -> None:
    db.run(SEED_001_DATA.format(stuck_status="completed", stuck_success=7, summary=""))
    verdict = run_yaml(SEED_001.replace("URL", db.url))
    assert results(verdict)["completed batches have a summary"] == (
        "FAIL",
        [{"key": {"effective_run_id": "R-2"}}],
    )


# --- 002: job "Completed" although every wallet failed, no error summary ------------------------

SEED_002 = """\
    suite: wallets
    sources:
      db: {url: "URL"}
    checks:
      - type: status_consistency
        name: job status follows wallets
        parent: {table: batch_jobs, id: job_id, status: status}
        children:
          query: >-
            select job_id, 'ok' as outcome from (
              select job_id, unnest(from_json(successful_wallets, '["VARCHAR"]')) from batch_jobs)
            union all
            select job_id, 'failed' from (
              select job_id, unnest(from_json(failed_wallets, '["VARCHAR"]')) from batch_jobs)
          parent_id: job_id
          status: outcome
        success: [ok]
        failure: [failed]
        expect: {all_succeeded: [Completed], some_failed: [Completed], all_failed: [Failed]}
      - type: not_null
        name: failures are summarised
        table: batch_jobs
        where: failed_wallets <> '[]'
        columns: [error_summary]
        key: [job_id]
    """


@pytest.mark.parametrize("all_failed_status", ["Completed", "Failed"])
def test_seed_002_completed_when_all_wallets_failed(
    duck: Database, run_yaml: RunYaml, all_failed_status: str
) -> None:
    summary = "NULL" if all_failed_status == "Completed" else "'All 3 wallets failed'"
    duck.run(f"""
        create table batch_jobs (job_id varchar, status varchar, successful_wallets varchar,
                                 failed_wallets varchar, error_summary varchar);
        insert into batch_jobs values
          ('J-1', 'Completed', '["w1","w2"]', '[]', null),
          ('J-2', 'Completed', '["w3"]', '["w4"]', '1 of 2 wallets failed'),
          ('J-3', '{all_failed_status}', '[]', '["w5","w6","w7"]', {summary});
        """)
    verdict = run_yaml(SEED_002.replace("URL", duck.url))
    if all_failed_status == "Failed":
        assert verdict.status.value == "PASS", verdict.checks
        return
    assert results(verdict) == {
        "job status follows wallets": (
            "FAIL",
            [
                {
                    "id": "J-3",
                    "status": "Completed",
                    "outcome": "all_failed",
                    "allowed": ["Failed"],
                    "children": {"total": 3, "succeeded": 0, "failed": 3, "unfinished": 0},
                    "counters": {},
                }
            ],
        ),
        "failures are summarised": (
            "FAIL",
            [{"key": {"job_id": "J-3"}, "null_columns": ["error_summary"]}],
        ),
    }


# --- 003: run green (SUCCESS) while files failed; no PARTIAL; failures uncategorised -----------

SEED_003 = """\
    suite: files
    sources:
      db: {url: "URL"}
    checks:
      - type: status_consistency
        name: run status follows files
        parent: {table: ingestion_runs, id: run_id, status: status}
        children: {table: processed_files, parent_id: run_id, status: status}
        success: [SUCCESS]
        failure: [FAILED]
        expect: {all_succeeded: [SUCCESS], some_failed: [PARTIAL], all_failed: [FAILED], no_children: [SUCCESS]}
      - type: not_null
        name: failed files are categorised
        table: processed_files
        where: status = 'FAILED'
        columns: [error_category]
        key: [run_id, file_path]
    """


@pytest.mark.parametrize("green", [True, False])
def test_seed_003_green_run_with_failed_files(db: Database, run_yaml: RunYaml, green: bool) -> None:
    db.run(f"""
        create table ingestion_runs (run_id varchar(10), status varchar(10));
        create table processed_files (run_id varchar(10), file_path varchar(40), status varchar(10),
                                      error_category varchar(20));
        insert into ingestion_runs values ('I-1', 'SUCCESS'), ('I-2', '{"SUCCESS" if green else "PARTIAL"}'),
                                          ('I-3', 'SUCCESS');
        insert into processed_files values
          ('I-1', 's3://in/a.json', 'SUCCESS', null),
          ('I-2', 's3://in/b.json', 'SUCCESS', null),
          ('I-2', 's3://in/c.json', 'FAILED', {"null" if green else "'malformed_json'"}),
          ('I-2', 's3://in/d.json', 'FAILED', 'schema_mismatch');
        """)
    verdict = run_yaml(SEED_003.replace("URL", db.url))
    if not green:
        assert verdict.status.value == "PASS", verdict.checks
        return
    assert results(verdict) == {
        "run status follows files": (
            "FAIL",
            [
                {
                    "id": "I-2",
                    "status": "SUCCESS",
                    "outcome": "some_failed",
                    "allowed": ["PARTIAL"],
                    "children": {"total": 3, "succeeded": 1, "failed": 2, "unfinished": 0},
                    "counters": {},
                }
            ],
        ),
        "failed files are categorised": (
            "FAIL",
            [
                {
                    "key": {"run_id": "I-2", "file_path": "s3://in/c.json"},
                    "null_columns": ["error_category"],
                }
            ],
        ),
    }


# --- 004: zero snapshots and null P&L after a "successful" batch --------------------------------

SEED_004 = """\
    suite: portfolio-nightly
    params:
      run_date: {type: date, required: true}
    sources:
      db: {url: "URL"}
    checks:
      - type: row_count
        name: one snapshot per active portfolio
        table: portfolio_snapshots
        where: snapshot_date = :run_date
        equals: {table: portfolios, where: is_active}
      - type: reference
        name: every active portfolio has a snapshot
        each: {table: portfolios, where: is_active, key: portfolio_id}
        has: {table: portfolio_snapshots, where: "snapshot_date = :run_date", key: portfolio_id}
      - type: not_null
        name: P&L is filled
        table: portfolio_snapshots
        where: snapshot_date = :run_date
        columns: [daily_pnl, cumulative_pnl]
        key: [portfolio_id]
      - type: row_count
        name: volatility computed
        table: volatility_metrics
        where: calc_date = :run_date
        min: 1
    """


def _portfolios(db: Database, *, snapshots: str, volatility: bool) -> None:
    ids = ", ".join(f"('PF-{i:04d}', {str(i <= 58).lower()})" for i in range(1, 61))
    db.run(f"""
        create table portfolios (portfolio_id varchar(10), is_active boolean);
        insert into portfolios values {ids};
        create table portfolio_snapshots (portfolio_id varchar(10), snapshot_date date,
                                          daily_pnl decimal(18,2), cumulative_pnl decimal(18,2));
        create table volatility_metrics (portfolio_id varchar(10), calc_date date, vol_30d float);
        {snapshots}
        {"insert into volatility_metrics values ('PF-0001', '2025-11-06', 0.2);" if volatility else ""}
        """)


def test_seed_004_zero_snapshots(db: Database, run_yaml: RunYaml) -> None:
    _portfolios(db, snapshots="", volatility=False)
    verdict = run_yaml(SEED_004.replace("URL", db.url), {"run_date": "2025-11-06"})
    by_name = {c.name: c for c in verdict.checks}
    count = by_name["one snapshot per active portfolio"]
    assert (count.status.value, count.message) == (
        "FAIL",
        "portfolio_snapshots has 0 rows where portfolios has 58",
    )
    missing = by_name["every active portfolio has a snapshot"]
    assert missing.failure_count == 58
    assert [f["key"] for f in missing.failures][:3] == [
        {"portfolio_id": "PF-0001"},
        {"portfolio_id": "PF-0002"},
        {"portfolio_id": "PF-0003"},
    ]
    assert len(missing.failures) == 20  # bounded sample
    assert by_name["volatility computed"].status.value == "FAIL"
    assert verdict.exit_code == 1


@pytest.mark.parametrize("null_pnl", [True, False])
def test_seed_004_null_pnl(db: Database, run_yaml: RunYaml, null_pnl: bool) -> None:
    values = ", ".join(
        f"('PF-{i:04d}', '2025-11-06', {'null' if null_pnl and i in (14, 37) else i}, {i * 10})"
        for i in range(1, 59)
    )
    _portfolios(db, snapshots=f"insert into portfolio_snapshots values {values};", volatility=True)
    verdict = run_yaml(SEED_004.replace("URL", db.url), {"run_date": "2025-11-06"})
    if not null_pnl:
        assert verdict.status.value == "PASS", verdict.checks
        return
    assert results(verdict)["P&L is filled"] == (
        "FAIL",
        [
            {"key": {"portfolio_id": "PF-0014"}, "null_columns": ["daily_pnl"]},
            {"key": {"portfolio_id": "PF-0037"}, "null_columns": ["daily_pnl"]},
        ],
    )
    assert verdict.exit_code == 1
