"""expectation_suite: a Great Expectations suite passes on the relation.

The expectations postrun can express in SQL run as aggregates of the run's shared scan, with GX's
semantics (runner/gx/compile.py); the others run through GX itself, imported only then. An
expectation's GX severity decides what its failure means: `critical` fails the check; `warning`
and `info` are reported among the failures but leave the check passing (a note says so), since a
check has one severity of its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field

from runner.checks.base import SAMPLE, Query, Relation, RelationCheck, Scan, register
from runner.context import Context
from runner.errors import CheckConfigError
from runner.gx import compile as gx
from runner.gx import fallback as gx_fallback
from runner.plan import ExpressionKey, expression_key
from runner.results import Outcome


class ExpectationSuiteSpec(RelationCheck):
    """A Great Expectations suite (GX 1.x JSON) passes on the relation."""

    type: Literal["expectation_suite"]
    suite: str
    """Path of the GX ExpectationSuite JSON file (e.g. ../expectations/snapshots.gx.json)."""
    max_rows: Annotated[int, Field(ge=1)] = 1_000_000
    """Most rows fetched into a DataFrame for expectations GX must run on DuckDB."""

    existing_paths = ("suite",)


def _compiled(spec: ExpectationSuiteSpec) -> list[gx.Compiled]:
    compiled = (gx.compile_expectation(e) for e in gx.read_suite(spec.suite).expectations)
    return [c for c in compiled if c is not None]


def scans(spec: ExpectationSuiteSpec) -> list[Scan]:
    """The aggregates of every compiled expectation (those needing a regex run on their own)."""
    columns: dict[str, sa.ColumnElement[Any]] = {"rows": sa.func.count()}
    wanted: list[Scan] = []
    for c in _compiled(spec):
        if not c.needs_regex:
            columns |= {f"e{c.expectation.index}_{k}": v for k, v in c.aggregates.items()}
        if c.other_table is not None:
            other = Relation(table=c.other_table, source=spec.source)
            wanted.append(Scan(other, {"count": sa.func.count()}))
    return [Scan(spec.relation, columns), *wanted]


def queries(spec: ExpectationSuiteSpec, ctx: Context) -> list[Query]:
    """The statements besides the shared scan: regex aggregates, duplicate groups and the column
    list of compiled expectations; for GX, the rows it reads (DuckDB) or, where GX queries the
    database itself, a comment saying how many expectations it judges there."""
    compiled, fallback = _split(gx.read_suite(spec.suite), ctx)
    found = [Query(s) for c in compiled for s in _statements(c, spec, ctx).values()]
    samples = (_sample_statement(c, spec, ctx) for c in compiled)
    found += [Query(s, when=SAMPLE) for s in samples if s is not None and ctx.sample_limit]
    if fallback and _gx_url(ctx) is not None:
        note = (
            f"-- GX's SQL datasource judges {len(fallback)} expectation(s) with queries of its own"
        )
        found.append(Query(sa.text(note), sent=False))
    elif fallback:
        groups = _by_condition(fallback).values()
        found += [Query(_frame_statement(spec, ctx, condition)) for condition, _ in groups]
    return found


def listing() -> list[str]:
    """What `postrun list` adds: which expectations compile to SQL."""
    return [
        "compiled to SQL: " + ", ".join(gx.COMPILED_TYPES),
        "every other GX expectation runs through great_expectations itself",
    ]


@register(ExpectationSuiteSpec, scans=scans, queries=queries, listing=listing)
def expectation_suite(spec: ExpectationSuiteSpec, ctx: Context) -> Outcome:
    suite = gx.read_suite(spec.suite)
    values = ctx.scan(spec.relation)
    compiled, fallback = _split(suite, ctx)
    results = {c.expectation.index: _judge(c, values, spec, ctx) for c in compiled}
    if fallback:
        for index, result in _run_gx(spec, ctx, fallback).items():
            results[index] = result | {"engine": "great_expectations"}
    ctx.notes.extend(_vacuous(suite, results, int(values["rows"] or 0)))
    listed = [_entry(e, results[e.index]) for e in suite.expectations]
    return _outcome(spec, suite, listed)


_REGEX_DIALECTS = ("duckdb", "postgresql", "spark")


def _split(suite: gx.GxSuite, ctx: Context) -> tuple[list[gx.Compiled], list[gx.Expectation]]:
    """The expectations postrun runs as SQL on this source, and those left to GX."""
    dialect = ctx.source().dialect().name
    compiled: list[gx.Compiled] = []
    fallback: list[gx.Expectation] = []
    for exp in suite.expectations:
        one = gx.compile_expectation(exp)
        if one is None or (one.needs_regex and dialect not in _REGEX_DIALECTS):
            fallback.append(exp)
        else:
            compiled.append(one)
    return compiled, fallback


def _statements(
    compiled: gx.Compiled, spec: ExpectationSuiteSpec, ctx: Context
) -> dict[str, sa.Select[Any]]:
    """What a compiled expectation asks beyond the shared scan, by what the answer is."""
    statements: dict[str, sa.Select[Any]] = {}
    if compiled.needs_regex:
        labelled = [e.label(k) for k, e in compiled.aggregates.items()]
        statements["aggregates"] = ctx.select(spec.relation, *labelled)
    if compiled.grouped:
        statements["bad"] = _duplicated_rows(compiled, spec, ctx)
    if compiled.expectation.type == "expect_column_to_exist":
        statements["columns"] = ctx.columns_statement(spec.relation)
    return statements


def _judge(
    compiled: gx.Compiled, values: dict[str, Any], spec: ExpectationSuiteSpec, ctx: Context
) -> dict[str, Any]:
    prefix = f"e{compiled.expectation.index}_"
    mine = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
    statements = _statements(compiled, spec, ctx)
    if "aggregates" in statements:
        mine = ctx.fetch(statements["aggregates"])[0]
    if compiled.other_table is not None:
        other = Relation(table=compiled.other_table, source=spec.source)
        mine["other"] = int(ctx.scan(other)["count"])
    if "bad" in statements:
        mine["bad"] = int(ctx.scalar(statements["bad"]))
    if "columns" in statements:
        mine["columns"] = ctx.columns(spec.relation)
    judged = compiled.judge(mine)
    if not judged["success"] and compiled.unexpected is not None:
        judged["result"]["partial_unexpected_list"] = _sample(compiled, spec, ctx)
    return judged | {"engine": "postrun"}


def _duplicated_rows(
    compiled: gx.Compiled, spec: ExpectationSuiteSpec, ctx: Context
) -> sa.Select[Any]:
    """GX's unexpected count for uniqueness: every row whose value (tuple) occurs twice or more."""
    assert compiled.where is not None
    keys: list[sa.ColumnElement[Any]] = [sa.column(c) for c in compiled.grouped]
    groups = ctx.select(spec.relation, sa.func.count().label("n")).where(compiled.where)
    groups = groups.group_by(*keys).having(sa.func.count() > 1)
    inner = groups.subquery("dup")
    return sa.select(sa.func.coalesce(sa.func.sum(inner.c.n), 0).label("bad"))


