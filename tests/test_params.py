"""Params: typed values from --param, POSTRUN_PARAM_<NAME> or the default, and where paths land."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite, run_suite
from runner.errors import UsageError
from runner.params import (
    ParamSpec,
    interpolate,
    placeholders,
    placeholders_in_sql,
    resolve_params,
)
from runner.suite import parse_suite
from tests.conftest import Database, check_verdict, only_check

SUITE_DIR = Path("/suites/checks")
CWD = Path("/work/run")


def resolve(
    specs: dict[str, dict[str, Any]],
    given: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    return resolve_params(
        {name: ParamSpec(**spec) for name, spec in specs.items()},
        given or {},
        suite_dir=SUITE_DIR,
        env=env or {},
        cwd=CWD,
    )


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("string", "PF-1", "PF-1"),
        ("string", " padded ", " padded "),
        ("int", "42", 42),
        ("int", "-3", -3),
        ("float", "0.25", 0.25),
        ("float", "7", 7.0),
        ("bool", "true", True),
        ("bool", "Yes", True),
        ("bool", "on", True),
        ("bool", "1", True),
        ("bool", "false", False),
        ("bool", "NO", False),
        ("bool", "off", False),
        ("bool", "0", False),
        ("date", "2025-11-06", date(2025, 11, 6)),
        ("path", "results/today", "/work/run/results/today"),
        ("path", "/data/results", "/data/results"),
        ("list", "PF-1, PF-2,PF-3", ["PF-1", "PF-2", "PF-3"]),
        ("list", "solo", ["solo"]),
        ("list", "", []),
    ],
)
def test_params_coerce_command_line_text(kind: str, text: str, value: Any) -> None:
    assert resolve({"p": {"type": kind}}, {"p": text}) == {"p": value}


@pytest.mark.parametrize(
    ("kind", "default", "value"),
    [
        ("string", "abc", "abc"),
        ("int", 3, 3),
        ("float", 2, 2.0),
        ("bool", False, False),
        ("date", date(2025, 11, 6), date(2025, 11, 6)),
        ("date", "2025-11-06", date(2025, 11, 6)),
        ("path", "./results", "/suites/checks/results"),
        ("path", "../expectations/x.json", "/suites/expectations/x.json"),
        ("list", ["a", "b"], ["a", "b"]),
        ("list", "a,b", ["a", "b"]),
    ],
)
def test_params_take_typed_defaults_paths_against_suite_folder(
    kind: str, default: Any, value: Any
) -> None:
    assert resolve({"p": {"type": kind, "default": default}}) == {"p": value}


@pytest.mark.parametrize(
    ("given", "env", "value"),
    [
        ({"n": "1"}, {"POSTRUN_PARAM_N": "2"}, 1),
        ({}, {"POSTRUN_PARAM_N": "2"}, 2),
        ({}, {}, 3),
        ({}, {"POSTRUN_PARAM_n": "2", "N": "4"}, 3),
    ],
    ids=["cli-beats-env", "env-beats-default", "default", "env-name-is-exact"],
)
def test_params_precedence_cli_env_default(
    given: dict[str, str], env: dict[str, str], value: int
) -> None:
    assert resolve({"n": {"type": "int", "default": 3}}, given, env) == {"n": value}


def test_params_without_value_or_default_are_none() -> None:
    assert resolve({"batch_id": {}, "n": {"type": "int"}}) == {"batch_id": None, "n": None}


def test_params_env_path_resolves_against_cwd() -> None:
    specs = {"out": {"type": "path", "default": "./results"}}
    assert resolve(specs, env={"POSTRUN_PARAM_OUT": "mine"}) == {"out": "/work/run/mine"}


@pytest.mark.parametrize(
    ("specs", "given", "message"),
    [
        (
            {"run_date": {"type": "date", "required": True}},
            {},
            "param 'run_date' is required: pass --param run_date=… or set POSTRUN_PARAM_RUN_DATE",
        ),
        (
            {"run_date": {"type": "date"}},
            {"run_date": "yesterday"},
            "param 'run_date' must be a date, got 'yesterday': Invalid isoformat string:"
            " 'yesterday'",
        ),
        (
            {"n": {"type": "int"}},
            {"n": "1.5"},
            "param 'n' must be an int, got '1.5': invalid literal for int() with base 10: '1.5'",
        ),
        (
            {"ratio": {"type": "float"}},
            {"ratio": "half"},
            "param 'ratio' must be a float, got 'half': could not convert string to float: 'half'",
        ),
        (
            {"strict": {"type": "bool"}},
            {"strict": "maybe"},
            "param 'strict' must be a bool, got 'maybe': use true or false",
        ),
        (
            {"run_date": {"type": "date"}, "batch_id": {}},
            {"rundate": "2025-11-06"},
            "unknown param 'rundate' (did you mean 'run_date'?); the suite declares: run_date,"
            " batch_id",
        ),
        (
            {"run_date": {"type": "date"}},
            {"color": "red"},
            "unknown param 'color'; the suite declares: run_date",
        ),
        ({}, {"color": "red"}, "unknown param 'color'; the suite declares: none"),
    ],
    ids=[
        "required",
        "bad-date",
        "bad-int",
        "bad-float",
        "bad-bool",
        "unknown-did-you-mean",
        "unknown",
        "unknown-none-declared",
    ],
)
def test_params_usage_errors_name_the_param(
    specs: dict[str, dict[str, Any]], given: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(specs, given)
    assert str(caught.value) == message


def test_params_bad_env_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        resolve({"n": {"type": "int"}}, env={"POSTRUN_PARAM_N": "many"})
    assert str(caught.value) == (
        "param 'n' must be an int, got 'many': invalid literal for int() with base 10: 'many'"
    )


@pytest.mark.parametrize(
    ("text", "env", "params", "expected"),
    [
        ("postgresql://u:${PW}@db/x", {"PW": "s3cret"}, {}, "postgresql://u:s3cret@db/x"),
        ("duckdb:///${DB:-demo.duckdb}", {}, {}, "duckdb:///demo.duckdb"),
        ("duckdb:///${DB:-demo.duckdb}", {"DB": "mine.duckdb"}, {}, "duckdb:///mine.duckdb"),
        ("duckdb:///${DB:-}", {}, {}, "duckdb:///"),
        ("{dir}/run_*.json", {}, {"dir": "/data"}, "/data/run_*.json"),
        ("{ids}", {}, {"ids": ["a", "b"]}, "a,b"),
        ("{d}/x", {}, {"d": date(2025, 11, 6)}, "2025-11-06/x"),
    ],
)
def test_params_interpolate_env_and_params(
    text: str, env: dict[str, str], params: dict[str, Any], expected: str
) -> None:
    assert interpolate(text, params, env=env, what="source 'w'")[0] == expected


def test_params_interpolate_marks_characters_from_outside() -> None:
    value, outside = interpolate("a${E}b{p}c", {"p": "PP"}, env={"E": "EE"}, what="x")
    assert value == "aEEbPPc"
    assert "".join("o" if o else "s" for o in outside) == "soosoos"


@pytest.mark.parametrize(
    ("text", "params", "message"),
    [
        (
            "postgresql://u:${PGPASS}@db/x",
            {},
            "source 'w': environment variable PGPASS is not set and has no default",
        ),
        ("duckdb:///{db}", {"db": None}, "source 'w': param 'db' has no value; pass --param db=…"),
    ],
)
def test_params_interpolate_missing_value(text: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        interpolate(text, params, env={}, what="source 'w'")
    assert str(caught.value) == message


def test_params_placeholders_split_env_and_params() -> None:
    assert placeholders("${A}/{b}/${C:-x}/{d}") == (["A", "C"], ["b", "d"])


# --- where relative paths land (SPEC §2, last rule) ----------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the suite in checks/, data in data/, and a run folder elsewhere."""
    for folder in ("checks", "data", "run"):
        (tmp_path / folder).mkdir()
    (tmp_path / "checks" / "suite.yml").write_text(
        textwrap.dedent(
            """\
            suite: nightly
            params:
              out: {type: path, default: ./results}
              db: {type: path}
            sources:
              warehouse: {url: "duckdb:///${WAREHOUSE:-../data/w.duckdb}"}
              by_param: {url: "duckdb:///{db}"}
              results: {files: "{out}/run_*.json"}
              written: {files: "../results/*.json"}
            checks:
              - {type: row_count, table: portfolios, min: 0, source: warehouse}
            """
        )
    )
    return tmp_path


