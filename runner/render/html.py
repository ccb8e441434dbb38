"""verdict.html: one self-contained page; the view model is built here, the template only prints."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup

from runner.causes import causes_of
from runner.render.timestamps import format_timestamp
from runner.results import Cause, CheckError, CheckPast, CheckResult, QueryInfo, Status, Verdict
from runner.values import tagged_number, visible

MESSAGE_LIMIT = 300
"""Characters of a message shown before the rest is folded away."""
CELL_LIMIT = 200
"""Characters of a table cell or a key: value shown before the rest is folded away."""
FAILURE_ROWS = 20
"""Failure rows shown per check; the full sample stays in verdict.json."""
TOP_CAUSES = 5
"""Causes the banner lists, each with the same weight; the evidence below holds every check."""
BANNER_PARAMS = 6
BANNER_VALUE_LIMIT = 60
SHORT_LIMIT = 120
DISPLAY_ORDER = (Status.ERROR, Status.FAIL, Status.WARN, Status.PASS, Status.SKIP)
PROBLEMS = frozenset({Status.ERROR, Status.FAIL, Status.WARN})

_FLATTEN_MAX = 8
_LONG_WORD = 24
"""A cell with a longer word may break it anywhere (an id, a path, a GX expectation name), so
that a wide failures table fits the page instead of scrolling sideways."""
_RANK = {status: rank for rank, status in enumerate(DISPLAY_ORDER)}

# The page's only script: expand every fold before printing. Allowed by its hash in the
# Content-Security-Policy, so no other script (nor an event handler) could run even if one
# slipped into the page.
_PRINT_SCRIPT = Markup(
    'addEventListener("beforeprint",function(){'
    'document.querySelectorAll("details").forEach(function(d){d.open=true})});'
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(str(_PRINT_SCRIPT).encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)


# --- view model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A value as shown: a visible head and, when it had to be cut, the whole text in a fold."""

    head: str
    full: str
    more: str = ""
    """The fold's label, e.g. "show all 10,000 characters"; empty when nothing was cut."""

    @property
    def cut(self) -> bool:
        return bool(self.more)


@dataclass(frozen=True)
class Cell:
    text: Text
    kind: str = ""
    """CSS hint: "num" (right-aligned), "null" (None or "", dimmed), "wrap" (break anywhere)."""


@dataclass(frozen=True)
class Pair:
    key: str
    value: Cell


@dataclass(frozen=True)
class FailureTable:
    columns: list[str]
    headers: list[list[str]]
    """Each column name cut after its dots and underscores (result.element_count → result.,
    element_, count): a header breaks there, not inside a word."""
    rows: list[list[Cell]]
    more: str
    """What was left out ("… and 480 more …"); empty when every failure is shown."""


@dataclass(frozen=True)
class ErrorView:
    category: str
    retryable: str
    detail: str | None


@dataclass(frozen=True)
class StripRun:
    status: str
    title: str


@dataclass(frozen=True)
class PastView:
    """A check's recent runs: a status strip, a sparkline of its number, its failing streak."""

    strip: list[StripRun]
    """Per run, oldest first, this run last."""
    spark: str
    """SVG polyline points in a 100 by 20 box; empty without two numbers to draw."""
    spark_title: str
    since: str | None


@dataclass(frozen=True)
class CheckView:
    anchor: str
    status: str
    name: Text
    short_name: str
    type: str
    source: str
    severity: str
    message: Text
    duration: str
    has_evidence: bool
    observed: list[Pair]
    expected: list[Pair]
    failures: FailureTable | None
    notes: list[Text]
    error: ErrorView | None
    past: PastView | None = None


@dataclass(frozen=True)
class StatusCount:
    status: str
    count: int


@dataclass(frozen=True)
class CheckLink:
    anchor: str
    name: str


@dataclass(frozen=True)
class CauseView:
    status: str
    title: str
    """The cause's message, cut after MESSAGE_LIMIT characters (its checks' cards hold it all)."""
    effect: str
    error: str
    """"auth, not retryable" for an ERROR cause; empty otherwise."""
    evidence: str
    checks: list[CheckLink]


@dataclass(frozen=True)
class QueryView:
    id: str
    source: str
    checks: str
    shared: bool
    duration: str
    sql: str


