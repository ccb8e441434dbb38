"""bench/run.py --scale: postrun's check phase (run_suite) vs rows and vs files, per unit of work,
so that linearity (or its absence) shows."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import _data
import _jsonfiles
import _sql
from _measure import timed

ROWS = (1_000_000, 10_000_000, 50_000_000)
FILES = (2_000, 20_000, 100_000)


def tables(args: argparse.Namespace, folder: Path) -> list[str]:
    repeat = min(args.repeat, 3)
    return [rows_table(args, folder, repeat), files_table(folder, repeat)]


def rows_table(args: argparse.Namespace, folder: Path, repeat: int) -> str:
    head = (
        f"{'rows':>12} {'limit s':>8} {'postrun s':>10} {'ns/row':>7} {'x limit':>8}"
        f" {'run-date s':>11}  result"
    )
    lines = [f"SCALE: postrun run_suite on DuckDB vs rows (median of {repeat})", head]
    lines.append("-" * len(head))
    for rows in ROWS:
        house = _data.build_warehouse(folder / "scale", rows, args.portfolios, sqlite=False)
        suites = _sql.write_suites(folder / "scale", house)
        limit = _sql.limit_rows(house, "duckdb", "full", repeat)[0]
        full = _sql.postrun_api(suites["duckdb", "full"], house, "full", repeat, "DuckDB")
        day = _sql.postrun_api(suites["duckdb", "run date"], house, "run date", repeat, "DuckDB")
        results = {limit.result, full.result, day.result}
        lines.append(
            f"{house.rows:>12,} {limit.median:8.3f} {full.median:10.3f}"
            f" {full.median / house.rows * 1e9:7.1f} {full.median / limit.median:8.1f}"
            f" {day.median:11.3f}  {' / '.join(sorted(results))}"
        )
        _progress(lines[-1])
    lines.append("  run-date s: the same suite scoped to one snapshot_date (constant work).")
    return "\n".join(lines)


def files_table(folder: Path, repeat: int) -> str:
    head = (
        f"{'files':>8} {'MB':>8} {'read s':>7} {'postrun s':>10} {'MB/s':>7} {'µs/file':>8}"
        f" {'x read':>7}  result"
    )
    lines = [f"SCALE: postrun run_suite json_integrity vs files (median of {repeat})", head]
    lines.append("-" * len(head))
    for count in FILES:
        files = _data.build_result_files(folder / "results", count)
        paths = files.paths
        for path in paths:  # warm the page cache
            path.read_bytes()
        read = statistics.median(_read_times(paths, repeat))
        suite = folder / f"suite_files_{len(paths)}.yml"
        suite.write_text(_jsonfiles.suite_text(files))
        run, make_row = _jsonfiles.postrun_api_files(suite, files)
        row = make_row(timed(run, repeat)[0])
        mb = files.bytes / 1e6
        lines.append(
            f"{len(paths):>8,} {mb:8.0f} {read:7.2f} {row.median:10.2f} {mb / row.median:7.0f}"
            f" {row.median / len(paths) * 1e6:8.0f} {row.median / read:7.1f}  {row.result}"
        )
        _progress(lines[-1])
    return "\n".join(lines)


def _read_times(paths: list[Path], repeat: int) -> list[float]:
    import time

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for path in paths:
            path.read_bytes()
        times.append(time.perf_counter() - started)
    return times


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
