"""The read-only guard: user SQL that could write, or calls a function not known to only read, is
refused at load; the database refuses the rest."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import RunOptions, load_suite
from runner.errors import SuiteError
from runner.sqlguard import _DENIED, _READS, _denied, _plainly_read, read_only_problem
from tests.conftest import Database, RunYaml, only_check

ONE = "query holds 2 statements; give one"
TEXT = "runs SQL given as text, which postrun cannot check"
WORDS = (  # noqa: SIM905 - a bag of SQL-ish words for the property test
    "select from where with as ( ) ; , insert delete update into values union 1 'x' \"y\" :p ::"
    " -- /* */ $$ t = and or copy to pragma set call create drop merge for nextval [ ] { } . * B''"
).split()


def unknown(name: str, field: str = "query") -> str:
    """The refusal of a call to ``name``, a function on neither of postrun's lists."""
    return (
        f"{field} calls {name}(), which is not on postrun's list of functions known to only"
        f" read; if it only reads, add {name} to the suite's allow_functions"
    )


SET_CONFIG_ATTACK = (
    "select query_to_xml('select set_config(''default_transaction_read_only'',''off'',false)',"
    " true, false, '')"
)
"""The issue's first attack: any statement inside a string, run by query_to_xml."""
TS_STAT_ATTACK = (
    "select * from ts_stat('select to_tsvector(''simple'', pg_read_file(''/etc/passwd''))')"
)
"""The issue's second attack (its `to_tsvector(…)` written out): ts_stat runs the query it is
given as text."""

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
    ("select query, glob from t", None),  # names of denied functions, but no calls
    # functions sqlglot models as one class (Coalesce, StrPosition) are judged by the name written
    ("select lower(name), strpos(name, 'x'), ifnull(a, 0), nvl(a, 1) from t", None),
    ("select percentile_cont(0.5) within group (order by a) from t", None),
    ("select sum(a) from t group by grouping sets ((a), ())", None),
    ("select * from t tablesample system (10)", None),
    ("select pg_sleep(0.1)", None),  # it only waits, and the check's timeout ends it
    # aliases with columns and types with modifiers are no calls
    ("select count(*) from range(3) t(i)", None),
    ("select * from json_each('{}') as j(k, v)", None),
    ("select cast(a as character varying(10)), a::numeric(10, 2) from t", None),
    # SQLite cannot parse `array[1]`: it takes `v(a)` for an alias from the dialects that parse
    ("select * from (values (1)) v(a) where a = array[1]", None),
    # built-in catalogs, quoted names, DuckDB's method calls: the function is the one named
    ("select pg_catalog.lower(name), main.upper(name) from t", None),
    ('select "lower"(name) from t', None),
    ("select 'a'.upper()", None),
    # DuckDB lists: sqlglot's SQLite cannot tokenize them (`]]`), the other dialects parse them
    ("select [[1, 2], [3]]", None),
    ("select list_transform([1, 2], x -> x + 1)", None),
    # nothing runs
    ("", None),
    ("-- only a comment", None),
    # no dialect parses these: judged on their tokens, where a write keyword anywhere is refused
    (
        "with x as (select 99) update or rollback t set a = 99 returning 1",
        "query must only read; found UPDATE",
    ),
    ("select 'unterminated", "query cannot be read as SQL: a quote or comment is left open"),
    (
        "select [[1], [2]] from",
        "query cannot be read the same way by every SQL dialect: as SQLite reads it,"
        " a quote or comment is left open",
    ),
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
    # --- functions that run SQL given as text (the issue) -----------------------------------
    (SET_CONFIG_ATTACK, f"query must only read; query_to_xml() {TEXT}"),
    (TS_STAT_ATTACK, f"query must only read; ts_stat() {TEXT}"),
    (
        "select ts_rewrite('a & b'::tsquery, 'select t, s from aliases')",
        f"query must only read; ts_rewrite() {TEXT}",
    ),
    (
        "select query_to_xml('copy (select 1) to program ''touch pwned''', true, false, '')",
        f"query must only read; query_to_xml() {TEXT}",
    ),
    (
        "select query_to_xml('sel' || 'ect 1', true, false, '')",
        f"query must only read; query_to_xml() {TEXT}",
    ),
    (
        "select * from PG_CATALOG.\"QUERY_TO_XML\" /* why */ ('select 1', true, false, '')",
        f"query must only read; query_to_xml() {TEXT}",
    ),
    (
        "select ts at time zone query_to_xml('select 1', true, false, '')::text from t",
        f"query must only read; query_to_xml() {TEXT}",
    ),
    # PostgreSQL ends E'\'' where sqlglot's and SQLite's tokenizers do not: its reading sees it
    (
        "select E'\\'', query_to_xml($q$select 1$q$, true, false, $q$$q$), 1 -- '",
        f"query must only read; query_to_xml() {TEXT}",
    ),
    # SQLite does not nest comments: only its reading sees the call
    (
        "select 1 /* /* */ , load_extension('x') -- */",
        "query must only read; load_extension() loads native code into the database",
    ),
    (
        "select * from query('copy (select 1) to ''out.csv''')",
        f"query must only read; query() {TEXT}",
    ),
    (
        "select 'HOME'.getenv()",
        "query must only read; getenv() reads postrun's environment, where secrets live",
    ),
    (  # a denied name is refused even where it is no call
        "select * from t as query_to_xml(a)",
        f"query must only read; query_to_xml() {TEXT}",
    ),
    # --- functions on neither list ------------------------------------------------------------
    ("select business_days(d) from t", unknown("business_days")),
    ("select main.business_days(d) from t", unknown("business_days")),
    ("select analytics.business_days(d) from t", unknown("analytics.business_days")),
    ("select lower(my_udf(a)) from t", unknown("my_udf")),
    ("select currval('s')", unknown("currval")),
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
    ("business_days(d) > 0", unknown("business_days", "where")),
    (
        "a = query_to_xml('select 1', true, false, '')::text",
        f"where must only read; query_to_xml() {TEXT}",
    ),
]