@dataclass(frozen=True)
class PageView:
    verdict: str
    headline: str
    exit_code: int
    suite_name: str
    suite_path: str
    suite_sha256: str
    tool: str
    schema_version: int
    run_id: str
    started: str
    finished: str
    duration: str
    counts: list[StatusCount]
    banner_params: list[Pair]
    hidden_params: int
    params: list[Pair]
    causes: list[CauseView]
    more_causes: int
    filters: list[StatusCount]
    problem_count: int
    checks: list[CheckView]
    evidence: list[CheckView]
    queries: list[QueryView]
    rerun_of: str | None
    history: str | None
    history_problem: str | None


# --- rendering ------------------------------------------------------------------------------


def render_html(verdict: Verdict) -> bytes:
    """verdict.html as UTF-8: banner, evidence of every non-passing check, all checks, run."""
    page = build_page(verdict)
    html = page_template("verdict.html").render(page=page, script=_PRINT_SCRIPT, csp=CSP)
    return html.encode("utf-8")


@functools.cache
def page_template(name: str) -> jinja2.Template:
    """A page of runner/templates, rendered as every postrun page is: escaped, strict, and with
    control characters written out."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("runner", "templates"),
        autoescape=True,  # explicit: the template's name must not decide whether data is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    return env.get_template(name)


def _shown(value: Any) -> Any:
    """Every value the template prints, control characters written out (``\\x00``, ``\\x1b``):
    a page must carry none of them raw. The page's own markup passes untouched."""
    return (
        visible(value, spacing=True)
        if isinstance(value, str) and not isinstance(value, Markup)
        else value
    )


def build_page(verdict: Verdict) -> PageView:
    """Everything the template prints, sorted, counted, truncated and formatted."""
    past = verdict.history.checks if verdict.history is not None else {}
    checks = [_check_view(n, c, past.get(c.name)) for n, c in order_checks(verdict.checks)]
    anchors = {c.name.full: c.anchor for c in checks}
    causes = causes_of(verdict.checks, verdict.causes)
    evidence = [c for c in checks if c.has_evidence]
    params = [Pair(str(k), _cell(v, CELL_LIMIT)) for k, v in verdict.params.items()]
    banner_params = [Pair(str(k), _cell(v, BANNER_VALUE_LIMIT)) for k, v in verdict.params.items()]
    counts = [StatusCount(s.value, verdict.counts.get(s.value, 0)) for s in DISPLAY_ORDER]
    return PageView(
        verdict=verdict.verdict.value,
        headline=_headline(counts, len(verdict.checks)),
        exit_code=verdict.exit_code,
        suite_name=verdict.suite.name,
        suite_path=verdict.suite.path,
        suite_sha256=verdict.suite.sha256,
        tool=f"{verdict.tool.name} {verdict.tool.version}",
        schema_version=verdict.schema_version,
        run_id=verdict.run_id,
        started=format_timestamp(verdict.started_at),
        finished=format_timestamp(verdict.finished_at),
        duration=format_duration(verdict.duration_s),
        counts=counts,
        banner_params=banner_params[:BANNER_PARAMS],
        hidden_params=max(0, len(banner_params) - BANNER_PARAMS),
        params=params,
        causes=[_cause_view(c, anchors) for c in causes[:TOP_CAUSES]],
        more_causes=max(0, len(causes) - TOP_CAUSES),
        filters=[c for c in counts if c.count],
        problem_count=len(evidence),
        checks=checks,
        evidence=evidence,
        queries=[_query_view(q) for q in verdict.queries],
        rerun_of=_rerun_of(verdict),
        history=_history(verdict),
        history_problem=verdict.history.problem if verdict.history is not None else None,
    )


def _query_view(query: QueryInfo) -> QueryView:
    took = "did not return" if query.duration_s is None else format_duration(query.duration_s)
    return QueryView(
        id=query.id,
        source=query.source,
        checks=", ".join(query.checks),
        shared=len(query.checks) > 1,
        duration=took,
        sql=query.sql,
    )


def _history(verdict: Verdict) -> str | None:
    recorded = verdict.history
    if recorded is None:
        return None
    where = f"{recorded.store} (key {recorded.key})"
    return f"not recorded in {where}" if recorded.problem else f"recorded in {where}"


