"""Writes a verdict's reports: each format to its file, atomically (temp file, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from runner.errors import OutputError
from runner.render.json import render_json
from runner.results import Verdict

Renderer = Callable[[Verdict], bytes]

FORMATS: dict[str, tuple[str, Renderer]] = {
    "json": ("verdict.json", render_json),
}


def write_reports(verdict: Verdict, out_dir: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Render each format of ``verdict`` into ``out_dir``; returns the files written."""
    written = []
    for fmt in formats:
        filename, render = FORMATS[fmt]
        path = out_dir / filename
        write_atomic(path, render(verdict))
        written.append(path)
    return written


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent, the old file, or complete."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
