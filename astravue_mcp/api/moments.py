"""Date-times as every part of the server keeps them: aware, in UTC (a module light enough for start-up)."""

from __future__ import annotations

from datetime import UTC, datetime


def in_utc(value: datetime) -> datetime:
    """The moment in UTC (no offset: UTC); one that does not exist there is invalid, not a crash later.

    ``0001-01-01T00:00:00+14:00`` is a valid ISO 8601 date-time whose UTC form lies before year 1.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the dates that exist in UTC (years 1 to 9999)") from None
