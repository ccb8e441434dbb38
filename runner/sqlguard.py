"""The read-only guard on user SQL: a `query` or `where` that could write is refused at load.

This is the first of two locks (SPEC §6). The second is the connection itself, opened read-only
by ``runner.sources.sql``; neither relies on the other. The guard matters even so: a read-only
DuckDB still runs ``COPY … TO`` and ``EXPORT DATABASE``, which write files, and a suite that
tries to write should be refused with its file and line before anything runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlglot import exp

_DIALECTS = (None, "duckdb", "postgres", "sqlite")
"""sqlglot's own dialect first, then the databases postrun reads."""

_STATEMENTS = {
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Merge": "MERGE",
    "Drop": "DROP",
    "Create": "CREATE",
    "Alter": "ALTER",
    "TruncateTable": "TRUNCATE",
    "Copy": "COPY",
    "Export": "EXPORT",
    "Attach": "ATTACH",
    "Detach": "DETACH",
    "Install": "INSTALL",
    "LoadData": "LOAD",
    "Pragma": "PRAGMA",
    "Set": "SET",
    "Use": "USE",
    "Grant": "GRANT",
    "Revoke": "REVOKE",
    "Comment": "COMMENT",
    "Analyze": "ANALYZE",
    "Refresh": "REFRESH",
    "Transaction": "BEGIN",
    "Commit": "COMMIT",
    "Rollback": "ROLLBACK",
    "Into": "SELECT ... INTO, which creates a table",
    "Lock": "FOR UPDATE/SHARE, which locks rows",
}
"""sqlglot node class → what it is called in a message; refused anywhere in the tree.
``Command`` (what sqlglot cannot model: CALL, LOAD, VACUUM, EXPLAIN …) is refused too."""