def _sample(compiled: gx.Compiled, spec: ExpectationSuiteSpec, ctx: Context) -> list[Any]:
    """GX's partial unexpected list: a bounded sample of the values that failed."""
    stmt = _sample_statement(compiled, spec, ctx)
    if stmt is None or not ctx.sample_limit:
        return []
    names = _sampled_columns(compiled)
    rows = ctx.fetch(stmt)
    return [row[names[0]] if len(names) == 1 else row for row in rows]


def _sample_statement(
    compiled: gx.Compiled, spec: ExpectationSuiteSpec, ctx: Context
) -> sa.Select[Any] | None:
    """The statement that fetches a failed expectation's unexpected values, if it has any."""
    if compiled.unexpected is None:
        return None
    columns: list[sa.ColumnClause[Any]] = [sa.column(n) for n in _sampled_columns(compiled)]
    stmt = ctx.select(spec.relation, *columns).where(compiled.unexpected)
    if compiled.expectation.type == "expect_column_distinct_values_to_be_in_set":
        stmt = stmt.distinct()
    return stmt.limit(ctx.sample_limit)


def _sampled_columns(compiled: gx.Compiled) -> list[str]:
    kwargs = compiled.expectation.kwargs
    return [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]


def _entry(exp: gx.Expectation, judged: dict[str, Any]) -> dict[str, Any]:
    return {
        "expectation": exp.describe(),
        "type": exp.type,
        "kwargs": exp.kwargs,
        "severity": exp.severity,
        "success": bool(judged["success"]),
        "engine": judged["engine"],
        "result": judged.get("result", {}),
    }


