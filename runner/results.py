"""Statuses, check results, the verdict and exit codes (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runner.values import (
    NESTED_DEPTH,
    NESTED_LIMIT,
    VALUE_LIMIT,
    cap_text,
    escape_surrogates,
    json_row,
)

SCHEMA_VERSION = 1
DETAIL_LIMIT = 2048
_ENCODED = (
    "Values JSON cannot hold natively are tagged: an integer outside the signed 64-bit range is "
    '{"$int": "<decimal digits>"}; NaN, Infinity and -Infinity are {"$float": "NaN"}, '
    '{"$float": "Infinity"} and {"$float": "-Infinity"} (null is always NULL). '
    f"A text is at most {VALUE_LIMIT} bytes: a longer one keeps its start and ends in "
    '"… [truncated: N bytes]", N its full length in bytes; a nested value keeps about '
    f"{NESTED_LIMIT} bytes and {NESTED_DEPTH} levels, and ends in an item "
    '"… [truncated: N more items]" (in an object, the key "…" with "[truncated: N more entries]"). '
    "Bytes that are not UTF-8 (in file names) are written as \\xNN."
)


class Status(StrEnum):
    """How one check ended; the verdict of a run is the worst of them (SKIP does not count)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.SKIP: -1, Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


class ExitCode(IntEnum):
    """Process exit codes, the contract with CI.

    ====  =======================================================================
    0     verdict PASS, or WARN without ``--fail-on warn``
    1     verdict FAIL (or WARN with ``--fail-on warn``)
    2     usage error or invalid suite (nothing was run)
    3     verdict ERROR: at least one check could not be evaluated; also when the
          reports could not be written, when the run was interrupted (SIGTERM or
          SIGINT: taken like ``--max-time``, the checks not finished are ERROR /
          timeout and the reports are written), or postrun itself crashed (fail
          closed)
    ====  =======================================================================

    A second SIGTERM or SIGINT while postrun is ending exits at once with the shell's code
    for the signal (143 or 130), removing the temporary file of a report being written.
    """

    OK = 0
    FAILED = 1
    USAGE = 2
    ERROR = 3

    @classmethod
    def for_status(cls, status: Status, *, fail_on_warn: bool = False) -> ExitCode:
        if status is Status.ERROR:
            return cls.ERROR
        if status is Status.FAIL or (status is Status.WARN and fail_on_warn):
            return cls.FAILED
        return cls.OK


class ErrorCategory(StrEnum):
    """Why a check could not be evaluated."""

    CONFIG = "config"
    CONNECTIVITY = "connectivity"
    AUTH = "auth"
    TIMEOUT = "timeout"
    QUERY = "query"
    DATA_MALFORMED = "data_malformed"
    SCHEMA_MISMATCH = "schema_mismatch"
    INTERNAL = "internal"


class CheckError(BaseModel):
    """Why a check ended in ERROR."""

    model_config = ConfigDict(frozen=True)

    category: ErrorCategory = Field(description="What kind of failure prevented evaluation.")
    retryable: bool = Field(description="Whether running again later may succeed.")
    message: str = Field(
        description=f"One or two sentences for a person, at most {VALUE_LIMIT} bytes."
    )
    detail: str | None = Field(
        default=None, description=f"Raw exception text, at most {DETAIL_LIMIT} bytes."
    )

    @field_validator("message", mode="before")
    @classmethod
    def _bounded_message(cls, value: Any) -> Any:
        return cap_text(value) if isinstance(value, str) else value

    @field_validator("detail", mode="before")
    @classmethod
    def _bounded_detail(cls, value: Any) -> Any:
        return cap_text(value, DETAIL_LIMIT) if isinstance(value, str) else value


@dataclass(kw_only=True)
class Outcome:
    """What a check found: the judgement a check function returns to the engine."""

    passed: bool
    message: str
    observed: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_count: int = 0
    notes: list[str] = field(default_factory=list)


