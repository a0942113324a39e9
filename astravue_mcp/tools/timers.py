"""Time tracking: timers, manual and range entries, timesheets.

The API counts durations in milliseconds; every output here speaks minutes (and hours in
totals), because a model misreads 5400000 far more often than 90. Timer writes exist for
project tasks (``/time-track/projects/{projectId}/tasks/...``) and personal tasks; one tool
serves both, choosing by whether ``project_id`` is given.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field, PlainSerializer

from astravue_mcp.api import endpoints, models
from astravue_mcp.errors import ApiError, InvalidArguments
from astravue_mcp.tools.args import Id, Limit, PageNo, ProjectId, TaskId, UserRef, When
from astravue_mcp.tools.dates import moment
from astravue_mcp.tools.directory import owner_filter
from astravue_mcp.tools.durations import is_running, ms_to_hours, ms_to_minutes
from astravue_mcp.tools.outputs import Deleted, ListOut, listing, slice_page
from astravue_mcp.tools.registry import Out, tool
from astravue_mcp.tools.request import api, confirm
from astravue_mcp.tools.scope import find_task, known

# ---------------------------------------------------------------- arguments
EntryId = Annotated[int, Field(ge=1, strict=True, description="Time entry id"), Id]
TaskProject = Annotated[int | None, Field(ge=1, strict=True, description="Project id (optional)")]
Billable = Annotated[bool | None, Field(description="Billable? Omit unless told")]
Notes = Annotated[str | None, Field(max_length=2000, description="What was done")]
Day = Annotated[dt.date, Field(description="YYYY-MM-DD, inclusive")]
UserId = Annotated[UserRef | None, Field(description='Only this user: id, name, email or "me"')]
Moment = Annotated[When, Field(description="ISO 8601, UTC by default")]


def _invalid(tool_name: str, problem: str) -> InvalidArguments:
    """Same wording as the server's own argument errors, so a model reacts the same way."""
    return InvalidArguments(f"Invalid arguments for astravue_{tool_name}: {problem}.")


# ---------------------------------------------------------------- outputs
def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


# Whole minutes go out as integers (90, not 90.0); the schema still says "number".
Minutes = Annotated[float, PlainSerializer(_number)]


class EntryOut(Out):
    id: int
    task_id: int | None = None
    task: str | None = None
    start: str | None = None
    end: str | None = None
    minutes: Minutes | None = None
    billable: bool | None = None
    notes: str | None = None
    running: bool | None = None
    user: str | None = None


def entry_out(entry: models.TimeEntry) -> EntryOut:
    return EntryOut(
        id=entry.time_tracker_id,
        task_id=entry.task_id,
        task=entry.task_title,
        start=moment(entry.start_time),
        end=moment(entry.end_time),
        minutes=ms_to_minutes(entry.duration) if entry.duration is not None else None,
        billable=entry.billable,
        notes=entry.notes or None,
        running=True if is_running(entry) else None,
        user=entry.user.name if entry.user else None,
    )


class TimesheetOut(ListOut[EntryOut]):
    total_minutes: Minutes
    billable_minutes: Minutes
    total_hours: float

    def text(self) -> str:
        head = f"{_number(self.total_minutes)} min ({self.total_hours} h), {_number(self.billable_minutes)} billable"
        return head + "\n" + super().text()


class SummaryOut(Out):
    project_id: int
    total_minutes: Minutes
    billable_minutes: Minutes
    non_billable_minutes: Minutes
    total_hours: float
    entries: int | None = None


# ---------------------------------------------------------------- shared calls
def _entry(data: Any) -> EntryOut:
    return entry_out(models.TimeEntry.model_validate(data))


# Timer writes that exist in a personal and a project variant: (personal, project) operation.
_TASK_OPS = {
    "start": ("start_personal_task_timer", "start_project_task_timer"),
    "manual": ("add_personal_task_manual_time", "add_project_task_manual_time"),
    "range": ("add_personal_task_time_range", "add_project_task_time_range"),
}


async def _write_on_task(
    ctx: Context, kind: str, task_id: int, project_id: int | None, body: dict[str, Any]
) -> EntryOut:
    personal, project = _TASK_OPS[kind]
    if project_id is None and known(ctx, task_id):  # seen this session: no need to try the personal path first
        project_id = (await find_task(ctx, task_id))[0].project_id
    if project_id is None:
        operation, ids = personal, {"taskId": task_id}
    else:
        operation, ids = project, {"projectId": project_id, "taskId": task_id}
    try:
        return _entry(await api(ctx).call(operation, ids, body=body))
    except ApiError as exc:
        if exc.status != 404 or project_id is not None:
            raise
    # Not a personal task (a 404 created nothing): find the project it lives in, and write there.
    ref, _ = await find_task(ctx, task_id)
    if ref.project_id is None:
        raise ApiError(f"Task {task_id} was not found among your personal tasks nor in any project.", 404, operation)
    return _entry(await api(ctx).call(project, {"projectId": ref.project_id, "taskId": task_id}, body=body))


