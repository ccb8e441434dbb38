"""Tests for inspecting many result files in worker processes: the same problems as in-process,
in the same order; cancellation stops the workers; no file blocks or grows the reader."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite, run_suite
from runner.errors import SourceError
from runner.results import ErrorCategory
from runner.sources import json_files
from runner.sources.json_files import FileProblem, JsonFileInspector
from tests.conftest import only_check

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["run_id"],
    "properties": {
        "run_id": {"type": "string"},
        "n": {"type": "integer", "maximum": 2**70},
        "steps": {"type": "array", "items": {"enum": ["ok", "failed"]}},
    },
}

# One of each kind of file: good, cut, malformed, empty, odd; ``{i}`` makes each copy distinct.
KINDS: dict[str, bytes] = {
    "good.json": b'{"run_id": "r{i}", "steps": ["ok", "failed"]}',
    "pretty.json": json.dumps({"run_id": "r{i}", "steps": ["ok"] * 40}, indent=2).encode(),
    "big-int.json": b'{"run_id": "r{i}", "n": 1180591620717411303425}',
    "cut.json": b'{\n  "run_id": "r{i}",\n  "steps": ["ok", "fai',
    "cut-nul.json": b'{"run_id": "r{i}", "steps": [' + b"\0" * 300,
    "extra.json": b'{"run_id": "r{i}"} {"run_id": 2}',
    "nan.json": b'{"run_id": "r{i}", "n": NaN}',
    "bom.json": b'\xef\xbb\xbf{"run_id": "r{i}"}',
    "utf8.json": b'{"run_id": "r{i}\xff"}',
    "cut-utf8.json": b'{"run_id": "r{i}\xc3',
    "empty.json": b"",
    "blank.json": b" \n\0\0",
    "tiny.json": b"{}",
    "schema.json": b'{"run_id": {i}, "steps": ["ok", "done", "gone"]}',
    "lines.jsonl": b'{"run_id": "a{i}"}\n\n{"run_id": "b"}\n',
    "lines-cut.ndjson": b'{"run_id": "a{i}"}\n{"run_id": "b", "steps": [',
    "lines-bad.jsonl": b'{"run_id": "a{i}"\n{"run_id": "b"}\n',
    "lines-schema.jsonl": b'{"run_id": "a{i}"}\n{"steps": ["no"]}\n',
    # valid JSON that Python's json module cannot take as it comes, and what is cut next to it
    "long-int.json": b'{"run_id": "r{i}", "n": ' + b"7" * 5000 + b"}",
    "longer-int.jsonl": b'{"run_id": "r{i}", "n": -' + b"7" * 100_000 + b"}\n",
    "exponent.json": b'{"run_id": "r{i}", "x": 1e999999}',
    "surrogate.json": b'{"run_id": "r{i}\\ud800"}',
    "deep.json": b'{"run_id": "r{i}", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep-cut.json": b"[" * 100_000,
}


@pytest.fixture
def corpus(tmp_path: Path) -> list[Path]:
    """Three copies of every kind, a directory, a FIFO, a file that is listed but gone and a cut
    file whose name is not UTF-8."""
    paths = []
    for copy in range(3):
        for name, data in KINDS.items():
            path = tmp_path / f"{copy}-{name}"
            path.write_bytes(data.replace(b"{i}", str(copy).encode()))
            paths.append(path)
    (tmp_path / "dir.json").mkdir()
    os.mkfifo(tmp_path / "fifo.json")
    paths += [tmp_path / "dir.json", tmp_path / "fifo.json", tmp_path / "gone.json"]
    not_utf8 = tmp_path / os.fsdecode(b"\xff-cut.json")  # a name the workers get as it was listed
    not_utf8.write_bytes(KINDS["cut.json"])
    return sorted([*paths, not_utf8])


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process ids of the workers started, in small chunks so that each gets several."""
    pids: list[int] = []
    start = json_files._start_worker

    def recorded(options: dict[str, Any]) -> Any:
        worker = start(options)
        pids.append(worker.process.pid)
        return worker

    monkeypatch.setattr(json_files, "_start_worker", recorded)
    monkeypatch.setattr(json_files, "_CHUNK_FILES", 4)
    return pids


def children() -> set[int]:
    """The live child processes of this process (of any of its threads), from /proc, but those
    that were alive when the test began (a local Spark server an earlier test started)."""
    return _all_children() - _EARLIER


def _all_children() -> set[int]:
    found: set[int] = set()
    for listing in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        found |= {int(pid) for pid in listing.read_text().split()}
    return found


_EARLIER: set[int] = set()


