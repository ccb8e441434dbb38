"""SQL statements built from a check's relations: SQLAlchemy constructs, user fragments as
``text()`` with bound ``:params``. The one place the run and ``--explain`` build them, so what
``--explain`` prints is what a run sends."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import elements, functions, visitors

if TYPE_CHECKING:
    from runner.checks.base import Relation

TOTAL = "postrun_total"
"""The column a bounded sample of bad rows carries their total in (``violations``)."""
_POSTCOMPILE = re.compile(r"\(?__\[POSTCOMPILE_(\w+)\]\)?")


def text(sql: str, params: Mapping[str, Any]) -> sa.TextClause:
    """A user SQL fragment; its ``:name`` placeholders become bound params (lists expand)."""
    clause = sa.text(sql)
    lists: list[sa.BindParameter[Any]] = [
        sa.bindparam(name, expanding=True)
        for name in clause._bindparams
        if isinstance(params.get(name), list | tuple)
    ]
    return clause.bindparams(*lists) if lists else clause


def from_clause(relation: Relation, params: Mapping[str, Any]) -> sa.FromClause:
    """The relation as something to select from: a table, or the query as a subquery."""
    if relation.table is not None:
        schema, _, name = relation.table.rpartition(".")
        return sa.table(name, schema=schema or None)
    assert relation.query is not None
    # A trailing ';' or '-- comment' would break the enclosing parentheses.
    query = relation.query.strip().rstrip(";").rstrip()
    if "--" in query.rpartition("\n")[2]:
        query += "\n"
    return text(query, params).columns().subquery("q")


def select(
    relation: Relation, params: Mapping[str, Any], *columns: sa.ColumnElement[Any]
) -> sa.Select[Any]:
    """``SELECT columns FROM relation [WHERE where]``."""
    stmt = sa.select(*columns).select_from(from_clause(relation, params))
    if relation.where is not None:
        stmt = stmt.where(condition(relation.where, params))
    return stmt


def condition(where: str, params: Mapping[str, Any]) -> sa.TextClause:
    """A user's `where` as a condition. Parenthesised so that `a or b` keeps its meaning when
    combined with others; the newline ends a trailing `-- comment` before the parenthesis."""
    return text(f"({where}\n)", params)


class RowWise(functions.FunctionElement[Any]):
    """A function of one row's values (no aggregate inside): ``filtered`` looks through it."""

    inherit_cache = True


_AGGREGATES = frozenset({"count", "sum", "min", "max", "avg"})
_ROW_WISE = frozenset({"coalesce", "nullif", "abs", "round", "length", "lower", "upper"})
_STRUCTURE = (
    elements.BinaryExpression,
    elements.UnaryExpression,
    elements.Case,
    elements.Cast,
    elements.Label,
    elements.Grouping,
    elements.ClauseList,
    elements.ExpressionClauseList,
    elements.BindParameter,
    elements.Null,
    elements.True_,
    elements.False_,
    functions.FunctionAsBinary,
)


def filtered(
    expression: sa.ColumnElement[Any],
    where: sa.ColumnElement[bool] | sa.TextClause,
) -> sa.ColumnElement[Any] | None:
    """``expression`` (an aggregate over a relation) counting only the rows ``where`` holds for:
    each aggregate inside gets ``FILTER (WHERE where)``, so checks with different `where`s on
    one table can share one scan of it. None when the expression holds anything but the plain
    aggregates (count, sum, min, max, avg) of row values, arithmetic and CASE over them: a
    window, a subquery or an unknown function would not mean the same filtered."""
    unknown: list[object] = []

    def replace(element: Any, **kw: Any) -> Any:
        if isinstance(element, functions.FunctionElement) and not isinstance(element, RowWise):
            if str(getattr(element, "name", "")).lower() in _AGGREGATES:
                return element.filter(where)
            if str(getattr(element, "name", "")).lower() in _ROW_WISE:
                return None
            unknown.append(element)
        elif not isinstance(element, (*_STRUCTURE, functions.FunctionElement)):
            unknown.append(element)
        return None

    options: dict[str, Any] = {}
    result = visitors.replacement_traverse(expression, options, replace)
    return None if unknown else result


def sample(
    stmt: sa.Select[Any], sample_limit: int, *, storage_order: bool = False
) -> sa.Select[Any]:
    """The first rows of ``stmt`` (at least one, for a message to name), in its own order: for
    bad rows whose number the check already knows, without counting them again.

    ``storage_order``: the database returns a query's rows in the order they are stored, run
    after run (DuckDB, which preserves insertion order). Then the sample is the first rows found
    in that order, sorted by ``stmt``'s order afterwards: the scan stops once it has them, where
    sorting every bad row first reads them all. Both are deterministic; the rows chosen may
    differ. Only a plain column order on selected columns is moved (anything else stays)."""
    limit = max(sample_limit, 1)
    order = list(stmt._order_by_clauses)
    plain = [o.name for o in order if isinstance(o, sa.ColumnClause) and o.table is None]
    selected = {c.name for c in stmt.selected_columns}
    if not storage_order or not order or len(plain) < len(order) or not set(plain) <= selected:
        return stmt.limit(limit)
    first = stmt.order_by(None).limit(limit).subquery("sample")
    return sa.select(*first.c).order_by(*(first.c[name] for name in plain))


def violations(stmt: sa.Select[Any], sample_limit: int) -> sa.Select[Any]:
    """The bad rows ``stmt`` selects as a bounded sample, each row carrying their total (in
    ``TOTAL``). At least one row comes back even when no sample is wanted: it carries it."""
    counted = stmt.add_columns(sa.func.count().over().label(TOTAL))
    return counted.limit(max(sample_limit, 1))


def compile_sql(stmt: sa.Executable, dialect: sa.Dialect | None) -> str:
    """The SQL of ``stmt`` as ``dialect`` writes it (the generic form without one); an IN list,
    expanded when the statement runs, is shown as the named parameter it is."""
    if not isinstance(stmt, sa.ClauseElement):
        return str(stmt)
    try:
        sql = str(stmt.compile(dialect=dialect)) if dialect is not None else str(stmt)
    except sa.exc.SQLAlchemyError:
        sql = str(stmt)
    return _POSTCOMPILE.sub(r"(:\1)", sql)
