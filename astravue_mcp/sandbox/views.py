"""Rows to wire JSON, through the same models the client parses (``api/models.py``).

Answers carry the full nested objects the real API documents (owners and authors as complete
users with their role, status and priority objects with their creators), because the benchmark
measures how much our compact tool output saves against exactly this raw size.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from astravue_mcp.api.models import (
    ChecklistItem,
    Comment,
    Notification,
    Project,
    Space,
    Task,
    TimeEntry,
    TimesheetSummary,
)
from astravue_mcp.sandbox.records import (
    ChecklistRow,
    CommentRow,
    NotificationRow,
    ProjectRow,
    SpaceRow,
    TaskRow,
    TimerRow,
)
from astravue_mcp.sandbox.store import Store


def space(store: Store, row: SpaceRow) -> dict[str, Any]:
    return Space(
        tenant_id=store.tenant_id,
        space_id=row.space_id,
        space_name=row.name,
        description=row.description,
        color=row.color,
        created_by=store.user(row.created_by),
        created_at=row.created_at,
    ).wire()


def project(store: Store, row: ProjectRow) -> dict[str, Any]:
    return Project(
        tenant_id=store.tenant_id,
        project_id=row.project_id,
        space_id=row.space_id,
        project_name=row.name,
        description=row.description,
        status=row.status,
        priority=row.priority,
        health=row.health,
        start_date=row.start,
        due_date=row.due,
        owner=store.user(row.owner_id),
        created_by=store.user(row.created_by),
        task_count=store.task_count(row),
    ).wire()


def task(store: Store, row: TaskRow) -> dict[str, Any]:
    return Task(
        tenant_id=store.tenant_id,
        task_id=row.task_id,
        task_title=row.title,
        description=row.description,
        description_mentioned_user_ids=row.mentioned,
        start_date=row.start,
        due_date=row.due,
        completion=row.completion,
        priority=store.priorities[row.priority_id],
        status=store.statuses[row.status_id],
        owners=[store.user(u) for u in row.owners],
        tags=row.tags,
        project_id=row.project_id,
        space_id=row.space_id,
        parent_task_id=row.parent_id,
        created_by=store.user(row.created_by),
        modified_by=store.user(row.modified_by),
        update_time=row.updated_at,
    ).wire()


def comment(store: Store, row: CommentRow) -> dict[str, Any]:
    return Comment(
        comment_id=row.comment_id,
        task_id=row.task_id,
        comment=row.text,
        created_by=store.user(row.user_id),
        created_at=row.created_at,
    ).wire()


def checklist(_: Store, row: ChecklistRow) -> dict[str, Any]:
    return ChecklistItem(
        checklist_id=row.checklist_id, task_id=row.task_id, title=row.title, completed=row.completed
    ).wire()


def timer(store: Store, row: TimerRow, now: datetime | None = None) -> dict[str, Any]:
    owner = store.tasks.get(row.task_id)
    return TimeEntry(
        time_tracker_id=row.timer_id,
        task_id=row.task_id,
        project_id=owner.project_id if owner else None,
        task_title=owner.title if owner else None,
        user=store.user(row.user_id),
        start_time=row.start,
        end_time=row.end,
        duration=row.duration_ms(now or store.now()),
        billable=row.billable,
        notes=row.notes,
        running=row.running,
    ).wire()


def notification(store: Store, row: NotificationRow) -> dict[str, Any]:
    return Notification(
        notification_id=row.notification_id,
        message=row.message,
        type=row.type,
        read=row.read,
        mention=row.mention,
        task_id=row.task_id,
        created_at=row.created_at,
        actor=store.user(row.actor_id) if row.actor_id is not None else None,
    ).wire()


def totals(rows: list[TimerRow], project_id: int | None = None) -> dict[str, Any]:
    """Totals of finished entries only: a running timer has no duration yet."""
    done = [r for r in rows if not r.running]
    billable = sum(r.duration_ms(r.end) for r in done if r.billable and r.end)
    total = sum(r.duration_ms(r.end) for r in done if r.end)
    return TimesheetSummary(
        project_id=project_id,
        total_duration=total,
        billable_duration=billable,
        non_billable_duration=total - billable,
        entry_count=len(done),
    ).wire()
