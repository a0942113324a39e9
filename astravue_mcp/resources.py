"""Read-only context a client can attach without a tool call: ``astravue://`` resources.

Every resource is the text mirror of a read tool (the tool functions are called directly), so a
resource and its tool never disagree. All of them read, so read-only mode keeps every one.

Static resources and completion need the request (its API client), but the SDK calls both without
one. :func:`bind_request`, a server middleware, makes the request reachable for the duration of
those two methods; the handlers read it there. So they use the same per-request seam as the tools
(``api(ctx)``), with no global client and nothing shared between servers or sessions.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.resources import FunctionResource
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from astravue_mcp.errors import ApiError, AstravueError, NotFound
from astravue_mcp.identity import session_identity
from astravue_mcp.state import state_of
from astravue_mcp.tools.registry import load_specs, not_finished, render, time_limited, with_note

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient
    from astravue_mcp.tools.registry import Out

PROJECTS = "astravue://spaces/{space_id}/projects"
PROJECT = "astravue://spaces/{space_id}/projects/{project_id}"
TASK = "astravue://tasks/{task_id}"
ME = "astravue://me"
NO_IDENTITY = (
    'The login carries no identity (no name, username or email claims). Run "astravue-mcp login" again: '
    "it asks for the openid profile email scopes."
)
RESOURCE_NOT_FOUND = -32002
"""The dated revisions' code for a resource that does not exist (2026-07-28 uses invalid params)."""
MAX_COMPLETIONS = 100
"""The protocol's cap on completion values per answer."""

_request: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("astravue_request", default=None)
BOUND_METHODS = ("resources/read", "completion/complete")
T = TypeVar("T")


