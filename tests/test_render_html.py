"""verdict.html without a browser: escaping, no network references, truncation, order, evidence."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import escape

from runner.render.html import (
    CELL_LIMIT,
    FAILURE_ROWS,
    MESSAGE_LIMIT,
    format_duration,
    render_html,
)
from runner.render.timestamps import format_timestamp
from runner.results import (
    CheckError,
    CheckResult,
    ErrorCategory,
    ExitCode,
    QueryInfo,
    RerunOf,
    Status,
    SuiteInfo,
    ToolInfo,
    Verdict,
    count_statuses,
    worst_status,
)
from runner.values import cap_text

PASS, WARN, FAIL, ERROR, SKIP = Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.SKIP

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


# --- building verdicts ----------------------------------------------------------------------


def make_check(name: str, status: Status, **fields: Any) -> CheckResult:
    """A CheckResult of ``status`` with plausible defaults; ``fields`` override any of them."""
    base: dict[str, Any] = {
        "name": name,
        "type": "row_count",
        "source": "warehouse",
        "severity": "warn" if status is WARN else "error",
        "status": status,
        "message": f"{name}: {status.value.lower()} message",
        "duration_s": 0.012,
    }
    if status is ERROR:
        base["error"] = CheckError(
            category=ErrorCategory.CONNECTIVITY,
            retryable=True,
            message=f"{name}: could not connect",
            detail="psycopg.OperationalError: connection refused\n  at line 1",
        )
        base["message"] = base["error"].message  # as the engine does
    return CheckResult(**(base | fields))


def make_verdict(checks: list[CheckResult], params: dict[str, Any] | None = None) -> Verdict:
    status = worst_status([c.status for c in checks])
    return Verdict(
        tool=ToolInfo(version="0.1.0"),
        suite=SuiteInfo(name="nightly", path="checks/nightly.yml", sha256="ab" * 32),
        run_id="20261123T101500Z-3f9c",
        params={"run_date": "2025-11-06"} if params is None else params,
        started_at="2026-11-23T10:15:00Z",
        finished_at="2026-11-23T10:15:01.420000+00:00",
        duration_s=1.42,
        verdict=status,
        exit_code=ExitCode.for_status(status),
        counts=count_statuses([c.status for c in checks]),
        checks=checks,
    )


JSON_FAILURES = [  # as json_integrity writes them: each in reading order, without its Nones
    {
        "path": "a.json",
        "reason": "truncated",
        "line": 3,
        "column": 7,
        "offset": 99,
        "message": "truncated at line 3",
    },
    {"path": "b.json", "reason": "missing", "message": "expected file was not written"},
    {"path": "c.json", "reason": "schema", "pointer": "/run/rows", "message": "not an array"},
]
CONSISTENCY_FAILURES = [
    {
        "id": "R-2",
        "status": "processing",
        "outcome": "all_succeeded",
        "allowed": ["completed"],
        "children": {"total": 7, "succeeded": 7, "failed": 0, "unfinished": 0},
        "counters": {"files_success": {"parent": 0, "children": 7}},
    }
]


def mixed_checks() -> list[CheckResult]:
    """Every status, in an order that is not the display order, with failures of several shapes."""
    return [
        make_check("a pass", PASS),
        make_check(
            "b files",
            FAIL,
            type="json_integrity",
            source="results",
            observed={"files": 4, "bad_files": 2},
            expected={"min_files": 1},
            failures=JSON_FAILURES,
            failure_count=3,
            notes=["skipped 1 file larger than 1 GB"],
        ),
        make_check("c warn", WARN, failures=[{"key": {"id": 1}, "nulls": None}], failure_count=1),
        make_check("d error", ERROR),
        make_check("e skip", SKIP),
        make_check(
            "f batches",
            FAIL,
            type="status_consistency",
            observed={"parents": 6, "inconsistent": 1},
            expected={"expect": {"all_succeeded": ["completed"]}},
            failures=CONSISTENCY_FAILURES,
            failure_count=1,
        ),
        make_check("g pass", PASS),
        make_check("h error", ERROR),
        make_check("i warn", WARN),
    ]


# --- a small DOM, to assert on structure rather than on substrings ---------------------------

VOID = {"meta", "input", "col", "br", "img", "link", "hr", "source", "area", "base", "embed", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def all(self, tag: str = "", cls: str = "") -> list[Node]:
        return [
            n
            for n in self.walk()
            if (not tag or n.tag == tag) and (not cls or cls in n.classes) and n is not self
        ]

    def one(self, tag: str = "", cls: str = "") -> Node:
        found = self.all(tag, cls)
        assert len(found) == 1, (tag, cls, len(found))
        return found[0]

    def by_id(self, ident: str) -> Node:
        found = [n for n in self.walk() if n.attrs.get("id") == ident]
        assert len(found) == 1, (ident, len(found))
        return found[0]


class _DomBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert tag in [n.tag for n in self.stack], f"</{tag}> closes nothing"
        while self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: bytes) -> Node:
    builder = _DomBuilder()
    builder.feed(html.decode("utf-8"))
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def render(checks: list[CheckResult], params: dict[str, Any] | None = None) -> tuple[str, Node]:
    data = render_html(make_verdict(checks, params))
    return data.decode("utf-8"), parse(data)


def key_values(node: Node) -> dict[str, str]:
    """The dt/dd pairs under ``node`` as text."""
    keys, values = node.all("dt"), node.all("dd")
    return {k.text(): v.text() for k, v in zip(keys, values, strict=True)}


def row_names(doc: Node) -> list[str]:
    return [row.all("td")[1].text() for row in doc.all("tr", "check-row")]


# --- self-contained, no network ---------------------------------------------------------------


def test_render_html_makes_no_external_reference() -> None:
    html, doc = render(mixed_checks())
    for node in doc.walk():
        assert node.tag not in {"link", "img", "iframe", "object", "embed", "base", "form"}
        assert "src" not in node.attrs, node
        assert (node.attrs.get("href") or "#").startswith("#"), node.attrs
        assert not any(name.startswith("on") for name in node.attrs), node.attrs
    css = "".join(n.text() for n in doc.all("style"))
    assert "@import" not in css
    assert "url(" not in css
    assert "http://" not in html
    assert "https://" not in html
    assert not re.search(r"""(?:href|src|action)\s*=\s*["']?//""", html)


