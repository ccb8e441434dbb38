"""SQL statements built from a check's relations: SQLAlchemy constructs, user fragments as
``text()`` with bound ``:params``. The one place the run and ``--explain`` build them, so what
``--explain`` prints is what a run sends."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

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
        # Parenthesised so that `a or b` keeps its meaning when callers add conditions;
        # the newline ends a trailing `-- comment` before the closing parenthesis.
        stmt = stmt.where(text(f"({relation.where}\n)", params))
    return stmt


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
