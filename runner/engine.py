"""Runs a suite: selects checks, runs them on a bounded pool with per-check timeouts, and turns
every exception into an ERROR result at one boundary. Returns the Verdict."""

from __future__ import annotations

import os
import queue
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runner import __version__
from runner.causes import find_causes
from runner.checks import registry
from runner.checks.base import CheckSpec, CheckType
from runner.context import DEFAULT_SAMPLE_LIMIT, Cancellation, Context
from runner.errors import CheckConfigError, HistoryError, SourceError, UsageError
from runner.history.location import history_key, history_url
from runner.history.recent import recent_past
from runner.history.store import HistoryStore, KeyedHistory
from runner.plan import Plan, number_queries
from runner.redact import Redactor, mask_url
from runner.results import (
    DETAIL_LIMIT,
    CheckError,
    CheckResult,
    ErrorCategory,
    ExitCode,
    HistoryInfo,
    Outcome,
    SourceInfo,
    Status,
    SuiteInfo,
    ToolInfo,
    Verdict,
    count_statuses,
    worst_status,
)
from runner.sources import Source
from runner.suite import Suite
from runner.suite_errors import did_you_mean
from runner.values import escape_surrogates

if TYPE_CHECKING:
    from runner.rerun import Rerun

OnResult = Callable[[CheckResult], None]
_POLL_S = 0.1
"""Longest the engine waits for a result before it looks at the clock; it wakes at deadlines."""
_RECANCEL_S = 0.25
"""How often a cancelled statement that is still running is interrupted again."""
_GRACE_S = 1.0
"""How long a finished run waits for cancelled workers to leave the database driver."""


class Interrupt:
    """A request from outside to end the run now (postrun's handler of SIGTERM and SIGINT sets
    it): the run ends as at --max-time, its running statements cancelled in the database, every
    check not finished ERROR / timeout saying why. Setting it only records the reason, so a
    signal handler may; the engine looks at it at least every ``_POLL_S``."""

    def __init__(self) -> None:
        self.reason: str | None = None
        """What asked, e.g. "SIGTERM"; None while nothing has."""

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass
class RunOptions:
    """How to run a suite (the `postrun check` flags that are not about output)."""

    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    jobs: int = 0
    """Checks run at once; 0 picks from the CPU count."""
    sample_limit: int = DEFAULT_SAMPLE_LIMIT
    fail_on_warn: bool = False
    max_time: timedelta | None = None
    """Bound on the whole run (--max-time): checks still running then are cancelled, checks not
    started are ERROR / timeout."""
    rerun: Rerun | None = None
    """--rerun: run only these checks of an earlier run (and none if it had no failures)."""
    interrupt: Interrupt | None = None
    """Set from outside (a signal) to end the run now, as --max-time would."""
    history: str | None = None
    """--history: the store's SQLAlchemy URL, or `off`; None leaves it to $POSTRUN_HISTORY,
    the suite's `history:`, then ``history_default``."""
    history_default: str | None = None
    """The store when nothing else names one (the CLI's: history.sqlite next to the reports);
    None: no history unless named."""


def run_suite(
    suite: Suite, options: RunOptions | None = None, *, on_result: OnResult | None = None
) -> Verdict:
    """Run every selected check of ``suite`` and return the verdict. Never raises for a check."""
    options = options or RunOptions()
    selected = selection(suite, options)
    started_at = datetime.now(UTC)
    sources = {name: config.open() for name, config in suite.sources.items()}
    redact = Redactor(suite.secrets())
    store = _store(suite, options)
    key = history_key(suite.name, suite.params, suite.history_key)
    past = KeyedHistory(store, suite.name, key) if store is not None else None
    runner = _Runner(
        suite,
        registry(c.type for c in suite.checks),
        sources,
        options,
        redact=redact,
        on_result=on_result,
        history=past,
    )
    try:
        results = runner.run(selected)
        infos = [source.info() for source in sources.values()]
    finally:
        for source in sources.values():
            source.close()
    finished_at = datetime.now(UTC)
    records = {name: ctx.queries for name, ctx in runner.contexts.items()}
    results, queries = number_queries(results, records, redact)
    statuses = [r.status for r in results]
    status = worst_status(statuses)
    params = suite.shown_params(redact)
    verdict = Verdict(
        tool=ToolInfo(version=__version__),
        suite=SuiteInfo(name=suite.name, path=suite.path, sha256=suite.sha256),
        run_id=f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
        params=params,
        started_at=_iso(started_at),
        finished_at=_iso(finished_at),
        duration_s=round((finished_at - started_at).total_seconds(), 3),
        verdict=status,
        exit_code=int(ExitCode.for_status(status, fail_on_warn=options.fail_on_warn)),
        counts=count_statuses(statuses),
        checks=results,
        causes=find_causes(results, suite.checks, params),
        queries=queries,
        sources=[SourceInfo.model_validate(_scrub(i.model_dump(), redact)) for i in infos],
        rerun_of=options.rerun.of if options.rerun is not None else None,
        history=HistoryInfo(store=store.shown, key=key) if store is not None else None,
    )
    return _recorded(verdict, store, key, redact) if store is not None else verdict


