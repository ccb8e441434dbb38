"""Sources: read-only connections, driver errors as categories, file tables over result files."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from runner import RunOptions, load_suite, run_suite
from runner.errors import SourceError
from runner.results import ErrorCategory
from runner.sources import database
from runner.sources.sql import categorize, jsonable, read_only_url
from tests.conftest import Database, RunYaml, check_verdict, only_check

SETUP = """
create table portfolios (id integer, name varchar(10));
insert into portfolios values (1, 'a'), (2, 'b'), (3, 'c');
"""


def one_check(db: Database, check: str, *, owner: bool = False) -> str:
    """A suite of one check on ``db``; ``owner``: on PostgreSQL as the tables' owner, who could
    write, so that only the read-only connection stands in the way."""
    source = f'url: "{db.url}"'
    if owner and db.kind == "postgresql":
        source = f'url: "{db.dsn}", allow_privileged_role: true'
    return textwrap.dedent(
        f"""\
        suite: sources
        sources:
          w: {{{source}}}
        checks:
          - {check}
        """
    )


def error_of(verdict: Any) -> tuple[str, str, bool, str]:
    result = only_check(verdict)
    error = result["error"]
    return result["status"], error["category"], error["retryable"], error["message"]


# --- read-only ------------------------------------------------------------------------------

REFUSED = "Source 'w' refused the query: "
READ_ONLY = {
    "duckdb": 'Invalid Input Error: Cannot execute statement of type "{kind}" on database "data"'
    " which is attached in read-only mode!",
    "sqlite": "attempt to write a readonly database",
    "postgresql": "cannot execute {command} in a read-only transaction",
}
PG_COMMANDS = {"DROP": "DROP TABLE"}
"""PostgreSQL names the command by its tag where DuckDB names the statement type."""


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("insert into portfolios values (9, 'z') returning 1", "INSERT"),
        ("delete from portfolios returning 1", "DELETE"),
        ("update portfolios set name = 'x' returning 1", "UPDATE"),
        ("drop table portfolios", "DROP"),
    ],
)
@pytest.mark.usefixtures("no_sqlguard")
def test_sources_database_is_read_only(
    db: Database, run_yaml: RunYaml, query: str, kind: str
) -> None:
    db.run(SETUP)
    verdict = run_yaml(one_check(db, f'{{type: sql, query: "{query}", min: 0}}', owner=True))
    expected = REFUSED + READ_ONLY[db.kind].format(kind=kind, command=PG_COMMANDS.get(kind, kind))
    assert error_of(verdict) == ("ERROR", "query", False, expected)
    after = run_yaml(one_check(db, "{type: sql, query: 'select id, name from portfolios'}"))
    assert only_check(after)["failures"] == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "b"},
        {"id": 3, "name": "c"},
    ]


@pytest.mark.parametrize(
    ("check", "messages"),
    [
        (
            "{type: sql, query: 'insert into portfolios values (9, null) returning *'}",
            {
                "duckdb": 'Parser Error: syntax error at or near "into"',
                "sqlite": 'near "insert": syntax error',
                "postgresql": 'syntax error at or near "into"',
            },
        ),
        (
            "{type: row_count, query: 'delete from portfolios returning id', min: 0}",
            {
                "duckdb": 'Parser Error: syntax error at or near "from"',
                "sqlite": 'near "delete": syntax error',
                "postgresql": 'syntax error at or near "from"',
            },
        ),
        (
            "{type: sql, query: 'select 1; drop table portfolios', equals: 1}",
            {
                "duckdb": READ_ONLY["duckdb"].format(kind="DROP"),
                "sqlite": "You can only execute one statement at a time.",
                "postgresql": "cannot insert multiple commands into a prepared statement",
            },
        ),
    ],
    ids=["violations-query", "relation-query", "two-statements"],
)
@pytest.mark.usefixtures("no_sqlguard")
def test_sources_writes_inside_checked_queries_are_refused(
    db: Database, run_yaml: RunYaml, check: str, messages: dict[str, str]
) -> None:
    db.run(SETUP)
    verdict = run_yaml(one_check(db, check, owner=True))
    assert error_of(verdict) == ("ERROR", "query", False, REFUSED + messages[db.kind])
    after = run_yaml(one_check(db, "{type: row_count, table: portfolios, equals: 3}"))
    assert only_check(after)["status"] == "PASS"


DUCKDB_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "preserve_insertion_order": True,
}
PG_ARGS = {"connect_timeout": 10, "prepare_threshold": 0}


@pytest.mark.parametrize(
    ("url", "opened"),
    [
        (
            "duckdb:////d/w.duckdb",
            ("duckdb", "/d/w.duckdb", {}, {"read_only": True, "config": DUCKDB_CONFIG}),
        ),
        ("duckdb:///:memory:", ("duckdb", ":memory:", {}, {"config": DUCKDB_CONFIG})),
        (  # the URL cannot open the file writable, nor loosen the sandbox
            "duckdb:////d/w.duckdb?access_mode=read_write&threads=2"
            "&enable_external_access=true&autoinstall_known_extensions=true",
            (
                "duckdb",
                "/d/w.duckdb",
                {"threads": "2"},
                {"read_only": True, "config": DUCKDB_CONFIG},
            ),
        ),
        (
            "sqlite:////d/w.sqlite",
            ("sqlite", "file:/d/w.sqlite", {"mode": "ro", "uri": "true"}, {}),
        ),
        ("sqlite://", ("sqlite", None, {}, {})),
        (  # a file: URI keeps its own parameters but not its mode
            "sqlite:///file:/d/w.sqlite?mode=rwc&cache=shared&uri=true",
            ("sqlite", "file:/d/w.sqlite", {"mode": "ro", "cache": "shared", "uri": "true"}, {}),
        ),
        (
            "postgresql://u:p@h/db",
            (
                "postgresql",
                "db",
                {},
                {"options": "-c default_transaction_read_only=on", **PG_ARGS},
            ),
        ),
        (  # the URL's own options come first: postrun's setting, last, wins
            "postgresql://u:p@h/db?options=-c%20default_transaction_read_only%3Doff&sslmode=require",
            (
                "postgresql",
                "db",
                {"sslmode": "require"},
                {
                    "options": "-c default_transaction_read_only=off "
                    "-c default_transaction_read_only=on",
                    **PG_ARGS,
                },
            ),
        ),
    ],
)
def test_sources_read_only_url(url: str, opened: tuple[Any, ...]) -> None:
    parsed, connect_args = read_only_url(url)
    assert (parsed.drivername, parsed.database, dict(parsed.query), connect_args) == opened


# --- errors become categories ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "messages"),
    [
        (
            "{type: row_count, table: nope, min: 1}",
            {
                "duckdb": "Catalog Error: Table with name nope does not exist!",
                "sqlite": "no such table: nope",
                "postgresql": 'relation "nope" does not exist',
            },
        ),
        (
            "{type: not_null, table: portfolios, columns: [nope]}",
            {
                "duckdb": 'Binder Error: Referenced column "nope" not found in FROM clause!',
                "sqlite": "no such column: nope",
                "postgresql": 'column "nope" does not exist',
            },
        ),
        (
            "{type: row_count, table: portfolios, where: 'nope = 1', min: 1}",
            {
                "duckdb": 'Binder Error: Referenced column "nope" not found in FROM clause!',
                "sqlite": "no such column: nope",
                "postgresql": 'column "nope" does not exist',
            },
        ),
        (
            "{type: row_count, table: other.portfolios, min: 1}",
            {
                "duckdb": 'Catalog Error: Table with name "other.portfolios" does not exist'
                ' because schema "other" does not exist.',
                "sqlite": "no such table: other.portfolios",
                "postgresql": 'relation "other.portfolios" does not exist',
            },
        ),
    ],
    ids=["missing-table", "missing-column", "missing-column-in-where", "missing-schema"],
)
def test_sources_missing_objects_are_schema_mismatch(
    db: Database, run_yaml: RunYaml, check: str, messages: dict[str, str]
) -> None:
    db.run(SETUP)
    verdict = run_yaml(one_check(db, check))
    assert error_of(verdict) == ("ERROR", "schema_mismatch", False, REFUSED + messages[db.kind])


def test_sources_syntax_error_is_query(db: Database, run_yaml: RunYaml) -> None:
    db.run(SETUP)
    verdict = run_yaml(one_check(db, "{type: sql, query: 'selec 1', min: 0}"))
    messages = {
        "duckdb": 'Parser Error: syntax error at or near "selec"',
        "sqlite": 'near "selec": syntax error',
        "postgresql": 'syntax error at or near "selec"',
    }
    assert error_of(verdict) == ("ERROR", "query", False, REFUSED + messages[db.kind])


def test_sources_schema_qualified_table(db: Database, run_yaml: RunYaml) -> None:
    db.run(SETUP)
    schema = {"duckdb": "main", "sqlite": "main", "postgresql": "public"}[db.kind]
    verdict = run_yaml(one_check(db, f"{{type: row_count, table: {schema}.portfolios, equals: 3}}"))
    assert only_check(verdict)["message"] == f"{schema}.portfolios has 3 rows where 3 expected"


def test_sources_duckdb_keywords_are_names_like_any_other(
    duck: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """Columns named like DuckDB's keywords that are not plain names everywhere: `at` (only a
    type or function may be called so), `position` (only a column), `order` (reserved)."""
    duck.run(
        'create table events ("at" timestamp, "position" integer, "order" integer);'
        "insert into events values ('2025-11-06 01:00:00', 1, null), (null, 2, 3);"
    )
    check = (
        '{type: not_null, table: events, columns: ["at", "position", "order"], key: ["position"]}'
    )
    result = only_check(run_yaml(one_check(duck, check)))
    assert result["status"] == "FAIL", result["error"]
    assert result["observed"]["nulls"] == {"at": 1, "position": 0, "order": 1}
    assert [f["key"] for f in result["failures"]] == [{"position": 1}, {"position": 2}]


def test_sources_duckdb_keywords_listed_by_the_package_are_those_the_database_reports() -> None:
    """The keyword list DuckDB's package carries (read without creating a database) holds
    exactly the words ``duckdb_keywords()`` of the version in use reports as not plain names."""
    from runner.sources import duckdb_dialect

    keywords = duckdb_dialect._reserved_words()
    assert {"at", "position", "order", "select"} <= keywords
    assert keywords == duckdb_dialect._keywords_of_a_database()


def test_sources_bad_value_is_data_malformed(duck: Database, run_yaml: RunYaml) -> None:
    duck.run(SETUP)
    verdict = run_yaml(one_check(duck, "{type: sql, query: \"select cast('x' as int)\", min: 0}"))
    assert error_of(verdict) == (
        "ERROR",
        "data_malformed",
        False,
        REFUSED + "Conversion Error: Could not convert string 'x' to INT32",
    )


class FakeDriverError(Exception):
    def __init__(self, sqlstate: str | None, text: str = "") -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "text", "connecting", "category", "retryable"),
    [
        ("28P01", "password authentication failed", True, "auth", False),
        ("08006", "connection failure", True, "connectivity", True),
        ("57P03", "the database system is starting up", True, "connectivity", True),
        ("53300", "too many connections", False, "connectivity", True),
        ("57014", "canceling statement due to statement timeout", False, "timeout", True),
        ("42P01", 'relation "nope" does not exist', False, "schema_mismatch", False),
        ("42703", 'column "nope" does not exist', False, "schema_mismatch", False),
        ("3F000", 'schema "x" does not exist', False, "schema_mismatch", False),
        ("42601", "syntax error", False, "query", False),
        ("25006", "cannot execute INSERT in a read-only transaction", False, "query", False),
        ("22P02", "invalid input syntax for type integer", False, "data_malformed", False),
        (None, "permission denied for table t", False, "auth", False),
        (None, "no such table: t", False, "schema_mismatch", False),
        (None, "something odd", False, "query", False),
        (None, "something odd", True, "connectivity", True),
    ],
)
def test_sources_driver_errors_map_to_categories(
    sqlstate: str | None, text: str, connecting: bool, category: str, retryable: bool
) -> None:
    error = FakeDriverError(sqlstate, text)
    assert categorize(error, text.lower(), connecting=connecting) == (
        ErrorCategory(category),
        retryable,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (Decimal("12.00"), 12),
        (Decimal("12.5"), 12.5),
        (date(2025, 11, 6), "2025-11-06"),
        (datetime(2025, 11, 6, 10, 15), "2025-11-06T10:15:00"),
        (time(10, 15), "10:15:00"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (b"\x01\xff", "01ff"),
        ((1, Decimal("2")), [1, 2]),
        ({"a": date(2025, 1, 2)}, {"a": "2025-01-02"}),
    ],
)
def test_sources_values_become_json(value: Any, expected: Any) -> None:
    assert jsonable(value) == expected


# --- Arrow reads: rows for dataframe libraries, with the database's types ---------------------

ARROW_TYPES = {
    "duckdb": ["int32", "decimal128(10, 2)", "date32[day]", "string", "int32"],
    "sqlite": ["int64", "double", "string", "string", "null"],  # SQLite: dates are text
    "postgresql": ["int64", "decimal128(3, 2)", "date32[day]", "string", "null"],
}


def test_sources_stream_yields_batches_of_the_size_asked(db: Database) -> None:
    """A check that streams rows holds one batch at a time, as large as it asked for: DuckDB's
    results ignore yield_per and gave one row per batch. The rows are the database's own,
    under their column names, duplicate names keeping the last column, as ``execute`` gives."""
    db.run("create table t (i integer, d date);")
    db.run("insert into t values " + ", ".join(f"({i}, '2025-11-0{i % 9 + 1}')" for i in range(10)))
    source = database("w", db.url)
    stmt = sa.text("select i, d, i * 2 as d from t order by i")
    try:
        batches = list(source.stream(stmt, {}, batch=3))
        rows = source.execute(stmt, {})
    finally:
        source.close()
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [row for b in batches for row in b] == rows == [{"i": i, "d": i * 2} for i in range(10)]


def test_sources_arrow_keeps_the_database_types(db: Database) -> None:
    db.run(
        """
        create table t (id integer, amount decimal(10, 2), day date, name text, gone integer);
        insert into t values (1, 1.50, '2025-11-06', 'a', null), (2, 2.25, '2025-11-07', 'b',
            null), (3, 3.00, '2025-11-08', null, null);
        """
    )
    source = database("w", db.url)
    stmt = sa.text("select * from t where id in :ids and name is not null order by id")
    stmt = stmt.bindparams(sa.bindparam("ids", expanding=True))
    try:
        table = source.arrow(stmt, {"ids": [1, 2, 3]})
        empty = source.arrow(sa.text("select * from t where id < :n"), {"n": 0})
    finally:
        source.close()
    assert [str(f.type) for f in table.schema] == ARROW_TYPES[db.kind]
    day = date(2025, 11, 6) if db.kind != "sqlite" else "2025-11-06"
    amount = 1.5 if db.kind == "sqlite" else Decimal("1.50")
    assert table.to_pylist()[0] == {
        "id": 1,
        "amount": amount,
        "day": day,
        "name": "a",
        "gone": None,
    }
    assert (table.num_rows, empty.num_rows, empty.column_names) == (2, 0, table.column_names)


def test_sources_arrow_reads_values_pyarrow_cannot_type_as_text(tmp_path: Path) -> None:
    """SQLite lets one column hold an integer and a text: the column comes back as text."""
    sqlite = Database("sqlite", tmp_path / "mixed.sqlite")
    sqlite.run("create table t (v); insert into t values (1), ('x'), (null);")
    source = database("w", sqlite.url)
    try:
        table = source.arrow(sa.text("select v from t"), {})
    finally:
        source.close()
    assert (str(table.schema.field("v").type), table.column("v").to_pylist()) == (
        "string",
        ["1", "x", None],
    )


def test_sources_arrow_errors_are_translated(db: Database) -> None:
    db.run("create table present (x integer);")
    source = database("w", db.url)
    try:
        with pytest.raises(SourceError) as raised:
            source.arrow(sa.text("select * from missing_table"), {})
    finally:
        source.close()
    assert raised.value.category is ErrorCategory.SCHEMA_MISMATCH
    assert raised.value.message.startswith("Source 'w' refused the query: ")


# --- file sources: result files as SQL tables -----------------------------------------------


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"batch_{n}.json").write_text(
            f'{{"batch_id": "B{n}", "status": "completed", "files": {n}}}'
        )
    (folder / "batch_3.json").write_text('{"batch_id": "B3", "sta')
    return folder


FILE_SUITE = """\
suite: files
sources:
  results:
    tables:
      batches: "results/batch_*.json"
      lost: "results/lost_*.json"
