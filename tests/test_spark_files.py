"""Result files read by Spark (a files source with ``engine: spark``) through a real local Spark
Connect session: each file with corrupt records named with their count, the fail-closed rule,
``unreadable: skip``, and the same verdicts as on DuckDB over good files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from runner.errors import SuiteError
from runner.suite import load_suite
from tests.conftest import RunYaml, check_verdict

T1, T2 = "2025-11-06T01:00:00", "2025-11-06T02:30:00"
GOOD_DATA = {
    "batches/batch_1.json": json.dumps(
        [
            {"batch_id": "B1", "status": "completed", "files": 2},
            {"batch_id": "B2", "status": "completed", "files": 1},
        ]
    ),
    "batches/batch_2.json": json.dumps({"batch_id": "B3", "status": "completed", "files": 1}),
    "runs/runs_1.ndjson": "".join(
        json.dumps(row) + "\n"
        for row in (
            {"run_id": "R1", "batch_id": "B1", "status": "SUCCESS", "rows": 10, "ended": T1},
            {"run_id": "R2", "batch_id": "B1", "status": "SUCCESS", "rows": None, "ended": T1},
            {"run_id": "R3", "batch_id": "B2", "status": "FAILED", "rows": 0, "ended": T2},
        )
    ),
    "runs/runs_2.ndjson": json.dumps(
        {"run_id": "R4", "batch_id": "B3", "status": "SUCCESS", "rows": 7, "ended": T2}
    )
    + "\n",
    "pnl/pnl_1.csv": "portfolio_id,pnl\nPF-1,1.5\nPF-2,\n",
    "pnl/pnl_2.csv": "portfolio_id,pnl\nPF-3,-2.25\n",
}
"""Good files of every format: NDJSON, JSON (an array and a single object), CSV and Parquet
(written by the fixture)."""

BAD_DATA = {
    "batches/batch_3.json": '[{"batch_id": "B4", "status": "compl',  # cut mid-write
    "batches/batch_4.json": '{"batch_id": "B5"}\n{"batch_id": "B6"}\n',  # two documents
    "batches/batch_5.json": "[1, 2]",  # JSON, but no records Spark can read
    "runs/runs_3.ndjson": (
        '{"run_id": "R5", "batch_id": "B4", "status": "SUCCESS", "rows": 1}\n'
        '{"run_id": "R6", "batch_id": "B4", "sta\n'  # two corrupt lines among good ones
        '{"run_id": "R7", "batch_id": "B4", "status": "SUCCESS", "rows": 2}\n'
        "not json at all\n"
        '{"run_id": "R8", "batch_id": "B4", "status": "FAILED", "rows": 3}\n'
    ),
    "runs/runs_4.ndjson": "",  # empty
}

SOURCE = """\
suite: files
sources:
  results:
    engine: {engine}
    unreadable: {unreadable}
    tables:
      batches: "results/batches/*.json"
      runs: "results/runs/*.ndjson"
      pnl: "results/pnl/*.csv"
      snapshots: "results/snapshots/*.parquet"
checks:
"""

CHECKS = """\
  - {type: row_count, name: batches, table: batches, equals: 3}
  - {type: row_count, name: runs, table: runs, min: 1}
  - {type: row_count, name: pnl rows, table: pnl, equals: 3}
  - {type: not_null, name: run rows, table: runs, columns: [rows], key: [run_id]}
  - {type: not_null, name: pnl, table: pnl, columns: [pnl], key: [portfolio_id]}
  - type: reference
    name: every run's batch
    each: {table: runs, key: batch_id}
    has: {table: batches, key: batch_id}
  - type: reference
    name: every snapshot's portfolio
    each: {table: snapshots, key: portfolio_id}
    has: {table: pnl, key: portfolio_id}
  - type: status_consistency
    name: batch statuses
    parent: {table: batches, id: batch_id, status: status}
    children: {table: runs, parent_id: batch_id, status: status}
    success: [SUCCESS]
    failure: [FAILED]
    expect:
      all_succeeded: [completed]
      some_failed: [completed_with_errors]
      all_failed: [failed]
      no_children: [queued]
  - {type: sql, name: failed runs, query: "select run_id from runs where status = 'FAILED'"}
  - {type: sql, name: total rows, query: "select sum(rows) from runs", min: 10}
  - {type: row_count, name: snapshots, table: snapshots, where: "value > 0", equals: 2}
  - {type: freshness, name: runs ended, table: runs, column: ended, max_age: 1h, now: at}
  - {type: expectation_suite, name: gx, table: runs, suite: runs.gx.json}
  - {type: schema, name: pandera, table: runs, key: [run_id], schema: runs.pandera.yml}
