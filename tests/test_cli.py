"""End to end: the `postrun` command in a subprocess, exit codes, printed table, written reports."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest

from tests.conftest import VERDICT_SCHEMA, Database


def postrun(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("POSTRUN_PARAM_") and k != "GITHUB_STEP_SUMMARY"
    }
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


def report_path(stdout: str, cwd: Path) -> Path:
    """The file named by the last line, ``report: …`` (verdict.html when HTML was written)."""
    last = stdout.splitlines()[-1]
    assert last.startswith("report: "), stdout
    return cwd / last.removeprefix("report: ")


def load_verdict(stdout: str, cwd: Path) -> dict[str, Any]:
    report = report_path(stdout, cwd)
    data = json.loads(report.with_name("verdict.json").read_text())
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
    assert verdict["suite"]["path"] == "checks/nightly.yml"
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
            ("-p", "run_date=2025-11-06", "--only", "pnl filled", "--skip", "pnl filled"),
            "postrun: the selection runs no check (every check is left out by --only / --skip / "
            "--rerun): a run that judges nothing is refused",
        ),
        (
            ("-p", "run_date=2025-11-06", "--format", "pdf"),
            "postrun: --format takes a comma-separated subset of json, html, junit, md; got 'pdf'",
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
    remote, local = verdict["checks"]
    assert (remote["status"], remote["error"]["category"], remote["error"]["retryable"]) == (
        "ERROR",
        "connectivity",
        True,
    )
    assert local["status"] == "PASS"
    assert "(postgresql://***@127.0.0.1:9/batch)" in remote["message"]  # the whole userinfo
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


def test_cli_validate_reports_missing_database_files_and_result_folders(tmp_path: Path) -> None:
    """A misspelt database file or results folder is a mistake in the suite or its params:
    `validate` says so with the line; a run reports it as ERROR / config, never retried."""
    (tmp_path / "results").mkdir()
    write(
        tmp_path / "checks" / "s.yml",
        """\
        suite: paths
        params:
          day: {type: string, default: "2025-11-06"}
        sources:
          warehouse: {url: "duckdb:///../data/warehuose.duckdb"}
          ledger: {url: "sqlite:///../data/ledger.db"}
          results: {files: "../results/{day}/run_*.json"}
        checks:
          - {type: row_count, table: t, min: 1, source: warehouse}
          - {type: json_integrity, source: results}
          - {type: json_integrity, name: old files, files: "../archive/*/run_*.json"}
        """,
    )
    done = postrun("validate", "checks/s.yml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"postrun: checks/s.yml:5: source 'warehouse': database file {tmp_path}/data/"
        "warehuose.duckdb not found\n"
        f"checks/s.yml:6: source 'ledger': database file {tmp_path}/data/ledger.db not found\n"
        f"checks/s.yml:7: source 'results': folder {tmp_path}/results/2025-11-06 not found\n"
        f"checks/s.yml:11: check 'old files': folder {tmp_path}/archive not found\n"
    )
    (tmp_path / "data").mkdir()
    sqlite3.connect(tmp_path / "data" / "ledger.db").close()
    (tmp_path / "results" / "2025-11-06").mkdir()
    (tmp_path / "archive").mkdir()
    duckdb.connect(str(tmp_path / "data" / "warehuose.duckdb")).close()
    done = postrun("validate", "checks/s.yml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "checks/s.yml: valid suite 'paths', 3 checks\n")


def test_cli_help_is_fast_to_import() -> None:
    code = "import sys, runner.cli; print(sorted(m for m in ('sqlalchemy', 'duckdb', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- reports, run index, step summary, `postrun report` ---------------------------------------

REPORT_FILES = ["junit.xml", "summary.md", "verdict.html", "verdict.json"]


@pytest.fixture
def warehouse(duck: Database, tmp_path: Path) -> dict[str, str]:
    """The nightly suite over DuckDB (fails: one NULL pnl), as the env for `postrun`."""
    duck.run(
        """
        create table portfolios (portfolio_id varchar(10), is_active boolean);
        insert into portfolios values ('PF-1', true), ('PF-2', true);
        create table portfolio_snapshots (portfolio_id varchar(10), snapshot_date date, daily_pnl float);
        insert into portfolio_snapshots values ('PF-1', '2025-11-06', 1.5), ('PF-2', '2025-11-06', null);
        """
    )
    write(tmp_path / "s.yml", SUITE)
    return {"WAREHOUSE_URL": duck.url, "POSTRUN_PARAM_RUN_DATE": "2025-11-06"}


def test_cli_check_writes_every_report_and_the_run_index(
    warehouse: dict[str, str], tmp_path: Path
) -> None:
    first = postrun("check", "s.yml", "-q", cwd=tmp_path, env=warehouse)
    second = postrun("check", "s.yml", "-q", cwd=tmp_path, env=warehouse)
    runs = []
    for result in (first, second):
        assert result.returncode == 1, result.stderr
        report = report_path(result.stdout, tmp_path)
        assert report.relative_to(tmp_path).parts[:2] == ("reports", "nightly")
        assert report.name == "verdict.html"
        assert sorted(p.name for p in report.parent.iterdir()) == REPORT_FILES
        runs.append(report.parent.name)
    index = (tmp_path / "reports" / "index.html").read_text()
    for run in runs:
        assert f'href="nightly/{run}/verdict.html"' in index
    # the run index, the suite's runs and the history store; no lock file left behind
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "history.sqlite",
        "index.html",
        "nightly",
    ]


def test_cli_check_out_joins_an_index_only_where_one_exists(
    warehouse: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = postrun("check", "s.yml", "--out", "out/run", cwd=tmp_path, env=warehouse)
    assert report_path(elsewhere.stdout, tmp_path) == tmp_path / "out" / "run" / "verdict.html"
    assert not (tmp_path / "index.html").exists()
    assert not (tmp_path / ".index.lock").exists()

    postrun("check", "s.yml", "-q", cwd=tmp_path, env=warehouse)  # creates reports/index.html
    joined = postrun(
        "check", "s.yml", "--out", "reports/nightly/manual", "--format", "md,json",
        cwd=tmp_path, env=warehouse,
    )  # fmt: skip
    assert joined.returncode == 1, joined.stderr
    assert report_path(joined.stdout, tmp_path) == (
        tmp_path / "reports" / "nightly" / "manual" / "verdict.json"
    )
    assert sorted(p.name for p in (tmp_path / "reports/nightly/manual").iterdir()) == [
        "summary.md",
        "verdict.json",
    ]
    assert 'href="nightly/manual/verdict.json"' in (tmp_path / "reports/index.html").read_text()


def test_cli_check_appends_summary_to_github_step_summary(
    warehouse: dict[str, str], tmp_path: Path
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("previous step\n")
    env = warehouse | {"GITHUB_STEP_SUMMARY": str(summary)}
    written = []
    for _ in range(2):
        result = postrun("check", "s.yml", "-q", cwd=tmp_path, env=env)
        assert result.returncode == 1, result.stderr
        written.append(report_path(result.stdout, tmp_path).with_name("summary.md").read_text())
    assert written[0] != written[1]  # each names its own run id
    assert summary.read_text() == "previous step\n" + "\n" + written[0] + "\n" + written[1]
    assert written[0].startswith("## ❌ postrun FAIL: nightly\n")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of a default `postrun demo` (FAIL), built once for the report tests."""
    root = tmp_path_factory.mktemp("report")
    result = postrun("demo", "--dir", "demo", cwd=root)
    assert result.returncode == 1, result.stderr
    return report_path(result.stdout, root).parent


