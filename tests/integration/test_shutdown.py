"""The verdict is always written: a closed or full stdout or stderr, SIGTERM or SIGINT in the
middle of a query or of a report. A real `postrun` process each time; afterwards every report is
complete (verdict.json parses and validates) or absent, no temporary file is left, the exit code
is the documented one, and no statement of the run is still running in the database."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import VERDICT_SCHEMA, Database

REPORTS = ["junit.xml", "summary.md", "verdict.html", "verdict.json"]
STDOUT_FAILED = "postrun: could not print to stdout: {why} (the exit code is unchanged)\n"

SUITES = {
    0: "- {type: sql, name: holds, query: select 1, equals: 1}",
    1: "- {type: sql, name: fails, query: select 2, equals: 1}",
    3: "- {type: sql, name: errs, query: select * from missing_table}",
}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_PARAM_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def write_suite(
    tmp_path: Path, checks: str, sources: str = '{d: {url: "duckdb:///:memory:"}}'
) -> None:
    (tmp_path / "suite.yml").write_text(
        f"suite: s\nsources: {sources}\nchecks:\n" + textwrap.indent(checks, "  ") + "\n"
    )


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def reports_whole(root: Path, out: Path, *, present: bool = True) -> dict[str, Any] | None:
    """Assert each report under ``out`` complete (all four when ``present``) and no temporary
    file anywhere under ``root``; the verdict, validated against its schema, if written."""
    assert sorted(p.name for p in root.rglob("*.tmp")) == []
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert set(written) <= set(REPORTS), written
    if present:
        assert written == REPORTS
    if "verdict.json" not in written:
        return None
    verdict = json.loads((out / "verdict.json").read_bytes())
    jsonschema.validate(verdict, VERDICT_SCHEMA)
    if "junit.xml" in written:
        import xml.etree.ElementTree as ET

        ET.parse(out / "junit.xml")
    if "verdict.html" in written:
        assert (out / "verdict.html").read_text().rstrip().endswith("</html>")
    return verdict


# --- a closed or full stdout or stderr --------------------------------------------------------


def closed_pipe() -> int:
    """The write end of a pipe nobody reads any more: every write to it fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


STREAMS = ["stdout-closed-pipe", "stdout-head-c1", "stdout-closed", "stdout-full", "stderr-closed"]


