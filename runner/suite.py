"""Suite files: YAML → validated specs (file and line on every error) → a bound, runnable Suite."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from runner.checks import registry
from runner.checks.base import CheckSpec
from runner.errors import SuiteError, SuiteIssue
from runner.params import (
    ParamSpec,
    interpolate,
    placeholders,
    placeholders_in_sql,
    resolve_params,
)
from runner.redact import MASK, Redactor, mask_url, url_secrets
from runner.sources import FileSource, Source, database, is_spark_url, objects
from runner.sources.files import FORMATS, TABLE_NAME, FileTable, glob_root, infer_format
from runner.sources.sql import Access, database_file, duckdb_file, url_access_problem
from runner.spec import Spec, document_fields
from runner.sqlguard import never_allowed, read_only_problem
from runner.suite_errors import did_you_mean, located_issues, unknown
from runner.yamlfile import Document, Loc, load_yaml

_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_FUNCTION = re.compile(r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*")
_FILE_URL = re.compile(r"^(?P<scheme>(?:duckdb|sqlite)(?:\+\w+)?:///)(?P<path>[^?]*)(?P<rest>.*)$")


class TableSpec(Spec):
    """Files whose contents a file source exposes as one SQL table."""

    files: str | list[str]
    """Glob(s) of the files; `{param}` substitution applies."""
    format: Literal["json", "ndjson", "csv", "parquet"] | None = None
    """File format; inferred from the glob's suffix when left out."""


class SourceSpec(Spec):
    """A database (`url`) or a set of result files (`files`, optional `tables`)."""

    url: str | None = None
    """SQLAlchemy URL, or Spark Connect (`sc://host:15002`, `spark://local`); `${ENV}`,
    `${ENV:-default}` and `{param}` are substituted."""
    files: str | list[str] | None = None
    """Glob(s) of result files, local or objects (`s3://bucket/prefix/*.json`, any fsspec URL);
    `{param}` substitution applies."""
    tables: dict[str, str | list[str] | TableSpec] | None = None
    """File contents as SQL tables (through DuckDB, or Spark with `engine: spark`): table name →
    glob(s) or {files, format}."""
    engine: Literal["duckdb", "spark"] = "duckdb"
    """What reads the `tables`: `duckdb` (default, in process) or `spark` (PERMISSIVE reads with
    a corrupt-record column: each file with corrupt records is named with their count; on the
    Spark server of `spark_url`, which must see the files at the same paths)."""
    spark_url: str | None = None
    """With `engine: spark`: the Spark Connect server (`sc://host:15002`, token and TLS as
    Spark Connect defines them) or `spark://local` (default: a local session started in this
    process); `${ENV}` and `{param}` are substituted."""
    allow_paths: list[str] = Field(default_factory=list)
    """Folders (or files) DuckDB may read besides the source's own database file and the files
    behind its tables, e.g. for `read_csv` in a query; `{param}` substitution applies."""
    allow_privileged_role: bool = False
    """Accept a PostgreSQL role that can write (a superuser, a member of pg_write_all_data, an
    owner of tables); refused by default."""
    endpoint_url: str | None = None
    """For `s3://` files and tables: an S3-compatible endpoint (MinIO, a local server); default
    AWS_ENDPOINT_URL, else AWS. Credentials come from the AWS environment or profile, never the
    suite."""
    unreadable: Literal["error", "skip"] = "error"
    """Files behind `tables` that cannot be read are skipped; `error` (default): a check that
    read such a table may FAIL on what it saw but never PASS (it is ERROR / data_malformed,
    naming the files); `skip`: judge the readable files alone, with a note."""

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in value or {}:
            if not re.match(TABLE_NAME, name):
                raise ValueError(
                    f"table name {name!r} is not an identifier (letters, digits and '_', "
                    "not starting with a digit)"
                )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if self.url is None and self.files is None and self.tables is None:
            raise ValueError("give 'url' (a database) or 'files' / 'tables' (result files)")
        if self.url is not None and (self.files is not None or self.tables is not None):
            raise ValueError("a source is a database ('url') or files ('files'/'tables'), not both")
        if self.url is None and self.allow_privileged_role:
            raise ValueError("'allow_privileged_role' applies to a database ('url')")
        if self.tables is None and "unreadable" in self.model_fields_set:
            raise ValueError("'unreadable' applies to a source with 'tables'")
        if self.url is not None and self.endpoint_url is not None:
            raise ValueError("'endpoint_url' applies to files ('files'/'tables'), not a 'url'")
        if self.tables is None and "engine" in self.model_fields_set:
            raise ValueError("'engine' applies to a source with 'tables'")
        if self.engine != "spark" and self.spark_url is not None:
            raise ValueError("'spark_url' applies to a source with 'engine: spark'")
        if self.engine == "spark" and self.allow_paths:
            raise ValueError(
                "'allow_paths' applies to DuckDB; with 'engine: spark' only the files behind the "
                "tables are read"
            )
        return self


