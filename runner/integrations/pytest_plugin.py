"""pytest plugin: ``pytest --postrun SUITE`` runs a suite once and reports each check as a test.

PASS passes, WARN passes with a ``PostrunWarning`` (fails with ``--postrun-fail-on warn``), FAIL
fails with the evidence, ERROR is a test error (raised in setup) with its category, SKIP skips.
An invalid suite is a collection error with its file and line. Without ``--postrun`` the plugin
only adds its options: nothing else is registered.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from runner.checks.base import CheckSpec
    from runner.results import CheckResult, Verdict
    from runner.suite import Suite

_SAMPLE_LINES = 20
"""Failure samples written into a failed test's text (the engine caps them at 20 already)."""


class PostrunWarning(UserWarning):
    """A check with ``severity: warn`` that does not hold (status WARN)."""


class CheckFailed(AssertionError):
    """Raised by a check's test item when the check ended FAIL (or WARN with fail-on warn)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postrun", "postrun data-quality suites")
    group.addoption(
        "--postrun",
        action="append",
        default=[],
        dest="postrun_suites",
        metavar="SUITE",
        help="Run a postrun suite file, one test per check (repeatable). Without test paths "
        "on the command line, only the suites are collected.",
    )
    group.addoption(
        "--postrun-param",
        action="append",
        default=[],
        dest="postrun_params",
        metavar="NAME=VALUE",
        help="A param of the suites (repeatable); else $POSTRUN_PARAM_<NAME>, else its default.",
    )
    group.addoption(
        "--postrun-history",
        default=None,
        dest="postrun_history",
        metavar="URL|off",
        help="History store of the runs (a SQLAlchemy URL, or 'off'); else $POSTRUN_HISTORY, "
        "else the suite's history:, else reports/history.sqlite under the rootdir.",
    )
    group.addoption(
        "--postrun-fail-on",
        choices=("error", "warn"),
        default="error",
        dest="postrun_fail_on",
        help="'warn' makes a WARN check fail instead of passing with a PostrunWarning.",
    )


def pytest_configure(config: pytest.Config) -> None:
    suites: list[str] = config.getoption("postrun_suites")
    if not suites:
        return
    params = _params(config.getoption("postrun_params"))
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args[:] = []  # no test paths given: the gate runs the suites, not testpaths
    config.args.extend(s for s in suites if s not in config.args)
    fail_on_warn = config.getoption("postrun_fail_on") == "warn"
    config.pluginmanager.register(_Plugin(config, suites, params, fail_on_warn), "postrun-suites")


class _Plugin:
    """The hooks that exist only when ``--postrun`` is given."""

    def __init__(
        self, config: pytest.Config, suites: list[str], params: dict[str, str], fail_on_warn: bool
    ) -> None:
        root = config.invocation_params.dir
        self.suites = {(root / s).resolve(): s for s in suites}
        self.params = params
        self.fail_on_warn = fail_on_warn
        self.history: str | None = config.getoption("postrun_history")
        self.history_default = f"sqlite:///{config.rootpath / 'reports' / 'history.sqlite'}"
        self.collected: list[PostrunSuite] = []
        self._declared: set[str] | None = None

    def params_for(self, declared: set[str]) -> dict[str, str]:
        """The params one suite gets: those it declares, and those no suite declares (so that a
        misspelt name is still refused, with the suite's list of params)."""
        if self._declared is None:
            from runner.errors import PostrunError
            from runner.suite import parse_suite

            self._declared = set()
            for path in self.suites:
                with contextlib.suppress(PostrunError):  # its own collector reports it
                    self._declared |= set(parse_suite(path).spec.params)
        return {k: v for k, v in self.params.items() if k in declared or k not in self._declared}

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> PostrunSuite | None:
        given = self.suites.get(file_path.resolve())
        if given is None:
            return None
        suite: PostrunSuite = PostrunSuite.from_parent(
            parent, path=file_path, given=given, plugin=self
        )
        self.collected.append(suite)
        return suite

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for suite in self.collected:
            verdict = suite.verdict_if_run()
            if verdict is None:
                continue
            counts = ", ".join(f"{n} {s}" for s, n in verdict.counts.items() if n)
            terminalreporter.write_line(
                f"postrun: suite '{verdict.suite.name}' ({suite.given}): {verdict.verdict.value}"
                f" ({counts}) in {verdict.duration_s:.2f}s, run {verdict.run_id}"
            )


class PostrunSuite(pytest.File):
    """A suite file: loads and binds the suite, yields one item per check, runs it once."""

    def __init__(self, *, given: str, plugin: _Plugin, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.given = given
        self.plugin = plugin
        self.fail_on_warn = plugin.fail_on_warn
        self.history = (plugin.history, plugin.history_default)
        self.suite: Suite | None = None
        self._verdict: Verdict | None = None
        self._crash: BaseException | None = None

    def collect(self) -> Iterator[PostrunCheck]:
        from runner.suite import parse_suite

        here = Path.cwd() == self.config.invocation_params.dir
        parsed = parse_suite(self.given if here else self.path)  # errors name it as typed
        params = self.plugin.params_for(set(parsed.spec.params))
        self.suite = parsed.bind(params, cwd=self.config.invocation_params.dir)
        for check, loc in zip(self.suite.checks, parsed.check_locs, strict=True):
            line = parsed.document.line(loc)
            yield PostrunCheck.from_parent(self, name=check.name, check=check, line=line)

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        from runner.errors import SuiteError, UsageError

        if isinstance(excinfo.value, SuiteError):
            return f"postrun: {excinfo.value}"
        if isinstance(excinfo.value, UsageError):  # a param: say the flag pytest takes
            return f"postrun: {str(excinfo.value).replace('--param ', '--postrun-param ')}"
        return super().repr_failure(excinfo)

    def result(self, name: str) -> CheckResult:
        """The result of check ``name``; the suite runs at the first call, for the checks the
        session selected (``-k``, node ids), and never again."""
        verdict = self._run()
        found = [r for r in verdict.checks if r.name == name]
        if not found:
            raise LookupError(f"check '{name}' is not in the verdict of {self.given}")
        return found[0]

    def verdict_if_run(self) -> Verdict | None:
        return self._verdict

    def _run(self) -> Verdict:
        if self._crash is not None:
            raise self._crash
        if self._verdict is None:
            from runner.engine import RunOptions, run_suite

            assert self.suite is not None
            selected = [item.name for item in self.session.items if item.parent is self]
            only = [] if len(selected) == len(self.suite.checks) else selected
            history, default = self.history
            options = RunOptions(
                only=only,
                fail_on_warn=self.fail_on_warn,
                history=history,
                history_default=default,
            )
            try:
                self._verdict = run_suite(self.suite, options)
                recorded = self._verdict.history
                if recorded is not None and recorded.problem:
                    sys.stderr.write(f"postrun: warning: run not recorded: {recorded.problem}\n")
            except BaseException as exc:
                self._crash = exc
                raise
        return self._verdict


class PostrunCheck(pytest.Item):
    """One check of a suite as a test: its outcome is the check's status."""

    def __init__(self, *, check: CheckSpec, line: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.line = line
        self.outcome: CheckResult | None = None
        self.extra_keyword_matches.update({check.type, *check.tags})
        # A WARN passes or fails by --postrun-fail-on, not by a `filterwarnings = error` config.
        self.add_marker(pytest.mark.filterwarnings(f"always::{_WARNING}"))

    @property
    def suite_node(self) -> PostrunSuite:
        assert isinstance(self.parent, PostrunSuite)
        return self.parent

    def setup(self) -> None:
        from runner.results import Status

        result = self.outcome = self.suite_node.result(self.name)
        self.user_properties.append(("postrun_status", result.status.value))
        self.user_properties.append(("postrun_type", result.type))
        if result.error is not None:
            self.user_properties.append(("postrun_error_category", result.error.category.value))
        if result.status is Status.ERROR:
            pytest.fail(_error_text(result, self.suite_node.given, self.line), pytrace=False)
        if result.status is Status.SKIP:
            pytest.skip(result.message or "not run")

    def runtest(self) -> None:
        from runner.results import Status

        result = self.outcome
        assert result is not None
        if result.status is Status.FAIL or (
            result.status is Status.WARN and self.suite_node.fail_on_warn
        ):
            raise CheckFailed(result)
        if result.status is Status.WARN:
            warnings.warn_explicit(
                f"{self.name}: {result.message}",
                PostrunWarning,
                filename=str(self.path),
                lineno=self.line or 0,
            )

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, CheckFailed):
            return _failure_text(excinfo.value.result, self.suite_node.given, self.line)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int | None, str]:
        line = None if self.line is None else self.line - 1
        return self.path, line, f"{self.check.type}: {self.name}"


_WARNING = f"{PostrunWarning.__module__}.{PostrunWarning.__qualname__}"


def _params(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"--postrun-param takes NAME=VALUE, got '{item}'")
        values[name.strip()] = value
    return values


def _failure_text(result: CheckResult, suite: str, line: int | None) -> str:
    where = f"{suite}:{line}" if line is not None else suite
    lines = [
        result.message,
        f"check '{result.name}' ({result.type}, severity {result.severity}) at {where}: "
        f"{result.status.value}",
        f"observed: {_json(result.observed)}",
        f"expected: {_json(result.expected)}",
    ]
    if result.failures:
        shown = result.failures[:_SAMPLE_LINES]
        total = max(result.failure_count, len(result.failures))
        lines.append(f"failures ({len(shown)} of {total}):")
        lines += [f"  - {_json(failure)}" for failure in shown]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def _error_text(result: CheckResult, suite: str, line: int | None) -> str:
    where = f"{suite}:{line}" if line is not None else suite
    error = result.error
    head = result.message
    if error is not None:
        retry = "retryable" if error.retryable else "not retryable"
        head = f"{error.category.value} error ({retry}): {error.message}"
    lines = [head, f"check '{result.name}' ({result.type}) at {where} could not be evaluated"]
    if error is not None and error.detail:
        lines.append(f"detail: {error.detail}")
    return "\n".join(lines)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
