"""What a verdict shows of its checks' past: per check its last statuses and a number (for a
strip and a sparkline) and, for a failing check, the run its failing streak began in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from runner.history.store import HistoryStore, checks, observations, runs
from runner.results import CheckPast, FailingSince, Status

if TYPE_CHECKING:
    from runner.results import CheckResult, Verdict

RECENT = 20
"""Runs a verdict shows of each check (this one included)."""
_PROBLEMS = (Status.FAIL.value, Status.ERROR.value)
_DERIVED = ("median", "deviations", "change_pct")


def recent_past(store: HistoryStore, verdict: Verdict, key: str) -> dict[str, CheckPast]:
    """Per check of ``verdict``: its last ``RECENT`` runs under ``key`` (earlier runs from the
    store, then this one) and, when it fails now, since when. Raises ``HistoryError``."""
    earlier = store.fetch(
        sa.select(runs.c.id, runs.c.run_id, runs.c.started_at)
        .where(
            runs.c.suite == verdict.suite.name,
            runs.c.history_key == key,
            runs.c.run_id != verdict.run_id,
            runs.c.started_at <= verdict.started_at,
        )
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(RECENT - 1)
    )
    earlier = list(reversed(earlier))
    ids = [row.id for row in earlier]
    statuses: dict[tuple[int, str], str] = {}
    values: dict[tuple[int, str, str], float] = {}
    if ids:
        for row in store.fetch(
            sa.select(checks.c.run, checks.c.name, checks.c.status).where(checks.c.run.in_(ids))
        ):
            statuses[(row.run, row.name)] = row.status
        for row in store.fetch(sa.select(observations).where(observations.c.run.in_(ids))):
            values[(row.run, row.check_name, row.key)] = row.value
    past: dict[str, CheckPast] = {}
    for result in verdict.checks:
        kept = [
            (row, statuses[(row.id, result.name)])
            for row in earlier
            if (row.id, result.name) in statuses
        ]
        metric = main_metric(result)
        numbers = [values.get((row.id, result.name, metric or "")) for row, _ in kept]
        streak = [(row.run_id, row.started_at, status) for row, status in kept]
        past[result.name] = CheckPast(
            run_ids=[row.run_id for row, _ in kept] + [verdict.run_id],
            statuses=[Status(status) for _, status in kept] + [result.status],
            metric=metric,
            values=[*numbers, _number(result, metric)] if metric is not None else [],
            failing_since=_since(store, verdict, key, result, streak),
        )
    return past


def main_metric(result: CheckResult) -> str | None:
    """The number a check's sparkline follows: its first numeric observation."""
    for name, value in result.observed.items():
        if name in _DERIVED or isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return name
    return None


def _number(result: CheckResult, metric: str) -> float | None:
    value = result.observed.get(metric)
    return float(value) if isinstance(value, int | float) else None


def _since(
    store: HistoryStore,
    verdict: Verdict,
    key: str,
    result: CheckResult,
    earlier: list[tuple[str, str, str]],
) -> FailingSince | None:
    if result.status.value not in _PROBLEMS:
        return None
    first = (verdict.run_id, verdict.started_at)
    streak = 1
    for run_id, started_at, status in reversed(earlier):
        if status not in _PROBLEMS:
            return FailingSince(run_id=first[0], started_at=first[1], runs=streak)
        first, streak = (run_id, started_at), streak + 1
    if len(earlier) < RECENT - 1:
        return FailingSince(run_id=first[0], started_at=first[1], runs=streak)
    return _since_long_ago(store, verdict, key, result.name)


def _since_long_ago(store: HistoryStore, verdict: Verdict, key: str, check: str) -> FailingSince:
    """A streak longer than the recent runs: counted in the store from the last run the check
    did not fail in."""
    mine = sa.and_(
        runs.c.suite == verdict.suite.name,
        runs.c.history_key == key,
        runs.c.run_id != verdict.run_id,
        runs.c.started_at <= verdict.started_at,
    )
    good = (
        sa.select(sa.func.max(runs.c.started_at))
        .join(checks, checks.c.run == runs.c.id)
        .where(mine, checks.c.name == check, checks.c.status.not_in(_PROBLEMS))
        .scalar_subquery()
    )
    failing = (
        sa.select(runs.c.run_id, runs.c.started_at)
        .join(checks, checks.c.run == runs.c.id)
        .where(
            mine,
            checks.c.name == check,
            checks.c.status.in_(_PROBLEMS),
            sa.or_(good.is_(None), runs.c.started_at > good),
        )
        .order_by(runs.c.started_at, runs.c.id)
    )
    rows = store.fetch(failing)
    return FailingSince(run_id=rows[0].run_id, started_at=rows[0].started_at, runs=len(rows) + 1)
