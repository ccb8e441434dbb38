"""A realistic post-batch demo world (DuckDB tables + JSON result files) with incidents injected."""

from __future__ import annotations

import json
import random
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from runner.faults import CLEAN, DEFAULT_FAULTS, FAULTS

__all__ = [
    "CLEAN",
    "DEFAULT_FAULTS",
    "ETL_BATCH_ID",
    "FAULTS",
    "MARKER",
    "RUN_DATE",
    "SEED",
    "DemoBatch",
    "build_demo",
    "find_demo_suite",
]

MARKER = ".postrun-demo"
SEED = 20251106
RUN_DATE = date(2025, 11, 6)
ETL_BATCH_ID = "42fb1529-08ec-43f1-94be-5ebf94fa3db4"

Row = tuple[Any, ...]
_CENT = Decimal("0.01")
_INSERT_CHUNK = 250
_EQUITY_UPDATED_AT = datetime(2025, 11, 7, 3, 16)

_DDL: dict[str, str] = {
    "portfolios": "portfolio_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, "
    "is_active BOOLEAN NOT NULL, equity_balance DECIMAL(18,2), updated_at TIMESTAMP",
    "portfolio_snapshots": "portfolio_id VARCHAR NOT NULL, snapshot_date DATE NOT NULL, "
    "equity_balance DECIMAL(18,2), daily_pnl DECIMAL(18,2), cumulative_pnl DECIMAL(18,2), "
    "created_at TIMESTAMP, PRIMARY KEY (portfolio_id, snapshot_date)",
    "market_prices": "symbol VARCHAR NOT NULL, price_date DATE NOT NULL, close DECIMAL(12,2), "
    "PRIMARY KEY (symbol, price_date)",
    "volatility_metrics": "portfolio_id VARCHAR NOT NULL, calc_date DATE NOT NULL, vol_30d DOUBLE",
    "stress_test_results": "portfolio_id VARCHAR NOT NULL, calc_date DATE NOT NULL, "
    "scenario VARCHAR NOT NULL, pnl_impact DECIMAL(18,2)",
    "batch_runs": "batch_id VARCHAR NOT NULL, run_id VARCHAR PRIMARY KEY, pipeline VARCHAR, "
    "status VARCHAR, started_at TIMESTAMP",
    "processing_jobs": "batch_id VARCHAR PRIMARY KEY, run_id VARCHAR, status VARCHAR NOT NULL, "
    "total_files INTEGER, files_success INTEGER, files_failed INTEGER, "
    "created_at TIMESTAMP, updated_at TIMESTAMP",
    "file_extractions": "extraction_id INTEGER PRIMARY KEY, run_id VARCHAR NOT NULL, "
    "file_path VARCHAR, status VARCHAR NOT NULL, error_category VARCHAR, error_message VARCHAR, "
    "retry_count INTEGER, finished_at TIMESTAMP",
    "run_summaries": "run_id VARCHAR PRIMARY KEY, total_files INTEGER, success_files INTEGER, "
    "failed_files INTEGER, created_at TIMESTAMP",
    "ingestion_runs": "run_id VARCHAR PRIMARY KEY, ingestion_name VARCHAR, "
    "status VARCHAR NOT NULL, started_at TIMESTAMP, finished_at TIMESTAMP",
    "processed_files": "run_id VARCHAR NOT NULL, file_path VARCHAR NOT NULL, "
    "status VARCHAR NOT NULL, error_category VARCHAR, error_message VARCHAR, retryable BOOLEAN, "
    "retry_count INTEGER",
    "wallet_jobs": "job_id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, total_wallets INTEGER, "
    "successful_wallets VARCHAR, failed_wallets VARCHAR, error_summary VARCHAR, "
    "updated_at TIMESTAMP",
    "wallet_results": "job_id VARCHAR NOT NULL, wallet VARCHAR NOT NULL, status VARCHAR NOT NULL",
    "portfolio_batch_runs": "run_date DATE PRIMARY KEY, started_at TIMESTAMP NOT NULL, "
    "finished_at TIMESTAMP, status VARCHAR NOT NULL",
}

