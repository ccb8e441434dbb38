"""Tests for runner.sources.json_files: complete/valid JSON, truncation vs malformed, schemas."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.sources import json_files
from runner.sources.json_files import (
    REASONS,
    FileProblem,
    JsonFileInspector,
    load_schema,
    locate_error,
)

Where = tuple[str, int | None, int | None, int | None]  # reason, line, column, offset


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def where(problem: FileProblem) -> Where:
    return (problem.reason, problem.line, problem.column, problem.offset)


def strictly_valid(data: bytes) -> bool:
    """The oracle: UTF-8, no byte-order mark, no NaN/Infinity, nothing after the document."""

    def reject(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(data.decode("utf-8"), parse_constant=reject)
    except (ValueError, RecursionError):
        return False
    return True


CASES = [
    pytest.param("a.json", b'{"a": 1, "b": [true, null]}', {}, None, id="good-object"),
    pytest.param("a.json", b"[1, 2, 3]\n", {}, None, id="good-array"),
    pytest.param("a.json", b'"hello"', {}, None, id="good-scalar"),
    pytest.param("a.json", b'{"n": 1180591620717411303424}', {}, None, id="big-int-2**70"),
    pytest.param("a.json", b'{"s": "\\ud800"}', {}, None, id="lone-surrogate-escape"),
    pytest.param("a.json", b"", {}, ("empty", None, None, None), id="empty"),
    pytest.param("a.json", b"  \n\t \r\n", {}, ("empty", None, None, None), id="whitespace"),
    pytest.param("a.json", b"\0" * 16, {}, ("empty", None, None, None), id="nul-only"),
    pytest.param("a.json", b'{"a": 1, "b": 2', {}, ("truncated", 1, 16, 15), id="cut-object"),
    pytest.param("a.json", b"[1, 2, 3", {}, ("truncated", 1, 9, 8), id="cut-array"),
    pytest.param("a.json", b'{"name": "abc', {}, ("truncated", 1, 14, 13), id="cut-string"),
    pytest.param("a.json", b'{"x": 1.', {}, ("truncated", 1, 9, 8), id="cut-number"),
    pytest.param("a.json", b'{"x": 1.5e+', {}, ("truncated", 1, 12, 11), id="cut-exponent"),
    pytest.param("a.json", b"[true, fal", {}, ("truncated", 1, 11, 10), id="cut-literal"),
    pytest.param("a.json", b'{"a": 1,', {}, ("truncated", 1, 9, 8), id="cut-after-comma"),
    pytest.param("a.json", b'{"a"', {}, ("truncated", 1, 5, 4), id="cut-after-key"),
    pytest.param("a.json", b'{"a":', {}, ("truncated", 1, 6, 5), id="cut-after-colon"),
    pytest.param("a.json", b'["\\u00', {}, ("truncated", 1, 7, 6), id="cut-escape"),
    pytest.param("a.json", b'["\xc3\xa9\xc3', {}, ("truncated", 1, 4, 4), id="cut-utf8-char"),
    pytest.param(
        "a.json",
        b'{\n  "a": [\n    1,\n    2',
        {},
        ("truncated", 4, 6, 23),
        id="cut-multiline",
    ),
    pytest.param(
        "a.json", b'{"a": [1, 2' + b"\0" * 64, {}, ("truncated", 1, 12, 11), id="nul-padded"
    ),
    pytest.param(
        "a.json", b'{"a": 1}' + b"\0" * 8, {}, ("invalid_json", 1, 9, 8), id="complete-nul-padded"
    ),
    pytest.param("a.json", b'{"a": 1} {"b": 2}', {}, ("invalid_json", 1, 10, 9), id="extra-data"),
    pytest.param("a.json", b"[1, 2,]", {}, ("invalid_json", 1, 7, 6), id="trailing-comma"),
    pytest.param("a.json", b"[1 .5]", {}, ("invalid_json", 1, 4, 3), id="bad-token"),
    pytest.param("a.json", b'{"a": NaN}', {}, ("invalid_json", 1, 7, 6), id="nan"),
    pytest.param("a.json", b"[-Infinity]", {}, ("invalid_json", 1, 2, 1), id="minus-infinity"),
    pytest.param("a.json", b"\xef\xbb\xbf{}", {}, ("invalid_json", 1, 1, 0), id="bom"),
    pytest.param(
        "a.json", b'{"\xc3\xa9\xc3\xa9": "\xff"}', {}, ("invalid_json", 1, 9, 10), id="bad-utf8"
    ),
    pytest.param(
        "a.json", b'["\xc3\xa9", "x\ny"]', {}, ("invalid_json", 1, 9, 9), id="control-char"
    ),
    pytest.param("a.json", b"[" * 5000, {}, ("truncated", 1, 5001, 5000), id="too-deep"),
    # Numbers JSON holds and Python's int() or float() does not, nesting past the stdlib
    # parser's recursion: legal JSON passes, the rest is the file's finding with its place.
    pytest.param("a.json", b'{"n": ' + b"7" * 5000 + b"}", {}, None, id="int-5000-digits"),
    pytest.param("a.json", b"[-" + b"9" * 100_000 + b"]", {}, None, id="int-100000-digits"),
    pytest.param(
        "a.json", b'{"x": 1e999999, "y": -1E+999999, "z": 1e-999999}', {}, None, id="exponent"
    ),
    pytest.param("a.json", b"[-0, -0.0, -0e0]", {}, None, id="minus-zero"),
    pytest.param("a.json", b"[" * 100_000 + b"]" * 100_000, {}, None, id="deep-100000"),
    pytest.param(
        "a.json", b'{"a":' * 3000 + b'"\\ud800"' + b"}" * 3000, {}, None, id="deep-objects"
    ),
    pytest.param("a.json", b"[" * 100_000, {}, ("truncated", 1, 100_001, 100_000), id="deep-cut"),
    pytest.param(
        "a.json", b'{"a":' * 3000 + b'"x', {}, ("truncated", 1, 15003, 15002), id="deep-cut-string"
    ),
    pytest.param(
        "a.json",
        b"[" * 3000 + b"1 2" + b"]" * 3000,
        {},
        ("invalid_json", 1, 3003, 3002),
        id="deep-missing-comma",
    ),
    pytest.param(
        "a.json",
        b"[" * 3000 + b"NaN" + b"]" * 3000,
        {},
        ("invalid_json", 1, 3001, 3000),
        id="deep-nan",
    ),
    pytest.param(
        "a.json", b"[" * 3000 + b"]" * 3001, {}, ("invalid_json", 1, 6001, 6000), id="deep-extra"
    ),
    pytest.param("a.json", b'{"a": 1,\0 "b": 2}', {}, ("invalid_json", 1, 9, 8), id="nul-inside"),
    pytest.param("a.json", b'{"a": "x\0y"}', {}, ("invalid_json", 1, 9, 8), id="nul-in-string"),
    pytest.param(
        "a.jsonl",
        b'{"n": ' + b"7" * 5000 + b'}\n{"d": ' + b"[" * 2000 + b"]" * 2000 + b'}\n{"a": [1,',
        {},
        ("truncated", 3, 10, 9025),
        id="jsonl-long-int-deep-then-cut",
    ),
    pytest.param(
        "a.json", b"[1, 2, 3]", {"max_bytes": 4}, ("too_large", None, None, None), id="too-large"
    ),
    pytest.param(
        "a.json", b"{}", {"min_bytes": 10}, ("too_small", None, None, None), id="too-small"
    ),
    pytest.param("a.jsonl", b'{"a": 1}\n\n{"a": 2}\r\n', {}, None, id="jsonl-good"),
    pytest.param("a.ndjson", b'{"a": 1}\n[2]\n', {}, None, id="ndjson-good"),
    pytest.param(
        "a.jsonl",
        b'{"a": 1}\n{"a": 2}\n{"a": 3, "b": [1,',
        {},
        ("truncated", 3, 18, 35),
        id="jsonl-cut-last-line",
    ),
    pytest.param(
        "a.jsonl",
        b'{"a": 1}\n{"a" 2}\n{"a": 3}\n',
        {},
        ("invalid_json", 2, 6, 14),
        id="jsonl-bad-middle-line",
    ),
    pytest.param(
        "a.jsonl",
        b'{"a": 1\n{"a": 2}\n',
        {},
        ("invalid_json", 1, 8, 7),
        id="jsonl-unfinished-middle-line",
    ),
]


@pytest.mark.parametrize(("name", "data", "options", "expected"), CASES)
def test_inspect(
    tmp_path: Path, name: str, data: bytes, options: dict[str, Any], expected: Where | None
) -> None:
    path = write(tmp_path, name, data)
    problems = JsonFileInspector(**options).inspect(path)
    if expected is None:
        assert problems == []
    else:
        assert [where(p) for p in problems] == [expected]
        assert problems[0].path == str(path)
        assert problems[0].reason in REASONS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": [1, 2', "truncated at line 1 column 12 (byte 11): the text ends inside an array"),
        (
            b'{"a": {"b": 2',
            "truncated at line 1 column 14 (byte 13): the text ends inside an object",
        ),
        (b'{"a": "x', "truncated at line 1 column 9 (byte 8): the text ends inside a string"),
        (b"-12.", "truncated at line 1 column 5 (byte 4): the text ends inside a number"),
        (b"nul", "truncated at line 1 column 4 (byte 3): the text ends inside a literal"),
        (b'{"a": 1} x', "invalid JSON at line 1 column 10 (byte 9): Extra data"),
        (b'["\t"]', "invalid JSON at line 1 column 3 (byte 2): Invalid control character"),
        (b"[NaN]", "invalid JSON at line 1 column 2 (byte 1): NaN is not a JSON value"),
        (
            b"\xef\xbb\xbf[]",
            "invalid JSON at line 1 column 1 (byte 0): "
            "the text starts with a UTF-8 byte-order mark",
        ),
        (
            b"[\xff]",
            "invalid JSON at line 1 column 2 (byte 1): "
            "the bytes are not valid UTF-8 (invalid start byte)",
        ),
    ],
)
def test_locate_error_messages(data: bytes, message: str) -> None:
    problem = locate_error(data)
    assert problem is not None
    assert problem.message == message
    assert problem.path == ""


def test_locate_error_valid_and_empty() -> None:
    assert locate_error(b'{"n": 1180591620717411303424}') is None
    assert locate_error(b" \n") == FileProblem("", "empty", "the document has no content")


def test_to_dict_omits_none() -> None:
    problem = FileProblem("f.json", "truncated", "m", line=3, column=1, offset=40)
    assert problem.to_dict() == {
        "path": "f.json",
        "reason": "truncated",
        "message": "m",
        "line": 3,
        "column": 1,
        "offset": 40,
    }
    assert FileProblem("f.json", "schema", "m", pointer="").to_dict()["pointer"] == ""


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.json"
    [problem] = JsonFileInspector().inspect(path)
    assert (problem.reason, problem.path) == ("missing", str(path))


def test_directory_is_unreadable(tmp_path: Path) -> None:
    [problem] = JsonFileInspector().inspect(tmp_path)
    assert problem.reason == "unreadable"
    assert problem.message == "cannot read the file: Is a directory"


def test_permission_denied_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "locked.json", b"{}")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any mode: make the open fail the way it does for others
        real_open = os.open

        def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
            if Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", deny)
    [problem] = JsonFileInspector().inspect(path)
    assert problem.reason == "unreadable"
    assert problem.message == "cannot read the file: Permission denied"


def test_too_large_is_not_read(tmp_path: Path) -> None:
    path = write(tmp_path, "big.json", b"[" + b"1," * 100 + b"1]")
    [problem] = JsonFileInspector(max_bytes=100).inspect(path)
    assert problem.reason == "too_large"
    assert problem.message == "the file is 203 bytes, over the 100-byte limit, so it was not read"


def seed_result() -> dict[str, Any]:
    """A nightly run's result: 21 steps with sample rows, 321 lines at indent=2."""
    steps = [
        {
            "name": f"step-{i:02d}",
            "status": "completed",
            "rows": 1000 + 37 * i,
            "sample": [{"id": 10 * i + j, "value": round(0.25 * i + j, 2)} for j in range(2)],
        }
        for i in range(21)
    ]
    return {"run_id": "nightly-2024-06-01", "status": "completed", "steps": steps}


