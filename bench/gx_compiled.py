"""A GX suite compiled by postrun vs Great Expectations itself: the same suite JSON, the same data.

    python bench/gx_compiled.py                          # 10M rows, 5 repeats (3 for GX)
    python bench/gx_compiled.py --rows 1000000           # a quick look
    python bench/gx_compiled.py --dir /tmp/bench-full --skip-sqlite   # reuse bench/run.py's data

postrun's `expectation_suite` check reads a GX 1.x suite JSON and runs the expectations it can
compile (runner.gx.compile.COMPILED_TYPES) as SQL aggregates of one shared scan, without
importing GX.
This script writes such a suite next to bench/run.py's portfolio data (9 expectations, every one
compiled, all passing on the data: row count, not_null with and without `mostly`, values
between, column max/min/mean, a row count under a `row_condition`) and runs it:

- SQLite: one hand-written query computing every number the suite judges (the physical limit),
  postrun (`run_suite`, and a whole `postrun check` process), GX's SQL datasource
  (`batch.validate(suite)` on a table asset; and a fresh process importing GX and validating).
- DuckDB: the limit query, postrun, GX's SQL datasource through duckdb-engine (once: GX 1.24 fails
  every expectation there with an IndexError, GX issues #10738 and #11579), and GX's pandas
  datasource on the table fetched through Arrow (the fetch and the validation timed apart; and a
  fresh process doing both).

Every case's conclusions are compared with postrun's `run_suite`, expectation by expectation:
success, and element count, unexpected count and observed value where both report them. Two
one-expectation suites are measured apart, after the main one:

- a `row_condition` on the date column: GX on pandas counts no rows for it (Arrow's DuckDB dates
  become `datetime.date` objects, never equal to the condition's string);
- compound uniqueness of (portfolio_id, snapshot_date): GX's SQL for it joins the table with its
  grouped counts, which SQLite runs through the index on snapshot_date once per group (rows x
  portfolios row visits: hours at 10M rows), so GX runs it there in a process killed after
  `--gx-timeout` seconds.

The exit status is 1 when a case disagrees with postrun, except those known GX outcomes, whose
result column starts with "wrong:" (GX concludes wrongly) or "slow:" (GX killed unfinished).

Top-level imports are the standard library's (and _measure's, which has no others): a GX process
(`python -c "import gx_compiled; gx_compiled.gx_process(...)"`) pays for GX and its own needs only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _measure import BENCH, Child, Row, Table, python_c, repeat_child, timed

OBSERVED, UNEXPECTED = "observed_value", "unexpected_count"
COMPARED = ("success", "element_count", UNEXPECTED, OBSERVED)
"""What is compared, expectation by expectation (the counts and value where both report them)."""
DUPLICATES = (
    "(select coalesce(sum(n), 0) from (select count(*) as n from portfolio_snapshots"
    " group by portfolio_id, snapshot_date having count(*) > 1) as dup)"
)

Results = dict[int, dict[str, Any]]
"""Expectation index in the suite → its success and numbers."""


@dataclass(frozen=True)
class Item:
    """One expectation, with the SQL of the number it judges (for the hand-written limit)."""

    type: str
    kwargs: dict[str, Any]
    number: str
    key: str
    """Where GX and postrun report that number: observed_value or unexpected_count."""


def main_items(rows: int, dates: int) -> list[Item]:
    """The suite: bounds chosen from the generator (bench/_data.py), so that it passes."""
    not_null = "expect_column_values_to_not_be_null"
    portfolio_0 = 'col("portfolio_id")==0'
    return [
        Item(
            "expect_table_row_count_to_be_between",
            {"min_value": rows, "max_value": rows},
            "count(*)",
            OBSERVED,
        ),
        Item(not_null, {"column": "daily_pnl"}, "count(*) - count(daily_pnl)", UNEXPECTED),
        Item(not_null, {"column": "total_pnl"}, "count(*) - count(total_pnl)", UNEXPECTED),
        Item(
            not_null,
            {"column": "fx_rate", "mostly": 0.999},
            "count(*) - count(fx_rate)",
            UNEXPECTED,
        ),
        Item(
            "expect_column_values_to_be_between",
            {"column": "market_value", "min_value": 100_000, "max_value": 1_100_000},
            "count(case when market_value < 100000 or market_value > 1100000 then 1 end)",
            UNEXPECTED,
        ),
        Item(
            "expect_column_max_to_be_between",
            {"column": "daily_pnl", "min_value": 0, "max_value": 1_000},
            "max(daily_pnl)",
            OBSERVED,
        ),
        Item(
            "expect_column_min_to_be_between",
            {"column": "total_pnl", "min_value": -100_000, "max_value": 0},
            "min(total_pnl)",
            OBSERVED,
        ),
        Item(
            "expect_column_mean_to_be_between",
            {"column": "daily_pnl", "min_value": -10, "max_value": 10},
            "avg(daily_pnl)",
            OBSERVED,
        ),
        Item(
            "expect_table_row_count_to_equal",
            {
                "value": dates,
                "row_condition": portfolio_0,
                "condition_parser": "great_expectations",
            },
            "count(case when portfolio_id = 0 then 1 end)",
            OBSERVED,
        ),
    ]


def unique_items() -> list[Item]:
    """One snapshot per portfolio and day: GX's SQL for it is a join that SQLite runs per group
    through the index on snapshot_date (rows x portfolios), so it is a suite of its own."""
    kwargs = {"column_list": ["portfolio_id", "snapshot_date"]}
    return [Item("expect_compound_columns_to_be_unique", kwargs, DUPLICATES, UNEXPECTED)]


def date_items(portfolios: int, run_date: str) -> list[Item]:
    """Every portfolio has a snapshot on the run date: a row_condition on the date column."""
    kwargs = {
        "value": portfolios,
        "row_condition": f'col("snapshot_date")=="{run_date}"',
        "condition_parser": "great_expectations",
    }
    number = f"count(case when snapshot_date = '{run_date}' then 1 end)"
    return [Item("expect_table_row_count_to_equal", kwargs, number, OBSERVED)]


def gx_suite_json(name: str, items: list[Item]) -> dict[str, Any]:
    """A GX 1.x ExpectationSuite as GX serializes it."""
    expectations = [
        {"type": i.type, "kwargs": i.kwargs, "meta": {}, "severity": "critical"} for i in items
    ]
    return {"name": name, "expectations": expectations, "meta": {}}


def postrun_yaml(name: str, url: str, gx_suite: Path) -> str:
    return f"""\
