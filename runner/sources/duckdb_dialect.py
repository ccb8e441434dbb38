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
    """DuckDB's reserved keywords, as the DuckDB in use lists them (an in-memory database)."""
    import duckdb

    with duckdb.connect(config=read_only_url("duckdb:///:memory:")[1]["config"]) as conn:
        rows = conn.execute(
            "select keyword_name from duckdb_keywords() where keyword_category = 'reserved'"
        ).fetchall()
    return frozenset(name for (name,) in rows)
