"""One huge value from the database: peak memory, report sizes and printed bytes of a whole run.

    python bench/big_values.py [--mb 100] [--runs 1] [--pg URL] [--command "python -m runner"]...

A `sql` check whose query returns one row holding a text of --mb MiB (DuckDB `repeat`, SQLite
`printf('%.*c')`, PostgreSQL `repeat` when --pg or $POSTRUN_TEST_PG_URL names a server) fails
with that row as its sample. Each command runs `check -v` on it in a child process; the table
gives the exit code, the wall time, the child's peak RSS (``ru_maxrss`` from ``os.wait4``), the
size of each report and of what was printed. A "driver alone" row per database sends the
statement postrun sends (the query wrapped to count its rows) through SQLAlchemy and does
nothing else: the memory the database and its driver need, which postrun cannot save.
--command (repeatable) says how to start postrun, e.g. an older checkout through PYTHONPATH
(`git archive REV runner | tar -x -C DIR`); children start in a temporary folder, so that a
checkout in the working directory does not shadow it. Exits 1 if a postrun run ends with
another code than 1 (FAIL).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPORTS = ("verdict.json", "verdict.html", "junit.xml", "summary.md")
MIB = 2**20
QUERIES = {
    "duckdb": "select repeat('x', {n}) as big, 1 as id",
    "sqlite": "select printf('%.*c', {n}, 'x') as big, 1 as id",
    "postgresql": "select repeat('x', {n}) as big, 1 as id",
}
SENT = "SELECT *, count(*) OVER () AS postrun_total FROM ({query}) AS q LIMIT 20"
"""The statement postrun sends for the check (as `postrun check --explain` prints it)."""
DRIVER_ALONE = """\
import sqlalchemy as sa, sys
engine = sa.create_engine(sys.argv[1])
with engine.connect() as conn:
    rows = conn.execute(sa.text(sys.argv[2])).mappings().all()
assert len(rows[0]["big"]) == int(sys.argv[3])
"""


@dataclass
class Row:
    command: str
    case: str
    codes: list[int] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    printed: int | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the value, MiB")
    parser.add_argument("--runs", type=int, default=1, help="runs per command and database")
    parser.add_argument(
        "--pg", default=os.environ.get("POSTRUN_TEST_PG_URL"), help="PostgreSQL URL"
    )
    parser.add_argument(
        "--command",
        action="append",
        help='how to start postrun (repeatable) [default: "python -m runner"]',
    )
    args = parser.parse_args()
    commands = args.command or [f"{shlex.quote(sys.executable)} -m runner"]
    size = args.mb * MIB
    with tempfile.TemporaryDirectory(prefix="postrun-big-values-") as folder:
        root = Path(folder)
        urls = _databases(root, args.pg)
        rows: list[Row] = []
        for kind, url in urls.items():
            query = QUERIES[kind].format(n=size)
            rows.append(_driver_alone(kind, url, SENT.format(query=query), size, args.runs))
            suite = _suite(root, kind, url, query)
            for command in commands:
                rows.append(_postrun(command, kind, suite, args.runs))
    print(_table(rows, args.mb))
    failed = [row for row in rows if row.command != "driver alone" and set(row.codes) != {1}]
    sys.exit(1 if failed else 0)


def _databases(root: Path, pg: str | None) -> dict[str, str]:
    import sqlite3

    import duckdb

    duckdb.connect(str(root / "big.duckdb")).close()
    sqlite3.connect(root / "big.sqlite").close()
    urls = {
        "duckdb": f"duckdb:///{root / 'big.duckdb'}",
        "sqlite": f"sqlite:///{root / 'big.sqlite'}",
    }
    if pg:
        urls["postgresql"] = pg
    return urls


def _suite(root: Path, kind: str, url: str, query: str) -> Path:
    path = root / f"{kind}.yml"
    path.write_text(
        f"suite: big-{kind}\n"
        f'sources: {{d: {{url: "{url}"}}}}\n'
        f'checks:\n  - {{type: sql, name: huge, query: "{query}"}}\n'
    )
    return path


def _driver_alone(kind: str, url: str, query: str, size: int, runs: int) -> Row:
    row = Row("driver alone", kind)
    for _ in range(runs):
        args = [sys.executable, "-c", DRIVER_ALONE, url, query, str(size)]
        code, wall, rss = _measure(args, cwd=Path(tempfile.gettempdir()))
        row.codes.append(code)
        row.wall.append(wall)
        row.rss_mb.append(rss)
    return row


def _postrun(command: str, kind: str, suite: Path, runs: int) -> Row:
    row = Row(command, kind)
    for run in range(runs):
        out = suite.parent / f"out-{kind}-{abs(hash(command))}-{run}"
        printed = suite.parent / f"printed-{kind}-{run}.txt"
        args = [*shlex.split(command), "check", str(suite), "--out", str(out), "-v"]
        code, wall, rss = _measure(args, cwd=suite.parent, stdout=printed)
        row.codes.append(code)
        row.wall.append(wall)
        row.rss_mb.append(rss)
        row.sizes = {name: (out / name).stat().st_size for name in REPORTS if (out / name).exists()}
        row.printed = printed.stat().st_size
    return row


def _measure(args: list[str], cwd: Path, stdout: Path | None = None) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS (MB) of one child process, started in ``cwd`` (not
    in a checkout, whose runner `python -m runner` would take before PYTHONPATH's)."""
    sink = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
    started = time.monotonic()
    try:
        process = subprocess.Popen(args, cwd=cwd, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdout is not None:
            sink.close()  # type: ignore[union-attr]
    return process.returncode, time.monotonic() - started, usage.ru_maxrss / 1024


def _table(rows: list[Row], mb: int) -> str:
    width = max(len(_label(row.command)) for row in rows)
    head = (
        f"{'command':<{width}} {'db':<10} {'exit':>4} {'wall s':>7} {'peak RSS MB':>11}"
        + "".join(f" {name:>13}" for name in REPORTS)
        + f" {'printed':>11}"
    )
    lines = [f"one {mb} MiB text in a failing sql check's sample (medians)", head, "-" * len(head)]
    for row in rows:
        sizes = "".join(f" {_bytes(row.sizes.get(name)):>13}" for name in REPORTS)
        codes = ",".join(sorted({str(c) for c in row.codes}))
        wall, rss = statistics.median(row.wall), statistics.median(row.rss_mb)
        lines.append(
            f"{_label(row.command):<{width}} {row.case:<10} {codes:>4} {wall:7.2f} {rss:11.0f}"
            f"{sizes} {_bytes(row.printed):>11}"
        )
    return "\n".join(lines)


def _label(command: str) -> str:
    return command.replace(shlex.quote(sys.executable), "python")


def _bytes(count: int | None) -> str:
    if count is None:
        return "-"
    if count >= MIB:
        return f"{count / MIB:.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count} B"


if __name__ == "__main__":
    main()
