"""expectation_suite: GX suites compiled to SQL agree with GX itself, expectation by expectation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from runner.errors import CheckConfigError, SourceError
from runner.gx import compile as gx
from runner.gx import fallback as gx_fallback
from runner.results import ErrorCategory
from tests.conftest import Database, RunYaml, only_check

SETUP = """
    create table t (id integer, a integer, b varchar(10), c float, d integer, g varchar(10));
    insert into t values
        (1, 1, 'x', 1.5, 1, 'p'),
        (2, 2, 'y', 2.5, 2, 'p'),
        (3, 2, 'z', null, 3, 'q'),
        (4, null, 'x', 4.0, null, 'q'),
        (5, 7, null, 5.5, 7, 'p'),
        (6, 9, 'ab', 6.0, 8, 'q'),
        (7, null, null, null, null, null),
        (8, 3, 'x', 0.5, 3, 'p');
    create table other (id integer);
    insert into other values (1), (2), (3);
"""

GT_A = {"type": "comparison", "column": {"name": "a"}, "operator": ">", "parameter": 1}
IS_P = {"type": "comparison", "column": {"name": "g"}, "operator": "==", "parameter": "p"}
EITHER = {
    "type": "or",
    "conditions": [GT_A, {"type": "nullity", "column": {"name": "b"}, "is_null": True}],
}
BOTH = {
    "type": "and",
    "conditions": [IS_P, {"type": "nullity", "column": {"name": "a"}, "is_null": False}],
}


def e(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


# Every compiled expectation, passing and failing, with and without mostly and row_condition.
CORPUS = [
    e("expect_table_row_count_to_equal", value=8),
    e(
        "expect_table_row_count_to_equal",
        value=3,
        row_condition=IS_P,
        condition_parser="great_expectations",
    ),
    e("expect_table_row_count_to_be_between", min_value=1, max_value=8),
    e("expect_table_row_count_to_be_between", min_value=1, max_value=8, strict_max=True),
    e("expect_table_row_count_to_equal_other_table", other_table_name="other"),
    e("expect_column_to_exist", column="a"),
    e("expect_column_to_exist", column="nope"),
    e("expect_column_values_to_not_be_null", column="id"),
    e("expect_column_values_to_not_be_null", column="a"),
    e("expect_column_values_to_not_be_null", column="a", mostly=0.7),
    e(
        "expect_column_values_to_not_be_null",
        column="a",
        row_condition=IS_P,
        condition_parser="great_expectations",
    ),
    e("expect_column_values_to_be_null", column="b"),
    e(
        "expect_column_values_to_be_null",
        column="c",
        row_condition='col("g").notNull()',
        condition_parser="great_expectations",
    ),
    e("expect_column_values_to_be_in_set", column="b", value_set=["x", "y", "z"]),
    e("expect_column_values_to_be_in_set", column="b", value_set=["x", "y", "z"], mostly=0.8),
    e("expect_column_values_to_be_in_set", column="b", value_set=["x", "y", "z"], mostly=0.9),
    e(
        "expect_column_values_to_be_in_set",
        column="a",
        value_set=[1, 2, 3],
        row_condition=EITHER,
        condition_parser="great_expectations",
    ),
    e("expect_column_values_to_not_be_in_set", column="b", value_set=["ab"]),
    e("expect_column_values_to_not_be_in_set", column="b", value_set=["q"]),
    e("expect_column_values_to_be_between", column="a", min_value=1, max_value=9),
    e("expect_column_values_to_be_between", column="a", min_value=1, max_value=9, strict_min=True),
    e("expect_column_values_to_be_between", column="c", min_value=1, mostly=0.8),
    e(
        "expect_column_values_to_be_between",
        column="a",
        max_value=2,
        row_condition=BOTH,
        condition_parser="great_expectations",
    ),
    e("expect_column_values_to_be_unique", column="id"),
    e("expect_column_values_to_be_unique", column="a"),
    e("expect_column_values_to_be_unique", column="b", mostly=0.5),
    e(
        "expect_column_values_to_be_unique",
        column="a",
        row_condition='col("g") == "q"',
        condition_parser="great_expectations",
    ),
    e("expect_column_min_to_be_between", column="a", min_value=1, max_value=1),
    e("expect_column_min_to_be_between", column="a", min_value=1, strict_min=True),
    e("expect_column_max_to_be_between", column="c", max_value=6.0),
    e(
        "expect_column_max_to_be_between",
        column="a",
        max_value=5,
        row_condition=IS_P,
        condition_parser="great_expectations",
    ),
    e("expect_column_mean_to_be_between", column="a", min_value=4, max_value=4),
    e("expect_column_mean_to_be_between", column="d", min_value=3, max_value=5),
    e("expect_column_sum_to_be_between", column="a", min_value=24, max_value=24),
    e("expect_column_sum_to_be_between", column="a", min_value=25),
    e("expect_column_distinct_values_to_be_in_set", column="g", value_set=["p", "q"]),
    e("expect_column_distinct_values_to_be_in_set", column="b", value_set=["x", "y"]),
    e("expect_compound_columns_to_be_unique", column_list=["b", "g"]),
    e("expect_compound_columns_to_be_unique", column_list=["id", "g"]),
    e("expect_compound_columns_to_be_unique", column_list=["b", "g"], mostly=0.5),
    e("expect_column_pair_values_to_be_equal", column_A="a", column_B="d"),
    e("expect_column_pair_values_to_be_equal", column_A="a", column_B="d", mostly=0.5),
    e(
        "expect_column_pair_values_to_be_equal",
        column_A="a",
        column_B="d",
        ignore_row_if="either_value_is_missing",
    ),
    e(
        "expect_column_pair_values_to_be_equal",
        column_A="a",
        column_B="d",
        row_condition=IS_P,
        condition_parser="great_expectations",
    ),
]
REGEX = [
    e("expect_column_values_to_match_regex", column="b", regex="^[xyz]$"),
    e("expect_column_values_to_match_regex", column="b", regex="[a-z]", mostly=0.5),
]
COMPARED = ("element_count", "unexpected_count", "unexpected_percent", "observed_value")


def write_suite(path: Path, expectations: list[dict[str, Any]], name: str = "corpus") -> Path:
    path.write_text(json.dumps({"name": name, "expectations": expectations, "meta": {}}))
    return path


def run_check(run_yaml: RunYaml, db: Database, suite: Path, extra: str = "") -> dict[str, Any]:
    return only_check(
        run_yaml(
            f"""\
            suite: gx
            sources:
              w: {{url: "{db.url}"}}
            checks:
              - {{type: expectation_suite, table: t, suite: "{suite}"{extra}}}
            """
        )
    )


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    picked = {k: result.get(k) for k in COMPARED if result.get(k) is not None}
    for key in ("observed_value", "unexpected_percent"):
        if isinstance(value := picked.get(key), float):
            picked[key] = round(value, 9)
    return picked


@pytest.fixture
def data(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    database: Database = request.getfixturevalue(request.param)
    database.run(SETUP)
    return database


def gx_results(url: str, expectations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parsed = [gx.Expectation(i, x["type"], x["kwargs"]) for i, x in enumerate(expectations)]
    out = gx_fallback.validate_sql(url, "t", parsed, 20)
    return [out[i] for i in range(len(parsed))]


@pytest.fixture
def sqlite(tmp_path: Path) -> Database:
    return Database("sqlite", tmp_path / "data.sqlite")


@pytest.mark.parametrize(
    "data", ["sqlite", pytest.param("pg", marks=pytest.mark.postgres)], indirect=True
)
def test_expectation_suite_compiled_agrees_with_gx(
    data: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    corpus = CORPUS + (REGEX if data.kind == "postgresql" else [])
    check = run_check(run_yaml, data, write_suite(tmp_path / "s.gx.json", corpus))
    ours = check["observed"]["results"]
    assert {r["engine"] for r in ours} == {"postrun"}
    theirs = gx_results(data.url, corpus)
    for x, mine, their in zip(corpus, ours, theirs, strict=True):
        assert (mine["success"], comparable(mine)) == (
            their["success"],
            comparable(their["result"]),
        ), x


def test_expectation_suite_compiled_on_duckdb_matches_sqlite(
    duck: Database, sqlite: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    duck.run(SETUP)
    sqlite.run(SETUP)
    suite = write_suite(tmp_path / "s.gx.json", CORPUS)
    on_duck = run_check(run_yaml, duck, suite)["observed"]["results"]
    on_sqlite = run_check(run_yaml, sqlite, suite)["observed"]["results"]
    assert [comparable(r) | {"ok": r["success"]} for r in on_duck] == [
        comparable(r) | {"ok": r["success"]} for r in on_sqlite
    ]


def test_expectation_suite_compiled_on_spark_matches_duckdb(
    duck: Database, spark_db: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """GX cannot read Spark through SQLAlchemy, so the compiled corpus on Spark (regex as RLIKE)
    is held to the compiled corpus on DuckDB, which the test above holds to GX."""
    duck.run(SETUP)
    spark_db.run(SETUP)
    suite = write_suite(tmp_path / "s.gx.json", CORPUS + REGEX)
    on_duck = run_check(run_yaml, duck, suite)["observed"]["results"]
    on_spark = run_check(run_yaml, spark_db, suite)["observed"]["results"]
    assert {r["engine"] for r in on_spark} == {"postrun"}
    assert [comparable(r) | {"ok": r["success"]} for r in on_spark] == [
        comparable(r) | {"ok": r["success"]} for r in on_duck
    ]


def test_expectation_suite_fails_with_gx_result_and_sample(
    sqlite: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    sqlite.run(SETUP)
    suite = write_suite(
        tmp_path / "s.gx.json",
        [e("expect_column_values_to_be_in_set", column="b", value_set=["x", "y", "z"])],
    )
    check = run_check(run_yaml, sqlite, suite)
    assert check["status"] == "FAIL"
    assert check["message"] == (
        "t: 1 of 1 expectations of 'corpus' failed (expect_column_values_to_be_in_set(b))"
    )
    assert check["failures"][0]["result"] == {
        "element_count": 8,
        "unexpected_count": 1,
        "unexpected_percent": 1 / 6 * 100,
        "partial_unexpected_list": ["ab"],
    }


def test_expectation_suite_warning_severity_only_notes(
    sqlite: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    sqlite.run(SETUP)
    failing = e("expect_column_values_to_not_be_null", column="a") | {
        "meta": {"severity": "warning"}
    }
    check = run_check(run_yaml, sqlite, write_suite(tmp_path / "s.gx.json", [failing]))
    assert (check["status"], len(check["failures"])) == ("PASS", 1)
    assert "severity warning/info only" in " ".join(check["notes"])


def test_expectation_suite_falls_back_to_gx(
    duck: Database, sqlite: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """Unknown expectations run through GX: SQL on SQLite (regex too: SQLite has none), a
    DataFrame on DuckDB, whose SQLAlchemy results GX reads after closing the connection."""
    lengths = e("expect_column_value_lengths_to_be_between", column="b", min_value=1, max_value=1)
    regex = REGEX[0]
    suite = write_suite(tmp_path / "s.gx.json", [lengths, regex])
    sqlite.run(SETUP)
    on_sqlite = run_check(run_yaml, sqlite, suite)["observed"]["results"]
    assert [(r["engine"], r["success"], r["unexpected_count"]) for r in on_sqlite] == [
        ("great_expectations", False, 1),
        ("great_expectations", False, 1),
    ]
    duck.run(SETUP)
    on_duck = run_check(run_yaml, duck, write_suite(tmp_path / "l.gx.json", [lengths]))
    assert [(r["engine"], r["unexpected_count"]) for r in on_duck["observed"]["results"]] == [
        ("great_expectations", 1)
    ]
    too_big = run_check(run_yaml, duck, suite, ", max_rows: 3")
    assert (too_big["status"], too_big["error"]["category"]) == ("ERROR", "config")
    assert "t has more than max_rows 3 rows" in too_big["error"]["message"]


def test_expectation_suite_gx_runs_quietly(
    sqlite: Database, run_yaml: RunYaml, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """GX draws progress bars on stderr unless told not to; a gate's output stays its own."""
    sqlite.run(SETUP)
    lengths = e("expect_column_value_lengths_to_be_between", column="b", min_value=1, max_value=1)
    capfd.readouterr()
    run_check(run_yaml, sqlite, write_suite(tmp_path / "s.gx.json", [lengths]))
    assert capfd.readouterr() == ("", "")


