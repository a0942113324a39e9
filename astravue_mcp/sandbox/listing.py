"""Query parameters of the list endpoints: task filters, sorting, Spring-style pages, date ranges.

Parameter names come from ``api/endpoints.py`` so the client and the sandbox cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from astravue_mcp.api.endpoints import PAGE, PAGE_SIZE, PAGES_START_AT, SORT_BY, SORT_DIR, TASK_FILTERS
from astravue_mcp.sandbox.records import TaskRow, invalid
from astravue_mcp.sandbox.store import Store

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def int_param(
    query: Mapping[str, str], name: str, default: int | None = None, minimum: int | None = None
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid((name, f"must be an integer (got {raw!r})")) from None
    if minimum is not None and value < minimum:
        raise invalid((name, f"must be at least {minimum} (got {value})"))
    return value


def bool_param(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise invalid((name, f"must be true or false (got {raw!r})"))


def day_param(query: Mapping[str, str], name: str) -> date | None:
    """An ISO date; a full timestamp is accepted and its (UTC) date used."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid((name, f"must be an ISO date such as 2024-05-31 (got {raw!r})")) from None
    return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).date()


def day_range(query: Mapping[str, str], start_name: str, end_name: str) -> tuple[datetime | None, datetime | None]:
    """Inclusive whole days [start 00:00, end+1 00:00) in UTC."""
    start, end = day_param(query, start_name), day_param(query, end_name)
    if start and end and end < start:
        raise invalid((end_name, f"must not be before {start_name}"))
    lo = datetime.combine(start, time(), UTC) if start else None
    hi = datetime.combine(end, time(), UTC) + timedelta(days=1) if end else None
    return lo, hi


def page(items: Sequence[T], query: Mapping[str, str], view: Callable[[T], Any]) -> dict[str, Any]:
    number = int_param(query, PAGE, PAGES_START_AT, minimum=PAGES_START_AT)
    size = int_param(query, PAGE_SIZE, DEFAULT_PAGE_SIZE, minimum=1)
    assert number is not None and size is not None
    size = min(size, MAX_PAGE_SIZE)  # like Spring's max-page-size: clamp rather than refuse
    first = (number - PAGES_START_AT) * size
    total = len(items)
    return {
        "content": [view(item) for item in items[first : first + size]],
        "totalElements": total,
        "totalPages": math.ceil(total / size),
        "pageNumber": number,
        "pageSize": size,
        "last": first + size >= total,
    }


def _labels(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _sort_keys(store: Store) -> dict[str, Callable[[TaskRow], Any]]:
    def status_position(t: TaskRow) -> int:
        return store.status_ids_for(t.project_id).index(t.status_id)

    return {
        "dueDate": lambda t: t.due or _FAR_FUTURE,
        "startDate": lambda t: t.start or _FAR_FUTURE,
        "priority": lambda t: store.priority_rank(t.priority_id),
        "status": status_position,
        "title": lambda t: t.title.casefold(),
        "taskTitle": lambda t: t.title.casefold(),
        "updateTime": lambda t: t.updated_at,
        "createdAt": lambda t: t.created_at,
        "completion": lambda t: t.completion,
        "taskId": lambda t: t.task_id,
    }


def query_tasks(store: Store, tasks: list[TaskRow], project_id: int | None, query: Mapping[str, str]) -> list[TaskRow]:
    """Filter and sort; unknown labels or sort keys are 400s that list what is allowed."""
    statuses = {
        store.status_by_label(project_id, s, TASK_FILTERS["status"]) for s in _labels(query.get(TASK_FILTERS["status"]))
    }
    priorities = {
        store.priority_by_label(p, TASK_FILTERS["priority"]) for p in _labels(query.get(TASK_FILTERS["priority"]))
    }
    owner = int_param(query, TASK_FILTERS["owner"])
    due_from, due_to = day_range(query, TASK_FILTERS["due_from"], TASK_FILTERS["due_to"])
    rows = [
        t
        for t in tasks
        if (not statuses or t.status_id in statuses)
        and (not priorities or t.priority_id in priorities)
        and (owner is None or owner in t.owners)
        and (due_from is None or (t.due is not None and t.due >= due_from))
        and (due_to is None or (t.due is not None and t.due < due_to))
    ]
    keys = _sort_keys(store)
    sort_by = query.get(SORT_BY) or "taskId"
    direction = (query.get(SORT_DIR) or "asc").lower()
    if sort_by not in keys:
        raise invalid((SORT_BY, f"cannot sort by {sort_by!r}; use one of: {', '.join(keys)}"))
    if direction not in ("asc", "desc"):
        raise invalid((SORT_DIR, f"must be asc or desc (got {direction!r})"))
    key = keys[sort_by]
    # Task id breaks ties so pages never overlap or skip a task.
    rows.sort(key=lambda t: t.task_id)
    rows.sort(key=key, reverse=direction == "desc")
    if sort_by in ("dueDate", "startDate") and direction == "desc":
        # Tasks without the date stay last in both directions.
        rows.sort(key=lambda t: key(t) is _FAR_FUTURE)
    return rows