def _rerun_of(verdict: Verdict) -> str | None:
    if verdict.rerun_of is None:
        return None
    again = ", ".join(verdict.rerun_of.checks) or "nothing: no check failed"
    return f"run {verdict.rerun_of.run_id} ({verdict.rerun_of.path}); ran again: {again}"


def order_checks(checks: Sequence[CheckResult]) -> list[tuple[int, CheckResult]]:
    """(suite position from 1, check): ERROR, FAIL, WARN, PASS, SKIP, each in suite order."""
    return sorted(enumerate(checks, 1), key=lambda pair: _RANK[pair[1].status])


def _check_view(number: int, check: CheckResult, past: CheckPast | None = None) -> CheckView:
    has_evidence = check.status in PROBLEMS
    failures = check.failures or check.failure_count
    return CheckView(
        anchor=f"check-{number}",
        status=check.status.value,
        name=shorten(check.name, CELL_LIMIT),
        short_name=_clip(check.name, SHORT_LIMIT),
        type=check.type,
        source=check.source or "—",
        severity=check.severity,
        message=shorten(check.message, MESSAGE_LIMIT),
        duration=format_duration(check.duration_s),
        has_evidence=has_evidence,
        observed=_pairs(check.observed) if has_evidence else [],
        expected=_pairs(check.expected) if has_evidence else [],
        failures=_failure_table(check) if has_evidence and failures else None,
        notes=[shorten(note, MESSAGE_LIMIT) for note in check.notes],
        error=_error_view(check.error) if check.status is Status.ERROR else None,
        past=_past_view(past) if past is not None and len(past.statuses) > 1 else None,
    )


def _past_view(past: CheckPast) -> PastView:
    strip = [
        StripRun(status.value, f"{run_id}: {status.value}")
        for run_id, status in zip(past.run_ids, past.statuses, strict=True)
    ]
    numbers = [v for v in past.values if v is not None]
    title = ""
    if len(numbers) >= 2:
        title = (
            f"{past.metric} over the last {len(past.values)} runs: {_g(numbers[0])} → "
            f"{_g(numbers[-1])} (min {_g(min(numbers))}, max {_g(max(numbers))})"
        )
    since = past.failing_since
    return PastView(
        strip=strip,
        spark=sparkline(past.values) if len(numbers) >= 2 else "",
        spark_title=title,
        since=None
        if since is None or since.runs < 2
        else f"failing since run {since.run_id} ({since.runs} runs, first on "
        f"{format_timestamp(since.started_at)})",
    )


def sparkline(values: Sequence[float | None], width: int = 100, height: int = 20) -> str:
    """SVG polyline points for ``values`` (gaps skipped) in a ``width`` by ``height`` box, the
    highest value at the top; drawn by hand: a polyline is not worth a plotting library in
    every verdict.html."""
    numbers = [v for v in values if v is not None]
    low, high = min(numbers), max(numbers)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = [
        f"{i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}"
        for i, v in enumerate(values)
        if v is not None
    ]
    return " ".join(points)


