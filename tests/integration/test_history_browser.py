"""history.html in headless Chromium from file://: the status grid (checks by runs, newest
right), real charts (inline SVG with dated axes and the anomaly band), the failing streak, no
network, no script run from hostile names."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner import RunOptions, load_suite, run_suite
from runner.history.page import render_history_html
from runner.history.query import load_history
from runner.history.store import HistoryStore
from tests.integration.test_report_browser import VIEWPORT
from tests.test_history import _night, _suite_file, _warehouse

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
SCREENSHOT_COPY = Path("/tmp/postrun-history.png")
HOSTILE = "<img src=x onerror=window.__pwned=1>"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """history.html of the seed-004 nights 1-14 then 15 (the incident), a check with a hostile
    name among them."""
    root = tmp_path_factory.mktemp("history")
    _warehouse(root)
    path = _suite_file(root)
    path.write_text(path.read_text().replace("name: batch duration is usual", f"name: '{HOSTILE}'"))
    url = f"sqlite:///{root / 'h.sqlite'}"
    run_ids = []
    for n in [*range(1, 15), 15]:
        suite = load_suite(path, {"run_date": _night(n).isoformat()})
        run_ids.append(run_suite(suite, RunOptions(history=url)).run_id)
    store = HistoryStore(url)
    history = load_history(store, "nightly-history", since=timedelta(days=1), now=datetime.now(UTC))
    store.close()
    target = root / "reports" / "nightly-history" / "history.html"
    target.parent.mkdir(parents=True)
    target.write_bytes(render_history_html(history, keys=[]))
    return target, run_ids


@pytest.fixture
def page(chromium: Browser, page_file: tuple[Path, list[str]]) -> Iterator[tuple[Page, list[str]]]:
    context = chromium.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    tab.on("request", lambda request: requests.append(request.url))
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(page_file[0].as_uri(), wait_until="load")
    yield tab, page_file[1]
    assert [r for r in requests if not r.startswith("file://")] == []
    assert errors == []
    context.close()


def test_history_page_grid_charts_and_streak_in_chromium(
    page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    tab, run_ids = page
    assert "history key: all" in tab.inner_text("header")
    shot = tmp_path / "history.png"
    tab.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)
    print(f"screenshot: {SCREENSHOT_COPY}")
    assert shot.stat().st_size > 10_000

    header = tab.locator(".status-grid thead th.run")
    assert header.count() == len(run_ids)
    assert header.last.get_attribute("title") == run_ids[-1]  # newest right
    rows = tab.locator(".status-grid tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).locator("th").inner_text() == "snapshots"
    assert rows.nth(2).locator("th").inner_text() == HOSTILE  # shown as text
    last_cells = [rows.nth(i).locator("td").last.get_attribute("class") for i in range(3)]
    assert last_cells == ["cell s-FAIL"] * 3
    first_cells = [rows.nth(i).locator("td").first.get_attribute("class") for i in range(3)]
    assert first_cells == ["cell s-PASS"] * 3

    charts = tab.locator(".chart svg")
    assert charts.count() == 4  # run duration, snapshots count, and the two anomaly values
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 80
    titles = tab.locator(".chart").evaluate_all("els => els.map(e => e.dataset.title)")
    assert titles == [
        "run duration (s)",
        "snapshots: count",
        "snapshot count is usual: value",
        f"{HOSTILE}: value",
    ]
    svg = tab.locator(".chart").nth(2).inner_html()
    assert "expected band" in svg  # the anomaly band is drawn and labelled
    assert "run started (UTC)" in svg
    assert tab.evaluate("window.__pwned") is None

    failing = tab.locator(".failing-since")
    assert failing.count() == 3
    assert failing.first.inner_text() == (
        f"failing since run {run_ids[-1]} (1 run, first on "
        f"{failing.first.inner_text().split('first on ')[1]}"
    )
    assert tab.locator("table.flaky").count() == 0  # one flip each: not flaky


def test_verdict_page_shows_strip_sparkline_and_streak_in_chromium(
    chromium: Browser, tmp_path: Path
) -> None:
    from runner.render.html import render_html

    _warehouse(tmp_path)
    path = _suite_file(tmp_path)
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    verdicts = [
        run_suite(load_suite(path, {"run_date": _night(n).isoformat()}), RunOptions(history=url))
        for n in [*range(1, 15), 15, 15]
    ]
    page_path = tmp_path / "verdict.html"
    page_path.write_bytes(render_html(verdicts[-1]))
    context = chromium.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.goto(page_path.as_uri(), wait_until="load")
    shot = tmp_path / "verdict.png"
    tab.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, Path("/tmp/postrun-verdict-history.png"))
    print("screenshot: /tmp/postrun-verdict-history.png")
    row = tab.locator("table.checks tr.check-row").first
    strip = row.locator(".strip i")
    assert strip.count() == 16
    assert strip.last.get_attribute("class") == "s-FAIL"
    assert strip.first.get_attribute("class") == "s-PASS"
    colour = strip.last.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(207, 34, 46)"
    spark = row.locator("svg.spark polyline")
    assert spark.count() == 1
    box = row.locator("svg.spark").bounding_box()
    assert box is not None and box["width"] == 100
    since = tab.locator("#evidence .since").first.inner_text()
    assert since.startswith(f"failing since run {verdicts[-2].run_id} (2 runs, first on ")
    context.close()
