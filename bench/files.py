"""Time and peak memory of json_integrity on many small files and on one huge sparse file.

    python bench/files.py [--files 100000] [--sparse-gb 2] [--truncated 5] [--no-read] [--dir DIR]

Builds the data in a temporary folder (or DIR, kept), runs `python -m runner check` once per
case in a child process and prints wall time, the child's peak RSS and the verdict, with the
classification each case must get. Exits 1 if any case is classified otherwise.

The sparse file is `{"a": [`, then NUL bytes (a hole: almost no disk is used), then `1]}` at
the end. NUL is not JSON whitespace, so a strict parser rejects it at byte 7: with the default
`max_bytes` (256 MiB) it is `too_large` and never read; with `max_bytes` raised above its size
it is read whole and must be `invalid_json` at line 1, column 8 (not `truncated`, since text
follows the NULs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
HEAD = b'{"a": ['
TAIL = b"1]}\n"
READ_SPARSE = "FAIL invalid_json x1 at 1:8"
"""What a strict parser says of HEAD + NULs + TAIL: the first NUL, byte 7, is not JSON."""
DEFAULT_MAX_BYTES = 256 * 1024**2
"""json_integrity's default max_bytes (runner.sources.json_files.DEFAULT_MAX_BYTES)."""


@dataclass
class Case:
    """One `postrun check` run: its suite text and the classification it must produce."""

    name: str
    files: int
    size: int
    suite: str
    expect: str


@dataclass
class Outcome:
    wall_s: float
    peak_rss_mb: float
    got: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="small files to check")
    parser.add_argument("--sparse-gb", type=float, default=2.0, help="size of the sparse file")
    parser.add_argument("--truncated", type=int, default=5, help="small files cut mid-write")
    parser.add_argument("--no-read", action="store_true", help="skip reading the sparse file")
    parser.add_argument("--dir", type=Path, help="build the data here and keep it")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run_all(args, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="postrun-bench-") as folder:
            run_all(args, Path(folder))


def run_all(args: argparse.Namespace, base: Path) -> None:
    started = time.perf_counter()
    build_small_files(base / "results", args.files, args.truncated)
    (base / "one").mkdir(exist_ok=True)
    (base / "one" / "ok.json").write_text('{"status": "ok"}\n')
    print(f"built {args.files} files in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    size = int(args.sparse_gb * GIB)
    sparse = build_sparse_file(base / "big" / "huge.json", size)
    on_disk = sparse.stat().st_blocks * 512
    print(f"built {sparse} ({size} bytes, {on_disk} on disk)", file=sys.stderr)
    cases = make_cases(base, args.files, args.truncated, size, read=not args.no_read)
    print(f"{'case':<28} {'files':>7} {'bytes':>13} {'wall s':>7} {'peak RSS MB':>11}  verdict")
    wrong = 0
    for case in cases:
        outcome = run_case(base, case)
        mark = "" if outcome.got == case.expect else f"   <-- expected {case.expect}"
        wrong += bool(mark)
        print(
            f"{case.name:<28} {case.files:>7} {case.size:>13} {outcome.wall_s:>7.2f}"
            f" {outcome.peak_rss_mb:>11.0f}  {outcome.got}{mark}",
            flush=True,
        )
    sys.exit(1 if wrong else 0)


def make_cases(base: Path, files: int, truncated: int, size: int, *, read: bool) -> list[Case]:
    small_bytes = sum(p.stat().st_size for p in (base / "results").iterdir())
    cut = min(truncated, files)
    cases = [
        Case("baseline: 1 small file", 1, 20, _suite(base / "one" / "ok.json"), "PASS"),
        Case(
            f"{files} small files",
            files,
            small_bytes,
            _suite(base / "results" / "*.json"),
            f"FAIL truncated x{cut}" if cut else "PASS",
        ),
        Case(
            "sparse, default max_bytes",
            1,
            size,
            _suite(base / "big" / "huge.json"),
            "FAIL too_large x1" if size > DEFAULT_MAX_BYTES else READ_SPARSE,
        ),
    ]
    if read:
        limit = size + GIB
        cases.append(
            Case(
                f"sparse, max_bytes {limit // GIB} GiB",
                1,
                size,
                _suite(base / "big" / "huge.json", f", max_bytes: {limit}"),
                READ_SPARSE,
            )
        )
    return cases


def _suite(files: Path, extra: str = "") -> str:
    return f"suite: bench\nchecks:\n  - {{type: json_integrity, files: '{files}'{extra}}}\n"


def run_case(base: Path, case: Case) -> Outcome:
    """Run the case in a child process; its own peak RSS comes from wait4()."""
    folder = base / "runs" / case.name.replace(" ", "_").replace(",", "")
    folder.mkdir(parents=True)
    suite = folder / "suite.yml"
    suite.write_text(case.suite)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "runner", "check", str(suite), "--out", str(folder / "out")]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "-q"], cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        err = child.stderr.read().decode() if child.stderr else ""
        return Outcome(wall, usage.ru_maxrss / 1024, f"exit {child.returncode}: {err[-300:]}")
    return Outcome(wall, usage.ru_maxrss / 1024, describe(folder / "out" / "verdict.json"))


def describe(verdict_file: Path) -> str:
    """'PASS', or 'FAIL reason xN' (with line:column when one file is bad)."""
    verdict = json.loads(verdict_file.read_text())
    (check,) = verdict["checks"]
    if check["status"] == "PASS":
        return "PASS"
    if check["error"] is not None:
        return f"{check['status']} {check['error']['category']}: {check['message'][:80]}"
    reasons: dict[str, int] = {}
    for failure in check["failures"]:
        reasons[failure["reason"]] = reasons.get(failure["reason"], 0) + 1
    text = " ".join(f"{reason} x{count}" for reason, count in sorted(reasons.items()))
    failures = check["failures"]
    if not failures:
        return f"{check['status']} {check['message'][:80]}"
    if len(failures) == 1 and "line" in failures[0]:
        text += f" at {failures[0]['line']}:{failures[0]['column']}"
    return f"{check['status']} {text}"


def build_small_files(folder: Path, count: int, truncated: int) -> None:
    """``count`` small result files, ``truncated`` of them (spread out) cut mid-write."""
    folder.mkdir(parents=True, exist_ok=True)
    step = max(1, count // max(1, truncated))
    cut = set(range(step, count + 1, step)[:truncated])
    for i in range(1, count + 1):
        record = {"run_id": i, "status": "completed", "rows": [i, i * 2, i * 3], "error": None}
        data = json.dumps(record).encode()
        if i in cut:
            data = data[: len(data) // 2]
        fd = os.open(folder / f"run_{i:07d}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def build_sparse_file(path: Path, size: int) -> Path:
    """``HEAD``, a hole of NUL bytes, ``TAIL``: ``size`` bytes, almost none of them on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(HEAD)
        handle.seek(size - len(TAIL))
        handle.write(TAIL)
    return path


if __name__ == "__main__":
    main()
