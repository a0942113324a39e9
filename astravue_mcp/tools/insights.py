"""Insights: composite tools built only from the public endpoints.

The API has no cross-project search, no overdue list, no counts and no bulk calls, so these tools
fan out: spaces -> projects -> each project's task pages, at most ``max_concurrency`` requests at a
time (the client keeps the 100 requests/minute budget). A project that fails is reported in
``skipped`` instead of failing the whole answer; bulk writes report every item on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Generic, TypeVar

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field, ValidationError

from astravue_mcp.api import models
from astravue_mcp.errors import ApiError, AstravueError
from astravue_mcp.tools.common import (
    Completion,
    Limit,
    OwnerIds,
    PriorityLabel,
    ProjectId,
    SpaceId,
    StatusLabel,
    TaskId,
    TaskOut,
    TaskQuery,
    TaskText,
    TaskTitle,
    UserId,
    When,
    api,
    confirm,
    fetch_project_tasks,
    is_done,
    is_overdue,
    task_out,
    task_write,
)
from astravue_mcp.tools.registry import Out, describe, tool

SCAN_PAGE_SIZE = 200
MAX_PAGES = 100
"""Per project: a guard against an API that ignores the page parameter and repeats itself."""
MAX_BULK = 100
"""Astravue's own limit for bulk task calls."""
SCHEDULE_DAYS = 7

Keyword = Annotated[
    str, Field(min_length=1, max_length=200, description="Keywords, all in title, description or tags")
]

Item = TypeVar("Item")
R = TypeVar("R")
T = TypeVar("T", bound=BaseModel)


# ---------------------------------------------------------------- outputs
class TaskHits(Out, Generic[T]):
    items: list[T]
    total: int | None = None
    projects: int
    truncated: bool | None = None
    hint: str | None = None
    skipped: list[str] | None = None

    def text(self) -> str:
        found = f"{self.total}" if self.total is not None else f"more than {len(self.items)}"
        lines = [f"{len(self.items)} of {found} task(s) in {self.projects} project(s)"]
        if self.hint:
            lines.append(self.hint)
        lines += [f"skipped {s}" for s in self.skipped or []]
        lines += [f"- {item.text() if isinstance(item, Out) else item}" for item in self.items]
        return "\n".join(lines)


class OverdueTask(TaskOut):
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
    skipped: list[str] | None = None


class ItemResult(Out):
    index: int
    id: int | None = None
    ok: bool
    error: str | None = None
    outcome_unknown: bool | None = None


class BulkOut(Out):
    succeeded: int
    failed: int
    results: list[ItemResult]

    def text(self) -> str:
        lines = [f"{self.succeeded} succeeded, {self.failed} failed"]
        for r in self.results:
            state = "ok" if r.ok else ("outcome unknown" if r.outcome_unknown else "error")
            ident = f" task {r.id}" if r.id is not None else ""
            lines.append(f"- #{r.index}{ident}: {state}" + (f": {r.error}" if r.error else ""))
        return "\n".join(lines)


# ---------------------------------------------------------------- fan-out
async def fan_out(
    ctx: Context,
    items: Sequence[Item],
    work: Callable[[Item], Awaitable[R]],
    progress: Callable[[Item, R], str] | None = None,
) -> list[R]:
    """``work`` on every item, at most ``max_concurrency`` at once; results in item order.

    ``work`` must report its own failures in its result: one item's error must not cancel the rest.
    Progress goes out under a lock so the counter the client sees only ever increases.
    """
    limiter = anyio.CapacityLimiter(api(ctx).settings.max_concurrency)
    lock = anyio.Lock()
    results: list[Any] = [None] * len(items)
    done = 0

    async def one(index: int, item: Item) -> None:
        nonlocal done
        async with limiter:
            results[index] = await work(item)
        if progress is not None:
            async with lock:
                done += 1
                await ctx.report_progress(done, len(items), progress(item, results[index]))

    async with anyio.create_task_group() as group:
        for index, item in enumerate(items):
            group.start_soon(one, index, item)
    return results


