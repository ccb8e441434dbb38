"""`postrun init [DIR]`: write a starter suite that passes `postrun validate`."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

from runner.errors import UsageError

DEFAULT_DATABASE = "warehouse.duckdb"
DEFAULT_RESULTS = "results"
"""Where the defaults point: inside the project folder."""
SUITE_PATH = Path("checks") / "postrun.yml"
_FILE_URL = re.compile(r"^(?P<head>(?:sqlite|duckdb)(?:\+\w+)?:///)(?P<path>[^?]*)(?P<tail>\?.*)?$")


def starter_suite(url: str, results: str) -> str:
    """The starter suite's text for a database URL and a glob of result files."""
    template = resources.files("runner").joinpath("templates/starter.yml").read_text()
    return (
        template.replace("__SUITE__", SUITE_PATH.as_posix())
        # JSON strings are YAML double-quoted scalars: any URL or glob stays one value.
        .replace("__URL__", json.dumps(url))
        .replace("__RESULTS__", json.dumps(results))
    )


def default_url(directory: Path) -> str:
    """The starter database, a DuckDB file in the project folder, as a URL from the cwd."""
    return f"duckdb:///{_from_cwd(directory / DEFAULT_DATABASE)}"


def default_results(directory: Path) -> str:
    """The project folder's results folder, as a path from the cwd."""
    return _from_cwd(directory / DEFAULT_RESULTS)


def results_glob(folder: str, suite_dir: Path) -> str:
    """A results folder (or glob) typed relative to the cwd, as the glob of its JSON files
    written relative to the suite's folder, which relative paths in a suite are read from."""
    pattern = folder if any(c in folder for c in "*?[") else f"{folder.rstrip('/')}/*.json"
    return _rebased(pattern, suite_dir)


def database_url(url: str, suite_dir: Path) -> str:
    """``url`` with the relative file of a ``sqlite:///`` or ``duckdb:///`` URL (typed relative
    to the cwd) written relative to the suite's folder; any other URL as typed."""
    match = _FILE_URL.match(url)
    if match is None or "{" in url or "$" in url:
        return url
    path = match["path"]
    if not path or path.startswith(":memory:") or Path(path).is_absolute():
        return url
    return f"{match['head']}{_rebased(path, suite_dir)}{match['tail'] or ''}"


def write_starter(directory: Path, url: str, results: str, *, force: bool = False) -> Path:
    """Write ``DIR/checks/postrun.yml``; ``url``'s file and ``results`` are paths as typed,
    relative to the current directory. An existing suite is kept unless ``force``."""
    path = directory / SUITE_PATH
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    suite_dir = path.parent
    path.write_text(starter_suite(database_url(url, suite_dir), results_glob(results, suite_dir)))
    return path


def _rebased(path: str, suite_dir: Path) -> str:
    if Path(path).is_absolute():
        return path
    return Path(os.path.relpath(Path.cwd() / path, suite_dir.resolve())).as_posix()


def _from_cwd(path: Path) -> str:
    return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
