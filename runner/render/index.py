"""The run index: ``<root>/index.html`` listing recent runs of every suite, rebuilt under a lock
on the ``<root>`` folder itself (no lock file is left behind)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from runner.errors import OutputError
from runner.render import write_atomic
from runner.render.timestamps import parse_utc, shown_utc
from runner.results import Status
from runner.values import visible

RUNS_PER_SUITE = 200
INDEX_NAME = "index.html"


@dataclass(frozen=True)
class RunRow:
    """One line of the index: a run's facts, ready to print (template only loops and prints)."""

    suite: str
    run_id: str
    started: str
    verdict: str
    counts: str
    duration: str
    link: str
    moment: datetime


@dataclass(frozen=True)
class IndexPage:
    """What index.html shows: every listed run, the latest run of each suite, a summary line."""

    rows: list[RunRow]
    suites: list[RunRow]
    hidden: int
    generated: str

    @property
    def summary(self) -> str:
        runs = len(self.rows)
        text = (
            f"{runs} run{'' if runs == 1 else 's'} listed, newest first; "
            f"at most the {RUNS_PER_SUITE} most recent runs of each suite are kept on this page"
        )
        return text + (f" ({self.hidden} older not listed)." if self.hidden else ".")


def update_index(root: Path) -> Path:
    """Rebuild ``root/index.html`` from ``root/<suite>/<run>/verdict.json``; returns its path.

    An exclusive lock on the folder ``root`` covers the scan and the (atomic) write, so two
    runs finishing together cannot overwrite each other's entry.
    """
    index = root / INDEX_NAME
    with _locked(root):
        page = build_page(root)
        write_atomic(index, render_index(page))
    return index


def existing_index_root(out_dir: Path) -> Path | None:
    """``out_dir/../..`` if it already holds a run index (index.html), else None.

    For an explicit ``--out``: a run written as ``<root>/<suite>/<run>`` under an existing
    index joins it; any other folder never gets an index.html written two levels up.
    """
    root = out_dir.absolute().parent.parent
    return root if (root / INDEX_NAME).exists() else None


def build_page(root: Path) -> IndexPage:
    """Every run folder under ``root``, newest first, at most RUNS_PER_SUITE per suite.

    Only the RUNS_PER_SUITE most recently written verdict.json files of a suite are read, so
    the cost of a rebuild does not grow with the history kept on disk.
    """
    by_suite: dict[str, list[Path]] = {}
    for path in root.glob("*/*/verdict.json"):
        by_suite.setdefault(path.parent.parent.name, []).append(path)
    kept: list[RunRow] = []
    latest: list[RunRow] = []
    hidden = 0
    for paths in by_suite.values():
        paths.sort(key=_written_ns, reverse=True)
        rows = sorted(
            (read_row(path, root) for path in paths[:RUNS_PER_SUITE]),
            key=_newest_first,
            reverse=True,
        )
        kept += rows
        latest.append(rows[0])
        hidden += len(paths) - len(rows)
    return IndexPage(
        rows=sorted(kept, key=_newest_first, reverse=True),
        suites=sorted(latest, key=lambda row: row.suite),
        hidden=hidden,
        generated=shown_utc(datetime.now(UTC)),
    )


def read_row(path: Path, root: Path) -> RunRow:
    """The index row of one verdict.json; an unreadable file still gets a row saying so."""
    run_dir = path.parent
    html = run_dir / "verdict.html"
    target = html if html.exists() else path
    # the bytes of the name: a folder name that is not UTF-8 still gets a link that opens it
    link = "/".join(quote(os.fsencode(part), safe="") for part in target.relative_to(root).parts)
    try:
        summary = _Summary.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return _unreadable_row(path, link)
    moment = parse_utc(summary.started_at) or _mtime(path)
    return RunRow(
        suite=summary.suite.name,
        run_id=summary.run_id,
        started=shown_utc(moment),
        verdict=summary.verdict.value,
        counts=" · ".join(f"{n} {s}" for s, n in summary.counts.items() if n) or "no checks",
        duration=f"{summary.duration_s:.2f} s",
        link=link,
        moment=moment,
    )


def render_index(page: IndexPage) -> bytes:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("runner", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    return env.get_template(INDEX_NAME).render(page=page).encode()


def _shown(value: object) -> object:
    """A folder name as the page shows it: control characters and undecodable bytes written out
    (``\\x1b``, ``\\xff``)."""
    return visible(value, spacing=True) if isinstance(value, str) else value


class _Suite(BaseModel):
    name: str


class _Summary(BaseModel):
    """The few verdict.json fields the index shows; the rest is ignored."""

    suite: _Suite
    run_id: str
    started_at: str
    verdict: Status
    counts: dict[str, int]
    duration_s: float


def _unreadable_row(path: Path, link: str) -> RunRow:
    moment = _mtime(path)
    return RunRow(
        suite=path.parent.parent.name,
        run_id=path.parent.name,
        started=f"{shown_utc(moment)} (file written)",
        verdict="unreadable",
        counts="verdict.json is corrupt or incomplete",
        duration="",
        link=link,
        moment=moment,
    )


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder``: flock on the directory itself, which every process
    opens alike, so there is no lock file to leave in the reports (nor to delete safely)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OutputError(f"cannot lock {folder}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _newest_first(row: RunRow) -> tuple[datetime, str, str]:
    """Sort key, used with ``reverse=True``: latest start first, ties by run id then suite."""
    return (row.moment, row.run_id, row.suite)


def _written_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.fromtimestamp(0, UTC)
