"""Values the reports cannot hold natively, from real databases and file systems, through
`postrun check` and back through `postrun report`: every report written, nothing lost, nothing
unbounded (integers past 64 bits, NaN and infinities, undecodable file names, a 100 MB text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema

from runner.values import LINE_LIMIT, VALUE_LIMIT
from tests.conftest import VERDICT_SCHEMA, Database

REPORTS = ["junit.xml", "summary.md", "verdict.html", "verdict.json"]


def postrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTRUN_PARAM_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_check(
    tmp_path: Path, suite: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`postrun check` of ``suite`` into tmp_path/out; the result and verdict.json, validated."""
    (tmp_path / "suite.yml").write_text(textwrap.dedent(suite))
    done = postrun("check", "suite.yml", "--out", "out", *args, cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == REPORTS, done.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_bytes())
    jsonschema.validate(verdict, VERDICT_SCHEMA)
    return done, verdict


def assert_reads_back(tmp_path: Path) -> None:
    """`postrun report` re-renders, from the stored verdict.json, every report byte for byte."""
    again = postrun("report", "out/verdict.json", "--out", "again", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    for name in REPORTS:
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "out" / name).read_bytes()


def tag(kind: str, text: str) -> dict[str, str]:
    return {f"${kind}": text}


def shown_as(value: Any) -> str:
    """How the HTML and Markdown reports show a stored value: a tagged number as the number."""
    if value is None:
        return "null"
    return next(iter(value.values())) if isinstance(value, dict) else str(value)


NUMBERS = {
    "duckdb": (
        "select 170141183460469231731687303715884105727::hugeint as big,"
        " 340282366920938463463374607431768211455::uhugeint as unsigned,"
        " (-170141183460469231731687303715884105727)::hugeint - 1 as negative,"
        " 'nan'::double as nan, 'inf'::double as inf, '-inf'::double as minus_inf,"
        " null as absent"
    ),
    "postgresql": (
        "select 12345678901234567890123456789012345678::numeric(38,0) as big,"
        " 1e40::numeric as unsigned, -9223372036854775809::numeric as negative,"
        " 'NaN'::float8 as nan, 'Infinity'::numeric as inf, '-Infinity'::float8 as minus_inf,"
        " null as absent"
    ),
    # SQLite has no integer past 64 bits: a longer literal is a REAL, a quoted one text.
    "sqlite": (
        "select 123456789012345678901234567890 as big,"
        " '123456789012345678901234567890' as unsigned, -9223372036854775808 as negative,"
        " 9e999 as inf, -9e999 as minus_inf, null as absent"
    ),
}
STORED: dict[str, dict[str, Any]] = {
    "duckdb": {
        "big": tag("int", "170141183460469231731687303715884105727"),
        "unsigned": tag("int", "340282366920938463463374607431768211455"),
        "negative": tag("int", "-170141183460469231731687303715884105728"),
        "nan": tag("float", "NaN"),
        "inf": tag("float", "Infinity"),
        "minus_inf": tag("float", "-Infinity"),
        "absent": None,
    },
    "postgresql": {
        "big": tag("int", "12345678901234567890123456789012345678"),
        "unsigned": tag("int", "1" + "0" * 40),
        "negative": tag("int", "-9223372036854775809"),
        "nan": tag("float", "NaN"),
        "inf": tag("float", "Infinity"),
        "minus_inf": tag("float", "-Infinity"),
        "absent": None,
    },
    "sqlite": {
        "big": 1.2345678901234568e29,
        "unsigned": "123456789012345678901234567890",
        "negative": -9223372036854775808,
        "inf": tag("float", "Infinity"),
        "minus_inf": tag("float", "-Infinity"),
        "absent": None,
    },
}


def test_report_values_json_cannot_hold_are_tagged_in_every_report(
    db: Database, tmp_path: Path
) -> None:
    if db.kind != "postgresql":
        db.run("create table t (x integer);")  # read-only connections need the file to exist
    done, verdict = run_check(
        tmp_path,
        f"""\
        suite: numbers
        sources: {{d: {{url: "{db.url}"}}}}
        checks:
          - {{type: sql, name: numbers, query: "{NUMBERS[db.kind]}"}}
        """,
    )
    assert (done.returncode, done.stderr) == (1, "")
    (check,) = verdict["checks"]
    assert (check["status"], check["failures"]) == ("FAIL", [STORED[db.kind]])
    html = (tmp_path / "out" / "verdict.html").read_text()
    junit = (tmp_path / "out" / "junit.xml").read_text()
    summary = (tmp_path / "out" / "summary.md").read_text()
    for name, value in STORED[db.kind].items():
        shown = shown_as(value)
        text = isinstance(value, str)
        kind = "null" if value is None else "" if text else "num"
        assert (f'<td class="{kind}">' if kind else "<td>") + f"{shown}</td>" in html, name
        assert json.dumps({name: value}, separators=(",", ":"))[1:-1] in junit, name
    evidence = summary.replace("\\_", "_")  # clipped at 200 characters: the first values
    for name in ("big", "unsigned", "negative"):
        assert f"{name}={shown_as(STORED[db.kind][name])}, " in evidence, name
    assert_reads_back(tmp_path)


