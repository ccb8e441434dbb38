"""Check types: one module per YAML `type`, each registering one spec and one run function.

The modules load when the registry is first asked for, not when this package is imported: the
contract (``runner.checks.base``) is a leaf that the suite loader, the plan and the context use
without loading every check type, GX glue and all.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def registry() -> Mapping[str, CheckType]:
    """Type name → check type, every module of ``MODULES`` loaded."""
    if len(REGISTRY) < len(MODULES):
        for name in MODULES:
            import_module(f"{__name__}.{name}")
    return REGISTRY
