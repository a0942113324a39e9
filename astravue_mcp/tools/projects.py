"""Projects: live in a space and hold tasks."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from astravue_mcp.api import models
from astravue_mcp.tools.args import Label, Limit, PageNo, ProjectId, SpaceId, Text, Title, When
from astravue_mcp.tools.outputs import Deleted, ListOut, ProjectOut, page_of_all, project_out
from astravue_mcp.tools.registry import tool
from astravue_mcp.tools.request import api, confirm


def _parse(data: object, space_id: int, detail: bool = True) -> ProjectOut:
    project = models.Project.model_validate(data)
    if project.space_id is None:
        project.space_id = space_id
    return project_out(project, detail)


@tool("projects", "List projects", "read")
async def list_projects(ctx: Context, space_id: SpaceId, page: PageNo = 1, limit: Limit = 25) -> ListOut[ProjectOut]:
    """List the projects of a space (id, name, status, dates)."""
    data = await api(ctx).call("list_projects", {"spaceId": space_id})
    projects = [_parse(p, space_id, detail=False) for p in models.page_of(data).items]
    return page_of_all(projects, page, limit)


@tool("projects", "Get project", "read")
async def get_project(ctx: Context, space_id: SpaceId, project_id: ProjectId) -> ProjectOut:
    """One project with its description."""
    data = await api(ctx).call("get_project", {"spaceId": space_id, "projectId": project_id})
    return _parse(data, space_id)


@tool("projects", "Create project", "create", changes=("astravue://spaces/{space_id}/projects",))
async def create_project(
    ctx: Context,
    space_id: SpaceId,
    name: Title,
    description: Text | None = None,
    status: Label | None = None,
    priority: Label | None = None,
    start: When | None = None,
    due: When | None = None,
) -> ProjectOut:
    """Create a project in a space."""
    body = models.ProjectWrite(
        project_name=name, description=description, status=status, priority=priority, start_date=start, due_date=due
    ).wire()
    return _parse(await api(ctx).call("create_project", {"spaceId": space_id}, body=body), space_id)


@tool(
    "projects",
    "Update project",
    "update",
    changes=("astravue://spaces/{space_id}/projects", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def update_project(
    ctx: Context,
    space_id: SpaceId,
    project_id: ProjectId,
    name: Title | None = None,
    description: Text | None = None,
    status: Label | None = None,
    priority: Label | None = None,
    health: Label | None = None,
    start: When | None = None,
    due: When | None = None,
) -> ProjectOut:
    """Change a project's fields; omitted fields stay."""
    body = models.ProjectWrite(
        project_name=name,
        description=description,
        status=status,
        priority=priority,
        health=health,
        start_date=start,
        due_date=due,
    ).wire()
    data = await api(ctx).call("update_project", {"spaceId": space_id, "projectId": project_id}, body=body)
    return _parse(data, space_id)


@tool(
    "projects",
    "Delete project",
    "delete",
    changes=("astravue://spaces/{space_id}/projects", "astravue://spaces/{space_id}/projects/{project_id}"),
)
async def delete_project(ctx: Context, space_id: SpaceId, project_id: ProjectId) -> Deleted:
    """Delete a project with all its tasks. Cannot be undone."""
    await confirm(ctx, f"delete project {project_id} (space {space_id}) with all its tasks")
    await api(ctx).call("delete_project", {"spaceId": space_id, "projectId": project_id})
    return Deleted(deleted=f"project {project_id}")