async def bind_request(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
    """Server middleware: the request of a resource read or a completion, for handlers the SDK gives none.

    The whole request runs under the call time limit, as a tool call does (:func:`within_limit`).
    """
    if ctx.method not in BOUND_METHODS:
        return await call_next(ctx)
    token = _request.set(ctx)
    try:
        return await within_limit(ctx, lambda: call_next(ctx))
    finally:
        _request.reset(token)


async def within_limit(request: ServerRequestContext[Any, Any], work: Callable[[], Awaitable[T]], what: str = "") -> T:
    """``work()`` under the call time limit (ASTRAVUE_CALL_TIMEOUT), like a tool call's.

    Its API requests, retries and fan-outs are cut to the limit and fail or say what they skipped;
    what still runs at the limit is cancelled, and the request is an error saying so (``what``
    prefixes it, e.g. "Prompt x: ").
    """
    with time_limited(Context(request_context=request)) as scope:
        return await work()
    raise MCPError(code=INTERNAL_ERROR, message=f"{what}{not_finished(scope)}")


def _context() -> Context[Any, Any]:
    request = _request.get()
    if request is None:
        raise ResourceError("This resource can only be read through an MCP request.")
    return Context(request_context=request)


ID = re.compile(r"[1-9][0-9]{0,17}")
"""An id as a URI or completion gives it: ASCII digits only (``str.isdigit`` also takes "²" and "٣")."""


def _id(value: str, name: str) -> int:
    if not ID.fullmatch(value):
        raise MCPError(
            code=INVALID_PARAMS, message=f"{name} must be a positive integer of at most 18 digits (got {value[:40]!r})."
        )
    return int(value)


async def _read(ctx: Context[Any, Any], produce: Awaitable[str]) -> str:
    """A resource's text; a failure keeps its own message (the SDK would replace it with a generic one).

    A resource that does not exist is the error the spec gives it: -32002 up to 2025-11-25, and
    -32602 naming the URI from 2026-07-28 on (SEP-2164). Any other failure is an internal error.
    """
    try:
        return with_note(await produce)
    except (AstravueError, ToolError) as exc:
        if isinstance(exc, NotFound) or (isinstance(exc, ApiError) and exc.status == 404):
            code = INVALID_PARAMS if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else RESOURCE_NOT_FOUND
            uri = str((ctx.request_context.params or {}).get("uri", ""))
            raise MCPError(code=code, message=str(exc), data={"uri": uri}) from None
        raise ResourceError(str(exc)) from None


NEEDS: dict[str, set[str]] = {
    "astravue://spaces": {"astravue_list_spaces"},
    "astravue://people": {"astravue_list_people"},
    "astravue://labels": {"astravue_list_people"},
    "astravue://timers/active": {"astravue_get_active_timers"},
    "astravue://notifications/unread": {"astravue_list_notifications"},
    PROJECTS: {"astravue_list_projects"},
    PROJECT: {"astravue_get_project", "astravue_get_task_counts"},
    TASK: {"astravue_get_task"},
}
"""The tools a resource reads through: it is offered only when they are (toolsets, allow-list, read-only)."""


def register(server: MCPServer[Any], tools: set[str]) -> None:
    """Add the resources and templates whose tools are in ``tools``, and completion of their ids.

    ``bind_request`` must be installed. "Me" needs no tool: it is the login's own identity.
    """

    def offered(uri: str) -> bool:
        return NEEDS.get(uri, set()) <= tools

    _register_static(server, offered)
    _register_templates(server, offered)
    server.completion()(complete)


def _static(server: MCPServer[Any], uri: str, name: str, title: str, description: str) -> Any:
    """Register a static resource whose text comes from ``produce(ctx)``, with this request's context."""

    def decorator(produce: Callable[[Context[Any, Any]], Awaitable[str]]) -> None:
        async def read() -> str:
            ctx = _context()
            return await _read(ctx, produce(ctx))

        server.add_resource(
            FunctionResource(uri=uri, name=name, title=title, description=description, mime_type="text/plain", fn=read)
        )

    return decorator


def _register_static(server: MCPServer[Any], offered: Callable[[str], bool]) -> None:
    @_static(server, ME, "me", "Me", 'Who "me" is: your name, username, email and user id.')
    async def me(ctx: Context[Any, Any]) -> str:
        identity = await session_identity(ctx)
        if identity is None:
            return NO_IDENTITY
        text = render(identity.as_dict())
        from astravue_mcp.tools.directory import session_directory  # deferred: it brings the wire models (~35 ms)

        try:
            return f"{text}; user_id={(await session_directory(ctx)).me_id()}"
        except AstravueError as exc:
            return f"{text}\nuser id unknown: {exc}"

    if offered("astravue://people"):

        @_static(
            server,
            "astravue://people",
            "people",
            "People",
            "People seen on your tasks: id, name, email (owner arguments take any of them).",
        )
        async def people(ctx: Context[Any, Any]) -> str:
            return await _tool_text("astravue_list_people", ctx)

        @_static(
            server,
            "astravue://labels",
            "labels",
            "Status and priority labels",
            "The status labels each project uses and the priority labels, as task arguments take them.",
        )
        async def labels(ctx: Context[Any, Any]) -> str:
            from astravue_mcp.tools.directory import session_directory  # deferred: it brings the wire models

            return (await session_directory(ctx)).labels_text()

    if offered("astravue://spaces"):

        @_static(server, "astravue://spaces", "spaces", "Spaces", "Every space of the organisation (id, name).")
        async def all_spaces(ctx: Context[Any, Any]) -> str:
            return await _tool_text("astravue_list_spaces", ctx, page=1, limit=200)

    if offered("astravue://timers/active"):

        @_static(
            server,
            "astravue://timers/active",
            "active_timers",
            "Active timers",
            "Your running timers (task, start, minutes so far).",
        )
        async def active_timers(ctx: Context[Any, Any]) -> str:
            return await _tool_text("astravue_get_active_timers", ctx)

    if offered("astravue://notifications/unread"):

        @_static(
            server,
            "astravue://notifications/unread",
            "unread_notifications",
            "Unread notifications",
            "Your unread notifications and mentions, newest first (up to 200).",
        )
        async def unread_notifications(ctx: Context[Any, Any]) -> str:
            return await _tool_text("astravue_list_notifications", ctx, unread_only=True, page=1, limit=200)


def _register_templates(server: MCPServer[Any], offered: Callable[[str], bool]) -> None:
    if offered(PROJECTS):

        @server.resource(
            PROJECTS, name="space_projects", title="Projects in a space", description="A space's projects."
        )
        async def space_projects(space_id: str, ctx: Context) -> str:
            return await _read(ctx, _projects_text(ctx, _id(space_id, "space_id")))

    if offered(PROJECT):

        @server.resource(
            PROJECT, name="project", title="Project overview", description="A project with its task counts."
        )
        async def project(space_id: str, project_id: str, ctx: Context) -> str:
            return await _read(ctx, _project_text(ctx, _id(space_id, "space_id"), _id(project_id, "project_id")))

    if offered(TASK):

        @server.resource(
            TASK, name="task", title="Task", description="One task (project or personal) with its details."
        )
        async def task(task_id: str, ctx: Context) -> str:
            return await _read(ctx, _task_text(ctx, _id(task_id, "task_id")))


async def _tool_text(name: str, ctx: Context, **arguments: Any) -> str:
    """The text mirror of a read tool's answer, from its function (switched off or not by the settings).

    Looked up in the catalogue by name, so the tool areas load on the first read, not at start-up.
    """
    out: Out = await load_specs()[name].fn(ctx, **arguments)
    return out.text()


async def _projects_text(ctx: Context, space_id: int) -> str:
    return await _tool_text("astravue_list_projects", ctx, space_id=space_id, page=1, limit=200)


async def _project_text(ctx: Context, space_id: int, project_id: int) -> str:
    project = await _tool_text("astravue_get_project", ctx, space_id=space_id, project_id=project_id)
    counts = await _tool_text("astravue_get_task_counts", ctx, space_id=space_id, project_id=project_id)
    return f"{project}\ntasks: {counts}"


async def _task_text(ctx: Context, task_id: int) -> str:
    return await _tool_text("astravue_get_task", ctx, task_id=task_id)


# ---------------------------------------------------------------- completion
async def complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext | None,
) -> Completion | None:
    request = _request.get()
    if request is None:
        return None
    ctx: Context[Any, Any] = Context(request_context=request)
    if argument.name == "task_id":
        # Tasks by title, from what this session has already seen (completion never starts a scan).
        from astravue_mcp.tools.directory import MEMO_KEY  # deferred: it brings the wire models (~35 ms)

        seen = state_of(ctx).memo_for(ctx).get(MEMO_KEY)
        return _matching(seen.tasks, argument.value) if seen is not None and argument.value.strip() else None
    suggest = SUGGESTERS.get(argument.name)
    if suggest is None:
        return None
    known = (context.arguments if context else None) or {}
    try:
        candidates = await suggest(state_of(ctx).client_for(ctx), known)
    except AstravueError:
        return None  # completion is a convenience: an API failure just means no suggestions
    return _matching(candidates, argument.value)


