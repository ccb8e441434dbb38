"""The `postrun` command: parse arguments, call the library, print, exit. No logic of its own."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
import typer.core
from typer import _click as click

from runner import __version__, delivery, process, terminal

if TYPE_CHECKING:
    from runner.engine import RunOptions
    from runner.rerun import Rerun
    from runner.results import Verdict
    from runner.suite import Suite


class _Command(typer.core.TyperCommand):
    """A command whose usage line names its arguments plainly (SUITE, not {suite})."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


app = typer.Typer(
    name="postrun",
    help="Post-run data-quality gate: run a suite of checks against what a batch left behind.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        terminal.say(f"postrun {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print postrun's version and exit."
        ),
    ] = False,
) -> None:
    """Post-run data-quality gate: run a suite of checks against what a batch left behind."""


def _demo_help() -> str:
    from runner.faults import CLEAN, DEFAULT_FAULTS, FAULTS

    width = max(len(name) for name in FAULTS)
    faults = "\n".join(f"  {name:<{width}}  {line}" for name, line in FAULTS.items())
    return (
        "Build a demo batch with incidents injected, run the demo suite, print where the report "
        "is.\n\n"
        f"It exits 1 on purpose: by default it injects {' and '.join(DEFAULT_FAULTS)}, which "
        f"the suite catches. --fault {CLEAN} builds a clean batch: every check passes, exit 0."
        f"\n\n\b\nFaults (--fault NAME, repeatable):\n{faults}"
    )


ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", metavar="NAME=VALUE", help="Suite param as NAME=VALUE (repeatable)."
    ),
]
SuiteArg = Annotated[Path, typer.Argument(metavar="SUITE", help="Suite file (YAML).")]
ALL_FORMATS = "json,html,junit,md"  # runner.render.FORMATS, spelled here to keep --help light
_FORMAT_HELP = (
    "Reports to write, comma-separated: json (verdict.json), html (verdict.html), "
    "junit (junit.xml), md (summary.md)."
)
_OUT_HELP = (
    "Report folder [default: reports/<suite>/<run_id>]. The run index <root>/index.html "
    "(runs that wrote verdict.json) is rebuilt after each run: at reports/ by default; with "
    "--out DIR at DIR/../.. only if an index.html is already there, so "
    "--out <root>/<suite>/<run> joins an existing index and any other folder gets none."
)
_MAX_TIME_HELP = (
    "Bound on the whole run, e.g. 30s or 10m: checks still running then are cancelled and "
    "checks not started are ERROR / timeout; the reports are still written (exit 3)."
)
_RERUN_HELP = (
    "Run only the checks that were FAIL or ERROR in this earlier verdict of the same suite; the "
    "others are SKIP and the new verdict links the earlier one (rerun_of)."
)
_NOTIFY_HELP = (
    "POST a compact JSON verdict (Slack-compatible 'text' plus a summary) to this webhook on "
    "FAIL or ERROR; a failed post is reported and never changes the exit code."
)
_EXPLAIN_HELP = (
    "Print the SQL the run would send (checks on one relation share one query) and exit 0, "
    "without connecting to any source."
)
_HISTORY_HELP = (
    "History store: a SQLAlchemy URL (e.g. postgresql://host/db) or 'off' [default: "
    "$POSTRUN_HISTORY, else the suite's history:, else history.sqlite in the reports root]."
)
HistoryOpt = Annotated[str | None, typer.Option("--history", metavar="URL|off", help=_HISTORY_HELP)]
DEFAULT_SAMPLE_LIMIT = 20  # runner.context.DEFAULT_SAMPLE_LIMIT, spelled here to keep --help light


