"""Render time and size of verdict.html for large suites: python bench/render.py [--checks 1000]."""

from __future__ import annotations

import argparse
import random
import statistics
import time

from runner.render.html import render_html
from runner.results import (
    CheckError,
    CheckResult,
    ErrorCategory,
    ExitCode,
    Status,
    SuiteInfo,
    ToolInfo,
    Verdict,
    count_statuses,
    worst_status,
)

ROUNDS = 5
FAIL_SHARE = 0.10
ERROR_SHARE = 0.02
FAILURES_PER_CHECK = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, action="append", help="checks per verdict")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    print(f"{'checks':>7}  {'median ms':>9}  {'min ms':>7}  {'HTML KB':>8}")
    for n in args.checks or [1000]:
        verdict = build_verdict(n)
        times, size = measure(verdict, args.rounds)
        median, best = statistics.median(times) * 1000, min(times) * 1000
        print(f"{n:>7}  {median:>9.1f}  {best:>7.1f}  {size / 1024:>8.0f}")


def measure(verdict: Verdict, rounds: int) -> tuple[list[float], int]:
    """Wall time of each render (the first one includes loading the template) and the size."""
    times, size = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        size = len(render_html(verdict))
        times.append(time.perf_counter() - start)
    return times, size


def build_verdict(n: int) -> Verdict:
    """A realistic mix: 10% FAIL with 20 failures each, 2% ERROR with 2 KB details, rest PASS."""
    rng = random.Random(n)
    checks = [_check(i, _status(i, n), rng) for i in range(n)]
    statuses = [c.status for c in checks]
    verdict = worst_status(statuses)
    return Verdict(
        tool=ToolInfo(version="0.1.0"),
        suite=SuiteInfo(name="bench", path="checks/bench.yml", sha256="0" * 64),
        run_id="20261123T101500Z-bench",
        params={"run_date": "2025-11-06", "db": "/data/warehouse.duckdb"},
        started_at="2026-11-23T10:15:00Z",
        finished_at="2026-11-23T10:16:12Z",
        duration_s=72.0,
        verdict=verdict,
        exit_code=ExitCode.for_status(verdict),
        counts=count_statuses(statuses),
        checks=checks,
    )


def _status(i: int, n: int) -> Status:
    fails, errors = round(n * FAIL_SHARE), round(n * ERROR_SHARE)
    step = max(1, n // max(1, fails + errors))
    slot = i // step if i % step == 0 else -1
    if 0 <= slot < fails + errors:
        return Status.FAIL if slot % 6 else Status.ERROR  # about 1 ERROR per 5 FAIL
    return Status.PASS


def _check(i: int, status: Status, rng: random.Random) -> CheckResult:
    kind = ("json_integrity", "status_consistency", "not_null")[i % 3]
    base = CheckResult(
        name=f"{kind.replace('_', ' ')} of table_{i:04d}",
        type=kind,
        source="warehouse",
        severity="error",
        status=status,
        message=f"table_{i:04d} holds {rng.randint(1, 10**6):,} rows where at least 1 expected",
        duration_s=rng.uniform(0.001, 2.0),
    )
    if status is Status.FAIL:
        failures = [_failure(kind, j, rng) for j in range(FAILURES_PER_CHECK)]
        total = rng.choice([FAILURES_PER_CHECK, 57, 1_204])
        message = f"{total} of {rng.randint(total, 10**5)} items in table_{i:04d} are bad"
        update = {"message": message, "failures": failures, "failure_count": total}
        return base.model_copy(update=update | {"observed": {"bad": total}})
    if status is Status.ERROR:
        detail = "".join(f"  File 'runner/x.py', line {k}, in f{k}\n" for k in range(60))[:2048]
        message = f"query on table_{i:04d} failed: column 'x' does not exist"
        error = CheckError(
            category=ErrorCategory.QUERY, retryable=False, message=message, detail=detail
        )
        return base.model_copy(update={"error": error, "message": error.message})
    return base


def _failure(kind: str, j: int, rng: random.Random) -> dict[str, object]:
    if kind == "json_integrity":
        return {
            "path": f"/data/results/run_{j:05d}.json",
            "reason": "truncated",
            "message": f"truncated at line {j} column 7 (byte {j * 97}): text ends in an object",
            "line": j,
            "column": 7,
            "offset": j * 97,
        }
    if kind == "status_consistency":
        return {
            "id": f"{rng.getrandbits(128):032x}",
            "status": "processing",
            "outcome": "all_succeeded",
            "allowed": ["completed"],
            "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
        }
    return {"key": {"portfolio_id": f"PF-{j:04d}"}, "null_columns": ["daily_pnl"]}


if __name__ == "__main__":
    main()
