"""The sandbox's state and the domain rules a real Astravue would enforce on it.

Everything runs on the event loop thread and no method awaits, so each call is atomic without
locks. Rule violations raise :class:`SandboxError`; the app turns them into the error envelope.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from astravue_mcp.api.models import (
    NotificationIds,
    Priority,
    ProjectWrite,
    SpaceWrite,
    Status,
    TaskWrite,
    TimerWrite,
    User,
)
from astravue_mcp.sandbox.records import (
    ChecklistRow,
    CommentRow,
    NotificationRow,
    ProjectRow,
    SandboxError,
    SpaceRow,
    TaskRow,
    TimerRow,
    invalid,
    not_found,
)
from astravue_mcp.sandbox.seed import load_seed

TITLE_MAX = 255
NAME_MAX = 100
DESCRIPTION_MAX = 10_000
TAG_MAX = 50
MAX_MANUAL_HOURS = 24.0
DONE = "done"


def utc(value: datetime | None) -> datetime | None:
    """Naive timestamps are read as UTC, like the API's documented examples (``...Z``)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(field: str, value: str | None, limit: int, required: bool) -> tuple[str, str] | None:
    if value is None:
        return (field, "must not be empty") if required else None
    if not value.strip():
        return (field, "must not be empty")
    if len(value) > limit:
        return (field, f"must be at most {limit} characters (got {len(value)})")
    return None


def _check(*problems: tuple[str, str] | None) -> None:
    found = [p for p in problems if p is not None]
    if found:
        raise invalid(*found)


def _date_order(start: datetime | None, due: datetime | None, due_field: str = "dueDate") -> tuple[str, str] | None:
    if start is not None and due is not None and due < start:
        return (due_field, "must not be before startDate")
    return None


