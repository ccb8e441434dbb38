"""schema: a pandera schema validates a relation, or the records of each result file."""
# ruff: noqa: RUF001 - messages count failure cases with the multiplication sign

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite
from runner.errors import SuiteError
from tests.conftest import Database, RunYaml, only_check
from tests.test_imports import imported, loaded

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "expectations" / "portfolio_snapshots.pandera.yml"

POLARS_SCHEMA = """\
schema_type: polars_dataframe
name: snapshots
columns:
  portfolio_id: {dtype: String, nullable: false}
  daily_pnl: {dtype: Float64, coerce: true, nullable: false}
  market_value: {dtype: Float64, coerce: true, nullable: true, greater_than: 0}
"""
PANDAS_SCHEMA = """\
schema_type: dataframe
name: snapshots
columns:
  portfolio_id: {dtype: str, nullable: false}
  daily_pnl: {dtype: float64, coerce: true, nullable: false}
  market_value: {dtype: float64, coerce: true, nullable: true, greater_than: 0}
"""
SCHEMA_MODULE = """\
import pandera.pandas as pa
import pandera.polars as pap
import polars as pl

SNAPSHOTS = pap.DataFrameSchema(
    {
        "portfolio_id": pap.Column(pl.String, nullable=False),
        "daily_pnl": pap.Column(pl.Float64, nullable=False, coerce=True),
        "market_value": pap.Column(pl.Float64, pap.Check.greater_than(0), nullable=True, coerce=True),
    }
)

class Snapshots(pa.DataFrameModel):
    portfolio_id: str = pa.Field(nullable=False)
    daily_pnl: float = pa.Field(nullable=False, coerce=True)
    market_value: float = pa.Field(gt=0, nullable=True, coerce=True)

NOT_A_SCHEMA = 42
"""


