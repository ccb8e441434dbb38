"""`postrun check --notify URL`: post a compact verdict to a webhook (Slack-compatible `text`).

A notification is a courtesy, never part of the verdict: a failed post is reported and the exit
code stays what the checks decided.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from runner.results import Status, Verdict

NotifyOn = Literal["failure", "always"]
TIMEOUT_S = 10.0
_LISTED = 10
_ICONS = {
    Status.PASS: ":white_check_mark:",
    Status.WARN: ":warning:",
    Status.FAIL: ":x:",
    Status.ERROR: ":rotating_light:",
}


def should_notify(verdict: Verdict, on: NotifyOn) -> bool:
    """On FAIL or ERROR always; on PASS and WARN only with ``--notify-on always``."""
    return on == "always" or verdict.verdict in (Status.FAIL, Status.ERROR)


def payload(verdict: Verdict, report: str | None = None) -> dict[str, Any]:
    """`text` for chat webhooks, and the verdict's summary for anything that reads JSON."""
    bad = [c for c in verdict.checks if c.status in (Status.FAIL, Status.ERROR, Status.WARN)]
    counts = ", ".join(f"{n} {s.lower()}" for s, n in verdict.counts.items() if n)
    lines = [
        f"{_ICONS[verdict.verdict]} postrun {verdict.suite.name}: {verdict.verdict} "
        f"({counts}) run {verdict.run_id}"
    ]
    lines += [f"• {c.status} {c.name}: {c.message}" for c in bad[:_LISTED]]
    if len(bad) > _LISTED:
        lines.append(f"• … and {len(bad) - _LISTED} more")
    if report:
        lines.append(f"report: {report}")
    return {
        "text": "\n".join(lines),
        "postrun": {
            "suite": verdict.suite.name,
            "run_id": verdict.run_id,
            "verdict": verdict.verdict,
            "exit_code": verdict.exit_code,
            "counts": verdict.counts,
            "checks": [
                {"name": c.name, "status": c.status, "message": c.message} for c in bad[:_LISTED]
            ],
            "report": report,
        },
    }


def send(url: str, verdict: Verdict, report: str | None = None) -> str | None:
    """POST the payload to ``url``; None when it was accepted, else what went wrong (the URL
    reduced to its host: webhook paths are secrets)."""
    where = display(url)
    if urlsplit(url).scheme not in ("http", "https"):
        return f"notification not sent: {where} is not an http(s) URL"
    request = urllib.request.Request(
        url,
        data=orjson.dumps(payload(verdict, report)),
        headers={"Content-Type": "application/json", "User-Agent": "postrun"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"notification to {where} failed: HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"notification to {where} failed: {reason}"
    return None


def display(url: str) -> str:
    """scheme://host[:port]/… — enough to know where, nothing of the token in the path."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the notification URL"
    return f"{parts.scheme}://{host}{port}/…" if host else "the notification URL"
