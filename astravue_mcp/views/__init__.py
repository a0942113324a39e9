"""Interactive views (MCP Apps, ``io.modelcontextprotocol/ui``): the pages a client renders for a tool.

Each view is one self-contained HTML page: its own markup and script, plus the shared bridge
(``bridge.js``, the host protocol written by hand), task card (``ui.js``) and stylesheet
(``base.css``), inlined when the page is served. Nothing is loaded from anywhere else, so the
pages declare no CSP domains at all: a host applies its most restrictive policy and they still work.

The pages are registered through the SDK's ``Apps`` extension (which also advertises the
extension in the server's capabilities); the tools that render into them are declared like every
other tool, with ``app=`` naming their page (``tools/registry.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from typing import Any

from mcp.server.apps import APP_MIME_TYPE, Apps, ResourceCsp
from mcp.server.mcpserver.resources import FunctionResource

PAGE_BUDGET = 40_000
"""Bytes per served page: small enough to load at once in any host, checked by the tests."""


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"ui://astravue/{self.name}.html"

    def tool_meta(self, *, app_only: bool = False) -> dict[str, Any]:
        """A tool's ``_meta`` binding it to this page; ``app_only`` hides it from the model (only pages call it)."""
        # Without "visibility" a tool is for the model and the page alike (the extension's default).
        return {"ui": {"resourceUri": self.uri, **({"visibility": ["app"]} if app_only else {})}}


TASK_LIST = Page("task-list", "Task board", "A project's or a search's tasks as a sortable list or a board by status.")
MY_TASKS = Page("my-tasks", "My tasks", "Your open tasks across projects, grouped by when they are due.")
PROJECT_OVERVIEW = Page(
    "project-overview", "Project overview", "A project's counts by status and priority, overdue tasks and time."
)
PAGES = (TASK_LIST, MY_TASKS, PROJECT_OVERVIEW)


def _asset(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def html(page: Page) -> str:
    """The served page: its own file with the shared stylesheet and bridge inlined."""
    text = _asset(f"{page.name}.html")
    for marker, asset in (("/*BASE_CSS*/", "base.css"), ("/*BRIDGE_JS*/", "bridge.js"), ("/*UI_JS*/", "ui.js")):
        if marker not in text:
            raise ValueError(f"views/{page.name}.html lacks the {marker} marker")
        text = text.replace(marker, _asset(asset))
    return text


def apps() -> Apps:
    """The MCP Apps extension carrying the three pages (the view tools are listed with all the others).

    A page is read from the package when a client reads it, not when the server starts.
    """
    extension = Apps()
    # Nothing outside the page itself: no fetch, no CDN, no frames. Declared empty on purpose so a
    # reviewer (and the host's audit log) sees that this is the whole policy.
    csp = ResourceCsp(connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[])
    meta = {"ui": {"csp": csp.model_dump(by_alias=True), "prefersBorder": True}}
    for page in PAGES:
        extension.add_resource(
            FunctionResource(
                uri=page.uri,
                name=page.name,
                title=page.title,
                description=page.description,
                mime_type=APP_MIME_TYPE,
                meta=meta,
                fn=partial(html, page),
            )
        )
    return extension