@app.command(cls=_Command)
def check(
    suite: SuiteArg,
    param: ParamOpt = None,
    out: Annotated[Path | None, typer.Option(metavar="DIR", help=_OUT_HELP)] = None,
    format: Annotated[
        str, typer.Option("--format", metavar="FORMATS", help=_FORMAT_HELP)
    ] = ALL_FORMATS,
    fail_on: Annotated[
        str, typer.Option("--fail-on", metavar="error|warn", help="'warn' makes WARN exit 1.")
    ] = "error",
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="NAME", help="Run only this check (repeatable)."),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", metavar="NAME", help="Skip this check (repeatable)."),
    ] = None,
    jobs: Annotated[
        int, typer.Option(metavar="N", help="Checks run at once (0: from CPU count).", min=0)
    ] = 0,
    max_time: Annotated[
        str | None, typer.Option("--max-time", metavar="DURATION", help=_MAX_TIME_HELP)
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the verdict line.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print failure samples.")
    ] = False,
    rerun: Annotated[
        Path | None,
        typer.Option("--rerun", metavar="VERDICT.json", help=_RERUN_HELP),
    ] = None,
    sample_limit: Annotated[
        int,
        typer.Option("--sample-limit", metavar="N", min=0, help="Failure samples kept per check."),
    ] = DEFAULT_SAMPLE_LIMIT,
    notify: Annotated[
        str | None, typer.Option("--notify", metavar="URL", help=_NOTIFY_HELP)
    ] = None,
    notify_on: Annotated[
        str,
        typer.Option(
            "--notify-on", metavar="failure|always", help="'failure' (FAIL or ERROR) or 'always'."
        ),
    ] = "failure",
    explain: Annotated[bool, typer.Option("--explain", help=_EXPLAIN_HELP)] = False,
    history: HistoryOpt = None,
) -> None:
    """Run a suite, write its reports, print a table; exit 0 PASS, 1 FAIL, 2 usage, 3 ERROR.

    SIGTERM or SIGINT ends the run as --max-time does: statements still running are cancelled in
    the database, checks not finished are ERROR / timeout, the reports are written, exit 3 (a
    second signal exits at once, 143 or 130, leaving no partial report). When
    $GITHUB_STEP_SUMMARY is set, summary.md is also appended to that file.
    """
    from runner.engine import Interrupt, RunOptions

    interrupt = Interrupt()
    process.Signals.catch(interrupt)
    formats = _formats(format)
    if fail_on not in ("error", "warn"):
        _usage(f"--fail-on must be 'error' or 'warn', not '{fail_on}'")
    if notify_on not in ("failure", "always"):
        _usage(f"--notify-on must be 'failure' or 'always', not '{notify_on}'")
    if notify is not None:
        _check_notify(notify)
    options = RunOptions(
        only=only or [],
        skip=skip or [],
        jobs=jobs,
        sample_limit=sample_limit,
        fail_on_warn=fail_on == "warn",
        max_time=_duration("--max-time", max_time),
        interrupt=interrupt,
    )
    loaded = _load(suite, param)
    if rerun is not None:
        options.rerun = _rerun(rerun, loaded)
    if explain:
        _explain(loaded, options)
    started = time.monotonic()
    index_root = delivery.existing_index(out) if out else Path("reports")
    options.history = history
    options.history_default = _default_history(index_root)
    verdict = _run(loaded, options)
    out_dir = out or Path("reports") / verdict.suite.name / verdict.run_id
    _emit(
        verdict,
        out_dir,
        formats,
        index_root=index_root,
        step_summary=True,
        quiet=quiet,
        verbose=verbose,
        notify=(notify, notify_on, _notify_timeout(started, options)) if notify else None,
    )


@app.command(cls=_Command)
def validate(suite: SuiteArg, param: ParamOpt = None) -> None:
    """Validate a suite without touching data: the files it references, its database files and
    result folders must exist; exit 0 or 2."""
    from runner.errors import PostrunError, SuiteError
    from runner.suite import missing_paths, parse_suite

    try:
        parsed = parse_suite(suite)
        missing = [n for n, p in parsed.spec.params.items() if p.required and not _given(n, param)]
        if not missing:
            absent = missing_paths(parsed, parsed.bind(_params(param)))
            if absent:
                raise SuiteError(absent)
    except PostrunError as exc:
        _usage(str(exc))
    note = f" (paths needing {', '.join(missing)} not checked: no value given)" if missing else ""
    terminal.say(f"{suite}: valid suite '{parsed.spec.suite}', {len(parsed.checks)} checks{note}")


@app.command("list")
def list_types() -> None:
    """List the check types with a one-line description and their fields."""
    from runner.checks import registry
    from runner.checks.base import CheckSpec
    from runner.spec import document_fields

    kinds = registry()
    document_fields(kind.spec for kind in kinds.values())
    common = set(CheckSpec.model_fields)
    for name in sorted(kinds):
        kind = kinds[name]
        terminal.say(f"{name}\n    {kind.summary}", lines=True)
        for field, info in kind.spec.model_fields.items():
            if field in common:
                continue
            need = "required" if info.is_required() else "optional"
            doc = " ".join((info.description or "").split())
            terminal.say(f"    {info.alias or field:<18} {need:<9} {doc}")
        for line in kind.listing() if kind.listing is not None else ():
            terminal.say(f"    {line}")
        terminal.say("")
    terminal.say("Every check also takes: " + ", ".join(sorted(common - {"type"})))


