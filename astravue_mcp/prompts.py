"""Prompts: ready-made workflows that tell the model which tools to call and what to produce.

The fifteen workflows of Astravue's hosted server, under its names, written for this server's tool
names and arguments. Each text names the tools to call (tests check that every named tool exists)
and the shape of the answer, and stays short: it is spent on every use.
A prompt is published only when every tool its text names is (toolsets, allow-list, read-only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts import Prompt
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import Field

from astravue_mcp.errors import AstravueError, InvalidArguments
from astravue_mcp.resources import SUGGESTERS, within_limit
from astravue_mcp.state import state_of

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient

SpaceArg = Annotated[str | None, Field(description="Space id or name (optional)")]
ProjectArg = Annotated[str | None, Field(description="Project id or name (optional)")]
ProjectReq = Annotated[str, Field(description="Project id or name")]
SpaceReq = Annotated[str, Field(description="Space id or name")]
TaskArg = Annotated[str, Field(description="Task id")]
StartArg = Annotated[str | None, Field(description="First day, YYYY-MM-DD (default: 7 days ago)")]
EndArg = Annotated[str | None, Field(description="Last day, YYYY-MM-DD (default: today)")]


PROMPTS: list[Prompt] = []


def prompt(name: str, title: str, description: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Declare a prompt: its function renders the text from the prompt's arguments."""

    def decorator(fn: Callable[..., str]) -> Callable[..., str]:
        PROMPTS.append(Prompt.from_function(fn, name=name, title=title, description=description))
        return fn

    return decorator


def tools_named(p: Prompt) -> set[str]:
    """Every tool the prompt's text names, rendered once with placeholder arguments."""
    sample = {a.name: "1" for a in p.arguments or []}
    return set(re.findall(r"astravue_\w+", str(p.fn(**sample))))


def register(server: MCPServer[Any], tools: set[str]) -> None:
    """Publish the prompts whose tools are all among ``tools``, with a check of their arguments."""
    published = [p for p in PROMPTS if tools_named(p) <= tools]
    for p in published:
        server.add_prompt(p)
    server.middleware.append(ArgumentCheck({p.name: p for p in published}))


class ArgumentCheck:
    """Server middleware: a missing or unknown prompt argument is the caller's mistake, answered as
    an invalid-params error naming it (the SDK would answer a generic internal error); the values
    are then checked and names resolved to ids (:func:`normalise`) before the text is made."""

    def __init__(self, prompts: dict[str, Prompt]) -> None:
        self.prompts = prompts

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        if ctx.method == "prompts/get" and isinstance(ctx.params, Mapping):
            name, arguments = str(ctx.params.get("name")), ctx.params.get("arguments")
            self.check(name, arguments)
            if isinstance(arguments, dict) and arguments:
                request = Context(request_context=ctx)
                client = state_of(request).client_for(request)
                try:
                    # A name costs API calls (a scan of the spaces): under the call time limit, like a tool's.
                    checked = await within_limit(ctx, lambda: normalise(client, arguments), f"Prompt {name}: ")
                except InvalidArguments as exc:
                    raise MCPError(code=INVALID_PARAMS, message=f"Prompt {name}: {exc}") from None
                except AstravueError as exc:
                    raise MCPError(code=INTERNAL_ERROR, message=f"Prompt {name}: {exc}") from None
                return await call_next(replace(ctx, params={**ctx.params, "arguments": checked}))
        return await call_next(ctx)

    def check(self, name: str, arguments: Any) -> None:
        found = self.prompts.get(name)
        if found is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt {name!r}.")
        declared = found.arguments or []
        given = set(arguments or {}) if isinstance(arguments, dict) else set()
        missing = sorted(a.name for a in declared if a.required and a.name not in given)
        unknown = sorted(given - {a.name for a in declared})
        problems = [
            f"{label} {', '.join(names)}" for label, names in (("missing", missing), ("unknown", unknown)) if names
        ]
        if problems:
            raise MCPError(code=INVALID_PARAMS, message=f"Prompt {name}: {'; '.join(problems)}.")


# ---------------------------------------------------------------- the prompts, in the order they are listed


def _scope(space_id: str | None, project_id: str | None) -> tuple[str, str]:
    """(what the prompt is about, the scope arguments to pass to the tools)."""
    if project_id:
        return f"project {project_id} in space {space_id}", f" with space_id={space_id}, project_id={project_id}"
    if space_id:
        return f"space {space_id}", f" with space_id={space_id}"
    return "the whole workspace", ""


