"""Hostile input: any YAML, mutated suites and SQL-looking param values never get past the gate.

Suite files either load or fail with a ``SuiteError`` whose every issue names the file and (when
the YAML parsed) a line; nothing else may escape. Param values reach SQL only as bound values.
"""

from __future__ import annotations

import copy
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from runner import run_suite
from runner.checks import registry
from runner.errors import SuiteError
from runner.suite import parse_suite
from tests.conftest import Database, check_verdict

ROOT = Path(__file__).resolve().parents[1]
DEMO_SUITE = ROOT / "checks" / "demo.yml"
EXAMPLES = int(os.environ.get("POSTRUN_FUZZ_EXAMPLES", "100"))
"""Examples per property; raise it for a longer hunt (POSTRUN_FUZZ_EXAMPLES=5000)."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

# --- suite files -------------------------------------------------------------------------------

DEMO = yaml.safe_load(DEMO_SUITE.read_text())
KEYS = sorted(
    {
        *DEMO,
        *(key for check in DEMO["checks"] for key in check),
        *(
            info.alias or name
            for kind in registry().values()
            for name, info in kind.spec.model_fields.items()
        ),
    }
)
"""Key names a suite may hold: mutations and generated documents draw from these."""
TYPES = sorted(registry())
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from([*TYPES, "warehouse", "5m", "error", "warn", "select 1", ":run_date"])
    | st.dates()
)
keys = st.sampled_from(KEYS) | st.text(max_size=8) | st.integers() | st.booleans()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
checks = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)}, optional={"name": scalars}
).flatmap(
    lambda head: st.dictionaries(st.sampled_from(KEYS), values, max_size=5).map(
        lambda rest: rest | head
    )
)
suite_like = st.fixed_dictionaries(
    {},
    optional={
        "suite": scalars,
        "checks": st.lists(checks, max_size=3) | values,
        "params": values,
        "sources": st.dictionaries(st.text(max_size=6), values, max_size=3) | values,
        "description": values,
    },
)


def parse_or_issues(path: Path) -> list[Any] | None:
    """None when the suite parsed; the issues of its ``SuiteError`` otherwise (nothing else)."""
    try:
        parse_suite(path)
    except SuiteError as exc:
        assert exc.issues, "a SuiteError with no issue"
        return exc.issues
    return None


def assert_located(path: Path, issues: list[Any] | None, *, need_line: bool) -> None:
    for issue in issues or []:
        assert issue.path == str(path), issue
        assert issue.reason.strip(), issue
        if need_line:
            assert isinstance(issue.line, int) and issue.line >= 1, issue


def yaml_content(text: str) -> bool:
    """Whether the text is one YAML document with content (then every issue has a line)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return YAML(typ="rt", pure=True).compose(text) is not None
    except Exception:  # RecursionError included: a document nested too deeply did not parse
        return False


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "suite.yml"


@FUZZ
@given(document=values | suite_like)
def test_fuzz_any_yaml_document_loads_or_fails_with_file_and_line(
    scratch: Path, document: Any
) -> None:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    scratch.write_text(text, encoding="utf-8")
    assert_located(scratch, parse_or_issues(scratch), need_line=yaml_content(text))


