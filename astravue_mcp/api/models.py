"""Wire models: every JSON field name the Astravue API uses, in one file.

Reading is tolerant: unknown fields are kept, missing optional fields are fine, and where the
reference only guesses a name, the likely alternatives are accepted too (``AliasChoices``: the
first name is the one we write). Writing uses the first alias. The embedded sandbox serialises
these same models, so a corrected field name here changes both sides at once.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator

from astravue_mcp.api.moments import in_utc
from astravue_mcp.errors import UnexpectedAnswer


def _f(*names: str, default: Any = None) -> Any:
    """A field read from any of ``names`` and written as the first; ``default=...`` makes it required."""
    return Field(default, validation_alias=AliasChoices(*names), serialization_alias=names[0])


Moment = Annotated[datetime, AfterValidator(in_utc)]
"""Every date-time on the wire: timezone-aware, in UTC."""


class Wire(BaseModel):
    # defer_build: the wire models are first needed by the first API answer, not to start and list tools.
    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True, defer_build=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body for a request (or, in the sandbox, a response)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------- envelope
ENVELOPE_DATA = "data"
ENVELOPE_MESSAGE = "message"
ENVELOPE_SUCCESS = "success"
ENVELOPE_CODE = "code"
ERROR_LIST = ("errors", "fieldErrors")


class FieldError(Wire):
    field: str = _f("field", "name", default="?")
    message: str = _f("message", "defaultMessage", "error", default="invalid")


# ---------------------------------------------------------------- people, labels
class OrgRole(Wire):
    org_role_id: int | None = _f("orgRoleId")
    role_name: str | None = _f("roleName")


class User(Wire):
    user_id: int = _f("userId", "id", default=...)
    first_name: str | None = _f("firstName")
    last_name: str | None = _f("lastName")
    email: str | None = _f("email")
    profile_pic_url: str | None = _f("profilePicURL")
    profile_pic_name: str | None = _f("profilePicName")
    profile_pic_color: str | None = _f("profilePicColor")
    provider: str | None = _f("provider")
    new_user: bool | None = _f("newUser")
    is_tour_completed: bool | None = _f("isTourCompleted")
    about: str | None = _f("about")
    update_time: Moment | None = _f("updateTime")
    expiry_date: Moment | None = _f("expiryDate")
    status: str | None = _f("status")
    role: OrgRole | None = _f("role")

    @property
    def name(self) -> str:
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        return full or self.email or f"user {self.user_id}"


Audit = Any
"""Who created or last changed a record: carried through as sent, never parsed. No tool reads it, and
validating these nested users cost more than the rest of a task (a task embeds five of them)."""


class Priority(Wire):
    tenant_id: int | None = _f("tenantId")
    task_priority_id: int | None = _f("taskPriorityId", "id")
    priority_label: str = _f("priorityLabel", "label", "name", default="")
    color: str | None = _f("color")
    created_by: Audit = _f("createdBy")
    modified_by: Audit = _f("modifiedBy")
    default: bool | None = _f("default")
    primary: bool | None = _f("primary")


class Status(Wire):
    tenant_id: int | None = _f("tenantId")
    task_status_id: int | None = _f("taskStatusId", "id")
    status_name: str = _f("statusName", "name", "label", default="")
    color: str | None = _f("color")
    status_category: str | None = _f("statusCategory", "category")
    project_id: int | None = _f("projectId")
    space_id: int | None = _f("spaceId")
    created_by: Audit = _f("createdBy")


def _label(value: Any, key: str) -> Any:
    """Statuses and priorities are written as labels but read as objects; accept both."""
    return {key: value} if isinstance(value, str) else value


# ---------------------------------------------------------------- spaces and projects
class Space(Wire):
    tenant_id: int | None = _f("tenantId")
    space_id: int = _f("spaceId", "id", default=...)
    space_name: str = _f("spaceName", "name", "title", default="")
    description: str | None = _f("description")
    color: str | None = _f("color")
    created_by: Audit = _f("createdBy")
    created_at: Moment | None = _f("createdAt", "createTime")


class SpaceWrite(Wire):
    space_name: str | None = _f("spaceName")
    description: str | None = _f("description")
    color: str | None = _f("color")


class Project(Wire):
    tenant_id: int | None = _f("tenantId")
    project_id: int = _f("projectId", "id", default=...)
    space_id: int | None = _f("spaceId")
    project_name: str = _f("projectName", "name", "title", default="")
    description: str | None = _f("description")
    status: str | None = _f("status", "projectStatus")
    priority: str | None = _f("priority", "projectPriority")
    health: str | None = _f("health", "projectHealth")
    start_date: Moment | None = _f("startDate")
    due_date: Moment | None = _f("dueDate", "endDate")
    owner: User | None = _f("owner", "projectOwner")
    created_by: Audit = _f("createdBy")
    task_count: int | None = _f("taskCount")


class ProjectWrite(Wire):
    project_name: str | None = _f("projectName")
    description: str | None = _f("description")
    status: str | None = _f("status")
    priority: str | None = _f("priority")
    health: str | None = _f("health")
    start_date: Moment | None = _f("startDate")
    due_date: Moment | None = _f("dueDate")


# ---------------------------------------------------------------- tasks
class Task(Wire):
    tenant_id: int | None = _f("tenantId")
    task_id: int = _f("taskId", "id", default=...)
    task_title: str = _f("taskTitle", "title", "name", default="")
    description: str | None = _f("description")
    description_mentioned_user_ids: list[int] | None = _f("descriptionMentionedUserIds")
    start_date: Moment | None = _f("startDate")
    due_date: Moment | None = _f("dueDate")
    completion: int | None = _f("completion")
    priority: Priority | None = _f("priority")
    status: Status | None = _f("status")
    owners: list[User] | None = _f("owners", "assignees")
    tags: list[str] | None = _f("tags")
    project_id: int | None = _f("projectId")
    space_id: int | None = _f("spaceId")
    parent_task_id: int | None = _f("parentTaskId", "parentId")
    created_by: Audit = _f("createdBy")
    modified_by: Audit = _f("modifiedBy")
    update_time: Moment | None = _f("updateTime", "updatedAt")

    @field_validator("status", mode="before")
    @classmethod
    def _status_label(cls, value: Any) -> Any:
        return _label(value, "statusName")

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_label(cls, value: Any) -> Any:
        return _label(value, "priorityLabel")

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> Any:
        return [_tag_name(t) for t in value] if isinstance(value, list) else value


def _tag_name(tag: Any) -> Any:
    """Tags are written as names; an answer may carry tag objects instead."""
    return tag.get("tagName") or tag.get("name", "") if isinstance(tag, dict) else tag


def searchable_text(raw: Any) -> str:
    """Title, description and tag names of a task as the API sent it, read by the same names as ``Task``.

    Lets a keyword search skip validating the tasks that cannot match (most of them).
    """
    if not isinstance(raw, dict):
        return ""
    parts: list[str] = []
    for names in _searched_names():
        value = None
        for name in names:
            if name in raw:
                value = raw[name]
                break
        if isinstance(value, list):
            parts.extend(str(_tag_name(t)) for t in value)
        elif value:
            parts.append(str(value))
    return " ".join(parts)


@cache
def _searched_names() -> tuple[tuple[str, ...], ...]:
    """The JSON names ``Task`` accepts for each searched field (read once: this runs per raw task)."""
    names = []
    for field in ("task_title", "description", "tags"):
        alias = Task.model_fields[field].validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [field]
        names.append(tuple(name for name in choices if isinstance(name, str)))
    return tuple(names)


class TaskWrite(Wire):
    """Body of create and update (personal and project tasks share it, per the reference)."""

    task_title: str | None = _f("taskTitle")
    description: str | None = _f("description")
    owners: list[int] | None = _f("owners")
    start_date: Moment | None = _f("startDate")
    due_date: Moment | None = _f("dueDate")
    completion: int | None = _f("completion")
    status: str | None = _f("status")
    priority: str | None = _f("priority")
    tags: list[str] | None = _f("tags")
    parent_task_id: int | None = _f("parentTaskId")


class Page(BaseModel):
    """A list answer, whether the API sent a bare list or a Spring-style page."""

    items: list[Any]
    total: int | None = None


PAGE_ITEMS = ("content", "items", "tasks", "projects", "spaces", "notifications", "entries", "data", "list")
PAGE_TOTAL = ("totalElements", "total", "totalCount", "totalItems", "count")


def page_of(data: Any) -> Page:
    if isinstance(data, list):
        return Page(items=data, total=len(data))
    if isinstance(data, dict):
        for key in PAGE_ITEMS:
            if isinstance(data.get(key), list):
                total = next((data[k] for k in PAGE_TOTAL if isinstance(data.get(k), int)), None)
                return Page(items=data[key], total=total)
    raise UnexpectedAnswer(
        f"Astravue's answer had an unexpected shape (a list was expected, got {type(data).__name__}). "
        "Run `astravue-mcp doctor`."
    )


# ---------------------------------------------------------------- collaboration
class Comment(Wire):
    comment_id: int = _f("commentId", "taskCommentId", "id", default=...)
    task_id: int | None = _f("taskId")
    comment: str = _f("comment", "content", "text", "message", default="")
    created_by: User | None = _f("createdBy", "user", "author")
    created_at: Moment | None = _f("createdAt", "createTime", "createdDate")


class ChecklistItem(Wire):
    checklist_id: int = _f("checklistId", "taskCheckListId", "id", default=...)
    task_id: int | None = _f("taskId")
    title: str = _f("title", "checklistTitle", "name", "item", default="")
    completed: bool = _f("completed", "isCompleted", "checked", "done", default=False)


# ---------------------------------------------------------------- time tracking
class TimeEntry(Wire):
    """TimeTrackerDto. Durations are milliseconds, per Astravue's own MCP guide."""

    time_tracker_id: int = _f("timeTrackerId", "timerId", "id", default=...)
    task_id: int | None = _f("taskId")
    project_id: int | None = _f("projectId")
    task_title: str | None = _f("taskTitle")
    user: User | None = _f("user", "createdBy")
    start_time: Moment | None = _f("startTime", "startDate")
    end_time: Moment | None = _f("endTime", "endDate")
    duration: int | None = _f("duration", "durationMs", "timeSpent")
    billable: bool | None = _f("billable", "isBillable")
    notes: str | None = _f("notes", "note", "description")
    running: bool | None = _f("running", "isRunning", "active")