@pytest.mark.parametrize(("keep", "column"), [(10, 11), (17, 18), (19, 20)])
def test_seed_incident_cut_in_line_315(tmp_path: Path, keep: int, column: int) -> None:
    lines = json.dumps(seed_result(), indent=2).split("\n")
    assert len(lines) == 321
    assert lines[314] == '          "id": 201,'
    kept = "\n".join([*lines[:314], lines[314][:keep]]).encode()
    path = write(tmp_path, "result.json", kept)
    [problem] = JsonFileInspector().inspect(path)
    assert where(problem) == ("truncated", 315, column, len(kept))
    assert len(kept) == 5085 + keep
    assert problem.message == (
        f"truncated at line 315 column {column} (byte {len(kept)}): the text ends inside an object"
    )


RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["run_id", "operations"],
    "properties": {
        "run_id": {"type": "string"},
        "day": {"type": "string", "format": "date"},
        "n": {"type": "integer", "maximum": 2**70},
        "operations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"status": {"enum": ["completed", "failed"]}},
            },
        },
        "a/b~c": {"type": "integer"},
    },
}


def operations(*statuses: str) -> list[dict[str, str]]:
    return [{"status": status} for status in statuses]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            {"run_id": "r1", "n": 2**70, "operations": operations("completed", "failed")},
            [],
            id="pass",
        ),
        pytest.param(
            {"run_id": "r1", "operations": operations("completed", "failed", "failed", "done")},
            [
                (
                    "/operations/3/status",
                    "/operations/3/status: 'done' is not one of ['completed', 'failed']",
                )
            ],
            id="enum",
        ),
        pytest.param(
            {"operations": []},
            [("", "(root): 'run_id' is a required property")],
            id="root",
        ),
        pytest.param(
            {"run_id": "r1", "operations": [], "a/b~c": "x"},
            [("/a~1b~0c", "/a~1b~0c: 'x' is not of type 'integer'")],
            id="pointer-escaping",
        ),
        pytest.param(
            {"run_id": "r1", "operations": [], "day": "2024-13-01"},
            [("/day", "/day: '2024-13-01' is not a 'date'")],
            id="format",
        ),
        pytest.param(
            {"run_id": "r1", "operations": [], "n": 2**70 + 1},
            [("/n", f"/n: {2**70 + 1} is greater than the maximum of {2**70}")],
            id="big-int-exact",
        ),
    ],
)
def test_schema(tmp_path: Path, document: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    path = write(tmp_path, "r.json", json.dumps(document).encode())
    problems = JsonFileInspector(schema=RESULT_SCHEMA).inspect(path)
    assert [(p.reason, p.pointer, p.message, p.line) for p in problems] == [
        ("schema", pointer, message, None) for pointer, message in expected
    ]


LONG = b"7" * 5000
NUMBERS = {"type": "array", "items": {"type": "number"}}


@pytest.mark.parametrize(
    ("data", "schema", "expected"),
    [
        pytest.param(b"[" + LONG + b"]", NUMBERS, [], id="int-5000-digits"),
        pytest.param(
            b"[-" + b"7" * 100_000 + b"]",
            {"items": {"type": "integer", "maximum": 0}},
            [],
            id="int-100000-digits",
        ),
        pytest.param(
            b"[" + LONG + b"]",
            {"items": {"maximum": 2**70}},
            [("/0", f"/0: an integer of 5000 digits is greater than the maximum of {2**70}")],
            id="int-5000-digits-over-maximum",
        ),
        pytest.param(
            b"[-" + LONG + b"]",
            {"items": {"multipleOf": 3}},
            [("/0", "/0: a negative integer of 5000 digits is not a multiple of 3")],
            id="int-5000-digits-multiple-of",
        ),
        pytest.param(
            b"[" + LONG + b"]",
            {"items": {"multipleOf": 0.5}},
            [
                (
                    "",
                    "(root): the document cannot be validated: a number is too large (int too "
                    "large to convert to float)",
                )
            ],
            id="int-5000-digits-multiple-of-a-fraction",
        ),
        pytest.param(b"[1e999999, -1e999999, 1e-999999]", NUMBERS, [], id="exponent"),
        pytest.param(
            b"[1e999999]",
            {"items": {"maximum": 1e308}},
            [("/0", "/0: inf is greater than the maximum of 1e+308")],
            id="exponent-over-maximum",
        ),
        pytest.param(
            b"[1e999999]",
            {"items": {"multipleOf": 0.5}},
            [
                (
                    "",
                    "(root): the document cannot be validated: a number is too large (cannot "
                    "convert Infinity to integer ratio)",
                )
            ],
            id="exponent-multiple-of-a-fraction",
        ),
        pytest.param(
            b"[-0, -0.0]", {"items": {"type": "number", "maximum": 0}}, [], id="minus-zero"
        ),
        pytest.param(
            b'["\\ud800"]',
            {"items": {"maxLength": 0}},
            [("/0", "/0: '\\ud800' is expected to be empty")],
            id="lone-surrogate",
        ),
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000,
            {"type": "array"},
            [("", "(root): the document is nested too deeply to validate")],
            id="deep-100000",
        ),
    ],
)
def test_schema_on_numbers_and_text_python_holds_differently(
    tmp_path: Path, data: bytes, schema: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """Valid JSON Python's int() or float() cannot hold as written is still judged: a long
    integer exactly (named by its size in messages), 1e999999 as infinity; where the schema's
    arithmetic cannot take such a number, the document is the file's finding, not the check's
    error."""
    for name, text in (("r.json", data), ("r.jsonl", b"[]\n" + data + b"\n")):
        problems = JsonFileInspector(schema=schema).inspect(write(tmp_path, name, text))
        line = 2 if name.endswith(".jsonl") else None
        prefix = "line 2: " if line else ""
        assert [(p.reason, p.pointer, p.message, p.line) for p in problems] == [
            ("schema", pointer, prefix + message, line) for pointer, message in expected
        ]


def test_schema_long_integers_are_converted_up_to_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Converting long integers takes superlinear time: a document holding more digits in all
    than the budget is the file's finding; the next document has a budget of its own."""
    monkeypatch.setattr(json_files, "_MAX_LONG_DIGITS", 9_000)
    path = write(tmp_path, "r.jsonl", b"[" + LONG + b", " + LONG + b"]\n[" + LONG + b", -1]\n")
    problems = JsonFileInspector(schema={"items": {"minimum": 0}}).inspect(path)
    assert [(p.line, p.message) for p in problems] == [
        (
            1,
            "line 1: (root): the document cannot be validated: its integers have more than "
            "9,000 digits in all, too long to validate against the schema",
        ),
        (2, "line 2: /1: -1 is less than the minimum of 0"),
    ]


def test_schema_errors_capped_in_path_order(tmp_path: Path) -> None:
    document = {"run_id": 7, "operations": operations(*[f"s{i}" for i in range(12)])}
    path = write(tmp_path, "r.json", json.dumps(document).encode())
    problems = JsonFileInspector(schema=RESULT_SCHEMA, max_schema_errors=3).inspect(path)
    assert [p.pointer for p in problems] == [
        "/operations/0/status",
        "/operations/1/status",
        "/operations/2/status",
    ]
    assert problems[-1].message == (
        "/operations/2/status: 's2' is not one of ['completed', 'failed'] "
        "(and 10 more schema errors)"
    )


def test_schema_checks_each_json_lines_record(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    path = write(tmp_path, "r.jsonl", b'{"n": 1}\n{"n": "x"}\n\n{"n": 2.5}\n')
    problems = JsonFileInspector(schema=schema).inspect(path)
    assert [(p.line, p.pointer, p.message) for p in problems] == [
        (2, "/n", "line 2: /n: 'x' is not of type 'integer'"),
        (4, "/n", "line 4: /n: 2.5 is not of type 'integer'"),
    ]


def test_syntax_problems_come_before_schema(tmp_path: Path) -> None:
    path = write(tmp_path, "r.json", b'{"operations": [')
    [problem] = JsonFileInspector(schema=RESULT_SCHEMA).inspect(path)
    assert problem.reason == "truncated"


def test_load_schema(tmp_path: Path) -> None:
    path = write(tmp_path, "s.json", json.dumps(RESULT_SCHEMA).encode())
    assert load_schema(path) == RESULT_SCHEMA


def test_load_schema_with_a_long_integer(tmp_path: Path) -> None:
    """A bound of 5,000 digits is read exactly, and documents are judged against it."""
    schema = load_schema(write(tmp_path, "s.json", b'{"items": {"maximum": ' + LONG + b"}}"))
    assert schema["items"]["maximum"] == int(LONG.decode()[:4000]) * 10**1000 + int(LONG[4000:])
    inspector = JsonFileInspector(schema=schema)
    assert inspector.inspect(write(tmp_path, "ok.json", b"[" + LONG + b"]")) == []
    [problem] = inspector.inspect(write(tmp_path, "over.json", b"[1" + LONG + b"]"))
    assert problem.message == (
        "/0: an integer of 5001 digits is greater than the maximum of an integer of 5000 digits"
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"type": "object",', "is not valid JSON: truncated at line 1 column 19"),
        (
            b'{"type": 12}',
            "not a valid JSON Schema: 12 is not valid under any of the given schemas",
        ),
        (b"[]", "must hold a JSON object"),
        (
            b'{"items": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "s.json is nested too deeply to read",
        ),
    ],
)
def test_load_schema_rejects(tmp_path: Path, data: bytes, match: str) -> None:
    path = write(tmp_path, "s.json", data)
    with pytest.raises(ValueError, match=match):
        load_schema(path)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="max_schema_errors"):
        JsonFileInspector(max_schema_errors=0)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 2]), ascii_only=st.booleans())
