"""reference: every key of one relation has a matching row in another (possibly another source)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator

from runner.checks.base import CheckSpec, Query, Relation, register
from runner.context import Context
from runner.results import Outcome
from runner.spec import Key
from runner.threshold import too_few_rows

if TYPE_CHECKING:
    import duckdb

_BATCH = 50_000
_SHOWN = 5
_ONE: sa.ColumnClause[int] = sa.literal_column("1")
_QUIET = "SET enable_progress_bar = false"
"""DuckDB draws a progress bar on stdout for a long query, even when stdout is no terminal."""


class KeyedRelation(Relation):
    """A relation and the columns that make up its key."""

    key: Key
    """Key column(s), compared pairwise in order; across two sources as text (7 matches '7')."""

    @model_validator(mode="after")
    def _key_columns(self) -> KeyedRelation:
        if not self.key:
            raise ValueError("'key' must name at least one column")
        twice = sorted({c for c in self.key if self.key.count(c) > 1})
        if twice:
            raise ValueError(f"'key' lists column '{twice[0]}' twice")
        return self


class ReferenceSpec(CheckSpec):
    """Every key of `each` has a matching row in `has`; rows with a NULL key part are skipped."""

    type: Literal["reference"]
    each: KeyedRelation
    """The rows that must be matched: `table` (+ `where`) or `query`, `key`, optional `source`."""
    has: KeyedRelation
    """Where the matches must be: `table` (+ `where`) or `query`, `key`, optional `source`."""
    min_rows: Annotated[int, Field(ge=1)] | None = None
    """Fewest keys of `each` the check must see (default: none); fewer fail: an empty `each`
    usually means a batch that wrote nothing."""

    @model_validator(mode="after")
    def _same_key_length(self) -> ReferenceSpec:
        if len(self.each.key) != len(self.has.key):
            raise ValueError(
                f"each.key has {len(self.each.key)} column(s) but has.key has "
                f"{len(self.has.key)}; they are compared pairwise, in order"
            )
        return self

    def target(self) -> str:
        return f"{self.each.describe()}->{self.has.describe()}"

    def relations(self) -> Iterator[tuple[str, Relation]]:
        yield "each", self.each
        yield "has", self.has


def queries(spec: ReferenceSpec, ctx: Context) -> list[Query]:
    """One source: key counts and the unmatched keys' bounded sample. Across sources: the
    NULL-key count, then both sides' distinct keys streamed into a local DuckDB that does the
    anti-join."""
    return list(_statements(spec, ctx).values())


@register(ReferenceSpec, queries=queries)
def reference(spec: ReferenceSpec, ctx: Context) -> Outcome:
    sent = _statements(spec, ctx)
    if "unmatched" in sent:
        counts = ctx.fetch(sent["counts"].statement, sent["counts"].source)[0]
        rows, missing = ctx.violations(unmatched_keys(spec, ctx), sent["unmatched"].source)
        keys = [{c: row[c] for c in spec.each.key} for row in rows]
    else:
        counts, keys, missing = _unmatched_across_sources(spec, ctx, sent)
    observed = {
        "keys": int(counts["keys"]),
        "null_keys": int(counts["null_keys"] or 0),
        "unmatched": missing,
    }
    expected: dict[str, Any] = {"unmatched": 0, "has": spec.has.describe()}
    if spec.min_rows is not None:
        expected["min_rows"] = spec.min_rows
    few = too_few_rows(spec.min_rows, observed["keys"], spec.each.describe(), "keys")
    if few is not None and not missing:
        return Outcome(passed=False, message=few, observed=observed, expected=expected)
    where = f"{observed['keys']} keys of {spec.each.describe()}"
    nulls = observed["null_keys"]
    skipped = (
        f" ({nulls} {'row' if nulls == 1 else 'rows'} with a NULL key skipped)" if nulls else ""
    )
    if not missing:
        message = f"all {where} have a match in {spec.has.describe()}{skipped}"
        return Outcome(passed=True, message=message, observed=observed, expected=expected)
    shown = ", ".join(_show(key) for key in keys[:_SHOWN]) + (", …" if missing > _SHOWN else "")
    message = f"{missing} of {where} have no match in {spec.has.describe()}{skipped}: {shown}"
    return Outcome(
        passed=False,
        message=message,
        observed=observed,
        expected=expected,
        failures=[{"key": k} for k in keys],
        failure_count=missing,
    )


def _statements(spec: ReferenceSpec, ctx: Context) -> dict[str, Query]:
    """What the check sends, in order, by what each answers: on one source the key counts and
    the unmatched keys; across sources the NULL-key count and each side's distinct keys."""
    source = ctx.relation_source(spec.each)
    if source == ctx.relation_source(spec.has):
        unmatched = ctx.violations_statement(unmatched_keys(spec, ctx))
        return {
            "counts": Query(key_counts(spec, ctx), source),
            "unmatched": Query(unmatched, source),
        }
    rows, _ = _key_ctes(ctx, spec.each, "each")
    return {
        "null_keys": Query(_null_count(spec, rows), source),
        **{
            name: Query(_distinct_keys(ctx, relation, name), ctx.relation_source(relation))
            for relation, name in ((spec.has, "has"), (spec.each, "each"))
        },
    }


