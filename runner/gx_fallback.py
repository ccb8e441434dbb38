"""Great Expectations itself, for the expectations postrun does not compile (runner/gx.py):
its SQL datasource on SQLite and PostgreSQL, its pandas datasource on rows read through Arrow.
GX is imported here only, and only when a check needs it (~3 s)."""

from __future__ import annotations

import json
import threading
import uuid
import warnings
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from runner.errors import CheckConfigError, SourceError
from runner.gx import Expectation
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
            import great_expectations as gxc
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gxc.get_context(mode="ephemeral")
            # GX draws a progress bar on stderr for every validation: not in a gate's output.
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _GX_CONTEXT.append(context)
        return _GX_CONTEXT[0]


def _unique_name(kind: str) -> str:
    return f"postrun_{kind}_{uuid.uuid4().hex[:12]}"
