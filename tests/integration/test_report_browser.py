"""verdict.html of a failing demo run in headless Chromium: banner, evidence, filter, no network."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner import load_suite, run_suite
from runner.demo import DEFAULT_FAULTS, build_demo, find_demo_suite
from runner.render.html import render_html
from runner.results import Status, Verdict

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, ViewportSize

pytestmark = pytest.mark.browser

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
FAULTS = ("truncated-result", "stuck-batch", "null-pnl")
HOSTILE_NAME = "<script>window.__pwned=1</script>"
HOSTILE_VALUE = '<img src=x onerror="window.__pwned=2">'
HOSTILE_PARAM = '"><script>window.__pwned=3</script>'
SCREENSHOT_COPY = Path("/tmp/postrun-verdict.png")


@dataclass
class Report:
    """The rendered page and the verdict it shows."""

    path: Path
    verdict: Verdict
    first_problem: int
    """Suite position (from 1) of the first check the page lists as not passing."""

    @property
    def url(self) -> str:
        return self.path.as_uri()


@dataclass
class Watch:
    """What a page did besides rendering: requests, dialogs, console errors, page errors."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP violation is reported here
            self.errors.append(message.text)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """verdict.html of a failing demo run, with hostile values planted in its data."""
    root = tmp_path_factory.mktemp("browser")
    batch = build_demo(root / "demo", FAULTS)
    verdict = run_suite(load_suite(find_demo_suite(), batch.params, env={}))
    assert verdict.verdict is Status.FAIL
    verdict = _plant_hostile_values(verdict)
    first = next(n for n, c in enumerate(verdict.checks, 1) if c.status is Status.FAIL)
    path = root / "verdict.html"
    path.write_bytes(render_html(verdict))
    return Report(path, verdict, first)


@pytest.fixture
def page(chromium: Browser, report: Report) -> Iterator[tuple[Page, Watch]]:
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(report.url, wait_until="load")
    yield page, watch
    context.close()


def test_browser_banner_shows_verdict_counts_and_first_evidence(
    page: tuple[Page, Watch], report: Report
) -> None:
    tab, _ = page
    assert tab.inner_text(".verdict .word") == "FAIL"
    counts = [tab.inner_text(f".counts li.s-{s}") for s in ("ERROR", "FAIL", "WARN", "PASS")]
    expected = [f"{report.verdict.counts[s]} {s}" for s in ("ERROR", "FAIL", "WARN", "PASS")]
    assert counts == expected
    assert tab.evaluate("window.scrollY") == 0
    evidence = tab.locator(f"#check-{report.first_problem}")
    assert evidence.inner_text().startswith("FAIL")
    assert tab.inner_text(f"#check-{report.first_problem} .name") == HOSTILE_NAME
    box = evidence.bounding_box()
    assert box is not None
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= VIEWPORT["height"], box
    first_row = tab.locator(f"#check-{report.first_problem} tr.failure-row").first
    assert first_row.is_visible()


def test_browser_status_filter_shows_only_fail(page: tuple[Page, Watch], report: Report) -> None:
    tab, _ = page
    passing = tab.locator("tr.check-row.s-PASS")
    failing = tab.locator("tr.check-row.s-FAIL")
    assert passing.count() == report.verdict.counts["PASS"] > 0
    assert passing.first.is_visible()
    tab.click("label[for=show-FAIL]")
    assert not any(passing.nth(i).is_visible() for i in range(passing.count()))
    assert all(failing.nth(i).is_visible() for i in range(failing.count()))
    tab.click("label[for=show-all]")
    assert passing.first.is_visible()


def test_browser_loads_nothing_and_runs_no_injected_script(
    page: tuple[Page, Watch], report: Report
) -> None:
    tab, watch = page
    assert tab.evaluate("typeof window.__pwned") == "undefined"
    assert tab.locator("img").count() == 0
    assert HOSTILE_VALUE in tab.inner_text(f"#check-{report.first_problem} table.failures")
    tab.evaluate("window.dispatchEvent(new Event('beforeprint'))")  # the page's own script
    assert tab.evaluate("[...document.querySelectorAll('details')].every(d => d.open)")
    assert tab.evaluate("typeof window.__pwned") == "undefined"
    assert watch.requests == [report.url]
    assert watch.dialogs == []
    assert watch.errors == []


