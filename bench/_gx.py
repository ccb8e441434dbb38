"""Great Expectations (GX Core 1.x) doing what the 5-check postrun suite does.

On SQLite (GX cannot validate DuckDB through SQLAlchemy) and on pandas DataFrames fetched from
DuckDB through Arrow. The run date is a query asset on SQLite and a filtered frame on pandas.
Two counts that postrun compares with the portfolios table take the portfolio count as a number
here: the rows for the run date and the distinct portfolios (see sqlite_validations).

`python -c "import _gx; _gx.main(...)"` runs one whole validation in a fresh process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

Validation = tuple[Any, Callable[[], dict[str, Any] | None]]
"""A ValidationDefinition and a function giving its batch parameters when it runs."""


def context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _suite(ctx: Any, name: str, expectations: list[Any]) -> Any:
    import great_expectations as gx

    suite = ctx.suites.add(gx.ExpectationSuite(name=name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    return suite


def _validation(ctx: Any, name: str, batch: Any, suite: Any) -> Any:
    import great_expectations as gx

    return ctx.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )


def _snapshot_expectations(portfolios: int) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="daily_pnl"),
        e.ExpectColumnValuesToNotBeNull(column="total_pnl"),
        e.ExpectColumnUniqueValueCountToBeBetween(
            column="portfolio_id", min_value=portfolios, max_value=portfolios
        ),
    ]


def sqlite_validations(
    ctx: Any, db: str, run_date: date, portfolios: int, *, scoped: bool
) -> list[Validation]:
    import great_expectations as gx

    e = gx.expectations
    source = ctx.data_sources.add_sqlite(name="warehouse", connection_string=f"sqlite:///{db}")
    snapshots = source.add_table_asset(name="snapshots", table_name="portfolio_snapshots")
    # The run date as a query asset, whose WHERE can use the index on snapshot_date. (A daily
    # partitioner, add_batch_definition_daily, wraps the column in STRFTIME and lists every
    # partition first: two full scans. ExpectTableRowCountToEqualOtherTable fails on a query
    # asset in GX 1.x, 'TextClause' object has no attribute 'name', hence the number.)
    day = source.add_query_asset(
        name="run_date",
        query=f"select * from portfolio_snapshots where snapshot_date = '{run_date.isoformat()}'",
    ).add_batch_definition_whole_table("run_date")
    ports = source.add_table_asset(name="portfolios", table_name="portfolios")
    per_day = e.ExpectTableRowCountToEqual(value=portfolios)
    checks = _snapshot_expectations(portfolios)
    validations: list[Validation] = []
    if scoped:
        suite = _suite(ctx, "snapshots", [per_day, *checks])
        validations.append((_validation(ctx, "snapshots", day, suite), lambda: None))
    else:
        suite = _suite(ctx, "run_date", [per_day])
        validations.append((_validation(ctx, "run_date", day, suite), lambda: None))
        whole = snapshots.add_batch_definition_whole_table("whole")
        suite = _suite(ctx, "snapshots", checks)
        validations.append((_validation(ctx, "snapshots", whole, suite), lambda: None))
    suite = _suite(ctx, "portfolios", [e.ExpectTableRowCountToBeBetween(min_value=1)])
    batch = ports.add_batch_definition_whole_table("whole")
    validations.append((_validation(ctx, "portfolios", batch, suite), lambda: None))
    return validations


def load_pandas(db: str, run_date: date, *, scoped: bool) -> tuple[Any, Any]:
    """The snapshot table (or the run date's rows) and portfolios as pandas, through Arrow."""
    from _frames import fetch_arrow

    snapshots, ports = fetch_arrow(db, run_date, scoped=scoped)
    return snapshots.to_pandas(), ports.to_pandas()


def pandas_validations(
    ctx: Any, snapshots: Any, ports: Any, run_date: date, *, scoped: bool
) -> list[Validation]:
    import great_expectations as gx

    e = gx.expectations
    source = ctx.data_sources.add_pandas(name="frames")

    def batch(name: str) -> Any:
        return source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)

    portfolios = len(ports)
    per_day = e.ExpectTableRowCountToEqual(value=portfolios)
    checks = _snapshot_expectations(portfolios)
    validations: list[Validation] = []
    if scoped:
        suite = _suite(ctx, "snapshots", [per_day, *checks])
        frame = {"dataframe": snapshots}
        validations.append(
            (_validation(ctx, "snapshots", batch("snapshots"), suite), lambda: frame)
        )
    else:
        suite = _suite(ctx, "run_date", [per_day])
        validations.append(
            (
                _validation(ctx, "run_date", batch("run_date"), suite),
                lambda: {"dataframe": snapshots[snapshots["snapshot_date"] == run_date]},
            )
        )
        suite = _suite(ctx, "snapshots", checks)
        frame = {"dataframe": snapshots}
        validations.append(
            (_validation(ctx, "snapshots", batch("snapshots"), suite), lambda: frame)
        )
    suite = _suite(ctx, "portfolios", [e.ExpectTableRowCountToBeBetween(min_value=1)])
    frame_p = {"dataframe": ports}
    validations.append(
        (_validation(ctx, "portfolios", batch("portfolios"), suite), lambda: frame_p)
    )
    return validations


def run(validations: list[Validation]) -> str:
    """Run every validation definition: PASS, or FAIL with the failing expectations."""
    failed = []
    for definition, parameters in validations:
        result = definition.run(batch_parameters=parameters())
        for item in result.results:
            if not item.success:
                why = item.exception_info.get("exception_message") or item.result
                failed.append(f"{item.expectation_config.type}: {str(why)[:120]}")
    return "PASS" if not failed else f"FAIL {failed[:2]}"


def main(spec: str) -> None:
    """One whole validation, as a user's script would do it: engine, db, run date, scope."""
    args = json.loads(spec)
    run_date = date.fromisoformat(args["run_date"])
    scoped = args["scope"] != "full"
    ctx = context()
    if args["engine"] == "sqlite":
        validations = sqlite_validations(
            ctx, args["db"], run_date, args["portfolios"], scoped=scoped
        )
    else:
        snapshots, ports = load_pandas(args["db"], run_date, scoped=scoped)
        validations = pandas_validations(ctx, snapshots, ports, run_date, scoped=scoped)
    verdict = run(validations)
    print(verdict)
    sys.exit(0 if verdict == "PASS" else 1)


def process_code(engine: str, db: str, run_date: date, portfolios: int, scope: str) -> str:
    spec = {
        "engine": engine,
        "db": db,
        "run_date": run_date.isoformat(),
        "portfolios": portfolios,
        "scope": scope,
    }
    return f"import _gx; _gx.main({json.dumps(spec)!r})"
