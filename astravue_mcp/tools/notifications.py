"""Notifications and mentions of the calling user."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from astravue_mcp.api import endpoints, models
from astravue_mcp.errors import AstravueError
from astravue_mcp.tools.args import Id, Limit, PageNo
from astravue_mcp.tools.dates import moment
from astravue_mcp.tools.outputs import Deleted, ListOut, page_of_all
from astravue_mcp.tools.registry import Out, tool
from astravue_mcp.tools.request import api, confirm

MAX_IDS = 100
NotificationIdList = Annotated[
    list[Annotated[int, Field(ge=1, strict=True), Id]],
    Field(min_length=1, max_length=MAX_IDS, description=f"Notification ids (at most {MAX_IDS})"),
]


class NotificationOut(Out):
    id: int
    message: str
    type: str | None = None
    read: bool
    mention: bool | None = None
    task_id: int | None = None
    date: str | None = None
    actor: str | None = None


def notification_out(n: models.Notification) -> NotificationOut:
    return NotificationOut(
        id=n.notification_id,
        message=n.message,
        type=n.type,
        read=n.read,
        mention=True if n.mention else None,
        task_id=n.task_id,
        date=moment(n.created_at),
        actor=n.actor.name if n.actor else None,
    )


class MarkedRead(Out):
    marked_read: list[int] = Field(description="Ids that were unread and are now read")


@tool("notifications", "List notifications", "read")
async def list_notifications(
    ctx: Context,
    unread_only: Annotated[bool, Field(description="false to include read ones")] = True,
    page: PageNo = 1,
    limit: Limit = 25,
) -> ListOut[NotificationOut]:
    """Your notifications and mentions, newest first; unread only unless unread_only=false."""
    data = await api(ctx).call("list_notifications", params={endpoints.NOTIFICATION_UNREAD: unread_only})
    found = [notification_out(models.Notification.model_validate(n)) for n in models.page_of(data).items]
    return page_of_all(found, page, limit)


@tool("notifications", "Mark notifications read", "update", changes=("astravue://notifications/unread",))
async def mark_notification_read(
    ctx: Context,
    ids: Annotated[NotificationIdList | None, Field(description="Notification ids")] = None,
    all: Annotated[bool, Field(description="Mark all read")] = False,
) -> MarkedRead:
    """Mark notifications read: give ids, or all=true for every one."""
    if bool(ids) == all:
        raise AstravueError("Invalid arguments for astravue_mark_notification_read: give either ids or all=true.")
    body = models.NotificationIds(notification_ids=ids or [], all=True if all else None).wire()
    data = await api(ctx).call("mark_notifications_read", body=body)
    return MarkedRead(marked_read=models.NotificationIds.model_validate(data or {}).notification_ids)


@tool("notifications", "Delete notifications", "delete", changes=("astravue://notifications/unread",))
async def delete_notifications(ctx: Context, ids: NotificationIdList) -> Deleted:
    """Delete notifications by id (at most 100). Cannot be undone."""
    listed = ", ".join(map(str, ids))
    await confirm(ctx, f"delete notification(s) {listed}")
    await api(ctx).call("delete_notifications", body=models.NotificationIds(notification_ids=ids).wire())
    return Deleted(deleted=f"notification(s) {listed}")
