"""Time, throughput and peak memory of json_integrity on many files and on one huge sparse file.

    python bench/files.py [--files 100000] [--results 20000] [--result-kb 50] [--cut 200]
                          [--sparse-gb 2] [--truncated 5] [--no-read] [--repeat 3] [--only TEXT]
                          [--dir DIR]

Builds the data in a temporary folder (or DIR, kept), runs `python -m runner check` once per
case and repetition in a child process and prints, per case, the median wall time, the check's
own duration (from verdict.json), MB/s over that duration, the peak RSS of the largest process
and of the whole process tree (postrun and its worker processes), and the verdict, with the
classification each case must get. Exits 1 if any case is classified otherwise.

The result files are ~50 KB run results (steps with sample rows, indented like a pretty
printer writes them) that satisfy the shipped `expectations/run_result.schema.json`; ``--cut``
of them, spread out, are cut mid-write and must each be reported as truncated (the verdict
keeps a sample of 20 failures and counts them all; each sampled one must have a line and a
column). They are checked without and with the schema.

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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
MB = 1e6
HEAD = b'{"a": ['
TAIL = b"1]}\n"
READ_SPARSE = "FAIL invalid_json x1 at 1:8"
"""What a strict parser says of HEAD + NULs + TAIL: the first NUL, byte 7, is not JSON."""
DEFAULT_MAX_BYTES = 256 * 1024**2
"""json_integrity's default max_bytes (runner.sources.json_files.DEFAULT_MAX_BYTES)."""
RESULT_SCHEMA = ROOT / "expectations" / "run_result.schema.json"
"""The shipped JSON Schema (draft 2020-12) the result files satisfy."""
MIN_TIMED_S = 0.05
"""Checks shorter than this (nothing read) get no MB/s."""
SAMPLE_S = 0.01
"""How often the RSS of the process tree is read while a case runs."""


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
    check_s: float
    peak_rss_mb: float
    tree_rss_mb: float
    got: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="small files to check")
    parser.add_argument("--truncated", type=int, default=5, help="small files cut mid-write")
    parser.add_argument("--results", type=int, default=20_000, help="~50 KB result files")
    parser.add_argument("--result-kb", type=int, default=50, help="size of a result file")
    parser.add_argument("--cut", type=int, default=200, help="result files cut mid-write")
    parser.add_argument("--sparse-gb", type=float, default=2.0, help="size of the sparse file")
    parser.add_argument("--no-read", action="store_true", help="skip reading the sparse file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (medians shown)")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
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
    build_small_files(base / "small", args.files, args.truncated)
    build_result_files(base / "results", args.results, args.result_kb * 1000, args.cut)
    (base / "one").mkdir(exist_ok=True)
    (base / "one" / "ok.json").write_text('{"status": "ok"}\n')
    print(f"built the files in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    size = int(args.sparse_gb * GIB)
    sparse = build_sparse_file(base / "big" / "huge.json", size)
    on_disk = sparse.stat().st_blocks * 512
    print(f"built {sparse} ({size} bytes, {on_disk} on disk)", file=sys.stderr)
    cases = make_cases(base, args, size)
    cases = [c for c in cases if args.only is None or args.only in c.name]
    print(
        f"{'case':<30} {'files':>7} {'bytes':>13} {'wall s':>7} {'check s':>7} {'MB/s':>6}"
        f" {'peak RSS MB':>11} {'tree RSS MB':>11}  verdict"
    )
    wrong = 0
    for case in cases:
        outcomes = [run_case(base, case, i) for i in range(args.repeat)]
        got = {o.got for o in outcomes}
        shown = outcomes[0].got if len(got) == 1 else " | ".join(sorted(got))
        mark = "" if got == {case.expect} else f"   <-- expected {case.expect}"
        wrong += bool(mark)
        check_s = statistics.median(o.check_s for o in outcomes)
        print(
            f"{case.name:<30} {case.files:>7} {case.size:>13}"
            f" {statistics.median(o.wall_s for o in outcomes):>7.2f} {check_s:>7.2f}"
            f" {f'{case.size / MB / check_s:.0f}' if check_s >= MIN_TIMED_S else '-':>6}"
            f" {statistics.median(o.peak_rss_mb for o in outcomes):>11.0f}"
            f" {statistics.median(o.tree_rss_mb for o in outcomes):>11.0f}  {shown}{mark}",
            flush=True,
        )
    sys.exit(1 if wrong else 0)


def make_cases(base: Path, args: argparse.Namespace, size: int) -> list[Case]:
    small_bytes = sum(p.stat().st_size for p in (base / "small").iterdir())
    result_bytes = sum(p.stat().st_size for p in (base / "results").iterdir())
    cut = min(args.truncated, args.files)
    result_cut = min(args.cut, args.results)
    cases = [
        Case("baseline: 1 small file", 1, 20, _suite(base / "one" / "ok.json"), "PASS"),
        Case(
            f"{args.files} small files",
            args.files,
            small_bytes,
            _suite(base / "small" / "*.json"),
            f"FAIL truncated x{cut}" if cut else "PASS",
        ),
        Case(
            f"{args.results} x {args.result_kb} KB results",
            args.results,
            result_bytes,
            _suite(base / "results" / "*.json"),
            f"FAIL truncated x{result_cut}" if result_cut else "PASS",
        ),
        Case(
            f"{args.results} x {args.result_kb} KB + schema",
            args.results,
            result_bytes,
            _suite(base / "results" / "*.json", f", schema: '{RESULT_SCHEMA}'"),
            f"FAIL truncated x{result_cut}" if result_cut else "PASS",
        ),
        Case(
            "sparse, default max_bytes",
            1,
            size,
            _suite(base / "big" / "huge.json"),
            "FAIL too_large x1" if size > DEFAULT_MAX_BYTES else READ_SPARSE,
        ),
    ]
    if not args.no_read:
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


def run_case(base: Path, case: Case, repetition: int) -> Outcome:
    """Run the case in a child process; the peak RSS of the largest process comes from wait4()
    (postrun reaps its workers, so theirs count), that of the whole tree from sampling /proc."""
    name = case.name.replace(" ", "_").replace(",", "")
    (base / "runs").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-{repetition}-", dir=base / "runs"))
    suite = folder / "suite.yml"
    suite.write_text(case.suite)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "runner", "check", str(suite), "--out", str(folder / "out")]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "-q"], cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    sampler = TreeSampler(child.pid)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    sampler.stop()
    peak = usage.ru_maxrss / 1024
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        err = child.stderr.read().decode() if child.stderr else ""
        got = f"exit {child.returncode}: {err[-300:]}"
        return Outcome(wall, 0.0, peak, sampler.peak_mb, got)
    verdict = json.loads((folder / "out" / "verdict.json").read_text())
    (check,) = verdict["checks"]
    return Outcome(wall, check["duration_s"], peak, sampler.peak_mb, describe(check))


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(SAMPLE_S):
            total = sum(_rss_kb(pid) for pid in _tree(self.pid))
            self.peak_mb = max(self.peak_mb, total / 1024)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(pid: int) -> list[int]:
    """The process and its descendants (children are listed per thread: postrun starts its
    workers from a check's thread)."""
    found = [pid]
    for parent in found:
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found += [int(c) for c in children.read_text().split()]
            except OSError:
                continue
    return found


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def describe(check: dict[str, object]) -> str:
    """'PASS', or 'FAIL reason xN' (with line:column when one file is bad); sampled failures
    that lack a line and column where one is due are pointed out."""
    if check["status"] == "PASS":
        return "PASS"
    error = check["error"]
    if isinstance(error, dict):
        return f"{check['status']} {error['category']}: {str(check['message'])[:80]}"
    failures = check["failures"]
    assert isinstance(failures, list)
    if not failures:
        return f"{check['status']} {str(check['message'])[:80]}"
    reasons: dict[str, int] = {}
    for failure in failures:
        reasons[failure["reason"]] = reasons.get(failure["reason"], 0) + 1
    if len(reasons) == 1:  # the verdict keeps a sample of the failures, and counts them all
        reasons = dict.fromkeys(reasons, check["failure_count"])
    text = " ".join(f"{reason} x{count}" for reason, count in sorted(reasons.items()))
    if len(failures) == 1 and "line" in failures[0]:
        text += f" at {failures[0]['line']}:{failures[0]['column']}"
    located = ("truncated", "invalid_json")
    unplaced = [f for f in failures if f["reason"] in located and "column" not in f]
    if unplaced:
        text += f" ({len(unplaced)} without line and column)"
    return f"{check['status']} {text}"


