"""The one date formatter: a moment in UTC, to the second, with a ``Z``.

Dates the API keeps as midnight (due and start dates) are shortened to the day (``day_or_moment``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

SECOND = "%Y-%m-%dT%H:%M:%SZ"


def moment(value: datetime | None) -> str | None:
    """A moment in UTC to the second; 00:00 stays a time (a timer started at midnight did)."""
    return value.astimezone(UTC).strftime(SECOND) if value is not None else None


def day_or_moment(value: datetime | None) -> str | None:
    """A due or start date: just the day when it is midnight UTC, else the moment."""
    if value is not None and value.astimezone(UTC).time() == time():
        return value.astimezone(UTC).date().isoformat()
    return moment(value)
