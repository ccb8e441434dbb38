"""Read-only against an attacker (SPEC §6): a suite cannot talk postrun out of read-only through
a table name, a URL, DuckDB's reach outside its files, or a PostgreSQL role that can write.
Every attack is run for real; the data is byte-for-byte unchanged and no stray file appears."""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from runner import load_suite, run_suite
from runner.errors import SourceError
from runner.results import ErrorCategory, Status
from runner.sources import database
from runner.sources.files import FileSource, FileTable
from runner.sources.sql import Access
from tests.conftest import Database, check_verdict
from tests.test_cli import postrun, write

# --- helpers ---------------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if "reports" not in p.parts}


def pg_digest(pg: Database, table: str = "t") -> str:
    with psycopg.connect(pg.dsn) as con:
        row = con.execute(
            f"select md5(string_agg(x::text, ',' order by x::text)) from {table} x".encode()
        ).fetchone()
    assert row is not None
    return str(row[0])


def warehouse(tmp_path: Path) -> Path:
    """A DuckDB file with one table, and a second one an attacker would like to empty."""
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select range as id from range(3)")
    return path


def refused_at_load(tmp_path: Path, suite: str) -> str:
    """Run ``suite`` through the CLI; it must be refused before anything runs (exit 2)."""
    write(tmp_path / "checks" / "attack.yml", suite)
    done = postrun("check", "checks/attack.yml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert not (tmp_path / "reports").exists()
    return done.stderr


# --- 3. file-table names are identifiers; names and paths never pasted into SQL ---------------

INJECTION = "x\" AS SELECT 1; ATTACH '{other}' AS wh; DELETE FROM wh.t; --"


def test_readonly_table_name_injection_is_refused_at_load(tmp_path: Path) -> None:
    other = warehouse(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "b1.json").write_text('[{"id": 1}]')
    before, files = digest(other), files_under(tmp_path)
    name = INJECTION.format(other=other).replace('"', '\\"')
    err = refused_at_load(
        tmp_path,
        f"""\
        suite: attack
        sources:
          results:
            tables:
              "{name}": "../results/*.json"
        checks:
          - {{type: row_count, table: t, min: 0}}
        """,
    )
    assert err.startswith("postrun: checks/attack.yml:4: sources.results.tables: table name 'x\"")
    assert err.endswith(
        "' is not an identifier (letters, digits and '_', not starting with a digit)\n"
    )
    assert digest(other) == before and files_under(tmp_path) == files | {
        tmp_path / "checks",
        tmp_path / "checks" / "attack.yml",
    }


def test_readonly_table_and_file_names_never_reach_sql(tmp_path: Path) -> None:
    """Past the suite check (the API), a hostile table name and a file name with quotes are
    only names: DuckDB's relation API quotes them; nothing else runs."""
    other = warehouse(tmp_path)
    before = digest(other)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "b'1.json").write_text('[{"id": 1}]')
    (folder / "b2');DROP--.json").write_text('[{"id": 2}]')
    name = INJECTION.format(other=other)
    source = FileSource("r", [], [FileTable(name, (str(folder / "*.json"),), "json")])
    try:
        rows = source.execute(
            sa.select(sa.column("id")).select_from(sa.table(name)).order_by("id"), {}
        )
    finally:
        source.close()
    assert rows == [{"id": 1}, {"id": 2}]
    assert digest(other) == before


# --- 4. the URL cannot turn read-only off -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "duckdb:///{wh}?access_mode=read_write",
            "sets access_mode: postrun opens DuckDB read-only with its own sandbox, and a URL "
            "cannot change that (remove it; give extra folders in 'allow_paths')",
        ),
        (
            "duckdb:///{wh}?enable_external_access=true",
            "sets enable_external_access: postrun opens DuckDB read-only with its own sandbox, "
            "and a URL cannot change that (remove it; give extra folders in 'allow_paths')",
        ),
        (
            "sqlite:///file:{db}?mode=rwc&uri=true",
            "opens SQLite with mode=rwc: postrun reads SQLite read-only (remove mode, or use "
            "mode=ro)",
        ),
        (
            "postgresql://u:pw@127.0.0.1/db?options=-c%20default_transaction_read_only%3Doff",
            "passes options that set read_only: postrun's PostgreSQL sessions are read-only and "
            "a URL cannot change that (remove it from 'options')",
        ),
        (
            "postgresql://u:pw@127.0.0.1/db?options=-c%20role%3Dadmin",
            "passes options that set role: postrun's PostgreSQL sessions are read-only and a URL "
            "cannot change that (remove it from 'options')",
        ),
    ],
)
def test_readonly_url_asking_for_writes_is_refused_at_load(
    tmp_path: Path, url: str, problem: str
) -> None:
    wh = warehouse(tmp_path)
    db = tmp_path / "w.sqlite"
    sqlite3.connect(db).close()
    err = refused_at_load(
        tmp_path,
        f"""\
        suite: attack
        sources:
          w: {{url: "{url.format(wh=wh, db=db)}"}}
        checks:
          - {{type: row_count, table: t, min: 0}}
        """,
    )
    assert err.startswith("postrun: checks/attack.yml:3: source 'w': url ")
    assert err.rstrip("\n").endswith(problem)
    assert "pw@" not in err