def failure(exc: Exception) -> str:
    return describe(exc) if isinstance(exc, ValidationError) else str(exc)


# ---------------------------------------------------------------- scope: which projects
@dataclass(frozen=True)
class ProjectRef:
    space_id: int
    project_id: int
    name: str

    @property
    def ids(self) -> dict[str, int]:
        return {"spaceId": self.space_id, "projectId": self.project_id}


def _refs(data: Any, space_id: int) -> list[ProjectRef]:
    projects = (models.Project.model_validate(p) for p in models.page_of(data).items)
    return [ProjectRef(space_id, p.project_id, p.project_name) for p in projects]


async def projects_in_scope(
    ctx: Context, space_id: int | None = None, project_id: int | None = None
) -> tuple[list[ProjectRef], list[str]]:
    """The projects a search covers; a named space or project that does not exist is an error."""
    client = api(ctx)
    if space_id is not None and project_id is not None:
        project = models.Project.model_validate(
            await client.call("get_project", {"spaceId": space_id, "projectId": project_id})
        )
        return [ProjectRef(space_id, project.project_id, project.project_name)], []
    if space_id is not None:
        refs = _refs(await client.call("list_projects", {"spaceId": space_id}), space_id)
        skipped: list[str] = []
    else:
        spaces = [
            models.Space.model_validate(s).space_id for s in models.page_of(await client.call("list_spaces")).items
        ]

        async def space_projects(sid: int) -> list[ProjectRef] | str:
            try:
                return _refs(await client.call("list_projects", {"spaceId": sid}), sid)
            except (AstravueError, ValidationError) as exc:
                return f"space {sid}: {failure(exc)}"

        answers = await fan_out(ctx, spaces, space_projects)
        refs = [r for a in answers if isinstance(a, list) for r in a]
        skipped = [a for a in answers if isinstance(a, str)]
    if project_id is not None:
        refs = [r for r in refs if r.project_id == project_id]
        if not refs:
            raise AstravueError(
                f"Project {project_id} was not found in any space you can see. "
                "Check the id with astravue_list_projects."
            )
    return refs, skipped


async def locate_task(ctx: Context, task_id: int) -> tuple[int | None, int | None]:
    """(space_id, project_id) of a task, or (None, None) for one of your personal tasks.

    Task ids are global but the project-task endpoints need the scope: try the personal endpoint,
    then ask every project (stopping once one knows the task).
    """
    client = api(ctx)
    try:
        await client.call("get_task", {"taskId": task_id})
        return None, None
    except ApiError as exc:
        if exc.status != 404:
            raise
    refs, _ = await projects_in_scope(ctx)
    found: list[ProjectRef] = []

    async def probe(ref: ProjectRef) -> None:
        if found:
            return
        try:
            await client.call("get_project_task", ref.ids | {"taskId": task_id})
        except AstravueError:
            return  # not here (or this project cannot be read): keep looking elsewhere
        found.append(ref)

    await fan_out(ctx, refs, probe)
    if not found:
        raise AstravueError(
            f"Task {task_id} was not found in any project you can see, nor among your personal tasks. "
            "Check the id with astravue_find_tasks."
        )
    return found[0].space_id, found[0].project_id


