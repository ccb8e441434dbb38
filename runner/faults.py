"""The incidents `postrun demo` can inject, one line each: kept apart from the demo's builder so
that `postrun demo --help` lists them without loading DuckDB."""

from __future__ import annotations

FAULTS: dict[str, str] = {
    "truncated-result": "one ETL result file cut mid-write; its batch marked failed (seed 000)",
    "missing-result": "one expected ETL result file never written (seed 000 family)",
    "stuck-batch": (
        "an ingestion batch left 'processing' after all its files succeeded; "
        "no run_summaries row (seed 001)"
    ),
    "green-with-failures": (
        "a file-ingestion run marked SUCCESS although some of its files FAILED (seed 003)"
    ),
    "completed-all-failed": (
        "a wallet job 'Completed' although every wallet failed, no error_summary (seed 002)"
    ),
    "missing-snapshots": "active portfolios without a snapshot for the run date (seed 004)",
    "null-pnl": "snapshots written with NULL daily_pnl / cumulative_pnl (seed 004)",
    "short-run": (
        "the nightly portfolio batch finished in 30 minutes where it takes 6-8 hours (seed 004);"
        " caught against the batch's own history (--history-days)"
    ),
}
DEFAULT_FAULTS: tuple[str, ...] = ("truncated-result", "null-pnl")
CLEAN = "none"
