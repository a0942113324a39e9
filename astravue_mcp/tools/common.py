"""What the tool areas share: argument types with limits, compact output models, paging, confirmation.

Outputs are flat on purpose: ids, titles, labels, owner names and dates, never the API's nested
user/status objects (a task costs ~2.5 KB raw and ~0.2 KB here).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, BeforeValidator, Field

from astravue_mcp.api import endpoints, models
from astravue_mcp.tools.registry import Out

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient

# ---------------------------------------------------------------- arguments
SpaceId = Annotated[int, Field(ge=1, description="Space id")]
ProjectId = Annotated[int, Field(ge=1, description="Project id")]
TaskId = Annotated[int, Field(ge=1, description="Task id")]
Limit = Annotated[int, Field(ge=1, le=200, description="Max items")]
PageNo = Annotated[int, Field(ge=1, le=10_000, description="Page number")]
Title = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(max_length=20_000)]
Label = Annotated[str, Field(min_length=1, max_length=100)]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _as_utc(value: Any) -> Any:
    """Accept a date-only value or a time without offset as UTC; keep an explicit offset."""
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        return datetime.combine(date.fromisoformat(value.strip()), time(), UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


When = Annotated[
    datetime,
    BeforeValidator(_as_utc),
    Field(description="ISO 8601, e.g. 2026-12-01 or 2026-12-01T17:00:00+01:00 (no offset = UTC)"),
]


def api(ctx: Context) -> AstravueClient:
    """The API client of this request's server (or, later, of this request's user)."""
    return ctx.request_context.lifespan_context.client


# ---------------------------------------------------------------- outputs
def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    if value.time() == time():
        return value.date().isoformat()
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        start=iso(project.start_date),
        due=iso(project.due_date),
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


def task_out(task: models.Task, detail: bool = False) -> TaskOut:
    fields: dict[str, Any] = dict(
        id=task.task_id,
        title=task.task_title,
        status=task.status.status_name if task.status else None,
        priority=task.priority.priority_label if task.priority else None,
        completion=task.completion,
        start=iso(task.start_date),
        due=iso(task.due_date),
        overdue=True if is_overdue(task) else None,
        owners=[u.name for u in task.owners] if task.owners else None,
        tags=task.tags or None,
        project_id=task.project_id,
        space_id=task.space_id,
        parent_id=task.parent_task_id,
    )
    if not detail:
        return TaskOut(**fields)
    return TaskDetail(
        **fields,
        owner_ids=[u.user_id for u in task.owners] if task.owners else None,
        description=task.description or None,
        updated=iso(task.update_time),
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
        lines = [head] + [f"- {item.text() if isinstance(item, Out) else item}" for item in self.items]
        return "\n".join(lines)


def slice_page(items: list[Any], page: int, limit: int) -> tuple[list[Any], int, bool]:
    """Page a full list on our side (the list endpoints that answer without paging)."""
    start = (page - 1) * limit
    return items[start : start + limit], len(items), start + limit < len(items)


def listing(items: list[T], page: int, limit: int, total: int | None, has_more: bool | None = None) -> ListOut[T]:
    more = has_more if has_more is not None else (total is not None and page * limit < total)
    return ListOut[T](items=items, total=total, next_page=page + 1 if more else None)


def page_params(page: int, limit: int) -> dict[str, int]:
    return {endpoints.PAGE: page - 1 + endpoints.PAGES_START_AT, endpoints.PAGE_SIZE: limit}


class Deleted(Out):
    deleted: str = Field(description="What was deleted")


class Confirmation(BaseModel):
    confirm: bool = Field(description="Yes, go ahead")


async def confirm(ctx: Context, what: str) -> None:
    """Ask the person before a delete or bulk change, when their client can show a form.

    Without form elicitation the call proceeds: the tool's destructiveHint already told the client.
    """
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return
    result = await ctx.elicit(f"Confirm: {what}?", Confirmation)
    if result.action != "accept" or not result.data.confirm:
        raise ToolError(f"Not done: the person did not confirm ({what}).")
