"""One handler per operation of ``ENDPOINTS``; the app routes each operation name to its handler here.

Operations that differ only in scope (a personal task versus a project task, starting a timer on
either) share one handler: the path's ids say which scope applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from astravue_mcp.api.endpoints import NOTIFICATION_UNREAD, TIMESHEET_RANGE
from astravue_mcp.api.models import NotificationIds, ProjectWrite, SpaceWrite, TaskWrite, TimerWrite
from astravue_mcp.sandbox import views
from astravue_mcp.sandbox.listing import bool_param, day_range, int_param, page, query_tasks
from astravue_mcp.sandbox.records import ProjectRow, TaskRow, TimerRow, invalid
from astravue_mcp.sandbox.store import Store

M = TypeVar("M", bound=BaseModel)


@dataclass
class Call:
    """One API request, as a handler sees it."""

    store: Store
    ids: dict[str, int]
    query: Mapping[str, str]
    body: Any
    user_id: int

    def parse(self, model: type[M]) -> M:
        """The JSON body as ``model``; type errors become 400s naming the wire field."""
        body = {} if self.body is None else self.body
        if not isinstance(body, dict):
            raise invalid(("body", "must be a JSON object"))
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            errors = []
            for err in exc.errors(include_url=False):
                loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
                errors.append((loc or "body", err["msg"]))
            raise invalid(*errors) from None

    # Scope resolution shared by the personal and project variants of an operation.
    def project(self) -> ProjectRow | None:
        if "spaceId" in self.ids:
            return self.store.project(self.ids["spaceId"], self.ids["projectId"])
        if "projectId" in self.ids:
            return self.store.project_by_id(self.ids["projectId"])
        return None

    def task(self) -> TaskRow:
        project = self.project()
        if project is not None:
            return self.store.project_task(project, self.ids["taskId"])
        return self.store.personal_task(self.ids["taskId"], self.user_id)


Handler = Callable[[Call], Any]
HANDLERS: dict[str, Handler] = {}


def op(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


# ---------------------------------------------------------------- spaces
@op("list_spaces")
def list_spaces(c: Call) -> Any:
    return [views.space(c.store, s) for s in c.store.spaces.values()]


@op("create_space")
def create_space(c: Call) -> Any:
    return views.space(c.store, c.store.create_space(c.parse(SpaceWrite), c.user_id))


@op("get_space")
def get_space(c: Call) -> Any:
    return views.space(c.store, c.store.space(c.ids["spaceId"]))


@op("update_space")
def update_space(c: Call) -> Any:
    space = c.store.space(c.ids["spaceId"])
    return views.space(c.store, c.store.update_space(space, c.parse(SpaceWrite)))


@op("delete_space")
def delete_space(c: Call) -> Any:
    c.store.delete_space(c.store.space(c.ids["spaceId"]))


# ---------------------------------------------------------------- projects
@op("list_projects")
def list_projects(c: Call) -> Any:
    space = c.store.space(c.ids["spaceId"])
    return [views.project(c.store, p) for p in c.store.projects.values() if p.space_id == space.space_id]


@op("create_project")
def create_project(c: Call) -> Any:
    space = c.store.space(c.ids["spaceId"])
    return views.project(c.store, c.store.create_project(space, c.parse(ProjectWrite), c.user_id))


@op("get_project")
def get_project(c: Call) -> Any:
    return views.project(c.store, c.store.project(c.ids["spaceId"], c.ids["projectId"]))


@op("update_project")
def update_project(c: Call) -> Any:
    project = c.store.project(c.ids["spaceId"], c.ids["projectId"])
    return views.project(c.store, c.store.update_project(project, c.parse(ProjectWrite)))


@op("delete_project")
def delete_project(c: Call) -> Any:
    c.store.delete_project(c.store.project(c.ids["spaceId"], c.ids["projectId"]))


# ---------------------------------------------------------------- tasks (project and personal)
@op("list_project_tasks", "list_tasks")
def list_tasks(c: Call) -> Any:
    """Top-level tasks only; subtasks have their own list endpoints."""
    project = c.project()
    if project is not None:
        rows = [t for t in c.store.tasks.values() if t.project_id == project.project_id and t.parent_id is None]
    else:
        rows = [
            t
            for t in c.store.tasks.values()
            if t.project_id is None and t.created_by == c.user_id and t.parent_id is None
        ]
    found = query_tasks(c.store, rows, project.project_id if project else None, c.query)
    return page(found, c.query, lambda t: views.task(c.store, t))


@op("create_project_task", "create_task")
def create_task(c: Call) -> Any:
    return views.task(c.store, c.store.create_task(c.project(), c.parse(TaskWrite), c.user_id))


@op("get_project_task", "get_task")
def get_task(c: Call) -> Any:
    return views.task(c.store, c.task())


@op("update_project_task", "update_task")
def update_task(c: Call) -> Any:
    task = c.task()
    return views.task(c.store, c.store.update_task(task, c.parse(TaskWrite), c.user_id))


@op("delete_project_task", "delete_task")
def delete_task(c: Call) -> Any:
    c.store.delete_task(c.task())


@op("list_project_task_subtasks", "list_personal_task_subtasks")
def list_subtasks(c: Call) -> Any:
    return [views.task(c.store, t) for t in c.store.subtasks_of(c.task().task_id)]


# ---------------------------------------------------------------- comments and checklists
def _rows_of_task(table: Mapping[int, Any], task_id: int) -> list[Any]:
    return [row for row in table.values() if row.task_id == task_id]


@op("list_task_comments")
def list_comments(c: Call) -> Any:
    task = c.store.task(c.ids["taskId"])
    return [views.comment(c.store, r) for r in _rows_of_task(c.store.comments, task.task_id)]


@op("list_task_checklists")
def list_checklists(c: Call) -> Any:
    task = c.store.task(c.ids["taskId"])
    return [views.checklist(c.store, r) for r in _rows_of_task(c.store.checklists, task.task_id)]


@op("list_subtask_checklists")
def list_subtask_checklists(c: Call) -> Any:
    sub = c.store.subtask(c.ids["taskId"], c.ids["subtaskId"])
    return [views.checklist(c.store, r) for r in _rows_of_task(c.store.checklists, sub.task_id)]


# ---------------------------------------------------------------- time tracking
@op("list_task_timers")
def list_task_timers(c: Call) -> Any:
    task = c.store.task(c.ids["taskId"])
    rows = [t for t in _rows_of_task(c.store.timers, task.task_id) if t.user_id == c.user_id]
    return [views.timer(c.store, t) for t in sorted(rows, key=lambda t: t.start)]


@op("list_active_timers")
def list_active_timers(c: Call) -> Any:
    return [views.timer(c.store, t) for t in c.store.timers.values() if t.user_id == c.user_id and t.running]


def _timer_write(action: Callable[[Store, TaskRow, int, TimerWrite], TimerRow]) -> Handler:
    """Start, range and manual entries differ only in the store rule they apply."""

    def handler(c: Call) -> Any:
        return views.timer(c.store, action(c.store, c.task(), c.user_id, c.parse(TimerWrite)))

    return handler


op("start_personal_task_timer", "start_project_task_timer")(_timer_write(Store.start_timer))
op("add_personal_task_time_range", "add_project_task_time_range")(_timer_write(Store.add_range))
op("add_personal_task_manual_time", "add_project_task_manual_time")(_timer_write(Store.add_manual))


@op("stop_timer")
def stop_timer(c: Call) -> Any:
    # Stop addresses any task by its global id: the running timer, not the scope, is what matters.
    task = c.store.task(c.ids["taskId"])
    return views.timer(c.store, c.store.stop_timer(task, c.user_id, c.parse(TimerWrite)))


@op("update_timer")
def update_timer(c: Call) -> Any:
    timer = c.store.timer(c.ids["timerId"])
    return views.timer(c.store, c.store.update_timer(timer, c.parse(TimerWrite)))


@op("delete_timer_entry")
def delete_timer(c: Call) -> Any:
    c.store.delete_timer(c.store.timer(c.ids["timerId"]))


def _entries(c: Call, project_id: int | None) -> list[Any]:
    """Time entries in the requested range (by start time), oldest first."""
    lo, hi = day_range(c.query, TIMESHEET_RANGE["start"], TIMESHEET_RANGE["end"])
    user = int_param(c.query, TIMESHEET_RANGE["user"])
    rows = [
        t
        for t in c.store.timers.values()
        if (project_id is None or (t.task_id in c.store.tasks and c.store.tasks[t.task_id].project_id == project_id))
        and (user is None or t.user_id == user)
        and (lo is None or t.start >= lo)
        and (hi is None or t.start < hi)
    ]
    return sorted(rows, key=lambda t: (t.start, t.timer_id))


@op("get_global_timesheet_report")
def global_timesheet(c: Call) -> Any:
    for name in (TIMESHEET_RANGE["start"], TIMESHEET_RANGE["end"]):
        if not c.query.get(name):
            raise invalid((name, "is required (an ISO date such as 2024-05-31)"))
    rows = _entries(c, None)
    return {
        TIMESHEET_RANGE["start"]: c.query[TIMESHEET_RANGE["start"]],
        TIMESHEET_RANGE["end"]: c.query[TIMESHEET_RANGE["end"]],
        "entries": [views.timer(c.store, t) for t in rows],
        **views.totals(rows),
    }


@op("get_project_timesheet")
def project_timesheet(c: Call) -> Any:
    project = c.store.project_by_id(c.ids["projectId"])
    return [views.timer(c.store, t) for t in _entries(c, project.project_id)]


@op("get_project_timesheet_summary")
def project_timesheet_summary(c: Call) -> Any:
    project = c.store.project_by_id(c.ids["projectId"])
    return views.totals(_entries(c, project.project_id), project.project_id)


# ---------------------------------------------------------------- notifications
@op("list_notifications")
def list_notifications(c: Call) -> Any:
    rows = c.store.notifications_of(c.user_id, unread_only=bool_param(c.query, NOTIFICATION_UNREAD))
    return [views.notification(c.store, n) for n in rows]


@op("mark_notifications_read")
def mark_read(c: Call) -> Any:
    changed = c.store.mark_read(c.user_id, c.parse(NotificationIds))
    return {"notificationIds": changed, "updatedCount": len(changed)}


@op("delete_notifications")
def delete_notifications(c: Call) -> Any:
    deleted = c.store.delete_notifications(c.user_id, c.parse(NotificationIds))
    return {"notificationIds": deleted, "deletedCount": len(deleted)}
