"""Project tasks, plus reading, changing and deleting any task by id (project or personal).

get/update/delete serve both kinds: with space_id and project_id they use the project-task
endpoints; without them the task is found wherever it lives (``scope.find_task``: personal first,
remembered for the session), and ``TaskRef`` picks the operation.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context

from astravue_mcp.api import models
from astravue_mcp.errors import InvalidArguments
from astravue_mcp.tools.args import (
    Limit,
    Mine,
    OwnerIds,
    PageNo,
    PercentDone,
    PriorityLabel,
    ProjectId,
    SpaceId,
    StatusLabel,
    Tags,
    TaskId,
    TaskSort,
    TaskText,
    TaskTitle,
    UserRef,
    When,
)
from astravue_mcp.tools.directory import owner_filter, resolve_owners
from astravue_mcp.tools.outputs import Deleted, ListOut, TaskDetail, TaskOut, task_detail, task_out
from astravue_mcp.tools.registry import tool
from astravue_mcp.tools.request import api, confirm
from astravue_mcp.tools.scope import find_task, forget, task_ref
from astravue_mcp.tools.task_api import TaskQuery, TaskRef, fetch_project_tasks, in_project, task_write


@tool("tasks", "List project tasks", "read")
async def list_project_tasks(
    ctx: Context,
    space_id: SpaceId,
    project_id: ProjectId,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    owner_id: UserRef | None = None,
    mine: Mine = False,
    due_from: When | None = None,
    due_to: When | None = None,
    sort: TaskSort | None = None,
    page: PageNo = 1,
    limit: Limit = 25,
) -> ListOut[TaskOut]:
    """A project's top-level tasks, filtered and sorted."""
    query = TaskQuery(
        status=status,
        priority=priority,
        owner_id=await owner_filter(ctx, owner_id, mine),
        due_from=due_from,
        due_to=due_to,
        sort=sort,
    )
    result = await fetch_project_tasks(api(ctx), space_id, project_id, query, page, limit)
    return result.out(page, limit)


@tool(
    "tasks",
    "Create task",
    "create",
    changes=("astravue://tasks/{id}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def create_task(
    ctx: Context,
    space_id: SpaceId,
    project_id: ProjectId,
    title: TaskTitle,
    description: TaskText | None = None,
    owner_ids: OwnerIds | None = None,
    start: When | None = None,
    due: When | None = None,
    completion: PercentDone | None = None,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    tags: Tags | None = None,
    parent_task_id: TaskId | None = None,
) -> TaskOut:
    """Create a project task (a subtask if parent_task_id is set)."""
    body = task_write(
        title=title,
        description=description,
        owner_ids=await resolve_owners(ctx, owner_ids),
        start=start,
        due=due,
        completion=completion,
        status=status,
        priority=priority,
        tags=tags,
        parent_task_id=parent_task_id,
    )
    data = await api(ctx).call("create_project_task", {"spaceId": space_id, "projectId": project_id}, body=body)
    return task_out(in_project(models.Task.model_validate(data), space_id, project_id))


@tool(("tasks", "personal"), "Get task", "read")
async def get_task(
    ctx: Context, task_id: TaskId, space_id: SpaceId | None = None, project_id: ProjectId | None = None
) -> TaskDetail:
    """One task in full (project or personal), found by id; scope ids optional."""
    data = None
    if space_id is None and project_id is None:
        ref, data = await find_task(ctx, task_id)
    else:
        ref = TaskRef(task_id, space_id, project_id)
    return task_detail(ref.parse(data if data is not None else await api(ctx).call(ref.operation("get"), ref.ids)))


@tool(
    ("tasks", "personal"),
    "Update task",
    "update",
    changes=("astravue://tasks/{task_id}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def update_task(
    ctx: Context,
    task_id: TaskId,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    title: TaskTitle | None = None,
    description: TaskText | None = None,
    owner_ids: OwnerIds | None = None,
    start: When | None = None,
    due: When | None = None,
    completion: PercentDone | None = None,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    tags: Tags | None = None,
) -> TaskOut:
    """Change the given fields of a task (owner_ids/tags replace lists); scope ids optional."""
    body = task_write(
        title=title,
        description=description,
        owner_ids=await resolve_owners(ctx, owner_ids),
        start=start,
        due=due,
        completion=completion,
        status=status,
        priority=priority,
        tags=tags,
    )
    if not body:
        raise InvalidArguments("Invalid arguments: nothing to change; give at least one field besides the ids.")
    ref = await task_ref(ctx, task_id, space_id, project_id)
    return task_out(ref.parse(await api(ctx).call(ref.operation("update"), ref.ids, body=body)))


@tool(
    ("tasks", "personal"),
    "Delete task",
    "delete",
    changes=("astravue://tasks/{task_id}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def delete_task(
    ctx: Context, task_id: TaskId, space_id: SpaceId | None = None, project_id: ProjectId | None = None
) -> Deleted:
    """Delete a task by id (scope ids optional). Cannot be undone."""
    ref = await task_ref(ctx, task_id, space_id, project_id)
    await confirm(ctx, f"delete {ref.describe()}")
    await api(ctx).call(ref.operation("delete"), ref.ids)
    forget(ctx, task_id)
    return Deleted(deleted=ref.describe())
