"""Reports from a verdict: golden JSON/JUnit/Markdown, the JUnit schema, escaping, the run index."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from runner import load_suite, run_suite
from runner.causes import find_causes
from runner.demo import FAULTS, build_demo, find_demo_suite
from runner.errors import OutputError, UsageError
from runner.render import FORMATS, read_verdict, write_atomic, write_reports
from runner.render import index as index_module
from runner.render.index import RUNS_PER_SUITE, update_index
from runner.render.json import render_json
from runner.render.junit import render_junit
from runner.render.markdown import escape, render_markdown
from runner.results import (
    CheckError,
    CheckResult,
    ErrorCategory,
    Status,
    SuiteInfo,
    ToolInfo,
    Verdict,
    count_statuses,
    worst_status,
)
from tests.conftest import check_verdict

GOLDEN = Path(__file__).parent / "golden" / "reports"
JUNIT_XSD = xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit.xsd")
HOSTILE = "<script>x</script> | *bold* \n line"


def result(name: str, status: Status, message: str, **fields: object) -> CheckResult:
    base: dict[str, Any] = {
        "type": "row_count",
        "source": "warehouse",
        "severity": "warn" if status is Status.WARN else "error",
        "duration_s": 0.012,
    }
    return CheckResult.model_validate(
        {**base, **fields, "name": name, "status": status, "message": message}
    )


def make_verdict(checks: list[CheckResult], **fields: object) -> Verdict:
    statuses = [c.status for c in checks]
    verdict = worst_status(statuses)
    base: dict[str, Any] = {
        "tool": ToolInfo(version="0.1.0"),
        "suite": SuiteInfo(name="nightly-portfolio", path="checks/nightly.yml", sha256="ab" * 32),
        "run_id": "20251107T031500Z-3f9c",
        "params": {"run_date": "2025-11-06", "batch_id": "b-17"},
        "started_at": "2025-11-07T03:15:00.250Z",
        "finished_at": "2025-11-07T03:15:02.670Z",
        "duration_s": 2.42,
        "verdict": verdict,
        "exit_code": {"PASS": 0, "WARN": 0, "FAIL": 1, "ERROR": 3}[verdict.value],
        "counts": count_statuses(statuses),
        "checks": checks,
    }
    return Verdict.model_validate({**base, **fields})


def golden_verdict() -> Verdict:
    """Every status, a source error two checks share, failures of several shapes and a hostile
    value everywhere."""
    checks = golden_checks()
    return make_verdict(checks, causes=find_causes(checks), **GOLDEN_FIELDS)


def golden_checks() -> list[CheckResult]:
    return [
        result(
            "one snapshot per active portfolio",
            Status.PASS,
            "portfolio_snapshots has 58 rows where portfolios has 58",
            observed={"count": 58},
            expected={"equals": 58, "relation": "portfolios"},
            duration_s=0.031,
            queries=["q1", "q2"],
        ),
        result(
            "result files are complete JSON",
            Status.FAIL,
            "2 of 5 files bad, 1 of 5 expected missing: run_3.json truncated at line 252 "
            "column 22; run_4.json schema; …",
            type="json_integrity",
            source="results",
            observed={"files": 4, "bad_files": 2, "missing": 1},
            expected={"expected_files": 5},
            failures=[
                {
                    "path": "results/run_3.json",
                    "reason": "truncated",
                    "message": "truncated at line 252 column 22 (byte 6216)",
                    "line": 252,
                    "column": 22,
                    "offset": 6216,
                },
                {
                    "path": "results/run_4.json",
                    "reason": "schema",
                    "message": "'status' is a required property",
                    "pointer": "/pipelines/2",
                },
                {"path": "results/run_5.json", "reason": "missing"},
            ],
            failure_count=25,
            duration_s=0.173,
        ),
        result(
            "batch status matches its operations",
            Status.FAIL,
            "1 of 6 parents in processing_jobs contradict their children: b-17 is "
            "'processing' though all 7 children succeeded (all_succeeded allows completed)",
            type="status_consistency",
            failures=[
                {
                    "id": "b-17",
                    "status": "processing",
                    "outcome": "all_succeeded",
                    "allowed": ["completed"],
                    "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
                    "counters": {"files_success": {"parent": 0, "children": 7}},
                }
            ],
            failure_count=1,
        ),
        result(
            "pnl filled",
            Status.WARN,
            "portfolio_snapshots has NULLs in 2 of 58 rows (daily_pnl 2)",
            type="not_null",
            observed={"rows": 58, "nulls": {"daily_pnl": 2}},
            expected={"max_nulls": 0},
            failures=[
                {"key": {"portfolio_id": "PF-0014"}, "null_columns": ["daily_pnl"]},
                {"key": {"portfolio_id": "PF-0037"}, "null_columns": ["daily_pnl"]},
            ],
            failure_count=2,
            notes=["1 row had a NULL key"],
            queries=["q1", "q3"],
        ),
        result(
            "remote row count",
            Status.ERROR,
            "cannot connect to postgresql://gate:***@db:5432/batch: connection refused",
            source="remote",
            error=CheckError(
                category=ErrorCategory.CONNECTIVITY,
                retryable=True,
                message="cannot connect to postgresql://gate:***@db:5432/batch",
                detail="OperationalError: connection refused\x00\x1b[31m (is the server up?)",
            ),
            duration_s=1.5,
        ),
        result(
            "remote batches are fresh",
            Status.ERROR,
            "cannot connect to postgresql://gate:***@db:5432/batch",
            source="remote",
            type="freshness",
            error=CheckError(
                category=ErrorCategory.CONNECTIVITY,
                retryable=True,
                message="cannot connect to postgresql://gate:***@db:5432/batch",
                detail="OperationalError: connection refused",
            ),
            duration_s=1.5,
        ),
        result("every batch has a summary", Status.SKIP, "skipped (--skip)", type="reference"),
        result(
            HOSTILE,
            Status.FAIL,
            f"query returned 1 violating row; first: note={HOSTILE}",
            type="sql",
            failures=[{"note": HOSTILE, "id": "[x](javascript:alert(1))"}],
            failure_count=1,
        ),
    ]


GOLDEN_FIELDS: dict[str, Any] = {
    "params": {"run_date": "2025-11-06", "batch_id": "b-17", "note": HOSTILE},
    "queries": [
        {
            "id": "q1",
            "source": "warehouse",
            "sql": "SELECT count(*) AS a0, count(*) - count(daily_pnl) AS a1 \n"
            "FROM portfolio_snapshots \nWHERE (snapshot_date = $1\n)",
            "checks": ["one snapshot per active portfolio", "pnl filled"],
            "duration_s": 0.012,
        },
        {
            "id": "q2",
            "source": "warehouse",
            "sql": "SELECT count(*) AS count \nFROM portfolios",
            "checks": ["one snapshot per active portfolio"],
            "duration_s": 0.002,
        },
        {
            "id": "q3",
            "source": "warehouse",
            "sql": "SELECT portfolio_id, daily_pnl, count(*) OVER () AS postrun_total \n"
            "FROM portfolio_snapshots \nWHERE (snapshot_date = $1\n) AND daily_pnl IS NULL "
            "ORDER BY portfolio_id \n LIMIT $2",
            "checks": ["pnl filled"],
            "duration_s": None,
        },
    ],
}


RENDERERS = {"verdict.json": render_json, "junit.xml": render_junit, "summary.md": render_markdown}


@pytest.mark.parametrize("filename", sorted(RENDERERS))
def test_render_matches_golden(filename: str) -> None:
    rendered = RENDERERS[filename](golden_verdict())
    path = GOLDEN / filename
    if os.environ.get("POSTRUN_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered)
        pytest.fail(f"{path} rewritten: review the diff (git diff {path}) before committing")
    assert rendered.decode() == path.read_text(encoding="utf-8")


def test_golden_verdict_is_a_valid_verdict() -> None:
    data = check_verdict(golden_verdict())
    assert data["counts"] == {"PASS": 1, "WARN": 1, "FAIL": 3, "ERROR": 2, "SKIP": 1}
    assert [(c["kind"], c["checks"]) for c in data["causes"]] == [
        ("source", ["remote row count", "remote batches are fresh"]),
        ("check", ["result files are complete JSON"]),
        ("check", ["batch status matches its operations"]),
        ("check", [HOSTILE]),
        ("check", ["pnl filled"]),
    ]
    assert read_verdict_bytes(render_json(golden_verdict())) == golden_verdict()


def read_verdict_bytes(data: bytes) -> Verdict:
    return Verdict.model_validate_json(data)


# --- JUnit -------------------------------------------------------------------------------------


def test_junit_golden_is_valid_against_the_schema() -> None:
    JUNIT_XSD.validate(render_junit(golden_verdict()).decode())


@pytest.mark.parametrize(
    "broken",
    [
        ('tests="8"', 'tests="eight"'),
        ('time="0.031"', 'time="1e-3"'),
        ('timestamp="2025-11-07T03:15:00"', 'timestamp="2025-11-07T03:15:00.250Z"'),
        ('type="connectivity"', ""),
    ],
)
def test_junit_schema_rejects_what_ci_would(broken: tuple[str, str]) -> None:
    text = render_junit(golden_verdict()).decode()
    assert broken[0] in text
    assert not JUNIT_XSD.is_valid(text.replace(broken[0], broken[1], 1))


def test_junit_counts_and_outcome_per_status() -> None:
    root = ET.fromstring(render_junit(golden_verdict()))
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")} == {
        "name": "nightly-portfolio",
        "tests": "8",
        "failures": "3",
        "errors": "2",
        "skipped": "1",
    }
    outcomes = {case.get("name"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert outcomes == {
        "one snapshot per active portfolio": [],
        "result files are complete JSON": ["failure"],
        "batch status matches its operations": ["failure"],
        "pnl filled": ["system-out"],
        "remote row count": ["error"],
        "remote batches are fresh": ["error"],
        "every batch has a summary": ["skipped"],
        HOSTILE: ["failure"],
    }
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["run_id"] == "20251107T031500Z-3f9c"
    assert properties["verdict"] == "ERROR"
    assert properties["param.note"] == HOSTILE


def test_junit_warn_passes_with_its_evidence_in_system_out() -> None:
    root = ET.fromstring(render_junit(golden_verdict()))
    case = next(c for c in root.iter("testcase") if c.get("name") == "pnl filled")
    assert case.find("failure") is None and case.find("error") is None
    out = case.findtext("system-out") or ""
    assert out.splitlines() == [
        "WARN: portfolio_snapshots has NULLs in 2 of 58 rows (daily_pnl 2)",
        'observed: {"rows":58,"nulls":{"daily_pnl":2}}',
        'expected: {"max_nulls":0}',
        '{"key":{"portfolio_id":"PF-0014"},"null_columns":["daily_pnl"]}',
        '{"key":{"portfolio_id":"PF-0037"},"null_columns":["daily_pnl"]}',
        "note: 1 row had a NULL key",
    ]


def test_junit_failure_evidence_is_capped_at_20_lines() -> None:
    failures = [{"id": n} for n in range(30)]
    verdict = make_verdict(
        [result("many", Status.FAIL, "30 bad", failures=failures, failure_count=1234)]
    )
    text = ET.fromstring(render_junit(verdict)).findtext("testsuite/testcase/failure") or ""
    lines = text.splitlines()
    assert lines[:2] == ["30 bad", '{"id":0}']
    assert lines[-2:] == ['{"id":19}', "… 1214 more"]
    assert len(lines) == 22


def test_junit_strips_characters_xml_cannot_carry() -> None:
    verdict = make_verdict([result("bell\x07 check", Status.FAIL, "bad\x00 value\x1b[0m \ud800ok")])
    data = render_junit(verdict)
    case = ET.fromstring(data).find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "bell check"
    failure = case.find("failure")
    # the lone surrogate never reaches the renderer: the result keeps it written out
    assert failure is not None and failure.get("message") == "bad value[0m \\ud800ok"
    JUNIT_XSD.validate(data.decode())


@pytest.fixture(scope="module")
def demo_verdict(tmp_path_factory: pytest.TempPathFactory) -> Verdict:
    root = tmp_path_factory.mktemp("demo")
    batch = build_demo(root / "demo", tuple(sorted(FAULTS)))
    return run_suite(load_suite(find_demo_suite(), batch.params, env={}))


def test_junit_of_a_real_demo_run_is_valid(demo_verdict: Verdict) -> None:
    data = render_junit(demo_verdict)
    JUNIT_XSD.validate(data.decode())
    suite = ET.fromstring(data).find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(len(demo_verdict.checks))
    assert suite.get("failures") == str(demo_verdict.counts["FAIL"]) != "0"
    assert len(suite.findall("testcase/failure")) == demo_verdict.counts["FAIL"]


# --- Markdown ----------------------------------------------------------------------------------

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def test_markdown_hostile_values_cannot_break_the_table() -> None:
    text = render_markdown(golden_verdict()).decode()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert all(len(_UNESCAPED_PIPE.findall(row)) == 4 for row in rows), rows
    problems = [r for r in rows if r.startswith(("| ❌", "| ⚠️", "| 💥"))]
    others = [r for r in rows if r.startswith(("| ✅", "| ⏭️"))]
    assert (len(problems), len(others)) == (6, 2)
    assert problems[0].startswith("| 💥 ERROR | remote row count |")
    assert "<script" not in text
    assert not re.search(r"(?<!\\)\]\(", text)  # no link: every "[" and "]" escaped
    assert set(re.findall(r"</?[a-z]+>", text)) == {"<br>", "<details>", "</details>"} | {
        "<summary>",
        "</summary>",
    }


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (HOSTILE, r"&lt;script&gt;x&lt;/script&gt; \| \*bold\* line"),
        ("a_b [c](d) `e` ~f~ #g $h$ \\", r"a\_b \[c\](d) \`e\` \~f\~ \#g \$h\$ \\"),
        ("&amp; \r\n\t x\x07", "&amp;amp; x"),
    ],
)
def test_markdown_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_markdown_of_a_passing_run_says_so_and_folds_the_checks() -> None:
    verdict = make_verdict([result("a", Status.PASS, "fine"), result("b", Status.SKIP, "off")])
    lines = render_markdown(verdict).decode().splitlines()
    assert lines[0] == "## ✅ postrun PASS: nightly-portfolio"
    assert "All checks passed." in lines
    assert "<summary>1 passed, 1 skipped</summary>" in lines


# --- Writing -----------------------------------------------------------------------------------


def test_write_reports_writes_every_format_atomically(tmp_path: Path) -> None:
    written = write_reports(golden_verdict(), tmp_path / "run")
    assert [p.name for p in written] == ["verdict.json", "verdict.html", "junit.xml", "summary.md"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(p.name for p in written)
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in written} == {0o666 & ~umask}


def test_write_reports_keeps_the_other_formats_when_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(verdict: Verdict) -> bytes:
        raise RuntimeError("template bug")

    monkeypatch.setitem(FORMATS, "html", ("verdict.html", broken))
    with pytest.raises(OutputError, match=r"cannot render .*verdict.html: RuntimeError: template"):
        write_reports(golden_verdict(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "summary.md", "verdict.json"]


def test_read_verdict_names_the_file_and_first_problem(tmp_path: Path) -> None:
    path = tmp_path / "verdict.json"
    path.write_bytes(render_json(golden_verdict())[:200])
    with pytest.raises(UsageError, match=r"verdict.json: not a valid verdict.json: .*Invalid JSON"):
        read_verdict(path)
    data = json.loads(render_json(golden_verdict()))
    del data["checks"][1]["status"]
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=r"not a valid verdict.json: checks.1.status: Field req"):
        read_verdict(path)
    data = json.loads(render_json(golden_verdict())) | {"schema_version": 2}
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="schema_version 2 is not supported"):
        read_verdict(path)


def test_importing_runner_render_does_not_import_jinja2() -> None:
    code = "import sys, runner.render; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- Run index ---------------------------------------------------------------------------------


def write_run(root: Path, suite: str, run_id: str, started: str, **fields: object) -> Path:
    status = fields.pop("status", Status.FAIL)
    assert isinstance(status, Status)
    verdict = make_verdict(
        [result("c", status, "m")],
        suite=SuiteInfo(name=suite, path="s.yml", sha256="0" * 64),
        run_id=run_id,
        started_at=started,
        **fields,
    )
    path = root / suite / run_id / "verdict.json"
    write_atomic(path, render_json(verdict))
    return path


class IndexRow:
    """One run row of index.html, read back with a regex (the template is ours)."""

    ROW = re.compile(
        r'<tr class="run">\s*<td>(?P<suite>.*?)</td>\s*<td class="run"><a href="(?P<link>.*?)">'
        r"(?P<run>.*?)</a></td>\s*<td class=\"time\">(?P<time>.*?)</td>\s*<td><span "
        r'class="verdict v-(?P<cls>[\w-]+)">(?P<verdict>.*?)</span></td>\s*<td>(?P<counts>.*?)'
        r'</td>\s*<td class="num">(?P<duration>.*?)</td>',
    )

    @classmethod
    def parse(cls, index: Path) -> list[dict[str, str]]:
        return [m.groupdict() for m in cls.ROW.finditer(index.read_text())]


def test_index_lists_runs_newest_first_with_relative_links(tmp_path: Path) -> None:
    write_run(tmp_path, "nightly", "r1", "2025-11-05T03:00:00Z", status=Status.PASS)
    write_run(tmp_path, "nightly", "r3", "2025-11-07T03:00:00.5Z")
    write_run(tmp_path, "hourly", "r2", "2025-11-06T23:59:59+02:00", status=Status.WARN)
    (tmp_path / "nightly" / "r3" / "verdict.html").write_text("<html></html>")
    index = update_index(tmp_path)
    assert index == tmp_path / "index.html"
    rows = IndexRow.parse(index)
    assert [(r["suite"], r["run"], r["time"], r["verdict"], r["link"]) for r in rows] == [
        ("nightly", "r3", "2025-11-07 03:00:00 UTC", "FAIL", "nightly/r3/verdict.html"),
        ("hourly", "r2", "2025-11-06 21:59:59 UTC", "WARN", "hourly/r2/verdict.json"),
        ("nightly", "r1", "2025-11-05 03:00:00 UTC", "PASS", "nightly/r1/verdict.json"),
    ]
    assert rows[0]["counts"] == "1 FAIL" and rows[0]["duration"] == "2.42 s"
    assert "3 runs listed, newest first; at most the 200 most recent runs" in index.read_text()


def test_index_lists_unreadable_verdicts_without_failing(tmp_path: Path) -> None:
    good = write_run(tmp_path, "nightly", "r1", "2025-11-05T03:00:00Z")
    partial = tmp_path / "nightly" / "r2" / "verdict.json"
    partial.parent.mkdir()
    partial.write_bytes(good.read_bytes()[:100])
    wrong = tmp_path / "other" / "r3" / "verdict.json"
    wrong.parent.mkdir(parents=True)
    wrong.write_text('{"suite": 1}')
    rows = IndexRow.parse(update_index(tmp_path))
    unreadable = {(r["suite"], r["run"]) for r in rows if r["verdict"] == "unreadable"}
    assert unreadable == {("nightly", "r2"), ("other", "r3")}
    assert {r["cls"] for r in rows} == {"FAIL", "unreadable"}
    assert len(rows) == 3


def test_index_keeps_the_200_most_recent_runs_per_suite(tmp_path: Path) -> None:
    first = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(RUNS_PER_SUITE + 5):
        started = first + timedelta(minutes=n)
        path = write_run(tmp_path, "busy", f"r{n:03}", started.isoformat())
        os.utime(path, (started.timestamp(), started.timestamp()))  # written as it finished
    write_run(tmp_path, "quiet", "q1", "2020-01-01T00:00:00Z")
    index = update_index(tmp_path)
    rows = IndexRow.parse(index)
    busy = [r["run"] for r in rows if r["suite"] == "busy"]
    assert busy == [f"r{n:03}" for n in range(RUNS_PER_SUITE + 4, 4, -1)]
    assert [r["run"] for r in rows if r["suite"] == "quiet"] == ["q1"]
    assert "(5 older not listed)" in index.read_text()


def test_index_escapes_names_and_links(tmp_path: Path) -> None:
    suite = 'we"ird <b>suite & co?#'
    write_run(tmp_path, suite, "<img src=x onerror=alert(1)>", "2025-11-05T03:00:00Z")
    text = update_index(tmp_path).read_text()
    assert "<img" not in text and "<b>" not in text
    (row,) = IndexRow.parse(tmp_path / "index.html")
    assert row["link"] == (
        "we%22ird%20%3Cb%3Esuite%20%26%20co%3F%23/"
        "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/verdict.json"
    )
    assert row["suite"] == "we&#34;ird &lt;b&gt;suite &amp; co?#"
    assert row["run"] == "&lt;img src=x onerror=alert(1)&gt;"


def test_index_lists_run_folders_whose_names_are_not_utf8(tmp_path: Path) -> None:
    """A folder name with a byte that is not UTF-8 (or a control character) used to stop the
    index of every later run; it is listed, linked by its bytes and shown escaped."""
    good = write_run(tmp_path, "nightly", "r1", "2025-11-05T03:00:00Z")
    for name, content in ((b"run_\xff", good.read_bytes()), (b"cut_\xfe\x1b[2J", b"{")):
        folder = Path(os.fsdecode(bytes(tmp_path / "nightly") + b"/" + name))
        folder.mkdir()
        (folder / "verdict.json").write_bytes(content)
    index = update_index(tmp_path)
    rows = {(r["run"], r["link"], r["verdict"]) for r in IndexRow.parse(index)}
    assert rows == {
        ("r1", "nightly/r1/verdict.json", "FAIL"),
        ("r1", "nightly/run_%FF/verdict.json", "FAIL"),  # the run id its verdict.json gives
        ("cut_\\xfe\\x1b[2J", "nightly/cut_%FE%1B%5B2J/verdict.json", "unreadable"),
    }
    assert "\x1b" not in index.read_text()


def test_index_loses_no_run_when_runs_finish_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = index_module.build_page
    calls: list[int] = []

    def slow_first_scan(root: Path) -> index_module.IndexPage:
        page = scan(root)
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)  # the first scanner writes last: without a lock it would win
        return page

    monkeypatch.setattr(index_module, "build_page", slow_first_scan)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def finish_run(n: int) -> None:
        try:
            start.wait()
            time.sleep(n * 0.01)
            write_run(tmp_path, "nightly", f"run-{n}", f"2025-11-07T03:00:0{n}Z")
            update_index(tmp_path)
        except BaseException as exc:  # surfaced below: a thread's assert would vanish
            errors.append(exc)

    threads = [threading.Thread(target=finish_run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs = [r["run"] for r in IndexRow.parse(tmp_path / "index.html")]
    assert runs == [f"run-{n}" for n in range(7, -1, -1)]


def test_markdown_cuts_long_tables_with_a_count() -> None:
    checks = [result(f"c{n}", Status.FAIL, "x" * 2000) for n in range(250)]
    checks += [result(f"p{n}", Status.PASS, "fine") for n in range(150)]
    text = render_markdown(make_verdict(checks)).decode()
    assert len([line for line in text.splitlines() if line.startswith("| ❌ FAIL |")]) == 100
    assert len([line for line in text.splitlines() if line.startswith("| ✅ PASS |")]) == 100
    assert "… 150 more checks not shown: see verdict.html or verdict.json." in text
    assert "… 50 more checks not shown: see verdict.html or verdict.json." in text
    assert len(text.encode()) < 100_000


def test_render_markdown_names_the_run_a_rerun_repeats() -> None:
    from runner.results import RerunOf

    verdict = golden_verdict().model_copy(
        update={
            "rerun_of": RerunOf(run_id="20251106T031500Z-aaaaaa", path="v.json", checks=["a_b"])
        }
    )
    lines = render_markdown(verdict).decode().splitlines()
    assert "rerun of run 20251106T031500Z-aaaaaa: ran again a\\_b" in lines
