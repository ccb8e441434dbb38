"""What a finished run leaves behind: its reports, the run index, the CI step summary and the
notification; a failure to deliver one is said on stderr and never changes the exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner import process, terminal

if TYPE_CHECKING:
    from runner.results import Verdict


def main_report(written: list[Path]) -> Path:
    """The report to point a person at: verdict.html when it was written."""
    html = [path for path in written if path.name == "verdict.html"]
    return (html or written)[0]


def post_notification(
    verdict: Verdict, url: str, on: str, timeout: float, *, report: str
) -> str | None:
    """Post the verdict within ``timeout``; what to print when it went out (a failure is said
    on stderr now)."""
    from runner.notify import display, send, should_notify

    if not should_notify(verdict, "always" if on == "always" else "failure"):
        return None
    problem = send(url, verdict, report, timeout=timeout)
    if problem is not None:
        terminal.say(f"postrun: {problem} (the exit code is unchanged)", err=True)
        return None
    return f"notified: {display(url)}"


def write_all(
    verdict: Verdict,
    out_dir: Path,
    formats: list[str],
    *,
    stop: Callable[[], bool] | None = None,
) -> tuple[list[Path], str]:
    """The reports written, and what could not be (empty when all were); none is started once
    ``stop()`` says so."""
    from runner.errors import OutputError
    from runner.render import write_reports

    process.Collector.resume()
    try:
        return write_reports(verdict, out_dir, formats, stop=stop), ""
    except OutputError as exc:
        return [], str(exc)


def filenames(formats: list[str]) -> list[str]:
    """The files ``formats`` write."""
    from runner.render import FORMATS

    return [FORMATS[fmt][0] for fmt in formats]


def existing_index(out_dir: Path) -> Path | None:
    """The run index a report folder chosen with --out joins, if there is one."""
    from runner.render.index import existing_index_root

    return existing_index_root(out_dir)


def update_index(root: Path | None) -> None:
    """Rebuild the run index; a failure is reported but does not change the exit code."""
    from runner.errors import OutputError
    from runner.render.index import update_index as rebuild

    if root is None:
        return
    try:
        rebuild(root)
    except OutputError as exc:
        terminal.say(f"postrun: run index not updated: {exc}", err=True)


def append_step_summary(verdict: Verdict) -> None:
    """Append summary.md to $GITHUB_STEP_SUMMARY when GitHub Actions sets it."""
    import os

    from runner.errors import OutputError
    from runner.render import append_step_summary as append

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        append(Path(target), verdict)
    except OutputError as exc:
        terminal.say(f"postrun: step summary not written: {exc}", err=True)
