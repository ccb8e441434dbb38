"""Values from the data made safe to keep and to show: bounded, JSON-native, controls escaped.

One rule for what a check result keeps (sample values, observed and expected values, notes,
messages, params), so that verdict.json holds only what JSON holds natively:

- a text longer than ``VALUE_LIMIT`` bytes keeps its start and says its full length:
  ``"xxxx… [truncated: 104857600 bytes]"``;
- a nested value (a JSON, LIST or STRUCT column) keeps about ``NESTED_LIMIT`` bytes of items and
  ends in an item saying how many more there were (``"… [truncated: 12 more items]"``, or the
  key ``"…"`` with ``"[truncated: 12 more entries]"``), and at most ``NESTED_DEPTH`` levels;
- an integer outside the signed 64-bit range is ``{"$int": "<decimal digits>"}``; NaN, Infinity
  and -Infinity are ``{"$float": "NaN"}``, ``"Infinity"``, ``"-Infinity"``: tagged, so a reader
  tells them from text, and NaN from NULL;
- a byte that is not UTF-8 (a file name read with ``surrogateescape``) is written ``\\xff``.

And one rule for what is printed: control characters written out, each line capped.
Encoding a value twice gives what encoding it once gave, so a stored verdict reads back as it
was written. This module imports nothing heavy: the command line uses it for every line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

VALUE_LIMIT = 1024
"""Bytes (UTF-8) of one text a check result keeps: a sample value, a message, a note."""
NESTED_LIMIT = 16 * VALUE_LIMIT
"""Bytes, roughly, of one nested value a check result keeps."""
NESTED_DEPTH = 32
"""Levels of one nested value a check result keeps (JSON writers refuse some 250 in all)."""
LINE_LIMIT = 1000
"""Characters of one printed line; a longer one is cut and ends in "…"."""
INT_TAG = "$int"
FLOAT_TAG = "$float"

CUTS = r"… \[truncated: \d+ bytes\]|\n\[…\]\n"
"""Where a text was cut: by ``cap_text``, or in the middle by the engine's clip of an error's
detail (which keeps its end). A secret may straddle a cut (``runner.redact``)."""

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_INFINITIES = {math.inf: "Infinity", -math.inf: "-Infinity"}
# Patterns, not compiled ones: `re` compiles each on first use, and `postrun --help` pays none.
_ITEMS_LEFT = r"… \[truncated: \d+ more items\]"
_ENTRIES_LEFT = r"\[truncated: \d+ more entries\]"
_SURROGATE = "[\ud800-\udfff]"
_CHUNK = 1 << 20
# What a terminal would take for an instruction, or a reader be misled by: C0 and C1 controls,
# DEL, the bidirectional overrides and isolates that reorder what is shown, and lone surrogates
# (undecodable bytes), which UTF-8 output cannot even carry.
_CONTROLS = "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_CONTROLS_BUT_TAB_AND_NEWLINE = (
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


# --- what a check result keeps ----------------------------------------------------------------


def cap_text(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` as a result keeps it: undecodable bytes escaped, at most ``limit`` bytes of UTF-8
    (else its start and ``… [truncated: N bytes]``, N its full length)."""
    if len(text) > limit:  # more characters than bytes allowed: cut before anything else
        return _cut(escape_surrogates(text[:limit]), _utf8_size(text), limit)
    kept = escape_surrogates(text)
    if kept.isascii() and len(kept) <= limit:
        return kept
    return kept if len(kept.encode()) <= limit else _cut(kept, _utf8_size(text), limit)


def json_value(value: Any) -> Any:
    """A value from the data as verdict.json holds it (see the module docstring)."""
    return _encode(value, [NESTED_LIMIT], 0)


def json_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A sample row or an observed/expected mapping: each key a text, each value ``json_value``."""
    return {cap_text(str(key)): json_value(value) for key, value in row.items()}


def tagged_number(value: Any) -> str | None:
    """The number a tagged value stands for, as text (``{"$int": "…"}`` → its digits); None for
    any other value."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag in (INT_TAG, FLOAT_TAG) and isinstance(text, str):
            return text
    return None


def excerpt(value: Any, limit: int = 200) -> str:
    """A value as a message quotes it, at most ``limit`` bytes: text bare, a nested value as
    compact JSON, anything else as Python writes it."""
    if isinstance(value, list | tuple | dict):
        value = json.dumps(json_value(value), ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, int) and not isinstance(value, bool):
        return _digits(value, limit)
    return cap_text(value if isinstance(value, str) else str(value), limit)


