"""Faults mid-run: a database that goes away, an output folder that cannot be written, a full
disk, result files that change under the inspector. Each ends in a clear verdict, never a crash."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy.engine import make_url

from runner import load_suite, run_suite
from runner.render import FORMATS, read_verdict
from runner.sources.json_files import JsonFileInspector
from tests.conftest import VERDICT_SCHEMA, Database, check_verdict

REPORTS = ("verdict.json", "verdict.html", "junit.xml", "summary.md")


def postrun(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m runner …`` started in the background (no step summary, no param env)."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("POSTRUN_PARAM_") and k != "GITHUB_STEP_SUMMARY"
    }
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=full_env | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- (a) the database goes away while the suite runs ------------------------------------------


class _Proxy:
    """A TCP forwarder in front of PostgreSQL; ``stop()`` is the server vanishing: every open
    connection is cut and the port refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)

    def stop(self) -> None:
        # shutdown() rather than close(): it wakes the threads blocked in accept() and recv().
        with self.lock:
            for sock in [self.listener, *self.sockets]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _admin(pg: Database) -> Any:
    """A connection to the server's maintenance database, as superuser when ci/ gave one."""
    import psycopg

    url = os.environ.get("POSTRUN_TEST_PG_ADMIN") or pg.dsn
    return psycopg.connect(url, dbname="postgres", autocommit=True)


