"""What the tool areas share: argument types with limits, compact output models, paging, confirmation.

Outputs are flat on purpose: ids, titles, labels, owner names and dates, never the API's nested
user/status objects (a task costs ~2.5 KB raw and ~0.2 KB here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import NoBackChannelError
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from astravue_mcp.api import endpoints, models
from astravue_mcp.errors import InvalidArguments, NotConfirmed
from astravue_mcp.tools.registry import Out

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient

# ---------------------------------------------------------------- arguments
SpaceId = Annotated[int, Field(ge=1, description="Space id")]
ProjectId = Annotated[int, Field(ge=1, description="Project id")]
TaskId = Annotated[int, Field(ge=1, description="Task id")]
Limit = Annotated[int, Field(ge=1, le=200, description="Max items")]
PageNo = Annotated[int, Field(ge=1, description="Page number")]
Title = Annotated[str, Field(min_length=1, max_length=500, description="Name")]
Text = Annotated[str, Field(max_length=20_000, description="Description")]
Label = Annotated[str, Field(min_length=1, max_length=100, description="Label")]

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
    # Published as a plain string: a date-only value is accepted too, which "format: date-time" would forbid.
    WithJsonSchema({"type": "string", "description": "ISO 8601; UTC if no offset"}),
]


def api(ctx: Context) -> AstravueClient:
    """The API client of this request's server (or, later, of this request's user)."""
    client: AstravueClient = ctx.request_context.lifespan_context.client  # type: ignore[attr-defined]
    return client


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
    try:
        result = await ctx.elicit(f"Confirm: {what}?", Confirmation)
    except NoBackChannelError:
        # A 2026-07-28 connection without a way to ask mid-call: same as a client without forms.
        return
    if result.action != "accept" or not result.data.confirm:
        raise NotConfirmed(f"Not done: the person did not confirm ({what}).")


# ---------------------------------------------------------------- tasks
# Shared by the tasks, personal, collaboration and insights areas.

TaskTitle = Annotated[Title, Field(description="Task title")]
TaskText = Annotated[Text, Field(description="Plain text")]
UserId = Annotated[int, Field(ge=1, description="User id")]
OwnerIds = Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=50, description="Owner user ids")]
Completion = Annotated[int, Field(ge=0, le=100, description="Percent done")]
TagName = Annotated[str, Field(min_length=1, max_length=100)]
Tags = Annotated[list[TagName], Field(max_length=50, description="Tag names")]
StatusLabel = Annotated[str, Field(min_length=1, max_length=100, description="Status label")]
PriorityLabel = Annotated[str, Field(min_length=1, max_length=100, description="Priority label")]
# One parameter instead of key + direction: "-dueDate" sorts descending (fewer schema bytes, one choice).
TaskSort = Annotated[
    Literal["dueDate", "priority", "title", "updateTime", "-dueDate", "-priority", "-title", "-updateTime"],
    Field(description="Sort key; prefix - for descending"),
]


def query_time(value: datetime) -> str:
    """A date-time as a query-string value: UTC with a Z, no fractions."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            "due_from": query_time(self.due_from) if self.due_from else None,
            "due_to": query_time(self.due_to) if self.due_to else None,
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


def task_write(args: Mapping[str, Any]) -> models.TaskWrite:
    """The create/update body from a tool's arguments, picked by name (every task tool uses the same names).

    ``.wire()`` sends only the fields given (None = unchanged); other arguments (ids, ctx) are ignored.
    """
    get = args.get
    return models.TaskWrite(
        task_title=_stripped(get("title")),
        description=get("description"),
        owners=get("owner_ids"),
        start_date=get("start"),
        due_date=get("due"),
        completion=get("completion"),
        status=_stripped(get("status")),
        priority=_stripped(get("priority")),
        tags=get("tags"),
        parent_task_id=get("parent_task_id"),
    )


def _stripped(value: str | None) -> str | None:
    return value.strip() if value else value


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
                "project task, or neither for a personal task."
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


def task_detail(task: models.Task) -> TaskDetail:
    """The full compact view of one task (get, create and update answers)."""
    out = task_out(task, detail=True)
    assert isinstance(out, TaskDetail)
    return out
