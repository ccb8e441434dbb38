"""Secrets never leave postrun: passwords in URLs, ``${ENV}`` and param values used in URLs, and
``password=`` / ``token=`` query values appear in no byte postrun writes — stdout, stderr, any
report, the run index or the CI step summary — even inside driver error messages."""

from __future__ import annotations

import json
import os
import re
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


def run_everything(
    tmp_path: Path, case: Case, extra: list[str] | None = None
) -> tuple[int, list[tuple[str, bytes]]]:
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
            *(extra or []),
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


# --- the URL forms an attacker tried, secret params, --notify, pytest and Dagster -------------


@pytest.mark.parametrize("special", [":", "/", "?", "#", "%40", "&", "=", " "])
def test_secrets_password_with_url_characters_never_written(tmp_path: Path, special: str) -> None:
    """':', '/', '?' … are legal in a password as written: postrun masks the whole userinfo."""
    secret = _unique(f"pa{special}ss")
    url = f"postgresql://postrun:{secret}@127.0.0.1:{_closed_port()}/x"
    assert_no_leak(tmp_path, Case(url, secret.replace("%40", "@")))


def test_secrets_unencoded_at_in_password_refused_without_a_trace(tmp_path: Path) -> None:
    """An unencoded '@' makes the URL ambiguous (the driver would take part of the password for
    the host): refused at load, shown as its scheme, nothing connected."""
    secret = _unique("p@ss:w/rd?x=1")
    case = Case(f"postgresql://reader:{secret}@127.0.0.1:{_closed_port()}/db", secret, expect=(2,))
    code, written = run_everything(tmp_path, case)
    assert code == 2
    stderr = dict(written)["stderr"].decode()
    assert (
        stderr.startswith("postrun: ") and "url postgresql://… holds '@' more than once" in stderr
    )
    for part in secret.replace("@", " ").replace(":", " ").replace("/", " ").split():
        if len(part) > 3:
            assert leaks(written, part) == [], part
    assert not (tmp_path / "run" / "reports").exists()


def test_secrets_common_word_password_does_not_damage_output(tmp_path: Path) -> None:
    """`postgres` as the password is masked where it stands as a word, never inside
    `postgresql://` or another word."""
    case = Case(f"postgresql://gate:postgres@127.0.0.1:{_closed_port()}/postgresdb", "postgres")
    code, written = run_everything(tmp_path, case)
    assert code == 3
    stdout = dict(written)["stdout"].decode()
    assert "(postgresql://***@127.0.0.1:" in stdout and "/postgresdb)" in stdout
    standalone = re.compile(rb"(?<![A-Za-z0-9])postgres(?![A-Za-z0-9])")
    assert [what for what, data in written if standalone.search(data)] == []


@pytest.mark.parametrize(
    ("declared", "name"),
    [
        ("  api_token: {type: string}\n", "api_token"),
        ("  db_password: {type: string}\n", "db_password"),
        ("  signing_key: {type: string}\n", "signing_key"),
        ("  opaque: {type: string, secret: true}\n", "opaque"),
    ],
)
def test_secrets_secret_params_never_written(tmp_path: Path, declared: str, name: str) -> None:
    """A secret param used in SQL comes back in a failure sample: masked there, in the params
    and in every message."""
    secret = _unique("param-secret")
    case = Case(
        "duckdb:///:memory:",
        secret,
        params={name: secret},
        declared=f"params:\n{declared}",
        checks=f'  - {{type: sql, name: shows, query: "select :{name} as v"}}\n',
        expect=(1,),
    )
    code, written = run_everything(tmp_path, case)
    assert code == 1
    assert leaks(written, secret) == []
    verdict = next(d for w, d in written if w.endswith("/verdict.json"))
    assert f'"{name}": "***"'.encode() in verdict


