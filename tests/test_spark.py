"""The Spark source through a real local Spark Connect session: the SQL it sends, bound params,
timeouts that cancel the Spark job, error categories, and the same verdicts as on DuckDB."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import textwrap
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from runner import load_suite, run_suite
from runner.demo import build_demo
from runner.errors import SourceError
from runner.redact import mask_url, url_secrets
from runner.results import ErrorCategory
from runner.sources.spark import LOCAL_URL, SparkDialect, SparkSource, categorize, spark_sql
from tests.conftest import Database, check_verdict, spark_views

ROOT = Path(__file__).parent.parent


def mirror(session: Any, database: Path) -> list[str]:
    """Every table of a DuckDB file as a Spark temporary view of the same name and rows."""
    names = []
    with duckdb.connect(str(database), read_only=True) as duck:
        for (name,) in duck.sql("select table_name from information_schema.tables").fetchall():
            rows = duck.sql(f'select * from "{name}"').to_arrow_table()
            frame = session.createDataFrame(rows)
            frame.createOrReplaceTempView(name)
            names.append(name)
    return names


@pytest.fixture
def spark(spark_session: Any) -> Any:
    """The shared session with no temporary view left from another test."""
    spark_views.clear(spark_session)
    return spark_session


@pytest.fixture
def source() -> SparkSource:
    return SparkSource("w", LOCAL_URL)


def test_a_local_session_leaves_no_warehouse_folder_where_it_runs(spark: Any) -> None:
    """Spark makes its warehouse folder at start-up, in the working directory unless told."""
    warehouse = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    assert warehouse.name.startswith("postrun-spark-"), warehouse
    assert warehouse.parent == Path(tempfile.gettempdir()), warehouse
    assert not (Path.cwd() / "spark-warehouse").exists()


def test_params_are_rendered_as_spark_literals_by_the_dialect() -> None:
    where = sa.text("name = :name and id in :ids and day >= :day").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    stmt = sa.select(sa.func.count().label("n")).select_from(sa.table("t")).where(where)
    params = {"name": "it's \\' or 1=1 --", "ids": [1, 2], "day": date(2025, 11, 6)}
    assert spark_sql(stmt, params, SparkDialect()) == (
        "SELECT count(*) AS n \nFROM t AS t \n"
        "WHERE name = 'it\\'s \\\\\\' or 1=1 --' and id in (1, 2) and day >= DATE '2025-11-06'"
    )
    numbers = sa.select(sa.text("n -:i, x -:f, d -:d, :p + :q, :inf, :nan"))
    numbers_params = {
        "i": -5,
        "f": -0.25,
        "d": Decimal("-1.50"),
        "p": 0.1,
        "q": Decimal("1E+2"),
        "inf": float("-inf"),
        "nan": float("nan"),
    }
    # a negative number after a minus stays one (`--` starts a comment); a float is a DOUBLE,
    # a Decimal an exact DECIMAL (Spark reads a plain 0.1 as DECIMAL(1,1))
    assert spark_sql(numbers, numbers_params, SparkDialect()) == (
        "SELECT n -(-5), x -(-0.25D), d -(-1.50BD), 0.1D + 100BD,"
        " CAST('-inf' AS DOUBLE), CAST('nan' AS DOUBLE)"
    )
    quoted: sa.Select[Any] = sa.select(sa.column("select")).select_from(sa.table("my table"))
    assert (
        spark_sql(quoted, {}, SparkDialect()) == "SELECT `select` \nFROM `my table` AS `my table`"
    )


def test_a_hostile_string_param_stays_one_value(spark: Any, source: SparkSource) -> None:
    spark.sql("select * from values (1, 'a'), (2, 'b') as t(id, name)").createOrReplaceTempView("t")
    stmt = sa.select(sa.func.count().label("n")).select_from(sa.table("t"))
    for hostile in ("a' or '1'='1", "a\\' or 1=1 --", "\\", "'"):
        where = stmt.where(sa.text("name = :name"))
        assert source.execute(where, {"name": hostile}) == [{"n": 0}]
    assert source.execute(stmt.where(sa.text("name = :name")), {"name": "a"}) == [{"n": 1}]


def test_only_a_single_read_query_is_sent(source: SparkSource) -> None:
    unparsed = "cache lazy table t options ('storageLevel' 'DISK_ONLY') select 1 |||"
    for sql in ("drop table t", "select 1; drop table t", "insert into t values (1)", unparsed):
        with pytest.raises(SourceError) as raised:
            source.execute(sa.text(sql), {})
        assert raised.value.category == ErrorCategory.CONFIG
        assert "single read query" in raised.value.message


def test_a_slow_query_ends_at_its_timeout_and_its_spark_job_is_cancelled(
    spark: Any, run_yaml: Any
) -> None:
    started = time.monotonic()
    verdict = run_yaml(
        f"""\
        suite: slow
        sources: {{w: {{url: "{LOCAL_URL}"}}}}
        checks:
          - type: sql
            name: slow
            timeout: 2s
            query: "select count(*) from range(0, 100000000000) where id % 7 = 99"
            equals: 0
        """
    )
    elapsed = time.monotonic() - started
    (check,) = verdict.to_dict()["checks"]
    assert (check["status"], check["error"]["category"]) == ("ERROR", "timeout"), check
    assert elapsed < 20
    # The job is gone on the server: the status tracker of the server's context lists no
    # running job, and the cancelled stage did not complete.
    tracker = _server_status_tracker()
    deadline = time.monotonic() + 10
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(tracker.getActiveJobsIds()) == []
    failed = [
        job
        for job in map(tracker.getJobInfo, _all_job_ids(tracker))
        if job is not None and job.status == "FAILED"
    ]
    assert failed, "the cancelled job is recorded as FAILED (cancelled), not as succeeded"


def _server_status_tracker() -> Any:
    """The status tracker of the local Spark Connect server's own Spark context (in process)."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    assert context is not None
    return context.statusTracker()