class SuiteFile(Spec):
    """A postrun suite file (SPEC §2)."""

    suite: str = Field(pattern=r"^[a-z0-9_-]+$")
    """Suite name: lowercase letters, digits, '-' and '_'."""
    description: str | None = None
    """What the suite guards."""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    """Values the suite takes at run time."""
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    """Named databases and result-file sets the checks read."""
    checks: list[dict[str, Any]] = Field(min_length=1)
    """The checks, run in this order in every report."""
    allow_functions: list[str] = Field(default_factory=list)
    """Functions the suite's SQL may call beyond postrun's list of functions known to only read
    (case-insensitive; `schema.name` for a function in a schema of your own). List only functions
    that only read: the databases' read-only transactions stay, but the guard stops looking."""
    history: str | None = None
    """The history store: a SQLAlchemy URL (`${ENV}` allowed; a relative `sqlite:///` file is
    relative to this file) or `off`. `--history` and `$POSTRUN_HISTORY` take precedence; by
    default `history.sqlite` next to the reports."""
    history_key: Annotated[list[str], Field(default_factory=list)]
    """Params whose values keep apart the history of runs for different entities (e.g.
    `[region]`); by default every run of the suite shares one history."""

    @field_validator("params", "sources")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"'{name}' is not a valid name (letters, digits, '_', '-')")
        return value


@dataclass(frozen=True)
class SourceConfig:
    """A source with every substitution done; ``open()`` makes a fresh, unconnected Source."""

    name: str
    url: str | None = None
    patterns: tuple[str, ...] = ()
    tables: tuple[FileTable, ...] = ()
    allow_paths: tuple[str, ...] = ()
    allow_privileged_role: bool = False
    unreadable: Literal["error", "skip"] = "error"
    endpoint_url: str | None = None
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_url: str | None = None

    def open(self) -> Source:
        if self.url is not None and is_spark_url(self.url):
            from runner.sources.spark import SparkSource

            return SparkSource(self.name, self.url)
        if self.url is not None:
            access = Access(folders=self.allow_paths, privileged_role=self.allow_privileged_role)
            return database(self.name, self.url, access=access)
        if self.engine == "spark":
            from runner.sources.spark_files import SparkFileSource

            return SparkFileSource(
                self.name,
                list(self.patterns),
                list(self.tables),
                url=self.spark_url,
                unreadable=self.unreadable,
                store=objects.Store(self.endpoint_url),
            )
        return FileSource(
            self.name,
            list(self.patterns),
            list(self.tables),
            allow_paths=self.allow_paths,
            unreadable=self.unreadable,
            store=objects.Store(self.endpoint_url),
        )


