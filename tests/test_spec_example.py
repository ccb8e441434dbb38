"""The suite of SPEC §2, verbatim, runs unchanged against data shaped like it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite, run_suite
from tests.conftest import Database, check_verdict

SPEC_SUITE = """\
suite: nightly-portfolio            # required, [a-z0-9_-]+
description: Post-batch health of the nightly portfolio run
params:                             # values from --param k=v, else env POSTRUN_PARAM_<K>, else default
  run_date: {type: date, required: true}
  results_dir: {type: path, default: ./results}
  batch_id: {type: string}
sources:
  warehouse:
    url: ${WAREHOUSE_URL:-duckdb:///../demo/portfolio.duckdb}  # any SQLAlchemy URL; ${ENV} and ${ENV:-default}
  results:
    files: "{results_dir}/run_*.json"                         # glob(s); {param} substitution in paths and URLs only
    tables:                                                   # optional: file contents as SQL tables (DuckDB)
      batch_jobs: "{results_dir}/batch_*.json"
checks:
  - type: json_integrity
    name: result files are complete JSON
    source: results
    expected: {query: "select run_id || '.json' from batch_runs where batch_id = :batch_id", source: warehouse}
    schema: ../expectations/run_result.schema.json
  - type: row_count
    name: one snapshot per active portfolio
    source: warehouse
    table: portfolio_snapshots
    where: snapshot_date = :run_date
    equals: {table: portfolios, where: is_active}
  - type: not_null
    source: warehouse
    table: portfolio_snapshots
    columns: [daily_pnl, cumulative_pnl]
    where: snapshot_date = :run_date
    key: [portfolio_id]             # shown in failing-row samples
  - type: status_consistency
    source: warehouse
    parent: {table: processing_jobs, id: batch_id, status: status}
    children: {table: file_extractions, parent_id: run_id, status: status}
    success: [SUCCESS]
    failure: [FAILED]
    expect:
      all_succeeded: [completed]
      some_failed: [completed_with_errors]
      all_failed: [failed]
      unfinished: [processing, queued]
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """checks/nightly.yml, demo/portfolio.duckdb, expectations/, checks/results/ as SPEC lays out."""
    (tmp_path / "checks" / "results").mkdir(parents=True)
    (tmp_path / "demo").mkdir()
    (tmp_path / "checks" / "nightly.yml").write_text(SPEC_SUITE)
    shutil.copytree(Path(__file__).parent.parent / "expectations", tmp_path / "expectations")
    Database("duckdb", tmp_path / "demo" / "portfolio.duckdb").run(
        """
        create table batch_runs (batch_id varchar, run_id varchar);
        insert into batch_runs values ('B7', 'run_20251106_010000'), ('B7', 'run_20251106_020000');
        create table portfolios (portfolio_id varchar, is_active boolean);
        insert into portfolios values ('P1', true), ('P2', true), ('P3', false);
        create table portfolio_snapshots (portfolio_id varchar, snapshot_date date,
                                          daily_pnl double, cumulative_pnl double);
        insert into portfolio_snapshots values ('P1', '2025-11-06', 1, 10), ('P2', '2025-11-06', 2, 20);
        create table processing_jobs (batch_id varchar, status varchar);
        insert into processing_jobs values ('B7', 'completed');
        create table file_extractions (run_id varchar, status varchar);
        insert into file_extractions values ('B7', 'SUCCESS'), ('B7', 'SUCCESS');
        """
    )
    for run_id in ("run_20251106_010000", "run_20251106_020000"):
        document = {
            "run_id": run_id,
            "pipeline": "P",
            "status": "completed",
            "steps": [{"name": "load", "status": "completed"}],
        }
        (tmp_path / "checks" / "results" / f"{run_id}.json").write_text(json.dumps(document))
    (tmp_path / "checks" / "results" / "batch_B7.json").write_text('{"batch_id": "B7"}')
    return tmp_path


def run(tree: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(cwd)
    suite = load_suite(
        tree / "checks" / "nightly.yml", {"run_date": "2025-11-06", "batch_id": "B7"}, env={}
    )
    return check_verdict(run_suite(suite))


def test_spec_example_passes_from_any_working_directory(
    tree: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    for cwd in (tree, tree / "checks", elsewhere):
        verdict = run(tree, cwd, monkeypatch)
        assert [(c["name"], c["status"]) for c in verdict["checks"]] == [
            ("result files are complete JSON", "PASS"),
            ("one snapshot per active portfolio", "PASS"),
            ("not_null:portfolio_snapshots", "PASS"),
            ("status_consistency:processing_jobs", "PASS"),
        ], cwd


def test_spec_example_catches_a_stuck_batch_and_a_missing_file(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tree / "checks" / "results" / "run_20251106_020000.json").unlink()
    Database("duckdb", tree / "demo" / "portfolio.duckdb").run(
        "update processing_jobs set status = 'processing';"
    )
    verdict = run(tree, tree, monkeypatch)
    assert [c["status"] for c in verdict["checks"]] == ["FAIL", "PASS", "PASS", "FAIL"]
    files, _, _, batches = verdict["checks"]
    assert files["failures"][0]["path"].endswith("checks/results/run_20251106_020000.json")
    assert batches["failures"][0]["id"] == "B7"
