"""What the protocol asks of the server per connection that the SDK leaves to it: logging and subscriptions.

On the dated revisions (up to 2025-11-25) a client chooses the lowest log level it wants with
``logging/setLevel`` and asks for ``notifications/resources/updated`` with ``resources/subscribe``;
the server must declare ``logging`` and ``resources.subscribe`` in its capabilities to be asked.
On 2026-07-28 the SDK does both: a request opts into log messages through its ``_meta`` (the SDK
drops the rest) and a ``subscriptions/listen`` stream receives what ``Context.notify_resource_updated``
publishes.

The SDK declares a capability only for a handler registered on its low-level server, which the
high-level server does not expose; :func:`protocol_middleware` (the public middleware seam) answers
the two dated-revision methods itself and adds the capabilities to ``initialize``. Per-connection
state (:class:`Peers`, kept on the server's lifespan state) is keyed by the connection's
``initialize`` parameters (one object per connection, the only connection-scoped value a request
context exposes) and dies with them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, get_args

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, LoggingLevel, ResourceUpdatedNotification, ResourceUpdatedNotificationParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger("astravue_mcp.protocol")
LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)
"""Lowest to highest severity (RFC 5424 order, as the spec lists them)."""
LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
DEFAULT_LEVEL: LoggingLevel = "warning"
"""Until a client chooses, nothing below a warning is sent."""


@dataclass
class Peer:
    """What one connection on a dated revision asked for."""

    level: LoggingLevel = DEFAULT_LEVEL
    subscribed: set[str] = field(default_factory=set)


class Peers:
    """Per-connection state, each entry dropped when its connection's ``initialize`` params are collected.

    ``per_connection`` is false for a server whose every HTTP request is a connection of its own
    (stateless serving, remote mode): nothing asked on one request is there for the next, so
    subscriptions on the dated revisions are neither declared nor served there.
    """

    def __init__(self, per_connection: bool = True) -> None:
        self.per_connection = per_connection
        self._peers: dict[int, tuple[weakref.ref[Any], Peer]] = {}

    def get(self, session: Any) -> Peer:
        params = session.client_params
        if params is None:  # no handshake (2026-07-28 without client info): nothing was asked
            return Peer()
        key = id(params)
        entry = self._peers.get(key)
        if entry is None or entry[0]() is not params:
            entry = (weakref.ref(params, lambda _: self._peers.pop(key, None)), Peer())
            self._peers[key] = entry
        return entry[1]


def is_modern(protocol_version: str | None) -> bool:
    return protocol_version in MODERN_PROTOCOL_VERSIONS


class HasPeers(Protocol):
    """The server's lifespan state, which keeps what each connection asked for."""

    peers: Peers


async def protocol_middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Serves ``logging/setLevel`` and ``resources/(un)subscribe`` on the dated revisions, and declares them.

    It also refuses a pagination cursor: the SDK's list handlers ignore one, so a client that made
    one up (or kept one from another server) would silently get the first page again.
    """
    peers = cast(HasPeers, ctx.lifespan_context).peers
    if ctx.method in ("initialize", "server/discover"):
        return declare(await call_next(ctx), subscriptions=peers.per_connection or is_modern(ctx.protocol_version))
    if ctx.method in LISTS and (ctx.params or {}).get("cursor") is not None:
        # Every list is answered in one page, so no cursor was ever handed out.
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"Invalid cursor for {ctx.method}: this server lists everything at once; call it without one.",
        )
    if is_modern(ctx.protocol_version) or ctx.request_id is None:
        return await call_next(ctx)
    params = ctx.params or {}
    if ctx.method == "logging/setLevel":
        level = params.get("level")
        if level not in LEVELS:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown log level {level!r}; one of: {', '.join(LEVELS)}.")
        peers.get(ctx.session).level = cast(LoggingLevel, level)
        return {}
    if ctx.method in ("resources/subscribe", "resources/unsubscribe") and peers.per_connection:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise MCPError(code=INVALID_PARAMS, message=f"{ctx.method} needs the resource's uri.")
        subscribed = peers.get(ctx.session).subscribed
        if ctx.method == "resources/subscribe":
            subscribed.add(uri)
        else:
            subscribed.discard(uri)
        return {}
    return await call_next(ctx)


def declare(result: HandlerResult, subscriptions: bool) -> HandlerResult:
    """The ``initialize`` (or ``server/discover``) result with ``logging``, and ``resources.subscribe`` if served.

    On 2026-07-28 the SDK already declares ``resources.subscribe`` for its ``subscriptions/listen``.
    """
    if not isinstance(result, dict) or "capabilities" not in result:
        return result
    capabilities = {**result["capabilities"], "logging": {}}
    if "resources" in capabilities and subscriptions:
        capabilities["resources"] = {**capabilities["resources"], "subscribe": True}
    return {**result, "capabilities": capabilities}


def log_wanted(peers: Peers, ctx: Context, level: LoggingLevel) -> bool:
    """Whether the client asked for messages at ``level`` (on 2026-07-28 the SDK decides per request)."""
    if is_modern(ctx.protocol_version):
        return True
    return LEVELS.index(level) >= LEVELS.index(peers.get(ctx.session).level)


async def resources_updated(peers: Peers, ctx: Context, uris: Iterable[str]) -> None:
    """Tell the client which resources a tool call changed: the subscribed ones, on any revision.

    A notification that cannot be delivered (the client went away) never costs the call its result.
    """
    modern = is_modern(ctx.protocol_version)
    subscribed = set() if modern else peers.get(ctx.session).subscribed
    for uri in uris:
        try:
            if modern:
                await ctx.notify_resource_updated(uri)
            elif uri in subscribed:
                # On this request's stream: it reaches a client that opened no standalone stream too.
                await ctx.session.send_notification(
                    ResourceUpdatedNotification(params=ResourceUpdatedNotificationParams(uri=uri)),
                    related_request_id=ctx.request_context.request_id,
                )
        except Exception as exc:  # delivery is best effort; the change itself is done
            log.info("Could not send notifications/resources/updated for %s: %s", uri, exc)
