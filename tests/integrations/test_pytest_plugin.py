"""`pytest --postrun SUITE`: one test per check on real demo batches, run by pytest's own pytester."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import pytest

from runner import load_suite, run_suite
from runner.demo import build_demo, find_demo_suite

pytest_plugins = ["pytester"]

REPO = find_demo_suite().parent.parent
CHECKS = [c.name for c in load_suite(find_demo_suite(), {"run_date": "2025-11-06"}).checks]
FILE_CHECKS = ["ETL batch status matches its operations", "ETL run steps are well-formed"]
"""The demo checks that read result files only."""
WAREHOUSE_CHECKS = [n for n in CHECKS if n not in FILE_CHECKS]


@pytest.fixture(scope="module", autouse=True)
def _modules_loaded(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run the demo suite once here first: pytester's in-process runs drop the modules they
    import, and importing a SQLAlchemy dialect again warns (an error under this project's
    filterwarnings)."""
    batch = build_demo(tmp_path_factory.mktemp("warm") / "demo", ("none",))
    run_suite(load_suite(find_demo_suite(), batch.params, env={}))


@pytest.fixture(autouse=True)
def _fast_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis's plugin imports hypothesis in every in-process run (1.5 s each); not needed.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """A folder holding the shipped suite and what it references, as a user's project would."""
    shutil.copytree(REPO / "checks", pytester.path / "checks")
    shutil.copytree(REPO / "expectations", pytester.path / "expectations")
    return pytester.path


def postrun_args(demo: Path, *extra: str, db: Path | None = None) -> list[str]:
    batch_db = db or demo / "portfolio.duckdb"
    return [
        "--postrun",
        "checks/demo.yml",
        "--postrun-param",
        "run_date=2025-11-06",
        "--postrun-param",
        f"db={batch_db}",
        "--postrun-param",
        f"results_dir={demo / 'results'}",
        *extra,
    ]


def outcomes(reprec: pytest.HookRecorder) -> dict[str, list[str]]:
    """Check name → pytest outcome ('passed', 'failed', 'error', 'skipped'), by outcome."""
    found: dict[str, list[str]] = {"passed": [], "failed": [], "error": [], "skipped": []}
    for rep in reprec.getreports("pytest_runtest_logreport"):
        name = rep.nodeid.split("::", 1)[1]
        if rep.when == "setup" and rep.failed:
            found["error"].append(name)
        elif rep.when == "setup" and rep.skipped:
            found["skipped"].append(name)
        elif rep.when == "call":
            found[rep.outcome].append(name)
    return found


def texts(reprec: pytest.HookRecorder) -> dict[str, str]:
    """Check name → the text pytest shows for its failure or error."""
    return {
        rep.nodeid.split("::", 1)[1]: rep.longreprtext
        for rep in reprec.getreports("pytest_runtest_logreport")
        if rep.failed
    }


def test_plugin_clean_demo_passes_every_check(pytester: pytest.Pytester, project: Path) -> None:
    demo = build_demo(project / "demo", ("none",)).root
    reprec = pytester.inline_run(*postrun_args(demo))
    assert outcomes(reprec) == {"passed": CHECKS, "failed": [], "error": [], "skipped": []}
    assert reprec.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        (
            "truncated-result",
            [
                "ETL result files are complete JSON",
                "ETL batch status matches its operations",
                "ETL run steps are well-formed",
            ],
        ),
        ("stuck-batch", ["processing batches match their files"]),
        (
            "missing-snapshots",
            ["one snapshot per active portfolio", "every active portfolio has a run-date snapshot"],
        ),
    ],
)
def test_plugin_fault_fails_its_checks_with_the_evidence(
    pytester: pytest.Pytester, project: Path, fault: str, failing: list[str]
) -> None:
    batch = build_demo(project / "demo", (fault,))
    reprec = pytester.inline_run(*postrun_args(batch.root))
    assert outcomes(reprec) == {
        "passed": [n for n in CHECKS if n not in failing],
        "failed": failing,
        "error": [],
        "skipped": [],
    }
    assert reprec.ret == pytest.ExitCode.TESTS_FAILED
    failure_texts = texts(reprec)
    evidence = "\n".join(failure_texts.values())
    for name in batch.injected[fault]:
        assert name in evidence, (name, evidence)
    for name, text in failure_texts.items():
        assert f"\ncheck '{name}' (" in text and "severity error) at checks/demo.yml:" in text
        assert "\nobserved: {" in text and "\nexpected: {" in text
    assert "\nfailures (" in evidence


def test_plugin_failure_text_is_message_then_facts(
    pytester: pytest.Pytester, project: Path
) -> None:
    batch = build_demo(project / "demo", ("null-pnl",))
    reprec = pytester.inline_run(*postrun_args(batch.root), "-k", "have and P")
    assert texts(reprec) == {
        "run-date snapshots have P&L": "\n".join(
            [
                "portfolio_snapshots has NULLs in 4 of 58 rows (daily_pnl 4, cumulative_pnl 4)",
                "check 'run-date snapshots have P&L' (not_null, severity error) at "
                "checks/demo.yml:268: FAIL",
                'observed: {"nulls": {"cumulative_pnl": 4, "daily_pnl": 4}, "rows": 58}',
                'expected: {"max_nulls": 0}',
                "failures (4 of 4):",
                *(
                    f'  - {{"key": {{"portfolio_id": "{pf}"}}, '
                    '"null_columns": ["daily_pnl", "cumulative_pnl"]}'
                    for pf in ("PF-0014", "PF-0037", "PF-0045", "PF-0058")
                ),
            ]
        )
    }


def test_plugin_unreachable_source_gives_errors_not_failures(
    pytester: pytest.Pytester, project: Path
) -> None:
    demo = build_demo(project / "demo", ("none",)).root
    reprec = pytester.inline_run(*postrun_args(demo, db=project / "gone" / "portfolio.duckdb"))
    assert outcomes(reprec) == {
        "passed": FILE_CHECKS,
        "failed": [],
        "error": WAREHOUSE_CHECKS,
        "skipped": [],
    }
    assert reprec.ret == pytest.ExitCode.TESTS_FAILED
    for name, text in texts(reprec).items():
        first, second = text.splitlines()[:2]
        assert first.startswith("config error (not retryable): Source 'warehouse': database file")
        assert second.startswith(f"check '{name}' (") and second.endswith("could not be evaluated")


def test_plugin_junitxml_has_one_testcase_per_check(
    pytester: pytest.Pytester, project: Path
) -> None:
    batch = build_demo(project / "demo", ("truncated-result", "null-pnl"))
    junit = project / "junit.xml"
    pytester.inline_run(*postrun_args(batch.root), f"--junitxml={junit}")
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == CHECKS
    assert {c.get("classname") for c in cases} == {"checks.demo.yml"}
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [
        "ETL result files are complete JSON",
        "ETL batch status matches its operations",
        "ETL run steps are well-formed",
        "run-date snapshots have P&L",
        "run-date snapshots meet their GX suite",
    ]
    assert not [c for c in cases if c.find("error") is not None]
    properties = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert properties == {"postrun_status": "FAIL", "postrun_type": "json_integrity"}


def test_plugin_junitxml_reports_errors_with_their_category(
    pytester: pytest.Pytester, project: Path
) -> None:
    demo = build_demo(project / "demo", ("none",)).root
    junit = project / "junit.xml"
    pytester.inline_run(
        *postrun_args(demo, db=project / "gone.duckdb"), f"--junitxml={junit}", "-k", "wallet"
    )
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == [n for n in CHECKS if "wallet" in n]
    for case in cases:
        error = case.find("error")
        assert error is not None and "config error (not retryable)" in (error.text or "")
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties["postrun_error_category"] == "config"


@pytest.fixture
def warn_demo(project: Path) -> Path:
    """A clean batch whose stress tests are missing: the warn-severity check ends WARN."""
    demo = build_demo(project / "demo", ("none",)).root
    with duckdb.connect(str(demo / "portfolio.duckdb")) as con:
        con.execute("delete from stress_test_results")
    return demo


def test_plugin_warn_passes_with_a_warning_even_under_filterwarnings_error(
    pytester: pytest.Pytester, warn_demo: Path
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    result = pytester.runpytest(*postrun_args(warn_demo))
    result.assert_outcomes(passed=len(CHECKS), warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "checks/demo.yml::stress tests calculated",
            "*checks/demo.yml:*: PostrunWarning: stress tests calculated: "
            "stress_test_results has 0 rows where at least 1 expected",
        ]
    )
    result.stdout.fnmatch_lines(
        ["postrun: suite 'demo' (checks/demo.yml): WARN (18 PASS, 1 WARN)*"]
    )


def test_plugin_warn_fails_with_fail_on_warn(pytester: pytest.Pytester, warn_demo: Path) -> None:
    reprec = pytester.inline_run(*postrun_args(warn_demo, "--postrun-fail-on", "warn"))
    assert outcomes(reprec)["failed"] == ["stress tests calculated"]
    text = texts(reprec)["stress tests calculated"]
    assert "(row_count, severity warn) at checks/demo.yml:" in text and ": WARN\n" in text


def test_plugin_k_selects_checks_and_runs_only_those(
    pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.engine

    runs: list[list[str]] = []
    real = runner.engine.run_suite

    def counting(suite, options=None, **kwargs):
        runs.append(list(options.only))
        return real(suite, options, **kwargs)

    monkeypatch.setattr(runner.engine, "run_suite", counting)
    batch = build_demo(project / "demo", ("null-pnl",))
    reprec = pytester.inline_run(*postrun_args(batch.root), "-k", "snapshot and not equity")
    selected = [n for n in CHECKS if "snapshot" in n and "equity" not in n]
    null_pnl = ["run-date snapshots have P&L", "run-date snapshots meet their GX suite"]
    assert outcomes(reprec) == {
        "passed": [n for n in selected if n not in null_pnl],
        "failed": null_pnl,
        "error": [],
        "skipped": [],
    }
    assert runs == [selected]  # one run for the session, of the selected checks only


def test_plugin_k_matches_check_types(pytester: pytest.Pytester, project: Path) -> None:
    demo = build_demo(project / "demo", ("none",)).root
    reprec = pytester.inline_run(*postrun_args(demo), "-k", "row_count")
    assert outcomes(reprec)["passed"] == [
        "one snapshot per active portfolio",
        "volatility metrics calculated",
        "stress tests calculated",
    ]


def test_plugin_invalid_suite_is_a_collection_error_with_file_and_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(
        ".yml",
        bad="""
        suite: bad
        sources:
          w: {url: "duckdb:///x.duckdb"}
        checks:
          - type: row_count
            table: t
            min: 1
            colums: [a]
        """,
    )
    result = pytester.runpytest("--postrun", "bad.yml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting bad.yml*",
            "postrun: bad.yml:8: check #1 (row_count): unknown key 'colums'",
        ]
    )


def test_plugin_missing_param_names_the_pytest_flag(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = pytester.runpytest("--postrun", "checks/demo.yml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "postrun: param 'run_date' is required: pass --postrun-param run_date=… "
            "or set POSTRUN_PARAM_RUN_DATE"
        ]
    )


def test_plugin_bad_param_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--postrun", "s.yml", "--postrun-param", "run_date")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --postrun-param takes NAME=VALUE, got 'run_date'"])


def test_plugin_runs_several_suites_once_each(
    pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.engine

    runs: list[str] = []
    real = runner.engine.run_suite

    def counting(suite, options=None, **kwargs):
        runs.append(suite.name)
        return real(suite, options, **kwargs)

    monkeypatch.setattr(runner.engine, "run_suite", counting)
    pytester.makefile(
        ".yml",
        wallets="""
        suite: wallets
        params:
          db: {type: path, required: true}
        sources:
          warehouse: {url: "duckdb:///{db}"}
        checks:
          - type: row_count
            name: wallet jobs exist
            table: wallet_jobs
            min: 1
          - type: row_count
            name: no more than ten wallet jobs
            table: wallet_jobs
            max: 10
        """,
    )
    demo = build_demo(project / "demo", ("none",)).root
    reprec = pytester.inline_run(*postrun_args(demo), "--postrun", "wallets.yml", "-v")
    assert [
        r.nodeid for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"
    ] == [
        *(f"checks/demo.yml::{name}" for name in CHECKS),
        "wallets.yml::wallet jobs exist",
        "wallets.yml::no more than ten wallet jobs",
    ]
    assert sorted(runs) == ["demo", "wallets"]


def test_plugin_test_paths_run_beside_the_suite(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    demo = build_demo(project / "demo", ("none",)).root
    reprec = pytester.inline_run("test_plain.py", *postrun_args(demo))
    reprec.assertoutcome(passed=len(CHECKS) + 1)


def test_plugin_is_inert_without_postrun(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1)
    config = reprec.getcall("pytest_sessionstart").session.config
    assert config.pluginmanager.has_plugin("postrun")
    assert config.pluginmanager.get_plugin("postrun-suites") is None


def test_plugin_misspelt_param_is_refused(pytester: pytest.Pytester, project: Path) -> None:
    demo = build_demo(project / "demo", ("none",)).root
    result = pytester.runpytest(*postrun_args(demo), "--postrun-param", "run_dat=2025-11-06")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["postrun: unknown param 'run_dat'*(did you mean 'run_date'?)*"])