"""
GX_SUITE = {
    "name": "runs",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "rows"}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "status", "value_set": ["SUCCESS", "FAILED"]},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "run_id", "regex": "^R[0-9]$"},
        },
    ],
}
PANDERA_SCHEMA = """\
schema_type: polars_dataframe
name: runs
columns:
  run_id: {dtype: String, nullable: false}
  rows: {dtype: Int64, nullable: false, greater_than_or_equal_to: 1}
"""


def suite(engine: str = "spark", unreadable: str = "error") -> str:
    return SOURCE.format(engine=engine, unreadable=unreadable)


PARAMS = "params:\n  at: {type: string, default: '2025-11-06T03:00:00'}\n"


def write(folder: Path, data: dict[str, str]) -> None:
    for name, text in data.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def results(tmp_path: Path, spark_session: Any) -> Path:
    """Good result files of every format (the Spark session started, or the test skipped)."""
    folder = tmp_path / "results"
    write(folder, GOOD_DATA)
    (folder / "snapshots").mkdir()
    snapshots = pa.table({"portfolio_id": ["PF-1", "PF-2", "PF-9"], "value": [1.0, 2.0, -1.0]})
    pq.write_table(snapshots.slice(0, 2), folder / "snapshots" / "snap_1.parquet")
    pq.write_table(snapshots.slice(2), folder / "snapshots" / "snap_2.parquet")
    return folder


def outcome(verdict: Any) -> list[tuple[str, str, list[Any]]]:
    """Each check's name, status and failing ids (its failure sample)."""
    return [(c["name"], c["status"], c["failures"]) for c in check_verdict(verdict)["checks"]]


def test_spark_files_give_the_verdict_duckdb_gives_on_good_files(
    results: Path, run_yaml: RunYaml
) -> None:
    (results.parent / "runs.gx.json").write_text(json.dumps(GX_SUITE))
    (results.parent / "runs.pandera.yml").write_text(PANDERA_SCHEMA)
    on_duckdb = outcome(run_yaml(PARAMS + suite("duckdb") + CHECKS))
    on_spark = outcome(run_yaml(PARAMS + suite("spark") + CHECKS))
    assert on_spark == on_duckdb
    statuses = {name: status for name, status, _ in on_spark}
    assert statuses == {
        "batches": "PASS",
        "runs": "PASS",
        "pnl rows": "PASS",
        "run rows": "FAIL",
        "pnl": "FAIL",
        "every run's batch": "PASS",
        "every snapshot's portfolio": "FAIL",
        "batch statuses": "FAIL",
        "failed runs": "FAIL",
        "total rows": "PASS",
        "snapshots": "PASS",
        "runs ended": "PASS",
        "gx": "FAIL",
        "pandera": "FAIL",
    }


