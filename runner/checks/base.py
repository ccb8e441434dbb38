"""What a check type is: the spec base class, relations, durations and the registry."""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

if TYPE_CHECKING:
    from runner.context import Context
    from runner.plan import Query, Scan
    from runner.results import Outcome

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


# The JSON Schemas say what a suite file may hold, which is looser than the parsed type.
def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


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


class Relation(Spec):
    """Rows to check: a `table` (with an optional `where`) or a `query`."""

    table: str | None = None
    """Table name, optionally schema-qualified (`analytics.portfolio_snapshots`)."""
    where: str | None = None
    """SQL condition on `table`; `:param` placeholders are bound parameters."""
    query: str | None = None
    """A SELECT whose rows are the relation; `:param` placeholders are bound parameters."""
    source: str | None = None
    """Source holding the relation; defaults to the check's source."""

    @model_validator(mode="after")
    def _table_or_query(self) -> Relation:
        check_relation(self.table, self.where, self.query)
        return self

    def describe(self) -> str:
        """Short human name: the table, or 'query'."""
        return self.table if self.table is not None else "query"

    def sql_fragments(self) -> Iterator[tuple[str, str]]:
        """(field, SQL text) pairs written by the user, for parameter validation."""
        if self.where is not None:
            yield "where", self.where
        if self.query is not None:
            yield "query", self.query


class CheckSpec(Spec):
    """Fields every check has (SPEC §2)."""

    type: str
    name: str | None = None
    """Unique name in the suite; derived from type and target when left out."""
    severity: Literal["error", "warn"] = "error"
    """error: a failure fails the run; warn: a failure only warns."""
    description: str | None = None
    """What the check protects, for people reading the report."""
    tags: list[str] = Field(default_factory=list)
    """Free labels, for selecting and grouping."""
    timeout: Annotated[Duration, AfterValidator(_positive)] = timedelta(seconds=300)
    """Longest the check may run (e.g. 30s, 5m); over it the check is ERROR / timeout."""
    source: str | None = None
    """Source the check reads; the suite's only source when left out."""

    glob_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding file globs: `{param}` substituted, resolved against the suite's folder."""
    existing_paths: ClassVar[tuple[str, ...]] = ()
    """Fields holding paths of files that must exist (resolved like `glob_fields`)."""

    def needs_source(self) -> bool:
        """Whether the check needs a check-level source: not when every relation names its own."""
        relations = [relation for _, relation in self.relations()]
        return not relations or any(relation.source is None for relation in relations)

    def target(self) -> str:
        """What the check is about, for its default name."""
        return self.source or ""

    def relations(self) -> Iterator[tuple[str, Relation]]:
        """(field path, relation) pairs the check reads."""
        return iter(())

    def sql_fragments(self) -> Iterator[tuple[str, str]]:
        """(field path, SQL text) pairs written by the user, for parameter validation."""
        for path, relation in self.relations():
            for field, sql in relation.sql_fragments():
                yield f"{path}.{field}" if path else field, sql

    def source_names(self) -> set[str]:
        """Every source the check reads (after the suite filled in the defaults)."""
        names = {r.source for _, r in self.relations() if r.source is not None}
        return names | ({self.source} if self.source else set())


class RelationCheck(CheckSpec):
    """A check over one relation given by top-level `table` + `where`, or `query`."""

    table: str | None = None
    """Table name, optionally schema-qualified."""
    where: str | None = None
    """SQL condition on `table`; `:param` placeholders are bound parameters."""
    query: str | None = None
    """A SELECT whose rows are checked; `:param` placeholders are bound parameters."""

    @model_validator(mode="after")
    def _table_or_query(self) -> RelationCheck:
        check_relation(self.table, self.where, self.query)
        return self

    @property
    def relation(self) -> Relation:
        return Relation(table=self.table, where=self.where, query=self.query, source=self.source)

    def target(self) -> str:
        return self.relation.describe()

    def relations(self) -> Iterator[tuple[str, Relation]]:
        yield "", self.relation


def check_relation(table: str | None, where: str | None, query: str | None) -> None:
    if (table is None) == (query is None):
        raise ValueError("give exactly one of 'table' or 'query'")
    if where is not None and query is not None:
        raise ValueError("'where' applies to 'table'; put the condition inside 'query'")


S = TypeVar("S", bound=CheckSpec)
RunFn = Callable[[Any, "Context"], "Outcome"]
ScansFn = Callable[[Any], "list[Scan]"]
QueriesFn = Callable[[Any, "Context"], "list[Query]"]


class CheckType:
    """A registered check type: its spec class, the function that judges it and what it reads.

    ``scans`` gives the aggregates a check needs over each relation, so that the engine can
    answer every check on one relation with one query; ``queries`` gives the statements a check
    runs on its own, for ``postrun check --explain``.
    """

    def __init__(
        self,
        name: str,
        spec: type[CheckSpec],
        run: RunFn,
        *,
        scans: ScansFn | None = None,
        queries: QueriesFn | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.run = run
        self.scans = scans
        self.queries = queries

    @property
    def summary(self) -> str:
        doc = (self.spec.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


REGISTRY: dict[str, CheckType] = {}


def register(
    spec: type[S],
    *,
    scans: Callable[[S], list[Scan]] | None = None,
    queries: Callable[[S, Context], list[Query]] | None = None,
) -> Callable[[Callable[[S, Context], Outcome]], Callable[[S, Context], Outcome]]:
    """Register ``run`` as the judge of ``spec``'s type; a type can be registered once."""
    type_name = spec_type_name(spec)

    def decorate(run: Callable[[S, Context], Outcome]) -> Callable[[S, Context], Outcome]:
        if type_name in REGISTRY:
            raise RuntimeError(f"check type '{type_name}' is registered twice")
        REGISTRY[type_name] = CheckType(type_name, spec, run, scans=scans, queries=queries)
        return run

    return decorate


def spec_type_name(spec: type[CheckSpec]) -> str:
    """The `type:` literal a spec class declares."""
    annotation = spec.model_fields["type"].annotation
    args: tuple[object, ...] = getattr(annotation, "__args__", ())
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{spec.__name__}.type must be a Literal of one string")
    return args[0]
