"""The history store's costs, on their own: recording a run of the 10M-row suite, and
`postrun history` over 10,000 stored runs of a 20-check suite.

    python bench/history.py                          # 10M rows, 5 repeats
    python bench/history.py --rows 1000000 --repeat 3 --dir /tmp/bench   # a quick look, data kept

Prints the tables and the history lines of the TARGETS table (bench/_targets.py); exit status 1
when a target is missed. bench/run.py measures the same as part of its SQL cases.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import _data
import _history
import _sql
import _targets


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="snapshot rows (%(default)s)")
    parser.add_argument("--portfolios", type=int, default=10_000, help="rows per date")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (%(default)s)")
    parser.add_argument("--dir", type=Path, help="data folder, kept and reused")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="postrun-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        house = _data.build_warehouse(folder, args.rows, args.portfolios, sqlite=False)
        suite = _sql.write_suites(folder, house)["duckdb", "full"]
        tables = [
            _history.write_table(suite, house.run_date.isoformat(), folder, args.repeat),
            _history.query_table(folder, args.repeat),
        ]
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    for table in tables:
        print(f"\n{table.render()}", flush=True)
    wrong = [row for table in tables for row in table.rows if not _judged(row.result)]
    for row in wrong:
        print(f"unexpected result: {row.case}: {row.result}", file=sys.stderr)
    found = _targets.targets(tables)
    print(f"\n{_targets.render(found)}", flush=True)
    missed = [t for t in found if not t.met]
    for target in missed:
        print(f"over target: {target.figure}", file=sys.stderr)
    return 1 if missed or wrong else 0


def _judged(result: str) -> bool:
    return result in ("PASS", f"{_history.RUNS} runs")


if __name__ == "__main__":
    sys.exit(main())
