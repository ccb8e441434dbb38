"""Dagster asset checks from checks/demo.yml: blocking checks on an upstream batch asset gate its
downstream asset, on real demo batches, materialized by Dagster itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite
from runner.demo import build_demo, find_demo_suite

if os.environ.get("CI") == "true":
    import dagster as dg  # CI installs the dagster extra: a missing dagster is a failure there
else:
    dg = pytest.importorskip("dagster")

from runner.integrations.dagster import dagster_names, postrun_asset_checks

SUITE = find_demo_suite()
CHECKS = [c.name or "" for c in load_suite(SUITE, {"run_date": "2025-11-06"}).checks]
NAMES = dagster_names(CHECKS)


@pytest.fixture(scope="module")
def instance() -> Iterator[Any]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def materialize(instance: Any, params: Any, *, selection: Any = None, **kwargs: Any) -> Any:
    """The batch asset, its postrun checks and a downstream report asset, materialized once."""

    @dg.asset(name="portfolio_batch")
    def batch() -> None:
        """Stands for the job that wrote the demo batch."""

    @dg.asset(deps=[batch])
    def daily_report() -> None:
        """Runs only when the batch's blocking checks passed."""

    checks = postrun_asset_checks(SUITE, asset=batch, params=params, **kwargs)
    return dg.materialize(
        [batch, daily_report, *checks], instance=instance, raise_on_error=False, selection=selection
    )


def evaluations(result: Any) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def materialized(result: Any) -> list[str]:
    return [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]


def test_dagster_one_asset_check_per_postrun_check() -> None:
    [checks] = postrun_asset_checks(SUITE, asset="portfolio_batch", params={})
    specs = list(checks.check_specs)
    assert [s.name for s in specs] == [NAMES[n] for n in CHECKS]
    assert NAMES["run-date snapshots have P&L"] == "run_date_snapshots_have_p_l"
    assert NAMES["ETL result files are complete JSON"] == "etl_result_files_are_complete_json"
    assert all(s.blocking and s.asset_key == dg.AssetKey("portfolio_batch") for s in specs)
    stress = next(s for s in specs if s.name == "stress_tests_calculated")
    assert stress.description == "Phase-6 analytics produced stress-test results for the run date."
    assert stress.metadata == {
        "postrun_check": "stress tests calculated",
        "postrun_type": "row_count",
        "postrun_severity": "warn",
    }
    assert checks.node_def.name == "postrun_demo"


def test_dagster_names_are_unique_and_valid() -> None:
    assert dagster_names(["a b", "a-b", "A_B", "!!", "row_count:t"]) == {
        "a b": "a_b",
        "a-b": "a_b_2",
        "A_B": "a_b_3",
        "!!": "check",
        "row_count:t": "row_count_t",
    }


def test_dagster_clean_batch_passes_and_downstream_runs(tmp_path: Path, instance: Any) -> None:
    batch = build_demo(tmp_path / "demo", ("none",))
    result = materialize(instance, batch.params)
    assert result.success
    found = evaluations(result)
    assert list(found) == [NAMES[n] for n in CHECKS]
    assert all(e.passed for e in found.values())
    assert materialized(result) == ["portfolio_batch", "daily_report"]
    meta = found[NAMES["one snapshot per active portfolio"]].metadata
    assert meta["status"] == dg.MetadataValue.text("PASS")
    assert meta["observed"] == dg.MetadataValue.json({"count": 58})
    assert meta["failure_count"] == dg.MetadataValue.int(0)


def test_dagster_faulty_batch_blocks_downstream_with_evidence(
    tmp_path: Path, instance: Any
) -> None:
    batch = build_demo(tmp_path / "demo", ("null-pnl",))
    result = materialize(instance, batch.params, reports_dir=tmp_path / "reports")
    assert not result.success
    assert materialized(result) == ["portfolio_batch"]  # daily_report did not run
    found = evaluations(result)
    failed = {name: e for name, e in found.items() if not e.passed}
    assert list(failed) == [
        NAMES["run-date snapshots have P&L"],
        NAMES["run-date snapshots meet their GX suite"],
    ]
    check = failed[NAMES["run-date snapshots have P&L"]]
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == (
        "portfolio_snapshots has NULLs in 4 of 58 rows (daily_pnl 4, cumulative_pnl 4)"
    )
    meta = check.metadata
    assert meta["status"] == dg.MetadataValue.text("FAIL")
    assert meta["expected"] == dg.MetadataValue.json({"max_nulls": 0})
    assert meta["failure_count"] == dg.MetadataValue.int(4)
    assert [f["key"]["portfolio_id"] for f in meta["failures"].data] == batch.injected["null-pnl"]
    report = Path(meta["report"].path)
    assert report.name == "verdict.html" and report.is_file()
    assert report.parent.parent == tmp_path / "reports" / "demo"


