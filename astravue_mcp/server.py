"""Server assembly: ``build_server(settings)``, one pass from the settings to a ready MCP server.

Settings -> the catalogue of tools they select -> the server serving it (its lifespan holds the
state tools reach) -> its resources -> the prompts whose tools it publishes. Nothing here touches
the network or the token store: the API client (and with it the login) is created on the first call
that needs it, and tools are built on their first call, so the stdio server answers ``initialize``
and ``tools/list`` at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2

from astravue_mcp import __version__, prompts, resources, views
from astravue_mcp.catalogue import Catalogue, CatalogueServer
from astravue_mcp.config import SANDBOX_URL, Settings
from astravue_mcp.protocol import protocol_middleware
from astravue_mcp.state import AppState, ClientSource, LocalLogin, lifespan

INSTRUCTIONS = (
    "Astravue workspace: org > spaces > projects > tasks (plus personal tasks). Find ids with the list "
    "tools (astravue_list_spaces, then astravue_list_projects); a task is found by its id alone. Statuses and "
    'priorities are given by label (astravue://labels lists them); owners by id, name, email or "me" '
    "(astravue_list_people). Dates are ISO 8601; durations are reported in minutes."
)


def build_server(
    settings: Settings,
    transport: httpx2.AsyncBaseTransport | None = None,
    *,
    clients: Callable[[], ClientSource] | None = None,
    app_state: Callable[..., AppState] = AppState,
    **server_options: Any,
) -> CatalogueServer:
    """The MCP server for these settings; ``transport`` lets tests and the sandbox bypass TCP.

    ``clients`` makes where each request's API client comes from (default: this machine's login,
    one client for the server); ``app_state`` makes the state tools see (remote mode: one whose
    ``client_for`` and memo are the caller's own); ``server_options`` go to the SDK's server
    (remote mode: the requestState keys every replica shares).
    """
    server = CatalogueServer(
        Catalogue.for_settings(settings),
        "astravue",
        title="Astravue",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan(settings, clients or (lambda: LocalLogin(settings, transport)), app_state),
        log_level=settings.log_level,
        middleware=[resources.bind_request, protocol_middleware],
        # The MCP Apps extension: the views' ui:// pages and the capability; their tools are in the catalogue.
        extensions=[views.apps()],
        **server_options,
    )
    resources.register(server, server.catalogue.names)
    prompts.register(server, server.catalogue.names)
    return server


def sandbox_server(settings: Settings, **app_options: Any) -> CatalogueServer:
    """The server wired in-process to a fresh embedded sandbox: no account, no network, no login."""
    from astravue_mcp.sandbox import create_app  # deferred: the sandbox (~40 ms) is for demos and tests only

    transport = httpx2.ASGITransport(app=create_app(**app_options))
    return build_server(settings.sandboxed(SANDBOX_URL), transport=transport)
