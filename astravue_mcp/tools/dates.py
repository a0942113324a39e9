"""The one way a moment is written out: in UTC, to the second, with a ``Z``.

Dates the API keeps as midnight (due and start dates) may be shortened to the day (``day_or_moment``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

SECOND = "%Y-%m-%dT%H:%M:%SZ"


def moment(value: datetime | None) -> str | None:
    """A moment in UTC to the second; 00:00 stays a time (a timer started at midnight did)."""
    return value.astimezone(UTC).strftime(SECOND) if value is not None else None


def day_or_moment(value: datetime | None) -> str | None:
    """A due or start date: just the day when it is midnight UTC, else the moment."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.date().isoformat() if value.time() == time() else value.strftime(SECOND)