def test_render_html_allows_only_its_own_script_by_hash() -> None:
    _, doc = render(mixed_checks())
    (script,) = doc.all("script")
    digest = base64.b64encode(hashlib.sha256(script.text().encode()).digest()).decode()
    (csp,) = [m for m in doc.all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    policy = csp.attrs["content"] or ""
    assert "default-src 'none'" in policy
    assert f"script-src 'sha256-{digest}'" in policy


# --- escaping -------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", HOSTILE)
def test_render_html_escapes_hostile_data(payload: str) -> None:
    failing = make_check(
        payload,
        FAIL,
        message=payload,
        observed={payload: payload},
        failures=[{payload: payload, "nested": {"k": payload}}],
        failure_count=1,
        notes=[payload],
    )
    error = make_check(
        "broken",
        ERROR,
        error=CheckError(
            category=ErrorCategory.QUERY, retryable=False, message=payload, detail=payload
        ),
    )
    html, doc = render([failing, error], params={"run_date": payload, payload: "x"})
    assert payload not in html
    assert "<img" not in html
    assert "<script>alert" not in html
    assert str(escape(payload)) in html
    assert len(doc.all("script")) == 1
    assert doc.all("img") == []
    for node in doc.walk():
        assert not any(name.startswith("on") for name in node.attrs), node.attrs
    text = doc.text()
    assert text.count(payload) >= 8  # name, message, key, value, note, param, error, detail


CONTROLS = "nul\x00 bell\x07 esc\x1b[31m cr\r del\x7f csi\x9b rlo\u202e lri\u2066"
SHOWN = "nul\\x00 bell\\x07 esc\\x1b[31m cr\\r del\\x7f csi\\x9b rlo\\u202e lri\\u2066"
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_render_html_writes_control_characters_out() -> None:
    """No raw NUL or other control character reaches the page: each is shown as its escape,
    wherever the data goes (names, messages, samples, notes, error detail, params)."""
    failing = make_check(
        CONTROLS,
        FAIL,
        message=CONTROLS,
        observed={CONTROLS: CONTROLS},
        failures=[{"value": CONTROLS, "nested": {"k": CONTROLS}}],
        failure_count=1,
        notes=[CONTROLS],
    )
    error = make_check(
        "broken",
        ERROR,
        error=CheckError(
            category=ErrorCategory.QUERY, retryable=False, message=CONTROLS, detail=CONTROLS
        ),
    )
    html, doc = render([failing, error], params={"note": CONTROLS})
    assert _RAW_CONTROL.findall(html) == []
    assert doc.text().count(SHOWN) >= 9  # name, message, key, value, nested, note, param, error
    assert "line\n\tindented" in render([make_check("x", FAIL, message="line\n\tindented")])[0]


# --- truncation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        " ".join(f"w{i:04d}" for i in range(2000))[:10_000],
        "x" * 10_000,
    ],
    ids=["words", "one-word"],
)
def test_render_html_folds_a_10000_character_message(message: str) -> None:
    assert len(message) == 10_000
    check = make_check("long", FAIL, message=message)
    kept = check.message  # the result keeps the first kilobyte and says how long it was
    assert kept == cap_text(message) and kept.endswith("… [truncated: 10000 bytes]")
    html, doc = render([check])
    folds = doc.all("details", "long")
    assert len(folds) == 2  # the evidence and the table row
    for fold in folds:
        head = fold.one("span", "head").text()
        assert head.endswith("…")
        assert 250 < len(head) <= MESSAGE_LIMIT + 1
        assert message.startswith(head[:-1])
        assert fold.one("span", "more").text() == f"show all {len(kept):,} characters"
        assert fold.one("div", "full").text() == kept
    assert html.count(kept) == 2


