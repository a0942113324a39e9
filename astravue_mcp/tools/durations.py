"""Time entries as the API counts them (milliseconds) and as every output speaks of them (minutes, hours)."""

from __future__ import annotations

from astravue_mcp.api import models

MS_PER_MINUTE = 60_000


def ms_to_minutes(ms: int | None) -> float:
    return round((ms or 0) / MS_PER_MINUTE, 1)


def ms_to_hours(ms: int) -> float:
    return round(ms / (60 * MS_PER_MINUTE), 2)


def is_running(entry: models.TimeEntry) -> bool:
    return bool(entry.running) or (entry.end_time is None and entry.start_time is not None)
