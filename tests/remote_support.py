"""Remote mode under test: `serve --remote` processes, people at a browser, the SDK's OAuth client.

- :class:`RemoteServer` runs ``astravue-mcp serve --remote`` as a real process on a free loopback
  port, against the suite's OpenID provider (Keycloak-shaped) and a sandbox that validates its JWTs.
- :class:`Person` is someone at a browser: it follows our consent page (cookie, CSRF token) and
  the provider's login, and hands the client the code that comes back, like a real browser would.
- :func:`connect` is an MCP client with the SDK's own ``OAuthClientProvider``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from astravue_mcp.sandbox import SandboxServer
from tests.oidc import CLIENT_SECRET, CLIENTS, OidcProvider, free_port, node_or_skip
from tests.support import started, stop

EXE = [sys.executable, "-m", "astravue_mcp"]
UPSTREAM_TTL = 3
"""Seconds Astravue's (the provider's) access tokens live: refreshes happen inside a test."""
MAYA = "maya.patel@northwind.example"  # sandbox user 1
SOFIA = "sofia.rossi@northwind.example"  # sandbox user 3
KENJI = "kenji.tanaka@northwind.example"  # sandbox user 4


class RemoteServer:
    """One replica: ``astravue-mcp serve --remote`` with these extra ASTRAVUE_* variables."""

    def __init__(self, env: dict[str, str], port: int | None = None, public_url: str | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"  # where this replica listens
        self.public_url = public_url or self.url  # what clients are told (the same for every replica)
        self.mcp_url = f"{self.url}/mcp"
        base = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(
            [*EXE, "serve", "--remote", "--public-url", self.public_url, "--port", str(self.port)],
            env=base | {"ASTRAVUE_LOG_LEVEL": "DEBUG"} | env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if not started(self.proc, f"{self.url}/healthz"):
            self.stop()
            raise RuntimeError(f"the remote server did not start:\n{self.output}")

    @property
    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        stop(self.proc)


class Upstream:
    """The provider (Astravue's Keycloak stand-in) and the sandbox API that trusts it."""

    def __init__(
        self, callback_ports: list[int], access_ttl: int = UPSTREAM_TTL, orgs: dict[int, list[str]] | None = None
    ) -> None:
        self.provider = OidcProvider(
            node_or_skip(), [f"http://127.0.0.1:{p}/oauth/callback" for p in callback_ports], access_ttl=access_ttl
        )
        self.api = SandboxServer(issuer=self.provider.issuer, orgs=orgs).start()

    def org_requests(self) -> dict[str, int]:
        """API requests let into each organisation so far."""
        return dict(httpx2.get(f"{self.api.url}/_sandbox/stats").json()["data"]["orgs"])

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "ASTRAVUE_API_URL": self.api.url,
            "ASTRAVUE_AUTH_URL": self.provider.issuer,
            "ASTRAVUE_CLIENT_ID": CLIENTS["client_secret_post"],
            "ASTRAVUE_CLIENT_SECRET": CLIENT_SECRET,
            "ASTRAVUE_ORG_ID": "1",
            "ASTRAVUE_REFRESH_MARGIN": "0.5",
            "ASTRAVUE_RATE_LIMIT": "1000",
            "ASTRAVUE_TOOLSETS": "all",
        } | extra

    def stop(self) -> None:
        self.api.stop()
        self.provider.stop()


@contextmanager
def upstream(
    callback_ports: list[int], access_ttl: int = UPSTREAM_TTL, orgs: dict[int, list[str]] | None = None
) -> Iterator[Upstream]:
    running = Upstream(callback_ports, access_ttl, orgs)
    try:
        yield running
    finally:
        running.stop()


