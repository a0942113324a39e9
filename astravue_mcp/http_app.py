"""Streamable HTTP: the MCP endpoint at ``/mcp`` plus ``/healthz``, guarded for exposure.

Loopback by default; ``Host``/``Origin`` checked against an allow-list (DNS rebinding); request
bodies capped; an operator-chosen bearer token (``ASTRAVUE_HTTP_TOKEN``) is required before the
server may listen on any other interface.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
from typing import Any

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from astravue_mcp import __version__
from astravue_mcp.config import Settings, SettingsError, is_loopback, listed

log = logging.getLogger("astravue_mcp.http")
MAX_BODY = 1_000_000


def security(settings: Settings, host: str, port: int) -> TransportSecuritySettings:
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1", "localhost"]
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    if not is_loopback(host):
        hosts += [f"{host}:{port}", host]
    hosts += listed(settings.allowed_hosts)
    origins += listed(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class BearerGate:
    """Refuse every request to the MCP endpoint that lacks the operator's token (constant-time compare)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = JSONResponse(
                    {"error": "unauthorized", "error_description": "bearer token required"},
                    401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_http_app(server: Any, settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> ASGIApp:
    if not is_loopback(host) and settings.http_token is None:
        raise SettingsError(
            f"Refusing to listen on {host} without ASTRAVUE_HTTP_TOKEN: set a long random token that clients must "
            "send as 'Authorization: Bearer <token>', or bind to 127.0.0.1."
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    server.custom_route("/healthz", methods=["GET"])(healthz)
    app: Starlette = server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=security(settings, host, port),
        max_request_body_size=MAX_BODY,
        host=host,
    )
    if settings.http_token is not None:
        return BearerGate(app, settings.http_token.get_secret_value())
    return app


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
