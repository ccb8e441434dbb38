"""The engine: exit codes, worst-of, isolation of failures, selection, timeouts, order, secrets."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import RunOptions, load_suite, run_suite
from runner.checks import registry
from runner.engine import select_checks
from runner.errors import UsageError
from runner.results import DETAIL_LIMIT, CheckResult, ExitCode, Outcome, Status, worst_status
from runner.sources import DuckDBSource, SqlSource
from tests.conftest import Database, RunYaml, check_verdict

PASS, WARN, FAIL, ERROR, SKIP = Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.SKIP


@pytest.fixture
def portfolios(duck: Database) -> Database:
    duck.run(
        """
        create table portfolios (id integer, name varchar);
        insert into portfolios values (1, 'a'), (2, 'b'), (3, 'c');
        """
    )
    return duck


def suite_yaml(db: Database, checks: str, extra: str = "") -> str:
    header = f'suite: engine\n{extra}sources:\n  w: {{url: "{db.url}"}}\nchecks:\n'
    return header + textwrap.indent(textwrap.dedent(checks), "  ")


def statuses(verdict: Any) -> list[tuple[str, Status]]:
    return [(c.name, c.status) for c in verdict.checks]


# --- statuses, worst-of and exit codes ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fail_on_warn", "code"),
    [
        (PASS, False, 0),
        (PASS, True, 0),
        (WARN, False, 0),
        (WARN, True, 1),
        (FAIL, False, 1),
        (FAIL, True, 1),
        (ERROR, False, 3),
        (ERROR, True, 3),
    ],
)
def test_engine_exit_code_for_status(status: Status, fail_on_warn: bool, code: int) -> None:
    assert ExitCode.for_status(status, fail_on_warn=fail_on_warn) == code


@pytest.mark.parametrize(
    ("given", "worst"),
    [
        ([], PASS),
        ([SKIP], PASS),
        ([PASS, SKIP], PASS),
        ([SKIP, WARN, PASS], WARN),
        ([WARN, FAIL, PASS], FAIL),
        ([FAIL, ERROR, WARN], ERROR),
        ([ERROR, SKIP], ERROR),
    ],
)
def test_engine_worst_status_ignores_skip(given: list[Status], worst: Status) -> None:
    assert worst_status(given) == worst


CHECKS = {
    "pass": "- {type: row_count, name: pass, table: portfolios, equals: 3}\n",
    "fail": "- {type: row_count, name: fail, table: portfolios, equals: 4}\n",
    "warn": "- {type: row_count, name: warn, table: portfolios, equals: 4, severity: warn}\n",
    "error": "- {type: row_count, name: error, table: nope, equals: 4}\n",
}


@pytest.mark.parametrize(
    ("names", "fail_on_warn", "verdict", "code"),
    [
        (["pass"], False, PASS, 0),
        (["pass", "warn"], False, WARN, 0),
        (["pass", "warn"], True, WARN, 1),
        (["warn", "fail"], False, FAIL, 1),
        (["fail", "error"], False, ERROR, 3),
        (["error", "warn", "pass"], True, ERROR, 3),
    ],
)
def test_engine_verdict_and_exit_code_from_checks(
    portfolios: Database,
    run_yaml: RunYaml,
    names: list[str],
    fail_on_warn: bool,
    verdict: Status,
    code: int,
) -> None:
    checks = "".join(CHECKS[name] for name in names)
    result = run_yaml(suite_yaml(portfolios, checks), options=RunOptions(fail_on_warn=fail_on_warn))
    expected_counts = {s.value: 0 for s in Status} | {
        s: sum(1 for n in names if n.upper() == s) for s in ("PASS", "WARN", "FAIL", "ERROR")
    }
    assert (result.verdict, result.exit_code, result.counts) == (verdict, code, expected_counts)
    assert statuses(result) == [(n, Status(n.upper())) for n in names]


def test_engine_severity_warn_only_changes_failures(
    portfolios: Database, run_yaml: RunYaml
) -> None:
    verdict = run_yaml(
        suite_yaml(
            portfolios,
            """\
            - {type: row_count, name: holds, table: portfolios, equals: 3, severity: warn}
            - {type: row_count, name: broken, table: portfolios, equals: 5, severity: warn}
            - {type: row_count, name: gone, table: nope, equals: 5, severity: warn}
            """,
        )
    )
    assert statuses(verdict) == [("holds", PASS), ("broken", WARN), ("gone", ERROR)]
    assert [c.severity for c in verdict.checks] == ["warn", "warn", "warn"]


def test_engine_verdict_document(portfolios: Database, tmp_path: Path) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(
        suite_yaml(
            portfolios,
            "- {type: row_count, name: three, table: portfolios, where: 'id <= :n', equals: 3}\n",
            extra="params:\n  n: {type: int}\n  day: {type: date, default: 2025-11-06}\n",
        )
    )
    verdict = run_suite(load_suite(path, {"n": "3"}, env={}))
    data = check_verdict(verdict)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", data["run_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["started_at"])
    volatile = {"run_id", "started_at", "finished_at", "duration_s", "checks", "queries"}
    assert {k: v for k, v in data.items() if k not in volatile} == {
        "schema_version": 1,
        "tool": {"name": "postrun", "version": "0.1.0"},
        "suite": {
            "name": "engine",
            "path": str(path),
            "sha256": __import__("hashlib").sha256(path.read_bytes()).hexdigest(),
        },
        "params": {"n": 3, "day": "2025-11-06"},
        "verdict": "PASS",
        "exit_code": 0,
        "counts": {"PASS": 1, "WARN": 0, "FAIL": 0, "ERROR": 0, "SKIP": 0},
        "causes": [],
        "sources": [{"name": "w", "kind": "database", "location": portfolios.url, "role": None}],
        "rerun_of": None,
        "history": None,
    }
    assert [{k: v for k, v in c.items() if k != "duration_s"} for c in data["checks"]] == [
        {
            "name": "three",
            "type": "row_count",
            "source": "w",
            "severity": "error",
            "status": "PASS",
            "message": "portfolios has 3 rows where 3 expected",
            "observed": {"count": 3},
            "expected": {"equals": 3},
            "failures": [],
            "failure_count": 0,
            "notes": [],
            "error": None,
            "queries": ["q1"],
        }
    ]
    assert [{k: v for k, v in q.items() if k != "duration_s"} for q in data["queries"]] == [
        {
            "id": "q1",
            "source": "w",
            "sql": "SELECT count(*) AS count \nFROM portfolios \nWHERE (id <= $1\n)",
            "checks": ["three"],
        }
    ]
    assert data["queries"][0]["duration_s"] >= 0


# --- fail closed: one broken check does not stop the others ---------------------------------


def test_engine_exception_in_check_is_internal_error_others_run(
    portfolios: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(spec: Any, ctx: Any) -> Outcome:
        raise RuntimeError("boom")

    monkeypatch.setattr(registry()["sql"], "run", boom)
    verdict = run_yaml(
        suite_yaml(
            portfolios,
            """\
            - {type: row_count, name: before, table: portfolios, equals: 3}
            - {type: sql, name: broken, query: select 1}
            - {type: row_count, name: after, table: portfolios, equals: 4}
            """,
        )
    )
    assert statuses(verdict) == [("before", PASS), ("broken", ERROR), ("after", FAIL)]
    assert (verdict.verdict, verdict.exit_code) == (ERROR, 3)
    error = verdict.checks[1].error
    assert error is not None
    assert error.model_dump(mode="json", exclude={"detail"}) == {
        "category": "internal",
        "retryable": False,
        "message": "postrun failed inside check 'broken' (RuntimeError: boom); this is a bug,"
        " please report it with the detail.",
    }
    assert verdict.checks[1].message == error.message
    assert error.detail is not None
    assert error.detail.startswith("Traceback (most recent call last):")
    assert error.detail.endswith("RuntimeError: boom\n")


def test_engine_error_detail_is_clipped_to_2_kb(
    portfolios: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(spec: Any, ctx: Any) -> Outcome:
        raise ValueError("é" * 3000)

    monkeypatch.setattr(registry()["sql"], "run", boom)
    verdict = run_yaml(suite_yaml(portfolios, "- {type: sql, name: broken, query: select 1}\n"))
    detail = verdict.checks[0].error.detail  # type: ignore[union-attr]
    assert detail is not None
    assert DETAIL_LIMIT == 2048
    assert len(detail.encode()) <= DETAIL_LIMIT
    assert len(detail.encode()) >= DETAIL_LIMIT - 6  # clipped, not dropped
    assert detail.startswith("Traceback (most recent call last):")
    assert "\n[…]\n" in detail
    assert detail.rstrip().endswith("é")  # the end of a traceback says what went wrong: it is kept


def test_engine_error_holding_undecodable_bytes_is_still_an_error_result(
    portfolios: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception naming a file that is not UTF-8, long enough to be clipped: clipping it
    used to raise inside the error boundary itself."""

    def boom(spec: Any, ctx: Any) -> Outcome:
        raise ValueError("cannot read run_\udcff.json; " * 200)

    monkeypatch.setattr(registry()["sql"], "run", boom)
    verdict = run_yaml(suite_yaml(portfolios, "- {type: sql, name: broken, query: select 1}\n"))
    (result,) = verdict.checks
    assert result.status is ERROR and result.error is not None
    assert result.message.startswith(
        "postrun failed inside check 'broken' (ValueError: cannot read run_\\xff.json; cannot"
    )
    assert result.message.endswith(" bytes]")
    assert result.error.detail is not None and "\n[…]\n" in result.error.detail
    assert result.error.detail.rstrip().endswith("cannot read run_\\xff.json;")


