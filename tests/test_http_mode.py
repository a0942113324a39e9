"""Streamable HTTP mode as deployed: the real `astravue-mcp serve --transport http` process on 127.0.0.1.

A page in a browser must not be able to reach it (DNS rebinding: a foreign Host or Origin is
refused), a huge body is refused before it is read whole, an operator-chosen bearer token guards it
when set (and is required before it may listen beyond loopback), and the token never shows in logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest

from astravue_mcp.cli import parser
from astravue_mcp.http_app import MAX_BODY
from tests.support import started
from tests.test_stdio_e2e import free_port

EXE = [sys.executable, "-m", "astravue_mcp"]
TOKEN = "operator-chosen-token-5c1f9a7e"  # a test value, not a credential
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "http-test", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class HttpServer:
    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
        self.proc = subprocess.Popen(
            [*EXE, "serve", "--transport", "http", "--sandbox", "--port", str(self.port)],
            env=base | {"ASTRAVUE_LOG_LEVEL": "DEBUG"} | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if not started(self.proc, f"{self.url}/healthz"):
            self.stop()
            raise RuntimeError(f"the HTTP server did not start: {self.output}")

    def post(self, body: bytes | None = None, **headers: str) -> httpx2.Response:
        content = json.dumps(INIT).encode() if body is None else body
        return httpx2.post(f"{self.url}/mcp", content=content, headers=HEADERS | headers, timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
        self.output = (out + err).decode(errors="replace")


@pytest.fixture(scope="module")
def server() -> Iterator[HttpServer]:
    running = HttpServer()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def guarded() -> Iterator[HttpServer]:
    running = HttpServer(ASTRAVUE_HTTP_TOKEN=TOKEN)
    yield running
    running.stop()
    assert TOKEN not in running.output


def test_http_binds_loopback_unless_told_otherwise() -> None:
    assert parser().parse_args(["serve", "--transport", "http"]).host == "127.0.0.1"


def test_a_local_client_is_served(server: HttpServer) -> None:
    answer = server.post(Origin=server.url)
    assert answer.status_code == 200, answer.text
    assert "astravue" in answer.text
    assert httpx2.get(f"{server.url}/healthz").json()["status"] == "ok"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "attacker.test:{port}", "192.168.1.20:{port}"])
def test_a_foreign_host_is_refused(server: HttpServer, host: str) -> None:
    answer = server.post(Host=host.format(port=server.port))
    assert answer.status_code == 421
    assert answer.text == "Invalid Host header"


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1.evil.example:{port}", "null"])
def test_a_foreign_origin_is_refused(server: HttpServer, origin: str) -> None:
    answer = server.post(Origin=origin.format(port=server.port))
    assert answer.status_code == 403
    assert answer.text == "Invalid Origin header"


def test_an_oversized_body_is_refused(server: HttpServer) -> None:
    huge = json.dumps({**INIT, "params": {**INIT["params"], "padding": "x" * (MAX_BODY + 10)}}).encode()
    assert server.post(huge).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536

    answer = httpx2.post(f"{server.url}/mcp", content=chunks(), headers=HEADERS, timeout=10)
    assert answer.status_code == 413
    assert server.post().status_code == 200  # and the server is still fine


def test_the_operator_token_is_required_when_set(guarded: HttpServer) -> None:
    assert guarded.post().status_code == 401
    assert guarded.post(Authorization="Bearer wrong-token").status_code == 401
    assert guarded.post(Authorization=f"Bearer {TOKEN}x").status_code == 401
    refused = guarded.post(Authorization=TOKEN)  # the scheme is part of it
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert guarded.post(Authorization=f"Bearer {TOKEN}").status_code == 200
    assert httpx2.get(f"{guarded.url}/healthz").status_code == 200  # probes need no token
    # The Host/Origin checks still apply to a caller with the token.
    assert guarded.post(Authorization=f"Bearer {TOKEN}", Host="evil.example").status_code == 421


def test_listening_beyond_loopback_without_a_token_is_refused() -> None:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    done = subprocess.run(
        [*EXE, "serve", "--transport", "http", "--sandbox", "--host", "0.0.0.0", "--port", str(port)],
        env=base,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without ASTRAVUE_HTTP_TOKEN" in done.stderr
    assert done.stdout == ""


def test_a_taken_port_is_a_one_line_error_with_exit_2() -> None:
    import socket
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "astravue_mcp", "serve", "--sandbox", "--transport", "http", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"astravue-mcp: Cannot listen on 127.0.0.1:{port}: Address already in use. Choose another port with --port."
    )