def _outcome(
    spec: ExpectationSuiteSpec, suite: gx.GxSuite, listed: list[dict[str, Any]]
) -> Outcome:
    failed = [e for e in listed if not e["success"]]
    critical = [e for e in failed if gx.SEVERITIES[e["severity"]] == "error"]
    compiled = sum(e["engine"] == "postrun" for e in listed)
    observed = {
        "suite": suite.name,
        "expectations": len(listed),
        "failed": len(failed),
        "compiled": compiled,
        "great_expectations": len(listed) - compiled,
        "results": [_summary(e) for e in listed],
    }
    target = spec.relation.describe()
    names = ", ".join(e["expectation"] for e in failed[:3]) + (", …" if len(failed) > 3 else "")
    message = (
        f"{target}: {len(failed)} of {len(listed)} expectations of '{suite.name}' failed ({names})"
        if failed
        else f"{target}: all {len(listed)} expectations of '{suite.name}' passed"
    )
    notes = []
    if failed and not critical:
        notes.append(f"{len(failed)} failed expectation(s) have GX severity warning/info only")
    expected = {"suite": spec.suite}
    return Outcome(
        passed=not critical,
        message=message,
        observed=observed,
        expected=expected,
        failures=failed,
        failure_count=len(failed),
        notes=notes,
    )


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in entry["result"].items() if k in _SUMMARY_KEYS}
    return {k: entry[k] for k in ("expectation", "success", "engine")} | result


_SUMMARY_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "observed_value")


def _vacuous(suite: gx.GxSuite, results: dict[int, dict[str, Any]], rows: int) -> list[str]:
    """Notes for expectations that passed on no rows because their `row_condition` matched none
    (a misspelt value, or a date given as text that GX on pandas compares with a datetime)."""
    return [
        f"{e.describe()}: its row_condition matched none of the {rows} rows, so it judged nothing"
        for e in suite.expectations
        if rows
        and e.kwargs.get("row_condition") is not None
        and results[e.index].get("result", {}).get("element_count") == 0
    ]


def _run_gx(
    spec: ExpectationSuiteSpec, ctx: Context, expectations: list[gx.Expectation]
) -> dict[int, dict[str, Any]]:
    """GX's own results for ``expectations``: through its SQL datasource on SQLite and
    PostgreSQL; on DuckDB, which GX cannot read through SQLAlchemy (GX issues #10738, #11579),
    over the rows as a DataFrame."""
    gx_fallback.gx_context()
    ctx.raise_if_cancelled()  # importing GX may have taken the check's time
    url = _gx_url(ctx)
    if url is not None:
        return _gx_sql(spec, ctx, url, expectations)
    results: dict[int, dict[str, Any]] = {}
    for condition, group in _by_condition(expectations).values():
        results |= _gx_frame(spec, ctx, condition, group)
    return results


