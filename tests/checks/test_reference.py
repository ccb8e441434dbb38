"""reference: every key of `each` has a match in `has` (seeds 004 and 001), same or two sources."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import duckdb_engine
import pytest
from sqlalchemy.dialects import postgresql

from runner.checks import registry
from runner.checks.reference import ReferenceSpec, key_counts, unmatched_keys
from runner.context import Context
from runner.errors import SuiteError
from runner.suite import load_suite
from tests.conftest import Database, RunYaml, only_check

MISSING = ["PF-0003", "PF-0011", "PF-0020", "PF-0037", "PF-0052"]
RUN_DATE = "params:\n  run_date: {type: date, required: true}\n"


def suite(check: str, sources: dict[str, Database], *, params: str = "") -> str:
    """A one-check suite; ``check`` is the check's YAML body (without `type`)."""
    listing = "".join(f'  {name}: {{url: "{db.url}"}}\n' for name, db in sources.items())
    body = textwrap.indent(textwrap.dedent(check).strip(), "    ")
    return f"suite: t\n{params}sources:\n{listing}checks:\n  - type: reference\n{body}\n"


def result(verdict: Any) -> dict[str, Any]:
    """The single check result without its volatile duration."""
    data = only_check(verdict)
    del data["duration_s"]
    return data


def portfolios(db: Database) -> None:
    """Seed 004: 58 active portfolios (and 4 closed ones); 5 active ones lack the 11-06 snapshot."""
    ids = [f"PF-{i:04d}" for i in range(1, 63)]
    active = ", ".join(
        f"('{pid}', {'true' if i <= 58 else 'false'})" for i, pid in enumerate(ids, 1)
    )
    snapped = [pid for pid in ids if pid not in MISSING]
    snapshots = ", ".join(f"('{pid}', '2025-11-06', 1.0)" for pid in snapped)
    db.run(
        f"""
        create table portfolios (portfolio_id varchar(10), is_active boolean);
        insert into portfolios values {active};
        create table portfolio_snapshots (portfolio_id varchar(10), snapshot_date date, pnl float);
        insert into portfolio_snapshots values {snapshots};
        insert into portfolio_snapshots values ('PF-0003', '2025-11-05', 2.0);
        """
    )


SNAPSHOT_CHECK = """
    each: {table: portfolios, where: is_active, key: portfolio_id}
    has: {table: portfolio_snapshots, where: "snapshot_date = :run_date", key: portfolio_id}
"""


def test_reference_names_active_portfolios_without_a_snapshot(
    anydb: Database, run_yaml: RunYaml
) -> None:
    portfolios(anydb)
    verdict = run_yaml(
        suite(SNAPSHOT_CHECK, {"w": anydb}, params=RUN_DATE), {"run_date": "2025-11-06"}
    )
    assert result(verdict) == {
        "name": "reference:portfolios->portfolio_snapshots",
        "type": "reference",
        "source": "w",
        "severity": "error",
        "status": "FAIL",
        "message": "5 of 58 keys of portfolios have no match in portfolio_snapshots: "
        "PF-0003, PF-0011, PF-0020, PF-0037, PF-0052",
        "observed": {"keys": 58, "null_keys": 0, "unmatched": 5},
        "expected": {"unmatched": 0, "has": "portfolio_snapshots"},
        "failures": [{"key": {"portfolio_id": pid}} for pid in MISSING],
        "failure_count": 5,
        "notes": [],
        "error": None,
        "queries": ["q1", "q2"],  # key counts, then the anti-join
    }


def test_reference_passes_when_every_portfolio_has_a_snapshot(
    anydb: Database, run_yaml: RunYaml
) -> None:
    portfolios(anydb)
    anydb.run("delete from portfolios where portfolio_id in ('PF-0003', 'PF-0011', 'PF-0020');")
    anydb.run(
        "update portfolios set is_active = false where portfolio_id in ('PF-0037', 'PF-0052');"
    )
    verdict = run_yaml(
        suite(SNAPSHOT_CHECK, {"w": anydb}, params=RUN_DATE), {"run_date": "2025-11-06"}
    )
    got = result(verdict)
    assert (got["status"], got["failure_count"], got["failures"]) == ("PASS", 0, [])
    assert got["message"] == "all 53 keys of portfolios have a match in portfolio_snapshots"