def test_every_proper_prefix_is_truncated(
    work_dir: Path, value: Any, indent: int | None, ascii_only: bool
) -> None:
    data = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    assert JsonFileInspector().inspect(write(work_dir, "value.json", data)) == []
    for size in range(1, len(data)):
        prefix = data[:size]
        if strictly_valid(prefix) or not prefix.strip():
            continue
        problem = locate_error(prefix)
        assert problem is not None
        assert problem.reason == "truncated", (prefix, problem)


json_ish_bytes = st.lists(
    st.sampled_from(
        [
            *(b"{", b"}", b"[", b"]", b'"', b":", b",", b" ", b"\n", b"\t", b"\0", b"\\", b"u"),
            *(b"0", b"1", b"-", b".", b"e", b"+", b"true", b"nul", b"NaN", b"Infinity", b"a"),
            *(b"\xc3\xa9", b"\xc3", b"\xef\xbb\xbf", b"\xff", b"\x01", b"1e400", b"1" * 23),
        ]
    ),
    max_size=24,
).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64) | json_ish_bytes)
def test_good_exactly_when_strictly_valid(work_dir: Path, data: bytes) -> None:
    problems = JsonFileInspector().inspect(write(work_dir, "any.json", data))
    assert (problems == []) == strictly_valid(data)
    assert (locate_error(data) is None) == strictly_valid(data)
    assert all(p.reason in REASONS for p in problems)


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("json_files")