@app.command(cls=_Command)
def report(
    verdict_file: Annotated[
        Path, typer.Argument(metavar="VERDICT.json", help="A verdict.json written by a run.")
    ],
    format: Annotated[
        str, typer.Option("--format", metavar="FORMATS", help=_FORMAT_HELP)
    ] = ALL_FORMATS,
    out: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Report folder [default: the verdict's own folder]."),
    ] = None,
) -> None:
    """Re-render reports from a stored verdict.json and print the files written.

    Exit 0 when written, 2 when the verdict file is unreadable or invalid, 3 when a report
    cannot be written or SIGTERM/SIGINT came (the report being written is finished, no other is
    started). Like check --out, updates the run index at DIR/../.. if one is there.
    """
    from runner.errors import UsageError
    from runner.render import read_verdict

    process.Signals.catch()
    formats = _formats(format)
    try:
        verdict = read_verdict(verdict_file)
    except UsageError as exc:
        _usage(str(exc))
    out_dir = out or verdict_file.parent
    written, problem = delivery.write_all(
        verdict, out_dir, formats, stop=lambda: process.Signals.received > 0
    )
    if problem:
        terminal.say(f"postrun: reports not written: {problem}", err=True)
    if process.Signals.received:
        left = [
            out_dir / name for name in delivery.filenames(formats) if out_dir / name not in written
        ]
        terminal.say(_stopped_writing(left), err=True)
    if problem or process.Signals.received:
        raise typer.Exit(3)
    delivery.update_index(delivery.existing_index(out_dir))
    for path in written:
        terminal.say(os.path.normpath(path))


