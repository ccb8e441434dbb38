"""Where the history store is: `--history`, else $POSTRUN_HISTORY, else the suite's `history:`,
else the default SQLite file next to the reports; `off` anywhere in that order turns it off."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runner.errors import UsageError

ENV = "POSTRUN_HISTORY"
OFF = "off"
FILENAME = "history.sqlite"


def default_url(reports_root: Path) -> str:
    """The embedded store under a reports root: ``<root>/history.sqlite``."""
    return f"sqlite:///{(reports_root / FILENAME).absolute()}"


def history_url(
    option: str | None,
    suite_url: str | None,
    default: str | None,
    *,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The store's URL for a run, or None when history is off (or nothing names a store)."""
    env = os.environ if env is None else env
    for value in (option, env.get(ENV) or None, suite_url, default):
        if value is None:
            continue
        chosen = value.strip()
        if chosen.lower() == OFF:
            return None
        if "://" not in chosen:
            raise UsageError(
                f"history store '{chosen}' is not a SQLAlchemy URL (e.g. sqlite:///history.sqlite"
                " or postgresql://host/db) nor 'off'"
            )
        return chosen
    return None


def history_key(suite: str, params: Mapping[str, object], key_params: list[str]) -> str:
    """What keeps apart runs of one suite for different entities: the suite name by default,
    else `param=value` of each `history_key` param, in the order the suite lists them."""
    if not key_params:
        return suite
    return ",".join(f"{name}={_text(params.get(name))}" for name in key_params)


def _text(value: object) -> str:
    if isinstance(value, list):
        return "|".join(map(str, value))
    return "" if value is None else str(getattr(value, "isoformat", lambda: value)())
