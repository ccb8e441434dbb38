"""`postrun check --notify URL`: post a compact verdict to a webhook (Slack-compatible `text`).

A notification is a courtesy, never part of the verdict: a failed post is reported and the exit
code stays what the checks decided.
"""

from __future__ import annotations

import ipaddress
import threading
import urllib.error
import urllib.request
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from runner.redact import Redactor
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
    lines += [
        f"• {c.status} {c.name}: {c.message}{_streak(verdict, c.name)}" for c in bad[:_LISTED]
    ]
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
                {
                    "name": c.name,
                    "status": c.status,
                    "message": c.message,
                    "failing_runs": _runs(verdict, c.name),
                }
                for c in bad[:_LISTED]
            ],
            "report": report,
        },
    }


def _streak(verdict: Verdict, check: str) -> str:
    words = verdict.failing_for(check)
    return f" ({words})" if words else ""


def _runs(verdict: Verdict, check: str) -> int | None:
    """How many runs in a row the check has failed, this one included; None when unknown."""
    since = verdict.failing_since(check)
    return since.runs if since is not None else None


def notify_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook, checked before the run (``--notify``; exit 2): an
    http(s) URL with a host, a valid port, no spaces or control characters."""
    where = display(url)
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"{where} holds spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in range
        host = parts.hostname
        if host and ":" in host:
            ipaddress.ip_address(host)  # an IPv6 literal must be one
    except ValueError:
        return f"{where} is not a valid URL (host or port)"
    if parts.scheme not in ("http", "https"):
        return f"{where} is not an http(s) URL"
    if not host:
        return f"{where} has no host"
    del port
    return None


def send(
    url: str, verdict: Verdict, report: str | None = None, *, timeout: float = TIMEOUT_S
) -> str | None:
    """POST the payload to ``url`` within ``timeout`` seconds in all (a server that answers one
    byte at a time is cut off); None when it was accepted, else what went wrong (the URL
    reduced to its host: webhook paths and queries are secrets)."""
    where = display(url)
    problem = notify_problem(url)
    if problem is not None:
        return f"notification not sent: {problem}"
    request = urllib.request.Request(
        url,
        data=orjson.dumps(payload(verdict, report)),
        headers={"Content-Type": "application/json", "User-Agent": "postrun"},
        method="POST",
    )
    outcome: list[str | None] = []
    poster = threading.Thread(
        target=lambda: outcome.append(_post(request, where, timeout)),
        name="postrun-notify",
        daemon=True,  # a post still hanging at the deadline is abandoned with the process
    )
    poster.start()
    poster.join(timeout)
    if not outcome:
        return f"notification to {where} timed out after {timeout:g}s"
    reason = outcome[0]
    return None if reason is None else Redactor(_url_secrets(url))(reason)


def _post(request: urllib.request.Request, where: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"notification to {where} failed: HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"notification to {where} failed: {reason}"
    return None


def display(url: str) -> str:
    """scheme://host[:port]/… — enough to know where, nothing of the token in the path; only
    the scheme when the host cannot be read."""
    scheme = url.partition(":")[0] if ":" in url else ""
    shown = f"{scheme}://…" if scheme.isalpha() else "the notification URL"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return shown
    if not host or any(c.isspace() or not c.isprintable() for c in host):
        return shown
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}/…"


def _url_secrets(url: str) -> list[str]:
    """What a failure message must not repeat: the path, query and userinfo of ``url``."""
    after = url.partition("://")[2]
    netloc, slash, rest = after.partition("/")
    secrets = [url, after, slash + rest, rest, *rest.replace("?", "/").split("/")]
    if "@" in netloc:
        secrets.append(netloc.rpartition("@")[0])
    return secrets
