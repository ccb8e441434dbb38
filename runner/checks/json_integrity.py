"""json_integrity: result files are complete, valid JSON (optionally schema-valid); none missing."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from runner.checks.base import CheckSpec, Query, Relation, register
from runner.context import Context
from runner.errors import CheckConfigError
from runner.results import Outcome
from runner.sources import objects
from runner.sources.files import expand, glob_root
from runner.spec import Spec

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
    """Glob(s) of the files, or of objects (`s3://bucket/prefix/*.json`, any fsspec URL), instead
    of a file `source`."""
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
    return [Query(ctx.text(spec.expected.query), spec.expected.source)]


@register(JsonIntegritySpec, queries=queries)
def json_integrity(spec: JsonIntegritySpec, ctx: Context) -> Outcome:
    from runner.sources.json_files import JsonFileInspector

    patterns = _patterns(spec, ctx)
    inspector = JsonFileInspector(
        min_bytes=spec.min_bytes, max_bytes=spec.max_bytes, schema=_schema(spec)
    )
    if objects.any_url(patterns):
        store = _store(spec, ctx)
        listed = objects.listing(patterns, store)
        paths = list(listed)
        problems, size = objects.inspect(inspector, listed, store, ctx.raise_if_cancelled)
    else:
        paths = expand(patterns)
        problems, size = inspector.inspect_many(paths, interrupt=ctx.raise_if_cancelled)
    bad_files = len({p.path for p in problems})  # a listed file that vanished counts here too
    absent = _absent(spec, ctx, paths, [_root(p) for p in patterns])
    failure_count = len(problems) + absent.count
    problems += absent.first
    observed: dict[str, Any] = {
        "files": len(paths),
        "bad_files": bad_files,
        "missing": absent.count,
        "bytes": size,
    }
    expected: dict[str, Any] = {"min_files": spec.min_files}
    if spec.expected is not None:
        expected["expected_files"] = absent.expected
    if len(paths) < spec.min_files and not failure_count:
        message = (
            f"{len(paths)} files match {', '.join(patterns)}; at least {spec.min_files} expected"
        )
        return Outcome(passed=False, message=message, observed=observed, expected=expected)
    if not failure_count:
        return Outcome(
            passed=True,
            message=f"{len(paths)} files are complete, valid JSON",
            observed=observed,
            expected=expected,
        )
    counts = [f"{bad_files} of {len(paths)} files bad"] if bad_files else []
    if absent.count:
        counts.append(f"{absent.count} of {absent.expected} expected files missing")
    shown = "; ".join(_describe(p, named=not bad_files) for p in problems[:_SHOWN])
    message = f"{', '.join(counts)}: {shown}" + ("; …" if failure_count > _SHOWN else "")
    return Outcome(
        passed=False,
        message=message,
        observed=observed,
        expected=expected,
        failures=[p.to_dict() for p in problems],
        failure_count=failure_count,
    )


_SHOWN = 3
"""Problems named in the message."""


def _patterns(spec: JsonIntegritySpec, ctx: Context) -> list[str]:
    if spec.files is not None:
        return [spec.files] if isinstance(spec.files, str) else list(spec.files)
    source = ctx.file_source()
    if not source.patterns:
        raise CheckConfigError(f"source '{source.name}' has no 'files' glob to check")
    return list(source.patterns)


def _store(spec: JsonIntegritySpec, ctx: Context) -> objects.Store:
    """The source's way to its object store, or the environment's for a check's own `files`."""
    return objects.Store() if spec.files is not None else ctx.file_source().store


def _schema(spec: JsonIntegritySpec) -> dict[str, Any] | None:
    if spec.schema_path is None:
        return None
    try:
        from runner.sources.json_files import load_schema

        return load_schema(Path(spec.schema_path))
    except (OSError, ValueError) as exc:  # the suite's own schema file, not the data
        raise CheckConfigError(str(exc)) from exc


@dataclass(frozen=True)
class _Absent:
    """The expected files that were not written: the first of them (each name once, in the
    order the names came), how many in all, and how many names were expected."""

    first: list[FileProblem]
    count: int
    expected: int