def test_dagster_failure_sample_is_capped(tmp_path: Path, instance: Any) -> None:
    batch = build_demo(tmp_path / "demo", ("null-pnl",))
    result = materialize(instance, batch.params, failure_sample=2)
    meta = evaluations(result)[NAMES["run-date snapshots have P&L"]].metadata
    assert len(meta["failures"].data) == 2
    assert meta["failure_count"] == dg.MetadataValue.int(4)


def test_dagster_warn_check_does_not_block(tmp_path: Path, instance: Any) -> None:
    import duckdb

    batch = build_demo(tmp_path / "demo", ("none",))
    with duckdb.connect(str(batch.database)) as con:
        con.execute("delete from stress_test_results")
    result = materialize(instance, batch.params)
    assert result.success
    assert materialized(result) == ["portfolio_batch", "daily_report"]
    stress = evaluations(result)[NAMES["stress tests calculated"]]
    assert (stress.passed, stress.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert stress.metadata["status"] == dg.MetadataValue.text("WARN")


def test_dagster_unreachable_source_is_an_error_that_blocks(tmp_path: Path, instance: Any) -> None:
    batch = build_demo(tmp_path / "demo", ("none",))
    params = {**batch.params, "db": str(tmp_path / "gone.duckdb")}
    result = materialize(instance, params)
    assert not result.success
    assert materialized(result) == ["portfolio_batch"]
    found = evaluations(result)
    assert [n for n, e in found.items() if e.passed] == [
        NAMES["ETL batch status matches its operations"],
        NAMES["ETL run steps are well-formed"],
    ]
    stress = found[NAMES["stress tests calculated"]]  # severity warn, but not evaluated
    assert (stress.passed, stress.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert stress.metadata["status"] == dg.MetadataValue.text("ERROR")
    # a database file that is not there is a mistake to fix, not a server to wait for
    assert stress.metadata["error_category"] == dg.MetadataValue.text("config")
    assert stress.metadata["retryable"] == dg.MetadataValue.bool(False)


def test_dagster_missing_param_makes_every_check_a_config_error(instance: Any) -> None:
    result = materialize(instance, {})
    assert not result.success
    assert materialized(result) == ["portfolio_batch"]
    found = evaluations(result)
    assert list(found) == [NAMES[n] for n in CHECKS]
    for evaluation in found.values():
        assert not evaluation.passed
        assert evaluation.metadata["error_category"] == dg.MetadataValue.text("config")
        assert "param 'run_date' is required" in evaluation.description


def test_dagster_params_may_depend_on_the_run(tmp_path: Path, instance: Any) -> None:
    batch = build_demo(tmp_path / "demo", ("none",))
    seen: list[str] = []

    def params(context: Any) -> dict[str, str]:
        seen.append(context.run.run_id)
        return batch.params

    result = materialize(instance, params)
    assert result.success and seen == [result.run_id]


def test_dagster_invalid_suite_fails_when_definitions_load(tmp_path: Path) -> None:
    from runner.errors import SuiteError

    bad = tmp_path / "bad.yml"
    bad.write_text("suite: bad\nchecks:\n  - type: row_count\n    table: t\n    mni: 1\n")
    with pytest.raises(SuiteError, match=r"bad.yml:5: .*unknown key 'mni'"):
        postrun_asset_checks(bad, asset="portfolio_batch")


def test_dagster_selected_checks_run_alone_in_one_suite_run(
    tmp_path: Path, instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.integrations.dagster as integration

    runs: list[list[str]] = []
    real = integration.run_suite  # type: ignore[attr-defined]

    def counting(suite, options=None, **kwargs):
        runs.append(list(options.only))
        return real(suite, options, **kwargs)

    monkeypatch.setattr(integration, "run_suite", counting)
    batch = build_demo(tmp_path / "demo", ("null-pnl",))
    wanted = ["one snapshot per active portfolio", "run-date snapshots have P&L"]
    selection = dg.AssetSelection.checks(
        *(dg.AssetCheckKey(dg.AssetKey("portfolio_batch"), NAMES[n]) for n in wanted)
    )
    result = materialize(instance, batch.params, selection=selection)
    assert runs == [wanted]
    assert {n: e.passed for n, e in evaluations(result).items()} == {
        NAMES[wanted[0]]: True,
        NAMES[wanted[1]]: False,
    }
    assert materialized(result) == []
