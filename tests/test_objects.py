"""Result files and tables in object storage, against a local S3 server (moto's server mode on
a loopback port): json_integrity names each bad object as it names a bad file, DuckDB tables read
objects through fsspec under the fail-closed rule, store errors are ERROR with their category,
and no credential reaches any output."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import load_suite, run_suite
from runner.redact import Redactor
from runner.sources import objects
from runner.sources.json_files import JsonFileInspector
from tests.conftest import check_verdict, only_check

KEY_ID = "AKIAPOSTRUNTEST0KEY1"
SECRET = "pOsTrUn/TeSt+SeCrEt0123456789abcdefGHIJKL"
TOKEN = "FwoGZXIvYXdzEPostrunSessionToken0123456789"
SIGNATURE = "5f1c0a3b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
PRESIGNED = (
    f"https://results.s3.amazonaws.com/run/a.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={KEY_ID}%2F20261204%2Fus-east-1%2Fs3%2Faws4_request"
    f"&X-Amz-Security-Token={TOKEN}&X-Amz-Signature={SIGNATURE}"
)
SECRETS = (KEY_ID, SECRET, TOKEN, SIGNATURE)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A local S3 server for this module's tests: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, s3_server: str) -> dict[str, str]:
    """The AWS environment a run finds: credentials, region, the local endpoint."""
    env = {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(aws_env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """A fresh bucket and an s3fs filesystem to fill it."""
    import s3fs

    name = f"results-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(endpoint_url=aws_env["AWS_ENDPOINT_URL"], skip_instance_cache=True)
    fs.mkdir(name)
    yield name, fs
    fs.rm(name, recursive=True)


def run_cli(tmp_path: Path, suite_text: str, env: dict[str, str]) -> tuple[int, list[Any]]:
    """Run a suite through the CLI with every format and -v; the exit code and every output
    written: (what, bytes) for stdout, stderr and each file created."""
    suite = tmp_path / "suite.yml"
    suite.write_text(textwrap.dedent(suite_text))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = tmp_path / "step-summary.md"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTRUN_", "AWS_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "check",
            str(suite),
            "-v",
            "--format",
            "json,html,junit,md",
        ],
        cwd=run_dir,
        env=base | env | {"GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        timeout=180,
    )
    written = [("stdout", result.stdout), ("stderr", result.stderr)]
    written += [
        (str(p.relative_to(tmp_path)), p.read_bytes())
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file() and p != suite
    ]
    return result.returncode, written


def leaks(written: list[Any]) -> list[tuple[str, str]]:
    from urllib.parse import quote

    forms = {form for s in SECRETS for form in (s, quote(s, safe=""))}
    return [(what, form) for what, data in written for form in forms if form.encode() in data]


def verdict_of(written: list[Any]) -> dict[str, Any]:
    return next(json.loads(data) for what, data in written if what.endswith("verdict.json"))


def test_json_integrity_names_the_truncated_empty_and_missing_objects(
    tmp_path: Path, bucket: tuple[str, Any], aws_env: dict[str, str]
) -> None:
    name, fs = bucket
    fs.pipe(
        {
            f"{name}/run/good.json": b'{"ok": true, "link": "see the report"}',
            f"{name}/run/cut.json": b'{"id": 7,\n "values": [1, 2',
            f"{name}/run/empty.json": b"",
            f"{name}/other/ignored.json": b"{",
        }
    )
    code, written = run_cli(
        tmp_path,
        f"""\
        suite: objects
        sources:
          results:
            files: s3://{name}/run/*.json
        checks:
          - type: json_integrity
            name: results_complete
            expected: [good.json, cut.json, empty.json, gone.json]
        """,
        aws_env,
    )
    assert code == 1, written[:2]
    (check,) = verdict_of(written)["checks"]
    assert check["status"] == "FAIL"
    found = {f["path"]: f for f in check["failures"]}
    assert set(found) == {f"s3://{name}/run/{n}" for n in ("cut.json", "empty.json", "gone.json")}
    cut = found[f"s3://{name}/run/cut.json"]
    assert (cut["reason"], cut["line"], cut["column"]) == ("truncated", 2, 17)
    local = tmp_path / "cut.json"  # the same bytes as a local file: the same report
    local.write_bytes(fs.cat(f"{name}/run/cut.json"))
    (as_file,) = JsonFileInspector().inspect(local)
    assert {**as_file.to_dict(), "path": cut["path"]} == cut
    assert found[f"s3://{name}/run/empty.json"]["reason"] == "empty"
    assert found[f"s3://{name}/run/gone.json"]["reason"] == "missing"
    assert check["observed"]["files"] == 3
    assert leaks(written) == []


def test_no_credential_or_signature_in_any_output(
    tmp_path: Path, bucket: tuple[str, Any], aws_env: dict[str, str]
) -> None:
    """Values that would be printed unmasked (a row holding the secret key, a presigned URL
    with its signature and token) are masked in every output."""
    name, fs = bucket
    rows = [{"id": 1, "link": PRESIGNED, "note": f"rotated key {SECRET} today"}]
    fs.pipe(f"{name}/links/part-0.ndjson", "\n".join(json.dumps(r) for r in rows).encode())
    code, written = run_cli(
        tmp_path,
        f"""\
        suite: objects
        sources:
          results:
            tables:
              links: s3://{name}/links/*.ndjson
        checks:
          - type: sql
            name: no_links
            query: select id, link, note from links
        """,
        aws_env,
    )
    assert code == 1, written[:2]
    (check,) = verdict_of(written)["checks"]
    assert check["status"] == "FAIL"
    shown = json.dumps(check["failures"])
    assert "X-Amz-Signature=***" in shown and "rotated key *** today" in shown, shown
    assert leaks(written) == []


def test_tables_over_objects_read_through_duckdb(
    run_yaml: Any, bucket: tuple[str, Any], aws_env: dict[str, str]
) -> None:
    name, fs = bucket
    fs.pipe(
        {
            f"{name}/trades/part-0.ndjson": b'{"id": 1, "qty": 5}\n{"id": 2, "qty": null}\n',
            f"{name}/trades/part-1.ndjson": b'{"id": 3, "qty": 7}\n',
        }
    )
    verdict = run_yaml(
        f"""\
        suite: objects
        sources:
          results:
            tables:
              trades: s3://{name}/trades/*.ndjson
            endpoint_url: {aws_env["AWS_ENDPOINT_URL"]}
        checks:
          - {{type: row_count, table: trades, equals: 3}}
          - {{type: not_null, table: trades, columns: [qty], key: [id]}}
        """
    )
    by_name = {c.name: c.model_dump(mode="json") for c in verdict.checks}
    rows, nulls = by_name.values()
    assert rows["status"] == "PASS", rows
    assert nulls["status"] == "FAIL", nulls
    assert "2" in json.dumps(nulls["failures"]), nulls


@pytest.mark.parametrize("unreadable", ["error", "skip"])
def test_a_cut_object_behind_a_table_fails_closed(
    run_yaml: Any, bucket: tuple[str, Any], aws_env: dict[str, str], unreadable: str
) -> None:
    name, fs = bucket
    fs.pipe(
        {
            f"{name}/trades/part-0.ndjson": b'{"id": 1, "qty": 5}\n{"id": 2, "qty": 6}\n',
            f"{name}/trades/part-1.ndjson": b'{"id": 3, "qty": 7}\n{"id": 4, "q',
        }
    )
    verdict = run_yaml(
        f"""\
        suite: objects
        sources:
          results:
            tables:
              trades: s3://{name}/trades/*.ndjson
            unreadable: {unreadable}
        checks:
          - {{type: row_count, table: trades, min: 1}}
        """
    )
    check = only_check(verdict)
    text = json.dumps(check)
    assert f"s3://{name}/trades/part-1.ndjson" in text, check
    assert "truncated" in text, check
    if unreadable == "error":
        assert check["status"] == "ERROR", check
        assert check["error"]["category"] == "data_malformed", check
    else:
        assert check["status"] == "PASS", check
        assert check["observed"]["count"] == 2, check  # the readable object alone


def test_an_unreachable_store_is_a_connectivity_error_and_other_checks_run(
    tmp_path: Path, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "a.json").write_text("{}")
    suite = tmp_path / "suite.yml"
    suite.write_text(
        textwrap.dedent(
            """\
            suite: objects
            checks:
              - {type: json_integrity, name: remote, files: s3://results-nowhere/run/*.json}
              - {type: json_integrity, name: local, files: local/*.json}
            """
        )
    )
    verdict = run_suite(load_suite(suite, env={}))
    data = check_verdict(verdict)
    remote, local = data["checks"]
    assert remote["status"] == "ERROR", remote
    assert remote["error"]["category"] == "connectivity", remote
    assert remote["error"]["retryable"] is True
    assert local["status"] == "PASS", local


def test_refused_credentials_are_an_auth_error(
    run_yaml: Any, bucket: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials at all (none in the environment, no profile) is ERROR / auth."""
    name, fs = bucket
    fs.pipe(f"{name}/run/a.json", b"{}")
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    verdict = run_yaml(
        f"""\
        suite: objects
        checks:
          - {{type: json_integrity, files: "s3://{name}/run/*.json"}}
        """
    )
    check = only_check(verdict)
    assert check["status"] == "ERROR", check
    assert check["error"]["category"] == "auth", check


def test_objects_over_the_size_limit_are_too_large_without_being_read(
    bucket: tuple[str, Any],
) -> None:
    name, fs = bucket
    fs.pipe({f"{name}/run/big.json": b"[" + b"1," * 600 + b"1]", f"{name}/run/ok.json": b"[]"})
    store = objects.Store()
    listed = objects.listing([f"s3://{name}/run/*.json"], store)
    fs.rm(f"{name}/run/big.json")  # a read would now find nothing: the listed size decides
    found = objects.inspect(JsonFileInspector(max_bytes=1000), listed, store, lambda: None)
    assert [(p.path, p.reason) for p in found.problems] == [
        (f"s3://{name}/run/big.json", "too_large")
    ]


def test_many_objects_are_read_in_bounded_batches(
    bucket: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More objects than one batch holds: every one is judged, problems in URL order."""
    name, fs = bucket
    monkeypatch.setattr(objects, "_BATCH_FILES", 7)
    contents = {f"{name}/run/{i:03}.json": b'{"i": %d}' % i for i in range(40)}
    contents[f"{name}/run/013.json"] = b'{"i": '
    contents[f"{name}/run/031.json"] = b""
    fs.pipe(contents)
    listed = objects.listing([f"s3://{name}/run/*.json"], objects.Store())
    found = objects.inspect(JsonFileInspector(), listed, objects.Store(), lambda: None)
    assert [(p.path.rpartition("/")[2], p.reason) for p in found.problems] == [
        ("013.json", "truncated"),
        ("031.json", "empty"),
    ]


def test_the_redactor_masks_signed_request_parts() -> None:
    header = f"Authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/20261204, Signature={SIGNATURE}"
    shown = Redactor()(f"{PRESIGNED} failed; {header}")
    assert not [s for s in (KEY_ID, TOKEN, SIGNATURE) if s in shown], shown


def test_url_root_keeps_the_scheme() -> None:
    assert objects.url_root("s3://b/runs/*/x_*.json") == "s3://b/runs"
    assert objects.url_root("s3://b/x.json") == "s3://b"
    assert objects.secret_values({"AWS_SECRET_ACCESS_KEY": SECRET, "HOME": "/x"}) == [SECRET]


def test_the_schema_check_refuses_objects_with_what_to_do(run_yaml: Any, tmp_path: Path) -> None:
    (tmp_path / "schema.yml").write_text("schema_type: dataframe\ncolumns: {}\n")
    verdict = run_yaml(
        """\
        suite: objects
        checks:
          - {type: schema, files: "s3://results-x/run/*.json", records: /rows, schema: schema.yml}
        """
    )
    check = only_check(verdict)
    assert check["status"] == "ERROR", check
    assert check["error"]["category"] == "config" and "tables:" in check["error"]["message"], check


@pytest.fixture
def strict_s3_server() -> Iterator[str]:
    """A local S3 server that checks credentials (moto's IAM enforcement from the first
    request), in its own process: none of this test's keys is known to it."""
    port = _free_port()
    env = os.environ | {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_credentials_the_store_refuses_are_an_auth_error(
    tmp_path: Path, aws_env: dict[str, str], strict_s3_server: str
) -> None:
    code, written = run_cli(
        tmp_path,
        """\
        suite: objects
        checks:
          - {type: json_integrity, files: "s3://results-locked/run/*.json"}
        """,
        aws_env | {"AWS_ENDPOINT_URL": strict_s3_server},
    )
    assert code == 3, written[:2]
    (check,) = verdict_of(written)["checks"]
    assert check["status"] == "ERROR", check
    assert check["error"]["category"] == "auth", check
    assert leaks(written) == []