def test_render_html_folds_a_long_cell_value() -> None:
    value = cap_text("v" * 5_000)  # as long as a sample value can be
    _, doc = render([make_check("wide", FAIL, failures=[{"blob": value}], failure_count=1)])
    (cell,) = [td for td in doc.all("td") if value in td.text()]
    assert len(cell.one("span", "head").text()) == CELL_LIMIT + 1
    assert cell.one("div", "full").text() == value
    assert "wrap" in cell.classes


def test_render_html_renders_1000_checks() -> None:
    checks = [
        make_check(f"check {i:04d}", [PASS, PASS, PASS, FAIL, WARN, ERROR, SKIP][i % 7])
        for i in range(1000)
    ]
    _, doc = render(checks)
    assert len(doc.all("tr", "check-row")) == 1000
    problems = sum(c.status in {FAIL, WARN, ERROR} for c in checks)
    assert len(doc.all("section", "ev")) == problems


# --- banner, order, evidence ----------------------------------------------------------------


def test_render_html_banner_counts_match() -> None:
    checks = mixed_checks()
    _, doc = render(checks)
    banner = doc.one("header", "banner")
    assert banner.one("span", "word").text() == "ERROR"
    assert "v-ERROR" in banner.classes
    shown = {}
    for item in banner.one("ul", "counts").all("li"):
        count, status = item.text().split()
        shown[status] = int(count)
    assert shown == {"ERROR": 2, "FAIL": 2, "WARN": 2, "PASS": 2, "SKIP": 1}
    assert shown == make_verdict(checks).counts
    headline = "9 checks: 2 could not be evaluated, 2 failed, 2 warned, 2 passed, 1 skipped"
    assert banner.one("p", "headline").text() == headline
    assert "2026-11-23 10:15:00 UTC" in banner.one("p", "meta").text()
    assert "run_date=2025-11-06" in banner.one("p", "params").text()