suite: {name}
description: bench/gx_compiled.py, the GX suite {gx_suite.name}
sources:
  warehouse:
    url: {url}
checks:
  - type: expectation_suite
    name: {name}
    table: portfolio_snapshots
    suite: {gx_suite}
"""


@dataclass(frozen=True)
class Case:
    """One GX suite on one engine: its JSON, postrun's suite around it, the database."""

    engine: str
    db: Path
    gx_suite: Path
    postrun_suite: Path
    items: list[Item]

    @property
    def url(self) -> str:
        return f"{self.engine}:///{self.db}"


def write_cases(folder: Path, house: Any, engines: list[str]) -> dict[tuple[str, str], Case]:
    """(engine, "main", "date" or "unique") → its case; the files go next to the data."""
    suites = {
        "main": main_items(house.rows, house.dates),
        "date": date_items(house.portfolios, house.run_date.isoformat()),
        "unique": unique_items(),
    }
    cases = {}
    for which, items in suites.items():
        name = f"gx_compiled_{which}_{house.rows}"
        gx_suite = folder / f"{name}.gx.json"
        gx_suite.write_text(json.dumps(gx_suite_json(name, items), indent=2) + "\n")
        for engine in engines:
            db = house.duckdb if engine == "duckdb" else house.sqlite
            postrun_suite = folder / f"{name}_{engine}.yml"
            text = postrun_yaml(name.replace("_", "-"), f"{engine}:///{db.name}", gx_suite)
            postrun_suite.write_text(text)
            cases[engine, which] = Case(engine, db, gx_suite, postrun_suite, items)
    return cases