def test_spark_files_name_each_file_with_its_corrupt_record_count(
    results: Path, run_yaml: RunYaml
) -> None:
    """A check on a table with corrupt records may FAIL on what it saw, never PASS: it is
    ERROR / data_malformed naming each file with its count of corrupt records, its findings
    kept; a table with none is judged as usual."""
    write(results, BAD_DATA)
    verdict = run_yaml(
        suite()
        + """\
  - {type: row_count, name: runs, table: runs, equals: 7}
  - type: sql
    name: failed runs
    query: "select run_id from runs where status = 'FAILED' order by run_id"
  - {type: row_count, name: batches, table: batches, equals: 3}
  - {type: row_count, name: pnl rows, table: pnl, equals: 3}
"""
    )
    runs_note = (
        "2 of 4 files behind table 'runs' not read in full: "
        f"{results}/runs/runs_3.ndjson (2 of 5 records corrupt); "
        f"{results}/runs/runs_4.ndjson (empty)"
    )
    batches_note = (
        "3 of 5 files behind table 'batches' skipped as unreadable: "
        f"{results}/batches/batch_3.json (truncated); "
        f"{results}/batches/batch_4.json (invalid_json); "
        f"{results}/batches/batch_5.json (1 of 1 record corrupt)"
    )
    runs, failed, batches, pnl = check_verdict(verdict)["checks"]
    assert (runs["status"], runs["error"]["category"], runs["error"]["retryable"]) == (
        "ERROR",
        "data_malformed",
        False,
    )
    assert runs["message"] == (
        f"{runs_note}: check 'runs' cannot pass on data it did not see (on the readable files: "
        "runs has 7 rows where 7 expected); fix the files, or set 'unreadable: skip' on the "
        "source to judge the readable files alone"
    )
    assert (runs["observed"], runs["expected"], runs["notes"]) == (
        {"count": 7},
        {"equals": 7},
        [runs_note],
    )
    assert (failed["status"], failed["message"], failed["notes"]) == (
        "FAIL",
        "query returned 2 violating rows; first: run_id=R3",
        [runs_note],
    )
    assert [row["run_id"] for row in failed["failures"]] == ["R3", "R8"]
    assert (batches["status"], batches["error"]["category"], batches["notes"]) == (
        "ERROR",
        "data_malformed",
        [batches_note],
    )
    assert (pnl["status"], pnl["notes"]) == ("PASS", [])  # nothing wrong behind it
    assert verdict.exit_code == 3


def test_spark_files_unreadable_skip_judges_the_records_that_parsed(
    results: Path, run_yaml: RunYaml
) -> None:
    write(results, BAD_DATA)
    verdict = run_yaml(
        suite(unreadable="skip")
        + """\
  - {type: row_count, name: runs, table: runs, equals: 7}
  - {type: row_count, name: batches, table: batches, equals: 3}
  - {type: sql, name: corrupt, query: "select run_id from runs where run_id is null"}
"""
    )
    checks = check_verdict(verdict)["checks"]
    assert [(c["name"], c["status"], c["message"]) for c in checks] == [
        ("runs", "PASS", "runs has 7 rows where 7 expected"),
        ("batches", "PASS", "batches has 3 rows where 3 expected"),
        ("corrupt", "PASS", "query returned no violating rows"),
    ]
    assert checks[0]["notes"] == [
        "2 of 4 files behind table 'runs' not read in full: "
        f"{results}/runs/runs_3.ndjson (2 of 5 records corrupt); "
        f"{results}/runs/runs_4.ndjson (empty)"
    ]
    assert verdict.exit_code == 0


def test_spark_files_read_on_a_spark_connect_url(
    results: Path, spark_session: Any, run_yaml: RunYaml
) -> None:
    """`spark_url: sc://…` reads the tables on that server, in a session of the source's own;
    here the local server, reached as any Spark Connect server is."""
    write(results, BAD_DATA)
    port = spark_session.conf.get("spark.connect.grpc.binding.port")
    verdict = run_yaml(
        suite().replace("engine: spark", f"engine: spark\n    spark_url: sc://localhost:{port}")
        + "  - {type: row_count, name: runs, table: runs, equals: 7}\n"
    )
    (check,) = check_verdict(verdict)["checks"]
    assert (check["status"], check["error"]["category"], check["notes"]) == (
        "ERROR",
        "data_malformed",
        [
            "2 of 4 files behind table 'runs' not read in full: "
            f"{results}/runs/runs_3.ndjson (2 of 5 records corrupt); "
            f"{results}/runs/runs_4.ndjson (empty)"
        ],
    )
    assert {t.name for t in spark_session.catalog.listTables()} & {"runs", "batches"} == set()