_OWNERS = (
    "Okafor", "Lindqvist", "Haddad", "Moreau", "Tanaka", "Brennan", "Castillo", "Novak",
    "Adeyemi", "Kowalski", "Ferreira", "Schmidt", "Iyer", "Dubois", "Nakamura", "Reyes",
)  # fmt: skip
_FIRST_NAMES = ("Amara", "Jonas", "Leila", "Mateo", "Yuki", "Sean", "Ines", "Pavel", "Chidi")
_STRATEGIES = (
    "Balanced Growth", "Dividend Income", "Global Macro", "Tech Momentum", "Value Core",
    "Emerging Markets", "Low Volatility", "Small Cap Blend", "ESG Leaders", "Income Plus",
)  # fmt: skip
_SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "AVGO", "TSLA", "JPM", "LLY",
    "V", "UNH", "XOM", "MA", "JNJ", "PG", "HD", "COST", "MRK", "ABBV", "CVX", "CRM", "BAC",
    "NFLX", "KO", "PEP", "AMD", "ADBE", "TMO", "WMT", "ACN", "LIN", "MCD", "CSCO", "ABT",
    "ORCL", "DIS", "WFC", "INTU", "DHR", "QCOM", "TXN", "VZ", "IBM", "CAT", "AMGN", "PFE",
    "GS", "SPGI", "NEE", "UNP", "LOW", "RTX", "HON", "BKNG", "SBUX", "DE",
)  # fmt: skip
_CITIES = ("Austin", "Leeds", "Lyon", "Osaka", "Porto", "Denver", "Gdansk", "Lagos", "Pune")
_STRESS_SCENARIOS = (("gfc_2008", -0.38), ("covid_2020", -0.27), ("rates_up_200bp", -0.09))
_ETL_PIPELINES = (
    ("run_20260101_204611", "DIM_CUSTOMER", 48_213),
    ("run_20260101_204618", "DIM_DATE", 3_653),
    ("run_20260101_204636", "DIM_PRODUCT", 2_147),
    ("run_20260101_204641", "DIM_STORE", 142),
    ("run_20260101_204646", "FACT_SALES", 1_204_877),
)
_VALIDATORS = (
    "validate_schema",
    "validate_nulls",
    "validate_record_counts",
    "validate_uniqueness",
    "validate_referential_integrity",
)
# (how processing_jobs.run_id relates to batch_id, files, failed files); index 1 is the
# batch the stuck-batch fault leaves in 'processing'.
_PROCESSING_PLAN = (
    ("same", 5, 0),
    ("null", 7, 0),
    ("other", 6, 0),
    ("same", 8, 2),
    ("null", 4, 4),
    ("same", 9, 1),
)
_STUCK_BATCH = 1
# (ingestion name, files, failed files); index 1 is the PARTIAL run the green-with-failures
# fault marks SUCCESS.
_INGESTION_PLAN = (
    ("vendor_invoices_json", 12, 0),
    ("pos_transactions_json", 10, 3),
    ("crm_contacts_csv", 5, 5),
    ("supplier_catalog_parquet", 8, 0),
)
_GREEN_RUN = 1
# per wallet job, each wallet's outcome; index 2 is the all-failed job the
# completed-all-failed fault marks 'Completed'.
_WALLET_PLAN = (
    ("ok",) * 6,
    ("ok", "ok", "failed", "ok", "timeout", "ok", "ok", "failed"),
    ("timeout", "failed", "timeout", "failed"),
    ("ok",) * 5,
    ("ok", "ok", "timeout", "ok", "ok", "ok", "ok"),
)
_ALL_FAILED_JOB = 2
_EXTRACTION_ERRORS = (
    ("data_malformed", "PDF parse error: unexpected EOF in cross-reference table"),
    ("timeout", "OCR worker timed out after 120s on page 14"),
    ("unreadable", "document is password-protected; extraction not possible"),
)
_INGESTION_ERRORS = (
    (
        "data_malformed",
        False,
        "org.apache.spark.SparkException: Malformed records are detected in record parsing. "
        "Parse Mode: FAILFAST. To process malformed records as null result, try setting the "
        "option 'mode' as 'PERMISSIVE'.",
    ),
    (
        "schema_mismatch",
        False,
        "org.apache.spark.sql.AnalysisException: [CANNOT_UP_CAST_DATATYPE] Cannot up cast "
        'amount from "STRING" to "DECIMAL(18,2)".',
    ),
    (
        "connectivity",
        True,
        "java.net.SocketTimeoutException: Read timed out while fetching "
        "s3a://lake-landing/ (attempt 3 of 3)",
    ),
)


