"""YAML documents as plain Python data, with the line of every key and item kept."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedKeyMap, CommentedKeySeq, CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLFutureWarning, YAMLWarning
from ruamel.yaml.nodes import CollectionNode, MappingNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from runner.errors import SuiteError, SuiteIssue

Loc = tuple[str | int, ...]

_COLLECTION_KEY = "a list or mapping used as a key"
MAX_VALUES = 100_000
"""Values a suite may expand to: aliases can make a few lines stand for billions of values."""
MAX_DEPTH = 64
"""Levels of nesting a suite may have (a real one has fewer than ten)."""
NESTED_TOO_DEEPLY = "invalid YAML: the document is nested too deeply"


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
    text = _read_text(path, display)
    try:
        raw = _parse(text, compose=False)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise SuiteError([SuiteIssue(display, line, f"invalid YAML: {reason}")]) from exc
    except ReaderError as exc:  # a control character: ruamel gives its offset, not its line
        line = text.count("\n", 0, exc.position) + 1
        reason = f"character #x{exc.character:04x} is not allowed in YAML"
        raise SuiteError([SuiteIssue(display, line, f"invalid YAML: {reason}")]) from exc
    except YAMLError as exc:
        raise SuiteError([SuiteIssue(display, None, f"invalid YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise SuiteError([SuiteIssue(display, None, NESTED_TOO_DEEPLY)]) from exc
    except (TypeError, ValueError, AttributeError) as exc:
        # Legal YAML that ruamel cannot build into Python data (a mapping inside a key) is
        # still the suite's mistake, not postrun's.
        line = _collection_key_line(text)
        what = _COLLECTION_KEY if line else f"{type(exc).__name__}: {exc}"
        raise SuiteError([SuiteIssue(display, line, f"invalid YAML: {what}")]) from exc
    document = Document(display, None)
    if not isinstance(raw, CommentedMap | CommentedSeq):
        # A bare scalar (or null) carries no position; compose it again to find its line.
        node = _parse(text, compose=True)
        if node is not None:
            document.lines[()] = node.start_mark.line + 1
    document.data = _Plain(document).convert(raw, ())
    return document


def _parse(text: str, *, compose: bool) -> Any:
    # ruamel warns about legal YAML (a re-used anchor); a warning would end up on stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", YAMLWarning)
        warnings.simplefilter("ignore", YAMLFutureWarning)
        yaml = YAML(typ="rt", pure=True)
        return yaml.compose(text) if compose else yaml.load(text)


def _collection_key_line(text: str) -> int | None:
    """The line of the first mapping key that is itself a list or mapping, if any."""
    try:
        todo = [_parse(text, compose=True)]
    except Exception:
        return None
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if not isinstance(node, CollectionNode) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, CollectionNode):
                    return int(key.start_mark.line) + 1
                todo += [key, value]
        else:
            todo += node.value
    return None


def _read_text(path: Path, display: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SuiteError([SuiteIssue(display, None, f"cannot read suite file: {exc}")]) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        reason = f"cannot read suite file: {exc}"
        raise SuiteError([SuiteIssue(display, line, reason)]) from exc


class _Plain:
    """Turns ruamel's round-trip nodes into dicts, lists and scalars, recording lines.

    Aliases are followed, so a node that contains its own alias, or aliases that multiply into
    more than MAX_VALUES values, are refused instead of recursing or expanding without end.
    """

    def __init__(self, document: Document) -> None:
        self.document = document
        self.lines = document.lines
        self.open: set[int] = set()
        self.values = 0

    def convert(self, node: Any, loc: Loc) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            self._refuse(loc, f"the document expands to more than {MAX_VALUES} values (aliases?)")
        if len(loc) > MAX_DEPTH:
            # Said here, not left to a RecursionError that depends on how deep the stack already
            # is and on a recursion limit any imported library may have raised.
            raise SuiteError([SuiteIssue(self.document.path, None, NESTED_TOO_DEEPLY)])
        if not isinstance(node, CommentedMap | CommentedSeq):
            return _scalar(node)
        if id(node) in self.open:
            self._refuse(loc, "an alias refers to a node that contains it")
        self.open.add(id(node))
        try:
            line = node.lc.line + 1 if node.lc.line is not None else self.document.line(loc)
            if line is not None:
                self.lines.setdefault(loc, line)
            if isinstance(node, CommentedMap):
                return self._mapping(node, loc)
            return self._sequence(node, loc)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: CommentedMap, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            key_loc = (*loc, str(key))
            line = _key_line(node, key)
            if line is not None:
                self.lines[key_loc] = line
            if isinstance(key, CommentedKeyMap | CommentedKeySeq):  # `? {a: 1}` or `[a, b]: x`
                self._refuse(key_loc, _COLLECTION_KEY)
            out[str(key)] = self.convert(value, key_loc)
        return out

    def _sequence(self, node: CommentedSeq, loc: Loc) -> list[Any]:
        items = []
        positions = node.lc.data or {}
        for index, value in enumerate(node):
            if index in positions:
                self.lines[(*loc, index)] = positions[index][0] + 1
            items.append(self.convert(value, (*loc, index)))
        return items

    def _refuse(self, loc: Loc, reason: str) -> NoReturn:
        raise SuiteError([self.document.issue(loc, f"invalid YAML: {reason}")])


def _key_line(node: CommentedMap, key: Any) -> int | None:
    """The line of ``key``: its own, or that of the mapping merged in (``<<: *base``)."""
    positions = node.lc.data or {}
    if key in positions:
        return int(positions[key][0]) + 1
    for merged in getattr(node, "merge", None) or []:
        source = merged[1] if isinstance(merged, tuple) else merged
        if isinstance(source, CommentedMap) and key in source:
            return _key_line(source, key)
    return None


def _scalar(node: Any) -> Any:
    if isinstance(node, bool | ScalarBoolean) or node is None:
        return node if node is None else bool(node)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node
