"""A verdict's reports: each format to its file, atomically (temp file, fsync, rename)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from runner.errors import OutputError, UsageError
from runner.results import SCHEMA_VERSION, Verdict

Renderer = Callable[[Verdict], bytes]

# Each renderer's module (jinja2 for HTML, ElementTree for JUnit) is imported only when that
# format is written, so a run that writes verdict.json alone pays for none of the others.


def _render_json(verdict: Verdict) -> bytes:
    from runner.render.json import render_json

    return render_json(verdict)


def _render_html(verdict: Verdict) -> bytes:
    from runner.render.html import render_html

    return render_html(verdict)


def _render_junit(verdict: Verdict) -> bytes:
    from runner.render.junit import render_junit

    return render_junit(verdict)


def _render_markdown(verdict: Verdict) -> bytes:
    from runner.render.markdown import render_markdown

    return render_markdown(verdict)


FORMATS: dict[str, tuple[str, Renderer]] = {
    "json": ("verdict.json", _render_json),
    "html": ("verdict.html", _render_html),
    "junit": ("junit.xml", _render_junit),
    "md": ("summary.md", _render_markdown),
}


def write_reports(
    verdict: Verdict,
    out_dir: Path,
    formats: Iterable[str] = FORMATS,
    *,
    stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """Render each format of ``verdict`` into ``out_dir``; returns the files written.

    One format failing does not cost the others: every format is attempted, then an
    ``OutputError`` names each one that could not be written. Once ``stop()`` says so (postrun
    was asked to exit), no further format is started; the one being written is finished.
    """
    written: list[Path] = []
    problems: list[str] = []
    for fmt in formats:
        if stop is not None and stop():
            break
        filename, render = FORMATS[fmt]
        try:
            write_atomic(out_dir / filename, render(verdict))
        except OutputError as exc:
            problems.append(str(exc))
        except Exception as exc:  # a renderer bug: still write the other reports
            problems.append(f"cannot render {out_dir / filename}: {type(exc).__name__}: {exc}")
        else:
            written.append(out_dir / filename)
    if problems:
        raise OutputError("; ".join(problems))
    return written


def read_verdict(path: Path) -> Verdict:
    """Load a stored verdict.json; ``UsageError`` names the file and its first problem."""
    from pydantic import ValidationError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        verdict = Verdict.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise UsageError(f"{path}: not a valid verdict.json: {where}: {first['msg']}") from exc
    if verdict.schema_version != SCHEMA_VERSION:
        raise UsageError(
            f"{path}: schema_version {verdict.schema_version} is not supported "
            f"(this postrun reads {SCHEMA_VERSION})"
        )
    return verdict


def append_step_summary(target: Path, verdict: Verdict) -> None:
    """Append summary.md to a CI job summary file (``$GITHUB_STEP_SUMMARY``), after a blank line."""
    try:
        with target.open("ab") as handle:
            separator = b"\n" if handle.tell() else b""
            handle.write(separator + _render_markdown(verdict))
    except OSError as exc:
        raise OutputError(f"cannot append to {target}: {exc.strerror or exc}") from exc


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent, the old file, or complete.

    The temporary file is known (``discard_temporary_files``) from before it exists until it is
    renamed or removed, so that postrun exiting at once never leaves one behind.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _IN_PROGRESS.add(tmp)
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # 0666 less the umask, as open() gives (mkstemp's 0600 would hide the reports)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        _IN_PROGRESS.discard(tmp)


def discard_temporary_files() -> None:
    """Remove the temporary file of every report being written (postrun must exit at once)."""
    for tmp in list(_IN_PROGRESS):
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


_IN_PROGRESS: set[Path] = set()
"""Temporary files of the reports being written, from just before each is created."""