@pytest.fixture(autouse=True)
def _earlier_children() -> Iterator[None]:
    _EARLIER.clear()
    _EARLIER.update(_all_children())
    yield


OPTIONS = [
    pytest.param({}, id="syntax"),
    pytest.param({"min_bytes": 8, "max_bytes": 200}, id="limits"),
    pytest.param({"schema": SCHEMA, "max_schema_errors": 1}, id="schema"),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_json_workers_find_what_one_process_finds(
    corpus: list[Path], started: list[int], options: dict[str, Any]
) -> None:
    inspector = JsonFileInspector(**options)
    one_by_one = [p for path in corpus for p in inspector.inspect(path)]
    in_process = JsonFileInspector(**options).inspect_many(corpus, workers=1, pool_min_work=0)
    in_workers = JsonFileInspector(**options).inspect_many(corpus, workers=2, pool_min_work=0)
    assert len(started) == 1  # two processes: this one and one worker
    assert in_workers.problems == in_process.problems == one_by_one
    assert (
        in_workers.total_bytes
        == in_process.total_bytes
        == sum(p.stat().st_size for p in corpus if p.exists())
    )
    assert children() == set()
    reasons = {p.reason for p in in_workers.problems}
    assert {"truncated", "invalid_json", "empty", "unreadable", "missing"} <= reasons
    assert ("schema" in reasons) == ("schema" in options)
    assert ("too_small" in reasons) == ("min_bytes" in options)
    assert ("too_large" in reasons) == ("max_bytes" in options)


def test_json_workers_report_line_column_offset_and_pointer(
    corpus: list[Path], started: list[int]
) -> None:
    inspector = JsonFileInspector(schema=SCHEMA, max_schema_errors=1)
    problems = inspector.inspect_many(corpus, workers=2, pool_min_work=0).problems
    first = {Path(p.path).name: p for p in problems if Path(p.path).name.startswith("0-")}
    assert first["0-cut.json"] == FileProblem(
        str(corpus[0].parent / "0-cut.json"),
        "truncated",
        "truncated at line 3 column 23 (byte 42): the text ends inside a string",
        3,
        23,
        42,
    )
    assert (first["0-cut-nul.json"].line, first["0-cut-nul.json"].column) == (1, 28)
    assert first["0-schema.json"].pointer == "/run_id"
    assert first["0-schema.json"].message == (
        "/run_id: 0 is not of type 'string' (and 2 more schema errors)"
    )
    assert first["0-lines-schema.jsonl"].message == (
        "line 2: (root): 'run_id' is a required property (and 1 more schema error)"
    )
    assert first["0-long-int.json"].message == (
        f"/n: an integer of 5000 digits is greater than the maximum of {2**70}"
    )
    assert "0-longer-int.jsonl" not in first  # a negative integer is under the maximum
    assert "0-exponent.json" not in first
    assert "0-surrogate.json" not in first
    assert first["0-deep.json"].message == "(root): the document is nested too deeply to validate"
    assert first["0-deep-cut.json"] == FileProblem(
        str(corpus[0].parent / "0-deep-cut.json"),
        "truncated",
        "truncated at line 1 column 100001 (byte 100000): the text ends inside an array",
        1,
        100_001,
        100_000,
    )


def test_json_workers_this_process_inspects_chunks_too(
    corpus: list[Path], started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process that starts the workers takes chunks itself rather than waiting on them, and
    every chunk is inspected once, by it or by a worker."""
    own: list[list[str]] = []
    inspect_chunk = json_files._inspect_chunk

    def recorded(inspector: Any, chunk: list[str], interrupt: Any) -> Any:
        own.append(chunk)
        return inspect_chunk(inspector, chunk, interrupt)

    monkeypatch.setattr(json_files, "_inspect_chunk", recorded)
    taken: list[int] = []
    take = json_files._Worker.take

    def counted(self: Any) -> Any:
        answer = take(self)
        taken.append(answer[0])
        return answer

    monkeypatch.setattr(json_files._Worker, "take", counted)
    result = JsonFileInspector().inspect_many(corpus, workers=2, pool_min_work=0)
    chunks = json_files._chunks([str(p) for p in corpus], None)
    assert own and taken
    assert sorted([chunks.index(c) for c in own] + taken) == list(range(len(chunks)))
    assert result.problems == [p for path in corpus for p in JsonFileInspector().inspect(path)]


def test_json_workers_small_runs_stay_in_process(corpus: list[Path], started: list[int]) -> None:
    result = JsonFileInspector().inspect_many(corpus, workers=2)
    assert started == []
    assert result.problems == [p for path in corpus for p in JsonFileInspector().inspect(path)]


def test_json_workers_one_cpu_stays_in_process(corpus: list[Path], started: list[int]) -> None:
    JsonFileInspector().inspect_many(corpus, workers=1, pool_min_work=0)
    assert started == []


class Stop(Exception):
    pass


def test_json_workers_stop_when_interrupted(corpus: list[Path], started: list[int]) -> None:
    def interrupt() -> None:
        if started:
            assert set(started) <= children()  # the workers run when the inspection is stopped
            raise Stop

    with pytest.raises(Stop):
        JsonFileInspector().inspect_many(corpus, workers=2, pool_min_work=0, interrupt=interrupt)
    assert len(started) == 1  # the second is not started once the first has to stop
    assert children() == set()


def test_json_workers_interrupted_before_start_start_none(
    corpus: list[Path], started: list[int]
) -> None:
    def interrupt() -> None:
        raise Stop

    with pytest.raises(Stop):
        JsonFileInspector().inspect_many(corpus, workers=2, pool_min_work=0, interrupt=interrupt)
    assert started == []


def test_json_workers_a_dead_worker_is_an_error(
    corpus: list[Path], started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    take = json_files._Worker.take

    def killed_then_taken(self: Any) -> Any:
        self.process.kill()
        self.process.wait()
        return take(self)

    monkeypatch.setattr(json_files._Worker, "take", killed_then_taken)
    with pytest.raises(SourceError) as raised:
        JsonFileInspector().inspect_many(corpus, workers=2, pool_min_work=0)
    assert raised.value.category is ErrorCategory.INTERNAL
    assert raised.value.message.startswith(
        "a worker process inspecting result files stopped with exit code -9"
    )
    assert children() == set()


def test_json_workers_a_check_past_its_timeout_stops_them(
    tmp_path: Path, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine cancels the check while its first worker starts; the check then ends it."""
    for i in range(40):
        (tmp_path / f"run_{i}.json").write_text(json.dumps({"run": i}))
    start = json_files._start_worker
    resume = threading.Event()

    def slow_start(options: dict[str, Any]) -> Any:
        worker = start(options)
        resume.wait(5)  # held until the engine has given up on the check
        return worker

    monkeypatch.setattr(json_files, "_start_worker", slow_start)
    monkeypatch.setattr(json_files, "POOL_MIN_WORK", 0)
    monkeypatch.setattr(json_files, "_usable_cpus", lambda: 2)

    def on_result(result: Any) -> None:
        resume.set()

    (tmp_path / "suite.yml").write_text(
        'suite: s\nchecks:\n  - {type: json_integrity, files: "run_*.json", timeout: 0.3s}\n'
    )
    verdict = run_suite(load_suite(tmp_path / "suite.yml", env={}), on_result=on_result)
    assert only_check(verdict)["error"]["category"] == "timeout"
    assert len(started) == 1
    assert children() == set()


# --- reading files that change under the reader --------------------------------------------


def run_briefly(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread; fail (instead of hanging the tests) if it takes over 5 s."""
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    thread.join(5)
    assert done, "blocked"
    return done[0]


def test_json_files_fifo_swapped_in_after_listing_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    path.write_text("{}")
    real_open = os.open

    def swapped_then_opened(file: Any, flags: int, *args: Any) -> int:
        if Path(file) == path:  # the file was listed as a regular file; now it is a FIFO
            path.unlink()
            os.mkfifo(path)
        return real_open(file, flags, *args)

    monkeypatch.setattr(os, "open", swapped_then_opened)
    [problem] = run_briefly(lambda: JsonFileInspector().inspect(path))
    assert (problem.reason, problem.message) == (
        "unreadable",
        "cannot read the file: not a regular file",
    )


@pytest.fixture
def growing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A file that a writer extends right after the reader learnt its size."""
    path = tmp_path / "r.json"
    path.write_bytes(b'{"a": [1]}')
    real_fstat = os.fstat
    inode = path.stat().st_ino

    def fstat_then_grown(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        # Only the reader's descriptor of this file: pytest itself may fstat other files.
        if info.st_ino == inode and info.st_size < 100:
            with path.open("r+b") as handle:
                handle.seek(0)
                handle.write(b'{"a": [1' + b", 1" * 100 + b"]}")
        return info

    monkeypatch.setattr(os, "fstat", fstat_then_grown)
    yield path


def test_json_files_file_grown_after_fstat_is_read_whole(growing: Path) -> None:
    assert JsonFileInspector().inspect(growing) == []


def test_json_files_file_grown_past_the_limit_is_too_large(growing: Path) -> None:
    [problem] = JsonFileInspector(max_bytes=100).inspect(growing)
    assert problem.reason == "too_large"
    assert problem.message == "the file is 101 bytes, over the 100-byte limit, so it was not read"


# --- schemas: the compiled validator decides, jsonschema explains --------------------------


@pytest.mark.parametrize(
    ("schema", "document", "expected"),
    [
        pytest.param(
            {"properties": {"s": {"pattern": "^abc$"}}},
            {"s": "abc\n"},
            [("/s", '/s: "abc\\n" does not match "^abc$"')],
            id="only-the-compiled-validator-rejects",
        ),
        pytest.param(
            {"dependentRequired": {"a": ["b"]}},
            {"a": 1},
            [("", "(root): 'b' is a dependency of 'a'")],
            id="draft-2020-12-keyword",
        ),
        pytest.param(
            {
                "$schema": "http://json-schema.org/draft-03/schema#",
                "properties": {"a": {"type": "integer", "required": True}},
            },
            {"b": 1},
            [("/a", "/a: 'a' is a required property")],
            id="draft-3-jsonschema-alone",
        ),
        pytest.param(
            {"items": {"$ref": "#/$defs/run"}, "$defs": {"run": {"required": ["id"]}}},
            [{"id": 1}, {}, {"id": 2}],
            [("/1", "/1: 'id' is a required property")],
            id="local-ref",
        ),
    ],
)
def test_json_files_schema_errors_have_pointers(
    tmp_path: Path, schema: dict[str, Any], document: Any, expected: list[tuple[str, str]]
) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(document))
    problems = JsonFileInspector(schema=schema).inspect(path)
    assert [(p.reason, p.pointer, p.message) for p in problems] == [
        ("schema", pointer, message) for pointer, message in expected
    ]


def test_json_workers_long_names_and_many_problems_do_not_deadlock(tmp_path: Path) -> None:
    """A chunk of long paths must not wait in the pipe while its worker waits to send a long
    answer: the names of a chunk are bounded so that it always fits in the pipe."""
    paths = []
    for i in range(600):
        path = tmp_path / f"{i:04d}-{'x' * 200}.json"
        path.write_bytes(b'{"a": [1, "' + b"y" * 20)
        paths.append(path)
    result = run_briefly(
        lambda: JsonFileInspector().inspect_many(paths, workers=2, pool_min_work=0)
    )
    assert [p.reason for p in result.problems] == ["truncated"] * 600
    assert children() == set()


def test_json_workers_program_loads_nothing_of_postrun_but_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker is this one file loaded as a module, run in a folder holding a ``simdjson.py``:
    it imports no module of the ``runner`` package (a worker would start as slowly as postrun)
    and nothing from the current folder, even when the parent's search path starts with it
    (as ``python -c`` makes it), and ends when its parent closes the pipe."""
    import subprocess
    import sys

    monkeypatch.setattr(sys, "path", ["", *sys.path])

    (tmp_path / "simdjson.py").write_text("raise SystemExit('the folder shadowed simdjson')\n")
    program = json_files._program()
    assert program is not None
    listing = "import sys; print(sorted(sys.modules), file=sys.stderr)"
    command = json_files._worker_command(program)
    command[command.index(json_files._WORKER)] += f"; {listing}"
    done = subprocess.run(
        command,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    modules = eval(done.stderr.strip().splitlines()[-1])  # the list the worker printed
    assert "postrun_json_files" in modules and "simdjson" in modules
    assert [m for m in modules if m == "runner" or m.startswith("runner.")] == []


def test_json_workers_pipe_carries_messages_larger_than_its_buffer_and_reports_its_end() -> None:
    """The framing between parent and workers: a message of several MiB (many pipe buffers, more
    than one read) arrives whole and in order after a small one; a closed writer ends the reader
    with EOFError, also mid-message, and a closed reader fails the writer."""
    read_fd, write_fd = os.pipe()
    reader, writer = json_files._Pipe(read_fd), json_files._Pipe(write_fd)
    big = ["x" * 1000] * 5000  # about 5 MB pickled

    def send() -> None:
        for message in ({"a": 1}, big):
            writer.send(message)

    sending = threading.Thread(target=send)
    sending.start()
    assert reader.recv() == {"a": 1}
    assert reader.recv() == big
    sending.join()
    os.write(write_fd, (100).to_bytes(8, "little") + b"only part of it")
    writer.close()
    with pytest.raises(EOFError):
        reader.recv()
    reader.close()

    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    with pytest.raises(BrokenPipeError):
        json_files._Pipe(write_fd).send("nobody reads this")
    os.close(write_fd)
