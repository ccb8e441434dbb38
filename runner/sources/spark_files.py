"""File tables read by Spark (a files source with ``engine: spark``): each table is a Spark
temporary view over its files, read with ``mode: PERMISSIVE`` and a corrupt-record column, so
that postrun names each file with corrupt records and how many, and each file Spark cannot read
at all (SPEC §6: a check that read such a table may FAIL but never PASS, unless the source says
``unreadable: skip``).

How a table is read, in one Spark session of the source's own (``newSession`` on the server of
``spark_url``, ``spark://local`` by default): its temporary views are invisible to any other
source and gone when the source closes; nothing is written to the catalog.

- postrun lists the files (the same globs as on DuckDB) and hands Spark their paths as data:
  ``DataFrameReader.json([...])``, never pasted into SQL. A file of 0 bytes is ``empty``.
- A JSON file must be one complete JSON document, as on DuckDB (the JSON inspector's reason
  names it otherwise): Spark's ``multiLine`` reads a file's first document only.
- JSON (``multiLine``), NDJSON and CSV (header, inferred types): the schema is inferred first
  (inference parses every record: a JSON table with no corrupt one is read as it is). Otherwise
  the files are read with that schema plus ``_postrun_corrupt_record``, and one aggregate per
  table counts, per ``input_file_name()``, the records and the corrupt ones. Spark refuses a
  query that reads only the corrupt-record column from raw files, which filtering them out
  would be: a table with corrupt records is cached (in the session, released at close) and its
  view keeps the records that parsed.
- Parquet: the schemas are merged (every footer read). When a footer cannot be read, the files
  are counted with ``ignoreCorruptFiles``, each file Spark read no row of is read once more
  alone for its error, and the table reads the readable files without skipping any.

The views have the files' own columns only: the corrupt-record text and the file name are
postrun's, reported in the check's notes, never columns a check sees.

The tables are read once, by the source's first statement and under its deadline; a table Spark
cannot read is the error of the statements that name it (``_table_error``), not of the source.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

from runner.errors import SourceError
from runner.results import ErrorCategory
from runner.sources.files import FileSource, FileTable, TableEngine, expand, unread_note
from runner.sources.objects import Store
from runner.sources.spark import LOCAL_URL, SparkSource
from runner.sources.sql import Interrupter

if TYPE_CHECKING:
    import sqlalchemy as sa
    from pyspark.sql.connect.dataframe import DataFrame
    from pyspark.sql.connect.session import SparkSession

CORRUPT = "_postrun_corrupt_record"
"""The corrupt-record column postrun asks Spark for; never part of a view."""
_PROBE = "_postrun_probe"
"""A column of postrun's own when a JSON table has no column but the corrupt one (every record
corrupt): Spark reads the corrupt-record column only alongside another."""
_PARTLY = "not read in full"
"""What became of the files named in a note (``unread_note``): some or all of their records
were left out of the table."""
_REASON_CHARS = 300
_READERS = 4
"""Tables read at once: a table's reading is a few small Spark jobs, mostly waiting."""
_WHOLE_READ = (ErrorCategory.TIMEOUT, ErrorCategory.CONNECTIVITY, ErrorCategory.AUTH)
"""Errors of the whole reading, not of one table: they end it, and the next statement reads
again."""


@dataclass(frozen=True)
class FileCount:
    """What Spark read of one file."""

    path: str
    records: int | None
    """How many records Spark read of it; None when not counted (none was corrupt)."""
    corrupt: int
    problem: str | None = None
    """Why no record of the file could be read (``empty``, Spark's error), else None."""

    @property
    def reason(self) -> str | None:
        """The note's reason for this file, or None when it was read in full."""
        if self.problem is not None:
            return self.problem
        if self.corrupt:
            noun = "record" if self.records == 1 else "records"
            return f"{self.corrupt} of {self.records} {noun} corrupt"
        return None

    @property
    def readable(self) -> bool:
        """Whether at least one of its records is in the table."""
        return self.problem is None and (self.records is None or self.records > self.corrupt)