GX_LOG_PROBE = """\
import logging, sys
logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(name)s %(message)s")
from runner import load_suite, run_suite
verdict = run_suite(load_suite(sys.argv[1], env={}))
print(verdict.checks[0].status.value, verdict.checks[0].observed["great_expectations"])
"""


def test_expectation_suite_gx_logs_nothing_at_info(sqlite: Database, tmp_path: Path) -> None:
    """GX logs at INFO as it imports and builds its context; an application (or pytest, which
    files the lines under whichever test runs) that logs at INFO sees none of it. A fresh
    process: GX is imported once per process."""
    import subprocess
    import sys

    sqlite.run(SETUP)
    lengths = e("expect_column_value_lengths_to_be_between", column="b", min_value=1, max_value=1)
    gx_suite = write_suite(tmp_path / "s.gx.json", [lengths])
    (tmp_path / "suite.yml").write_text(
        f"suite: quiet\nsources: {{d: {{url: '{sqlite.url}'}}}}\nchecks:\n"
        f"  - {{type: expectation_suite, table: t, suite: {gx_suite}}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", GX_LOG_PROBE, str(tmp_path / "suite.yml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout.split()[1:]) == (0, ["1"]), done.stderr  # GX ran it
    assert [line for line in done.stderr.splitlines() if "great_expectations" in line] == []


LENGTHS = e("expect_column_value_lengths_to_be_between", column="b", min_value=1, max_value=1)
OF_TYPE = e("expect_column_values_to_be_of_type", column="id", type_="INTEGER")


@pytest.mark.parametrize(
    "data", ["sqlite", pytest.param("pg", marks=pytest.mark.postgres)], indirect=True
)
def test_expectation_suite_gx_on_a_where_or_query_relation(
    data: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """GX judges the rows of the relation, not the whole table: a `where` or `query` becomes a
    GX query asset. A query asset has no column types, so a type expectation on `table` +
    `where` is judged on the table, and on a `query` is a config error saying so."""
    both = write_suite(tmp_path / "s.gx.json", [LENGTHS, OF_TYPE])
    where = run_check(run_yaml, data, both, ", where: \"g = 'q'\"")
    assert [
        (r["engine"], r["success"], r.get("element_count"), r.get("unexpected_count"))
        for r in where["observed"]["results"]
    ] == [("great_expectations", False, 3, 1), ("great_expectations", True, None, None)]
    lengths = write_suite(tmp_path / "l.gx.json", [LENGTHS])
    verdict = run_yaml(
        f"""\
        suite: gx
        sources:
          w: {{url: "{data.url}"}}
        checks:
          - {{name: lengths, type: expectation_suite, query: "select b from t where g = 'p'",
              suite: "{lengths}"}}
          - {{name: types, type: expectation_suite, query: "select b from t", suite: "{both}"}}
        """
    )
    on_query, typed = (c.model_dump(mode="json") for c in verdict.checks)
    assert (on_query["status"], on_query["observed"]["results"][0]["element_count"]) == (
        "PASS",
        4,
    )
    assert (typed["status"], typed["error"]["category"], typed["error"]["message"]) == (
        "ERROR",
        "config",
        "expect_column_values_to_be_of_type(id) needs column types, which GX reads from a table,"
        " not from a query: write the check against 'table' (with 'where')",
    )


PARAMS_SETUP = """
    create table p (id integer, name varchar(40), n integer, x float, flag boolean, day date,
        dir varchar(40));
    insert into p values
        (1, 'O''Brien', 5, 1.5, true, '2026-02-06', '/data/in'),
        (2, 'x'' or ''1''=''1', -5, -0.25, false, '2026-02-05', '/data/out'),
        (3, '50%', 7, 2.5, true, '2026-02-06', '/data/in'),
        (4, 'a :b', 0, 0.0, false, '2026-01-31', null),
        (5, 'why?', 12, 3.0, null, null, '/data/in'),
        (6, 'back\\slash', 5, 1e300, true, '2026-02-07', '/data/x'),
        (7, 'plain', null, null, false, '2026-02-06', '/data/in');
"""

# (param type, value given on the command line or None for none, relation, ids it holds)
PARAM_CASES = [
    ("string", "O'Brien", "table: p, where: 'name = :v'", [1]),
    ("string", "x' or '1'='1", "table: p, where: 'name = :v'", [2]),
    ("string", "50%", "table: p, where: 'name = :v'", [3]),
    ("string", "O%", "table: p, where: 'name like :v'", [1]),
    ("string", "a :b", "table: p, where: 'name = :v'", [4]),
    ("string", "why?", "table: p, where: 'name = :v'", [5]),
    ("string", "back\\slash", "table: p, where: 'name = :v'", [6]),
    ("string", None, "table: p, where: \"name = coalesce(:v, 'plain')\"", [7]),
    ("int", "-5", "table: p, where: 'n = :v'", [2]),
    ("int", "-5", "table: p, where: 'n -:v = 10'", [1, 6]),
    ("float", "-0.25", "table: p, where: 'x = :v'", [2]),
    ("float", "1.5", "table: p, where: 'x > :v'", [3, 5, 6]),
    ("float", "inf", "table: p, where: 'x < :v'", [1, 2, 3, 4, 5, 6]),
    ("bool", "true", "table: p, where: 'flag = :v'", [1, 3, 6]),
    ("bool", "false", "table: p, where: 'flag = :v'", [2, 4, 7]),
    ("date", "2026-02-06", "table: p, where: 'day = :v'", [1, 3, 7]),
    ("date", "2026-02-06", "table: p, where: 'day > :v'", [6]),
    ("date", "2026-02-06", "query: 'select id, name from p where day = :v'", [1, 3, 7]),
    ("path", "/data/in", "table: p, where: 'dir = :v'", [1, 3, 5, 7]),
    ("list", "O'Brien,plain", "table: p, where: 'name in :v'", [1, 7]),
    ("list", "5,7", "table: p, where: 'n in :v'", [1, 3, 6]),
    ("list", "x' or '1'='1,why?", "query: 'select id, name from p where name in :v'", [2, 5]),
]


@pytest.mark.parametrize(
    "params_db",
    ["sqlite", pytest.param("pg", marks=pytest.mark.postgres), "spark_db"],
    indirect=True,
)
@pytest.mark.parametrize(("kind", "value", "relation", "ids"), PARAM_CASES)
def test_expectation_suite_gx_judges_the_rows_bound_params_select(
    params_db: Database,
    run_yaml: RunYaml,
    tmp_path: Path,
    kind: str,
    value: str | None,
    relation: str,
    ids: list[int],
) -> None:
    """GX judges a `where` or `query` relation through SQL with the params written in: each as
    a literal of its own type, so GX sees exactly the rows postrun's compiled expectations see
    with the params bound (and a quote in a value is part of the value, never SQL). On Spark
    both read the relation through Spark SQL, where every param is such a literal."""
    suite = write_suite(
        tmp_path / "s.gx.json",
        [
            e("expect_table_row_count_to_equal", value=len(ids)),
            e("expect_column_distinct_values_to_be_in_set", column="id", value_set=ids),
            e("expect_column_distinct_values_to_equal_set", column="id", value_set=ids),
            e("expect_column_value_lengths_to_be_between", column="name", min_value=0),
        ],
    )
    check = only_check(
        run_yaml(
            f"""\
            suite: gx
            params:
              v: {{type: {kind}}}
            sources:
              w: {{url: "{params_db.url}"}}
            checks:
              - {{type: expectation_suite, {relation}, suite: "{suite}"}}
            """,
            {} if value is None else {"v": value},
        )
    )
    assert check["status"] == "PASS", (check["failures"], check["error"])
    assert [
        (r["engine"], r.get("observed_value", r.get("element_count")))
        for r in check["observed"]["results"]
    ] == [
        ("postrun", len(ids)),
        ("postrun", None),
        ("great_expectations", None),
        ("great_expectations", len(ids)),
    ]


@pytest.fixture
def params_db(request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue(request.param)
    database.run(PARAMS_SETUP)
    return database


LITERAL_STATEMENT: sa.Select[Any] = (
    sa.select(sa.literal_column("*"))
    .select_from(sa.table("p"))
    .where(
        sa.text(
            "(s = :s and d = :d and t = :t and i = :i and n -:neg = 0 and f = :f and b = :b"
            " and inf < :inf and nan = :nan and l in :l and z = :z and c = '12\\:30')"
        ).bindparams(sa.bindparam("l", expanding=True))
    )
)
LITERAL_PARAMS = {
    "s": "O'Brien 50% a:b :c why?\x00 \\",
    "d": date(2026, 2, 6),
    "t": datetime(2026, 2, 6, 1, 2, 3),
    "i": 7,
    "neg": -5,
    "f": 0.1,
    "b": True,
    "inf": float("-inf"),
    "nan": float("nan"),
    "l": ["x' or '1'='1", 3],
    "z": None,
}


@pytest.mark.parametrize(
    ("dialect", "where"),
    [
        (
            sqlite_dialect.dialect(),
            "(s = ('O''Brien 50% a:b \\\\:c why' || char(63) || char(0) || ' \\')"
            " and d = '2026-02-06'"
            " and t = '2026-02-06 01:02:03' and i = 7 and n -(-5) = 0 and f = 0.1 and b = 1"
            " and inf < (-9e999) and nan = NULL and l in ('x'' or ''1''=''1', 3) and z = NULL"
            " and c = '12:30')",
        ),
        (
            postgresql.psycopg.dialect(),
            "(s = E'O''Brien 50\\x25 a:b \\\\:c why?\x00 \\\\'"
            " and d = CAST('2026-02-06' AS DATE) and t = CAST('2026-02-06T01:02:03' AS TIMESTAMP)"
            " and i = 7 and n -(-5) = 0 and f = CAST(0.1 AS DOUBLE PRECISION) and b = true"
            " and inf < CAST('-Infinity' AS DOUBLE PRECISION)"
            " and nan = CAST('NaN' AS DOUBLE PRECISION)"
            " and l in (E'x'' or ''1''=''1', 3) and z = NULL and c = '12:30')",
        ),
    ],
    ids=["sqlite", "postgresql"],
)
def test_expectation_suite_gx_query_sql_writes_typed_literals(
    dialect: sa.Dialect, where: str
) -> None:
    """The exact SQL handed to GX: typed literals as the driver binds them, no % on
    PostgreSQL and no ? on SQLite (GX rewrites both), a negative number in parentheses, and a
    colon text() would take for a param escaped twice: GX reads the SQL as text() twice and
    gets back the SQL meant, with no param of its own."""
    sql = gx_fallback.query_sql(LITERAL_STATEMENT, LITERAL_PARAMS, dialect, "p")
    assert sql == f"SELECT * \nFROM p \nWHERE {where}"
    read_twice = str(sa.text(str(sa.text(sql).compile())).compile())
    assert read_twice == sql.replace(" \\\\:c ", " :c ")


def test_expectation_suite_gx_refuses_a_value_it_cannot_write() -> None:
    with pytest.raises(CheckConfigError) as raised:
        gx_fallback.query_sql(
            LITERAL_STATEMENT, LITERAL_PARAMS | {"l": [[1, 2]]}, sqlite_dialect.dialect(), "p"
        )
    assert str(raised.value) == (
        "param 'l' holds list [1, 2], which GX cannot be given in SQL: use a string, number,"
        " boolean, date or a list of them"
    )


@pytest.mark.postgres
def test_expectation_suite_gx_refuses_a_percent_sign_on_postgresql(
    pg: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """GX reads a query asset's SQL with every % doubled on PostgreSQL: `name = '50%'` would
    match no row and pass on nothing. Written as a param, the same value judges its row."""
    pg.run(PARAMS_SETUP)
    names = e("expect_column_value_lengths_to_be_between", column="name", min_value=0)
    lengths = write_suite(tmp_path / "l.gx.json", [names])
    verdict = run_yaml(
        f"""\
        suite: gx
        params:
          pct: {{type: string, default: "50%"}}
        sources:
          w: {{url: "{pg.url}"}}
        checks:
          - {{name: text, type: expectation_suite, table: p, where: "name = '50%'",
              suite: "{lengths}"}}
          - {{name: param, type: expectation_suite, table: p, where: "name = :pct",
              suite: "{lengths}"}}
        """
    )
    text, param = (c.model_dump(mode="json") for c in verdict.checks)
    assert (text["status"], text["error"]["category"], text["error"]["message"]) == (
        "ERROR",
        "config",
        "GX reads the SQL of p with every '%' doubled on postgresql, so it would judge other"
        " rows: pass the pattern or value as a :param, write the modulo as"
        " mod(), or keep to the expectations postrun compiles (postrun list)",
    )
    assert (param["status"], param["error"]) == ("PASS", None), param["error"]
    assert param["observed"]["results"][0]["element_count"] == 1


@pytest.mark.parametrize(
    ("problem", "kind", "category"),
    [
        ("canceling statement due to statement timeout", "SourceError", "timeout"),
        ('relation "t" does not exist', "SourceError", "schema_mismatch"),
        ("No provider found for column_values.increasing", "CheckConfigError", None),
    ],
)
def test_expectation_suite_gx_errors_keep_their_category(
    problem: str, kind: str, category: str | None
) -> None:
    error = gx_fallback.gx_error("GX could not evaluate x", problem)
    assert (type(error).__name__, getattr(error, "category", None)) == (
        kind,
        category and ErrorCategory(category),
    )


def test_expectation_suite_gx_unreachable_database_is_connectivity() -> None:
    lengths = gx.Expectation(0, "expect_column_value_lengths_to_be_between", {"column": "b"})
    with pytest.raises(SourceError) as raised:
        gx_fallback.validate_sql("postgresql://u:pw@127.0.0.1:1/db", "t", [lengths], 5)
    assert (raised.value.category, raised.value.retryable) == (ErrorCategory.CONNECTIVITY, True)
    assert raised.value.message.startswith("GX could not connect: ")


@pytest.mark.postgres
def test_expectation_suite_gx_connects_read_only(
    pg: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """GX opens a connection of its own for the expectations it judges: as read-only as
    postrun's (PostgreSQL's session default, here read back through GX itself)."""
    pg.run("create table t (x integer);")
    read_only = e("expect_column_distinct_values_to_equal_set", column="ro", value_set=["on"])
    suite = write_suite(tmp_path / "s.gx.json", [read_only])
    query = "select current_setting('default_transaction_read_only') as ro"
    check = only_check(
        run_yaml(
            f"""\
            suite: gx
            sources:
              w: {{url: "{pg.url}"}}
            checks:
              - {{type: expectation_suite, query: "{query}", suite: "{suite}"}}
            """
        )
    )
    (result,) = check["observed"]["results"]
    assert (check["status"], result["engine"]) == ("PASS", "great_expectations"), check["failures"]


def test_expectation_suite_date_row_condition_gx_on_pandas_matches_nothing(
    duck: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """GX on pandas compares a datetime column with the text of a `row_condition`
    ('col("day")=="2025-11-06"') and matches no row, so the expectation passes on nothing, a
    NULL on the run date notwithstanding. postrun applies the condition in SQL, where the text
    is read as a date, both when it compiles the expectation and when GX judges it on DuckDB."""
    import pyarrow as pa

    duck.run(
        """
        create table t (day date, v integer, b varchar);
        insert into t values ('2025-11-06', 1, 'x'), ('2025-11-06', null, 'yy'),
            ('2025-11-05', 3, 'z');
        """
    )
    on_day = {"row_condition": 'col("day")=="2025-11-06"', "condition_parser": "great_expectations"}
    not_null = e("expect_column_values_to_not_be_null", column="v", **on_day)
    lengths = e("expect_column_value_lengths_to_be_between", column="b", max_value=1, **on_day)
    frame = pa.table(
        {
            "day": pa.array([date(2025, 11, 6), date(2025, 11, 6), date(2025, 11, 5)]),
            "v": [1, None, 3],
            "b": ["x", "yy", "z"],
        }
    )
    by_gx = gx_fallback.validate_arrow(
        frame,
        [gx.Expectation(i, x["type"], x["kwargs"]) for i, x in enumerate([not_null, lengths])],
        5,
    )
    assert [(r["success"], r["result"]["element_count"]) for r in by_gx.values()] == [
        (True, 0),
        (True, 0),
    ]
    check = run_check(run_yaml, duck, write_suite(tmp_path / "s.gx.json", [not_null, lengths]))
    assert [
        (r["engine"], r["success"], r["element_count"], r["unexpected_count"])
        for r in check["observed"]["results"]
    ] == [("postrun", False, 2, 1), ("great_expectations", False, 2, 1)]


def test_expectation_suite_notes_a_row_condition_that_matches_nothing(
    sqlite: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    sqlite.run(SETUP)
    nowhere = {"row_condition": 'col("g")=="nope"', "condition_parser": "great_expectations"}
    suite = write_suite(
        tmp_path / "s.gx.json", [e("expect_column_values_to_not_be_null", column="a", **nowhere)]
    )
    check = run_check(run_yaml, sqlite, suite)
    assert (check["status"], check["notes"]) == (
        "PASS",
        [
            "expect_column_values_to_not_be_null(a): its row_condition matched none of the 8"
            " rows, so it judged nothing"
        ],
    )


def test_expectation_suite_compiled_only_never_imports_gx(duck: Database, tmp_path: Path) -> None:
    duck.run(SETUP)
    suite = write_suite(tmp_path / "s.gx.json", CORPUS)
    (tmp_path / "suite.yml").write_text(
        textwrap.dedent(
            f"""\
            suite: gx
            sources:
              w: {{url: "{duck.url}"}}
            checks:
              - {{type: expectation_suite, table: t, suite: "{suite}"}}
            """
        )
    )
    script = (
        "import sys; from runner import load_suite, run_suite; "
        f"v = run_suite(load_suite({str(tmp_path / 'suite.yml')!r}, env={{}})); "
        "print(v.checks[0].status, 'great_expectations' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["FAIL", "False", "False"]


def test_expectation_suite_missing_table_is_a_query_error_not_a_bug(
    anydb: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    anydb.run("create table other (a integer);")
    suite = write_suite(tmp_path / "s.json", [e("expect_column_to_exist", column="a")])
    result = run_check(run_yaml, anydb, suite)
    assert result["status"] == "ERROR"
    assert result["error"]["category"] in ("query", "schema_mismatch"), result["error"]
    assert result["queries"]  # the statement that failed is on record


@pytest.mark.parametrize("data", ["duck", "sqlite", "spark_db"], indirect=True)
def test_expectation_suite_explain_shows_what_a_run_sends(data: Database, tmp_path: Path) -> None:
    """`--explain` lists every statement a run sends: the shared scan, a duplicate count, a
    regex aggregate, the column list; and GX's rows on DuckDB and Spark, or on SQLite a line
    saying GX queries the database itself."""
    from runner import load_suite, run_suite
    from runner.checks import registry
    from runner.explain import explain

    suite = write_suite(
        tmp_path / "s.gx.json",
        [
            e("expect_column_values_to_be_unique", column="id"),
            e("expect_column_values_to_match_regex", column="b", regex="^[a-z]+$"),
            e("expect_column_to_exist", column="id"),
            e("expect_column_value_lengths_to_be_between", column="b", max_value=2),
        ],
    )
    path = tmp_path / "suite.yml"
    path.write_text(
        f'suite: gx\nsources:\n  w: {{url: "{data.url}"}}\nchecks:\n'
        f'  - {{name: gx, type: expectation_suite, table: t, suite: "{suite}"}}\n'
    )
    loaded = load_suite(path, env={})
    shown = explain(loaded, {"gx": True}, registry(), sample_limit=20)
    verdict = run_suite(loaded)
    assert verdict.checks[0].status.value == "PASS", verdict.checks[0].message
    sent = [q.sql for q in verdict.queries]
    for sql in sent:
        assert "\n".join(f"    {line.rstrip()}" for line in sql.splitlines()) in shown, sql
    gx_note = "-- GX's SQL datasource judges 2 expectation(s) with queries of its own"
    if data.kind in ("duckdb", "spark"):
        assert (len(sent), gx_note in shown) == (5, False)  # scan, dup, regex, columns, GX rows
    else:
        assert (len(sent), gx_note in shown) == (3, True)  # scan, dup, columns; GX: regex, lengths


# --- the shipped GX suite on the demo batch ---------------------------------------------------

SHIPPED = Path(__file__).parents[2] / "expectations" / "portfolio_snapshots.gx.json"


@pytest.mark.parametrize(("fault", "status"), [("none", "PASS"), ("null-pnl", "FAIL")])
def test_expectation_suite_shipped_suite_on_the_demo_batch(
    fault: str, status: str, tmp_path: Path, run_yaml: RunYaml
) -> None:
    from runner.demo import build_demo

    batch = build_demo(tmp_path / "demo", [fault])
    result = only_check(
        run_yaml(
            f"""\
            suite: gx-demo
            params:
              run_date: {{type: date, default: 2025-11-06}}
            sources:
              warehouse: {{url: "duckdb:///{batch.root / "portfolio.duckdb"}"}}
            checks:
              - type: expectation_suite
                table: portfolio_snapshots
                where: "snapshot_date = :run_date"
                suite: "{SHIPPED}"
            """
        )
    )
    assert result["status"] == status, result["message"]
    # every expectation of the shipped suite runs as SQL on DuckDB: GX is never needed
    assert (result["observed"]["compiled"], result["observed"]["great_expectations"]) == (7, 0)
    failed = [f["expectation"] for f in result["failures"]]
    if fault == "none":
        assert failed == []
    else:
        assert failed == [
            "expect_column_values_to_not_be_null(daily_pnl)",
            "expect_column_values_to_not_be_null(cumulative_pnl)",
        ]


def test_expectation_suite_gx_itself_cannot_judge_duckdb(
    duck: Database, run_yaml: RunYaml, tmp_path: Path
) -> None:
    """Why DuckDB never goes through GX's SQL datasource: GX 1.x fetches metric results after
    the connection is closed, DuckDB has discarded them, and every expectation comes back failed
    (an IndexError in GX's metrics; upstream GX issues #10738 and #11579). The compiled path
    judges the same data correctly. If this test starts failing, GX has fixed it."""
    import warnings

    duck.run("create table t as select range as a from range(10);")
    copy = tmp_path / "for_gx.duckdb"  # DuckDB allows one configuration per file and process
    shutil.copy(duck.path, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx_lib
        import great_expectations.expectations as gxe

        context = gx_lib.get_context(mode="ephemeral")
        source = context.data_sources.add_sql("duck", connection_string=f"duckdb:///{copy}")
        batch = (
            source.add_table_asset("t", table_name="t")
            .add_batch_definition_whole_table("all")
            .get_batch()
        )
        by_gx = batch.validate(gxe.ExpectTableRowCountToEqual(value=10))  # type: ignore[attr-defined]
    assert by_gx.success is False
    assert "IndexError" in str(by_gx.exception_info)
    suite = write_suite(tmp_path / "s.json", [e("expect_table_row_count_to_equal", value=10)])
    result = run_check(run_yaml, duck, suite)
    assert result["status"] == "PASS", result["error"]
