"""The sandbox's in-memory rows and the one error type its domain rules raise.

Rows hold ids, not nested objects: the full nested wire shape (owners as users with roles,
status and priority objects ...) is built on the way out (``views.py``), so a rename or a
status change shows up everywhere at once, as it would in a real database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class SandboxError(Exception):
    """An answer other than success: HTTP status, message and optional (field, message) pairs."""

    def __init__(self, status: int, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []


def not_found(kind: str, ident: int, scope: str = "") -> SandboxError:
    return SandboxError(404, f"{kind.capitalize()} {ident}{scope} was not found")


def invalid(*errors: tuple[str, str]) -> SandboxError:
    return SandboxError(400, "Validation failed", list(errors))


@dataclass
class SpaceRow:
    space_id: int
    name: str
    description: str | None
    color: str | None
    created_by: int
    created_at: datetime


@dataclass
class ProjectRow:
    project_id: int
    space_id: int
    name: str
    description: str | None
    status: str | None
    priority: str | None
    health: str | None
    start: datetime | None
    due: datetime | None
    owner_id: int
    created_by: int
    created_at: datetime
    status_ids: list[int] = field(default_factory=list)
    """This project's configured workflow, in board order."""


@dataclass
class TaskRow:
    task_id: int
    title: str
    project_id: int | None
    """None for a personal task."""
    space_id: int | None
    parent_id: int | None
    status_id: int
    priority_id: int
    owners: list[int]
    tags: list[str]
    start: datetime | None
    due: datetime | None
    completion: int
    description: str | None
    mentioned: list[int]
    created_by: int
    modified_by: int
    created_at: datetime
    updated_at: datetime


@dataclass
class CommentRow:
    comment_id: int
    task_id: int
    user_id: int
    text: str
    created_at: datetime


@dataclass
class ChecklistRow:
    checklist_id: int
    task_id: int
    title: str
    completed: bool


@dataclass
class TimerRow:
    timer_id: int
    task_id: int
    user_id: int
    start: datetime
    end: datetime | None
    """None while the timer runs."""
    billable: bool
    notes: str | None

    @property
    def running(self) -> bool:
        return self.end is None

    def duration_ms(self, now: datetime) -> int:
        return int(((self.end or now) - self.start).total_seconds() * 1000)


@dataclass
class NotificationRow:
    notification_id: int
    user_id: int
    type: str
    message: str
    task_id: int | None
    actor_id: int | None
    read: bool
    mention: bool
    created_at: datetime
