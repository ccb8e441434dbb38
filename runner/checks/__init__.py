"""Check types: one module per YAML `type`, each registering one spec and one run function.

The modules load when the registry is first asked for, not when this package is imported: the
contract (``runner.checks.base``) is a leaf that the suite loader, the plan and the context use
without loading every check type, GX glue and all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import import_module

from runner.checks.base import REGISTRY, CheckType

MODULES = (
    "anomaly",
    "expectation_suite",
    "freshness",
    "json_integrity",
    "not_null",
    "reference",
    "row_count",
    "schema",
    "sql",
    "status_consistency",
)
"""Every check type, by module (= type) name."""


def registry(types: Iterable[str] | None = None) -> Mapping[str, CheckType]:
    """Type name → check type: every one, or only those named in ``types`` (a suite's), so that
    a run loads the check types it uses and no other; unknown names are left out."""
    names = MODULES if types is None else [t for t in dict.fromkeys(types) if t in MODULES]
    for name in names:
        if name not in REGISTRY:
            import_module(f"{__name__}.{name}")
    return REGISTRY if types is None else {name: REGISTRY[name] for name in names}
