"""The demo builder: a clean batch is consistent, each fault breaks exactly what it records."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runner.demo import (
    DEFAULT_FAULTS,
    ETL_BATCH_ID,
    FAULTS,
    MARKER,
    DemoBatch,
    build_demo,
    find_demo_suite,
)

RUN_DATE = date(2025, 11, 6)


@contextmanager
def warehouse(batch: DemoBatch) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(batch.database), read_only=True)
    try:
        yield con
    finally:
        con.close()


def rows(batch: DemoBatch, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with warehouse(batch) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> DemoBatch:
    return build_demo(tmp_path_factory.mktemp("clean") / "demo", ("none",))


# --- what each fault family looks like in the data --------------------------------------------


def unreadable_results(batch: DemoBatch) -> list[str]:
    """Result files that do not parse, then batches whose status contradicts their operations."""
    files, batches = [], []
    for path in sorted(batch.results_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            files.append(path.name)
            continue
        operations = {op["status"] for op in document.get("operations", [])}
        if operations == {"completed"} and document["status"] != "completed":
            batches.append(document["batch_id"])
    return files + batches


def missing_results(batch: DemoBatch) -> list[str]:
    expected = rows(
        batch, "select run_id || '.json' from batch_runs where batch_id = ?", [ETL_BATCH_ID]
    )
    return sorted(name for (name,) in expected if not (batch.results_dir / name).exists())


def outcome(statuses: list[str], success: set[str], failure: set[str]) -> str:
    if not statuses:
        return "no_children"
    if any(s not in success | failure for s in statuses):
        return "unfinished"
    failed = sum(s in failure for s in statuses)
    return (
        "all_succeeded"
        if failed == 0
        else "all_failed"
        if failed == len(statuses)
        else "some_failed"
    )


def children(batch: DemoBatch, table: str, key: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for parent, status in rows(batch, f"select {key}, status from {table}"):
        found[parent].append(status)
    return found


def inconsistent_processing_jobs(batch: DemoBatch) -> list[str]:
    files = children(batch, "file_extractions", "run_id")
    summaries = {r for (r,) in rows(batch, "select run_id from run_summaries")}
    allowed = {
        "all_succeeded": "completed",
        "some_failed": "completed_with_errors",
        "all_failed": "failed",
    }
    bad = []
    for batch_id, run_id, status, total, ok, failed in rows(
        batch,
        "select batch_id, run_id, status, total_files, files_success, files_failed "
        "from processing_jobs",
    ):
        statuses = files[run_id or batch_id]
        counts = Counter(statuses)
        consistent = (
            allowed.get(outcome(statuses, {"SUCCESS"}, {"FAILED"})) == status
            and (total, ok, failed) == (len(statuses), counts["SUCCESS"], counts["FAILED"])
            and ((run_id or batch_id) in summaries) == status.startswith("completed")
        )
        if not consistent:
            bad.append(batch_id)
    return sorted(bad)


def inconsistent_ingestion_runs(batch: DemoBatch) -> list[str]:
    files = children(batch, "processed_files", "run_id")
    allowed = {"all_succeeded": "SUCCESS", "some_failed": "PARTIAL", "all_failed": "FAILED"}
    return sorted(
        run_id
        for run_id, status in rows(batch, "select run_id, status from ingestion_runs")
        if allowed.get(outcome(files[run_id], {"SUCCESS"}, {"FAILED"})) != status
    )


def inconsistent_wallet_jobs(batch: DemoBatch) -> list[str]:
    results = children(batch, "wallet_results", "job_id")
    allowed = {"all_succeeded": "Completed", "some_failed": "Completed", "all_failed": "Failed"}
    bad = []
    for job_id, status, total, good, failed, summary in rows(
        batch,
        "select job_id, status, total_wallets, successful_wallets, failed_wallets, "
        "error_summary from wallet_jobs",
    ):
        statuses = results[job_id]
        derived = outcome(statuses, {"ok"}, {"failed", "timeout"})
        consistent = (
            allowed.get(derived) == status
            and total == len(statuses) == len(json.loads(good)) + len(json.loads(failed))
            and len(json.loads(failed)) == sum(s != "ok" for s in statuses)
            and (summary is None) == (derived == "all_succeeded")
        )
        if not consistent:
            bad.append(job_id)
    return sorted(bad)


def portfolios_without_snapshot(batch: DemoBatch) -> list[str]:
    sql = (
        "select portfolio_id from portfolios where is_active and portfolio_id not in "
        "(select portfolio_id from portfolio_snapshots where snapshot_date = ?) order by 1"
    )
    return [p for (p,) in rows(batch, sql, [RUN_DATE])]


def snapshots_without_pnl(batch: DemoBatch) -> list[str]:
    sql = (
        "select portfolio_id from portfolio_snapshots where snapshot_date = ? "
        "and (daily_pnl is null or cumulative_pnl is null) order by 1"
    )
    return [p for (p,) in rows(batch, sql, [RUN_DATE])]


def short_batch_runs(batch: DemoBatch) -> list[str]:
    sql = (
        "select run_date from portfolio_batch_runs "
        "where finished_at < started_at + interval 6 hour order by 1"
    )
    return [day.isoformat() for (day,) in rows(batch, sql)]


DETECTORS = {
    "truncated-result": unreadable_results,
    "missing-result": missing_results,
    "stuck-batch": inconsistent_processing_jobs,
    "green-with-failures": inconsistent_ingestion_runs,
    "completed-all-failed": inconsistent_wallet_jobs,
    "missing-snapshots": portfolios_without_snapshot,
    "null-pnl": snapshots_without_pnl,
    "short-run": short_batch_runs,
}


def broken(batch: DemoBatch) -> dict[str, list[str]]:
    return {fault: found for fault, detect in DETECTORS.items() if (found := detect(batch))}


# --- the fault catalogue ------------------------------------------------------------------


def test_fault_catalogue() -> None:
    assert list(FAULTS) == list(DETECTORS)
    assert all(isinstance(text, str) and text and "\n" not in text for text in FAULTS.values())
    assert DEFAULT_FAULTS == ("truncated-result", "null-pnl")
    assert len(DEFAULT_FAULTS) == 2 and set(DEFAULT_FAULTS) <= set(FAULTS)


def test_find_demo_suite_is_the_checked_in_suite() -> None:
    suite = find_demo_suite()
    assert suite.is_file()
    assert suite == Path(__file__).resolve().parent.parent / "checks" / "demo.yml"


# --- a clean batch ------------------------------------------------------------------------


def test_clean_batch_is_consistent(clean: DemoBatch) -> None:
    assert clean.faults == ()
    assert clean.injected == {}
    assert broken(clean) == {}


def test_clean_batch_layout_and_params(clean: DemoBatch) -> None:
    assert clean.database == clean.root / "portfolio.duckdb"
    assert clean.results_dir == clean.root / "results"
    assert (clean.root / MARKER).is_file()
    assert clean.params == {
        "run_date": "2025-11-06",
        "db": str(clean.database),
        "results_dir": str(clean.results_dir),
        "etl_batch_id": ETL_BATCH_ID,
        "history_db": str(clean.root / "reports" / "history.sqlite"),
    }


def test_clean_portfolio_batch_ran_six_to_eight_hours(tmp_path: Path) -> None:
    durations = set()
    for night in range(6):
        batch = build_demo(tmp_path / "demo", ("none",), night=night, keep_reports=night > 0)
        sql = "select run_date, epoch(finished_at) - epoch(started_at) from portfolio_batch_runs"
        [(day, seconds)] = rows(batch, sql)
        assert day == RUN_DATE and 6 * 3600 <= seconds <= 8 * 3600
        durations.add(seconds)
    assert len(durations) > 1  # each night draws its own


def test_clean_portfolios_have_run_date_snapshots_with_pnl(clean: DemoBatch) -> None:
    assert rows(clean, "select count(*), count(*) filter (is_active) from portfolios") == [(60, 58)]
    per_day = rows(
        clean,
        "select snapshot_date, count(*), count(daily_pnl), count(cumulative_pnl) "
        "from portfolio_snapshots group by 1 order by 1",
    )
    assert [day for day, *_ in per_day] == [date(2025, 11, d) for d in (3, 4, 5, 6)]
    assert [tuple(counts) for _, *counts in per_day] == [(58, 58, 58)] * 4
    inactive = rows(
        clean,
        "select count(*) from portfolio_snapshots s join portfolios p using (portfolio_id) "
        "where not p.is_active",
    )
    assert inactive == [(0,)]


def test_clean_equity_matches_run_date_snapshot(clean: DemoBatch) -> None:
    mismatched = rows(
        clean,
        "select p.portfolio_id from portfolios p join portfolio_snapshots s using (portfolio_id) "
        "where s.snapshot_date = ? and s.equity_balance <> p.equity_balance",
        [RUN_DATE],
    )
    assert mismatched == []


def test_clean_market_data_and_analytics(clean: DemoBatch) -> None:
    prices = rows(clean, "select price_date, count(distinct symbol) from market_prices group by 1")
    assert sorted(prices) == [(date(2025, 11, d), 58) for d in (4, 5, 6)]
    for table in ("volatility_metrics", "stress_test_results"):
        sql = f"select count(distinct portfolio_id) from {table} where calc_date = ?"
        assert rows(clean, sql, [RUN_DATE]) == [(58,)]


def test_clean_processing_jobs_use_effective_run_id(clean: DemoBatch) -> None:
    jobs = rows(clean, "select batch_id, run_id, status from processing_jobs")
    assert len(jobs) == 6
    assert sum(run_id is None for _, run_id, _ in jobs) == 2
    assert sum(run_id is not None and run_id != b for b, run_id, _ in jobs) == 1
    assert {s for *_, s in jobs} == {"completed", "completed_with_errors", "failed"}
    orphans = rows(
        clean,
        "select count(*) from file_extractions where run_id not in "
        "(select coalesce(run_id, batch_id) from processing_jobs)",
    )
    assert orphans == [(0,)]
    summaries = rows(clean, "select count(*) from run_summaries")
    assert summaries == [(sum(s.startswith("completed") for *_, s in jobs),)]


def test_clean_ingestion_runs_and_wallet_jobs_cover_every_outcome(clean: DemoBatch) -> None:
    runs = rows(clean, "select status, count(*) from ingestion_runs group by 1")
    assert dict(runs) == {"SUCCESS": 2, "PARTIAL": 1, "FAILED": 1}
    uncategorised = rows(
        clean,
        "select count(*) from processed_files where status = 'FAILED' "
        "and (error_category is null or retryable is null)",
    )
    assert uncategorised == [(0,)]
    jobs = rows(clean, "select status, count(*) from wallet_jobs group by 1")
    assert dict(jobs) == {"Completed": 4, "Failed": 1}


def test_clean_result_files(clean: DemoBatch) -> None:
    runs = rows(clean, "select run_id, pipeline from batch_runs where batch_id = ?", [ETL_BATCH_ID])
    assert sorted(p for _, p in runs) == [
        "DIM_CUSTOMER",
        "DIM_DATE",
        "DIM_PRODUCT",
        "DIM_STORE",
        "FACT_SALES",
    ]
    for run_id, pipeline in runs:
        text = (clean.results_dir / f"{run_id}.json").read_text(encoding="utf-8")
        result = json.loads(text)
        assert text.count("\n") >= 200
        assert (result["run_id"], result["pipeline"]) == (run_id, pipeline)
        assert result["status"] in {"completed", "failed"}
        assert result["steps"]
        assert all(isinstance(s["name"], str) and "status" in s for s in result["steps"])


def test_clean_batch_file_lists_five_completed_operations(clean: DemoBatch) -> None:
    batch_file = json.loads(
        (clean.results_dir / f"batch_{ETL_BATCH_ID}.json").read_text(encoding="utf-8")
    )
    assert batch_file["batch_id"] == ETL_BATCH_ID
    assert batch_file["status"] == "completed"
    assert [op["status"] for op in batch_file["operations"]] == ["completed"] * 5
    assert batch_file["result"] == {"successful": 5, "failed": 0}
    run_files = sorted(p.name for p in clean.results_dir.glob("run_*.json"))
    assert run_files == sorted(f"{op['run_id']}.json" for op in batch_file["operations"])


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_breaks_exactly_what_it_records(tmp_path: Path, fault: str) -> None:
    batch = build_demo(tmp_path / "demo", (fault,))
    assert batch.faults == (fault,)
    assert set(batch.injected) == {fault}
    assert batch.injected[fault]
    assert broken(batch) == batch.injected


def test_all_faults_together(tmp_path: Path) -> None:
    batch = build_demo(tmp_path / "demo", list(reversed(FAULTS)))
    assert batch.faults == tuple(FAULTS)
    assert broken(batch) == batch.injected
    assert len(batch.injected["missing-snapshots"]) == 5
    assert len(batch.injected["null-pnl"]) == 4
    assert not set(batch.injected["missing-snapshots"]) & set(batch.injected["null-pnl"])


def test_incident_ids_match_the_seeds(tmp_path: Path) -> None:
    batch = build_demo(tmp_path / "demo", list(FAULTS))
    assert batch.injected["truncated-result"] == ["run_20260101_204618.json", ETL_BATCH_ID]
    assert batch.injected["missing-result"] == ["run_20260101_204646.json"]  # FACT_SALES
    [stuck] = batch.injected["stuck-batch"]
    sql = "select run_id, status, files_success from processing_jobs where batch_id = ?"
    assert rows(batch, sql, [stuck]) == [(None, "processing", 0)]
    sql = "select count(*) from file_extractions where run_id = ? and status = 'SUCCESS'"
    assert rows(batch, sql, [stuck]) == [(7,)]
    assert rows(batch, "select count(*) from run_summaries where run_id = ?", [stuck]) == [(0,)]
    [green] = batch.injected["green-with-failures"]
    sql = "select count(*) from processed_files where run_id = ? and status = 'FAILED'"
    assert rows(batch, sql, [green]) == [(3,)]
    [job] = batch.injected["completed-all-failed"]
    sql = "select status, error_summary, successful_wallets from wallet_jobs where job_id = ?"
    assert rows(batch, sql, [job]) == [("Completed", None, "[]")]


def test_truncated_file_is_cut_mid_line(tmp_path: Path, clean: DemoBatch) -> None:
    batch = build_demo(tmp_path / "demo", ("truncated-result",))
    name, batch_id = batch.injected["truncated-result"]
    assert batch_id == ETL_BATCH_ID
    text = (batch.results_dir / name).read_text(encoding="utf-8")
    original = (clean.results_dir / name).read_text(encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert original.startswith(text)
    assert 0.5 < len(text) / len(original) < 0.7
    last_line = text.rsplit("\n", 1)[1]
    assert not text.endswith("\n") and last_line.strip()
    assert not original[len(text) :].startswith("\n")


def test_missing_result_leaves_the_others(tmp_path: Path) -> None:
    batch = build_demo(tmp_path / "demo", ("missing-result",))
    assert not (batch.results_dir / batch.injected["missing-result"][0]).exists()
    assert len(list(batch.results_dir.glob("run_*.json"))) == 4


# --- the demo folder ----------------------------------------------------------------------


def test_rebuild_over_an_existing_demo_folder(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    first = build_demo(root, DEFAULT_FAULTS)
    (root / "results" / "stale.json").write_text("{}", encoding="utf-8")
    again = build_demo(root, ("none",))
    assert again.root == first.root
    assert not (root / "results" / "stale.json").exists()
    assert broken(again) == {}
    third = build_demo(root, DEFAULT_FAULTS)
    assert third.injected == first.injected
    assert broken(third) == first.injected


def test_build_is_deterministic(tmp_path: Path, clean: DemoBatch) -> None:
    batch = build_demo(tmp_path / "demo", ("none",))
    for path in sorted(clean.results_dir.iterdir()):
        assert (batch.results_dir / path.name).read_bytes() == path.read_bytes()
    sql = "select * from processing_jobs order by batch_id"
    assert rows(batch, sql) == rows(clean, sql)


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    batch = build_demo(tmp_path, ("none",))
    assert batch.root == tmp_path
    assert batch.database.is_file()


def test_foreign_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ValueError, match="is not empty and not a postrun demo folder"):
        build_demo(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_unknown_fault_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="truncated") as caught:
        build_demo(tmp_path / "demo", ("truncated",))
    assert all(name in str(caught.value) for name in FAULTS)
    assert not (tmp_path / "demo").exists()


def test_none_cannot_be_combined(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none"):
        build_demo(tmp_path / "demo", ("none", "null-pnl"))