class _OwnSession(SparkSource):
    """A Spark source on a session of its own: the file tables' temporary views live there."""

    def _connect(self) -> SparkSession:
        shared = super()._connect()
        if self.url != LOCAL_URL:
            return shared  # a remote source's session is its own already
        try:
            return _new_session(shared)
        except Exception as exc:
            raise self._error(exc, connecting=True) from exc

    def close(self) -> None:
        """Release the session on the server (its views and cached tables with it)."""
        session, self._session = self._session, None
        if session is None:
            return
        for release in (session.client.release_session, session.client.close):
            try:
                release()
            except Exception:  # the server or the session is already gone
                continue


def _new_session(shared: SparkSession) -> SparkSession:
    """A fresh session on the server of ``shared`` (PySpark 4.3's ``newSession``; before it, a
    session made for the server's port)."""
    from pyspark.errors import PySparkNotImplementedError
    from pyspark.sql.connect.session import SparkSession

    try:
        return shared.newSession()
    except (AttributeError, PySparkNotImplementedError):
        port = shared.conf.get("spark.connect.grpc.binding.port")
        return SparkSession.builder.remote(f"sc://localhost:{port}").create()


class SparkFileSource(FileSource):
    """A files source whose tables Spark reads (see the module docstring); ``files`` and the
    rest of a file source are as on DuckDB."""

    def __init__(
        self,
        name: str,
        patterns: list[str],
        tables: list[FileTable],
        *,
        url: str | None = None,
        unreadable: Literal["error", "skip"] = "error",
        store: Store | None = None,
    ) -> None:
        super().__init__(name, patterns, tables, unreadable=unreadable, store=store)
        self._sql = None  # Spark reads the tables: no DuckDB
        self.spark = _OwnSession(name, url or LOCAL_URL)
        self.counts: dict[str, list[FileCount]] = {}
        """Table name → what Spark read of each file behind it, once the tables are read."""
        self._failed: dict[str, SourceError] = {}
        """Table name → why Spark could not read it."""
        self._read_done = False
        self._cached: list[DataFrame] = []
        self._spark_lock = threading.Lock()

    def secrets(self) -> list[str]:
        return [*super().secrets(), *self.spark.secrets()]

    def dialect(self) -> sa.Dialect:
        return self.spark.dialect()

    def close(self) -> None:
        for frame in self._cached:
            try:
                frame.unpersist()
            except Exception:  # the session is already gone
                continue
        self._cached = []
        self.spark.close()
        super().close()

    @contextmanager
    def _tables(
        self, interrupter: Interrupter | None, deadline: float | None
    ) -> Iterator[TableEngine]:
        """Spark, with every table a view in its session (read once, under the first
        statement's interrupter and deadline)."""
        try:
            self._read_tables(interrupter, deadline)
            yield self.spark
        except SourceError as exc:
            raise self._table_error(exc) from exc

    def _read_tables(self, interrupter: Interrupter | None, deadline: float | None) -> None:
        """Read every table once, a few at a time. A table Spark cannot read is an error of the
        statements that name it alone; a timeout, or a server that is gone, is every table's
        (read again by the next statement)."""
        with self._spark_lock:
            if self._read_done:
                return
            if not self.tables:
                raise self._no_tables()
            session = self.spark.session()
            with self.spark._tagged(session, interrupter, deadline):
                tags = session.getTags()  # the statement's: what its deadline cancels
                workers = min(_READERS, len(self.tables))
                with ThreadPoolExecutor(workers, thread_name_prefix="postrun-spark-read") as pool:
                    reads = [pool.submit(self._read_one, session, t, tags) for t in self.tables]
                    for read in reads:
                        read.result()
            self._read_done = True

    def _read_one(self, session: SparkSession, table: FileTable, tags: set[str]) -> None:
        """Read one table on a thread of its own, under the statement's tags."""
        for tag in tags:
            session.addTag(tag)
        try:
            read = functools.partial(self._read, session, table)
            self.counts[table.name] = self.spark._call(read)
        except SourceError as exc:
            if exc.category in _WHOLE_READ:
                raise
            self._failed[table.name] = self._unread(table.name, exc)
        finally:
            session.clearTags()

    def _unread(self, table: str, exc: SourceError) -> SourceError:
        reason = (exc.detail or exc.message).strip().splitlines()[0][:_REASON_CHARS]
        return SourceError(
            f"Table '{table}' of source '{self.name}' could not be read by Spark: {reason}",
            category=exc.category,
            retryable=exc.retryable,
            detail=exc.detail,
        )

    def _table_error(self, exc: SourceError) -> SourceError:
        """A statement's error, naming the table it could not find when that table could not be
        read, or had no readable files."""
        for table, failure in self._failed.items():
            if exc.category is ErrorCategory.SCHEMA_MISMATCH and table in exc.message:
                return failure
        return self._explain_empty(exc)

    def _read(self, session: SparkSession, table: FileTable) -> list[FileCount]:
        """Read ``table``'s files, make its view, keep its note; what was read of each file."""
        files = [os.path.abspath(p) for p in expand(table.patterns)]
        sizes = {path: os.path.getsize(path) for path in files}
        unread = {path: _unreadable(path, sizes[path]) for path in files}
        if table.format == "json":
            unread |= _incomplete([path for path, problem in unread.items() if problem is None])
        given = [path for path, problem in unread.items() if problem is None]
        if table.format == "parquet":
            found, frame = self._parquet(session, given)
        else:
            found, frame = self._text(session, table.format, given)
        found += [FileCount(path, 0, 0, problem) for path, problem in unread.items() if problem]
        counts = sorted(found, key=lambda count: count.path)
        bad = [f"{c.path} ({c.reason})" for c in counts if c.reason is not None]
        partly = any(c.readable for c in counts if c.reason is not None)
        what = _PARTLY if partly else "skipped as unreadable"
        if bad:
            self._skipped[table.name] = unread_note(table.name, bad, len(files), what)
        if frame is None or not any(c.readable for c in counts):
            self._empty[table.name] = ", ".join(table.patterns)
        else:
            frame.createOrReplaceTempView(table.name)
        return counts

    def _text(
        self, session: SparkSession, fmt: str, files: list[str]
    ) -> tuple[list[FileCount], DataFrame | None]:
        """JSON, NDJSON or CSV files read with a corrupt-record column: what was read of each,
        and the frame of the records that parsed."""
        if not files:
            return [], None
        from pyspark.sql.types import StringType, StructField, StructType

        paths = [_spark_path(path) for path in files]
        inferred = _reader(session, fmt).load(paths).schema
        fields = [f for f in inferred.fields if f.name != CORRUPT]
        names = [f.name for f in fields]
        if fmt != "csv" and len(fields) == len(inferred.fields):
            # inferring the schema parsed every record, and none failed: no count is needed
            frame = _reader(session, fmt).schema(inferred).load(paths)
            return [FileCount(path, None, 0) for path in files], frame if names else None
        fields = fields or [StructField(_PROBE, StringType())]
        schema = StructType([*fields, StructField(CORRUPT, StringType())])
        frame = _reader(session, fmt).schema(schema).load(paths)
        per_file = (
            frame.selectExpr(
                "input_file_name() AS file",
                f"`{CORRUPT}` IS NOT NULL AS corrupt",
                f"`{fields[0].name}` IS NULL AS unused",  # read a column besides the corrupt one
            )
            .groupBy("file")
            .agg({"*": "count", "corrupt": "count_if", "unused": "count_if"})
            .toDF("file", "records", "corrupt", "unused")
            .collect()
        )
        found = {_local(row["file"]): row for row in per_file}
        counts = [FileCount(path, row["records"], row["corrupt"]) for path, row in found.items()]
        counts += [FileCount(path, 0, 0) for path in files if path not in found]
        if any(c.corrupt for c in counts):
            frame = frame.cache()
            self._cached.append(frame)
            frame = frame.where(f"`{CORRUPT}` IS NULL")
        return counts, frame.select(*names) if names else None

    def _parquet(
        self, session: SparkSession, files: list[str]
    ) -> tuple[list[FileCount], DataFrame | None]:
        """Parquet files with their schemas merged; when a file's footer cannot be read, the
        others counted past it and each file Spark read no row of read alone for its error. The
        table reads the readable files without skipping any: a file that fails later fails its
        statement, never shortens the table."""
        if not files:
            return [], None
        from pyspark.errors import PySparkException

        try:
            return [FileCount(path, None, 0) for path in files], _parquet_frame(session, files)
        except PySparkException:
            pass  # a footer Spark cannot read: which file's, the count below tells
        past = _parquet_reader(session).option("ignoreCorruptFiles", "true")
        frame = past.parquet(*map(_spark_path, files))
        rows = frame.selectExpr("input_file_name() AS file").groupBy("file").count().collect()
        found = {_local(row["file"]): row["count"] for row in rows}
        counts = [
            FileCount(path, found[path], 0)
            if path in found
            else FileCount(path, 0, 0, _parquet_problem(session, path))
            for path in files
        ]
        readable = [c.path for c in counts if c.problem is None]
        return counts, _parquet_frame(session, readable) if readable else None


