"""The Spark side of bench/run.py (``--spark``): the 5-check suite on a local Spark Connect
session (``spark://local``, local[2]) against one hand-written Spark SQL query computing every
number the suite needs, in the same session, over the same temporary views (Parquet files
exported from the DuckDB warehouse, read by Spark on every query: nothing cached)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from _data import Warehouse
from _measure import Row, Table, interleaved
from _sql import FAILING, judge_numbers, postrun_row, postrun_run, suite_text

SCOPES = ("full", FAILING)


def table(house: Warehouse, folder: Path, repeat: int, scope: str = "full") -> Table:
    from runner.sources.spark import LOCAL_URL, local_session

    session = local_session()
    for name, path in _parquet(house, folder).items():
        session.read.parquet(str(path)).createOrReplaceTempView(name)
    size = f"{house.rows:,} rows ({house.portfolios:,} portfolios x {house.dates:,} dates)"
    what = "whole table" if scope == "full" else "whole table, fx_rate not_null failing"
    out = Table(f"SQL on Spark (local[2], Parquet): {size}; snapshot checks on {what}", "rows")
    query = _limit_query(scope, house.run_date.isoformat())

    def limit() -> str:
        row = session.sql(query).collect()[0]
        return judge_numbers([int(v) for v in row], house.portfolios)

    name = scope.replace(" ", "_").replace(",", "")
    suite = folder / f"suite_spark_{name}.yml"
    suite.write_text(suite_text(LOCAL_URL, scope))
    (times, result), postrun = interleaved([limit, postrun_run(suite, house)], repeat)
    out.add(Row("limit: one Spark SQL query (session)", times, "query", house.rows, result=result))
    out.add(postrun_row(house, scope, "Spark", *postrun))
    out.notes.append("x limit: median / the hand-written query's, in the same Spark session.")
    return out


def _limit_query(scope: str, day: str) -> str:
    second = "fx_rate" if scope == FAILING else "total_pnl"
    return (
        f"select count(*) filter (where snapshot_date = DATE'{day}'),"
        " (select count(*) from portfolios),"
        f" count(*) - count(daily_pnl), count(*) - count({second}),"
        " count(distinct portfolio_id) from portfolio_snapshots"
    )


def _parquet(house: Warehouse, folder: Path) -> dict[str, Path]:
    """The warehouse's two tables as Parquet files next to it (made once, then reused)."""
    paths = {}
    with duckdb.connect(str(house.duckdb), read_only=True) as con:
        for name in ("portfolios", "portfolio_snapshots"):
            path = folder / f"{house.duckdb.stem}_{name}.parquet"
            if not path.exists():
                con.execute(f"copy {name} to '{path}' (format parquet)")
            paths[name] = path
    return paths
