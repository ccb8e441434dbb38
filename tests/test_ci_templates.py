"""The gate where it is used: GitHub Actions and GitLab CI templates, the post-batch hook and the
Airflow gate (ci/). Templates are parsed and their scripts run against a fake `postrun`; the hook
and the Airflow gate also run end to end on demo batches. Airflow itself is not installed here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
import yaml

from runner.demo import CLEAN, DemoBatch, build_demo

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "ci"
HOOK = CI / "post-batch-hook.sh"
DEMO_SUITE = ROOT / "checks" / "demo.yml"

# A stand-in for `postrun`: logs its arguments, then plays the next step of $FAKE_PLAN (exit code
# and the `retryable` flag of each ERROR check), writing verdict.json to --out unless told not to.
FAKE_POSTRUN = f"""\
#!{sys.executable}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
log = Path(os.environ["FAKE_LOG"])
done = log.read_text().count("\\n") if log.exists() else 0
with log.open("a") as handle:
    handle.write(json.dumps(args) + "\\n")
plan = json.loads(os.environ["FAKE_PLAN"])
step = plan[min(done, len(plan) - 1)]
if "--out" in args and step.get("write", True):
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    errors = [
        {{"name": f"c{{n}}", "status": "ERROR", "error": {{"retryable": r}}}}
        for n, r in enumerate(step.get("errors", []))
    ]
    verdict = {{0: "PASS", 1: "FAIL", 3: "ERROR"}}.get(step["exit"], "ERROR")
    (out / "verdict.json").write_text(json.dumps({{"verdict": verdict, "checks": errors}}))
print(f"fake postrun: exit {{step['exit']}}")
sys.exit(step["exit"])
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A folder for PATH with a fake `postrun` and a `sleep` that only records its argument."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "postrun").write_text(FAKE_POSTRUN)
    (bin_dir / "sleep").write_text(f'#!/bin/sh\necho "$1" >>"{tmp_path}/sleeps"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def fake_env(tmp_path: Path, fake_bin: Path, plan: list[dict[str, Any]]) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "FAKE_PLAN": json.dumps(plan),
        "FAKE_LOG": str(tmp_path / "calls"),
    }


def calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "calls"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_hook(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(HOOK), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def attempt_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("post-batch-hook:")]


# --- GitHub Actions composite action ------------------------------------------------------


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return yaml.safe_load((CI / "github" / "action.yml").read_text())


def step(action: dict[str, Any], uses: str = "", name: str = "") -> dict[str, Any]:
    """The one step that uses `uses` (any version) or is called `name`."""
    found = [
        s
        for s in action["runs"]["steps"]
        if (uses and s.get("uses", "").split("@")[0] == uses) or (name and s.get("name") == name)
    ]
    assert len(found) == 1, (uses, name, found)
    return found[0]


def test_action_inputs_and_outputs(action: dict[str, Any]) -> None:
    inputs = action["inputs"]
    assert inputs["suite"]["required"] is True
    assert {"suite", "params", "fail-on", "python-version", "postrun-version", "out"} <= set(inputs)
    assert all(inputs[name].get("required") is False for name in set(inputs) - {"suite"})
    assert (inputs["fail-on"]["default"], inputs["out"]["default"]) == ("error", "postrun-report")
    assert {name: o["value"] for name, o in action["outputs"].items()} == {
        "verdict": "${{ steps.check.outputs.verdict }}",
        "exit-code": "${{ steps.check.outputs.exit-code }}",
        "report-dir": "${{ steps.check.outputs.report-dir }}",
    }


def test_action_steps_in_order(action: dict[str, Any]) -> None:
    steps = action["runs"]["steps"]
    assert action["runs"]["using"] == "composite"
    order = [s.get("uses", "").split("@")[0] or s.get("id") or s["name"] for s in steps]
    assert order == [
        "actions/setup-python",
        "Install postrun",
        "check",
        "actions/upload-artifact",
        "mikepenz/action-junit-report",
        "Gate on the verdict",
    ]
    assert step(action, uses="actions/setup-python")["with"] == {
        "python-version": "${{ inputs.python-version }}"
    }
    upload = step(action, uses="actions/upload-artifact")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ inputs.out }}"
    junit = step(action, uses="mikepenz/action-junit-report")
    assert junit["uses"] == "mikepenz/action-junit-report@v4"
    assert junit["if"].startswith("always()")
    assert junit["with"]["report_paths"] == "${{ inputs.out }}/junit.xml"
    gate = steps[-1]
    assert "if" not in gate
    assert gate["env"]["CODE"] == "${{ steps.check.outputs.exit-code }}"


