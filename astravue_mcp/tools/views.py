"""Interactive views: tools whose result a client can render as a page (MCP Apps), and the tools that page calls.

Each ``preview_*`` tool answers like any read tool (typed structured content and a compact text),
so a text-only client loses nothing; a client that renders MCP Apps shows the page named by
``_meta.ui`` instead and the text is reduced to a summary for the model. The page changes tasks and
refreshes itself through the app-only tools below (``visibility=["app"]``: hidden from the
model), which validate every argument and go through the same client, rate budget and rules as
``update_task``; being writes, ``change_task`` disappears in read-only mode like every write.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.apps import client_supports_apps
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, WithJsonSchema

from astravue_mcp.api import models
from astravue_mcp.errors import AstravueError, InvalidArguments
from astravue_mcp.identity import session_identity
from astravue_mcp.tools.args import (
    Keyword,
    PercentDone,
    PriorityLabel,
    ProjectId,
    SpaceId,
    StatusLabel,
    TaskId,
    UserRef,
    When,
)
from astravue_mcp.tools.dates import day_or_moment
from astravue_mcp.tools.directory import Directory, owner_filter
from astravue_mcp.tools.durations import is_running, ms_to_minutes
from astravue_mcp.tools.outputs import TaskOut, by_due, is_done, is_overdue, project_out, task_out
from astravue_mcp.tools.registry import Out, bullet, quote, tool
from astravue_mcp.tools.request import api
from astravue_mcp.tools.scan import Filters, scan
from astravue_mcp.tools.scope import ProjectRef
from astravue_mcp.tools.task_api import TaskRef, task_write
from astravue_mcp.views import MY_TASKS, PROJECT_OVERVIEW, TASK_LIST

CHANGE_TOOL = "astravue_change_task"
ViewLimit = Annotated[int, Field(ge=1, le=200, description="Max tasks shown")]
PRIORITY_ORDER = ("critical", "urgent", "highest", "high", "medium", "normal", "low", "lowest")
CATEGORY_ORDER = ("todo", "to_do", "backlog", "in_progress", "review", "done", "completed", "closed")


# ---------------------------------------------------------------- outputs
# The structured content is for the page, not for the model (which reads the text), so the published
# output schemas stop at the top level: a list is published as a list, its items' shape is the page's
# business. This keeps each view tool under the per-tool context budget; the models below still type
# and build every field.
def shallow(kind: str) -> WithJsonSchema:
    return WithJsonSchema({"type": kind})


class ViewTask(TaskOut):
    project: str | None = Field(None, description="Project name; absent for a personal task")


class ViewOut(Out):
    """What every view carries besides its data: the day it was computed for and whether it may change tasks."""

    today: str
    editable: bool = Field(description="Whether the page may change tasks (not read-only, change tool listed)")
    skipped: list[str] | None = None
    _brief: bool = PrivateAttr(False)
    """Set when the client renders the page: the text is then a summary for the model, not the whole list."""

    def lines(self, items: list[ViewTask], limit: int = 200) -> list[str]:
        shown = items[:limit] if not self._brief else []
        rest = len(items) - len(shown)
        out = [bullet(t.text()) for t in shown]
        if rest and not self._brief:
            out.append(f"- … {rest} more")
        return out


class TaskListView(ViewOut):
    title: str
    space_id: int | None = None
    project_id: int | None = None
    statuses: list[str] = Field(description="Board columns in workflow order")
    priorities: list[str]
    items: Annotated[list[ViewTask], shallow("array")]
    total: int
    overdue: int
    truncated: bool | None = None

    def text(self) -> str:
        head = f"{quote(self.title)}: {self.total} task(s), {self.overdue} overdue"
        if self.truncated:
            head += f"; showing {len(self.items)}"
        by_status = Counter(t.status or "no status" for t in self.items)
        lines = [head, "by status: " + ", ".join(f"{quote(s)} {n}" for s, n in by_status.items())]
        lines += [f"skipped {s}" for s in self.skipped or []]
        return "\n".join(lines + self.lines(self.items))


class DueGroup(BaseModel):
    key: Literal["overdue", "today", "week", "later", "none"]
    label: str
    items: list[ViewTask]


class MyTasksView(ViewOut):
    who: str | None = Field(None, description="Whose tasks these are")
    basis: str = Field(description="How the person was identified, and the limit that follows")
    statuses: list[str] = Field(description="Status labels seen on these tasks, in workflow order")
    groups: Annotated[list[DueGroup], shallow("array")]
    total: int
    truncated: bool | None = None

    def text(self) -> str:
        lines = [f"Open tasks of {quote(self.who) if self.who else 'you'}: {self.total}", self.basis]
        lines += [f"skipped {s}" for s in self.skipped or []]
        for group in self.groups:
            lines.append(f"{group.label}: {len(group.items)}")
            lines += self.lines(group.items)
        return "\n".join(lines)


class Tally(BaseModel):
    label: str
    count: int


class PersonTime(BaseModel):
    name: str
    minutes: float


class ProjectTime(BaseModel):
    total_minutes: float
    billable_minutes: float
    entries: int | None = None
    by_person: list[PersonTime]


class RecentTask(BaseModel):
    id: int
    title: str
    status: str | None = None
    updated: str


class OverviewView(ViewOut):
    project: Annotated[dict[str, Any], shallow("object")] = Field(description="id, space_id, name, status, ...")
    total: int
    open: int
    completed: int
    overdue_count: int
    by_status: Annotated[list[Tally], shallow("array")]
    by_priority: Annotated[list[Tally], shallow("array")]
    overdue: Annotated[list[ViewTask], shallow("array")] = Field(description="Most overdue first, at most 10")
    recent: Annotated[list[RecentTask], shallow("array")] = Field(description="Last updated tasks, at most 8")
    time: Annotated[ProjectTime | None, shallow("object")] = None

    def text(self) -> str:
        name = quote(str(self.project.get("name", "project")))
        lines = [
            f"{name}: {self.total} task(s), {self.open} open, {self.completed} completed, {self.overdue_count} overdue",
            "by status: " + ", ".join(f"{quote(t.label)} {t.count}" for t in self.by_status),
            "by priority: " + ", ".join(f"{quote(t.label)} {t.count}" for t in self.by_priority),
        ]
        if self.time is not None:
            hours = round(self.time.total_minutes / 60, 1)
            people = ", ".join(f"{quote(p.name)} {round(p.minutes / 60, 1)} h" for p in self.time.by_person)
            lines.append(f"time logged: {hours} h" + (f" ({people})" if people else ""))
        if self.overdue:
            lines.append("overdue:")
            lines += self.lines(self.overdue)
        if self.recent and not self._brief:
            lines.append("recently updated: " + "; ".join(f"{quote(r.title)} ({r.updated})" for r in self.recent))
        return "\n".join(lines)


class Changed(Out):
    """What the page shows of a changed task (it reads the whole view again afterwards)."""

    id: int
    status: str | None = None
    due: str | None = None
    completion: int | None = None
    overdue: bool | None = None


class Refreshed(Out):
    """A view's data read again: exactly what its preview tool returns (whose schema is published there)."""

    model_config = ConfigDict(extra="allow")
    _text: str = PrivateAttr("")

    def text(self) -> str:
        return self._text