_HEADS = frozenset(
    {
        *("INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "TRUNCATE", "COPY"),
        *("DROP", "CREATE", "ALTER", "EXPORT", "IMPORT", "ATTACH", "DETACH", "INSTALL", "LOAD"),
        *("PRAGMA", "SET", "RESET", "GRANT", "REVOKE", "CALL", "DO", "VACUUM", "CHECKPOINT"),
        *("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "LOCK"),
    }
)
"""First words of statements that write or leave the transaction, for SQL sqlglot cannot parse."""

_FUNCTIONS = {
    # PostgreSQL: act on other sessions or the server, touch server files, leave the transaction
    "pg_terminate_backend": "ends another session",
    "pg_cancel_backend": "cancels another session's query",
    "pg_reload_conf": "reloads the server configuration",
    "pg_read_file": "reads files on the database server",
    "pg_read_binary_file": "reads files on the database server",
    "pg_file_write": "writes files on the database server",  # adminpack
    "lo_import": "reads a server file into the database",
    "lo_export": "writes a server file",
    "dblink*": "runs SQL over another connection, outside the read-only transaction",
    "set_config": "changes session settings",
    # PostgreSQL and DuckDB
    "nextval": "advances a sequence",
    "setval": "changes a sequence",
    # DuckDB (table functions, also callable as `select * from checkpoint()`)
    "checkpoint": "writes the database file",
    "force_checkpoint": "writes the database file",
}
"""Functions known to write or escape, by lower-case name (``*``: a prefix). Reading the
postrun user's own files (DuckDB ``read_csv``, ``read_json_auto`` …) is what checks do: allowed."""

_PLAIN_TOKEN = re.compile(
    r"""(?P<blank>\s+)
      | (?P<string>'[^'\\]*(?:''[^'\\]*)*')
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>[0-9]+(?:\.[0-9]+)?)
      | (?P<symbol>[(),.*+\-/%<>=!|&~^:?])
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
"""What ``_plainly_read`` reads; anything ``other`` (a quote, a backslash, ``$``, ``;``, ``[``,
a non-ASCII letter …) sends the text to sqlglot."""

_UNSAFE_WORDS = frozenset(
    {
        *(head.lower() for head in _HEADS if head not in ("END", "REPLACE")),
        *("into", "for", "share", "returning", "transaction", "use", "comment", "analyze"),
        *("refresh", "execute", "prepare", "union", "intersect", "except", "minus", "with"),
        *(name for name in _FUNCTIONS if not name.endswith("*")),
    }
)
"""Words that keep ``_plainly_read`` from vouching for a text: every statement head but END and
REPLACE (which only CASE … END and replace() use inside a single statement), what makes a
SELECT write or lock (INTO, FOR UPDATE/SHARE), WITH (sqlglot reads any statement as a CTE's
body), set operations, and the functions above."""
_UNSAFE_PREFIXES = tuple(name[:-1] for name in _FUNCTIONS if name.endswith("*"))


def read_only_problem(
    sql: str, *, fragment: Literal["query", "where"], field: str | None = None
) -> str | None:
    """None when ``sql`` is a single read query (``where``: a condition); otherwise why not, in
    one line that starts with ``field`` (default: the fragment kind), e.g. ``query holds 2
    statements; give one``. SQL no dialect parses is left to the database to judge."""
    if _plainly_read(sql, fragment):
        return None
    with _quiet_sqlglot():
        return _problem(sql, fragment, field or fragment)


def _plainly_read(sql: str, fragment: Literal["query", "where"]) -> bool:
    """Whether ``sql`` is, on its face, one read the full check would accept, so that a suite of
    plain SQL does not pay for importing sqlglot (a tenth of a short run): only words, numbers,
    ``'strings'`` without backslashes, operators and balanced parentheses (no comment, quoted
    name or ``;``); a query starts with SELECT; no word outside a string could start, name or
    lock a write (``_UNSAFE_WORDS``). Anything else is left to sqlglot."""
    if "--" in sql or "/*" in sql:
        return False
    tokens = [(m.lastgroup, m[0]) for m in _PLAIN_TOKEN.finditer(sql) if m.lastgroup != "blank"]
    if not tokens or any(kind == "other" for kind, _ in tokens):
        return False
    if fragment == "query" and tokens[0][1].lower() != "select":
        return False
    depth = 0
    for kind, token in tokens:
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth < 0:  # a `where` that would close the parenthesis it is wrapped in
            return False
        word = token.lower() if kind == "word" else ""
        if word in _UNSAFE_WORDS or (word and word.startswith(_UNSAFE_PREFIXES)):
            return False
    return depth == 0


def _problem(sql: str, fragment: str, name: str) -> str | None:
    # Wrapped exactly as runner.context embeds a `where`, so `1=1) ; drop …` shows as a statement.
    text = sql if fragment == "query" else f"SELECT 1 WHERE ({sql}\n)"
    statements = _parse(text)
    if not statements:
        # The connection is read-only anyway: rather than refuse a read sqlglot does not know,
        # let the database judge it. Only what plainly is not one statement of a read is refused.
        return _problem_in_words(_heads(text), fragment, name)
    if len(statements) > 1:
        return _too_many(_called(statements[1]), len(statements), fragment, name)
    root = statements[0]
    if not _is_read(root, fragment):
        return _not_single(_called(root), fragment, name)
    for node in root.walk():
        found = _found(node)
        if found is not None:
            return f"{name} must only read; found {found}"
        why = _function_risk(node)
        if why is not None:
            return f"{name} must only read; {why}"
    return None


def _parse(text: str) -> list[exp.Expr] | None:
    import sqlglot

    for dialect in _DIALECTS:
        try:
            parsed = sqlglot.parse(text, read=dialect)
        except Exception:  # ParseError, TokenError, RecursionError…: try the next dialect
            continue
        # a comment after the last ';' comes back as a `Semicolon` statement of its own
        return [s for s in parsed if s is not None and type(s).__name__ != "Semicolon"]
    return None


def _heads(text: str) -> list[str]:
    """The first word of each ';'-separated statement in ``text`` (none if it cannot be read)."""
    import sqlglot

    try:
        tokens = sqlglot.tokenize(text)
    except Exception:  # an unterminated string or quote: nothing to judge
        return []
    heads, starting = [], True
    for token in tokens:
        if token.token_type.name == "SEMICOLON":
            starting = True
        elif starting:
            heads.append(_word(token.text))
            starting = False
    return heads


def _problem_in_words(heads: list[str], fragment: str, name: str) -> str | None:
    if len(heads) > 1:
        return _too_many(heads[1], len(heads), fragment, name)
    if heads and heads[0] in _HEADS:
        return _not_single(heads[0], fragment, name)
    return None


def _too_many(second: str, count: int, fragment: str, name: str) -> str:
    if fragment == "where":
        return f"{name} must be a condition, found a second statement" + (
            f" ({second})" if second else ""
        )
    return f"{name} holds {count} statements; give one"


def _not_single(found: str, fragment: str, name: str) -> str:
    what = found or "an expression"
    if fragment == "where":
        return f"{name} must be a condition, found {what}"
    return f"{name} must be a single SELECT; found {what}"


def _is_read(root: exp.Expr, fragment: str) -> bool:
    from sqlglot import exp

    if fragment == "where":
        return isinstance(root, exp.Select)  # `1=1) union (select …` would change the query
    return isinstance(root, exp.Query | exp.Values)


def _called(statement: exp.Expr) -> str:
    """What a statement is called in a message (DELETE, PRAGMA, UNION …); '' if not a keyword."""
    if type(statement).__name__ in ("Union", "Except", "Intersect"):
        return statement.key.upper()
    found = _found(statement)
    if found is not None:
        return found
    try:
        words = statement.sql().split(maxsplit=1)
    except Exception:  # sqlglot cannot write back every tree it reads (e.g. B'')
        return ""
    return _word(words[0]) if words else ""


def _word(text: str) -> str:
    """``text`` upper-cased when it is a plain word, else '' (a message stays one short line)."""
    return text.upper() if text.isascii() and text.isalpha() else ""


def _found(node: exp.Expr) -> str | None:
    """What ``node`` is called when it is refused (a write or a statement), else None."""
    names = [cls.__name__ for cls in type(node).__mro__]
    if "Command" in names:
        return _word(str(node.this)) or "a statement sqlglot cannot read"
    return next((_STATEMENTS[n] for n in names if n in _STATEMENTS), None)


def _function_risk(node: exp.Expr) -> str | None:
    from sqlglot import exp

    if not isinstance(node, exp.Func):
        return None
    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    for key, why in _FUNCTIONS.items():
        if name == key or (key.endswith("*") and name.startswith(key[:-1])):
            return f"{name}() {why}"
    return None


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning for every statement it falls back to parsing as a Command;
    # those are refused with a clear reason, and the warning would only clutter stderr.
    logger = logging.getLogger("sqlglot")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled
