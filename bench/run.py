"""postrun measured side by side with the alternatives, on the same data, in one run.

    python bench/run.py                                  # 10M rows, 20,000 files (~1 GB), 5 repeats
    python bench/run.py --rows 1000000 --files 2000      # a quick look
    python bench/run.py --dir /tmp/bench --skip-gx       # keep (and reuse) the data; no GX
    python bench/run.py --scale --skip-sql --skip-files  # only postrun vs rows and vs files
    python bench/run.py --spark --skip-sql --skip-files  # the suite on local Spark (Connect)

SQL: portfolio_snapshots (portfolios x dates, one date a day) and portfolios in DuckDB, copied to
SQLite for GX. A 5-check suite (rows for the run date = portfolios, daily_pnl and total_pnl not
null, distinct portfolios = portfolios, portfolios >= 1) over the whole table and scoped to the
run date, run by: one hand-written query (the physical limit), postrun (run_suite, and the whole
`postrun check` process), pandera on a polars frame, Great Expectations on pandas and on SQLite.

Files: result files of ~50 KB, 1% cut mid-write: raw read (the limit), json / orjson / simdjson
parse loops, postrun json_integrity, with a check that every cut file is reported truncated at
its exact line and column.

Prints tables of medians, the ratio to the limit, rows/s or MB/s and the peak RSS of processes.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import _data
import _sql
import _targets
from _measure import Child, Row, Table, compile_postrun, python_c, repeat_child, timed


def main() -> int:
    """Exit status 1 when a case concluded something other than what the data holds, or when a
    ratio is over its target (the TARGETS table)."""
    args = _parser().parse_args()
    if args.repeat < 1 or args.rows < 1 or args.files < 1:
        sys.exit("--repeat, --rows and --files must be positive")
    folder = args.dir or Path(tempfile.mkdtemp(prefix="postrun-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    compile_postrun()
    print(machine(), flush=True)
    tables: list[Table] = []
    try:
        if not args.skip_sql:
            for table in sql_tables(args, folder):
                tables.append(table)
                print(f"\n{table.render()}", flush=True)
            tables.append(startup_table(args, folder))
            print(f"\n{tables[-1].render()}", flush=True)
        if args.spark:
            import _spark

            house = _data.build_warehouse(folder, args.rows, args.portfolios, sqlite=False)
            for scope in _spark.SCOPES:
                tables.append(_spark.table(house, folder, args.repeat, scope))
                print(f"\n{tables[-1].render()}", flush=True)
        if not args.skip_files:
            import _jsonfiles

            files = _data.build_result_files(folder / "results", args.files)
            tables.append(_jsonfiles.measure(files, folder, args.repeat))
            print(f"\n{tables[-1].render()}", flush=True)
        if args.scale:
            import _scale

            for table in _scale.tables(args, folder):
                print(f"\n{table}", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    wrong = [row for table in tables for row in table.rows if not _concluded(row.result)]
    for row in wrong:
        print(f"unexpected result: {row.case}: {row.result}", file=sys.stderr)
    found = _targets.targets(tables)
    print(f"\n{_targets.render(found)}", flush=True)
    missed = [t for t in found if not t.met]
    for target in missed:
        print(f"over target: {target.figure}: {target.ratio:.2f}x", file=sys.stderr)
    return 1 if wrong or missed else 0


def startup_table(args: argparse.Namespace, folder: Path) -> Table:
    """postrun's commands that touch no data, next to a process that only imports duckdb."""
    suite = folder / "suite_startup.yml"
    suite.write_text(_sql.suite_text("duckdb:///nowhere.duckdb", "full"))
    table = Table(f"START-UP: --explain and validate of a 5-check suite ({suite.name})", "rows")

    def ok(child: Child) -> str:
        return "PASS" if child.returncode == 0 else f"exit {child.returncode}"

    case = "limit: python -c 'import duckdb'"
    table.add(repeat_child(case, python_c("import duckdb"), args.repeat, ok))
    # What no postrun can go under while its statements are SQLAlchemy constructs and its
    # suites and verdicts pydantic models: importing the libraries it is built on.
    floor = "import duckdb, sqlalchemy, pydantic"
    table.add(repeat_child(f"floor: python -c '{floor}'", python_c(floor), args.repeat, ok))
    postrun = _sql.postrun_command()
    explain = [*postrun, "check", str(suite), "--explain", "-p", "run_date=2025-11-06"]
    table.add(repeat_child("postrun check --explain", explain, args.repeat, ok))
    table.add(repeat_child("postrun validate", [*postrun, "validate", str(suite)], args.repeat, ok))
    return table


