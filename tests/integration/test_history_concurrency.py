"""Eight `postrun check` processes recording into one history store at once, SQLite and
PostgreSQL: exactly eight runs, each with every check, and none warns that it was not recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from runner.history import store
from tests.conftest import Database

RUNS = 8
SUITE = """\
suite: busy
sources:
  duck: {url: "duckdb:///data.duckdb"}
checks:
  - {type: row_count, name: rows, table: t, min: 1}
  - {type: row_count, name: rows vs past, table: t, change: {max_drop: 50%}}
  - {type: anomaly, name: sum vs past, metric: {query: "select sum(i) from t"}}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        pg: Database = request.getfixturevalue("pg")
        return pg.dsn
    return f"sqlite:///{tmp_path / 'reports' / 'history.sqlite'}"


def test_eight_processes_add_exactly_eight_runs(tmp_path: Path, store_url: str) -> None:
    with duckdb.connect(str(tmp_path / "data.duckdb")) as duck:
        duck.execute("create table t as select i from range(10) r(i)")
    (tmp_path / "suite.yml").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_")}
    env["POSTRUN_HISTORY"] = store_url
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "runner", "check", "suite.yml", "-q", "--out", f"out/{n}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(RUNS)
    ]
    done = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    assert [code for code, _, _ in done] == [0] * RUNS, [err for _, _, err in done]
    assert [err for _, _, err in done] == [""] * RUNS
    verdicts = [json.loads((tmp_path / f"out/{n}/verdict.json").read_text()) for n in range(RUNS)]
    assert all(v["history"]["problem"] is None for v in verdicts)
    engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        runs = conn.execute(sa.select(store.runs.c.run_id, store.runs.c.verdict)).all()
        checks = conn.execute(sa.select(sa.func.count()).select_from(store.checks)).scalar()
        versions = conn.execute(sa.select(store.schema_version.c.version)).scalars().all()
    engine.dispose()
    assert sorted(runs) == sorted((v["run_id"], v["verdict"]) for v in verdicts)
    assert checks == 3 * RUNS
    assert versions == [store.SCHEMA_VERSION]
