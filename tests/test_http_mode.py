"""Streamable HTTP mode as deployed: the real `astravue-mcp serve --transport http` process on 127.0.0.1.

A page in a browser must not be able to reach it (DNS rebinding: a foreign Host or Origin is
refused), a huge body is refused before it is read whole, an operator-chosen bearer token guards it
when set (and is required before it may listen beyond loopback), and the token never shows in logs.
Who may call without the token follows the peer address, not the Host header: 127.0.0.2 stands in
for another machine (and an ASGI scope with another client address for the ASGI entry point).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest

from astravue_mcp import __version__
from astravue_mcp.cli import parser
from astravue_mcp.config import load_settings
from astravue_mcp.http_app import MAX_BODY, MAX_SESSIONS
from tests.support import started
from tests.test_stdio_e2e import free_port

EXE = [sys.executable, "-m", "astravue_mcp"]
TOKEN = "operator-chosen-token-5c1f9a7e-long-enough"  # a test value, not a credential
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


# ---------------------------------------------------------------- who connected, not what the request says
def from_address(source: str) -> httpx2.Client:
    """A client whose connections come from ``source`` (127.0.0.2 stands in for another machine)."""
    return httpx2.Client(transport=httpx2.HTTPTransport(local_address=source), timeout=10)


def test_another_peer_is_refused_without_a_token_whatever_host_it_sends(server: HttpServer) -> None:
    with from_address("127.0.0.2") as other:
        for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
            answer = other.post(f"{server.url}/mcp", json=INIT, headers=HEADERS | {"Host": host})
            assert answer.status_code == 403, answer.text
            assert "ASTRAVUE_HTTP_TOKEN" in answer.json()["error_description"]
        health = other.get(f"{server.url}/healthz")
    assert health.json() == {"status": "ok"}  # a probe works; the version is not told
    assert httpx2.get(f"{server.url}/healthz").json() == {"status": "ok", "version": __version__}
    assert httpx2.get(f"{server.url}/healthz", headers={"Host": "evil.example"}).json() == {"status": "ok"}
    assert server.post().status_code == 200  # this machine is still served


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_proxied_request_needs_the_token_even_from_loopback(server: HttpServer, header: str) -> None:
    value = "for=127.0.0.1" if header == "Forwarded" else "127.0.0.1"
    assert server.post(**{header: value}).status_code == 403


def test_the_token_admits_another_peer_and_the_scheme_is_case_insensitive(guarded: HttpServer) -> None:
    with from_address("127.0.0.2") as other:
        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = other.post(
                f"{guarded.url}/mcp", json=INIT, headers=HEADERS | {"Authorization": f"{scheme} {TOKEN}"}
            )
            assert answer.status_code == 200, (scheme, answer.text)
        assert other.post(f"{guarded.url}/mcp", json=INIT, headers=HEADERS).status_code == 401
        health = other.get(f"{guarded.url}/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert health.json()["version"] == __version__


def test_a_short_operator_token_is_refused_at_start() -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    done = subprocess.run(
        [*EXE, "serve", "--transport", "http", "--sandbox", "--port", str(free_port())],
        env=base | {"ASTRAVUE_HTTP_TOKEN": "short-but-not-31-characters-xyz"[:31]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("astravue-mcp: ASTRAVUE_HTTP_TOKEN is 31 characters long; use at least 32 random characters")
    )


@pytest.mark.anyio
@pytest.mark.parametrize("peer", ["203.0.113.9", "127.0.0.2", "testclient"])
async def test_the_asgi_app_refuses_another_peer_without_a_token(peer: str) -> None:
    """``uvicorn astravue_mcp.asgi:app --host 0.0.0.0`` without a token: the peer decides, not ``Host``."""
    from astravue_mcp.asgi import create_app

    app = create_app(load_settings({}, org_id=1, access_token="x"))
    transport = httpx2.ASGITransport(app, client=(peer, 4000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        answer = await http.post("/mcp", json=INIT, headers=HEADERS)
        assert answer.status_code == 403
        assert (await http.get("/healthz")).json() == {"status": "ok"}


def test_the_session_table_is_sized_for_one_operator() -> None:
    server = HttpServer(ASTRAVUE_LOG_LEVEL="WARNING")  # its own: the table fills up (and quietly: pipes are finite)
    try:
        first = server.post()
        opened = [first]
        while opened[-1].status_code == 200 and len(opened) <= MAX_SESSIONS:
            opened.append(server.post())
        assert opened[-1].status_code == 503, len(opened)  # the table is full: no new session...
        assert len(opened) == MAX_SESSIONS + 1
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = {"mcp-session-id": first.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        again = server.post(json.dumps(ping).encode(), **headers)
        assert again.status_code == 200, again.text  # ...but a client's own session still works
    finally:
        server.stop()