@app.command()
def schema(
    verdict: Annotated[
        bool, typer.Option("--verdict", help="Print the verdict.json schema instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of suite files (or of verdict.json with --verdict)."""
    if verdict:
        from runner.results import Verdict

        document = Verdict.model_json_schema()
    else:
        from runner.suite import suite_json_schema

        document = suite_json_schema()
    terminal.say(json.dumps(document, indent=2), lines=True, limit=None)


@app.command(help=_demo_help())
def demo(
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME",
            help="Incident to inject (repeatable; 'none' for a clean batch); the names are above.",
        ),
    ] = None,
    dir: Annotated[
        Path, typer.Option("--dir", metavar="DIR", help="Folder to build the demo in (rebuilt).")
    ] = Path("postrun-demo"),
    history: HistoryOpt = None,
    history_days: Annotated[
        int,
        typer.Option(
            "--history-days",
            metavar="N",
            min=0,
            max=60,
            help="First record this many clean nights, so that the anomaly checks have a past "
            "to judge tonight against; also writes reports/demo/history.html.",
        ),
    ] = 0,
) -> None:
    from runner.demo import DEFAULT_FAULTS, FAULTS, build_demo, find_demo_suite
    from runner.engine import Interrupt, RunOptions

    interrupt = Interrupt()
    process.Signals.catch(interrupt)
    chosen = tuple(fault or DEFAULT_FAULTS)
    suite = find_demo_suite()
    try:
        for night in range(history_days, 0, -1):  # the oldest first; the first build empties
            past = build_demo(dir, ("none",), night=night, keep_reports=night < history_days)
            options = RunOptions(interrupt=interrupt, history=history)
            _run(_load(suite, [f"{k}={v}" for k, v in past.params.items()]), options)
        batch = build_demo(dir, chosen, keep_reports=history_days > 0)
    except ValueError as exc:
        _usage(str(exc))
    injected = ", ".join(f"{f} ({FAULTS[f]})" for f in batch.faults) or "none: a clean batch"
    nights = f"history: {history_days} clean nights recorded first\n" if history_days else ""
    terminal.say(f"demo batch built in {batch.root}\n{nights}injected: {injected}\n", lines=True)
    reports = batch.root / "reports"
    loaded = _load(suite, [f"{k}={v}" for k, v in batch.params.items()])
    default = _default_history(reports)
    verdict = _run(
        loaded, RunOptions(interrupt=interrupt, history=history, history_default=default)
    )
    if history_days and verdict.history is not None and not verdict.history.problem:
        from runner.history.location import history_url

        url = history_url(history, loaded.history, default)
        if url is not None:
            _write_history_page(verdict, url, reports)
    out_dir = reports / verdict.suite.name / verdict.run_id
    _emit(
        verdict,
        out_dir,
        _formats(ALL_FORMATS),
        index_root=reports,
        step_summary=False,
        quiet=False,
        verbose=True,
    )


def _write_history_page(verdict: Verdict, url: str, reports: Path) -> None:
    """reports/<suite>/history.html of the demo's nights (a failure is said, nothing more)."""
    from datetime import UTC, datetime, timedelta

    from runner.errors import PostrunError
    from runner.history.page import render_history_html
    from runner.history.query import load_history
    from runner.history.store import HistoryStore
    from runner.render import write_atomic

    store = HistoryStore(url)
    try:
        found = load_history(
            store, verdict.suite.name, since=timedelta(days=1), now=datetime.now(UTC)
        )
        target = reports / verdict.suite.name / "history.html"
        write_atomic(target, render_history_html(found, keys=[]))
        terminal.say(f"history: {target}")
    except PostrunError as exc:
        terminal.say(f"postrun: history.html not written: {exc}", err=True)
    finally:
        store.close()


@app.command("history", cls=_Command)
def history_command(
    suite: Annotated[str, typer.Argument(metavar="SUITE", help="Suite file (YAML) or suite name.")],
    since: Annotated[
        str, typer.Option(help="How far back, e.g. 30d, 12h, 90m.", metavar="DURATION")
    ] = "30d",
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            metavar="NAME=VALUE",
            help="Only runs whose history key holds k=v (repeatable).",
        ),
    ] = None,
    check: Annotated[str | None, typer.Option(metavar="NAME", help="Only this check.")] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format", metavar="FORMAT", help="table, json, csv, or html (writes history.html)."
        ),
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="The history.html to write [default: reports/<suite>/history.html].",
        ),
    ] = None,
    history: HistoryOpt = None,
) -> None:
    """Show the recorded runs of a suite: per check its statuses, flips, last failure and since
    when it fails (table), every run and check (json, csv), or reports/<suite>/history.html
    with a status grid and charts. Exit 0, 2 on a usage error, 3 when the store is unreadable."""
    from datetime import UTC, datetime

    from runner.errors import HistoryError
    from runner.history import formats
    from runner.history.query import load_history
    from runner.history.store import HistoryStore

    if format not in ("table", "json", "csv", "html"):
        _usage(f"--format takes table, json, csv or html; got '{format}'")
    period = _duration("--since", since)
    assert period is not None
    for pair in key or []:
        if "=" not in pair:
            _usage(f"--key takes NAME=VALUE, got '{pair}'")
    name, url = _history_store(suite, history)
    store = HistoryStore(url)
    try:
        found = load_history(
            store,
            name,
            since=period,
            now=datetime.now(UTC),
            keys=key or [],
            check=check,
            detail=format != "table",  # the table shows the summary: no check rows to build
        )
    except HistoryError as exc:
        terminal.say(f"postrun: {exc}", err=True)
        raise typer.Exit(3) from None
    finally:
        store.close()
    if format == "html":
        from runner.history.page import render_history_html
        from runner.render import write_atomic

        target = out or Path("reports") / name / "history.html"
        write_atomic(target, render_history_html(found, keys=key or []))
        terminal.say(str(target))
        return
    if format == "json":  # one line: every control character in it is escaped already
        terminal.say(formats.render_json(found), limit=None)
        return
    render = formats.render_table if format == "table" else formats.render_csv
    terminal.say(render(found), lines=True, limit=None)


