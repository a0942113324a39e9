"""The MCP server over Streamable HTTP as a deployable ASGI app: ``uvicorn astravue_mcp.asgi:app``.

Settings come from the same ``ASTRAVUE_*`` variables as every other command and are checked when
the app is first loaded, so a misconfiguration stops uvicorn at start with the variable's name.
The app serves ``/mcp`` (Streamable HTTP) and ``/healthz`` (for the proxy's health check).
``remote_app`` is remote (multi-user) mode instead: every person signs in with OAuth
(``ASTRAVUE_PUBLIC_URL``, ``ASTRAVUE_STATE_URL``, ``ASTRAVUE_STATE_KEYS``; see docs/deploy.md).

Meant to run on 127.0.0.1 behind a reverse proxy (TLS there). Who may call follows the peer
address (see :mod:`astravue_mcp.http_app`): without ``ASTRAVUE_HTTP_TOKEN`` only this machine is
served, so ``--host 0.0.0.0`` without a token serves nobody else, whatever ``Host`` they send; any
request through the proxy needs the token. Loopback ``Host`` headers are accepted on any port; the
proxy's public host name must be listed in ``ASTRAVUE_ALLOWED_HOSTS`` (DNS-rebinding protection),
and once one is, the token is required at start.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from starlette.types import ASGIApp

from astravue_mcp.config import Settings, SettingsError, is_loopback, listed, load_settings
from astravue_mcp.http_app import create_http_app
from astravue_mcp.redact import setup_logging
from astravue_mcp.server import build_server

LOOPBACK_HOSTS = "127.0.0.1:*,localhost:*,[::1]:*"
LOOPBACK_ORIGINS = "http://127.0.0.1:*,http://localhost:*"


def _host_only(entry: str) -> str:
    if entry.startswith("["):
        return entry[1:].split("]", 1)[0]
    return entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry


def create_app(settings: Settings | None = None) -> ASGIApp:
    """Build the app; ``settings`` default to the environment's."""
    settings = settings or load_settings()
    settings.require_account()
    public = [h for h in listed(settings.allowed_hosts) if not is_loopback(_host_only(h))]
    if public and settings.http_token is None:
        raise SettingsError(
            f"ASTRAVUE_ALLOWED_HOSTS names {', '.join(public)}, but ASTRAVUE_HTTP_TOKEN is not set: set a long "
            "random token that clients must send as 'Authorization: Bearer <token>'."
        )
    # uvicorn's port is not known here; loopback is safe on any port (DNS rebinding needs a name).
    widened = settings.model_copy(
        update={
            "allowed_hosts": ",".join([LOOPBACK_HOSTS, *listed(settings.allowed_hosts)]),
            "allowed_origins": ",".join([LOOPBACK_ORIGINS, *listed(settings.allowed_origins)]),
        }
    )
    return create_http_app(build_server(widened), widened, host="127.0.0.1", port=8000)


def _built(create: Callable[[Settings], ASGIApp]) -> ASGIApp:
    try:
        settings = load_settings()
        setup_logging(settings.log_level)  # the same redacting stderr logging as the CLI
        return create(settings)
    except SettingsError as exc:
        # The server (uvicorn, gunicorn...) would print a long traceback around this one useful line.
        raise SystemExit(f"astravue-mcp: {exc}") from None


@cache
def _app() -> ASGIApp:
    return _built(create_app)


@cache
def _remote_app() -> ASGIApp:
    from astravue_mcp.remote.app import create_remote_app  # deferred: remote mode only

    return _built(create_remote_app)


def __getattr__(name: str) -> Any:
    # Built on first access (uvicorn's getattr), not at import: importing never needs settings.
    if name == "app":
        return _app()
    if name == "remote_app":
        return _remote_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