class CheckResult(BaseModel):
    """The result of one check, as stored in verdict.json."""

    name: str = Field(description="Unique name of the check in its suite.")
    type: str = Field(description="Check type, e.g. row_count.")
    source: str | None = Field(description="Name of the source the check read, if any.")
    severity: str = Field(description="error or warn: what a failure of this check means.")
    status: Status = Field(description="PASS, WARN, FAIL, ERROR or SKIP.")
    message: str = Field(
        description=f"One sentence with the numbers in it, at most {VALUE_LIMIT} bytes."
    )
    observed: dict[str, Any] = Field(
        default_factory=dict, description="What was measured. " + _ENCODED
    )
    expected: dict[str, Any] = Field(
        default_factory=dict, description="What was required. " + _ENCODED
    )
    failures: list[dict[str, Any]] = Field(
        default_factory=list,
        description="A sample of the failing items, capped in rows (--sample-limit). " + _ENCODED,
    )
    failure_count: int = Field(default=0, description="How many items failed in all.")
    notes: list[str] = Field(
        default_factory=list,
        description=f"Facts about the evaluation, e.g. skipped files; each at most {VALUE_LIMIT} "
        "bytes.",
    )
    error: CheckError | None = Field(default=None, description="Set when status is ERROR.")
    duration_s: float = Field(description="Wall time the check took.")
    queries: list[str] = Field(
        default_factory=list,
        description="Ids of the statements (the verdict's `queries`) whose answers the check used.",
    )

    # Bounded and JSON-native when built, so that neither a huge value nor one JSON cannot hold
    # travels further than the result (the engine builds it straight from what the check found).
    @field_validator("message", mode="before")
    @classmethod
    def _bounded_message(cls, value: Any) -> Any:
        return cap_text(value) if isinstance(value, str) else value

    @field_validator("notes", mode="before")
    @classmethod
    def _bounded_notes(cls, value: Any) -> Any:
        return (
            [cap_text(n) if isinstance(n, str) else n for n in value] if _listed(value) else value
        )

    @field_validator("observed", "expected", mode="before")
    @classmethod
    def _bounded_mapping(cls, value: Any) -> Any:
        return json_row(value) if isinstance(value, dict) else value

    @field_validator("failures", mode="before")
    @classmethod
    def _bounded_rows(cls, value: Any) -> Any:
        if not _listed(value):
            return value
        return [json_row(row) if isinstance(row, dict) else row for row in value]


class QueryInfo(BaseModel):
    """One statement the run sent to a source; a shared scan names every check it answered."""

    id: str = Field(description="q1, q2, … in suite order.")
    source: str = Field(description="Name of the source it ran on.")
    sql: str = Field(description="The statement as the source's dialect compiled it.")
    checks: list[str] = Field(description="The checks that used its answer.")
    duration_s: float | None = Field(
        default=None, description="Wall time of the statement; null when it never returned."
    )


class RoleInfo(BaseModel):
    """The PostgreSQL role a source read as, and what else it could have done."""

    name: str = Field(description="The role postrun connected as (current_user).")
    superuser: bool = Field(description="Whether the role is a superuser.")
    memberships: list[str] = Field(
        default_factory=list,
        description="Predefined roles it belongs to that write or reach the server "
        "(pg_write_all_data, pg_execute_server_program, pg_read_server_files, …).",
    )
    writable_tables: list[str] = Field(
        default_factory=list, description="Up to five tables it may change (owned or granted)."
    )
    can_write: bool = Field(description="Whether the role could write anything at all.")


class SourceInfo(BaseModel):
    """A source of the run as the verdict records it: never a secret."""

    name: str
    kind: Literal["database", "files"]
    location: str = Field(description="The URL with its userinfo masked, or the file globs.")
    role: RoleInfo | None = Field(
        default=None, description="PostgreSQL: the role read as, once connected."
    )


class ToolInfo(BaseModel):
    name: str = "postrun"
    version: str


class SuiteInfo(BaseModel):
    name: str
    path: str = Field(description="The suite file as given; bytes that are not UTF-8 as \\xNN.")
    sha256: str

    @field_validator("path", mode="before")
    @classmethod
    def _escaped_path(cls, value: Any) -> Any:
        return _path_text(value)


class RerunOf(BaseModel):
    """The earlier run a `--rerun` run repeats the failed and errored checks of."""

    run_id: str
    path: str = Field(
        description="Where its verdict.json was read from; bytes that are not UTF-8 as \\xNN."
    )
    checks: list[str] = Field(description="The checks that were FAIL or ERROR there.")

    @field_validator("path", mode="before")
    @classmethod
    def _escaped_path(cls, value: Any) -> Any:
        return _path_text(value)


class Cause(BaseModel):
    """What explains one or more checks that did not pass: a source that could not be used, or
    evidence (a file, a batch or portfolio id, a NULL column) that several checks share. Every
    check that did not pass is in exactly one cause; each keeps its own result."""

    status: Status = Field(description="The worst status of its checks: ERROR, FAIL or WARN.")
    kind: Literal["source", "error", "evidence", "check"] = Field(
        description="source: a source that could not be reached or logged into; error: an error "
        "its checks share word for word; evidence: failures sharing evidence; check: one check."
    )
    title: str = Field(
        description=f"The cause in words: the error's whole (masked) message, or the message of "
        f"its first check; at most {VALUE_LIMIT} bytes."
    )
    effect: str = Field(description='What it did, e.g. "3 checks fail".')
    source: str | None = Field(default=None, description="The source of its first check.")
    category: ErrorCategory | None = Field(default=None, description="For ERROR causes.")
    retryable: bool | None = Field(default=None, description="For ERROR causes.")
    evidence: list[str] = Field(
        default_factory=list,
        description='What its checks share, e.g. "file results/run_1.json", "id 42fb…".',
    )
    checks: list[str] = Field(description="The checks it explains, in suite order.")

    @field_validator("title", mode="before")
    @classmethod
    def _bounded_title(cls, value: Any) -> Any:
        return cap_text(value) if isinstance(value, str) else value