def _said(exc: ApiError) -> str:
    """The API's own reason, without our "Astravue refused to ..." framing."""
    return (exc.api_message or exc.message.split(": ", 1)[-1]).rstrip(".")


async def _entries(ctx: Context, operation: str, ids: dict[str, int], params: dict[str, Any]) -> list[models.TimeEntry]:
    data = await api(ctx).call(operation, ids, params=params)
    return [models.TimeEntry.model_validate(e) for e in models.page_of(data).items]


def _range(tool_name: str, start: dt.date | None, end: dt.date | None, user_id: int | None = None) -> dict[str, Any]:
    if start and end and end < start:
        raise _invalid(tool_name, "end: must not be before start")
    keys = endpoints.TIMESHEET_RANGE
    return {
        keys["start"]: start.isoformat() if start else None,
        keys["end"]: end.isoformat() if end else None,
        keys["user"]: user_id,
    }


def timesheet(entries: list[models.TimeEntry], page: int, limit: int) -> TimesheetOut:
    """Totals over every finished entry (the API's own summary rule), then one page, newest first."""
    done = [e for e in entries if not is_running(e)]
    total = sum(e.duration or 0 for e in done)
    billable = sum(e.duration or 0 for e in done if e.billable)
    # Newest first: when the list is capped, the recent entries are the ones a person asks about.
    ordered = sorted(entries, key=lambda e: (moment(e.start_time) or "", e.time_tracker_id), reverse=True)
    items, count, more = slice_page(ordered, page, limit)
    base = listing([entry_out(e) for e in items], page, limit, count, more)
    return TimesheetOut(
        items=base.items,
        total=base.total,
        next_page=base.next_page,
        total_minutes=ms_to_minutes(total),
        billable_minutes=ms_to_minutes(billable),
        total_hours=ms_to_hours(total),
    )


# ---------------------------------------------------------------- timers
@tool("time", "Start timer", "create", changes=("astravue://timers/active",), idempotent=True)
async def start_timer(
    ctx: Context, task_id: TaskId, project_id: TaskProject = None, billable: Billable = None, notes: Notes = None
) -> EntryOut:
    """Start a timer on a task; stop it with astravue_stop_timer."""
    body = models.TimerWrite(billable=billable, notes=notes).wire()
    try:
        return await _write_on_task(ctx, "start", task_id, project_id, body)
    except ApiError as exc:
        if exc.status == 409:
            raise ApiError(
                f"Timer not started: {_said(exc)}. Stop the running one with astravue_stop_timer "
                "(astravue_get_active_timers lists them).",
                exc.status,
                exc.operation,
            ) from None
        raise


@tool("time", "Stop timer", "update", changes=("astravue://timers/active",), destructive=False)
async def stop_timer(ctx: Context, task_id: TaskId) -> EntryOut:
    """Stop your running timer on a task; returns the finished entry with its minutes."""
    try:
        return _entry(await api(ctx).call("stop_timer", {"taskId": task_id}, body={}))
    except ApiError as exc:
        if exc.status == 409:
            raise ApiError(
                f"Nothing stopped: {_said(exc)}. astravue_get_active_timers lists your running timers.",
                exc.status,
                exc.operation,
            ) from None
        raise


@tool("time", "Active timers", "read")
async def get_active_timers(ctx: Context) -> ListOut[EntryOut]:
    """Your running timers (task, start, minutes so far)."""
    running = [entry_out(e) for e in await _entries(ctx, "list_active_timers", {}, {})]
    # Few by nature (one per task at most), so never paged.
    return ListOut[EntryOut](items=running, total=len(running))


