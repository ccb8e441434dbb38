"""`postrun demo`: the shipped demo suite passes a clean batch and names every injected incident."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite, run_suite
from runner.demo import FAULTS, build_demo, find_demo_suite
from tests.conftest import check_verdict

HISTORY_FAULTS = {"short-run"}
"""Faults only a past catches: the demo records clean nights first (as --history-days does)."""


def run_demo(root: Path, faults: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    nights = 5 if HISTORY_FAULTS & set(faults) else 0
    for night in range(nights, 0, -1):
        past = build_demo(root, ("none",), night=night, keep_reports=night < nights)
        assert run_suite(load_suite(find_demo_suite(), past.params, env={})).verdict == "PASS"
    batch = build_demo(root, faults, keep_reports=nights > 0)
    verdict = run_suite(load_suite(find_demo_suite(), batch.params, env={}))
    data = check_verdict(verdict)
    injected = [name for names in batch.injected.values() for name in names]
    return data, injected


def test_demo_clean_batch_passes(tmp_path: Path) -> None:
    data, _ = run_demo(tmp_path / "demo", ("none",))
    assert [c["name"] for c in data["checks"] if c["status"] != "PASS"] == []
    assert (data["verdict"], data["exit_code"]) == ("PASS", 0)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_demo_fault_is_caught_and_named(tmp_path: Path, fault: str) -> None:
    data, injected = run_demo(tmp_path / "demo", (fault,))
    assert (data["verdict"], data["exit_code"]) == ("FAIL", 1)
    failing = [c for c in data["checks"] if c["status"] in ("FAIL", "WARN")]
    assert failing, fault
    if fault in HISTORY_FAULTS:  # judged against the past: the value and its band, no rows
        assert [(c["name"], c["observed"]["value"]) for c in failing] == [
            ("portfolio batch took its usual time", 1800.0)
        ]
    evidence = json.dumps([c["failures"] for c in failing])
    for name in injected if fault not in HISTORY_FAULTS else []:
        assert name in evidence, (fault, name, evidence[:500])
    assert not [c for c in data["checks"] if c["status"] == "ERROR"]


def test_demo_command_prints_table_and_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runner", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "injected: truncated-result" in result.stdout
    assert "FAIL   ETL result files are complete JSON" in result.stdout
    report = Path(result.stdout.splitlines()[-1].removeprefix("report: "))
    reports = tmp_path / "demo" / "reports"
    assert report.is_file() and report.parent.parent == reports / "demo"
    assert report.name == "verdict.html"
    assert sorted(p.name for p in report.parent.iterdir()) == [
        "junit.xml",
        "summary.md",
        "verdict.html",
        "verdict.json",
    ]
    index = (reports / "index.html").read_text()
    assert f'href="demo/{report.parent.name}/verdict.html"' in index


def test_demo_without_history_is_learning(tmp_path: Path) -> None:
    data, _ = run_demo(tmp_path / "demo", ("short-run",))  # history recorded: caught
    anomaly = {c["name"]: c for c in data["checks"]}["portfolio batch took its usual time"]
    assert anomaly["status"] == "FAIL"
    assert anomaly["message"].startswith("the query's value is out of its usual band: 1800,")
    batch = build_demo(tmp_path / "fresh", ("short-run",))  # no past: learning, not judged
    verdict = run_suite(load_suite(find_demo_suite(), batch.params, env={}))
    fresh = {c.name: c for c in verdict.checks}["portfolio batch took its usual time"]
    assert (fresh.status, fresh.notes) == ("PASS", ["learning: 0 of 5 runs"])
    assert (batch.root / "reports" / "history.sqlite").is_file()  # the suite's history: param


def test_demo_history_days_writes_a_trend(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--history-days",
            "5",
            "--fault",
            "short-run",
            "--fault",
            "missing-snapshots",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "history: 5 clean nights recorded first" in result.stdout
    assert (
        "FAIL   portfolio batch took its usual time  the query's value is out of its usual band: 1800"
        in result.stdout
    )
    assert (
        "FAIL   snapshot count is usual  one snapshot per active portfolio count is out of its usual band: 53"
        in result.stdout
    )
    page = tmp_path / "demo" / "reports" / "demo" / "history.html"
    assert f"history: {page}" in result.stdout
    html = page.read_text()
    assert "6 runs since" in html and html.count("<svg") >= 3


def test_demo_rejects_unknown_fault(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runner", "demo", "--dir", str(tmp_path / "d"), "--fault", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("postrun: unknown fault 'nope'")
