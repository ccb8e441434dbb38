"""Statuses, check results, the verdict and exit codes (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
DETAIL_LIMIT = 2048


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
          reports could not be written or postrun itself crashed (fail closed)
    ====  =======================================================================
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
    message: str = Field(description="One or two sentences for a person.")
    detail: str | None = Field(
        default=None, description=f"Raw exception text, at most {DETAIL_LIMIT} bytes."
    )


@dataclass
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
    message: str = Field(description="One sentence with the numbers in it.")
    observed: dict[str, Any] = Field(default_factory=dict, description="What was measured.")
    expected: dict[str, Any] = Field(default_factory=dict, description="What was required.")
    failures: list[dict[str, Any]] = Field(
        default_factory=list, description="A capped sample of the failing items."
    )
    failure_count: int = Field(default=0, description="How many items failed in all.")
    notes: list[str] = Field(
        default_factory=list, description="Facts about the evaluation, e.g. skipped files."
    )
    error: CheckError | None = Field(default=None, description="Set when status is ERROR.")
    duration_s: float = Field(description="Wall time the check took.")
    queries: list[str] = Field(
        default_factory=list,
        description="Ids of the statements (the verdict's `queries`) whose answers the check used.",
    )


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
    path: str
    sha256: str


class RerunOf(BaseModel):
    """The earlier run a `--rerun` run repeats the failed and errored checks of."""

    run_id: str
    path: str = Field(description="Where its verdict.json was read from.")
    checks: list[str] = Field(description="The checks that were FAIL or ERROR there.")


class Verdict(BaseModel):
    """What a run means for CI: every check result and the worst status (verdict.json)."""

    schema_version: int = SCHEMA_VERSION
    tool: ToolInfo
    suite: SuiteInfo
    run_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    started_at: str = Field(description="UTC, ISO 8601.")
    finished_at: str = Field(description="UTC, ISO 8601.")
    duration_s: float
    verdict: Status
    exit_code: int
    counts: dict[str, int]
    checks: list[CheckResult]
    queries: list[QueryInfo] = Field(
        default_factory=list, description="Every SQL statement the run sent, and to which checks."
    )
    sources: list[SourceInfo] = Field(
        default_factory=list, description="The suite's sources: where each is, and its role."
    )
    rerun_of: RerunOf | None = Field(
        default=None, description="Set by --rerun: the earlier run whose failures this repeats."
    )

    @property
    def status(self) -> Status:
        return self.verdict

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def worst_status(statuses: list[Status]) -> Status:
    """The verdict: ERROR > FAIL > WARN > PASS; SKIP does not count (all skipped is PASS)."""
    counted = [s for s in statuses if s is not Status.SKIP]
    return max(counted, key=lambda s: s.rank, default=Status.PASS)


def count_statuses(statuses: list[Status]) -> dict[str, int]:
    return {s.value: sum(1 for x in statuses if x is s) for s in Status}