def build_small_files(folder: Path, count: int, truncated: int) -> None:
    """``count`` small result files, ``truncated`` of them (spread out) cut mid-write."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, cut in _numbered(count, truncated):
        record = {"run_id": i, "status": "completed", "rows": [i, i * 2, i * 3], "error": None}
        data = json.dumps(record).encode()
        _write(folder / f"run_{i:07d}.json", data[: len(data) // 2] if cut else data)


def build_result_files(folder: Path, count: int, size: int, truncated: int) -> None:
    """``count`` run results of about ``size`` bytes, ``truncated`` of them (spread out) cut
    at a point that moves through the file from one cut file to the next."""
    folder.mkdir(parents=True, exist_ok=True)
    templates = [_result_template(size, variant) for variant in range(8)]
    for i, cut in _numbered(count, truncated):
        run_id = b"run_20251106_%06d" % (i % 1_000_000)
        data = templates[i % len(templates)].replace(b"RUN_ID_SLOT", run_id)
        if cut:
            data = data[: len(data) * (10 + i % 80) // 100]
        _write(folder / f"run_{i:07d}.json", data)


def _result_template(size: int, variant: int) -> bytes:
    steps: list[dict[str, object]] = []
    result = {
        "run_id": "RUN_ID_SLOT",
        "batch_id": f"B{variant}",
        "pipeline": f"nightly-{variant}",
        "status": "completed",
        "started_at": "2025-11-06T01:00:00Z",
        "finished_at": "2025-11-06T01:07:12Z",
        "row_counts": {"source": 120_000 + variant, "target": 119_990, "rejected": 10},
        "steps": steps,
    }
    while len(json.dumps(result, indent=2)) < size:
        k = len(steps)
        rows = [
            {"id": k * 10 + j, "portfolio": f"P{j + variant:04d}", "value": 1000.5 + j * 3.25}
            for j in range(4 + variant % 3)
        ]
        step = {"name": f"step-{k}", "status": "completed", "duration_ms": 40 + k}
        steps.append(step | {"sample_data": rows})
    return json.dumps(result, indent=2).encode() + b"\n"


def _numbered(count: int, truncated: int) -> list[tuple[int, bool]]:
    step = max(1, count // max(1, truncated))
    cut = set(range(step, count + 1, step)[:truncated])
    return [(i, i in cut) for i in range(1, count + 1)]


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
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