# ---------------------------------------------------------------- shared
def _today(now: datetime) -> str:
    return now.date().isoformat()


async def _editable(ctx: Context) -> bool:
    """Whether the page may offer changes: the change tool is listed for this server's selection."""
    return any(t.name == CHANGE_TOOL for t in await ctx.mcp_server.list_tools())


V = TypeVar("V", bound=ViewOut)


def _brief(ctx: Context, view: V) -> V:
    view._brief = client_supports_apps(ctx)
    return view


def _view_task(task: models.Task, names: dict[int, str]) -> ViewTask:
    project = names.get(task.project_id) if task.project_id is not None else None
    return ViewTask(**task_out(task).model_dump(), project=project)


def _rank(value: str, order: tuple[str, ...]) -> int:
    key = value.lower().replace(" ", "_")
    return order.index(key) if key in order else len(order)


def _statuses(tasks: list[models.Task]) -> list[str]:
    """Status labels in workflow order (by category, then first seen): the board's columns."""
    seen: dict[str, int] = {}
    for task in tasks:
        if task.status is not None and task.status.status_name not in seen:
            category = task.status.status_category or ("done" if is_done(task) else "")
            seen[task.status.status_name] = _rank(category, CATEGORY_ORDER)
    return sorted(seen, key=lambda name: seen[name])


def _priorities(tasks: list[models.Task]) -> list[str]:
    labels = {t.priority.priority_label for t in tasks if t.priority is not None}
    return sorted(labels, key=lambda label: (_rank(label, PRIORITY_ORDER), label))


def _names(refs: list[ProjectRef]) -> dict[int, str]:
    return {r.project_id: r.name for r in refs}