@FUZZ
@given(text=st.text(max_size=200) | st.builds("".join, st.lists(st.sampled_from(
    ["suite: x\n", "checks:\n", "  - ", "type: sql\n", "{", "}", "[", "]", "&a ", "*a", "<<: ",
     "!!binary ", "!x ", ": ", "? ", "- ", "\t", "\x00", "'", '"', "#", "---\n", "...\n", "\n"]
), max_size=30)))  # fmt: skip
def test_fuzz_any_text_loads_or_fails_with_file_and_line(scratch: Path, text: str) -> None:
    scratch.write_text(text, encoding="utf-8")
    assert_located(scratch, parse_or_issues(scratch), need_line=yaml_content(text))


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every location in ``data``: (path, value), containers included."""
    yield path, data
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        yield from _leaves(value, (*path, key))


@st.composite
def mutated_suites(draw: st.DrawFn) -> dict[str, Any]:
    """The shipped demo suite with 1-3 keys deleted, renamed or given a value of another type."""
    suite = copy.deepcopy(DEMO)
    for _ in range(draw(st.integers(1, 3))):
        locations = [path for path, _ in _leaves(suite) if path]
        path = draw(st.sampled_from(locations))
        parent = suite
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = draw(st.sampled_from(["delete", "rename", "retype"]))
        if action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from(KEYS) | st.text(max_size=8) | st.just(f"{key}s"))
            parent[new] = parent.pop(key)
        else:
            parent[key] = draw(values)
    return suite


def test_fuzz_base_suite_is_valid() -> None:
    """The mutations start from a valid suite, so every error below comes from a mutation."""
    assert parse_or_issues(DEMO_SUITE) is None


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(suite=mutated_suites())
def test_fuzz_mutated_suite_loads_or_fails_with_file_and_line(
    scratch: Path, suite: dict[str, Any]
) -> None:
    scratch.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    assert_located(scratch, parse_or_issues(scratch), need_line=True)


ENDLESS = ["99999999999999999999s", "1e300", ".inf"]


@pytest.mark.parametrize("timeout", ENDLESS)
def test_fuzz_endless_timeout_is_a_suite_error(tmp_path: Path, timeout: str) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(f"suite: s\nchecks:\n  - {{type: sql, query: select 1, timeout: {timeout}}}\n")
    issues = parse_or_issues(path)
    assert [(i.line, "too long a duration" in i.reason) for i in issues or []] == [(3, True)]


# Documents that once crashed the loader, hung it or hid the line: (text, line, reason).
HOSTILE = {
    "alias-cycle": ("&a [*a]\n", 1, "invalid YAML: an alias refers to a node that contains it"),
    "alias-cycle-in-suite": (
        "&s {suite: s, checks: [*s]}\n",
        1,
        "invalid YAML: an alias refers to a node that contains it",
    ),
    "billion-laughs": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        1,
        "invalid YAML: the document expands to more than 100000 values (aliases?)",
    ),
    "nested-too-deep": (
        "suite: s\nchecks: " + "[" * 600 + "]" * 600 + "\n",
        None,
        "invalid YAML: the document is nested too deeply",
    ),
    "control-character": (
        "suite: s\nchecks:\n  - {type: sql, query: \x07}\n",
        3,
        "invalid YAML: character #x0007 is not allowed in YAML",
    ),
    "nul-byte": ("suite: s\x00\n", 1, "invalid YAML: character #x0000 is not allowed in YAML"),
    "not-utf8": (
        b"suite: s\nchecks: [\xff]\n",
        2,
        "cannot read suite file: 'utf-8' codec can't decode byte 0xff in position 18:"
        " invalid start byte",
    ),
    "merge-key": (
        "base: &b {type: sql}\nsuite: s\nchecks:\n  - {<<: *b, query: select 1}\n",
        1,
        "unknown key 'base'",
    ),
    "ordered-map": ("suite: s\nchecks: !!omap [a: 1]\n", 2, "checks: Input should be a valid list"),
    "bare-scalar": (
        "# a comment\n\nhello\n",
        3,
        "a suite file is a mapping with 'suite' and 'checks'",
    ),
    "null-document": ("null\n", 1, "a suite file is a mapping with 'suite' and 'checks'"),
    "block-mapping-in-key": (
        "suite: s\nchecks:\n  ?   - a: 1\n",
        3,
        "invalid YAML: a list or mapping used as a key",
    ),
    "flow-mapping-as-key": (
        "suite: s\nchecks:\n  - {type: sql}\n? {a: 1}\n: x\n",
        4,
        "invalid YAML: a list or mapping used as a key",
    ),
    "flow-list-as-key": ("[a, b]: x\n", 1, "invalid YAML: a list or mapping used as a key"),
    "reused-anchor": (
        "suite: &a s\nchecks: &a [1]\n",
        2,
        "checks.0: Input should be a valid dictionary",
    ),
}


@pytest.mark.parametrize(("text", "line", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_fuzz_hostile_yaml_is_a_located_suite_error(
    tmp_path: Path, text: str | bytes, line: int | None, reason: str
) -> None:
    path = tmp_path / "suite.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    issues = parse_or_issues(path)
    assert issues is not None
    assert (issues[0].path, issues[0].line, issues[0].reason) == (str(path), line, reason)


def test_fuzz_nesting_is_limited_whatever_the_recursion_limit(tmp_path: Path) -> None:
    """A library that raises the interpreter's recursion limit (PySpark's pandas API does) must
    not let a suite nested 600 deep through: the limit is postrun's own."""
    path = tmp_path / "suite.yml"
    path.write_text(str(HOSTILE["nested-too-deep"][0]))
    code = (
        "import sys; sys.setrecursionlimit(100_000)\n"
        "from runner.errors import SuiteError\n"
        "from runner.suite import parse_suite\n"
        f"try: parse_suite({str(path)!r})\n"
        "except SuiteError as exc: print(exc.issues[0].reason)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "invalid YAML: the document is nested too deeply", done.stderr


def test_fuzz_merge_key_suite_is_valid_with_lines(tmp_path: Path) -> None:
    """A YAML merge key (`<<: *base`) is plain YAML: the suite loads, merged keys keep a line."""
    path = tmp_path / "suite.yml"
    path.write_text(
        textwrap.dedent(
            """\
            suite: s
            sources: {w: {url: "duckdb:///x.duckdb"}}
            checks:
              - &base {type: row_count, table: a, min: 0, timeout: 45s}
              - <<: *base
                table: t
                max: -1
              - <<: *base
                table: u
                colour: red
            """
        )
    )
    issues = parse_or_issues(path)
    assert [(i.line, i.reason) for i in issues or []] == [
        (7, "check #2 (row_count): max: Input should be greater than or equal to 0"),
        (10, "check #3 (row_count): unknown key 'colour'"),
    ]
    path.write_text(path.read_text().replace("max: -1", "max: 9").replace("colour: red", ""))
    assert [(c.name, c.timeout.total_seconds()) for c in parse_suite(path).checks] == [
        ("row_count:a", 45.0),
        ("row_count:t", 45.0),
        ("row_count:u", 45.0),
    ]


CLI_CASES = {
    "alias-cycle": HOSTILE["alias-cycle-in-suite"][0],
    "billion-laughs": HOSTILE["billion-laughs"][0],
    "nested-too-deep": HOSTILE["nested-too-deep"][0],
    "wrong-types": "suite: [1]\nchecks: {type: 5}\nsources: 7\n",
    "valid": "suite: s\nsources: {w: {url: 'duckdb:///x.duckdb'}}\nchecks: [{type: sql, query: select 1}]\n",
    "endless-timeout": "suite: s\nchecks: [{type: sql, query: select 1, timeout: .inf}]\n",
}


@pytest.mark.parametrize("text", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_fuzz_cli_validate_exits_0_or_2_without_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "suite.yml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert result.stdout.startswith(f"{path}: valid suite"), result.stdout
    else:
        assert result.returncode == 2, (result.returncode, result.stderr)
        lines = result.stderr.removeprefix("postrun: ").splitlines()
        assert lines and all(re.match(rf"{re.escape(str(path))}(:\d+)?: \S", x) for x in lines), (
            lines
        )


# --- param values stay bound parameters ------------------------------------------------------

HOSTILE_VALUES = [
    "'; drop table t; --",
    "x' or '1'='1",
    "1 or 1=1",
    "1; select 1",
    "$$; drop table t; $$",
    "$tag$ drop $tag$",
    "back\\slash\\' \\",
    '"double" `tick` [brackets]',
    "percent %s %(v0)s %% ?",
    ":v0 :other ::text",
    "{v0} ${HOME}",
    "/* comment */ -- dash",
    "line\nbreak\ttab\r",
    "ünïcødé ≠ 💥 \u202e",
    "",
    " ",
]


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def test_fuzz_hostile_param_values_stay_bound(db: Database, tmp_path: Path) -> None:
    """Each value matches exactly its own row (id = index) and the table survives untouched."""
    rows = ", ".join(f"({i}, {_quoted(v)})" for i, v in enumerate(HOSTILE_VALUES))
    db.run(
        f"""
        create table t (id integer, name varchar(100));
        insert into t values {rows}, (100, 'x'), (101, 'decoy''');
        """
    )
    names = [f"v{i}" for i in range(len(HOSTILE_VALUES))]
    params = "\n".join(f"  {n}: {{type: string}}" for n in names)
    checks = "\n".join(
        f'  - {{type: sql, name: {n}, query: "select id from t where name = :{n}"}}' for n in names
    )
    path = tmp_path / "suite.yml"
    path.write_text(
        f"suite: hostile\nparams:\n{params}\nsources:\n  w: {{url: '{db.url}'}}\nchecks:\n"
        f"{checks}\n  - {{type: row_count, name: intact, table: t, equals: {len(names) + 2}}}\n"
    )
    verdict = run_suite(
        parse_suite(path).bind(dict(zip(names, HOSTILE_VALUES, strict=True)), env={})
    )
    check_verdict(verdict)
    got = [(c.name, c.status.value, c.failures) for c in verdict.checks]
    assert got == [
        *((n, "FAIL", [{"id": i}]) for i, n in enumerate(names)),
        ("intact", "PASS", []),
    ]
    assert verdict.params == dict(zip(names, HOSTILE_VALUES, strict=True))


@pytest.fixture(scope="module")
def sqlite_suite() -> Iterator[tuple[Any, Path]]:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data.sqlite"
        with sqlite3.connect(data) as con:
            con.execute("create table t (id integer, name text)")
        con.close()
        path = Path(folder) / "suite.yml"
        path.write_text(
            textwrap.dedent(
                f"""\
                suite: bound
                params: {{v: {{type: string}}}}
                sources: {{w: {{url: "sqlite:///{data}"}}}}
                checks:
                  - {{type: sql, name: match, query: "select id from t where name = :v"}}
                  - {{type: row_count, name: intact, table: t, equals: 3}}
                """
            )
        )
        yield parse_suite(path), data


@settings(max_examples=60, deadline=None, database=None)
@given(value=st.text(max_size=40))
def test_fuzz_any_param_text_matches_only_its_own_row(
    sqlite_suite: tuple[Any, Path], value: str
) -> None:
    parsed, data = sqlite_suite
    with sqlite3.connect(data) as con:
        con.execute("delete from t")
        con.executemany(
            "insert into t values (?, ?)", [(1, value), (2, value + "x"), (3, "x" + value)]
        )
    con.close()
    verdict = run_suite(parsed.bind({"v": value}, env={}))
    assert [(c.status.value, c.failures) for c in verdict.checks] == [
        ("FAIL", [{"id": 1}]),
        ("PASS", []),
    ]
