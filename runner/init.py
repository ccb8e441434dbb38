"""`postrun init [DIR]`: write a starter suite that passes `postrun validate`."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from runner.errors import UsageError

DEFAULT_URL = "duckdb:///warehouse.duckdb"
DEFAULT_RESULTS = "results/*.json"
SUITE_PATH = Path("checks") / "postrun.yml"


def starter_suite(url: str = DEFAULT_URL, results: str = DEFAULT_RESULTS) -> str:
    """The starter suite's text for a database URL and a glob of result files."""
    template = resources.files("runner").joinpath("templates/starter.yml").read_text()
    return (
        template.replace("__SUITE__", SUITE_PATH.as_posix())
        # JSON strings are YAML double-quoted scalars: any URL or glob stays one value.
        .replace("__URL__", json.dumps(url))
        .replace("__RESULTS__", json.dumps(results))
    )


def results_glob(folder: str, directory: Path, suite_dir: Path) -> str:
    """A results folder (or glob) relative to ``directory`` as the glob of its JSON files,
    written relative to the suite's folder, which relative paths in a suite are read from."""
    pattern = folder if any(c in folder for c in "*?[") else f"{folder.rstrip('/')}/*.json"
    if Path(pattern).is_absolute():
        return pattern
    return Path(os.path.relpath(directory.resolve() / pattern, suite_dir.resolve())).as_posix()


def write_starter(directory: Path, url: str, results: str, *, force: bool = False) -> Path:
    """Write ``DIR/checks/postrun.yml`` (``results`` relative to DIR); an existing file is kept
    unless ``force``."""
    path = directory / SUITE_PATH
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_suite(url, results_glob(results, directory, path.parent)))
    return path