def _store(suite: Suite, options: RunOptions) -> HistoryStore | None:
    """The run's history store (not yet opened), or None when history is off. The store is
    postrun's own database: it may not be one of the suite's sources."""
    url = history_url(options.history, suite.history, options.history_default)
    if url is None:
        return None
    for name, config in suite.sources.items():
        if config.url is not None and _same_database(config.url, url):
            raise UsageError(
                f"the history store {mask_url(url)} is source '{name}' of the suite: postrun "
                "never writes to what it checks; give the history its own database"
            )
    return HistoryStore(url)


def _recorded(
    verdict: Verdict, store: HistoryStore, key: str, redact: Callable[[str], str]
) -> Verdict:
    """``verdict`` added to the store, with its checks' recent past read back; a store that
    cannot be written changes nothing but the verdict's ``history.problem``."""
    try:
        store.record(verdict, key)
    except HistoryError as exc:
        store.close()
        info = HistoryInfo(store=store.shown, key=key, problem=redact(str(exc)))
        return verdict.model_copy(update={"history": info})
    try:
        past = recent_past(store, verdict, key)
    except HistoryError:
        past = {}  # the run is recorded; only the reports' look back is missing
    finally:
        store.close()
    info = HistoryInfo(store=store.shown, key=key, checks=past)
    return verdict.model_copy(update={"history": info})


def _same_database(a: str, b: str) -> bool:
    try:
        first, second = sa.engine.make_url(a), sa.engine.make_url(b)
    except (sa.exc.ArgumentError, ValueError):  # the source's own error says what is wrong
        return False
    same_file = first.database == second.database and first.database not in (None, "", ":memory:")
    return same_file and (first.host, first.port) == (second.host, second.port)


def selection(suite: Suite, options: RunOptions) -> dict[str, bool]:
    """Check name → whether this run runs it (--only, --skip, --rerun). A selection that runs
    no check is a usage error: a run that judges nothing must not read as a pass."""
    selected = select_checks(suite.checks, options.only, options.skip)
    if options.rerun is not None:
        rerun = options.rerun
        selected = {name: run and name in rerun.checks for name, run in selected.items()}
        if not rerun.checks:
            raise UsageError(
                f"--rerun: run {rerun.of.run_id} had no check that FAILed or ERRORed: there is "
                "nothing to run again"
            )
    if not any(selected.values()):
        raise UsageError(
            "the selection runs no check (every check is left out by --only / --skip / "
            "--rerun): a run that judges nothing is refused"
        )
    return selected


def select_checks(
    checks: list[CheckSpec], only: Iterable[str], skip: Iterable[str]
) -> dict[str, bool]:
    """Check name → whether it runs; unknown names in --only/--skip are usage errors."""
    names = [c.name for c in checks]
    only, skip = list(only), list(skip)
    for name in (*only, *skip):
        if name not in names:
            raise UsageError(f"no check named '{name}' in the suite{did_you_mean(name, names)}")
    return {n: (not only or n in only) and n not in skip for n in names}


