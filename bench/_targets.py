"""The ratios bench/run.py holds postrun to (issue "performance, second pass"), each read from
rows measured in the same run: postrun's median over its limit's, next to the target."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from _measure import Row, Table

PROCESS = 1.5
"""Whole `postrun check` process / `python -c` running one hand-written query."""
STARTUP = 1.3
"""`postrun check --explain` and `postrun validate` / `python -c "import duckdb"`."""
CHECK_PHASE = 1.3
"""run_suite in-process / the hand-written query on an open connection, passing or failing."""
FAILING = 1.1
"""A failing run / the passing one (the failure sample's cost)."""
TOLERATED = "DuckDB, fx_rate NULLs tolerated"
"""The failing suite with max_nulls raised: its passing twin, reading the same columns."""
FILES = 1.2
"""json_integrity in-process / a simdjson parse loop over the same paths in 2 processes."""
HISTORY_WRITE_S = 0.020
"""Recording a run of the 10M-row suite (open the store, write, read the look-back, close):
an absolute bound, in seconds."""
HISTORY_QUERY_S = 1.0
"""`postrun history` (its table) over 10,000 runs of a 20-check suite, the whole process: s."""
OBJECTS = 1.5
"""json_integrity in-process over objects on a local S3 server / a plain fsspec read loop
(bench/objects.py)."""


@dataclass(frozen=True)
class Target:
    figure: str
    postrun: Row
    limit: Row
    target: float

    @property
    def ratio(self) -> float:
        return self.postrun.median / self.limit.median

    @property
    def met(self) -> bool:
        return self.ratio <= self.target


def targets(tables: Iterable[Table]) -> list[Target]:
    """Every target whose two rows were measured (a skipped part has none)."""
    rows = {(t.title.split(":")[0], r.case): r for t in tables for r in t.rows}
    full_duckdb = {
        r.case: r
        for t in tables
        if t.title.startswith("SQL on DuckDB") and t.title.endswith("whole table")
        for r in t.rows
    }
    failing = {
        r.case: r
        for t in tables
        if "failing" in t.title and not t.title.startswith("SQL on Spark")
        for r in t.rows
    }
    spark = {
        ("failing" in t.title, r.case): r
        for t in tables
        if t.title.startswith("SQL on Spark")
        for r in t.rows
    }
    found: list[Target] = []

    def want(figure: str, postrun: Row | None, limit: Row | None, target: float) -> None:
        if postrun is not None and limit is not None:
            found.append(Target(figure, postrun, limit, target))

    want(
        "postrun check process, whole-table DuckDB suite",
        full_duckdb.get("postrun check (process, DuckDB)"),
        full_duckdb.get("limit: python -c, same query"),
        PROCESS,
    )
    want(
        "check phase in-process, passing",
        full_duckdb.get("postrun run_suite (DuckDB)"),
        full_duckdb.get("limit: one query (driver)"),
        CHECK_PHASE,
    )
    want(
        "check phase in-process, one check failing",
        failing.get("postrun run_suite (DuckDB)"),
        failing.get("limit: one query (driver)"),
        CHECK_PHASE,
    )
    want(
        "failing run / the same suite passing",
        failing.get("postrun run_suite (DuckDB)"),
        failing.get(f"postrun run_suite ({TOLERATED})"),
        FAILING,
    )
    for failed in (False, True):
        want(
            f"check phase on local Spark, {'one check failing' if failed else 'passing'}",
            spark.get((failed, "postrun run_suite (Spark)")),
            spark.get((failed, "limit: one Spark SQL query (session)")),
            CHECK_PHASE,
        )
    for case in ("postrun check --explain", "postrun validate"):
        want(
            case,
            rows.get(("START-UP", case)),
            rows.get(("START-UP", "limit: python -c 'import duckdb'")),
            STARTUP,
        )
    want(
        "json_integrity in-process, result files",
        rows.get(("FILES", "postrun run_suite (json_integrity)")),
        rows.get(("FILES", "limit: simdjson loop, 2 processes")),
        FILES,
    )
    history = {r.case: r for t in tables if t.title.startswith("HISTORY") for r in t.rows}
    want(
        "recording a run in the history store",
        history.get("recording alone (open, write, read back, close)"),
        _bound(HISTORY_WRITE_S),
        1.0,
    )
    want(
        "postrun history, 10,000 runs x 20 checks",
        history.get("postrun history --format table"),
        _bound(HISTORY_QUERY_S),
        1.0,
    )
    return found


def _bound(seconds: float) -> Row:
    """An absolute target written as a limit row, so that it reads like the ratios."""
    return Row(f"absolute: {seconds * 1000:g} ms", [seconds])


def render(found: list[Target]) -> str:
    head = f"{'figure':<48} {'postrun s':>9} {'limit s':>8} {'ratio':>6} {'target':>7}  met  limit"
    lines = ["TARGETS (medians; the limits measured in this run)", head, "-" * len(head)]
    for t in found:
        lines.append(
            f"{t.figure:<48} {t.postrun.median:9.3f} {t.limit.median:8.3f} {t.ratio:6.2f}"
            f" {t.target:6.1f}x  {'yes' if t.met else 'NO ':<3}  {t.limit.case}"
        )
    return "\n".join(lines)
