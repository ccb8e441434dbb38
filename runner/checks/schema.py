"""schema: a pandera schema validates a relation, or the records of each result file."""

from __future__ import annotations

import importlib
import math
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, model_validator

from runner.checks.base import Query, Relation, RelationCheck, Scan, check_relation, register
from runner.context import Context
from runner.errors import CheckConfigError
from runner.results import Outcome
from runner.sources.files import expand
from runner.sources.objects import any_url
from runner.sources.sql import jsonable
from runner.spec import Key

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_MAX_ROWS = 1_000_000
_SHOWN_GROUPS = 5
_SHOWN_FILES = 3
_TIMES = "\N{MULTIPLICATION SIGN}"


class SchemaSpec(RelationCheck):
    """A pandera schema validates a relation or the records of result files."""

    type: Literal["schema"]
    schema_path: str | None = Field(default=None, alias="schema")
    """Schema file in pandera's own YAML or JSON serialization format."""
    object: str | None = None
    """`module:attribute` naming a pandera DataFrameSchema or DataFrameModel importable from
    Python, instead of `schema`."""
    backend: Literal["polars", "pandas"] | None = None
    """Dataframe library that validates: defaults to the schema's own (a schema file's
    `schema_type`: `dataframe` is pandas, anything else polars)."""
    files: str | list[str] | None = None
    """Glob(s) of local result files whose records are validated, instead of a relation; or
    give `records` with a files `source` to validate that source's files."""
    records: str | None = None
    """JSON pointer to the array of records in each file (e.g. /operations); the whole document
    when left out (or "", with a files `source`)."""
    key: Key = Field(default_factory=list)
    """Columns that identify a row in failure samples; a relation is read in this order."""
    max_rows: Annotated[int, Field(ge=1)] = DEFAULT_MAX_ROWS
    """Largest relation read into memory; over it the check is ERROR / config."""

    glob_fields = ("files",)
    existing_paths = ("schema_path",)

    @model_validator(mode="after")
    def _table_or_query(self) -> SchemaSpec:  # replaces RelationCheck's: `files` is a target too
        if (self.schema_path is None) == (self.object is None):
            raise ValueError("give exactly one of 'schema' or 'object'")
        if self.object is not None and not _is_object_name(self.object):
            raise ValueError(f"'object' must be 'module:attribute', not '{self.object}'")
        if self.records not in (None, "") and not str(self.records).startswith("/"):
            raise ValueError(f"'records' must be a JSON pointer starting with '/': {self.records}")
        if self.files is None and self.records is not None:
            if self.table is not None or self.query is not None:
                raise ValueError("'records' applies to files ('files', or a files 'source')")
        elif self.files is None:
            check_relation(self.table, self.where, self.query)
        elif self.table is not None or self.query is not None or self.source is not None:
            raise ValueError("give 'files' or a relation ('table'/'query' on a source), not both")
        return self

    def needs_source(self) -> bool:
        return self.files is None

    def target(self) -> str:
        return "files" if self.reads_files else self.relation.describe()

    @property
    def reads_files(self) -> bool:
        """Whether it validates result files (its own `files`, or a files source's) rather
        than a relation."""
        return self.files is not None or self.records is not None

    def relations(self) -> Iterator[tuple[str, Relation]]:
        if not self.reads_files:
            yield "", self.relation


def scans(spec: SchemaSpec) -> list[Scan]:
    """The row count that bounds the read (shared with other checks on the relation)."""
    return [] if spec.reads_files else [Scan(spec.relation, {"rows": sa.func.count()})]


def queries(spec: SchemaSpec, ctx: Context) -> list[Query]:
    """The read of the rows themselves."""
    return [] if spec.reads_files else [Query(_rows(spec, ctx))]


@register(SchemaSpec, scans=scans, queries=queries)
def schema(spec: SchemaSpec, ctx: Context) -> Outcome:
    with _quiet_pyspark():
        return _judge(spec, ctx)


def _judge(spec: SchemaSpec, ctx: Context) -> Outcome:
    pandera_schema, backend = _load(spec)
    expected = {"schema": spec.schema_path or spec.object, "backend": backend}
    if spec.reads_files:
        return _judge_files(spec, ctx, pandera_schema, backend, expected)
    target = spec.relation.describe()
    count = int(ctx.scan(spec.relation)["rows"])
    if count > spec.max_rows:
        raise CheckConfigError(
            f"{target} has {count} rows, more than max_rows {spec.max_rows}: narrow it with "
            "'where' or raise 'max_rows'"
        )
    table = ctx.fetch_arrow(_rows(spec, ctx))
    cases = _validate(pandera_schema, _arrow_frame(backend, table))
    observed = {"rows": table.num_rows, "failure_cases": len(cases)}
    if not cases:
        message = f"{target}: the schema holds on {_plural(table.num_rows, 'row')}"
        return Outcome(passed=True, message=message, observed=observed, expected=expected)
    keyed = table.select(spec.key).to_pylist() if spec.key else []
    keys = [{k: jsonable(v) for k, v in row.items()} for row in keyed]
    failures = [_with_key(c, keys, spec.key) for c in cases[: ctx.sample_limit]]
    message = f"{target}: {_summary(cases)}"
    return Outcome(
        passed=False,
        message=message,
        observed=observed,
        expected=expected,
        failures=failures,
        failure_count=len(cases),
    )