class _Runner:
    """A pool of daemon worker threads. A check past its deadline (its timeout, or --max-time)
    is reported at once; its statement is interrupted, again until it stops, and its worker,
    which may be stuck in Python code, no longer counts: another takes its place."""

    def __init__(
        self,
        suite: Suite,
        kinds: Mapping[str, CheckType],
        sources: dict[str, Source],
        options: RunOptions,
        *,
        redact: Callable[[str], str],
        on_result: OnResult | None,
        history: KeyedHistory | None = None,
    ) -> None:
        self.suite = suite
        self.kinds = kinds
        self.sources = sources
        self.options = options
        self.redact = redact
        self.on_result = on_result
        self.todo: queue.Queue[CheckSpec | None] = queue.Queue()
        self.done: queue.Queue[CheckResult] = queue.Queue()
        self.running: dict[str, _Running] = {}
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.cancelled: list[Cancellation] = []
        self.contexts: dict[str, Context] = {}
        self.results: dict[str, CheckResult] = {}
        """Check name → its result, once ended (read by the checks that come ``after()``)."""
        self.held: list[CheckSpec] = []
        """Checks waiting for the checks they read (``after()``) to end."""
        self.history = history
        """Check name → the context it ran in, for the statements it used."""
        self.plan = Plan()
        self.last_recancel = 0.0
        max_time = options.max_time
        self.deadline = None if max_time is None else time.monotonic() + max_time.total_seconds()
        """When the whole run must be over (--max-time), on the ``time.monotonic()`` clock."""

    def run(self, selected: dict[str, bool]) -> list[CheckResult]:
        results = self.results
        self.plan = Plan.of((c for c in self.suite.checks if selected[c.name]), self.kinds)
        for check in self.suite.checks:
            if not selected[check.name]:
                results[check.name] = self._finish(_skipped(check, self.options))
            elif check.after():
                self.held.append(check)
            else:
                self.todo.put(check)
        self._release()
        pending = sum(selected.values())
        workers = self.options.jobs or min(8, 2 * (os.cpu_count() or 1))
        for _ in range(min(workers, pending)):
            self._spawn()
        while len(results) < len(self.suite.checks):
            try:
                result = self.done.get(timeout=self._wait())
                if result.name not in results:
                    results[result.name] = self._finish(result)
            except queue.Empty:
                pass
            for result in self._expired():
                results[result.name] = self._finish(result)
            self._release()
        for _ in range(workers):
            self.todo.put(None)
        self._wait_for_workers()
        return [results[c.name] for c in self.suite.checks]

    def _release(self) -> None:
        """Queue the held checks whose every ``after()`` check has ended."""
        ready = [c for c in self.held if all(n in self.results for n in c.after())]
        for check in ready:
            self.held.remove(check)
            self.todo.put(check)

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, daemon=True, name="postrun-check")
        self.threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while (check := self.todo.get()) is not None:
            if self._over(time.monotonic()):
                self.done.put(self._not_started(check))
                continue
            run = self._start(check)
            result = evaluate(check, run.ctx)
            with self.lock:
                if self.running.pop(check.name, None) is None:
                    return  # already reported as timed out; another worker took this one's place
            timeout = result.error is not None and result.error.category is ErrorCategory.TIMEOUT
            if timeout and time.monotonic() >= run.deadline:
                result = self._timed_out(run)  # the database kept the deadline before we looked
            self.done.put(result)

    def _start(self, check: CheckSpec) -> _Running:
        started = time.monotonic()
        deadline = started + check.timeout.total_seconds()
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        ctx = Context(
            check,
            self.kinds[check.type],
            self.sources,
            self.suite.params,
            sample_limit=self.options.sample_limit,
            deadline=deadline,
            plan=self.plan,
            history=self.history,
            results=self.results,
        )
        run = _Running(check, ctx, started, deadline)
        with self.lock:
            self.running[check.name] = run
            self.contexts[check.name] = ctx
        return run

    def _expired(self) -> list[CheckResult]:
        """Results for the checks now past their deadline (all of them once interrupted), whose
        statements get cancelled, and, past --max-time or interrupted, for the checks not
        started."""
        now = time.monotonic()
        self._recancel(now)
        over = self._over(now)
        with self.lock:
            late = [
                run
                for run in self.running.values()
                if now >= run.deadline or self._interrupted() is not None
            ]
            for run in late:
                del self.running[run.check.name]
        results = [self._timed_out(run) for run in late]
        for run in late:
            run.ctx.cancellation.cancel()
            self.cancelled.append(run.ctx.cancellation)
            if not over:
                self._spawn()  # the stuck worker no longer counts
        if over:
            results += [self._not_started(check) for check in self._unstarted()]
        return results

    def _over(self, now: float) -> bool:
        """Whether the run must end: past --max-time, or interrupted."""
        past = self.deadline is not None and now >= self.deadline
        return past or self._interrupted() is not None

    def _interrupted(self) -> str | None:
        """What interrupted the run (e.g. "SIGTERM"), or None."""
        interrupt = self.options.interrupt
        return interrupt.reason if interrupt is not None else None

    def _recancel(self, now: float) -> None:
        """Interrupt again what cancelled checks still run: DuckDB drops an interrupt that comes
        just before its statement starts."""
        if now - self.last_recancel < _RECANCEL_S:
            return
        self.last_recancel = now
        self.cancelled = [handle for handle in self.cancelled if handle.busy]
        for handle in self.cancelled:
            handle.cancel()

    def _unstarted(self) -> list[CheckSpec]:
        checks: list[CheckSpec] = []
        while True:
            try:
                check = self.todo.get_nowait()
            except queue.Empty:
                return checks
            if check is not None:
                checks.append(check)
        checks += self.held
        self.held = []

    def _wait(self) -> float:
        """How long to wait for a result: until the next deadline, at most _POLL_S."""
        now = time.monotonic()
        with self.lock:
            deadlines = [run.deadline for run in self.running.values()]
        if self.deadline is not None:
            deadlines.append(self.deadline)
        upcoming = [d - now for d in deadlines if d > now]
        return min([_POLL_S, *upcoming]) + 0.001

    def _wait_for_workers(self) -> None:
        # A cancelled statement unwinds inside the driver for a moment; a daemon thread still in
        # DuckDB when the interpreter exits aborts the process (exit 134 instead of 3).
        end = time.monotonic() + _GRACE_S
        for thread in self.threads:
            while thread.is_alive() and (left := end - time.monotonic()) > 0:
                thread.join(min(left, _RECANCEL_S))
                self._recancel(time.monotonic())

    def _timed_out(self, run: _Running) -> CheckResult:
        check = run.check
        interrupted = self._interrupted()
        now = time.monotonic()
        if interrupted is not None and now < run.deadline:
            message = (
                f"check '{check.name}' was cancelled: the run was interrupted by {interrupted} "
                "before this check finished"
            )
            return _timeout_result(check, message, duration=round(now - run.started, 4))
        if self.deadline is not None and run.deadline >= self.deadline:
            message = (
                f"check '{check.name}' was cancelled: the run reached --max-time "
                f"{self._max_time()} before this check finished"
            )
        else:
            message = (
                f"check '{check.name}' did not finish within its timeout of "
                f"{check.timeout.total_seconds():g}s and was cancelled"
            )
        return _timeout_result(check, message, duration=round(run.deadline - run.started, 4))

    def _not_started(self, check: CheckSpec) -> CheckResult:
        interrupted = self._interrupted()
        if interrupted is not None:
            message = f"check '{check.name}' not started: the run was interrupted by {interrupted}"
            return _timeout_result(check, message, duration=0.0)
        message = (
            f"check '{check.name}' not started: the run reached --max-time {self._max_time()} "
            "first (allow more time, or more --jobs)"
        )
        return _timeout_result(check, message, duration=0.0)

    def _max_time(self) -> str:
        assert self.options.max_time is not None
        return f"{self.options.max_time.total_seconds():g}s"

    def _finish(self, result: CheckResult) -> CheckResult:
        result = _redacted(result, self.redact)
        if self.on_result is not None:
            self.on_result(result)
        return result


