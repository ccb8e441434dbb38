"""The verdict's ISO 8601 timestamps as every report shows them: in UTC, to the second."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc(iso: str) -> datetime | None:
    """``iso`` as an aware UTC moment (a naive one is taken as UTC); None when it does not
    parse."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def shown_utc(moment: datetime) -> str:
    """``2026-11-23 10:15:00 UTC``."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def format_timestamp(iso: str) -> str:
    """``2026-11-23 10:15:00 UTC`` from ISO 8601; the raw text when it does not parse."""
    moment = parse_utc(iso)
    return shown_utc(moment) if moment is not None else iso