# ---------------------------------------------------------------- scanning tasks
@dataclass
class Filters:
    """What a task must match, checked here (the API's filter parameter names are guesses).

    Owner and due range also go to the API to save pages. Status and priority do not: they are
    labels of each project's own workflow, and a project without that label has no match rather
    than being an invalid request.
    """

    keyword: str | None = None
    status: str | None = None
    priority: str | None = None
    owner_id: int | None = None
    due_from: datetime | None = None
    due_to: datetime | None = None
    open_only: bool = False

    def query(self) -> TaskQuery:
        return TaskQuery(owner_id=self.owner_id, due_from=self.due_from, due_to=self.due_to)

    def match(self, task: models.Task) -> bool:
        if self.open_only and is_done(task):
            return False
        if self.status and (task.status is None or task.status.status_name.lower() != self.status.lower()):
            return False
        if self.priority and (task.priority is None or task.priority.priority_label.lower() != self.priority.lower()):
            return False
        if self.owner_id is not None and self.owner_id not in {u.user_id for u in task.owners or []}:
            return False
        if (self.due_from or self.due_to) and task.due_date is None:
            return False
        if self.due_from and task.due_date and task.due_date < self.due_from:
            return False
        if self.due_to and task.due_date and task.due_date > self.due_to:
            return False
        text = _haystack(task)
        return all(word in text for word in (self.keyword or "").lower().split())

    def prefilter(self) -> Callable[[Any], bool] | None:
        """A check on the raw answer, so tasks without the keywords are never validated."""
        words = (self.keyword or "").lower().split()
        if not words:
            return None

        def keep(raw: Any) -> bool:
            text = models.searchable_text(raw).lower()
            return all(word in text for word in words)

        return keep


def _haystack(task: models.Task) -> str:
    return " ".join([task.task_title, task.description or "", *(task.tags or [])]).lower()


def whole_day(value: datetime | None) -> datetime | None:
    """An upper bound given as a bare date means the end of that day."""
    if value is not None and value.timetz().replace(tzinfo=None) == time():
        return value + timedelta(days=1) - timedelta(microseconds=1)
    return value


@dataclass
class ProjectScan:
    ref: ProjectRef
    tasks: list[models.Task]
    error: str | None = None


@dataclass
class Scan:
    projects: list[ProjectScan]
    skipped: list[str]
    stopped: bool = False

    @property
    def tasks(self) -> list[models.Task]:
        return [t for p in self.projects for t in p.tasks]

    def all_skipped(self) -> list[str] | None:
        failed = [f"project {p.ref.project_id} (space {p.ref.space_id}): {p.error}" for p in self.projects if p.error]
        return self.skipped + failed or None


@dataclass
class Cap:
    """Shared by a search's concurrent project scans: stop paging once more than ``limit`` matched."""

    limit: int | None = None
    found: int = 0

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.found > self.limit


async def project_tasks(ctx: Context, ref: ProjectRef, filters: Filters, cap: Cap | None = None) -> list[models.Task]:
    """Every task of one project that matches, page by page (until the cap is reached)."""
    cap = cap or Cap()
    matched: list[models.Task] = []
    for page in range(1, MAX_PAGES + 1):
        if cap.reached:
            break
        batch = await fetch_project_tasks(
            api(ctx), ref.space_id, ref.project_id, filters.query(), page, SCAN_PAGE_SIZE, keep=filters.prefilter()
        )
        found = [t for t in batch.tasks if filters.match(t)]
        matched += found
        cap.found += len(found)
        if not batch.has_more or not batch.tasks:
            break
    return matched


async def scan(
    ctx: Context,
    filters: Filters,
    space_id: int | None = None,
    project_id: int | None = None,
    cap: int | None = None,
) -> Scan:
    """Matching tasks of every project in scope; with ``cap``, stop once more than ``cap`` were found."""
    refs, skipped = await projects_in_scope(ctx, space_id, project_id)
    budget = Cap(cap)

    async def one(ref: ProjectRef) -> ProjectScan:
        try:
            return ProjectScan(ref, await project_tasks(ctx, ref, filters, budget))
        except (AstravueError, ValidationError) as exc:
            return ProjectScan(ref, [], failure(exc))

    def progress(ref: ProjectRef, result: ProjectScan) -> str:
        return f"{ref.name}: " + ("skipped" if result.error else f"{len(result.tasks)} match(es)")

    return Scan(await fan_out(ctx, refs, one, progress), skipped, stopped=budget.reached)