checks:
"""


def test_sources_file_table_with_a_skipped_file_never_passes(
    results: Path, run_yaml: RunYaml
) -> None:
    """A check on a table behind which a file was skipped may FAIL on what it saw, but it
    never PASSes: it is ERROR / data_malformed, naming the file, its findings kept."""
    (results / "run_1.json").write_text('{"run_id": "R1"}')
    verdict = run_yaml(
        FILE_SUITE.replace("      lost:", '      runs: "results/run_*.json"\n      lost:')
        + """\
          - {type: row_count, name: count, table: batches, equals: 2}
          - {type: sql, name: many, query: "select batch_id from batches where files > 1"}
          - {type: row_count, name: runs, table: runs, equals: 1}
        """
    )
    note = (
        "1 of 3 files behind table 'batches' skipped as unreadable:"
        f" {results}/batch_3.json (truncated)"
    )
    count, many, runs = check_verdict(verdict)["checks"]
    message = (
        f"{note}: check 'count' cannot pass on data it did not see (on the readable files: "
        "batches has 2 rows where 2 expected); fix the files, or set 'unreadable: skip' on the "
        "source to judge the readable files alone"
    )
    assert (count["status"], count["message"], count["notes"]) == ("ERROR", message, [note])
    assert (count["error"]["category"], count["error"]["retryable"]) == ("data_malformed", False)
    assert (count["observed"], count["expected"]) == ({"count": 2}, {"equals": 2})
    assert (many["status"], many["message"], many["notes"]) == (
        "FAIL",
        "query returned 1 violating row; first: batch_id=B2",
        [note],
    )
    assert (runs["status"], runs["notes"]) == ("PASS", [])  # another table: nothing skipped
    assert verdict.exit_code == 3


def test_sources_file_table_unreadable_skip_judges_the_readable_files(
    results: Path, run_yaml: RunYaml
) -> None:
    verdict = run_yaml(
        FILE_SUITE.replace("  results:\n", "  results:\n    unreadable: skip\n")
        + "  - {type: row_count, name: count, table: batches, equals: 2}\n"
    )
    note = (
        "1 of 3 files behind table 'batches' skipped as unreadable:"
        f" {results}/batch_3.json (truncated)"
    )
    assert [(c.name, c.status, c.message, c.notes) for c in verdict.checks] == [
        ("count", "PASS", "batches has 2 rows where 2 expected", [note]),
    ]


def test_sources_ndjson_batch_cut_mid_record_is_not_a_pass(
    tmp_path: Path, run_yaml: RunYaml
) -> None:
    """The outside tester's case: batch B-0415's file is cut mid-record, so B-0415 seems to have
    no children ('queued' is then right) and status_consistency would pass on what is left; its
    one readable child FAILED, which 'queued' contradicts."""
    folder = tmp_path / "ingest"
    folder.mkdir()
    (folder / "batches.ndjson").write_text(
        '{"batch_id": "B-0414", "status": "completed"}\n'
        '{"batch_id": "B-0415", "status": "queued"}\n'
    )
    (folder / "files_0414.ndjson").write_text(
        '{"batch_id": "B-0414", "file": "a", "status": "SUCCESS"}\n'
    )
    (folder / "files_0415.ndjson").write_text(
        '{"batch_id": "B-0415", "file": "b", "status": "FAILED"}\n{"batch_id": "B-04'
    )
    suite = """\
        suite: ingest
        sources:
          ingest:
            tables:
              batches: "ingest/batches.ndjson"
              files: "ingest/files_*.ndjson"
        checks:
          - type: status_consistency
            parent: {table: batches, id: batch_id, status: status}
            children: {table: files, parent_id: batch_id, status: status}
            success: [SUCCESS]
            failure: [FAILED]
            expect:
              all_succeeded: [completed]
              some_failed: [completed_with_errors]
              all_failed: [failed]
              no_children: [queued]
        """
    result = only_check(run_yaml(suite))
    assert (result["status"], result["error"]["category"]) == ("ERROR", "data_malformed")
    assert f"{folder}/files_0415.ndjson (truncated)" in result["message"]
    skipped = only_check(
        run_yaml(
            suite.replace(
                "ingest:\n            tables",
                "ingest:\n            unreadable: skip\n            tables",
            )
        )
    )
    assert skipped["status"] == "PASS"  # what the source asked for: the readable files alone


def test_sources_file_table_reads_valid_json_duckdb_reads_and_skips_what_it_refuses(
    tmp_path: Path, run_yaml: RunYaml
) -> None:
    """A 5,000- or 100,000-digit integer or 1e999999 is valid JSON DuckDB reads (as a DOUBLE
    infinity): the file is read. Valid JSON DuckDB refuses (a lone surrogate escape, nesting
    past its 128 levels) is skipped with DuckDB's reason, like a truncated file: never the
    table's error."""
    folder = tmp_path / "results"
    folder.mkdir()
    files = {
        "batch_1": b'{"batch_id": "B1", "files": ' + b"7" * 5000 + b"}",
        "batch_2": b'{"batch_id": "B2", "files": -' + b"7" * 100_000 + b"}",
        "batch_3": b'{"batch_id": "B3", "files": 1e999999}',
        "batch_4": b'{"batch_id": "B4\\ud800", "files": 1}',
        "batch_5": b'{"batch_id": "B5", "files": ' + b"[" * 200 + b"]" * 200 + b"}",
        "batch_6": b'{"batch_id": "B6", "fil',
    }
    for name, data in files.items():
        (folder / f"{name}.json").write_bytes(data)
    verdict = run_yaml(
        FILE_SUITE.replace("  results:\n", "  results:\n    unreadable: skip\n")
        + """\
          - {type: row_count, name: count, table: batches, equals: 3}
          - {type: sql, name: infinite, query: "select batch_id from batches where files < 1e308"}
        """
    )
    skipped = [
        f'{folder}/batch_4.json (Invalid Input Error: Malformed JSON in file "{folder}/batch_4.json",'
        " at byte 23 in record/value 2: no low surrogate in string. )",
        f"{folder}/batch_5.json (Invalid Input Error: JSON exceeds maximum recursion depth of 128)",
        f"{folder}/batch_6.json (truncated)",
    ]
    note = f"3 of 6 files behind table 'batches' skipped as unreadable: {'; '.join(skipped)}"
    assert [(c.name, c.status, c.message, c.notes) for c in verdict.checks] == [
        ("count", "PASS", "batches has 3 rows where 3 expected", [note]),
        ("infinite", "FAIL", "query returned 1 violating row; first: batch_id=B2", [note]),
    ]