def _concluded(result: str) -> bool:
    """Whether a case concluded what the data holds: the suite passes; every cut file is bad;
    `postrun history` lists every stored run."""
    return (
        result == "PASS"
        or result.startswith("FAIL ✓")
        or result.endswith((" bad", " rows", " runs"))
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--rows", type=int, default=10_000_000, help="snapshot rows (%(default)s)")
    add("--portfolios", type=int, default=10_000, help="rows per date (%(default)s)")
    add("--files", type=int, default=20_000, help="result files, rounded up to 1000s (%(default)s)")
    add("--repeat", type=int, default=5, help="runs per case; the median is shown (%(default)s)")
    add("--gx-repeat", type=int, default=3, help="runs per GX case, at most --repeat (%(default)s)")
    add("--dir", type=Path, help="data folder, kept and reused (else a temporary one)")
    add("--skip-sql", action="store_true", help="no database cases")
    add("--skip-files", action="store_true", help="no result-file cases")
    add("--skip-gx", action="store_true", help="no Great Expectations cases (nor SQLite copy)")
    add("--skip-pandera", action="store_true", help="no pandera cases")
    add("--skip-history", action="store_true", help="no history store cases")
    add("--spark", action="store_true", help="the suite on local Spark (the 'spark' extra)")
    add("--scale", action="store_true", help="postrun vs 1M/10M/50M rows and 2k/20k/100k files")
    return parser


def machine() -> str:
    """Cores, memory and versions, so that numbers from two machines can be told apart."""
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    packages = [
        ("postrun", "postrun"),
        ("duckdb", "duckdb"),
        ("GX", "great-expectations"),
        ("pandera", "pandera"),
        ("polars", "polars"),
        ("pandas", "pandas"),
        ("pyarrow", "pyarrow"),
        ("orjson", "orjson"),
        ("pysimdjson", "pysimdjson"),
        ("SQLAlchemy", "sqlalchemy"),
    ]
    versions = [f"{label} {_version(dist)}" for label, dist in packages]
    return "\n".join(
        [
            f"machine: {os.cpu_count()} cores ({cpu}), {memory} RAM, {platform.system()}"
            f" {platform.release()}",
            f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}",
            ", ".join(versions),
        ]
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _has(dist: str) -> bool:
    return _version(dist) != "not installed"


def sql_tables(args: argparse.Namespace, folder: Path) -> list[Table]:
    gx = not args.skip_gx and _has("great-expectations")
    house = _data.build_warehouse(folder, args.rows, args.portfolios, sqlite=gx)
    suites = _sql.write_suites(folder, house)
    setup = Setup(args, folder, house, gx)
    size = f"{house.rows:,} rows ({house.portfolios:,} portfolios x {house.dates:,} dates)"
    tables = []
    for scope in (*_sql.SCOPES, _sql.FAILING):
        what = f"snapshot_date = {house.run_date}" if scope == "run date" else "whole table"
        if scope == _sql.FAILING:
            what += ", fx_rate not_null failing (a sample of bad rows fetched)"
        table = Table(f"SQL on DuckDB: {size}; snapshot checks on {what}", "rows")
        duckdb_cases(table, setup, suites["duckdb", scope], scope)
        tables.append(table)
        if scope == _sql.FAILING:
            break
        if house.sqlite is not None:
            table = Table(f"SQL on SQLite (for GX): {size}; snapshot checks on {what}", "rows")
            sqlite_cases(table, setup, suites["sqlite", scope], scope)
            tables.append(table)
    if not args.skip_history:
        import _history

        suite = suites["duckdb", "full"]
        tables.append(_history.write_table(suite, house.run_date.isoformat(), folder, args.repeat))
        tables.append(_history.query_table(folder, args.repeat))
    return tables


def _notes(table: Table) -> None:
    table.notes += [
        "x limit: median / the limit of the same kind (in-process / whole process); rows/s over",
        "the rows the snapshot checks cover. peak RSS: the process's own (os.wait4 ru_maxrss).",
    ]


@dataclass(frozen=True)
class Setup:
    args: argparse.Namespace
    folder: Path
    house: _data.Warehouse
    gx: bool


def duckdb_cases(table: Table, setup: Setup, suite: Path, scope: str) -> None:
    args, folder, house = setup.args, setup.folder, setup.house
    _progress(table.title)
    runs = [_sql.postrun_run(suite, house)]
    if scope == _sql.FAILING:
        # The same scan passing: what the failure sample adds, and nothing else.
        tolerated = suite.with_name(f"{suite.stem}_tolerated.yml")
        limit = "columns: [fx_rate]\n    max_nulls: 1000000000"
        tolerated.write_text(suite.read_text().replace("columns: [fx_rate]", limit))
        runs.append(_sql.postrun_run(tolerated, house))
    limits, postrun = _sql.limit_rows(house, "duckdb", scope, args.repeat, runs)
    for row in limits:
        table.add(row)
    params = [f"run_date={house.run_date}"]
    volume = table.rows[0].volume
    table.add(_sql.postrun_row(house, scope, "DuckDB", *postrun[0]))
    out = folder / "out" / suite.stem
    table.add(_sql.postrun_process(suite, params, out, args.repeat, volume=volume, label="DuckDB"))
    scoped = scope == "run date"
    if scope == _sql.FAILING:
        table.add(_sql.postrun_row(house, scope, _targets.TOLERATED, *postrun[1]))
        _notes(table)
        return
    if not args.skip_pandera and _has("pandera"):
        import _frames

        kind = _frames.backend()
        loaded: list[tuple[object, object]] = []

        def load() -> str:
            loaded[:] = [_frames.load(str(house.duckdb), house.run_date, scoped=scoped, kind=kind)]
            return f"{len(loaded[0][0]):,} rows"  # type: ignore[arg-type]

        times, result = timed(load, args.repeat)
        table.add(Row(f"pandera: fetch to {kind} via Arrow", times, "query", volume, result=result))
        frames = loaded[0]
        times, result = timed(
            lambda: _frames.validate(*frames, house.run_date, kind=kind), args.repeat
        )
        table.add(Row(f"pandera ({kind} backend): validate", times, "query", volume, result=result))
        del loaded[:], frames
    if setup.gx:
        gx_pandas_cases(table, args, house, scope)
    _notes(table)


def gx_pandas_cases(
    table: Table, args: argparse.Namespace, house: _data.Warehouse, scope: str
) -> None:
    import _gx

    scoped, repeat = scope != "full", min(args.gx_repeat, args.repeat)
    volume = table.rows[0].volume
    frames: list[object] = []

    def load() -> str:
        frames[:] = _gx.load_pandas(str(house.duckdb), house.run_date, scoped=scoped)
        return f"{len(frames[0]):,} rows"  # type: ignore[arg-type]

    times, result = timed(load, args.repeat)
    table.add(Row("GX: fetch to pandas via Arrow", times, "query", volume, result=result))
    validations = _gx.pandas_validations(
        _gx.context(), frames[0], frames[1], house.run_date, scoped=scoped
    )
    times, result = timed(lambda: _gx.run(validations), repeat)
    table.add(Row("GX on pandas: validate", times, "query", volume, result=result))
    del frames[:]
    validations.clear()
    code = _gx.process_code("pandas", str(house.duckdb), house.run_date, house.portfolios, scope)
    table.add(
        repeat_child(
            "GX on pandas (process: import, fetch, validate)",
            python_c(code),
            repeat,
            _gx_judge,
            volume=volume,
        )
    )


def sqlite_cases(table: Table, setup: Setup, suite: Path, scope: str) -> None:
    import _gx

    args, folder, house = setup.args, setup.folder, setup.house
    _progress(table.title)
    assert house.sqlite is not None
    beside = [_sql.postrun_run(suite, house)]
    limits, [(times, result)] = _sql.limit_rows(house, "sqlite", scope, args.repeat, beside)
    for row in limits:
        table.add(row)
    volume = table.rows[0].volume
    table.add(_sql.postrun_row(house, scope, "SQLite", times, result))
    out = folder / "out" / suite.stem
    params = [f"run_date={house.run_date}"]
    table.add(_sql.postrun_process(suite, params, out, args.repeat, volume=volume, label="SQLite"))
    repeat = min(args.gx_repeat, args.repeat)
    validations = _gx.sqlite_validations(
        _gx.context(), str(house.sqlite), house.run_date, house.portfolios, scoped=scope != "full"
    )
    times, result = timed(lambda: _gx.run(validations), repeat)
    table.add(Row("GX on SQLite: validate", times, "query", volume, result=result))
    code = _gx.process_code("sqlite", str(house.sqlite), house.run_date, house.portfolios, scope)
    table.add(
        repeat_child(
            "GX on SQLite (process: import, validate)",
            python_c(code),
            repeat,
            _gx_judge,
            volume=volume,
        )
    )
    _notes(table)


def _gx_judge(child: object) -> str:
    from _measure import Child

    assert isinstance(child, Child)
    lines = child.stdout.strip().splitlines()
    if child.returncode == 0 and lines and lines[-1] == "PASS":
        return "PASS"
    return f"exit {child.returncode}: {(child.stdout + child.stderr).strip()[-300:]}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: DuckDB's bindings print pages of "leaked instance" warnings
    # when objects that GX and pandas still hold outlive the module at exit.
    os._exit(status)
