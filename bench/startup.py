"""Start-up cost of the postrun process: median wall time and peak RSS of whole commands.

    python bench/startup.py [--runs 10] [--dir DIR] [--command "python -m runner"]...

Builds the demo batch (as `postrun demo` does, without running it) and a five-check DuckDB
suite over its warehouse, then runs each command below --runs times in a child process,
round-robin so that a burst of load elsewhere hits every command alike, after one untimed
warm-up run each. Prints, per command, the median and best wall time, the median CPU time
(user + system: less sensitive to a busy machine) and the child's peak RSS (``ru_maxrss`` from
``os.wait4``). With --command given more than once (e.g. two checkouts through PYTHONPATH),
the runs of all of them are interleaved and each gets its own table. Exits 1 if a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _measure import compile_postrun

FIVE_CHECKS = """\
suite: five
params:
  run_date: {type: date, required: true}
  db: {type: path, required: true}
sources:
  warehouse:
    url: "duckdb:///{db}"
checks:
  - type: row_count
    table: portfolio_snapshots
    where: snapshot_date = :run_date
    equals: {table: portfolios, where: is_active}
  - type: not_null
    table: portfolio_snapshots
    where: snapshot_date = :run_date
    columns: [daily_pnl, cumulative_pnl]
    key: [portfolio_id]
  - type: reference
    each: {table: portfolios, where: is_active, key: portfolio_id}
    has: {table: portfolio_snapshots, where: "snapshot_date = :run_date", key: portfolio_id}
  - type: status_consistency
    parent: {table: ingestion_runs, id: run_id, status: status}
    children: {table: processed_files, parent_id: run_id, status: status}
    success: [SUCCESS]
    failure: [FAILED]
    expect: {all_succeeded: [SUCCESS], some_failed: [PARTIAL], all_failed: [FAILED]}
  - type: sql
    query: select job_id from wallet_jobs where failed_wallets <> '[]' and error_summary is null
"""
"""A typical small CI gate: five SQL checks on one DuckDB file (the demo warehouse)."""


@dataclass
class Case:
    """One command line, and what its runs measured."""

    name: str
    args: list[str]
    codes: tuple[int, ...] = (0,)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--dir", type=Path, help="build the data here and keep it")
    parser.add_argument(
        "--command",
        action="append",
        help="how to start postrun (repeatable) [default: postrun next to this Python]",
    )
    args = parser.parse_args()
    commands = [shlex.split(c) for c in args.command or []] or [_postrun_command()]
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run_all(commands, args.dir, args.runs)
    else:
        with tempfile.TemporaryDirectory(prefix="postrun-startup-") as folder:
            run_all(commands, Path(folder), args.runs)


def run_all(commands: list[list[str]], base: Path, runs: int) -> None:
    demo, values = build_demo(base / "demo")
    tables = {shlex.join(command): make_cases(base, demo, values) for command in commands}
    compile_postrun()  # this checkout's; a --command on another compiles its own, or not
    byte_code = "postrun's compiled first"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        byte_code += " (PYTHONDONTWRITEBYTECODE is set: other modules are compiled every run)"
    print(f"{runs} runs each; cpu count {os.cpu_count()}; byte code: {byte_code}")
    for command, cases in zip(commands, tables.values(), strict=True):  # warm-up, untimed
        for case in cases:
            run_once(command, case, base, record=False)
    for _ in range(runs):
        for command, cases in zip(commands, tables.values(), strict=True):
            for case in cases:
                run_once(command, case, base, record=True)
    for command, cases in tables.items():
        print(f"\ncommand: {command}")
        print(f"{'':<34} {'median s':>8} {'best s':>7} {'cpu s':>6} {'peak RSS MB':>11}")
        for case in cases:
            print(
                f"{case.name:<34} {statistics.median(case.wall):>8.3f} {min(case.wall):>7.3f}"
                f" {statistics.median(case.cpu):>6.3f} {statistics.median(case.rss_mb):>11.0f}"
            )
    print(f"\nload average at the end: {_load_average()}")


def make_cases(base: Path, demo: str, values: dict[str, str]) -> list[Case]:
    params = [arg for name, value in values.items() for arg in ("-p", f"{name}={value}")]
    five = base / "five.yml"
    five.write_text(FIVE_CHECKS)
    five_params = ["-p", f"run_date={values['run_date']}", "-p", f"db={values['db']}"]
    check = ["check", "-q", "--out", str(base / "out")]  # no run index there: none rebuilt
    return [
        Case("postrun --help", ["--help"]),
        Case("postrun validate demo", ["validate", demo, *params]),
        Case("postrun check demo --format json", [*check, demo, *params, "--format", "json"], (1,)),
        Case("postrun check demo (all formats)", [*check, demo, *params], (1,)),
        Case(
            "postrun check five --format json",
            [*check, str(five), *five_params, "--format", "json"],
            (1,),
        ),
        Case("postrun check five (all formats)", [*check, str(five), *five_params], (1,)),
    ]


def build_demo(folder: Path) -> tuple[str, dict[str, str]]:
    """The demo suite and its params, built in a child process: a parent that imported DuckDB
    would hand its own peak RSS down to every child it starts (Linux keeps ``ru_maxrss`` across
    fork and exec)."""
    script = (
        "import json, sys; from runner.demo import build_demo, find_demo_suite; "
        "batch = build_demo(sys.argv[1]); "
        "print(json.dumps([str(find_demo_suite()), batch.params]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(folder)], check=True, capture_output=True, text=True
    )
    suite, params = json.loads(out.stdout)
    return suite, params


def run_once(command: list[str], case: Case, base: Path, *, record: bool) -> None:
    """Run ``case`` in a child process; its own peak RSS and CPU time come from wait4()."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [*command, *case.args], cwd=base, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code not in case.codes:
            err.seek(0)
            stderr = err.read().decode(errors="replace")
            sys.exit(f"{shlex.join(command)}: {case.name}: exit {code}, not {case.codes}\n{stderr}")
    if record:
        case.wall.append(wall)
        case.cpu.append(usage.ru_utime + usage.ru_stime)
        case.rss_mb.append(usage.ru_maxrss / 1024)


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _postrun_command() -> list[str]:
    script = Path(sys.executable).parent / "postrun"
    found = str(script) if script.is_file() else shutil.which("postrun")
    return [found] if found else [sys.executable, "-m", "runner"]


if __name__ == "__main__":
    main()
