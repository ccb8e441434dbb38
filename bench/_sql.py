"""The SQL side of bench/run.py: the 5-check suite, the physical limit and postrun's own runs.

Scope "full" checks the whole snapshot table (only the rows-for-the-run-date count is limited to
that date, as its meaning requires); scope "run date" limits every snapshot check to
`snapshot_date = :run_date`, the lever a nightly gate has.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from _data import Warehouse
from _measure import Child, Row, interleaved, python_c, repeat_child, timed

SCOPES = ("full", "run date")
FAILING = "full, one check failing"
"""The whole-table suite with total_pnl's check on fx_rate instead, NULL in one row of 9,973: a
failing run, which fetches a sample of bad rows besides what a passing one does."""
WHERE = "snapshot_date = :run_date"


def suite_text(url: str, scope: str) -> str:
    """The postrun suite: rows for the run date = portfolios, two not_null, distinct
    portfolios = portfolios, at least one portfolio."""
    where = f"\n    where: {WHERE}" if scope == "run date" else ""
    text = f"""\
suite: bench-portfolio
description: bench/run.py, scope {scope}
params:
  run_date: {{type: date, required: true}}
sources:
  warehouse:
    url: {url}
checks:
  - type: row_count
    name: one snapshot per portfolio on the run date
    table: portfolio_snapshots
    where: {WHERE}
    equals: {{table: portfolios}}
  - type: not_null
    name: daily_pnl is never null
    table: portfolio_snapshots{where}
    columns: [daily_pnl]
    key: [portfolio_id]
  - type: not_null
    name: total_pnl is never null
    table: portfolio_snapshots{where}
    columns: [total_pnl]
    key: [portfolio_id]
  - type: row_count
    name: every portfolio has snapshots
    table: portfolio_snapshots{where}
    distinct: portfolio_id
    equals: {{table: portfolios}}
  - type: row_count
    name: there are portfolios
    table: portfolios
    min: 1
