"""Server assembly: ``build_server(settings)`` picks the tools the settings allow and wires the client.

Nothing here touches the network or the token store: the API client (and with it the login) is
created on the first tool call, and tools are listed from the precomputed surface (``surface.py``)
and built on their first call, so the stdio server answers ``initialize`` and ``tools/list`` at once.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.abc
import httpx2
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.server.mcpserver.resources import FunctionResource
from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema, _inline_root_ref
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool
from pydantic import BaseModel, ValidationError

from astravue_mcp import __version__, surface
from astravue_mcp.config import Settings, SettingsError, listed
from astravue_mcp.errors import AstravueError
from astravue_mcp.tools import load_all
from astravue_mcp.tools.registry import DEFAULT_TOOLSETS, REGISTRY, TOOLSETS, ToolSpec, as_mcp_tool, describe

INSTRUCTIONS = (
    "Astravue workspace: org > spaces > projects > tasks (plus personal tasks). Find ids with the list "
    "tools (astravue_list_spaces, then astravue_list_projects); statuses and priorities are given by label. "
    "Dates are ISO 8601; durations are reported in minutes."
)
SANDBOX_URL = "http://sandbox.astravue.local"

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient


@dataclass
class AppState:
    """Per-server state reached by tools through the request context (never a global)."""

    settings: Settings
    transport: httpx2.AsyncBaseTransport | None = None
    task_group: anyio.abc.TaskGroup | None = None
    """Lives as long as the server: background work such as a sign-in's callback runs here."""
    memo: dict[str, Any] = field(default_factory=dict)
    """Per-session answers of the shared engines (who "me" is, the people seen, where a task lives)."""
    _client: AstravueClient | None = field(default=None, init=False)
    _login: Any = field(default=None, init=False)

    @property
    def client(self) -> AstravueClient:
        if self._client is None:
            from astravue_mcp.api.client import AstravueClient
            from astravue_mcp.auth import auth_for

            self._client = AstravueClient(self.settings, auth=auth_for(self.settings), transport=self.transport)
        return self._client

    async def offer_login(self, ctx: Context) -> str | None:
        """After a tool found no usable stored login: offer a sign-in through the client, if it can show one."""
        if self.settings.access_token is not None or self.task_group is None:
            return None  # a fixed token is the operator's to fix, not the person's to sign in for
        if self._login is None:
            from astravue_mcp.auth.elicit import BrowserLogin

            self._login = BrowserLogin(self.settings, self.task_group)
        return await self._login.offer(ctx)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class Selectable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def toolsets(self) -> tuple[str, ...]: ...
    @property
    def writes(self) -> bool: ...


S = TypeVar("S", bound=Selectable)


def select_tools(settings: Settings, catalogue: dict[str, S]) -> list[S]:
    """The tools the settings expose: toolsets, then the allow-list, then read-only (which wins).

    ``catalogue`` is either the built tools (``REGISTRY``) or the precomputed surface: same answer.
    """
    wanted = listed(settings.toolsets) or list(DEFAULT_TOOLSETS)
    if "all" in wanted:
        wanted = list(TOOLSETS)
    unknown = [t for t in wanted if t not in TOOLSETS]
    if unknown:
        raise SettingsError(
            f"ASTRAVUE_TOOLSETS has unknown toolset(s) {', '.join(unknown)}; known: all, {', '.join(TOOLSETS)}."
        )
    # Listed in toolset order (spaces, projects, tasks, ...), the order a person reads the API in.
    order = list(TOOLSETS)
    specs = sorted(
        (s for s in catalogue.values() if set(s.toolsets) & set(wanted)), key=lambda s: order.index(s.toolsets[0])
    )
    allow = listed(settings.tools)
    if allow:
        missing = [n for n in allow if n not in catalogue]
        if missing:
            raise SettingsError(
                f"ASTRAVUE_TOOLS names unknown tool(s): {', '.join(missing)}. See `astravue-mcp tools`."
            )
        specs = [s for s in specs if s.name in allow]
    if settings.read_only:
        specs = [s for s in specs if not s.writes]
    return specs


