"""Time of the `schema` check on result files: pandera validating each file's records.

    python bench/schema_files.py [--files 20000] [--backend polars,pandas] [--dir DIR]

Builds (or reuses, in DIR) bench/_data.py's result files: ~50 KB each, 110 operations per file,
1 in 100 cut mid-write. Runs one `schema` check with `files` + `records: /operations` per
backend in this process (after a warm-up on one folder, so imports are not counted) and prints
the wall time, files and records per second, and what the check found: the cut files must be
reported (as invalid_json), every other file passes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _data import OPERATIONS, build_result_files

if TYPE_CHECKING:
    from runner.results import CheckResult

SCHEMA = """\
schema_type: {schema_type}
name: operations
columns:
  op_id: {{dtype: {string}, nullable: false, str_matches: '^run-\\d{{7}}-op-\\d{{3}}$'}}
  kind: {{dtype: {string}, isin: [extract, validate, price, aggregate, load]}}
  status: {{dtype: {string}, isin: [SUCCESS, RETRIED, SKIPPED]}}
  rows_in: {{dtype: {integer}, greater_than_or_equal_to: 0}}
  rows_out: {{dtype: {integer}, greater_than_or_equal_to: 0}}
  duration_ms: {{dtype: {floating}, greater_than: 0}}
"""
DTYPES = {
    "polars": {
        "schema_type": "polars_dataframe",
        "string": "String",
        "integer": "Int64",
        "floating": "Float64",
    },
    "pandas": {
        "schema_type": "dataframe",
        "string": "str",
        "integer": "int64",
        "floating": "float64",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--backend", default="polars,pandas")
    parser.add_argument("--dir", type=Path, default=None, help="keep the data here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.dir or Path(scratch)
        data = build_result_files(root / "results", args.files)
        print(
            f"{len(data.paths)} result files, {data.bytes / 1e9:.2f} GB, {OPERATIONS} records each"
        )
        print("| backend | files | records | s | files/s | records/s | verdict |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for backend in args.backend.split(","):
            schema = root / f"operations.{backend}.pandera.yml"
            schema.write_text(SCHEMA.format(**DTYPES[backend]))
            _measure(root, schema, data.folders[0] / "*.json")  # warm-up: imports, first frames
            seconds, result = _measure(root, schema, data.root / "*" / "*.json")
            records = result.observed["records"]
            files = result.observed["files"]
            verdict = f"{result.status.value} {result.observed['bad_files']} bad files"
            expected_bad = len(data.truncated)
            check = "ok" if result.observed["bad_files"] == expected_bad else "UNEXPECTED"
            print(
                f"| {backend} | {files} | {records} | {seconds:.1f} | {files / seconds:,.0f}"
                f" | {records / seconds:,.0f} | {verdict} ({expected_bad} cut: {check}) |"
            )


def _measure(root: Path, schema: Path, pattern: Path) -> tuple[float, CheckResult]:
    from runner import load_suite, run_suite

    suite = root / "schema_bench.yml"
    suite.write_text(
        "suite: schema-bench\nchecks:\n"
        f"  - {{type: schema, files: '{pattern}', records: /operations, schema: '{schema}',"
        " timeout: 1h}\n"
    )
    started = time.perf_counter()
    verdict = run_suite(load_suite(suite, env={}))
    return time.perf_counter() - started, verdict.checks[0]


if __name__ == "__main__":
    main()
