"""summary.md: a compact GitHub-flavoured Markdown summary for CI job pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runner.causes import causes_of
from runner.render.timestamps import format_timestamp
from runner.results import Cause, CheckResult, Status, Verdict
from runner.values import tagged_number

EVIDENCE_ITEMS = 3
TABLE_ROWS = 100
"""Rows per table: GitHub caps a step summary at 1 MiB, so a huge suite is cut with a count."""
MESSAGE_LIMIT = 500
EVIDENCE_LIMIT = 200

EMOJI = {
    Status.PASS: "✅",
    Status.WARN: "⚠️",
    Status.FAIL: "❌",
    Status.ERROR: "💥",
    Status.SKIP: "⏭️",
}
_PROBLEM_ORDER = (Status.ERROR, Status.FAIL, Status.WARN)
# Characters Markdown (or GitHub's inline HTML) would interpret; data must show them literally.
_SPECIAL = re.compile(r"([\\`*_\[\]#|~$])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def render_markdown(verdict: Verdict) -> bytes:
    """The verdict as Markdown: heading, counts, problems with evidence, the rest folded."""
    problems = [r for s in _PROBLEM_ORDER for r in verdict.checks if r.status is s]
    others = [r for r in verdict.checks if r.status in (Status.PASS, Status.SKIP)]
    lines = [*_header(verdict), ""]
    causes = causes_of(verdict.checks, verdict.causes)
    pointers: dict[str, int] = {}
    if any(len(c.checks) > 1 for c in causes):  # else each cause is one check of the table
        lines += _causes(causes)
        pointers = {
            name: number
            for number, cause in enumerate(causes, 1)
            if cause.category is not None and len(cause.checks) > 1
            for name in cause.checks
        }
    table = _problem_table(problems, pointers, verdict.failing_for) if problems else []
    lines += table or ["All checks passed."]
    lines += _others_block(others)
    return ("\n".join(lines) + "\n").encode()


def _header(verdict: Verdict) -> list[str]:
    status = verdict.verdict
    counts = " · ".join(
        f"{EMOJI[s]} {verdict.counts[s.value]} {s.value}"
        for s in sorted(Status, key=lambda s: -s.rank)
        if verdict.counts.get(s.value)
    )
    facts = [
        f"suite {escape(verdict.suite.name)}",
        f"run {escape(verdict.run_id)}",
        f"started {escape(format_timestamp(verdict.started_at))}",
        f"took {verdict.duration_s:.2f} s",
    ]
    lines = [
        f"## {EMOJI[status]} postrun {status.value}: {escape(verdict.suite.name)}",
        "",
        f"**{len(verdict.checks)} checks:** {counts or 'none'}",
        " · ".join(facts),
    ]
    if verdict.params:
        params = ", ".join(f"{k}={_scalar(v)}" for k, v in verdict.params.items())
        lines.append(f"params: {escape(params)}")
    if verdict.rerun_of is not None:
        again = ", ".join(verdict.rerun_of.checks) or "nothing"
        lines.append(f"rerun of run {escape(verdict.rerun_of.run_id)}: ran again {escape(again)}")
    if verdict.history is not None and verdict.history.problem:
        problem = _clip(verdict.history.problem, MESSAGE_LIMIT)
        lines.append(f"warning: run not recorded in the history: {escape(problem)}")
    # A trailing backslash is a hard line break: the facts stay on separate lines.
    return [lines[0], lines[1], *(line + "\\" for line in lines[2:-1]), lines[-1]]


def _causes(causes: list[Cause]) -> list[str]:
    """Each cause once: its whole message, what it did, the checks it explains."""
    lines = [f"**{len(causes)} {'cause' if len(causes) == 1 else 'causes'}:**", ""]
    for number, cause in enumerate(causes[:TABLE_ROWS], 1):
        lines.append(
            f"{number}. {EMOJI[cause.status]} **{escape(cause.title)}** → {escape(cause.effect)}"
        )
        if cause.category is not None:
            retry = "retryable" if cause.retryable else "not retryable"
            lines.append(f"   - error: {cause.category.value}, {retry}")
        if cause.evidence:
            lines.append(f"   - shared: {escape(', '.join(cause.evidence))}")
        lines.append(f"   - checks: {escape('; '.join(cause.checks))}")
    more = len(causes) - TABLE_ROWS
    if more > 0:
        lines.append(f"… {more} more causes not shown: see verdict.html or verdict.json.")
    return [*lines, ""]


def _problem_table(
    results: list[CheckResult], pointers: dict[str, int], streak: Callable[[str], str]
) -> list[str]:
    """A row per check; one an ERROR cause above shows in full points to it."""
    rows = [
        f"| {EMOJI[r.status]} {r.status.value} | {escape(r.name)} | "
        + (
            f"see cause {pointers[r.name]} above"
            if r.name in pointers
            else _details(r, streak(r.name))
        )
        + " |"
        for r in results[:TABLE_ROWS]
    ]
    return ["| status | check | message |", "| --- | --- | --- |", *rows, *_cut(results)]


def _details(result: CheckResult, streak: str = "") -> str:
    parts = [escape(_clip(result.message, MESSAGE_LIMIT))]
    if streak:
        parts.append(f"**{escape(streak)}**")
    if result.error is not None:
        retry = "retryable" if result.error.retryable else "not retryable"
        parts.append(f"error: {result.error.category.value}, {retry}")
    shown = result.failures[:EVIDENCE_ITEMS]
    parts += [f"• {escape(_clip(_inline(f), EVIDENCE_LIMIT))}" for f in shown]
    more = max(result.failure_count, len(result.failures)) - len(shown)
    if more > 0:
        parts.append(f"… {more} more")
    return "<br>".join(parts)


def _others_block(results: list[CheckResult]) -> list[str]:
    if not results:
        return []
    passed = sum(1 for r in results if r.status is Status.PASS)
    skipped = len(results) - passed
    label = f"{passed} passed" + (f", {skipped} skipped" if skipped else "")
    rows = [
        f"| {EMOJI[r.status]} {r.status.value} | {escape(r.name)} | "
        f"{escape(_clip(r.message, MESSAGE_LIMIT))} |"
        for r in results[:TABLE_ROWS]
    ]
    table = ["| status | check | message |", "| --- | --- | --- |", *rows, *_cut(results)]
    return ["", "<details>", f"<summary>{label}</summary>", "", *table, "", "</details>"]


def _cut(results: list[CheckResult]) -> list[str]:
    more = len(results) - TABLE_ROWS
    return (
        ["", f"… {more} more checks not shown: see verdict.html or verdict.json."]
        if more > 0
        else []
    )


def escape(text: str) -> str:
    """Data as literal Markdown text on one line: no table breaks, no markup, no raw HTML."""
    text = _BREAKS.sub(" ", _CONTROL.sub("", text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _inline(value: Any) -> str:
    """A failure item as short text: ``path=…, reason=…``; nested values flattened the same way."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_nested(v)}" for k, v in value.items())
    return _nested(value)


def _nested(value: Any) -> str:
    number = tagged_number(value)
    if number is not None:
        return number
    if isinstance(value, dict):
        return "{" + _inline(value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return _nested(value)
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