# --- --only / --skip --------------------------------------------------------------------------

THREE = """\
- {type: row_count, name: snapshots, table: portfolios, equals: 3}
- {type: row_count, name: summaries, table: portfolios, equals: 4}
- {type: row_count, name: pnl, table: portfolios, equals: 5, severity: warn}
"""


@pytest.mark.parametrize(
    ("options", "expected", "verdict"),
    [
        (RunOptions(only=["snapshots"]), [PASS, SKIP, SKIP], PASS),
        (RunOptions(only=["pnl", "snapshots"]), [PASS, SKIP, WARN], WARN),
        (RunOptions(skip=["summaries"]), [PASS, SKIP, WARN], WARN),
        (RunOptions(only=["summaries", "pnl"], skip=["summaries"]), [SKIP, SKIP, WARN], WARN),
        (RunOptions(), [PASS, FAIL, WARN], FAIL),
    ],
)
def test_engine_only_and_skip_select_checks(
    portfolios: Database,
    run_yaml: RunYaml,
    options: RunOptions,
    expected: list[Status],
    verdict: Status,
) -> None:
    result = run_yaml(suite_yaml(portfolios, THREE), options=options)
    assert [c.status for c in result.checks] == expected
    assert result.verdict == verdict
    assert result.counts["SKIP"] == expected.count(SKIP)