class AstravueServer(MCPServer[AppState]):
    """MCPServer whose argument errors are short and name the field, and which rejects unknown arguments.

    It also serves static resources that need the request context (the SDK injects a Context only
    into templated resources): see :meth:`context_resource`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._context_resources: dict[str, Callable[[Context], Awaitable[str]]] = {}
        self._published: list[MCPTool] | None = None
        self._unbuilt: dict[str, str] = {}
        self._argument_names: dict[str, frozenset[str]] = {}

    def publish(self, tools: list[surface.Published]) -> None:
        """List these tools from the precomputed surface; each is built on its first call."""
        self._published = [t.tool for t in tools]
        self._unbuilt = {t.name: t.module for t in tools}

    async def list_tools(self) -> list[MCPTool]:
        if self._published is None:
            return await super().list_tools()
        return list(self._published)

    def _built(self, name: str) -> Any:
        """The registered tool, building it now if it was only published so far."""
        module = self._unbuilt.get(name)
        if module is not None:
            import_module(module)
            register_tools(self, [REGISTRY[name]])
            del self._unbuilt[name]  # only once built: a failed build is retried, not forgotten
        return self._tool_manager.get_tool(name)

    def context_resource(
        self, uri: str, *, name: str, title: str, description: str
    ) -> Callable[[Callable[[Context], Awaitable[str]]], Callable[[Context], Awaitable[str]]]:
        def decorator(fn: Callable[[Context], Awaitable[str]]) -> Callable[[Context], Awaitable[str]]:
            self._context_resources[uri] = fn
            self.add_resource(
                FunctionResource(
                    uri=uri, name=name, title=title, description=description, mime_type="text/plain", fn=_unreachable
                )
            )
            return fn

        return decorator

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        handler = self._context_resources.get(str(uri))
        if handler is None:
            return await super().read_resource(uri, context)
        try:
            return [ReadResourceContents(content=await handler(context), mime_type="text/plain")]
        except AstravueError as exc:
            raise ResourceError(str(exc)) from None

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        """A missing or unknown prompt argument is the caller's mistake: an invalid-params error naming it."""
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt {name!r}.")
        declared = prompt.arguments or []
        given = set(arguments or {})
        missing = sorted(a.name for a in declared if a.required and a.name not in given)
        unknown = sorted(given - {a.name for a in declared})
        problems = [
            f"{label} {', '.join(names)}" for label, names in (("missing", missing), ("unknown", unknown)) if names
        ]
        if problems:
            raise MCPError(code=INVALID_PARAMS, message=f"Prompt {name}: {'; '.join(problems)}.")
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Any = None
    ) -> CallToolResult | InputRequiredResult:
        registered = self._built(name)
        if registered is None:
            raise ToolError(f"Unknown tool {name!r}: it does not exist or is switched off (toolsets, read-only).")
        allowed = self._argument_names.get(name)
        if allowed is None:
            fields = registered.fn_metadata.arg_model.model_fields
            allowed = self._argument_names[name] = frozenset(f.alias or n for n, f in fields.items())
        extra = sorted(set(arguments) - allowed)
        if extra:
            raise ToolError(
                f"Invalid arguments for {name}: unknown {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}."
            )
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            # The SDK validates the arguments once; only its message is replaced by a short one.
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"Invalid arguments for {name}: {describe(exc.__cause__)}.") from None
            raise


def _unreachable() -> str:
    raise RuntimeError("context resources are read through AstravueServer.read_resource")


def compact_schema(schema: Any, output: bool = False) -> Any:
    """The published form of a schema: what costs context and tells a model nothing is dropped.

    Validation is unaffected: arguments are still checked by the full pydantic model. Dropped:
    generated titles; ``anyOf [T, null]`` (optional fields just are not required); null defaults;
    ``minimum: 1`` on unbounded integers and ``minLength: 1`` (ids are positive and labels not empty,
    and both are still enforced); definitions used once are inlined. Outputs also lose defaults,
    descriptions and nested ``type: object`` (a result carries its values, field names say what they
    are, nulls never appear because results are dumped with ``exclude_none``, and which fields are
    present is plain from the result itself).
    """
    return _inline_single_defs(_compact(schema, output))