# ---------------------------------------------------------------- task list
@tool("views", "Preview task list", "read", meta=TASK_LIST.tool_meta())
async def preview_task_list(
    ctx: Context,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    query: Keyword | None = None,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    owner_id: UserRef | None = None,
    limit: ViewLimit = 100,
) -> TaskListView:
    """Show a project's (or a search's) tasks as an interactive board; the text lists them too."""
    now = datetime.now(UTC)
    owner = await owner_filter(ctx, owner_id)
    filters = Filters(keyword=query, status=status, priority=priority, owner_id=owner)
    found = await scan(ctx, filters, space_id, project_id)
    refs = [p.ref for p in found.projects]
    tasks = sorted(found.tasks, key=by_due)
    one = refs[0] if len(refs) == 1 and project_id is not None else None
    if one is not None:
        title = one.name
    else:
        words = [f'"{query}"' if query else None, status, priority, f"owner {owner_id}" if owner_id else None]
        title = "Tasks " + (" · ".join(w for w in words if w) or "in every project")
    names = _names(refs) if one is None else {}  # one project: its name is the title, not on every card
    view = TaskListView(
        title=title,
        space_id=one.space_id if one else space_id,
        project_id=one.project_id if one else None,
        statuses=_statuses(tasks),
        priorities=_priorities(tasks),
        items=[_view_task(t, names) for t in tasks[:limit]],
        total=len(tasks),
        overdue=sum(is_overdue(t, now) for t in tasks),
        truncated=True if len(tasks) > limit else None,
        today=_today(now),
        editable=await _editable(ctx),
        skipped=found.all_skipped(),
    )
    return _brief(ctx, view)


# ---------------------------------------------------------------- my tasks
def _whose(directory: Directory) -> tuple[str | None, str]:
    """Who "me" is (as every owner filter means it, named as the login names them), and how they were matched."""
    me, identity = directory.me, directory.identity
    login = identity.label if identity else None
    if me is None:
        return login, (
            "Only your personal tasks: the login names nobody that could be matched to task owners. "
            'Log in again ("astravue-mcp login") to include your project tasks.'
        )
    if directory.me_by == "email":
        return login, f"Yours: tasks whose owners include {quote(me.email or '')} (the login's email)."
    if directory.me_by == "name":
        return login, f"Yours: tasks whose owners include {quote(me.name)} (matched by name)."
    return me.name, "Yours: the login names nobody, so you are taken to be the creator of your personal tasks."


def _group(task: models.Task, now: datetime) -> str:
    if task.due_date is None:
        return "none"
    if is_overdue(task, now):
        return "overdue"  # as everywhere in this server: past its due moment and not done
    days = (task.due_date.date() - now.date()).days
    if days <= 0:
        return "today"
    return "week" if days <= 7 else "later"


GROUP_LABELS = {"overdue": "Overdue", "today": "Today", "week": "Next 7 days", "later": "Later", "none": "No due date"}


@tool("views", "Preview my tasks", "read", meta=MY_TASKS.tool_meta())
async def preview_my_tasks(ctx: Context, limit: ViewLimit = 100) -> MyTasksView:
    """Show your open tasks (project and personal) by due: overdue, today, next 7 days, later."""
    now = datetime.now(UTC)
    found = await scan(ctx, Filters())
    directory = Directory.from_tasks(found.project_tasks, found.personal, await session_identity(ctx))
    who, basis = _whose(directory)
    # Your personal tasks, then the project tasks you own (none when the login matches nobody).
    mine = [t for t in found.personal if t.parent_task_id is None]
    if directory.me is not None:
        me = directory.me.user_id
        mine += [
            t for t in found.project_tasks if t.parent_task_id is None and me in {u.user_id for u in t.owners or []}
        ]
    tasks = sorted((t for t in mine if not is_done(t)), key=by_due)
    shown = tasks[:limit]
    names = _names([p.ref for p in found.projects])
    groups = [
        DueGroup(key=key, label=label, items=[_view_task(t, names) for t in shown if _group(t, now) == key])  # type: ignore[arg-type]
        for key, label in GROUP_LABELS.items()
    ]
    view = MyTasksView(
        who=who,
        basis=basis,
        statuses=_statuses(mine),
        groups=[g for g in groups if g.items],
        total=len(tasks),
        truncated=True if len(tasks) > limit else None,
        today=_today(now),
        editable=await _editable(ctx),
        skipped=found.all_skipped(),
    )
    return _brief(ctx, view)


# ---------------------------------------------------------------- project overview
async def _project_time(ctx: Context, project_id: int) -> ProjectTime:
    """Minutes logged on the project, in total, billable and per person (finished entries, as the API sums them)."""
    data = await api(ctx).call("get_project_timesheet", {"projectId": project_id})
    entries = [models.TimeEntry.model_validate(e) for e in models.page_of(data).items]
    done = [e for e in entries if not is_running(e)]
    per_person: dict[str, int] = {}
    for entry in done:
        if entry.user is not None:
            per_person[entry.user.name] = per_person.get(entry.user.name, 0) + (entry.duration or 0)
    ranked = sorted(per_person.items(), key=lambda item: -item[1])
    return ProjectTime(
        total_minutes=ms_to_minutes(sum(e.duration or 0 for e in done)),
        billable_minutes=ms_to_minutes(sum(e.duration or 0 for e in done if e.billable)),
        entries=len(entries),
        by_person=[PersonTime(name=name, minutes=ms_to_minutes(ms)) for name, ms in ranked],
    )