def hits(items: list[T], scan_: Scan, limit: int, exact: bool = True) -> TaskHits[T]:
    total = len(items) if exact else None
    truncated = len(items) > limit
    return TaskHits[T](
        items=items[:limit],
        total=total,
        projects=len(scan_.projects),
        truncated=truncated or None,
        hint="More matched than the limit: narrow with space_id or filters, or raise limit (max 200)."
        if truncated
        else None,
        skipped=scan_.all_skipped(),
    )


def _order(task: models.Task) -> tuple[int, int, int]:
    return task.space_id or 0, task.project_id or 0, task.task_id


def _by_due(task: models.Task) -> tuple[datetime, int]:
    return task.due_date or datetime.max.replace(tzinfo=UTC), task.task_id


# ---------------------------------------------------------------- read tools
@tool("insights", "Find tasks", "read")
async def find_tasks(
    ctx: Context,
    query: Keyword | None = None,
    status: StatusLabel | None = None,
    priority: PriorityLabel | None = None,
    owner_id: UserId | None = None,
    due_from: When | None = None,
    due_to: When | None = None,
    space_id: SpaceId | None = None,
    limit: Limit = 25,
) -> TaskHits[TaskOut]:
    """Search tasks of all projects by keywords and filters; stops at limit (one project: list_project_tasks)."""
    filters = Filters(query, status, priority, owner_id, due_from, whole_day(due_to))
    result = await scan(ctx, filters, space_id, cap=limit)
    return hits([task_out(t) for t in sorted(result.tasks, key=_order)], result, limit, exact=not result.stopped)


@tool("insights", "List overdue tasks", "read")
async def list_overdue_tasks(
    ctx: Context, space_id: SpaceId | None = None, project_id: ProjectId | None = None, limit: Limit = 25
) -> TaskHits[OverdueTask]:
    """Open tasks past due across projects (or one space/project), most overdue first."""
    now = datetime.now(UTC)
    result = await scan(ctx, Filters(due_to=now, open_only=True), space_id, project_id)
    late = sorted((t for t in result.tasks if is_overdue(t, now)), key=_by_due)
    items = [OverdueTask(**task_out(t).model_dump(), days_overdue=(now - t.due_date).days) for t in late if t.due_date]
    return hits(items, result, limit)


@tool("insights", "List scheduled tasks", "read")
async def list_scheduled_tasks(
    ctx: Context,
    due_from: When | None = None,
    due_to: When | None = None,
    space_id: SpaceId | None = None,
    limit: Limit = 25,
) -> TaskHits[TaskOut]:
    """Open tasks due in a window (default today to +7 days) across projects, soonest first."""
    today = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    start = due_from or today
    end = whole_day(due_to or today + timedelta(days=SCHEDULE_DAYS))
    result = await scan(ctx, Filters(due_from=start, due_to=end, open_only=True), space_id)
    return hits([task_out(t) for t in sorted(result.tasks, key=_by_due)], result, limit)


def _count(tasks: list[models.Task], now: datetime) -> dict[str, int]:
    completed = sum(is_done(t) for t in tasks)
    overdue = sum(is_overdue(t, now) for t in tasks)
    return {"total": len(tasks), "open": len(tasks) - completed, "completed": completed, "overdue": overdue}


@tool("insights", "Get task counts", "read")
async def get_task_counts(
    ctx: Context, space_id: SpaceId | None = None, project_id: ProjectId | None = None
) -> TaskCounts:
    """Total, open, completed and overdue counts: of one project, or overall and per project."""
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
    return TaskCounts(**overall, projects=per_project, skipped=result.all_skipped())


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
    completion: Completion | None = None
    owner_ids: OwnerIds | None = None
    due: When | None = None


def _body(item: NewTask | TaskChange) -> dict[str, Any]:
    return task_write(item.model_dump(exclude_none=True)).wire()


