"""`postrun check --explain / --rerun / --notify / --sample-limit` and `postrun init`, end to end."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from runner.context import DEFAULT_SAMPLE_LIMIT
from tests.conftest import Database
from tests.test_cli import SUITE, load_verdict, postrun, write
from tests.test_notify import Hook


@pytest.fixture
def nightly(duck: Database, tmp_path: Path) -> dict[str, str]:
    """The nightly suite on a batch where one of two checks fails (a NULL P&L)."""
    duck.run(
        """
        create table portfolios (portfolio_id varchar(10), is_active boolean);
        insert into portfolios values ('PF-1', true), ('PF-2', true), ('PF-3', false);
        create table portfolio_snapshots (
            portfolio_id varchar(10), snapshot_date date, daily_pnl float
        );
        insert into portfolio_snapshots values
            ('PF-1', '2025-11-06', 1.5), ('PF-2', '2025-11-06', null);
        """
    )
    write(tmp_path / "checks" / "nightly.yml", SUITE)
    return {"WAREHOUSE_URL": duck.url}


def check(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = postrun(
        "check", "checks/nightly.yml", "-p", "run_date=2025-11-06", *args, cwd=tmp_path, env=env
    )
    return done.returncode, done.stdout, done.stderr


def test_cli_explain_prints_the_shared_query_and_runs_nothing(
    nightly: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = check(tmp_path, nightly, "--explain")
    assert (code, err) == (0, "")
    assert out.startswith("plan of suite 'nightly': 2 of 2 checks\n")
    assert (
        "  q1 on source 'warehouse', one query for 2 checks: "
        "one snapshot per active portfolio, pnl filled\n"
        "    SELECT count(*) AS a0, count(*) - count(daily_pnl) AS a1\n"
        "    FROM portfolio_snapshots\n"
    ) in out
    assert (
        "check 'pnl filled' (not_null)\n  q1 (shared, above)\n"
        "  q3 on source 'warehouse', if the check fails: its sample\n"
        "    SELECT sample.portfolio_id, sample.daily_pnl\n"
        "    FROM (SELECT portfolio_id, daily_pnl\n"
    ) in out
    assert "LIMIT $2) AS sample ORDER BY sample.portfolio_id\n" in out  # found, then sorted
    assert out.endswith("3 statements (1 of them only when their check fails).\n")
    assert not (tmp_path / "reports").exists()


def test_cli_explain_honours_only_and_unknown_names_are_usage_errors(
    nightly: dict[str, str], tmp_path: Path
) -> None:
    code, out, _ = check(tmp_path, nightly, "--explain", "--only", "pnl filled")
    assert code == 0
    assert "1 of 2 checks" in out and "one query for" not in out
    code, _, err = check(tmp_path, nightly, "--explain", "--only", "pnl filed")
    assert (code, err) == (
        2,
        "postrun: no check named 'pnl filed' in the suite (did you mean 'pnl filled'?)\n",
    )


def test_cli_explain_reads_no_file(tmp_path: Path) -> None:
    """--explain prints the statements of a file source's tables without opening a file: a FIFO
    that would block a reader, a symlink loop and a 5,000-digit number are never touched."""
    results = tmp_path / "results"
    results.mkdir()
    os.mkfifo(results / "batch_blocking.json")
    (results / "batch_huge.json").write_text('[{"id": ' + "9" * 5000 + "}]")
    (results / "loop").symlink_to(results, target_is_directory=True)
    write(
        tmp_path / "checks" / "files.yml",
        """\
        suite: files
        sources:
          results:
            tables: {batches: "../results/**/batch_*.json"}
        checks:
          - {type: sql, name: no dangling, query: "select id from batches where id < 0"}
          - {type: row_count, name: some, table: batches, min: 1}
        """,
    )
    done = postrun("check", "checks/files.yml", "--explain", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert "FROM batches" in done.stdout
    assert not (tmp_path / "reports").exists()


def test_cli_rerun_runs_the_failed_check_and_links_the_earlier_verdict(
    nightly: dict[str, str], tmp_path: Path, duck: Database
) -> None:
    code, out, _ = check(tmp_path, nightly, "-q")
    assert code == 1
    earlier = load_verdict(out, tmp_path)
    earlier_path = next((tmp_path / "reports" / "nightly").glob("*/verdict.json"))
    duck.run("update portfolio_snapshots set daily_pnl = 0 where daily_pnl is null;")
    code, out, _ = check(tmp_path, nightly, "--rerun", str(earlier_path))
    assert code == 0, out
    data = load_verdict(out, tmp_path)
    assert [(c["name"], c["status"]) for c in data["checks"]] == [
        ("one snapshot per active portfolio", "SKIP"),
        ("pnl filled", "PASS"),
    ]
    assert data["rerun_of"] == {
        "run_id": earlier["run_id"],
        "path": str(earlier_path),
        "checks": ["pnl filled"],
    }


def test_cli_rerun_of_a_missing_verdict_is_a_usage_error(
    nightly: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = check(tmp_path, nightly, "--rerun", "nope.json")
    assert (code, out) == (2, "")
    assert err == "postrun: --rerun: cannot read nope.json: No such file or directory\n"


def test_cli_notify_posts_on_failure_and_keeps_the_exit_code(
    nightly: dict[str, str], tmp_path: Path
) -> None:
    hook = Hook()
    try:
        code, out, err = check(tmp_path, nightly, "-q", "--notify", hook.url)
    finally:
        hook.close()
    assert (code, err) == (1, "")
    port = hook.server.server_port
    assert f"notified: http://127.0.0.1:{port}/…\n" in out
    (request,) = hook.received
    body = request["body"]
    assert body["postrun"]["verdict"] == "FAIL"
    assert body["postrun"]["report"].endswith("verdict.html")
    assert (
        body["text"].splitlines()[1].startswith("• FAIL pnl filled: portfolio_snapshots has NULLs")
    )


def test_cli_notify_failure_is_reported_and_changes_nothing(
    nightly: dict[str, str], tmp_path: Path
) -> None:
    hook = Hook(status=503)
    try:
        code, out, err = check(tmp_path, nightly, "-q", "--notify", hook.url)
    finally:
        hook.close()
    port = hook.server.server_port
    assert code == 1
    assert err == (
        f"postrun: notification to http://127.0.0.1:{port}/… failed: HTTP 503 Service "
        "Unavailable (the exit code is unchanged)\n"
    )
    assert "s3cr3tToken" not in out + err
    load_verdict(out, tmp_path)  # the reports are written all the same


def test_cli_notify_on_pass_only_when_asked(
    nightly: dict[str, str], tmp_path: Path, duck: Database
) -> None:
    duck.run("update portfolio_snapshots set daily_pnl = 0 where daily_pnl is null;")
    hook = Hook()
    try:
        assert check(tmp_path, nightly, "-q", "--notify", hook.url)[0] == 0
        assert hook.received == []
        assert check(tmp_path, nightly, "-q", "--notify", hook.url, "--notify-on", "always")[0] == 0
    finally:
        hook.close()
    assert [r["body"]["postrun"]["verdict"] for r in hook.received] == ["PASS"]
    code, _, err = check(tmp_path, nightly, "--notify-on", "sometimes")
    assert (code, err) == (
        2,
        "postrun: --notify-on must be 'failure' or 'always', not 'sometimes'\n",
    )


TOKEN = "T0KEN-s3cr3t-9d1f"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"https://hooks.example.com:99999/{TOKEN}", "https://… is not a valid URL (host or port)"),
        (f"https://hooks.example.com:port/{TOKEN}", "https://… is not a valid URL (host or port)"),
        (f"https://[::1/{TOKEN}", "https://… is not a valid URL (host or port)"),
        (f"https://[zz::1]/{TOKEN}", "https://… is not a valid URL (host or port)"),
        (f"https://hooks.example.com/a b/{TOKEN}", "https://hooks.example.com/… holds spaces or"),
        (f"https://hooks.example.com/{TOKEN}\r\nX: y", "https://hooks.example.com/… holds spaces"),
        (f"ftp://hooks.example.com/{TOKEN}", "ftp://hooks.example.com/… is not an http(s) URL"),
        (f"https:///{TOKEN}", "https://… has no host"),
    ],
)
def test_cli_notify_url_is_checked_before_anything_runs(
    nightly: dict[str, str], tmp_path: Path, url: str, problem: str
) -> None:
    code, out, err = check(tmp_path, nightly, "-q", "--notify", url)
    assert (code, out) == (2, "")
    assert err.startswith(f"postrun: --notify: {problem}"), err
    assert TOKEN not in err
    assert not (tmp_path / "reports").exists()  # nothing was judged


def test_cli_notify_is_bounded_by_a_deadline(nightly: dict[str, str], tmp_path: Path) -> None:
    """A webhook that answers one byte every few seconds cannot hold the gate: the whole post
    ends at the deadline (here what --max-time leaves, at least 1 s), the exit code stands."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\n":
                if stop.wait(3):
                    return
                conn.sendall(bytes([byte]))

    server = threading.Thread(target=drip, daemon=True)
    server.start()
    started = time.monotonic()
    try:
        code, _, err = check(
            tmp_path, nightly, "-q", "--max-time", "2s", "--notify", f"http://127.0.0.1:{port}/x"
        )
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 8  # the drip alone would take about 50 s
    assert code == 1
    assert "notification to http://127.0.0.1:" in err and "timed out after" in err


