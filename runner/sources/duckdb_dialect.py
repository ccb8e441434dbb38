"""The SQL dialect postrun compiles DuckDB statements with (``runner.sources.duck`` runs them)."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import base as postgresql

from runner.sources.sql import read_only_url


class _Identifiers(postgresql.PGIdentifierPreparer):
    """PostgreSQL's quoting, plus DuckDB's own reserved words."""

    def __init__(self, dialect: sa.Dialect, **kwargs: Any) -> None:
        super().__init__(dialect, **kwargs)
        self.reserved_words = self.reserved_words | _reserved_words()


class DuckDBDialect(postgresql.PGDialect):
    """DuckDB's SQL as SQLAlchemy compiles it for postrun: PostgreSQL's compiler, DuckDB's
    reserved words, ``$1`` parameters, and ``/`` as true division (DuckDB's, not PostgreSQL's
    integer division). Compiles only: statements run on DuckDB's own connection."""

    name = "duckdb"
    driver = "duckdb"
    preparer = _Identifiers  # type: ignore[assignment]
    supports_statement_cache = True
    div_is_floordiv = False

    def __init__(self) -> None:
        super().__init__(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


@cache
def duckdb_dialect() -> DuckDBDialect:
    """The one dialect every DuckDB source compiles with."""
    return DuckDBDialect()


@cache
def _reserved_words() -> frozenset[str]:
    """The words DuckDB (the version in use) does not read as a plain name everywhere, so each
    is quoted as an identifier: reserved words, and those only a type or function may be
    (``at``: ``max(at)`` does not parse) or only a column (a quoted name is still matched
    without regard to case in DuckDB, so quoting one more word changes nothing else).

    DuckDB's Python package lists its parser's keywords by category (``duckdb._sql_keywords``,
    generated from the parser, imported with ``duckdb`` itself); a version without that list is
    asked through an in-memory database, whose creation costs some 25 ms."""
    try:
        from duckdb._sql_keywords import KEYWORD_CATEGORY
    except ImportError:
        return _keywords_of_a_database()
    return frozenset(name for name, kind in KEYWORD_CATEGORY.items() if kind != "unreserved")


def _keywords_of_a_database() -> frozenset[str]:
    """What ``_reserved_words`` returns, from ``duckdb_keywords()`` of an in-memory database."""
    import duckdb

    with duckdb.connect(config=read_only_url("duckdb:///:memory:")[1]["config"]) as conn:
        rows = conn.execute(
            "select keyword_name from duckdb_keywords() where keyword_category <> 'unreserved'"
        ).fetchall()
    return frozenset(name for (name,) in rows)
