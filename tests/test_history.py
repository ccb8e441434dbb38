"""The history store and the checks that compare a run with its past: seed 004 (zero snapshots
and a 30-minute batch after 14 nights of ~100,000 snapshots and 6-8 h) caught with no fixed number
in the suite, on SQLite and PostgreSQL stores alike; learning; failed runs left out; a store that
cannot be read or written."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from runner import RunOptions, load_suite, run_suite
from runner.errors import HistoryError, SuiteError
from runner.history import store as history_store
from runner.history.location import history_key, history_url
from runner.history.store import HistoryStore
from runner.results import Status, Verdict
from tests.conftest import Database

FIRST = date(2025, 11, 1)
NIGHTS = 14
SEED_004 = """\
    suite: nightly-history
    params:
      run_date: {type: date, required: true}
    sources:
      warehouse: {url: "duckdb:///warehouse.duckdb"}
    checks:
      - type: row_count
        name: snapshots
        table: portfolio_snapshots
        where: snapshot_date = :run_date
        change: {window: 7, min_history: 5, max_drop: 30%, max_rise: 50%}
      - type: anomaly
        name: snapshot count is usual
        metric: {check: snapshots, value: count}
        window: 14
        min_history: 5
      - type: anomaly
        name: batch duration is usual
        metric:
          query: >-
            select epoch(finished_at) - epoch(started_at) from batch_jobs
            where run_date = :run_date
        min_history: 5