@prompt(name="daily_standup", title="Daily stand-up", description="My stand-up: done, today, blockers.")
def daily_standup() -> str:
    return (
        "Prepare my daily stand-up. Call astravue_list_scheduled_tasks and astravue_list_overdue_tasks with "
        'mine=true, and astravue_get_timesheet_report for yesterday and today with user_id="me". Three short '
        "sections: Done (time logged, tasks completed), Today (due soon or in progress), Blockers (overdue, or "
        "high priority without progress). One line per task with its id; no preamble."
    )


@prompt(
    name="project_status_report",
    title="Project status report",
    description="Status of one project, a space, or the whole workspace.",
)
def project_status_report(space_id: SpaceArg = None, project_id: ProjectArg = None) -> str:
    scope, args = _scope(space_id, project_id)
    return (
        f"Write a status report for {scope}. Call astravue_get_task_counts, astravue_list_overdue_tasks and "
        f"astravue_list_scheduled_tasks{args}. Report: health in one line (on track / at risk / off track, "
        "with the reason), progress (completed of total), risks (overdue tasks, most overdue first, with owners), "
        "next 7 days, and 1-3 recommended actions. Under 250 words."
    )


@prompt(
    name="weekly_team_digest",
    title="Weekly team digest",
    description="What the team finished, logged and faces next week.",
)
def weekly_team_digest(space_id: SpaceArg = None) -> str:
    scope, args = _scope(space_id, None)
    return (
        f"Write the weekly digest for {scope}. Call astravue_get_task_counts{args}, astravue_list_overdue_tasks"
        f"{args}, astravue_list_scheduled_tasks{args} and astravue_get_timesheet_report for the last 7 days. "
        "Sections: Highlights, Hours by person, Due next week, Overdue (with owners), one line each; under 300 "
        "words, no preamble."
    )


@prompt(name="task_breakdown", title="Task breakdown", description="Split a task into concrete subtasks.")
def task_breakdown(task_id: TaskArg) -> str:
    return (
        f"Break down task {task_id}. Call astravue_get_task (task_id={task_id}; it finds the task wherever it "
        "lives), astravue_list_subtasks and astravue_get_task_checklists for what exists already. Propose 3-8 "
        "subtasks, each a day or two of work: title, one-line outcome, owner, due date, order. Only after I "
        "confirm, create them with astravue_create_task (parent_task_id, the task's space_id and project_id) "
        "or, for a personal task, astravue_create_personal_task (parent_task_id)."
    )


@prompt(
    name="overdue_action_plan",
    title="Overdue action plan",
    description="A prioritised recovery plan for overdue tasks (mine, or everyone's).",
)
def overdue_action_plan(
    mine: Annotated[str | None, Field(description="'yes' for my tasks only (default: everyone's)")] = None,
) -> str:
    who = " with mine=true" if _yes(mine) else ""
    return (
        f"Call astravue_list_overdue_tasks{who} (limit 100). Group the tasks: do today (high/critical priority or "
        "most overdue), reschedule (propose a realistic date), delegate or drop. For each: id, title, days "
        "overdue, owner, action. Offer to apply the dates and owners with one astravue_bulk_update_tasks call, "
        "but change nothing before I agree."
    )


@prompt(name="sprint_planner", title="Sprint planner", description="Plan a two-week sprint towards a goal.")
def sprint_planner(
    sprint_goal: Annotated[str, Field(description="What the sprint should achieve")],
    space_id: SpaceArg = None,
) -> str:
    _, args = _scope(space_id, None)
    return (
        f"Plan a two-week sprint with this goal: {_one_line(sprint_goal)}\n"
        f"Call astravue_find_tasks with keywords from the goal{args}, astravue_list_overdue_tasks and "
        "astravue_list_scheduled_tasks (due_to in 14 days), and astravue_list_people. Pick the open tasks that "
        "serve the goal, most important first; flag overdue ones; balance owners and name anyone overloaded. "
        "Output: goal, table (id, title, owner, priority, due), what is left out and why. Only after I approve, "
        "apply with astravue_bulk_update_tasks and create missing tasks with astravue_bulk_create_tasks."
    )