def _matching(candidates: list[tuple[int, str]], typed: str) -> Completion:
    """Ids whose digits start with what was typed, or whose name contains it (case-insensitive)."""
    typed = typed.strip().lower()
    values = [str(i) for i, name in candidates if str(i).startswith(typed) or typed in name.lower()]
    return Completion(values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS)


async def _space_candidates(client: AstravueClient, known: dict[str, str]) -> list[tuple[int, str]]:
    from astravue_mcp.api import models  # deferred: the wire models (~35 ms) load on first use, not at start-up

    found = (models.Space.model_validate(s) for s in models.page_of(await client.call("list_spaces")).items)
    return [(s.space_id, s.space_name) for s in found]


async def _project_candidates(client: AstravueClient, known: dict[str, str]) -> list[tuple[int, str]]:
    """Projects of the space already chosen, else of every space (a handful of calls)."""
    from astravue_mcp.api import models  # deferred: see _space_candidates

    chosen = known.get("space_id", "")
    space_ids = [int(chosen)] if ID.fullmatch(chosen) else [i for i, _ in await _space_candidates(client, known)]
    out: list[tuple[int, str]] = []
    for space_id in space_ids:
        data = await client.call("list_projects", {"spaceId": space_id})
        out += [(p.project_id, p.project_name) for p in map(models.Project.model_validate, models.page_of(data).items)]
    return out


SUGGESTERS: dict[str, Callable[[AstravueClient, dict[str, str]], Awaitable[list[tuple[int, str]]]]] = {
    "space_id": _space_candidates,
    "project_id": _project_candidates,
}
