"""Time helpers. All stored times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; naive values (as SQLite hands them back) are taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; one without an offset is read as UTC."""
    return as_utc(datetime.fromisoformat(text))


def local_time(moment: datetime | str | None, zone: str | None) -> str:
    """An instant on a person's clock ("2026-11-23 16:04 CET"; ``zone`` None: UTC), the zone's
    abbreviation saying which clock it is. An ISO 8601 text is read first (as notifications keep their
    deadlines); None is nothing."""
    if moment is None or moment == "":
        return ""
    instant = parse_instant(moment) if isinstance(moment, str) else as_utc(moment)
    return instant.astimezone(ZoneInfo(zone or "UTC")).strftime("%Y-%m-%d %H:%M %Z")


def local_day(moment: datetime | None, zone: str | None) -> str:
    """The day an instant falls on, on a person's clock ("2026-11-23")."""
    if moment is None:
        return ""
    return as_utc(moment).astimezone(ZoneInfo(zone or "UTC")).date().isoformat()