def _wait_for_sleep(admin: Any, database: str) -> None:
    """Block until the slow check's statement is running on the server."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = admin.execute(
            "select 1 from pg_stat_activity where datname = %s and state = 'active'"
            " and query like %s",
            (database, "%pg_sleep%"),
        ).fetchall()
        if running:
            return
        time.sleep(0.02)
    pytest.fail("the slow PostgreSQL check never started")


FAULT_SUITE = """\
    suite: faults
    sources:
      pg: {{url: "{pg_url}"}}
      duck: {{url: "duckdb:///{duck}"}}
    checks:
      - {{type: sql, name: pg slow, source: pg, equals: 3, timeout: 60s,
         query: "select count(*) from t, pg_sleep(2)"}}
      - {{type: row_count, name: pg count, source: pg, table: t, equals: 3}}
      - {{type: row_count, name: duck pass, source: duck, table: u, equals: 2}}
      - {{type: sql, name: pg rows, source: pg, query: "select id from t where id > 5"}}
      - {{type: not_null, name: pg nulls, source: pg, table: t, columns: [id]}}
      - {{type: row_count, name: duck fail, source: duck, table: u, equals: 9}}
    """


def _refuse_connections(pg: Database) -> Callable[[], None]:
    """The database stops accepting connections and every session on it is terminated."""
    database = make_url(pg.dsn).database

    def fault() -> None:
        with _admin(pg) as admin:
            admin.execute(f'alter database "{database}" allow_connections false'.encode())
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                (database,),
            )

    return fault


@pytest.mark.postgres
@pytest.mark.parametrize(
    "how",
    [
        "database-refuses",
        "server-vanishes",
    ],
)
def test_faults_database_lost_mid_run_errors_its_checks_only(
    pg: Database, duck: Database, tmp_path: Path, how: str
) -> None:
    """Every check on the lost database is ERROR / connectivity (retryable), the DuckDB checks
    still PASS and FAIL, all reports are written, and the exit code is 3."""
    pg.run("create table t (id integer); insert into t values (1), (2), (3);")
    duck.run("create table u (id integer); insert into u values (1), (2);")
    url = make_url(pg.url)
    proxy = _Proxy(url.host or "127.0.0.1", url.port or 5432) if how == "server-vanishes" else None
    if proxy is not None:
        url = url.set(port=proxy.port)
    fault = proxy.stop if proxy is not None else _refuse_connections(pg)
    suite = tmp_path / "faults.yml"
    pg_url = url.render_as_string(hide_password=False)
    suite.write_text(textwrap.dedent(FAULT_SUITE).format(pg_url=pg_url, duck=duck.path))
    try:
        process = postrun("check", str(suite), "--jobs", "1", "--out", "out", cwd=tmp_path)
        with _admin(pg) as admin:
            _wait_for_sleep(admin, str(make_url(pg.dsn).database))
        fault()
        code, out, err = finish(process)
    finally:
        with _admin(pg) as admin:
            admin.execute(
                f'alter database "{make_url(pg.dsn).database}" allow_connections true'.encode()
            )
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    jsonschema.validate(verdict, VERDICT_SCHEMA)
    got = [
        (c["name"], c["status"], c["error"] and (c["error"]["category"], c["error"]["retryable"]))
        for c in verdict["checks"]
    ]
    lost = ("ERROR", ("connectivity", True))
    assert got == [
        ("pg slow", *lost),
        ("pg count", *lost),
        ("duck pass", "PASS", None),
        ("pg rows", *lost),
        ("pg nulls", *lost),
        ("duck fail", "FAIL", None),
    ], out
    assert (code, verdict["verdict"], verdict["exit_code"]) == (3, "ERROR", 3), err
    assert files_under(tmp_path / "out") == sorted(REPORTS)
    assert "Traceback" not in err


# --- (b) an output folder that cannot be written ----------------------------------------------


@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``path`` (root only); skipped where mounting is not allowed, except under CI."""
    path.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    result = (
        subprocess.run(
            [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if mount
        else None
    )
    if result is None or result.returncode != 0:
        why = result.stderr.strip() if result else "no mount command"
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs under CI: {why}")
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {why}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


PASSING_SUITE = """\
    suite: tiny
    sources: {d: {url: "duckdb:///:memory:"}}
    checks:
      - {type: sql, name: one, query: "select 1", equals: 1}
    """


@pytest.mark.parametrize("where", ["under-a-file", "read-only-mount", "reports-is-a-file"])
def test_faults_unwritable_output_is_a_clear_error_and_writes_nothing(
    tmp_path: Path, where: str
) -> None:
    """A passing suite whose reports cannot be written exits 3 (never 0), names each file it
    could not write on stderr, and leaves nothing behind."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "suite.yml").write_text(textwrap.dedent(PASSING_SUITE))
    blocker = run / "blocker"
    blocker.write_text("a regular file\n")
    args = ["check", "suite.yml"]
    with contextlib.ExitStack() as stack:
        if where == "under-a-file":
            out = "blocker/out"
        elif where == "read-only-mount":
            out = str(stack.enter_context(mounted_tmpfs(run / "ro", "ro,size=64k")) / "out")
        else:
            blocker.rename(run / "reports")
            out = None
        args += ["--out", out] if out else []
        code, stdout, stderr = finish(postrun(*args, cwd=run))
        if where == "read-only-mount":
            assert files_under(run / "ro") == []
    assert code == 3, stdout + stderr
    assert "PASS: suite 'tiny'" in stdout and "report:" not in stdout
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    if where == "reports-is-a-file":  # nor can the history store be made next to the reports
        store = f"sqlite:///{run / 'reports' / 'history.sqlite'}"
        warning = f"postrun: warning: run not recorded: history store {store} could not be "
        assert lines[0].startswith(warning), stderr
        lines = lines[1:]
    (first,) = lines
    assert first.startswith("postrun: reports not written: "), stderr
    if out is None:  # the default folder reports/<suite>/<run_id>, run id not known before
        run_dir = re.search(r"cannot write (reports/tiny/\d{8}T\d{6}Z-[0-9a-f]{6})/", first)
        assert run_dir is not None, first
        out, why = run_dir[1], "Not a directory"
    else:
        why = "Read-only file system" if where == "read-only-mount" else "Not a directory"
    assert all(f"cannot write {out}/{name}: {why}" in first for name in REPORTS), first
    # the run itself is recorded in the history store next to the default reports root
    assert files_under(run) == (
        ["blocker", "reports/history.sqlite", "suite.yml"]
        if where != "reports-is-a-file"
        else ["reports", "suite.yml"]
    )


# --- (c) a full disk --------------------------------------------------------------------------

WIDE_SUITE = """\
    suite: wide
    sources: {d: {url: "duckdb:///:memory:"}}
    checks:
      - type: sql
        name: wide rows
        query: "select i, repeat('x', 1000) as pad, repeat('y', 1000) as more from range(20) t(i)"
    """


def test_faults_full_disk_leaves_complete_reports_or_none(tmp_path: Path) -> None:
    """On a 64 KiB tmpfs, verdict.json (~43 KB) fits and neither verdict.html (~72 KB) nor
    junit.xml (~42 KB) can after it (two columns of 1,000 bytes: a value is kept up to 1 KB): the
    reports that were written are byte-for-byte complete, the others are absent (no truncated
    file, no temporary file), stderr names each one, and the exit code is 3, not 1."""
    (tmp_path / "suite.yml").write_text(textwrap.dedent(WIDE_SUITE))
    with mounted_tmpfs(tmp_path / "disk", "size=64k") as disk:
        code, stdout, stderr = finish(
            postrun("check", "suite.yml", "--out", str(disk / "out"), cwd=tmp_path)
        )
        written = files_under(disk / "out")
        stored = read_verdict(disk / "out" / "verdict.json")
        check_verdict(stored)
        for name in written:
            fmt = next(f for f, (filename, _) in FORMATS.items() if filename == name)
            assert (disk / "out" / name).read_bytes() == FORMATS[fmt][1](stored), name
    assert code == 3, stdout + stderr
    assert stored.verdict == "FAIL"
    assert written == ["summary.md", "verdict.json"]
    first = stderr.splitlines()[0]
    for name in ("verdict.html", "junit.xml"):
        assert f"cannot write {disk}/out/{name}: No space left on device" in first, stderr
    assert "Traceback" not in stderr


# --- (d) result files that change between listing and reading ---------------------------------


def test_faults_result_files_changing_after_listing_are_reported_not_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is listed intact, then changed just before the inspector reads it."""
    results = tmp_path / "results"
    results.mkdir()
    for name in "abcdefg":
        (results / f"{name}.json").write_text(json.dumps({"run": name, "rows": list(range(50))}))

    def to_folder(p: Path) -> None:
        p.unlink()
        p.mkdir()

    def to_dangling_link(p: Path) -> None:
        p.unlink()
        p.symlink_to(tmp_path / "nowhere.json")

    def to_fifo(p: Path) -> None:
        p.unlink()
        os.mkfifo(p)

    changes: dict[str, Callable[[Path], object]] = {
        "a.json": Path.unlink,
        "b.json": lambda p: p.write_bytes(p.read_bytes()[:40]),
        "c.json": to_folder,
        "d.json": lambda p: p.write_text(json.dumps({"rows": list(range(5000))})),
        "e.json": to_dangling_link,
        "f.json": to_fifo,
    }
    inspect = JsonFileInspector._inspect

    def changed_then_inspected(self: JsonFileInspector, path: Path | str) -> Any:
        listed = Path(path)  # files are listed as strings
        if listed.name in changes:
            changes.pop(listed.name)(listed)
        return inspect(self, path)

    monkeypatch.setattr(JsonFileInspector, "_inspect", changed_then_inspected)
    (tmp_path / "suite.yml").write_text(
        textwrap.dedent(
            """\
            suite: changing
            checks:
              - {type: json_integrity, files: "results/*.json", max_bytes: 5000}
            """
        )
    )
    verdict = run_suite(load_suite(tmp_path / "suite.yml", env={}))
    check_verdict(verdict)
    (result,) = verdict.checks
    assert changes == {}, "every change was made"
    assert (result.status, result.error) == ("FAIL", None)
    assert [(Path(f["path"]).name, f["reason"]) for f in result.failures] == [
        ("a.json", "missing"),
        ("b.json", "truncated"),
        ("c.json", "unreadable"),
        ("d.json", "too_large"),
        ("e.json", "missing"),
        ("f.json", "unreadable"),
    ]
    assert result.observed["files"] == 7


def test_faults_vanished_file_counts_as_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in "ab":
        (tmp_path / f"{name}.json").write_text("{}")
    inspect = JsonFileInspector._inspect

    def vanished_then_inspected(self: JsonFileInspector, path: Path | str) -> Any:
        if Path(path).name == "a.json":
            Path(path).unlink()
        return inspect(self, path)

    monkeypatch.setattr(JsonFileInspector, "_inspect", vanished_then_inspected)
    (tmp_path / "suite.yml").write_text(
        'suite: s\nchecks:\n  - {type: json_integrity, files: "*.json"}\n'
    )
    (result,) = run_suite(load_suite(tmp_path / "suite.yml", env={})).checks
    assert (result.status, result.observed["bad_files"]) == ("FAIL", 1)
    assert result.message.startswith("1 of 2 files bad: a.json missing"), result.message
