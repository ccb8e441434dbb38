"""Dagster asset checks from a postrun suite: one asset check per postrun check, the suite run
once per execution. Needs the ``dagster`` extra (``pip install 'postrun[dagster]'``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg

from runner.checks.base import CheckSpec
from runner.engine import RunOptions, run_suite
from runner.errors import PostrunError
from runner.results import CheckError, CheckResult, ErrorCategory, Status, Verdict
from runner.suite import ParsedSuite, parse_suite

Params = Mapping[str, str] | Callable[[dg.AssetCheckExecutionContext], Mapping[str, str]]
"""Suite params: fixed values, or a function of the execution (e.g. of its partition key)."""
Asset = dg.AssetKey | str | Sequence[str] | dg.AssetsDefinition | dg.SourceAsset
FAILURE_SAMPLE = 10
"""Failure samples put into a check's metadata; failure_count says how many there were."""

_INVALID = re.compile(r"[^A-Za-z0-9_]+")


def postrun_asset_checks(
    suite_path: str | Path,
    *,
    asset: Asset,
    params: Params | None = None,
    blocking: bool = True,
    name: str | None = None,
    options: RunOptions | None = None,
    reports_dir: str | Path | None = None,
    failure_sample: int = FAILURE_SAMPLE,
) -> list[dg.AssetChecksDefinition]:
    """Asset checks on ``asset``, one per check of the suite at ``suite_path``.

    The suite is validated now (a ``SuiteError`` names file and line when definitions load);
    params are bound, and the selected checks run, once per execution. A check passes when
    postrun says PASS. Severity follows the check's ``severity`` (error → ERROR, warn → WARN),
    except that a check that could not be evaluated (ERROR) is always ERROR: postrun fails
    closed, so a blocking check that errs stops downstream assets as a failure does.
    ``reports_dir`` writes postrun's reports under ``reports_dir/<suite>/<run_id>/`` and records
    each run in ``reports_dir/history.sqlite`` (unless ``options.history``, $POSTRUN_HISTORY or
    the suite's ``history:`` name another store, or ``off``).
    """
    parsed = parse_suite(suite_path)
    names = dagster_names([check.name for check in parsed.checks])
    specs = [
        dg.AssetCheckSpec(
            names[check.name],
            asset=asset,
            description=check.description or check.name,
            blocking=blocking,
            metadata={
                "postrun_check": check.name,
                "postrun_type": check.type,
                "postrun_severity": check.severity,
            },
        )
        for check in parsed.checks
    ]
    run = _SuiteRun(
        parsed=parsed,
        names=names,
        params=params,
        options=options or RunOptions(),
        reports_dir=reports_dir,
        failure_sample=failure_sample,
    )

    def _postrun(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        yield from run(context)

    # Dagster checks the context annotation itself, and this module's annotations are strings.
    _postrun.__annotations__["context"] = dg.AssetCheckExecutionContext
    checks = dg.multi_asset_check(
        specs=specs,
        name=name or f"postrun_{_sanitise(parsed.spec.suite)}",
        description=parsed.spec.description or f"postrun suite '{parsed.spec.suite}'",
        can_subset=True,
    )(_postrun)
    return [checks]


def dagster_names(names: Sequence[str]) -> dict[str, str]:
    """Postrun check name → a unique Dagster check name (letters, digits and '_')."""
    taken: set[str] = set()
    out: dict[str, str] = {}
    for name in names:
        base = _sanitise(name) or "check"
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        out[name] = candidate
    return out


class _SuiteRun:
    """Binds the params, runs the selected checks once, turns each result into Dagster's."""

    def __init__(
        self,
        *,
        parsed: ParsedSuite,
        names: dict[str, str],
        params: Params | None,
        options: RunOptions,
        reports_dir: str | Path | None,
        failure_sample: int,
    ) -> None:
        self.parsed = parsed
        self.names = names
        self.params = params
        self.options = options
        self.reports_dir = None if reports_dir is None else Path(reports_dir)
        self.failure_sample = failure_sample

    def __call__(self, context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        keys = {key.name: key.asset_key for key in context.selected_asset_check_keys}
        wanted = [c for c in self.parsed.checks if self.names[c.name] in keys]
        results, report = self._results(context, wanted)
        for result in results:
            if result.status is Status.SKIP:  # skipped on purpose (options.skip): no verdict
                continue
            check_name = self.names[result.name]
            yield dg.AssetCheckResult(
                asset_key=keys[check_name],
                check_name=check_name,
                passed=result.status is Status.PASS,
                severity=_severity(result),
                description=result.message,
                metadata=self._metadata(result, report),
            )

    def _results(
        self, context: dg.AssetCheckExecutionContext, wanted: list[CheckSpec]
    ) -> tuple[list[CheckResult], Path | None]:
        try:
            params = self.params(context) if callable(self.params) else self.params
            suite = self.parsed.bind(params)
        except PostrunError as exc:  # a param missing or wrong: every check is ERROR / config
            context.log.error(f"postrun: {exc}")
            return [_config_error(check, str(exc)) for check in wanted], None
        only = [] if len(wanted) == len(self.parsed.checks) else [c.name for c in wanted]
        options = replace(self.options, only=only)
        if options.history_default is None and self.reports_dir is not None:
            options.history_default = (
                f"sqlite:///{(self.reports_dir / 'history.sqlite').absolute()}"
            )
        verdict = run_suite(suite, options)
        if verdict.history is not None and verdict.history.problem:
            context.log.warning(f"postrun: run not recorded: {verdict.history.problem}")
        context.log.info(
            f"postrun: suite '{verdict.suite.name}' {verdict.verdict.value} "
            f"({', '.join(f'{n} {s}' for s, n in verdict.counts.items() if n)}), "
            f"run {verdict.run_id}"
        )
        return verdict.checks, self._write_reports(context, verdict)

    def _write_reports(
        self, context: dg.AssetCheckExecutionContext, verdict: Verdict
    ) -> Path | None:
        if self.reports_dir is None:
            return None
        from runner.render import write_reports

        out_dir = self.reports_dir / verdict.suite.name / verdict.run_id
        try:
            written = write_reports(verdict, out_dir)
        except PostrunError as exc:  # the checks' results stand; the missing report is logged
            context.log.error(f"postrun: reports not written: {exc}")
            return None
        html = [path for path in written if path.name == "verdict.html"]
        return (html or written)[0]

    def _metadata(self, result: CheckResult, report: Path | None) -> dict[str, Any]:
        data = result.model_dump(mode="json")
        metadata: dict[str, Any] = {
            "status": dg.MetadataValue.text(result.status.value),
            "message": dg.MetadataValue.text(result.message),
            "observed": dg.MetadataValue.json(data["observed"]),
            "expected": dg.MetadataValue.json(data["expected"]),
            "failure_count": dg.MetadataValue.int(result.failure_count),
            "duration_s": dg.MetadataValue.float(result.duration_s),
        }
        if result.failures:
            metadata["failures"] = dg.MetadataValue.json(data["failures"][: self.failure_sample])
        if result.notes:
            metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes))
        if result.error is not None:
            metadata["error_category"] = dg.MetadataValue.text(result.error.category.value)
            metadata["retryable"] = dg.MetadataValue.bool(result.error.retryable)
            metadata["error"] = dg.MetadataValue.text(result.error.message)
        if report is not None:
            metadata["report"] = dg.MetadataValue.path(report)
        return metadata


def _severity(result: CheckResult) -> dg.AssetCheckSeverity:
    if result.status is Status.ERROR or result.severity != "warn":
        return dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckSeverity.WARN


def _config_error(check: CheckSpec, message: str) -> CheckResult:
    return CheckResult(
        name=check.name,
        type=check.type,
        source=check.source,
        severity=check.severity,
        status=Status.ERROR,
        message=f"not run: {message}",
        error=CheckError(category=ErrorCategory.CONFIG, retryable=False, message=message),
        duration_s=0.0,
    )


def _sanitise(name: str) -> str:
    return _INVALID.sub("_", name.lower()).strip("_")
