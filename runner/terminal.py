"""What postrun prints: the result table, the verdict line, a progress counter on a terminal;
every line escaped and capped, a stream that fails given up without changing the exit code."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, ClassVar

import typer

from runner.values import LINE_LIMIT, printable

if TYPE_CHECKING:
    from runner.results import Cause, CheckResult, Verdict


STATUS_COLOURS = {
    "PASS": "green",
    "WARN": "yellow",
    "FAIL": "red",
    "ERROR": "magenta",
    "SKIP": "bright_black",
}


class Output:
    """stdout and stderr as postrun prints to them. A stream that fails (a closed pipe, a full
    disk, a closed descriptor) is given up, never fatal: what is written does not depend on what
    is printed, nor does the exit code. That stdout failed is said once on stderr, if it works."""

    failed: ClassVar[dict[bool, str]] = {}
    """Whether stderr (True) or stdout (False) failed → why."""

    @classmethod
    def write(cls, line: str, *, err: bool = False, newline: bool = True) -> None:
        if err in cls.failed:
            return
        stream = sys.stderr if err else sys.stdout
        try:
            if stream is None:  # its descriptor was closed when postrun started
                raise ValueError("closed")
            typer.echo(line, file=stream, nl=newline)  # strips postrun's colours off a terminal
        except (OSError, ValueError) as exc:
            cls.fail(err, exc)

    @classmethod
    def flush(cls) -> None:
        for err, stream in ((False, sys.stdout), (True, sys.stderr)):
            if stream is not None and err not in cls.failed:
                try:
                    stream.flush()
                except (OSError, ValueError) as exc:
                    cls.fail(err, exc)

    @classmethod
    def fail(cls, err: bool, exc: OSError | ValueError) -> None:
        why = exc.strerror or str(exc) if isinstance(exc, OSError) else "it is closed"
        cls.failed[err] = why
        if not err:
            cls.write(
                f"postrun: could not print to stdout: {why} (the exit code is unchanged)", err=True
            )


def print_verdict(verdict: Verdict, *, quiet: bool, verbose: bool) -> None:
    """The causes (when some explain more than one check), the table (unless ``quiet``) and
    the verdict line. A check an ERROR cause above explains is one line pointing to it."""
    if not quiet:
        pointers: dict[str, int] = {}
        if any(len(c.checks) > 1 for c in verdict.causes):
            print_causes(verdict.causes)
            pointers = {
                name: number
                for number, cause in enumerate(verdict.causes, 1)
                if cause.category is not None and len(cause.checks) > 1
                for name in cause.checks
            }
        for result in verdict.checks:
            if result.name in pointers:
                print_pointer(result, pointers[result.name])
            else:
                print_result(result, verbose=verbose)
    counts = ", ".join(f"{n} {s}" for s, n in verdict.counts.items() if n)
    suite = verdict.suite.name
    line = f"{verdict.verdict.value}: suite '{suite}' ({counts}) in {verdict.duration_s:.2f}s"
    colour = STATUS_COLOURS[verdict.verdict.value]
    write_line(("\n" if not quiet else "") + typer.style(printable(line), fg=colour, bold=True))


def print_causes(causes: list[Cause]) -> None:
    """Each cause once, its whole message, the checks it explains under it."""
    noun = "cause" if len(causes) == 1 else "causes"
    write_line(typer.style(f"{len(causes)} {noun}:", bold=True))
    for number, cause in enumerate(causes, 1):
        value = cause.status.value
        status = typer.style(f"{value:<5}", fg=STATUS_COLOURS[value], bold=True)
        line = f"  {number}. {cause.title} → {cause.effect}"
        write_line(status + printable(line, limit=LINE_LIMIT - 5))
        if cause.category is not None:
            retry = "retryable" if cause.retryable else "not retryable"
            say(f"       error: {cause.category.value}, {retry}")
        if cause.evidence:
            say(f"       shared: {', '.join(cause.evidence)}")
        say(f"       checks: {'; '.join(cause.checks)}")
    write_line("")


def print_pointer(result: CheckResult, number: int) -> None:
    """A check whose error a cause above shows in full."""
    value = result.status.value
    status = typer.style(f"{value:<5}", fg=STATUS_COLOURS[value], bold=True)
    line = f"  {result.name}  see cause {number} above"
    write_line(status + printable(line, limit=LINE_LIMIT - 5))


def print_result(result: CheckResult, *, verbose: bool) -> None:
    value = result.status.value
    status = typer.style(f"{value:<5}", fg=STATUS_COLOURS[value], bold=True)
    write_line(status + printable(f"  {result.name}  {result.message}", limit=LINE_LIMIT - 5))
    if result.error is not None:
        retry = "retryable" if result.error.retryable else "not retryable"
        say(f"       error: {result.error.category.value}, {retry}")
    for note in result.notes:
        say(f"       note: {note}")
    if verbose and value in ("FAIL", "WARN"):
        for failure in result.failures[:5]:
            say(f"       - {json.dumps(failure, default=str)}")
        more = result.failure_count - min(5, len(result.failures))
        if more > 0:
            say(f"       … {more} more")


class Progress:
    """A one-line progress counter on an interactive stderr."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def __call__(self, result: CheckResult) -> None:
        self.done += 1
        name = printable(result.name, limit=40)
        write_raw(f"\r{self.done}/{self.total} checks done ({name})\033[K", err=True)

    def clear(self) -> None:
        write_raw("\r\033[K", err=True)


def say(
    text: str, *, err: bool = False, lines: bool = False, limit: int | None = LINE_LIMIT
) -> None:
    """Print ``text`` (which may hold data or the user's input): control characters written out,
    each line cut at ``limit`` characters; with ``lines``, its newlines are line breaks."""
    Output.write(printable(text, lines=lines, limit=limit), err=err)


def write_line(line: str) -> None:
    """Print a line already made safe (``printable`` data in postrun's own styling)."""
    Output.write(line)


def write_raw(text: str, *, err: bool) -> None:
    """Write postrun's own terminal controls, no newline; a failing stream is given up."""
    Output.write(text, err=err, newline=False)
