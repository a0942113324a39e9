"""Run the sandbox over real HTTP: in a background thread (tests, demo) or blocking (CLI).

Uvicorn's logging config is never used: its access log writes to stdout, which belongs to the
MCP stdio transport. Uvicorn's loggers propagate to ours, and the CLI logs to stderr.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Collection, Mapping
from types import TracebackType

import anyio
import uvicorn
from starlette.applications import Starlette

from astravue_mcp.config import SANDBOX_ORG_ID, SANDBOX_TOKEN
from astravue_mcp.sandbox.app import create_app
from astravue_mcp.sandbox.faults import SimulatedReset

log = logging.getLogger("astravue_mcp.sandbox")


class _HideSimulatedResets(logging.Filter):
    """Uvicorn logs a traceback for every app exception; a simulated reset is not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))


def _quiet_resets() -> None:
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideSimulatedResets) for f in error_log.filters):
        error_log.addFilter(_HideSimulatedResets())


def _config(app: Starlette, host: str, port: int, access_log: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=access_log, lifespan="off", timeout_graceful_shutdown=2
    )


class SandboxServer:
    """The sandbox on ``127.0.0.1`` in a background thread; ``port=0`` picks a free port.

    Use as ``with SandboxServer() as sandbox:`` or ``async with ...``; ``sandbox.url`` is the base
    URL and ``sandbox.app.state.sandbox`` the store. Pass ``app`` to serve a prepared app.
    """

    def __init__(
        self,
        app: Starlette | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        issuer: str | None = None,
        latency_ms: float = 0,
        admin: bool = True,
        orgs: Mapping[int, Collection[str]] | None = None,
    ) -> None:
        self.app = app or create_app(issuer=issuer, latency_ms=latency_ms, admin=admin, orgs=orgs)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        _quiet_resets()
        # Binding here (not in uvicorn) makes the real port known before the thread starts.
        sock = socket.create_server((self.host, self.port))
        # Uvicorn sets TCP_NODELAY only on sockets it binds itself; without it every answer waits
        # for the client's delayed ACK (~40 ms instead of ~1.5 ms per request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.app, self.host, self.port, access_log=False))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"astravue-sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox did not start on {self.url}")
            time.sleep(0.01)
        log.info("sandbox listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> SandboxServer:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)


def run_sandbox(
    host: str = "127.0.0.1", port: int = 8900, issuer: str | None = None, latency_ms: float = 0, admin: bool = True
) -> None:
    """Serve the sandbox until interrupted (``astravue-mcp sandbox``). Logs go to stderr."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_resets()
    auth = f"JWTs from {issuer}" if issuer else f"ASTRAVUE_ACCESS_TOKEN={SANDBOX_TOKEN}"
    log.info(
        "Astravue sandbox on http://%s:%s (auth: %s, X-Org-Id: %s, admin endpoints: %s)",
        host,
        port,
        auth,
        SANDBOX_ORG_ID,
        "/_sandbox/*" if admin else "off",
    )
    uvicorn.Server(
        _config(create_app(issuer=issuer, latency_ms=latency_ms, admin=admin), host, port, access_log=True)
    ).run()