def test_reference_caps_the_sample_and_says_more(anydb: Database, run_yaml: RunYaml) -> None:
    portfolios(anydb)
    verdict = run_yaml(
        suite(SNAPSHOT_CHECK, {"w": anydb}, params=RUN_DATE), {"run_date": "2025-11-07"}
    )
    got = result(verdict)
    assert got["failure_count"] == 58
    assert len(got["failures"]) == 20
    assert got["message"] == (
        "58 of 58 keys of portfolios have no match in portfolio_snapshots: "
        "PF-0001, PF-0002, PF-0003, PF-0004, PF-0005, …"
    )


POSITIONS = """
    create table positions (portfolio_id varchar(10), symbol varchar(10), qty integer);
    insert into positions values
        ('PF-1', 'AAPL', 1), ('PF-1', 'MSFT', 2), ('PF-2', 'AAPL', 3), ('PF-2', 'AAPL', 4),
        ('PF-2', NULL, 5), (NULL, 'MSFT', 6), ('PF-3', 'TSLA', 7);
    create table prices (pid varchar(10), sym varchar(10), px float);
    insert into prices values ('PF-1', 'AAPL', 1.0), ('PF-2', 'MSFT', 2.0), ('PF-3', 'TSLA', 3.0),
        (NULL, NULL, 0.0);
"""


def test_reference_multi_column_keys_skip_and_count_null_parts(
    anydb: Database, run_yaml: RunYaml
) -> None:
    anydb.run(POSITIONS)
    check = """
        each: {table: positions, key: [portfolio_id, symbol]}
        has: {table: prices, key: [pid, sym]}
    """
    got = result(run_yaml(suite(check, {"w": anydb})))
    assert got["failures"] == [
        {"key": {"portfolio_id": "PF-1", "symbol": "MSFT"}},
        {"key": {"portfolio_id": "PF-2", "symbol": "AAPL"}},
    ]
    assert got["observed"] == {"keys": 4, "null_keys": 2, "unmatched": 2}
    assert got["message"] == (
        "2 of 4 keys of positions have no match in prices (2 rows with a NULL key skipped): "
        "(PF-1, MSFT), (PF-2, AAPL)"
    )


def test_reference_accepts_a_query_on_either_side(anydb: Database, run_yaml: RunYaml) -> None:
    anydb.run(POSITIONS)
    check = """
        each:
          query: select portfolio_id as pf, symbol from positions where qty > :min_qty
          key: [pf, symbol]
        has:
          query: select pid, sym from prices where px > 0
          key: [pid, sym]
    """
    params = "params:\n  min_qty: {type: int, default: 2}\n"
    got = result(run_yaml(suite(check, {"w": anydb}, params=params)))
    assert got["name"] == "reference:query->query"
    assert got["failures"] == [{"key": {"pf": "PF-2", "symbol": "AAPL"}}]
    assert got["observed"] == {"keys": 2, "null_keys": 2, "unmatched": 1}


BATCHES = """
    create table processing_jobs (batch_id varchar(10), status varchar(30));
    insert into processing_jobs values
        ('B-1', 'completed'), ('B-2', 'completed_with_errors'), ('B-3', 'processing'),
        ('B-4', 'completed'), (NULL, 'completed');
    create table run_summaries (run_id varchar(10), total_files integer);
    insert into run_summaries values ('B-1', 7), ('B-2', 5);
"""
SUMMARY_CHECK = """
    each:
      table: processing_jobs
      where: status = 'completed' or status = 'completed_with_errors'
      key: batch_id
    has: {table: run_summaries, key: run_id}
"""


