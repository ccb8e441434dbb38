"""--notify: a compact JSON post on FAIL/ERROR (or always); a failed post changes nothing."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runner.notify import display, payload, send, should_notify
from runner.results import CheckResult, Status, SuiteInfo, ToolInfo, Verdict


def verdict(*statuses: Status) -> Verdict:
    checks = [
        CheckResult(
            name=f"check {i}",
            type="row_count",
            source="w",
            severity="error",
            status=status,
            message=f"message {i}",
            duration_s=0.1,
        )
        for i, status in enumerate(statuses)
    ]
    worst = max(statuses, key=lambda s: s.rank)
    return Verdict(
        tool=ToolInfo(version="0.1.0"),
        suite=SuiteInfo(name="nightly", path="checks/nightly.yml", sha256="ab" * 32),
        run_id="20251107T031500Z-3f9c2a",
        started_at="2025-11-07T03:15:00.000Z",
        finished_at="2025-11-07T03:15:01.000Z",
        duration_s=1.0,
        verdict=worst,
        exit_code={"PASS": 0, "WARN": 0, "FAIL": 1, "ERROR": 3}[worst.value],
        counts={s.value: statuses.count(s) for s in Status},
        checks=checks,
    )


class Hook:
    """A local webhook that records what it is sent and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(
                    {
                        "type": self.headers["Content-Type"],
                        "path": self.path,
                        "body": json.loads(body),
                    }
                )
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/s3cr3tToken"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def test_notify_posts_slack_text_and_the_summary(hook: Hook) -> None:
    failed = verdict(Status.PASS, Status.FAIL, Status.ERROR)
    assert send(hook.url, failed, "reports/nightly/run/verdict.html") is None
    (request,) = hook.received
    assert (request["type"], request["path"]) == (
        "application/json",
        "/services/T000/B000/s3cr3tToken",
    )
    assert request["body"] == {
        "text": ":rotating_light: postrun nightly: ERROR (1 pass, 1 fail, 1 error) "
        "run 20251107T031500Z-3f9c2a\n"
        "• FAIL check 1: message 1\n"
        "• ERROR check 2: message 2\n"
        "report: reports/nightly/run/verdict.html",
        "postrun": {
            "suite": "nightly",
            "run_id": "20251107T031500Z-3f9c2a",
            "verdict": "ERROR",
            "exit_code": 3,
            "counts": {"PASS": 1, "WARN": 0, "FAIL": 1, "ERROR": 1, "SKIP": 0},
            "checks": [
                {"name": "check 1", "status": "FAIL", "message": "message 1", "failing_runs": None},
                {
                    "name": "check 2",
                    "status": "ERROR",
                    "message": "message 2",
                    "failing_runs": None,
                },
            ],
            "report": "reports/nightly/run/verdict.html",
        },
    }


def test_notify_lists_at_most_ten_checks() -> None:
    text = payload(verdict(*[Status.FAIL] * 12))["text"]
    assert text.count("• FAIL") == 10
    assert text.endswith("• … and 2 more")


@pytest.mark.parametrize(
    ("status", "on", "sent"),
    [
        (Status.PASS, "failure", False),
        (Status.WARN, "failure", False),
        (Status.FAIL, "failure", True),
        (Status.ERROR, "failure", True),
        (Status.PASS, "always", True),
        (Status.WARN, "always", True),
    ],
)
def test_notify_when(status: Status, on: Any, sent: bool) -> None:
    assert should_notify(verdict(status), on) is sent


def test_notify_refused_post_is_reported_without_the_token() -> None:
    server = Hook(status=500)
    try:
        problem = send(server.url, verdict(Status.FAIL))
    finally:
        server.close()
    port = server.server.server_port
    assert (
        problem
        == f"notification to http://127.0.0.1:{port}/… failed: HTTP 500 Internal Server Error"
    )


def test_notify_unreachable_hook_is_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = send(f"http://127.0.0.1:{port}/hook?token=s3cr3t", verdict(Status.FAIL))
    assert problem is not None
    assert problem.startswith(f"notification to http://127.0.0.1:{port}/… failed: ")
    assert "s3cr3t" not in problem


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T/B/x", "https://hooks.slack.com/…"),
        ("https://user:pw@example.com:8443/x", "https://example.com:8443/…"),
        ("ftp://example.com/x", "ftp://example.com/…"),
        ("not a url", "the notification URL"),
    ],
)
def test_notify_display_hides_path_and_credentials(url: str, shown: str) -> None:
    assert display(url) == shown


def test_notify_non_http_url_is_not_sent() -> None:
    assert send("ftp://example.com/x", verdict(Status.FAIL)) == (
        "notification not sent: ftp://example.com/… is not an http(s) URL"
    )
