"""sql: a query whose rows are violations, or whose single value meets min / max / equals."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from runner import RunOptions
from tests.conftest import Database, RunYaml, only_check


@pytest.fixture
def jobs(anydb: Database) -> Database:
    anydb.run(
        """
        create table jobs (job_id integer, batch_id varchar(10), status varchar(20), files integer);
        insert into jobs values
            (3, 'B1', 'completed', 4),
            (1, 'B1', 'completed', 0),
            (2, 'B2', 'processing', 5),
            (4, 'B2', 'completed', 0),
            (5, 'B3', 'failed', 2);
        """
    )
    return anydb


def suite(db: Database, check: str) -> str:
    return textwrap.dedent(
        f"""\
        suite: jobs
        params:
          batch: {{type: string, default: B2}}
          statuses: {{type: list, default: "completed,failed"}}
        sources:
          w: {{url: "{db.url}"}}
        checks:
          - {check}
        """
    )


EMPTY = "select job_id from jobs where files < 0"
EMPTY_FILES = "select job_id, files from jobs where status = 'completed' and files = 0"

CASES = [
    pytest.param(
        f'{{type: sql, query: "{EMPTY}"}}',
        {
            "status": "PASS",
            "message": "query returned no violating rows",
            "observed": {"rows": 0},
            "expected": {"rows": 0},
            "failures": [],
            "failure_count": 0,
        },
        id="no-rows-pass",
    ),
    pytest.param(
        f'{{type: sql, query: "{EMPTY_FILES} order by job_id"}}',
        {
            "status": "FAIL",
            "message": "query returned 2 violating rows; first: job_id=1, files=0",
            "observed": {"rows": 2},
            "expected": {"rows": 0},
            "failures": [{"job_id": 1, "files": 0}, {"job_id": 4, "files": 0}],
            "failure_count": 2,
        },
        id="violating-rows-fail",
    ),
    pytest.param(
        "{type: sql, query: 'select job_id, status from jobs where batch_id = :batch"
        " order by job_id'}",
        {
            "status": "FAIL",
            "message": "query returned 2 violating rows; first: job_id=2, status=processing",
            "observed": {"rows": 2},
            "expected": {"rows": 0},
            "failures": [
                {"job_id": 2, "status": "processing"},
                {"job_id": 4, "status": "completed"},
            ],
            "failure_count": 2,
        },
        id="query-with-param",
    ),
    pytest.param(
        "{type: sql, query: 'select job_id from jobs where status not in :statuses'}",
        {
            "status": "FAIL",
            "message": "query returned 1 violating row; first: job_id=2",
            "observed": {"rows": 1},
            "expected": {"rows": 0},
            "failures": [{"job_id": 2}],
            "failure_count": 1,
        },
        id="list-param",
    ),
    pytest.param(
        f'{{type: sql, query: "{EMPTY};"}}',
        {"status": "PASS", "message": "query returned no violating rows"},
        id="trailing-semicolon",
    ),
    pytest.param(
        "{type: sql, query: 'select count(*) from jobs', min: 5}",
        {
            "status": "PASS",
            "message": "query returned 5 where at least 5 expected",
            "observed": {"value": 5},
            "expected": {"min": 5},
            "failures": [],
            "failure_count": 0,
        },
        id="scalar-min-boundary",
    ),
    pytest.param(
        "{type: sql, query: 'select count(*) from jobs', min: 6}",
        {
            "status": "FAIL",
            "message": "query returned 5 where at least 6 expected",
            "observed": {"value": 5},
            "expected": {"min": 6},
        },
        id="scalar-min-fail",
    ),
    pytest.param(
        "{type: sql, query: 'select max(files) from jobs', max: 4.5}",
        {
            "status": "FAIL",
            "message": "query returned 5 where at most 4.5 expected",
            "observed": {"value": 5},
            "expected": {"max": 4.5},
        },
        id="scalar-max-fail",
    ),
    pytest.param(
        "{type: sql, query: 'select avg(files) from jobs', min: 2, max: 2.2}",
        {
            "status": "PASS",
            "message": "query returned 2.2 where at least 2 and at most 2.2 expected",
            "observed": {"value": 2.2},
            "expected": {"min": 2, "max": 2.2},
        },
        id="scalar-between",
    ),
    pytest.param(
        "{type: sql, query: 'select count(*) from jobs where batch_id = :batch', equals: 2}",
        {
            "status": "PASS",
            "message": "query returned 2 where 2 expected",
            "observed": {"value": 2},
            "expected": {"equals": 2},
        },
        id="scalar-equals-with-param",
    ),
    pytest.param(
        "{type: sql, query: 'select count(*) from jobs', equals: 4}",
        {
            "status": "FAIL",
            "message": "query returned 5 where 4 expected",
            "observed": {"value": 5},
            "expected": {"equals": 4},
        },
        id="scalar-equals-fail",
    ),
    pytest.param(
        "{type: sql, query: 'select status from jobs where job_id = 2', equals: processing}",
        {
            "status": "PASS",
            "message": "query returned 'processing' where 'processing' expected",
            "observed": {"value": "processing"},
            "expected": {"equals": "processing"},
        },
        id="scalar-equals-text",
    ),
    pytest.param(
        "{type: sql, query: 'select status from jobs where job_id = 2', equals: 3}",
        {"status": "FAIL", "message": "query returned 'processing' where 3 expected"},
        id="scalar-equals-text-against-number",
    ),
    pytest.param(
        "{type: sql, query: 'select max(files) from jobs where files < 0', min: 0}",
        {
            "status": "FAIL",
            "message": "query returned None, not a number",
            "observed": {"value": None},
            "expected": {"min": 0},
        },
        id="scalar-null-is-not-a-number",
    ),
]


@pytest.mark.parametrize(("check", "expected"), CASES)
def test_sql_judges_query(
    jobs: Database, run_yaml: RunYaml, check: str, expected: dict[str, Any]
) -> None:
    result = only_check(run_yaml(suite(jobs, check)))
    assert {k: result[k] for k in expected} == expected
    assert result["error"] is None


def test_sql_sample_is_capped_but_count_is_true_total(jobs: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(
            suite(jobs, "{type: sql, query: 'select job_id from jobs order by job_id'}"),
            options=RunOptions(sample_limit=2),
        )
    )
    assert (result["failures"], result["failure_count"], result["message"]) == (
        [{"job_id": 1}, {"job_id": 2}],
        5,
        "query returned 5 violating rows; first: job_id=1",
    )


def test_sql_without_samples_still_fails(jobs: Database, run_yaml: RunYaml) -> None:
    result = only_check(
        run_yaml(
            suite(jobs, "{type: sql, query: 'select job_id from jobs order by job_id'}"),
            options=RunOptions(sample_limit=0),
        )
    )
    assert (result["status"], result["failures"], result["failure_count"]) == ("FAIL", [], 5)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "select job_id from jobs where batch_id = 'B1'",
            "expected one row with one value, got 2 rows",
        ),
        ("select job_id from jobs where files < 0", "expected one row with one value, got 0 rows"),
        (
            "select job_id, files from jobs where job_id = 1",
            "expected one row with one value, got one row with 2 values",
        ),
    ],
)
def test_sql_scalar_needs_one_value(
    jobs: Database, run_yaml: RunYaml, query: str, message: str
) -> None:
    result = only_check(run_yaml(suite(jobs, f'{{type: sql, query: "{query}", max: 10}}')))
    assert (result["status"], result["message"], result["error"]) == (
        "ERROR",
        message,
        {"category": "config", "retryable": False, "message": message, "detail": message},
    )
