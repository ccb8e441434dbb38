"""What analysts ask of the history: the runs of a suite over a period (filtered by history key
and check), each check's statuses and numbers over them, and per check its flips, its last
failure and since when it has been failing. Read from the store; shown by ``postrun history``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from runner.history.store import HistoryStore, checks, observations, runs

PROBLEMS = ("FAIL", "ERROR")


@dataclass(slots=True)
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


def load_history(
    store: HistoryStore,
    suite: str,
    *,
    since: timedelta,
    now: datetime,
    keys: Sequence[str] = (),
    check: str | None = None,
    detail: bool = True,
) -> History:
    """The runs of ``suite`` started within ``since`` before ``now`` whose history key holds
    every ``k=v`` of ``keys``; only check ``check`` when given. Without ``detail`` the runs
    carry no checks and only the per-check summary is built, from plain (name, type, status)
    tuples: what the table shows, and 10,000 runs of 20 checks are 200,000 rows."""
    start = (now - since).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    chosen = sa.select(runs.c.id).where(runs.c.suite == suite, runs.c.started_at >= start)
    for key in keys:
        chosen = chosen.where(_key_holds(key))
    columns = [runs.c.id, runs.c.run_id, runs.c.started_at, runs.c.finished_at]
    columns += [runs.c.duration_s, runs.c.verdict, runs.c.exit_code, runs.c.history_key]
    if detail:
        columns += [runs.c.params, runs.c.counts]
    run_rows = store.tuples(
        sa.select(*columns).where(runs.c.id.in_(chosen)).order_by(runs.c.started_at, runs.c.id)
    )
    loaded = [_run(row, detail) for row in run_rows]
    ids = [row[0] for row in run_rows]
    wanted = [checks.c.run, checks.c.name, checks.c.type, checks.c.status]
    if detail:
        wanted += [checks.c.error_category, checks.c.failure_count, checks.c.duration_s]
        wanted += [checks.c.message]
    stmt = sa.select(*wanted).where(checks.c.run.in_(chosen))
    if check is not None:
        stmt = stmt.where(checks.c.name == check)
    rows: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in store.tuples(stmt.order_by(checks.c.run, checks.c.position)):
        rows[row[0]].append(row)
    ordered = [rows.get(row_id, []) for row_id in ids]
    tallies = _tally(ordered)
    if detail:
        values = _values(store, chosen, check)
        for run, found in zip(loaded, ordered, strict=True):
            run.checks = [
                CheckRun(r[1], r[2], r[3], r[4], r[5], r[6], r[7], values.get((r[0], r[1]), {}))
                for r in found
            ]
        metrics = _metric_names(values)
        messages = {(r[0], r[1]): r[7] for found in ordered for r in found if r[3] in PROBLEMS}
    else:
        metrics = {}
        failures = {pair for name, t in tallies.items() for pair in t.wanted(name, ids)}
        messages = _messages(store, failures)
    summaries = [
        t.summary(name, loaded, ids, messages, metrics.get(name, [])) for name, t in tallies.items()
    ]
    return History(suite, store.shown, start, loaded, summaries)


@dataclass(slots=True)
class _Tally:
    """One check over the runs: counts, flips, its last failure and current streak (indexes
    into the runs)."""

    kind: str
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    flips: int = 0
    streak: int = 0
    previous: str = ""
    last: int | None = None
    first: int | None = None
    status_at: dict[int, str] = field(default_factory=dict)

    def wanted(self, name: str, ids: Sequence[int]) -> list[tuple[int, str]]:
        """(run row, check) of the failures the summary shows."""
        found = [self.last] + ([self.first] if self.streak else [])
        return [(ids[i], name) for i in found if i is not None]

    def summary(
        self,
        name: str,
        loaded: Sequence[Run],
        ids: Sequence[int],
        messages: Mapping[tuple[int, str], str],
        metrics: list[str],
    ) -> CheckSummary:
        def failure(index: int | None) -> Failure | None:
            if index is None:
                return None
            run = loaded[index]
            text = messages.get((ids[index], name), "")
            return Failure(run.run_id, run.started_at, self.status_at[index], text)

        return CheckSummary(
            name=name,
            type=self.kind,
            statuses={k: self.counts.get(k, 0) for k in ("PASS", "WARN", "FAIL", "ERROR", "SKIP")},
            flips=self.flips,
            last_failure=failure(self.last),
            failing_since=failure(self.first) if self.streak else None,
            failing_runs=self.streak,
            metrics=metrics,
        )


def _tally(ordered: Sequence[list[tuple[Any, ...]]]) -> dict[str, _Tally]:
    """Per check, in the order of its latest run, one pass over (run, name, type, status, …)
    rows given run by run, oldest first."""
    latest = [row[1] for found in reversed(ordered) for row in found]
    tallies = {name: _Tally("") for name in dict.fromkeys(latest)}
    for index, found in enumerate(ordered):
        for row in found:
            tally, status = tallies[row[1]], row[3]
            tally.kind = row[2]
            tally.counts[status] += 1
            if status == "SKIP":
                continue
            if tally.previous and status != tally.previous:
                tally.flips += 1
            tally.previous = status
            if status in PROBLEMS:
                tally.last = index
                tally.status_at[index] = status
                tally.streak += 1
                if tally.streak == 1:
                    tally.first = index
            else:
                tally.streak = 0
    return tallies


def _metric_names(values: Mapping[tuple[int, str], dict[str, float]]) -> dict[str, list[str]]:
    names: dict[str, set[str]] = defaultdict(set)
    for (_, check), found in values.items():
        names[check].update(found)
    return {check: sorted(keys) for check, keys in names.items()}


def _messages(store: HistoryStore, wanted: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The messages of (run row, check) pairs: the few failures a summary shows."""
    if not wanted:
        return {}
    stmt = sa.select(checks.c.run, checks.c.name, checks.c.message).where(
        checks.c.run.in_(sorted({run for run, _ in wanted}))
    )
    return {
        (run, name): message for run, name, message in store.tuples(stmt) if (run, name) in wanted
    }


def _values(
    store: HistoryStore, chosen: sa.Select[Any], check: str | None
) -> dict[tuple[int, str], dict[str, float]]:
    stmt = sa.select(
        observations.c.run, observations.c.check_name, observations.c.key, observations.c.value
    ).where(observations.c.run.in_(chosen))
    if check is not None:
        stmt = stmt.where(observations.c.check_name == check)
    values: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    for run, name, key, value in store.tuples(stmt):
        values[(run, name)][key] = value
    return values


def _run(row: tuple[Any, ...], detail: bool) -> Run:
    """A run from (id, run_id, started_at, finished_at, duration_s, verdict, exit_code,
    history_key, params, counts); its params and counts are parsed only for ``detail``."""
    params, counts = (orjson.loads(row[8]), orjson.loads(row[9])) if detail else ({}, {})
    return Run(row[1], row[2], row[3], row[4], row[5], row[6], row[7], params, counts)


def _key_holds(pair: str) -> sa.ColumnElement[bool]:
    """``history_key`` holds ``k=v`` as one of its comma-separated parts (or is it)."""
    key = runs.c.history_key
    return sa.or_(
        key == pair,
        key.startswith(pair + ",", autoescape=True),
        key.endswith("," + pair, autoescape=True),
        key.contains("," + pair + ",", autoescape=True),
    )