@pytest.fixture
def snapshots(anydb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Five snapshots inserted out of key order: two NULL daily_pnl, one negative market_value;
    and the schema as files (polars, pandas) and as an importable module."""
    anydb.run(
        """
        create table snapshots (portfolio_id varchar(10), daily_pnl float, market_value float);
        insert into snapshots values
            ('PF-4', null, 10.0),
            ('PF-1', 1.5, 20.0),
            ('PF-3', 2.5, -5.0),
            ('PF-2', null, 30.0),
            ('PF-5', 3.5, null);
        """
    )
    (tmp_path / "snap.pandera.yml").write_text(POLARS_SCHEMA)
    (tmp_path / "snap.pandas.yml").write_text(PANDAS_SCHEMA)
    (tmp_path / "snap_schemas.py").write_text(SCHEMA_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return anydb


def suite(url: str, check: str) -> str:
    return textwrap.dedent(
        f"""\
        suite: schema
        sources:
          w: {{url: "{url}"}}
        checks:
          - {check}
        """
    )


def run(run_yaml: RunYaml, db: Database, check: str) -> dict[str, Any]:
    return only_check(run_yaml(suite(db.url, check)))


FAILED = {
    "status": "FAIL",
    "message": "snapshots: 3 failure cases in 2 columns"
    " (daily_pnl not_nullable ×2, market_value greater_than(0) ×1)",
    "observed": {"rows": 5, "failure_cases": 3},
    "failures": [
        {
            "column": "daily_pnl",
            "check": "not_nullable",
            "failure_case": None,
            "index": 1,
            "key": {"portfolio_id": "PF-2"},
        },
        {
            "column": "daily_pnl",
            "check": "not_nullable",
            "failure_case": None,
            "index": 3,
            "key": {"portfolio_id": "PF-4"},
        },
        {
            "column": "market_value",
            "check": "greater_than(0)",
            "failure_case": "-5.0",
            "index": 2,
            "key": {"portfolio_id": "PF-3"},
        },
    ],
    "failure_count": 3,
}


@pytest.mark.parametrize(
    ("schema", "backend"),
    [
        ("schema: snap.pandera.yml", "polars"),
        ("schema: snap.pandas.yml", "pandas"),
        ("object: 'snap_schemas:SNAPSHOTS'", "polars"),
        ("object: 'snap_schemas:Snapshots'", "pandas"),
    ],
    ids=["yaml-polars", "yaml-pandas", "object-schema-polars", "object-model-pandas"],
)
def test_schema_fails_with_pandera_failure_cases(
    snapshots: Database, run_yaml: RunYaml, tmp_path: Path, schema: str, backend: str
) -> None:
    result = run(
        run_yaml, snapshots, f"{{type: schema, table: snapshots, {schema}, key: portfolio_id}}"
    )
    written = schema.split(": ", 1)[1].strip("'")
    expected = {"schema": written, "backend": backend}
    if written.endswith(".yml"):
        expected["schema"] = str(tmp_path / written)
    got = {k: result[k] for k in (*FAILED, "expected")}
    assert got == {**FAILED, "expected": expected}


@pytest.mark.parametrize("backend", ["polars", "pandas"])
def test_schema_passes(snapshots: Database, run_yaml: RunYaml, backend: str) -> None:
    schema = "snap.pandera.yml" if backend == "polars" else "snap.pandas.yml"
    check = (
        f"{{type: schema, table: snapshots, where: 'daily_pnl is not null and coalesce(market_value, 1) > 0',"
        f" schema: {schema}, backend: {backend}}}"
    )
    result = run(run_yaml, snapshots, check)
    assert (result["status"], result["message"], result["observed"], result["failures"]) == (
        "PASS",
        "snapshots: the schema holds on 2 rows",
        {"rows": 2, "failure_cases": 0},
        [],
    )


def test_schema_query_and_sample_limit(snapshots: Database, tmp_path: Path) -> None:
    check = (
        "{type: schema, query: 'select portfolio_id, daily_pnl, market_value from snapshots',"
        " schema: snap.pandera.yml, key: [portfolio_id]}"
    )
    from runner import RunOptions, run_suite

    path = tmp_path / "q.yml"
    path.write_text(suite(snapshots.url, check))
    verdict = run_suite(load_suite(path, env={}), RunOptions(sample_limit=1))
    result = only_check(verdict)
    assert (result["failure_count"], len(result["failures"])) == (3, 1)
    assert result["failures"][0]["key"] == {"portfolio_id": "PF-2"}


def test_schema_missing_column_is_a_failure(snapshots: Database, run_yaml: RunYaml) -> None:
    check = (
        "{type: schema, query: 'select portfolio_id, daily_pnl from snapshots where daily_pnl > 2',"
        " schema: snap.pandera.yml}"
    )
    result = run(run_yaml, snapshots, check)
    assert (result["status"], result["message"], result["failures"], result["failure_count"]) == (
        "FAIL",
        "query: 1 failure case in 1 column (market_value column_in_dataframe ×1)",
        [
            {
                "column": "market_value",
                "check": "column_in_dataframe",
                "failure_case": "market_value",
                "index": None,
            }
        ],
        1,
    )


def test_schema_max_rows_exceeded_is_config_error(snapshots: Database, run_yaml: RunYaml) -> None:
    check = "{type: schema, table: snapshots, schema: snap.pandera.yml, max_rows: 4}"
    result = run(run_yaml, snapshots, check)
    assert (result["status"], result["error"]["category"], result["error"]["message"]) == (
        "ERROR",
        "config",
        "snapshots has 5 rows, more than max_rows 4: narrow it with 'where' or raise 'max_rows'",
    )


def test_schema_empty_relation_passes(snapshots: Database, run_yaml: RunYaml) -> None:
    check = "{type: schema, table: snapshots, where: '1 = 0', schema: snap.pandera.yml}"
    result = run(run_yaml, snapshots, check)
    assert (result["status"], result["message"]) == (
        "PASS",
        "snapshots: the schema holds on 0 rows",
    )


DATED_SCHEMA = """\
schema_type: polars_dataframe
columns:
  portfolio_id: {dtype: String, nullable: false}
  snapshot_date: {dtype: Date, nullable: false}
  daily_pnl: {dtype: Float64, coerce: true, nullable: false}
  note: {dtype: String, nullable: true}
"""


def test_schema_sees_the_database_types(anydb: Database, run_yaml: RunYaml, tmp_path: Path) -> None:
    """Rows reach pandera through Arrow: a DATE is a date on DuckDB, PostgreSQL and Spark (SQLite
    stores text, and says so), a DECIMAL a number, and a column of NULLs takes the declared
    dtype."""
    anydb.run(
        """
        create table snaps (portfolio_id varchar(10), snapshot_date date,
            daily_pnl decimal(12, 2), note varchar(10));
        insert into snaps values ('PF-1', '2025-11-06', 1.50, null),
            ('PF-2', '2025-11-06', null, null), ('PF-3', '2025-11-06', -2.25, null);
        """
    )
    (tmp_path / "dated.yml").write_text(DATED_SCHEMA)
    check = "{type: schema, table: snaps, schema: dated.yml, key: [snapshot_date, portfolio_id]}"
    result = run(run_yaml, anydb, check)
    found = [(f["column"], f["check"], f.get("key")) for f in result["failures"]]
    null_pnl = (
        "daily_pnl",
        "not_nullable",
        {"snapshot_date": "2025-11-06", "portfolio_id": "PF-2"},
    )
    if anydb.kind == "sqlite":
        assert found == [("snapshot_date", "dtype('Date')", None), null_pnl]
    else:
        assert found == [null_pnl]


@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        ('{"type": "object", "properties": {}}', "s.json", "is not a pandera schema"),
        ("columns: {a: {dtype: NoSuchType}}\n", "s.yml", "is not a pandera polars schema"),
        ("columns: [unclosed\n", "s.yml", "cannot be read"),
    ],
    ids=["json-schema", "unknown-dtype", "bad-yaml"],
)
def test_schema_bad_schema_file_is_config_error(
    snapshots: Database, run_yaml: RunYaml, tmp_path: Path, content: str, name: str, says: str
) -> None:
    (tmp_path / name).write_text(content)
    result = run(run_yaml, snapshots, f"{{type: schema, table: snapshots, schema: {name}}}")
    assert (result["status"], result["error"]["category"]) == ("ERROR", "config")
    assert result["error"]["message"].startswith(f"schema file {tmp_path / name} {says}")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("no_such_module:X", "object 'no_such_module:X' cannot be imported"),
        ("snap_schemas:NOT_A_SCHEMA", "object 'snap_schemas:NOT_A_SCHEMA' is not a pandera"),
        (
            "snap_schemas:SNAPSHOTS', backend: 'pandas",
            "object 'snap_schemas:SNAPSHOTS' is a polars",
        ),
    ],
)
def test_schema_bad_object_is_config_error(
    snapshots: Database, run_yaml: RunYaml, obj: str, message: str
) -> None:
    result = run(run_yaml, snapshots, f"{{type: schema, table: snapshots, object: '{obj}'}}")
    assert (result["status"], result["error"]["category"]) == ("ERROR", "config")
    assert result["error"]["message"].startswith(message)


def test_schema_shipped_portfolio_schema(duck: Database, run_yaml: RunYaml) -> None:
    duck.run(
        """
        create table portfolio_snapshots (portfolio_id varchar, snapshot_date date,
            equity_balance decimal(18,2), daily_pnl decimal(18,2), cumulative_pnl decimal(18,2));
        insert into portfolio_snapshots values
            ('PF-0001', '2025-11-06', 100.00, 1.50, 10.00),
            ('PF-0002', '2025-11-06', 200.50, null, null),
            ('PF-0003', '2025-11-06', 300.00, -2.25, 4.00);
        """
    )
    check = f"{{type: schema, table: portfolio_snapshots, schema: '{SHIPPED}', key: portfolio_id}}"
    result = run(run_yaml, duck, check)
    assert (result["status"], result["message"]) == (
        "FAIL",
        "portfolio_snapshots: 2 failure cases in 2 columns"
        " (daily_pnl not_nullable ×1, cumulative_pnl not_nullable ×1)",
    )
    assert [f["key"] for f in result["failures"]] == [{"portfolio_id": "PF-0002"}] * 2


# --- result files ----------------------------------------------------------------------------

OPERATIONS_SCHEMA = """\
schema_type: polars_dataframe
columns:
  op_id: {dtype: String, nullable: false}
  rows_in: {dtype: Int64, nullable: false, greater_than_or_equal_to: 0}
"""


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Three result files of two operations each; run_2 has a negative rows_in."""
    folder = tmp_path / "results"
    folder.mkdir()
    for n in (1, 2, 3):
        operations = [{"op_id": f"r{n}-a", "rows_in": 10}, {"op_id": f"r{n}-b", "rows_in": 5}]
        if n == 2:
            operations[1]["rows_in"] = -1
        (folder / f"run_{n}.json").write_text(json.dumps({"run_id": n, "operations": operations}))
    (tmp_path / "ops.pandera.yml").write_text(OPERATIONS_SCHEMA)
    return folder


def run_files(run_yaml: RunYaml, extra: str = "") -> dict[str, Any]:
    text = (
        "suite: files\nchecks:\n  - {type: schema, files: results/run_*.json, records: /operations,"
        f" schema: ops.pandera.yml, key: op_id{extra}}}\n"
    )
    return only_check(run_yaml(text))


@pytest.mark.parametrize("backend", ["polars", "pandas"])
def test_schema_files_bad_record_names_its_file(
    results: Path, run_yaml: RunYaml, tmp_path: Path, backend: str
) -> None:
    if backend == "pandas":
        pandas_schema = OPERATIONS_SCHEMA.replace("polars_dataframe", "dataframe")
        (tmp_path / "ops.pandera.yml").write_text(pandas_schema.replace("String", "str"))
    result = run_files(run_yaml)
    assert {k: result[k] for k in ("status", "message", "observed", "failures")} == {
        "status": "FAIL",
        "message": "1 of 3 files fail the schema (run_2.json):"
        " 1 failure case in 1 column (rows_in greater_than_or_equal_to(0) ×1)",
        "observed": {"files": 3, "bad_files": 1, "records": 6, "failure_cases": 1},
        "failures": [
            {
                "file": str(results / "run_2.json"),
                "column": "rows_in",
                "check": "greater_than_or_equal_to(0)",
                "failure_case": "-1",
                "index": 1,
                "key": {"op_id": "r2-b"},
            }
        ],
    }
    assert result["expected"]["backend"] == backend


def test_schema_records_of_a_files_source_name_the_source(results: Path, run_yaml: RunYaml) -> None:
    text = (
        "suite: files\nsources:\n  results: {files: results/run_*.json}\nchecks:\n"
        "  - {type: schema, source: results, records: /operations, schema: ops.pandera.yml,"
        " key: op_id}\n"
    )
    result = only_check(run_yaml(text))
    assert (result["status"], result["source"], result["observed"]) == (
        "FAIL",
        "results",
        {"files": 3, "bad_files": 1, "records": 6, "failure_cases": 1},
    )
    assert result["failures"][0]["file"] == str(results / "run_2.json")
    assert result["name"] == "schema:files"


def test_schema_files_pass(results: Path, run_yaml: RunYaml) -> None:
    (results / "run_2.json").write_text(json.dumps({"operations": [{"op_id": "x", "rows_in": 0}]}))
    result = run_files(run_yaml)
    assert (result["status"], result["message"]) == (
        "PASS",
        "the schema holds on 5 records in 3 files",
    )


@pytest.mark.parametrize(
    ("content", "check", "reason"),
    [
        ('{"operations": [{"op_id": "x"', "invalid_json", "unexpected end of data"),
        ('{"steps": []}', "records_not_found", "no value at /operations"),
        ('{"operations": {"op_id": "x"}}', "records_not_array", "/operations is not an array"),
    ],
)
def test_schema_files_unreadable_file_is_a_failure(
    results: Path, run_yaml: RunYaml, content: str, check: str, reason: str
) -> None:
    (results / "run_3.json").write_text(content)
    result = run_files(run_yaml)
    assert result["status"] == "FAIL"
    assert result["observed"]["bad_files"] == 2
    failure = result["failures"][1]
    assert (failure["file"], failure["check"]) == (str(results / "run_3.json"), check)
    assert reason in failure["failure_case"]


STEPS = ROOT / "expectations" / "run_result_steps.pandera.yml"


@pytest.mark.parametrize("fault", ["none", "truncated-result"])
def test_schema_shipped_steps_schema_on_the_demo_batch(
    fault: str, tmp_path: Path, run_yaml: RunYaml
) -> None:
    from runner.demo import build_demo

    batch = build_demo(tmp_path / "demo", [fault])
    check = (
        f"{{type: schema, files: '{batch.root}/results/run_*.json', records: /steps,"
        f" schema: '{STEPS}'}}"
    )
    result = only_check(run_yaml(f"suite: steps\nchecks:\n  - {check}\n"))
    if fault == "none":
        assert (result["status"], result["message"]) == (
            "PASS",
            "the schema holds on 35 records in 5 files",
        )
    else:
        cut = batch.injected[fault][0]  # the file, then its batch
        assert (result["status"], result["message"]) == (
            "FAIL",
            f"1 of 5 files fail the schema ({cut}): 1 failure case (invalid_json ×1)",
        )


def test_schema_files_none_match_fails(tmp_path: Path, run_yaml: RunYaml) -> None:
    (tmp_path / "ops.pandera.yml").write_text(OPERATIONS_SCHEMA)
    result = run_files(run_yaml)
    assert (result["status"], result["message"]) == (
        "FAIL",
        f"no files match {tmp_path}/results/run_*.json",
    )


# --- suite mistakes, imports -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (
            "{type: schema, table: t, schema: s.yml, object: 'm:X'}",
            "check #1 (schema): give exactly one of 'schema' or 'object'",
        ),
        ("{type: schema, table: t}", "check #1 (schema): give exactly one of 'schema' or 'object'"),
        (
            "{type: schema, table: t, object: 'm.X'}",
            "check #1 (schema): 'object' must be 'module:attribute', not 'm.X'",
        ),
        (
            "{type: schema, files: r/*.json, table: t, schema: s.yml}",
            "check #1 (schema): give 'files' or a relation ('table'/'query' on a source), not both",
        ),
        (
            "{type: schema, table: t, records: /operations, schema: s.yml}",
            "check #1 (schema): 'records' applies to files ('files', or a files 'source')",
        ),
        (
            "{type: schema, files: r/*.json, records: operations, schema: s.yml}",
            "check #1 (schema): 'records' must be a JSON pointer starting with '/': operations",
        ),
        (
            "{type: schema, table: t, schema: missing.yml}",
            "check 'schema:t': schema file not found: {dir}/missing.yml",
        ),
    ],
)
def test_schema_config_mistakes(tmp_path: Path, check: str, reason: str) -> None:
    (tmp_path / "s.yml").write_text(POLARS_SCHEMA)
    path = tmp_path / "suite.yml"
    path.write_text(suite("duckdb:///:memory:", check))
    with pytest.raises(SuiteError) as exc:
        load_suite(path, env={})
    assert str(exc.value) == f"{path}:5: " + reason.format(dir=tmp_path)


def test_schema_suite_without_schema_checks_never_imports_pandera(
    duck: Database, tmp_path: Path
) -> None:
    duck.run("create table t (a integer); insert into t values (1);")
    path = tmp_path / "plain.yml"
    path.write_text(suite(duck.url, "{type: row_count, table: t, min: 1}"))
    code, modules = loaded(tmp_path, "check", str(path), "--out", "out", "--format", "json")
    assert code == 0
    assert "runner.checks.schema" not in modules  # a run loads only the types it uses
    assert imported(modules, "pandera", "polars", "pandas", "pyarrow") == []
    # and the check type itself is light: every type loaded (`postrun list`), still no pandera
    code, modules = loaded(tmp_path, "list")
    assert code == 0
    assert "runner.checks.schema" in modules
    assert imported(modules, "pandera", "polars", "pandas", "pyarrow") == []
