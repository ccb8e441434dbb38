"""The ready suites in checks/: green on a clean demo batch, red with evidence on their incidents.

Each suite runs against the demo variants of its incidents (`postrun demo --fault …`): it must
fail exactly the checks its incident family breaks and name the injected ids or files in their
failures; with every fault injected at once it still reports only its own. Checks no demo fault
reaches are proven able to fail on a copy of the clean batch broken by hand.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runner import load_suite, run_suite
from runner.demo import CLEAN, ETL_BATCH_ID, FAULTS, DemoBatch, build_demo
from tests.conftest import check_verdict

CHECKS = Path(__file__).resolve().parent.parent / "checks"
SUITES = ("portfolio_nightly", "file_ingestion", "etl_results", "job_orchestrator")
URL_VARIABLE = {
    "portfolio_nightly": "PORTFOLIO_DB_URL",
    "file_ingestion": "INGESTION_DB_URL",
    "etl_results": "ETL_DB_URL",
    "job_orchestrator": "ORCHESTRATOR_DB_URL",
}

# (suite, fault) -> {failing check: how many failures it lists}; every pair left out must pass.
CAUGHT: dict[tuple[str, str], dict[str, int]] = {
    ("portfolio_nightly", "missing-snapshots"): {
        "one snapshot per active portfolio": 0,
        "every active portfolio has a run-date snapshot": 5,
        "equity updated only with a snapshot": 5,
    },
    ("portfolio_nightly", "null-pnl"): {"run-date snapshots have equity and P&L": 4},
    ("file_ingestion", "green-with-failures"): {"run status follows its files": 1},
    ("etl_results", "truncated-result"): {
        "result files are complete JSON": 1,
        "batch status and counters follow its operations": 1,
    },
    ("etl_results", "missing-result"): {"result files are complete JSON": 1},
    ("job_orchestrator", "completed-all-failed"): {
        "job status follows its item lists": 1,
        "failed items come with an error summary": 1,
    },
    ("job_orchestrator", "stuck-batch"): {
        "batch status and counters follow its files": 1,
        "no batch stuck in progress": 1,
    },
}


CAUGHT_BY_HISTORY = {"short-run": "checks/demo.yml, 'portfolio batch took its usual time'"}
"""Faults no fixed rule catches: an `anomaly` check against the batch's own past does (with
the history the demo records: tests/test_demo.py); the ready suites carry no history checks:
run through the API without a store those are ERROR / config."""


def test_every_fault_is_caught_by_a_ready_suite() -> None:
    assert {fault for _, fault in CAUGHT} == set(FAULTS) - set(CAUGHT_BY_HISTORY)
    assert set(CAUGHT_BY_HISTORY) <= set(FAULTS)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoBatch]:
    """Each demo variant, built once: the clean batch, one per fault, and all faults at once."""
    root = tmp_path_factory.mktemp("demos")
    built = {fault: build_demo(root / fault, (fault,)) for fault in (CLEAN, *FAULTS)}
    built[ALL] = build_demo(root / ALL, tuple(FAULTS))
    return built


ALL = "all-faults"


def run_ready(suite: str, batch: DemoBatch) -> dict[str, Any]:
    """Run a ready suite against a demo batch; the verdict as validated JSON."""
    params = {
        "portfolio_nightly": {"run_date": batch.params["run_date"]},
        "file_ingestion": {"run_date": batch.params["run_date"]},
        "etl_results": {"batch_id": ETL_BATCH_ID, "results_dir": str(batch.results_dir)},
        "job_orchestrator": {},
    }[suite]
    env = {URL_VARIABLE[suite]: f"duckdb:///{batch.database}"}
    return check_verdict(run_suite(load_suite(CHECKS / f"{suite}.yml", params, env=env)))


def failing(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in verdict["checks"] if c["status"] != "PASS"}


def assert_caught(verdict: dict[str, Any], expected: dict[str, int], injected: list[str]) -> None:
    """Exactly the expected checks FAIL, with these failure counts, naming every injected id or
    file, and each failure names one of them: no false alarms."""
    bad = failing(verdict)
    assert {name: c["failure_count"] for name, c in bad.items()} == expected
    assert all(c["status"] == "FAIL" for c in bad.values())
    assert verdict["exit_code"] == 1
    evidence = json.dumps([c["failures"] for c in bad.values()])
    assert [i for i in injected if i not in evidence] == []
    for check in bad.values():
        for failure in check["failures"]:
            assert any(i in json.dumps(failure) for i in injected), (check["name"], failure)


@pytest.mark.parametrize("suite", SUITES)
def test_ready_suite_passes_a_clean_batch(demos: dict[str, DemoBatch], suite: str) -> None:
    verdict = run_ready(suite, demos[CLEAN])
    assert failing(verdict) == {}
    assert (verdict["verdict"], verdict["exit_code"]) == ("PASS", 0)


@pytest.mark.parametrize(("suite", "fault"), sorted(CAUGHT))
def test_ready_suite_catches_its_incident(
    demos: dict[str, DemoBatch], suite: str, fault: str
) -> None:
    batch = demos[fault]
    assert_caught(run_ready(suite, batch), CAUGHT[suite, fault], batch.injected[fault])


@pytest.mark.parametrize("suite", SUITES)
def test_ready_suite_names_only_its_own_incidents(demos: dict[str, DemoBatch], suite: str) -> None:
    """With every fault injected at once, a suite reports its own incidents and nothing else."""
    batch = demos[ALL]
    own = [fault for (s, fault) in CAUGHT if s == suite]
    expected: dict[str, int] = {}
    for fault in own:
        for check, count in CAUGHT[suite, fault].items():
            expected[check] = expected.get(check, 0) + count
    injected = [i for fault in own for i in batch.injected[fault]]
    assert_caught(run_ready(suite, batch), expected, injected)


# --- checks no demo fault reaches: a clean batch broken by hand --------------------------


def sql(statement: str) -> Callable[[DemoBatch], None]:
    def breaks(batch: DemoBatch) -> None:
        with duckdb.connect(str(batch.database)) as con:
            con.execute(statement)

    return breaks


def edit_batch_file(change: Callable[[dict[str, Any]], None]) -> Callable[[DemoBatch], None]:
    def breaks(batch: DemoBatch) -> None:
        path = batch.results_dir / f"batch_{ETL_BATCH_ID}.json"
        document = json.loads(path.read_text())
        change(document)
        path.write_text(json.dumps(document))

    return breaks


def _miscount(document: dict[str, Any]) -> None:
    document["result"] = {"successful": 4, "failed": 1}


def _drop_operation(document: dict[str, Any]) -> None:
    document["operations"] = document["operations"][:-1]
    document["result"] = {"successful": 4, "failed": 0}


def _remove_batch_file(batch: DemoBatch) -> None:
    (batch.results_dir / f"batch_{ETL_BATCH_ID}.json").unlink()


FIRST_FAILED_FILE = "(select min(file_path) from processed_files where status = 'FAILED')"
FIRST_WALLET_JOB = "(select min(job_id) from wallet_jobs)"

# (suite, how the batch is broken, {check: its status}, text its evidence must hold)
BROKEN: list[tuple[str, Callable[[DemoBatch], None], dict[str, str], str]] = [
    (
        "portfolio_nightly",
        sql("update market_prices set price_date = price_date - interval 5 day"),
        {"market prices reach the run date": "FAIL"},
        "2025-11-01",
    ),
    (
        "portfolio_nightly",
        sql(
            "update portfolios set equity_balance = equity_balance + 1 "
            "where portfolio_id = 'PF-0003'"
        ),
        {"snapshot equity matches the portfolio": "FAIL"},
        "PF-0003",
    ),
    (
        "portfolio_nightly",
        sql("delete from volatility_metrics where portfolio_id = 'PF-0003'"),
        {"volatility calculated for every active portfolio": "FAIL"},
        '"count": 57',
    ),
    (
        "portfolio_nightly",
        sql("delete from stress_test_results where calc_date = date '2025-11-06'"),
        {"stress tests calculated": "WARN"},
        '"count": 0',
    ),
    (
        "file_ingestion",
        sql(f"update processed_files set retryable = null where file_path = {FIRST_FAILED_FILE}"),
        {"failed files are categorised": "FAIL"},
        "s3a://lake-landing/",
    ),
    (
        "file_ingestion",
        sql(
            "update processed_files set error_category = 'java.lang.NullPointerException' "
            f"where file_path = {FIRST_FAILED_FILE}"
        ),
        {"error categories are known": "FAIL"},
        "java.lang.NullPointerException",
    ),
    (
        "file_ingestion",
        sql(
            "update processed_files set error_message = repeat('at org.apache.spark', 200) "
            f"where file_path = {FIRST_FAILED_FILE}"
        ),
        {"error messages are short": "WARN"},
        '"message_length": 3800',
    ),
    (
        "file_ingestion",
        sql(f"update processed_files set retry_count = null where file_path = {FIRST_FAILED_FILE}"),
        {"retry counts are recorded": "FAIL"},
        "s3a://lake-landing/",
    ),
    (
        "file_ingestion",
        sql(f"update processed_files set retry_count = 9 where file_path = {FIRST_FAILED_FILE}"),
        {"retry counts within budget": "FAIL"},
        '"retry_count": 9',
    ),
    (
        "etl_results",
        edit_batch_file(_miscount),
        {"batch status and counters follow its operations": "FAIL"},
        '"successful": {"parent": 4, "children": 5}',
    ),
    (
        "etl_results",
        edit_batch_file(_drop_operation),
        {"every manifest run is an operation of the batch": "FAIL"},
        "run_20260101_204646",
    ),
    (
        "etl_results",
        _remove_batch_file,
        {
            "batch job file is complete JSON": "FAIL",
            "every manifest run is an operation of the batch": "ERROR",
            "batch status and counters follow its operations": "ERROR",
        },
        f"batch_{ETL_BATCH_ID}.json",
    ),
    (
        "job_orchestrator",
        sql(
            "update wallet_jobs set total_wallets = total_wallets + 1 "
            f"where job_id = {FIRST_WALLET_JOB}"
        ),
        {"item lists add up to the job total": "FAIL"},
        '"total_wallets": ',
    ),
    (
        "job_orchestrator",
        sql("delete from run_summaries where run_id = (select min(run_id) from run_summaries)"),
        {"every completed batch has a run summary": "FAIL"},
        "1 of 5 keys",
    ),
    (
        "job_orchestrator",
        sql(
            "insert into processing_jobs values ('never-picked-up', null, 'queued', 0, 0, 0, "
            "timestamp '2025-11-06 07:00', timestamp '2025-11-06 07:00')"
        ),
        {"no batch stuck in progress": "FAIL"},
        '"id": "never-picked-up"',
    ),
]


@pytest.mark.parametrize(
    ("suite", "breaks", "statuses", "evidence"),
    BROKEN,
    ids=[f"{suite}-{next(iter(checks))}" for suite, _, checks, _ in BROKEN],
)
def test_ready_suite_check_fails_when_broken_by_hand(
    demos: dict[str, DemoBatch],
    tmp_path: Path,
    suite: str,
    breaks: Callable[[DemoBatch], None],
    statuses: dict[str, str],
    evidence: str,
) -> None:
    batch = copy_batch(demos[CLEAN], tmp_path / "broken")
    breaks(batch)
    verdict = run_ready(suite, batch)
    bad = failing(verdict)
    assert {name: c["status"] for name, c in bad.items()} == statuses
    first = bad[next(iter(statuses))]
    assert evidence in json.dumps([first["failures"], first["observed"], first["message"]])


def test_stuck_batch_check_leaves_a_settling_batch_alone(
    demos: dict[str, DemoBatch], tmp_path: Path
) -> None:
    batch = copy_batch(demos[CLEAN], tmp_path / "settling")
    sql(
        "insert into processing_jobs values ('just-queued', null, 'queued', 0, 0, 0, "
        "(now() at time zone 'UTC')::timestamp, (now() at time zone 'UTC')::timestamp)"
    )(batch)
    verdict = run_ready("job_orchestrator", batch)
    assert failing(verdict) == {}
    stuck = next(c for c in verdict["checks"] if c["name"] == "no batch stuck in progress")
    assert stuck["observed"] == {"parents": 0, "inconsistent": 0, "settling": 1}


def copy_batch(batch: DemoBatch, root: Path) -> DemoBatch:
    """A copy of a built demo folder (database and result files) to break without sharing."""
    shutil.copytree(batch.root, root, ignore=shutil.ignore_patterns("reports"))
    return DemoBatch(
        root,
        root / batch.database.name,
        root / batch.results_dir.name,
        {**batch.params, "db": str(root / batch.database.name)},
        batch.faults,
        batch.injected,
    )
