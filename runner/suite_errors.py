"""A suite's mistakes as a person reads them: pydantic's validation errors turned into issues
with the file and line (``checks/nightly.yml:14: … unknown key 'colums' (did you mean
'columns'?)``), and the one "did you mean" every message uses."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, ValidationError

from runner.errors import SuiteIssue

if TYPE_CHECKING:
    from runner.yamlfile import Document, Loc


def located_issues(
    document: Document, exc: ValidationError, model: type[BaseModel], base: Loc, prefix: str
) -> list[SuiteIssue]:
    reasons: dict[Loc, list[str]] = {}
    missing: dict[Loc, str] = {}
    suggested: set[tuple[Loc, str]] = set()
    for error in exc.errors():
        loc = _data_loc(document.data, (*base, *error["loc"]))
        rel = loc[len(base) :]
        if error["type"] == "extra_forbidden":
            close = closest(str(rel[-1]), _fields_at(model, rel[:-1]))
            suggested.update({(loc[:-1], close)} if close else set())
            reason = f"unknown key '{rel[-1]}'" + (f" (did you mean '{close}'?)" if close else "")
        elif error["type"] == "missing":
            missing[loc] = str(rel[-1])
            continue
        else:
            field = ".".join(str(part) for part in rel)
            msg = error["msg"].removeprefix("Value error, ")
            reason = f"{field}: {msg}" if field else msg
        if reason not in reasons.setdefault(loc, []):
            reasons[loc].append(reason)
    for loc, key in missing.items():
        if (loc[:-1], key) not in suggested:  # a misspelt key already explains the missing one
            reasons.setdefault(loc[:-1], []).append(f"missing required key '{key}'")
    issues = [document.issue(loc, prefix + "; or ".join(found)) for loc, found in reasons.items()]
    return sorted(issues, key=lambda issue: issue.line or 0)


def _data_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union/type tags from ``loc``, keeping only real keys and indexes."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if _has(node, part):
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part):
            out.append(part)  # a key that should be there (missing) or is not allowed
            node = None
    return tuple(out)


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _is_tag(part: str) -> bool:
    return (
        not part.isidentifier()
        or part[:1].isupper()
        or part in {"str", "int", "float", "bool", "list", "dict", "date"}
    )


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names valid at ``loc`` inside ``model`` (for did-you-mean hints)."""
    candidates: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nested = [
            sub
            for cand in candidates
            if part in cand.model_fields
            for sub in _models_in(cand.model_fields[part].annotation)
        ]
        if nested:
            candidates = nested
    return sorted({name for cand in candidates for name in cand.model_fields})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is most likely a misspelling of, if any."""
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a likely misspelling of a known name, else nothing."""
    close = closest(name, known)
    return f" (did you mean '{close}'?)" if close else ""


def unknown(what: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    return f"unknown {what} '{name}'" + (
        did_you_mean(name, known) or f" (known: {', '.join(sorted(known))})"
    )
