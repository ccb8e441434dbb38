"""Timeouts that really stop work: per-check timeouts and --max-time cancel the statement in the
database (PostgreSQL, DuckDB, SQLite), the run and the process end promptly, reports are written."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runner import RunOptions, load_suite, run_suite
from runner.checks import registry
from runner.context import Context
from runner.errors import SourceError
from runner.gx import compile as gx
from runner.gx import fallback as gx_fallback
from runner.results import CheckResult, ErrorCategory, Outcome, Status
from runner.sources import database
from runner.sources import sql as sql_source
from runner.sources.sql import Interrupter
from runner.spec import parse_duration
from tests.conftest import Database, check_verdict

WALL_S = 10
"""Upper bound for a run whose query would take minutes: generous, not a benchmark."""

ENDLESS = {
    "duckdb": "select sum(a.range + b.range) from range(100000000) a, range(100000000) b",
    "sqlite": "with recursive c(n) as (select 1 union all select n + 1 from c"
    " where n < 1000000000) select count(*) from c",
    "postgresql": "select pg_sleep(30)",
}


def endless(kind: str, marker: str) -> str:
    """A query that runs for minutes on ``kind``, tagged so pg_stat_activity can find it."""
    return f"/* {marker} */ {ENDLESS[kind]}"


@pytest.fixture
def other(tmp_path: Path) -> Database:
    """A second source that is never slow: its checks must complete normally."""
    database = Database("duckdb", tmp_path / "other.duckdb")
    database.run("create table t (x integer); insert into t values (1), (2), (3);")
    return database


def write_suite(tmp_path: Path, db: Database, other: Database, checks: list[str]) -> Path:
    if db.kind != "postgresql":
        db.run("create table t (x integer);")  # read-only connections need the file to exist
    lines = [
        "suite: timeouts",
        "sources:",
        f'  slow: {{url: "{db.url}"}}',
        f'  other: {{url: "{other.url}"}}',
        "checks:",
        *(f"  - {check}" for check in checks),
    ]
    path = tmp_path / "suite.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def slow_check(name: str, query: str, timeout: str = "300s") -> str:
    return (
        f'{{type: sql, name: {name}, source: slow, query: "{query}", min: 0, timeout: {timeout}}}'
    )


QUICK = "{type: row_count, name: quick, source: other, table: t, equals: 3}"


def timeout_result(
    name: str, message: str, duration: float, queries: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A timed-out check's result; ``queries``: the statement it was running, if it started."""
    return {
        "name": name,
        "type": "sql",
        "source": "slow",
        "severity": "error",
        "status": "ERROR",
        "message": message,
        "observed": {},
        "expected": {},
        "failures": [],
        "failure_count": 0,
        "notes": [],
        "error": {"category": "timeout", "retryable": True, "message": message, "detail": message},
        "duration_s": duration,
        "queries": list(queries),
    }


