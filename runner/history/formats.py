"""`postrun history` as text: a table per check for a terminal, JSON for machines (every run and
its checks), CSV for spreadsheets (one row per run and check)."""

from __future__ import annotations

import csv
import io
import json

import orjson

from runner.history.query import History
from runner.render.timestamps import format_timestamp

MESSAGE_WIDTH = 80


def render_table(history: History) -> str:
    """What a person reads in a terminal: the period, then one line per check."""
    lines = [
        f"suite {history.suite}: {len(history.runs)} runs since "
        f"{format_timestamp(history.since)} (store {history.store})"
    ]
    if not history.runs:
        return lines[0]
    last = history.runs[-1]
    lines.append(f"latest run {last.run_id} ({format_timestamp(last.started_at)}): {last.verdict}")
    width = max(len("check"), *(len(s.name) for s in history.checks)) if history.checks else 5
    lines.append(
        f"{'check':<{width}}  {'PASS':>5} {'WARN':>5} {'FAIL':>5} {'ERROR':>5} {'flips':>5}  "
        "failing / last failure"
    )
    for s in history.checks:
        counts = " ".join(f"{s.statuses[k]:>5}" for k in ("PASS", "WARN", "FAIL", "ERROR"))
        note = ""
        if s.failing_since is not None:
            note = f"failing for {s.failing_runs} runs, since {s.failing_since.run_id}"
        elif s.last_failure is not None:
            failure = s.last_failure
            note = f"last {failure.status} {failure.run_id}: {_cut(failure.message)}"
        lines.append(f"{s.name:<{width}}  {counts} {s.flips:>5}  {note}".rstrip())
    return "\n".join(lines)


def render_json(history: History) -> str:
    """One line of JSON (orjson serializes the dataclasses as they are: no copy first)."""
    return orjson.dumps(history).decode()


def render_csv(history: History) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "run_id",
            "started_at",
            "history_key",
            "verdict",
            "check",
            "type",
            "status",
            "error_category",
            "failure_count",
            "duration_s",
            "message",
            "values",
        ]
    )
    for run in history.runs:
        for check in run.checks:
            writer.writerow(
                [
                    run.run_id,
                    run.started_at,
                    run.history_key,
                    run.verdict,
                    check.name,
                    check.type,
                    check.status,
                    check.error_category or "",
                    check.failure_count,
                    check.duration_s,
                    check.message,
                    json.dumps(check.values, sort_keys=True),
                ]
            )
    return out.getvalue()


def _cut(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MESSAGE_WIDTH else flat[: MESSAGE_WIDTH - 1] + "…"