@app.command(cls=_Command)
def init(
    dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="Project folder; the suite goes to DIR/checks.")
    ] = Path("."),
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Database URL the batch writes; a relative sqlite:/// or duckdb:/// file is "
            "read from the current directory [default: DIR/warehouse.duckdb; asked when "
            "interactive].",
        ),
    ] = None,
    results: Annotated[
        str | None,
        typer.Option(
            metavar="FOLDER",
            help="Folder (or glob) of result files, relative to the current directory "
            "[default: DIR/results; asked when interactive].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing checks/postrun.yml.")] = False,
) -> None:
    """Write a starter suite, DIR/checks/postrun.yml, that passes `postrun validate`.

    On a terminal it asks for the database URL and the results folder; otherwise (CI, scripts)
    it asks nothing and uses --url / --results or the defaults.
    """
    from runner.errors import UsageError
    from runner.init import default_results, default_url, write_starter

    if sys.stdin.isatty():
        url = url or typer.prompt("Database URL", default=default_url(dir))
        results = results or typer.prompt("Results folder", default=default_results(dir))
    url, results = url or default_url(dir), results or default_results(dir)
    try:
        path = write_starter(dir, url, results, force=force)
    except UsageError as exc:
        _usage(str(exc))
    terminal.say(f"wrote {path}\nnext: postrun validate {path}", lines=True)


def main() -> NoReturn:
    """Console-script entry point."""
    process.Collector.pause()
    process.hold_standard_descriptors()
    code = 0
    try:
        app()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    except KeyboardInterrupt:
        terminal.say("interrupted", err=True)
        code = 130
    except Exception:  # fail closed: a crash must never read as PASS (0) or FAIL (1)
        import traceback

        terminal.say(traceback.format_exc().rstrip("\n"), err=True, lines=True)
        terminal.say(
            "postrun: internal error (see the traceback above); nothing was judged", err=True
        )
        code = 3
    process.exit_process(code)


# --- helpers: loading, running, printing ------------------------------------------------------


def _load(suite: Path, param: list[str] | None) -> Suite:
    from runner.errors import SuiteError, UsageError
    from runner.suite import load_suite

    try:
        return load_suite(suite, _params(param))
    except (SuiteError, UsageError) as exc:
        _usage(str(exc))


def _rerun(path: Path, suite: Suite) -> Rerun:
    from runner.errors import UsageError
    from runner.rerun import read_rerun

    try:
        return read_rerun(path, suite)
    except UsageError as exc:
        _usage(str(exc))


def _explain(suite: Suite, options: RunOptions) -> NoReturn:
    """Print the statements the run would send, connecting to nothing; exit 0 (2 on bad names)."""
    from runner.checks import registry
    from runner.engine import selection
    from runner.errors import PostrunError
    from runner.explain import explain

    try:
        chosen = selection(suite, options)
        kinds = registry(c.type for c in suite.checks)
        text = explain(suite, chosen, kinds, sample_limit=options.sample_limit)
        terminal.say(text, lines=True)
    except PostrunError as exc:
        _usage(str(exc))
    raise typer.Exit(0)


def _run(suite: Suite, options: RunOptions) -> Verdict:
    from runner.engine import run_suite
    from runner.errors import UsageError

    process.Collector.resume()
    progress = terminal.Progress(len(suite.checks)) if sys.stderr and sys.stderr.isatty() else None
    try:
        return run_suite(suite, options, on_result=progress)
    except UsageError as exc:
        _usage(str(exc))
    finally:
        if progress is not None:
            progress.clear()


def _emit(
    verdict: Verdict,
    out_dir: Path,
    formats: list[str],
    *,
    index_root: Path | None,
    step_summary: bool,
    quiet: bool,
    verbose: bool,
    notify: tuple[str, str, float] | None = None,
) -> NoReturn:
    """Write the reports, the run index and the step summary, notify, then print the table; exit
    per verdict. Nothing is printed before the reports are written: stdout closed or full costs
    the table, never a report (a failed notification is reported and changes nothing either).
    A signal while the reports are written lets the one being written finish, then exits 3."""
    before = process.Signals.received
    written, problem = delivery.write_all(
        verdict, out_dir, formats, stop=lambda: process.Signals.received > before
    )
    stopped = process.Signals.received > before
    notified = None
    if not problem and not stopped:
        delivery.update_index(index_root)
        if step_summary:
            delivery.append_step_summary(verdict)
        if notify is not None:
            notified = delivery.post_notification(
                verdict, *notify, report=str(delivery.main_report(written))
            )
    terminal.print_verdict(verdict, quiet=quiet, verbose=verbose)
    if verdict.history is not None and verdict.history.problem:
        terminal.say(
            f"postrun: warning: run not recorded: {verdict.history.problem} (the verdict and "
            "the exit code are unchanged)",
            err=True,
        )
    if problem:
        terminal.say(f"postrun: reports not written: {problem}", err=True)
    if stopped:
        left = [
            out_dir / name for name in delivery.filenames(formats) if out_dir / name not in written
        ]
        terminal.say(_stopped_writing(left), err=True)
    elif process.Signals.received:
        why = f"interrupted by {process.Signals.reason()}"
        terminal.say(f"postrun: {why}: the checks not finished are ERROR / timeout", err=True)
    if problem or process.Signals.received:
        raise typer.Exit(max(verdict.exit_code, 3))
    if notified:
        terminal.say(notified)
    terminal.say(f"report: {os.path.normpath(delivery.main_report(written))}")
    raise typer.Exit(verdict.exit_code)