def _absent(spec: JsonIntegritySpec, ctx: Context, found: list[str], roots: list[str]) -> _Absent:
    """Every expected name against the matched files, holding no more than the files' names,
    the first missing names (as many as the verdict lists, or the message names) and a count of
    distinct missing names that spills to temporary files past ``_IN_MEMORY`` names: a query
    may name millions of files."""
    from runner.sources.json_files import FileProblem

    if spec.expected is None:
        return _Absent([], 0, 0)
    base_names = {p.rpartition("/")[2] for p in found}
    relative = {r for p in found for root in roots if (r := _relative(p, root)) is not None}
    keep = max(ctx.sample_limit, _SHOWN)
    first: dict[str, None] = {}
    expected = 0
    with _DistinctCount() as missing:
        for name in _expected_names(spec, ctx):
            expected += 1
            if name in relative if "/" in name else name in base_names:
                continue
            missing.add(name)
            if len(first) < keep:
                first.setdefault(name)
        count = missing.count()
    root = roots[0] if roots else "."
    problems = [
        FileProblem(_under(root, n), "missing", "expected file was not written") for n in first
    ]
    return _Absent(problems, count, expected)


def _root(pattern: str) -> str:
    """The fixed leading folder of a glob, or the fixed leading part of an object URL's."""
    return objects.url_root(pattern) if objects.is_url(pattern) else str(glob_root(pattern))


def _relative(path: str, root: str) -> str | None:
    """``path`` relative to ``root``, or None when it is not under it."""
    if objects.is_url(root):
        prefix = root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else None
    local, folder = Path(path), Path(root)
    return str(local.relative_to(folder)) if local.is_relative_to(folder) else None


def _under(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}" if objects.is_url(root) else str(Path(root) / name)


def _expected_names(spec: JsonIntegritySpec, ctx: Context) -> Iterator[str]:
    """The names listed, or those the query returns, in batches: its first column, NULL and
    empty values left out."""
    if spec.expected is None:
        return
    if isinstance(spec.expected, list):
        yield from spec.expected
        return
    (query,) = queries(spec, ctx)
    for rows in ctx.stream(query.statement, query.source, batch=_BATCH):
        ctx.raise_if_cancelled()
        for row in rows:
            value = next(iter(row.values())) if row else None
            if value:
                yield str(value)


_BATCH = 10_000
"""Rows of the expected-names query held at once."""


def _describe(problem: FileProblem, *, named: bool = False) -> str:
    """run_3.json truncated at line 252 column 22; a missing file by its name alone when
    ``named`` (every problem is a missing file, which the message already says)."""
    if named and problem.reason == "missing":
        return Path(problem.path).name
    where = f" at line {problem.line} column {problem.column}" if problem.line else ""
    return f"{Path(problem.path).name} {problem.reason}{where}"


class _DistinctCount:
    """How many distinct strings were added, in bounded memory: a set while it holds at most
    ``_IN_MEMORY`` of them; past that, each string goes to one of ``_SPILLS`` temporary files
    chosen by its hash, so that equal strings meet in one file, and each file is counted on its
    own at the end."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> _DistinctCount:
        return self

    def __exit__(self, *exc: object) -> None:
        for file in self._files:
            file.close()

    def add(self, text: str) -> None:
        if not self._files:
            self._seen.add(text)
            if len(self._seen) > _IN_MEMORY:
                self._files = [tempfile.TemporaryFile() for _ in range(_SPILLS)]  # noqa: SIM115
                for seen in self._seen:
                    self._spill(seen)
                self._seen = set()
        else:
            self._spill(text)

    def count(self) -> int:
        total = len(self._seen)
        for file in self._files:
            file.seek(0)
            total += len(set(file))
        return total

    def _spill(self, text: str) -> None:
        # unicode_escape writes a newline, a backslash or a lone surrogate as an escape: one
        # line per string, and two strings write the same line only when they are equal.
        self._files[hash(text) % _SPILLS].write(text.encode("unicode_escape") + b"\n")


_IN_MEMORY = 100_000
"""Distinct missing names counted in a set (about 10 MB) before they spill to files."""
_SPILLS = 64
"""Temporary files the names spill to: 10 million names make sets of ~160,000 to count."""