def test_spark_files_name_an_unreadable_parquet_file(results: Path, run_yaml: RunYaml) -> None:
    (results / "snapshots" / "snap_3.parquet").write_bytes(b"PAR1 not parquet at all")
    verdict = run_yaml(
        suite() + "  - {type: row_count, name: snapshots, table: snapshots, equals: 3}\n"
    )
    (check,) = check_verdict(verdict)["checks"]
    assert (check["status"], check["error"]["category"]) == ("ERROR", "data_malformed")
    (note,) = check["notes"]
    head = f"1 of 3 files behind table 'snapshots' skipped as unreadable: {results}/snapshots/"
    assert note.startswith(f"{head}snap_3.parquet ([FAILED_READ_FILE"), note
    assert check["observed"] == {"count": 3}


def test_spark_files_table_spark_cannot_read_is_the_error_of_its_checks_alone(
    results: Path, run_yaml: RunYaml
) -> None:
    (results / "mixed").mkdir()
    pq.write_table(pa.table({"id": [1]}), results / "mixed" / "a.parquet")
    pq.write_table(pa.table({"id": ["one"]}), results / "mixed" / "b.parquet")
    verdict = run_yaml(
        suite().replace("tables:\n", 'tables:\n      mixed: "results/mixed/*.parquet"\n')
        + """\
  - {type: row_count, name: mixed, table: mixed, min: 1}
  - {type: row_count, name: pnl rows, table: pnl, equals: 3}
"""
    )
    mixed, pnl = check_verdict(verdict)["checks"]
    assert mixed["status"] == "ERROR"
    assert mixed["message"].startswith(
        "Table 'mixed' of source 'results' could not be read by Spark: [CANNOT_MERGE_"
    ), mixed["message"]
    assert pnl["status"] == "PASS"


def test_spark_files_table_without_readable_files_is_data_malformed(
    results: Path, run_yaml: RunYaml
) -> None:
    (results / "lost").mkdir()
    (results / "lost" / "cut.json").write_text('{"a": ')
    verdict = run_yaml(
        suite().replace("tables:\n", 'tables:\n      lost: "results/lost/*.json"\n')
        + "  - {type: row_count, name: lost, table: lost, min: 1}\n"
    )
    (check,) = check_verdict(verdict)["checks"]
    assert (check["status"], check["error"]["category"], check["message"]) == (
        "ERROR",
        "data_malformed",
        f"Table 'lost' of source 'results' has no readable files ({results}/lost/*.json)",
    )


def test_spark_files_views_show_the_files_columns_only_in_a_session_of_their_own(
    results: Path, spark_session: Any, tmp_path: Path
) -> None:
    """The corrupt-record column and the file name are postrun's: a view has the files' own
    columns. The views live in the source's own session, invisible to the shared one, and go
    with it; the catalog gets nothing."""
    write(results, BAD_DATA)
    path = tmp_path / "suite.yml"
    path.write_text(suite() + "  - {type: row_count, table: runs, min: 1}\n")
    source = load_suite(path, env={}).sources["results"].open()
    try:
        stmt = sa.select(sa.text("*")).select_from(sa.table("runs"))
        assert source.columns(stmt, {}) == ["batch_id", "ended", "rows", "run_id", "status"]
        rows = source.execute(sa.text("select run_id from runs order by run_id"), {})
        assert [row["run_id"] for row in rows] == ["R1", "R2", "R3", "R4", "R5", "R7", "R8"]
        shared = {t.name for t in spark_session.catalog.listTables()}
        assert "runs" not in shared
    finally:
        source.close()
    assert [t.name for t in spark_session.catalog.listTables() if not t.isTemporary] == []


