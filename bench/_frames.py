"""pandera doing what the 5-check postrun suite does, on frames fetched from DuckDB via Arrow.

The polars backend (pandera.polars) when it imports, else pandas. Loading (the fetch) and
validating are timed apart: pandera can only check what was fetched.
"""

from __future__ import annotations

from datetime import date
from typing import Any


def fetch_arrow(db: str, run_date: date, *, scoped: bool) -> tuple[Any, Any]:
    """The snapshot table (or the run date's rows) and portfolios as Arrow tables."""
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        if scoped:
            query = "select * from portfolio_snapshots where snapshot_date = $d"
            snapshots = con.sql(query, params={"d": run_date}).to_arrow_table()
        else:
            snapshots = con.sql("select * from portfolio_snapshots").to_arrow_table()
        ports = con.sql("select * from portfolios").to_arrow_table()
    return snapshots, ports


def backend() -> str:
    try:
        import pandera.polars  # noqa: F401
        import polars  # noqa: F401
    except ImportError:
        return "pandas"
    return "polars"


def load(db: str, run_date: date, *, scoped: bool, kind: str) -> tuple[Any, Any]:
    snapshots, ports = fetch_arrow(db, run_date, scoped=scoped)
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(snapshots), pl.from_arrow(ports)
    return snapshots.to_pandas(), ports.to_pandas()


def validate(snapshots: Any, ports: Any, run_date: date, *, kind: str) -> str:
    """Both schemas, lazily (every failure collected): PASS or FAIL with pandera's summary."""
    snapshot_schema, portfolio_schema = (
        _polars_schemas(run_date, len(ports))
        if kind == "polars"
        else _pandas_schemas(run_date, len(ports))
    )
    import pandera.errors

    failed = []
    for schema, frame in ((snapshot_schema, snapshots), (portfolio_schema, ports)):
        try:
            schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            failed.append(" ".join(str(exc).split())[:200])
    return "PASS" if not failed else f"FAIL {failed}"


def _polars_schemas(run_date: date, portfolios: int) -> tuple[Any, Any]:
    import pandera.polars as pa
    import polars as pl

    snapshots = pa.DataFrameSchema(
        columns={
            "portfolio_id": pa.Column(pl.Int32, nullable=False),
            "daily_pnl": pa.Column(pl.Float64, nullable=False),
            "total_pnl": pa.Column(pl.Float64, nullable=False),
        },
        checks=[
            pa.Check(
                lambda data: data.lazyframe.select(
                    (pl.col("snapshot_date") == run_date).sum() == portfolios
                ),
                name="one_snapshot_per_portfolio_on_the_run_date",
            ),
            pa.Check(
                lambda data: data.lazyframe.select(pl.col("portfolio_id").n_unique() == portfolios),
                name="every_portfolio_has_snapshots",
            ),
        ],
    )
    ports = pa.DataFrameSchema(
        checks=[pa.Check(lambda data: data.lazyframe.select(pl.len() >= 1), name="there_are")]
    )
    return snapshots, ports


def _pandas_schemas(run_date: date, portfolios: int) -> tuple[Any, Any]:
    import pandera.pandas as pa

    snapshots = pa.DataFrameSchema(
        columns={
            "portfolio_id": pa.Column("int32", nullable=False),
            "daily_pnl": pa.Column(float, nullable=False),
            "total_pnl": pa.Column(float, nullable=False),
        },
        checks=[
            pa.Check(
                lambda df: int((df["snapshot_date"] == run_date).sum()) == portfolios,
                name="one_snapshot_per_portfolio_on_the_run_date",
            ),
            pa.Check(
                lambda df: df["portfolio_id"].nunique() == portfolios,
                name="every_portfolio_has_snapshots",
            ),
        ],
    )
    ports = pa.DataFrameSchema(checks=[pa.Check(lambda df: len(df) >= 1, name="there_are")])
    return snapshots, ports