def _judge_files(
    spec: SchemaSpec, ctx: Context, pandera_schema: Any, backend: str, expected: dict[str, Any]
) -> Outcome:
    patterns = [spec.files] if isinstance(spec.files, str) else list(spec.files or [])
    if spec.files is None:
        source = ctx.file_source()
        if not source.patterns:
            raise CheckConfigError(f"source '{source.name}' has no 'files' glob to validate")
        patterns = list(source.patterns)
    if any_url(patterns):
        raise CheckConfigError(
            "the schema check reads local result files; for objects (s3:// …) expose them as a "
            "source's `tables:` and give the check a `table`"
        )
    paths = expand(patterns)
    cases: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    total = 0
    for path in paths:
        ctx.raise_if_cancelled()
        records, problem = _read_records(path, spec.records or "")
        frame = _records_frame(backend, records) if records else None
        found = [problem] if problem else _validate(pandera_schema, frame)
        total += len(records)
        for case in found:
            cases.append({"file": str(path), **case})
            if len(failures) < ctx.sample_limit:
                failures.append(_with_key(cases[-1], records, spec.key))
    bad = list(dict.fromkeys(c["file"] for c in cases))
    observed = {
        "files": len(paths),
        "bad_files": len(bad),
        "records": total,
        "failure_cases": len(cases),
    }
    if not paths:
        return Outcome(
            passed=False,
            message=f"no files match {', '.join(patterns)}",
            observed=observed,
            expected=expected,
        )
    if not cases:
        message = f"the schema holds on {_plural(total, 'record')} in {_plural(len(paths), 'file')}"
        return Outcome(passed=True, message=message, observed=observed, expected=expected)
    names = ", ".join(Path(f).name for f in bad[:_SHOWN_FILES]) + (
        ", …" if len(bad) > _SHOWN_FILES else ""
    )
    message = f"{len(bad)} of {len(paths)} files fail the schema ({names}): {_summary(cases)}"
    return Outcome(
        passed=False,
        message=message,
        observed=observed,
        expected=expected,
        failures=failures,
        failure_count=len(cases),
    )


# --- the schema ----------------------------------------------------------------------------


def _load(spec: SchemaSpec) -> tuple[Any, str]:
    """The pandera schema and the backend that validates with it."""
    if spec.object is not None:
        return _import_object(spec.object, spec.backend)
    assert spec.schema_path is not None
    path = Path(spec.schema_path)
    data = _read_schema_file(path)
    declared = data.get("schema_type")
    backend = spec.backend or ("pandas" if declared == "dataframe" else "polars")
    schema_io = importlib.import_module(f"pandera.io.{backend}_io")
    try:
        return schema_io.deserialize_schema(data), backend
    except Exception as exc:  # pandera raises many kinds on a malformed schema: all are config
        raise CheckConfigError(
            f"schema file {path} is not a pandera {backend} schema: {exc}"
        ) from exc


@contextmanager
def _quiet_pyspark() -> Iterator[None]:
    """pandera tries PySpark's pandas API whenever PySpark is installed (the `spark` extra), on
    import and again on its first validation, and PySpark warns each time about a pandas it has
    not caught up with: a warning about PySpark, not the schema or the data, so not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet", category=FutureWarning)
        yield


def _read_schema_file(path: Path) -> dict[str, Any]:
    import orjson
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
        data = orjson.loads(text) if path.suffix.lower() == ".json" else YAML(typ="safe").load(text)
    except (OSError, ValueError, YAMLError) as exc:
        raise CheckConfigError(f"schema file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not ({"columns", "checks"} & set(data)):
        raise CheckConfigError(
            f"schema file {path} is not a pandera schema: it has no 'columns' or 'checks' "
            "(write it with pandera.io's to_yaml / to_json)"
        )
    return data


def _import_object(name: str, backend: str | None) -> tuple[Any, str]:
    module_name, _, attribute = name.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise CheckConfigError(f"object '{name}' cannot be imported: {exc}") from exc
    if isinstance(found, type) and hasattr(found, "to_schema"):  # a DataFrameModel
        found = found.to_schema()
    kind = type(found).__module__
    if not kind.startswith("pandera.api.") or not hasattr(found, "validate"):
        raise CheckConfigError(
            f"object '{name}' is not a pandera DataFrameSchema or DataFrameModel"
        )
    own = "polars" if kind.startswith("pandera.api.polars") else "pandas"
    if backend is not None and backend != own:
        raise CheckConfigError(f"object '{name}' is a {own} schema; 'backend' says {backend}")
    return found, own


# --- validation ----------------------------------------------------------------------------


def _validate(pandera_schema: Any, frame: Any) -> list[dict[str, Any]]:
    """pandera's failure cases for ``frame`` (None: no records), all of them (lazy)."""
    if frame is None:
        return []
    from pandera.errors import SchemaErrors

    # pandera's polars backend crashes when it coerces a column that is absent: report absent
    # columns the way pandera does and validate the rest.
    absent = [
        name
        for name, column in pandera_schema.columns.items()
        if column.required and not column.regex and name not in frame.columns
    ]
    missing = [_file_case("column_in_dataframe", name) | {"column": name} for name in absent]
    try:
        frame = _untyped_as_declared(frame, pandera_schema)
        present = pandera_schema.remove_columns(absent) if absent else pandera_schema  # a copy
        present.validate(frame, lazy=True)
    except SchemaErrors as exc:
        table = exc.failure_cases
        found = table.to_dicts() if hasattr(table, "to_dicts") else table.to_dict("records")
        return missing + [_case(c) for c in found]
    return missing