def test_spark_files_names_are_paths_not_patterns(tmp_path: Path, run_yaml: RunYaml) -> None:
    """Paths reach Spark as data: a name with Hadoop's glob characters is that file only; a
    name Hadoop cannot read (a ':') is named as unreadable, never silently left out."""
    folder = tmp_path / "odd"
    names = ["run [1].ndjson", "run {2,3}.ndjson", "run *100%25?.ndjson", "run é,4.ndjson"]
    write(folder, {name: f'{{"n": {i}}}\n' for i, name in enumerate(names)})
    write(folder, {"run:5.ndjson": '{"n": 5}\n'})
    with (folder / "run *100%25?.ndjson").open("a") as corrupt:
        corrupt.write("oops\n")  # counted under the file's own name
    verdict = run_yaml(
        """\
        suite: odd
        sources:
          odd:
            engine: spark
            unreadable: skip
            tables: {runs: {files: "odd/*", format: ndjson}}
        checks:
          - {type: sql, query: "select sum(n) from runs", equals: 6}
        """
    )
    (check,) = check_verdict(verdict)["checks"]
    assert (check["status"], check["notes"]) == (
        "PASS",
        [
            "2 of 5 files behind table 'runs' not read in full: "
            f"{folder}/run *100%25?.ndjson (1 of 2 records corrupt); "
            f"{folder}/run:5.ndjson (a ':' in its path, which Hadoop's file systems cannot read)"
        ],
    )


# --- the suite contract (no Spark needed) -----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "{engine: spark, files: 'r/*.json'}",
            "sources.results: 'engine' applies to a source with 'tables'",
        ),
        (
            "{engine: spork, tables: {t: 'r/*.json'}}",
            "sources.results.engine: Input should be 'duckdb' or 'spark'",
        ),
        (
            "{spark_url: 'sc://h:15002', tables: {t: 'r/*.json'}}",
            "sources.results: 'spark_url' applies to a source with 'engine: spark'",
        ),
        (
            "{engine: spark, allow_paths: [x], tables: {t: 'r/*.json'}}",
            "sources.results: 'allow_paths' applies to DuckDB",
        ),
        (
            "{engine: spark, spark_url: 'postgresql://u:pw@h/db', tables: {t: 'r/*.json'}}",
            "source 'results': spark_url postgresql://***@h/db is not a Spark URL",
        ),
        (
            "{engine: spark, tables: {t: 's3://bucket/r/*.json'}}",
            "source 'results': table 't': 'engine: spark' reads files by path",
        ),
    ],
)
def test_spark_files_suite_mistakes_name_file_and_line(
    tmp_path: Path, source: str, reason: str
) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(
        "suite: s\nsources:\n  results: " + source + "\nchecks:\n  - {type: row_count, "
        "table: t, min: 1}\n"
    )
    with pytest.raises(SuiteError) as raised:
        load_suite(path, env={})
    (issue,) = raised.value.issues
    assert f"{path}:3: " in str(issue), str(issue)
    assert reason in str(issue), str(issue)


def test_spark_files_spark_url_is_substituted_and_its_token_is_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(
        "suite: s\nsources:\n  results:\n    engine: spark\n"
        "    spark_url: 'sc://spark.example.com:15002/;token=${SPARK_TOKEN}'\n"
        "    tables: {t: 'r/*.json'}\nchecks:\n  - {type: row_count, table: t, min: 1}\n"
    )
    loaded = load_suite(path, env={"SPARK_TOKEN": "s3cr3t-token"})
    config = loaded.sources["results"]
    assert (config.engine, config.spark_url) == (
        "spark",
        "sc://spark.example.com:15002/;token=s3cr3t-token",
    )
    assert "s3cr3t-token" in loaded.secrets()
