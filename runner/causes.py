"""Causes: the checks that did not pass, grouped by what explains them, so a person reads one
unreachable source or one cut file once, with the checks it took down listed under it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.results import Cause, CheckResult, ErrorCategory, Status

if TYPE_CHECKING:
    from runner.checks.base import CheckSpec

EVIDENCE_SHOWN = 5
"""Shared pieces of evidence a cause names; the checks themselves hold the rest."""

_SOURCE_CATEGORIES = frozenset({ErrorCategory.CONNECTIVITY, ErrorCategory.AUTH})
_FILE_KEYS = frozenset({"path", "file"})
_ID_KEYS = frozenset({"id", "key"})
_ID_LENGTH = 4
"""Ids shorter than this (1, 2, 'a') are too common to tell that two checks saw the same thing."""
_BOUND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_NULL_EXPECTATION = "expect_column_values_to_not_be_null"

Token = tuple[str, ...]


def find_causes(
    checks: Sequence[CheckResult],
    specs: Sequence[CheckSpec] = (),
    params: Mapping[str, Any] | None = None,
) -> list[Cause]:
    """Every check that did not pass, in exactly one cause: ERRORs first (one per source that
    could not be reached, or per error shared word for word by checks on one source), then
    FAILs and WARNs grouped by the evidence they share (a file, a batch or portfolio id, a
    column found NULL in one relation). ``specs`` and ``params`` (the shown ones) add what
    only the suite knows: the relation a check read and the ids it was scoped by."""
    by_name = {spec.name: spec for spec in specs}
    errors = [c for c in checks if c.status is Status.ERROR]
    judged = [c for c in checks if c.status in (Status.FAIL, Status.WARN)]
    causes = list(_error_causes(errors))
    causes += _evidence_causes(judged, by_name, params or {})
    return sorted(causes, key=lambda c: -c.status.rank)


# --- errors ---------------------------------------------------------------------------------


def _error_causes(errors: Sequence[CheckResult]) -> Iterator[Cause]:
    groups: dict[tuple[Any, ...], list[CheckResult]] = {}
    for check in errors:
        error = check.error
        key = (check.source, error.category, error.message) if error else (check.name,)
        groups.setdefault(key, []).append(check)
    for members in groups.values():
        first = members[0]
        error = first.error
        source_wide = error is not None and error.category in _SOURCE_CATEGORIES
        yield Cause(
            status=Status.ERROR,
            kind="source" if source_wide else "error",
            title=error.message if error else first.message,
            effect=_effect(Status.ERROR, len(members)),
            source=first.source,
            category=error.category if error else None,
            retryable=error.retryable if error else None,
            evidence=[],
            checks=[c.name for c in members],
        )


# --- failures -------------------------------------------------------------------------------


def _evidence_causes(
    judged: Sequence[CheckResult], specs: Mapping[str, CheckSpec], params: Mapping[str, Any]
) -> list[Cause]:
    tokens = {c.name: set(_tokens(c, specs.get(c.name))) for c in judged}
    found_ids = {t for found in tokens.values() for t in found if t[0] == "id"}
    for check in judged:
        spec = specs.get(check.name)
        if spec is not None:  # scoped by a param whose value another check found bad
            tokens[check.name] |= {("id", v) for v in _bound_values(spec, params)} & found_ids
    groups = _connected([c.name for c in judged], tokens)
    causes = []
    for names in groups:
        members = [c for c in judged if c.name in names]
        status = max((c.status for c in members), key=lambda s: s.rank)
        shared = _shared(members, tokens)
        causes.append(
            Cause(
                status=status,
                kind="evidence" if len(members) > 1 else "check",
                title=members[0].message,
                effect=_effect(status, len(members)),
                source=members[0].source,
                evidence=[_shown(t) for t in shared[:EVIDENCE_SHOWN]],
                checks=[c.name for c in members],
            )
        )
    return causes


def _tokens(check: CheckResult, spec: CheckSpec | None) -> Iterator[Token]:
    """What a failing check's evidence names: files, ids, NULL columns of its relation."""
    for failure in check.failures:
        yield from _item_tokens(failure)
    relation = _relation(spec)
    if relation is None:
        return
    nulls = check.observed.get("nulls")
    if check.type == "not_null" and isinstance(nulls, dict):
        yield from (("nulls", *relation, str(c)) for c, n in nulls.items() if n)
    if check.type == "expectation_suite":
        for failure in check.failures:
            kwargs = failure.get("kwargs")
            if failure.get("type") == _NULL_EXPECTATION and isinstance(kwargs, dict):
                yield ("nulls", *relation, str(kwargs.get("column")))


def _item_tokens(item: Mapping[str, Any]) -> Iterator[Token]:
    for key, value in item.items():
        if key in _FILE_KEYS and isinstance(value, str) and value:
            yield ("file", os.path.normpath(value))
        elif key in _ID_KEYS or key.endswith("_id"):
            yield from (("id", v) for v in _scalars(value) if len(v) >= _ID_LENGTH)


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _scalars(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _scalars(inner)
    elif isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        yield str(value)


def _relation(spec: CheckSpec | None) -> tuple[str, str, str] | None:
    """(source, table or query, where) of a check over one relation given at its top level."""
    name = getattr(spec, "table", None) or getattr(spec, "query", None)
    if spec is None or not isinstance(name, str):
        return None
    return (spec.source or "", name, getattr(spec, "where", None) or "")


def _bound_values(spec: CheckSpec, params: Mapping[str, Any]) -> Iterator[str]:
    for _, sql in spec.sql_fragments():
        for name in _BOUND.findall(sql):
            if name in params:
                yield from _scalars(params[name])


def _connected(names: list[str], tokens: Mapping[str, set[Token]]) -> list[list[str]]:
    """Groups of checks linked by a shared token, directly or through other checks; each group
    in suite order, the groups in the order of their first check."""
    parent = {name: name for name in names}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    owner: dict[Token, str] = {}
    for name in names:
        for token in sorted(tokens[name]):
            if token in owner:
                parent[root(name)] = root(owner[token])
            else:
                owner[token] = name
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())


def _shared(members: Sequence[CheckResult], tokens: Mapping[str, set[Token]]) -> list[Token]:
    """The tokens at least two members name, files first, in a stable order."""
    seen: dict[Token, int] = {}
    for check in members:
        for token in tokens[check.name]:
            seen[token] = seen.get(token, 0) + 1
    order = {"file": 0, "id": 1, "nulls": 2}
    return sorted((t for t, n in seen.items() if n > 1), key=lambda t: (order[t[0]], t))


def _shown(token: Token) -> str:
    kind, *rest = token
    if kind == "file":
        return f"file {rest[0]}"
    if kind == "id":
        return f"id {rest[0]}"
    _, table, _, column = rest
    return f"NULL {column} in {table if ' ' not in table else 'query'}"


def _effect(status: Status, count: int) -> str:
    """ "3 checks fail", "1 check could not be evaluated"."""
    noun = "check" if count == 1 else "checks"
    verb = {
        Status.ERROR: "could not be evaluated",
        Status.FAIL: "fails" if count == 1 else "fail",
        Status.WARN: "warns" if count == 1 else "warn",
    }[status]
    return f"{count} {noun} {verb}"


def causes_of(checks: Iterable[CheckResult], causes: Sequence[Cause]) -> list[Cause]:
    """The verdict's causes, or (for a verdict written before causes existed) the ones its
    checks alone show."""
    return list(causes) if causes else find_causes(list(checks))