@pytest.mark.parametrize(
    ("summary", "count"), [("", 1), ("insert into run_summaries values ('B-4', 3);", 0)]
)
def test_reference_every_completed_batch_has_a_run_summary(
    anydb: Database, run_yaml: RunYaml, summary: str, count: int
) -> None:
    # seed 001: the batch finished but aggregation rolled back, so no run_summaries row exists.
    # The OR in `where` must not swallow the NULL-key filter: the NULL batch is skipped, not missing.
    anydb.run(BATCHES + summary)
    got = result(run_yaml(suite(SUMMARY_CHECK, {"w": anydb})))
    assert (got["status"], got["failure_count"]) == ("FAIL" if count else "PASS", count)
    assert got["failures"] == ([{"key": {"batch_id": "B-4"}}] if count else [])
    assert got["observed"] == {"keys": 3, "null_keys": 1, "unmatched": count}


def test_reference_across_two_sources_compares_keys_as_text(
    tmp_path: Path, run_yaml: RunYaml
) -> None:
    warehouse = Database("duckdb", tmp_path / "warehouse.duckdb")
    ledger = Database("sqlite", tmp_path / "ledger.sqlite")
    warehouse.run(
        """
        create table accounts (account_id integer, region varchar, open boolean);
        insert into accounts values (7, 'eu', true), (8, 'eu', true), (9, 'us', true),
            (10, 'us', false), (NULL, 'eu', true), (11, 'eu', true);
        """
    )
    ledger.run(
        """
        create table balances (account text, region text, as_of date);
        insert into balances values ('7', 'eu', '2025-11-06'), ('9', 'us', '2025-11-06'),
            ('11', 'eu', '2025-11-05'), ('10', 'us', '2025-11-06');
        """
    )
    check = """
        source: warehouse
        each: {table: accounts, where: open, key: [account_id, region]}
        has:
          table: balances
          where: "as_of = :run_date"
          key: [account, region]
          source: ledger
    """
    sources = {"warehouse": warehouse, "ledger": ledger}
    verdict = run_yaml(suite(check, sources, params=RUN_DATE), {"run_date": "2025-11-06"})
    got = result(verdict)
    assert got["failures"] == [
        {"key": {"account_id": 11, "region": "eu"}},
        {"key": {"account_id": 8, "region": "eu"}},
    ]
    assert got["observed"] == {"keys": 4, "null_keys": 1, "unmatched": 2}
    assert got["message"] == (
        "2 of 4 keys of accounts have no match in balances (1 row with a NULL key skipped): "
        "(11, eu), (8, eu)"
    )


PROGRESS_PROBE = """\
import sys
from runner import load_suite, run_suite
from runner.checks import reference

seen = []
real = reference._load

def load(local, *args, **kwargs):
    seen.append(local.execute("select current_setting('enable_progress_bar')").fetchone()[0])
    real(local, *args, **kwargs)

reference._load = load
verdict = run_suite(load_suite(sys.argv[1], env={}))
print(verdict.checks[0].status.value, seen)
"""


