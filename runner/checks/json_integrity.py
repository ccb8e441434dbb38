"""json_integrity: result files are complete, valid JSON (optionally schema-valid); none missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from runner.checks.base import CheckSpec, Relation, Spec, register
from runner.context import Context
from runner.errors import CheckConfigError
from runner.plan import Query
from runner.results import Outcome
from runner.sources.files import expand, glob_root

if TYPE_CHECKING:
    from runner.sources.json_files import FileProblem

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""runner.sources.json_files.DEFAULT_MAX_BYTES, spelled here: that module loads only when a
suite checks files."""


class ExpectedQuery(Spec):
    """Expected file names read from a database."""

    query: str
    """SELECT whose first column holds the expected file names."""
    source: str | None = None
    """Source to run the query on; defaults to the check's source."""


class JsonIntegritySpec(CheckSpec):
    """Result files are complete, valid JSON (and schema-valid); every expected file exists."""

    type: Literal["json_integrity"]
    files: str | list[str] | None = None
    """Glob(s) of the files, instead of a file `source`."""
    expected: list[str] | ExpectedQuery | None = None
    """File names that must exist: a list, or {query, source}. A name without '/' matches a base
    name; with '/', a path relative to the glob's fixed leading folder."""
    schema_path: str | None = Field(default=None, alias="schema")
    """JSON Schema file every document must satisfy."""
    min_bytes: Annotated[int, Field(ge=0)] = 1
    """Files smaller than this are reported as too_small."""
    max_bytes: Annotated[int, Field(ge=1)] = DEFAULT_MAX_BYTES
    """Files larger than this are not read and are reported as too_large."""
    min_files: Annotated[int, Field(ge=0)] = 1
    """Fewer matched files than this fails the check (a batch that wrote nothing)."""

    glob_fields = ("files",)
    existing_paths = ("schema_path",)

    @model_validator(mode="after")
    def _files_or_source(self) -> JsonIntegritySpec:
        if self.files is not None and self.source is not None:
            raise ValueError("give 'files' or a file 'source', not both")
        if self.min_bytes > self.max_bytes:
            raise ValueError("'min_bytes' must not exceed 'max_bytes'")
        return self

    def needs_source(self) -> bool:
        return self.files is None

    def target(self) -> str:
        return self.source or "files"

    def relations(self) -> Iterator[tuple[str, Relation]]:
        if isinstance(self.expected, ExpectedQuery):
            yield "expected", Relation(query=self.expected.query, source=self.expected.source)


def queries(spec: JsonIntegritySpec, ctx: Context) -> list[Query]:
    """The query naming the expected files, when they come from a database."""
    if not isinstance(spec.expected, ExpectedQuery):
        return []
    return [Query(ctx.text(spec.expected.query), spec.expected.source or spec.source)]


@register(JsonIntegritySpec, queries=queries)
def json_integrity(spec: JsonIntegritySpec, ctx: Context) -> Outcome:
    from runner.sources.json_files import JsonFileInspector

    patterns = _patterns(spec, ctx)
    paths = expand(patterns)
    inspector = JsonFileInspector(
        min_bytes=spec.min_bytes, max_bytes=spec.max_bytes, schema=_schema(spec)
    )
    problems, size = inspector.inspect_many(paths, interrupt=ctx.raise_if_cancelled)
    bad_files = len({p.path for p in problems})  # a listed file that vanished counts here too
    names = _expected_names(spec, ctx)
    absent = _missing(names, paths, [glob_root(p) for p in patterns])
    problems += absent
    observed: dict[str, Any] = {
        "files": len(paths),
        "bad_files": bad_files,
        "missing": len(absent),
        "bytes": size,
    }
    expected: dict[str, Any] = {"min_files": spec.min_files}
    if spec.expected is not None:
        expected["expected_files"] = len(names)
    if len(paths) < spec.min_files and not problems:
        message = (
            f"{len(paths)} files match {', '.join(patterns)}; at least {spec.min_files} expected"
        )
        return Outcome(False, message, observed, expected)
    if not problems:
        return Outcome(True, f"{len(paths)} files are complete, valid JSON", observed, expected)
    counts = [f"{bad_files} of {len(paths)} files bad"] if bad_files else []
    counts += (
        [f"{observed['missing']} of {len(names)} expected missing"] if observed["missing"] else []
    )
    shown = "; ".join(_describe(p) for p in problems[:3]) + ("; …" if len(problems) > 3 else "")
    message = f"{', '.join(counts)}: {shown}"
    return Outcome(
        False, message, observed, expected, [p.to_dict() for p in problems], len(problems)
    )


def _patterns(spec: JsonIntegritySpec, ctx: Context) -> list[str]:
    if spec.files is not None:
        return [spec.files] if isinstance(spec.files, str) else list(spec.files)
    source = ctx.file_source()
    if not source.patterns:
        raise CheckConfigError(f"source '{source.name}' has no 'files' glob to check")
    return list(source.patterns)


def _schema(spec: JsonIntegritySpec) -> dict[str, Any] | None:
    if spec.schema_path is None:
        return None
    try:
        from runner.sources.json_files import load_schema

        return load_schema(Path(spec.schema_path))
    except (OSError, ValueError) as exc:  # the suite's own schema file, not the data
        raise CheckConfigError(str(exc)) from exc


def _expected_names(spec: JsonIntegritySpec, ctx: Context) -> list[str]:
    if spec.expected is None:
        return []
    if isinstance(spec.expected, list):
        return spec.expected
    rows = ctx.fetch(ctx.text(spec.expected.query), spec.expected.source)
    return [str(next(iter(row.values()))) for row in rows if row and next(iter(row.values()))]


def _missing(names: list[str], paths: list[Path], roots: list[Path]) -> list[FileProblem]:
    if not names:
        return []
    base_names = {p.name for p in paths}
    relative = {str(p.relative_to(root)) for p in paths for root in roots if p.is_relative_to(root)}
    from runner.sources.json_files import FileProblem

    root = roots[0] if roots else Path(".")
    return [
        FileProblem(str(root / name), "missing", "expected file was not written")
        for name in dict.fromkeys(names)
        if (name not in relative if "/" in name else name not in base_names)
    ]


def _describe(problem: FileProblem) -> str:
    where = f" at line {problem.line} column {problem.column}" if problem.line else ""
    return f"{Path(problem.path).name} {problem.reason}{where}"
