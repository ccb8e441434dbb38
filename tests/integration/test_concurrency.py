"""Concurrent runs: eight `postrun check` processes on the same databases and the same reports
root finish with eight complete, valid verdicts in distinct folders and one index listing all."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import VERDICT_SCHEMA, Database

RUNS = 8
REPORTS = ["junit.xml", "summary.md", "verdict.html", "verdict.json"]
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")

DUCK_SUITE = """\
suite: shared
sources:
  duck: {url: "duckdb:///DUCK"}
checks:
  - {type: row_count, name: duck rows, source: duck, table: u, equals: 3}
  - {type: not_null, name: duck names, source: duck, table: u, columns: [name], key: [id]}
  - {type: sql, name: duck scan, source: duck, min: 1,
     query: "select count(*) from range(300000) t(i) where i % 7 = 0"}
"""
PG_SOURCE = '  pg: {url: "PG"}\n'
PG_CHECKS = """\
  - {type: sql, name: pg barrier, source: pg, equals: 1, query: "select count(*) from barrier"}
  - {type: row_count, name: pg rows, source: pg, table: t, equals: 3}
  - {type: reference, name: pg vs duck, source: pg, each: {table: t, key: id},
     has: {table: u, key: id, source: duck}}
"""


def _start(suite: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("POSTRUN_PARAM_") and k != "GITHUB_STEP_SUMMARY"
    }
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "check", str(suite), "-q"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def pg_if_up(request: pytest.FixtureRequest) -> Database | None:
    """The `pg` database when a server was started (always under CI, where `pg` insists)."""
    if os.environ.get("POSTRUN_TEST_PG_URL") or os.environ.get("CI") == "true":
        database: Database = request.getfixturevalue("pg")
        return database
    return None


@contextlib.contextmanager
def _barrier(pg: Database | None, waiters: int) -> Iterator[None]:
    """Hold the runs' `pg barrier` check until all of them wait on it, then release them at
    once: their reports and index rebuilds then collide instead of trickling in."""
    if pg is None:
        yield
        return
    import psycopg

    # The runs read the table `barrier`, which this session holds locked until all of them
    # wait for it (a lock on a table: the runs' own SQL stays a plain read).
    with psycopg.connect(pg.dsn, autocommit=True) as hold, psycopg.connect(pg.dsn) as lock:
        lock.execute(b"lock table barrier in access exclusive mode")
        yield
        deadline = time.monotonic() + 60
        waiting = (
            "select count(*) from pg_locks where relation = 'barrier'::regclass and not granted"
        )
        while (row := hold.execute(waiting.encode()).fetchone()) and row[0] < waiters:
            assert time.monotonic() < deadline, "the runs never reached the barrier"
            time.sleep(0.01)
        lock.rollback()


def test_concurrent_runs_share_databases_and_reports_root(
    pg_if_up: Database | None, duck: Database, tmp_path: Path
) -> None:
    """Every run exits 1 (its FAIL) with its own complete run folder; the DuckDB file is
    untouched; index.html lists all eight runs (no rebuild lost another's entry)."""
    duck.run(
        """
        create table u (id integer, name varchar);
        insert into u values (1, 'a'), (2, null), (3, 'c');
        """
    )
    duck_bytes = duck.path.read_bytes()
    text = DUCK_SUITE.replace("DUCK", str(duck.path))
    statuses = ["PASS", "FAIL", "PASS"]
    if pg_if_up is not None:
        pg_if_up.run(
            "create table t (id integer); insert into t values (1), (2), (4);"
            " create table barrier (x integer); insert into barrier values (1);"
        )
        text = text.replace("sources:\n", "sources:\n" + PG_SOURCE.replace("PG", pg_if_up.url))
        text += PG_CHECKS
        statuses += ["PASS", "PASS", "FAIL"]
    suite = tmp_path / "suite.yml"
    suite.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    with _barrier(pg_if_up, RUNS):
        processes = [_start(suite, work) for _ in range(RUNS)]
    outcomes = [(*p.communicate(timeout=120), p.returncode) for p in processes]

    run_dirs = []
    for out, err, code in outcomes:
        assert (code, err) == (1, ""), out
        run_dirs.append((work / out.splitlines()[-1].removeprefix("report: ")).parent)
    root = work / "reports"
    assert sorted(root.glob("*/*")) == sorted(set(run_dirs)) and len(set(run_dirs)) == RUNS
    for run_dir in run_dirs:
        assert sorted(p.name for p in run_dir.iterdir()) == REPORTS, run_dir
        verdict = json.loads((run_dir / "verdict.json").read_text())
        jsonschema.validate(verdict, VERDICT_SCHEMA)
        assert verdict["run_id"] == run_dir.name
        assert [c["status"] for c in verdict["checks"]] == statuses
        assert (run_dir / "verdict.html").read_text().rstrip().endswith("</html>")
    index = (root / "index.html").read_text()
    assert set(RUN_ID.findall(index)) == {d.name for d in run_dirs}
    assert sorted(p.name for p in root.iterdir()) == ["history.sqlite", "index.html", "shared"]
    assert duck.path.read_bytes() == duck_bytes, "the shared DuckDB file was written to"


def test_concurrent_index_rebuild_waits_for_the_lock(tmp_path: Path) -> None:
    """While another process holds the lock on reports/, a run writes its own reports but
    not index.html; once the lock is free it finishes and the index lists it."""
    suite = tmp_path / "suite.yml"
    suite.write_text(
        'suite: locked\nsources: {d: {url: "duckdb:///:memory:"}}\n'
        "checks:\n  - {type: sql, query: select 1, equals: 1}\n"
    )
    root = tmp_path / "reports"
    root.mkdir()
    lock = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        process = _start(suite, tmp_path)
        deadline = time.monotonic() + 60
        while not list(root.glob("locked/*/summary.md")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never wrote its reports"
            time.sleep(0.02)
        time.sleep(0.5)
        assert process.poll() is None, "the run finished without taking the index lock"
        assert not (root / "index.html").exists()
    finally:
        os.close(lock)  # closing releases the lock
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (0, ""), out
    (run_dir,) = root.glob("locked/*")
    assert set(RUN_ID.findall((root / "index.html").read_text())) == {run_dir.name}