# -- comparing conclusions ----------------------------------------------------------------------


def differences(reference: Results, got: Results) -> list[str]:
    """What `got` concludes otherwise than postrun's `reference`."""
    out = []
    for index, want in sorted(reference.items()):
        have = got.get(index, {})
        for key in COMPARED:
            a, b = want.get(key), have.get(key)
            if key != "success" and (a is None or b is None):
                continue
            if not _same(a, b):
                why = f" ({have['error']})" if have.get("error") else ""
                out.append(f"#{index} {key} {b!r}, postrun {a!r}{why}")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def agreement(reference: Results, got: Results) -> str:
    """`PASS ✓ n of n as postrun` when every expectation agrees, else what differs."""
    diffs = differences(reference, got)
    if diffs:
        return f"DIFFERS: {'; '.join(diffs[:3])}"
    passed = all(r.get("success") for r in got.values())
    return f"{'PASS' if passed else 'FAIL'} ✓ {len(reference)} of {len(reference)} as postrun"


def known_gx_failure(reference: Results, got: Results, error: str) -> str:
    """The documented GX failure (every differing expectation failed with `error`) as "wrong:"."""
    diffs = differences(reference, got)
    failed = [i for i, r in got.items() if error in str(r.get("error", ""))]
    if diffs and all(d.split()[0] in {f"#{i}" for i in failed} for d in diffs):
        return f"wrong: {len(failed)} of {len(reference)} expectations failed ({error})"
    return agreement(reference, got)


def date_condition_failure(reference: Results, got: Results) -> str:
    """GX on pandas counting no rows for the date row_condition: the known "wrong:" outcome."""
    gx_rows, postrun_rows = got.get(0, {}).get(OBSERVED), reference[0].get(OBSERVED)
    if gx_rows == 0 and postrun_rows:
        return f"wrong: GX counts 0 rows for the date, postrun {postrun_rows:,}"
    return agreement(reference, got)


def numbers_text(numbers: Any, items: list[Item], reference: Results) -> str:
    """The limit query's numbers against the ones postrun reported."""
    got = {i: {item.key: numbers[i]} for i, item in enumerate(items)}
    want = {i: {item.key: reference[i].get(item.key)} for i, item in enumerate(items)}
    diffs = [d for d in differences(want, got) if " success " not in d]
    if diffs:
        return f"DIFFERS: {'; '.join(diffs[:3])}"
    return f"✓ {len(items)} of {len(items)} numbers as postrun"


# -- postrun ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostrunRun:
    status: str
    message: str
    compiled: int
    results: Results


def postrun_outcome(check: dict[str, Any], status: str) -> PostrunRun:
    """The expectation_suite check's result (CheckResult fields, or verdict.json's)."""
    observed = check.get("observed") or {}
    results = {i: dict(r) for i, r in enumerate(observed.get("results", []))}
    return PostrunRun(status, check.get("message", ""), observed.get("compiled", 0), results)


def postrun_text(run: PostrunRun, reference: Results) -> str:
    if run.status != "PASS" or run.compiled != len(run.results):
        return f"{run.status} {run.compiled} of {len(run.results)} compiled: {run.message[:200]}"
    diffs = differences(reference, run.results)
    if diffs:
        return f"DIFFERS: {'; '.join(diffs[:3])}"
    return f"PASS, {run.compiled} of {len(run.results)} compiled"


def postrun_api(case: Case) -> Callable[[], PostrunRun]:
    from runner import load_suite, run_suite

    loaded = load_suite(case.postrun_suite, {})

    def run() -> PostrunRun:
        verdict = run_suite(loaded)
        check = verdict.checks[0]
        fields = {"observed": check.observed, "message": check.message}
        return postrun_outcome(fields, str(verdict.verdict))

    return run


