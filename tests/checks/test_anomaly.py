"""anomaly: a query's value, or another check's observation, against the band its own past runs
set (median / MAD, or ratios of the median); learning below min_history; config mistakes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from runner import RunOptions, load_suite, run_suite
from runner.errors import SuiteError
from runner.results import CheckResult, Status

PAST = [100.0, 102.0, 98.0, 101.0, 99.0]  # median 100, MAD 1: the band is 100 ± 3 x 1.4826


def _suite(tmp_path: Path, check: str) -> Path:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as duck:
        duck.execute("create table t as select 1 as x")
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            """\
            suite: anomalies
            params:
              v: {type: float}
            sources:
              w: {url: "duckdb:///w.duckdb"}
            checks:
              - {type: row_count, name: counted, table: t, min: 0}
            """
        )
        + textwrap.indent(textwrap.dedent(check), "  ")
    )
    return path


def _judge(tmp_path: Path, check: str, now: float, past: list[float] = PAST) -> CheckResult:
    path = _suite(tmp_path, check)
    options = RunOptions(history=f"sqlite:///{tmp_path / 'h.sqlite'}")
    for value in past:
        run_suite(load_suite(path, {"v": str(value)}), options)
    verdict = run_suite(load_suite(path, {"v": str(now)}), options)
    return verdict.checks[-1]


QUERY = """\
- type: anomaly
  name: value
  metric: {query: "select cast(:v as double)"}
"""


@pytest.mark.parametrize(
    ("extra", "now", "status", "message"),
    [
        ("", 103.0, Status.PASS, "the query's value is 103, expected 95.6 to 104"),
        (
            "",
            105.0,
            Status.FAIL,
            "the query's value is out of its usual band: 105, expected 95.6 to 104",
        ),
        ("", 0.0, Status.FAIL, "; 67.4 deviations below the median"),
        ("deviations: 6\n", 105.0, Status.PASS, "expected 91.1 to 109"),
        ("min_ratio: 0.5\nmax_ratio: 2\n", 49.0, Status.FAIL, "expected 50 to 200 (median 100"),
        ("min_ratio: 0.5\nmax_ratio: 2\n", 199.0, Status.PASS, "expected 50 to 200"),
        ("max_ratio: 2\n", 201.0, Status.FAIL, "at most 200 (median 100 of 5 runs: "),
        ("severity: warn\n", 105.0, Status.WARN, "out of its usual band"),
    ],
)
def test_anomaly_judges_against_its_band(
    tmp_path: Path, extra: str, now: float, status: Status, message: str
) -> None:
    result = _judge(tmp_path, QUERY + textwrap.indent(extra, "  "), now)
    assert (result.status, result.notes) == (status, [])
    assert message in result.message
    assert result.expected["runs"] == result.message.split("runs: ")[1].split(")")[0].split(", ")
    assert len(result.expected["runs"]) == 5


def test_anomaly_mad_of_equal_values_allows_one_percent(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _judge(tmp_path / "a", QUERY, 102.9, [100.0] * 5).status is Status.PASS
    assert _judge(tmp_path / "b", QUERY, 103.1, [100.0] * 5).status is Status.FAIL


def test_anomaly_learns_below_min_history(tmp_path: Path) -> None:
    result = _judge(tmp_path, QUERY, 0.0, PAST[:3])
    assert (result.status, result.notes) == (Status.PASS, ["learning: 3 of 5 runs"])
    assert (
        result.message == "the query's value is 0; learning: 3 of 5 runs of history, not judged yet"
    )


def test_anomaly_reads_another_checks_observation(tmp_path: Path) -> None:
    check = """\
    - type: anomaly
      name: rows usual
      metric: {check: counted, value: count}
      min_history: 2
      window: 3
    """
    result = _judge(tmp_path, check, 1.0, [1.0, 1.0])
    assert result.status is Status.PASS
    assert result.message.startswith("counted count is 1, expected 0.97 to 1.03 (median 1 of 2 ")


def test_anomaly_not_a_number_is_a_config_error(tmp_path: Path) -> None:
    check = """\
    - type: anomaly
      name: texty
      metric: {query: "select 'many'"}
    """
    result = _judge(tmp_path, check, 1.0, [])
    assert result.status is Status.ERROR and result.error is not None
    assert result.error.category.value == "config"
    assert (
        result.message == "the query's value is 'many', not a number to judge against its history"
    )


def test_anomaly_checks_reading_each_other_are_refused(tmp_path: Path) -> None:
    check = """\
    - {type: anomaly, name: a, metric: {check: b, value: value}}
    - {type: anomaly, name: b, metric: {check: a, value: value}}
    """
    with pytest.raises(SuiteError) as caught:
        load_suite(_suite(tmp_path, check))
    assert str(caught.value).splitlines() == [
        f"{tmp_path / 'suite.yml'}:8: check 'a': reads check 'b', which reads it back: a cycle",
        f"{tmp_path / 'suite.yml'}:9: check 'b': reads check 'a', which reads it back: a cycle",
    ]


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (
            "metric: {query: 'select 1', check: counted, value: count}",
            "give exactly one of 'query' or 'check'",
        ),
        (
            "metric: {check: counted}",
            "'check' takes 'value' (the observation to read), not 'source'",
        ),
        ("metric: {query: 'select 1', value: count}", "'value' applies to 'check'"),
        (
            "metric: {query: 'select 1'}\n  min_ratio: 2\n  max_ratio: 1",
            "'min_ratio' must not exceed 'max_ratio'",
        ),
        ("metric: {query: 'select 1'}\n  window: 3", "'min_history' must not exceed 'window'"),
        (
            "metric: {query: 'delete from t'}",
            "check 'a': metric.query must be a single SELECT; found DELETE",
        ),
    ],
)
def test_anomaly_config_mistakes(tmp_path: Path, check: str, reason: str) -> None:
    path = _suite(tmp_path, f"- type: anomaly\n  name: a\n  {check}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert reason in str(caught.value)