def test_action_scripts_take_inputs_from_env_only(action: dict[str, Any]) -> None:
    """No ${{ }} inside a script (an input could inject shell); every script names its shell."""
    scripts = [s for s in action["runs"]["steps"] if "run" in s]
    assert len(scripts) == 3
    for s in scripts:
        assert s["shell"] == "bash"
        assert "${{" not in s["run"], s["name"]


def test_action_leaves_the_step_summary_to_postrun(action: dict[str, Any]) -> None:
    """postrun appends summary.md to $GITHUB_STEP_SUMMARY itself: no step copies it again."""
    scripts = [s["run"] for s in action["runs"]["steps"] if "run" in s]
    assert [s for s in scripts if "summary.md" in s] == []
    check = step(action, name="Run postrun check")["run"]
    assert check.count("GITHUB_STEP_SUMMARY") == 1  # only the note when nothing ran (exit 2)


@pytest.mark.parametrize(("code", "verdict"), [(0, "PASS"), (1, "FAIL"), (3, "ERROR")])
def test_action_check_step_captures_the_code_without_failing(
    action: dict[str, Any], tmp_path: Path, fake_bin: Path, code: int, verdict: str
) -> None:
    env = fake_env(tmp_path, fake_bin, [{"exit": code}])
    env.update(
        SUITE="checks/portfolio_nightly.yml",
        PARAMS="run_date=2025-11-06\nregion=eu  desk=rates",
        FAIL_ON="warn",
        OUT=str(tmp_path / "report"),
        ARGS="--max-time 10m",
        GITHUB_OUTPUT=str(tmp_path / "output"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary"),
    )
    script = step(action, name="Run postrun check")["run"]
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == [
        [
            "check", "checks/portfolio_nightly.yml", "--out", str(tmp_path / "report"),
            "--fail-on", "warn", "--param", "run_date=2025-11-06", "--param", "region=eu",
            "--param", "desk=rates", "--max-time", "10m",
        ]
    ]  # fmt: skip
    outputs = (tmp_path / "output").read_text().splitlines()
    assert outputs == [f"exit-code={code}", f"verdict={verdict}", f"report-dir={tmp_path}/report"]
    assert not (tmp_path / "summary").exists()


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_action_gate_step_exits_with_postrun_code(action: dict[str, Any], code: int) -> None:
    script = step(action, name="Gate on the verdict")["run"]
    env = {**os.environ, "CODE": str(code), "VERDICT": "FAIL"}
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == code
    assert result.stdout == f"postrun verdict: FAIL (exit {code})\n"


# --- GitLab CI template -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gitlab() -> dict[str, Any]:
    return yaml.safe_load((CI / "gitlab" / "postrun.gitlab-ci.yml").read_text())


def test_gitlab_hidden_job_to_extend(gitlab: dict[str, Any]) -> None:
    assert list(gitlab) == [".postrun-gate"]
    job = gitlab[".postrun-gate"]
    assert {"SUITE", "PARAMS", "FAIL_ON"} <= set(job["variables"])
    assert job["variables"]["FAIL_ON"] == "error"
    assert job["artifacts"] == {
        "when": "always",
        "expose_as": "postrun report",
        "paths": ["postrun-report/"],
        "reports": {"junit": "postrun-report/junit.xml"},
        "expire_in": "30 days",
    }


@pytest.mark.parametrize("code", [0, 1, 3])
def test_gitlab_script_runs_the_suite_and_keeps_its_code(
    gitlab: dict[str, Any], tmp_path: Path, fake_bin: Path, code: int
) -> None:
    install, *script = gitlab[".postrun-gate"]["script"]
    assert install.startswith("python -m pip install")
    env = fake_env(tmp_path, fake_bin, [{"exit": code}])
    env.update(SUITE="checks/etl_results.yml", PARAMS="batch_id=b-1\nrun=7", FAIL_ON="error")
    env.update(POSTRUN_ARGS="--jobs 2")
    result = subprocess.run(
        ["sh", "-e", "-c", "\n".join(script)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == code, result.stderr
    assert calls(tmp_path) == [
        [
            "check", "checks/etl_results.yml", "--out", "postrun-report", "--fail-on", "error",
            "--param", "batch_id=b-1", "--param", "run=7", "--jobs", "2",
        ]
    ]  # fmt: skip
    assert (tmp_path / "postrun-report" / "verdict.json").is_file()


def test_gitlab_script_refuses_a_missing_suite(
    gitlab: dict[str, Any], tmp_path: Path, fake_bin: Path
) -> None:
    _, *script = gitlab[".postrun-gate"]["script"]
    env = {**fake_env(tmp_path, fake_bin, [{"exit": 0}]), "SUITE": ""}
    result = subprocess.run(
        ["sh", "-e", "-c", "\n".join(script)], env=env, capture_output=True, text=True
    )
    assert (result.returncode, calls(tmp_path)) == (2, [])
    assert "set SUITE" in result.stderr


# --- the post-batch hook, end to end on demo batches -------------------------------------


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoBatch]:
    root = tmp_path_factory.mktemp("demos")
    return {fault: build_demo(root / fault, (fault,)) for fault in (CLEAN, "null-pnl")}


def real_postrun_env() -> dict[str, str]:
    return {**os.environ, "POSTRUN": f"{shlex.quote(sys.executable)} -m runner"}


@pytest.mark.parametrize(
    ("fault", "code", "verdict"), [(CLEAN, 0, "PASS"), ("null-pnl", 1, "FAIL")]
)
def test_hook_gates_a_demo_batch(
    demos: dict[str, DemoBatch], tmp_path: Path, fault: str, code: int, verdict: str
) -> None:
    batch = demos[fault]
    params = [arg for k, v in batch.params.items() for arg in ("--param", f"{k}={v}")]
    out = tmp_path / "report"
    args = [str(DEMO_SUITE), *params, "--backoff", "0", "--out", str(out), "--", "-q"]
    result = run_hook(args, real_postrun_env(), tmp_path)
    assert result.returncode == code, result.stderr
    assert attempt_lines(result) == [f"post-batch-hook: attempt 1/3: exit {code} ({verdict})"]
    assert json.loads((out / "verdict.json").read_text())["verdict"] == verdict
    assert f"{verdict}: suite 'demo'" in result.stdout


# --- the post-batch hook: retries, against a fake postrun --------------------------------


def retryable_error(*flags: bool) -> dict[str, Any]:
    return {"exit": 3, "errors": list(flags)}


@pytest.mark.parametrize(
    ("plan", "code", "lines"),
    [
        (
            [retryable_error(True), retryable_error(True, True), {"exit": 0}],
            0,
            [
                "attempt 1/3: exit 3 (ERROR), 1 retryable error(s): retrying in 0s",
                "attempt 2/3: exit 3 (ERROR), 2 retryable error(s): retrying in 0s",
                "attempt 3/3: exit 0 (PASS)",
            ],
        ),
        (
            [retryable_error(True, False), {"exit": 0}],
            3,
            ["attempt 1/3: exit 3 (ERROR), 1 of 2 error(s) not retryable"],
        ),
        (
            [retryable_error(False), {"exit": 0}],
            3,
            ["attempt 1/3: exit 3 (ERROR), 1 of 1 error(s) not retryable"],
        ),
        ([{"exit": 1}, {"exit": 0}], 1, ["attempt 1/3: exit 1 (FAIL)"]),
        ([{"exit": 2, "write": False}, {"exit": 0}], 2, ["attempt 1/3: exit 2 (none)"]),
        ([{"exit": 3, "write": False}, {"exit": 0}], 3, ["attempt 1/3: exit 3 (none)"]),
        (
            [retryable_error(True)],
            3,
            [
                "attempt 1/3: exit 3 (ERROR), 1 retryable error(s): retrying in 0s",
                "attempt 2/3: exit 3 (ERROR), 1 retryable error(s): retrying in 0s",
                "attempt 3/3: exit 3 (ERROR), retries used up",
            ],
        ),
        (
            [retryable_error(True), {"exit": 1}],
            1,
            [
                "attempt 1/3: exit 3 (ERROR), 1 retryable error(s): retrying in 0s",
                "attempt 2/3: exit 1 (FAIL)",
            ],
        ),
    ],
    ids=[
        "retryable-twice-then-pass",
        "one-error-not-retryable",
        "not-retryable",
        "fail-never-retried",
        "usage-never-retried",
        "crash-without-verdict",
        "retries-used-up",
        "retry-then-fail",
    ],
)
def test_hook_retries_only_retryable_errors(
    tmp_path: Path, fake_bin: Path, plan: list[dict[str, Any]], code: int, lines: list[str]
) -> None:
    env = fake_env(tmp_path, fake_bin, plan)
    result = run_hook(["suite.yml", "--backoff", "0"], env, tmp_path)
    assert result.returncode == code, result.stderr
    assert attempt_lines(result) == [f"post-batch-hook: {line}" for line in lines]
    assert len(calls(tmp_path)) == len(lines)


def test_hook_backs_off_exponentially(tmp_path: Path, fake_bin: Path) -> None:
    env = fake_env(tmp_path, fake_bin, [retryable_error(True)])
    result = run_hook(["suite.yml", "--retries", "3", "--backoff", "5"], env, tmp_path)
    assert result.returncode == 3
    assert (tmp_path / "sleeps").read_text().split() == ["5", "10", "20"]
    assert len(calls(tmp_path)) == 4


def test_hook_does_not_read_an_earlier_attempts_verdict(tmp_path: Path, fake_bin: Path) -> None:
    """A verdict.json left in --out by an earlier run is not taken for a crashed attempt's."""
    stale = tmp_path / "postrun-report"
    stale.mkdir()
    (stale / "verdict.json").write_text(
        json.dumps(
            {"verdict": "ERROR", "checks": [{"status": "ERROR", "error": {"retryable": True}}]}
        )
    )
    env = fake_env(tmp_path, fake_bin, [{"exit": 3, "write": False}, {"exit": 0}])
    result = run_hook(["suite.yml", "--backoff", "0"], env, tmp_path)
    assert result.returncode == 3
    assert attempt_lines(result) == ["post-batch-hook: attempt 1/3: exit 3 (none)"]


def test_hook_passes_params_notify_and_extra_args(tmp_path: Path, fake_bin: Path) -> None:
    env = fake_env(tmp_path, fake_bin, [{"exit": 0}])
    args = [
        "checks/file_ingestion.yml", "--param", "run_date=2025-11-06", "--param=max_retries=5",
        "--notify", "https://hooks.example.com/T0/B0", "--out", "out dir",
        "--", "--notify-on", "always", "--only", "run status follows its files",
    ]  # fmt: skip
    result = run_hook(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == [
        [
            "check", "checks/file_ingestion.yml", "--out", "out dir",
            "--param", "run_date=2025-11-06", "--param", "max_retries=5",
            "--notify", "https://hooks.example.com/T0/B0",
            "--notify-on", "always", "--only", "run status follows its files",
        ]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "post-batch-hook.sh SUITE"),
        (["--param", "a=b"], "the first argument is the suite file"),
        (["s.yml", "--jobs", "2"], "unknown option '--jobs' (postrun's own options go after --)"),
        (["s.yml", "--retries", "two"], "--retries takes a whole number"),
        (["s.yml", "--backoff", "-1"], "--backoff takes whole seconds"),
        (["s.yml", "--notify"], "--notify needs a URL"),
    ],
)
def test_hook_usage_errors(tmp_path: Path, fake_bin: Path, args: list[str], message: str) -> None:
    env = fake_env(tmp_path, fake_bin, [{"exit": 0}])
    result = run_hook(args, env, tmp_path)
    assert (result.returncode, calls(tmp_path)) == (2, [])
    assert message in result.stderr


# --- the Airflow gate, without Airflow -----------------------------------------------------


@pytest.fixture(scope="module")
def airflow_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("postrun_dag", CI / "airflow" / "postrun_dag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_airflow_dag_is_defined_only_with_airflow(airflow_gate: ModuleType) -> None:
    assert importlib.util.find_spec("airflow") is None  # not installed in the tests
    assert airflow_gate.dag is None
    assert issubclass(airflow_gate.AirflowFailException, airflow_gate.AirflowException)
    assert airflow_gate.SUITE == ROOT / "checks" / "portfolio_nightly.yml"


def gate(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Path, **params: str
) -> dict[str, Any]:
    monkeypatch.setenv("PORTFOLIO_DB_URL", f"duckdb:///{db}")
    result: dict[str, Any] = module.run_gate(module.SUITE, params, reports=tmp_path / "reports")
    return result


def test_airflow_gate_passes_a_clean_batch(
    airflow_gate: ModuleType,
    demos: dict[str, DemoBatch],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="postrun.airflow")
    headline = gate(
        airflow_gate, monkeypatch, tmp_path, demos[CLEAN].database, run_date="2025-11-06"
    )
    assert (headline["verdict"], headline["exit_code"]) == ("PASS", 0)
    report = Path(headline["report_dir"])
    assert report.parent == tmp_path / "reports" / "portfolio_nightly"
    assert sorted(p.name for p in report.iterdir()) == [
        "junit.xml",
        "summary.md",
        "verdict.html",
        "verdict.json",
    ]
    assert "postrun PASS: portfolio\\_nightly" in caplog.text


def test_airflow_gate_fails_without_retry_on_fail(
    airflow_gate: ModuleType,
    demos: dict[str, DemoBatch],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db = demos["null-pnl"].database
    with pytest.raises(airflow_gate.AirflowFailException) as raised:
        gate(airflow_gate, monkeypatch, tmp_path, db, run_date="2025-11-06")
    assert "suite 'portfolio_nightly' FAIL: run-date snapshots have equity and P&L (FAIL)" in str(
        raised.value
    )
    (verdict,) = (tmp_path / "reports" / "portfolio_nightly").glob("*/verdict.json")
    assert json.loads(verdict.read_text())["verdict"] == "FAIL"


@pytest.mark.parametrize("fail_on_warn", [False, True])
def test_airflow_gate_on_a_warning(
    airflow_gate: ModuleType,
    demos: dict[str, DemoBatch],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fail_on_warn: bool,
) -> None:
    db = tmp_path / "warn.duckdb"
    shutil.copy(demos[CLEAN].database, db)
    with duckdb.connect(str(db)) as con:
        con.execute("delete from stress_test_results")
    monkeypatch.setenv("PORTFOLIO_DB_URL", f"duckdb:///{db}")
    args = (airflow_gate.SUITE, {"run_date": "2025-11-06"})
    options = {"reports": tmp_path / "reports", "fail_on_warn": fail_on_warn}
    if not fail_on_warn:
        assert airflow_gate.run_gate(*args, **options)["verdict"] == "WARN"
        return
    with pytest.raises(airflow_gate.AirflowFailException) as raised:
        airflow_gate.run_gate(*args, **options)
    assert "WARN: stress tests calculated (WARN)" in str(raised.value)


def test_airflow_gate_raises_retryable_on_error(
    airflow_gate: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(airflow_gate.AirflowException) as raised:
        gate(
            airflow_gate, monkeypatch, tmp_path, tmp_path / "no-such.duckdb", run_date="2025-11-06"
        )
    assert not isinstance(raised.value, airflow_gate.AirflowFailException)
    assert "suite 'portfolio_nightly' ERROR" in str(raised.value)


def test_airflow_gate_fails_without_retry_on_a_suite_mistake(
    airflow_gate: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(airflow_gate.AirflowFailException) as raised:
        gate(airflow_gate, monkeypatch, tmp_path, tmp_path / "x.duckdb")
    assert str(raised.value) == (
        "postrun: param 'run_date' is required: "
        "pass --param run_date=… or set POSTRUN_PARAM_RUN_DATE"
    )
