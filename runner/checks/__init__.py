"""Check types: one module per YAML `type`, each registering one spec and one run function."""

from __future__ import annotations

from runner.checks import (  # noqa: F401  (each import registers its check type)
    expectation_suite,
    freshness,
    json_integrity,
    not_null,
    reference,
    row_count,
    schema,
    sql,
    status_consistency,
)
from runner.checks.base import REGISTRY, CheckSpec, CheckType, register

__all__ = ["REGISTRY", "CheckSpec", "CheckType", "register"]