"""
    if scope == FAILING:
        text = text.replace("total_pnl is never null", "fx_rate is never null")
        text = text.replace("columns: [total_pnl]", "columns: [fx_rate]")
    return text


def write_suites(folder: Path, house: Warehouse) -> dict[tuple[str, str], Path]:
    """(engine, scope) → suite file, next to the databases (relative URLs resolve there)."""
    suites = {}
    engines = {"duckdb": house.duckdb, "sqlite": house.sqlite}
    for engine, db in engines.items():
        if db is None:
            continue
        for scope in (*SCOPES, FAILING) if engine == "duckdb" else SCOPES:
            name = scope.replace(" ", "_").replace(",", "")
            path = folder / f"suite_{engine}_{db.stem}_{name}.yml"
            path.write_text(suite_text(f"{engine}:///{db.name}", scope))
            suites[engine, scope] = path
    return suites


# -- the physical limit: one hand-written query computing every number the suite needs --------


def limit_query(scope: str) -> str:
    where = "where snapshot_date = ?" if scope == "run date" else ""
    run_date_rows = (
        "count(*)"
        if scope == "run date"
        else "(select count(*) from portfolio_snapshots where snapshot_date = ?)"
    )
    second = "fx_rate" if scope == FAILING else "total_pnl"
    return (
        f"select {run_date_rows}, (select count(*) from portfolios),"
        f" count(*) - count(daily_pnl), count(*) - count({second}),"
        f" count(distinct portfolio_id) from portfolio_snapshots {where}"
    )


def judge_numbers(numbers: tuple[int, ...] | list[int], portfolios: int) -> str:
    """PASS when the numbers are what the suite's five checks require of them; "FAIL ✓" when
    only the second NULL count is off (the failing suite's fx_rate)."""
    run_date_rows, count, daily_nulls, second_nulls, distinct = numbers
    ok = run_date_rows == count == distinct == portfolios and daily_nulls == 0 and count >= 1
    if ok and second_nulls == 0:
        return "PASS"
    return f"FAIL ✓ {second_nulls} NULLs" if ok else f"FAIL {list(numbers)}"


def limit_rows(
    house: Warehouse, engine: str, scope: str, repeat: int, beside: list[Callable[[], str]]
) -> tuple[list[Row], list[tuple[list[float], str]]]:
    """The query alone through the driver (connection open), measured side by side with
    ``beside`` (postrun's runs of the same suite), then a fresh process doing it; and the times
    and result of each of ``beside``."""
    query = limit_query(scope)
    if engine == "duckdb":
        day: object = house.run_date
        con = duckdb.connect(str(_twin(house.duckdb)), read_only=True)
        connect = f"import duckdb; con = duckdb.connect({str(house.duckdb)!r}, read_only=True)"
        setup = f"import datetime; d = datetime.date.fromisoformat({house.run_date.isoformat()!r})"
    else:
        assert house.sqlite is not None
        day = house.run_date.isoformat()
        uri = f"file:{house.sqlite}?mode=ro"
        con = sqlite3.connect(uri, uri=True)  # type: ignore[assignment]
        connect = f"import sqlite3; con = sqlite3.connect({uri!r}, uri=True)"
        setup = f"d = {day!r}"
    measured: list[Callable[[], str]] = [
        lambda: judge_numbers(con.execute(query, [day]).fetchone(), house.portfolios),  # type: ignore[arg-type]
        *beside,
    ]
    if engine == "duckdb":
        measured.append(lambda: _reopened(house, query, day))
    try:
        query_times, *postrun = interleaved(measured, repeat)
    finally:
        con.close()
    reopened = postrun.pop() if engine == "duckdb" else None
    code = (
        f"{setup}; {connect}; r = con.execute({query!r}, [d]).fetchone();"
        f" print(','.join(map(str, r)))"
    )

    def judge(child: Child) -> str:
        if child.returncode:
            return f"ERROR exit {child.returncode}: {child.stderr.strip()[-200:]}"
        return judge_numbers([int(x) for x in child.stdout.split(",")], house.portfolios)

    volume = _volume(house, scope)
    # the same process importing the libraries postrun is built on first: the floor of a
    # process whose statements are SQLAlchemy constructs and whose verdict a pydantic model
    floor = f"import sqlalchemy, pydantic; {code}"
    rows = [
        Row("limit: one query (driver)", query_times[0], "query", volume, result=query_times[1]),
        repeat_child("limit: python -c, same query", python_c(code), repeat, judge, volume=volume),
        repeat_child(
            "floor: the same, importing sqlalchemy, pydantic",
            python_c(floor),
            repeat,
            judge,
            volume=volume,
        ),
    ]
    if reopened is not None:
        rows.insert(1, Row(f"floor: {REOPENED}", reopened[0], "query", volume, result=reopened[1]))
    return rows, postrun


REOPENED = "the same, opening and closing the file"
"""The in-process floor on DuckDB: a run must not hold the file after it (the batch writes it),
so each opens it, and creating a DuckDB instance costs some 25 ms even for ``:memory:``."""


def _reopened(house: Warehouse, query: str, day: object) -> str:
    """The hand query on a connection of its own: postrun's is closed between its runs, so the
    original file is not open in this process and the connect creates an instance."""
    with duckdb.connect(str(house.duckdb), read_only=True) as con:
        return judge_numbers(con.execute(query, [day]).fetchone(), house.portfolios)  # type: ignore[arg-type]


def _twin(path: Path) -> Path:
    """A byte-for-byte copy of the DuckDB file, for the hand query's open connection: in one
    process DuckDB keeps one instance per file and refuses a second connection to it with
    another configuration (postrun's is sandboxed and locked), so the two read the same data
    from two files."""
    twin = path.with_name(f"{path.stem}_twin{path.suffix}")
    made, source = (twin.stat() if twin.exists() else None), path.stat()
    if made is None or made.st_size != source.st_size or made.st_mtime < source.st_mtime:
        shutil.copyfile(path, twin)
    return twin


def _volume(house: Warehouse, scope: str) -> float:
    return house.portfolios if scope == "run date" else house.rows


# -- postrun ------------------------------------------------------------------------------------


def postrun_api(suite: Path, house: Warehouse, scope: str, repeat: int, label: str) -> Row:
    """run_suite only: the suite is loaded once, outside the timing."""
    return postrun_row(house, scope, label, *timed(postrun_run(suite, house), repeat))


def postrun_run(suite: Path, house: Warehouse) -> Callable[[], str]:
    """One run_suite of the suite, loaded once here; what the verdict says."""
    from runner import load_suite, run_suite

    loaded = load_suite(suite, {"run_date": house.run_date.isoformat()})
    return lambda: _verdict(run_suite(loaded))


def postrun_row(house: Warehouse, scope: str, label: str, times: list[float], result: str) -> Row:
    return Row(f"postrun run_suite ({label})", times, "query", _volume(house, scope), result=result)


def _verdict(verdict: Any) -> str:
    if verdict.status == "PASS":
        return "PASS"
    failed = [c for c in verdict.checks if c.status != "PASS"]
    if [c.name for c in failed] == ["fx_rate is never null"] and failed[0].failures:
        return f"FAIL ✓ {failed[0].failure_count} NULLs, {len(failed[0].failures)} sampled"
    bad = [f"{c.name}: {c.status} {c.message}" for c in verdict.checks if c.status != "PASS"]
    return f"{verdict.status} {bad[:2]}"


def postrun_command() -> list[str]:
    """The installed console script, or `python -m runner` when it is not on PATH."""
    script = shutil.which("postrun")
    return [script] if script else [sys.executable, "-m", "runner"]


def postrun_process(
    suite: Path, params: list[str], out: Path, repeat: int, *, volume: float, label: str
) -> Row:
    command = [*postrun_command(), "check", str(suite), "-q", "--format", "json", "--out"]
    command += [str(out)]
    for param in params:
        command += ["-p", param]

    def judge(child: Child) -> str:
        if child.returncode == 0:
            return "PASS"
        if child.returncode == 1 and "failing" in suite.name:
            return "FAIL ✓ exit 1"
        return f"exit {child.returncode}: {(child.stdout + child.stderr).strip()[-300:]}"

    return repeat_child(f"postrun check (process, {label})", command, repeat, judge, volume=volume)