def _untyped_as_declared(frame: Any, pandera_schema: Any) -> Any:
    """Columns holding only NULLs carry no type when the driver gives none (SQLite, an empty
    result, records without the key): they take the schema's dtype, and NULLs are then judged
    by `nullable` alone rather than failing the dtype check."""
    declared = {
        name: column.dtype.type
        for name, column in pandera_schema.columns.items()
        if column.dtype is not None and name in frame.columns
    }
    if hasattr(frame, "with_columns"):  # polars
        import polars as pl

        untyped = [n for n, t in frame.schema.items() if t == pl.Null and n in declared]
        return frame.with_columns(pl.col(n).cast(declared[n]) for n in untyped)
    for name, dtype in declared.items():
        column = frame[name]
        if column.dtype == object and column.isna().all():
            with suppress(TypeError, ValueError):  # a NULL has no integer form in numpy
                frame[name] = column.astype(dtype)
    return frame


def _arrow_frame(backend: str, table: pa.Table) -> Any:
    """A fetched relation as the backend's frame, column types kept (polars takes the Arrow
    buffers as they are; pandas converts, DATE to Python dates)."""
    if backend == "pandas":
        return table.to_pandas()
    import polars as pl

    return pl.from_arrow(table)


def _records_frame(backend: str, records: list[dict[str, Any]]) -> Any:
    if backend == "pandas":
        import pandas as pd  # type: ignore[import-untyped]

        return pd.DataFrame.from_records(records)
    import polars as pl

    return pl.DataFrame(records, infer_schema_length=None)


def _case(raw: dict[str, Any]) -> dict[str, Any]:
    """One failure case, the same from either backend (pandas gives NaN where polars gives
    null, and raw values where polars gives text)."""
    value = _present(raw.get("failure_case"))
    column = _present(raw.get("column"))
    index = _present(raw.get("index"))
    return {
        "column": None if column is None else str(column),
        "check": str(raw.get("check")),
        "failure_case": None if value is None else str(value),
        "index": None if index is None else int(index),
    }


def _present(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _with_key(case: dict[str, Any], rows: list[dict[str, Any]], key: list[str]) -> dict[str, Any]:
    index = case.get("index")
    if not key or index is None or index >= len(rows):
        return case
    return {**case, "key": {k: rows[index].get(k) for k in key}}


def _summary(cases: list[dict[str, Any]]) -> str:
    """'3 failure cases in 2 columns (daily_pnl not_nullable x2, …)', with a times sign."""
    groups = Counter(" ".join(filter(None, (c["column"], c["check"]))) for c in cases)
    columns = {c["column"] for c in cases if c["column"] is not None}
    shown = ", ".join(f"{g} {_TIMES}{n}" for g, n in list(groups.items())[:_SHOWN_GROUPS])
    more = ", …" if len(groups) > _SHOWN_GROUPS else ""
    where = f" in {_plural(len(columns), 'column')}" if columns else ""
    return f"{_plural(len(cases), 'failure case')}{where} ({shown}{more})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- reading -------------------------------------------------------------------------------


def _rows(spec: SchemaSpec, ctx: Context) -> sa.Select[Any]:
    stmt = ctx.select(spec.relation, sa.literal_column("*"))
    return stmt.order_by(*(sa.column(k) for k in spec.key))


def _read_records(path: str, pointer: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The records at ``pointer`` in one file, or the failure case saying why there are none."""
    import orjson

    try:
        document: Any = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        return [], _file_case("unreadable", exc.strerror or str(exc))
    except orjson.JSONDecodeError as exc:
        return [], _file_case("invalid_json", str(exc))
    for escaped in pointer.split("/")[1:]:
        token = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        elif isinstance(document, dict) and token in document:
            document = document[token]
        else:
            return [], _file_case("records_not_found", f"no value at {pointer}")
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        return [], _file_case("records_not_array", f"{pointer or '/'} is not an array of objects")
    return document, None


def _file_case(check: str, reason: str) -> dict[str, Any]:
    """A failure case pandera did not produce: the file, or a column, as a whole."""
    return {"column": None, "check": check, "failure_case": reason, "index": None}


def _is_object_name(text: str) -> bool:
    module, sep, attribute = text.partition(":")
    return bool(sep and module and attribute.isidentifier())
