"""Streamable HTTP: the MCP endpoint at ``/mcp`` plus ``/healthz``, guarded for exposure.

Who may call is decided by who connected, never by what a request says about itself:

- a request from this machine (peer 127.0.0.1 or ::1, no proxy in between) is served without a
  token unless ``ASTRAVUE_HTTP_TOKEN`` is set;
- any other peer, and any request that came through a proxy (``Forwarded``/``X-Forwarded-For``/
  ``X-Real-IP``), must send the operator token; without one configured it is refused. Forwarding
  headers are never trusted to grant access, only to require the token.

``Host``/``Origin`` are still checked against an allow-list (DNS rebinding), request bodies are
capped, the session table is sized for one operator's clients, and binding beyond loopback needs
the token from the start.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
from typing import Any

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from astravue_mcp import __version__
from astravue_mcp.config import Settings, SettingsError, is_loopback, listed

log = logging.getLogger("astravue_mcp.http")
MAX_BODY = 1_000_000
MIN_TOKEN_LENGTH = 32
"""Shorter operator tokens are refused at start: the token is all that stands between a network and the login."""
MAX_SESSIONS = 64
"""Open MCP sessions at once: one operator's clients, with room to spare (the SDK's default is 10,000)."""
SESSION_IDLE_TIMEOUT = 600.0
"""A session with no request in flight for this long ends; its client starts a new one (SDK default: 30 min)."""
LOCAL_PEERS = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
"""Only these count as this machine; other 127.x addresses are not what a local client uses, so they need the token."""
FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def security(settings: Settings, host: str, port: int) -> TransportSecuritySettings:
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1", "localhost"]
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    if not is_loopback(host):
        hosts += [f"{host}:{port}", host]
    hosts += listed(settings.allowed_hosts)
    origins += listed(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def bearer_token(headers: dict[bytes, bytes]) -> bytes | None:
    """The credentials of an ``Authorization: Bearer ...`` header (the scheme is case-insensitive, RFC 7235)."""
    scheme, _, credentials = headers.get(b"authorization", b"").strip().partition(b" ")
    return credentials.strip() if scheme.lower() == b"bearer" and credentials.strip() else None


def from_this_machine(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    client = scope.get("client")
    if not client or client[0] not in LOCAL_PEERS:
        return False
    return not any(name in headers for name in FORWARDING_HEADERS)


def _host_name(headers: dict[bytes, bytes]) -> str:
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") and "]:" in host else host


class AccessGate:
    """Decides who reaches the app (see the module docstring); ``/healthz`` names the version only to this machine."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        local = from_this_machine(scope, headers)
        given = bearer_token(headers)
        authorized = self.token is not None and given is not None and hmac.compare_digest(given, self.token)
        if scope["path"] == "/healthz":
            # Probes need no token; the version is for this machine (asked by a local name) or the operator.
            body: dict[str, str] = {"status": "ok"}
            if authorized or (local and _host_name(headers) in LOCAL_HOSTS):
                body["version"] = __version__
            await JSONResponse(body)(scope, receive, send)
            return
        if self.token is None and not local:
            peer = (scope.get("client") or ("an unknown address",))[0]
            log.warning("Refused an HTTP request from %s: only this machine may call without ASTRAVUE_HTTP_TOKEN", peer)
            await JSONResponse(
                {
                    "error": "forbidden",
                    "error_description": "this server serves only its own machine; the operator must set "
                    "ASTRAVUE_HTTP_TOKEN to accept other clients",
                },
                403,
            )(scope, receive, send)
            return
        if self.token is not None and not authorized:
            await JSONResponse(
                {"error": "unauthorized", "error_description": "bearer token required"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SessionGuard:
    """Two answers of the SDK's Streamable HTTP transport (mcp 2.x) put right for clients of the dated revisions.

    - A request without a session id that is not an ``initialize`` gets 400 "Missing session ID",
      but carrying the id of a session the SDK opened for it and discarded at once
      (``streamable_http_manager.py`` admits a session before the transport refuses the request,
      and ``streamable_http.py`` stamps its id on every error): the client then gets 404 with it.
      That id is removed from a refusal to a request that carried none.
    - A session's request with an ``MCP-Protocol-Version`` the server does not speak is routed to the
      2026-07-28 entry, whose 400 talks about the ``_meta`` envelope to a client that never used it.
      A request that belongs to a session (a dated revision: 2026-07-28 has none) gets a 400 naming
      the header and the versions supported instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        session = headers.get(b"mcp-session-id")
        version = headers.get(b"mcp-protocol-version", b"").decode("latin-1")
        if session is not None and version and version not in SUPPORTED_PROTOCOL_VERSIONS:
            message = (
                f"Unsupported MCP-Protocol-Version {version!r}: send the version negotiated at initialize "
                f"(this server speaks {', '.join(SUPPORTED_PROTOCOL_VERSIONS)})."
            )
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
            await JSONResponse(body, 400)(scope, receive, send)
            return
        if session is not None:
            await self.app(scope, receive, send)
            return

        async def without_foreign_session(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"mcp-session-id"]
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, without_foreign_session)


def check_token(settings: Settings) -> None:
    token = settings.http_token.get_secret_value() if settings.http_token else None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise SettingsError(
            f"ASTRAVUE_HTTP_TOKEN is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} random characters, "
            "e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def create_http_app(server: Any, settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> ASGIApp:
    check_token(settings)
    if not is_loopback(host) and settings.http_token is None:
        raise SettingsError(
            f"Refusing to listen on {host} without ASTRAVUE_HTTP_TOKEN: set a long random token that clients must "
            "send as 'Authorization: Bearer <token>', or bind to 127.0.0.1."
        )
    app: Starlette = server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=security(settings, host, port),
        max_request_body_size=MAX_BODY,
        max_sessions=MAX_SESSIONS,
        session_idle_timeout=SESSION_IDLE_TIMEOUT,
        host=host,
    )
    return AccessGate(SessionGuard(app), settings.http_token.get_secret_value() if settings.http_token else None)


def check_port(host: str, port: int) -> None:
    """A taken port is a setting to change, not a uvicorn traceback (checked before anything claims to serve)."""
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise SettingsError(f"Cannot listen on {host}:{port}: {reason}. Choose another port with --port.") from None


def serve_http(server: Any, settings: Settings, host: str, port: int) -> int:
    return run_app(create_http_app(server, settings, host, port), settings, host, port)


def run_app(app: ASGIApp, settings: Settings, host: str, port: int, url: str | None = None) -> int:
    check_port(host, port)
    log.info("MCP over Streamable HTTP at %s", url or f"http://{host}:{port}/mcp")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), log_config=None)
    return 0