def prefix_of_a_document(value: Any) -> st.SearchStrategy[bytes]:
    data = json.dumps(value).encode()
    return st.integers(0, len(data)).map(lambda size: data[:size])


@settings(max_examples=300, deadline=None)
@given(
    data=json_ish_bytes | json_values.flatmap(prefix_of_a_document), depth=st.sampled_from([0, 3])
)
def test_deep_parser_fails_where_json_fails(data: bytes, depth: int) -> None:
    """A text nested past the recursion of Python's json parser is read by a stack of its own
    (``_deep_error``): on texts json can read, it finds json's error at json's position."""
    text = "[" * depth + data.decode("utf-8", errors="replace") + "]" * depth
    assert json_files._deep_error(text) == json_files._strict_error(text)


def _open_context_by_tokens(text: str, end: int) -> str:
    """The innermost open string, object or array, found token by token: the oracle for the
    whole-text way ``_open_context`` finds it."""
    import re

    stack: list[str] = []
    for match in re.finditer(r'"(?:[^"\\]|\\.)*("?)|[\[\]{}]', text[:end], re.DOTALL):
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
    return "a number" if text.lstrip()[:1] in tuple("-0123456789") else "a literal"


def test_open_context_of_every_prefix_matches_a_token_by_token_reading() -> None:
    from runner.sources.json_files import _open_context

    document = (
        '{"a": [1, {"b": "x]}\\"[{"}, [[], {}], "\\\\"], "c{": {"d": [true, null, "e\\\\\\""]},'
        ' "f": "\\u005b", "g": [[[{"h": -1.5e3}]]]}'
    )
    json.loads(document)  # the prefixes are of a valid document
    for end in range(1, len(document)):
        assert _open_context(document, end) == _open_context_by_tokens(document, end), end


_tricky_text = st.text(alphabet=st.sampled_from('"\\[]{}/aé😀\n'), max_size=8) | st.text(max_size=8)
_tricky_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_tricky_text, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_tricky_values, ascii_only=st.booleans(), data=st.data())
def test_open_context_of_any_prefix_matches_a_token_by_token_reading(
    value: Any, ascii_only: bool, data: st.DataObject
) -> None:
    """Strings full of quotes, backslashes, brackets and multi-byte characters, escaped or
    written as they are: the whole-text reading agrees with the token loop at every cut."""
    from runner.sources.json_files import _open_context

    document = json.dumps(value, ensure_ascii=ascii_only)
    end = data.draw(st.integers(1, len(document)))
    assert _open_context(document, end) == _open_context_by_tokens(document, end)