@dataclass(frozen=True)
class DemoBatch:
    """A built demo folder: where things are, how to run the demo suite on it, what was broken."""

    root: Path
    database: Path
    results_dir: Path
    params: dict[str, str]
    faults: tuple[str, ...]
    injected: dict[str, list[str]]


@dataclass
class _World:
    """Everything the demo batch left behind, before faults are injected."""

    tables: dict[str, list[Row]] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, list[str]] = field(default_factory=dict)


# --- public API ---------------------------------------------------------------------------


def build_demo(
    root: Path,
    faults: Sequence[str] = DEFAULT_FAULTS,
    *,
    night: int = 0,
    keep_reports: bool = False,
) -> DemoBatch:
    """Build the demo folder at `root` with `faults` injected ("none": a clean batch). ``night``
    draws the portfolio batch's own duration (the rest of the world is the same every night);
    ``keep_reports`` keeps `root/reports` (and the history store in it) across a rebuild."""
    chosen = _check_faults(faults)
    root = _prepare_root(Path(root), keep=("reports",) if keep_reports else ())
    world = _generate(random.Random(SEED))
    world.tables["portfolio_batch_runs"] = [_portfolio_batch(random.Random(SEED + night))]
    world.targets["short-run"] = [RUN_DATE.isoformat()]  # the night whose batch was cut short
    results_dir = root / "results"
    database = root / "portfolio.duckdb"
    _write_documents(results_dir, world.documents)
    _write_database(database, world, chosen)
    for fault in chosen:
        if fault in _FILE_FAULTS:
            _FILE_FAULTS[fault](results_dir, world.targets[fault])
    params = {
        "run_date": RUN_DATE.isoformat(),
        "db": str(database),
        "results_dir": str(results_dir),
        "etl_batch_id": ETL_BATCH_ID,
        "history_db": str(root / "reports" / "history.sqlite"),
    }
    injected = {fault: list(world.targets[fault]) for fault in chosen}
    return DemoBatch(root, database, results_dir, params, chosen, injected)


def find_demo_suite() -> Path:
    """checks/demo.yml of a source checkout, else the copy shipped inside the wheel."""
    in_repo = Path(__file__).resolve().parent.parent / "checks" / "demo.yml"
    if in_repo.is_file():
        return in_repo
    return Path(__file__).resolve().parent / "shipped" / "checks" / "demo.yml"


def _check_faults(faults: Sequence[str]) -> tuple[str, ...]:
    """The faults to inject in canonical order; () for a clean batch."""
    wanted = {faults} if isinstance(faults, str) else set(faults)
    unknown = sorted(wanted - set(FAULTS) - {CLEAN})
    if unknown:
        valid = ", ".join([CLEAN, *FAULTS])
        raise ValueError(f"unknown fault {', '.join(map(repr, unknown))}; valid faults: {valid}")
    if CLEAN in wanted:
        if len(wanted) > 1:
            raise ValueError(f"'{CLEAN}' (a clean batch) cannot be combined with other faults")
        return ()
    return tuple(name for name in FAULTS if name in wanted)


def _prepare_root(root: Path, keep: tuple[str, ...] = ()) -> Path:
    """An empty demo folder at `root` (but for the entries named in ``keep``): created, or
    emptied when an earlier build made it."""
    root = root.absolute()
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"{root} is not a directory")
        entries = list(root.iterdir())
        if entries and not (root / MARKER).is_file():
            raise ValueError(f"{root} is not empty and not a postrun demo folder")
        for entry in entries:
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(
        "Built by `postrun demo`; rebuilding deletes everything in this folder.\n",
        encoding="utf-8",
    )
    return root


# --- generation ---------------------------------------------------------------------------