def postrun_process_row(case: Case, out: Path, repeat: int, reference: Results, label: str) -> Row:
    from _sql import postrun_command

    command = [*postrun_command(), "check", str(case.postrun_suite), "-q", "--format", "json"]
    command += ["--out", str(out)]

    def judge(child: Child) -> str:
        try:
            verdict = json.loads((out / "verdict.json").read_text())
        except (OSError, ValueError) as exc:
            return f"exit {child.returncode}, no verdict.json ({exc}): {child.stderr[-200:]}"
        return postrun_text(postrun_outcome(verdict["checks"][0], verdict["verdict"]), reference)

    return repeat_child(f"postrun check (process, {label})", command, repeat, judge, volume=0)


# -- Great Expectations -------------------------------------------------------------------------


def gx_suite(ctx: Any, path: Path) -> Any:
    """The suite JSON as a GX ExpectationSuite, added to the context (which gives it ids)."""
    import great_expectations as gx

    raw = json.loads(path.read_text())
    if raw["name"] in {suite.name for suite in ctx.suites.all()}:
        return ctx.suites.get(raw["name"])
    return ctx.suites.add(gx.ExpectationSuite(**raw))


def gx_sql(ctx: Any, engine: str, url: str) -> Any:
    """A whole-table batch definition of portfolio_snapshots through GX's SQL datasource."""
    sources = ctx.data_sources
    add = sources.add_sqlite if engine == "sqlite" else sources.add_sql
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = add(name=f"{engine}_warehouse", connection_string=url)
        asset = source.add_table_asset(name="snapshots", table_name="portfolio_snapshots")
    return asset.add_batch_definition_whole_table("whole")


def gx_frames(ctx: Any) -> Any:
    source = ctx.data_sources.add_pandas(name="frames")
    return source.add_dataframe_asset(name="snapshots").add_batch_definition_whole_dataframe("all")


def gx_validate(definition: Any, suite: Any, frame: Any = None) -> Results:
    parameters = {"dataframe": frame} if frame is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # condition_parser is deprecated since GX 1.9
        batch = definition.get_batch(batch_parameters=parameters)
        validation = batch.validate(suite)
    return gx_results(validation, suite)


