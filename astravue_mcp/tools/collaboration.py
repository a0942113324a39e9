"""Subtasks, checklists and comments of a task."""

from __future__ import annotations

from mcp.server.mcpserver import Context
from pydantic import Field

from astravue_mcp.api import models
from astravue_mcp.tools.args import Limit, PageNo, ProjectId, SpaceId, TaskId
from astravue_mcp.tools.dates import day_or_moment
from astravue_mcp.tools.outputs import ListOut, TaskOut, page_of_all
from astravue_mcp.tools.registry import Out, tool
from astravue_mcp.tools.request import api
from astravue_mcp.tools.scope import task_ref
from astravue_mcp.tools.task_api import task_page


class ChecklistOut(Out):
    id: int
    title: str
    done: bool


class ChecklistList(ListOut[ChecklistOut]):
    done: int = Field(0, description="Checked items, all pages")

    def text(self) -> str:
        return f"{self.done} done; " + super().text()


class CommentOut(Out):
    # Not named "text": that is Out's text-mirror method.
    id: int
    comment: str
    author: str | None = None
    date: str | None = None


def checklist_out(item: models.ChecklistItem) -> ChecklistOut:
    return ChecklistOut(id=item.checklist_id, title=item.title, done=item.completed)


def comment_out(comment: models.Comment) -> CommentOut:
    return CommentOut(
        id=comment.comment_id,
        comment=comment.comment,
        author=comment.created_by.name if comment.created_by else None,
        date=day_or_moment(comment.created_at),
    )


@tool("collaboration", "List subtasks", "read")
async def list_subtasks(
    ctx: Context,
    task_id: TaskId,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    page: PageNo = 1,
    limit: Limit = 25,
) -> ListOut[TaskOut]:
    """List a task's subtasks (any task; scope ids optional)."""
    ref = await task_ref(ctx, task_id, space_id, project_id)
    result = task_page(await api(ctx).call(ref.operation("subtasks"), ref.ids), page, limit, paged_request=False)
    result.tasks = [ref.parse(t) for t in result.tasks]
    return result.out(page, limit)


@tool("collaboration", "Get task checklists", "read")
async def get_task_checklists(
    ctx: Context, task_id: TaskId, subtask_id: TaskId | None = None, page: PageNo = 1, limit: Limit = 25
) -> ChecklistList:
    """A task's checklist items and done count (a subtask's if subtask_id is set)."""
    if subtask_id is None:
        data = await api(ctx).call("list_task_checklists", {"taskId": task_id})
    else:
        data = await api(ctx).call("list_subtask_checklists", {"taskId": task_id, "subtaskId": subtask_id})
    items = [checklist_out(models.ChecklistItem.model_validate(i)) for i in models.page_of(data).items]
    return ChecklistList(**page_of_all(items, page, limit).model_dump(), done=sum(i.done for i in items))


@tool("collaboration", "Get task comments", "read")
async def get_task_comments(ctx: Context, task_id: TaskId, page: PageNo = 1, limit: Limit = 25) -> ListOut[CommentOut]:
    """A task's comments (text, author, date); any task id."""
    data = await api(ctx).call("list_task_comments", {"taskId": task_id})
    comments = [comment_out(models.Comment.model_validate(c)) for c in models.page_of(data).items]
    return page_of_all(comments, page, limit)
