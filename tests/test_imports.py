"""What a postrun process imports: a CI gate starts thousands of times, so each command loads
only what it uses. Pins modules, not timings (bench/startup.py measures those)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.sqlguard import _DENIED, _plainly_read, _problem
from tests.conftest import Database

PROBE = """\
import json, os, sys
from runner.cli import app
sys.argv = ["postrun", *sys.argv[1:]]
try:
    app()
except SystemExit as stop:
    code = stop.code
with open(os.environ["POSTRUN_PROBE"], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""
"""Runs the CLI in a fresh interpreter, then records the exit code and every module loaded."""

DATAFRAMES = ["pandas", "pyarrow", "great_expectations", "pandera", "polars", "pyspark", "grpc"]
"""Libraries only the expectation_suite fallback, the schema check and a Spark source load."""


def loaded(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    probe = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env | {"POSTRUN_PROBE": str(probe)},
        capture_output=True,
        check=True,
        timeout=120,
    )
    result = json.loads(probe.read_text())
    return result["code"], set(result["modules"])


def imported(modules: set[str], *names: str) -> list[str]:
    """Those of ``names`` that were imported (a package or any module inside it)."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


@pytest.fixture
def duckdb_suite(duck: Database, tmp_path: Path) -> Path:
    """Five checks on one DuckDB file, with plain SQL: a typical small gate."""
    duck.run(
        """
        create table portfolios (portfolio_id varchar, is_active boolean);
        insert into portfolios values ('PF-1', true), ('PF-2', false);
        create table snapshots (portfolio_id varchar, snapshot_date date, pnl double);
        insert into snapshots values ('PF-1', '2025-11-06', 1.5);
        create table runs (run_id integer, status varchar);
        insert into runs values (1, 'SUCCESS');
        create table files (run_id integer, status varchar);
        insert into files values (1, 'SUCCESS');
        """
    )
    suite = tmp_path / "gate.yml"
    suite.write_text(
        textwrap.dedent(
            f"""\
            suite: gate
            params:
              run_date: {{type: date, default: 2025-11-06}}
            sources:
              warehouse: {{url: "{duck.url}"}}
            checks:
              - {{type: row_count, table: snapshots, where: "snapshot_date = :run_date", min: 1}}
              - {{type: not_null, table: snapshots, columns: [pnl], key: [portfolio_id]}}
              - type: reference
                each: {{table: portfolios, where: is_active, key: portfolio_id}}
                has: {{table: snapshots, key: portfolio_id}}
              - type: status_consistency
                parent: {{table: runs, id: run_id, status: status}}
                children: {{table: files, parent_id: run_id, status: status}}
                success: [SUCCESS]
                failure: [FAILED]
                expect: {{all_succeeded: [SUCCESS], some_failed: [PARTIAL], all_failed: [FAILED]}}
              - {{type: sql, query: "select run_id from runs where status not in ('SUCCESS')"}}
            """
        )
    )
    return suite


def test_imports_help_loads_no_library_a_command_needs(tmp_path: Path) -> None:
    code, modules = loaded(tmp_path, "--help")
    assert code == 0
    heavy = ["sqlalchemy", "duckdb", "duckdb_engine", "psycopg", "pydantic", "sqlglot", "jinja2"]
    assert imported(modules, *heavy, "jsonschema", "ruamel", *DATAFRAMES) == []
    assert imported(modules, "runner.engine", "runner.suite", "runner.results") == []


def test_imports_duckdb_check_with_json_report(duckdb_suite: Path, tmp_path: Path) -> None:
    code, modules = loaded(tmp_path, "check", str(duckdb_suite), "--out", "out", "--format", "json")
    assert code == 0
    assert (tmp_path / "out" / "verdict.json").is_file()
    assert imported(modules, "duckdb", "sqlalchemy", "pydantic") == [
        "duckdb",
        "sqlalchemy",
        "pydantic",
    ]
    # DuckDB runs on its own connection, with no SQLAlchemy engine and so no duckdb_engine
    assert imported(modules, "duckdb_engine") == []
    # no PostgreSQL driver, no HTML/JUnit/Markdown renderer, no JSON Schema validator, and
    # plain SQL passes the read-only guard without sqlglot
    unused = ["psycopg", "jinja2", "jsonschema", "sqlglot", "xml.etree"]
    assert imported(modules, *unused, *DATAFRAMES) == []
    renderers = ["runner.render.html", "runner.render.junit", "runner.render.markdown"]
    assert imported(modules, *renderers) == []
    # no file checks in the suite: no file inspector, no simdjson (orjson writes the verdict)
    assert imported(modules, "runner.sources.json_files", "simdjson") == []


def test_imports_json_integrity_default_is_the_inspector_default() -> None:
    from runner.checks.json_integrity import DEFAULT_MAX_BYTES
    from runner.sources import json_files

    assert DEFAULT_MAX_BYTES == json_files.DEFAULT_MAX_BYTES


def test_imports_all_formats_load_their_renderers(duckdb_suite: Path, tmp_path: Path) -> None:
    code, modules = loaded(tmp_path, "check", str(duckdb_suite), "--out", "out")
    assert code == 0
    assert imported(modules, "jinja2", "xml.etree") == ["jinja2", "xml.etree"]
    assert imported(modules, "matplotlib", "runner.history.page") == []  # history.html only
    assert imported(modules, "psycopg", "jsonschema", *DATAFRAMES) == []


def test_imports_postgresql_suite_loads_no_duckdb(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    suite = tmp_path / "pg.yml"
    suite.write_text(
        "suite: pg\n"
        f"sources: {{db: {{url: 'postgresql://gate@127.0.0.1:{port}/nowhere'}}}}\n"
        "checks: [{type: sql, query: 'select 1 where false'}]\n"
    )
    code, modules = loaded(tmp_path, "validate", str(suite))
    assert code == 0
    assert imported(modules, "duckdb", "duckdb_engine", "psycopg", "jinja2", *DATAFRAMES) == []
    code, modules = loaded(tmp_path, "check", str(suite), "--out", "out", "--format", "json")
    assert code == 3  # ERROR / connectivity
    assert imported(modules, "psycopg") == ["psycopg"]
    assert imported(modules, "duckdb", "duckdb_engine", "jinja2", *DATAFRAMES) == []


# --- the read-only guard's shortcut: plain SQL needs no sqlglot, and it never lets more pass ---

VOCABULARY = (  # noqa: SIM905 - SQL-ish tokens, dangerous ones included
    "select from where and or not in exists ( ) ( ) , = <> + * . :p ::int 1 2.5 'x' '(' ')' ''''"
    " t a b as on join group by order limit case when then end is null over partition count"
    " with recursive union all except into for update share delete insert set copy pragma call"
    " returning lock nextval setval dblink_exec checkpoint show explain fetch rename optimize"
    " describe summarize pivot values table drop create attach load install begin commit ; --"
    ' /* " $1 \\ [ ] replace lower coalesce query_to_xml ts_stat query business_days my_udf'
    " pg_catalog main cast filter decimal"
).split()


@settings(max_examples=400, deadline=None, database=None)
@given(
    body=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=14).map(" ".join),
    fragment=st.sampled_from(["query", "where"]),
)
def test_imports_sqlguard_shortcut_only_passes_what_sqlglot_passes(
    body: str, fragment: Literal["query", "where"]
) -> None:
    sql = f"select {body}" if fragment == "query" else body
    if _plainly_read(sql, fragment):
        assert _problem(sql, fragment, fragment) is None, sql


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("with x as (show tables) select 1", "query"),  # sqlglot reads a command in a CTE
        ("select * from (with x as (explain select 1) select 1)", "query"),
        ("x = '(' ) or (y = ')'", "where"),  # closes the wrapping parenthesis
        ("1=1) union (select 2", "where"),
        ("select a from t for update", "query"),
        ("select 1 into t", "query"),
        ("select dblink_exec('x')", "query"),
        ('select "nextval"(1)', "query"),
        ("select query_to_xml('select 1', true, false, '')", "query"),
        ("select lower (query_to_xml('x'))", "query"),
        ("a = ts_stat('select 1')", "where"),
        ("select business_days(d) from t", "query"),  # on no list: sqlglot says which
        ("select pg_catalog.lower(a)", "query"),  # qualified: sqlglot reads the schema
        ("select * from range(3) t(i)", "query"),  # an alias with columns, or a call of t?
        ("select 1 -- ; drop table t", "query"),
        ("select 'a\\' ; drop table t; --'", "query"),
        ("(select 1)", "query"),
        ("", "query"),
    ],
)
def test_imports_sqlguard_shortcut_leaves_anything_unusual_to_sqlglot(
    sql: str, fragment: Literal["query", "where"]
) -> None:
    assert not _plainly_read(sql, fragment)


def test_imports_sqlguard_shortcut_vouches_only_for_allowed_calls() -> None:
    plain = "select lower(a), count(*) from t where b in (1, 2) and c = cast(d as decimal(5, 2))"
    assert _plainly_read(plain, "query")
    assert _plainly_read("select business_days(d) from t", "query", frozenset({"business_days"}))
    denied = [pattern.replace("*", "x") for pattern in _DENIED]
    assert [name for name in denied if _plainly_read(f"select {name}(1)", "query")] == []
    allowing = [n for n in denied if _plainly_read(f"select {n}(1)", "query", frozenset({n}))]
    assert allowing == []


def test_imports_matplotlib_only_for_history_html(duckdb_suite: Path, tmp_path: Path) -> None:
    assert loaded(tmp_path, "check", str(duckdb_suite), "--out", "out")[0] == 0
    code, modules = loaded(tmp_path, "history", str(duckdb_suite), "--format", "json")
    assert code == 0
    assert imported(modules, "matplotlib", "jinja2") == []
    code, modules = loaded(tmp_path, "history", str(duckdb_suite), "--format", "html")
    assert code == 0
    assert (tmp_path / "reports" / "gate" / "history.html").is_file()
    assert imported(modules, "matplotlib") == ["matplotlib"]
    assert imported(modules, "matplotlib.pyplot", *DATAFRAMES) == []