class Store:
    """One organisation's data. ``reset()`` reloads the seed in place, so references stay valid."""

    def __init__(self, now: datetime | None = None) -> None:
        self.reset(now)

    def reset(self, now: datetime | None = None) -> None:
        self.tenant_id = 1
        self.current_user_id = 1
        self.users: dict[int, User] = {}
        self.statuses: dict[int, Status] = {}
        self.personal_status_ids: list[int] = []
        self.default_statuses: list[dict[str, Any]] = []
        self.priorities: dict[int, Priority] = {}
        """In rank order, lowest first (dicts keep insertion order)."""
        self.spaces: dict[int, SpaceRow] = {}
        self.projects: dict[int, ProjectRow] = {}
        self.tasks: dict[int, TaskRow] = {}
        self.comments: dict[int, CommentRow] = {}
        self.checklists: dict[int, ChecklistRow] = {}
        self.timers: dict[int, TimerRow] = {}
        self.notifications: dict[int, NotificationRow] = {}
        self._last_id: dict[str, int] = {}
        load_seed(self, now or datetime.now(UTC))

    # ------------------------------------------------------------ ids and time
    def now(self) -> datetime:
        # Millisecond precision, like durations: a timer's duration is then exactly end - start.
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def next_id(self, table: dict[int, Any], kind: str) -> int:
        # Ids are never reused, even after deletes, like database sequences.
        last = max(self._last_id.get(kind, 0), max(table, default=0))
        self._last_id[kind] = last + 1
        return last + 1

    # ------------------------------------------------------------ labels
    def add_statuses(self, definitions: Iterable[dict[str, Any]], project: ProjectRow | None) -> list[int]:
        ids = []
        creator = self.users[project.created_by if project else self.current_user_id]
        for position, d in enumerate(definitions):
            sid = self.next_id(self.statuses, "status")
            # Validated from wire names: "default" is a field the API shows but the model leaves to extras.
            self.statuses[sid] = Status.model_validate(
                {
                    "tenantId": self.tenant_id,
                    "taskStatusId": sid,
                    "statusName": d["name"],
                    "color": d.get("color"),
                    "statusCategory": d["category"],
                    "projectId": project.project_id if project else None,
                    "spaceId": project.space_id if project else None,
                    "createdBy": creator,
                    "default": position == 0,
                }
            )
            ids.append(sid)
        return ids

    def status_ids_for(self, project_id: int | None) -> list[int]:
        return self.projects[project_id].status_ids if project_id is not None else self.personal_status_ids

    def status_by_label(self, project_id: int | None, label: str, field: str = "status") -> int:
        allowed = self.status_ids_for(project_id)
        for sid in allowed:
            if self.statuses[sid].status_name.casefold() == label.strip().casefold():
                return sid
        names = ", ".join(self.statuses[s].status_name for s in allowed)
        raise invalid((field, f"unknown status {label!r}; allowed: {names}"))

    def priority_by_label(self, label: str, field: str = "priority") -> int:
        for pid, p in self.priorities.items():
            if p.priority_label.casefold() == label.strip().casefold():
                return pid
        names = ", ".join(p.priority_label for p in self.priorities.values())
        raise invalid((field, f"unknown priority {label!r}; allowed: {names}"))

    def priority_rank(self, priority_id: int) -> int:
        return list(self.priorities).index(priority_id)

    def is_done(self, task: TaskRow) -> bool:
        return self.statuses[task.status_id].status_category == DONE

    # ------------------------------------------------------------ lookups (404s)
    def user(self, user_id: int) -> User:
        return self.users[user_id]

    def space(self, space_id: int) -> SpaceRow:
        if space_id not in self.spaces:
            raise not_found("space", space_id)
        return self.spaces[space_id]

    def project(self, space_id: int, project_id: int) -> ProjectRow:
        self.space(space_id)
        project = self.projects.get(project_id)
        if project is None or project.space_id != space_id:
            raise not_found("project", project_id, f" in space {space_id}")
        return project

    def project_by_id(self, project_id: int) -> ProjectRow:
        if project_id not in self.projects:
            raise not_found("project", project_id)
        return self.projects[project_id]

    def task(self, task_id: int) -> TaskRow:
        """Any task of the org (comments, checklists and timers address tasks by global id)."""
        if task_id not in self.tasks:
            raise not_found("task", task_id)
        return self.tasks[task_id]

    def project_task(self, project: ProjectRow, task_id: int) -> TaskRow:
        task = self.tasks.get(task_id)
        if task is None or task.project_id != project.project_id:
            raise not_found("task", task_id, f" in project {project.project_id}")
        return task

    def personal_task(self, task_id: int, user_id: int) -> TaskRow:
        # Personal tasks are private: another user's task answers 404, not 403, so ids do not leak.
        task = self.tasks.get(task_id)
        if task is None or task.project_id is not None or task.created_by != user_id:
            raise not_found("task", task_id)
        return task

    def subtask(self, task_id: int, subtask_id: int) -> TaskRow:
        self.task(task_id)
        sub = self.tasks.get(subtask_id)
        if sub is None or sub.parent_id != task_id:
            raise not_found("subtask", subtask_id, f" of task {task_id}")
        return sub

    def subtasks_of(self, task_id: int) -> list[TaskRow]:
        return [t for t in self.tasks.values() if t.parent_id == task_id]

    def timer(self, timer_id: int) -> TimerRow:
        if timer_id not in self.timers:
            raise not_found("time entry", timer_id)
        return self.timers[timer_id]

    # ------------------------------------------------------------ spaces
    def create_space(self, body: SpaceWrite, actor: int) -> SpaceRow:
        _check(
            _text("spaceName", body.space_name, NAME_MAX, required=True),
            _text("description", body.description, DESCRIPTION_MAX, required=False),
        )
        assert body.space_name is not None
        row = SpaceRow(
            self.next_id(self.spaces, "space"), body.space_name.strip(), body.description, body.color, actor, self.now()
        )
        self.spaces[row.space_id] = row
        return row

    def update_space(self, space: SpaceRow, body: SpaceWrite) -> SpaceRow:
        given = body.model_fields_set
        _check(
            _text("spaceName", body.space_name, NAME_MAX, required="space_name" in given),
            _text("description", body.description, DESCRIPTION_MAX, required=False),
        )
        if body.space_name is not None:
            space.name = body.space_name.strip()
        for attr in ("description", "color"):
            if attr in given:
                setattr(space, attr, getattr(body, attr))
        return space

    def delete_space(self, space: SpaceRow) -> None:
        for project in [p for p in self.projects.values() if p.space_id == space.space_id]:
            self.delete_project(project)
        del self.spaces[space.space_id]

    # ------------------------------------------------------------ projects
    def create_project(self, space: SpaceRow, body: ProjectWrite, actor: int) -> ProjectRow:
        start, due = utc(body.start_date), utc(body.due_date)
        _check(
            _text("projectName", body.project_name, NAME_MAX, required=True),
            _text("description", body.description, DESCRIPTION_MAX, required=False),
            _date_order(start, due),
        )
        assert body.project_name is not None
        row = ProjectRow(
            self.next_id(self.projects, "project"),
            space.space_id,
            body.project_name.strip(),
            body.description,
            body.status or "Active",
            body.priority or "Medium",
            body.health or "On Track",
            start,
            due,
            actor,
            actor,
            self.now(),
        )
        row.status_ids = self.add_statuses(self.default_statuses, row)
        self.projects[row.project_id] = row
        return row

    def update_project(self, project: ProjectRow, body: ProjectWrite) -> ProjectRow:
        given = body.model_fields_set
        start = utc(body.start_date) if "start_date" in given else project.start
        due = utc(body.due_date) if "due_date" in given else project.due
        _check(
            _text("projectName", body.project_name, NAME_MAX, required="project_name" in given),
            _text("description", body.description, DESCRIPTION_MAX, required=False),
            _date_order(start, due),
        )
        if body.project_name is not None:
            project.name = body.project_name.strip()
        for attr in ("description", "status", "priority", "health"):
            if attr in given:
                setattr(project, attr, getattr(body, attr))
        project.start, project.due = start, due
        return project

    def delete_project(self, project: ProjectRow) -> None:
        for task in [t for t in self.tasks.values() if t.project_id == project.project_id and t.parent_id is None]:
            self.delete_task(task)
        for sid in project.status_ids:
            del self.statuses[sid]
        del self.projects[project.project_id]

    def task_count(self, project: ProjectRow) -> int:
        return sum(1 for t in self.tasks.values() if t.project_id == project.project_id and t.parent_id is None)

    # ------------------------------------------------------------ tasks
    def mentioned_in(self, text: str | None) -> list[int]:
        if not text:
            return []
        return [
            u.user_id for u in self.users.values() if re.search(rf"@{re.escape(u.name)}\b", text, flags=re.IGNORECASE)
        ]

    def _task_problems(
        self, body: TaskWrite, project_id: int | None, actor: int, creating: bool, task: TaskRow | None
    ) -> list[tuple[str, str] | None]:
        given = body.model_fields_set
        start = utc(body.start_date) if "start_date" in given else (task.start if task else None)
        due = utc(body.due_date) if "due_date" in given else (task.due if task else None)
        problems: list[tuple[str, str] | None] = [
            _text("taskTitle", body.task_title, TITLE_MAX, required=creating or "task_title" in given),
            _text("description", body.description, DESCRIPTION_MAX, required=False),
            _date_order(start, due),
        ]
        if body.completion is not None and not 0 <= body.completion <= 100:
            problems.append(("completion", f"must be between 0 and 100 (got {body.completion})"))
        unknown = [u for u in body.owners or [] if u not in self.users]
        if unknown:
            problems.append(("owners", f"unknown user id(s): {', '.join(map(str, unknown))}"))
        for i, tag in enumerate(body.tags or []):
            if not tag.strip() or len(tag) > TAG_MAX:
                problems.append((f"tags[{i}]", f"must be 1 to {TAG_MAX} characters"))
        for label, resolve in (
            (body.status, lambda v: self.status_by_label(project_id, v)),
            (body.priority, self.priority_by_label),
        ):
            if label is not None:
                try:
                    resolve(label)
                except SandboxError as exc:
                    problems.extend(exc.errors)
        if body.parent_task_id is not None:
            problems.append(self._parent_problem(body.parent_task_id, project_id, actor, task))
        return problems

    def _parent_problem(
        self, parent_id: int, project_id: int | None, actor: int, task: TaskRow | None
    ) -> tuple[str, str] | None:
        parent = self.tasks.get(parent_id)
        where = f"project {project_id}" if project_id is not None else "your personal tasks"
        if parent is None or parent.project_id != project_id or (project_id is None and parent.created_by != actor):
            return ("parentTaskId", f"task {parent_id} is not a task of {where}")
        if parent.parent_id is not None:
            return ("parentTaskId", f"task {parent_id} is itself a subtask; subtasks cannot have subtasks")
        if task is not None and (parent_id == task.task_id or self.subtasks_of(task.task_id)):
            return ("parentTaskId", "a task cannot become a subtask of itself or while it has subtasks")
        return None

    def create_task(self, project: ProjectRow | None, body: TaskWrite, actor: int) -> TaskRow:
        project_id = project.project_id if project else None
        _check(*self._task_problems(body, project_id, actor, creating=True, task=None))
        assert body.task_title is not None
        now = self.now()
        status_ids = self.status_ids_for(project_id)
        status_id = self.status_by_label(project_id, body.status) if body.status else status_ids[0]
        default_priority = next((pid for pid, p in self.priorities.items() if p.default), next(iter(self.priorities)))
        row = TaskRow(
            task_id=self.next_id(self.tasks, "task"),
            title=body.task_title.strip(),
            project_id=project_id,
            space_id=project.space_id if project else None,
            parent_id=body.parent_task_id,
            status_id=status_id,
            priority_id=self.priority_by_label(body.priority) if body.priority else default_priority,
            # A personal task with no owners belongs to its creator; a project task may be unassigned.
            owners=list(dict.fromkeys(body.owners or ([] if project else [actor]))),
            tags=list(dict.fromkeys(t.strip() for t in body.tags or [])),
            start=utc(body.start_date),
            due=utc(body.due_date),
            completion=body.completion if body.completion is not None else 0,
            description=body.description,
            mentioned=self.mentioned_in(body.description),
            created_by=actor,
            modified_by=actor,
            created_at=now,
            updated_at=now,
        )
        self._done_means_complete(row, body)
        self.tasks[row.task_id] = row
        return row

    def update_task(self, task: TaskRow, body: TaskWrite, actor: int) -> TaskRow:
        """Partial update: only the fields present in the body change (null clears optional ones)."""
        _check(*self._task_problems(body, task.project_id, actor, creating=False, task=task))
        given = body.model_fields_set
        if body.task_title is not None:
            task.title = body.task_title.strip()
        if "description" in given:
            task.description = body.description
            task.mentioned = self.mentioned_in(body.description)
        if "start_date" in given:
            task.start = utc(body.start_date)
        if "due_date" in given:
            task.due = utc(body.due_date)
        if body.completion is not None:
            task.completion = body.completion
        if body.status is not None:
            task.status_id = self.status_by_label(task.project_id, body.status)
        if body.priority is not None:
            task.priority_id = self.priority_by_label(body.priority)
        if "owners" in given:
            task.owners = list(dict.fromkeys(body.owners or []))
        if "tags" in given:
            task.tags = list(dict.fromkeys(t.strip() for t in body.tags or []))
        if "parent_task_id" in given:
            task.parent_id = body.parent_task_id
        self._done_means_complete(task, body)
        task.modified_by = actor
        task.updated_at = self.now()
        return task

    def _done_means_complete(self, task: TaskRow, body: TaskWrite) -> None:
        # Astravue's board sets 100 % when a card reaches a done column, unless told otherwise.
        if body.status is not None and body.completion is None and self.is_done(task):
            task.completion = 100

    def delete_task(self, task: TaskRow) -> None:
        for sub in self.subtasks_of(task.task_id):
            self.delete_task(sub)
        for table in (self.comments, self.checklists, self.timers):
            for key in [k for k, row in table.items() if row.task_id == task.task_id]:
                del table[key]
        del self.tasks[task.task_id]

    # ------------------------------------------------------------ time tracking
    def running_timer(self, task_id: int, user_id: int) -> TimerRow | None:
        return next(
            (t for t in self.timers.values() if t.task_id == task_id and t.user_id == user_id and t.running), None
        )

    def _add_timer(
        self, task: TaskRow, user_id: int, start: datetime, end: datetime | None, body: TimerWrite
    ) -> TimerRow:
        row = TimerRow(
            self.next_id(self.timers, "timer"), task.task_id, user_id, start, end, bool(body.billable), body.notes
        )
        self.timers[row.timer_id] = row
        return row

    def start_timer(self, task: TaskRow, user_id: int, body: TimerWrite) -> TimerRow:
        running = self.running_timer(task.task_id, user_id)
        if running is not None:
            raise SandboxError(
                409, f"A timer is already running on task {task.task_id} (timer {running.timer_id}); stop it first"
            )
        now = self.now()
        start = utc(body.start_time) or now
        _check(("startTime", "must not be in the future") if start > now else None)
        return self._add_timer(task, user_id, start, None, body)

    def stop_timer(self, task: TaskRow, user_id: int, body: TimerWrite) -> TimerRow:
        timer = self.running_timer(task.task_id, user_id)
        if timer is None:
            raise SandboxError(409, f"No timer is running on task {task.task_id}")
        end = utc(body.end_time) or self.now()
        _check(("endTime", "must be after the timer's startTime") if end <= timer.start else None)
        timer.end = end
        self._apply_flags(timer, body)
        return timer

    def add_range(self, task: TaskRow, user_id: int, body: TimerWrite) -> TimerRow:
        start, end = utc(body.start_time), utc(body.end_time)
        _check(
            ("startTime", "is required") if start is None else None,
            ("endTime", "is required") if end is None else None,
            ("endTime", "must be after startTime") if start and end and end <= start else None,
        )
        assert start is not None
        return self._add_timer(task, user_id, start, end, body)

    def add_manual(self, task: TaskRow, user_id: int, body: TimerWrite) -> TimerRow:
        _check(self._hours_problem(body.hours, required=True))
        assert body.hours is not None
        length = timedelta(hours=body.hours)
        # Without a date, the hours are taken to end now ("I just spent two hours on it").
        start = utc(body.date) or utc(body.start_time) or self.now() - length
        return self._add_timer(task, user_id, start, start + length, body)

    def update_timer(self, timer: TimerRow, body: TimerWrite) -> TimerRow:
        given = body.model_fields_set
        start = utc(body.start_time) or timer.start
        end = utc(body.end_time) or timer.end
        _check(self._hours_problem(body.hours, required=False))
        if body.hours is not None:
            end = start + timedelta(hours=body.hours)
        _check(("endTime", "must be after startTime") if end is not None and end <= start else None)
        timer.start, timer.end = start, end
        if "billable" in given or "notes" in given:
            self._apply_flags(timer, body)
        return timer

    @staticmethod
    def _hours_problem(hours: float | None, required: bool) -> tuple[str, str] | None:
        if hours is None:
            return ("hours", "is required") if required else None
        if not 0 < hours <= MAX_MANUAL_HOURS:
            return ("hours", f"must be more than 0 and at most {MAX_MANUAL_HOURS:g} (got {hours:g})")
        return None

    @staticmethod
    def _apply_flags(timer: TimerRow, body: TimerWrite) -> None:
        if body.billable is not None:
            timer.billable = body.billable
        if "notes" in body.model_fields_set:
            timer.notes = body.notes

    def delete_timer(self, timer: TimerRow) -> None:
        del self.timers[timer.timer_id]

    # ------------------------------------------------------------ notifications
    def notifications_of(self, user_id: int, unread_only: bool = False) -> list[NotificationRow]:
        rows = [n for n in self.notifications.values() if n.user_id == user_id and not (unread_only and n.read)]
        return sorted(rows, key=lambda n: (n.created_at, n.notification_id), reverse=True)

    def _own_notifications(self, user_id: int, body: NotificationIds, allow_all: bool) -> list[NotificationRow]:
        if allow_all and body.all:
            return self.notifications_of(user_id)
        ids = body.notification_ids
        if not ids:
            hint = ' or "all": true' if allow_all else ""
            raise invalid(("notificationIds", f"give at least one notification id{hint}"))
        unknown = [i for i in ids if i not in self.notifications or self.notifications[i].user_id != user_id]
        if unknown:
            raise invalid(("notificationIds", f"unknown notification id(s): {', '.join(map(str, unknown))}"))
        return [self.notifications[i] for i in dict.fromkeys(ids)]

    def mark_read(self, user_id: int, body: NotificationIds) -> list[int]:
        rows = self._own_notifications(user_id, body, allow_all=True)
        changed = [n.notification_id for n in rows if not n.read]
        for n in rows:
            n.read = True
        return changed

    def delete_notifications(self, user_id: int, body: NotificationIds) -> list[int]:
        rows = self._own_notifications(user_id, body, allow_all=False)
        for n in rows:
            del self.notifications[n.notification_id]
        return [n.notification_id for n in rows]