def postrun(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """``python -m runner …`` in a subprocess, and how long it took."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_PARAM_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started


def statements_still_running(db: Database, marker: str) -> list[str]:
    """On PostgreSQL, the active statements carrying ``marker``, seen by the superuser; waits up
    to 2 s for them to go. Elsewhere the statement lives in this process: nothing to ask."""
    if db.kind != "postgresql":
        return []
    import psycopg

    admin = os.environ["POSTRUN_TEST_PG_ADMIN"]
    sql = (
        "select query from pg_stat_activity where state = 'active' "
        "and pid <> pg_backend_pid() and query like %s"
    )
    end = time.monotonic() + 2
    with psycopg.connect(admin, autocommit=True) as con:
        while True:
            rows = [r[0] for r in con.execute(sql, (f"%{marker}%",)).fetchall()]
            if not rows or time.monotonic() > end:
                return rows
            time.sleep(0.05)


def workers_alive(before: set[threading.Thread]) -> list[threading.Thread]:
    """Check workers started since ``before`` still alive after waiting up to 2 s."""
    end = time.monotonic() + 2
    while True:
        alive = [
            t
            for t in threading.enumerate()
            if t.name == "postrun-check" and t not in before and t.is_alive()
        ]
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(0.05)


# --- a check over its timeout -----------------------------------------------------------------


def test_timeouts_check_timeout_cancels_statement_in_database(
    db: Database, other: Database, tmp_path: Path
) -> None:
    marker = f"postrun-timeout-{secrets.token_hex(6)}"
    path = write_suite(
        tmp_path, db, other, [slow_check("endless", endless(db.kind, marker), "1s"), QUICK]
    )
    before = set(threading.enumerate())
    started = time.monotonic()
    verdict = run_suite(load_suite(path, env={}))
    assert time.monotonic() - started < WALL_S
    check_verdict(verdict)
    message = "check 'endless' did not finish within its timeout of 1s and was cancelled"
    assert verdict.checks[0].model_dump(mode="json") == timeout_result(
        "endless", message, 1.0, ("q1",)
    )
    assert (verdict.checks[1].name, verdict.checks[1].status) == ("quick", Status.PASS)
    assert (verdict.verdict, verdict.exit_code) == (Status.ERROR, 3)
    assert workers_alive(before) == []
    assert statements_still_running(db, marker) == []


def test_timeouts_process_exits_3_promptly_after_a_timeout(
    db: Database, other: Database, tmp_path: Path
) -> None:
    """Not 134 (a thread still inside DuckDB at exit), not hanging, nothing left on the server."""
    marker = f"postrun-exit-{secrets.token_hex(6)}"
    path = write_suite(
        tmp_path, db, other, [slow_check("endless", endless(db.kind, marker), "1s"), QUICK]
    )
    out = tmp_path / "out"
    done, took = postrun("check", str(path), "--out", str(out), "--format", "json", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (3, "")
    assert took < WALL_S
    data = json.loads((out / "verdict.json").read_text())
    assert [
        (c["name"], c["status"], (c["error"] or {}).get("category")) for c in data["checks"]
    ] == [
        ("endless", "ERROR", "timeout"),
        ("quick", "PASS", None),
    ]
    assert statements_still_running(db, marker) == []


@pytest.mark.parametrize(
    "db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_timeouts_database_keeps_the_deadline_without_a_cancel(db: Database) -> None:
    """PostgreSQL's statement_timeout and SQLite's progress handler stop a statement whose cancel
    never came (sent before it began, or postrun gone); DuckDB has only the interrupt."""
    if db.kind != "postgresql":
        db.run("create table t (x integer);")
    source = database("slow", db.url)
    cancels: list[Callable[[], None]] = []
    deadline = time.monotonic() + 1
    worker, errors = collecting(
        lambda: source.execute(sa.text(ENDLESS[db.kind]), {}, keep(cancels), deadline=deadline)
    )
    worker.join(WALL_S)
    stopped = not worker.is_alive()
    if not stopped:  # fail, not hang: stop it the way the engine would
        cancels[-1]()
        worker.join(WALL_S)
    source.close()
    assert stopped, "the statement outlived its deadline"
    assert [(e.category, e.retryable) for e in errors] == [(ErrorCategory.TIMEOUT, True)]


def test_timeouts_arrow_read_stops_on_cancel(db: Database) -> None:
    """The Arrow read that hands a relation to pandera or GX stops like any other statement
    (on DuckDB it runs outside SQLAlchemy's cursor, straight from the connection)."""
    if db.kind != "postgresql":
        db.run("create table t (x integer);")
    source = database("slow", db.url)
    cancels: list[Callable[[], None]] = []
    worker, errors = collecting(lambda: source.arrow(sa.text(ENDLESS[db.kind]), {}, keep(cancels)))
    end = time.monotonic() + WALL_S
    while not cancels and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.3)  # into the statement
    cancels[-1]()
    worker.join(WALL_S)
    stopped = not worker.is_alive()
    source.close()
    assert stopped, "the Arrow read outlived its cancel"
    assert [(e.category, e.retryable) for e in errors] == [(ErrorCategory.TIMEOUT, True)]


@pytest.mark.postgres
def test_timeouts_gx_statements_end_at_the_deadline(pg: Database) -> None:
    """GX judges what postrun does not compile over a connection of its own, which postrun
    cannot cancel: PostgreSQL stops each of GX's statements after the time the check had left
    when GX connected (GX runs one per metric, so several may each take that long), and the
    check says it timed out."""
    marker = f"postrun-gx-{secrets.token_hex(6)}"
    pg.run("create table t (x integer); insert into t values (1);")
    slow = f"select /* {marker} */ x from t cross join (select pg_sleep(30)) as s"
    expectation = gx.Expectation(  # not compiled by postrun: GX runs it
        0, "expect_column_distinct_values_to_equal_set", {"column": "x", "value_set": [1]}
    )
    gx_fallback.gx_context()  # imported beforehand: the deadline is for the statement alone
    deadline = time.monotonic() + 0.3
    worker, errors = collecting(
        lambda: gx_fallback.validate_sql(pg.url, slow, [expectation], 20, deadline=deadline)
    )
    worker.join(WALL_S)
    assert not worker.is_alive(), "GX's statement outlived the deadline"
    assert [(e.category, e.retryable) for e in errors] == [(ErrorCategory.TIMEOUT, True)]
    assert "statement timeout" in errors[0].message
    assert statements_still_running(pg, marker) == []


@pytest.mark.postgres
def test_timeouts_postgres_transaction_gets_the_remaining_time(pg: Database) -> None:
    source = database("pg", pg.url)
    query = "select setting from pg_settings where name = 'statement_timeout'"
    try:
        bounded = source.execute(sa.text(query), {}, deadline=time.monotonic() + 5)
        unbounded = source.execute(sa.text(query), {})
    finally:
        source.close()
    assert 4000 < int(bounded[0]["setting"]) <= 5000
    assert unbounded == [{"setting": "0"}]


def test_timeouts_lost_interrupt_is_repeated(
    duck: Database, other: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB drops an interrupt that arrives just before its statement starts: the engine
    interrupts again while the cancelled statement still runs."""
    calls: list[float] = []
    real = sql_source.interrupt

    def first_one_lost(dbapi_conn: Any) -> None:
        calls.append(time.monotonic())
        if len(calls) > 1:
            real(dbapi_conn)

    monkeypatch.setattr(sql_source, "interrupt", first_one_lost)
    path = write_suite(tmp_path, duck, other, [slow_check("endless", ENDLESS["duckdb"], "0.3s")])
    before = set(threading.enumerate())
    started = time.monotonic()
    verdict = run_suite(load_suite(path, env={}))
    assert workers_alive(before) == []
    assert time.monotonic() - started < WALL_S
    assert verdict.checks[0].error is not None
    assert verdict.checks[0].error.category is ErrorCategory.TIMEOUT
    assert len(calls) >= 2


def test_timeouts_context_starts_no_statement_after_its_deadline(duck: Database) -> None:
    duck.run("create table t (x integer);")
    spec = load_spec('{type: sql, name: late, query: "select 1", min: 0}', duck)
    source = database("w", duck.url)
    ctx = Context(spec, registry()[spec.type], {"w": source}, {}, deadline=time.monotonic() - 1)
    try:
        with pytest.raises(SourceError) as caught:
            ctx.fetch(sa.text("select 1"))
    finally:
        source.close()
    error = caught.value
    assert (error.category, error.retryable, error.message) == (
        ErrorCategory.TIMEOUT,
        True,
        "check 'late' was cancelled",
    )
    assert ctx.queries == []


# --- --max-time -------------------------------------------------------------------------------


def test_timeouts_max_time_cancels_running_and_unstarted_checks(
    db: Database, other: Database, tmp_path: Path
) -> None:
    marker = f"postrun-max-time-{secrets.token_hex(6)}"
    query = endless(db.kind, marker)
    path = write_suite(
        tmp_path,
        db,
        other,
        [
            QUICK,
            slow_check("first", query),
            slow_check("second", query),
            slow_check("third", query),
        ],
    )
    out = tmp_path / "out"
    done, took = postrun(
        "check", str(path), "--max-time", "1s", "--jobs", "1", "--out", str(out), cwd=tmp_path
    )
    assert (done.returncode, done.stderr) == (3, "")
    assert took < WALL_S
    assert {p.name for p in out.iterdir()} == {
        "verdict.json",
        "verdict.html",
        "junit.xml",
        "summary.md",
    }
    data = json.loads((out / "verdict.json").read_text())
    assert (data["verdict"], data["exit_code"]) == ("ERROR", 3)
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["quick"]["status"] == "PASS"
    first = "check 'first' was cancelled: the run reached --max-time 1s before this check finished"
    assert checks["first"] == timeout_result(
        "first",
        first,
        checks["first"]["duration_s"],
        ("q2",),  # q1 answered 'quick'
    )
    assert 0 < checks["first"]["duration_s"] <= 1
    for name in ("second", "third"):
        message = (
            f"check '{name}' not started: the run reached --max-time 1s first "
            "(allow more time, or more --jobs)"
        )
        assert checks[name] == timeout_result(name, message, 0.0)
    assert statements_still_running(db, marker) == []


def test_timeouts_max_time_not_reached_changes_nothing(
    duck: Database, other: Database, tmp_path: Path
) -> None:
    path = write_suite(tmp_path, duck, other, [QUICK, slow_check("fast", "select 1")])
    verdict = run_suite(load_suite(path, env={}), RunOptions(max_time=timedelta(seconds=60)))
    assert [(c.name, c.status) for c in verdict.checks] == [
        ("quick", Status.PASS),
        ("fast", Status.PASS),
    ]


def test_timeouts_max_time_shorter_than_check_timeout_wins_in_process(
    duck: Database, other: Database, tmp_path: Path
) -> None:
    path = write_suite(tmp_path, duck, other, [slow_check("endless", ENDLESS["duckdb"], "5s")])
    before = set(threading.enumerate())
    verdict = run_suite(load_suite(path, env={}), RunOptions(max_time=timedelta(milliseconds=500)))
    message = (
        "check 'endless' was cancelled: the run reached --max-time 0.5s before this check finished"
    )
    result = verdict.checks[0].model_dump(mode="json")
    assert result == timeout_result("endless", message, result["duration_s"], ("q1",))
    assert workers_alive(before) == []


def test_timeouts_long_timeouts_run_normally(db: Database, other: Database, tmp_path: Path) -> None:
    """A timeout beyond PostgreSQL's largest statement_timeout (about 24 days) is clamped."""
    path = write_suite(tmp_path, db, other, [slow_check("patient", "select 1", "30d"), QUICK])
    verdict = run_suite(load_suite(path, env={}), RunOptions(max_time=timedelta(days=40)))
    assert [(c.name, c.status) for c in verdict.checks] == [
        ("patient", Status.PASS),
        ("quick", Status.PASS),
    ]


@pytest.mark.parametrize("value", ["soon", "99999999999999999999s"])
def test_timeouts_max_time_unreadable_is_usage_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError) as parsed:
        parse_duration(value)
    done, _ = postrun("check", "missing.yml", "--max-time", value, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, f"postrun: --max-time: {parsed.value}\n")


def test_timeouts_max_time_must_be_positive(tmp_path: Path) -> None:
    done, _ = postrun("check", "missing.yml", "--max-time", "0s", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "postrun: --max-time must be longer than 0s, got '0s'\n",
    )


# --- precision --------------------------------------------------------------------------------


def test_timeouts_reported_promptly_while_other_checks_keep_finishing(
    duck: Database, other: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine looks at the clock when results arrive as well as when none do."""
    release = threading.Event()
    started: dict[str, float] = {}

    def stub(spec: Any, ctx: Any) -> Outcome:
        started[spec.name] = time.monotonic()
        if spec.name == "stuck":
            release.wait(20)
        else:
            time.sleep(0.02)
        return Outcome(passed=True, message="done")

    monkeypatch.setattr(registry()["sql"], "run", stub)
    quick = [slow_check(f"quick_{i}", "select 1") for i in range(300)]
    path = write_suite(tmp_path, duck, other, [slow_check("stuck", "select 1", "0.5s"), *quick])
    reported: dict[str, float] = {}

    def on_result(result: CheckResult) -> None:
        reported[result.name] = time.monotonic()

    try:
        verdict = run_suite(load_suite(path, env={}), RunOptions(jobs=3), on_result=on_result)
    finally:
        release.set()
    assert verdict.checks[0].status is Status.ERROR
    # the quick checks were still finishing when the deadline passed
    assert max(reported.values()) > started["stuck"] + 1
    assert reported["stuck"] - (started["stuck"] + 0.5) < 0.5


# --- helpers ----------------------------------------------------------------------------------


def collecting(work: Callable[[], object]) -> tuple[threading.Thread, list[SourceError]]:
    """``work`` running in a daemon thread, and the SourceErrors it raises once it ends."""
    errors: list[SourceError] = []

    def run() -> None:
        try:
            work()
        except SourceError as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, errors


def keep(cancels: list[Callable[[], None]]) -> Interrupter:
    """An interrupter that only records the cancel functions it is given."""

    def register(cancel: Callable[[], None] | None) -> None:
        if cancel is not None:
            cancels.append(cancel)

    return register


def load_spec(check: str, db: Database) -> Any:
    path = db.path.parent / "one.yml"
    path.write_text(f'suite: one\nsources:\n  w: {{url: "{db.url}"}}\nchecks:\n  - {check}\n')
    return load_suite(path, env={}).checks[0]
