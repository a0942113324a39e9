"""Compact output models shared by the areas, and paging of lists.

Outputs are flat on purpose: ids, titles, labels, owner names and dates, never the API's nested
user/status objects (a task costs ~2.5 KB raw and ~0.2 KB here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from astravue_mcp.api import models
from astravue_mcp.tools.dates import day_or_moment
from astravue_mcp.tools.registry import Out, bullet


class SpaceOut(Out):
    id: int
    name: str
    description: str | None = None


class ProjectOut(Out):
    id: int
    space_id: int | None = None
    name: str
    status: str | None = None
    priority: str | None = None
    health: str | None = None
    start: str | None = None
    due: str | None = None
    owner: str | None = None
    description: str | None = None


class TaskOut(Out):
    id: int
    title: str
    status: str | None = None
    priority: str | None = None
    completion: int | None = None
    start: str | None = None
    due: str | None = None
    overdue: bool | None = Field(None, description="Set when past due and not done")
    owners: list[str] | None = None
    tags: list[str] | None = None
    project_id: int | None = None
    space_id: int | None = None
    parent_id: int | None = None


class TaskDetail(TaskOut):
    owner_ids: list[int] | None = None
    description: str | None = None
    updated: str | None = None


def space_out(space: models.Space) -> SpaceOut:
    return SpaceOut(id=space.space_id, name=space.space_name, description=space.description or None)


def project_out(project: models.Project, detail: bool = False) -> ProjectOut:
    return ProjectOut(
        id=project.project_id,
        space_id=project.space_id,
        name=project.project_name,
        status=project.status,
        priority=project.priority,
        health=project.health,
        start=day_or_moment(project.start_date),
        due=day_or_moment(project.due_date),
        owner=project.owner.name if project.owner else None,
        description=(project.description or None) if detail else None,
    )


DONE_CATEGORIES = {"done", "completed", "closed"}


def is_done(task: models.Task) -> bool:
    status = task.status
    if status is None:
        return (task.completion or 0) >= 100
    category = (status.status_category or "").lower()
    return category in DONE_CATEGORIES or status.status_name.lower() in DONE_CATEGORIES


def is_overdue(task: models.Task, now: datetime | None = None) -> bool:
    return task.due_date is not None and task.due_date < (now or datetime.now(UTC)) and not is_done(task)


def by_due(task: models.Task) -> tuple[datetime, int]:
    """Sort key: soonest due first, tasks without a due date last; ties by id."""
    return task.due_date or datetime.max.replace(tzinfo=UTC), task.task_id


def _task_fields(task: models.Task) -> dict[str, Any]:
    return dict(
        id=task.task_id,
        title=task.task_title,
        status=task.status.status_name if task.status else None,
        priority=task.priority.priority_label if task.priority else None,
        completion=task.completion,
        start=day_or_moment(task.start_date),
        due=day_or_moment(task.due_date),
        overdue=True if is_overdue(task) else None,
        owners=[u.name for u in task.owners] if task.owners else None,
        tags=task.tags or None,
        project_id=task.project_id,
        space_id=task.space_id,
        parent_id=task.parent_task_id,
    )


def task_out(task: models.Task) -> TaskOut:
    return TaskOut(**_task_fields(task))


def task_detail(task: models.Task) -> TaskDetail:
    """The full compact view of one task (the answer of get_task)."""
    return TaskDetail(
        **_task_fields(task),
        owner_ids=[u.user_id for u in task.owners] if task.owners else None,
        description=task.description or None,
        updated=day_or_moment(task.update_time),
    )


T = TypeVar("T", bound=BaseModel)


class ListOut(Out, Generic[T]):
    items: list[T]
    total: int | None = None
    next_page: int | None = Field(None, description="Set when there is more: pass as page")

    def text(self) -> str:
        head = f"{len(self.items)} item(s)" + (f" of {self.total}" if self.total is not None else "")
        if self.next_page:
            head += f"; more with page={self.next_page}"
        lines = [head] + [bullet(item.text() if isinstance(item, Out) else str(item)) for item in self.items]
        return "\n".join(lines)


def slice_page(items: list[Any], page: int, limit: int) -> tuple[list[Any], int, bool]:
    """Page a full list on our side (the list endpoints that answer without paging)."""
    start = (page - 1) * limit
    return items[start : start + limit], len(items), start + limit < len(items)


def listing(items: list[T], page: int, limit: int, total: int | None, has_more: bool | None = None) -> ListOut[T]:
    more = has_more if has_more is not None else (total is not None and page * limit < total)
    return ListOut[T](items=items, total=total, next_page=page + 1 if more else None)


def page_of_all(items: list[T], page: int, limit: int) -> ListOut[T]:
    """One page of a list the API answered in full."""
    shown, total, more = slice_page(items, page, limit)
    return listing(shown, page, limit, total, more)


class Deleted(Out):
    deleted: str = Field(description="What was deleted")