def test_cli_report_rerenders_stored_verdict(demo_run: Path, tmp_path: Path) -> None:
    verdict = demo_run / "verdict.json"
    result = postrun(
        "report", str(verdict), "--format", "md,html,junit", "--out", "again", cwd=tmp_path
    )
    assert (result.returncode, result.stderr) == (0, "")
    again = tmp_path / "again"
    assert result.stdout.splitlines() == [
        str(Path("again") / name) for name in ("verdict.html", "junit.xml", "summary.md")
    ]
    for name in ("junit.xml", "summary.md", "verdict.html"):
        assert (again / name).read_bytes() == (demo_run / name).read_bytes(), name

    (demo_run / "summary.md").unlink()
    in_place = postrun("report", str(verdict), "--format", "md", cwd=tmp_path)
    assert (in_place.returncode, in_place.stdout) == (0, f"{demo_run / 'summary.md'}\n")
    assert (demo_run / "summary.md").read_bytes() == (again / "summary.md").read_bytes()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read {path}: No such file or directory"),
        (
            '{"schema_version": 1, "tool"',
            "{path}: not a valid verdict.json: document: Invalid JSON",
        ),
        ("[]", "{path}: not a valid verdict.json: document: Input should be an object"),
        (
            '{"schema_version": 1}',
            "{path}: not a valid verdict.json: tool: Field required",
        ),
    ],
)
def test_cli_report_invalid_verdict_exits_2(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "verdict.json"
    if content is not None:
        path.write_text(content)
    result = postrun("report", "verdict.json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("postrun: " + problem.format(path="verdict.json")), (
        result.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == (["verdict.json"] if content else [])


def test_cli_formats_match_the_renderers() -> None:
    from runner.cli import ALL_FORMATS
    from runner.render import FORMATS

    assert ALL_FORMATS.split(",") == list(FORMATS)


def test_cli_exit_runs_exit_handlers_and_keeps_the_code(tmp_path: Path) -> None:
    code = (
        "import atexit, sys, runner.cli\n"
        "atexit.register(lambda: print('exit handler ran', flush=True))\n"
        "sys.argv = ['postrun', 'validate', 'missing.yml']\n"
        "runner.cli.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == "exit handler ran\n"
    assert result.stderr == "postrun: missing.yml: no such suite file\n"


def test_cli_runs_with_stdout_closed_and_says_so_on_stderr(tmp_path: Path) -> None:
    write(
        tmp_path / "s.yml",
        "suite: s\nchecks: [{type: sql, query: select 1}]\n"
        "sources: {d: {url: 'duckdb:///:memory:'}}\n",
    )
    command = f'exec >&-; exec "{sys.executable}" -m runner validate s.yml'
    result = subprocess.run(
        ["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (
        0,
        "postrun: could not print to stdout: it is closed (the exit code is unchanged)\n",
    )


def test_cli_checks_run_with_the_garbage_collector_on(tmp_path: Path) -> None:
    code = (
        "import gc, sys, runner.cli, runner.engine\n"
        "real = runner.engine.run_suite\n"
        "def spy(*a, **k):\n"
        "    print('collector on' if gc.isenabled() else 'collector off', file=sys.stderr)\n"
        "    return real(*a, **k)\n"
        "runner.engine.run_suite = spy\n"
        "sys.argv = ['postrun', 'check', 's.yml', '-q', '--out', 'out', '--format', 'json']\n"
        "runner.cli.main()\n"
    )
    write(
        tmp_path / "s.yml",
        "suite: s\nchecks: [{type: sql, query: select 1 where false}]\n"
        "sources: {d: {url: 'duckdb:///:memory:'}}\n",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "collector on\n"


def test_cli_crash_exits_3_not_0_or_1(tmp_path: Path) -> None:
    code = (
        "import sys, runner.cli, runner.engine\n"
        "def boom(*a, **k): raise RuntimeError('kaboom')\n"
        "runner.engine.run_suite = boom\n"
        "sys.argv = ['postrun', 'check', 's.yml']\n"
        "runner.cli.main()\n"
    )
    write(
        tmp_path / "s.yml",
        "suite: s\nchecks: [{type: sql, query: select 1}]\nsources: {d: {url: 'duckdb:///:memory:'}}\n",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3
    assert "RuntimeError: kaboom" in result.stderr
    assert result.stderr.strip().endswith(
        "postrun: internal error (see the traceback above); nothing was judged"
    )