@dataclass(frozen=True)
class _Running:
    """A check a worker is running, and when it must be over."""

    check: CheckSpec
    ctx: Context
    started: float
    deadline: float


def evaluate(check: CheckSpec, ctx: Context) -> CheckResult:
    """The one error boundary: run a check; any exception becomes an ERROR result."""
    start = time.perf_counter()
    error: CheckError | None = None
    try:
        outcome = ctx.kind.run(check, ctx)
    except SourceError as exc:
        error = CheckError(
            category=exc.category,
            retryable=exc.retryable,
            message=exc.message,
            detail=_clip(exc.detail or exc.message),
        )
    except CheckConfigError as exc:
        error = CheckError(
            category=ErrorCategory.CONFIG, retryable=False, message=str(exc), detail=_clip(str(exc))
        )
    except Exception as exc:
        error = CheckError(
            category=ErrorCategory.INTERNAL,
            retryable=False,
            message=f"postrun failed inside check '{check.name}' ({type(exc).__name__}: {exc}); "
            "this is a bug, please report it with the detail.",
            detail=_clip(traceback.format_exc()),
        )
    duration = round(time.perf_counter() - start, 4)
    base = _base(check) | {"duration_s": duration}
    if error is not None:
        return CheckResult(
            **base, status=Status.ERROR, message=error.message, error=error, notes=ctx.notes
        )
    if outcome.passed and ctx.unseen:
        return _unseen(check, ctx, outcome, base)
    if outcome.passed:
        status = Status.PASS
    else:
        status = Status.WARN if check.severity == "warn" else Status.FAIL
    return CheckResult(
        **base,
        status=status,
        message=outcome.message,
        observed=outcome.observed,
        expected=outcome.expected,
        failures=outcome.failures[: ctx.sample_limit],
        failure_count=outcome.failure_count,
        notes=[*ctx.notes, *outcome.notes],
    )