def _g(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def _error_view(error: CheckError | None) -> ErrorView:
    if error is None:
        return ErrorView(category="unknown", retryable="unknown", detail=None)
    retryable = "yes" if error.retryable else "no"
    return ErrorView(category=error.category.value, retryable=retryable, detail=error.detail)


def _cause_view(cause: Cause, anchors: Mapping[str, str]) -> CauseView:
    error = ""
    if cause.category is not None:
        error = f"{cause.category.value}, {'retryable' if cause.retryable else 'not retryable'}"
    return CauseView(
        status=cause.status.value,
        title=_clip(cause.title, MESSAGE_LIMIT),
        effect=cause.effect,
        error=error,
        evidence=_clip(", ".join(cause.evidence), CELL_LIMIT),
        checks=[CheckLink(anchors.get(n, "checks"), _clip(n, 80)) for n in cause.checks],
    )


def _headline(counts: list[StatusCount], total: int) -> str:
    """The counts in words: "15 checks: 2 could not be evaluated, 3 failed, 10 passed"."""
    if total == 0:
        return "no checks ran"
    parts = [f"{c.count:,} {_VERBS[c.status]}" for c in counts if c.count]
    if parts == [f"{total:,} passed"]:
        return f"all {total:,} checks passed"
    noun = "check" if total == 1 else "checks"
    return f"{total:,} {noun}: {', '.join(parts)}"


_VERBS = {
    "ERROR": "could not be evaluated",
    "FAIL": "failed",
    "WARN": "warned",
    "PASS": "passed",
    "SKIP": "skipped",
}


# --- evidence -------------------------------------------------------------------------------


def _failure_table(check: CheckResult) -> FailureTable:
    shown = [_flatten(row) for row in check.failures[:FAILURE_ROWS]]
    columns = _columns(shown)
    rows = [[_cell(row[c], CELL_LIMIT) if c in row else _BLANK for c in columns] for row in shown]
    headers = [_BREAKS_AFTER.findall(c) for c in columns]
    return FailureTable(
        columns=columns, headers=headers, rows=rows, more=_more_failures(check, len(shown))
    )


def _more_failures(check: CheckResult, shown: int) -> str:
    sample = len(check.failures)
    total = max(check.failure_count, sample)
    hidden = total - shown
    if hidden <= 0:
        return ""
    if sample == 0:
        return f"{total:,} failing items in all; no sample was kept."
    if sample >= total:
        return f"… and {hidden:,} more not shown here; all {total:,} are in verdict.json."
    where = f"verdict.json holds a sample of {sample:,} of the {total:,}"
    return f"… and {hidden:,} more not shown here; {where}."


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of ``rows`` in the order the rows give them (a check writes its failures in the
    order a reader looks for), a key one row lacks put where the others place it."""
    order: list[str] = []
    for row in rows:
        keys = list(row)
        for i, key in enumerate(keys):
            if key in order:
                continue
            after = next((k for k in keys[i + 1 :] if k in order), None)
            order.insert(order.index(after) if after is not None else len(order), key)
    return order


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting spread into dotted keys (children.total); deeper levels stay whole."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and 0 < len(value) <= _FLATTEN_MAX and not tagged_number(value):
            flat.update((f"{key}.{sub}", inner) for sub, inner in value.items())
        else:
            flat[str(key)] = value
    return flat


def _pairs(data: Mapping[str, Any]) -> list[Pair]:
    return [Pair(key, _cell(value, CELL_LIMIT)) for key, value in _flatten(data).items()]


# --- values ---------------------------------------------------------------------------------


def shorten(value: str, limit: int) -> Text:
    """``value`` whole if it fits in ``limit`` characters, else a head cut near a space."""
    if len(value) <= limit:
        return Text(head=value, full=value)
    space = value.rfind(" ", limit - 30, limit)
    head = value[: space if space > 0 else limit].rstrip()
    return Text(head=head, full=value, more=f"show all {len(value):,} characters")


def format_value(value: Any) -> str:
    """A JSON value as text: strings bare, a tagged number as the number (NaN, Infinity, an
    integer past 64 bits), containers as compact JSON."""
    if value is None:
        return "null"
    number = tagged_number(value)
    if number is not None:
        return number
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def format_duration(seconds: float) -> str:
    """189 ms, 1.42 s, 2 min 05 s, 1 h 02 min."""
    if seconds < 0.001:
        return "<1 ms" if seconds > 0 else "0 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _cell(value: Any, limit: int) -> Cell:
    text = format_value(value) if value != "" else '""'
    if value is None or value == "":
        kind = "null"
    elif (isinstance(value, int | float) and not isinstance(value, bool)) or tagged_number(value):
        kind = "num"
    else:
        # Only a cell holding an unbreakable run may break anywhere: allowing it everywhere
        # lets the table squeeze short words ("processing") into two lines.
        kind = "wrap" if any(_breakable(word) for word in text.split()) else ""
    return Cell(shorten(text, limit), kind)


def _breakable(word: str) -> bool:
    """A word long enough to break anywhere: an id, a path, a GX expectation name; never a
    number, whose digits must stay together."""
    return len(word) > _LONG_WORD and _NUMBER.fullmatch(word) is None


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


_BLANK = Cell(Text("", ""), "")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?,?")
_BREAKS_AFTER = re.compile(r"[^._]*[._]|[^._]+")