def _encode(value: Any, budget: list[int], depth: int) -> Any:
    """``value`` encoded, its compact JSON size charged to ``budget``: charged by what it
    becomes, so that encoding the result again keeps exactly the same items."""
    if isinstance(value, str):
        text = cap_text(value)
        budget[0] -= len(text) + 2
        return text
    if isinstance(value, Mapping | list | tuple) and depth >= NESTED_DEPTH:
        return _encode(f"… [truncated: nested deeper than {NESTED_DEPTH} levels]", budget, depth)
    if isinstance(value, Mapping):
        if tagged_number(value) is not None:  # one number, written before: as atomic as one
            ((tag, text),) = value.items()
            return _tag(tag, cap_text(text), budget)
        return _encode_items(list(value.items()), budget, depth, keyed=True)
    if isinstance(value, list | tuple):
        return _encode_items([("", item) for item in value], budget, depth, keyed=False)
    if isinstance(value, bool) or value is None:
        budget[0] -= 5
        return value
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            budget[0] -= len(str(value))
            return value
        return _tag(INT_TAG, _digits(value), budget)
    if isinstance(value, float):
        if math.isfinite(value):
            budget[0] -= len(repr(value))
            return value
        return _tag(FLOAT_TAG, _INFINITIES.get(value, "NaN"), budget)
    return _encode(_jsonable(value), budget, depth)


def _tag(tag: str, text: str, budget: list[int]) -> dict[str, str]:
    budget[0] -= 2 + len(tag) + 4 + len(text) + 2
    return {tag: text}


def _encode_items(
    items: list[tuple[Any, Any]], budget: list[int], depth: int, *, keyed: bool
) -> Any:
    budget[0] -= 2
    kept: list[tuple[str, Any]] = []
    for key, item in items:
        if budget[0] <= 0:
            break
        name = cap_text(str(key)) if keyed else ""
        budget[0] -= len(name) + 4 if keyed else 1
        kept.append((name, _encode(item, budget, depth + 1)))
    left = items[len(kept) :]
    if len(left) == 1 and _says_what_was_left(*left[0]):
        kept.append(left[0])  # cut here before: keep its count of what it left out
    elif left and keyed:
        kept.append(("…", f"[truncated: {len(left)} more entries]"))
    elif left:
        kept.append(("", f"… [truncated: {len(left)} more items]"))
    return dict(kept) if keyed else [item for _, item in kept]


def _says_what_was_left(key: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if key == "…":
        return re.fullmatch(_ENTRIES_LEFT, value) is not None
    return key == "" and re.fullmatch(_ITEMS_LEFT, value) is not None


def _jsonable(value: Any) -> Any:
    """What pydantic would write for a value JSON has no type for (a date, a UUID, a set)."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        return str(value)


def _digits(value: int, limit: int = VALUE_LIMIT) -> str:
    """The decimal digits of ``value``, cut like a long text past ``limit`` (Python refuses to
    write more than some thousands of digits at once)."""
    sign = "-" if value < 0 else ""
    size = _decimal_size(abs(value)) + len(sign)
    if size <= limit:
        return str(value)
    head = str(abs(value) // 10 ** (size - limit))
    return _cut(sign + head, size, limit)


def _decimal_size(value: int) -> int:
    """How many decimal digits ``value`` (>= 0) has, without writing them out."""
    estimate = max(1, int(value.bit_length() * math.log10(2)))
    power: int = 10**estimate
    return estimate + 1 if value >= power else estimate


def _cut(text: str, size: int, limit: int) -> str:
    marker = f"… [truncated: {size} bytes]"
    keep = limit - len(marker.encode())
    return text.encode()[:keep].decode("utf-8", "ignore") + marker


def _utf8_size(text: str) -> int:
    """Bytes of ``text`` as it came (an undecodable byte counts one), a chunk at a time: a large
    text is never copied whole."""
    if text.isascii():
        return len(text)
    size = 0
    for start in range(0, len(text), _CHUNK):
        chunk = text[start : start + _CHUNK]
        size += len(chunk.encode("utf-8", "surrogatepass"))
        size -= 2 * sum(1 for c in re.findall(_SURROGATE, chunk) if c >= "\udc80")
    return size


def escape_surrogates(text: str) -> str:
    """``text`` with each undecodable byte (``surrogateescape``) written ``\\xff`` and any other
    lone surrogate ``\\ud800``: text UTF-8 can carry, never cut."""
    return text if text.isascii() else re.sub(_SURROGATE, _escape_surrogate, text)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


# --- what is printed --------------------------------------------------------------------------


def visible(text: str, *, spacing: bool = False) -> str:
    """``text`` with every control character written out (``\\x1b``, ``\\u202e``, ``\\xff`` for an
    undecodable byte); with ``spacing``, tab and newline stay as they are."""
    pattern = _CONTROLS_BUT_TAB_AND_NEWLINE if spacing else _CONTROLS
    return re.sub(pattern, _escape_control, text)


def printable(text: str, *, lines: bool = False, limit: int | None = LINE_LIMIT) -> str:
    """``text`` safe for a terminal: controls written out and cut at ``limit`` characters (None:
    postrun's own document, whole); with ``lines``, its newlines stay line breaks and each line
    is cut on its own."""
    if not lines:
        return _cap_line(visible(text), limit)
    return "\n".join(_cap_line(visible(line), limit) for line in text.split("\n"))


def _cap_line(line: str, limit: int | None) -> str:
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def _escape_control(match: re.Match[str]) -> str:
    char = match[0]
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return _escape_surrogate(match)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