@pytest.mark.parametrize("code", sorted(SUITES))
@pytest.mark.parametrize("stream", STREAMS)
def test_shutdown_output_streams_never_cost_a_report_or_the_exit_code(
    tmp_path: Path, stream: str, code: int
) -> None:
    write_suite(tmp_path, SUITES[code])
    args = command("check", "suite.yml", "--out", "out")
    kept_stderr = True
    if stream == "stdout-closed-pipe":
        pipe = closed_pipe()
        done = subprocess.run(
            args,
            cwd=tmp_path,
            env=environment(),
            stdout=pipe,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        os.close(pipe)
        expected_stderr = [STDOUT_FAILED.format(why="Broken pipe")]
    elif stream == "stdout-head-c1":
        shell = f'{" ".join(args)} | head -c1 >/dev/null; exit "${{PIPESTATUS[0]}}"'
        done = subprocess.run(
            ["bash", "-c", shell],
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        # head may still be reading when postrun is done printing: then nothing failed
        expected_stderr = ["", STDOUT_FAILED.format(why="Broken pipe")]
    elif stream == "stdout-closed":
        shell = f"exec >&-; exec {' '.join(args)}"
        done = subprocess.run(
            ["sh", "-c", shell],
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        expected_stderr = [STDOUT_FAILED.format(why="it is closed")]
    elif stream == "stdout-full":
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                args,
                cwd=tmp_path,
                env=environment(),
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        expected_stderr = [STDOUT_FAILED.format(why="No space left on device")]
    else:
        shell = f"exec 2>&-; exec {' '.join(args)}"
        done = subprocess.run(
            ["sh", "-c", shell],
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        kept_stderr = False
        expected_stderr = [""]
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stderr in expected_stderr
    verdict = reports_whole(tmp_path, tmp_path / "out")
    assert verdict is not None and verdict["exit_code"] == code
    if not kept_stderr:  # the table went out whole, and no traceback with it
        assert done.stdout.splitlines()[-1] == "report: out/verdict.html", done.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("validate", "suite.yml"), 0),
        (("list",), 0),
        (("schema",), 0),
        (("schema", "--verdict"), 0),
        (("report", "out/verdict.json", "--out", "again"), 0),
        (("demo", "--dir", "demo"), 1),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v),
)
def test_shutdown_every_command_survives_a_full_stdout(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    write_suite(tmp_path, SUITES[1])
    assert (
        subprocess.run(
            command("check", "suite.yml", "--out", "out", "-q"),
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            timeout=120,
        ).returncode
        == 1
    )
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            command(*args),
            cwd=tmp_path,
            env=environment(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert (done.returncode, done.stderr) == (
        code,
        STDOUT_FAILED.format(why="No space left on device"),
    )
    if args[0] == "report":
        reports_whole(tmp_path, tmp_path / "again")
    if args[0] == "demo":
        (run,) = (tmp_path / "demo" / "reports" / "demo").iterdir()
        written = reports_whole(tmp_path, run)
        assert written is not None and written["exit_code"] == 1


def harness(
    tmp_path: Path, body: str, *args: str, stderr_closed: bool = False
) -> subprocess.CompletedProcess[str]:
    """`postrun ARGS` in a child whose ``os.fsync`` (called once per report) first runs ``body``
    (with ``os``, ``signal`` and ``real``, the true fsync, at hand): to act at an exact moment of
    the report writing."""
    code = (
        "import os, signal, sys\n"
        "import runner.cli\n"
        "real = os.fsync\n"
        "def fsync(fd):\n" + textwrap.indent(textwrap.dedent(body), "    ") + "    real(fd)\n"
        "os.fsync = fsync\n"
        f"sys.argv = ['postrun', *{list(args)!r}]\n"
        "runner.cli.main()\n"
    )
    child = [sys.executable, "-c", code]
    if stderr_closed:
        child = ["sh", "-c", f"exec 2>&-; exec {shlex.join(child)}"]
    return subprocess.run(
        child, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=120
    )


def test_shutdown_a_closed_stderr_is_never_a_report(tmp_path: Path) -> None:
    """Started with stderr closed, postrun puts /dev/null on descriptor 2: else the first report
    opened takes that number, and anything written to "stderr" lands in the report."""
    write_suite(tmp_path, SUITES[1])
    body = """\
        with open("fd2.txt", "a") as seen:
            seen.write(os.readlink("/proc/self/fd/2") + "\\n")
    """
    done = harness(tmp_path, body, "check", "suite.yml", "--out", "out", "-q", stderr_closed=True)
    assert done.returncode == 1, done.stdout
    assert (tmp_path / "fd2.txt").read_text().splitlines() == ["/dev/null"] * 4
    reports_whole(tmp_path, tmp_path / "out")


# --- signals while the reports are written ------------------------------------------------------


def test_shutdown_signal_while_a_report_is_written_finishes_it_and_starts_no_other(
    tmp_path: Path,
) -> None:
    write_suite(tmp_path, SUITES[1])
    body = """\
        os.fsync = real
        os.kill(os.getpid(), signal.SIGTERM)
    """
    done = harness(tmp_path, body, "check", "suite.yml", "--out", "out")
    assert (done.returncode, done.stderr) == (
        3,
        "postrun: interrupted by SIGTERM while writing the reports; not written: "
        "out/verdict.html, out/junit.xml, out/summary.md\n",
    )
    assert (
        done.stdout.splitlines()[-1]
        == "FAIL: suite 's' (1 FAIL) in " + done.stdout.split(" in ")[-1].strip()
    )
    verdict = reports_whole(tmp_path, tmp_path / "out", present=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["verdict.json"]
    assert verdict is not None and verdict["verdict"] == "FAIL"


def test_shutdown_second_signal_exits_at_once_leaving_no_temporary_file(tmp_path: Path) -> None:
    write_suite(tmp_path, SUITES[1])
    body = """\
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    """
    done = harness(tmp_path, body, "check", "suite.yml", "--out", "out")
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")
    assert reports_whole(tmp_path, tmp_path / "out", present=False) is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # the temporary file too


def test_shutdown_sigterm_while_a_large_report_is_written(tmp_path: Path) -> None:
    """From outside, the moment the ~20 MB verdict.json's temporary file appears: it is
    finished and renamed, no other report is started, nothing is left behind."""
    write_suite(
        tmp_path,
        "- {type: sql, name: wide, query: \"select i, repeat('x', 1000) as a from range(20000) t(i)\"}",
    )
    process = subprocess.Popen(
        command("check", "suite.yml", "--out", "out", "-q", "--sample-limit", "20000"),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in tmp_path.glob("out/.verdict.json.*.tmp") if p.exists()):
        assert process.poll() is None and time.monotonic() < deadline, "never saw it written"
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert err.startswith(
        "postrun: interrupted by SIGTERM while writing the reports; not written: out/"
    )
    verdict = reports_whole(tmp_path, tmp_path / "out", present=False)
    assert verdict is not None and len(verdict["checks"][0]["failures"]) == 20000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["verdict.json"]


# --- signals while a query runs ----------------------------------------------------------------

SLOW = {  # plain reads that run for minutes
    "duckdb": "select sum(a.range + b.range) from range(100000000) a, range(100000000) b",
    "sqlite": "with recursive c(n) as (select 1 union all select n + 1 from c"
    " where n < 1000000000) select count(*) from c",
    "postgresql": "select count(*) from generate_series(1, 100000) a, generate_series(1, 100000) b",
}
WALL_S = 5
"""From the signal to the exit, at most: the run ends within a couple of seconds."""


def wait_for_slow_query(db: Database, process: subprocess.Popen[str], marker: str) -> None:
    """Until the slow statement runs: seen in pg_stat_activity on PostgreSQL; elsewhere, the
    database file open in postrun (the check connects, then sends it at once)."""
    deadline = time.monotonic() + 60
    while not (running(marker) if db.kind == "postgresql" else opened(process.pid, db.path)):
        assert process.poll() is None and time.monotonic() < deadline, "the query never started"
        time.sleep(0.02)
    if db.kind != "postgresql":
        time.sleep(0.5)


def opened(pid: int, path: Path) -> bool:
    folder = Path(f"/proc/{pid}/fd")
    links = []
    for fd in folder.iterdir():
        with contextlib.suppress(OSError):
            links.append(os.readlink(fd))
    return str(path) in links


def running(marker: str) -> list[str]:
    """The statements carrying ``marker`` active on the server, as the superuser sees them."""
    import psycopg

    sql = (
        "select query from pg_stat_activity where state = 'active' "
        "and pid <> pg_backend_pid() and query like %s"
    )
    with psycopg.connect(os.environ["POSTRUN_TEST_PG_ADMIN"], autocommit=True) as admin:
        return [row[0] for row in admin.execute(sql, (f"%{marker}%",)).fetchall()]


def still_running_after(db: Database, marker: str, seconds: float) -> list[str]:
    """On PostgreSQL, what of the run is still active ``seconds`` after postrun exited."""
    if db.kind != "postgresql":
        return []
    end = time.monotonic() + seconds
    while (left := running(marker)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_signal_cancels_the_query_and_writes_every_report(
    db: Database, tmp_path: Path, sig: signal.Signals
) -> None:
    """Taken like --max-time: the statement is cancelled in the database, the running check and
    the one not started are ERROR / timeout saying so, every report is written, exit 3."""
    other = Database("duckdb", tmp_path / "other.duckdb")
    other.run("create table t (x integer);")
    if db.kind != "postgresql":
        db.run("create table t (x integer);")  # read-only connections need the file to exist
    marker = f"postrun-signal-{secrets.token_hex(6)}"
    checks = f"""\
        - {{type: sql, name: quick, source: other, query: "select 1", equals: 1}}
        - {{type: sql, name: slow, source: slow, query: "/* {marker} */ {SLOW[db.kind]}", min: 0}}
        - {{type: sql, name: after, source: other, query: "select 1", equals: 1}}
        """
    sources = f'{{slow: {{url: "{db.url}"}}, other: {{url: "{other.url}"}}}}'
    write_suite(tmp_path, textwrap.dedent(checks), sources)
    process = subprocess.Popen(
        command("check", "suite.yml", "--out", "out", "--jobs", "1"),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_slow_query(db, process, marker)
    process.send_signal(sig)
    signalled = time.monotonic()
    _, err = process.communicate(timeout=120)
    took = time.monotonic() - signalled
    assert (process.returncode, err) == (
        3,
        f"postrun: interrupted by {sig.name}: the checks not finished are ERROR / timeout\n",
    )
    assert took < WALL_S
    assert still_running_after(db, marker, 2) == []
    verdict = reports_whole(tmp_path, tmp_path / "out")
    assert verdict is not None
    assert (verdict["verdict"], verdict["exit_code"]) == ("ERROR", 3)
    got = [
        (c["name"], c["status"], c["error"] and c["error"]["category"], c["message"])
        for c in verdict["checks"]
    ]
    assert got == [
        ("quick", "PASS", None, "query returned 1 where 1 expected"),
        (
            "slow",
            "ERROR",
            "timeout",
            f"check 'slow' was cancelled: the run was interrupted by {sig.name} before this check "
            "finished",
        ),
        (
            "after",
            "ERROR",
            "timeout",
            f"check 'after' not started: the run was interrupted by {sig.name}",
        ),
    ]


def test_shutdown_second_signal_during_the_shutdown_exits_at_once(
    duck: Database, tmp_path: Path
) -> None:
    duck.run("create table t (x integer);")
    write_suite(
        tmp_path,
        f'- {{type: sql, name: slow, query: "{SLOW["duckdb"]}", min: 0}}',
        f'{{d: {{url: "{duck.url}"}}}}',
    )
    process = subprocess.Popen(
        command("check", "suite.yml", "--out", "out"),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_slow_query(duck, process, "")
    process.send_signal(signal.SIGTERM)
    time.sleep(0.02)  # the first is being handled: the run is cancelling its statement
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out, err) == (130, "", "")
    reports_whole(tmp_path, tmp_path / "out", present=False)


def test_shutdown_signal_while_report_rerenders_finishes_the_one_being_written(
    tmp_path: Path,
) -> None:
    write_suite(tmp_path, SUITES[1])
    assert harness(tmp_path, "", "check", "suite.yml", "--out", "out", "-q").returncode == 1
    body = """\
        os.fsync = real
        os.kill(os.getpid(), signal.SIGTERM)
    """
    done = harness(tmp_path, body, "report", "out/verdict.json", "--out", "again")
    assert (done.returncode, done.stdout, done.stderr) == (
        3,
        "",
        "postrun: interrupted by SIGTERM while writing the reports; not written: "
        "again/verdict.html, again/junit.xml, again/summary.md\n",
    )
    reports_whole(tmp_path, tmp_path / "again", present=False)
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["verdict.json"]
