"""Which projects a cross-project tool covers, and which project holds a task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from pydantic import ValidationError

from astravue_mcp.api import models
from astravue_mcp.errors import ApiError, AstravueError
from astravue_mcp.tools.concurrency import failure, fan_out
from astravue_mcp.tools.request import api


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
    if project_id is not None:
        refs = [r for r in refs if r.project_id == project_id]
        if not refs:
            raise AstravueError(
                f"Project {project_id} was not found in any space you can see. "
                "Check the id with astravue_list_projects."
            )
    return refs, skipped


async def locate_task(ctx: Context, task_id: int) -> tuple[int | None, int | None]:
    """(space_id, project_id) of a task, or (None, None) for one of your personal tasks.

    Task ids are global but the project-task endpoints need the scope: try the personal endpoint,
    then ask every project (stopping once one knows the task).
    """
    client = api(ctx)
    try:
        await client.call("get_task", {"taskId": task_id})
        return None, None
    except ApiError as exc:
        if exc.status != 404:
            raise
    refs, _ = await projects_in_scope(ctx)
    found: list[ProjectRef] = []

    async def probe(ref: ProjectRef) -> None:
        if found:
            return
        try:
            await client.call("get_project_task", ref.ids | {"taskId": task_id})
        except AstravueError:
            return  # not here (or this project cannot be read): keep looking elsewhere
        found.append(ref)

    await fan_out(ctx, refs, probe)
    if not found:
        raise AstravueError(
            f"Task {task_id} was not found in any project you can see, nor among your personal tasks. "
            "Check the id with astravue_find_tasks."
        )
    return found[0].space_id, found[0].project_id