def _unseen(check: CheckSpec, ctx: Context, outcome: Outcome, base: dict[str, Any]) -> CheckResult:
    """Never a pass on data it did not see (SPEC §6): a check that held on the readable files
    of a table with skipped files is ERROR / data_malformed, its own findings kept."""
    message = (
        f"{'; '.join(ctx.unseen)}: check '{check.name}' cannot pass on data it did not see "
        f"(on the readable files: {outcome.message}); fix the files, or set 'unreadable: skip' "
        "on the source to judge the readable files alone"
    )
    error = CheckError(
        category=ErrorCategory.DATA_MALFORMED, retryable=False, message=message, detail=message
    )
    return CheckResult(
        **base,
        status=Status.ERROR,
        message=message,
        error=error,
        observed=outcome.observed,
        expected=outcome.expected,
        notes=[*ctx.notes, *outcome.notes],
    )


def _base(check: CheckSpec) -> dict[str, Any]:
    return {
        "name": check.name,
        "type": check.type,
        "source": check.source,
        "severity": check.severity,
    }


def _skipped(check: CheckSpec, options: RunOptions) -> CheckResult:
    why = "not run (--only / --skip)"
    if options.rerun is not None and check.name not in options.rerun.checks:
        why = f"not run (--rerun: it passed in run {options.rerun.of.run_id})"
    return CheckResult(**_base(check), status=Status.SKIP, message=why, duration_s=0.0)


def _timeout_result(check: CheckSpec, message: str, *, duration: float) -> CheckResult:
    error = CheckError(
        category=ErrorCategory.TIMEOUT, retryable=True, message=message, detail=message
    )
    return CheckResult(
        **_base(check), status=Status.ERROR, message=message, error=error, duration_s=duration
    )


def _redacted(result: CheckResult, redact: Callable[[str], str]) -> CheckResult:
    """``result`` with every secret replaced, wherever it hides (messages, samples, notes)."""
    return CheckResult.model_validate(_scrub(result.model_dump(mode="json"), redact))


def _scrub(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_scrub(item, redact) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, redact) for key, item in value.items()}
    return value


def _clip(text: str) -> str:
    """At most DETAIL_LIMIT bytes, keeping the start and the end (where a traceback says why)."""
    text = escape_surrogates(text)  # an undecodable file name would not encode
    data = text.encode("utf-8")
    if len(data) <= DETAIL_LIMIT:
        return text
    marker = "\n[…]\n".encode()
    head = DETAIL_LIMIT // 4
    tail = DETAIL_LIMIT - head - len(marker)
    return (data[:head] + marker + data[-tail:]).decode("utf-8", errors="ignore")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
