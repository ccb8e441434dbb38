"""What a check type is: the spec every check shares, relations, what a check declares it reads
(scans, queries) and the registry. The contract between the suite and the runtime: it imports
nothing of the runtime (context, plan, engine), which is handed the check types instead."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import Field, model_validator

from runner.spec import PositiveDuration, Spec

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runner.results import Outcome


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
    label: str | None = None
    """Name for the relation in messages (default: the table, or 'query')."""

    @model_validator(mode="after")
    def _table_or_query(self) -> Relation:
        check_relation(self.table, self.where, self.query)
        return self

    def describe(self) -> str:
        """Short human name: the label, else the table, else 'query'."""
        if self.label is not None:
            return self.label
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
    name: Annotated[str, Field(min_length=1)] = ""
    """Unique name in the suite; derived from type and target when left out (the loaded suite
    always has one)."""
    severity: Literal["error", "warn"] = "error"
    """error: a failure fails the run; warn: a failure only warns."""
    description: str | None = None
    """What the check protects, for people reading the report."""
    tags: list[str] = Field(default_factory=list)
    """Free labels, for selecting and grouping."""
    timeout: PositiveDuration = timedelta(seconds=300)
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

    def after(self) -> list[str]:
        """Checks whose results this one reads (it runs once they have ended)."""
        return []

    def relations(self) -> Iterator[tuple[str, Relation]]:
        """(field path, relation) pairs the check reads."""
        return iter(())

    def sql_fragments(self) -> Iterator[tuple[str, str]]:
        """(field path, SQL text) pairs written by the user, for parameter validation."""
        for path, relation in self.relations():
            for field, sql in relation.sql_fragments():
                yield f"{path}.{field}" if path else field, sql


class RelationCheck(CheckSpec):
    """A check over one relation given by top-level `table` + `where`, or `query`."""

    table: str | None = None
    """Table name, optionally schema-qualified."""
    where: str | None = None
    """SQL condition on `table`; `:param` placeholders are bound parameters."""
    query: str | None = None
    """A SELECT whose rows are checked; `:param` placeholders are bound parameters."""
    label: str | None = None
    """Name for the relation in messages (default: the table, or 'query')."""

    @model_validator(mode="after")
    def _table_or_query(self) -> RelationCheck:
        check_relation(self.table, self.where, self.query)
        return self

    @property
    def relation(self) -> Relation:
        return Relation(
            table=self.table,
            where=self.where,
            query=self.query,
            source=self.source,
            label=self.label,
        )

    def target(self) -> str:
        return self.relation.describe()

    def relations(self) -> Iterator[tuple[str, Relation]]:
        yield "", self.relation


def check_relation(table: str | None, where: str | None, query: str | None) -> None:
    if (table is None) == (query is None):
        raise ValueError("give exactly one of 'table' or 'query'")
    if where is not None and query is not None:
        raise ValueError("'where' applies to 'table'; put the condition inside 'query'")


@dataclass(frozen=True)
class Scan:
    """The aggregates one check needs over one relation: label → expression (e.g. count(*)).
    Every check on one relation is answered by one query of them all (``runner.plan``)."""

    relation: Relation
    columns: dict[str, sa.ColumnElement[Any]]


@dataclass(frozen=True)
class Query:
    """A statement a check sends on its own rather than through a scan."""

    statement: sa.Executable
    source: str | None = None
    """Source it runs on; the check's own when None."""
    when: str | None = None
    """When it is sent, if not always (e.g. "if the check fails": its bounded sample)."""
    sent: bool = True
    """False for what --explain shows that postrun does not send itself (GX's own queries)."""


SAMPLE = "if the check fails: its sample"
"""The ``when`` of a query that fetches a failing check's bounded sample of bad rows."""

S = TypeVar("S", bound=CheckSpec)
RunFn = Callable[[Any, Any], "Outcome"]
"""Judges a check: (spec, context) → Outcome. The context (``runner.context.Context``) is the
runtime's, handed in; the contract does not import it."""
ScansFn = Callable[[Any], "list[Scan]"]
QueriesFn = Callable[[Any, Any], "list[Query]"]
ListingFn = Callable[[], "list[str]"]


@dataclass
class CheckType:
    """A registered check type: its spec class, the function that judges it and what it reads.

    ``scans`` gives the aggregates a check needs over each relation, so that the engine can
    answer every check on one relation with one query; ``queries`` gives every other statement
    it may send, built by the very functions its run uses, so that ``postrun check --explain``
    prints what a run sends; ``listing`` adds lines to ``postrun list``.
    """

    name: str
    spec: type[CheckSpec]
    run: RunFn
    scans: ScansFn | None = None
    queries: QueriesFn | None = None
    listing: ListingFn | None = None

    @property
    def summary(self) -> str:
        doc = (self.spec.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


REGISTRY: dict[str, CheckType] = {}
"""Type name → check type, filled as check modules load (``runner.checks.registry``)."""


def register(
    spec: type[S],
    *,
    scans: Callable[[S], list[Scan]] | None = None,
    queries: Callable[[S, Any], list[Query]] | None = None,
    listing: ListingFn | None = None,
) -> Callable[[Callable[[S, Any], Outcome]], Callable[[S, Any], Outcome]]:
    """Register ``run`` as the judge of ``spec``'s type; a type can be registered once."""
    type_name = spec_type_name(spec)

    def decorate(run: Callable[[S, Any], Outcome]) -> Callable[[S, Any], Outcome]:
        if type_name in REGISTRY:
            raise RuntimeError(f"check type '{type_name}' is registered twice")
        REGISTRY[type_name] = CheckType(type_name, spec, run, scans, queries, listing)
        return run

    return decorate


def spec_type_name(spec: type[CheckSpec]) -> str:
    """The `type:` literal a spec class declares."""
    annotation = spec.model_fields["type"].annotation
    args: tuple[object, ...] = getattr(annotation, "__args__", ())
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{spec.__name__}.type must be a Literal of one string")
    return args[0]