def _generate(rng: random.Random) -> _World:
    """The clean world, plus which ids each fault would break (always drawn, so every build
    with the same seed has the same data whatever faults are chosen)."""
    world = _World()
    equity = _portfolio_tables(rng, world)
    _market_prices(rng, world)
    _analytics_tables(rng, world, equity)
    _etl_batch(rng, world)
    _processing_tables(rng, world)
    _ingestion_tables(rng, world)
    _wallet_tables(rng, world)
    return world


def _money(value: float) -> Decimal:
    return Decimal(value).quantize(_CENT)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute))


def _portfolio_tables(rng: random.Random, world: _World) -> dict[str, Decimal]:
    """60 portfolios (58 active) with 4 days of snapshots each; returns run-date equity."""
    inactive = set(rng.sample(range(1, 61), 2))
    portfolios: list[Row] = []
    snapshots: list[Row] = []
    equity: dict[str, Decimal] = {}
    for number in range(1, 61):
        portfolio_id = f"PF-{number:04d}"
        name = f"{rng.choice(_OWNERS)} {rng.choice(_STRATEGIES)}"
        if number in inactive:
            closed = _money(rng.uniform(5_000, 90_000))
            portfolios.append((portfolio_id, name, False, closed, datetime(2025, 9, 30, 18, 5)))
            continue
        equity[portfolio_id], rows = _snapshot_series(rng, portfolio_id)
        snapshots.extend(rows)
        updated = _EQUITY_UPDATED_AT + timedelta(seconds=7 * number)
        portfolios.append((portfolio_id, name, True, equity[portfolio_id], updated))
    world.tables["portfolios"] = portfolios
    world.tables["portfolio_snapshots"] = snapshots
    active = sorted(equity)
    missing = sorted(rng.sample(active, 5))
    world.targets["missing-snapshots"] = missing
    world.targets["null-pnl"] = sorted(rng.sample([p for p in active if p not in missing], 4))
    return equity


def _portfolio_batch(rng: random.Random) -> Row:
    """The nightly portfolio batch of the run date: started 21:00, ran 6 to 8 hours."""
    started = _at(RUN_DATE, 21)
    finished = started + timedelta(minutes=rng.randint(360, 480))
    return (RUN_DATE, started, finished, "completed")


def _snapshot_series(rng: random.Random, portfolio_id: str) -> tuple[Decimal, list[Row]]:
    """Snapshots for the three days before the run date and the run date itself."""
    equity = _money(rng.uniform(50_000, 5_000_000))
    cumulative = _money(float(equity) * rng.uniform(-0.04, 0.18))
    rows: list[Row] = []
    for days_back in (3, 2, 1, 0):
        day = RUN_DATE - timedelta(days=days_back)
        daily = _money(float(equity) * rng.gauss(0.0004, 0.011))
        equity += daily
        cumulative += daily
        created = _at(day, 21, 20) + timedelta(seconds=rng.randint(0, 1800))
        rows.append((portfolio_id, day, equity, daily, cumulative, created))
    return equity, rows


def _market_prices(rng: random.Random, world: _World) -> None:
    """Closing prices for 58 symbols on the three trading days up to the run date."""
    rows: list[Row] = []
    for symbol in _SYMBOLS:
        price = rng.uniform(20, 900)
        for days_back in (2, 1, 0):
            price *= 1 + rng.gauss(0.0003, 0.015)
            rows.append((symbol, RUN_DATE - timedelta(days=days_back), _money(price)))
    world.tables["market_prices"] = rows


def _analytics_tables(rng: random.Random, world: _World, equity: dict[str, Decimal]) -> None:
    """Phase-6 analytics: 30-day volatility and stress tests per active portfolio and day."""
    volatility: list[Row] = []
    stress: list[Row] = []
    for days_back in (3, 2, 1, 0):
        day = RUN_DATE - timedelta(days=days_back)
        for portfolio_id, balance in equity.items():
            volatility.append((portfolio_id, day, round(rng.uniform(0.06, 0.45), 4)))
            for scenario, shock in _STRESS_SCENARIOS:
                impact = _money(float(balance) * shock * rng.uniform(0.6, 1.4))
                stress.append((portfolio_id, day, scenario, impact))
    world.tables["volatility_metrics"] = volatility
    world.tables["stress_test_results"] = stress