def unmatched_keys(spec: ReferenceSpec, ctx: Context) -> sa.Select[Any]:
    """Distinct keys of `each` with no row in `has` (same source), ordered."""
    _, each = _key_ctes(ctx, spec.each, "each")
    has = ctx.select(spec.has, *(sa.column(c) for c in spec.has.key)).cte("postrun_has_rows")
    match: sa.Select[Any] = sa.select(_ONE).where(
        *(has.c[h] == each.c[e] for e, h in zip(spec.each.key, spec.has.key, strict=True))
    )
    return sa.select(*each.c).where(~match.exists()).order_by(*each.c)


def key_counts(spec: ReferenceSpec, ctx: Context) -> sa.Select[Any]:
    """How many distinct full keys `each` has, and how many of its rows have a NULL key part."""
    rows, keys = _key_ctes(ctx, spec.each, "each")
    return sa.select(
        sa.select(sa.func.count()).select_from(keys).scalar_subquery().label("keys"),
        _null_count(spec, rows).scalar_subquery().label("null_keys"),
    )


def _key_ctes(ctx: Context, relation: KeyedRelation, name: str) -> tuple[sa.CTE, sa.CTE]:
    """The relation's key columns, and its distinct keys with no NULL part.

    The NULL filter sits outside the relation's own select so that a user `where` holding an
    OR keeps its meaning.
    """
    rows = ctx.select(relation, *(sa.column(c) for c in relation.key)).cte(f"postrun_{name}_rows")
    full = [rows.c[c].is_not(None) for c in relation.key]
    return rows, sa.select(*rows.c).where(*full).distinct().cte(f"postrun_{name}_keys")


def _null_count(spec: ReferenceSpec, rows: sa.CTE) -> sa.Select[Any]:
    nulls = sa.or_(*(rows.c[c].is_(None) for c in spec.each.key))
    return sa.select(sa.func.count()).select_from(rows).where(nulls)


def _unmatched_across_sources(
    spec: ReferenceSpec, ctx: Context, sent: dict[str, Query]
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    # The keys of both sides go into a local DuckDB instead of Python lists: memory stays bounded
    # by one batch of rows, and DuckDB spills the anti-join to disk if the keys outgrow memory.
    import duckdb

    null_keys = ctx.scalar(sent["null_keys"].statement, sent["null_keys"].source)
    width = len(spec.each.key)
    keys = ", ".join(f"k{i}" for i in range(width))
    on = " AND ".join(f"h.k{i} = e.k{i}" for i in range(width))
    with duckdb.connect() as local:
        local.execute(_QUIET)
        _load(local, "has_keys", width, _stream(ctx, sent["has"]), original=False)
        _load(local, "each_keys", width, _stream(ctx, sent["each"]), original=True)
        found = local.execute(
            f"SELECT min(original), count(*) OVER () FROM each_keys e "
            f"WHERE NOT EXISTS (SELECT 1 FROM has_keys h WHERE {on}) "
            f"GROUP BY {keys} ORDER BY {keys} LIMIT ?",
            [max(ctx.sample_limit, 1)],
        ).fetchall()
        distinct = local.execute(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM each_keys)")
        (total,) = distinct.fetchone() or (0,)
    samples = [dict(zip(spec.each.key, json.loads(o), strict=True)) for o, _ in found]
    counts = {"keys": total, "null_keys": null_keys}
    return counts, samples, int(found[0][1]) if found else 0


def _load(
    local: duckdb.DuckDBPyConnection,
    table: str,
    width: int,
    batches: Iterator[list[dict[str, Any]]],
    *,
    original: bool,
) -> None:
    """Keys as text columns k0…; with ``original``, also their JSON values for the report."""
    columns = [f"k{i} VARCHAR" for i in range(width)] + (["original VARCHAR"] if original else [])
    local.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})"
    for batch in batches:
        local.executemany(insert, [_as_text(row, original) for row in batch])


def _as_text(row: dict[str, Any], original: bool) -> list[str]:
    text = [str(value) for value in row.values()]
    return [*text, json.dumps(list(row.values()))] if original else text


def _stream(ctx: Context, query: Query) -> Iterator[list[dict[str, Any]]]:
    """The distinct keys of one side from its own source, in batches of at most _BATCH."""
    return ctx.stream(query.statement, query.source, batch=_BATCH)


def _distinct_keys(ctx: Context, relation: KeyedRelation, name: str) -> sa.Select[Any]:
    _, keys = _key_ctes(ctx, relation, name)
    return sa.select(*keys.c)


def _show(key: dict[str, Any]) -> str:
    values = [str(v) for v in key.values()]
    return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"