def test_cli_sample_limit(nightly: dict[str, str], tmp_path: Path, duck: Database) -> None:
    duck.run(
        "insert into portfolio_snapshots values "
        "('PF-3', '2025-11-06', null), ('PF-4', '2025-11-06', null);"
    )
    code, out, _ = check(tmp_path, nightly, "-q", "--sample-limit", "2")
    assert code == 1
    pnl = load_verdict(out, tmp_path)["checks"][1]
    assert (len(pnl["failures"]), pnl["failure_count"]) == (2, 3)


def test_cli_sample_limit_default_is_the_library_default() -> None:
    from runner.cli import DEFAULT_SAMPLE_LIMIT as CLI_DEFAULT

    assert CLI_DEFAULT == DEFAULT_SAMPLE_LIMIT


# --- postrun init -----------------------------------------------------------------------------

STARTER_DATA = """
    create table batch_results (id integer, run_date date, amount double, created_at timestamp);
    insert into batch_results values (1, '2025-11-06', 10.5, '2025-11-06 21:00:00');
    create table batch_runs (run_id varchar, status varchar);
    insert into batch_runs values ('r1', 'completed');
    create table batch_items (run_id varchar, status varchar);
    insert into batch_items values ('r1', 'succeeded'), ('r1', 'succeeded');
"""