class MemoryStorage:
    """The SDK client's token storage, in memory (what a real client keeps on disk)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """Someone at a browser who allows (or refuses) on our consent page and signs in upstream."""

    def __init__(self, login: str, *, allow: bool = True) -> None:
        self.login, self.allow = login, allow
        self.returned: str | None = None
        self.http = httpx2.Client(timeout=15)  # one cookie jar, like one browser

    def visit(self, url: str, client_redirect: str) -> str:
        """Follow pages and redirects from ``url`` until the browser is sent to the client; that URL."""
        target = urlsplit(client_redirect)
        response = self.http.get(url)
        for _ in range(30):
            if response.is_redirect:
                location = str(response.url.join(response.headers["location"]))
                parts = urlsplit(location)
                if (parts.scheme, parts.netloc, parts.path) == (target.scheme, target.netloc, target.path):
                    return location
                response = self.http.get(location)
                continue
            page = response.text
            if response.status_code != 200:
                raise AssertionError(f"HTTP {response.status_code} at {response.url}: {page[:300]}")
            if 'name="csrf"' in page:  # our consent page
                form = dict(re.findall(r'name="(txn|csrf)" value="([^"]+)"', page))
                form["decision"] = "allow" if self.allow else "deny"
                response = self.http.post(response.url.join("/consent"), data=form)
                continue
            prompt = re.search(r'name="prompt" value="(\w+)"', page)
            action = re.search(r'<form[^>]*action="([^"]+)"', page)
            if prompt is None or action is None:
                raise AssertionError(f"unexpected page at {response.url}: {page[:300]}")
            form = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                form |= {"login": self.login, "password": "any"}
            response = self.http.post(response.url.join(action.group(1)), data=form)
        raise AssertionError("too many redirects")


def client_redirect_uri() -> str:
    return f"http://127.0.0.1:{free_port()}/callback"  # nothing listens: the code is read from the URL


class OAuthClient:
    """The SDK's OAuth client for one person, with our :class:`Person` as its browser."""

    def __init__(self, server_url: str, person: Person, storage: MemoryStorage | None = None) -> None:
        self.person = person
        self.storage = storage or MemoryStorage()
        self.redirect_uri = client_redirect_uri()
        self.redirected: str | None = None
        self.provider = OAuthClientProvider(
            server_url=server_url,
            client_metadata=OAuthClientMetadata(
                client_name="Test Assistant",
                redirect_uris=[AnyUrl(self.redirect_uri)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            ),
            storage=self.storage,
            redirect_handler=self._redirect,
            callback_handler=self._callback,
        )

    async def _redirect(self, url: str) -> None:
        self.redirected = await anyio.to_thread.run_sync(self.person.visit, url, self.redirect_uri)

    async def _callback(self) -> AuthorizationCodeResult:
        assert self.redirected is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.redirected).query).items()}
        if "error" in query:
            raise PermissionError(f"authorization refused: {query['error']}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


@asynccontextmanager
async def connect(server_url: str, oauth: OAuthClient) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(auth=oauth.provider, timeout=30) as http,
        Client(streamable_http_client(server_url, http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def bearer_client(url: str, token: str, **options: Any) -> AsyncIterator[Client]:
    """An MCP client that sends this bearer token as it is (no OAuth of its own); ``options`` go to Client."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), **options) as client,
    ):
        yield client


async def structured(client: Client, tool: str, **args: Any) -> Any:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


def state_keys() -> str:
    return secrets.token_urlsafe(32)


class ManualClient:
    """The OAuth steps by hand (DCR, authorize, token, revoke) for the negative tests."""

    def __init__(self, server: RemoteServer, redirect_uri: str | None = None, client_id: str | None = None) -> None:
        self.server = server
        self.redirect_uri = redirect_uri or client_redirect_uri()
        if client_id is not None:  # a Client ID Metadata Document URL: nothing to register
            self.client_id = client_id
            return
        registered = httpx2.post(
            f"{server.url}/register",
            json={
                "client_name": "Manual Client",
                "redirect_uris": [self.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            },
        )
        assert registered.status_code == 201, registered.text
        self.client_id = registered.json()["client_id"]

    def on(self, server: RemoteServer) -> ManualClient:
        """The same registered client, talking to another replica."""
        other = copy.copy(self)
        other.server = server
        return other

    def query(self, challenge: str, *, state: str = "s", resource: str | None = None) -> dict[str, str]:
        """An authorization request's parameters."""
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "resource": resource or f"{self.server.public_url}/mcp",
        }

    def authorize(self, person: Person, verifier: str, state: str = "st-1") -> dict[str, str]:
        """The query the browser brings back to the client (code or error, state, iss)."""
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = self.query(challenge, state=state)
        back = person.visit(f"{self.server.url}/authorize?{urlencode(query)}", self.redirect_uri)
        return {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}

    def token(self, **form: str) -> httpx2.Response:
        return httpx2.post(f"{self.server.url}/token", data={"client_id": self.client_id} | form)

    def exchange(self, code: str, verifier: str) -> httpx2.Response:
        return self.token(
            grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=self.redirect_uri
        )

    def refresh(self, refresh_token: str) -> httpx2.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def sign_in(self, person: Person) -> dict[str, Any]:
        verifier = secrets.token_urlsafe(48)
        answer = self.exchange(self.authorize(person, verifier)["code"], verifier)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def revoke(self, token: str) -> httpx2.Response:
        # The SDK's revocation handler wants the client_secret field even from a public client.
        form = {"client_id": self.client_id, "client_secret": "", "token": token}
        return httpx2.post(f"{self.server.url}/revoke", data=form)


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}


def mcp_post(server: RemoteServer | str, token: str | None) -> httpx2.Response:
    """An initialize request to the server's (or this URL's) MCP endpoint, with or without a bearer token."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = server if isinstance(server, str) else server.mcp_url
    return httpx2.post(url, json=INIT, headers=headers, timeout=10)
