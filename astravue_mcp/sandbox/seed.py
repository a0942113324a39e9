"""Load ``seed.json`` (package data) into a :class:`Store`.

The seed stores dates as day offsets from today (UTC midnight, like the API's own examples) and
times as hours ago, so overdue and due-this-week tasks exist whatever day the sandbox runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Protocol

from astravue_mcp.api.models import OrgRole, Priority, Status, User
from astravue_mcp.sandbox.records import (
    ChecklistRow,
    CommentRow,
    NotificationRow,
    ProjectRow,
    SpaceRow,
    TaskRow,
    TimerRow,
)


class Store(Protocol):
    """What the seed fills: the tables of ``store.Store`` and the label look-ups it resolves through."""

    tenant_id: int
    current_user_id: int
    users: dict[int, User]
    statuses: dict[int, Status]
    personal_status_ids: list[int]
    default_statuses: list[dict[str, Any]]
    priorities: dict[int, Priority]
    spaces: dict[int, SpaceRow]
    projects: dict[int, ProjectRow]
    tasks: dict[int, TaskRow]
    comments: dict[int, CommentRow]
    checklists: dict[int, ChecklistRow]
    timers: dict[int, TimerRow]
    notifications: dict[int, NotificationRow]

    def add_statuses(self, definitions: Any, project: ProjectRow | None) -> list[int]: ...
    def status_by_label(self, project_id: int | None, label: str, field: str = "status") -> int: ...
    def priority_by_label(self, label: str, field: str = "priority") -> int: ...


@cache
def seed_data() -> dict[str, Any]:
    return json.loads(resources.files("astravue_mcp.sandbox").joinpath("seed.json").read_text(encoding="utf-8"))


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.replace(microsecond=0)
        self.today = datetime(now.year, now.month, now.day, tzinfo=UTC)

    def day(self, offset: int | None) -> datetime | None:
        return None if offset is None else self.today + timedelta(days=offset)

    def hours_ago(self, hours: float) -> datetime:
        return self.now - timedelta(hours=hours)


def load_seed(store: Store, now: datetime) -> None:
    data = seed_data()
    clock = _Clock(now)
    store.tenant_id = data["tenantId"]
    store.current_user_id = data["currentUserId"]
    _users(store, data, clock)
    _labels(store, data)
    _spaces_and_projects(store, data, clock)
    _tasks(store, data, clock)
    _collaboration(store, data, clock)


def _users(store: Store, data: dict[str, Any], clock: _Clock) -> None:
    roles = {r["orgRoleId"]: OrgRole.model_validate(r) for r in data["roles"]}
    for u in data["users"]:
        store.users[u["userId"]] = User(
            user_id=u["userId"],
            first_name=u["firstName"],
            last_name=u["lastName"],
            email=u["email"],
            profile_pic_url="",
            profile_pic_name=(u["firstName"][0] + u["lastName"][0]).upper(),
            profile_pic_color=u["color"],
            provider="keycloak",
            new_user=False,
            is_tour_completed=True,
            about=u.get("about"),
            update_time=clock.day(-30),
            expiry_date=clock.day(365),
            status="ACTIVE",
            role=roles[u["roleId"]],
        )


def _labels(store: Store, data: dict[str, Any]) -> None:
    admin = store.users[store.current_user_id]
    for position, p in enumerate(data["priorities"], start=1):
        store.priorities[position] = Priority(
            tenant_id=store.tenant_id,
            task_priority_id=position,
            priority_label=p["label"],
            color=p["color"],
            created_by=admin,
            modified_by=admin,
            default=bool(p.get("default")),
            primary=True,
        )
    store.default_statuses = data["statuses"]
    store.personal_status_ids = store.add_statuses(data["statuses"], None)


def _spaces_and_projects(store: Store, data: dict[str, Any], clock: _Clock) -> None:
    for s in data["spaces"]:
        store.spaces[s["id"]] = SpaceRow(
            s["id"],
            s["name"],
            s.get("description"),
            s.get("color"),
            s["createdBy"],
            clock.day(s["createdDay"]) or clock.now,
        )
    for p in data["projects"]:
        row = ProjectRow(
            p["id"],
            p["spaceId"],
            p["name"],
            p.get("description"),
            p.get("status"),
            p.get("priority"),
            p.get("health"),
            clock.day(p.get("startDay")),
            clock.day(p.get("dueDay")),
            p["ownerId"],
            p["ownerId"],
            clock.day((p.get("startDay") or 0) - 7) or clock.now,
        )
        statuses = list(data["statuses"])
        for extra in p.get("extraStatuses", []):
            after = next(i for i, s in enumerate(statuses) if s["name"] == extra["after"])
            statuses.insert(after + 1, extra)
        row.status_ids = store.add_statuses(statuses, row)
        store.projects[row.project_id] = row


def _tasks(store: Store, data: dict[str, Any], clock: _Clock) -> None:
    for t in data["tasks"]:
        project_id = t.get("projectId")
        project = store.projects[project_id] if project_id is not None else None
        start = clock.day(t.get("startDay"))
        updated = clock.hours_ago(t["updatedHoursAgo"])
        store.tasks[t["id"]] = TaskRow(
            task_id=t["id"],
            title=t["title"],
            project_id=project_id,
            space_id=project.space_id if project else None,
            parent_id=t.get("parentTaskId"),
            status_id=store.status_by_label(project_id, t["status"]),
            priority_id=store.priority_by_label(t["priority"]),
            owners=list(t["owners"]),
            tags=list(t["tags"]),
            start=start,
            due=clock.day(t.get("dueDay")),
            completion=t["completion"],
            description=t.get("description"),
            mentioned=list(t.get("mentions", [])),
            created_by=t["createdBy"],
            modified_by=t["createdBy"],
            created_at=min(start or updated, updated) - timedelta(days=2),
            updated_at=updated,
        )


def _collaboration(store: Store, data: dict[str, Any], clock: _Clock) -> None:
    for c in data["checklists"]:
        store.checklists[c["id"]] = ChecklistRow(c["id"], c["taskId"], c["title"], c["completed"])
    for c in data["comments"]:
        when = clock.hours_ago(c["hoursAgo"])
        store.comments[c["id"]] = CommentRow(c["id"], c["taskId"], c["userId"], c["text"], when)
    for e in data["timeEntries"]:
        if "runningMinutes" in e:
            start, end = clock.now - timedelta(minutes=e["runningMinutes"]), None
        else:
            start = clock.today + timedelta(days=e["day"], hours=e["startHour"])
            end = start + timedelta(minutes=e["minutes"])
        store.timers[e["id"]] = TimerRow(e["id"], e["taskId"], e["userId"], start, end, e["billable"], e.get("notes"))
    for n in data["notifications"]:
        store.notifications[n["id"]] = NotificationRow(
            n["id"],
            n["userId"],
            n["type"],
            n["message"],
            n.get("taskId"),
            n.get("actorId"),
            n["read"],
            n["mention"],
            clock.hours_ago(n["hoursAgo"]),
        )