def test_secrets_secret_false_shows_a_param_named_like_a_secret(tmp_path: Path) -> None:
    shown = _unique("primary")
    case = Case(
        "duckdb:///:memory:",
        shown,
        params={"primary_key": shown},
        declared="params:\n  primary_key: {type: string, secret: false}\n",
        checks='  - {type: sql, name: shows, query: "select :primary_key as v"}\n',
        expect=(1,),
    )
    code, written = run_everything(tmp_path, case)
    assert code == 1
    assert "stdout" in leaks(written, shown)


def test_secrets_bad_secret_param_value_is_not_echoed(tmp_path: Path) -> None:
    secret = _unique("not-an-int")
    case = Case(
        "duckdb:///:memory:",
        secret,
        params={"api_key": secret},
        declared="params:\n  api_key: {type: int}\n",
        expect=(2,),
    )
    code, written = run_everything(tmp_path, case)
    assert code == 2
    assert dict(written)["stderr"] == (
        b"postrun: param 'api_key' must be an int; the value given is not one (not shown: the "
        b"param is secret)\n"
    )
    assert leaks(written, secret) == []


def test_secrets_notify_token_never_written(tmp_path: Path) -> None:
    from tests.test_notify import Hook

    token = _unique("hook-token")
    hook = Hook()
    try:
        case = Case(f"postgresql://postrun@127.0.0.1:{_closed_port()}/x", token)
        code, written = run_everything(
            tmp_path, case, extra=["--notify", f"{hook.url}/{token}?key={token}"]
        )
    finally:
        hook.close()
    assert code == 3
    (request,) = hook.received
    assert token not in json.dumps(request["body"])
    assert leaks(written, token) == []
    assert b"notified: http://127.0.0.1:" in dict(written)["stdout"]


def planted(tmp_path: Path) -> tuple[Path, str]:
    """A suite whose unreachable source's password and secret param are planted secrets."""
    secret = _unique("Pl@nted:pw")
    suite = tmp_path / "planted.yml"
    suite.write_text(
        "suite: planted\n"
        "params:\n  api_token: {type: string}\n"
        "sources:\n"
        f"  db: {{url: 'postgresql://postrun:{quote(secret, safe='')}@127.0.0.1:{_closed_port()}/x'}}\n"
        "  mem: {url: 'duckdb:///:memory:'}\n"
        "checks:\n"
        "  - {type: sql, name: remote, source: db, query: 'select 1'}\n"
        "  - {type: sql, name: local, source: mem, query: 'select :api_token as v'}\n"
    )
    return suite, secret


def test_secrets_pytest_plugin_output_never_holds_a_secret(tmp_path: Path) -> None:
    suite, secret = planted(tmp_path)
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-v",
            "-rA",
            "--postrun",
            str(suite),
            f"--postrun-param=api_token={secret}",
            f"--junitxml={junit}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
    )
    written = [("stdout", done.stdout), ("stderr", done.stderr), ("junit", junit.read_bytes())]
    assert done.returncode == 1, done.stdout[-2000:]
    assert b"remote" in done.stdout and b"local" in done.stdout
    assert leaks(written, secret) == []


def test_secrets_dagster_output_never_holds_a_secret(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dg = pytest.importorskip("dagster") if os.environ.get("CI") != "true" else __import__("dagster")
    from runner.integrations.dagster import postrun_asset_checks

    suite, secret = planted(tmp_path)

    @dg.asset(name="batch")  # type: ignore[untyped-decorator]
    def batch() -> None:
        """The batch."""

    checks = postrun_asset_checks(
        suite, asset=batch, params={"api_token": secret}, reports_dir=tmp_path / "reports"
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([batch, *checks], instance=instance, raise_on_error=False)
        events = [str(e) for e in instance.all_logs(result.run_id)]
    evaluations = [str(e) for e in result.get_asset_check_evaluations()]
    assert len(evaluations) == 2
    out, err = capfd.readouterr()
    written = [
        ("events", "\n".join(events).encode()),
        ("evaluations", "\n".join(evaluations).encode()),
    ]
    written += [("stdout", out.encode()), ("stderr", err.encode())]
    written += [(str(p), p.read_bytes()) for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert leaks(written, secret) == []