def test_sources_file_table_without_files_is_data_malformed(
    results: Path, run_yaml: RunYaml
) -> None:
    verdict = run_yaml(FILE_SUITE + "  - {type: row_count, table: lost, min: 1}\n")
    assert error_of(verdict) == (
        "ERROR",
        "data_malformed",
        False,
        f"Table 'lost' of source 'results' has no readable files ({results}/lost_*.json)",
    )


def test_sources_file_source_without_tables_cannot_be_queried(
    results: Path, run_yaml: RunYaml
) -> None:
    verdict = run_yaml(
        """\
        suite: files
        sources:
          results: {files: "results/*.json"}
        checks:
          - {type: row_count, table: batches, min: 1}
        """
    )
    assert error_of(verdict) == (
        "ERROR",
        "config",
        False,
        "Source 'results' has no tables; add 'tables:' to query its files",
    )


def test_sources_file_table_is_read_once_per_run(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.sources import files

    inspected: list[str] = []
    real = files._unreadable_reason

    def spy(path: str, fmt: str, probe: Any) -> str | None:
        inspected.append(Path(path).name)
        return real(path, fmt, probe)

    monkeypatch.setattr(files, "_unreadable_reason", spy)
    path = tmp_path / "suite.yml"
    path.write_text(
        FILE_SUITE.replace("  results:\n", "  results:\n    unreadable: skip\n")
        + "  - {type: row_count, table: batches, min: 1}\n"
        + "  - {type: row_count, table: batches, max: 5}\n"
        + "  - {type: not_null, table: batches, columns: [status]}\n"
    )
    verdict = run_suite(load_suite(path, env={}), RunOptions(jobs=3))
    check_verdict(verdict)
    assert [c.status for c in verdict.checks] == ["PASS", "PASS", "PASS"]
    assert sorted(inspected) == ["batch_1.json", "batch_2.json", "batch_3.json"]


# --- PostgreSQL (marker `postgres`: the server ci/test.sh starts) ------------------------------


@pytest.mark.postgres
@pytest.mark.usefixtures("no_sqlguard")
def test_sources_postgres_is_read_only(pg: Database, run_yaml: RunYaml) -> None:
    pg.run(SETUP)
    verdict = run_yaml(
        one_check(
            pg, "{type: sql, query: 'delete from portfolios returning 1', min: 0}", owner=True
        )
    )
    assert error_of(verdict) == (
        "ERROR",
        "query",
        False,
        REFUSED + "cannot execute DELETE in a read-only transaction",
    )
    after = run_yaml(one_check(pg, "{type: row_count, table: portfolios, equals: 3}"))
    assert only_check(after)["status"] == "PASS"


@pytest.mark.postgres
def test_sources_postgres_missing_table_is_schema_mismatch(pg: Database, run_yaml: RunYaml) -> None:
    pg.run(SETUP)
    verdict = run_yaml(one_check(pg, "{type: row_count, table: nope, min: 1}"))
    assert error_of(verdict) == (
        "ERROR",
        "schema_mismatch",
        False,
        REFUSED + 'relation "nope" does not exist',
    )


@pytest.mark.postgres
def test_sources_postgres_wrong_password_is_auth(pg: Database, run_yaml: RunYaml) -> None:
    user_and_password = pg.dsn.split("://", 1)[1].split("@", 1)[0]
    user, password = user_and_password.split(":", 1)
    bad = Database("postgresql", pg.path, dsn=pg.dsn.replace(password, "Wrong-Password-1"))
    verdict = run_yaml(one_check(bad, "{type: row_count, table: portfolios, min: 1}"))
    data = only_check(verdict)
    assert (data["status"], data["error"]["category"], data["error"]["retryable"]) == (
        "ERROR",
        "auth",
        False,
    )
    assert "Wrong-Password-1" not in str(data)
    assert f"(postgresql://***@{make_url(pg.dsn).host}:" in data["message"]  # the whole userinfo
    assert f'for user "{user}"' in data["message"]


GLOBS = [
    "*",
    "*.json",
    ".*",
    "d*/*.json",
    "d*/run_?.json",
    "d*/[ab]*.json",
    "**/*.json",
    "**/.*",
    "**",
    "d1/**",
    "d1/run_1.json",
    "d1/missing.json",
    "d1",
    "d1/",
    "nowhere/*.json",
    "d1//run_*.json",
    "./d1/*.json",
    "d1/../d2/*.json",
    "run_1.json/*",
    "*/*",
    "*/**/*.json",
    "d[12]/*",
    "l*/*.json",
]


@pytest.mark.parametrize("pattern", GLOBS)
def test_sources_expand_lists_what_glob_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    """File globs list the regular files (or links to one) that ``glob`` matches, as the same
    strings, relative or absolute: hidden names only for a pattern that starts with a dot,
    folders, broken links and FIFOs left out."""
    import glob
    import os

    from runner.sources.files import expand

    for folder in ("d1", "d2", "d1/deep", ".hidden", "d1/folder.json"):
        (tmp_path / folder).mkdir(parents=True)
    for name in (
        "run_1.json",
        ".dot.json",
        "d1/run_1.json",
        "d1/run_2.json",
        "d1/a.json",
        "d1/b.json",
        "d1/.hidden.json",
        "d1/deep/run_3.json",
        "d2/run_4.json",
        "d2/notes.txt",
        ".hidden/run_5.json",
    ):
        (tmp_path / name).write_text("{}")
    (tmp_path / "d1/link.json").symlink_to(tmp_path / "d2/run_4.json")
    (tmp_path / "d1/broken.json").symlink_to(tmp_path / "nothing.json")
    (tmp_path / "linked").symlink_to(tmp_path / "d2")
    os.mkfifo(tmp_path / "d2/fifo.json")
    monkeypatch.chdir(tmp_path)

    for where in ("", f"{tmp_path}/"):
        full = where + pattern
        expected = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
        assert expand([full]) == expected, full
    both = [pattern, "d*/*.json"]
    expected = sorted({p for g in both for p in glob.glob(g, recursive=True) if os.path.isfile(p)})
    assert expand(both) == expected
