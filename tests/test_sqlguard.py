"""The read-only guard: user SQL that could write is refused at load; the database refuses the rest."""

from __future__ import annotations

import hashlib
import logging
import textwrap
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import load_suite
from runner.errors import SuiteError
from runner.sqlguard import _FUNCTIONS, read_only_problem
from tests.conftest import Database, RunYaml, only_check

ONE = "query holds 2 statements; give one"
WORDS = (  # noqa: SIM905 - a bag of SQL-ish words for the property test
    "select from where with as ( ) ; , insert delete update into values union 1 'x' \"y\" :p ::"
    " -- /* */ $$ t = and or copy to pragma set call create drop merge for nextval [ ] { } . * B''"
).split()

QUERIES = [
    # --- reads: allowed ------------------------------------------------------------------------
    ("select id, name from portfolios", None),
    ("SELECT * FROM analytics.portfolio_snapshots WHERE run_date = :run_date", None),
    ("select * from t where a = :p and b = :p::int and c in :ids", None),
    ("select a::int, cast(b as decimal(10, 2)) from t", None),
    ("select * from t where ts > now() - interval '2 hours'", None),
    ("with x as (select 1 as a) select a from x", None),
    (
        "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select n from r",
        None,
    ),
    ("select a, row_number() over (partition by b order by c) as rn from t", None),
    ("select count(*) filter (where a is null) from t", None),
    ("select coalesce(t.a, 0) from t left join u on t.id = u.id", None),
    ("select a from t union all select a from u", None),
    ("(select 1) except (select 2)", None),
    ("select name from t where name ilike 'port%'", None),
    ("select a from t where b ~ '^x'", None),
    ("select distinct on (a) a, b from t order by a, b", None),
    ("select * from generate_series(1, 3)", None),
    ("select payload::jsonb ->> 'status' from t", None),
    ("select unnest([1, 2, 3])", None),
    ("select b.id, op.status from jobs b cross join unnest(b.operations) as u(op)", None),
    ("select * from read_json_auto('results/*.json')", None),
    ("select * from read_csv('x.csv', header = true)", None),
    ("select * from 'results/batch.parquet'", None),
    ("from t select a", None),
    ("select * exclude (a) from t qualify row_number() over (order by b) = 1", None),
    ("select group_concat(a, ',') from t", None),
    ("values (1), (2)", None),
    ("select 1;", None),
    ("select 1 -- trailing comment", None),
    ('select "delete", update_at, "insert" from t', None),
    ("select current_setting('TimeZone')", None),
    # sqlglot reads no dialect's grammar here: the database judges (and refuses) it
    ("with x as (select 99) update or rollback t set a = 99 returning 1", None),
    ("select 'unterminated", None),
    ("", None),
    ("-- only a comment", None),
    # --- statements that are not a SELECT --------------------------------------------------
    ("1 + 2", "query must be a single SELECT; found an expression"),
    ("insert into t values (1)", "query must be a single SELECT; found INSERT"),
    ("delete from t returning 1", "query must be a single SELECT; found DELETE"),
    ("DeLeTe FrOm t", "query must be a single SELECT; found DELETE"),
    ("update t set a = 1 returning a", "query must be a single SELECT; found UPDATE"),
    (
        "with x as (select 1) insert into t select * from x",
        "query must be a single SELECT; found INSERT",
    ),
    (
        "merge into t using s on t.a = s.a when matched then delete",
        "query must be a single SELECT; found MERGE",
    ),
    ("drop table t", "query must be a single SELECT; found DROP"),
    ("create table x as select 1", "query must be a single SELECT; found CREATE"),
    ("alter table t add column b int", "query must be a single SELECT; found ALTER"),
    ("truncate table t", "query must be a single SELECT; found TRUNCATE"),
    ("copy t to 'out.csv'", "query must be a single SELECT; found COPY"),
    ("copy (select 1) to 'out.csv'", "query must be a single SELECT; found COPY"),
    ("export database 'out'", "query must be a single SELECT; found EXPORT"),
    ("attach 'other.db' as other", "query must be a single SELECT; found ATTACH"),
    ("detach other", "query must be a single SELECT; found DETACH"),
    ("pragma table_info('t')", "query must be a single SELECT; found PRAGMA"),
    ("set search_path = other", "query must be a single SELECT; found SET"),
    ("grant select on t to someone", "query must be a single SELECT; found GRANT"),
    ("revoke select on t from someone", "query must be a single SELECT; found REVOKE"),
    ("call some_procedure()", "query must be a single SELECT; found CALL"),
    ("install httpfs", "query must be a single SELECT; found INSTALL"),
    ("load httpfs", "query must be a single SELECT; found LOAD"),
    ("vacuum", "query must be a single SELECT; found VACUUM"),
    ("checkpoint", "query must be a single SELECT; found CHECKPOINT"),
    ("begin", "query must be a single SELECT; found BEGIN"),
    ("commit", "query must be a single SELECT; found COMMIT"),
    ("rollback", "query must be a single SELECT; found ROLLBACK"),
    ("explain analyze delete from t", "query must be a single SELECT; found EXPLAIN"),
    # --- more than one statement -----------------------------------------------------------
    ("select 1; delete from t", ONE),
    ("select 1; -- x\ndelete from t", ONE),
    ("select 1; /* hidden */ drop table t", ONE),
    ("select 1; commit; begin read write; delete from t", "query holds 4 statements; give one"),
    ("select 1; export database 'out'", ONE),
    # --- writes or escapes inside a SELECT --------------------------------------------------
    ("with d as (delete from t returning *) select * from d", "query must only read; found DELETE"),
    (
        "with i as (insert into t values (1) returning a) select a from i",
        "query must only read; found INSERT",
    ),
    (
        "select * into backup from t",
        "query must only read; found SELECT ... INTO, which creates a table",
    ),
    (
        "select * from t for update",
        "query must only read; found FOR UPDATE/SHARE, which locks rows",
    ),
    (
        "select pg_terminate_backend(42)",
        "query must only read; pg_terminate_backend() ends another session",
    ),
    (
        "select pg_catalog.pg_cancel_backend(pid) from pg_stat_activity",
        "query must only read; pg_cancel_backend() cancels another session's query",
    ),
    (
        "select lo_import('/etc/passwd')",
        "query must only read; lo_import() reads a server file into the database",
    ),
    (
        "select pg_read_file('postgresql.conf')",
        "query must only read; pg_read_file() reads files on the database server",
    ),
    (
        "select * from dblink('dbname=x', 'delete from t') as r(a int)",
        "query must only read; dblink() runs SQL over another connection, outside the read-only transaction",
    ),
    (
        "select dblink_exec('delete from t')",
        "query must only read; dblink_exec() runs SQL over another connection, outside the read-only transaction",
    ),
    (
        "select SET_CONFIG('default_transaction_read_only', 'off', false)",
        "query must only read; set_config() changes session settings",
    ),
    ("select nextval('s')", "query must only read; nextval() advances a sequence"),
    (
        "select a from t where a > (select setval('s', 1))",
        "query must only read; setval() changes a sequence",
    ),
    ("select * from checkpoint()", "query must only read; checkpoint() writes the database file"),
]

