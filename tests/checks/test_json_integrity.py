"""json_integrity: complete, valid, schema-valid result files; expected files present."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.errors import SuiteError
from runner.sources.json_files import JsonFileInspector
from runner.suite import load_suite
from tests.conftest import Database, RunYaml, only_check

SCHEMA = {
    "type": "object",
    "required": ["run_id", "status"],
    "properties": {"status": {"enum": ["completed", "failed"]}},
}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    for name in ("run_1", "run_2", "run_3"):
        (folder / f"{name}.json").write_text(json.dumps({"run_id": name, "status": "completed"}))
    (tmp_path / "run.schema.json").write_text(json.dumps(SCHEMA))
    return folder


def suite(check: str, *, sources: str = "") -> str:
    return f"suite: s\n{sources}checks:\n  - {check}\n"


def run(run_yaml: RunYaml, check: str, **kwargs: Any) -> dict[str, Any]:
    return only_check(run_yaml(suite(check, **kwargs)))


def test_json_integrity_passes_on_complete_files(results: Path, run_yaml: RunYaml) -> None:
    result = run(
        run_yaml, "{type: json_integrity, files: results/run_*.json, schema: run.schema.json}"
    )
    assert (result["status"], result["message"]) == ("PASS", "3 files are complete, valid JSON")
    assert result["observed"] == {"files": 3, "bad_files": 0, "missing": 0, "bytes": 126}
    assert result["name"] == "json_integrity:files"


def test_json_integrity_names_truncated_file(results: Path, run_yaml: RunYaml) -> None:
    (results / "run_2.json").write_text('{"run_id": "run_2", "status": "compl')
    result = run(run_yaml, "{type: json_integrity, files: results/run_*.json}")
    assert result["status"] == "FAIL"
    assert result["message"] == "1 of 3 files bad: run_2.json truncated at line 1 column 37"
    assert result["failures"] == [
        {
            "path": str(results / "run_2.json"),
            "reason": "truncated",
            "message": "truncated at line 1 column 37 (byte 36): the text ends inside a string",
            "line": 1,
            "column": 37,
            "offset": 36,
        }
    ]
    assert result["failure_count"] == 1


def test_json_integrity_schema_violation_has_pointer(results: Path, run_yaml: RunYaml) -> None:
    (results / "run_3.json").write_text(json.dumps({"run_id": "run_3", "status": "done"}))
    result = run(
        run_yaml, "{type: json_integrity, files: results/run_*.json, schema: run.schema.json}"
    )
    [failure] = result["failures"]
    assert (failure["reason"], failure["pointer"]) == ("schema", "/status")
    assert "'done' is not one of ['completed', 'failed']" in failure["message"]


@pytest.mark.parametrize(
    ("expected", "missing"),
    [
        ("[run_1.json, run_2.json, run_3.json]", []),
        ("[run_1.json, run_4.json]", ["run_4.json"]),
        ("[sub/run_9.json]", ["sub/run_9.json"]),
    ],
)
def test_json_integrity_expected_list(
    results: Path, run_yaml: RunYaml, expected: str, missing: list[str]
) -> None:
    result = run(
        run_yaml, f"{{type: json_integrity, files: results/run_*.json, expected: {expected}}}"
    )
    assert [f["path"] for f in result["failures"]] == [str(results / m) for m in missing]
    assert {f["reason"] for f in result["failures"]} <= {"missing"}
    assert result["status"] == ("FAIL" if missing else "PASS")


def test_json_integrity_expected_names_relative_to_glob_root(
    tmp_path: Path, run_yaml: RunYaml
) -> None:
    for day in ("d1", "d2"):
        (tmp_path / "out" / day).mkdir(parents=True)
        (tmp_path / "out" / day / "run.json").write_text("{}")
    result = run(
        run_yaml,
        "{type: json_integrity, files: out/*/run.json, expected: [d1/run.json, d3/run.json]}",
    )
    assert [f["path"] for f in result["failures"]] == [str(tmp_path / "out" / "d3" / "run.json")]


def test_json_integrity_expected_from_query_on_a_database(
    results: Path, duck: Database, run_yaml: RunYaml
) -> None:
    duck.run(
        "create table batch_runs (run_id varchar, batch_id varchar);"
        "insert into batch_runs values ('run_1', 'B'), ('run_2', 'B'), ('run_7', 'B'), ('run_8', 'C');"
    )
    result = run(
        run_yaml,
        """type: json_integrity
    source: results
    expected: {query: "select run_id || '.json' from batch_runs where batch_id = :batch", source: db}""",
        sources=(
            "params: {batch: {type: string, default: B}}\n"
            f"sources:\n  db: {{url: '{duck.url}'}}\n  results: {{files: results/run_*.json}}\n"
        ),
    )
    assert result["message"] == "1 of 3 expected files missing: run_7.json"
    assert result["expected"] == {"min_files": 1, "expected_files": 3}


def test_json_integrity_no_files_fails(tmp_path: Path, run_yaml: RunYaml) -> None:
    result = run(run_yaml, "{type: json_integrity, files: nothing/*.json}")
    assert result["status"] == "FAIL"
    assert result["message"] == f"0 files match {tmp_path}/nothing/*.json; at least 1 expected"


def test_json_integrity_min_files_zero_allows_none(tmp_path: Path, run_yaml: RunYaml) -> None:
    result = run(run_yaml, "{type: json_integrity, files: nothing/*.json, min_files: 0}")
    assert result["status"] == "PASS"


@pytest.mark.parametrize(
    ("content", "limits", "reason"),
    [
        ("", "", "empty"),
        ("  \n", "", "empty"),
        ('{"a": 1}', "max_bytes: 4", "too_large"),
        ('{"a": 1}', "min_bytes: 100", "too_small"),
        ('{"a": 1} x', "", "invalid_json"),
    ],
)
def test_json_integrity_reasons(
    results: Path, run_yaml: RunYaml, content: str, limits: str, reason: str
) -> None:
    (results / "run_1.json").write_text(content)
    extra = f", {limits}" if limits else ""
    result = run(run_yaml, f"{{type: json_integrity, files: results/run_1.json{extra}}}")
    assert [f["reason"] for f in result["failures"]] == [reason]


def test_json_integrity_bad_schema_file_is_config_error(results: Path, run_yaml: RunYaml) -> None:
    (results.parent / "run.schema.json").write_text('{"type": "nonsense"}')
    result = run(run_yaml, "{type: json_integrity, files: results/*.json, schema: run.schema.json}")
    assert (result["status"], result["error"]["category"]) == ("ERROR", "config")


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (
            "{type: json_integrity, files: r/*.json, source: results}",
            "check #1 (json_integrity): give 'files' or a file 'source', not both",
        ),
        (
            "{type: json_integrity, files: r/*.json, min_bytes: 10, max_bytes: 5}",
            "check #1 (json_integrity): 'min_bytes' must not exceed 'max_bytes'",
        ),
        (
            "{type: json_integrity, files: r/*.json, schema: missing.json}",
            "check 'json_integrity:files': schema file not found: {dir}/missing.json",
        ),
    ],
)
def test_json_integrity_config_mistakes(tmp_path: Path, check: str, reason: str) -> None:
    path = tmp_path / "s.yml"
    path.write_text(suite(check, sources="sources: {results: {files: r/*.json}}\n"))
    with pytest.raises(SuiteError) as exc:
        load_suite(path, env={})
    assert str(exc.value) == f"{path}:4: " + reason.format(dir=tmp_path)


ODD_BUT_VALID = {
    "int_5000_digits": b'{"run_id": "a", "status": "completed", "n": ' + b"7" * 5000 + b"}",
    "int_100000_digits": b'{"run_id": "b", "status": "failed", "n": -' + b"7" * 100_000 + b"}",
    "exponent": b'{"run_id": "c", "status": "completed", "x": 1e999999}',
    "minus_zero": b'{"run_id": "d", "status": "completed", "x": -0}',
    "surrogate": b'{"run_id": "e\\ud800", "status": "completed"}',
    "deep": b'{"run_id": "f", "status": "failed", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}
NOT_JSON = {
    "deep_cut": (b"[" * 100_000, "truncated", 1, 100_001),
    "nul": (b'{"run_id": "g",\0 "status": "failed"}', "invalid_json", 1, 16),
    "bom": (b'\xef\xbb\xbf{"run_id": "h"}', "invalid_json", 1, 1),
    "bad_utf8": (b'{"run_id": "\xff"}', "invalid_json", 1, 13),
    "nan": (b'{"run_id": "i", "x": NaN}', "invalid_json", 1, 22),
    "infinity": (b'{"run_id": "j", "x": -Infinity}', "invalid_json", 1, 22),
    "truncated": (b'{"run_id": "k", "status": "compl', "truncated", 1, 33),
}


@pytest.mark.parametrize("workers", [False, True], ids=["in-process", "workers"])
@pytest.mark.parametrize("schema", [False, True], ids=["syntax", "schema"])
def test_json_integrity_odd_files_are_findings_never_an_error(
    tmp_path: Path, run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch, workers: bool, schema: bool
) -> None:
    """Numbers Python cannot hold as written, deep nesting, a lone surrogate: valid JSON passes;
    what is not JSON is its file's finding, with its place; the truncated file beside them is
    reported, in this process or in worker processes. (A document nested deeper than Python's
    recursion cannot be loaded to be validated: against a schema, that is its finding.)"""
    from runner.sources import json_files

    if workers:
        monkeypatch.setattr(json_files, "POOL_MIN_WORK", 0)
        monkeypatch.setattr(json_files, "_usable_cpus", lambda: 2)
    folder = tmp_path / "results"
    folder.mkdir()
    for name, data in ODD_BUT_VALID.items():
        (folder / f"{name}.json").write_bytes(data)
    for name, (data, *_) in NOT_JSON.items():
        (folder / f"{name}.json").write_bytes(data)
    (tmp_path / "open.schema.json").write_text(json.dumps({"required": ["run_id"]}))
    extra = ", schema: open.schema.json" if schema else ""
    result = run(run_yaml, f"{{type: json_integrity, files: results/*.json{extra}}}")
    assert (result["status"], result["error"]) == ("FAIL", None)
    deep: list[tuple[object, ...]] = [("deep", "schema", None, None)] if schema else []
    assert sorted(
        (Path(f["path"]).stem, f["reason"], f.get("line"), f.get("column"))
        for f in result["failures"]
    ) == sorted([(name, *where) for name, (_, *where) in NOT_JSON.items()] + deep)
    assert result["observed"]["bad_files"] == len(NOT_JSON) + len(deep)


EXPECTED_ROWS = [
    "run_1.json",
    "run_9.json",
    None,
    "run_9.json",
    "",
    "sub/run_1.json",
    "run_2.json",
    "run_5.json",
    "run_9.json",
    "run_6.json",
    "run_5.json",
    "run_3.json",
    "run_0.json",
]


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
@pytest.mark.parametrize(("sample_limit", "listed"), [(20, 5), (2, 2)])
def test_json_integrity_expected_names_from_a_query_are_streamed(
    results: Path,
    anydb: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spill: bool,
    sample_limit: int,
    listed: int,
) -> None:
    """The names a query returns are compared with the files as they come, in batches: each
    missing name counts once, NULL and empty names not at all; the verdict lists the first
    missing ones in the order the query returned them, and counts them all, whether the count
    stays in memory or spills to temporary files."""
    from runner import RunOptions, load_suite, run_suite
    from runner.checks import json_integrity

    monkeypatch.setattr(json_integrity, "_BATCH", 3, raising=False)
    if spill:
        monkeypatch.setattr(json_integrity, "_IN_MEMORY", 1, raising=False)
    values = ", ".join(
        f"({i}, {'null' if n is None else repr(n)})" for i, n in enumerate(EXPECTED_ROWS)
    )
    anydb.run(
        f"create table expected (i integer, name varchar(40)); insert into expected values {values};"
    )
    (tmp_path / "s.yml").write_text(
        suite(
            "{type: json_integrity, files: results/run_*.json, expected: "
            "{query: 'select name from expected order by i', source: db}}",
            sources=f"sources:\n  db: {{url: '{anydb.url}'}}\n",
        )
    )
    verdict = run_suite(
        load_suite(tmp_path / "s.yml", env={}), RunOptions(sample_limit=sample_limit)
    )
    result = only_check(verdict)
    missing = ["run_9.json", "sub/run_1.json", "run_5.json", "run_6.json", "run_0.json"]
    assert result["message"] == (
        "5 of 11 expected files missing: run_9.json; run_1.json; run_5.json; …"
    )
    assert [f["path"] for f in result["failures"]] == [str(results / m) for m in missing[:listed]]
    assert (result["failure_count"], result["observed"]["missing"]) == (5, 5)
    assert result["expected"] == {"min_files": 1, "expected_files": 11}
    [query] = verdict.queries
    assert (query.sql, query.duration_s is not None) == (
        "select name from expected order by i",
        True,
    )


def test_json_integrity_expected_names_take_bounded_memory(
    tmp_path: Path, duck: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 expected names, 3 files: what the check allocates at its peak does not grow with
    the names (a batch of rows and the count's set, here 1,000 each). Holding every row, as a
    list of dicts and then sets, took 5 MB."""
    import tracemalloc

    from runner import load_suite, run_suite
    from runner.checks import json_integrity

    monkeypatch.setattr(json_integrity, "_BATCH", 1_000, raising=False)
    monkeypatch.setattr(json_integrity, "_IN_MEMORY", 1_000, raising=False)
    duck.run(
        "create table expected as"
        " select format('run_{:07d}.json', i) as name from range(10000) t(i)"
    )
    (tmp_path / "results").mkdir()
    for i in range(3):
        (tmp_path / "results" / f"run_{i:07d}.json").write_text("{}")
    (tmp_path / "s.yml").write_text(
        suite(
            "{type: json_integrity, files: results/*.json, expected: "
            "{query: 'select name from expected', source: db}}",
            sources=f"sources:\n  db: {{url: '{duck.url}'}}\n",
        )
    )
    loaded = load_suite(tmp_path / "s.yml", env={})
    run_suite(loaded)  # imports and first connection, which allocate for good
    tracemalloc.start()
    try:
        verdict = run_suite(loaded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert only_check(verdict)["observed"]["missing"] == 9_997
    assert peak < 2_000_000


def test_json_integrity_failures_are_written_in_reading_order(tmp_path: Path) -> None:
    """The report shows a failure's keys in the order the check writes them."""
    (tmp_path / "cut.json").write_text('{"a": [1, 2')
    problem = JsonFileInspector().inspect(tmp_path / "cut.json")[0]
    assert list(problem.to_dict()) == ["path", "reason", "line", "column", "offset", "message"]
