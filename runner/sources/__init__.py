"""Where checks read from: SQL databases (SQLAlchemy) and result files (globs, DuckDB views)."""

from __future__ import annotations

from runner.sources.files import FileSource
from runner.sources.sql import SqlSource

Source = SqlSource | FileSource

__all__ = ["FileSource", "Source", "SqlSource"]