def bound_sources(project: Path, given: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    suite = parse_suite(project / "checks" / "suite.yml").bind(given, env=env, cwd=project / "run")
    return {name: config.url or list(config.patterns) for name, config in suite.sources.items()}


def test_params_suite_written_paths_resolve_against_suite_folder(project: Path) -> None:
    assert bound_sources(project, {"db": "x.duckdb"}, {}) == {
        "warehouse": f"duckdb:///{project}/data/w.duckdb",
        "by_param": f"duckdb:///{project}/run/x.duckdb",
        "results": [f"{project}/checks/results/run_*.json"],
        "written": [f"{project}/results/*.json"],
    }


def test_params_outside_values_resolve_against_cwd(project: Path) -> None:
    env = {"WAREHOUSE": "w2.duckdb", "POSTRUN_PARAM_OUT": "out", "POSTRUN_PARAM_DB": "e.duckdb"}
    assert bound_sources(project, {}, env) == {
        "warehouse": f"duckdb:///{project}/run/w2.duckdb",
        "by_param": f"duckdb:///{project}/run/e.duckdb",
        "results": [f"{project}/run/out/run_*.json"],
        "written": [f"{project}/results/*.json"],
    }


def test_params_absolute_env_url_is_kept(project: Path) -> None:
    sources = bound_sources(project, {"db": "/abs/x.duckdb"}, {"WAREHOUSE": "/abs/w.duckdb"})
    assert (sources["warehouse"], sources["by_param"]) == (
        "duckdb:////abs/w.duckdb",
        "duckdb:////abs/x.duckdb",
    )


def test_params_env_and_suite_urls_reach_different_databases(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same relative text means the suite's folder when written, the cwd when given."""
    in_suite_dir = Database("duckdb", project / "data" / "w.duckdb")
    in_suite_dir.run("create table portfolios (id int); insert into portfolios values (1);")
    in_cwd = Database("duckdb", project / "run" / "data" / "w.duckdb")
    (project / "run" / "data").mkdir()
    in_cwd.run("create table portfolios (id int); insert into portfolios values (1), (2);")
    monkeypatch.chdir(project / "run")
    path = project / "checks" / "suite.yml"
    written = run_suite(load_suite(path, {"db": "x"}, env={}))
    given = run_suite(load_suite(path, {"db": "x"}, env={"WAREHOUSE": "data/w.duckdb"}))
    assert [only_check(v)["observed"] for v in (written, given)] == [{"count": 1}, {"count": 2}]


# --- params reach SQL as bound values, never as text ----------------------------------------


def test_params_list_expands_as_bound_list(db: Database, tmp_path: Path) -> None:
    db.run(
        """
        create table portfolios (id integer, name varchar(10));
        insert into portfolios values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');
        """
    )
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            suite: nightly
            params:
              names: {{type: list}}
            sources:
              w: {{url: "{db.url}"}}
            checks:
              - {{type: row_count, table: portfolios, where: "name in :names", equals: 3}}
              - {{type: row_count, query: "select * from portfolios where name in :names",
                  equals: 3}}
            """
        )
    )
    verdict = run_suite(load_suite(path, {"names": "a,c,d"}, env={}))
    check_verdict(verdict)
    assert [(c.status, c.observed) for c in verdict.checks] == [
        ("PASS", {"count": 3}),
        ("PASS", {"count": 3}),
    ]


def test_params_value_with_sql_is_bound_literally(db: Database, tmp_path: Path) -> None:
    hostile = "x'; drop table portfolios; --"
    db.run(
        """
        create table portfolios (id integer, name varchar(40));
        insert into portfolios values (1, 'x'), (2, 'x''; drop table portfolios; --');
        """
    )
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            suite: nightly
            params:
              name: {{type: string}}
            sources:
              w: {{url: "{db.url}"}}
            checks:
              - {{type: sql, query: "select id from portfolios where name = :name"}}
              - {{type: row_count, table: portfolios, equals: 2}}
            """
        )
    )
    verdict = run_suite(load_suite(path, {"name": hostile}, env={}))
    check_verdict(verdict)
    assert [(c.status, c.failures, c.observed) for c in verdict.checks] == [
        ("FAIL", [{"id": 2}], {"rows": 1}),
        ("PASS", [], {"count": 2}),
    ]


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("select 1", []),
        ("where d = {run_date}", [("run_date", False)]),
        ("where d = '{run_date}'", [("run_date", True)]),
        ("where m like '%{error}%' and n = {n}", [("error", True), ("n", False)]),
        ("where m = 'it''s {x}' and {y} = 1", [("x", True), ("y", False)]),
        ("select {'a': 1} as s", []),  # a DuckDB struct literal is not a placeholder
    ],
)
def test_params_placeholders_in_sql(sql: str, found: list[tuple[str, bool]]) -> None:
    assert placeholders_in_sql(sql) == found


def test_params_brace_text_in_a_string_is_allowed(tmp_path: Path) -> None:
    """Inside a string literal only a declared param's name is taken for a mistake."""
    suite = tmp_path / "s.yml"
    suite.write_text(
        "suite: s\nsources:\n  w: {url: 'duckdb:///:memory:'}\nchecks:\n"
        "  - {type: sql, query: \"select 1 where 'x{error}' like '%{error}%'\"}\n"
    )
    assert parse_suite(suite).checks[0].type == "sql"
