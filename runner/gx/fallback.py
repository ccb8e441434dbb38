"""Great Expectations itself, for the expectations postrun does not compile (runner/gx/compile.py):
its SQL datasource on SQLite and PostgreSQL, its pandas datasource on rows read through Arrow.
GX is imported here only, and only when a check needs it (~3 s)."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import uuid
import warnings
from collections.abc import Callable
from contextlib import suppress
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from runner.errors import CheckConfigError, SourceError
from runner.gx.compile import Expectation
from runner.results import ErrorCategory

if TYPE_CHECKING:
    import pyarrow as pa

_GX_LOCK = threading.Lock()
_GX_CONTEXT: list[Any] = []


def validate_sql(
    url: str,
    relation: str,
    expectations: list[Expectation],
    sample: int,
    deadline: float | None = None,
) -> dict[int, dict[str, Any]]:
    """Run ``expectations`` through GX's SQL datasource on a table (``schema.name``) or on the
    rows of a query (a ``relation`` starting with SELECT). GX connects read-only as postrun's
    own sources do; on PostgreSQL the server stops each of its statements after the time left
    until ``deadline`` (GX's connection is its own: postrun cannot cancel it)."""
    from runner.sources.sql import read_only_url, statement_timeout_ms

    context = gx_context()
    read_only, connect_args = read_only_url(url)
    if "options" in connect_args and deadline is not None:  # PostgreSQL
        connect_args["options"] += f" -c statement_timeout={statement_timeout_ms(deadline)}"
    name = _unique_name("sql")
    with _GX_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "a more specific datasource may be more appropriate"
        try:  # GX connects here, to test the connection
            source = context.data_sources.add_sql(
                name,
                connection_string=read_only.render_as_string(hide_password=False),
                kwargs={"connect_args": connect_args},
            )
        except Exception as exc:  # GX wraps the driver's error in its own kinds
            raise gx_error("GX could not connect", _first_line(exc), connecting=True) from exc
    try:
        with _GX_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if relation.lstrip()[:6].lower() == "select":
                asset = source.add_query_asset(_unique_name("query"), query=relation)
            else:
                schema, _, table = relation.rpartition(".")
                asset = source.add_table_asset(
                    _unique_name("table"), table_name=table, schema_name=schema or None
                )
            batch = asset.add_batch_definition_whole_table(_unique_name("batch")).get_batch()
        return _validate(batch, expectations, sample)
    except (CheckConfigError, SourceError):
        raise
    except Exception as exc:  # GX raises its own kinds for a database it cannot read
        raise gx_error(f"GX could not read {relation}", _first_line(exc)) from exc
    finally:
        _forget(context, name, lambda: source.get_engine().dispose())


def query_sql(stmt: sa.Select[Any], params: dict[str, Any], dialect: sa.Dialect, what: str) -> str:
    """``stmt`` (the rows of ``what``) as the SQL of a GX query asset, which takes no bound
    params: each param is written in as a literal of its value's own type, as the driver would
    bind it (a date a DATE on PostgreSQL, a list an IN list), and the whole escaped so that GX,
    which reads the SQL twice as a ``text()``, takes no colon in it for a param of its own."""
    typed = visitors.cloned_traverse(
        stmt,
        {"maintain_key": True, "detect_subquery_cols": True},
        {"bindparam": partial(_type_bind, params)},
    )
    sql = str(typed.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if "%" in sql and dialect.paramstyle in ("format", "pyformat"):
        # The text arrives with every % doubled: `b = 'a%'` would judge other rows (GX 1.x).
        raise CheckConfigError(
            f"GX reads the SQL of {what} with every '%' doubled on {dialect.name}, so it would "
            "judge other rows: pass the pattern or value as a :param, write the modulo as "
            "mod(), or keep to the expectations postrun compiles (postrun list)"
        )
    return _escape_colons(_escape_colons(sql))


class _Literal(sa.types.UserDefinedType[Any]):
    """A param value written into SQL as the driver binds it (see ``_render``)."""

    cache_ok = True

    def literal_processor(self, dialect: sa.Dialect) -> Callable[[Any], str]:
        return partial(_render, dialect.name)


def _type_bind(params: dict[str, Any], bind: sa.BindParameter[Any]) -> None:
    value = params.get(bind.key)
    for one in value if isinstance(value, list | tuple) and bind.expanding else [value]:
        if one is not None and not isinstance(one, str | int | float | date):
            raise CheckConfigError(
                f"param '{bind.key}' holds {type(one).__name__} {one!r}, which GX cannot be "
                "given in SQL: use a string, number, boolean, date or a list of them"
            )
    bind.value = value
    bind.type = _Literal()


def _render(dialect: str, value: Any) -> str:
    """``value`` as SQL meaning what the driver binds: psycopg's types on PostgreSQL (a str
    stays untyped, as psycopg sends it), sqlite3's adaptations on SQLite (a date is its ISO
    text, a NaN is NULL); no character GX rewrites in the text (% on PostgreSQL, ? on SQLite).
    A negative number is parenthesised: `x -:n` must not become the comment `x --5`."""
    postgres = dialect == "postgresql"
    if isinstance(value, bool):
        return ("true" if value else "false") if postgres else str(int(value))
    if isinstance(value, int | float):
        number = str(value) if isinstance(value, int) else _float(value, postgres)
        return f"({number})" if number.startswith("-") else number
    if isinstance(value, datetime):
        if postgres:
            kind = "TIMESTAMP WITH TIME ZONE" if value.tzinfo is not None else "TIMESTAMP"
            return f"CAST('{value.isoformat()}' AS {kind})"
        return f"'{value.isoformat(' ')}'"
    if isinstance(value, date):
        return f"CAST('{value.isoformat()}' AS DATE)" if postgres else f"'{value.isoformat()}'"
    return _pg_string(str(value)) if postgres else _sqlite_string(str(value))


def _float(value: float, postgres: bool) -> str:
    if math.isnan(value):  # PostgreSQL has a NaN; sqlite3 binds NULL
        return "CAST('NaN' AS DOUBLE PRECISION)" if postgres else "NULL"
    if math.isinf(value):
        sign = "-" if value < 0 else ""
        return f"CAST('{sign}Infinity' AS DOUBLE PRECISION)" if postgres else f"{sign}9e999"
    return f"CAST({value!r} AS DOUBLE PRECISION)" if postgres else repr(value)


def _pg_string(text: str) -> str:
    """An escape string constant: its backslashes mean the same whatever the server's
    standard_conforming_strings, and % is written as \\x25."""
    escaped = text.replace("\\", "\\\\").replace("'", "''").replace("%", "\\x25")
    return f"E'{escaped}'"


_SQLITE_SPELLED = re.compile("([?\x00])")
"""Characters written as char(n) on SQLite: GX fills each ? with a param of its own when it
prints a query, and SQLite's SQL text cannot hold NUL."""


def _sqlite_string(text: str) -> str:
    parts = _SQLITE_SPELLED.split(text)
    if len(parts) == 1:
        return "'" + text.replace("'", "''") + "'"
    spelled = [
        f"char({ord(part)})" if _SQLITE_SPELLED.fullmatch(part) else _sqlite_string(part)
        for part in parts
        if part
    ]
    return f"({' || '.join(spelled)})"


_TEXT_COLON = re.compile(r"(?<![:\w\\]):\w+(?![:\w])|\\:\w*(?![:\w])")
"""What SQLAlchemy's ``text()`` reads as a bound param (``:name``) or as an escaped colon."""


def _escape_colons(sql: str) -> str:
    """``sql`` such that ``text(sql)`` prints as ``sql``: a backslash before each colon that
    text() would take for a param, and before each backslash-colon it would unescape."""
    return _TEXT_COLON.sub(lambda m: "\\" + m.group(0), sql)


def validate_arrow(
    table: pa.Table, expectations: list[Expectation], sample: int
) -> dict[int, dict[str, Any]]:
    """Run ``expectations`` through GX's pandas datasource on the rows of ``table``: DECIMAL
    columns become floats and DATE columns datetime64, as pandas holds them."""
    import pyarrow as pa

    columns = [c.cast(pa.float64()) if pa.types.is_decimal(c.type) else c for c in table.columns]
    frame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas(date_as_object=False)
    context = gx_context()
    name = _unique_name("pandas")
    with _GX_LOCK:
        source = context.data_sources.add_pandas(name)
    try:
        with _GX_LOCK:
            asset = source.add_dataframe_asset(_unique_name("frame"))
            definition = asset.add_batch_definition_whole_dataframe(_unique_name("batch"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = definition.get_batch(batch_parameters={"dataframe": frame})
        return _validate(batch, expectations, sample)
    finally:
        _forget(context, name)


def _forget(context: Any, name: str, close: Callable[[], None] | None = None) -> None:
    """Remove a datasource from the process's one GX context once validated (a long-lived
    process, Dagster's or pytest's, runs many suites), closing its connections first."""
    with _GX_LOCK:
        if close is not None:
            with suppress(Exception):  # an engine GX never managed to create: nothing to close
                close()
        context.data_sources.delete(name)


def _validate(
    batch: Any, expectations: list[Expectation], sample: int
) -> dict[int, dict[str, Any]]:
    import great_expectations as gxc
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": sample}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # condition_parser is deprecated since GX 1.9
        domain = [
            ExpectationConfiguration(type=e.type, kwargs=e.kwargs).to_domain_obj()
            for e in expectations
        ]
        suite = gxc.ExpectationSuite(name=_unique_name("suite"), expectations=domain)
        validation = batch.validate(suite, result_format=result_format)
    # GX reorders results: match each back to its expectation by type and kwargs.
    by_key = {
        _key(r.expectation_config.type, r.expectation_config.kwargs): r for r in validation.results
    }
    out: dict[int, dict[str, Any]] = {}
    for exp in expectations:
        result = by_key[_key(exp.type, exp.kwargs)]
        problem = _exception(result.exception_info or {})
        if problem is not None:
            raise gx_error(f"GX could not evaluate {exp.describe()}", problem)
        summary = json.loads(json.dumps(dict(result.result or {}), default=str))
        out[exp.index] = {"success": bool(result.success), "result": summary}
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def gx_error(
    what: str, problem: str, *, connecting: bool = False
) -> CheckConfigError | SourceError:
    """What GX reported, as postrun's error: the database's own troubles (a statement stopped
    at the deadline, a lost connection, a missing table) keep their category; anything else is
    the suite's configuration."""
    from runner.sources.sql import categorize

    category, retryable = categorize(RuntimeError(problem), problem.lower(), connecting=connecting)
    if category in (ErrorCategory.QUERY, ErrorCategory.DATA_MALFORMED):
        return CheckConfigError(f"{what}: {problem}")
    return SourceError(f"{what}: {problem}", category=category, retryable=retryable)


def _key(kind: str, kwargs: dict[str, Any]) -> str:
    plain = {k: _number(v) for k, v in kwargs.items() if k not in ("batch_id", "row_condition")}
    return f"{kind} {json.dumps(plain, sort_keys=True, default=str)}"


def _number(value: Any) -> Any:
    """GX turns 1 into 1.0 in some kwargs: compare numbers as floats."""
    if isinstance(value, list):
        return [_number(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _exception(info: dict[str, Any]) -> str | None:
    """The first line of the exception GX caught, from its flat or per-metric exception_info."""
    infos = [info] if "raised_exception" in info else list(info.values())
    for one in infos:
        if isinstance(one, dict) and one.get("raised_exception"):
            lines = str(one.get("exception_message") or "error").strip().splitlines()
            return lines[0] if lines else "error"
    return None


def gx_context() -> Any:
    """The process's one ephemeral GX context (importing GX, ~3 s, the first time)."""
    with _GX_LOCK, warnings.catch_warnings():
        # GX's imports warn (deprecated modules): its warnings are not the run's to raise.
        warnings.simplefilter("ignore")
        if not _GX_CONTEXT:
            quiet = _quiet_gx_logs()
            import great_expectations as gxc
            from great_expectations.data_context.types.base import ProgressBarsConfig

            if quiet:  # some GX modules set their own logger to INFO when imported
                _quiet_gx_logs(imported=True)
            context = gxc.get_context(mode="ephemeral")
            # GX draws a progress bar on stderr for every validation: not in a gate's output.
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _GX_CONTEXT.append(context)
        return _GX_CONTEXT[0]


def _quiet_gx_logs(*, imported: bool = False) -> bool:
    """GX logs at INFO as it imports and builds its context (its docs registry, a temporary
    folder): not the run's to show, and under pytest it lands in whichever test is running.
    Quiet unless the user set a level on GX's logger; whether it did."""
    root = logging.getLogger("great_expectations")
    if not imported:
        if root.level != logging.NOTSET:
            return False
        root.setLevel(logging.WARNING)
        return True
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not name.startswith("great_expectations.") or not isinstance(logger, logging.Logger):
            continue
        if logging.NOTSET < logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    return True


def _unique_name(kind: str) -> str:
    return f"postrun_{kind}_{uuid.uuid4().hex[:12]}"