def gx_results(validation: Any, suite: Any) -> Results:
    """GX's results back in suite order (GX reorders them), by expectation id."""
    index = {e.id: i for i, e in enumerate(suite.expectations)}
    out: Results = {}
    for item in validation.results:
        result = dict(item.result or {})
        entry = {"success": bool(item.success)}
        entry |= {k: _plain(result[k]) for k in COMPARED[1:] if result.get(k) is not None}
        error = _exception(item.exception_info or {})
        if error:
            entry["error"] = error
        out[index[item.expectation_config.id]] = entry
    return out


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (JSON, comparisons)."""
    return value.item() if hasattr(value, "item") else value


def _exception(info: dict[str, Any]) -> str | None:
    """The first exception of the traceback GX caught ("IndexError: …", before GX wraps it in a
    MetricResolutionError), from its flat or per-metric exception_info."""
    infos = [info] if "raised_exception" in info else list(info.values())
    for one in infos:
        if isinstance(one, dict) and one.get("raised_exception"):
            found = _RAISED.search(str(one.get("exception_traceback") or ""))
            return (found[1] if found else str(one.get("exception_message")))[:120]
    return None


_RAISED = re.compile(r"^(\w[\w.]*(?:Error|Exception)\b.*)$", re.MULTILINE)


def fetch_pandas(db: str) -> Any:
    """The whole table as pandas through Arrow, as a GX user on DuckDB would fetch it."""
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        return con.sql("select * from portfolio_snapshots").to_arrow_table().to_pandas()


def gx_process(spec: str) -> None:
    """A fresh process: import GX, read the suite JSON, validate (on SQLite, or on pandas after
    the fetch from DuckDB); prints the results as JSON."""
    import _gx

    args = json.loads(spec)
    ctx = _gx.context()
    suite = gx_suite(ctx, Path(args["suite"]))
    if args["engine"] == "pandas":
        results = gx_validate(gx_frames(ctx), suite, fetch_pandas(args["db"]))
    else:
        results = gx_validate(gx_sql(ctx, "sqlite", f"sqlite:///{args['db']}"), suite)
    print(json.dumps(results), flush=True)
    os._exit(0)  # no teardown (DuckDB's bindings print leak warnings), as postrun's CLI


def gx_command(case: Case, engine: str) -> list[str]:
    spec = json.dumps({"engine": engine, "db": str(case.db), "suite": str(case.gx_suite)})
    return python_c(f"import gx_compiled; gx_compiled.gx_process({spec!r})")


def child_result(returncode: int, stdout: str, stderr: str, reference: Results) -> str:
    lines = stdout.strip().splitlines()
    if returncode or not lines:
        return f"exit {returncode}: {stderr.strip()[-300:]}"
    return agreement(reference, {int(k): v for k, v in json.loads(lines[-1]).items()})


def gx_process_row(case: Case, engine: str, repeat: int, reference: Results) -> Row:
    def judge(child: Child) -> str:
        return child_result(child.returncode, child.stdout, child.stderr, reference)

    what = "import, validate" if engine == "sqlite" else "import, fetch, validate"
    label = "SQLite" if engine == "sqlite" else "pandas"
    command = gx_command(case, engine)
    return repeat_child(f"GX on {label} (process: {what})", command, repeat, judge)


# -- SQL statements issued ----------------------------------------------------------------------


@dataclass
class Trace:
    """The SQL statements that went through SQLAlchemy (postrun's and GX's), with their times."""

    statements: list[tuple[float, str]] = field(default_factory=list)

    @contextmanager
    def on(self) -> Iterator[Trace]:
        import sqlalchemy as sa

        def before(conn: Any, *_: Any) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            started = conn.info["bench_started"].pop()
            self.statements.append((time.perf_counter() - started, statement))

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
        try:
            yield self
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
            sa.event.remove(sa.engine.Engine, "after_cursor_execute", after)

    def summary(self, who: str) -> str:
        """Statements, those reading the table (samples of unexpected rows among them: with
        nothing to sample, they read it whole), the time in SQL, the slowest."""
        reads = [(s, q) for s, q in self.statements if _reads_table(q)]
        samples = sum(" limit " in q.lower() for _, q in reads)
        slowest = sorted(reads, reverse=True)[:3]
        top = ", ".join(f"{_label(q)} {s:.2f}s" for s, q in slowest)
        total = sum(s for s, _ in self.statements)
        return (
            f"{who}: {len(self.statements)} SQL statements, {len(reads)} reading the table"
            f" ({samples} of them LIMIT samples); {total:.2f}s in SQL; slowest: {top}"
        )


def _reads_table(statement: str) -> bool:
    """A SELECT over portfolio_snapshots, but GX's `SELECT 1 … LIMIT` probe of the table."""
    text = " ".join(statement.lower().split())
    return (
        "portfolio_snapshots" in text
        and text.startswith("select")
        and not text.startswith("select 1 from")
    )


def _label(statement: str) -> str:
    """A short name: GX's metric (its first column alias), or how many aggregates one SELECT
    computes; "GROUP BY" when it groups."""
    flat = " ".join(statement.split())
    head = re.split(r"\bFROM\b", flat, maxsplit=1, flags=re.IGNORECASE)[0]
    names = re.findall(r'\bAS\s+"?([\w.]+)"?', head, flags=re.IGNORECASE) or re.findall(
        r'\bAS\s+"?([\w.]+)"?', flat, flags=re.IGNORECASE
    )
    name = f"{len(names)} aggregates" if len(names) > 2 else (names[0] if names else flat[:30])
    return f"{name} (GROUP BY)" if " group by " in flat.lower() else name


def first_traced(fn: Callable[[], Any], trace: Trace) -> Callable[[], Any]:
    """fn, with its first call (timed()'s untimed one) traced."""
    calls = [0]

    def call() -> Any:
        calls[0] += 1
        if calls[0] > 1:
            return fn()
        with trace.on():
            return fn()

    return call