WHERES = [
    ("run_date = :run_date", None),
    ("status in ('completed', 'failed') and files > 0", None),
    ("name ilike 'x%' and b::int > 2 -- trailing comment", None),
    ("exists (select 1 from u where u.id = t.id)", None),
    ("a = 1 or b = 2", None),
    ("1=1; drop table t", "where must be a condition, found a second statement (DROP)"),
    (
        "1=1) ; delete from t; select (1",
        "where must be a condition, found a second statement (DELETE)",
    ),
    (
        "a = 1; export database 'out'",
        "where must be a condition, found a second statement (EXPORT)",
    ),
    ("1=1) union (select 2", "where must be a condition, found UNION"),
    ("a in (select nextval('s'))", "where must only read; nextval() advances a sequence"),
]


@pytest.mark.parametrize(("sql", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
def test_sqlguard_query(sql: str, expected: str | None) -> None:
    assert read_only_problem(sql, fragment="query") == expected


@pytest.mark.parametrize(("sql", "expected"), WHERES, ids=[w for w, _ in WHERES])
def test_sqlguard_where(sql: str, expected: str | None) -> None:
    assert read_only_problem(sql, fragment="where") == expected


@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
def test_sqlguard_every_listed_function_is_recognised(name: str) -> None:
    called = name.replace("*", "_exec")
    problem = read_only_problem(f"select {called}(1)", fragment="query")
    assert problem == f"query must only read; {called}() {_FUNCTIONS[name]}"


@settings(max_examples=300, deadline=None, database=None)
@given(
    sql=st.one_of(
        st.text(max_size=80),
        st.lists(st.sampled_from(WORDS), max_size=20).map(" ".join),
    ),
    fragment=st.sampled_from(["query", "where"]),
)
def test_sqlguard_any_text_gets_an_answer_never_an_exception(
    sql: str, fragment: Literal["query", "where"]
) -> None:
    problem = read_only_problem(sql, fragment=fragment)
    assert problem is None or (problem.startswith(fragment) and "\n" not in problem)


def test_sqlguard_message_names_the_field() -> None:
    assert read_only_problem("1=1; drop table t", fragment="where", field="each.where") == (
        "each.where must be a condition, found a second statement (DROP)"
    )


def test_sqlguard_refusing_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        assert read_only_problem("call p()", fragment="query") is not None
    assert caplog.records == []


# --- at load: file, line, check ----------------------------------------------------------------

SUITE = """\
suite: guard
sources:
  w: {url: "duckdb:///w.duckdb"}
checks:
  - type: sql
    name: purge
    query: delete from t returning 1
  - type: not_null
    name: sneaky
    table: t
    columns: [a]
    where: "1=1; drop table t"
  - type: reference
    name: linked
    each: {table: t, key: a, where: "a > 0"}
    has: {query: "select a from u for update", key: a}
  - type: row_count
    name: fine
    query: select a from t where a = 1
    min: 1
"""


def test_sqlguard_suite_refuses_writes_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("suite.yml").write_text(SUITE)
    with pytest.raises(SuiteError) as caught:
        load_suite("suite.yml", env={})
    assert str(caught.value) == (
        "suite.yml:7: check 'purge': query must be a single SELECT; found DELETE\n"
        "suite.yml:12: check 'sneaky': where must be a condition, found a second statement (DROP)\n"
        "suite.yml:16: check 'linked': has.query must only read;"
        " found FOR UPDATE/SHARE, which locks rows"
    )


# --- in the database: a write smuggled past the parser still fails, nothing changes --------------

SETUP = "create table t (a integer); insert into t values (1), (2), (3);\n"
SMUGGLED = {
    # a function the guard cannot see into; the read-only transaction refuses its INSERT
    "postgresql": (
        SETUP + "create function f() returns int language sql as $$ insert into t values (99)"
        " returning 1 $$;",
        "select f() as n",
        "cannot execute INSERT in a read-only transaction",
    ),
    # a macro over nextval(): the guard sees only f(); a read-only DuckDB refuses the write
    "duckdb": (
        SETUP + "create sequence s; create macro f() as nextval('s');",
        "select f() as n",
        'Invalid Input Error: Cannot execute statement of type "SELECT" on database "data"'
        " which is attached in read-only mode!",
    ),
    # SQLite syntax no sqlglot dialect parses: the guard lets it through, mode=ro refuses it
    "sqlite": (
        SETUP,
        "with x as (select 99) update or rollback t set a = 99 returning 1",
        "attempt to write a readonly database",
    ),
}


def fingerprint(db: Database) -> str:
    if db.kind == "postgresql":
        import psycopg

        with psycopg.connect(db.dsn) as con:
            row = con.execute("select md5(string_agg(t::text, ',' order by a)) from t").fetchone()
        assert row is not None and row[0] is not None
        return str(row[0])
    return hashlib.sha256(db.path.read_bytes()).hexdigest()


def test_sqlguard_write_past_the_parser_fails_in_database(db: Database, run_yaml: RunYaml) -> None:
    setup, query, refusal = SMUGGLED[db.kind]
    db.run(setup)
    assert read_only_problem(query, fragment="query") is None  # really past the guard
    before = fingerprint(db)
    verdict = run_yaml(
        textwrap.dedent(
            f"""\
            suite: smuggle
            sources:
              w: {{url: "{db.url}"}}
            checks:
              - {{type: sql, name: smuggled, query: "{query}", equals: 1}}
            """
        )
    )
    result = only_check(verdict)
    assert (result["status"], result["error"]["category"], result["error"]["message"]) == (
        "ERROR",
        "query",
        f"Source 'w' refused the query: {refusal}",
    )
    assert fingerprint(db) == before
