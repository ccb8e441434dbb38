"""Shared fixtures: tiny DuckDB/SQLite/PostgreSQL databases and the same tables on Spark, suite
files written on the fly, a checked runner."""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest

from runner import RunOptions, Verdict, load_suite, run_suite
from runner.results import Verdict as VerdictModel

VERDICT_SCHEMA = VerdictModel.model_json_schema()


@dataclass
class Database:
    """A throwaway database file of one kind, filled with setup SQL.

    On PostgreSQL ``dsn`` is the owner's (setup writes through it) and ``url`` a role that may
    only read, as postrun requires of the role it reads through.

    On Spark (``spark://local``) the setup SQL, written for DuckDB, SQLite and PostgreSQL alike,
    runs in a DuckDB file at ``path``, and every table of it becomes a temporary view of the
    same name, columns, types and rows in the process's local Spark session, the one postrun's
    Spark source reads through (see ``SparkViews``). A column type ``float`` becomes a DOUBLE,
    as on PostgreSQL and SQLite (DuckDB's is 4 bytes)."""

    kind: str
    path: Path
    dsn: str = ""
    reader: str = ""
    _scripts: tuple[str, ...] = field(default=(), repr=False)
    """On Spark: the setup run so far, which names the views it needs."""

    @property
    def url(self) -> str:
        if self.kind == "postgresql":
            return self.reader or self.dsn
        if self.kind == "spark":
            spark_views.show(self.path, self._scripts)
            return SPARK_URL
        return f"{self.kind}:///{self.path}"

    def run(self, script: str) -> None:
        script = textwrap.dedent(script)
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.dsn, autocommit=True) as pg:
                pg.execute(script.encode())
        elif self.kind == "duckdb":
            with duckdb.connect(str(self.path)) as duck:
                duck.execute(script)
        elif self.kind == "spark":
            with duckdb.connect(str(self.path)) as duck:
                duck.execute(_DOUBLE_FLOAT.sub("double", script))
            self._scripts += (script,)
            spark_views.show(self.path, self._scripts)
        else:
            with sqlite3.connect(self.path) as lite:
                lite.executescript(script)
            lite.close()


_DOUBLE_FLOAT = re.compile(r"\bfloat\b(?=\s*[,)])", re.IGNORECASE)
"""A column type ``float``, which is double precision on PostgreSQL and SQLite but a 4-byte REAL on
DuckDB: the tables DuckDB makes for Spark take Spark's DOUBLE for it."""

SQL_DATABASES = ["duckdb", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=SQL_DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test against DuckDB, SQLite and PostgreSQL."""
    yield from _database(request, tmp_path)


@pytest.fixture(params=[*SQL_DATABASES, "spark"])
def anydb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test against DuckDB, SQLite, PostgreSQL and Spark (``spark://local``)."""
    yield from _database(request, tmp_path)


def _database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        yield from _postgres(tmp_path)
    elif request.param == "spark":
        yield request.getfixturevalue("spark_db")
    else:
        yield Database(request.param, tmp_path / f"data.{request.param}")


@pytest.fixture
def spark_db(spark_session: Any, tmp_path: Path) -> Database:
    """Tables as temporary views of the local Spark session (``spark://local``)."""
    return Database("spark", tmp_path / "spark-tables.duckdb")


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Database]:
    """A fresh database on the PostgreSQL server ci/test.sh started (POSTRUN_TEST_PG_URL)."""
    yield from _postgres(tmp_path)


def postgres_env(name: str) -> str:
    """A URL of the PostgreSQL server ci/test.sh started: without it the test is skipped, and
    under CI it fails (CI must test PostgreSQL)."""
    value = os.environ.get(name)
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not set: ci/test.sh must start PostgreSQL under CI")
        pytest.skip("no PostgreSQL server (run the tests through ci/test.sh)")
    return value


def _postgres(tmp_path: Path) -> Iterator[Database]:
    url = postgres_env("POSTRUN_TEST_PG_URL")
    import psycopg

    reader = os.environ.get("POSTRUN_TEST_PG_READER_URL")
    if not reader:
        pytest.fail("POSTRUN_TEST_PG_READER_URL is not set: ci/postgres.sh exports it")
    name = f"t_{secrets.token_hex(4)}"
    with psycopg.connect(url, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"create database {name}".encode())
    dsn = url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as owner:  # what the owner creates, it may read
        owner.execute(
            f"grant connect on database {name} to postrun_reader;"
            " grant usage on schema public to postrun_reader;"
            " alter default privileges grant select on tables to postrun_reader;"
            " alter default privileges grant usage on schemas to postrun_reader;".encode()
        )
    yield Database("postgresql", tmp_path, dsn=dsn, reader=reader.rsplit("/", 1)[0] + f"/{name}")
    # as the superuser: the reader's sessions (GX's abandoned ones too) are not the owner's to end
    admin_url = os.environ.get("POSTRUN_TEST_PG_ADMIN") or url
    with psycopg.connect(admin_url, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"drop database {name} with (force)".encode())


