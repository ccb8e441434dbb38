"""`postrun check --rerun VERDICT.json`: run again only what failed or errored in an earlier run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from runner.errors import UsageError
from runner.results import RerunOf, Status, Verdict
from runner.suite import Suite


@dataclass(frozen=True)
class Rerun:
    """The checks to run again, and the run they come from."""

    checks: list[str]
    of: RerunOf


def read_rerun(path: Path, suite: Suite) -> Rerun:
    """The FAIL and ERROR checks of the verdict at ``path``, an earlier run of ``suite``."""
    try:
        earlier = Verdict.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"--rerun: cannot read {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]["msg"]
        raise UsageError(f"--rerun: {path} is not a postrun verdict.json ({first})") from exc
    if earlier.suite.name != suite.name:
        raise UsageError(
            f"--rerun: {path} is a verdict of suite '{earlier.suite.name}', not '{suite.name}'"
        )
    _same_params(earlier, suite)
    failed = [c.name for c in earlier.checks if c.status in (Status.FAIL, Status.ERROR)]
    names = {c.name for c in suite.checks}
    gone = [name for name in failed if name not in names]
    if gone:
        raise UsageError(
            f"--rerun: check '{gone[0]}' was {_status(earlier, gone[0])} in run "
            f"{earlier.run_id} but is no longer in the suite; run the whole suite instead"
        )
    return Rerun(failed, RerunOf(run_id=earlier.run_id, path=str(path), checks=failed))


def _same_params(earlier: Verdict, suite: Suite) -> None:
    """A rerun judges the same batch: the checks that passed then stand for this run only when
    every param is the same (a secret one, shown as *** in both, cannot be compared)."""
    now = suite.shown_params()
    differ = [
        f"{name}={earlier.params.get(name)!r} then, {now.get(name)!r} now"
        for name in sorted(set(earlier.params) | set(now))
        if earlier.params.get(name) != now.get(name)
    ]
    if differ:
        raise UsageError(
            f"--rerun: run {earlier.run_id} was judged with other params ({'; '.join(differ)}): "
            "rerun with the same params, or run the whole suite"
        )


def _status(verdict: Verdict, name: str) -> str:
    return next(str(c.status) for c in verdict.checks if c.name == name)
