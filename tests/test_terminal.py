"""What `postrun` prints: control characters from the data or the suite written out (they would
set the terminal's title, colour its text, reorder it), each line capped; postrun's own colours
only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.values import LINE_LIMIT

# Raw, these would act on a terminal; printed, each must appear as its escape.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
POSTRUN_COLOURS = re.compile("\x1b\\[[0-9;]*m")
PROGRESS = re.compile("\r[^\r\n]*\x1b\\[K")
"""The progress line on a terminal's stderr: each update rewrites it, the last clears it."""
HOSTILE_SUITE = """\
    suite: hostile
    sources: {d: {url: "duckdb:///:memory:"}}
    checks:
      - type: sql
        name: "title\\e]0;owned\\a"
        query: "select chr(27) || ']0;pwned' || chr(7) as t, chr(27) || '[31mred' as c,
          'x' || chr(8238) || 'y' as bidi, 'a' || chr(10) || 'b' as nl, chr(155) as csi"
      - {type: sql, name: broken, query: "select cast(chr(27) || '[2J' as integer)"}
    """
PRINTED = [
    "FAIL   title\\x1b]0;owned\\x07  query returned 1 violating row; first: t=\\x1b]0;pwned\\x07,"
    " c=\\x1b[31mred, bidi=x\\u202ey, nl=a\\nb, csi=\\x9b",
    '       - {"t": "\\u001b]0;pwned\\u0007", "c": "\\u001b[31mred", "bidi": "x\\u202ey",'
    ' "nl": "a\\nb", "csi": "\\u009b"}',
    "ERROR  broken  Source 'd' refused the query: Conversion Error: Could not convert string"
    " '\\x1b[2J' to INT32",
    "       error: data_malformed, not retryable",
    "",
]


def run(args: list[str], cwd: Path, *, terminal: bool) -> tuple[int, str]:
    """`postrun ARGS` with stdout and stderr on a pipe, or on a pseudo-terminal; the exit code
    and everything printed."""
    command = [sys.executable, "-m", "runner", *args]
    if not terminal:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr
    primary, secondary = pty.openpty()
    process = subprocess.Popen(command, cwd=cwd, stdout=secondary, stderr=secondary)
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    return process.wait(timeout=120), output.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_terminal_check_writes_controls_from_the_data_out(tmp_path: Path, terminal: bool) -> None:
    (tmp_path / "suite.yml").write_text(textwrap.dedent(HOSTILE_SUITE))
    code, printed = run(["check", "suite.yml", "-v", "--out", "out"], tmp_path, terminal=terminal)
    assert code == 3, printed
    progress = PROGRESS.findall(printed)
    if terminal:  # one update per check done, then the line is cleared
        assert (len(progress), progress[-1]) == (3, "\r\x1b[K")
        assert any("done (title\\x1b]0;owned\\x07)\x1b[K" in p for p in progress), progress
    else:
        assert progress == []
    plain = POSTRUN_COLOURS.sub("", PROGRESS.sub("", printed))
    assert RAW.findall(plain) == []
    assert plain.splitlines()[: len(PRINTED)] == PRINTED
    assert bool(POSTRUN_COLOURS.search(printed)) is terminal  # its own styling stays
    assert json.loads((tmp_path / "out" / "verdict.json").read_text())["checks"][0]["name"] == (
        "title\x1b]0;owned\x07"  # the reports keep the data as it is
    )


def test_terminal_lines_are_capped(tmp_path: Path) -> None:
    (tmp_path / "suite.yml").write_text(
        textwrap.dedent(
            f"""\
            suite: long
            sources: {{d: {{url: "duckdb:///:memory:"}}}}
            checks:
              - type: sql
                name: "{"n" * 600}"
                query: "select repeat('z', 3000) as a, repeat('z', 3000) as b, repeat('z', 3000) as c"
            """
        )
    )
    code, printed = run(["check", "suite.yml", "-v", "--out", "out"], tmp_path, terminal=False)
    assert code == 1
    lines = printed.splitlines()
    assert [len(line) for line in lines[:2]] == [LINE_LIMIT, LINE_LIMIT]
    assert lines[0].startswith("FAIL   " + "n" * 600 + "  query returned 1 violating row")
    assert lines[0].endswith("z…") and lines[1].endswith("z…")


def test_terminal_validate_writes_out_what_it_quotes_from_the_suite(tmp_path: Path) -> None:
    (tmp_path / "suite.yml").write_text(
        'suite: v\nchecks:\n  - {type: sql, query: "select 1", "\\e]0;x\\a\\u202e": 1}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "runner", "validate", "suite.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "postrun: suite.yml:3: check #1 (sql): unknown key '\\x1b]0;x\\x07\\u202e'\n",
    )


def test_terminal_report_writes_out_the_paths_it_prints(tmp_path: Path) -> None:
    (tmp_path / "suite.yml").write_text(
        'suite: p\nsources: {d: {url: "duckdb:///:memory:"}}\n'
        'checks:\n  - {type: sql, query: "select 1", equals: 1}\n'
    )
    out = "out\x1b[2J\x07"
    code, printed = run(["check", "suite.yml", "-q", "--out", out], tmp_path, terminal=False)
    assert (code, printed.splitlines()[-1]) == (0, "report: out\\x1b[2J\\x07/verdict.html")
    done = subprocess.run(
        [sys.executable, "-m", "runner", "report", f"{out}/verdict.json", "--format", "md"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\\x1b[2J\\x07/summary.md\n", "")
