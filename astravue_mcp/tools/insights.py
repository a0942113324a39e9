"""Insights: composite tools built only from the public endpoints.

The API has no cross-project search, no overdue list, no counts and no bulk calls, so these tools
scan every project in scope (``scan``) or write item by item (``bulk``), at most ``max_concurrency``
requests at a time (the client keeps the 100 requests/minute budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from astravue_mcp.api import models
from astravue_mcp.errors import AstravueError
from astravue_mcp.tools.args import (
    Keyword,
    Limit,
    Mine,
    OwnerIds,
    PercentDone,
    PriorityLabel,
    ProjectId,
    SpaceId,
    StatusLabel,
    TaskId,
    TaskText,
    TaskTitle,
    UserRef,
    When,
)
from astravue_mcp.tools.bulk import MAX_BULK, BulkOut, run_bulk
from astravue_mcp.tools.directory import owner_filter, resolve_owners
from astravue_mcp.tools.outputs import by_due, is_done, is_overdue
from astravue_mcp.tools.registry import Out, tool
from astravue_mcp.tools.request import api, confirm
from astravue_mcp.tools.scan import Filters, FoundTask, TaskHits, found_out, hits, scan, whole_day
from astravue_mcp.tools.scope import forget, known, task_ref
from astravue_mcp.tools.task_api import TaskRef, task_write

SCHEDULE_DAYS = 7


# ---------------------------------------------------------------- outputs
class OverdueTask(FoundTask):
    days_overdue: int


class Counts(Out):
    total: int = 0
    open: int = 0
    completed: int = 0
    overdue: int = 0


class ProjectCounts(Counts):
    project_id: int
    space_id: int
    name: str


class TaskCounts(Counts):
    projects: list[ProjectCounts] | None = None
    personal: Counts | None = None
    skipped: list[str] | None = None


def _order(task: models.Task) -> tuple[int, int, int]:
    return task.space_id or 0, task.project_id or 0, task.task_id


# ---------------------------------------------------------------- read tools
@tool("insights", "Find tasks", "read")
async def find_tasks(
    ctx: Context,
    query: Keyword | None = None,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    owner_id: UserRef | None = None,
    mine: Mine = False,
    due_from: When | None = None,
    due_to: When | None = None,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    limit: Limit = 25,
) -> TaskHits[FoundTask]:
    """Search all tasks (projects and personal) by keywords and filters; stops at limit."""
    owner = await owner_filter(ctx, owner_id, mine)
    filters = Filters(query, status, priority, owner, due_from, whole_day(due_to))
    result = await scan(ctx, filters, space_id, project_id, cap=limit)
    return hits([found_out(t) for t in sorted(result.tasks, key=_order)], result, limit, exact=not result.stopped)


@tool("insights", "List overdue tasks", "read")
async def list_overdue_tasks(
    ctx: Context,
    mine: Mine = False,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    limit: Limit = 25,
) -> TaskHits[OverdueTask]:
    """Open past-due tasks, projects and personal (or one space/project), most overdue first."""
    now = datetime.now(UTC)
    owner = await owner_filter(ctx, None, mine)
    result = await scan(ctx, Filters(owner_id=owner, due_to=now, open_only=True), space_id, project_id)
    late = sorted((t for t in result.tasks if is_overdue(t, now)), key=by_due)
    items = [OverdueTask(**found_out(t).model_dump(), days_overdue=(now - t.due_date).days) for t in late if t.due_date]
    return hits(items, result, limit)


@tool("insights", "List scheduled tasks", "read")
async def list_scheduled_tasks(
    ctx: Context,
    due_from: When | None = None,
    due_to: When | None = None,
    mine: Mine = False,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    limit: Limit = 25,
) -> TaskHits[FoundTask]:
    """Open tasks due in a window (default: next 7 days), projects and personal, soonest first."""
    today = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    start = due_from or today
    end = whole_day(due_to or today + timedelta(days=SCHEDULE_DAYS))
    owner = await owner_filter(ctx, None, mine)
    result = await scan(ctx, Filters(owner_id=owner, due_from=start, due_to=end, open_only=True), space_id, project_id)
    return hits([found_out(t) for t in sorted(result.tasks, key=by_due)], result, limit)


def _count(tasks: list[models.Task], now: datetime) -> dict[str, int]:
    completed = sum(is_done(t) for t in tasks)
    overdue = sum(is_overdue(t, now) for t in tasks)
    return {"total": len(tasks), "open": len(tasks) - completed, "completed": completed, "overdue": overdue}


@tool("insights", "Get task counts", "read")
async def get_task_counts(
    ctx: Context, space_id: SpaceId | None = None, project_id: ProjectId | None = None
) -> TaskCounts:
    """Total/open/completed/overdue counts of one project, or overall, per project and personal."""
    now = datetime.now(UTC)
    result = await scan(ctx, Filters(), space_id, project_id)
    overall = _count(result.tasks, now)
    if space_id is not None and project_id is not None:
        return TaskCounts(**overall)
    per_project = [
        ProjectCounts(project_id=p.ref.project_id, space_id=p.ref.space_id, name=p.ref.name, **_count(p.tasks, now))
        for p in result.projects
        if not p.error
    ]
    personal = Counts(**_count(result.personal, now)) if space_id is None else None
    return TaskCounts(**overall, projects=per_project, personal=personal, skipped=result.all_skipped())


# ---------------------------------------------------------------- bulk writes
class NewTask(BaseModel):
    title: TaskTitle
    description: TaskText | None = None
    status: StatusLabel | None = None
    priority: PriorityLabel | None = None
    owner_ids: OwnerIds | None = None
    due: When | None = None


class TaskChange(BaseModel):
    task_id: TaskId
    status: StatusLabel | None = None
    priority: PriorityLabel | None = None
    completion: PercentDone | None = None
    owner_ids: OwnerIds | None = None
    due: When | None = None


async def _created(ctx: Context, item: NewTask) -> dict[str, Any]:
    return task_write(
        title=item.title,
        description=item.description,
        status=item.status,
        priority=item.priority,
        owner_ids=await resolve_owners(ctx, item.owner_ids),
        due=item.due,
    )


async def _changed(ctx: Context, item: TaskChange) -> dict[str, Any]:
    return task_write(
        status=item.status,
        priority=item.priority,
        completion=item.completion,
        owner_ids=await resolve_owners(ctx, item.owner_ids),
        due=item.due,
    )


async def locate_all(ctx: Context, task_ids: Sequence[int], space_id: int | None, project_id: int | None) -> None:
    """Before a bulk change without a scope: one scan learns where the tasks live (cheaper than a search each)."""
    if space_id is None and project_id is None and sum(not known(ctx, i) for i in set(task_ids)) > 1:
        await scan(ctx, Filters())


BulkTasks = Annotated[list[NewTask], Field(min_length=1, max_length=MAX_BULK, description="Tasks to create (max 100)")]
BulkChanges = Annotated[list[TaskChange], Field(min_length=1, max_length=MAX_BULK, description="One change per task")]
BulkIds = Annotated[list[TaskId], Field(min_length=1, max_length=MAX_BULK, description="Task ids (max 100)")]


@tool(
    "insights",
    "Bulk create tasks",
    "create",
    changes=("astravue://tasks/{id}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def bulk_create_tasks(ctx: Context, space_id: SpaceId, project_id: ProjectId, tasks: BulkTasks) -> BulkOut:
    """Create up to 100 tasks in one project; reports each new id or error."""
    ids = {"spaceId": space_id, "projectId": project_id}

    async def create(item: NewTask) -> int:
        body = await _created(ctx, item)
        return models.Task.model_validate(await api(ctx).call("create_project_task", ids, body=body)).task_id

    return await run_bulk(ctx, "create", tasks, lambda _: None, create)


@tool(
    "insights",
    "Bulk update tasks",
    "update",
    changes=("astravue://tasks/{task_id}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def bulk_update_tasks(
    ctx: Context, changes: BulkChanges, space_id: SpaceId | None = None, project_id: ProjectId | None = None
) -> BulkOut:
    """Change up to 100 tasks anywhere (scope ids optional); omitted fields stay. Reports each item."""
    TaskRef(1, space_id, project_id)  # both scope ids or neither
    await confirm(ctx, f"change {len(changes)} task(s)" + (f" in project {project_id}" if project_id else ""))
    await locate_all(ctx, [c.task_id for c in changes], space_id, project_id)

    async def update(item: TaskChange) -> int:
        body = await _changed(ctx, item)
        if not body:
            raise AstravueError("Nothing to change: give at least one field besides task_id.")
        ref = await task_ref(ctx, item.task_id, space_id, project_id)
        await api(ctx).call(ref.operation("update"), ref.ids, body=body)
        return item.task_id

    return await run_bulk(ctx, "update", changes, lambda c: c.task_id, update)


@tool(
    "insights",
    "Bulk delete tasks",
    "delete",
    changes=("astravue://tasks/{task_ids}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def bulk_delete_tasks(
    ctx: Context, task_ids: BulkIds, space_id: SpaceId | None = None, project_id: ProjectId | None = None
) -> BulkOut:
    """Delete up to 100 tasks anywhere (scope ids optional). Cannot be undone. Reports each item."""
    TaskRef(1, space_id, project_id)  # both scope ids or neither
    where = f" from project {project_id}" if project_id else ""
    await confirm(ctx, f"delete {len(task_ids)} task(s){where}: {', '.join(map(str, task_ids))}")
    await locate_all(ctx, task_ids, space_id, project_id)

    async def delete(task_id: int) -> int:
        ref = await task_ref(ctx, task_id, space_id, project_id)
        await api(ctx).call(ref.operation("delete"), ref.ids)
        forget(ctx, task_id)
        return task_id

    return await run_bulk(ctx, "delete", task_ids, lambda i: i, delete)