"""


def _night(n: int) -> date:
    return FIRST + timedelta(days=n - 1)


def _warehouse(folder: Path) -> None:
    """Nights 1-14 and 16: ~100,000 snapshots, a 6-8 h batch; night 15: none, 30 minutes."""
    with duckdb.connect(str(folder / "warehouse.duckdb")) as duck:
        duck.execute(
            "create table portfolio_snapshots (snapshot_date date, portfolio_id integer);"
            "create table batch_jobs (run_date date, started_at timestamp, finished_at timestamp)"
        )
        for n in [*range(1, NIGHTS + 1), 15, 16]:
            day = _night(n)
            bad = n == 15
            rows = 0 if bad else 100_000 + (n * 137) % 600 - 300
            minutes = 30 if bad else 360 + (n * 53) % 120
            duck.execute(
                "insert into portfolio_snapshots select ?, i from range(?) t(i)", [day, rows]
            )
            duck.execute(
                "insert into batch_jobs values (?, ?::timestamp, ?::timestamp + ?::interval)",
                [day, f"{day} 22:00", f"{day} 22:00", f"{minutes} minutes"],
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        pg: Database = request.getfixturevalue("pg")
        return pg.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{tmp_path / 'reports' / 'history.sqlite'}"


def _suite_file(folder: Path, text: str = SEED_004) -> Path:
    path = folder / "suite.yml"
    path.write_text(textwrap.dedent(text))
    return path


def _run(path: Path, night: int, url: str) -> Verdict:
    suite = load_suite(path, {"run_date": _night(night).isoformat()})
    return run_suite(suite, RunOptions(history=url))


def test_seed_004_caught_by_its_own_history(tmp_path: Path, store_url: str) -> None:
    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    verdicts = [_run(path, n, store_url) for n in range(1, NIGHTS + 1)]
    assert [v.verdict for v in verdicts] == [Status.PASS] * NIGHTS
    first = {c.name: c for c in verdicts[0].checks}
    assert first["snapshots"].notes == ["learning: 0 of 5 runs"]
    assert first["batch duration is usual"].message.endswith(
        "learning: 0 of 5 runs of history, not judged yet"
    )
    assert {c.name: c.notes for c in verdicts[5].checks} == {
        "snapshots": [],
        "snapshot count is usual": [],
        "batch duration is usual": [],
    }

    incident = _run(path, 15, store_url)
    checks = {c.name: c for c in incident.checks}
    assert incident.verdict is Status.FAIL and incident.exit_code == 1
    assert {n: c.status for n, c in checks.items()} == dict.fromkeys(checks, Status.FAIL)
    last7 = [v.run_id for v in verdicts[-7:]]
    snapshots = checks["snapshots"]
    assert snapshots.expected["change"]["runs"] == last7
    median = snapshots.expected["change"]["median"]
    assert snapshots.message == (
        f"portfolio_snapshots has 0 rows; -100.0% vs the median {median:,.0f} of the last 7 runs "
        f"({median * 0.7:,.0f} to {median * 1.5:,.0f} allowed)"
    )
    duration = checks["batch duration is usual"]
    assert duration.observed["value"] == 1800
    assert duration.expected["runs"] == [v.run_id for v in verdicts]
    assert 6 * 3600 <= duration.expected["median"] <= 8 * 3600
    assert duration.observed["deviations"] < -5
    assert duration.message.startswith("the query's value is out of its usual band: 1800, expected")
    assert ", ".join(duration.expected["runs"]) in duration.message
    count = checks["snapshot count is usual"]
    assert count.message.startswith("snapshots count is out of its usual band: 0, expected")

    past = incident.history.checks["snapshots"] if incident.history else None
    assert past is not None
    assert past.statuses == [Status.PASS] * NIGHTS + [Status.FAIL]
    assert past.run_ids == [v.run_id for v in verdicts] + [incident.run_id]
    assert past.values[-1] == 0.0 and past.values[0] == float(100_000 + 137 % 600 - 300)
    assert past.failing_since is not None
    assert (past.failing_since.run_id, past.failing_since.runs) == (incident.run_id, 1)
    again = _run(path, 15, store_url)
    since = again.history.checks["snapshots"].failing_since if again.history else None
    assert since is not None and (since.run_id, since.runs) == (incident.run_id, 2)
    assert since.started_at == incident.started_at

    clean = _run(path, 16, store_url)
    assert clean.verdict is Status.PASS, [c.message for c in clean.checks]
    runs = {c.name: c.expected for c in clean.checks}
    assert incident.run_id not in runs["snapshots"]["change"]["runs"]
    assert runs["snapshots"]["change"]["runs"] == last7


def test_seed_004_same_verdicts_with_sqlite_and_postgresql(tmp_path: Path, pg: Database) -> None:
    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    stores = {
        "sqlite": f"sqlite:///{tmp_path / 'history.sqlite'}",
        "postgresql": pg.dsn,  # a plain postgresql:// URL is read with psycopg 3
    }
    seen = {}
    for name, url in stores.items():
        verdicts = [_run(path, n, url) for n in [*range(1, NIGHTS + 1), 15, 16]]
        seen[name] = [
            (v.verdict, [(c.name, c.status, c.observed.get("value")) for c in v.checks])
            for v in verdicts
        ]
    assert seen["sqlite"] == seen["postgresql"]
    assert [v for v, _ in seen["sqlite"]][-3:] == [Status.PASS, Status.FAIL, Status.PASS]


def test_history_store_holds_runs_checks_and_observations(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    verdict = _run(_suite_file(tmp_path), 1, url)
    assert verdict.history is not None
    assert verdict.history.model_dump(exclude={"checks"}) == {
        "store": url,
        "key": "nightly-history",
        "problem": None,
    }
    assert verdict.history.checks["snapshots"].model_dump() == {
        "run_ids": [verdict.run_id],
        "statuses": [Status.PASS],
        "metric": "count",
        "values": [float(100_000 + 137 % 600 - 300)],
        "failing_since": None,
    }
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        run = conn.execute(sa.select(history_store.runs)).one()
        checks = conn.execute(
            sa.select(history_store.checks).order_by(history_store.checks.c.position)
        ).all()
        values = conn.execute(
            sa.select(
                history_store.observations.c.check_name,
                history_store.observations.c.key,
                history_store.observations.c.value,
            )
        ).all()
        version = conn.execute(sa.select(history_store.schema_version.c.version)).scalar_one()
    engine.dispose()
    assert version == history_store.SCHEMA_VERSION
    assert (run.run_id, run.suite, run.history_key, run.verdict, run.exit_code) == (
        verdict.run_id,
        "nightly-history",
        "nightly-history",
        "PASS",
        0,
    )
    assert run.params == '{"run_date": "2025-11-01"}'
    assert [(c.name, c.type, c.status) for c in checks] == [
        ("snapshots", "row_count", "PASS"),
        ("snapshot count is usual", "anomaly", "PASS"),
        ("batch duration is usual", "anomaly", "PASS"),
    ]
    count = 100_000 + 137 % 600 - 300
    assert sorted(values) == sorted(
        [
            ("snapshots", "count", float(count)),
            ("snapshot count is usual", "value", float(count)),
            ("batch duration is usual", "value", float((360 + 53) * 60)),
        ]
    )


def test_history_key_keeps_entities_apart(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    text = SEED_004.replace(
        "      run_date: {type: date, required: true}\n",
        "      run_date: {type: date, required: true}\n      region: {type: string}\n",
    ).replace("    checks:\n", "    history_key: [region]\n    checks:\n")
    path = _suite_file(tmp_path, text)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    for n in range(1, 7):
        run_suite(
            load_suite(path, {"run_date": _night(n).isoformat(), "region": "eu"}),
            RunOptions(history=url),
        )
    us = run_suite(
        load_suite(path, {"run_date": _night(15).isoformat(), "region": "us"}),
        RunOptions(history=url),
    )
    assert us.history is not None and us.history.key == "region=us"
    assert us.verdict is Status.PASS  # the eu nights are not the us history: still learning
    assert {c.name: c.notes for c in us.checks}["snapshots"] == ["learning: 0 of 5 runs"]
    eu = run_suite(
        load_suite(path, {"run_date": _night(15).isoformat(), "region": "eu"}),
        RunOptions(history=url),
    )
    assert eu.verdict is Status.FAIL
    import json

    code, out, _ = _cli(
        tmp_path,
        "history",
        "nightly-history",
        "--key",
        "region=us",
        "--format",
        "json",
        "--history",
        url,
    )
    assert code == 0
    assert [r["run_id"] for r in json.loads(out)["runs"]] == [us.run_id]


def test_failed_runs_are_history_only_with_include_failed(tmp_path: Path) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    url = store.url
    for n in range(1, 4):
        _run(path, n, url)
    failed = run_suite(
        load_suite(path, {"run_date": _night(15).isoformat()}),
        RunOptions(history=url, only=["snapshots"]),
    )
    assert failed.verdict is Status.PASS  # learning still: 3 of 5
    key = "nightly-history"
    passing = store.series("nightly-history", key, "snapshots", "count", window=10)
    assert [p.value for p in passing][-1] == 0.0
    broken = Verdict.model_validate(
        failed.model_dump() | {"run_id": "x-failed", "verdict": "FAIL", "exit_code": 1}
    )
    store.record(broken, key)
    assert len(store.series("nightly-history", key, "snapshots", "count", window=10)) == 4
    every = store.series(
        "nightly-history", key, "snapshots", "count", window=10, include_failed=True
    )
    assert [p.run_id for p in every][-1] == "x-failed"
    assert len(store.series("nightly-history", key, "snapshots", "count", window=2)) == 2
    store.close()


def test_unwritable_store_changes_neither_verdict_nor_exit_code(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    (tmp_path / "a-folder").mkdir()
    without = run_suite(
        load_suite(path, {"run_date": _night(15).isoformat()}),
        RunOptions(history="off", only=["batch duration is usual"]),
    )
    assert without.checks[2].status is Status.ERROR  # history off: never a pass on no history
    assert without.checks[2].error is not None
    assert without.checks[2].error.category.value == "config"
    assert without.history is None
    plain = """\
        suite: plain
        sources:
          warehouse: {url: "duckdb:///warehouse.duckdb"}
        checks:
          - type: row_count
            table: portfolio_snapshots
            min: 1
        """
    plain_path = tmp_path / "plain.yml"
    plain_path.write_text(textwrap.dedent(plain))
    url = f"sqlite:///{tmp_path / 'a-folder'}"  # a folder: SQLite cannot open it as a database
    verdict = run_suite(load_suite(plain_path), RunOptions(history=url))
    assert verdict.verdict is Status.PASS and verdict.exit_code == 0
    assert verdict.history is not None and verdict.history.problem is not None
    assert verdict.history.problem.startswith(f"history store {url} could not be written: ")


def test_unreadable_store_makes_history_checks_error_connectivity(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    garbage = tmp_path / "history.sqlite"
    garbage.write_bytes(b"this is not a database, " * 100)
    verdict = _run(path, 15, f"sqlite:///{garbage}")
    assert [c.status for c in verdict.checks] == [Status.ERROR] * 3
    errors = [c.error for c in verdict.checks]
    assert all(e is not None and e.category.value == "connectivity" for e in errors)
    assert verdict.exit_code == 3
    assert verdict.history is not None and verdict.history.problem is not None


def test_store_written_by_a_newer_postrun_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    store = HistoryStore(url)
    assert store.series("s", "s", "c", "count", window=3) == []  # creates the schema
    store.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(history_store.schema_version).values(version=99))
    engine.dispose()
    with pytest.raises(HistoryError, match="has schema version 99, newer than this postrun's 1"):
        HistoryStore(url).series("s", "s", "c", "count", window=3)


def test_history_url_precedence() -> None:
    env = {"POSTRUN_HISTORY": "sqlite:///env.sqlite"}
    assert history_url("off", "sqlite:///s", "sqlite:///d", env=env) is None
    assert history_url(None, "sqlite:///s", "sqlite:///d", env=env) == "sqlite:///env.sqlite"
    assert history_url(None, "sqlite:///s", "sqlite:///d", env={}) == "sqlite:///s"
    assert history_url(None, None, "sqlite:///d", env={}) == "sqlite:///d"
    assert history_url(None, "off", "sqlite:///d", env={}) is None
    assert history_url(None, None, None, env={}) is None
    assert history_key("s", {"region": "eu", "d": date(2025, 1, 2)}, ["region", "d"]) == (
        "region=eu,d=2025-01-02"
    )


def test_history_store_may_not_be_a_checked_source(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    suite = load_suite(path, {"run_date": _night(1).isoformat()})
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    with pytest.raises(Exception, match="is source 'warehouse' of the suite"):
        run_suite(suite, RunOptions(history=url))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("{window: 7}", "give 'max_drop', 'max_rise' or both"),
        ("{window: 3, min_history: 5, max_drop: 10%}", "'min_history' must not exceed 'window'"),
        ("{max_drop: lots}", "'lots' is not a count (3) or a percentage (1%)"),
    ],
)
def test_change_config_mistakes(tmp_path: Path, change: str, reason: str) -> None:
    text = f"""\
        suite: s
        sources:
          w: {{url: "duckdb:///w.duckdb"}}
        checks:
          - type: row_count
            table: t
            change: {change}
        """
    path = _suite_file(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("[regoin]", "suite.yml:7: history_key: unknown param 'regoin' (did you mean 'region'?)"),
        ("[region]", "suite.yml:9: check 'a': reads check 'nope', which is not in the suite"),
        (
            "[region, api_token]",
            "suite.yml:7: history_key: param 'api_token' is secret: its value would be written",
        ),
    ],
)
def test_history_suite_mistakes(tmp_path: Path, key: str, reason: str) -> None:
    text = f"""\
        suite: s
        params:
          region: {{type: string}}
          api_token: {{type: string}}
        sources:
          w: {{url: "duckdb:///w.duckdb"}}
        history_key: {key}
        checks:
          - type: anomaly
            name: a
            metric: {{check: nope, value: count}}
        """
    path = _suite_file(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert reason in str(caught.value)


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_")}
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=tmp_path,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


FAILING = """\
    suite: plain
    sources:
      warehouse: {url: "duckdb:///warehouse.duckdb"}
    checks:
      - type: row_count
        table: portfolio_snapshots
        where: snapshot_date = '2025-11-15'
        min: 1
    """


def test_cli_unwritable_store_warns_and_keeps_the_exit_code(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    _suite_file(tmp_path, FAILING)
    (tmp_path / "folder").mkdir()
    code, _, err = _cli(tmp_path, "check", "suite.yml", "-q", "--history", "off")
    assert (code, err) == (1, "")
    assert not (tmp_path / "reports" / "history.sqlite").exists()
    url = f"sqlite:///{tmp_path / 'folder'}"
    code, _, err = _cli(tmp_path, "check", "suite.yml", "-q", "--out", "out", "--history", url)
    assert code == 1
    assert err.startswith(f"postrun: warning: run not recorded: history store {url} could not ")
    assert err.rstrip().endswith("(the verdict and the exit code are unchanged)")
    verdict = Verdict.model_validate_json((tmp_path / "out" / "verdict.json").read_text())
    assert verdict.verdict is Status.FAIL and verdict.exit_code == 1
    assert verdict.history is not None and verdict.history.problem is not None
    html = (tmp_path / "out" / "verdict.html").read_text()
    assert "warning: this run was not recorded in the history" in html
    assert f"not recorded in {url} (key plain)" in html
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "warning: run not recorded in the history: history store" in summary


def test_cli_default_store_is_next_to_the_reports(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    _suite_file(tmp_path, FAILING)
    assert _cli(tmp_path, "check", "suite.yml", "-q")[0] == 1
    code, _, err = _cli(tmp_path, "check", "suite.yml", "-q", env={"POSTRUN_HISTORY": "off"})
    assert (code, err) == (1, "")
    store = HistoryStore(f"sqlite:///{tmp_path / 'reports' / 'history.sqlite'}")
    assert (
        len(
            store.series(
                "plain",
                "plain",
                "row_count:portfolio_snapshots",
                "count",
                window=9,
                include_failed=True,
            )
        )
        == 1
    )
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://analyst:{secret}@127.0.0.1:1/history",
        "postgresql://analyst:{secret}@127.0.0.1:notaport/history",
    ],
)
def test_history_store_password_is_never_written(tmp_path: Path, url: str) -> None:
    _warehouse(tmp_path)
    _suite_file(tmp_path, FAILING)
    secret = "hist-pass-5e1f0c"
    code, out, err = _cli(
        tmp_path, "check", "suite.yml", "-v", "--out", "out", "--history", url.format(secret=secret)
    )
    assert code == 1
    assert "postrun: warning: run not recorded: history store postgresql://***@127.0.0.1" in err
    written = [out, err] + [p.read_text() for p in (tmp_path / "out").iterdir()]
    assert [text for text in written if secret in text] == []


def test_history_command_json_matches_the_stored_verdicts(tmp_path: Path) -> None:
    import json

    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    verdicts = [_run(path, n, url) for n in [*range(1, 7), 15, 16]]
    code, out, err = _cli(tmp_path, "history", "suite.yml", "--format", "json", "--history", url)
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert [(r["run_id"], r["verdict"], r["exit_code"]) for r in shown["runs"]] == [
        (v.run_id, v.verdict.value, v.exit_code) for v in verdicts
    ]
    assert [
        [(c["name"], c["status"], c["message"]) for c in r["checks"]] for r in shown["runs"]
    ] == [[(c.name, c.status.value, c.message) for c in v.checks] for v in verdicts]
    summary = {c["name"]: c for c in shown["checks"]}
    assert summary["snapshots"]["statuses"] == {
        "PASS": 7,
        "WARN": 0,
        "FAIL": 1,
        "ERROR": 0,
        "SKIP": 0,
    }
    assert summary["snapshots"]["flips"] == 2
    assert summary["snapshots"]["last_failure"]["run_id"] == verdicts[-2].run_id
    assert summary["snapshots"]["failing_since"] is None

    code, out, _ = _cli(
        tmp_path,
        "history",
        "nightly-history",
        "--format",
        "json",
        "--check",
        "snapshots",
        "--history",
        url,
    )
    assert code == 0
    only = json.loads(out)
    assert {c["name"] for r in only["runs"] for c in r["checks"]} == {"snapshots"}
    from datetime import UTC, datetime

    from runner.history.query import load_history

    store = HistoryStore(url)
    later = datetime.now(UTC) + timedelta(days=2)
    assert load_history(store, "nightly-history", since=timedelta(days=1), now=later).runs == []
    week = load_history(store, "nightly-history", since=timedelta(days=3), now=later)
    assert len(week.runs) == len(verdicts)
    store.close()


def test_history_command_failing_for_and_keys(tmp_path: Path) -> None:
    _warehouse(tmp_path)
    _suite_file(tmp_path, FAILING)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    for _ in range(3):
        assert _cli(tmp_path, "check", "suite.yml", "-q", "--history", url)[0] == 1
    code, out, _ = _cli(tmp_path, "history", "suite.yml", "--history", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[2].split() == [
        "check",
        "PASS",
        "WARN",
        "FAIL",
        "ERROR",
        "flips",
        "failing",
        "/",
        "last",
        "failure",
    ]
    assert lines[3].startswith(
        "row_count:portfolio_snapshots      0     0     3     0     0  failing for 3 runs, since "
    )
    code, out, _ = _cli(tmp_path, "history", "suite.yml", "--key", "region=eu", "--history", url)
    assert code == 0 and "0 runs since" in out
    code, _, err = _cli(tmp_path, "history", "suite.yml", "--key", "plain", "--history", url)
    assert (code, err) == (2, "postrun: --key takes NAME=VALUE, got 'plain'\n")
    code, _, err = _cli(tmp_path, "history", "suite.yml", "--format", "xml", "--history", url)
    assert (code, err) == (2, "postrun: --format takes table, json, csv or html; got 'xml'\n")
    code, _, err = _cli(tmp_path, "history", "suite.yml")
    assert code == 2
    assert (
        err
        == "postrun: no history yet: reports/history.sqlite does not exist (run postrun check first)\n"
    )


def test_failing_since_counts_a_streak_longer_than_the_strip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.history import recent

    monkeypatch.setattr(recent, "RECENT", 3)
    _warehouse(tmp_path)
    path = _suite_file(tmp_path, FAILING)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    first = run_suite(load_suite(path), RunOptions(history=url, only=[]))
    assert first.verdict is Status.FAIL
    runs = [first] + [run_suite(load_suite(path), RunOptions(history=url)) for _ in range(5)]
    past = runs[-1].history.checks["row_count:portfolio_snapshots"] if runs[-1].history else None
    assert past is not None
    assert past.run_ids == [r.run_id for r in runs[-3:]]  # the strip: the last RECENT runs
    assert past.failing_since is not None
    assert (past.failing_since.run_id, past.failing_since.runs) == (first.run_id, 6)


def test_reports_and_notification_say_failing_for_n_runs(tmp_path: Path) -> None:
    from runner.notify import payload
    from runner.render.html import render_html
    from runner.render.markdown import render_markdown

    _warehouse(tmp_path)
    path = _suite_file(tmp_path, FAILING)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    runs = [run_suite(load_suite(path), RunOptions(history=url)) for _ in range(3)]
    first, last = runs[0], runs[-1]
    name = "row_count:portfolio_snapshots"
    words = f"failing for 3 runs, since run {first.run_id}"
    assert last.failing_for(name) == words
    assert first.failing_for(name) == ""  # a first failure is no streak
    summary = render_markdown(last).decode()
    assert f"**{words}**" in summary.replace("\\_", "_")
    assert f"**{words}**" not in render_markdown(first).decode().replace("\\_", "_")
    sent = payload(last)
    assert f"({words})" in sent["text"]
    assert sent["postrun"]["checks"][0]["failing_runs"] == 3
    html = render_html(last).decode()
    assert f'<span class="since">failing since run {first.run_id} (3 runs, first on ' in html
    assert html.count('<i class="s-FAIL" title=') == 2 * 3  # the strip, in the table and evidence
    assert f'title="{first.run_id}: FAIL"' in html
    assert '<polyline points="0.0,' in html


def test_history_chart_title_is_a_check_name_as_text() -> None:
    """A check's name in a chart: control characters written out, `$…$` not read as math."""
    from datetime import datetime

    from runner.history.page import _svg

    days = [datetime(2026, 1, 1), datetime(2026, 1, 2)]
    svg = str(_svg("cost \x1b[31m $x^2$: value", days, [1.0, 2.0]))
    assert "\x1b" not in svg
    assert "cost \\x1b[31m $x^2$: value</text>" in svg