def _all_job_ids(tracker: Any) -> list[int]:
    return [j for group in (None,) for j in tracker.getJobIdsForGroup(group)]


@pytest.mark.parametrize(
    ("sql", "category"),
    [
        ("select * from no_such_table", ErrorCategory.SCHEMA_MISMATCH),
        ("select no_such_column from range(1)", ErrorCategory.SCHEMA_MISMATCH),
        ("select 1 +", ErrorCategory.CONFIG),
        ("select cast('x' as int) from range(1)", ErrorCategory.DATA_MALFORMED),
        ("select no_such_function(1)", ErrorCategory.QUERY),
    ],
)
def test_spark_errors_get_categories(
    spark: Any, source: SparkSource, sql: str, category: ErrorCategory
) -> None:
    with pytest.raises(SourceError) as raised:
        source.execute(sa.text(sql), {})
    assert raised.value.category == category, raised.value.message
    assert raised.value.message.startswith("Source 'w' refused the query: [")


def test_a_failed_query_is_not_logged_by_pyspark(spark: Any, source: SparkSource) -> None:
    """PySpark's client logs each failed query with its JVM stack trace through loggers of its
    own, with a handler of their own on stderr: the gate's output would carry them. The error
    reaches the report as a SourceError; the loggers pass nothing on."""
    import logging

    class Catcher(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    seen: list[logging.LogRecord] = []
    catcher = Catcher()
    loggers = [
        logging.getLogger(n) for n in ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
    ]
    for logger in loggers:
        logger.addHandler(catcher)
    try:
        with pytest.raises(SourceError) as raised:
            source.execute(sa.text("select no_such_column from range(1)"), {})
    finally:
        for logger in loggers:
            logger.removeHandler(catcher)
    assert raised.value.category == ErrorCategory.SCHEMA_MISMATCH
    assert "JVM stacktrace" in (raised.value.detail or "")
    assert [r.getMessage() for r in seen] == []


def test_an_unreachable_server_is_connectivity_and_its_token_is_never_shown() -> None:
    url = "sc://127.0.0.1:9/;token=s3cr3t-t0ken;user_id=ci"
    assert mask_url(url) == "sc://127.0.0.1:9/;token=***;user_id=ci"
    assert "s3cr3t-t0ken" in url_secrets(url)
    source = SparkSource("remote", url)
    with pytest.raises(SourceError) as raised:
        source.execute(sa.text("select 1"), {})
    assert raised.value.category == ErrorCategory.CONNECTIVITY
    assert "s3cr3t-t0ken" not in raised.value.message + (raised.value.detail or "")
    assert "token=***" in raised.value.message


def test_categories_of_connection_failures_from_their_grpc_status() -> None:
    class Grpc(Exception):
        pass

    assert categorize(Grpc("status = StatusCode.UNAVAILABLE")) == (ErrorCategory.CONNECTIVITY, True)
    assert categorize(Grpc("StatusCode.UNAUTHENTICATED")) == (ErrorCategory.AUTH, False)


# --- the same verdicts as on DuckDB ------------------------------------------------------------

CHECKS = """\
  - {type: row_count, name: rows, table: orders, where: "day = :day", min: 3}
  - {type: row_count, name: as many as, table: orders, equals: {table: expected_orders}}
  - {type: not_null, name: amounts, table: orders, columns: [amount, customer], key: [id]}
  - type: status_consistency
    name: batches
    parent: {table: batches, id: batch_id, status: status}
    children: {table: files, parent_id: batch_id, status: status}
    success: [OK]
    failure: [FAILED]
    expect: {all_succeeded: [completed], some_failed: [partial], all_failed: [failed],
             unfinished: [running]}
  - {type: reference, name: customers exist, each: {table: orders, key: customer},
     has: {table: customers, key: customer_id}}
  - {type: sql, name: negative amounts, query: "select id from orders where amount < 0"}
  - {type: freshness, name: fresh, table: orders, column: loaded_at, max_age: 1d,
     now: as_of}
"""

DATA = """\
create table orders (id integer, day date, customer varchar, amount double,
                     loaded_at timestamp);
insert into orders values
  (1, '2025-11-06', 'C1', 10.0, '2025-11-06 08:00:00'),
  (2, '2025-11-06', 'C2', null, '2025-11-06 09:00:00'),
  (3, '2025-11-06', 'C9', -5.0, '2025-11-06 10:00:00'),
  (4, '2025-11-05', null, 7.5, '2025-11-05 10:00:00');
create table expected_orders (id integer);
insert into expected_orders values (1), (2), (3), (4), (5);
create table customers (customer_id varchar);
insert into customers values ('C1'), ('C2');
create table batches (batch_id varchar, status varchar);
insert into batches values ('B1', 'completed'), ('B2', 'completed'), ('B3', 'running');
create table files (batch_id varchar, status varchar);
insert into files values ('B1', 'OK'), ('B2', 'OK'), ('B2', 'FAILED'), ('B3', 'OK');
"""


def outcome(verdict: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (c["name"], c["status"], c.get("observed"), _ids(c.get("failures") or []))
        for c in verdict["checks"]
    ]


def _ids(failures: list[dict[str, Any]]) -> list[str]:
    return sorted(str(f.get("id", f.get("key", f))) for f in failures)


def test_every_sql_check_type_judges_spark_tables_as_duckdb_does(
    spark: Any, tmp_path: Path
) -> None:
    duck = Database("duckdb", tmp_path / "w.duckdb")
    duck.run(DATA)
    mirror(spark, duck.path)
    verdicts = {}
    for kind, url in (("duckdb", duck.url), ("spark", LOCAL_URL)):
        path = tmp_path / f"{kind}.yml"
        path.write_text(
            "suite: same\nparams:\n  day: {type: date, default: 2025-11-06}\n"
            "  as_of: {type: string, default: '2025-11-06T12:00:00'}\n"
            f'sources: {{w: {{url: "{url}"}}}}\nchecks:\n{CHECKS}'
        )
        verdicts[kind] = check_verdict(run_suite(load_suite(path, {}, env={})))
    assert outcome(verdicts["spark"]) == outcome(verdicts["duckdb"])
    statuses = [c["status"] for c in verdicts["spark"]["checks"]]
    assert statuses == ["PASS", "FAIL", "FAIL", "FAIL", "FAIL", "FAIL", "PASS"]


def test_the_shared_scan_is_one_aggregate_query_per_relation_on_spark(
    spark: Any, tmp_path: Path
) -> None:
    duck = Database("duckdb", tmp_path / "w.duckdb")
    duck.run(DATA)
    mirror(spark, duck.path)
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            suite: shared
            sources: {{w: {{url: "{LOCAL_URL}"}}}}
            checks:
              - {{type: row_count, name: all, table: orders, min: 1}}
              - {{type: row_count, name: today, table: orders, where: "day = DATE'2025-11-06'",
                 min: 1}}
              - {{type: not_null, name: amounts, table: orders, columns: [amount]}}
            """
        )
    )
    verdict = check_verdict(run_suite(load_suite(path, {}, env={})))
    sqls = {q["sql"] for q in verdict["queries"]}
    scans = [s for s in sqls if s.startswith("SELECT count(*)") and "FROM orders" in s]
    assert len(scans) == 1, sqls
    assert "FILTER (WHERE (day = DATE'2025-11-06'" in scans[0]


# --- the README's nightly suite, only its warehouse URL changed ---------------------------------


def readme_suite() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## A suite\n\n```yaml\n(.*?)```", readme, re.S)
    assert block is not None
    return block.group(1)


NIGHTLY = """\
create table batch_runs (run_date date, run_id varchar);
insert into batch_runs values ('2025-11-06', 'run_20251106_010000'), ('2025-11-06', 'run_20251106_020000'),
                              ('2025-11-06', 'run_20251106_030000');
create table portfolios (portfolio_id varchar, is_active boolean);
insert into portfolios values ('P1', true), ('P2', true), ('P3', true), ('P4', false);
create table portfolio_snapshots (portfolio_id varchar, snapshot_date date,
                                  daily_pnl decimal(18, 2), cumulative_pnl decimal(18, 2));
insert into portfolio_snapshots values ('P1', '2025-11-06', 1, 10), ('P2', '2025-11-06', null, 20),
                                       ('P3', '2025-11-06', null, null),
                                       ('P2', '2025-11-05', 2, 19);
create table processing_jobs (batch_id varchar, status varchar, total_files integer,
                              files_success integer, files_failed integer);
insert into processing_jobs values ('B7', 'processing', 2, 2, 0), ('B8', 'completed', 1, 1, 0),
                                   ('B9', 'failed', 2, 1, 1);
create table file_extractions (run_id varchar, status varchar);
insert into file_extractions values ('B7', 'SUCCESS'), ('B7', 'SUCCESS'), ('B8', 'SUCCESS'),
                                    ('B9', 'SUCCESS'), ('B9', 'FAILED');
"""


def test_the_readme_nightly_suite_gives_the_same_verdict_on_spark(
    spark: Any, tmp_path: Path
) -> None:
    """The suite of the README, verbatim, with only WAREHOUSE_URL pointing at Spark: the same
    verdict and the same failing ids (NULL P&L in P2 and P3, batches B7 and B9 inconsistent,
    run_20251106_020000.json truncated, run_20251106_030000.json missing)."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "results").mkdir()
    shutil.copytree(ROOT / "expectations", tmp_path / "expectations")
    suite = tmp_path / "checks" / "nightly.yml"
    suite.write_text(readme_suite())
    database = Database("duckdb", tmp_path / "data" / "portfolio.duckdb")
    database.run(NIGHTLY)
    mirror(spark, database.path)
    document = {
        "run_id": "run_20251106_010000",
        "pipeline": "P",
        "status": "completed",
        "steps": [{"name": "load", "status": "completed"}],
    }
    (tmp_path / "results" / "run_20251106_010000.json").write_text(json.dumps(document))
    (tmp_path / "results" / "run_20251106_020000.json").write_text(json.dumps(document)[:40])
    (tmp_path / "results" / "batch_B7.json").write_text('{"batch_id": "B7"}')
    found = {}
    for url in (database.url, LOCAL_URL):
        verdict = run_suite(
            load_suite(suite, {"run_date": "2025-11-06"}, env={"WAREHOUSE_URL": url})
        )
        data = check_verdict(verdict)
        found[url] = (data["verdict"], outcome(data))
    duck, on_spark = found.values()
    assert on_spark == duck
    assert duck[0] == "FAIL"
    assert [status for _, status, _, _ in duck[1]] == ["FAIL", "PASS", "FAIL", "FAIL"]


# --- expectation_suite compiled to Spark SQL, schema (pandera) over an Arrow sample -------------


def test_expectation_suite_and_schema_judge_spark_tables_as_duckdb_does(
    spark: Any, tmp_path: Path
) -> None:
    """The demo's GX suite (regex included: RLIKE on Spark) and its pandera schema of
    snapshots, over a batch with NULL P&L and missing snapshots: the same results on both."""
    demo = build_demo(tmp_path / "demo", faults=("null-pnl", "missing-snapshots"))
    mirror(spark, demo.database)
    expectations = ROOT / "expectations"
    checks = f"""\
  - type: expectation_suite
    name: gx
    table: portfolio_snapshots
    where: snapshot_date = :run_date
    suite: {expectations / "portfolio_snapshots.gx.json"}
  - type: schema
    name: pandera
    table: portfolio_snapshots
    where: snapshot_date = :run_date
    key: [portfolio_id]
    schema: {expectations / "portfolio_snapshots.pandera.yml"}
"""
    verdicts = {}
    for kind, url in (("duckdb", f"duckdb:///{demo.database}"), ("spark", LOCAL_URL)):
        path = tmp_path / f"{kind}.yml"
        path.write_text(
            "suite: same\nparams:\n  run_date: {type: date, required: true}\n"
            f'sources: {{w: {{url: "{url}"}}}}\nchecks:\n{checks}'
        )
        suite = load_suite(path, {"run_date": demo.params["run_date"]}, env={})
        verdicts[kind] = check_verdict(run_suite(suite))
    assert outcome(verdicts["spark"]) == outcome(verdicts["duckdb"])
    assert [c["status"] for c in verdicts["spark"]["checks"]] == ["FAIL", "FAIL"]
    spark_sql_sent = " ".join(q["sql"] for q in verdicts["spark"]["queries"])
    assert "RLIKE" in spark_sql_sent
