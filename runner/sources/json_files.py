"""Whether one result file is complete, valid JSON or JSON Lines, and if not, why and where."""

from __future__ import annotations

import bisect
import codecs
import errno
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Protocol

import orjson
import simdjson

__all__ = [
    "DEFAULT_MAX_BYTES",
    "REASONS",
    "FileProblem",
    "JsonFileInspector",
    "load_schema",
    "locate_error",
]

REASONS = (
    "missing",
    "empty",
    "too_small",
    "truncated",
    "invalid_json",
    "schema",
    "unreadable",
    "too_large",
)
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
# NUL counts as padding because crashed writers often leave preallocated, NUL-filled tails.
_PADDING = " \t\r\n\0"
_PADDING_BYTES = _PADDING.encode()
_BLANK_LINE_BYTES = b" \t\r"
_LINE_DELIMITED_SUFFIXES = (".jsonl", ".ndjson")
_LITERAL_PREFIXES = frozenset(
    word[:size] for word in ("true", "false", "null") for size in range(1, len(word))
)
_NUMBER_CHARS = frozenset("0123456789+-.eE")
# Any prefix of a JSON number, complete or not: "-", "0", "1.", "1.5e", "2E+" ...
_NUMBER_PREFIX = re.compile(
    r"-?(?:(?:0|[1-9][0-9]*)(?:\.(?:[0-9]+(?:[eE][-+]?[0-9]*)?)?|[eE][-+]?[0-9]*)?)?"
)
# The parser reports a bad \uXXXX escape at its "u"; at the end of the text it may be complete.
_UNICODE_ESCAPE_PREFIX = re.compile(r"u[0-9a-fA-F]{0,4}")
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*("?)|[\[\]{}]', re.DOTALL)
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(NaN|-?Infinity)', re.DOTALL)
_MAX_SCHEMA_MESSAGE = 200


@dataclass(frozen=True)
class FileProblem:
    """Why one file (or in-memory document) is not complete, valid JSON, and where."""

    path: str
    reason: str
    message: str
    line: int | None = None
    column: int | None = None
    offset: int | None = None
    pointer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields, leaving out those that are None."""
        items = ((field.name, getattr(self, field.name)) for field in fields(self))
        return {name: value for name, value in items if value is not None}


class JsonFileInspector:
    """Inspects files one at a time; holds one reusable simdjson parser and an optional compiled
    JSON Schema validator. Not thread-safe: one per worker."""

    def __init__(
        self,
        *,
        min_bytes: int = 1,
        max_bytes: int = DEFAULT_MAX_BYTES,
        schema: dict[str, Any] | None = None,
        max_schema_errors: int = 5,
    ) -> None:
        if max_bytes < 1 or min_bytes < 0 or max_schema_errors < 1:
            raise ValueError("need max_bytes >= 1, min_bytes >= 0 and max_schema_errors >= 1")
        self._min_bytes = min_bytes
        self._max_bytes = max_bytes
        self._max_schema_errors = max_schema_errors
        self._parser = simdjson.Parser()
        self._validator = None if schema is None else _compile_schema(schema)

    def inspect(self, path: Path) -> list[FileProblem]:
        """The problems of one file; [] means it is complete, valid and matches the schema."""
        name = str(path)
        data = self._read(path, name)
        if isinstance(data, FileProblem):
            return [data]
        if not data.strip(_PADDING_BYTES):
            return [_empty_problem(name, len(data))]
        if len(data) < self._min_bytes:
            message = f"the file is {len(data)} bytes, under the {self._min_bytes}-byte minimum"
            return [FileProblem(name, "too_small", message)]
        if path.name.lower().endswith(_LINE_DELIMITED_SUFFIXES):
            return self._inspect_lines(name, data)
        return self._inspect_document(name, data)

    def _read(self, path: Path, name: str) -> bytes | FileProblem:
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                return _unreadable(name, _not_regular_reason(info.st_mode))
            if info.st_size > self._max_bytes:
                return _too_large(name, info.st_size, self._max_bytes)
            with path.open("rb") as handle:
                # One byte over the limit tells a file that grew after stat() from one that fits.
                data = handle.read(self._max_bytes + 1)
        except (FileNotFoundError, NotADirectoryError):
            # Files can disappear between being listed and being read.
            message = "the file does not exist (it may have been removed after it was listed)"
            return FileProblem(name, "missing", message)
        except OSError as exc:
            return _unreadable(name, exc.strerror or str(exc))
        if len(data) > self._max_bytes:
            return _too_large(name, len(data), self._max_bytes)
        return data

    def _inspect_document(self, name: str, data: bytes) -> list[FileProblem]:
        fast = self._accepts(data)
        fault = None if fast else _diagnose(data)
        if fault is not None:
            return [fault.problem(name)]
        if self._validator is None:
            return []
        return self._schema_problems(name, self._validator, [(0, data, fast)])

    def _inspect_lines(self, name: str, data: bytes) -> list[FileProblem]:
        records = list(_non_blank_lines(data))
        accepted: list[tuple[int, bytes, bool]] = []
        for index, (number, start, line) in enumerate(records):
            fast = self._accepts(line)
            fault = None if fast else _diagnose(line)
            if fault is not None:
                is_last = index == len(records) - 1
                return [_line_fault(fault, number, start, is_last).problem(name)]
            accepted.append((number, line, fast))
        if self._validator is None:
            return []
        return self._schema_problems(name, self._validator, accepted)

    def _accepts(self, data: bytes) -> bool:
        """True when simdjson parses the bytes; False means "ask the strict parser"."""
        # simdjson skips a leading byte-order mark, which strict JSON forbids.
        if data.startswith(_BOM):
            return False
        try:
            self._parser.parse(data)
        except (ValueError, RuntimeError):
            # RuntimeError covers documents simdjson cannot represent (integers beyond 64 bits,
            # deep nesting) that may still be valid JSON.
            return False
        return True

    def _schema_problems(
        self, name: str, validator: _Validator, documents: Iterable[tuple[int, bytes, bool]]
    ) -> list[FileProblem]:
        """Up to max_schema_errors problems, the same ones every run, the last counting the rest."""
        cap = self._max_schema_errors
        best: list[_SchemaHit] = []
        total = 0
        for hit in _schema_hits(validator, documents):
            total += 1
            if len(best) < cap or hit < best[-1]:
                bisect.insort(best, hit)
                del best[cap:]
        problems = [hit.problem(name) for hit in best]
        if total > len(best):
            more = total - len(best)
            noun = "error" if more == 1 else "errors"
            last = problems[-1]
            problems[-1] = replace(last, message=f"{last.message} (and {more} more schema {noun})")
        return problems


def load_schema(path: Path) -> dict[str, Any]:
    """Read a JSON Schema file; ValueError when it is not valid JSON or not a valid schema."""
    data = path.read_bytes()
    problem = locate_error(data)
    if problem is not None:
        raise ValueError(f"schema file {path} is not valid JSON: {problem.message}")
    schema = json.loads(data)
    if not isinstance(schema, dict):
        raise ValueError(f"schema file {path} must hold a JSON object")
    try:
        _compile_schema(schema)
    except ValueError as exc:
        raise ValueError(f"schema file {path}: {exc}") from exc
    return schema


def locate_error(data: bytes) -> FileProblem | None:
    """The parse problem of an in-memory document (path ""), None when it is valid JSON."""
    if not data.strip(_PADDING_BYTES):
        return FileProblem("", "empty", "the document has no content")
    fault = _diagnose(data)
    return None if fault is None else fault.problem("")


@dataclass(frozen=True)
class _Fault:
    """A parse problem located in a text: 1-based line and column, 0-based byte offset."""

    reason: str
    detail: str
    line: int
    column: int
    offset: int

    def problem(self, path: str) -> FileProblem:
        head = "truncated" if self.reason == "truncated" else "invalid JSON"
        where = f"line {self.line} column {self.column} (byte {self.offset})"
        message = f"{head} at {where}: {self.detail}"
        return FileProblem(path, self.reason, message, self.line, self.column, self.offset)


@dataclass(frozen=True)
class _ParseError:
    pos: int  # character index into the text
    message: str


def _diagnose(data: bytes) -> _Fault | None:
    """The strict verdict on one document: None when valid, else where and why it fails."""
    if data.startswith(_BOM):
        return _Fault("invalid_json", "the text starts with a UTF-8 byte-order mark", 1, 1, 0)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _utf8_fault(data, exc)
    error = _strict_error(text)
    if error is None:
        return None
    core = text.rstrip(_PADDING)
    core_error = error if len(core) == len(text) else _strict_error(core)
    if _is_cut_short(core, core_error):
        return _truncated(text)
    return _invalid(text, error)


def _strict_error(text: str) -> _ParseError | None:
    """Where strict JSON parsing of the text fails, or None when it succeeds."""
    try:
        _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        return _ParseError(exc.pos, exc.msg.removesuffix(" at"))
    except _NonFiniteNumberError as exc:
        return _ParseError(_constant_position(text), f"{exc.args[0]} is not a JSON value")
    except RecursionError:
        return _ParseError(0, "the document is nested too deeply to check")
    return None


class _NonFiniteNumberError(ValueError):
    """NaN, Infinity or -Infinity: accepted by Python's json module, not by strict JSON."""


def _reject_constant(name: str) -> NoReturn:
    raise _NonFiniteNumberError(name)


_STRICT = json.JSONDecoder(parse_constant=_reject_constant)


def _constant_position(text: str) -> int:
    # The parser had accepted everything before the constant, so its first occurrence outside
    # a string is the one it rejected.
    for match in _STRING_OR_CONSTANT.finditer(text):
        if match.group(1):
            return match.start()
    return 0


def _is_cut_short(core: str, error: _ParseError | None) -> bool:
    """True when the text is a proper prefix of some JSON document (it ends inside a value).

    The parser reports errors at the start of the token it could not read, so a text that ends
    inside a literal, a number or a \\u escape fails before its end and needs a closer look.
    """
    if not core or error is None:
        return False
    if error.pos >= len(core) or error.message.startswith("Unterminated string"):
        return True
    tail = core[error.pos :]
    if error.message.startswith("Invalid \\uXXXX escape"):
        return _UNICODE_ESCAPE_PREFIX.fullmatch(tail) is not None
    if error.message == "Expecting value":
        return tail in _LITERAL_PREFIXES or tail == "-"
    if error.message in ("Expecting ',' delimiter", "Extra data"):
        return _continues_number(core, error.pos)
    return False


def _continues_number(core: str, pos: int) -> bool:
    """True when the number just before pos runs on to the end as an unfinished number ("1.")."""
    start = pos
    while start > 0 and core[start - 1] in _NUMBER_CHARS:
        start -= 1
    return start < pos and _NUMBER_PREFIX.fullmatch(core, start) is not None


def _truncated(text: str) -> _Fault:
    """Where a cut-short text ends: after its last written character, NUL padding excluded."""
    written = text.rstrip("\0")
    line = written.count("\n") + 1
    column = len(written) - written.rfind("\n")
    detail = f"the text ends inside {_open_context(written)}"
    return _Fault("truncated", detail, line, column, len(written.encode()))


def _open_context(core: str) -> str:
    """What the cut-short text was inside of: the innermost open string, object or array."""
    stack: list[str] = []
    for match in _STRING_OR_BRACKET.finditer(core):
        token = match.group()
        if token.startswith('"'):
            if not match.group(1):
                return "a string"
        elif token in "[{":
            stack.append(token)
        elif stack:
            stack.pop()
    if stack:
        return "an object" if stack[-1] == "{" else "an array"
    return "a number" if core.lstrip(_PADDING)[:1] in "-0123456789" else "a literal"


def _invalid(text: str, error: _ParseError) -> _Fault:
    pos = error.pos
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    offset = len(text[:pos].encode())
    return _Fault("invalid_json", error.message, line, column, offset)


def _utf8_fault(data: bytes, exc: UnicodeDecodeError) -> _Fault:
    """Bad UTF-8 is invalid, unless a cut inside a string split a multi-byte character."""
    start = exc.start
    prefix = data[:start].decode("utf-8")
    if _is_partial_character(data[start:].rstrip(_PADDING_BYTES)):
        core = prefix.rstrip(_PADDING)
        if _is_cut_short(core, _strict_error(core)) and _open_context(core) == "a string":
            return _truncated(prefix)
    line = prefix.count("\n") + 1
    column = len(prefix) - prefix.rfind("\n")
    detail = f"the bytes are not valid UTF-8 ({exc.reason})"
    return _Fault("invalid_json", detail, line, column, start)


def _is_partial_character(rest: bytes) -> bool:
    try:
        return 0 < len(rest) < 4 and codecs.getincrementaldecoder("utf-8")().decode(rest) == ""
    except UnicodeDecodeError:
        return False


def _non_blank_lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, byte offset of the line, line) for each non-blank line."""
    start = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip(_BLANK_LINE_BYTES):
            yield number, start, line
        start += len(line) + 1


def _line_fault(fault: _Fault, number: int, start: int, is_last: bool) -> _Fault:
    """A fault found in one JSON Lines record, moved to its place in the whole file."""
    moved = replace(fault, line=number, offset=start + fault.offset)
    if fault.reason == "truncated" and not is_last:
        # Only the last record can be cut by a crash; an unfinished one mid-file is malformed.
        return replace(
            moved, reason="invalid_json", detail=f"the record is incomplete: {fault.detail}"
        )
    return moved


class _Validator(Protocol):
    def iter_errors(self, instance: Any) -> Iterator[Any]: ...


def _compile_schema(schema: dict[str, Any]) -> _Validator:
    from jsonschema import exceptions, validators

    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
    validator: _Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def _schema_hits(
    validator: _Validator, documents: Iterable[tuple[int, bytes, bool]]
) -> Iterator[_SchemaHit]:
    for line, data, fast in documents:
        try:
            instance = _load(data, fast)
            for error in validator.iter_errors(instance):
                yield _SchemaHit.of(line, error)
        except RecursionError:
            yield _SchemaHit(line, (), "the document is nested too deeply to validate", "")


def _load(data: bytes, fast: bool) -> Any:
    # orjson turns integers beyond 64 bits into floats; simdjson rejects exactly those, so the
    # documents it accepted are safe for orjson and the rest go through the exact stdlib parser.
    if fast:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return _STRICT.decode(data.decode("utf-8"))


class _SchemaHit(NamedTuple):
    """One schema error, ordered by line, then path (array indexes numerically), then message."""

    line: int  # 0 for a whole-file document
    path_key: tuple[tuple[int, int, str], ...]
    message: str
    pointer: str

    @classmethod
    def of(cls, line: int, error: Any) -> _SchemaHit:
        path = list(error.absolute_path)
        key = tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in path)
        message = str(error.message)
        if len(message) > _MAX_SCHEMA_MESSAGE:
            message = message[: _MAX_SCHEMA_MESSAGE - 3] + "..."
        return cls(line, key, message, _json_pointer(path))

    def problem(self, path: str) -> FileProblem:
        prefix = f"line {self.line}: " if self.line else ""
        message = f"{prefix}{self.pointer or '(root)'}: {self.message}"
        return FileProblem(path, "schema", message, self.line or None, pointer=self.pointer)


def _json_pointer(parts: Iterable[Any]) -> str:
    """RFC 6901: "" for the root, "~" and "/" escaped inside each part."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _empty_problem(path: str, size: int) -> FileProblem:
    if size == 0:
        return FileProblem(path, "empty", "the file is empty (0 bytes)")
    message = f"the file has no content: its {size} bytes are all whitespace or NUL"
    return FileProblem(path, "empty", message)


def _unreadable(path: str, why: str) -> FileProblem:
    return FileProblem(path, "unreadable", f"cannot read the file: {why}")


def _too_large(path: str, size: int, limit: int) -> FileProblem:
    message = f"the file is {size} bytes, over the {limit}-byte limit, so it was not read"
    return FileProblem(path, "too_large", message)


def _not_regular_reason(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return os.strerror(errno.EISDIR)
    return "not a regular file"