# --- ETL batch with result files (seed 000) -----------------------------------------------


def _etl_batch(rng: random.Random, world: _World) -> None:
    """batch_runs rows, one result file per pipeline run and the batch job file."""
    runs: list[Row] = []
    operations: list[dict[str, Any]] = []
    for run_id, pipeline, rows in _ETL_PIPELINES:
        started = datetime.strptime(run_id, "run_%Y%m%d_%H%M%S")
        runs.append((ETL_BATCH_ID, run_id, pipeline, "completed", started))
        document = _run_result(rng, run_id, pipeline, rows, started)
        world.documents[f"{run_id}.json"] = document
        operations.append(
            {
                "run_id": run_id,
                "pipeline": pipeline,
                "status": "completed",
                "result_file": f"{run_id}.json",
            }
        )
    world.tables["batch_runs"] = runs
    world.documents[f"batch_{ETL_BATCH_ID}.json"] = _batch_job(operations)
    # DIM_DATE's file, and the batch its broken consolidation marked failed
    world.targets["truncated-result"] = ["run_20260101_204618.json", ETL_BATCH_ID]
    world.targets["missing-result"] = ["run_20260101_204646.json"]  # FACT_SALES


def _batch_job(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "batch_id": ETL_BATCH_ID,
        "batch_name": "laddu_batch",
        "status": "completed",
        "submitted_at": "2026-01-01T20:46:09Z",
        "completed_at": "2026-01-01T20:47:31Z",
        "operations": operations,
        "result": {"successful": len(operations), "failed": 0},
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds") + "Z"


def _run_result(
    rng: random.Random, run_id: str, pipeline: str, rows: int, started: datetime
) -> dict[str, Any]:
    """One pipeline run's result file: counts, steps and validator sample data."""
    clock = started
    steps: list[dict[str, Any]] = []
    for name, metrics in (
        ("extract", {"rows_read": rows, "source": f"stg.{pipeline.lower()}"}),
        ("load", {"rows_written": rows, "rows_rejected": 0, "target": f"dw.{pipeline.lower()}"}),
    ):
        duration = rng.randint(400, 4_000)
        steps.append(
            {
                "name": name,
                "status": "completed",
                "started_at": _iso(clock),
                "duration_ms": duration,
                "metrics": metrics,
            }
        )
        clock += timedelta(milliseconds=duration)
    for validator in _VALIDATORS:
        step = _validator_step(rng, validator, pipeline, rows)
        steps.append({"name": validator, "status": "passed", "started_at": _iso(clock), **step})
        clock += timedelta(milliseconds=step["duration_ms"])
    return {
        "run_id": run_id,
        "pipeline": pipeline,
        "batch_id": ETL_BATCH_ID,
        "status": "completed",
        "started_at": _iso(started),
        "finished_at": _iso(clock),
        "row_counts": {"source": rows, "target": rows, "rejected": 0},
        "steps": steps,
    }


def _validator_step(rng: random.Random, validator: str, pipeline: str, rows: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "validate_schema": {"columns_expected": 6, "columns_found": 6},
        "validate_nulls": {"columns_checked": 6, "null_violations": 0},
        "validate_record_counts": {"source_count": rows, "target_count": rows, "difference": 0},
        "validate_uniqueness": {"key_columns": 1, "duplicate_keys": 0},
        "validate_referential_integrity": {"foreign_keys": 2, "orphans": 0},
    }[validator]
    offset = rng.randint(0, 500)
    sample = [_sample_row(rng, pipeline, offset + n) for n in range(8)]
    return {
        "validator": f"{pipeline.lower()}.{validator}",
        "duration_ms": rng.randint(150, 2_500),
        "metrics": metrics,
        "sample_data": sample,
    }


def _sample_row(rng: random.Random, pipeline: str, n: int) -> dict[str, Any]:
    """A plausible row of the pipeline's target table."""
    return _SAMPLE_ROWS[pipeline](rng, n)


def _date_row(rng: random.Random, n: int) -> dict[str, Any]:
    day = date(2020, 1, 1) + timedelta(days=n * 3 + rng.randint(0, 2))
    return {
        "date_key": int(day.strftime("%Y%m%d")),
        "full_date": day.isoformat(),
        "day_name": day.strftime("%A"),
        "month": day.month,
        "quarter": (day.month - 1) // 3 + 1,
        "is_weekend": day.weekday() >= 5,
    }


def _customer_row(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "customer_key": 1_000 + n,
        "customer_id": f"C{rng.randint(100_000, 999_999)}",
        "full_name": f"{rng.choice(_FIRST_NAMES)} {rng.choice(_OWNERS)}",
        "city": rng.choice(_CITIES),
        "segment": rng.choice(("Retail", "SMB", "Enterprise")),
        "is_current": True,
    }


def _product_row(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "product_key": 500 + n,
        "sku": f"SKU-{rng.randint(10_000, 99_999)}",
        "category": rng.choice(("Grocery", "Home", "Garden", "Toys", "Electronics")),
        "unit_price": float(_money(rng.uniform(0.5, 400))),
        "is_active": True,
    }


def _store_row(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "store_key": 10 + n,
        "store_code": f"ST{n:04d}",
        "city": rng.choice(_CITIES),
        "region": rng.choice(("North", "South", "East", "West")),
        "opened_on": (date(2004, 3, 1) + timedelta(days=41 * n)).isoformat(),
    }


def _sales_row(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "sales_key": 9_000_000 + n,
        "date_key": 20251231,
        "customer_key": rng.randint(1, 48_213),
        "product_key": rng.randint(1, 2_147),
        "store_key": rng.randint(1, 142),
        "quantity": rng.randint(1, 12),
        "amount": float(_money(rng.uniform(1, 900))),
    }


_SAMPLE_ROWS: dict[str, Callable[[random.Random, int], dict[str, Any]]] = {
    "DIM_CUSTOMER": _customer_row,
    "DIM_DATE": _date_row,
    "DIM_PRODUCT": _product_row,
    "DIM_STORE": _store_row,
    "FACT_SALES": _sales_row,
}


# --- file-ingestion batches (seeds 001, 003) ----------------------------------------------


def _processing_tables(rng: random.Random, world: _World) -> None:
    """processing_jobs, their file_extractions (by effective run id) and run_summaries."""
    jobs: list[Row] = []
    files: list[Row] = []
    summaries: list[Row] = []
    for index, (mode, total, failed) in enumerate(_PROCESSING_PLAN):
        batch_id = _uuid(rng)
        run_id = _uuid(rng) if mode == "other" else batch_id if mode == "same" else None
        effective = run_id or batch_id
        created = _at(RUN_DATE, 8, 5) + timedelta(minutes=47 * index)
        extractions = _extractions(
            rng, effective, created, total=total, failed=failed, first_id=len(files) + 1
        )
        files.extend(extractions)
        finished: datetime = max(row[-1] for row in extractions)
        status = "completed" if failed == 0 else "failed" if failed == total else ""
        status = status or "completed_with_errors"
        updated = finished + timedelta(seconds=2)
        jobs.append((batch_id, run_id, status, total, total - failed, failed, created, updated))
        if status.startswith("completed"):
            summaries.append((effective, total, total - failed, failed, updated))
    world.tables["processing_jobs"] = jobs
    world.tables["file_extractions"] = files
    world.tables["run_summaries"] = summaries
    world.targets["stuck-batch"] = [jobs[_STUCK_BATCH][0]]


def _extractions(
    rng: random.Random, run_id: str, created: datetime, *, total: int, failed: int, first_id: int
) -> list[Row]:
    """One batch's file_extractions rows; `failed` of them FAILED with a categorised error."""
    failing = set(rng.sample(range(total), failed))
    clock = created
    rows: list[Row] = []
    for n in range(total):
        clock += timedelta(seconds=rng.randint(8, 95))
        document = rng.choice(("tender_notice", "bill_of_quantities", "technical_spec", "annex"))
        path = f"s3://tender-inbox/2025/11/06/{run_id[:8]}/{document}_{n + 1:02d}.pdf"
        category: str | None = None
        message: str | None = None
        retries = 0
        if n in failing:
            category, message = rng.choice(_EXTRACTION_ERRORS)
            retries = rng.randint(1, 3)
        status = "SUCCESS" if category is None else "FAILED"
        rows.append((first_id + n, run_id, path, status, category, message, retries, clock))
    return rows


def _ingestion_tables(rng: random.Random, world: _World) -> None:
    """ingestion_runs with their processed_files; run status follows the files' outcome."""
    runs: list[Row] = []
    files: list[Row] = []
    for index, (name, total, failed) in enumerate(_INGESTION_PLAN):
        run_id = f"ir_{rng.getrandbits(40):010x}"
        started = _at(RUN_DATE, 1, 30) + timedelta(minutes=23 * index)
        files.extend(_processed_files(rng, run_id, name, total=total, failed=failed))
        status = "SUCCESS" if failed == 0 else "FAILED" if failed == total else "PARTIAL"
        finished = started + timedelta(minutes=rng.randint(4, 19))
        runs.append((run_id, name, status, started, finished))
    world.tables["ingestion_runs"] = runs
    world.tables["processed_files"] = files
    world.targets["green-with-failures"] = [runs[_GREEN_RUN][0]]


def _processed_files(
    rng: random.Random, run_id: str, name: str, *, total: int, failed: int
) -> list[Row]:
    """One run's processed_files rows; `failed` of them FAILED with category and raw trace."""
    failing = set(rng.sample(range(total), failed))
    rows: list[Row] = []
    for n in range(total):
        path = f"s3a://lake-landing/{name}/2025-11-06/part-{n:05d}"
        if n in failing:
            category, retryable, message = rng.choice(_INGESTION_ERRORS)
            retries = rng.randint(0, 2)
            rows.append((run_id, path, "FAILED", category, message, retryable, retries))
        else:
            rows.append((run_id, path, "SUCCESS", None, None, None, 0))
    return rows


# --- wallet jobs (seed 002) -----------------------------------------------------------------


def _wallet_tables(rng: random.Random, world: _World) -> None:
    """wallet_jobs with JSON-array wallet lists and an error summary, and wallet_results."""
    jobs: list[Row] = []
    results: list[Row] = []
    for index, outcomes in enumerate(_WALLET_PLAN):
        job_id = _uuid(rng)
        wallets = [f"0x{rng.getrandbits(160):040x}" for _ in outcomes]
        results.extend((job_id, w, o) for w, o in zip(wallets, outcomes, strict=True))
        good = [w for w, o in zip(wallets, outcomes, strict=True) if o == "ok"]
        bad = [w for w in wallets if w not in good]
        status = "Completed" if good else "Failed"
        updated = _at(RUN_DATE, 14, 2) + timedelta(minutes=31 * index, seconds=rng.randint(0, 59))
        lists = json.dumps(good), json.dumps(bad)
        jobs.append((job_id, status, len(wallets), *lists, _wallet_summary(good, bad), updated))
    world.tables["wallet_jobs"] = jobs
    world.tables["wallet_results"] = results
    world.targets["completed-all-failed"] = [jobs[_ALL_FAILED_JOB][0]]


def _wallet_summary(good: list[str], bad: list[str]) -> str | None:
    """The error summary the fixed job orchestrator writes (seed 002)."""
    if not bad:
        return None
    if not good:
        return f"All {len(bad)} wallets failed to process"
    return f"{len(bad)} of {len(good) + len(bad)} wallets failed"


# --- writing and fault injection ----------------------------------------------------------


def _write_documents(results_dir: Path, documents: dict[str, Any]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        text = json.dumps(document, indent=2) + "\n"
        (results_dir / name).write_text(text, encoding="utf-8", newline="\n")


def _write_database(path: Path, world: _World, faults: tuple[str, ...]) -> None:
    """Create and fill every table, then inject the SQL faults; the connection is closed."""
    with duckdb.connect(str(path)) as con:
        con.execute("SET enable_progress_bar = false")  # no bar on stdout for a long insert
        for table, columns in _DDL.items():
            con.execute(f"CREATE TABLE {table} ({columns})")
            _insert(con, table, world.tables[table])
        for fault in faults:
            if fault in _SQL_FAULTS:
                _SQL_FAULTS[fault](con, world.targets[fault])


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[Row]) -> None:
    """Insert `rows` with multi-row VALUES statements (much faster than executemany)."""
    marks = "(" + ", ".join("?" * len(rows[0])) + ")"
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        values = ", ".join([marks] * len(chunk))
        con.execute(f"INSERT INTO {table} VALUES {values}", [v for row in chunk for v in row])


def _drop_snapshots(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    sql = "DELETE FROM portfolio_snapshots WHERE snapshot_date = ? AND portfolio_id = ?"
    con.executemany(sql, [(RUN_DATE, i) for i in ids])


def _null_pnl(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    sql = (
        "UPDATE portfolio_snapshots SET daily_pnl = NULL, cumulative_pnl = NULL "
        "WHERE snapshot_date = ? AND portfolio_id = ?"
    )
    con.executemany(sql, [(RUN_DATE, i) for i in ids])


def _stick_batch(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    """Finalisation never ran: still 'processing', progress counters zero, no summary."""
    for batch_id in ids:
        con.execute(
            "UPDATE processing_jobs SET status = 'processing', files_success = 0, "
            "files_failed = 0 WHERE batch_id = ?",
            [batch_id],
        )
        con.execute(
            "DELETE FROM run_summaries WHERE run_id = "
            "(SELECT coalesce(run_id, batch_id) FROM processing_jobs WHERE batch_id = ?)",
            [batch_id],
        )


def _mark_green(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    sql = "UPDATE ingestion_runs SET status = 'SUCCESS' WHERE run_id = ?"
    con.executemany(sql, [(i,) for i in ids])


def _mark_completed(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    sql = "UPDATE wallet_jobs SET status = 'Completed', error_summary = NULL WHERE job_id = ?"
    con.executemany(sql, [(i,) for i in ids])


def _truncate_files(results_dir: Path, names: list[str]) -> None:
    """Cut the run file mid-line at about 60% of its length, as a crashed writer leaves it, and
    mark its batch failed although every operation completed (consolidation choked on it)."""
    file_name, batch_id = names
    batch_file = results_dir / f"batch_{batch_id}.json"
    batch = json.loads(batch_file.read_text(encoding="utf-8"))
    batch["status"] = "failed"
    batch_file.write_text(json.dumps(batch, indent=2), encoding="utf-8")
    for name in [file_name]:
        path = results_dir / name
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: _cut_point(text)], encoding="utf-8", newline="\n")


def _cut_point(text: str) -> int:
    """An offset near 60% of `text` in the middle of a line's content (never at its edges)."""
    line_start = text.rfind("\n", 0, int(len(text) * 0.6)) + 1
    while True:
        line_end = text.find("\n", line_start)
        line = text[line_start:line_end]
        content = line.lstrip()
        if len(content) >= 12:
            indent = len(line) - len(content)
            return line_start + indent + len(content) // 2
        line_start = line_end + 1


def _delete_files(results_dir: Path, names: list[str]) -> None:
    for name in names:
        (results_dir / name).unlink()


def _short_run(con: duckdb.DuckDBPyConnection, _ids: list[str]) -> None:
    sql = (
        "UPDATE portfolio_batch_runs SET finished_at = started_at + INTERVAL 30 MINUTE "
        "WHERE run_date = ?"
    )
    con.execute(sql, [RUN_DATE])


_SQL_FAULTS: dict[str, Callable[[duckdb.DuckDBPyConnection, list[str]], None]] = {
    "short-run": _short_run,
    "missing-snapshots": _drop_snapshots,
    "null-pnl": _null_pnl,
    "stuck-batch": _stick_batch,
    "green-with-failures": _mark_green,
    "completed-all-failed": _mark_completed,
}
_FILE_FAULTS: dict[str, Callable[[Path, list[str]], None]] = {
    "truncated-result": _truncate_files,
    "missing-result": _delete_files,
}