def test_render_html_banner_lists_causes_with_equal_weight() -> None:
    _, doc = render(mixed_checks())
    causes = doc.one("ol", "causes").all("li")
    shown = [
        (li.one("span", "badge").text(), [(a.attrs["href"], a.text()) for a in li.all("a")])
        for li in causes[:5]
    ]
    assert shown == [
        ("ERROR", [("#check-4", "d error")]),
        ("ERROR", [("#check-8", "h error")]),
        ("FAIL", [("#check-2", "b files")]),
        ("FAIL", [("#check-6", "f batches")]),
        ("WARN", [("#check-3", "c warn")]),
    ]
    assert {tuple(li.classes) for li in causes[:5]} == {
        ("cause", "s-ERROR"),
        ("cause", "s-FAIL"),
        ("cause", "s-WARN"),
    }
    assert causes[5].text() == "+ 1 more causes, below"


def test_render_html_banner_shows_a_source_error_once_and_whole() -> None:
    message = (
        "Could not connect to source 'pg' (postgresql://***@db:5432/batch): connection failed: "
        'connection to server at "10.0.0.7", port 5432 failed: FATAL:  password '
        'authentication failed for user "postrun_reader" (check the password)'
    )
    assert len(message) > 200
    error = CheckError(category=ErrorCategory.AUTH, retryable=False, message=message)
    checks = [
        make_check(f"pg-{i}", ERROR, source="pg", error=error, message=message) for i in (1, 2, 3)
    ]
    _, doc = render([*checks, make_check("files", FAIL, source="results")])
    causes = doc.one("ol", "causes").all("li")
    assert [li.one("span", "title").text() for li in causes] == [message, "files: fail message"]
    first = causes[0]
    assert first.one("span", "effect").text() == "→ 3 checks could not be evaluated"
    assert [a.text() for a in first.all("a")] == ["pg-1", "pg-2", "pg-3"]
    assert "error: auth, not retryable" in first.text()
    assert len(doc.all("section", "ev")) == 4  # each check keeps its own card


def test_render_html_orders_failing_and_erroring_first() -> None:
    _, doc = render(mixed_checks())
    order = ["d error", "h error", "b files", "f batches", "c warn", "i warn"]
    assert row_names(doc) == [*order, "a pass", "g pass", "e skip"]
    evidence = [section.one("span", "name").text() for section in doc.all("section", "ev")]
    assert evidence == order


def test_render_html_links_each_failing_row_to_its_evidence() -> None:
    checks = mixed_checks()
    _, doc = render(checks)
    for position, check in enumerate(checks, 1):
        row = next(r for r in doc.all("tr", "check-row") if r.all("td")[1].text() == check.name)
        links = [a.attrs["href"] for a in row.all("a")]
        if check.status in {FAIL, WARN, ERROR}:
            assert links == [f"#check-{position}"]
            section = doc.by_id(f"check-{position}")
            assert section.one("span", "name").text() == check.name
            assert f"s-{check.status.value}" in section.classes
        else:
            assert links == []


def test_render_html_shows_json_integrity_failures_in_reading_order() -> None:
    """The columns keep the order each row gives its keys, a key one row lacks placed where the
    others place it: the check decides the reading order, the page knows no check type."""
    _, doc = render(mixed_checks())
    table = doc.by_id("check-2").one("table", "failures")
    header = [th.text() for th in table.all("th")]
    assert header == ["path", "reason", "line", "column", "offset", "pointer", "message"]
    rows = [[td.text() for td in tr.all("td")] for tr in table.all("tr", "failure-row")]
    assert rows == [
        ["a.json", "truncated", "3", "7", "99", "", "truncated at line 3"],
        ["b.json", "missing", "", "", "", "", "expected file was not written"],
        ["c.json", "schema", "", "", "", "/run/rows", "not an array"],
    ]
    observed = [n.text() for n in doc.by_id("check-2").all("dt")]
    assert observed == ["files", "bad_files", "min_files"]
    assert doc.by_id("check-2").one("ul", "notes").text() == "skipped 1 file larger than 1 GB"


