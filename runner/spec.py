"""What a suite file may hold, whatever the check: the strict model base, durations, keys, and
field documentation read on demand. Imported by the suite loader, params and check types alike;
imports nothing of the runtime."""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import textwrap
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*|(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> object:
    """'300s', '5m', '1.5h', '2h10m', '2d' or seconds → timedelta; anything else unchanged."""
    if isinstance(value, bool):
        return value
    try:
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        if isinstance(value, str):
            if _DURATION.match(value) is None:
                raise ValueError(f"'{value}' is not a duration (use e.g. 30s, 5m, 2h10m, 1d)")
            parts = _DURATION_PART.findall(value)
            return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u or None] for n, u in parts))
    except OverflowError as exc:
        raise ValueError(f"'{value}' is too long a duration") from exc
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


# The JSON Schemas say what a suite file may hold, which is looser than the parsed type.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ]
        }
    ),
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Key = Annotated[
    list[str],
    BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class Spec(BaseModel):
    """Base of every model written in a suite file: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def document_fields(models: Iterable[type[BaseModel]]) -> None:
    """Give each field of ``models``, and of the models inside them, its attribute docstring as
    its description, and rebuild them (innermost first) so that schemas carry it.

    What pydantic's `use_attribute_docstrings` does at class creation, by reading each class's
    source: some 25 ms of every run, for descriptions only `postrun list` and `postrun schema`
    show. They call this instead.
    """
    done: set[type[BaseModel]] = set()

    def visit(model: type[BaseModel]) -> None:
        if model in done:
            return
        done.add(model)
        for info in model.model_fields.values():
            for inner in _models_in(info.annotation):
                visit(inner)
        docs: dict[str, str] = {}
        for cls in reversed(model.__mro__):
            docs |= _attribute_docstrings(cls)
        for name, info in model.model_fields.items():
            if info.description is None and name in docs:
                info.description = docs[name]
        model.model_rebuild(force=True)

    for model in models:
        visit(model)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg)
    for meta in getattr(annotation, "__metadata__", ()):
        yield from _models_in(meta)


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Field name → the string literal right after its assignment in the class body."""
    if cls.__module__.split(".")[0] != "runner":
        return {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        text = (
            after.value.value
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
            else None
        )
        if isinstance(target, ast.Name) and isinstance(text, str):
            docs[target.id] = inspect.cleandoc(text)
    return docs
