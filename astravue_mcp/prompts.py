"""Prompts: ready-made workflows that tell the model which tools to call and what to produce.

Names match Astravue's hosted server. Each text names the tools to call (tests check that every
named tool exists) and the shape of the answer, and stays short: it is spent on every use.
A prompt is published only when every tool its text names is (toolsets, allow-list, read-only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import Field

SpaceArg = Annotated[str | None, Field(description="Space id (optional)")]
ProjectArg = Annotated[str | None, Field(description="Project id (optional; needs space_id)")]
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
    an invalid-params error naming it (the SDK would answer a generic internal error)."""

    def __init__(self, prompts: dict[str, Prompt]) -> None:
        self.prompts = prompts

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        if ctx.method == "prompts/get" and isinstance(ctx.params, Mapping):
            self.check(str(ctx.params.get("name")), ctx.params.get("arguments"))
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


@prompt(
    name="daily_standup",
    title="Daily stand-up",
    description="My stand-up update: done recently, today, blockers.",
)
def daily_standup() -> str:
    return (
        "Prepare my daily stand-up from Astravue. Call astravue_list_scheduled_tasks (due in the next days), "
        "astravue_list_overdue_tasks and astravue_find_tasks with status 'In Progress'. Answer in three short "
        "sections: Done recently, Today (due today or in progress), Blockers (overdue, or high priority without "
        "progress). One line per task with its id; no preamble."
    )


@prompt(
    name="project_status_report",
    title="Project status report",
    description="Status report for one project, or for the whole workspace when no project is given.",
)
def project_status_report(space_id: SpaceArg = None, project_id: ProjectArg = None) -> str:
    if space_id and project_id:
        scope = f"project {project_id} in space {space_id}"
        calls = (
            f"astravue_get_project and astravue_get_task_counts (space_id={space_id}, project_id={project_id}), "
            f"astravue_list_overdue_tasks and astravue_list_scheduled_tasks with the same ids"
        )
    else:
        scope = f"space {space_id}" if space_id else "the whole workspace"
        where = f" with space_id={space_id}" if space_id else ""
        calls = f"astravue_get_task_counts, astravue_list_overdue_tasks and astravue_list_scheduled_tasks{where}"
    return (
        f"Write a status report for {scope}. Call {calls}. Report: health in one line (on track / at risk / "
        "off track, with the reason), progress (completed of total), risks (overdue tasks, most overdue first, "
        "with owners), next 7 days, and 1-3 recommended actions. Under 250 words."
    )


@prompt(
    name="overdue_action_plan",
    title="Overdue action plan",
    description="A prioritised recovery plan for overdue tasks.",
)
def overdue_action_plan() -> str:
    return (
        "Call astravue_list_overdue_tasks (limit 100). Group the tasks into: do today (high/critical priority or "
        "most overdue), reschedule (propose a realistic new due date), delegate or drop. For each task give id, "
        "title, days overdue, owner and the action. Offer to apply the changes with astravue_bulk_update_tasks "
        "(one call per project) but do not change anything before I agree."
    )


@prompt(
    name="sprint_planner",
    title="Sprint planner",
    description="Plan a sprint towards a goal: pick tasks, balance owners, set dates.",
)
def sprint_planner(sprint_goal: Annotated[str, Field(description="What the sprint should achieve")]) -> str:
    return (
        f"Plan a two-week sprint with this goal: {sprint_goal}\n"
        "Call astravue_find_tasks with keywords from the goal, plus astravue_list_overdue_tasks and "
        "astravue_list_scheduled_tasks (next 14 days). Select the open tasks that serve the goal, most important "
        "first; flag overdue ones. Balance the load across owners and name anyone overloaded. Output: the goal, "
        "a table (id, title, owner, priority, proposed due date), what is left out and why. Only after I approve, "
        "apply dates and owners with astravue_bulk_update_tasks; create missing tasks with "
        "astravue_bulk_create_tasks."
    )


@prompt(
    name="time_tracking_report",
    title="Time tracking report",
    description="Where the time went: hours by project, task and person over a date range.",
)
def time_tracking_report(
    start: Annotated[str | None, Field(description="First day, YYYY-MM-DD (default: 7 days ago)")] = None,
    end: Annotated[str | None, Field(description="Last day, YYYY-MM-DD (default: today)")] = None,
) -> str:
    window = f"from {start or '7 days ago'} to {end or 'today'}"
    return (
        f"Report tracked time {window}. Call astravue_get_timesheet_report for that range and "
        "astravue_get_active_timers. Summarise hours per project, per person and the top 5 tasks, with billable "
        "vs non-billable totals; mention running timers and days without entries. Hours with one decimal; "
        "a short table, then two or three observations."
    )


@prompt(
    name="task_breakdown",
    title="Task breakdown",
    description="Split a task into concrete subtasks.",
)
def task_breakdown(task_id: Annotated[str, Field(description="Task id")]) -> str:
    return (
        f"Break down task {task_id}. Read it from the resource astravue://tasks/{task_id} (or find its project "
        f"with astravue_find_tasks, then call astravue_get_task), and call astravue_list_subtasks and "
        "astravue_get_task_checklists for what exists already. Propose 3-8 subtasks, each small enough for a day "
        "or two: title, one-line outcome, suggested owner and due date, and order. Create them with "
        "astravue_create_task (parent_task_id) only after I confirm."
    )
