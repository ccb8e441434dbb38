"""Data for bench/run.py: the portfolio warehouse (DuckDB, copied to SQLite) and result files.

Everything is deterministic and kept in the data folder: a second run with the same sizes
reuses what is there (a DuckDB table of the right size, a SQLite copy whose bench_meta row
matches, result-file folders that hold their `.done<operations>` marker).
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import orjson

RUN_DATE = date(2025, 11, 6)
"""The last snapshot date: the nightly run being checked."""
FOLDER_FILES = 1000
"""Result files per folder (results/d000, d001, …); file counts are rounded up to this."""
TRUNCATE_EVERY = 100
"""One result file in this many is cut mid-write (1%)."""
OPERATIONS = 110
"""Operations per result file: about 50 KB of indented JSON."""


@dataclass(frozen=True)
class Warehouse:
    duckdb: Path
    sqlite: Path | None
    rows: int
    portfolios: int
    dates: int
    run_date: date = RUN_DATE


def build_warehouse(folder: Path, rows: int, portfolios: int, *, sqlite: bool) -> Warehouse:
    """portfolios (one row each) and portfolio_snapshots (portfolios x dates, one date a day)."""
    folder.mkdir(parents=True, exist_ok=True)
    dates = max(1, rows // portfolios)
    path = folder / f"portfolio_{dates * portfolios}.duckdb"
    if not _duckdb_ready(path, dates * portfolios, portfolios):
        _log(f"building {path.name}: {portfolios:,} portfolios x {dates:,} dates")
        started = time.perf_counter()
        path.unlink(missing_ok=True)
        with duckdb.connect(str(path)) as con:
            _fill_duckdb(con, portfolios, dates)
        _log(f"  {time.perf_counter() - started:.1f}s")
    lite = None
    if sqlite:
        lite = path.with_suffix(".sqlite")
        if not _sqlite_ready(lite, dates * portfolios, portfolios):
            _log(f"copying to {lite.name} (sqlite3 executemany; slow for large tables)")
            started = time.perf_counter()
            _copy_to_sqlite(path, lite, dates * portfolios, portfolios)
            _log(f"  {time.perf_counter() - started:.1f}s")
    return Warehouse(path, lite, dates * portfolios, portfolios, dates)


def _fill_duckdb(con: duckdb.DuckDBPyConnection, portfolios: int, dates: int) -> None:
    first = RUN_DATE - timedelta(days=dates - 1)
    con.execute(
        """
        create table portfolios as
        select i::integer as portfolio_id,
               'portfolio ' || i as name,
               ['EUR', 'USD', 'GBP', 'CHF'][1 + i % 4] as base_currency,
               true as is_active
        from range(?) t(i)
        """,
        [portfolios],
    )
    # Row i is portfolio i % P on day i // P: a nightly append, sorted by date. fx_rate has a
    # few NULLs (a column no check looks at); the P&L columns have none, so the suite passes.
    con.execute(
        """
        create table portfolio_snapshots as
        select (i % $p)::integer as portfolio_id,
               ($first::date + (i // $p)::integer) as snapshot_date,
               round(100000 + (hash(i) % 10000000)::bigint / 10.0, 2)::double as market_value,
               round(((hash(i * 7) % 200001)::bigint - 100000) / 100.0, 2)::double as daily_pnl,
               round(((hash(i * 13) % 2000001)::bigint - 1000000) / 10.0, 2)::double as total_pnl,
               case when i % 9973 = 0 then null else 1 + (hash(i) % 1000)::bigint / 10000.0 end
                   as fx_rate
        from range($n) t(i)
        """,
        {"p": portfolios, "first": first, "n": portfolios * dates},
    )


def _duckdb_ready(path: Path, rows: int, portfolios: int) -> bool:
    if not path.exists():
        return False
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            got = con.execute(
                "select (select count(*) from portfolio_snapshots),"
                " (select count(*) from portfolios)"
            ).fetchone()
    except duckdb.Error:
        return False
    return got == (rows, portfolios)


def _sqlite_ready(path: Path, rows: int, portfolios: int) -> bool:
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            got = con.execute("select rows, portfolios from bench_meta").fetchone()
    except sqlite3.Error:
        return False
    return got == (rows, portfolios)


def _copy_to_sqlite(source: Path, target: Path, rows: int, portfolios: int) -> None:
    """The same tables in SQLite (dates as ISO text), with an index on snapshot_date as a
    warehouse table keyed by date would have. DuckDB's sqlite extension would be faster but is
    downloaded at run time, so rows go through sqlite3.executemany in Arrow-sized batches."""
    target.unlink(missing_ok=True)
    lite = sqlite3.connect(target)
    lite.executescript(
        """
        pragma journal_mode = off;
        pragma synchronous = off;
        create table portfolios (portfolio_id integer primary key, name text,
                                 base_currency text, is_active integer);
        create table portfolio_snapshots (portfolio_id integer, snapshot_date text,
            market_value real, daily_pnl real, total_pnl real, fx_rate real);
        """
    )
    with duckdb.connect(str(source), read_only=True) as con:
        for table, columns in (
            ("portfolios", "portfolio_id, name, base_currency, is_active::integer"),
            (
                "portfolio_snapshots",
                "portfolio_id, strftime(snapshot_date, '%Y-%m-%d'), market_value, daily_pnl,"
                " total_pnl, fx_rate",
            ),
        ):
            result = con.execute(f"select {columns} from {table}")
            marks = ", ".join("?" * len(result.description or ()))
            insert = f"insert into {table} values ({marks})"
            while batch := result.fetchmany(200_000):
                lite.executemany(insert, batch)
    lite.execute("create index snapshots_by_date on portfolio_snapshots (snapshot_date)")
    lite.execute("create table bench_meta (rows integer, portfolios integer)")
    lite.execute("insert into bench_meta values (?, ?)", (rows, portfolios))
    lite.commit()
    lite.close()


@dataclass(frozen=True)
class ResultFiles:
    root: Path
    folders: list[Path]
    paths: list[Path]
    truncated: list[Path]
    bytes: int

    @property
    def globs(self) -> list[str]:
        return [str(self.root / "*" / "*.json")]


def build_result_files(root: Path, files: int) -> ResultFiles:
    """`files` (rounded up to whole folders of 1000) result files of ~50 KB, 1 in 100 cut
    mid-write, in root/n<files>/d<folder>/run_<index>.json."""
    count = max(1, -(-files // FOLDER_FILES))
    root = root / f"n{count * FOLDER_FILES}"  # one tree per size, so that one glob covers it
    folders = [root / f"d{k:03d}" for k in range(count)]
    for k, folder in enumerate(folders):
        if not (folder / f".done{OPERATIONS}").exists():
            if k == 0 or k % 10 == 9 or k == count - 1:
                _log(f"writing result files: folder {k + 1} of {count}")
            _write_folder(folder, k)
    paths = sorted(p for folder in folders for p in folder.glob("*.json"))
    truncated = [p for p in paths if _is_truncated(int(p.stem.split("_")[1]))]
    return ResultFiles(root, folders, paths, truncated, sum(p.stat().st_size for p in paths))


def _write_folder(folder: Path, k: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(k * FOLDER_FILES, (k + 1) * FOLDER_FILES):
        rng = random.Random(i)
        data = orjson.dumps(_result(i, rng), option=orjson.OPT_INDENT_2) + b"\n"
        if _is_truncated(i):
            data = data[: rng.randrange(len(data) // 10, len(data) * 9 // 10)]
        (folder / f"run_{i:07d}.json").write_bytes(data)
    (folder / f".done{OPERATIONS}").write_text("")


def _is_truncated(i: int) -> bool:
    return i % TRUNCATE_EVERY == TRUNCATE_EVERY // 2


_KINDS = ("extract", "validate", "price", "aggregate", "load")
_STATUSES = ("SUCCESS",) * 18 + ("RETRIED", "SKIPPED")


def _result(i: int, rng: random.Random) -> dict[str, object]:
    """One pipeline run's result file: ids, status, timings, and a list of operations."""
    started = 1_762_387_200 + i * 3
    operations = []
    for n in range(OPERATIONS):
        rows_in = rng.randrange(1_000, 2_000_000)
        operations.append(
            {
                "op_id": f"run-{i:07d}-op-{n:03d}",
                "kind": _KINDS[n % len(_KINDS)],
                "status": rng.choice(_STATUSES),
                "portfolio_id": rng.randrange(10_000),
                "source": f"s3://prices/{2025 - n % 3}/{rng.randrange(1, 13):02d}/part-{n}.parquet",
                "rows_in": rows_in,
                "rows_out": rows_in - rng.randrange(0, 50),
                "duration_ms": round(rng.uniform(0.5, 9_000), 3),
                "metrics": {
                    "market_value": round(rng.uniform(-1e7, 1e8), 2),
                    "daily_pnl": round(rng.gauss(0, 25_000), 2),
                    "fx": {"EUR": 1.0, "USD": round(rng.uniform(1.05, 1.12), 5)},
                },
                "warnings": ["stale price"] if rng.random() < 0.05 else [],
            }
        )
    return {
        "schema_version": 3,
        "run_id": f"run-{i:07d}",
        "batch_id": f"batch-{i // 500:05d}",
        "pipeline": _KINDS[i % len(_KINDS)] + "-portfolio-valuation",
        "status": "SUCCESS",
        "started_at": started,
        "finished_at": started + rng.randrange(30, 1800),
        "host": f"worker-{i % 16:02d}",
        "totals": {"operations": OPERATIONS, "rows_out": sum(o["rows_out"] for o in operations)},
        "operations": operations,
    }


def truncation_point(path: Path) -> tuple[int, int]:
    """(line, column) just after the last byte written to a cut file, 1-based."""
    data = path.read_bytes().rstrip(b"\0")
    return data.count(b"\n") + 1, len(data) - data.rfind(b"\n")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
