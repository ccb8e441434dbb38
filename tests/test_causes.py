"""Causes: one unreachable source is one finding, failures that share evidence are one cause, in
verdict.json, the terminal, verdict.html and summary.md."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from runner import load_suite, run_suite
from runner.causes import find_causes
from runner.demo import build_demo, find_demo_suite
from runner.results import CheckError, CheckResult, ErrorCategory, Status
from tests.conftest import Database, check_verdict, postgres_env
from tests.test_cli import postrun
from tests.test_render_html import parse

PASSWORD = "Wr0ng-Secret-pw"


def result(name: str, status: Status, **fields: Any) -> CheckResult:
    base: dict[str, Any] = {
        "name": name,
        "type": "sql",
        "source": "w",
        "severity": "error",
        "status": status,
        "message": f"{name} failed",
        "duration_s": 0.01,
    }
    return CheckResult(**(base | fields))


def grouped(checks: list[CheckResult]) -> list[tuple[str, str, list[str]]]:
    return [(c.status.value, c.kind, c.checks) for c in find_causes(checks)]


def test_causes_group_failures_by_the_file_or_id_they_name() -> None:
    checks = [
        result("files", Status.FAIL, failures=[{"path": "/r/a/../run_1.json", "id": 7}]),
        result("nulls", Status.FAIL, failures=[{"key": {"portfolio_id": "PF-1"}}]),
        result("steps", Status.FAIL, failures=[{"file": "/r/run_1.json", "check": "y"}]),
        result("batch", Status.WARN, failures=[{"id": "b-17", "status": "failed"}]),
        result("summary", Status.FAIL, failures=[{"batch_id": "b-17"}]),
        result("short ids", Status.FAIL, failures=[{"id": 7}, {"job_id": "b-7"}]),
        result("other file", Status.FAIL, failures=[{"path": "/r/run_2.json"}]),
        result("ok", Status.PASS),
        result("snapshot", Status.FAIL, failures=[{"portfolio_id": "PF-1", "equity": 3}]),
    ]
    assert grouped(checks) == [
        ("FAIL", "evidence", ["files", "steps"]),
        ("FAIL", "evidence", ["nulls", "snapshot"]),
        ("FAIL", "evidence", ["batch", "summary"]),
        ("FAIL", "check", ["short ids"]),  # 7 and b-7 are too short to be the same thing
        ("FAIL", "check", ["other file"]),
    ]
    causes = find_causes(checks)
    assert (causes[0].title, causes[0].effect, causes[0].evidence) == (
        "files failed",
        "2 checks fail",
        ["file /r/run_1.json"],
    )
    assert causes[2].evidence == ["id b-17"]


def test_causes_errors_come_first_one_per_source_message() -> None:
    down = CheckError(category=ErrorCategory.AUTH, retryable=False, message="login refused")
    bug = CheckError(category=ErrorCategory.INTERNAL, retryable=False, message="a bug")
    checks = [
        result("fail", Status.FAIL),
        result("a", Status.ERROR, source="pg", error=down, message=down.message),
        result("b", Status.ERROR, source="pg", error=down, message=down.message),
        result("bug", Status.ERROR, error=bug, message=bug.message),
        result("c", Status.ERROR, source="other", error=down, message=down.message),
        result("warn", Status.WARN),
    ]
    assert grouped(checks) == [
        ("ERROR", "source", ["a", "b"]),
        ("ERROR", "error", ["bug"]),
        ("ERROR", "source", ["c"]),
        ("FAIL", "check", ["fail"]),
        ("WARN", "check", ["warn"]),
    ]
    assert find_causes(checks)[0].effect == "2 checks could not be evaluated"


def test_causes_of_the_demo_are_its_two_incidents(tmp_path: Path) -> None:
    batch = build_demo(tmp_path / "demo")
    verdict = run_suite(load_suite(find_demo_suite(), batch.params, env={}))
    data = check_verdict(verdict)
    shown = [(c["kind"], c["effect"], c["checks"], c["evidence"]) for c in data["causes"]]
    assert shown == [
        (
            "evidence",
            "3 checks fail",
            [
                "ETL result files are complete JSON",
                "ETL batch status matches its operations",
                "ETL run steps are well-formed",
            ],
            [
                f"file {tmp_path / 'demo' / 'results' / 'run_20260101_204618.json'}",
                "id 42fb1529-08ec-43f1-94be-5ebf94fa3db4",
            ],
        ),
        (
            "evidence",
            "2 checks fail",
            ["run-date snapshots have P&L", "run-date snapshots meet their GX suite"],
            [
                "NULL cumulative_pnl in portfolio_snapshots",
                "NULL daily_pnl in portfolio_snapshots",
            ],
        ),
    ]


def test_causes_nulls_in_other_relations_are_other_causes(duck: Database, tmp_path: Path) -> None:
    duck.run(
        """
        create table a (id int, v int); insert into a values (1, null);
        create table b (id int, v int); insert into b values (2, null);
        """
    )
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            suite: nulls
            sources: {{w: {{url: "duckdb:///{duck.path}"}}}}
            checks:
              - {{type: not_null, name: a-1, table: a, columns: [v]}}
              - {{type: not_null, name: b-1, table: b, columns: [v]}}
              - {{type: not_null, name: a-2, table: a, columns: [v], max_nulls: 0}}
            """
        )
    )
    verdict = run_suite(load_suite(path, env={}))
    assert [c.checks for c in verdict.causes] == [["a-1", "a-2"], ["b-1"]]