@dataclass
class Suite:
    """A validated suite with its params bound: everything needed to run."""

    name: str
    path: str
    sha256: str
    description: str | None
    params: dict[str, Any]
    sources: dict[str, SourceConfig]
    checks: list[CheckSpec]
    param_specs: dict[str, ParamSpec] = field(default_factory=dict)
    history: str | None = None
    """The suite's `history:` URL (or `off`), substituted and resolved; None when not given."""
    history_key: list[str] = field(default_factory=list)
    """The params whose values key this suite's history."""

    def secrets(self) -> list[str]:
        """Every value that must never be printed: passwords and tokens in source URLs, the
        object stores' credentials in the environment, and the values of secret params."""
        urls = [u for c in self.sources.values() for u in (c.url, c.spark_url) if u]
        found = [s for url in urls for s in url_secrets(url)]
        found += objects.secret_values()
        for name in self.secret_params():
            value = self.params.get(name)
            found += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return [s for s in found if s and s != "None"]

    def secret_params(self) -> list[str]:
        """The params whose values are secrets (named so, or declared `secret: true`)."""
        return [name for name, spec in self.param_specs.items() if spec.is_secret(name)]

    def shown_params(self, redact: Callable[[str], str] | None = None) -> dict[str, Any]:
        """The params as a verdict shows them: a secret param as ***, any other value with every
        secret in it masked (a param may carry a source's password: `postgresql://u:{pw}@…`)."""
        redact = redact or Redactor(self.secrets())
        secret = set(self.secret_params())
        return {
            name: MASK if name in secret and value is not None else _shown(value, redact)
            for name, value in self.params.items()
        }


def _shown(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_shown(item, redact) for item in value]
    return value.isoformat() if isinstance(value, date) else value