def test_render_html_spreads_status_consistency_children_into_columns() -> None:
    _, doc = render(mixed_checks())
    table = doc.by_id("check-6").one("table", "failures")
    header = [th.text() for th in table.all("th")]
    assert header == [
        "id",
        "status",
        "outcome",
        "allowed",
        "children.total",
        "children.succeeded",
        "children.failed",
        "children.unfinished",
        "counters.files_success",
    ]
    (row,) = table.all("tr", "failure-row")
    cells = [td.text() for td in row.all("td")]
    assert cells == [
        "R-2",
        "processing",
        "all_succeeded",
        '["completed"]',
        "7",
        "7",
        "0",
        "0",
        '{"parent": 0, "children": 7}',
    ]
    assert ["num" in td.classes for td in row.all("td")[4:8]] == [True] * 4


def test_render_html_shows_null_values_and_nested_keys() -> None:
    _, doc = render(mixed_checks())
    table = doc.by_id("check-3").one("table", "failures")
    assert [th.text() for th in table.all("th")] == ["key.id", "nulls"]
    null_cell = table.all("td")[1]
    assert (null_cell.text(), null_cell.classes) == ("null", ["null"])


@pytest.mark.parametrize(
    ("sample", "count", "more"),
    [
        (5, 5, None),
        (50, 50, "… and 30 more not shown here; all 50 are in verdict.json."),
        (50, 500, "… and 480 more not shown here; verdict.json holds a sample of 50 of the 500."),
        (0, 7, "7 failing items in all; no sample was kept."),
    ],
)
def test_render_html_caps_failure_rows(sample: int, count: int, more: str | None) -> None:
    failures = [{"row": i} for i in range(sample)]
    _, doc = render([make_check("many", FAIL, failures=failures, failure_count=count)])
    section = doc.by_id("check-1")
    assert len(section.all("tr", "failure-row")) == min(sample, FAILURE_ROWS)
    notes = section.all("p", "more-rows")
    assert [n.text() for n in notes] == ([more] if more else [])


def test_render_html_shows_error_category_retryable_and_folded_detail() -> None:
    _, doc = render(mixed_checks())
    section = doc.by_id("check-4")
    assert key_values(section) == {"category": "connectivity", "retryable": "yes"}
    assert section.one("p", "msg").text() == "d error: could not connect"
    raw = section.one("details", "raw")
    assert "open" not in raw.attrs
    assert raw.one("pre").text() == "psycopg.OperationalError: connection refused\n  at line 1"


def test_render_html_footer_names_suite_tool_and_params() -> None:
    _, doc = render(mixed_checks(), params={"run_date": "2025-11-06", "db": "/data/w.duckdb"})
    footer = doc.by_id("run")
    facts = key_values(footer)
    assert facts["suite file"] == "checks/nightly.yml"
    assert facts["suite sha256"] == "ab" * 32
    assert facts["tool"] == "postrun 0.1.0"
    assert facts["schema_version"] == "1"
    assert facts["finished"] == "2026-11-23 10:15:01 UTC"
    assert (facts["param run_date"], facts["param db"]) == ("2025-11-06", "/data/w.duckdb")


def test_render_html_status_filter_has_one_control_per_status_present() -> None:
    _, doc = render([make_check("a", PASS), make_check("b", FAIL), make_check("c", PASS)])
    radios = [i.attrs["id"] for i in doc.all("input", "filter-input")]
    assert radios == ["show-all", "show-problems", "show-FAIL", "show-PASS"]
    labels = [label.attrs["for"] for label in doc.one("div", "filters").all("label")]
    assert labels == radios


