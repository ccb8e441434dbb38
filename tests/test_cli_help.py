"""What `postrun` answers before anything runs: --version, readable --help for every command,
the demo's faults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from runner.demo import CLEAN, DEFAULT_FAULTS, FAULTS

ROOT = Path(__file__).parent.parent
COMMANDS = ["check", "validate", "report", "list", "schema", "demo", "init"]
UNREADABLE = re.compile(r"<list\[|<int|\{")
"""Typer's placeholders for a type (`<list[str]>`, `<int range>`) or a required argument
(`{suite}`): a person reads NAME=VALUE, N, SUITE."""


def postrun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"COLUMNS": "100"},
    )


def test_cli_version_is_the_package_version(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = postrun("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"postrun {version}\n", "")
    demo = postrun("demo", "--fault", CLEAN, "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    (verdict,) = (tmp_path / "demo" / "reports").glob("demo/*/verdict.json")
    assert json.loads(verdict.read_text())["tool"] == {"name": "postrun", "version": version}


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_cli_help_has_readable_placeholders(command: str) -> None:
    done = postrun(*([command] if command else []), "--help")
    assert done.returncode == 0, done.stderr
    assert UNREADABLE.findall(done.stdout) == [], done.stdout
    usage = done.stdout.splitlines()[0]
    assert usage.startswith(f"Usage: python -m runner {command}".rstrip()), usage


def test_cli_help_names_each_argument_and_option_value() -> None:
    check = postrun("check", "--help").stdout
    assert check.splitlines()[0] == "Usage: python -m runner check [OPTIONS] SUITE"
    for shown in ("--param NAME=VALUE", "--only NAME", "--jobs N", "--sample-limit N", "--out DIR"):
        assert shown in check, shown
    init = postrun("init", "--help").stdout
    assert init.splitlines()[0] == "Usage: python -m runner init [OPTIONS] [DIR]"
    assert "--url URL" in init and "--results FOLDER" in init


def test_cli_demo_help_lists_every_fault_and_says_it_exits_1() -> None:
    text = postrun("demo", "--help").stdout
    listed = {
        line.split()[0]: " ".join(line.split()[1:])
        for line in text.split("Faults (--fault NAME, repeatable):\n")[1]
        .split("\n\n")[0]
        .splitlines()
    }
    assert listed == FAULTS
    flat = " ".join(text.split())
    assert "It exits 1 on purpose" in flat
    assert f"by default it injects {' and '.join(DEFAULT_FAULTS)}" in flat
    assert "--fault none builds a clean batch: every check passes, exit 0." in flat