@dataclass
class ParsedSuite:
    """A suite file validated on its own, before params are bound."""

    file: Path
    document: Document
    spec: SuiteFile
    checks: list[CheckSpec]
    check_locs: list[Loc]

    def history(self, *, env: Mapping[str, str] | None = None) -> str | None:
        """The suite's `history:` with `${ENV}` substituted and a relative file resolved (no
        params: `postrun history` reads a store without running the suite)."""
        binder = _Binder(self, {}, os.environ if env is None else env, Path.cwd())
        return binder.history(self.spec.history)

    def bind(
        self,
        given: Mapping[str, str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Suite:
        """Resolve params, substitute paths and URLs, and check referenced files exist."""
        env = os.environ if env is None else env
        suite_dir = self.file.parent
        params = resolve_params(
            self.spec.params, dict(given or {}), suite_dir=suite_dir, env=env, cwd=cwd
        )
        binder = _Binder(self, params, env, cwd or Path.cwd())
        sources = {name: binder.source(name, spec) for name, spec in self.spec.sources.items()}
        binder.shared_duckdb_files(sources)
        checks = [
            binder.check(spec, loc) for spec, loc in zip(self.checks, self.check_locs, strict=True)
        ]
        if binder.issues:
            raise SuiteError(binder.issues)
        data = self.file.read_bytes()
        return Suite(
            name=self.spec.suite,
            path=os.path.normpath(self.document.path),  # checks/../checks/x.yml → checks/x.yml
            sha256=hashlib.sha256(data).hexdigest(),
            description=self.spec.description,
            params=params,
            sources=sources,
            checks=checks,
            param_specs=dict(self.spec.params),
            history=binder.history(self.spec.history),
            history_key=list(self.spec.history_key),
        )


def missing_paths(parsed: ParsedSuite, suite: Suite) -> list[SuiteIssue]:
    """The database files and result folders ``suite`` names that do not exist, with the line
    that names them (`postrun validate`; a run reports them as ERROR / config)."""
    document = parsed.document
    issues: list[SuiteIssue] = []
    for name, config in suite.sources.items():
        path = database_file(config.url) if config.url else None
        if path is not None and not Path(path).exists():
            issues.append(
                document.issue(
                    ("sources", name, "url"), f"source '{name}': database file {path} not found"
                )
            )
        patterns = [*config.patterns, *(p for t in config.tables for p in t.patterns)]
        issues += _missing_folders(document, ("sources", name), f"source '{name}'", patterns)
    for check, loc in zip(suite.checks, parsed.check_locs, strict=True):
        for key in check.glob_fields:
            value = getattr(check, key)
            patterns = [value] if isinstance(value, str) else list(value or [])
            issues += _missing_folders(document, (*loc, key), f"check '{check.name}'", patterns)
    return issues


def _missing_folders(
    document: Document, loc: Loc, what: str, patterns: list[str]
) -> list[SuiteIssue]:
    local = (p for p in patterns if not objects.is_url(p))  # a store is asked when a check runs
    roots = dict.fromkeys(glob_root(pattern) for pattern in local)
    return [
        document.issue(loc, f"{what}: folder {root} not found")
        for root in roots
        if not root.is_dir()
    ]


def load_suite(
    path: str | Path,
    params: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Suite:
    """Parse, validate and bind a suite file. Raises ``SuiteError`` or ``UsageError``."""
    return parse_suite(path).bind(params, env=env)


def parse_suite(path: str | Path) -> ParsedSuite:
    """Validate a suite file without params; every problem is reported with file and line."""
    display = str(path)
    file = Path(path).resolve()
    if not file.is_file():
        raise SuiteError([SuiteIssue(display, None, "no such suite file")])
    document = load_yaml(file, display)
    if not isinstance(document.data, dict):
        raise SuiteError(
            [document.issue((), "a suite file is a mapping with 'suite' and 'checks'")]
        )
    try:
        spec = SuiteFile.model_validate(document.data)
    except ValidationError as exc:
        raise SuiteError(located_issues(document, exc, SuiteFile, (), "")) from exc
    checks, locs, issues = _parse_checks(document, spec)
    issues += list(_check_allowed(document, spec.allow_functions))
    issues += list(_cross_check(document, spec, checks, locs))
    if issues:
        raise SuiteError(issues)
    return ParsedSuite(file, document, spec, checks, locs)


def _parse_checks(
    document: Document, spec: SuiteFile
) -> tuple[list[CheckSpec], list[Loc], list[SuiteIssue]]:
    checks: list[CheckSpec] = []
    locs: list[Loc] = []
    issues: list[SuiteIssue] = []
    for index, raw in enumerate(spec.checks):
        loc: Loc = ("checks", index)
        label = _label(raw, index)
        kind = raw.get("type")
        if not isinstance(kind, str):
            issues.append(document.issue(loc, f"{label}: missing required key 'type'"))
            continue
        kinds = registry([kind])
        if kind not in kinds:
            known = registry()
            issues.append(
                document.issue((*loc, "type"), f"{label}: {unknown('check type', kind, known)}")
            )
            continue
        model = kinds[kind].spec
        try:
            check = model.model_validate(raw)
        except ValidationError as exc:
            issues += located_issues(document, exc, model, loc, f"{label}: ")
            continue
        if check.source is None and check.needs_source() and len(spec.sources) == 1:
            check = check.model_copy(update={"source": next(iter(spec.sources))})
        checks.append(check)
        locs.append(loc)
    return _named(checks), locs, issues


def _named(checks: list[CheckSpec]) -> list[CheckSpec]:
    """Give unnamed checks '<type>:<target>', numbering repeats ('…#2') in suite order."""
    taken = {c.name for c in checks if c.name}
    seen: dict[str, int] = {}
    named = []
    for check in checks:
        if check.name:
            named.append(check)
            continue
        base = f"{check.type}:{check.target()}" if check.target() else check.type
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        while name in taken:
            seen[base] += 1
            name = f"{base}#{seen[base]}"
        taken.add(name)
        named.append(check.model_copy(update={"name": name}))
    return named


def _cross_check(
    document: Document, spec: SuiteFile, checks: list[CheckSpec], locs: list[Loc]
) -> Iterator[SuiteIssue]:
    """What one check cannot know alone: unique names, known sources, declared params."""
    for index, name in enumerate(spec.history_key):
        if name not in spec.params:
            reason = _unknown_param_reason(name, list(spec.params))
            yield document.issue(("history_key", index), f"history_key: {reason}")
        elif spec.params[name].is_secret(name):
            reason = f"param '{name}' is secret: its value would be written to the history"
            yield document.issue(("history_key", index), f"history_key: {reason}")
    names: dict[str, Loc] = {}
    for check, loc in zip(checks, locs, strict=True):
        label = f"check '{check.name}'"
        if check.name in names:
            first = document.line(names[check.name])
            yield document.issue((*loc, "name"), f"{label}: name already used on line {first}")
        names.setdefault(check.name, loc)
        yield from _check_sources(document, spec, check, loc, label)
        for other in check.after():
            if other == check.name or other not in {c.name for c in checks}:
                reason = f"reads check '{other}', {_no_such(other, check)}"
                yield document.issue(loc, f"{label}: {reason}")
            elif check.name in _read_by(other, checks):
                reason = f"reads check '{other}', which reads it back: a cycle"
                yield document.issue(loc, f"{label}: {reason}")
        yield from _check_read_only(document, check, loc, label, spec.allow_functions)
        yield from _check_braces(document, spec, check, loc, label)
        for path, sql in check.sql_fragments():
            for param in _BIND.findall(sql):
                if param not in spec.params:
                    where = _path_loc(loc, path)
                    yield document.issue(
                        where,
                        f"{label}: {path or 'query'} uses :{param}, which is not a declared param"
                        + did_you_mean(param, spec.params),
                    )
        for name in _path_fields(check):
            value = getattr(check, name)
            for text in [value] if isinstance(value, str) else value or []:
                for param in placeholders(text)[1]:
                    if param not in spec.params:
                        yield document.issue(
                            (*loc, name),
                            f"{label}: {name} uses {{{param}}}, which is not a declared param"
                            + did_you_mean(param, spec.params),
                        )
    for name, source in spec.sources.items():
        for text in _source_texts(source):
            for param in placeholders(text)[1]:
                if param not in spec.params:
                    yield document.issue(
                        ("sources", name),
                        f"source '{name}': {{{param}}} is not a declared param"
                        + did_you_mean(param, spec.params),
                    )


def _check_sources(
    document: Document, spec: SuiteFile, check: CheckSpec, loc: Loc, label: str
) -> Iterator[SuiteIssue]:
    if check.source is None and check.needs_source() and len(spec.sources) != 1:
        known = ", ".join(spec.sources) or "none declared"
        yield document.issue(loc, f"{label}: name a 'source' (the suite has {known})")
    named: list[tuple[str, str | None]] = [("source", check.source)]
    named += [(path, relation.source) for path, relation in check.relations()]
    reported: set[Loc] = set()
    for path, name in named:
        field_loc = _path_loc(loc, f"{path}.source" if path not in ("", "source") else "source")
        if name is not None and name not in spec.sources and field_loc not in reported:
            reported.add(field_loc)  # a top-level relation's source is the check's own
            yield document.issue(field_loc, f"{label}: {unknown('source', name, spec.sources)}")


def _check_braces(
    document: Document, spec: SuiteFile, check: CheckSpec, loc: Loc, label: str
) -> Iterator[SuiteIssue]:
    """``{param}`` in SQL would reach the database as text (substitution is for paths and URLs
    only): refused with a pointer to the bound form ``:param``. Inside a string literal only a
    declared param's name is taken for a mistake; other text there may be meant."""
    for path, sql in check.sql_fragments():
        for name, in_string in placeholders_in_sql(sql):
            if in_string and name not in spec.params:
                continue
            yield document.issue(
                _path_loc(loc, path),
                f"{label}: {path or 'query'} uses {{{name}}}, which is substituted only in paths "
                f"and URLs, never in SQL: use :{name} (a bound parameter)",
            )
            break


def _check_allowed(document: Document, names: list[str]) -> Iterator[SuiteIssue]:
    """An ``allow_functions`` entry must name a function, and not one postrun always refuses."""
    for index, name in enumerate(names):
        loc: Loc = ("allow_functions", index)
        if not _FUNCTION.fullmatch(name):
            yield document.issue(
                loc, f"allow_functions: {name!r} is not a function name (name or schema.name)"
            )
        elif (why := never_allowed(name)) is not None:
            yield document.issue(loc, f"allow_functions: {why}; it can never be allowed")


def _check_read_only(
    document: Document, check: CheckSpec, loc: Loc, label: str, allowed: list[str]
) -> Iterator[SuiteIssue]:
    """User SQL that could write is refused here, with its line (SPEC §6)."""
    for path, sql in check.sql_fragments():
        kind = path.rpartition(".")[2]
        if kind not in ("query", "where"):  # e.g. freshness' `now`: a param name, not SQL
            continue
        fragment: Literal["query", "where"] = "where" if kind == "where" else "query"
        problem = read_only_problem(sql, fragment=fragment, field=path, allow_functions=allowed)
        if problem is not None:
            yield document.issue(_path_loc(loc, path), f"{label}: {problem}")


def _source_texts(source: SourceSpec) -> Iterable[str]:
    yield from (url for url in (source.url, source.spark_url) if url)
    yield from source.allow_paths
    for value in (source.files, *(source.tables or {}).values()):
        files = value.files if isinstance(value, TableSpec) else value
        yield from [files] if isinstance(files, str) else files or []


class _Binder:
    """Substitutes params and environment into sources and check paths, collecting issues."""

    def __init__(
        self, parsed: ParsedSuite, params: dict[str, Any], env: Mapping[str, str], cwd: Path
    ):
        self.document = parsed.document
        self.suite_dir = parsed.file.parent
        self.params = params
        self.env = env
        self.cwd = cwd
        self.issues: list[SuiteIssue] = []

    def source(self, name: str, spec: SourceSpec) -> SourceConfig:
        what = f"source '{name}'"
        allow_paths = tuple(self.paths(spec.allow_paths, what))
        if spec.url is not None:
            url = self.url(spec.url, what)
            problem = url_access_problem(url)
            if problem is not None:
                self.issues.append(
                    self.document.issue(
                        ("sources", name, "url"), f"{what}: url {mask_url(url)} {problem}"
                    )
                )
            return SourceConfig(
                name,
                url=url,
                allow_paths=allow_paths,
                allow_privileged_role=spec.allow_privileged_role,
            )
        tables = []
        for table, value in (spec.tables or {}).items():
            files = value.files if isinstance(value, TableSpec) else value
            patterns = self.paths(files, what)
            declared = value.format if isinstance(value, TableSpec) else None
            fmt = declared or infer_format(patterns[0] if patterns else "")
            if fmt not in FORMATS:
                self.issues.append(
                    self.document.issue(
                        ("sources", name, "tables", table),
                        f"{what}: table '{table}': cannot tell the file format from {files!r};"
                        " add 'format: json|ndjson|csv|parquet'",
                    )
                )
                continue
            tables.append(FileTable(table, tuple(patterns), fmt))
            if spec.engine == "spark" and objects.any_url(patterns):
                self.issues.append(
                    self.document.issue(
                        ("sources", name, "tables", table),
                        f"{what}: table '{table}': 'engine: spark' reads files by path (as the "
                        "Spark server sees them), not object URLs; use the default engine for "
                        "objects",
                    )
                )
        spark_url = None if spec.spark_url is None else self.url(spec.spark_url, what)
        if spark_url is not None and not is_spark_url(spark_url):
            self.issues.append(
                self.document.issue(
                    ("sources", name, "spark_url"),
                    f"{what}: spark_url {mask_url(spark_url)} is not a Spark URL: give "
                    "sc://host:port (Spark Connect) or spark://local",
                )
            )
        return SourceConfig(
            name,
            patterns=tuple(self.paths(spec.files, what)),
            tables=tuple(tables),
            allow_paths=allow_paths,
            unreadable=spec.unreadable,
            endpoint_url=None if spec.endpoint_url is None else self.url(spec.endpoint_url, what),
            engine=spec.engine,
            spark_url=spark_url,
        )

    def shared_duckdb_files(self, sources: dict[str, SourceConfig]) -> None:
        """Sources on one DuckDB file share its sandbox (DuckDB keeps one instance per file in
        a process): they must allow the same paths."""
        first: dict[str, SourceConfig] = {}
        for name, config in sources.items():
            path = duckdb_file(config.url) if config.url else None
            if path is None:
                continue
            other = first.setdefault(path, config)
            if other.allow_paths != config.allow_paths:
                self.issues.append(
                    self.document.issue(
                        ("sources", name),
                        f"source '{name}' reads the DuckDB file of source '{other.name}' with "
                        "other allow_paths: DuckDB keeps one sandbox per file, so give both "
                        "the same allow_paths",
                    )
                )

    def check(self, check: CheckSpec, loc: Loc) -> CheckSpec:
        update: dict[str, Any] = {}
        for name in _path_fields(check):
            value = getattr(check, name)
            if value is None:
                continue
            key = type(check).model_fields[name].alias or name  # as written in the suite
            resolved = self.paths(value, f"check '{check.name}': {key}")
            update[name] = resolved[0] if isinstance(value, str) else resolved
            missing = [p for p in resolved if name in check.existing_paths and not Path(p).exists()]
            self.issues += [
                self.document.issue((*loc, key), f"check '{check.name}': {key} file not found: {p}")
                for p in missing
            ]
        return check.model_copy(update=update) if update else check

    def history(self, text: str | None) -> str | None:
        if text is None or text.strip().lower() == "off":
            return text
        return self.url(text, "history")

    def url(self, text: str, what: str) -> str:
        value, outside = interpolate(text, self.params, env=self.env, what=what)
        match = _FILE_URL.match(value)
        if (
            match is None
            or match["path"] in ("", ":memory:")
            or match["path"].startswith(":memory:")
        ):
            return value
        path = match["path"]
        start = match.start("path")
        base = self.cwd if outside[start] else self.suite_dir
        return f"{match['scheme']}{_joined(base, path)}{match['rest']}"

    def paths(self, value: str | list[str] | None, what: str) -> list[str]:
        out = []
        for text in [value] if isinstance(value, str) else value or []:
            resolved, outside = interpolate(text, self.params, env=self.env, what=what)
            base = self.cwd if outside and outside[0] else self.suite_dir
            out.append(resolved if objects.is_url(resolved) else _joined(base, resolved))
        return out


def _joined(base: Path, path: str) -> str:
    """``path`` against ``base``, with ``..`` and ``.`` folded (``checks/../data`` is shown as
    ``data``; ``base`` is a resolved folder, so folding matches what the system would do)."""
    return os.path.normpath(base / Path(path).expanduser())


def _path_fields(check: CheckSpec) -> tuple[str, ...]:
    return (*check.glob_fields, *check.existing_paths)


def _path_loc(loc: Loc, dotted: str) -> Loc:
    return (*loc, *(part for part in dotted.split(".") if part))


def _label(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        return f"check '{raw['name']}'"
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return f"check #{index + 1} ({raw['type']})"
    return f"check #{index + 1}"


def suite_json_schema() -> dict[str, Any]:
    """JSON Schema of suite files, with every registered check type (`postrun schema`)."""
    from typing import Annotated, Union

    from pydantic import create_model

    specs = tuple(kind.spec for kind in registry().values())
    document_fields([SuiteFile, *specs])
    check: Any = Annotated[Union[specs], Field(discriminator="type")]  # noqa: UP007
    model = create_model("PostrunSuite", __base__=SuiteFile, checks=(list[check], ...))
    schema: dict[str, Any] = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "postrun suite"
    return schema


def _read_by(name: str, checks: list[CheckSpec]) -> set[str]:
    """Every check ``name`` reads, directly or through the checks it reads."""
    after = {c.name: c.after() for c in checks}
    seen: set[str] = set()
    todo = list(after.get(name, []))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += after.get(current, [])
    return seen


def _no_such(name: str, check: CheckSpec) -> str:
    return "itself" if name == check.name else "which is not in the suite"


def _unknown_param_reason(name: str, known: list[str]) -> str:
    listing = ", ".join(known) if known else "none"
    return f"unknown param '{name}'{did_you_mean(name, known)}; the suite declares: {listing}"
