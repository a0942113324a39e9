"""The scan engine: every task of the projects in scope that matches, page by page, concurrently.

The API has no cross-project search, so a scan fans out: spaces -> projects -> each project's task
pages. A project that fails is reported in ``skipped`` instead of failing the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Generic, TypeVar

from mcp.server.mcpserver import Context
from pydantic import BaseModel, ValidationError

from astravue_mcp.api import models
from astravue_mcp.errors import AstravueError
from astravue_mcp.tools.concurrency import failure, fan_out
from astravue_mcp.tools.outputs import TaskOut, is_done, task_out
from astravue_mcp.tools.registry import Out, bullet
from astravue_mcp.tools.request import api
from astravue_mcp.tools.scope import ProjectRef, projects_in_scope, remember
from astravue_mcp.tools.task_api import TaskQuery, fetch_project_tasks, page_params, task_page

SCAN_PAGE_SIZE = 200
MAX_PAGES = 100
"""Per project: a guard against an API that ignores the page parameter and repeats itself."""

T = TypeVar("T", bound=BaseModel)


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
        lines += [bullet(item.text() if isinstance(item, Out) else str(item)) for item in self.items]
        return "\n".join(lines)


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
        try:
            return value + timedelta(days=1) - timedelta(microseconds=1)
        except OverflowError:  # the last day there is
            return value.replace(hour=23, minute=59, second=59, microsecond=999999)
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
    personal: list[models.Task] = field(default_factory=list)
    """Your personal tasks that matched (scanned when no space or project narrows the search)."""

    @property
    def project_tasks(self) -> list[models.Task]:
        return [t for p in self.projects for t in p.tasks]

    @property
    def tasks(self) -> list[models.Task]:
        return self.project_tasks + self.personal

    def all_skipped(self) -> list[str] | None:
        """One line per reason: 200 projects cut off by the time limit are one line, not 200."""
        by_reason: dict[str, list[ProjectRef]] = {}
        for p in self.projects:
            if p.error:
                by_reason.setdefault(p.error, []).append(p.ref)
        failed = [
            f"project {refs[0].project_id} (space {refs[0].space_id}): {reason}"
            if len(refs) == 1
            else f"{len(refs)} projects ({', '.join(str(r.project_id) for r in refs)}): {reason}"
            for reason, refs in by_reason.items()
        ]
        return self.skipped + failed or None


@dataclass
class Cap:
    """Shared by a search's concurrent project scans: stop paging once more than ``limit`` matched."""

    limit: int | None = None
    found: int = 0

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.found > self.limit


async def matching_tasks(ctx: Context, ref: ProjectRef | None, filters: Filters, cap: Cap) -> list[models.Task]:
    """Every task of one project (``ref``), or of your personal tasks (None), that matches, page by page."""
    client = api(ctx)
    matched: list[models.Task] = []
    for page in range(1, MAX_PAGES + 1):
        if cap.reached:
            break
        if ref is None:
            params = filters.query().params() | page_params(page, SCAN_PAGE_SIZE)
            data = await client.call("list_tasks", params=params)
            batch = task_page(data, page, SCAN_PAGE_SIZE, keep=filters.prefilter())
        else:
            batch = await fetch_project_tasks(
                client, ref.space_id, ref.project_id, filters.query(), page, SCAN_PAGE_SIZE, keep=filters.prefilter()
            )
        found = [t for t in batch.tasks if filters.match(t)]
        matched += found
        cap.found += len(found)
        if not batch.has_more or not batch.tasks:
            break
    return matched


Answer = ProjectScan | list[models.Task] | str
"""One scope's outcome: a project's scan, your personal tasks, or why the personal tasks were skipped."""


async def scan(
    ctx: Context,
    filters: Filters,
    space_id: int | None = None,
    project_id: int | None = None,
    cap: int | None = None,
) -> Scan:
    """Matching tasks of every project in scope, and of your personal tasks when no space or project is given.

    With ``cap``, stop once more than ``cap`` were found. Every task found is remembered for lookups by id.
    """
    refs, skipped = await projects_in_scope(ctx, space_id, project_id)
    budget = Cap(cap)
    scopes: list[ProjectRef | None] = [*refs]
    if space_id is None and project_id is None:
        scopes.append(None)

    async def one(ref: ProjectRef | None) -> Answer:
        try:
            tasks = await matching_tasks(ctx, ref, filters, budget)
        except (AstravueError, ValidationError) as exc:
            return ProjectScan(ref, [], failure(exc)) if ref is not None else f"personal tasks: {failure(exc)}"
        return ProjectScan(ref, tasks) if ref is not None else tasks

    def progress(ref: ProjectRef | None, result: Answer) -> str:
        if isinstance(result, ProjectScan):
            return f"{result.ref.name}: " + ("skipped" if result.error else f"{len(result.tasks)} match(es)")
        return "personal tasks: " + (result if isinstance(result, str) else f"{len(result)} match(es)")

    answers = await fan_out(ctx, scopes, one, progress)
    result = Scan([a for a in answers if isinstance(a, ProjectScan)], skipped, stopped=budget.reached)
    for answer in answers:
        if isinstance(answer, list):
            result.personal = answer
        elif isinstance(answer, str):
            result.skipped.append(answer)
    personal_read = any(isinstance(a, list) for a in answers)
    if result.projects and all(p.error for p in result.projects) and not personal_read:
        # Nothing was read: "0 tasks" would be a false answer.
        reasons = "\n".join(f"- {line}" for line in result.all_skipped() or [])
        raise AstravueError(f"Could not read any of the {len(result.projects)} project(s) in scope:\n{reasons}")
    remember(ctx, result.tasks)
    return result


class FoundTask(TaskOut):
    personal: bool | None = None


def found_out(task: models.Task) -> FoundTask:
    """A task of a cross-project answer: project tasks carry their project_id, personal ones say so."""
    return FoundTask(**task_out(task).model_dump(exclude_none=True), personal=True if task.project_id is None else None)


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
