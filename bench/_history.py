"""The history side of bench/run.py (and bench/history.py): what recording a run costs a
`postrun check` of the 10M-row suite, and how fast `postrun history` answers over 10,000 stored
runs of a 20-check suite."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _sql
from _measure import Child, Row, Table, repeat_child, timed

CHECKS = 20
RUNS = 10_000


def write_table(suite: Path, run_date: str, folder: Path, repeat: int) -> Table:
    """run_suite with the history off and with the SQLite store; the recording step alone
    (open the store, add the run, read its checks' last 20 runs back, close); the whole
    `postrun check` process both ways."""
    from runner import RunOptions, load_suite, run_suite
    from runner.engine import _recorded
    from runner.history.location import history_key
    from runner.history.store import HistoryStore

    loaded = load_suite(suite, {"run_date": run_date})
    store = folder / "bench-history.sqlite"
    store.unlink(missing_ok=True)
    url = f"sqlite:///{store}"
    table = Table(f"HISTORY: recording a run of the 10M-row suite ({suite.name})", "rows")

    def judged(history: str) -> str:
        return run_suite(loaded, RunOptions(history=history)).verdict.value

    for case, history in (("run_suite, --history off", "off"), ("run_suite, SQLite store", url)):
        seconds, result = timed(lambda h=history: judged(h), repeat)
        table.add(Row(f"postrun {case}", seconds, result=result))
    verdict = run_suite(loaded, RunOptions(history="off"))
    key = history_key(loaded.name, loaded.params, loaded.history_key)

    runs = iter(range(1_000_000))

    def record() -> str:
        another = verdict.model_copy(update={"run_id": f"{verdict.run_id}-{next(runs)}"})
        done = _recorded(another, HistoryStore(url), key, str)
        assert done.history is not None
        return "PASS" if done.history.problem is None else f"FAIL {done.history.problem}"

    seconds, result = timed(record, max(repeat, 20))
    table.add(Row("recording alone (open, write, read back, close)", seconds, result=result))
    postrun = _sql.postrun_command()
    out = folder / "bench-history-out"

    def ok(child: Child) -> str:
        return "PASS" if child.returncode == 0 else f"exit {child.returncode}"

    for case, history in (("--history off", "off"), ("SQLite store", url)):
        command = [*postrun, "check", str(suite), "-p", f"run_date={run_date}", "-q"]
        command += ["--out", str(out), "--history", history]
        table.add(repeat_child(f"postrun check process, {case}", command, repeat, ok))
    shutil.rmtree(out, ignore_errors=True)
    return table


def query_table(folder: Path, repeat: int) -> Table:
    """`postrun history` over RUNS runs of a CHECKS-check suite, spread over the last 25 days."""
    from runner.history.query import load_history
    from runner.history.store import HistoryStore

    store_path = folder / f"bench-history-{RUNS}x{CHECKS}.sqlite"
    url = f"sqlite:///{store_path}"
    if not store_path.exists():
        fill_store(url)
    table = Table(f"HISTORY: postrun history over {RUNS:,} runs of a {CHECKS}-check suite", "rows")

    for detail in (False, True):

        def loaded(detail: bool = detail) -> str:
            store = HistoryStore(url)
            since = timedelta(days=30)
            found = load_history(store, "bench-history", since=since, now=_now(), detail=detail)
            store.close()
            return f"{len(found.runs)} runs"

        seconds, result = timed(loaded, repeat)
        what = "every check of every run" if detail else "the per-check summary"
        table.add(Row(f"load_history in-process, {what}", seconds, volume=RUNS, result=result))
    postrun = _sql.postrun_command()
    for fmt in ("table", "json", "html"):
        command = [*postrun, "history", "bench-history", "--history", url, "--format", fmt]
        if fmt == "html":
            command += ["--out", str(folder / "bench-history.html")]

        def judge(child: Child) -> str:
            return f"{RUNS} runs" if child.returncode == 0 else f"exit {child.returncode}"

        table.add(repeat_child(f"postrun history --format {fmt}", command, repeat, judge))
    return table


def fill_store(url: str) -> None:
    """RUNS verdicts of a CHECKS-check suite through the store's own record(), one in 50 runs
    failing one check."""
    from runner.history.store import HistoryStore
    from runner.results import CheckResult, Status, SuiteInfo, ToolInfo, Verdict

    rng = random.Random(4)
    store = HistoryStore(url)
    start = _now() - timedelta(days=25)
    for n in range(RUNS):
        moment = start + timedelta(seconds=n * 25 * 86400 / RUNS)
        failing = n % 50 == 0
        checks = [
            CheckResult(
                name=f"check {i:02d}",
                type="row_count" if i % 2 else "not_null",
                source="warehouse",
                severity="error",
                status=Status.FAIL if failing and i == 3 else Status.PASS,
                message=f"check {i} looked at {100_000 + rng.randint(-500, 500)} rows",
                observed={"count": 100_000 + rng.randint(-500, 500)}
                if i % 2
                else {"nulls": {"daily_pnl": 0, "total_pnl": rng.randint(0, 3)}},
                duration_s=0.01,
            )
            for i in range(CHECKS)
        ]
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        verdict = Verdict(
            tool=ToolInfo(version="0.1.0"),
            suite=SuiteInfo(name="bench-history", path="bench.yml", sha256="0" * 64),
            run_id=f"{moment:%Y%m%dT%H%M%SZ}-{n:06x}",
            params={"run_date": moment.date().isoformat()},
            started_at=stamp,
            finished_at=stamp,
            duration_s=1.0,
            verdict=Status.FAIL if failing else Status.PASS,
            exit_code=1 if failing else 0,
            counts={"PASS": CHECKS - failing, "FAIL": int(failing)},
            checks=checks,
        )
        store.record(verdict, "bench-history")
    store.close()


def _now() -> datetime:
    return datetime.now(UTC)