@prompt(name="risk_assessment", title="Risk assessment", description="Delivery risks of a project or space.")
def risk_assessment(space_id: SpaceArg = None, project_id: ProjectArg = None) -> str:
    scope, args = _scope(space_id, project_id)
    return (
        f"Assess delivery risks for {scope}. Call astravue_get_task_counts{args}, astravue_list_overdue_tasks"
        f"{args} and astravue_find_tasks{args} with priority 'Critical', then 'High'. Rate each risk "
        "(likelihood x impact, low/medium/high) with the tasks behind it (ids, owners, days overdue), unowned "
        "critical work and single-owner bottlenecks. End with the top 3 mitigations."
    )


@prompt(
    name="time_tracking_report",
    title="Time tracking report",
    description="Where the time went: hours by project, task and person.",
)
def time_tracking_report(start: StartArg = None, end: EndArg = None) -> str:
    window = f"from {start or '7 days ago'} to {end or 'today'}"
    return (
        f"Report tracked time {window}. Call astravue_get_timesheet_report for that range and "
        "astravue_get_active_timers. Hours per project, per person and the top 5 tasks, billable vs "
        "non-billable; mention running timers and days without entries. Hours with one decimal; a short "
        "table, then two or three observations."
    )


@prompt(
    name="meeting_agenda_generator",
    title="Meeting agenda",
    description="An agenda for a project or team meeting from the open work.",
)
def meeting_agenda_generator(
    space_id: SpaceArg = None,
    project_id: ProjectArg = None,
    minutes: Annotated[str | None, Field(description="Meeting length in minutes (default 30)")] = None,
) -> str:
    scope, args = _scope(space_id, project_id)
    return (
        f"Draft a {minutes or 30}-minute meeting agenda for {scope}. Call astravue_list_overdue_tasks{args}, "
        f"astravue_list_scheduled_tasks{args} and astravue_find_tasks{args} with status 'In Review'. Timeboxed "
        "items: decisions needed, blockers (overdue, with owners), reviews, next week's deadlines; each with "
        "task ids and who presents. End with 'Actions' left blank."
    )


@prompt(
    name="retrospective_summary",
    title="Retrospective summary",
    description="What went well, what did not, and what to change.",
)
def retrospective_summary(space_id: SpaceArg = None, project_id: ProjectArg = None) -> str:
    scope, args = _scope(space_id, project_id)
    return (
        f"Summarise a retrospective for {scope}. Call astravue_find_tasks{args} with status 'Done', "
        f"astravue_list_overdue_tasks{args} and astravue_get_timesheet_report for the last 14 days. Sections: "
        "Went well (finished work, with ids), Did not go well (slipped or overdue, why it seems), Time (where "
        "hours went), and 3 concrete changes to try. Facts from the results only."
    )


@prompt(
    name="capacity_planning",
    title="Capacity planning",
    description="Who has room for more work over the next weeks.",
)
def capacity_planning(
    days: Annotated[str | None, Field(description="Planning window in days (default 14)")] = None,
) -> str:
    window = days or "14"
    return (
        f"Plan capacity for the next {window} days. Call astravue_list_people, astravue_list_scheduled_tasks "
        f"(due_to in {window} days, limit 200) and astravue_get_timesheet_report for the last 14 days. Per "
        "person: open tasks due, critical/high count, hours logged lately; mark over- and under-loaded people "
        "and suggest what to move (task ids). Assume 6 focused hours a day."
    )


@prompt(
    name="project_kickoff",
    title="Project kickoff",
    description="Set up a new project with a first task list.",
)
def project_kickoff(
    space_id: SpaceReq,
    project_name: Annotated[str, Field(description="Name of the new project")],
) -> str:
    return (
        f"Plan the kickoff of project {_one_line(project_name)!r} in space {space_id}. Ask me for the goal, "
        "deadline and team if unknown; check names with astravue_list_people. Propose: one-line goal, "
        "milestones with dates, 8-15 first tasks (title, owner, due, priority). After I approve, create it with "
        f"astravue_create_project (space_id={space_id}), then the tasks with astravue_bulk_create_tasks."
    )


@prompt(
    name="blockers_escalation",
    title="Blockers escalation",
    description="Find what blocks progress and draft escalations.",
)
def blockers_escalation(space_id: SpaceArg = None) -> str:
    scope, args = _scope(space_id, None)
    return (
        f"Find the blockers in {scope}. Call astravue_find_tasks{args} with status 'Blocked', "
        f"astravue_list_overdue_tasks{args}, and astravue_get_task_comments for the 3-5 most serious. For "
        "each: id, title, owner, how long stuck, what blocks it (from the comments), who can unblock it. Then a "
        "short escalation note per owner. Change nothing."
    )