class FailingSince(BaseModel):
    """The run a check's current streak of FAIL / ERROR began in."""

    run_id: str
    started_at: str = Field(description="UTC, ISO 8601.")
    runs: int = Field(description="How many runs in a row, this one included, it has failed.")


class CheckPast(BaseModel):
    """A check's recent runs under the same history key, oldest first, this run last."""

    run_ids: list[str]
    statuses: list[Status]
    metric: str | None = Field(
        default=None, description="The observation `values` follows (e.g. count), if any."
    )
    values: list[float | None] = Field(
        default_factory=list, description="That observation in each of those runs."
    )
    failing_since: FailingSince | None = Field(
        default=None, description="Set when the check is FAIL or ERROR in this run."
    )


class HistoryInfo(BaseModel):
    """Where the run was recorded for `change` / `anomaly` checks and `postrun history`."""

    store: str = Field(description="The history store's URL, its userinfo masked.")
    key: str = Field(
        description="The run's history key: the suite name, or param=value of the suite's "
        "history_key params."
    )
    problem: str | None = Field(
        default=None,
        description="Why the run could not be recorded, if it could not; the verdict and the "
        "exit code are the same either way.",
    )
    checks: dict[str, CheckPast] = Field(
        default_factory=dict,
        description="Per check, its recent runs (statuses, a number, since when it fails); "
        "empty when the store could not be read.",
    )


class Verdict(BaseModel):
    """What a run means for CI: every check result and the worst status (verdict.json)."""

    schema_version: int = SCHEMA_VERSION
    tool: ToolInfo
    suite: SuiteInfo
    run_id: str
    params: dict[str, Any] = Field(
        default_factory=dict, description="The suite's params as the run used them. " + _ENCODED
    )
    started_at: str = Field(description="UTC, ISO 8601.")
    finished_at: str = Field(description="UTC, ISO 8601.")
    duration_s: float
    verdict: Status
    exit_code: int
    counts: dict[str, int]
    checks: list[CheckResult]
    causes: list[Cause] = Field(
        default_factory=list,
        description="The checks that did not pass grouped by what explains them: ERROR causes "
        "first, then FAIL and WARN, each in suite order of its first check.",
    )
    queries: list[QueryInfo] = Field(
        default_factory=list, description="Every SQL statement the run sent, and to which checks."
    )
    sources: list[SourceInfo] = Field(
        default_factory=list, description="The suite's sources: where each is, and its role."
    )
    rerun_of: RerunOf | None = Field(
        default=None, description="Set by --rerun: the earlier run whose failures this repeats."
    )
    history: HistoryInfo | None = Field(
        default=None, description="The history store the run was recorded in; null when off."
    )

    @field_validator("params", mode="before")
    @classmethod
    def _bounded_params(cls, value: Any) -> Any:
        return json_row(value) if isinstance(value, dict) else value

    @property
    def status(self) -> Status:
        return self.verdict

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def failing_since(self, check: str) -> FailingSince | None:
        """The run check ``check``'s current FAIL / ERROR streak began in, when the history
        knows it."""
        past = self.history.checks.get(check) if self.history is not None else None
        return past.failing_since if past is not None else None

    def failing_for(self, check: str) -> str:
        """ "failing for N runs, since run X" when check ``check`` failed in earlier runs too;
        empty otherwise."""
        since = self.failing_since(check)
        if since is None or since.runs < 2:
            return ""
        return f"failing for {since.runs} runs, since run {since.run_id}"


def worst_status(statuses: list[Status]) -> Status:
    """The verdict: ERROR > FAIL > WARN > PASS; SKIP does not count (all skipped is PASS)."""
    counted = [s for s in statuses if s is not Status.SKIP]
    return max(counted, key=lambda s: s.rank, default=Status.PASS)


def count_statuses(statuses: list[Status]) -> dict[str, int]:
    return {s.value: sum(1 for x in statuses if x is s) for s in Status}


def _listed(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _path_text(value: Any) -> Any:
    """A path as text JSON can hold: undecodable bytes escaped, never cut."""
    return escape_surrogates(value) if isinstance(value, str) else value