# -- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    args: argparse.Namespace
    folder: Path
    house: Any
    cases: dict[tuple[str, str], Case]

    @property
    def gx_repeat(self) -> int:
        return min(self.args.gx_repeat, self.args.repeat)


def limit_rows(case: Case, repeat: int, reference: Results) -> list[Row]:
    """The hand-written query through the driver (connection open), then in a fresh process."""
    query = f"select {', '.join(i.number for i in case.items)} from portfolio_snapshots"
    if case.engine == "duckdb":
        import duckdb

        con: Any = duckdb.connect(str(case.db), read_only=True)
        connect = f"import duckdb; con = duckdb.connect({str(case.db)!r}, read_only=True)"
    else:
        import sqlite3

        uri = f"file:{case.db}?mode=ro"
        con = sqlite3.connect(uri, uri=True)
        connect = f"import sqlite3; con = sqlite3.connect({uri!r}, uri=True)"
    try:
        times, result = timed(
            lambda: numbers_text(con.execute(query).fetchone(), case.items, reference), repeat
        )
    finally:
        con.close()
    code = f"import json; {connect}; print(json.dumps(con.execute({query!r}).fetchone()))"

    def judge(child: Child) -> str:
        if child.returncode:
            return f"exit {child.returncode}: {child.stderr.strip()[-200:]}"
        return numbers_text(json.loads(child.stdout), case.items, reference)

    return [
        Row("limit: one query (driver)", times, "query", result=result),
        repeat_child("limit: python -c, same query", python_c(code), repeat, judge),
    ]


def postrun_rows(setup: Setup, case: Case, label: str, trace: Trace) -> tuple[Results, list[Row]]:
    """postrun's run_suite, its results (the reference for every other case), and the process."""
    run = postrun_api(case)
    with trace.on():
        first = run()
    reference = first.results
    times, result = timed(lambda: postrun_text(run(), reference), setup.args.repeat)
    out = setup.folder / "out" / case.postrun_suite.stem
    rows = [
        Row(f"postrun run_suite ({label})", times, "query", result=result),
        postrun_process_row(case, out, setup.args.repeat, reference, label),
    ]
    return reference, rows


def sqlite_table(setup: Setup) -> Table:
    import _gx

    case = setup.cases["sqlite", "main"]
    table = Table(_title(setup, "SQLite", case), "rows")
    _progress(table.title)
    traces = {"postrun": Trace(), "GX": Trace()}
    reference, postrun = postrun_rows(setup, case, "SQLite", traces["postrun"])
    for row in [*limit_rows(case, setup.args.repeat, reference), *postrun]:
        table.add(row)
    ctx = _gx.context()
    definition = gx_sql(ctx, "sqlite", case.url)
    suite = gx_suite(ctx, case.gx_suite)
    validate = first_traced(lambda: gx_validate(definition, suite), traces["GX"])
    times, result = timed(lambda: agreement(reference, validate()), setup.gx_repeat)
    table.add(Row("GX on SQLite: validate", times, "query", result=result))
    table.add(gx_process_row(case, "sqlite", setup.gx_repeat, reference))

    def gx_side(which: str, side: Case, side_reference: Results) -> Row:
        if which == "unique":  # GX's join takes hours on SQLite at 10M rows: a process, killed
            return gx_timeout_row(side, side_reference, setup.args.gx_timeout)
        suite = gx_suite(ctx, side.gx_suite)
        times, result = timed(lambda: agreement(side_reference, gx_validate(definition, suite)), 1)
        return Row("date row_condition: GX on SQLite, validate", times, result=result)

    for row in side_rows(setup, "sqlite", "SQLite", gx_side):
        table.add(row)
    _notes(table, traces)
    return table