@pytest.mark.parametrize(("sql", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
def test_sqlguard_query(sql: str, expected: str | None) -> None:
    assert read_only_problem(sql, fragment="query") == expected


@pytest.mark.parametrize(("sql", "expected"), WHERES, ids=[w for w, _ in WHERES])
def test_sqlguard_where(sql: str, expected: str | None) -> None:
    assert read_only_problem(sql, fragment="where") == expected


# --- the hard deny-list: refused however the call is written, never allowed ----------------------

EXAMPLES = {
    "query_to_xml*": "query_to_xml_and_xmlschema",
    "*_to_xml*": "table_to_xml",
    "crosstab*": "crosstab3",
    "dblink*": "dblink_exec",
    "pg_rotate_logfile*": "pg_rotate_logfile_old",
    "pg_advisory*": "pg_advisory_xact_lock_shared",
    "pg_try_advisory*": "pg_try_advisory_lock",
    "pg_*replication*": "pg_create_logical_replication_slot",
    "pg_backup_*": "pg_backup_start",
    "pg_stat_reset*": "pg_stat_reset_shared",
    "pg_file_*": "pg_file_unlink",
    "pg_ls_*": "pg_ls_waldir",
    "lo_*": "lo_unlink",
}
"""A function each pattern of ``_DENIED`` stands for (a name without ``*`` stands for itself)."""
DENIED = [(EXAMPLES.get(pattern, pattern), why) for pattern, why in _DENIED.items()]
CALLED = [
    "select {name}(1)",
    "select * from {name}(1)",
    "select * from t cross join lateral {name}(1) as l",
    "select pg_catalog.{name}(1)",
    'select "{name}"(1)',
    "select {upper}(1)",
    "select {name} /* why */ (1)",
    "select a from t where a = ({name}\n(1))",
]


def test_sqlguard_every_denied_pattern_has_an_example_it_names() -> None:
    assert [pattern for pattern in _DENIED if "*" in pattern and pattern not in EXAMPLES] == []
    # the example of each pattern gets that pattern's reason: no pattern hides a later one
    assert [name for name, why in DENIED if _denied(name) != why] == []


@pytest.mark.parametrize("form", CALLED)
@pytest.mark.parametrize(("name", "why"), DENIED, ids=[name for name, _ in DENIED])
def test_sqlguard_every_denied_function_is_refused_wherever_it_is_called(
    name: str, why: str, form: str
) -> None:
    sql = form.format(name=name, upper=name.upper())
    expected = f"query must only read; {name}() {why}"
    assert read_only_problem(sql, fragment="query") == expected
    assert read_only_problem(sql, fragment="query", allow_functions=[name]) == expected


SPARK_READS = [
    "select id from t where rlike(b, '^x') or b rlike '[0-9]' or b regexp 'y'",
    "select explode(arr) as x from t",
    "select id, pos, x from t lateral view posexplode_outer(arr) p as pos, x",
    "select inline(array(named_struct('a', 1), named_struct('a', 2)))",
    "select size(arr), array_join(arr, ','), sort_array(arr), array_max(arr) from t",
    "select collect_list(x), collect_set(x), percentile_approx(v, 0.5) from t group by k",
    "select date_format(ts, 'yyyy-MM-dd'), from_unixtime(0), unix_timestamp(ts) from t",
    "select months_between(a, b), add_months(a, 1), to_utc_timestamp(ts, 'UTC') from t",
    "select get_json_object(j, '$.a'), nvl2(a, 1, 2), isnull(a), nanvl(v, 0.0) from t",
    "select aggregate(arr, 0, (acc, x) -> acc + x), zip_with(arr, arr, (x, y) -> x * y) from t",
    "select count(*) from t where input_file_name() like '%.parquet' and spark_partition_id() >= 0",
    "select int(a), bigint(a), double(v), string(d), boolean(f) from t",
]
"""Spark SQL that only reads, each calling functions only Spark has."""
SPARK_REFUSED = [
    (
        "select reflect('java.lang.Runtime', 'getRuntime') from t",
        "query must only read; reflect() calls any Java method on the Spark server",
    ),
    (
        "select java_method('java.lang.System', 'exit', 0)",
        "query must only read; java_method() calls any Java method on the Spark server",
    ),
    (
        "select transform(a, b) using 'rm -rf /' as (c) from t",
        "query must only read; transform() is also SELECT TRANSFORM … USING, which runs a"
        " program on the Spark server",
    ),
    (
        "select transform(arr, x -> x + 1) from t",
        "query must only read; transform() is also SELECT TRANSFORM … USING, which runs a"
        " program on the Spark server",
    ),
    (
        "select * from t where a = secret('scope', 'key')",
        "query must only read; secret() reads a stored secret, not data to check",
    ),
]


@pytest.mark.parametrize("sql", SPARK_READS)
def test_sqlguard_spark_read_functions_are_accepted(sql: str) -> None:
    assert read_only_problem(sql, fragment="query") is None


@pytest.mark.parametrize(("sql", "expected"), SPARK_REFUSED)
def test_sqlguard_spark_functions_that_reach_past_reading_are_refused_even_when_allowed(
    sql: str, expected: str
) -> None:
    name = expected.split("; ")[1].split("()", maxsplit=1)[0]
    assert read_only_problem(sql, fragment="query") == expected
    assert read_only_problem(sql, fragment="query", allow_functions=[name]) == expected


def test_sqlguard_no_function_is_both_read_and_denied() -> None:
    assert sorted(name for name in _READS if _denied(name)) == []
    assert sorted(name for name in _READS if name != name.lower() or not name.isidentifier()) == []


# --- the suite's escape hatch: allow_functions ---------------------------------------------------

ALLOWED = [
    ("select business_days(d) from t", ["business_days"], None),
    ("select BUSINESS_DAYS(d) from t", ["Business_Days"], None),
    ("select * from business_days('2025-01-01', '2025-02-01')", ["business_days"], None),
    ("select main.business_days(d) from t", ["business_days"], None),
    ("select analytics.business_days(d) from t", ["Analytics.Business_Days"], None),
    (
        "select analytics.business_days(d) from t",
        ["business_days"],
        unknown("analytics.business_days"),
    ),
    ("select business_days(d) from t", ["analytics.business_days"], unknown("business_days")),
    (
        "select query_to_xml('select 1', true, false, '')",
        ["query_to_xml"],
        f"query must only read; query_to_xml() {TEXT}",
    ),
]


@pytest.mark.parametrize(("sql", "allow", "expected"), ALLOWED)
def test_sqlguard_allow_functions(sql: str, allow: list[str], expected: str | None) -> None:
    assert read_only_problem(sql, fragment="query", allow_functions=allow) == expected


# --- properties ----------------------------------------------------------------------------------


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


REFUSED = [*(name for name, _ in DENIED), "business_days", "my_udf", "currval"]
"""Functions no suite without allow_functions may call."""
NAMED = ["{name}", "pg_catalog.{name}", "analytics.{name}", '"{name}"', "main . {name}"]
GAPS = ["", " ", "\n", "/*x*/", "\t--x\n"]
"""What may stand between a function's name and its parenthesis (no blank inside a comment:
the blanks of the whole text are shuffled afterwards)."""
ARGUMENTS = ["", "1", "'select 1'", "'sel' || 'ect 1', true, false, ''", "a, 'b'"]
AROUND_EXPRESSION = [
    "coalesce({e}, 1)",
    "lower(cast({e} as text))",
    "{e}::text",
    "case when {e} is null then 1 else 2 end",
    "case when a = 1 then {e} end",
    "({e})",
    "(select {e})",
    "a in (select {e} from t)",
    "exists (select {e})",
    "count(*) over (partition by {e})",
    "row_number() over (order by {e})",
    "'a' || {e}",
    "array[{e}]",
]
"""Ways to put an expression inside another."""
QUERY_OF_EXPRESSION = [
    "select {e}",
    "select a from t where {e} is not null",
    "select a from t order by {e}",
    "select a from t group by a having {e} is null",
    "values ({e})",
    "select * from (values (1)) v(a) where a = {e}",
    "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select {e} from r",
    "select * from t cross join lateral (select {e}) l",
]
QUERY_OF_CALL = [  # the call as a table function
    "select * from {c}",
    "select * from t join {c} on true",
    "select * from t, lateral {c} x",
]
AROUND_QUERY = [
    "select * from ({q}) s",
    "with x as ({q}) select * from x",
    "with recursive x as ({q}) select * from x",
    "select a from t where a in ({q})",
    "select a from t where exists ({q})",
    "select ({q}) as v",
    "select * from t join ({q}) s on true",
]


@st.composite
def refused_calls(draw: st.DrawFn) -> tuple[str, str]:
    """A query calling one refused function somewhere inside it, and that function's name."""
    name = draw(st.sampled_from(REFUSED))
    cased = "".join(
        c.upper() if up else c for c, up in zip(name, draw(_coins(len(name))), strict=True)
    )
    call = (
        draw(st.sampled_from(NAMED)).format(name=cased)
        + draw(st.sampled_from(GAPS))
        + f"({draw(st.sampled_from(ARGUMENTS))})"
    )
    expression = call
    for around in draw(st.lists(st.sampled_from(AROUND_EXPRESSION), max_size=3)):
        expression = around.format(e=expression)
    if draw(st.booleans()):
        query = draw(st.sampled_from(QUERY_OF_EXPRESSION)).format(e=expression)
    else:
        query = draw(st.sampled_from(QUERY_OF_CALL)).format(c=call)
    for around in draw(st.lists(st.sampled_from(AROUND_QUERY), max_size=3)):
        query = around.format(q=query)
    query = query.replace(" ", draw(st.sampled_from([" ", "  ", "\n", " /**/ ", "\t"])))
    return (query.upper() if draw(st.booleans()) else query), name


def _coins(count: int) -> st.SearchStrategy[list[bool]]:
    return st.lists(st.booleans(), min_size=count, max_size=count)


@settings(max_examples=300, deadline=None, database=None)
@given(case=refused_calls(), fragment=st.sampled_from(["query", "where"]))
def test_sqlguard_refused_function_is_found_inside_any_construct(
    case: tuple[str, str], fragment: Literal["query", "where"]
) -> None:
    query, name = case
    sql = query if fragment == "query" else f"a in ({query})"
    problem = read_only_problem(sql, fragment=fragment)
    assert problem is not None, sql
    # The refusal names the function (a call, or a statement keyword such as CHECKPOINT),
    # unless no dialect parses the text: then it may be refused as unreadable (one dialect
    # cannot tokenize it) or, when the function is on no list, for an alias (`v(a)`) it cannot
    # tell from a call.
    named = f"{name}()" in problem or f"found {name.upper()}" in problem
    unparsed = " cannot be read " in problem or (not _denied(name) and " calls " in problem)
    assert named or unparsed, (sql, problem)
    assert not _plainly_read(sql, fragment), sql


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


ALLOWING = """\
suite: guard
allow_functions:
  - business_days
  - query_to_xml
  - pg_catalog.QUERY_TO_XML
  - not a name
  - analytics.fiscal_week
sources:
  w: {url: "duckdb:///w.duckdb"}
checks:
  - {type: sql, name: days, query: "select d from t where business_days(d, now()) > 3"}
  - {type: sql, name: weeks, query: "select analytics.fiscal_week(d) from t"}
  - {type: row_count, name: holidays, table: t, where: "not is_holiday(d)", min: 1}
"""


def test_sqlguard_suite_allow_functions_refused_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("suite.yml").write_text(ALLOWING)
    with pytest.raises(SuiteError) as caught:
        load_suite("suite.yml", env={})
    assert str(caught.value).splitlines() == [
        f"suite.yml:4: allow_functions: query_to_xml() {TEXT}; it can never be allowed",
        f"suite.yml:5: allow_functions: query_to_xml() {TEXT}; it can never be allowed",
        "suite.yml:6: allow_functions: 'not a name' is not a function name (name or schema.name)",
        f"suite.yml:13: check 'holidays': {unknown('is_holiday', 'where')}",
    ]


def test_sqlguard_suite_allow_functions_lets_its_functions_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    allowing = ALLOWING.replace(
        "  - query_to_xml\n  - pg_catalog.QUERY_TO_XML\n  - not a name\n", ""
    )
    Path("suite.yml").write_text(
        allowing.replace("- business_days", "- business_days\n  - IS_HOLIDAY")
    )
    suite = load_suite("suite.yml", env={})
    assert [check.name for check in suite.checks] == ["days", "weeks", "holidays"]


# --- end to end: the attacks change nothing in any database -------------------------------------

ATTACKS = [
    ("set config", SET_CONFIG_ATTACK, f"query_to_xml() {TEXT}"),
    ("ts_stat", TS_STAT_ATTACK, f"ts_stat() {TEXT}"),
    (
        "copy to program",
        "select query_to_xml('copy (select 1) to program ''touch {folder}/pwned''', true, false, '')",
        f"query_to_xml() {TEXT}",
    ),
    (
        "duckdb copy",
        "select * from query('copy (select 42) to ''{folder}/pwned.csv''')",
        f"query() {TEXT}",
    ),
    ("sqlite writefile", "select writefile('{folder}/pwned.txt', 'x')", "writefile() writes files"),
    (
        "delete through ts_rewrite",
        "select ts_rewrite('a'::tsquery, 'delete from t returning ''a''::tsquery, ''b''::tsquery')",
        f"ts_rewrite() {TEXT}",
    ),
]


def files_in(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_sqlguard_attacks_exit_2_and_change_nothing(db: Database, tmp_path: Path) -> None:
    db.run(SETUP)
    checks = "".join(
        f'  - {{type: sql, name: {name}, query: "{sql.format(folder=tmp_path)}"}}\n'
        for name, sql, _ in ATTACKS
    )
    (tmp_path / "suite.yml").write_text(
        f'suite: attack\nsources:\n  db: {{url: "{db.url}"}}\nchecks:\n{checks}'
    )
    before, files = fingerprint(db), files_in(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_PARAM_")}
    result = subprocess.run(
        [sys.executable, "-m", "runner", "check", "suite.yml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        ("postrun: " if line == 5 else "")
        + f"suite.yml:{line}: check '{name}': query must only read; {why}"
        for line, (name, _, why) in enumerate(ATTACKS, start=5)
    ]
    assert fingerprint(db) == before
    assert files_in(tmp_path) == files


# --- in the database: a write smuggled past the parser still fails, nothing changes --------------

SETUP = "create table t (a integer); insert into t values (1), (2), (3);\n"
SMUGGLED = {
    # a function the suite vouches for, wrongly: the read-only transaction refuses its INSERT
    "postgresql": (
        SETUP + "create function f() returns int language sql as $$ insert into t values (99)"
        " returning 1 $$;",
        "select f() as n",
        "cannot execute INSERT in a read-only transaction",
    ),
    # a macro over nextval(), vouched for: a read-only DuckDB refuses the write
    "duckdb": (
        SETUP + "create sequence s; create macro f() as nextval('s');",
        "select f() as n",
        'Invalid Input Error: Cannot execute statement of type "SELECT" on database "data"'
        " which is attached in read-only mode!",
    ),
    # no function to vouch for and nothing else past the guard: with the guard bypassed,
    # mode=ro refuses the write on its own
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


def test_sqlguard_write_past_the_parser_fails_in_database(
    db: Database, run_yaml: RunYaml, request: pytest.FixtureRequest
) -> None:
    setup, query, refusal = SMUGGLED[db.kind]
    db.run(setup)
    if db.kind == "sqlite":
        assert read_only_problem(query, fragment="query") == "query must only read; found UPDATE"
        request.getfixturevalue("no_sqlguard")
    else:
        assert read_only_problem(query, fragment="query", allow_functions=["f"]) is None
    before = fingerprint(db)
    verdict = run_yaml(
        textwrap.dedent(
            f"""\
            suite: smuggle
            allow_functions: [f]
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


@pytest.mark.postgres
@pytest.mark.usefixtures("no_sqlguard")
def test_sqlguard_bypassed_postgresql_session_stays_read_only(
    pg: Database, run_yaml: RunYaml
) -> None:
    """Past the guard, the issue's attack runs set_config; the next checks, in the same session,
    still run read-only transactions and their write is refused."""
    pg.run(SMUGGLED["postgresql"][0])
    before = fingerprint(pg)
    verdict = run_yaml(
        f"""\
        suite: bypass
        sources:
          pg: {{url: "{pg.url}"}}
        checks:
          - type: sql
            name: switch off
            query: "{SET_CONFIG_ATTACK.replace("select", "select pg_backend_pid() as pid,", 1)}"
          - type: sql
            name: look
            query: "select pg_backend_pid() as pid, current_setting('transaction_read_only') as ro"
          - {{type: sql, name: write, query: "select f() as n"}}
        """,
        options=RunOptions(jobs=1),
    )
    switch, look, write = (check.model_dump(mode="json") for check in verdict.checks)
    assert switch["status"] == "FAIL"  # it ran: the row it returned is the violation
    assert "<set_config>off</set_config>" in switch["failures"][0]["query_to_xml"]
    assert look["failures"] == [{"pid": switch["failures"][0]["pid"], "ro": "on"}]
    assert (write["status"], write["error"]["message"]) == (
        "ERROR",
        "Source 'pg' refused the query: cannot execute INSERT in a read-only transaction",
    )
    assert fingerprint(pg) == before
