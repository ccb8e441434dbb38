"""junit.xml: one testsuite per suite, one testcase per check, for CI test-result views."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from runner.render.timestamps import parse_utc
from runner.results import CheckResult, Status, Verdict

EVIDENCE_LINES = 20
MESSAGE_ATTR_LIMIT = 1000

# Characters XML 1.0 cannot carry at all, not even as character references.
_ILLEGAL_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(verdict: Verdict) -> bytes:
    """The verdict as JUnit XML (valid against the Jenkins/Ant JUnit schema)."""
    counts = verdict.counts
    totals = {
        "tests": str(len(verdict.checks)),
        "failures": str(counts.get(Status.FAIL.value, 0)),
        "errors": str(counts.get(Status.ERROR.value, 0)),
        "time": _seconds(verdict.duration_s),
    }
    root = ET.Element("testsuites", {"name": _text(verdict.suite.name), **totals})
    suite = ET.SubElement(root, "testsuite", _suite_attributes(verdict, totals))
    _add_properties(suite, verdict)
    for result in verdict.checks:
        _add_testcase(suite, result)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _suite_attributes(verdict: Verdict, totals: dict[str, str]) -> dict[str, str]:
    attributes = {
        "name": _text(verdict.suite.name),
        **totals,
        "skipped": str(verdict.counts.get(Status.SKIP.value, 0)),
        "id": "0",
        "package": _text(verdict.suite.name),
    }
    timestamp = _timestamp(verdict.started_at)
    if timestamp is not None:
        attributes["timestamp"] = timestamp
    return attributes


def _add_properties(suite: ET.Element, verdict: Verdict) -> None:
    properties = ET.SubElement(suite, "properties")
    values: list[tuple[str, Any]] = [
        ("run_id", verdict.run_id),
        ("verdict", verdict.verdict.value),
        ("suite.path", verdict.suite.path),
        ("suite.sha256", verdict.suite.sha256),
        ("tool.version", verdict.tool.version),
        *((f"param.{name}", value) for name, value in verdict.params.items()),
    ]
    for name, value in values:
        text = value if isinstance(value, str) else _compact(value)
        ET.SubElement(properties, "property", name=_text(name), value=_text(text))


def _add_testcase(suite: ET.Element, result: CheckResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        name=_text(result.name),
        classname=_text(result.type),
        time=_seconds(result.duration_s),
    )
    message = _text(result.message)[:MESSAGE_ATTR_LIMIT]
    if result.status is Status.FAIL:
        failure = ET.SubElement(case, "failure", message=message, type=_text(result.type))
        failure.text = _text(_evidence(result))
    elif result.status is Status.ERROR:
        _add_error(case, result, message)
    elif result.status is Status.SKIP:
        ET.SubElement(case, "skipped", message=message)
    out = _system_out(result)
    if out:
        ET.SubElement(case, "system-out").text = _text(out)


def _add_error(case: ET.Element, result: CheckResult, message: str) -> None:
    error = result.error
    category = error.category.value if error is not None else "internal"
    element = ET.SubElement(case, "error", message=message, type=category)
    if error is None:
        element.text = _text(result.message)
        return
    retry = "retryable" if error.retryable else "not retryable"
    lines = [error.message, f"category: {category}, {retry}"]
    if error.detail:
        lines += ["", error.detail]
    element.text = _text("\n".join(lines))


def _system_out(result: CheckResult) -> str:
    """WARN evidence (the testcase passes) and notes, for any status."""
    lines = [f"WARN: {_evidence(result)}"] if result.status is Status.WARN else []
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def _evidence(result: CheckResult) -> str:
    """The message, observed vs expected, and up to EVIDENCE_LINES failures as compact JSON."""
    lines = [result.message]
    if result.observed or result.expected:
        lines.append(f"observed: {_compact(result.observed)}")
        lines.append(f"expected: {_compact(result.expected)}")
    shown = result.failures[:EVIDENCE_LINES]
    lines += [_compact(failure) for failure in shown]
    more = max(result.failure_count, len(result.failures)) - len(shown)
    if more > 0:
        lines.append(f"… {more} more")
    return "\n".join(lines)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timestamp(iso: str) -> str | None:
    """UTC without zone or fraction, the form the Ant JUnit schema requires; None if unparseable."""
    moment = parse_utc(iso)
    return f"{moment:%Y-%m-%dT%H:%M:%S}" if moment is not None else None


def _text(value: str) -> str:
    return _ILLEGAL_XML.sub("", value)