Outcome = tuple[int | None, Exception | None]


async def run_bulk(
    ctx: Context,
    verb: str,
    items: Sequence[Item],
    ident: Callable[[Item], int | None],
    write: Callable[[Item], Awaitable[int | None]],
) -> BulkOut:
    """Apply ``write`` to every item; item by item results. Nothing is retried here: the client
    already retries what is safe, and an item whose answer was lost is reported as unknown."""

    async def one(item: Item) -> Outcome:
        try:
            return await write(item), None
        except (AstravueError, ValidationError) as exc:
            return ident(item), exc

    def progress(item: Item, outcome: Outcome) -> str:
        return f"{verb} {'ok' if outcome[1] is None else 'failed'}"

    outcomes = await fan_out(ctx, items, one, progress)
    results = [
        ItemResult(
            index=i,
            id=task_id,
            ok=exc is None,
            error=failure(exc) if exc is not None else None,
            outcome_unknown=True if isinstance(exc, ApiError) and exc.outcome_unknown else None,
        )
        for i, (task_id, exc) in enumerate(outcomes)
    ]
    out = BulkOut(succeeded=sum(r.ok for r in results), failed=sum(not r.ok for r in results), results=results)
    if out.succeeded == 0:
        # Nothing happened (or nothing is known to have happened): an error result, with every item's reason.
        raise AstravueError(f"Could not {verb} any of the {len(results)} task(s).\n" + out.text())
    return out


BulkTasks = Annotated[list[NewTask], Field(min_length=1, max_length=MAX_BULK, description="Tasks to create (max 100)")]
BulkChanges = Annotated[
    list[TaskChange], Field(min_length=1, max_length=MAX_BULK, description="One change per task")
]
BulkIds = Annotated[list[TaskId], Field(min_length=1, max_length=MAX_BULK, description="Task ids (max 100)")]


@tool("insights", "Bulk create tasks", "create", bulk=True)
async def bulk_create_tasks(ctx: Context, space_id: SpaceId, project_id: ProjectId, tasks: BulkTasks) -> BulkOut:
    """Create up to 100 tasks in one project; reports each new id or error."""
    ids = {"spaceId": space_id, "projectId": project_id}

    async def create(item: NewTask) -> int:
        return models.Task.model_validate(await api(ctx).call("create_project_task", ids, body=_body(item))).task_id

    return await run_bulk(ctx, "create", tasks, lambda _: None, create)


@tool("insights", "Bulk update tasks", "update", bulk=True)
async def bulk_update_tasks(ctx: Context, space_id: SpaceId, project_id: ProjectId, changes: BulkChanges) -> BulkOut:
    """Change up to 100 tasks of one project; omitted fields stay. Reports each item."""
    await confirm(ctx, f"change {len(changes)} task(s) in project {project_id}")

    async def update(item: TaskChange) -> int:
        body = _body(item)
        if not body:
            raise AstravueError("Nothing to change: give at least one field besides task_id.")
        await api(ctx).call(
            "update_project_task", {"spaceId": space_id, "projectId": project_id, "taskId": item.task_id}, body=body
        )
        return item.task_id

    return await run_bulk(ctx, "update", changes, lambda c: c.task_id, update)


@tool("insights", "Bulk delete tasks", "delete", bulk=True)
async def bulk_delete_tasks(ctx: Context, space_id: SpaceId, project_id: ProjectId, task_ids: BulkIds) -> BulkOut:
    """Delete up to 100 tasks of one project. Cannot be undone. Reports each item."""
    await confirm(ctx, f"delete {len(task_ids)} task(s) from project {project_id}: {', '.join(map(str, task_ids))}")

    async def delete(task_id: int) -> int:
        await api(ctx).call("delete_project_task", {"spaceId": space_id, "projectId": project_id, "taskId": task_id})
        return task_id

    return await run_bulk(ctx, "delete", task_ids, lambda i: i, delete)