def duckdb_table(setup: Setup) -> Table:
    import _gx

    case = setup.cases["duckdb", "main"]
    table = Table(_title(setup, "DuckDB", case), "rows")
    _progress(table.title)
    traces = {"postrun": Trace(), "GX (SQL datasource)": Trace()}
    reference, postrun = postrun_rows(setup, case, "DuckDB", traces["postrun"])
    for row in [*limit_rows(case, setup.args.repeat, reference), *postrun]:
        table.add(row)
    ctx = _gx.context()
    table.add(gx_duckdb_sql_row(setup, ctx, case, reference, traces["GX (SQL datasource)"]))
    for row in gx_pandas_rows(setup, ctx, case, reference):
        table.add(row)
    _notes(table, traces)
    table.notes.append("GX on pandas computes its metrics on the frame: no SQL.")
    return table


def gx_duckdb_sql_row(setup: Setup, ctx: Any, case: Case, reference: Results, trace: Trace) -> Row:
    """GX's SQL datasource on DuckDB, timed once, on a copy of the file (DuckDB allows one
    configuration per file and process, and postrun's connection is read-only)."""
    copy = setup.folder / f"gx_sql_copy_{case.db.name}"
    shutil.copy(case.db, copy)
    try:
        definition = gx_sql(ctx, "duckdb", f"duckdb:///{copy}")
        suite = gx_suite(ctx, case.gx_suite)
        with trace.on():
            started = time.perf_counter()
            got = gx_validate(definition, suite)
            seconds = time.perf_counter() - started
    finally:
        copy.unlink(missing_ok=True)
    result = known_gx_failure(reference, got, "IndexError")
    return Row("GX on DuckDB (SQL datasource): validate", [seconds], "query", result=result)


def gx_pandas_rows(setup: Setup, ctx: Any, case: Case, reference: Results) -> list[Row]:
    """The fetch, the validation on the frame, the two side suites on it, then a process."""
    frames: list[Any] = []

    def fetch() -> str:
        frames[:] = [fetch_pandas(str(case.db))]
        return f"{len(frames[0]):,} rows"

    times, result = timed(fetch, setup.args.repeat)
    rows = [Row("GX: fetch to pandas via Arrow", times, "query", result=result)]
    definition = gx_frames(ctx)
    suite = gx_suite(ctx, case.gx_suite)
    times, result = timed(
        lambda: agreement(reference, gx_validate(definition, suite, frames[0])), setup.gx_repeat
    )
    rows.append(Row("GX on pandas: validate", times, "query", result=result))

    def gx_side(which: str, side: Case, side_reference: Results) -> Row:
        suite = gx_suite(ctx, side.gx_suite)
        judge = date_condition_failure if which == "date" else agreement
        times, result = timed(
            lambda: judge(side_reference, gx_validate(definition, suite, frames[0])), 1
        )
        return Row(f"{SIDE[which]}: GX on pandas, validate", times, result=result)

    side = side_rows(setup, "duckdb", "DuckDB", gx_side)
    frames.clear()
    return [*rows, gx_process_row(case, "pandas", setup.gx_repeat, reference), *side]


SIDE = {"date": "date row_condition", "unique": "uniqueness"}
"""The two one-expectation suites measured apart from the main one."""


def side_rows(
    setup: Setup, engine: str, label: str, gx_row: Callable[[str, Case, Results], Row]
) -> list[Row]:
    """For each side suite: postrun's run_suite, then GX's row judged against it."""
    rows = []
    for which, what in SIDE.items():
        case = setup.cases[engine, which]
        reference, row = side_postrun_row(setup, case, f"{what}: postrun run_suite ({label})")
        rows += [row, gx_row(which, case, reference)]
    return rows


def side_postrun_row(setup: Setup, case: Case, label: str) -> tuple[Results, Row]:
    """run_suite of a side suite, its result with the number it judged."""
    run = postrun_api(case)
    reference = run().results
    times, result = timed(lambda: postrun_text(run(), reference), setup.args.repeat)
    key = case.items[0].key
    value = reference.get(0, {}).get(key)
    result += f" ({key.replace('_', ' ')} {value:,})" if isinstance(value, int) else ""
    return reference, Row(label, times, result=result)