def test_browser_screenshot(page: tuple[Page, Watch], tmp_path: Path) -> None:
    tab, _ = page
    shot = tmp_path / "verdict.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    with contextlib.suppress(OSError):  # a copy for people to look at; tmp_path's is the record
        shutil.copyfile(shot, SCREENSHOT_COPY)


def _plant_hostile_values(verdict: Verdict) -> Verdict:
    """The first failing check gets a script as its name and an <img onerror> in its failures."""
    checks = list(verdict.checks)
    n = next(i for i, c in enumerate(checks) if c.status is Status.FAIL)
    failures = [{**row, "path": HOSTILE_VALUE} for row in checks[n].failures]
    checks[n] = checks[n].model_copy(update={"name": HOSTILE_NAME, "failures": failures})
    params = {**verdict.params, "run_date": HOSTILE_PARAM}
    return verdict.model_copy(update={"checks": checks, "params": params})


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """verdict.html of `postrun demo` with its default faults (a cut file, NULL P&L)."""
    assert DEFAULT_FAULTS == ("truncated-result", "null-pnl")
    root = tmp_path_factory.mktemp("default-demo")
    batch = build_demo(root / "demo", DEFAULT_FAULTS)
    verdict = run_suite(load_suite(find_demo_suite(), batch.params, env={}))
    path = root / "verdict.html"
    path.write_bytes(render_html(verdict))
    first = next(n for n, c in enumerate(verdict.checks, 1) if c.status is Status.FAIL)
    return Report(path, verdict, first)


def test_browser_demo_banner_shows_its_two_causes(chromium: Browser, default_demo: Report) -> None:
    context = chromium.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.goto(default_demo.url, wait_until="load")
    causes = tab.locator("header.banner ol.causes > li")
    assert causes.count() == 2
    texts = [causes.nth(i).inner_text() for i in range(2)]
    assert texts[0].splitlines()[0] == (
        "FAIL 1 of 5 files bad: run_20260101_204618.json truncated at line 252 column 22 "
        "→ 3 checks fail"
    ), texts
    assert texts[0].splitlines()[-1] == (
        "checks: ETL result files are complete JSON; ETL batch status matches its operations; "
        "ETL run steps are well-formed"
    )
    assert texts[1].splitlines()[0] == (
        "FAIL portfolio_snapshots has NULLs in 4 of 58 rows (daily_pnl 4, cumulative_pnl 4) "
        "→ 2 checks fail"
    )
    assert texts[1].splitlines()[-1] == (
        "checks: run-date snapshots have P&L; run-date snapshots meet their GX suite"
    )
    for i in range(2):  # each named check links to its own card, which is on the page
        for link in causes.nth(i).locator("a").all():
            target = link.get_attribute("href") or ""
            assert tab.locator(target).inner_text().startswith("FAIL")
    banner = tab.locator("header.banner").bounding_box()
    assert banner is not None and banner["height"] < VIEWPORT["height"] / 2, banner
    context.close()


def test_browser_demo_page_and_gx_failures_fit_the_width(
    chromium: Browser, default_demo: Report
) -> None:
    context = chromium.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.goto(default_demo.url, wait_until="load")
    gx = next(
        n for n, c in enumerate(default_demo.verdict.checks, 1) if c.type == "expectation_suite"
    )
    box = tab.locator(f"#check-{gx} .scroll")
    widths = box.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert widths[0] <= widths[1], widths  # no sideways scrolling of the GX failures
    headers = tab.locator(f"#check-{gx} table.failures th")
    assert "result.unexpected_count" in [
        headers.nth(i).inner_text().replace("\n", "") for i in range(headers.count())
    ]
    page = tab.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert page[0] <= page[1], page
    context.close()
