"""Whether result files are complete, valid JSON or JSON Lines, and if not, why and where.

Many files are inspected by worker processes that load this very file as their program (see
``_WORKER`` and ``_main``), so at module level it imports nothing from ``runner``, nor what only
the parent needs: a worker starts in a fraction of the time the package would take to import.
"""

from __future__ import annotations

import bisect
import codecs
import errno
import functools
import json
import os
import pickle
import re
import signal
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, AnyStr, NamedTuple, NoReturn, Protocol

import simdjson

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

__all__ = [
    "DEFAULT_MAX_BYTES",
    "POOL_MIN_WORK",
    "REASONS",
    "FileProblem",
    "Inspection",
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
POOL_MIN_WORK = 192 * 1024 * 1024
"""Below this much work (bytes, plus ``_FILE_WORK`` per file) files are inspected in-process:
starting the workers (~0.06 s) would cost more than sharing the work saves. Measured on two
cores: in-process, 1,000 files of 50 KB take 0.04 s and the workers 0.15 s; 8,000 take 0.30 s
in-process, and about 0.24 s in two workers when both cores are free."""

_FILE_WORK = 16 * 1024
"""What opening, reading and closing one file costs (~9 us), in bytes parsed in that time."""
_CHUNK_WORK = 16 * 1024 * 1024
_CHUNK_FILES = 256
_CHUNK_NAMES = 12 * 1024
"""Most characters of path names in a chunk (at most 4 bytes each): a chunk sent ahead then
always fits in the pipe (64 KiB), so the parent never waits to send while its worker waits to
send a long answer."""
_IN_FLIGHT = 2
"""Chunks sent to a worker before it answers, so it never waits for its next one."""
_POLL_S = 0.05
"""How often the inspection looks whether it must stop while workers are busy."""
_FRESH_PARSER_BYTES = 64 * 1024 * 1024
"""A parser that read a larger document is replaced, releasing the buffers sized for it."""
_SCAN_CHUNK = 64 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_READ_MAX = 0x7FFFF000  # the most one read() returns on Linux

_BOM = b"\xef\xbb\xbf"
# NUL counts as padding because crashed writers often leave preallocated, NUL-filled tails.
_PADDING = " \t\r\n\0"
_PADDING_BYTES = _PADDING.encode()
_CONTENT_BYTE = re.compile(b"[^" + re.escape(_PADDING_BYTES) + b"]")
_CONTENT_CHAR = re.compile("[^" + re.escape(_PADDING) + "]")
_BLANK_LINE_BYTES = b" \t\r"
_LINE_DELIMITED_SUFFIXES = (".jsonl", ".ndjson")
_LITERAL_PREFIXES = frozenset(
    word[:size] for word in ("true", "false", "null") for size in range(1, len(word))
)
_LONGEST_CUT_TOKEN = 5  # "\uXXX" or "fals": longer unfinished tails are not tokens cut short
_NUMBER_CHARS = frozenset("0123456789+-.eE")
# Any prefix of a JSON number, complete or not: "-", "0", "1.", "1.5e", "2E+" ...
_NUMBER_PREFIX = re.compile(
    r"-?(?:(?:0|[1-9][0-9]*)(?:\.(?:[0-9]+(?:[eE][-+]?[0-9]*)?)?|[eE][-+]?[0-9]*)?)?"
)
# The parser reports a bad \uXXXX escape at its "u"; at the end of the text it may be complete.
_UNICODE_ESCAPE_PREFIX = re.compile(r"u[0-9a-fA-F]{0,4}")
_NOT_QUOTES_OR_BRACKETS = bytes(set(range(256)) - set(b'"[]{}'))
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(NaN|-?Infinity)', re.DOTALL)
_MAX_SCHEMA_MESSAGE = 200


class FileProblem(NamedTuple):
    """Why one file (or in-memory document) is not complete, valid JSON, and where."""

    path: str
    reason: str
    message: str
    line: int | None = None
    column: int | None = None
    offset: int | None = None
    pointer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields a reader looks for first first (the message last), leaving out those that
        are None."""
        names = ("path", "reason", "line", "column", "offset", "pointer", "message")
        items = ((name, getattr(self, name)) for name in names)
        return {name: value for name, value in items if value is not None}


class Inspection(NamedTuple):
    """What inspecting many files found: their problems in path order, and their total size."""

    problems: list[FileProblem]
    total_bytes: int


def _keep_going() -> None:
    """The default ``interrupt``: never stop."""


class JsonFileInspector:
    """Inspects files one at a time; holds one reusable simdjson parser and an optional compiled
    JSON Schema. Not thread-safe: one per worker. ``inspect_many`` spreads many files over
    worker processes."""

    def __init__(
        self,
        *,
        min_bytes: int = 1,
        max_bytes: int = DEFAULT_MAX_BYTES,
        schema: dict[str, Any] | None = None,
        max_schema_errors: int = 5,
        schema_draft: str | None = None,
    ) -> None:
        """``schema_draft`` names jsonschema's validator class for ``schema``; when not given it
        is found (and the schema checked) with jsonschema."""
        if max_bytes < 1 or min_bytes < 0 or max_schema_errors < 1:
            raise ValueError("need max_bytes >= 1, min_bytes >= 0 and max_schema_errors >= 1")
        self._min_bytes = min_bytes
        self._max_bytes = max_bytes
        self._max_schema_errors = max_schema_errors
        self._parser = simdjson.Parser()
        self._schema = None if schema is None else _SchemaCheck(schema, schema_draft)
        self._options = {
            "min_bytes": min_bytes,
            "max_bytes": max_bytes,
            "schema": schema,
            "max_schema_errors": max_schema_errors,
            "schema_draft": None if self._schema is None else self._schema.draft,
        }

    def inspect(self, path: Path | str) -> list[FileProblem]:
        """The problems of one file; [] means it is complete, valid and matches the schema."""
        return self._inspect(path)[0]

    def _inspect(self, path: Path | str) -> tuple[list[FileProblem], int]:
        """The problems of one file, and its size as stat() gives it (0 when it has none)."""
        name = str(path)
        data, size = self._read(path, name)
        if isinstance(data, FileProblem):
            return [data], size
        return self.judge(name, data), size

    @property
    def max_bytes(self) -> int:
        """Files larger than this are not read: they are too_large."""
        return self._max_bytes

    def judge(self, name: str, data: bytes) -> list[FileProblem]:
        """The problems of the bytes ``data`` read from the file or object ``name``."""
        if _CONTENT_BYTE.search(data) is None:
            return [_empty_problem(name, len(data))]
        if len(data) < self._min_bytes:
            message = f"the file is {len(data)} bytes, under the {self._min_bytes}-byte minimum"
            return [FileProblem(name, "too_small", message)]
        if name.lower().endswith(_LINE_DELIMITED_SUFFIXES):
            return self._inspect_lines(name, data)
        return self._inspect_document(name, data)

    def inspect_many(
        self,
        paths: Sequence[Path | str],
        *,
        interrupt: Callable[[], None] = _keep_going,
        workers: int | None = None,
        pool_min_work: int | None = None,
    ) -> Inspection:
        """The problems of many files, in the order of ``paths`` (each file's as ``inspect`` gives
        them), and their total size. Enough work (``pool_min_work``, default ``POOL_MIN_WORK``)
        is shared by ``workers`` processes, this one and ``workers - 1`` started for it (default:
        one per usable CPU). ``interrupt`` is called
        between files and while waiting for workers; whatever it raises stops the inspection
        and its processes, and propagates."""
        processes = _usable_cpus() if workers is None else workers
        threshold = POOL_MIN_WORK if pool_min_work is None else pool_min_work
        sizes = None if len(paths) * _FILE_WORK >= threshold else [_size(p) for p in paths]
        work = len(paths) * _FILE_WORK + (0 if sizes is None else sum(sizes))
        interrupt()
        if processes > 1 and len(paths) > 1 and work >= threshold and _program() is not None:
            return _inspect_in_workers(self, paths, sizes, processes, interrupt)
        problems, total = _inspect_chunk(self, paths, interrupt)
        return Inspection(problems, total)

    def _read(self, path: Path | str, name: str) -> tuple[bytes | FileProblem, int]:
        """The bytes of the file, or why they cannot be had; and its size as stat() gives it."""
        try:
            # O_NONBLOCK: a FIFO swapped in after the file was listed must not block the open.
            fd = os.open(path, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            # Files can disappear between being listed and being read.
            message = "the file does not exist (it may have been removed after it was listed)"
            return FileProblem(name, "missing", message), 0
        except OSError as exc:
            return unreadable(name, exc.strerror or str(exc)), _size(path)
        size = 0
        try:
            info = os.fstat(fd)
            size = info.st_size
            if not stat.S_ISREG(info.st_mode):
                return unreadable(name, _not_regular_reason(info.st_mode)), size
            if size > self._max_bytes:
                return too_large(name, size, self._max_bytes), size
            os.set_blocking(fd, True)
            data = _read_up_to(fd, size, self._max_bytes + 1)
        except OSError as exc:
            return unreadable(name, exc.strerror or str(exc)), size
        finally:
            os.close(fd)
        if len(data) > self._max_bytes:
            return too_large(name, len(data), self._max_bytes), size
        return data, size

    def _inspect_document(self, name: str, data: bytes) -> list[FileProblem]:
        fast = self._accepts(data)
        fault = None if fast else _diagnose(data)
        if fault is not None:
            return [fault.problem(name)]
        if self._schema is None:
            return []
        return self._schema_problems(name, self._schema, [(0, data, fast)])

    def _inspect_lines(self, name: str, data: bytes) -> list[FileProblem]:
        accepted: list[tuple[int, bytes, bool]] = []
        for number, start, line, is_last in _records(data):
            fast = self._accepts(line)
            fault = None if fast else _diagnose(line)
            if fault is not None:
                return [_line_fault(fault, number, start, is_last).problem(name)]
            if self._schema is not None:
                accepted.append((number, line, fast))
        if self._schema is None:
            return []
        return self._schema_problems(name, self._schema, accepted)

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
        finally:
            if len(data) > _FRESH_PARSER_BYTES:
                self._parser = simdjson.Parser()
        return True

    def _schema_problems(
        self, name: str, schema: _SchemaCheck, documents: Iterable[tuple[int, bytes, bool]]
    ) -> list[FileProblem]:
        """Up to max_schema_errors problems, the same ones every run, the last counting the rest."""
        cap = self._max_schema_errors
        best: list[_SchemaHit] = []
        total = 0
        for hit in _schema_hits(schema, documents):
            total += 1
            if len(best) < cap or hit < best[-1]:
                bisect.insort(best, hit)
                del best[cap:]
        problems = [hit.problem(name) for hit in best]
        if total > len(best):
            more = total - len(best)
            noun = "error" if more == 1 else "errors"
            last = problems[-1]
            problems[-1] = last._replace(message=f"{last.message} (and {more} more schema {noun})")
        return problems


def load_schema(path: Path) -> dict[str, Any]:
    """Read a JSON Schema file; ValueError when it is not valid JSON or not a valid schema."""
    data = path.read_bytes()
    problem = locate_error(data)
    if problem is not None:
        raise ValueError(f"schema file {path} is not valid JSON: {problem.message}")
    try:
        schema = _exact_decoder().decode(str(data, "utf-8"))
    except RecursionError as exc:
        raise ValueError(f"schema file {path} is nested too deeply to read") from exc
    if not isinstance(schema, dict):
        raise ValueError(f"schema file {path} must hold a JSON object")
    try:
        _compile_schema(schema)
    except ValueError as exc:
        raise ValueError(f"schema file {path}: {exc}") from exc
    return schema


def locate_error(data: bytes) -> FileProblem | None:
    """The parse problem of an in-memory document (path ""), None when it is valid JSON."""
    if _CONTENT_BYTE.search(data) is None:
        return FileProblem("", "empty", "the document has no content")
    fault = _diagnose(data)
    return None if fault is None else fault.problem("")


def _read_up_to(fd: int, expected: int, limit: int) -> bytes:
    """At most ``limit`` bytes: all of them when the file holds fewer. ``expected`` is the size
    fstat() gave; asking one byte more finds the end of an unchanged file in one read."""
    data = os.read(fd, min(expected + 1, limit, _READ_MAX))
    if len(data) == expected or not data:
        return data
    parts = [data]
    total = len(data)
    while total < limit and (more := os.read(fd, min(limit - total, _READ_MAX))):
        parts.append(more)
        total += len(more)
    return b"".join(parts)


class _Fault(NamedTuple):
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


class _ParseError(NamedTuple):
    pos: int  # character index into the text
    message: str


def _diagnose(data: bytes) -> _Fault | None:
    """The strict verdict on one document: None when valid, else where and why it fails."""
    if data.startswith(_BOM):
        return _Fault("invalid_json", "the text starts with a UTF-8 byte-order mark", 1, 1, 0)
    try:
        text = str(data, "utf-8")
    except UnicodeDecodeError as exc:
        return _utf8_fault(data, exc)
    error = _strict_error(text)
    if error is None:
        return None
    if _is_cut_short(text, error):
        return _truncated(text, len(data))
    return _invalid(text, error)


def _strict_error(text: str) -> _ParseError | None:
    """Where strict JSON parsing of the text fails, or None when it succeeds."""
    try:
        _SYNTAX.decode(text)
    except json.JSONDecodeError as exc:
        return _ParseError(exc.pos, exc.msg.removesuffix(" at"))
    except _NonFiniteNumberError as exc:
        return _ParseError(_constant_position(text), f"{exc.args[0]} is not a JSON value")
    except RecursionError:
        return _deep_error(text)
    return None


class _NonFiniteNumberError(ValueError):
    """NaN, Infinity or -Infinity: accepted by Python's json module, not by strict JSON."""


def _reject_constant(name: str) -> NoReturn:
    raise _NonFiniteNumberError(name)


# Numbers are kept as their text: converting them is not needed to know the text is JSON, and
# int() refuses more than 4300 digits (sys.get_int_max_str_digits()).
_SYNTAX = json.JSONDecoder(parse_constant=_reject_constant, parse_int=str)


def _exact_decoder() -> json.JSONDecoder:
    """A strict decoder keeping every integer exact, however long: one per document, since it
    counts the digits it converted."""
    return json.JSONDecoder(parse_constant=_reject_constant, parse_int=_ExactInts())


class _TooLongError(ValueError):
    """A document whose long integers hold more digits in all than are converted exactly."""


class _ExactInts:
    """``parse_int`` converting integers longer than int() accepts by halves (int() refuses
    more than sys.get_int_max_str_digits(), 4300 digits by default; it is at least 640), up to
    ``_MAX_LONG_DIGITS`` digits in all: converting is superlinear in the digits."""

    def __init__(self) -> None:
        self.digits = 0

    def __call__(self, text: str) -> int:
        if len(text) <= _PLAIN_INT_DIGITS:
            return int(text)
        self.digits += len(text)
        if self.digits > _MAX_LONG_DIGITS:
            raise _TooLongError(
                f"its integers have more than {_MAX_LONG_DIGITS:,} digits in all, too long to "
                "validate against the schema"
            )
        digits = text.lstrip("-")
        value = _LongInt(
            -_int_by_halves(digits) if text.startswith("-") else _int_by_halves(digits)
        )
        value.digits = len(digits)
        return value


_PLAIN_INT_DIGITS = 640
_MAX_LONG_DIGITS = 1_000_000
"""About a second of converting (CPython 3.11 multiplies long integers in O(n^1.58))."""


class _LongInt(int):
    """An integer too long for str(): shown by its size (jsonschema puts values in messages)."""

    digits = 0

    def __repr__(self) -> str:
        sign = "a negative" if self < 0 else "an"
        return f"{sign} integer of {self.digits} digits"

    __str__ = __repr__


def _int_by_halves(digits: str) -> int:
    if len(digits) <= _PLAIN_INT_DIGITS:
        return int(digits)
    low = len(digits) // 2
    return _int_by_halves(digits[:-low]) * _power_of_ten(low) + _int_by_halves(digits[-low:])


@functools.lru_cache(maxsize=64)
def _power_of_ten(exponent: int) -> int:
    power: int = 10**exponent
    return power


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_scanstring: Callable[[str, int, bool], tuple[str, int]]
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # json's own (C) string scanner
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_CLOSING = {"[": "]", "{": "}"}
_WORDS = {"n": "null", "t": "true", "f": "false", "N": "NaN", "I": "Infinity", "-": "-Infinity"}
_NON_FINITE = ("NaN", "Infinity", "-Infinity")


def _deep_error(text: str) -> _ParseError | None:
    """json's verdict on a text nested too deeply for its recursive parser (RecursionError at
    about 1,000 levels), reached with a stack of the open arrays and objects instead: the same
    error at the same position, as Python 3.11's json module reports it."""
    stack: list[str] = []
    pos = _after_space(text, 0)
    expecting_value = True
    while True:
        if expecting_value:
            char = text[pos : pos + 1]
            if char in _CLOSING:
                pos = _after_space(text, pos + 1)
                if text[pos : pos + 1] != _CLOSING[char]:
                    stack.append(char)
                    if char == "{":
                        pos_or_error = _member_name(text, pos)
                        if isinstance(pos_or_error, _ParseError):
                            return pos_or_error
                        pos = pos_or_error
                    continue
                pos += 1
            else:
                end_or_error = _scalar_end(text, pos)
                if isinstance(end_or_error, _ParseError):
                    return end_or_error
                pos = end_or_error
            expecting_value = False
        pos = _after_space(text, pos)
        if not stack:
            return None if pos == len(text) else _ParseError(pos, "Extra data")
        char = text[pos : pos + 1]
        if char == _CLOSING[stack[-1]]:
            stack.pop()
            pos += 1
            continue
        if char != ",":
            return _ParseError(pos, "Expecting ',' delimiter")
        pos = _after_space(text, pos + 1)
        if stack[-1] == "{":
            pos_or_error = _member_name(text, pos)
            if isinstance(pos_or_error, _ParseError):
                return pos_or_error
            pos = pos_or_error
        expecting_value = True


def _after_space(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return pos if match is None else match.end()


def _member_name(text: str, pos: int) -> int | _ParseError:
    """Where the value after the member name at ``pos`` (and its colon) starts."""
    if text[pos : pos + 1] != '"':
        return _ParseError(pos, "Expecting property name enclosed in double quotes")
    end = _scalar_end(text, pos)
    if isinstance(end, _ParseError):
        return end
    end = _after_space(text, end)
    if text[end : end + 1] != ":":
        return _ParseError(end, "Expecting ':' delimiter")
    return _after_space(text, end + 1)


def _scalar_end(text: str, pos: int) -> int | _ParseError:
    """Where the string, number or literal at ``pos`` ends."""
    char = text[pos : pos + 1]
    if char == '"':
        try:
            return _scanstring(text, pos + 1, True)[1]
        except json.JSONDecodeError as exc:
            return _ParseError(exc.pos, exc.msg.removesuffix(" at"))
    word = _WORDS.get(char)
    if word is not None and text.startswith(word, pos):
        if word in _NON_FINITE:
            return _ParseError(pos, f"{word} is not a JSON value")
        return pos + len(word)
    number = _JSON_NUMBER.match(text, pos)
    return number.end() if number is not None else _ParseError(pos, "Expecting value")


def _constant_position(text: str) -> int:
    # The parser had accepted everything before the constant, so its first occurrence outside
    # a string is the one it rejected.
    for match in _STRING_OR_CONSTANT.finditer(text):
        if match.group(1):
            return match.start()
    return 0


def _is_cut_short(text: str, error: _ParseError) -> bool:
    """True when the text's content (padding at its end left out) is a proper prefix of some
    JSON document: it ends inside a value.

    An error inside the content is the content's own: the parser decides at a position from
    what lies there. The parser reports errors at the start of the token it could not read, so a
    content that ends inside a literal, a number or a \\u escape fails before its end and needs
    a closer look.
    """
    end = _content_end(text, _PADDING)
    if end == 0:
        return False
    if error.pos >= end:
        # The parser read all of the content, and failed in the padding after it: unless the
        # content was a whole document (then the NULs after it are "Extra data"), it was cut.
        return error.message != "Extra data"
    if error.message.startswith("Unterminated string"):
        return True
    if error.message in ("Expecting ',' delimiter", "Extra data"):
        return _continues_number(text, error.pos, end)
    if end - error.pos > _LONGEST_CUT_TOKEN:
        return False
    tail = text[error.pos : end]
    if error.message.startswith("Invalid \\uXXXX escape"):
        return _UNICODE_ESCAPE_PREFIX.fullmatch(tail) is not None
    if error.message == "Expecting value":
        return tail in _LITERAL_PREFIXES or tail == "-"
    return False


def _continues_number(text: str, pos: int, end: int) -> bool:
    """True when the number just before pos runs on to ``end`` as an unfinished number ("1.")."""
    start = pos
    while start > 0 and text[start - 1] in _NUMBER_CHARS:
        start -= 1
    return start < pos and _NUMBER_PREFIX.fullmatch(text, start, end) is not None


def _truncated(text: str, size: int) -> _Fault:
    """Where a cut-short text of ``size`` bytes ends: after its last written character, NUL
    padding excluded."""
    end = _content_end(text, "\0")
    line = text.count("\n", 0, end) + 1
    column = end - text.rfind("\n", 0, end)
    detail = f"the text ends inside {_open_context(text, end)}"
    return _Fault("truncated", detail, line, column, size - (len(text) - end))


def _open_context(text: str, end: int) -> str:
    """What the text cut short at ``end`` (a prefix of a JSON document) was inside of: the
    innermost open string, object or array. Found with whole-text operations on its UTF-8
    bytes, not a token loop (whose Python steps cost more than parsing the document): with
    escaped backslashes, then escaped quotes removed, every quote left opens or closes a string.
    Of the quotes and brackets (all that is kept then), two quotes side by side are removed:
    nothing was between them, so every other byte stays inside or outside a string. An odd
    number of quotes left means the text was cut inside a string; else the brackets outside
    the strings are kept, and pairs closed inside are removed until only the open ones remain.
    No byte of a multi-byte UTF-8 character is a quote, a backslash or a bracket."""
    content = text[:end].encode()
    if b"\\" in content:
        content = content.replace(b"\\\\", b"").replace(b'\\"', b"")
    parts = content.translate(None, _NOT_QUOTES_OR_BRACKETS).replace(b'""', b"").split(b'"')
    if len(parts) % 2 == 0:
        return "a string"
    brackets = b"".join(parts[::2])
    while (closed := brackets.replace(b"[]", b"").replace(b"{}", b"")) != brackets:
        brackets = closed
    if brackets:
        return "an object" if brackets.endswith(b"{") else "an array"
    first = _CONTENT_CHAR.search(text, 0, end)
    return "a number" if first is not None and first.group() in "-0123456789" else "a literal"


def _invalid(text: str, error: _ParseError) -> _Fault:
    pos = error.pos
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    offset = pos if text.isascii() else len(text[:pos].encode())
    return _Fault("invalid_json", error.message, line, column, offset)


def _utf8_fault(data: bytes, exc: UnicodeDecodeError) -> _Fault:
    """Bad UTF-8 is invalid, unless a cut inside a string split a multi-byte character."""
    start = exc.start
    prefix = str(memoryview(data)[:start], "utf-8")
    if _is_partial_character(data, start):
        error = _strict_error(prefix)
        cut = error is not None and _is_cut_short(prefix, error)
        if cut and _open_context(prefix, _content_end(prefix, _PADDING)) == "a string":
            return _truncated(prefix, start)
    line = prefix.count("\n") + 1
    column = len(prefix) - prefix.rfind("\n")
    detail = f"the bytes are not valid UTF-8 ({exc.reason})"
    return _Fault("invalid_json", detail, line, column, start)


def _is_partial_character(data: bytes, start: int) -> bool:
    """True when the content from ``start`` on is the beginning of one UTF-8 character."""
    end = _content_end(data, _PADDING_BYTES)
    if not 0 < end - start < 4:
        return False
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data[start:end]) == ""
    except UnicodeDecodeError:
        return False


def _content_end(text: AnyStr, padding: AnyStr) -> int:
    """Where the text would end with the ``padding`` characters at its end stripped, found
    without copying the text."""
    end = len(text)
    while end > 0:
        start = max(0, end - _SCAN_CHUNK)
        kept = len(text[start:end].rstrip(padding))
        if kept:
            return start + kept
        end = start
    return 0


def _records(data: bytes) -> Iterator[tuple[int, int, bytes, bool]]:
    """(1-based line number, byte offset of the line, line, whether it is the last record) for
    each non-blank line."""
    held: tuple[int, int, bytes] | None = None
    start = 0
    number = 0
    while start <= len(data):
        number += 1
        stop = data.find(b"\n", start)
        stop = len(data) if stop < 0 else stop
        line = data[start:stop]
        if line.strip(_BLANK_LINE_BYTES):
            if held is not None:
                yield (*held, False)
            held = (number, start, line)
        start = stop + 1
    if held is not None:
        yield (*held, True)


def _line_fault(fault: _Fault, number: int, start: int, is_last: bool) -> _Fault:
    """A fault found in one JSON Lines record, moved to its place in the whole file."""
    moved = fault._replace(line=number, offset=start + fault.offset)
    if fault.reason == "truncated" and not is_last:
        # Only the last record can be cut by a crash; an unfinished one mid-file is malformed.
        return moved._replace(
            reason="invalid_json", detail=f"the record is incomplete: {fault.detail}"
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


class _SchemaCheck:
    """A JSON Schema held twice: compiled by jsonschema-rs, which decides quickly whether a
    document is valid, and by jsonschema, which says why one is not (in its own words).

    A document jsonschema-rs accepts is valid. One it rejects is explained by jsonschema, or by
    jsonschema-rs itself when jsonschema finds nothing (jsonschema skips the formats whose
    checker libraries are not installed). Documents simdjson could not represent (integers
    beyond 64 bits) go to jsonschema alone, which compares such numbers exactly.
    """

    def __init__(self, schema: dict[str, Any], draft: str | None) -> None:
        self._schema = schema
        self._explainer: _Validator | None = None
        if draft is None:
            self._explainer = _compile_schema(schema)
            draft = type(self._explainer).__name__
        self.draft = draft
        self._compiled = _compile_fast(schema, draft)

    def hits(self, line: int, instance: Any, exact_ints: bool) -> list[_SchemaHit]:
        compiled = self._compiled if exact_ints else None
        if compiled is not None and compiled.is_valid(instance):
            return []
        if self._explainer is None:
            self._explainer = _compile_schema(self._schema)
        found = [_SchemaHit.of(line, e) for e in self._explainer.iter_errors(instance)]
        if not found and compiled is not None:
            found = [_SchemaHit.of(line, e, compiled=True) for e in compiled.iter_errors(instance)]
        return found


def _compile_fast(schema: dict[str, Any], draft: str) -> Any:
    """jsonschema-rs's validator for the draft jsonschema chose, or None when it has no such
    draft or cannot compile the schema (jsonschema alone validates then)."""
    import jsonschema_rs

    cls = getattr(jsonschema_rs, draft, None)
    if cls is None:
        return None
    try:
        return cls(schema, validate_formats=True, retriever=_refuse_remote)
    except (ValueError, jsonschema_rs.ReferencingError):
        return None


def _refuse_remote(uri: str) -> NoReturn:
    # jsonschema resolves no remote $ref either: validation reads nothing but the files.
    raise ValueError(f"remote schema {uri} is not fetched")


def _schema_hits(
    schema: _SchemaCheck, documents: Iterable[tuple[int, bytes, bool]]
) -> Iterator[_SchemaHit]:
    for line, data, fast in documents:
        try:
            yield from schema.hits(line, _load(data, fast), fast)
        except RecursionError:
            yield _SchemaHit(line, (), "the document is nested too deeply to validate", "")
        except _TooLongError as exc:
            yield _SchemaHit(line, (), f"the document cannot be validated: {exc}", "")
        except OverflowError as exc:  # 1e999999 or a long integer in jsonschema's multipleOf
            message = f"the document cannot be validated: a number is too large ({exc})"
            yield _SchemaHit(line, (), message, "")


def _load(data: bytes, fast: bool) -> Any:
    # orjson turns integers beyond 64 bits into floats; simdjson rejects exactly those, so the
    # documents it accepted are safe for orjson and the rest go through the exact stdlib parser.
    import orjson  # here: a worker without a schema does not load it

    if fast:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return _exact_decoder().decode(str(data, "utf-8"))


class _SchemaHit(NamedTuple):
    """One schema error, ordered by line, then path (array indexes numerically), then message."""

    line: int  # 0 for a whole-file document
    path_key: tuple[tuple[int, int, str], ...]
    message: str
    pointer: str

    @classmethod
    def of(cls, line: int, error: Any, *, compiled: bool = False) -> _SchemaHit:
        path = list(error.instance_path if compiled else error.absolute_path)
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


def unreadable(path: str, why: str) -> FileProblem:
    return FileProblem(path, "unreadable", f"cannot read the file: {why}")


def too_large(path: str, size: int, limit: int) -> FileProblem:
    message = f"the file is {size} bytes, over the {limit}-byte limit, so it was not read"
    return FileProblem(path, "too_large", message)


def _not_regular_reason(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return os.strerror(errno.EISDIR)
    return "not a regular file"


def _size(path: Path | str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


# --- worker processes ---------------------------------------------------------------------


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _program() -> str | None:
    """This file, which workers load as their program; None when it is not a plain file."""
    return __file__ if sys.executable and __file__.endswith(".py") else None


def _inspect_in_workers(
    inspector: JsonFileInspector,
    paths: Sequence[Path | str],
    sizes: list[int] | None,
    processes: int,
    interrupt: Callable[[], None],
) -> Inspection:
    """Chunks of files inspected by ``processes - 1`` worker processes and by this one: each
    worker sends back only its problems, and this process inspects the next chunk itself
    whenever no answer is waiting, from the moment the workers are started (rather than idling
    while they start, then while they parse)."""
    chunks = _chunks([str(p) for p in paths], sizes)
    found: list[list[FileProblem]] = [[] for _ in chunks]
    total = 0
    todo = iter(range(len(chunks)))
    workers: list[_Worker] = []
    try:
        for _ in range(min(processes - 1, len(chunks) - 1)):
            workers.append(_start_worker(inspector._options))
            interrupt()
        for worker in workers:
            for _ in range(_IN_FLIGHT):
                worker.give(next(todo, None), chunks)
        own: int | None = 0
        while own is not None or any(w.pending for w in workers):
            interrupt()
            busy = [w for w in workers if w.pending]
            own = next(todo, None)
            for worker in _answering(busy, 0 if own is not None else _POLL_S):
                index, problems, size = worker.take()
                found[index] = problems
                total += size
                worker.give(next(todo, None), chunks)
            if own is not None:
                found[own], size = _inspect_chunk(inspector, chunks[own], interrupt)
                total += size
    finally:
        for worker in workers:
            worker.stop()
    return Inspection([problem for problems in found for problem in problems], total)


def _inspect_chunk(
    inspector: JsonFileInspector, chunk: Sequence[Path | str], interrupt: Callable[[], None]
) -> tuple[list[FileProblem], int]:
    """Files inspected in this process, one by one: their problems and total size (each file's
    as its own open handle gave it: no second stat)."""
    problems: list[FileProblem] = []
    size = 0
    for name in chunk:
        interrupt()
        found, file_size = inspector._inspect(name)
        problems += found
        size += file_size
    return problems, size


def _chunks(names: list[str], sizes: list[int] | None) -> list[list[str]]:
    """Consecutive runs of files of about ``_CHUNK_WORK`` each (sizes, when known, count), each
    under ``_CHUNK_FILES`` files and ``_CHUNK_NAMES`` characters of names."""
    chunks: list[list[str]] = []
    chunk: list[str] = []
    work = length = 0
    for index, name in enumerate(names):
        if chunk and length + len(name) > _CHUNK_NAMES:
            chunks.append(chunk)
            chunk, work, length = [], 0, 0
        chunk.append(name)
        work += _FILE_WORK + (0 if sizes is None else sizes[index])
        length += len(name)
        if work >= _CHUNK_WORK or len(chunk) >= _CHUNK_FILES:
            chunks.append(chunk)
            chunk, work, length = [], 0, 0
    if chunk:
        chunks.append(chunk)
    return chunks


class _Pipe:
    """One end of a pipe carrying pickled messages, each after its length in 8 bytes: what
    ``multiprocessing.connection.Connection`` does, written out because importing that module
    (sockets, threads, temporary files, multiprocessing's contexts) would add a third to the
    time a worker takes to start. A pipe closed at the other end raises EOFError (reading) or
    BrokenPipeError (writing)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(8, "little") + data)
        while view:
            view = view[os.write(self.fd, view) :]

    def recv(self) -> Any:
        return pickle.loads(self._read(int.from_bytes(self._read(8), "little")))

    def close(self) -> None:
        os.close(self.fd)

    def _read(self, size: int) -> bytearray:
        data = bytearray()
        while len(data) < size:
            # at most a MiB at a time: os.read allocates what it is asked for before it reads
            part = os.read(self.fd, min(size - len(data), 1 << 20))
            if not part:
                raise EOFError("the other end of the pipe was closed")
            data += part
        return data


def _answering(workers: list[_Worker], timeout: float) -> list[_Worker]:
    """The workers with an answer (or the end of their pipe) to read, waiting up to ``timeout``
    seconds for one."""
    import select

    poller = select.poll()
    for worker in workers:
        poller.register(worker.replies.fd, select.POLLIN)
    ready = {fd for fd, _ in poller.poll(timeout * 1000)}
    return [worker for worker in workers if worker.replies.fd in ready]


class _Worker:
    """One worker process and the chunks it was given, in the order it answers them."""

    def __init__(
        self, process: subprocess.Popen[bytes], requests: _Pipe, replies: _Pipe, log: Any
    ) -> None:
        self.process = process
        self.requests = requests
        self.replies = replies
        self.log = log
        self.pending: deque[int] = deque()

    def give(self, index: int | None, chunks: list[list[str]]) -> None:
        if index is None:
            return
        try:
            self.requests.send(chunks[index])
        except OSError as exc:  # a worker that died closes its end of the pipe
            raise self._failed() from exc
        self.pending.append(index)

    def take(self) -> tuple[int, list[FileProblem], int]:
        try:
            problems, size = self.replies.recv()
        except (EOFError, OSError) as exc:
            raise self._failed() from exc
        return self.pending.popleft(), [FileProblem(*p) for p in problems], size

    def stop(self) -> None:
        """End the process (it holds nothing that needs saving) and reap it."""
        self.process.kill()
        self.process.wait()
        self.requests.close()
        self.replies.close()
        self.log.close()

    def _failed(self) -> Exception:
        from runner.errors import SourceError
        from runner.results import ErrorCategory

        code = self.process.wait()
        self.log.seek(0)
        detail = self.log.read()[-2000:].decode(errors="replace")
        return SourceError(
            f"a worker process inspecting result files stopped with exit code {code} before it "
            "had inspected them all (out of memory?)",
            category=ErrorCategory.INTERNAL,
            retryable=True,
            detail=detail or None,
        )


_WORKER = (
    "import sys; sys.path[:] = sys.argv[2:]; import importlib.util; "
    "spec = importlib.util.spec_from_file_location('postrun_json_files', sys.argv[1]); "
    "module = sys.modules[spec.name] = importlib.util.module_from_spec(spec); "
    "spec.loader.exec_module(module); module._main()"
)
"""A worker's program: this file, loaded as a module of its own (byte code cached as for any
import, where a script would be compiled at every start)."""


def _worker_command(program: str) -> list[str]:
    """``_WORKER`` run with -S, given this file and this process's module search path, each
    folder an argument: the worker finds what this process found (simdjson, orjson,
    jsonschema_rs) without the start-up work of ``site`` (its .pth files), which would double
    the time a worker takes to start. The current folder ('') is left out, so that nothing in
    it shadows what the worker imports."""
    search = [folder for folder in sys.path if folder]
    return [sys.executable, "-S", "-c", _WORKER, program, *search]


def _start_worker(options: dict[str, Any]) -> _Worker:
    import subprocess  # here: workers do not start workers
    import tempfile

    program = _program()
    assert program is not None
    child_in, requests = os.pipe()
    replies, child_out = os.pipe()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open by the worker, closed in stop()
    try:
        process = subprocess.Popen(
            _worker_command(program),
            stdin=child_in,
            stdout=child_out,
            stderr=log,
        )
    except BaseException:
        for fd in (requests, replies):
            os.close(fd)
        log.close()
        raise
    finally:
        os.close(child_in)
        os.close(child_out)
    worker = _Worker(process, _Pipe(requests), _Pipe(replies), log)
    try:
        worker.requests.send(options)
    except BaseException:
        worker.stop()
        raise
    return worker


def _serve(requests: _Pipe, replies: _Pipe) -> None:
    """A worker's loop: inspect each chunk of paths it is sent, answer with their problems (as
    tuples) and their total size."""
    try:
        inspector = JsonFileInspector(**requests.recv())
        while (chunk := requests.recv()) is not None:
            problems: list[tuple[Any, ...]] = []
            size = 0
            for name in chunk:
                found, file_size = inspector._inspect(name)
                problems += map(tuple, found)
                size += file_size
            replies.send((problems, size))
    except EOFError:  # the parent went away
        return


def _main() -> None:
    """A worker process: requests on stdin, replies on stdout, the parent decides its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.dup(1)
    os.dup2(2, 1)  # a stray print must not corrupt the replies
    _serve(_Pipe(0), _Pipe(replies))