def wrong_password_url() -> str:
    """The test server's reader with a wrong password: the server refuses the login."""
    url = make_url(postgres_env("POSTRUN_TEST_PG_READER_URL")).set(password=PASSWORD)
    return url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_causes_wrong_password_is_one_finding_at_the_top(pg: Database, tmp_path: Path) -> None:
    pg.run("create table t (a int, ts timestamptz)")
    (tmp_path / "suite.yml").write_text(
        textwrap.dedent(
            """\
            suite: password
            sources:
              wh: {url: "${BAD_URL}"}
            checks:
              - {type: row_count, name: rows, table: t, min: 1}
              - {type: not_null, name: nulls, table: t, columns: [a]}
              - {type: freshness, name: fresh, table: t, column: ts, max_age: 1d}
              - {type: sql, name: none, query: "select a from t where a < 0"}
            """
        )
    )
    done = postrun(
        "check", "suite.yml", "--out", "out", cwd=tmp_path, env={"BAD_URL": wrong_password_url()}
    )
    assert done.returncode == 3, done.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    message = verdict["checks"][0]["error"]["message"]
    assert "password authentication failed" in message and len(message) > 200
    assert {c["error"]["message"] for c in verdict["checks"]} == {message}
    assert [c["notes"] for c in verdict["checks"]] == [[]] * 4  # no "ran its own" per check
    (cause,) = verdict["causes"]
    assert (cause["kind"], cause["category"], cause["title"], cause["checks"]) == (
        "source",
        "auth",
        message,
        ["rows", "nulls", "fresh", "none"],
    )
    lines = done.stdout.splitlines()
    assert lines[:5] == [
        "1 cause:",
        f"ERROR  1. {message} → 4 checks could not be evaluated",
        "       error: auth, not retryable",
        "       checks: rows; nulls; fresh; none",
        "",
    ]
    assert lines[5:9] == [
        f"ERROR  {n}  see cause 1 above" for n in ("rows", "nulls", "fresh", "none")
    ]
    assert done.stdout.count("password authentication failed") == 1

    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.count("password authentication failed") == 1
    assert "**1 cause:**" in summary and "see cause 1 above" in summary

    doc = parse((tmp_path / "out" / "verdict.html").read_bytes())
    (item,) = doc.one("ol", "causes").all("li")
    title = item.one("span", "title").text()
    assert title.startswith(message[:200]) and title == message
    assert [a.text() for a in item.all("a")] == ["rows", "nulls", "fresh", "none"]

    written = (
        done.stdout + done.stderr + "".join(p.read_text() for p in (tmp_path / "out").iterdir())
    )
    assert PASSWORD not in written
    assert re.search(r"postgresql://\*\*\*@", message)