class TimerWrite(Wire):
    """TimerRequest / TimerUpdateRequest."""

    start_time: Moment | None = _f("startTime")
    end_time: Moment | None = _f("endTime")
    hours: float | None = _f("hours")
    date: Moment | None = _f("date")
    billable: bool | None = _f("billable")
    notes: str | None = _f("notes")


class TimesheetSummary(Wire):
    project_id: int | None = _f("projectId")
    total_duration: int = _f("totalDuration", "total", "totalTime", default=0)
    billable_duration: int = _f("billableDuration", "billable", "billableTime", default=0)
    non_billable_duration: int = _f("nonBillableDuration", "nonBillable", "nonBillableTime", default=0)
    entry_count: int | None = _f("entryCount", "entries")


# ---------------------------------------------------------------- notifications
class Notification(Wire):
    notification_id: int = _f("notificationId", "id", default=...)
    message: str = _f("message", "title", "content", default="")
    type: str | None = _f("type", "notificationType")
    read: bool = _f("read", "isRead", "seen", default=False)
    mention: bool | None = _f("mention", "isMention")
    task_id: int | None = _f("taskId")
    created_at: Moment | None = _f("createdAt", "createTime", "createdDate")
    actor: User | None = _f("actor", "createdBy", "fromUser")


class NotificationIds(Wire):
    notification_ids: list[int] = _f("notificationIds", "ids", default=[])
    all: bool | None = _f("all", "markAll")
