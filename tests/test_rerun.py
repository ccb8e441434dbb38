"""--rerun: only the checks that failed or errored in an earlier verdict of the same suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import RunOptions, load_suite, run_suite
from runner.errors import UsageError
from runner.render.json import render_json
from runner.rerun import read_rerun
from runner.results import Status
from tests.conftest import Database, check_verdict

SUITE = """\
suite: rerun
sources:
  w: {{url: "{url}"}}
checks:
  - {{type: row_count, name: passes, table: t, min: 1}}
  - {{type: row_count, name: fails, table: t, min: 5}}
  - {{type: sql, name: errors, query: select * from missing_table}}
  - {{type: row_count, name: warns, table: t, max: 0, severity: warn}}
"""


@pytest.fixture
def earlier(duck: Database, tmp_path: Path) -> tuple[Path, Path]:
    duck.run("create table t (a int); insert into t values (1);")
    suite = tmp_path / "suite.yml"
    suite.write_text(SUITE.format(url=duck.url))
    verdict = run_suite(load_suite(suite, env={}))
    assert [c.status for c in verdict.checks] == [
        Status.PASS,
        Status.FAIL,
        Status.ERROR,
        Status.WARN,
    ]
    path = tmp_path / "earlier.json"
    path.write_bytes(render_json(verdict))
    return suite, path


def test_rerun_runs_only_failed_and_errored_checks_and_links_the_earlier_run(
    earlier: tuple[Path, Path], duck: Database
) -> None:
    suite_path, verdict_path = earlier
    duck.run("insert into t values (2), (3), (4), (5); create table missing_table (x int);")
    suite = load_suite(suite_path, env={})
    rerun = read_rerun(verdict_path, suite)
    verdict = run_suite(suite, RunOptions(rerun=rerun))
    data = check_verdict(verdict)
    assert [(c.name, c.status) for c in verdict.checks] == [
        ("passes", Status.SKIP),
        ("fails", Status.PASS),
        ("errors", Status.PASS),
        ("warns", Status.SKIP),
    ]
    earlier_id = data["rerun_of"]["run_id"]
    assert verdict.checks[0].message == f"not run (--rerun: it passed in run {earlier_id})"
    assert data["rerun_of"] == {
        "run_id": earlier_id,
        "path": str(verdict_path),
        "checks": ["fails", "errors"],
    }
    assert (verdict.verdict, verdict.exit_code) == (Status.PASS, 0)


def test_rerun_still_failing_fails(earlier: tuple[Path, Path]) -> None:
    suite_path, verdict_path = earlier
    suite = load_suite(suite_path, env={})
    verdict = run_suite(suite, RunOptions(rerun=read_rerun(verdict_path, suite)))
    assert [c.status for c in verdict.checks] == [
        Status.SKIP,
        Status.FAIL,
        Status.ERROR,
        Status.SKIP,
    ]
    assert verdict.exit_code == 3


def test_rerun_of_a_passing_run_is_a_usage_error(duck: Database, tmp_path: Path) -> None:
    """Nothing failed, so nothing would be judged: refused rather than a PASS that saw nothing."""
    duck.run("create table t (a int); insert into t values (1);")
    suite_path = tmp_path / "suite.yml"
    suite_path.write_text(
        f'suite: rerun\nsources:\n  w: {{url: "{duck.url}"}}\n'
        "checks:\n  - {type: row_count, name: passes, table: t, min: 1}\n"
    )
    suite = load_suite(suite_path, env={})
    earlier = tmp_path / "earlier.json"
    earlier.write_bytes(render_json(run_suite(suite)))
    rerun = read_rerun(earlier, suite)
    with pytest.raises(UsageError) as refused:
        run_suite(suite, RunOptions(rerun=rerun))
    assert str(refused.value) == (
        f"--rerun: run {rerun.of.run_id} had no check that FAILed or ERRORed: there is nothing "
        "to run again"
    )


def test_rerun_with_other_params_is_a_usage_error(duck: Database, tmp_path: Path) -> None:
    """A verdict for one run date says nothing of another: the checks that passed then must not
    stand for this run."""
    duck.run("create table t (d date); insert into t values ('2026-12-02');")
    suite_path = tmp_path / "suite.yml"
    suite_path.write_text(
        f"suite: rerun\nparams:\n  run_date: {{type: date}}\n  region: {{type: string}}\n"
        f'sources:\n  w: {{url: "{duck.url}"}}\n'
        "checks:\n  - {type: row_count, name: today, table: t, where: 'd = :run_date', min: 1}\n"
        "  - {type: row_count, name: broken, table: t, min: 5}\n"
    )
    earlier = tmp_path / "earlier.json"
    then = load_suite(suite_path, {"run_date": "2026-12-02", "region": "eu"}, env={})
    earlier.write_bytes(render_json(run_suite(then)))
    same = load_suite(suite_path, {"run_date": "2026-12-02", "region": "eu"}, env={})
    assert read_rerun(earlier, same).checks == ["broken"]
    now = load_suite(suite_path, {"run_date": "2026-12-03", "region": "eu"}, env={})
    with pytest.raises(UsageError) as refused:
        read_rerun(earlier, now)
    run_id = json.loads(earlier.read_text())["run_id"]
    assert str(refused.value) == (
        f"--rerun: run {run_id} was judged with other params (run_date='2026-12-02' then, "
        "'2026-12-03' now): rerun with the same params, or run the whole suite"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--rerun: cannot read {path}: No such file or directory"),
        (b"{not json", "--rerun: {path} is not a postrun verdict.json (Invalid JSON: "),
        (b'{"checks": []}', "--rerun: {path} is not a postrun verdict.json (Field required)"),
    ],
)
def test_rerun_unreadable_verdict_is_a_usage_error(
    earlier: tuple[Path, Path], tmp_path: Path, content: bytes | None, message: str
) -> None:
    suite = load_suite(earlier[0], env={})
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        read_rerun(path, suite)
    assert str(caught.value).startswith(message.format(path=path))


def test_rerun_of_another_suite_or_a_vanished_check_is_refused(
    earlier: tuple[Path, Path], tmp_path: Path
) -> None:
    suite_path, verdict_path = earlier
    other = tmp_path / "other.yml"
    other.write_text(suite_path.read_text().replace("suite: rerun", "suite: other"))
    with pytest.raises(UsageError, match="is a verdict of suite 'rerun', not 'other'"):
        read_rerun(verdict_path, load_suite(other, env={}))
    renamed = tmp_path / "renamed.yml"
    renamed.write_text(suite_path.read_text().replace("name: fails", "name: renamed"))
    with pytest.raises(UsageError) as caught:
        read_rerun(verdict_path, load_suite(renamed, env={}))
    assert "check 'fails' was FAIL in run " in str(caught.value)
    assert str(caught.value).endswith("is no longer in the suite; run the whole suite instead")