def gx_timeout_row(case: Case, reference: Results, timeout: float) -> Row:
    """GX on SQLite in a fresh process, killed after `timeout` seconds."""
    case_label = f"{SIDE['unique']}: GX on SQLite (process, at most {timeout:.0f} s)"
    env = os.environ | {"GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(BENCH)}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            gx_command(case, "sqlite"),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - started
        return Row(case_label, [seconds], result=f"slow: killed after {seconds:.0f} s, unfinished")
    result = child_result(done.returncode, done.stdout, done.stderr, reference)
    return Row(case_label, [time.perf_counter() - started], result=result)


def _title(setup: Setup, engine: str, case: Case) -> str:
    house = setup.house
    size = f"{house.rows:,} rows ({house.portfolios:,} portfolios x {house.dates:,} dates)"
    return f"{engine}: {size}; GX suite of {len(case.items)} expectations on the whole table"


def _notes(table: Table, traces: dict[str, Trace]) -> None:
    table.notes += [
        "x limit: median / the limit of the same kind (in-process / whole process).",
        "peak RSS: the process's own (os.wait4 ru_maxrss).",
        *(trace.summary(who) for who, trace in traces.items()),
    ]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    """Exit status 1 when a case concludes otherwise than postrun (known GX failures aside)."""
    args = _parser().parse_args()
    if args.repeat < 1 or args.rows < 1 or args.gx_repeat < 1:
        sys.exit("--repeat, --gx-repeat and --rows must be positive")
    import _data
    from run import machine

    folder = args.dir or Path(tempfile.mkdtemp(prefix="postrun-bench-gx-"))
    engines = [e for e in ("sqlite", "duckdb") if not getattr(args, f"skip_{e}")]
    print(machine(), flush=True)
    tables: list[Table] = []
    try:
        house = _data.build_warehouse(
            folder, args.rows, args.portfolios, sqlite="sqlite" in engines
        )
        setup = Setup(args, folder, house, write_cases(folder, house, engines))
        print(f"GX suite: {setup.cases[engines[0], 'main'].gx_suite}", flush=True)
        for engine in engines:
            tables.append(sqlite_table(setup) if engine == "sqlite" else duckdb_table(setup))
            _volumes(tables[-1], house.rows)
            print(f"\n{tables[-1].render()}", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    wrong = [row for table in tables for row in table.rows if not _concluded(row.result)]
    for row in wrong:
        print(f"disagrees with postrun: {row.case}: {row.result}", file=sys.stderr)
    return 1 if wrong else 0


def _volumes(table: Table, rows: int) -> None:
    """rows/s over the table, for the cases that read it whole and concluded."""
    for row in table.rows:
        whole = not row.case.startswith(SIDE["date"])
        row.volume = rows if whole and not row.result.startswith(("wrong:", "slow:")) else 0


def _concluded(result: str) -> bool:
    """PASS (postrun, GX agreeing), ✓ (the limit's numbers), fetched rows, a known GX failure
    ("wrong:", only ever returned by known_gx_failure and date_condition_failure), or GX killed
    unfinished ("slow:", only from gx_timeout_row)."""
    return result.startswith(("PASS", "✓", "wrong:", "slow:")) or result.endswith(" rows")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--rows", type=int, default=10_000_000, help="snapshot rows (%(default)s)")
    add("--portfolios", type=int, default=10_000, help="rows per date (%(default)s)")
    add("--repeat", type=int, default=5, help="runs per case; the median is shown (%(default)s)")
    add("--gx-repeat", type=int, default=3, help="runs per GX case, at most --repeat (%(default)s)")
    add("--dir", type=Path, help="data folder, kept and reused (else a temporary one)")
    add("--skip-sqlite", action="store_true", help="no SQLite cases (nor SQLite copy)")
    add("--skip-duckdb", action="store_true", help="no DuckDB cases")
    add(
        "--gx-timeout",
        type=float,
        default=120,
        help="seconds before GX's uniqueness process on SQLite is killed (%(default)s)",
    )
    return parser


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: DuckDB's bindings print pages of "leaked instance" warnings
    # when objects that GX and pandas still hold outlive the module at exit.
    os._exit(status)
