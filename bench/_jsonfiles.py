"""The files side of bench/run.py: read and parse loops next to postrun's json_integrity."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import simdjson
from _data import ResultFiles, truncation_point
from _measure import Child, Row, Table, interleaved, python_c, repeat_child, timed
from _sql import postrun_command


def suite_text(files: ResultFiles) -> str:
    globs = "".join(f"\n      - '{pattern}'" for pattern in files.globs)
    return f"suite: bench-files\nchecks:\n  - type: json_integrity\n    files:{globs}\n"


def _loop(parse: Callable[[bytes], Any], paths: list[Path], expected_bad: int) -> Callable[[], str]:
    def run() -> str:
        bad = 0
        for path in paths:
            data = path.read_bytes()
            try:
                parse(data)
            except ValueError:  # json.JSONDecodeError, orjson.JSONDecodeError, simdjson's
                bad += 1
        return f"{bad} bad" if bad == expected_bad else f"{bad} bad, {expected_bad} expected"

    return run


def _simdjson() -> Callable[[bytes], Any]:
    parser = simdjson.Parser()

    def parse(data: bytes) -> None:
        # Builds the tape (full validation) but no Python objects; the document proxy is
        # dropped at once so the parser can be reused.
        parser.parse(data)

    return parse


def _count_bad(paths: list[str]) -> int:
    parse, bad = _simdjson(), 0
    for path in paths:
        with open(path, "rb") as file:
            data = file.read()
        try:
            parse(data)
        except ValueError:
            bad += 1
    return bad


def _two_processes(
    pool: ProcessPoolExecutor, paths: list[Path], expected_bad: int
) -> Callable[[], str]:
    """The simdjson loop over the same paths split across 2 worker processes (started by the
    untimed first run), the lower bound for a check that parses on every core."""
    names = [str(p) for p in paths]
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]

    def run() -> str:
        bad = sum(pool.map(_count_bad, halves))
        return f"{bad} bad" if bad == expected_bad else f"{bad} bad, {expected_bad} expected"

    return run


def measure(files: ResultFiles, folder: Path, repeat: int) -> Table:
    paths, size, cut = files.paths, files.bytes, len(files.truncated)
    table = Table(
        f"FILES: {len(paths):,} result files, {size / 1e9:.2f} GB ({size / len(paths) / 1e3:.0f} KB"
        f" each), {cut} truncated; page cache warm",
        "MB",
    )
    _loop(lambda _: None, paths, 0)()  # warm the page cache: read everything once
    times, result = timed(_loop(lambda _: None, paths, 0), repeat)
    table.add(Row("limit: raw read (Path.read_bytes)", times, "query", size, result=result))
    code = (
        "import glob, pathlib; n = sum(len(pathlib.Path(p).read_bytes())"
        f" for g in {files.globs!r} for p in glob.glob(g)); print(n)"
    )
    table.add(
        repeat_child(
            "limit: python -c, glob and raw read",
            python_c(code),
            repeat,
            lambda c: "0 bad" if c.stdout.strip() == str(size) else f"read {c.stdout.strip()}",
            volume=size,
        )
    )
    for name, parse in (
        ("stdlib json.loads loop", json.loads),
        ("orjson.loads loop", orjson.loads),
        ("simdjson Parser.parse loop (no objects)", _simdjson()),
    ):
        times, result = timed(_loop(parse, paths, cut), repeat)
        table.add(Row(name, times, "query", size, result=result))
    suite = folder / f"suite_files_{len(paths)}.yml"
    suite.write_text(suite_text(files))
    postrun_run, postrun_row = postrun_api_files(suite, files)
    with ProcessPoolExecutor(2) as pool:
        # side by side, round after round: the ratio of the two is the closing table's target
        limit, postrun = interleaved([_two_processes(pool, paths, cut), postrun_run], repeat)
    table.add(Row("limit: simdjson loop, 2 processes", limit[0], "query", size, result=limit[1]))
    table.add(postrun_row(postrun[0]))
    table.add(postrun_process_files(suite, files, folder / "out" / "files", repeat))
    table.notes += [
        "x limit: median / raw read of the same kind (in-process / whole process); MB/s over all",
        "bytes; peak RSS: the process's own. result of postrun: the verdict, and ✓ when",
        "every truncated file is reported as `truncated` at the exact line and column, else ✗.",
    ]
    return table


def judge(failures: list[dict[str, Any]], count: int, files: ResultFiles) -> str:
    """✓ when exactly the cut files are bad, each listed one `truncated` at its last byte.

    verdict.json lists at most sample_limit failures (20; the CLI has no flag to raise it), with
    failure_count giving the total: then only the listed ones can be compared."""
    expected = {str(p): truncation_point(p) for p in files.truncated}
    got = {
        f["path"]: (f.get("line"), f.get("column"))
        for f in failures
        if f.get("reason") == "truncated"
    }
    others = [f for f in failures if f.get("reason") != "truncated"]
    wrong = [p for p, where in got.items() if expected.get(p) != where]
    missing = [p for p in expected if p not in got]
    complete = len(failures) >= count
    if others or wrong or count != len(expected) or (missing and complete):
        detail = [f"{Path(p).name}: got {got[p]} want {expected.get(p)}" for p in wrong[:2]]
        detail += [f"{Path(f['path']).name}: {f.get('reason')}" for f in others[:2]]
        detail += [f"{Path(p).name} not reported" for p in missing[:2] if complete]
        return f"✗ {count} bad of {len(expected)} cut; {'; '.join(detail)}"
    if missing:
        return f"FAIL ✓ {count} truncated; line:col right for the {len(got)} listed"
    return f"FAIL ✓ all {count} truncated at line:col"


def postrun_api_files(
    suite: Path, files: ResultFiles
) -> tuple[Callable[[], str], Callable[[list[float]], Row]]:
    """run_suite, with sample_limit raised to list every bad file so that each can be compared;
    and the row its times make."""
    from runner import RunOptions, load_suite, run_suite

    loaded = load_suite(suite, {})
    options = RunOptions(sample_limit=max(20, 2 * len(files.truncated)))
    verdicts: list[Any] = []

    def run() -> str:
        verdicts[:] = [run_suite(loaded, options)]
        return str(verdicts[0].status)

    def row(times: list[float]) -> Row:
        check = verdicts[0].checks[0]
        failures = [f if isinstance(f, dict) else f.model_dump() for f in check.failures]
        result = judge(failures, check.failure_count, files)
        return Row("postrun run_suite (json_integrity)", times, "query", files.bytes, result=result)

    return run, row


def postrun_process_files(suite: Path, files: ResultFiles, out: Path, repeat: int) -> Row:
    command = [*postrun_command(), "check", str(suite), "-q", "--format", "json"]
    command += ["--out", str(out)]

    def verdict(child: Child) -> str:
        if child.returncode != 1:
            return f"exit {child.returncode}: {(child.stdout + child.stderr).strip()[-300:]}"
        check = json.loads((out / "verdict.json").read_text())["checks"][0]
        return judge(check["failures"], check["failure_count"], files)

    return repeat_child("postrun check (process)", command, repeat, verdict, volume=files.bytes)