@pytest.mark.parametrize(
    "options",
    [
        RunOptions(skip=["snapshots", "summaries", "pnl"]),
        RunOptions(only=["pnl"], skip=["pnl"]),
    ],
    ids=["skip-all", "only-and-skip-the-same"],
)
def test_engine_selection_that_judges_nothing_is_usage_error(
    portfolios: Database, tmp_path: Path, options: RunOptions
) -> None:
    """Everything skipped used to be a PASS (exit 0) that saw nothing."""
    path = tmp_path / "suite.yml"
    path.write_text(suite_yaml(portfolios, THREE))
    with pytest.raises(UsageError) as caught:
        run_suite(load_suite(path, env={}), options)
    assert str(caught.value) == (
        "the selection runs no check (every check is left out by --only / --skip / --rerun): "
        "a run that judges nothing is refused"
    )


def test_engine_skipped_check_is_not_run(
    portfolios: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    real = registry()["row_count"].run

    def spy(spec: Any, ctx: Any) -> Outcome:
        ran.append(spec.name)
        return real(spec, ctx)

    monkeypatch.setattr(registry()["row_count"], "run", spy)
    verdict = run_yaml(suite_yaml(portfolios, THREE), options=RunOptions(skip=["summaries"]))
    assert sorted(ran) == ["pnl", "snapshots"]
    skipped = verdict.checks[1].model_dump(mode="json")
    assert skipped == {
        "name": "summaries",
        "type": "row_count",
        "source": "w",
        "severity": "error",
        "status": "SKIP",
        "message": "not run (--only / --skip)",
        "observed": {},
        "expected": {},
        "failures": [],
        "failure_count": 0,
        "notes": [],
        "error": None,
        "duration_s": 0.0,
        "queries": [],
    }


@pytest.mark.parametrize(
    ("only", "skip", "message"),
    [
        (["snapshot"], [], "no check named 'snapshot' in the suite (did you mean 'snapshots'?)"),
        ([], ["summary"], "no check named 'summary' in the suite (did you mean 'summaries'?)"),
        (["volume"], [], "no check named 'volume' in the suite"),
    ],
)
def test_engine_unknown_selected_name_is_usage_error(
    portfolios: Database, tmp_path: Path, only: list[str], skip: list[str], message: str
) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(suite_yaml(portfolios, THREE))
    suite = load_suite(path, env={})
    with pytest.raises(UsageError) as caught:
        run_suite(suite, RunOptions(only=only, skip=skip))
    assert str(caught.value) == message
    with pytest.raises(UsageError):
        select_checks(suite.checks, only, skip)


# --- timeouts and order -----------------------------------------------------------------------


def test_engine_timeout_cancels_database_query(portfolios: Database, run_yaml: RunYaml) -> None:
    endless = "select count(*) from range(1000000000) a, range(1000000000) b"
    started = time.monotonic()
    verdict = run_yaml(
        suite_yaml(
            portfolios,
            f"""\
            - {{type: sql, name: slow, query: "{endless}", min: 0, timeout: 0.3s}}
            - {{type: row_count, name: quick, table: portfolios, equals: 3}}
            """,
        )
    )
    assert time.monotonic() - started < 3
    message = "check 'slow' did not finish within its timeout of 0.3s and was cancelled"
    assert verdict.checks[0].model_dump(mode="json") == {
        "name": "slow",
        "type": "sql",
        "source": "w",
        "severity": "error",
        "status": "ERROR",
        "message": message,
        "observed": {},
        "expected": {},
        "failures": [],
        "failure_count": 0,
        "notes": [],
        "error": {"category": "timeout", "retryable": True, "message": message, "detail": message},
        "duration_s": 0.3,
        "queries": ["q1"],
    }
    assert statuses(verdict)[1] == ("quick", PASS)
    assert (verdict.verdict, verdict.exit_code) == (ERROR, 3)


def test_engine_timeout_abandons_stuck_python_check(
    portfolios: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stuck(spec: Any, ctx: Any) -> Outcome:
        release.wait(20)
        return Outcome(passed=True, message="finally")

    monkeypatch.setattr(registry()["sql"], "run", stuck)
    started = time.monotonic()
    try:
        verdict = run_yaml(
            suite_yaml(
                portfolios,
                """\
                - {type: sql, name: stuck, query: select 1, timeout: 200ms}
                - {type: row_count, name: quick, table: portfolios, equals: 3}
                """,
            ),
            options=RunOptions(jobs=1),
        )
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert statuses(verdict) == [("stuck", ERROR), ("quick", PASS)]
    error = verdict.checks[0].error
    assert error is not None
    assert (error.category, error.retryable, error.message) == (
        "timeout",
        True,
        "check 'stuck' did not finish within its timeout of 0.2s and was cancelled",
    )


def test_engine_process_exits_3_after_a_cancelled_query(
    portfolios: Database, tmp_path: Path
) -> None:
    """A worker still inside DuckDB at interpreter exit used to abort the process (134)."""
    endless = "select count(*) from range(1000000000) a, range(1000000000) b"
    path = tmp_path / "suite.yml"
    path.write_text(
        suite_yaml(portfolios, f'- {{type: sql, query: "{endless}", min: 0, timeout: 0.2s}}\n')
    )
    script = (
        "import sys; from runner import load_suite, run_suite; "
        f"sys.exit(run_suite(load_suite({str(path)!r}, env={{}})).exit_code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (3, "")


def test_engine_results_keep_suite_order(
    portfolios: Database, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nap(spec: Any, ctx: Any) -> Outcome:
        time.sleep(float(spec.query.split()[1]))
        return Outcome(passed=True, message=spec.query)

    monkeypatch.setattr(registry()["sql"], "run", nap)
    finished: list[str] = []

    def record(result: CheckResult) -> None:
        finished.append(result.name)

    path = portfolios.path.parent / "order.yml"
    path.write_text(
        suite_yaml(
            portfolios,
            """\
            - {type: sql, name: a, query: select 0.4}
            - {type: sql, name: b, query: select 0.3}
            - {type: sql, name: c, query: select 0.0, severity: warn}
            - {type: sql, name: d, query: select 0.15}
            - {type: sql, name: e, query: select 0.05}
            """,
        )
    )
    verdict = run_suite(load_suite(path, env={}), RunOptions(jobs=4, skip=["c"]), on_result=record)
    check_verdict(verdict)
    assert [c.name for c in verdict.checks] == ["a", "b", "c", "d", "e"]
    assert [c.message for c in verdict.checks] == [
        "select 0.4",
        "select 0.3",
        "not run (--only / --skip)",
        "select 0.15",
        "select 0.05",
    ]
    assert finished == ["c", "e", "d", "b", "a"]


# --- unreachable sources and secrets ----------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_engine_unreachable_sources_connect_once_and_error(
    portfolios: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    for kind in (SqlSource, DuckDBSource):
        real = kind._connect

        def counting(self: Any, real: Callable[[Any], Any] = real) -> Any:
            attempts.append(self.name)
            return real(self)

        monkeypatch.setattr(kind, "_connect", counting)
    port = closed_port()
    missing = tmp_path / "missing.duckdb"
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            suite: unreachable
            sources:
              gone: {{url: "duckdb:///{missing}"}}
              pg: {{url: "postgresql://gate:Hunter2-Secret@127.0.0.1:{port}/batch"}}
              w: {{url: "{portfolios.url}"}}
            checks:
              - {{type: row_count, name: gone-1, table: t, min: 1, source: gone}}
              - {{type: row_count, name: pg-1, table: t, min: 1, source: pg}}
              - {{type: row_count, name: ok, table: portfolios, equals: 3, source: w}}
              - {{type: row_count, name: gone-2, table: t, min: 1, source: gone}}
              - {{type: row_count, name: pg-2, table: t, min: 1, source: pg}}
              - {{type: row_count, name: bad, table: portfolios, equals: 9, source: w}}
              - {{type: sql, name: pg-3, query: select 1, source: pg}}
            """
        )
    )
    verdict = run_suite(load_suite(path, env={}), RunOptions(jobs=4))
    data = check_verdict(verdict)
    assert sorted(attempts) == ["gone", "pg", "w"]
    assert statuses(verdict) == [
        ("gone-1", ERROR),
        ("pg-1", ERROR),
        ("ok", PASS),
        ("gone-2", ERROR),
        ("pg-2", ERROR),
        ("bad", FAIL),
        ("pg-3", ERROR),
    ]
    assert (verdict.verdict, verdict.exit_code) == (ERROR, 3)
    errors = {c.name: c.error for c in verdict.checks if c.error is not None}
    assert {(n, e.category, e.retryable) for n, e in errors.items()} == {
        *((name, "connectivity", True) for name in ("pg-1", "pg-2", "pg-3")),
        # a missing database file is a mistake in the suite, not worth a retry
        *((name, "config", False) for name in ("gone-1", "gone-2")),
    }
    assert errors["gone-1"].message == (
        f"Source 'gone': database file {missing} does not exist (check the URL and the params "
        "that name it)"
    )
    assert errors["pg-1"].message.startswith(
        f"Could not connect to source 'pg' (postgresql://***@127.0.0.1:{port}/batch): "
    )
    assert len({e.message for n, e in errors.items() if n.startswith("pg")}) == 1
    assert "Hunter2-Secret" not in json.dumps(data)
    assert not missing.exists()  # a read-only connection does not create the file


def test_engine_param_secrets_are_masked_everywhere(portfolios: Database, tmp_path: Path) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            suite: secrets
            params:
              pg_password: {{type: string}}
            sources:
              pg: {{url: "postgresql://gate:{{pg_password}}@127.0.0.1:{closed_port()}/batch"}}
            checks:
              - {{type: row_count, name: pg, table: t, min: 1}}
            """
        )
    )
    verdict = run_suite(load_suite(path, {"pg_password": "Hunter2-Secret"}, env={}))
    data = check_verdict(verdict)
    assert "Hunter2-Secret" not in json.dumps(data)
    assert data["params"] == {"pg_password": "***"}
    assert data["checks"][0]["error"]["category"] == "connectivity"


def test_engine_redacts_secrets_everywhere_in_a_result() -> None:
    from runner.engine import _redacted
    from runner.redact import Redactor
    from runner.results import CheckResult, Status

    secret = "pw-9f2c"
    result = CheckResult(
        name="n",
        type="sql",
        source="db",
        severity="error",
        status=Status.FAIL,
        message=f"bad {secret}",
        observed={"dsn": f"x:{secret}@h"},
        failures=[{"row": [secret, 1]}],
        notes=[f"note {secret}"],
        duration_s=0.1,
    )
    cleaned = _redacted(result, Redactor([secret])).model_dump_json()
    assert secret not in cleaned
    assert cleaned.count("***") == 4


SECRET = "pw-0123456789"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"x {SECRET} y", "x *** y"),
        ("xxpw-01234… [truncated: 2000 bytes]", "xx***… [truncated: 2000 bytes]"),
        (
            "first: v=pw-0… [truncated: 900 bytes], id=1",
            "first: v=***… [truncated: 900 bytes], id=1",
        ),
        ("head pw-012\n[…]\n3456789 tail", "head ***\n[…]\n*** tail"),
        ("xxpw… [truncated: 2000 bytes]", "xxpw… [truncated: 2000 bytes]"),  # 2 characters
        ("xxx… [truncated: 2000 bytes]", "xxx… [truncated: 2000 bytes]"),
    ],
    ids=["whole", "cut-value", "cut-in-message", "clipped-detail", "too-short", "none"],
)
def test_engine_redacts_the_part_of_a_secret_a_cut_leaves(text: str, redacted: str) -> None:
    from runner.redact import Redactor

    assert Redactor([SECRET])(text) == redacted
