"""How tasks are read and written through the API: queries, pages, where a task lives, write bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from astravue_mcp.api import endpoints, models
from astravue_mcp.errors import InvalidArguments
from astravue_mcp.tools.dates import moment
from astravue_mcp.tools.outputs import ListOut, TaskOut, listing, slice_page, task_out

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient


def page_params(page: int, limit: int) -> dict[str, int]:
    return {endpoints.PAGE: page - 1 + endpoints.PAGES_START_AT, endpoints.PAGE_SIZE: limit}


@dataclass(frozen=True)
class TaskQuery:
    """Filters and sort of a task list, as the API's query parameters (names from ``endpoints``)."""

    status: str | None = None
    priority: str | None = None
    owner_id: int | None = None
    due_from: datetime | None = None
    due_to: datetime | None = None
    sort: str | None = None

    def params(self) -> dict[str, Any]:
        values = {
            "status": self.status,
            "priority": self.priority,
            "owner": self.owner_id,
            "due_from": moment(self.due_from),
            "due_to": moment(self.due_to),
        }
        out = {endpoints.TASK_FILTERS[k]: v for k, v in values.items() if v is not None}
        if self.sort:
            out[endpoints.SORT_BY] = self.sort.removeprefix("-")
            out[endpoints.SORT_DIR] = "desc" if self.sort.startswith("-") else "asc"
        return out


@dataclass
class TaskPage:
    """One page of parsed tasks: what the list helpers return before they are made compact."""

    tasks: list[models.Task]
    total: int | None
    has_more: bool

    def out(self, page: int, limit: int) -> ListOut[TaskOut]:
        return listing([task_out(t) for t in self.tasks], page, limit, self.total, self.has_more)


def task_page(
    data: Any, page: int, limit: int, *, paged_request: bool = True, keep: Callable[[Any], bool] | None = None
) -> TaskPage:
    """Parse a task-list answer into one page of at most ``limit`` tasks.

    An endpoint that ignored the paging parameters (or was not given any) sends everything; then
    we page on our side, so the caller's limit holds either way. ``keep`` drops raw tasks before
    they are validated (a scan's cheap pre-filter); paging is decided on the raw answer.
    """
    result = models.page_of(data)
    raw = result.items
    total: int | None
    if not paged_request or len(raw) > limit:
        raw, total, more = slice_page(raw, page, limit)
    else:
        total = result.total
        more = page * limit < total if total is not None else len(raw) == limit
    tasks = [models.Task.model_validate(t) for t in raw if keep is None or keep(t)]
    return TaskPage(tasks, total, more)


def in_project(task: models.Task, space_id: int, project_id: int) -> models.Task:
    """Fill in the scope an answer may leave out (it is implied by the path we asked)."""
    if task.project_id is None:
        task.project_id = project_id
    if task.space_id is None:
        task.space_id = space_id
    return task


async def fetch_project_tasks(
    client: AstravueClient,
    space_id: int,
    project_id: int,
    query: TaskQuery | None = None,
    page: int = 1,
    limit: int = 25,
    keep: Callable[[Any], bool] | None = None,
) -> TaskPage:
    """One page of a project's tasks, filtered and sorted by the API. Raises ApiError (e.g. unknown project)."""
    ids = {"spaceId": space_id, "projectId": project_id}
    params = (query or TaskQuery()).params() | page_params(page, limit)
    result = task_page(await client.call("list_project_tasks", ids, params=params), page, limit, keep=keep)
    result.tasks = [in_project(t, space_id, project_id) for t in result.tasks]
    return result


@dataclass(frozen=True)
class TaskRef:
    """Where a task lives: a project task (both scope ids) or a personal task (neither).

    Project and personal tasks have parallel endpoints; ``operation`` picks the right one.
    """

    task_id: int
    space_id: int | None = None
    project_id: int | None = None

    # verb -> (project-task operation, personal-task operation)
    OPERATIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "get": ("get_project_task", "get_task"),
        "update": ("update_project_task", "update_task"),
        "delete": ("delete_project_task", "delete_task"),
        "subtasks": ("list_project_task_subtasks", "list_personal_task_subtasks"),
    }

    def __post_init__(self) -> None:
        if (self.space_id is None) != (self.project_id is None):
            missing = "project_id" if self.project_id is None else "space_id"
            raise InvalidArguments(
                f"Invalid arguments: {missing} is missing. Give space_id and project_id together for a "
                "project task, or neither to find the task by its id."
            )

    @property
    def in_project(self) -> bool:
        return self.project_id is not None

    @property
    def ids(self) -> dict[str, int]:
        if self.space_id is None or self.project_id is None:
            return {"taskId": self.task_id}
        return {"spaceId": self.space_id, "projectId": self.project_id, "taskId": self.task_id}

    def operation(self, verb: str) -> str:
        project_op, personal_op = self.OPERATIONS[verb]
        return project_op if self.in_project else personal_op

    def parse(self, data: Any) -> models.Task:
        task = models.Task.model_validate(data)
        if self.space_id is not None and self.project_id is not None:
            in_project(task, self.space_id, self.project_id)
        return task

    def describe(self) -> str:
        where = f" in project {self.project_id}" if self.in_project else " (personal)"
        return f"task {self.task_id}{where}"


def task_write(
    *,
    title: str | None = None,
    description: str | None = None,
    owner_ids: list[int] | None = None,
    start: datetime | None = None,
    due: datetime | None = None,
    completion: int | None = None,
    status: str | None = None,
    priority: str | None = None,
    tags: list[str] | None = None,
    parent_task_id: int | None = None,
) -> dict[str, Any]:
    """The create/update body from the task fields a tool was given (None = leave unchanged).

    Keyword-only with the tools' own parameter names, so a tool passes each field by name and a
    renamed parameter fails at the call (and in the tests), instead of silently dropping the field.
    """
    return models.TaskWrite(
        task_title=_stripped(title),
        description=description,
        owners=owner_ids,
        start_date=start,
        due_date=due,
        completion=completion,
        status=_stripped(status),
        priority=_stripped(priority),
        tags=tags,
        parent_task_id=parent_task_id,
    ).wire()


def _stripped(value: str | None) -> str | None:
    return value.strip() if value else value