# ---------------------------------------------------------------- logging time
@tool("time", "Log time", "create")
async def log_manual_time(
    ctx: Context,
    task_id: TaskId,
    project_id: TaskProject = None,
    hours: Annotated[float | None, Field(gt=0, le=24, description="Hours, e.g. 1.5")] = None,
    minutes: Annotated[int | None, Field(ge=1, le=1440, description="Or minutes")] = None,
    date: Annotated[When | None, Field(description="Start or day; default: ending now")] = None,
    billable: Billable = None,
    notes: Notes = None,
) -> EntryOut:
    """Log hours or minutes worked on a task; for clock times use astravue_log_time_range."""
    if (hours is None) == (minutes is None):
        raise _invalid("log_manual_time", "give exactly one of hours or minutes")
    length = hours if hours is not None else minutes / 60  # type: ignore[operator]
    body = models.TimerWrite(hours=length, date=date, billable=billable, notes=notes).wire()
    return await _write_on_task(ctx, "manual", task_id, project_id, body)


@tool("time", "Log time range", "create")
async def log_time_range(
    ctx: Context,
    task_id: TaskId,
    start: Moment,
    end: Moment,
    project_id: TaskProject = None,
    billable: Billable = None,
    notes: Notes = None,
) -> EntryOut:
    """Log work between two clock times on a task (with the user's UTC offset)."""
    if end <= start:
        raise _invalid("log_time_range", "end: must be after start")
    body = models.TimerWrite(start_time=start, end_time=end, billable=billable, notes=notes).wire()
    return await _write_on_task(ctx, "range", task_id, project_id, body)


@tool("time", "Update time entry", "update")
async def update_time_entry(
    ctx: Context,
    entry_id: EntryId,
    start: Moment | None = None,
    end: Moment | None = None,
    billable: Billable = None,
    notes: Notes = None,
) -> EntryOut:
    """Change a time entry's start, end, billable flag or notes; omitted fields stay."""
    if start is None and end is None and billable is None and notes is None:
        raise _invalid("update_time_entry", "give at least one of start, end, billable, notes")
    if start and end and end <= start:
        raise _invalid("update_time_entry", "end: must be after start")
    body = models.TimerWrite(start_time=start, end_time=end, billable=billable, notes=notes).wire()
    return _entry(await api(ctx).call("update_timer", {"timerId": entry_id}, body=body))


@tool("time", "Delete time entry", "delete")
async def delete_time_entry(ctx: Context, entry_id: EntryId) -> Deleted:
    """Delete a time entry. Cannot be undone."""
    await confirm(ctx, f"delete time entry {entry_id}")
    await api(ctx).call("delete_timer_entry", {"timerId": entry_id})
    return Deleted(deleted=f"time entry {entry_id}")


# ---------------------------------------------------------------- reports
@tool("time", "Task time entries", "read")
async def get_task_time_entries(ctx: Context, task_id: TaskId, page: PageNo = 1, limit: Limit = 25) -> TimesheetOut:
    """Your time entries on one task, newest first, with total and billable minutes."""
    entries = await _entries(ctx, "list_task_timers", {"taskId": task_id}, {})
    return timesheet(entries, page, limit)


@tool("time", "Timesheet report", "read")
async def get_timesheet_report(
    ctx: Context, start: Day, end: Day, user_id: UserId = None, page: PageNo = 1, limit: Limit = 25
) -> TimesheetOut:
    """Time entries between two dates (everyone's or one user's), newest first, with totals."""
    user = await owner_filter(ctx, user_id)
    entries = await _entries(ctx, "get_global_timesheet_report", {}, _range("get_timesheet_report", start, end, user))
    return timesheet(entries, page, limit)


@tool("time", "Project time entries", "read")
async def get_project_time_entries(
    ctx: Context,
    project_id: ProjectId,
    start: Day | None = None,
    end: Day | None = None,
    page: PageNo = 1,
    limit: Limit = 25,
) -> TimesheetOut:
    """A project's time entries (optionally between dates), newest first, with totals."""
    entries = await _entries(
        ctx, "get_project_timesheet", {"projectId": project_id}, _range("get_project_time_entries", start, end)
    )
    return timesheet(entries, page, limit)


@tool("time", "Project time summary", "read")
async def get_project_time_summary(
    ctx: Context, project_id: ProjectId, start: Day | None = None, end: Day | None = None
) -> SummaryOut:
    """A project's billable vs non-billable totals in minutes and hours (finished entries only)."""
    data = await api(ctx).call(
        "get_project_timesheet_summary",
        {"projectId": project_id},
        params=_range("get_project_time_summary", start, end),
    )
    summary = models.TimesheetSummary.model_validate(data)
    return SummaryOut(
        project_id=summary.project_id or project_id,
        total_minutes=ms_to_minutes(summary.total_duration),
        billable_minutes=ms_to_minutes(summary.billable_duration),
        non_billable_minutes=ms_to_minutes(summary.non_billable_duration),
        total_hours=ms_to_hours(summary.total_duration),
        entries=summary.entry_count,
    )
