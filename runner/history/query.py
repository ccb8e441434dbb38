"""What analysts ask of the history: the runs of a suite over a period (filtered by history key
and check), each check's statuses and numbers over them, and per check its flips, its last
failure and since when it has been failing. Read from the store; shown by ``postrun history``."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from runner.history.store import HistoryStore, checks, observations, runs

PROBLEMS = ("FAIL", "ERROR")


@dataclass
class CheckRun:
    """One check in one run, as the store holds it."""

    name: str
    type: str
    status: str
    error_category: str | None
    failure_count: int
    duration_s: float
    message: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """One stored run and its checks, in suite order."""

    run_id: str
    started_at: str
    finished_at: str
    duration_s: float
    verdict: str
    exit_code: int
    history_key: str
    params: dict[str, Any]
    counts: dict[str, int]
    checks: list[CheckRun] = field(default_factory=list)


@dataclass
class Failure:
    """A run a check failed (or errored) in."""

    run_id: str
    started_at: str
    status: str
    message: str


@dataclass
class CheckSummary:
    """One check over the runs shown: how it went, how often it flipped, its last failure and,
    when its latest run failed, the run its failing streak began in."""

    name: str
    type: str
    statuses: dict[str, int]
    flips: int
    last_failure: Failure | None
    failing_since: Failure | None
    failing_runs: int
    metrics: list[str]


@dataclass
class History:
    """The runs of one suite over a period, oldest first, and a summary per check."""

    suite: str
    store: str
    since: str
    runs: list[Run]
    checks: list[CheckSummary]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def load_history(
    store: HistoryStore,
    suite: str,
    *,
    since: timedelta,
    now: datetime,
    keys: Sequence[str] = (),
    check: str | None = None,
) -> History:
    """The runs of ``suite`` started within ``since`` before ``now`` whose history key holds
    every ``k=v`` of ``keys``; only check ``check`` when given."""
    start = (now - since).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    chosen = sa.select(runs.c.id).where(runs.c.suite == suite, runs.c.started_at >= start)
    for key in keys:
        chosen = chosen.where(_key_holds(key))
    run_rows = store.fetch(
        sa.select(runs).where(runs.c.id.in_(chosen)).order_by(runs.c.started_at, runs.c.id)
    )
    check_stmt = sa.select(checks).where(checks.c.run.in_(chosen))
    value_stmt = sa.select(observations).where(observations.c.run.in_(chosen))
    if check is not None:
        check_stmt = check_stmt.where(checks.c.name == check)
        value_stmt = value_stmt.where(observations.c.check_name == check)
    values: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    for row in store.fetch(value_stmt):
        values[(row.run, row.check_name)][row.key] = row.value
    by_run: dict[int, list[CheckRun]] = defaultdict(list)
    for row in store.fetch(check_stmt.order_by(checks.c.run, checks.c.position)):
        by_run[row.run].append(
            CheckRun(
                row.name,
                row.type,
                row.status,
                row.error_category,
                row.failure_count,
                row.duration_s,
                row.message,
                values.get((row.run, row.name), {}),
            )
        )
    loaded = [_run(row, by_run.get(row.id, [])) for row in run_rows]
    return History(suite, store.shown, start, loaded, summarize(loaded))


def summarize(loaded: Sequence[Run]) -> list[CheckSummary]:
    """Per check, in the order of its latest run: statuses, flips, last failure, streak."""
    seen: dict[str, list[tuple[Run, CheckRun]]] = {}
    for run in reversed(loaded):
        for check in run.checks:
            seen.setdefault(check.name, [])
    for run in loaded:
        for check in run.checks:
            seen[check.name].append((run, check))
    return [_summary(name, pairs) for name, pairs in seen.items()]


def _summary(name: str, pairs: list[tuple[Run, CheckRun]]) -> CheckSummary:
    ran = [(run, check) for run, check in pairs if check.status != "SKIP"]
    statuses = [check.status for _, check in ran]
    counts = {s: statuses.count(s) for s in ("PASS", "WARN", "FAIL", "ERROR")}
    counts["SKIP"] = len(pairs) - len(ran)
    flips = sum(1 for a, b in itertools.pairwise(statuses) if a != b)
    failures = [_failure(run, check) for run, check in ran if check.status in PROBLEMS]
    streak = 0
    for status in reversed(statuses):
        if status not in PROBLEMS:
            break
        streak += 1
    since = _failure(*ran[len(ran) - streak]) if streak else None
    metrics = sorted({key for _, check in pairs for key in check.values})
    return CheckSummary(
        name=name,
        type=pairs[-1][1].type,
        statuses=counts,
        flips=flips,
        last_failure=failures[-1] if failures else None,
        failing_since=since,
        failing_runs=streak,
        metrics=metrics,
    )


def _failure(run: Run, check: CheckRun) -> Failure:
    return Failure(run.run_id, run.started_at, check.status, check.message)


def _run(row: sa.Row[Any], checks_of: list[CheckRun]) -> Run:
    return Run(
        run_id=row.run_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        verdict=row.verdict,
        exit_code=row.exit_code,
        history_key=row.history_key,
        params=json.loads(row.params),
        counts=json.loads(row.counts),
        checks=checks_of,
    )


def _key_holds(pair: str) -> sa.ColumnElement[bool]:
    """``history_key`` holds ``k=v`` as one of its comma-separated parts (or is it)."""
    key = runs.c.history_key
    return sa.or_(
        key == pair,
        key.startswith(pair + ",", autoescape=True),
        key.endswith("," + pair, autoescape=True),
        key.contains("," + pair + ",", autoescape=True),
    )