def _default_history(reports_root: Path | None) -> str:
    """The embedded store in the reports root (``reports/`` unless --out joins another)."""
    from runner.history.location import default_url

    return default_url(reports_root or Path("reports"))


def _history_store(suite: str, option: str | None) -> tuple[str, str]:
    """The suite's name and the store to read: --history, $POSTRUN_HISTORY, the suite file's
    `history:`, else reports/history.sqlite (which must exist: reading creates nothing)."""
    import re

    from runner.errors import PostrunError
    from runner.history.location import history_url
    from runner.suite import parse_suite

    suite_url = None
    if Path(suite).is_file():
        try:
            parsed = parse_suite(suite)
            name, suite_url = parsed.spec.suite, parsed.history()
        except PostrunError as exc:
            _usage(str(exc))
    elif re.fullmatch(r"[a-z0-9_-]+", suite):
        name = suite
    else:
        _usage(f"'{suite}' is neither a suite file nor a suite name")
    default = _default_history(None)
    try:
        url = history_url(option, suite_url, default)
    except PostrunError as exc:
        _usage(str(exc))
    if url is None:
        _usage("history is off (--history, $POSTRUN_HISTORY or the suite say so): nothing to read")
    if url == default and not (Path("reports") / "history.sqlite").exists():
        _usage("no history yet: reports/history.sqlite does not exist (run postrun check first)")
    return name, url


def _check_notify(url: str) -> None:
    """Refuse a --notify URL that cannot be posted to before anything runs (exit 2)."""
    from runner.notify import notify_problem

    problem = notify_problem(url)
    if problem is not None:
        _usage(f"--notify: {problem}")


def _notify_timeout(started: float, options: RunOptions) -> float:
    """The notification's whole budget: 10 s, and no more than --max-time leaves (but 1 s)."""
    from runner.notify import TIMEOUT_S

    if options.max_time is None:
        return TIMEOUT_S
    left = options.max_time.total_seconds() - (time.monotonic() - started)
    return min(TIMEOUT_S, max(left, 1.0))


def _stopped_writing(left: list[Path]) -> str:
    return (
        f"postrun: interrupted by {process.Signals.reason()} while writing the reports; not "
        "written: " + ", ".join(map(str, left))
    )


def _formats(text: str) -> list[str]:
    """The chosen formats, in the canonical order of FORMATS (json, html, junit, md)."""
    from runner.render import FORMATS

    chosen = {f.strip() for f in text.split(",") if f.strip()}
    known = list(FORMATS)
    if not chosen or chosen - set(known):
        _usage(f"--format takes a comma-separated subset of {', '.join(known)}; got '{text}'")
    return [f for f in known if f in chosen]


def _duration(option: str, text: str | None) -> timedelta | None:
    """A positive duration such as 30s, 5m, 1.5h or 90 (seconds), or None when not given."""
    from runner.spec import parse_duration

    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        _usage(f"{option}: {exc}")
    if not isinstance(value, timedelta) or value <= timedelta(0):
        _usage(f"{option} must be longer than 0s, got '{text}'")
    return value


def _params(param: list[str] | None) -> dict[str, str]:
    values = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            _usage(f"--param takes NAME=VALUE, got '{item}'")
        values[name.strip()] = value
    return values


def _given(name: str, param: list[str] | None) -> bool:
    import os

    from runner.params import ENV_PREFIX

    return name in _params(param) or ENV_PREFIX + name.upper() in os.environ


def _usage(message: str) -> NoReturn:
    terminal.say(f"postrun: {message}", err=True, lines=True)
    raise typer.Exit(2)
