"""Timing for bench/run.py: medians of repeats, child processes with their own peak RSS, tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
MB = 1_000_000


def compile_postrun() -> None:
    """Compile postrun's modules to byte code, as pip does when it installs a package: with
    PYTHONDONTWRITEBYTECODE set, a process would otherwise compile every module it imports from
    source, each time (a source checkout's start-up, not an installed postrun's)."""
    import compileall

    compileall.compile_dir(ROOT / "runner", quiet=1)


@dataclass
class Row:
    """One measured case: its times, what it processed and what it concluded."""

    case: str
    seconds: list[float]
    limit: str | None = None
    """Which limit of the table the median is compared with: "query", "process" or None."""
    volume: float = 0.0
    """Rows or bytes processed, for the rate column."""
    rss_mb: float | None = None
    result: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Table:
    title: str
    unit: str
    """"rows" or "MB": the rate column."""
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        _progress(f"  {row.case}: {row.median:.3f}s {row.result}")
        return row

    def limit(self, kind: str) -> float | None:
        for row in self.rows:
            if row.case.startswith("limit") and row.limit == kind:
                return row.median
        return None

    def render(self) -> str:
        rate = "rows/s" if self.unit == "rows" else "MB/s"
        head = (
            f"{'case':<50} {'n':>2} {'median s':>9} {'x limit':>8} {rate:>10}"
            f" {'peak RSS MB':>11}  result"
        )
        lines = [self.title, head, "-" * len(head)]
        for row in self.rows:
            limit = self.limit(row.limit) if row.limit else None
            ratio = f"{row.median / limit:8.1f}" if limit else f"{'':>8}"
            volume = row.volume / MB if self.unit == "MB" else row.volume
            speed = _rate(volume / row.median) if row.volume and row.median > 0 else ""
            rss = f"{row.rss_mb:11.0f}" if row.rss_mb is not None else f"{'':>11}"
            lines.append(
                f"{row.case:<50} {len(row.seconds):>2} {row.median:9.3f} {ratio} {speed:>10}"
                f" {rss}  {row.result}"
            )
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def _rate(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:.2f}G"
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def timed(fn: Callable[[], str], repeat: int) -> tuple[list[float], str]:
    """Run fn once untimed (imports, first connect, caches), then `repeat` times; the times and
    the result it returned last."""
    fn()
    times, result = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def interleaved(fns: Sequence[Callable[[], str]], repeat: int) -> list[tuple[list[float], str]]:
    """``timed`` for several functions measured side by side: each run once untimed, then in
    turn, round after round, so that a machine that slows down or speeds up while they run (a
    shared machine does, by 2x from one minute to the next) weighs on all of them alike. A
    ratio of two of them is then a ratio of the same moments."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    results = [""] * len(fns)
    for _ in range(repeat):
        for index, fn in enumerate(fns):
            started = time.perf_counter()
            results[index] = fn()
            times[index].append(time.perf_counter() - started)
    return list(zip(times, results, strict=True))


@dataclass
class Child:
    wall_s: float
    rss_mb: float
    returncode: int
    stdout: str
    stderr: str


_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(json.loads(sys.argv[1]))
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[2], "w") as out:
    json.dump([wall, usage.ru_maxrss, code], out)
"""
"""Runs a command and writes its wall time, peak RSS (KiB) and exit code to a file.

A child started straight from this process would report this process's peak RSS when that is
larger: subprocess starts children with vfork, so the child's exec records the memory it left,
which is ours (Linux keeps the larger of it and the new program's peak in ru_maxrss). The
launcher is a small process, so its child's ru_maxrss is the command's own."""


def run_child(command: Sequence[str], cwd: Path | None = None) -> Child:
    """Run a command to its end; its wall time and its own peak RSS (os.wait4's ru_maxrss)."""
    # this tree's runner first: the one measured is the one next to the bench, installed or not
    path = os.pathsep.join([str(ROOT), str(BENCH)])
    env = os.environ | {"GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": path}
    with tempfile.TemporaryDirectory(prefix="postrun-bench-child-") as folder:
        out, err, usage = (Path(folder) / name for name in ("out", "err", "usage"))
        with out.open("wb") as stdout, err.open("wb") as stderr:
            subprocess.run(
                [sys.executable, "-c", _LAUNCHER, json.dumps(list(command)), str(usage)],
                cwd=cwd,
                env=env,
                stdout=stdout,
                stderr=stderr,
                check=True,
            )
        wall, rss_kib, code = json.loads(usage.read_text())
        return Child(
            wall,
            rss_kib / 1024,
            code,
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


def repeat_child(
    case: str,
    command: Sequence[str],
    repeat: int,
    judge: Callable[[Child], str],
    *,
    volume: float = 0.0,
    cwd: Path | None = None,
) -> Row:
    """A process case: median wall time of `repeat` runs, the largest peak RSS among them."""
    children = [run_child(command, cwd) for _ in range(repeat)]
    results = {judge(c) for c in children}
    return Row(
        case,
        [c.wall_s for c in children],
        "process",
        volume,
        max(c.rss_mb for c in children),
        " / ".join(sorted(results)),
    )


def python_c(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