def test_report_values_undecodable_file_names_are_escaped_in_every_report(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "run_ok.json").write_text("{}")
    Path(os.fsdecode(bytes(results) + b"/run_\xff.json")).write_text('{"cut": ')
    done, verdict = run_check(
        tmp_path,
        """\
        suite: names
        checks:
          - {type: json_integrity, files: "results/*.json"}
        """,
    )
    assert (done.returncode, done.stderr) == (1, "")
    (check,) = verdict["checks"]
    assert check["message"] == ("1 of 2 files bad: run_\\xff.json truncated at line 1 column 9")
    assert [(Path(f["path"]).name, f["reason"]) for f in check["failures"]] == [
        ("run_\\xff.json", "truncated")
    ]
    assert "FAIL   json_integrity:files  1 of 2 files bad: run_\\xff.json truncated" in done.stdout
    assert "run_\\xff.json" in (tmp_path / "out" / "verdict.html").read_text()
    assert "run_\\xff.json" in (tmp_path / "out" / "junit.xml").read_text()
    assert "run\\_\\\\xff.json" in (tmp_path / "out" / "summary.md").read_text()
    assert_reads_back(tmp_path)


HUGE = 100 * 2**20
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)
"""Runs argv[2:] and writes its peak RSS (KiB) to argv[1]: the launcher's own is a few MB."""


def test_report_values_a_100_mb_value_is_capped_everywhere(tmp_path: Path) -> None:
    """One 100 MB text from the database: each report stays small, the sample keeps the first
    kilobyte and the full length, the printed lines are capped, the memory stays near what the
    driver itself needs (DuckDB holds some 600 MB to hand over a 100 MB text)."""
    suite = f"""\
        suite: huge
        sources: {{d: {{url: "duckdb:///:memory:"}}}}
        checks:
          - {{type: sql, name: huge, query: "select repeat('x', {HUGE}) as big, 1 as id"}}
          - {{type: sql, name: one, query: "select repeat('y', {HUGE})", equals: "y"}}
        """
    (tmp_path / "suite.yml").write_text(textwrap.dedent(suite))
    out, err, peak = tmp_path / "stdout", tmp_path / "stderr", tmp_path / "peak"
    command = [sys.executable, "-m", "runner", "check", "suite.yml", "--out", "out", "-v"]
    with out.open("w") as stdout, err.open("w") as stderr:
        # started by a small launcher: Linux keeps ru_maxrss across fork and exec, so a child of
        # this pytest process would report pytest's own peak (a gigabyte late in a full run)
        process = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, str(peak), *command, "--jobs", "1"],
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
        )
    assert (process.returncode, err.read_text()) == (1, "")
    peak_kib = int(peak.read_text())
    assert peak_kib < 1000 * 1024, peak_kib  # it took 1.7 GB
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "out").iterdir()}
    assert sorted(sizes) == REPORTS
    assert max(sizes.values()) < 64 * 1024, sizes  # each was 200-300 MB
    kept = "x" * 992 + f"… [truncated: {HUGE} bytes]"
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_bytes())
    huge, one = verdict["checks"]
    assert huge["failures"] == [{"big": kept, "id": 1}]
    assert huge["message"] == (
        "query returned 1 violating row; first: big="
        + "x" * 168
        + f"… [truncated: {HUGE} bytes], id=1"
    )
    assert len(kept.encode()) <= VALUE_LIMIT
    assert (
        one["message"]
        == "query returned '" + "y" * 168 + f"… [truncated: {HUGE} bytes]' where 'y' expected"
    )
    assert one["observed"] == {"value": "y" * 992 + f"… [truncated: {HUGE} bytes]"}
    printed = out.read_text()
    assert len(printed) < 8 * 1024
    assert max(len(line) for line in printed.splitlines()) == LINE_LIMIT  # -v prints the sample