def _parquet_frame(session: SparkSession, files: list[str]) -> DataFrame:
    """Parquet files as one frame, their schemas merged (reading every footer: a job)."""
    frame: DataFrame = _parquet_reader(session).parquet(*map(_spark_path, files))
    frame.schema  # noqa: B018  (the footers are read here, not at the first check)
    return frame


def _unreadable(path: str, size: int) -> str | None:
    """Why Spark is not asked to read ``path`` at all, or None."""
    if size == 0:
        return "empty"
    if ":" in path:
        return "a ':' in its path, which Hadoop's file systems cannot read"
    return None


def _incomplete(files: list[str]) -> dict[str, str | None]:
    """Path → why a JSON file is not one complete JSON document (the inspector's reason, as on
    DuckDB), for the files that are not: Spark's ``multiLine`` reads a file's first document and
    no further, so a file with more after it would lose the rest without a corrupt record."""
    from runner.sources.json_files import JsonFileInspector

    found = JsonFileInspector().inspect_many(files).problems
    return {problem.path: problem.reason for problem in reversed(found)}


def _reader(session: SparkSession, fmt: str) -> Any:
    """A PERMISSIVE reader of ``fmt`` keeping corrupt records in ``CORRUPT``."""
    reader = (
        session.read.format("csv" if fmt == "csv" else "json")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
    )
    if fmt == "json":
        return reader.option("multiLine", "true")
    if fmt == "csv":
        return reader.option("header", "true").option("inferSchema", "true")
    return reader


def _parquet_reader(session: SparkSession) -> Any:
    return session.read.option("mergeSchema", "true")


def _parquet_problem(session: SparkSession, path: str) -> str | None:
    """Spark's reason for not reading one Parquet file, or None when it reads (it has no rows)."""
    try:
        session.read.parquet(_spark_path(path)).count()
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return first[:_REASON_CHARS]
    return None


_GLOB = re.compile(r"([\\*?\[\]{}])")


def _spark_path(path: str) -> str:
    """``path`` as Spark reads exactly that file: a ``file://`` URI (a name with ``:`` is no
    scheme) with Hadoop's glob characters escaped (``run [1].json`` is no pattern)."""
    return "file://" + _GLOB.sub(r"\\\1", path)


def _local(uri: str) -> str:
    """The local path of a ``file:`` URI as ``input_file_name()`` gives it (any other URI as it
    is: a count is never dropped for want of a name)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("file", "") else uri
