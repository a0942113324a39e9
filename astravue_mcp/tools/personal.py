"""The caller's personal tasks (outside any project). Reading, changing and deleting one by id is done
by the shared task tools (get_task, update_task, delete_task without space/project ids)."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from astravue_mcp.api import models
from astravue_mcp.tools.args import (
    Limit,
    PageNo,
    PriorityLabel,
    StatusLabel,
    Tags,
    TaskId,
    TaskSort,
    TaskText,
    TaskTitle,
    When,
)
from astravue_mcp.tools.outputs import ListOut, TaskOut, task_out
from astravue_mcp.tools.registry import tool
from astravue_mcp.tools.request import api
from astravue_mcp.tools.task_api import TaskQuery, page_params, task_page, task_write


@tool("personal", "List personal tasks", "read")
async def list_personal_tasks(
    ctx: Context,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    due_from: When | None = None,
    due_to: When | None = None,
    sort: TaskSort | None = None,
    page: PageNo = 1,
    limit: Limit = 25,
) -> ListOut[TaskOut]:
    """Your personal (non-project) tasks, filtered and sorted."""
    query = TaskQuery(status=status, priority=priority, due_from=due_from, due_to=due_to, sort=sort)
    data = await api(ctx).call("list_tasks", params=query.params() | page_params(page, limit))
    return task_page(data, page, limit).out(page, limit)


@tool("personal", "Create personal task", "create", changes=("astravue://tasks/{id}",))
async def create_personal_task(
    ctx: Context,
    title: TaskTitle,
    description: TaskText | None = None,
    start: When | None = None,
    due: When | None = None,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    tags: Tags | None = None,
    parent_task_id: TaskId | None = None,
) -> TaskOut:
    """Create a personal task (a subtask if parent_task_id is set)."""
    body = task_write(
        title=title,
        description=description,
        start=start,
        due=due,
        status=status,
        priority=priority,
        tags=tags,
        parent_task_id=parent_task_id,
    )
    return task_out(models.Task.model_validate(await api(ctx).call("create_task", body=body)))
