"""postrun: a post-run data-quality gate. Public API: load_suite, run_suite, Verdict, Status."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from runner.engine import RunOptions as RunOptions
    from runner.engine import run_suite as run_suite
    from runner.results import CheckResult as CheckResult
    from runner.results import ExitCode as ExitCode
    from runner.results import Status as Status
    from runner.results import Verdict as Verdict
    from runner.suite import Suite as Suite
    from runner.suite import load_suite as load_suite

# Loaded on first use so that `postrun --help` does not pay for SQLAlchemy and DuckDB.
_EXPORTS = {
    "RunOptions": "runner.engine",
    "run_suite": "runner.engine",
    "CheckResult": "runner.results",
    "ExitCode": "runner.results",
    "Status": "runner.results",
    "Verdict": "runner.results",
    "Suite": "runner.suite",
    "load_suite": "runner.suite",
}

__all__ = [
    "CheckResult",
    "ExitCode",
    "RunOptions",
    "Status",
    "Suite",
    "Verdict",
    "__version__",
    "load_suite",
    "run_suite",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
