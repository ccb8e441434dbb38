"""Every check module registers exactly one type, named after the file, documented for `list`."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import runner.checks
from runner.checks import registry
from runner.checks.base import CheckSpec, register
from runner.spec import document_fields

MODULES = sorted(
    m.name for m in pkgutil.iter_modules(runner.checks.__path__) if m.name not in ("base",)
)
REGISTRY = registry()


def test_registry_has_one_type_per_module() -> None:
    assert sorted(REGISTRY) == MODULES


@pytest.mark.parametrize("name", MODULES)
def test_registry_type_lives_in_its_module(name: str) -> None:
    kind = REGISTRY[name]
    module = importlib.import_module(f"runner.checks.{name}")
    assert kind.run.__module__ == module.__name__
    assert kind.spec.__module__ == module.__name__
    assert kind.spec.__name__ == "".join(p.title() for p in name.split("_")) + "Spec"
    assert kind.summary, f"{kind.spec.__name__} needs a one-line docstring"
    document_fields([kind.spec])  # what `postrun list` does before it prints the fields
    undocumented = [
        field
        for field, info in kind.spec.model_fields.items()
        if field not in CheckSpec.model_fields and not info.description
    ]
    assert undocumented == []


def test_registry_refuses_a_second_registration() -> None:
    spec = REGISTRY["row_count"].spec
    with pytest.raises(RuntimeError, match="check type 'row_count' is registered twice"):
        register(spec)(REGISTRY["row_count"].run)


def test_registry_every_suite_field_is_documented_in_the_schema() -> None:
    """Field docs are attribute docstrings, read on demand (`document_fields`): every field of
    every model a suite file holds, nested ones included, reaches the JSON Schema."""
    from runner.suite import suite_json_schema

    schema = suite_json_schema()
    undocumented = [
        f"{model}.{field}"
        for model, definition in [("suite", schema), *schema["$defs"].items()]
        for field, prop in definition.get("properties", {}).items()
        if "description" not in prop and field not in ("type", "checks")
    ]
    assert undocumented == []
    relation = schema["$defs"]["Relation"]["properties"]["table"]["description"]
    assert relation == "Table name, optionally schema-qualified (`analytics.portfolio_snapshots`)."