@prompt(
    name="milestone_review",
    title="Milestone review",
    description="Is a project on track for its due date?",
)
def milestone_review(space_id: SpaceReq, project_id: ProjectReq) -> str:
    args = f"space_id={space_id}, project_id={project_id}"
    return (
        f"Review the milestone of project {project_id}. Call astravue_get_project ({args}), "
        f"astravue_get_task_counts, astravue_list_overdue_tasks and astravue_list_scheduled_tasks ({args}, "
        "due_to the project's due date). Verdict: on track / at risk / late, with the evidence (completion "
        "rate, overdue count, work left vs days left); then the tasks that decide it and what to cut or move."
    )


@prompt(
    name="team_workload_balancer",
    title="Team workload balancer",
    description="Spread open work evenly across the team.",
)
def team_workload_balancer(space_id: SpaceArg = None) -> str:
    scope, args = _scope(space_id, None)
    return (
        f"Balance the workload in {scope}. Call astravue_list_people, astravue_list_scheduled_tasks{args} "
        f"(next 14 days, limit 200) and astravue_list_overdue_tasks{args}. Table per person: open, overdue, "
        "critical/high. Propose reassignments (task id, from, to, why) that even it out without moving work "
        "mid-flight. Only after I agree, apply them with astravue_bulk_update_tasks (owner_ids accepts names)."
    )


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "1", "y")


def _one_line(text: str) -> str:
    """Text a person typed goes into the prompt as one line, without control characters."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())[:300]


# ---------------------------------------------------------------- checking arguments
NUMBERS = {"minutes": (5, 480), "days": (1, 90)}
YES_NO = {"mine"}
DATES = {"start", "end"}
NAMED = {"space_id": "space", "project_id": "project"}


async def normalise(client: AstravueClient, arguments: dict[str, str]) -> dict[str, str]:
    """The arguments as the prompt text needs them: ids checked, a space or project name resolved to its id.

    Raises InvalidArguments naming the argument (and the candidates, for a name) otherwise. Only a
    name costs API calls (the same ones argument completion makes).
    """
    out = {k: v.strip() for k, v in arguments.items()}
    for key, value in list(out.items()):
        if not value:
            continue
        if key in DATES:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise InvalidArguments(f"{key} must be a date YYYY-MM-DD (got {value[:40]!r}).") from None
        elif key in NUMBERS:
            low, high = NUMBERS[key]
            if not value.isdigit() or not low <= int(value) <= high:
                raise InvalidArguments(f"{key} must be a whole number from {low} to {high} (got {value[:40]!r}).")
        elif key in YES_NO and value.lower() not in ("yes", "no", "true", "false", "1", "0", "y", "n"):
            raise InvalidArguments(f"{key} must be yes or no (got {value[:40]!r}).")
        elif key == "task_id" and not (value.isdigit() and int(value) > 0):
            raise InvalidArguments(f"task_id must be a task id, a positive number (got {value[:40]!r}).")
    if out.get("space_id"):
        out["space_id"] = await _resolve(client, "space_id", out["space_id"], {})
    if out.get("project_id"):
        out["project_id"] = await _resolve(client, "project_id", out["project_id"], out)
        if not out.get("space_id"):
            out["space_id"] = await _space_of(client, int(out["project_id"]))
    return out


async def _resolve(client: AstravueClient, key: str, value: str, known: dict[str, str]) -> str:
    if value.isdigit() and int(value) > 0:
        return value
    candidates = await SUGGESTERS[key](client, known)
    wanted = value.casefold()
    matches = [c for c in candidates if c[1].casefold() == wanted] or [
        c for c in candidates if wanted in c[1].casefold()
    ]
    kind = NAMED[key]
    if len(matches) == 1:
        return str(matches[0][0])
    listed = "; ".join(f"{i} {name!r}" for i, name in (matches or candidates)[:20])
    if matches:
        raise InvalidArguments(f"{key} {value[:60]!r} matches several {kind}s: {listed}. Give the id.")
    raise InvalidArguments(f"{key} {value[:60]!r} is neither a {kind} id nor a {kind} name; {kind}s: {listed}.")


async def _space_of(client: AstravueClient, project_id: int) -> str:
    for space_id, _ in await SUGGESTERS["space_id"](client, {}):
        if any(pid == project_id for pid, _ in await SUGGESTERS["project_id"](client, {"space_id": str(space_id)})):
            return str(space_id)
    raise AstravueError(f"Project {project_id} was not found in any space you can see.")