def test_cli_init_writes_a_starter_suite_that_runs_green(duck: Database, tmp_path: Path) -> None:
    project = tmp_path / "project"
    done = postrun("init", str(project), "--url", duck.url, cwd=tmp_path)
    suite = project / "checks" / "postrun.yml"
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"wrote {suite}\nnext: postrun validate {suite}\n",
        "",
    )
    assert postrun("validate", str(suite), cwd=tmp_path).returncode == 0
    duck.run(STARTER_DATA)
    write(project / "results" / "run_1.json", '{"run_id": "r1", "status": "completed"}')
    done = postrun("check", str(suite), "-p", "run_date=2025-11-06", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    data = load_verdict(done.stdout, tmp_path)
    assert data["counts"]["PASS"] == 5


def test_cli_init_starter_suite_fails_on_a_lying_batch(duck: Database, tmp_path: Path) -> None:
    postrun("init", str(tmp_path), "--url", duck.url, cwd=tmp_path)
    duck.run(STARTER_DATA + "update batch_items set status = 'failed' where true;")
    write(tmp_path / "results" / "run_1.json", '{"run_id": "r1", "status": "compl')
    done = postrun("check", "checks/postrun.yml", "-p", "run_date=2025-11-06", "-q", cwd=tmp_path)
    assert done.returncode == 1
    failed = {
        c["name"] for c in load_verdict(done.stdout, tmp_path)["checks"] if c["status"] == "FAIL"
    }
    assert failed == {"result files are complete JSON", "run status matches its items"}


def test_cli_init_keeps_an_existing_suite_unless_forced(tmp_path: Path) -> None:
    assert postrun("init", cwd=tmp_path).returncode == 0
    suite = tmp_path / "checks" / "postrun.yml"
    suite.write_text("# mine\n")
    done = postrun("init", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "postrun: checks/postrun.yml already exists; pass --force to overwrite it\n",
    )
    assert suite.read_text() == "# mine\n"
    assert postrun("init", "--force", cwd=tmp_path).returncode == 0
    assert suite.read_text().startswith("# A starter postrun suite")


def test_cli_init_asks_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "init", "proj"],
        cwd=tmp_path,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    os.write(primary, b"postgresql://gate@db/warehouse\nout/results\n")
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0, output
    os.close(primary)
    text = output.decode()
    assert "Database URL [duckdb:///proj/warehouse.duckdb]:" in text
    assert "Results folder [proj/results]:" in text
    suite = (tmp_path / "proj" / "checks" / "postrun.yml").read_text()
    assert '    url: "postgresql://gate@db/warehouse"\n' in suite
    # typed in tmp_path: tmp_path/out/results, seen from tmp_path/proj/checks
    assert '    files: "../../out/results/*.json"\n' in suite


