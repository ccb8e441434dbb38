"""Time and peak memory of json_integrity's `expected` names from a query, against result files.

    python bench/expected_names.py [--names 1000000 --names 10000000] [--files 1000]
                                   [--repeat 1] [--code DIR] [--dir DIR]

Builds a DuckDB database whose table `expected` holds `--names` file names (`run_NNNNNNNNN.json`,
every 10th name twice, and a NULL and an empty name every 1,000 rows, which count for nothing),
and a folder of `--files` small result files named after the first of them. Then it runs
`python -m runner check` in a child process on a suite with one check,
`json_integrity` over the folder with `expected: {query: "select name from expected"}`, and
prints the wall time, the check's own duration (verdict.json), the process's peak RSS (`wait4`),
and what the check found: it must find every file good and all other names missing, each once
(`--names` minus `--files`), the first missing name shown being the first name after the files.

`--code DIR` runs the postrun found in DIR (a checkout of another commit, to compare before and
after a change); by default the one of this repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import ROOT, Child, run_child

DUPLICATE_EVERY = 10
EMPTY_EVERY = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, action="append", help="expected names (repeatable)")
    parser.add_argument("--files", type=int, default=1_000, help="result files written")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (medians shown)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the postrun to run")
    parser.add_argument("--dir", type=Path, help="build the data here and keep it")
    args = parser.parse_args()
    sizes = args.names or [1_000_000, 10_000_000]
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run_all(args, sizes, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="postrun-bench-names-") as folder:
            run_all(args, sizes, Path(folder))


def run_all(args: argparse.Namespace, sizes: list[int], base: Path) -> None:
    results = build_files(base / "results", args.files)
    print(f"postrun from {args.code}; {args.files} result files")
    print(
        f"{'expected names':>15} {'rows':>11} {'wall s':>8} {'check s':>8} {'peak RSS MB':>12}"
        "  found"
    )
    wrong = 0
    for size in sizes:
        database = build_names(base / f"names_{size}.duckdb", size)
        runs = [
            run_case(base, args.code, results, database, size=size, repetition=i)
            for i in range(args.repeat)
        ]
        got = {found for _, _, found in runs}
        want = describe_expected(size, args.files)
        mark = "" if got == {want} else f"   <-- expected {want}"
        wrong += bool(mark)
        print(
            f"{size:>15,} {rows(size):>11,} {statistics.median(c.wall_s for c, _, _ in runs):>8.1f}"
            f" {statistics.median(s for _, s, _ in runs):>8.1f}"
            f" {max(c.rss_mb for c, _, _ in runs):>12.0f}  {' | '.join(sorted(got))}{mark}",
            flush=True,
        )
    sys.exit(1 if wrong else 0)


def name(i: int) -> str:
    return f"run_{i:09d}.json"


def rows(size: int) -> int:
    """The rows of the table: every name, every tenth again, a NULL and an empty name per 1,000."""
    return size + size // DUPLICATE_EVERY + 2 * (size // EMPTY_EVERY)


def build_files(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / name(i)).write_text(json.dumps({"run": i, "status": "completed"}))
    return folder


def build_names(path: Path, size: int) -> Path:
    """The table `expected`, written by DuckDB itself; kept when it is there already."""
    import duckdb

    if path.exists():
        return path
    started = time.perf_counter()
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"""
            create table expected as
            select name from (
                select i, 0 as k, format('run_{{:09d}}.json', i) as name from range({size}) t(i)
                union all
                select i, 1, format('run_{{:09d}}.json', i) from range({size}) t(i)
                where i % {DUPLICATE_EVERY} = {DUPLICATE_EVERY - 1}
                union all
                select i, 2, null from range({size}) t(i) where i % {EMPTY_EVERY} = 1
                union all
                select i, 3, '' from range({size}) t(i) where i % {EMPTY_EVERY} = 2
            ) order by i, k
            """
        )
    print(f"built {path.name} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return path


def run_case(
    base: Path, code: Path, results: Path, database: Path, *, size: int, repetition: int
) -> tuple[Child, float, str]:
    folder = Path(tempfile.mkdtemp(prefix=f"run-{size}-{repetition}-", dir=base))
    suite = folder / "suite.yml"
    suite.write_text(
        "suite: bench-expected\n"
        f"sources:\n  w: {{url: 'duckdb:///{database}'}}\n"
        "checks:\n"
        f"  - {{type: json_integrity, files: '{results}/*.json', timeout: 2h,\n"
        "      expected: {query: 'select name from expected', source: w}}\n"
    )
    command = [sys.executable, "-c", _RUN, str(code), str(suite), str(folder / "out")]
    child = run_child(command, cwd=base)
    if child.returncode not in (0, 1):
        return child, 0.0, f"exit {child.returncode}: {child.stderr[-300:]}"
    (check,) = json.loads((folder / "out" / "verdict.json").read_text())["checks"]
    return child, check["duration_s"], describe(check)


_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
from runner.cli import main
sys.argv = ["postrun", "check", sys.argv[2], "--out", sys.argv[3], "--format", "json", "-q"]
main()
"""
"""`postrun check` with the runner package of the given folder first on the path."""


def describe(check: dict[str, Any]) -> str:
    observed, failures = check["observed"], check["failures"]
    first = Path(failures[0]["path"]).name if failures else "-"
    return (
        f"{check['status']} bad {observed['bad_files']}, missing {observed['missing']:,}"
        f" of {check['expected'].get('expected_files', 0):,}, first {first}"
    )


def describe_expected(size: int, files: int) -> str:
    listed = size + size // DUPLICATE_EVERY  # non-empty rows, duplicates included
    missing = max(0, size - files)
    first = name(files) if missing else "-"
    status = "FAIL" if missing else "PASS"
    return f"{status} bad 0, missing {missing:,} of {listed:,}, first {first}"


if __name__ == "__main__":
    main()