@pytest.mark.parametrize(
    "query",
    [
        "duckdb:///{wh}?access_mode=read_write&threads=1",
        "duckdb:///{wh}?access_mode=automatic",
    ],
)
def test_readonly_duckdb_url_cannot_open_writable(tmp_path: Path, query: str) -> None:
    wh = warehouse(tmp_path)
    before = digest(wh)
    source = database("w", query.format(wh=wh))
    try:
        with pytest.raises(SourceError, match="read-only mode"):
            source.execute(sa.text("delete from t"), {})
        assert source.execute(sa.text("select count(*) as n from t"), {}) == [{"n": 3}]
    finally:
        source.close()
    assert digest(wh) == before


def test_readonly_sqlite_uri_cannot_open_writable(tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table t (id integer)")
        con.execute("insert into t values (1)")
    con.close()
    before = digest(db)
    for url in (f"sqlite:///file:{db}?mode=rwc&uri=true", f"sqlite:///file:{db}?mode=rw"):
        source = database("w", url)
        try:
            with pytest.raises(SourceError, match="readonly database"):
                source.execute(sa.text("delete from t"), {})
        finally:
            source.close()
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.sqlite"]


@pytest.mark.postgres
def test_readonly_postgres_url_options_cannot_turn_read_only_off(pg: Database) -> None:
    pg.run("create table t (id integer); insert into t values (1), (2);")
    before = pg_digest(pg)
    url = make_url(pg.url).update_query_dict({"options": "-c default_transaction_read_only=off"})
    source = database("w", url.render_as_string(hide_password=False))
    try:
        with pytest.raises(SourceError, match="read-only transaction"):
            source.execute(sa.text("delete from t"), {})
        assert source.execute(sa.text("show default_transaction_read_only"), {}) == [
            {"default_transaction_read_only": "on"}
        ]
    finally:
        source.close()
    assert pg_digest(pg) == before


# --- 5. DuckDB stays inside the source's own files --------------------------------------------

OUTSIDE = [
    "select content from read_text('/etc/hostname')",
    "select content from read_blob('/etc/passwd')",
    "select file from glob('/etc/*')",
    "select * from read_csv('https://example.com/a.csv')",
    "select * from read_json('{outside}')",
    "copy t to '{tmp}/copied.csv'",
    "attach '{tmp}/other.duckdb' as other",
    "install httpfs",
    "load httpfs",
    "set enable_external_access = true",
    "set allowed_directories = ['/']",
    "set lock_configuration = false",
]


@pytest.mark.parametrize("statement", OUTSIDE)
def test_readonly_duckdb_reaches_nothing_outside(tmp_path: Path, statement: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    wh = warehouse(tmp_path)
    outside = tmp_path / "elsewhere" / "secret.json"
    outside.parent.mkdir()
    outside.write_text('[{"secret": 1}]')
    before, files = digest(wh), files_under(tmp_path)
    source = database("w", f"duckdb:///{wh}")
    try:
        with pytest.raises(SourceError) as caught:
            source.execute(sa.text(statement.format(tmp=tmp_path, outside=outside)), {})
    finally:
        source.close()
    assert caught.value.category in (ErrorCategory.CONFIG, ErrorCategory.QUERY)
    assert digest(wh) == before
    assert files_under(tmp_path) == files
    assert not (Path.home() / ".duckdb" / "extensions" / "v0").exists()


def test_readonly_duckdb_file_tables_reach_only_their_files(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "b1.json").write_text('[{"id": 1}]')
    (tmp_path / "neighbour.json").write_text('[{"id": 99}]')
    source = FileSource("r", [], [FileTable("batches", (str(folder / "*.json"),), "json")])
    try:
        assert source.execute(sa.text("select id from batches"), {}) == [{"id": 1}]
        for statement in (
            f"select * from read_json('{tmp_path / 'neighbour.json'}')",
            f"copy batches to '{folder / 'out.csv'}'",
        ):
            with pytest.raises(SourceError) as caught:
                source.execute(sa.text(statement), {})
            assert caught.value.category is ErrorCategory.CONFIG
            assert "name other folders in the source's 'allow_paths'" in caught.value.message
    finally:
        source.close()
    assert sorted(p.name for p in folder.iterdir()) == ["b1.json"]


def test_readonly_allow_paths_opens_one_more_folder(tmp_path: Path) -> None:
    wh = warehouse(tmp_path)
    (tmp_path / "other").mkdir()
    other = warehouse(tmp_path / "other")
    extra = tmp_path / "lookups"
    extra.mkdir()
    (extra / "codes.csv").write_text("code\nA\nB\n")
    write(
        tmp_path / "checks" / "s.yml",
        f"""\
        suite: allowed
        sources:
          w: {{url: "duckdb:///{wh}", allow_paths: [../lookups]}}
          v: {{url: "duckdb:///{other}"}}
        checks:
          - {{type: sql, name: allowed, source: w,
              query: "select count(*) from read_csv('{extra / "codes.csv"}')", equals: 2}}
          - {{type: sql, name: not here, source: v,
              query: "select count(*) from read_csv('{extra / "codes.csv"}')", equals: 2}}
        """,
    )
    verdict = run_suite(load_suite(tmp_path / "checks" / "s.yml", env={}))
    check_verdict(verdict)
    allowed, refused = verdict.checks
    assert allowed.status is Status.PASS, allowed.message
    assert refused.status is Status.ERROR and refused.error is not None
    assert refused.error.category is ErrorCategory.CONFIG


def test_readonly_sources_on_one_duckdb_file_share_their_sandbox(tmp_path: Path) -> None:
    wh = warehouse(tmp_path)
    err = refused_at_load(
        tmp_path,
        f"""\
        suite: attack
        sources:
          w: {{url: "duckdb:///{wh}", allow_paths: [/]}}
          v: {{url: "duckdb:///{wh}"}}
        checks:
          - {{type: row_count, table: t, min: 0, source: v}}
        """,
    )
    assert err == (
        "postrun: checks/attack.yml:4: source 'v' reads the DuckDB file of source 'w' with "
        "other allow_paths: DuckDB keeps one sandbox per file, so give both the same "
        "allow_paths\n"
    )


def test_readonly_duckdb_second_source_cannot_widen_the_sandbox(tmp_path: Path) -> None:
    wh = warehouse(tmp_path)
    narrow = database("narrow", f"duckdb:///{wh}")
    wide = database("wide", f"duckdb:///{wh}", access=Access(folders=("/",)))
    try:
        assert narrow.execute(sa.text("select count(*) as n from t"), {}) == [{"n": 3}]
        with pytest.raises(SourceError, match="DuckDB keeps one sandbox per file") as caught:
            wide.execute(sa.text("select count(*) as n from t"), {})
        assert caught.value.category is ErrorCategory.CONFIG
    finally:
        narrow.close()
        wide.close()


def test_readonly_duckdb_progress_bar_stays_off(tmp_path: Path) -> None:
    wh = warehouse(tmp_path)
    source = database("w", f"duckdb:///{wh}", access=Access())
    try:
        rows = [
            source.execute(sa.text("select current_setting('enable_progress_bar') as p"), {})
            for _ in range(3)
        ]
    finally:
        source.close()
    assert rows == [[{"p": False}]] * 3


# --- 2. the role is the last line -----------------------------------------------------------


def role_suite(tmp_path: Path, url: str, extra: str = "") -> Path:
    return write(
        tmp_path / "role.yml",
        f"""\
        suite: role
        sources:
          w: {{url: "{url}"{extra}}}
        checks:
          - {{type: row_count, name: rows, table: t, equals: 2}}
          - {{type: sql, name: none negative, query: "select id from t where id < 0"}}
        """,
    )


def role_of(verdict: dict[str, Any]) -> Any:
    (source,) = verdict["sources"]
    return source["role"]


@pytest.mark.postgres
def test_readonly_postgres_superuser_is_refused(pg: Database, tmp_path: Path) -> None:
    pg.run("create table t (id integer); insert into t values (1), (2);")
    admin = make_url(os.environ["POSTRUN_TEST_PG_ADMIN"]).set(database=make_url(pg.dsn).database)
    url = admin.render_as_string(hide_password=False)
    data = check_verdict(run_suite(load_suite(role_suite(tmp_path, url), env={})))
    assert [(c["status"], c["error"]["category"]) for c in data["checks"]] == [
        ("ERROR", "config")
    ] * 2
    message = data["checks"][0]["message"]
    assert message.startswith(
        "Source 'w' connects as role 'postgres', which is a superuser: postrun reads only "
        "through a role that cannot write. Connect as a read-only role (CREATE ROLE "
        "postrun_reader LOGIN PASSWORD '…';"
    )
    assert message.endswith("or set 'allow_privileged_role: true' on the source to accept it.")
    assert role_of(data) == {  # a superuser is a member of every role
        "name": "postgres",
        "superuser": True,
        "memberships": [
            "pg_execute_server_program",
            "pg_read_server_files",
            "pg_write_all_data",
            "pg_write_server_files",
        ],
        "writable_tables": ["public.t"],
        "can_write": True,
    }


@pytest.mark.postgres
def test_readonly_postgres_owner_of_the_tables_is_refused(pg: Database, tmp_path: Path) -> None:
    pg.run("create table t (id integer); insert into t values (1), (2);")
    data = check_verdict(run_suite(load_suite(role_suite(tmp_path, pg.dsn), env={})))
    assert {c["status"] for c in data["checks"]} == {"ERROR"}
    assert (
        "connects as role 'postrun', which can write public.t: postrun reads only"
        in (data["checks"][0]["message"])
    )
    assert role_of(data) == {
        "name": "postrun",
        "superuser": False,
        "memberships": [],
        "writable_tables": ["public.t"],
        "can_write": True,
    }


@pytest.mark.postgres
def test_readonly_postgres_member_of_pg_write_all_data_is_refused(
    pg: Database, tmp_path: Path
) -> None:
    pg.run("create table t (id integer); insert into t values (1), (2);")
    role = f"w_{secrets.token_hex(4)}"
    password = secrets.token_hex(8)
    admin = os.environ["POSTRUN_TEST_PG_ADMIN"]
    database = make_url(pg.dsn).database
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(
            f"create role {role} login password '{password}' in role pg_write_all_data;"
            f" grant connect on database {database} to {role}".encode()
        )
    try:
        url = make_url(pg.dsn).set(username=role, password=password)
        suite = role_suite(tmp_path, url.render_as_string(hide_password=False))
        data = check_verdict(run_suite(load_suite(suite, env={})))
    finally:
        with psycopg.connect(admin, dbname=database, autocommit=True) as con:
            con.execute(f"drop owned by {role}; ".encode())
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"drop role {role}".encode())
    assert (
        f"connects as role '{role}', which is a member of pg_write_all_data:"
        in (data["checks"][0]["message"])
    )
    assert role_of(data) == {
        "name": role,
        "superuser": False,
        "memberships": ["pg_write_all_data"],
        "writable_tables": ["public.t"],
        "can_write": True,
    }


@pytest.mark.postgres
def test_readonly_postgres_reader_runs_and_is_recorded(pg: Database, tmp_path: Path) -> None:
    pg.run("create table t (id integer); insert into t values (1), (2);")
    data = check_verdict(run_suite(load_suite(role_suite(tmp_path, pg.url), env={})))
    assert [c["status"] for c in data["checks"]] == ["PASS", "PASS"]
    assert role_of(data) == {
        "name": "postrun_reader",
        "superuser": False,
        "memberships": [],
        "writable_tables": [],
        "can_write": False,
    }
    assert "@" not in str(data["sources"]) or "***@" in str(data["sources"])


@pytest.mark.postgres
def test_readonly_postgres_privileged_role_when_the_source_allows_it(
    pg: Database, tmp_path: Path
) -> None:
    pg.run("create table t (id integer); insert into t values (1), (2);")
    before = pg_digest(pg)
    suite = role_suite(tmp_path, pg.dsn, ", allow_privileged_role: true")
    data = check_verdict(run_suite(load_suite(suite, env={})))
    assert [c["status"] for c in data["checks"]] == ["PASS", "PASS"]
    assert role_of(data)["can_write"] is True
    assert pg_digest(pg) == before


def test_readonly_allow_privileged_role_is_for_databases(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yml",
        """\
        suite: s
        sources:
          r: {files: "*.json", allow_privileged_role: true}
        checks:
          - {type: json_integrity}
        """,
    )
    err = postrun("validate", str(path), cwd=tmp_path).stderr
    assert "'allow_privileged_role' applies to a database ('url')" in err


def test_readonly_security_model_is_documented() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Security model", 1)[1].split("\n## ", 1)[0]
    for needed in ("CREATE ROLE", "GRANT SELECT", "allow_privileged_role", "allow_functions"):
        assert needed in section, needed
    assert textwrap.dedent(section).strip()