def _tally(labels: list[str], order: list[str]) -> list[Tally]:
    counts = Counter(labels)
    return [Tally(label=label, count=counts[label]) for label in order if counts[label]]


@tool("views", "Preview project overview", "read", meta=PROJECT_OVERVIEW.tool_meta())
async def preview_project_overview(ctx: Context, space_id: SpaceId, project_id: ProjectId) -> OverviewView:
    """Show a project's dashboard: counts by status and priority, overdue, recent changes, time logged."""
    now = datetime.now(UTC)
    project = models.Project.model_validate(
        await api(ctx).call("get_project", {"spaceId": space_id, "projectId": project_id})
    )
    found = await scan(ctx, Filters(), space_id, project_id)
    if found.projects and found.projects[0].error:
        raise AstravueError(f"Could not read the tasks of project {project_id}: {found.projects[0].error}")
    tasks = found.tasks
    late = sorted((t for t in tasks if is_overdue(t, now)), key=by_due)
    recent = sorted((t for t in tasks if t.update_time), key=lambda t: t.update_time or now, reverse=True)[:8]
    try:
        time: ProjectTime | None = await _project_time(ctx, project_id)
        skipped = None
    except (AstravueError, ValidationError) as exc:
        time, skipped = None, [f"time entries: {exc}"]
    completed = sum(is_done(t) for t in tasks)
    view = OverviewView(
        project=project_out(project).model_dump(exclude_none=True, exclude={"description"}),
        total=len(tasks),
        open=len(tasks) - completed,
        completed=completed,
        overdue_count=len(late),
        by_status=_tally([t.status.status_name for t in tasks if t.status], _statuses(tasks)),
        by_priority=_tally([t.priority.priority_label for t in tasks if t.priority], _priorities(tasks)),
        overdue=[_view_task(t, {}) for t in late[:10]],
        recent=[
            RecentTask(
                id=t.task_id,
                title=t.task_title,
                status=t.status.status_name if t.status else None,
                updated=day_or_moment(t.update_time) or "",
            )
            for t in recent
        ],
        time=time,
        today=_today(now),
        editable=await _editable(ctx),
        skipped=skipped,
    )
    return _brief(ctx, view)


# ---------------------------------------------------------------- app-only
ViewName = Literal["task-list", "my-tasks", "project-overview"]
PREVIEWS: dict[str, str] = {
    "task-list": "astravue_preview_task_list",
    "my-tasks": "astravue_preview_my_tasks",
    "project-overview": "astravue_preview_project_overview",
}


@tool("views", "Refresh view", "read", meta=TASK_LIST.tool_meta(app_only=True))
async def refresh_view(
    ctx: Context,
    view: Annotated[ViewName, Field(description="Which view")],
    arguments: Annotated[dict[str, Any], Field(description="The view tool's arguments")] | None = None,
) -> Refreshed:
    """For the views: their preview tool's answer, read again."""
    try:
        result = await ctx.mcp_server.call_tool(PREVIEWS[view], arguments or {}, ctx)
    except ToolError as exc:  # the preview tool refused the arguments: its message, as our own refusal
        raise InvalidArguments(str(exc)) from None
    text = "\n".join(getattr(block, "text", "") for block in getattr(result, "content", []))
    data = getattr(result, "structured_content", None)
    if getattr(result, "is_error", False) or not isinstance(data, dict):
        raise AstravueError(text or f"{PREVIEWS[view]} returned nothing")
    refreshed = Refreshed(**data)
    refreshed._text = text
    return refreshed


@tool(
    "views",
    "Change task from a view",
    "update",
    meta=TASK_LIST.tool_meta(app_only=True),
    changes=("astravue://tasks/{task_id}", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def change_task(
    ctx: Context,
    task_id: TaskId,
    space_id: SpaceId | None = None,
    project_id: ProjectId | None = None,
    status: StatusLabel | None = None,
    due: When | None = None,
    completion: PercentDone | None = None,
) -> Changed:
    """For the views: set a task's status, due date or completion."""
    # The same request as astravue_update_task with only these fields: same checks, same API call.
    ref = TaskRef(task_id, space_id, project_id)
    body = task_write(status=status, due=due, completion=completion)
    if not body:
        raise InvalidArguments("Invalid arguments: nothing to change; give status, due or completion.")
    task = task_out(ref.parse(await api(ctx).call(ref.operation("update"), ref.ids, body=body)))
    return Changed(**task.model_dump(include=set(Changed.model_fields)))
