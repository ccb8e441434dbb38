"""min_rows on not_null, status_consistency and reference: an empty run date is a batch that
wrote nothing, not a pass."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import Database, RunYaml, only_check

DATA = """
    create table runs (run_id varchar(10), run_date date, status varchar(20));
    insert into runs values ('r1', '2025-11-05', 'completed');
    create table items (run_id varchar(10), status varchar(20));
    insert into items values ('r1', 'ok');
    create table summaries (run_id varchar(10));
    insert into summaries values ('r1');
"""
NOT_NULL = "{type: not_null, table: runs, where: 'run_date = :day', columns: [status]%s}"
STATUS = (
    "{type: status_consistency, parent: {table: runs, where: 'run_date = :day', id: run_id,"
    " status: status}, children: {table: items, parent_id: run_id, status: status},"
    " success: [ok], expect: {all_succeeded: [completed]}%s}"
)
REFERENCE = (
    "{type: reference, each: {table: runs, where: 'run_date = :day', key: run_id},"
    " has: {table: summaries, key: run_id}%s}"
)
CASES = [
    pytest.param(
        NOT_NULL,
        "runs has 0 rows where at least 1 expected (min_rows): did the batch write nothing?",
        "runs: no column over its NULL limit in 0 rows",
        id="not_null",
    ),
    pytest.param(
        STATUS,
        "runs has 0 parents where at least 1 expected (min_rows): did the batch write nothing?",
        "all 0 parents in runs agree with their children",
        id="status_consistency",
    ),
    pytest.param(
        REFERENCE,
        "runs has 0 keys where at least 1 expected (min_rows): did the batch write nothing?",
        "all 0 keys of runs have a match in summaries",
        id="reference",
    ),
]


def suite(db: Database, check: str) -> str:
    return textwrap.dedent(
        f"""\
        suite: empty
        params:
          day: {{type: date}}
        sources:
          w: {{url: "{db.url}"}}
        checks:
          - {check}
        """
    )


@pytest.mark.parametrize(("check", "empty", "passes"), CASES)
def test_min_rows_fails_an_empty_relation(
    anydb: Database, run_yaml: RunYaml, check: str, empty: str, passes: str
) -> None:
    anydb.run(DATA)
    empty_day = {"day": "2025-11-06"}
    without = only_check(run_yaml(suite(anydb, check % ""), empty_day))
    assert (without["status"], without["message"]) == ("PASS", passes)  # the default: none
    result = only_check(run_yaml(suite(anydb, check % ", min_rows: 1"), empty_day))
    assert (result["status"], result["message"], result["expected"]["min_rows"]) == (
        "FAIL",
        empty,
        1,
    )
    enough = only_check(run_yaml(suite(anydb, check % ", min_rows: 1"), {"day": "2025-11-05"}))
    assert enough["status"] == "PASS", enough["message"]
    two = only_check(run_yaml(suite(anydb, check % ", min_rows: 2"), {"day": "2025-11-05"}))
    noun = empty.split()[3][:-1]  # row, parent, key
    assert (two["status"], two["message"]) == (
        "FAIL",
        f"runs has 1 {noun} where at least 2 expected (min_rows): did the batch write nothing?",
    )


@pytest.mark.parametrize("check", [NOT_NULL, STATUS, REFERENCE], ids=["nn", "sc", "ref"])
def test_min_rows_must_be_positive(db: Database, run_yaml: RunYaml, check: str) -> None:
    from runner.errors import SuiteError

    with pytest.raises(SuiteError, match="min_rows"):
        run_yaml(suite(db, check % ", min_rows: 0"), {"day": "2025-11-05"})


@pytest.mark.parametrize(
    ("check", "message"),
    [
        pytest.param(
            "{type: status_consistency, parent: {query: 'select run_id, status from runs',"
            " label: nightly runs, id: run_id, status: status}, children: {table: items,"
            " parent_id: run_id, status: status}, success: [ok], expect: {all_succeeded: [done]}}",
            "the only parent in nightly runs contradicts its children: r1 is 'completed' though "
            "its only child succeeded (all_succeeded allows done)",
            id="status_consistency",
        ),
        pytest.param(
            "{type: not_null, query: 'select null as v from runs', label: run values,"
            " columns: [v]}",
            "run values has NULLs in 1 of 1 rows (v 1)",
            id="not_null",
        ),
        pytest.param(
            "{type: reference, each: {query: 'select run_id from runs', label: the runs,"
            " key: run_id}, has: {table: items, where: 'false', label: no items, key: run_id}}",
            "1 of 1 keys of the runs have no match in no items: r1",
            id="reference",
        ),
    ],
)
def test_label_names_a_relation_in_messages(
    anydb: Database, run_yaml: RunYaml, check: str, message: str
) -> None:
    anydb.run(DATA)
    result = only_check(run_yaml(suite(anydb, check), {"day": "2025-11-05"}))
    assert (result["status"], result["message"]) == ("FAIL", message)