def test_reference_across_sources_draws_no_progress_bar(tmp_path: Path) -> None:
    """The local DuckDB that joins the two sides' keys never draws its progress bar, which
    DuckDB turns on by default and writes to stdout (a gate's output) for a long anti-join.
    In a fresh process with no DuckDB source, so that no other connection set it before."""
    import subprocess
    import sys

    Database("sqlite", tmp_path / "a.sqlite").run(
        "create table a (id integer); insert into a values (1), (2);"
    )
    Database("sqlite", tmp_path / "b.sqlite").run(
        "create table b (id integer); insert into b values (1);"
    )
    check = """
        source: left
        each: {table: a, key: id}
        has: {table: b, key: id, source: right}
    """
    sources = {
        "left": Database("sqlite", tmp_path / "a.sqlite"),
        "right": Database("sqlite", tmp_path / "b.sqlite"),
    }
    (tmp_path / "suite.yml").write_text(suite(check, sources))
    done = subprocess.run(
        [sys.executable, "-c", PROGRESS_PROBE, str(tmp_path / "suite.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "FAIL [False, False]\n", "")


def test_reference_missing_table_is_an_error(anydb: Database, run_yaml: RunYaml) -> None:
    anydb.run("create table portfolios (portfolio_id varchar(10), is_active boolean);")
    got = result(run_yaml(suite(SNAPSHOT_CHECK.replace(":run_date", "'2025-11-06'"), {"w": anydb})))
    assert (got["status"], got["error"]["category"]) == ("ERROR", "schema_mismatch")


def test_reference_key_length_mismatch_is_a_config_error(tmp_path: Path) -> None:
    db = Database("duckdb", tmp_path / "x.duckdb")
    check = """
        each: {table: positions, key: [portfolio_id, symbol]}
        has: {table: prices, key: pid}
    """
    path = tmp_path / "suite.yml"
    path.write_text(suite(check, {"w": db}))
    with pytest.raises(SuiteError) as exc:
        load_suite(path, env={})
    assert str(exc.value) == (
        f"{path}:5: check #1 (reference): each.key has 2 column(s) but has.key has 1; "
        "they are compared pairwise, in order"
    )


SQL_SPEC = ReferenceSpec.model_validate(
    {
        "type": "reference",
        "name": "snapshots",
        "each": {"table": "portfolios", "where": "is_active", "key": "portfolio_id"},
        "has": {
            "query": "select portfolio_id from portfolio_snapshots where snapshot_date = :run_date",
            "key": "portfolio_id",
        },
    }
)

DUCKDB_SQL = """\
WITH postrun_each_rows AS 
(SELECT portfolio_id 
FROM portfolios 
WHERE (is_active
)), 
postrun_each_keys AS 
(SELECT DISTINCT postrun_each_rows.portfolio_id AS portfolio_id 
FROM postrun_each_rows 
WHERE postrun_each_rows.portfolio_id IS NOT NULL), 
postrun_has_rows AS 
(SELECT portfolio_id 
FROM (select portfolio_id from portfolio_snapshots where snapshot_date = %(run_date)s) AS q)
 SELECT postrun_each_keys.portfolio_id, count(*) OVER () AS postrun_total 
FROM postrun_each_keys 
WHERE NOT (EXISTS (SELECT 1 
FROM postrun_has_rows 
WHERE postrun_has_rows.portfolio_id = postrun_each_keys.portfolio_id)) ORDER BY postrun_each_keys.portfolio_id 
 LIMIT %(param_1)s"""  # noqa: W291


def test_reference_sql_duckdb() -> None:
    ctx = Context(
        SQL_SPEC, registry()[SQL_SPEC.type], sources={}, params={"run_date": "2025-11-06"}
    )
    stmt = ctx.violations_statement(unmatched_keys(SQL_SPEC, ctx))
    assert str(stmt.compile(dialect=duckdb_engine.Dialect())) == DUCKDB_SQL


def test_reference_sql_postgresql() -> None:
    ctx = Context(
        SQL_SPEC, registry()[SQL_SPEC.type], sources={}, params={"run_date": "2025-11-06"}
    )
    stmt = ctx.violations_statement(unmatched_keys(SQL_SPEC, ctx))
    expected = DUCKDB_SQL.replace("LIMIT %(param_1)s", "LIMIT %(param_1)s::INTEGER")
    assert str(stmt.compile(dialect=postgresql.dialect())) == expected
    assert str(key_counts(SQL_SPEC, ctx).compile(dialect=postgresql.dialect())) == (
        "WITH postrun_each_rows AS \n(SELECT portfolio_id \nFROM portfolios \nWHERE (is_active\n)), \n"
        "postrun_each_keys AS \n(SELECT DISTINCT postrun_each_rows.portfolio_id AS portfolio_id \n"
        "FROM postrun_each_rows \nWHERE postrun_each_rows.portfolio_id IS NOT NULL)\n"
        " SELECT (SELECT count(*) AS count_1 \nFROM postrun_each_keys) AS keys, "
        "(SELECT count(*) AS count_2 \nFROM postrun_each_rows \n"
        "WHERE postrun_each_rows.portfolio_id IS NULL) AS null_keys"
    )
