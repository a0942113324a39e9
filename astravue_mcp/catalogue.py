"""The tool catalogue: which tools exist, which ones a server publishes, and how each becomes an SDK tool.

Tools are declared with ``@tool`` in the area modules named in ``tools.AREAS``. For a server, the
catalogue selects the tools its settings allow (:func:`select`), publishes them as ``tools/list``
shows them, and builds each one through the SDK's public ``Tool.from_function`` the first time it
is called, so start-up imports no area module and builds no argument model. :class:`CatalogueServer`
is the ``MCPServer`` that serves the catalogue through the SDK's public ``list_tools``/``call_tool``
methods; anything registered through the SDK's own API (``add_tool``, an extension) is served beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from astravue_mcp import surface
from astravue_mcp.config import Settings, SettingsError, listed
from astravue_mcp.schemas import compact_schema, output_schema
from astravue_mcp.surface import Published
from astravue_mcp.tools import DEFAULT_TOOLSETS, TOOLSETS
from astravue_mcp.tools.registry import REGISTRY, ToolSpec, as_mcp_tool, describe, load_specs


def toolset_of(name: str) -> str:
    """The toolset a tool is listed under (its first)."""
    return load_specs()[name].toolsets[0]


class Selectable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def toolsets(self) -> tuple[str, ...]: ...
    @property
    def writes(self) -> bool: ...


S = TypeVar("S", bound=Selectable)


def select(settings: Settings, available: Mapping[str, S]) -> list[S]:
    """The tools the settings expose: toolsets, then the allow-list, then read-only (which wins).

    ``available`` is either the declared specs or their published form: same answer.
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
    chosen = sorted(
        (s for s in available.values() if set(s.toolsets) & set(wanted)), key=lambda s: order.index(s.toolsets[0])
    )
    allow = listed(settings.tools)
    if allow:
        missing = [n for n in allow if n not in available]
        if missing:
            raise SettingsError(
                f"ASTRAVUE_TOOLS names unknown tool(s): {', '.join(missing)}. See `astravue-mcp tools`."
            )
        chosen = [s for s in chosen if s.name in allow]
    if settings.read_only:
        chosen = [s for s in chosen if not s.writes]
    return chosen


def build(spec: ToolSpec) -> tuple[Tool, Published]:
    """The SDK tool that runs ``spec``, and the form ``tools/list`` publishes it in."""
    fn, output = as_mcp_tool(spec)
    tool = Tool.from_function(
        fn,
        name=spec.name,
        title=spec.title,
        description=" ".join((spec.fn.__doc__ or "").split()),
        annotations=spec.annotations,
        meta=spec.meta,
    )
    published = MCPTool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=compact_schema(tool.parameters),
        output_schema=output_schema(output),
        annotations=tool.annotations,
        _meta=spec.meta,
    )
    return tool, Published(spec.name, spec.toolsets, spec.writes, spec.fn.__module__, published)


@dataclass
class Catalogue:
    """The tools one server publishes, in order; each is built on its first call (or given built)."""

    published: list[Published]
    built: dict[str, Tool]

    @classmethod
    def for_settings(cls, settings: Settings) -> Catalogue:
        """The selected tools: listed from this install's cache, else every tool built now (and cached)."""
        cached = surface.load(settings.cache_dir)
        if cached is not None:
            return cls(select(settings, cached), {})
        everything = [build(spec) for spec in load_specs().values()]
        surface.store([published for _, published in everything], settings.cache_dir)
        chosen = select(settings, {published.name: published for _, published in everything})
        names = {published.name for published in chosen}
        return cls(chosen, {tool.name: tool for tool, _ in everything if tool.name in names})

    @property
    def names(self) -> set[str]:
        return {p.name for p in self.published}

    def listed(self) -> list[MCPTool]:
        return [p.tool for p in self.published]

    def tool(self, name: str) -> Tool | None:
        """The SDK tool for ``name``, built now if this is its first call; None if not published."""
        built = self.built.get(name)
        if built is not None:
            return built
        entry = next((p for p in self.published if p.name == name), None)
        if entry is None:
            return None
        import_module(entry.module)
        # Kept only once built: a build that failed (say, an import) is tried again on the next call.
        built = self.built[name] = build(REGISTRY[name])[0]
        return built


class CatalogueServer(MCPServer[Any]):
    """An ``MCPServer`` that serves a :class:`Catalogue` beside whatever the SDK's own API registered.

    ``list_tools`` and ``call_tool`` are the SDK's public methods that its ``tools/list`` and
    ``tools/call`` handlers delegate to; they are extended here, nothing private is read or replaced.
    Calls are stricter than the SDK's: an unknown argument is refused (a misspelt optional field
    would otherwise be silently ignored), and an invalid one gets a short message naming the field.
    """

    def __init__(self, catalogue: Catalogue, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self.catalogue = catalogue
        self._arguments: dict[str, frozenset[str]] = {}

    async def list_tools(self) -> list[MCPTool]:
        return self.catalogue.listed() + await super().list_tools()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self.catalogue.tool(name)
        if tool is None:
            if name in {t.name for t in await super().list_tools()}:
                return await super().call_tool(name, arguments, context)
            # A protocol error, as the spec gives for an unknown tool: the client, not the model, is wrong.
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Unknown tool {name!r}: it does not exist or is switched off (toolsets, read-only).",
            )
        allowed = self._arguments.get(name)
        if allowed is None:
            fields = tool.fn_metadata.arg_model.model_fields
            allowed = self._arguments[name] = frozenset(f.alias or n for n, f in fields.items())
        extra = sorted(set(arguments) - allowed)
        if extra:
            raise ToolError(
                f"Invalid arguments for {name}: unknown {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}."
            )
        try:
            result: CallToolResult | InputRequiredResult = await tool.run(
                arguments, context or Context(mcp_server=self), convert_result=True
            )
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            # The SDK validates the arguments once; only its message is replaced by a short one.
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"Invalid arguments for {name}: {describe(exc.__cause__)}.") from None
            raise
        return result
