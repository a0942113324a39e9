"""Spaces: the top level inside an organisation, holding projects."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from astravue_mcp.api import models
from astravue_mcp.tools.args import Label, Limit, PageNo, SpaceId, Text, Title
from astravue_mcp.tools.outputs import Deleted, ListOut, SpaceOut, page_of_all, space_out
from astravue_mcp.tools.registry import tool
from astravue_mcp.tools.request import api, confirm


@tool("spaces", "List spaces", "read")
async def list_spaces(ctx: Context, page: PageNo = 1, limit: Limit = 25) -> ListOut[SpaceOut]:
    """List the organisation's spaces (id, name). Start here to find space ids."""
    data = await api(ctx).call("list_spaces")
    spaces = [space_out(models.Space.model_validate(s)) for s in models.page_of(data).items]
    return page_of_all(spaces, page, limit)


@tool("spaces", "Get space", "read")
async def get_space(ctx: Context, space_id: SpaceId) -> SpaceOut:
    """One space by id."""
    return space_out(models.Space.model_validate(await api(ctx).call("get_space", {"spaceId": space_id})))


@tool("spaces", "Create space", "create", changes=("astravue://spaces",))
async def create_space(
    ctx: Context, name: Title, description: Text | None = None, color: Label | None = None
) -> SpaceOut:
    """Create a space."""
    body = models.SpaceWrite(space_name=name, description=description, color=color).wire()
    return space_out(models.Space.model_validate(await api(ctx).call("create_space", body=body)))


@tool("spaces", "Update space", "update", changes=("astravue://spaces",))
async def update_space(
    ctx: Context,
    space_id: SpaceId,
    name: Title | None = None,
    description: Text | None = None,
    color: Label | None = None,
) -> SpaceOut:
    """Rename a space or change its description/color; omitted fields stay."""
    body = models.SpaceWrite(space_name=name, description=description, color=color).wire()
    data = await api(ctx).call("update_space", {"spaceId": space_id}, body=body)
    return space_out(models.Space.model_validate(data))


@tool("spaces", "Delete space", "delete", changes=("astravue://spaces", "astravue://spaces/{space_id}/projects"))
async def delete_space(ctx: Context, space_id: SpaceId) -> Deleted:
    """Delete a space with all its projects and tasks. Cannot be undone."""
    await confirm(ctx, f"delete space {space_id} with all its projects and tasks")
    await api(ctx).call("delete_space", {"spaceId": space_id})
    return Deleted(deleted=f"space {space_id}")
