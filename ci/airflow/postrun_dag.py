"""An Airflow DAG that gates a nightly batch with postrun: downstream runs only on PASS or WARN.

Copy this file into the DAGs folder of an Airflow deployment where postrun is installed.
``run_gate`` holds the whole gate and needs no Airflow: it runs a suite through postrun's
Python API, writes the same reports as ``postrun check`` and raises

- ``AirflowFailException`` on FAIL (or WARN with ``fail_on_warn``) and on a suite or param
  mistake: the data or the suite is wrong, a retry would say the same, so the task fails
  without its retries;
- ``AirflowException`` on ERROR (a check could not be evaluated: source unreachable,
  timeout) or when the reports cannot be written: the task's own ``retries`` apply.

Either way the tasks after the gate do not run. The DAG itself is defined only when Airflow
imports, so the gate can be imported and tested anywhere. Configuration comes from the
environment: POSTRUN_SUITE (default: checks/portfolio_nightly.yml of this checkout) and
POSTRUN_REPORTS (default: ./reports); the suite's own variables (PORTFOLIO_DB_URL, ...) too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

try:
    from airflow.exceptions import AirflowException, AirflowFailException
except ImportError:  # no Airflow here: the same two exceptions, the same hierarchy

    class AirflowException(Exception):  # type: ignore[no-redef]
        """A task failure its retries may fix (Airflow's own class when installed)."""

    class AirflowFailException(AirflowException):  # type: ignore[no-redef]
        """A task failure no retry will fix (Airflow's own class when installed)."""


log = logging.getLogger("postrun.airflow")

SUITE = Path(
    os.environ.get(
        "POSTRUN_SUITE", Path(__file__).resolve().parents[2] / "checks" / "portfolio_nightly.yml"
    )
)
REPORTS = Path(os.environ.get("POSTRUN_REPORTS", "reports"))


def run_gate(
    suite: str | Path,
    params: Mapping[str, str] | None = None,
    *,
    reports: str | Path = REPORTS,
    fail_on_warn: bool = False,
) -> dict[str, Any]:
    """Run ``suite``, write its reports under ``reports/<suite>/<run_id>/`` and log the summary.

    Returns the verdict's headline (an XCom-sized dict) on PASS or WARN; raises
    ``AirflowFailException`` on FAIL and ``AirflowException`` on ERROR.
    """
    from runner import RunOptions, load_suite, run_suite
    from runner.errors import OutputError, PostrunError
    from runner.render import write_reports
    from runner.render.markdown import render_markdown

    try:
        verdict = run_suite(load_suite(suite, params), RunOptions(fail_on_warn=fail_on_warn))
    except PostrunError as exc:  # an invalid suite or param: nothing ran, a retry cannot help
        raise AirflowFailException(f"postrun: {exc}") from exc
    out_dir = Path(reports) / verdict.suite.name / verdict.run_id
    log.info("postrun summary:\n%s", render_markdown(verdict).decode())
    headline = {
        "suite": verdict.suite.name,
        "verdict": verdict.verdict.value,
        "exit_code": verdict.exit_code,
        "counts": verdict.counts,
        "report_dir": str(out_dir),
    }
    try:
        write_reports(verdict, out_dir)
    except OutputError as exc:  # fail closed, as `postrun check` exits 3
        raise AirflowException(f"postrun: reports not written: {exc}") from exc
    log.info("postrun report: %s", out_dir / "verdict.html")
    problems = ", ".join(
        f"{c.name} ({c.status.value})" for c in verdict.checks if c.status.value != "PASS"
    )
    what = f"suite '{verdict.suite.name}' {verdict.verdict.value}: {problems}; see {out_dir}"
    if verdict.exit_code == 3:
        raise AirflowException(f"postrun: {what}")
    if verdict.exit_code != 0:
        raise AirflowFailException(f"postrun: {what}")
    return headline


try:
    from airflow.decorators import dag, task
except ImportError:
    dag = task = None

if dag is not None and task is not None:

    @dag(
        dag_id="nightly_portfolio_with_postrun",
        schedule="30 21 * * 1-5",
        start_date=datetime(2025, 11, 1),
        catchup=False,
        tags=["postrun"],
    )
    def nightly_portfolio_with_postrun() -> None:
        """The nightly batch, then the postrun gate; publishing runs only if the gate passes."""

        @task
        def nightly_batch(ds: str | None = None) -> None:
            log.info("run the nightly portfolio batch for %s here", ds)

        @task(retries=2, retry_delay=timedelta(minutes=5))
        def postrun_gate(ds: str | None = None) -> dict[str, Any]:
            # A run without a logical date has no `ds`: the suite then says run_date is missing.
            return run_gate(SUITE, {"run_date": ds} if ds else {})

        @task
        def publish(headline: dict[str, Any]) -> None:
            log.info("gate passed (%s): publish the snapshots", headline["verdict"])

        gate = postrun_gate()
        nightly_batch() >> gate
        publish(gate)

    nightly_portfolio_with_postrun()