def _compact(schema: Any, output: bool, nested: bool = False) -> Any:
    if isinstance(schema, list):
        return [_compact(s, output, nested) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or output):
            continue
        if key in ("description", "required") and output:
            continue
        if key == "minLength" and value == 1:
            continue
        if key == "minimum" and value == 1 and schema.get("type") == "integer" and "maximum" not in schema:
            continue
        if key == "type" and value == "object" and output and nested and "properties" in schema:
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _compact(sub, output, True) for name, sub in value.items()}
        else:
            out[key] = _compact(value, output, True)
    arms = out.get("anyOf")
    if isinstance(arms, list):
        kept = [a for a in arms if a != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(arms):
            del out["anyOf"]
            out = {**kept[0], **out}
    return out


def _inline_single_defs(schema: Any) -> Any:
    """Replace a ``$ref`` to a definition used only once by the definition itself."""
    if not isinstance(schema, dict) or "$defs" not in schema:
        return schema
    text = json.dumps(schema)
    defs = dict(schema["$defs"])
    once = {name for name in defs if text.count(f'"#/$defs/{name}"') == 1}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and ref[8:] in once:
            return walk({**defs[ref[8:]], **{k: v for k, v in node.items() if k != "$ref"}})
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    result = walk(schema)
    kept = {name: walk(d) for name, d in defs.items() if name not in once}
    if kept:
        result["$defs"] = kept
    return result


@functools.cache
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The published output schema of a model, as the SDK would derive it, compacted; once per model."""
    return compact_schema(_inline_root_ref(model.model_json_schema(schema_generator=StrictJsonSchema)), output=True)


def register_tools(server: MCPServer[Any], specs: Iterable[ToolSpec]) -> None:
    for spec in specs:
        fn, output = as_mcp_tool(spec)
        server.add_tool(
            fn,
            name=spec.name,
            title=spec.title,
            description=" ".join((spec.fn.__doc__ or "").split()),
            annotations=spec.annotations,
        )
        registered = server._tool_manager.get_tool(spec.name)
        assert registered is not None
        registered.parameters = compact_schema(registered.parameters)
        registered.fn_metadata.output_schema = output_schema(output)


def prune_prompts(server: MCPServer[Any], tools: set[str]) -> None:
    """Withdraw the prompts that name a tool the settings switched off (toolsets, allow-list, read-only).

    The prompt's own text is the one source of which tools it needs: it is rendered once with
    placeholder arguments and every ``astravue_*`` name in it must be available.
    """
    for prompt in server._prompt_manager.list_prompts():
        sample = {a.name: "1" for a in prompt.arguments or []}
        needed = set(re.findall(r"astravue_\w+", str(prompt.fn(**sample))))
        if not needed <= tools:
            server.remove_prompt(prompt.name)


def build_server(settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> AstravueServer:
    """The MCP server for these settings; ``transport`` lets tests and the sandbox bypass TCP."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with anyio.create_task_group() as task_group:
            state = AppState(settings, transport, task_group)
            try:
                yield state
            finally:
                task_group.cancel_scope.cancel()
                await state.aclose()

    server = AstravueServer(
        "astravue",
        title="Astravue",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
        warn_on_duplicate_tools=False,
    )
    published = surface.load()
    if published is None:
        load_all()
        specs = select_tools(settings, REGISTRY)
        register_tools(server, specs)
        names = {spec.name for spec in specs}
    else:
        chosen = select_tools(settings, published)
        server.publish(chosen)
        names = {tool.name for tool in chosen}
    from astravue_mcp import prompts, resources

    resources.register(server, read_only=settings.read_only)
    prompts.register(server)
    prune_prompts(server, names)
    return server


def sandbox_server(settings: Settings, **app_options: Any) -> AstravueServer:
    """The server wired in-process to a fresh embedded sandbox: no account, no network, no login."""
    from astravue_mcp.sandbox import create_app

    transport = httpx2.ASGITransport(app=create_app(**app_options))
    return build_server(settings.sandboxed(SANDBOX_URL), transport=transport)
