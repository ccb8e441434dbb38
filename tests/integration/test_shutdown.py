"""The verdict is always written: a closed or full stdout or stderr, SIGTERM or SIGINT in the
middle of a query or of a report. A real `postrun` process each time; afterwards every report is
complete (verdict.json parses and validates) or absent, no temporary file is left, the exit code
is the documented one, and no statement of the run is still running in the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import VERDICT_SCHEMA

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
        assert reports_whole(tmp_path, run)["exit_code"] == 1  # type: ignore[index]