@pytest.fixture
def duck(tmp_path: Path) -> Database:
    return Database("duckdb", tmp_path / "data.duckdb")


@pytest.fixture
def no_sqlguard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let writes past the suite-level SQL guard, to prove the connections refuse them alone."""
    monkeypatch.setattr("runner.suite.read_only_problem", lambda *args, **kwargs: None)


def check_verdict(verdict: Verdict) -> dict[str, Any]:
    """The verdict as JSON, validated against its published schema."""
    data = verdict.to_dict()
    jsonschema.validate(data, VERDICT_SCHEMA)
    return data


RunYaml = Callable[..., Verdict]


@pytest.fixture
def run_yaml(tmp_path: Path) -> RunYaml:
    """Write a suite (dedented YAML) into tmp_path, run it, validate and return the verdict."""

    def run(
        text: str,
        params: Mapping[str, str] | None = None,
        *,
        name: str = "suite.yml",
        options: RunOptions | None = None,
    ) -> Verdict:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        verdict = run_suite(load_suite(path, params, env={}), options)
        check_verdict(verdict)
        return verdict

    return run


def only_check(verdict: Verdict) -> dict[str, Any]:
    """The single check result of a one-check suite, as JSON."""
    assert len(verdict.checks) == 1, [c.name for c in verdict.checks]
    return verdict.checks[0].model_dump(mode="json")


SPARK_URL = "spark://local"


@pytest.fixture(scope="session")
def spark_session() -> Any:
    """The process's local Spark Connect session (``spark://local``), started once for every
    Spark test (10-25 s); tests make their tables temporary views in it. Without PySpark the
    test is skipped, and under CI it fails (CI must test Spark)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("PySpark is not installed: ci/test.sh installs the 'spark' extra under CI")
        pytest.skip("the Spark tests need the 'spark' extra")
    from runner.sources.spark import local_session

    # A test run sends the JVM a few hundred small queries and ends long before the steady state
    # the C2 compiler works towards: with C1 alone the Spark tests take half the CPU time
    # (measured: 91 CPU-s down to 55 for the Spark cases of three check types, start included).
    # Read when the JVM starts, so only this process's own session gets it.
    before = os.environ.get("JDK_JAVA_OPTIONS")
    os.environ["JDK_JAVA_OPTIONS"] = f"{before or ''} -XX:TieredStopAtLevel=1".strip()
    try:
        return local_session()
    finally:
        if before is None:
            del os.environ["JDK_JAVA_OPTIONS"]
        else:
            os.environ["JDK_JAVA_OPTIONS"] = before


class SparkViews:
    """The temporary views of the local Spark session, as the tables of one setup.

    Views are session-wide, so a test's views replace every view left by another test; the
    tables of the setup last shown are kept while the next test's setup is the same (every case
    of a parametrized test), so they are made once per run of identical setups, not per case.
    Test code changes the session's views only through ``show`` and ``clear``."""

    def __init__(self) -> None:
        self.shown: tuple[str, ...] | None = None

    def show(self, staging: Path, scripts: tuple[str, ...]) -> None:
        """Make the session's views the tables of ``staging`` (a DuckDB file that ran
        ``scripts``), unless they already are."""
        if self.shown == scripts:
            return
        from runner.sources.spark import local_session

        session = local_session()
        self.clear(session)
        if staging.exists():
            for name, table in _duckdb_tables(staging):
                _spark_frame(session, table).createOrReplaceTempView(name)
        self.shown = scripts

    def clear(self, session: Any) -> None:
        """Drop every temporary view of the session."""
        for table in session.catalog.listTables():
            if table.isTemporary:
                session.catalog.dropTempView(table.name)
        self.shown = None


spark_views = SparkViews()


def _duckdb_tables(path: Path) -> list[tuple[str, Any]]:
    with duckdb.connect(str(path), read_only=True) as duck:
        names = duck.sql("select table_name from information_schema.tables order by 1").fetchall()
        return [(name, duck.sql(f'select * from "{name}"').to_arrow_table()) for (name,) in names]


def _spark_frame(session: Any, table: Any) -> Any:
    """An Arrow table as a Spark DataFrame of the matching Spark types: a naive timestamp is a
    TIMESTAMP_NTZ, a timestamp with a zone a TIMESTAMP (an instant), as in Spark's own tables;
    the schema is given, so an empty table keeps its columns."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return session.createDataFrame(table, schema=from_arrow_schema(table.schema))
