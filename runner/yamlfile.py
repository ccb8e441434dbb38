"""YAML documents as plain Python data, with the line of every key and item kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from runner.errors import SuiteError, SuiteIssue

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """Plain data loaded from a YAML file and a map from each location to its 1-based line."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """Line of ``loc``, or of its nearest enclosing location that has one."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def issue(self, loc: Loc, reason: str) -> SuiteIssue:
        return SuiteIssue(self.path, self.line(loc), reason)


def load_yaml(path: Path, display: str) -> Document:
    """Parse ``path``; a syntax error becomes a ``SuiteError`` with the line it is on."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError([SuiteIssue(display, None, f"cannot read suite file: {exc}")]) from exc
    try:
        raw = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise SuiteError([SuiteIssue(display, line, f"invalid YAML: {reason}")]) from exc
    except YAMLError as exc:
        raise SuiteError([SuiteIssue(display, None, f"invalid YAML: {exc}")]) from exc
    document = Document(display, None)
    document.data = _plain(raw, (), document.lines)
    return document


def _plain(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    if isinstance(node, CommentedMap):
        lines.setdefault(loc, node.lc.line + 1)
        out: dict[Any, Any] = {}
        for key, value in node.items():
            key_loc = (*loc, str(key))
            lines[key_loc] = node.lc.key(key)[0] + 1
            out[str(key)] = _plain(value, key_loc, lines)
        return out
    if isinstance(node, CommentedSeq):
        lines.setdefault(loc, node.lc.line + 1)
        items = []
        for index, value in enumerate(node):
            lines[(*loc, index)] = node.lc.item(index)[0] + 1
            items.append(_plain(value, (*loc, index), lines))
        return items
    if isinstance(node, bool) or node is None:
        return node
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node
