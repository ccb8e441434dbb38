"""Secrets never leave postrun: passwords in URLs, ``${ENV}`` and param values used in URLs, and
``password=`` / ``token=`` query values appear in no byte postrun writes — stdout, stderr, any
report, the run index or the CI step summary — even inside driver error messages."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Database

CHECKS = """\
  - {type: sql, name: passes, query: "select 1", equals: 1}
  - {type: sql, name: fails, query: "select 'row' as sample"}
  - {type: row_count, name: errors, table: no_such_table, min: 1}
"""


@dataclass
class Case:
    """A suite whose source URL carries ``secret``, and how postrun is given the rest."""

    url: str
    secret: str
    params: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    declared: str = ""
    expect: tuple[int, ...] = (3,)
    checks: str = CHECKS


def _unique(prefix: str) -> str:
    """A value no other byte of the run could contain by chance (with URL-special characters)."""
    return f"{prefix}-{secrets.token_hex(8)}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_parts(pg: Database) -> tuple[str, str, str]:
    """(password, 'host:port/db', user) of the per-test PostgreSQL database."""
    url = make_url(pg.dsn)
    return str(url.password), f"{url.host}:{url.port}/{url.database}", str(url.username)


def unreachable(pg: Database | None) -> Case:
    secret = _unique("Un@reach:ble/pw%")
    return Case(
        f"postgresql://postrun:{quote(secret, safe='')}@127.0.0.1:{_closed_port()}/x", secret
    )


def unparsable(pg: Database | None) -> Case:
    secret = _unique("unparsable")
    return Case(f"postgresql://postrun:{secret}@127.0.0.1:notaport/x", secret, expect=(2, 3))


def duckdb_token(pg: Database | None) -> Case:
    secret = _unique("duck-token")
    return Case(f"duckdb:///:memory:?token={secret}", secret)


def wrong_password(pg: Database | None) -> Case:
    assert pg is not None
    _, where, user = _pg_parts(pg)
    secret = _unique("Wr0ng!pass")
    return Case(f"postgresql://{user}:{quote(secret, safe='')}@{where}", secret)


def env_password(pg: Database | None) -> Case:
    """A wrong password from the environment: the auth error shows the interpolated URL."""
    assert pg is not None
    _, where, user = _pg_parts(pg)
    secret = _unique("env-pass")
    return Case(f"postgresql://{user}:${{PG_SECRET}}@{where}", secret, env={"PG_SECRET": secret})


def query_password(pg: Database | None) -> Case:
    assert pg is not None
    _, where, user = _pg_parts(pg)
    secret = _unique("query&pass=")
    return Case(f"postgresql://{user}@{where}?password={quote_plus(secret)}", secret)


def query_token(pg: Database | None) -> Case:
    assert pg is not None
    password, where, user = _pg_parts(pg)
    secret = _unique("tok")
    return Case(f"postgresql://{user}:{password}@{where}?token={secret}", secret)


def param_password(pg: Database | None) -> Case:
    """The real password as a param: the run connects, FAILs and ERRORs; params are echoed."""
    assert pg is not None
    password, where, user = _pg_parts(pg)
    return Case(
        f"postgresql://{user}:{{pw}}@{where}",
        password,
        params={"pw": password},
        declared="params:\n  pw: {type: string}\n",
    )


def param_wrong_password(pg: Database | None) -> Case:
    assert pg is not None
    _, where, user = _pg_parts(pg)
    secret = _unique("param-pass")
    return Case(
        f"postgresql://{user}:{{pw}}@{where}",
        secret,
        params={"pw": secret},
        declared="params:\n  pw: {type: string}\n",
    )


def run_everything(tmp_path: Path, case: Case) -> tuple[int, list[tuple[str, bytes]]]:
    """Run the case through the CLI with every format, -v and a step summary; return the exit
    code and every byte written: (what, bytes) for stdout, stderr and each file created."""
    suite_dir, run_dir = tmp_path / "suite", tmp_path / "run"
    suite_dir.mkdir()
    run_dir.mkdir()
    suite = suite_dir / "suite.yml"
    suite.write_text(
        f"suite: secrets\n{case.declared}sources:\n  db: {{url: '{case.url}'}}\nchecks:\n{case.checks}"
    )
    summary = tmp_path / "step-summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_")}
    env |= case.env | {"GITHUB_STEP_SUMMARY": str(summary)}
    args = [f"--param={k}={v}" for k, v in case.params.items()]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "check",
            str(suite),
            "-v",
            "--format",
            "json,html,junit,md",
            *args,
        ],
        cwd=run_dir,
        env=env,
        capture_output=True,
        timeout=120,
    )
    written = [("stdout", result.stdout), ("stderr", result.stderr)]
    written += [
        (str(path.relative_to(tmp_path)), path.read_bytes())
        for path in sorted(tmp_path.rglob("*"))
        if path.is_file() and path != suite
    ]
    return result.returncode, written


def leaks(written: list[tuple[str, bytes]], secret: str) -> list[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    return [what for what, data in written for form in forms if form.encode() in data]


def assert_no_leak(tmp_path: Path, case: Case) -> None:
    code, written = run_everything(tmp_path, case)
    names = [what for what, _ in written]
    assert code in case.expect, written[:2]
    if code == 3:  # a run happened: every report, the index and the step summary were written
        for name in ("verdict.json", "verdict.html", "junit.xml", "summary.md"):
            assert any(n.endswith(f"/{name}") for n in names), names
        assert "run/reports/index.html" in names and "step-summary.md" in names, names
    assert leaks(written, case.secret) == []


OFFLINE: list[Callable[[Database | None], Case]] = [unreachable, duckdb_token]


@pytest.mark.parametrize("make", OFFLINE, ids=[f.__name__ for f in OFFLINE])
def test_secrets_never_written_without_a_server(
    tmp_path: Path, make: Callable[[Database | None], Case]
) -> None:
    assert_no_leak(tmp_path, make(None))


@pytest.mark.parametrize("key", ["sslpassword", "access_token", "api-key"])
def test_secrets_never_written_for_other_secret_query_keys(tmp_path: Path, key: str) -> None:
    secret = _unique(key)
    url = f"postgresql://postrun@127.0.0.1:{_closed_port()}/x?{key}={secret}"
    assert_no_leak(tmp_path, Case(url, secret))


def test_secrets_never_written_for_an_unparsable_url(tmp_path: Path) -> None:
    assert_no_leak(tmp_path, unparsable(None))


ONLINE: list[Callable[[Database | None], Case]] = [
    wrong_password,
    env_password,
    query_password,
    query_token,
    param_password,
    param_wrong_password,
]


@pytest.mark.postgres
@pytest.mark.parametrize("make", ONLINE, ids=[f.__name__ for f in ONLINE])
def test_secrets_never_written_against_postgres(
    pg: Database, tmp_path: Path, make: Callable[[Database | None], Case]
) -> None:
    assert_no_leak(tmp_path, make(pg))


@pytest.mark.postgres
def test_secrets_never_written_in_part_where_a_long_value_is_cut(
    pg: Database, tmp_path: Path
) -> None:
    """A value of the data holding a secret (a URL's sslpassword, passed as a param) is kept up
    to 1 KB: the cut falls inside the secret, and the part of it left before the cut is masked
    too."""
    secret = f"cut-{secrets.token_hex(32)}"
    case = Case(
        pg.dsn + "?sslpassword={tok}",
        secret,
        params={"tok": secret},
        declared="params:\n  tok: {type: string}\n",
        checks="  - {type: sql, name: long, query: \"select repeat('x', 980) || :tok as v\"}\n",
        expect=(1,),
    )
    code, written = run_everything(tmp_path, case)
    assert code == 1, written[:2]
    assert [what for what, data in written if secret[:8].encode() in data] == []
    verdict = next(data for what, data in written if what.endswith("/verdict.json"))
    assert b'"v": "' + b"x" * 980 + "***… [truncated: 1048 bytes]".encode() in verdict


def test_secrets_search_finds_a_planted_secret(tmp_path: Path) -> None:
    """The search itself works: a value that is printed on purpose (a param used in SQL) is
    found, in its plain and URL-encoded forms."""
    planted = _unique("visible/value@")
    case = Case(
        "duckdb:///:memory:",
        planted,
        params={"v": planted},
        declared="params:\n  v: {type: string}\n",
        checks='  - {type: sql, name: shows, query: "select :v as v"}\n',
        expect=(1,),
    )
    code, written = run_everything(tmp_path, case)
    assert code == 1
    found = leaks(written, planted)
    assert {"stdout", "step-summary.md"} <= set(found), found
    for name in ("verdict.json", "verdict.html", "junit.xml", "summary.md"):
        assert any(n.endswith(f"/{name}") for n in found), (name, found)
