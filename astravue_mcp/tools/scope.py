"""Which projects a cross-project tool covers, and where a task lives (found by id, remembered per session)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from pydantic import ValidationError

from astravue_mcp.api import models
from astravue_mcp.errors import ApiError, AstravueError, NotFound
from astravue_mcp.state import state_of
from astravue_mcp.tools.concurrency import failure, fan_out
from astravue_mcp.tools.request import api
from astravue_mcp.tools.task_api import TaskRef


@dataclass(frozen=True)
class ProjectRef:
    space_id: int
    project_id: int
    name: str

    @property
    def ids(self) -> dict[str, int]:
        return {"spaceId": self.space_id, "projectId": self.project_id}


def _refs(data: Any, space_id: int) -> list[ProjectRef]:
    projects = (models.Project.model_validate(p) for p in models.page_of(data).items)
    return [ProjectRef(space_id, p.project_id, p.project_name) for p in projects]


async def projects_in_scope(
    ctx: Context, space_id: int | None = None, project_id: int | None = None
) -> tuple[list[ProjectRef], list[str]]:
    """The projects a search covers; a named space or project that does not exist is an error."""
    client = api(ctx)
    if space_id is not None and project_id is not None:
        project = models.Project.model_validate(
            await client.call("get_project", {"spaceId": space_id, "projectId": project_id})
        )
        return [ProjectRef(space_id, project.project_id, project.project_name)], []
    if space_id is not None:
        refs = _refs(await client.call("list_projects", {"spaceId": space_id}), space_id)
        skipped: list[str] = []
    else:
        spaces = [
            models.Space.model_validate(s).space_id for s in models.page_of(await client.call("list_spaces")).items
        ]

        async def space_projects(sid: int) -> list[ProjectRef] | str:
            try:
                return _refs(await client.call("list_projects", {"spaceId": sid}), sid)
            except (AstravueError, ValidationError) as exc:
                return f"space {sid}: {failure(exc)}"

        answers = await fan_out(ctx, spaces, space_projects)
        refs = [r for a in answers if isinstance(a, list) for r in a]
        skipped = [a for a in answers if isinstance(a, str)]
        if answers and len(skipped) == len(answers):
            reasons = "\n".join(f"- {line}" for line in skipped)
            raise AstravueError(f"Could not list the projects of any of the {len(answers)} space(s):\n{reasons}")
    if project_id is not None:
        refs = [r for r in refs if r.project_id == project_id]
        if not refs:
            raise NotFound(
                f"Project {project_id} was not found in any space you can see. "
                "Check the id with astravue_list_projects."
            )
    return refs, skipped


LOCATIONS = "task_locations"


def _locations(ctx: Context) -> dict[int, tuple[int | None, int | None]]:
    """Where each task seen this session lives: (space_id, project_id), or (None, None) when personal."""
    found: dict[int, tuple[int | None, int | None]] = state_of(ctx).memo_for(ctx).setdefault(LOCATIONS, {})
    return found


def remember(ctx: Context, tasks: Sequence[models.Task]) -> None:
    """Note where these tasks live, so a later call by id needs no search."""
    where = _locations(ctx)
    for task in tasks:
        where[task.task_id] = (task.space_id, task.project_id) if task.project_id is not None else (None, None)


def forget(ctx: Context, task_id: int) -> None:
    """A deleted task's place is no longer known."""
    _locations(ctx).pop(task_id, None)


def known(ctx: Context, task_id: int) -> bool:
    return task_id in _locations(ctx)


async def find_task(ctx: Context, task_id: int) -> tuple[TaskRef, Any]:
    """Where a task lives, and its raw answer when finding it fetched it (None when it was known already).

    Personal first (one call), then every project you can see, concurrently; a task seen earlier in
    the session is not searched again. "Not found" only after looking everywhere; if the id answers
    in several projects (ids scoped per project), the error lists them.
    """
    where = _locations(ctx).get(task_id)
    if where is not None:
        return TaskRef(task_id, *where), None
    client = api(ctx)
    try:
        data = await client.call("get_task", {"taskId": task_id})
        _locations(ctx)[task_id] = (None, None)
        return TaskRef(task_id), data
    except ApiError as exc:
        if exc.status != 404:
            raise
    refs, skipped = await projects_in_scope(ctx)
    found: list[tuple[ProjectRef, Any]] = []

    async def probe(ref: ProjectRef) -> None:
        try:
            found.append((ref, await client.call("get_project_task", ref.ids | {"taskId": task_id})))
        except AstravueError:
            return  # not here (or this project cannot be read): keep looking elsewhere

    await fan_out(ctx, refs, probe)
    if not found:
        unseen = f" ({len(skipped)} space(s) could not be read)" if skipped else ""
        raise NotFound(
            f"Task {task_id} was not found in any of the {len(refs)} project(s) you can see{unseen}, nor among your "
            "personal tasks. Check the id with astravue_find_tasks."
        )
    if len(found) > 1:
        listed = "; ".join(
            f"space_id={r.space_id}, project_id={r.project_id} ({r.name}): {models.Task.model_validate(d).task_title!r}"
            for r, d in found
        )
        raise AstravueError(
            f"Task id {task_id} exists in {len(found)} projects: {listed}. Give space_id and project_id."
        )
    ref, data = found[0]
    _locations(ctx)[task_id] = (ref.space_id, ref.project_id)
    return TaskRef(task_id, ref.space_id, ref.project_id), data


async def task_ref(ctx: Context, task_id: int, space_id: int | None, project_id: int | None) -> TaskRef:
    """The task as given, or, with neither scope id, wherever it lives (see :func:`find_task`)."""
    if space_id is None and project_id is None:
        return (await find_task(ctx, task_id))[0]
    return TaskRef(task_id, space_id, project_id)
