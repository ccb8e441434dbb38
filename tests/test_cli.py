"""End to end: the `postrun` command in a subprocess, exit codes, printed table, written reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import VERDICT_SCHEMA, Database


def postrun(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_PARAM_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load_verdict(stdout: str, cwd: Path) -> dict[str, object]:
    line = next(line for line in stdout.splitlines() if line.startswith("report: "))
    data = json.loads((cwd / line.removeprefix("report: ")).read_text())
    jsonschema.validate(data, VERDICT_SCHEMA)
    return data


@pytest.fixture
def snapshots(db: Database) -> Database:
    db.run(
        """
        create table portfolios (portfolio_id varchar(10), is_active boolean);
        insert into portfolios values ('PF-1', true), ('PF-2', true), ('PF-3', false);
        create table portfolio_snapshots (portfolio_id varchar(10), snapshot_date date, daily_pnl float);
        insert into portfolio_snapshots values ('PF-1', '2025-11-06', 1.5), ('PF-2', '2025-11-06', null);
        """
    )
    return db


SUITE = """\
    suite: nightly
    params:
      run_date: {type: date, required: true}
    sources:
      warehouse: {url: "${WAREHOUSE_URL}"}
    checks:
      - type: row_count
        name: one snapshot per active portfolio
        table: portfolio_snapshots
        where: snapshot_date = :run_date
        equals: {table: portfolios, where: is_active}
      - type: not_null
        name: pnl filled
        table: portfolio_snapshots
        columns: [daily_pnl]
        where: snapshot_date = :run_date
        key: [portfolio_id]
    """


def test_cli_check_fails_with_evidence_and_writes_verdict(
    snapshots: Database, tmp_path: Path
) -> None:
    write(tmp_path / "checks" / "nightly.yml", SUITE)
    result = postrun(
        "check",
        "checks/nightly.yml",
        "--param",
        "run_date=2025-11-06",
        "-v",
        cwd=tmp_path,
        env={"WAREHOUSE_URL": snapshots.url},
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "PASS   one snapshot per active portfolio  portfolio_snapshots has 2 rows where portfolios has 2"
    )
    assert (
        lines[1] == "FAIL   pnl filled  portfolio_snapshots has NULLs in 1 of 2 rows (daily_pnl 1)"
    )
    assert lines[2] == '       - {"key": {"portfolio_id": "PF-2"}, "null_columns": ["daily_pnl"]}'
    verdict = load_verdict(result.stdout, tmp_path)
    assert verdict["verdict"] == "FAIL" and verdict["exit_code"] == 1
    assert verdict["params"] == {"run_date": "2025-11-06"}
    assert verdict["suite"]["path"] == "checks/nightly.yml"  # type: ignore[index]
    assert Path(str(result.stdout.splitlines()[-1]).removeprefix("report: ")).parts[:2] == (
        "reports",
        "nightly",
    )


def test_cli_check_passes_with_exit_0_and_out_dir(snapshots: Database, tmp_path: Path) -> None:
    write(tmp_path / "s.yml", SUITE)
    result = postrun(
        "check",
        "s.yml",
        "-p",
        "run_date=2025-11-06",
        "--skip",
        "pnl filled",
        "--out",
        "out",
        cwd=tmp_path,
        env={"WAREHOUSE_URL": snapshots.url},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["counts"] == {"PASS": 1, "WARN": 0, "FAIL": 0, "ERROR": 0, "SKIP": 1}


def test_cli_param_from_environment(snapshots: Database, tmp_path: Path) -> None:
    write(tmp_path / "s.yml", SUITE)
    env = {"WAREHOUSE_URL": snapshots.url, "POSTRUN_PARAM_RUN_DATE": "2025-11-07"}
    result = postrun("check", "s.yml", "-q", cwd=tmp_path, env=env)
    assert result.returncode == 1  # no snapshots for the 7th
    assert load_verdict(result.stdout, tmp_path)["params"] == {"run_date": "2025-11-07"}


def test_cli_typo_in_suite_exits_2_naming_line_and_key(tmp_path: Path) -> None:
    write(tmp_path / "s.yml", SUITE.replace("columns: [daily_pnl]", "colums: [daily_pnl]"))
    result = postrun("check", "s.yml", "-p", "run_date=2025-11-06", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "postrun: s.yml:15: check 'pnl filled': unknown key 'colums' (did you mean 'columns'?)",
    ]
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (),
            "postrun: param 'run_date' is required: pass --param run_date=… or set POSTRUN_PARAM_RUN_DATE",
        ),
        (
            ("-p", "run_date=yesterday"),
            "postrun: param 'run_date' must be a date, got 'yesterday': Invalid isoformat string: 'yesterday'",
        ),
        (
            ("-p", "run_dat=2025-11-06"),
            "postrun: unknown param 'run_dat' (did you mean 'run_date'?); the suite declares: run_date",
        ),
        (("-p", "run_date"), "postrun: --param takes NAME=VALUE, got 'run_date'"),
        (
            ("-p", "run_date=2025-11-06", "--only", "pnl filed"),
            "postrun: no check named 'pnl filed' in the suite (did you mean 'pnl filled'?)",
        ),
        (
            ("-p", "run_date=2025-11-06", "--format", "pdf"),
            "postrun: --format takes a comma-separated subset of json; got 'pdf'",
        ),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    write(tmp_path / "s.yml", SUITE)
    result = postrun(
        "check", "s.yml", *args, cwd=tmp_path, env={"WAREHOUSE_URL": "duckdb:///x.duckdb"}
    )
    assert (result.returncode, result.stderr.strip()) == (2, message)


def test_cli_unreachable_database_is_error_3_and_masks_password(
    tmp_path: Path, duck: Database
) -> None:
    duck.run("create table t (a int); insert into t values (1);")
    write(
        tmp_path / "s.yml",
        f"""\
        suite: two-sources
        sources:
          remote: {{url: "postgresql://gate:S3cr3t-pw@127.0.0.1:9/batch"}}
          local: {{url: "{duck.url}"}}
        checks:
          - {{type: row_count, source: remote, table: t, min: 1}}
          - {{type: row_count, source: local, table: t, min: 1}}
        """,
    )
    result = postrun("check", "s.yml", cwd=tmp_path)
    assert result.returncode == 3
    verdict = load_verdict(result.stdout, tmp_path)
    remote, local = verdict["checks"]  # type: ignore[misc]
    assert (remote["status"], remote["error"]["category"], remote["error"]["retryable"]) == (
        "ERROR",
        "connectivity",
        True,
    )
    assert local["status"] == "PASS"
    assert "gate:***@127.0.0.1:9/batch" in remote["message"]
    written = (
        result.stdout + result.stderr + "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    )
    assert "S3cr3t-pw" not in written


def test_cli_validate_list_and_schema(tmp_path: Path) -> None:
    write(tmp_path / "s.yml", SUITE)
    validated = postrun("validate", "s.yml", cwd=tmp_path, env={"WAREHOUSE_URL": "duckdb:///x"})
    assert (validated.returncode, validated.stdout.strip()) == (
        0,
        "s.yml: valid suite 'nightly', 2 checks (paths needing run_date not checked: no value given)",
    )
    listing = postrun("list", cwd=tmp_path).stdout
    for kind in (
        "json_integrity",
        "not_null",
        "reference",
        "row_count",
        "sql",
        "status_consistency",
    ):
        assert f"\n{kind}\n" in f"\n{listing}"
    schema = json.loads(postrun("schema", cwd=tmp_path).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    suite_data = {"suite": "x", "checks": [{"type": "row_count", "table": "t", "min": 1}]}
    jsonschema.validate(suite_data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"suite": "x", "checks": [{"type": "row_count", "tabel": "t"}]}, schema)
    verdict_schema = json.loads(postrun("schema", "--verdict", cwd=tmp_path).stdout)
    assert verdict_schema == json.loads(json.dumps(VERDICT_SCHEMA))


def test_cli_help_is_fast_to_import() -> None:
    code = "import sys, runner.cli; print(sorted(m for m in ('sqlalchemy', 'duckdb', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