@pytest.mark.parametrize(
    ("checks", "headline"),
    [
        ([make_check("a", PASS), make_check("b", PASS)], "all 2 checks passed"),
        ([make_check("a", PASS), make_check("b", SKIP)], "2 checks: 1 passed, 1 skipped"),
        ([make_check("a", FAIL)], "1 check: 1 failed"),
        ([], "no checks ran"),
    ],
)
def test_render_html_without_problems_or_checks(checks: list[CheckResult], headline: str) -> None:
    _, doc = render(checks)
    assert doc.one("p", "headline").text() == headline
    if all(c.status in {PASS, SKIP} for c in checks):
        assert doc.all("section", "ev") == []
        assert doc.all("ol", "causes") == []
    if not checks:
        assert "This suite ran no checks." in doc.by_id("checks").text()


def test_render_html_is_deterministic() -> None:
    verdict = make_verdict(mixed_checks())
    assert render_html(verdict) == render_html(verdict.model_copy(deep=True))


# --- formatting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0 ms"),
        (0.0004, "<1 ms"),
        (0.0064, "6 ms"),
        (0.189, "189 ms"),
        (1.42, "1.42 s"),
        (75.4, "1 min 15 s"),
        (3725, "1 h 02 min"),
    ],
)
def test_format_duration(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-23T10:15:00Z", "2026-11-23 10:15:00 UTC"),
        ("2026-11-23T10:15:00.501Z", "2026-11-23 10:15:00 UTC"),
        ("2026-11-23T12:15:00+02:00", "2026-11-23 10:15:00 UTC"),
        ("yesterday", "yesterday"),
    ],
)
def test_format_timestamp(value: str, shown: str) -> None:
    assert format_timestamp(value) == shown


# --- the SQL a run sent, and what a rerun repeats ---------------------------------------------


def test_render_html_lists_the_sql_sent_and_the_rerun() -> None:
    checks = [make_check("rows", Status.PASS), make_check("pnl <b>", Status.FAIL)]
    verdict = make_verdict(checks).model_copy(
        update={
            "queries": [
                QueryInfo(
                    id="q1",
                    source="warehouse",
                    sql="SELECT count(*) AS a0 \nFROM t WHERE x < '<script>'",
                    checks=["rows", "pnl <b>"],
                    duration_s=0.012,
                ),
                QueryInfo(id="q2", source="warehouse", sql="SELECT 1", checks=["pnl <b>"]),
            ],
            "rerun_of": RerunOf(
                run_id="20261122T101500Z-aaaaaa", path="old/verdict.json", checks=["pnl <b>"]
            ),
        }
    )
    html = render_html(verdict).decode("utf-8")
    doc = parse(render_html(verdict))
    section = doc.by_id("queries")
    assert section.one("h2").text().startswith("SQL sent 2 statements")
    summaries = [d.one("summary").text() for d in section.all("details", "query")]
    assert summaries == [
        "q1 on warehouse · 12 ms · shared by rows, pnl <b>",
        "q2 on warehouse · did not return · pnl <b>",
    ]
    assert section.all("pre")[0].text() == "SELECT count(*) AS a0 \nFROM t WHERE x < '<script>'"
    assert "<script>'" not in html  # escaped like every other value
    assert key_values(doc.by_id("run"))["rerun of"] == (
        "run 20261122T101500Z-aaaaaa (old/verdict.json); ran again: pnl <b>"
    )


def test_render_html_without_queries_has_no_sql_section() -> None:
    _, doc = render([make_check("rows", Status.PASS)])
    assert [n for n in doc.walk() if n.attrs.get("id") == "queries"] == []
    assert "rerun of" not in key_values(doc.by_id("run"))
