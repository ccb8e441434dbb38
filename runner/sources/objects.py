"""Result files in object storage: any fsspec URL (``s3://bucket/prefix/*.json``, ``gs://…``,
``memory://…``), listed with its glob and read with bounded concurrency and bounded memory.

Credentials are the store's own (for S3, botocore's default chain: the AWS environment, the
shared profile, instance roles); postrun never takes one in a suite, and the values it finds
in the environment are masked in every output (``secret_values``). An object is keyed by its
URL as a string, the way local files are keyed by their path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner.errors import SourceError
from runner.results import ErrorCategory

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from runner.sources.json_files import FileProblem, Inspection, JsonFileInspector

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_GLOB_CHARS = frozenset("*?[")
_BATCH_FILES = 512
"""Objects asked for in one batch of concurrent reads."""
_BATCH_BYTES = 64 * 1024 * 1024
"""Listed bytes one batch may hold; two batches are in memory at most (one read, one judged)."""
_CONCURRENCY = 64
"""Requests in flight at once within a batch."""
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_AUTH_ERRORS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "PermissionError"}
)


def is_url(pattern: str) -> bool:
    """Whether ``pattern`` names objects in a store (``scheme://``) rather than local files."""
    return _URL.match(pattern) is not None


def url_root(pattern: str) -> str:
    """The fixed leading part of an object URL's glob: ``s3://b/runs/*/x_*.json`` → ``s3://b/runs``."""
    scheme = _URL.match(pattern)
    start = scheme.end() if scheme else 0
    parts = pattern[start:].split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return pattern[:start] + "/".join(fixed)


def any_url(patterns: tuple[str, ...] | list[str]) -> bool:
    return any(is_url(p) for p in patterns)


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """The credentials in the environment a store may use: never to be printed. The access key
    id is not a secret on its own, but it names the account: it is masked too."""
    env = dict(os.environ) if env is None else env
    return [env[name] for name in ("AWS_ACCESS_KEY_ID", *_SECRET_ENV) if env.get(name)]


@dataclass(frozen=True)
class Store:
    """How postrun reaches object storage: the options fsspec is given besides the URL."""

    endpoint_url: str | None = None
    """An S3-compatible endpoint (MinIO, a local server); default: AWS_ENDPOINT_URL, else AWS."""
    _made: dict[str, AbstractFileSystem] = field(default_factory=dict, compare=False, repr=False)

    def filesystem(self, url: str) -> AbstractFileSystem:
        """The fsspec filesystem ``url`` lives on: one per store and scheme, made afresh for
        each store (fsspec's own cache would keep the credentials of an earlier run)."""
        scheme = _scheme(url)
        if scheme not in self._made:
            self._made[scheme] = self._make(scheme)
        return self._made[scheme]

    def _make(self, scheme: str) -> AbstractFileSystem:
        import fsspec

        options = self._options(scheme) | {"skip_instance_cache": True}
        try:
            return fsspec.filesystem(scheme, **options)
        except (ImportError, ValueError) as exc:
            raise SourceError(
                f"cannot read {scheme}:// URLs: {exc} (for s3://, install postrun[s3])",
                category=ErrorCategory.CONFIG,
            ) from exc

    def _options(self, scheme: str) -> dict[str, Any]:
        if scheme not in ("s3", "s3a"):
            return {}
        endpoint = (
            self.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        return {"endpoint_url": endpoint} if endpoint else {}


def _scheme(url: str) -> str:
    match = _URL.match(url)
    return match["scheme"].lower() if match else "file"


def listing(patterns: tuple[str, ...] | list[str], store: Store) -> dict[str, int]:
    """The objects matching any of ``patterns`` (fsspec glob), URL → listed size, sorted by URL."""
    found: dict[str, int] = {}
    for pattern in patterns:
        fs = store.filesystem(pattern)
        try:
            entries = fs.glob(pattern, detail=True)
        except Exception as exc:  # any driver error: translated, the cause kept
            raise store_error(exc, f"cannot list {pattern}") from exc
        for name, entry in entries.items():
            if entry.get("type") == "file":
                found[fs.unstrip_protocol(name)] = int(entry.get("size") or 0)
    return dict(sorted(found.items()))


def store_error(exc: BaseException, what: str) -> SourceError:
    """A store's error as a ``SourceError``: missing or refused credentials are ``auth``,
    anything else that stops a listing or a read is ``connectivity`` (retryable)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if names & _AUTH_ERRORS:
        return SourceError(
            f"{what}: access refused ({reason}); check the AWS credentials (environment or "
            "profile) and the bucket's policy",
            category=ErrorCategory.AUTH,
        )
    return SourceError(
        f"{what}: {reason}; check the endpoint and the network",
        category=ErrorCategory.CONNECTIVITY,
        retryable=True,
    )


def inspect(
    inspector: JsonFileInspector,
    objects: dict[str, int],
    store: Store,
    interrupt: Callable[[], None],
) -> Inspection:
    """The problems of ``objects`` (URL → listed size), in URL order, and their listed size.
    An object listed over the inspector's ``max_bytes`` is never read; the others are read in
    batches (``_BATCH_FILES`` objects, ``_BATCH_BYTES`` listed bytes) of concurrent requests,
    the next batch read while the last one is judged; no read asks for more than
    ``max_bytes + 1`` bytes, whatever the object grew to since it was listed."""
    from runner.sources.json_files import Inspection, too_large

    problems: list[FileProblem] = []
    batches = _batches(objects, inspector.max_bytes)
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending: Future[list[Any]] | None = None
        batch: list[str] = []
        for upcoming in (*batches, None):
            interrupt()
            ahead = None if upcoming is None else reader.submit(_read, upcoming, store, inspector)
            if pending is not None:
                problems += _judge(inspector, batch, pending.result(), interrupt)
            pending, batch = ahead, upcoming or []
    for url, size in objects.items():
        if size > inspector.max_bytes:
            problems.append(too_large(url, size, inspector.max_bytes))
        elif size == 0:  # not read: S3 refuses a byte range of an empty object
            problems += inspector.judge(url, b"")
    order = {url: index for index, url in enumerate(objects)}
    problems.sort(key=lambda p: order.get(p.path, len(order)))
    return Inspection(problems, sum(objects.values()))


def _batches(objects: dict[str, int], limit: int) -> list[list[str]]:
    batches: list[list[str]] = []
    batch: list[str] = []
    held = 0
    for url, size in objects.items():
        if size > limit or size == 0:
            continue
        if batch and (len(batch) >= _BATCH_FILES or held + size > _BATCH_BYTES):
            batches.append(batch)
            batch, held = [], 0
        batch.append(url)
        held += size
    return [*batches, batch] if batch else batches


def _read(urls: list[str], store: Store, inspector: JsonFileInspector) -> list[Any]:
    """Each object's first ``max_bytes + 1`` bytes, or the exception reading it raised."""
    fs = store.filesystem(urls[0])
    ends = [inspector.max_bytes + 1] * len(urls)
    return list(
        fs.cat_ranges(urls, [0] * len(urls), ends, on_error="return", batch_size=_CONCURRENCY)
    )


def _judge(
    inspector: JsonFileInspector,
    urls: list[str],
    contents: list[Any],
    interrupt: Callable[[], None],
) -> Iterator[FileProblem]:
    from runner.sources.json_files import FileProblem, too_large, unreadable

    for url, data in zip(urls, contents, strict=True):
        interrupt()
        if isinstance(data, FileNotFoundError):
            message = "the object does not exist (it may have been removed after it was listed)"
            yield FileProblem(url, "missing", message)
        elif isinstance(data, BaseException):
            error = store_error(data, f"cannot read {url}")
            if error.category is ErrorCategory.AUTH:
                raise error from data
            yield unreadable(url, error.message)
        elif len(data) > inspector.max_bytes:
            yield too_large(url, len(data), inspector.max_bytes)
        else:
            yield from inspector.judge(url, bytes(data))
