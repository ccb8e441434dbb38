"""history.html: one self-contained page per suite for analysts — a status grid (checks by runs,
newest right), each metric over time as an inline SVG chart drawn by matplotlib (imported here
only, when a page is rendered), the anomaly band where a check has one, flaky checks, and per
check its last failure and since when it fails."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from runner.history.query import CheckSummary, History, Run
from runner.render.html import page_template
from runner.render.timestamps import format_timestamp
from runner.values import visible

GRID_RUNS = 60
"""Runs the status grid shows (the newest); the charts show every run of the period."""
CHARTS = 24
"""Charts at most; the metrics of the checks listed first come first."""
CHART_POINTS = 500
"""Runs a chart draws at most: a longer period is thinned evenly (the chart says so)."""
_DERIVED = ("median", "deviations", "change_pct")
"""Observations that describe a judgement rather than the data: not charted on their own."""
_BANDS = (("expected.low", "expected.high"), ("expected.change.low", "expected.change.high"))
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
COLOURS = {"PASS": "#1a7f37", "WARN": "#9a6700", "FAIL": "#cf222e", "ERROR": "#8250df"}


@dataclass(frozen=True)
class Cell:
    status: str
    title: str


@dataclass(frozen=True)
class Row:
    check: str
    cells: list[Cell | None]


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup


def render_history_html(history: History, *, keys: list[str]) -> bytes:
    """The page as UTF-8."""
    shown = history.runs[-GRID_RUNS:]
    page = {
        "suite": history.suite,
        "store": history.store,
        "since": format_timestamp(history.since),
        "key_filter": ", ".join(keys) or "all",
        "runs": len(history.runs),
        "grid_runs": [(r.run_id, _day(r)) for r in shown],
        "cut": max(0, len(history.runs) - len(shown)),
        "grid": [_row(s.name, shown) for s in history.checks],
        "charts": _charts(history),
        "flaky": sorted((s for s in history.checks if s.flips >= 2), key=lambda s: -s.flips),
        "checks": [_summary_view(s) for s in history.checks],
    }
    return page_template("history.html").render(page=page, csp=CSP, colours=COLOURS).encode("utf-8")


def _row(name: str, runs: list[Run]) -> Row:
    cells: list[Cell | None] = []
    for run in runs:
        found = next((c for c in run.checks if c.name == name), None)
        if found is None:
            cells.append(None)
            continue
        title = (
            f"{run.run_id} · {format_timestamp(run.started_at)} · {found.status}: {found.message}"
        )
        cells.append(Cell(found.status, title))
    return Row(name, cells)


def _summary_view(summary: CheckSummary) -> dict[str, Any]:
    last = summary.last_failure
    since = summary.failing_since
    return {
        "name": summary.name,
        "type": summary.type,
        "statuses": summary.statuses,
        "flips": summary.flips,
        "last": None
        if last is None
        else f"{last.status} in run {last.run_id} ({format_timestamp(last.started_at)}): "
        f"{last.message}",
        "since": None
        if since is None
        else f"failing since run {since.run_id} ({_runs(summary.failing_runs)}, first on "
        f"{format_timestamp(since.started_at)})",
    }


def _charts(history: History) -> list[Chart]:
    """The run duration, then each check's numbers, over the period (at most CHART_POINTS runs
    a chart, taken evenly, the newest always in)."""
    if not history.runs:
        return []
    step = -(-len(history.runs) // CHART_POINTS)
    shown = history.runs[::-1][::step][::-1]
    dates = [_moment(r.started_at) for r in shown]
    every = f" (every {step}th of {len(history.runs):,} runs)" if step > 1 else ""
    durations: list[float | None] = [r.duration_s for r in shown]
    title = f"run duration (s){every}"
    charts = [Chart("run duration (s)", _svg(title, dates, durations))]
    for summary in history.checks:
        for metric in summary.metrics:
            if metric.startswith("expected.") or metric in _DERIVED:
                continue
            if len(charts) >= CHARTS:
                return charts
            name = f"{summary.name}: {metric}"
            values = [_value(r, summary.name, metric) for r in shown]
            band = _band(shown, summary.name, summary.metrics)
            charts.append(Chart(name, _svg(f"{name}{every}", dates, values, band)))
    return charts


def _band(
    runs: list[Run], check: str, metrics: list[str]
) -> tuple[list[float | None], list[float | None]] | None:
    for low, high in _BANDS:
        if low in metrics or high in metrics:
            return [_value(r, check, low) for r in runs], [_value(r, check, high) for r in runs]
    return None


def _value(run: Run, check: str, metric: str) -> float | None:
    found = next((c for c in run.checks if c.name == check), None)
    return found.values.get(metric) if found is not None else None


def _svg(
    title: str,
    dates: list[datetime],
    values: list[float | None],
    band: tuple[list[float | None], list[float | None]] | None = None,
) -> Markup:
    """One chart as inline SVG: the values over dated axes, the band shaded where known."""
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    nan = float("nan")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "postrun", "font.size": 8}):
        figure = Figure(figsize=(6.4, 2.2), dpi=72, layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        xs = mdates.date2num(dates)  # type: ignore[no-untyped-call]
        ys = [nan if v is None else v for v in values]
        if band is not None:
            low = [nan if v is None else v for v in band[0]]
            high = [nan if v is None else v for v in band[1]]
            axes.fill_between(xs, low, high, color="#0969da", alpha=0.15, label="expected band")
        axes.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.2, color="#0969da")
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(formatter)
        # a check's name is text: control characters written out, and no `$…$` read as
        # matplotlib's mathtext
        axes.set_title(visible(title), loc="left", parse_math=False)
        axes.set_xlabel("run started (UTC)")
        axes.grid(alpha=0.3)
        if band is not None:
            axes.legend(loc="best", fontsize=7)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return Markup(text[text.index("<svg") :])


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"


def _moment(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")


def _day(run: Run) -> str:
    return re.sub(r"T.*", "", run.started_at)