def _gx_url(ctx: Context) -> str | None:
    """The URL GX reads the source through with its own SQL datasource; None on DuckDB (see
    _run_gx), a file source's tables included."""
    source = ctx.source()
    url = getattr(source, "url", None)
    return url if source.dialect().name in ("sqlite", "postgresql") else None


def _gx_sql(
    spec: ExpectationSuiteSpec, ctx: Context, url: str, expectations: list[gx.Expectation]
) -> dict[int, dict[str, Any]]:
    """A plain table is a GX table asset; a `where` or `query` relation a GX query asset, which
    has no column types: type expectations then go to the table (types do not depend on rows)."""
    if spec.table is not None and spec.where is None:
        return gx_fallback.validate_sql(
            url, spec.table, expectations, ctx.sample_limit, ctx.deadline
        )
    typed = [e for e in expectations if e.type in gx.TYPE_EXPECTATIONS]
    rest = [e for e in expectations if e.type not in gx.TYPE_EXPECTATIONS]
    if typed and spec.table is None:  # a query
        raise CheckConfigError(
            f"{typed[0].describe()} needs column types, which GX reads from a table, not from "
            "a query: write the check against 'table' (with 'where')"
        )
    results = {}
    if typed:
        assert spec.table is not None
        results = gx_fallback.validate_sql(url, spec.table, typed, ctx.sample_limit, ctx.deadline)
    if rest:
        results |= gx_fallback.validate_sql(
            url, _literal_sql(spec, ctx), rest, ctx.sample_limit, ctx.deadline
        )
    return results


def _by_condition(
    expectations: list[gx.Expectation],
) -> dict[ExpressionKey | None, tuple[sa.ColumnElement[bool] | None, list[gx.Expectation]]]:
    """The expectations grouped by the rows they need: a `row_condition` postrun compiles is
    applied in SQL (fewer rows fetched, and SQL's comparison of a date with '2025-11-06', which
    GX on pandas gets wrong); one it does not is left to GX, on all the rows."""
    groups: dict[ExpressionKey | None, tuple[sa.ColumnElement[bool] | None, list[gx.Expectation]]]
    groups = {}
    for exp in expectations:
        condition = exp.condition
        mine = exp.unconditioned() if condition is not None else exp
        key = expression_key(condition) if condition is not None else None  # values included
        groups.setdefault(key, (condition, []))[1].append(mine)
    return groups


def _gx_frame(
    spec: ExpectationSuiteSpec,
    ctx: Context,
    condition: sa.ColumnElement[bool] | None,
    expectations: list[gx.Expectation],
) -> dict[int, dict[str, Any]]:
    table = ctx.fetch_arrow(_frame_statement(spec, ctx, condition))
    if table.num_rows > spec.max_rows:
        rows = spec.relation.describe() + (
            " (row_condition applied)" if condition is not None else ""
        )
        raise CheckConfigError(
            f"{len(expectations)} expectation(s) need GX, which reads DuckDB only as a DataFrame, "
            f"and {rows} has more than max_rows {spec.max_rows} rows: raise max_rows or keep to "
            "the expectations postrun compiles (postrun list)"
        )
    return gx_fallback.validate_arrow(table, expectations, ctx.sample_limit)


def _frame_statement(
    spec: ExpectationSuiteSpec, ctx: Context, condition: sa.ColumnElement[bool] | None
) -> sa.Select[Any]:
    """The rows GX judges on a DataFrame: one more than max_rows tells it was too many."""
    stmt = ctx.select(spec.relation, sa.literal_column("*"))
    if condition is not None:
        stmt = stmt.where(condition)
    return stmt.limit(spec.max_rows + 1)


def _literal_sql(spec: ExpectationSuiteSpec, ctx: Context) -> str:
    """The relation as one SELECT with the params written in (GX binds none)."""
    stmt = ctx.select(spec.relation, sa.literal_column("*"))
    return gx_fallback.query_sql(stmt, ctx.params, ctx.source().dialect(), spec.relation.describe())