@pytest.mark.parametrize(
    ("url", "results"),
    [
        ("duckdb:///data/wh.duckdb", "data/results"),
        ("duckdb:///./data/../data/wh.duckdb?threads=1", "data/results/run_*.json"),
        (None, None),  # the defaults: DIR/warehouse.duckdb and DIR/results
    ],
)
def test_cli_init_paths_resolve_where_they_were_typed(
    tmp_path: Path, url: str | None, results: str | None
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    elsewhere.mkdir()
    if url is None:
        data, database = here / "proj", here / "proj" / "warehouse.duckdb"
        options: list[str] = []
    else:
        data, database = here / "data", here / "data" / "wh.duckdb"
        options = ["--url", url, "--results", str(results)]
    data.mkdir(parents=True)
    Database("duckdb", database).run(STARTER_DATA)
    write(data / "results" / "run_1.json", '{"run_id": "r1", "status": "completed"}')
    done = postrun("init", "proj", *options, cwd=here)
    assert done.returncode == 0, done.stderr
    suite = here / "proj" / "checks" / "postrun.yml"
    url_line = next(line for line in suite.read_text().splitlines() if "url: " in line)
    assert url_line.endswith('.duckdb"') or url_line.endswith('?threads=1"')
    assert '"duckdb:///../' in url_line  # relative to the suite's folder, as suites read it
    done = postrun("check", str(suite), "-p", "run_date=2025-11-06", "-q", cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    assert load_verdict(done.stdout, elsewhere)["counts"]["PASS"] == 5
    assert postrun("validate", "proj/checks/postrun.yml", cwd=here).returncode == 0


def test_cli_init_sqlite_answer_is_relative_to_where_it_was_typed(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    here = tmp_path / "work" / "proj"
    here.mkdir(parents=True)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "init", "."],
        cwd=here,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    os.write(primary, b"sqlite:///../bad/settlement.db\n../bad/results\n")
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0, output
    os.close(primary)
    suite = (here / "checks" / "postrun.yml").read_text()
    # typed in work/proj: work/bad/…, seen from work/proj/checks
    assert '    url: "sqlite:///../../bad/settlement.db"\n' in suite
    assert '    files: "../../bad/results/*.json"\n' in suite


def test_cli_init_starter_suite_fails_on_an_empty_run_date(duck: Database, tmp_path: Path) -> None:
    postrun("init", str(tmp_path), "--url", duck.url, cwd=tmp_path)
    duck.run(STARTER_DATA)
    write(tmp_path / "results" / "run_1.json", '{"run_id": "r1", "status": "completed"}')
    done = postrun("check", "checks/postrun.yml", "-p", "run_date=2025-11-07", "-q", cwd=tmp_path)
    assert done.returncode == 1
    failed = {
        c["name"]: c["message"]
        for c in load_verdict(done.stdout, tmp_path)["checks"]
        if c["status"] == "FAIL"
    }
    assert failed == {
        "the batch wrote rows for the run date": "batch_results has 0 rows where at least 1 "
        "expected",
        "results carry their numbers": "batch_results has 0 rows where at least 1 expected "
        "(min_rows): did the batch write nothing?",
        "results are fresh": "batch_results.created_at is 1d3h old (newest "
        "2025-11-06T21:00:00Z); at most 1d allowed",
    }
