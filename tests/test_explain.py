"""What --explain prints is what a run sends: for every check type, on DuckDB, SQLite and
PostgreSQL, the statements a run records for a check (every one of them failing, so that its
samples are fetched too) are exactly those --explain builds for it, SQL for SQL."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner import RunOptions, load_suite, run_suite
from runner.checks import MODULES, registry
from runner.context import Context, compile_sql
from runner.explain import steps_of
from runner.plan import Plan
from tests.conftest import Database, check_verdict

SETUP = """
create table parents (id varchar(10), status varchar(20), pnl float, updated date);
insert into parents values ('B1', 'completed', 1.5, '2025-01-01'),
    ('B2', 'completed', null, '2025-01-01'), ('B3', null, 2.0, '2025-01-01');
create table children (parent_id varchar(10), status varchar(20));
insert into children values ('B1', 'FAILED'), ('B2', 'SUCCESS');
create table runs (name varchar(40));
insert into runs values ('run_1.json'), ('run_2.json');
"""

GX_SUITE = {
    "name": "parents",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "pnl"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "missing"}},
    ],
}
PANDERA = """\
schema_type: dataframe
version: 0.35.0
columns:
  pnl: {dtype: float64, nullable: false}
"""

CHECKS = """\
  - {type: row_count, name: counted, source: w, table: parents, equals: {table: children}}
  - {type: not_null, name: filled, source: w, table: parents, columns: [pnl, status], key: [id]}
  - {type: sql, name: bad rows, source: w, query: "select id from parents where pnl is null"}
  - {type: sql, name: one value, source: w, query: "select count(*) from parents", max: 1}
  - {type: freshness, name: fresh, source: w, table: parents, column: updated, max_age: 1d}
  - {type: reference, name: referenced, source: w, each: {table: children, key: parent_id},
     has: {table: parents, key: id, where: "status = 'failed'"}}
  - {type: reference, name: across, source: w, each: {table: children, key: parent_id},
     has: {table: parents, key: id, where: "status = 'failed'", source: other}}
  - type: status_consistency
    name: consistent
    source: w
    parent: {table: parents, id: id, status: status}
    children: {table: children, parent_id: parent_id, status: status}
    success: [SUCCESS]
    failure: [FAILED]
    expect: {all_succeeded: [completed], all_failed: [failed]}
  - {type: json_integrity, name: files, files: "results/*.json",
     expected: {query: "select name from runs", source: w}}
  - {type: expectation_suite, name: gx, source: w, table: parents, suite: parents.gx.json}
  - {type: schema, name: framed, source: w, table: parents, schema: parents.pandera.yml,
     backend: pandas}
  - {type: anomaly, name: unusual, source: w, metric: {query: "select count(*) from parents"},
     min_history: 1, max_ratio: 0.5}
"""


def suite_text(db: Database, other: Database) -> str:
    return (
        f'suite: explain\nsources:\n  w: {{url: "{db.url}"}}\n  other: {{url: "{other.url}"}}\n'
        + ("checks:\n" + textwrap.indent(textwrap.dedent(CHECKS), ""))
    )


def test_explain_covers_every_check_type() -> None:
    names = {
        line.split("type: ")[1].split(",")[0].split("\n")[0] for line in CHECKS.split("- ")[1:]
    }
    assert names == set(MODULES)


def test_explain_is_what_a_run_sends(db: Database, tmp_path: Path) -> None:
    db.run(SETUP)
    other = Database("duckdb", tmp_path / "other.duckdb")
    other.run(SETUP)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run_1.json").write_text('{"ok": true')  # cut: the check fails
    (tmp_path / "parents.gx.json").write_text(json.dumps(GX_SUITE))
    (tmp_path / "parents.pandera.yml").write_text(PANDERA)
    path = tmp_path / "suite.yml"
    path.write_text(suite_text(db, other))
    suite = load_suite(path, env={})
    history = f"sqlite:///{tmp_path / 'history.sqlite'}"
    learning = run_suite(suite, RunOptions(only=["unusual"], history=history))  # its past: 3
    assert learning.verdict == "PASS"
    verdict = run_suite(suite, RunOptions(sample_limit=3, history=history))
    data = check_verdict(verdict)
    assert [c["status"] for c in data["checks"]] == ["FAIL"] * len(suite.checks), [
        (c["name"], c["message"]) for c in data["checks"]
    ]
    sent = {q["id"]: q["sql"] for q in data["queries"]}
    kinds = registry()
    plan = Plan.of(suite.checks, kinds)
    sources = {name: config.open() for name, config in suite.sources.items()}
    try:
        for check, result in zip(suite.checks, data["checks"], strict=True):
            ctx = Context(
                check, kinds[check.type], sources, suite.params, sample_limit=3, plan=plan
            )
            explained = [
                compile_sql(step.statement, sources[step.source])
                for step in steps_of(ctx)
                if step.sent
            ]
            recorded = [sent[qid] for qid in result["queries"]]
            assert sorted(recorded) == sorted(explained), check.name
    finally:
        for source in sources.values():
            source.close()


@pytest.mark.parametrize("module", MODULES)
def test_explain_every_type_declares_what_it_sends(module: str) -> None:
    """A type that sends SQL of its own declares it (``queries``), or reads only through scans."""
    kind = registry()[module]
    assert kind.scans is not None or kind.queries is not None


def test_explain_duckdb_statements_compile_as_duckdb_engine_compiled_them(tmp_path: Path) -> None:
    """postrun compiles DuckDB's SQL with its own dialect (statements run on DuckDB's native
    connection); every statement of every check type comes out as duckdb-engine's dialect, which
    runs used before, wrote it."""
    import duckdb_engine

    from runner import statements

    duck = Database("duckdb", tmp_path / "w.duckdb")
    duck.run(SETUP)
    (tmp_path / "parents.gx.json").write_text(json.dumps(GX_SUITE))
    (tmp_path / "parents.pandera.yml").write_text(PANDERA)
    path = tmp_path / "suite.yml"
    path.write_text(suite_text(duck, duck))
    suite = load_suite(path, env={})
    kinds = registry()
    plan = Plan.of(suite.checks, kinds)
    sources = {name: config.open() for name, config in suite.sources.items()}
    theirs = duckdb_engine.Dialect(paramstyle="numeric_dollar")  # as its engine made it
    compared = 0
    try:
        for check in suite.checks:
            ctx = Context(
                check, kinds[check.type], sources, suite.params, sample_limit=3, plan=plan
            )
            for step in steps_of(ctx):
                ours = compile_sql(step.statement, sources[step.source])
                assert ours == statements.compile_sql(step.statement, theirs), check.name
                compared += 1
    finally:
        for source in sources.values():
            source.close()
    assert compared >= len(suite.checks)
