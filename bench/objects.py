"""json_integrity over result files in object storage, next to plain fsspec read loops.

    python bench/objects.py [--files 20000] [--kb 2] [--cut 20] [--repeat 1]

Starts a local S3 server (moto's server mode, in its own process, on a free loopback port),
writes ``--files`` JSON result files of about ``--kb`` KB under one prefix (``--cut`` of them
cut mid-write), then times, on the same objects:

- postrun: ``run_suite`` in-process on a suite with one ``json_integrity`` check over
  ``s3://bucket/run/*.json`` (listing, reading, judging every object);
- limit: a plain fsspec loop: the same glob, then ``cat_file`` and a simdjson parse per object,
  one after the other;
- fsspec's bulk read: the same glob, then one ``cat`` of every path (fsspec's own concurrent
  reads, every object in memory at once) and a simdjson parse of each.

Each case is run ``--repeat`` times (the server is warm from the upload; no extra warm-up run:
a round costs minutes at 20,000 objects). Prints one table and the target: postrun within
1.5x of the plain loop (``_targets.OBJECTS``). The local server's speed per request bounds
every case; the figures compare the clients on it, not S3's own latency.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simdjson
from _measure import Row, Table
from _targets import OBJECTS

BUCKET = "postrun-bench"
ENV = {
    "AWS_ACCESS_KEY_ID": "AKIABENCHKEY0000",
    "AWS_SECRET_ACCESS_KEY": "bench-secret-not-real",
    "AWS_DEFAULT_REGION": "us-east-1",
}
UPLOAD_BATCH = 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, endpoint
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("the local S3 server did not start")


def document(index: int, kb: int) -> bytes:
    rows = ",".join(f'{{"row": {i}, "value": {i * 0.5}, "ok": true}}' for i in range(kb * 25))
    return f'{{"run": {index}, "status": "done", "rows": [{rows}]}}'.encode()


def upload(fs: Any, files: int, kb: int, cut: int) -> int:
    """Write the objects; the cut ones spread out. The total bytes written."""
    step = max(files // cut, 1) if cut else 0
    total = 0
    batch: dict[str, bytes] = {}
    for index in range(files):
        body = document(index, kb)
        if step and index % step == step // 2 and index // step < cut:
            body = body[: len(body) * 2 // 3]
        batch[f"{BUCKET}/run/result_{index:06}.json"] = body
        total += len(body)
        if len(batch) >= UPLOAD_BATCH:
            fs.pipe(batch)
            batch = {}
    if batch:
        fs.pipe(batch)
    return total


def postrun_case(endpoint: str) -> Callable[[], str]:
    from runner import load_suite, run_suite

    folder = Path(tempfile.mkdtemp(prefix="postrun-bench-objects-"))
    suite = folder / "suite.yml"
    suite.write_text(
        "suite: bench-objects\nsources:\n  results:\n"
        f"    files: s3://{BUCKET}/run/*.json\n    endpoint_url: {endpoint}\n"
        "checks:\n  - type: json_integrity\n"
    )

    def run() -> str:
        verdict = run_suite(load_suite(suite, env=os.environ))
        check = verdict.checks[0]
        return f"{check.status} {check.failure_count} bad of {check.observed['files']}"

    return run


def loop_case(endpoint: str, bulk: bool) -> Callable[[], str]:
    import s3fs

    def run() -> str:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        paths = fs.glob(f"s3://{BUCKET}/run/*.json")
        parser = simdjson.Parser()
        bad = 0
        contents = fs.cat(paths).values() if bulk else (fs.cat_file(p) for p in paths)
        for data in contents:
            try:
                parser.parse(data)
            except ValueError:
                bad += 1
        return f"{bad} bad of {len(paths)}"

    return run


def measure(table: Table, case: str, fn: Callable[[], str], repeat: int, **row: Any) -> Row:
    times, result = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return table.add(Row(case, times, result=result, **row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--kb", type=int, default=2)
    parser.add_argument("--cut", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    os.environ.update(ENV)
    server, endpoint = start_server()
    try:
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=endpoint)
        fs.mkdir(BUCKET)
        started = time.perf_counter()
        volume = upload(fs, args.files, args.kb, args.cut)
        print(
            f"wrote {args.files} objects, {volume / 1e6:.1f} MB, in "
            f"{time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )
        table = Table(f"OBJECTS: {args.files} result files on a local S3 server", "MB")
        table.notes.append(f"{args.cut} objects cut mid-write; moto server on 127.0.0.1")
        postrun = measure(
            table,
            "postrun run_suite (json_integrity)",
            postrun_case(endpoint),
            args.repeat,
            limit="query",
            volume=volume,
        )
        loop = measure(
            table,
            "limit: plain fsspec loop (cat_file + simdjson)",
            loop_case(endpoint, bulk=False),
            args.repeat,
            limit="query",
            volume=volume,
        )
        measure(
            table,
            "fsspec bulk cat (all in memory) + simdjson",
            loop_case(endpoint, bulk=True),
            args.repeat,
            volume=volume,
        )
        print(table.render())
        ratio = postrun.median / loop.median
        print(
            f"\nTARGET postrun / plain fsspec loop: {ratio:.2f}x (target {OBJECTS}x): "
            f"{'met' if ratio <= OBJECTS else 'NOT met'}"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
