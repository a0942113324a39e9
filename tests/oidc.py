"""Fixtures for the OAuth tests: a real OpenID provider, a scripted browser, a JWT-checking API.

- :class:`OidcProvider` runs ``tests/node/oidc_provider.mjs`` (panva's ``oidc-provider``, the
  certified Node implementation) on a free 127.0.0.1 port, configured like the Keycloak realm
  ``astravue``: short-lived JWT access tokens, rotated refresh tokens, PKCE, confidential clients.
- :class:`Browser` plays the person: it follows the authorization redirects with a real HTTP
  client, submits the provider's login and consent forms, and finally visits the redirect URI.
- :class:`Realm` adds the embedded sandbox started with ``issuer=``: it accepts only valid,
  unexpired JWT access tokens from that provider (verified against its JWKS), 401 otherwise.

Node is needed: without it these tests are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from astravue_mcp.config import Settings, load_settings
from astravue_mcp.sandbox import SandboxServer

NODE_DIR = Path(__file__).parent / "node"
PROVIDER_SCRIPT = NODE_DIR / "oidc_provider.mjs"
REALM = "/realms/astravue"
ACCESS_TTL = 2
"""Seconds an access token lives: short, so expiry happens inside a test, not after minutes."""

CLIENT_SECRET = "test-secret-Zq8v"  # a test value, not a credential
CLIENTS = {
    "client_secret_post": "astravue-mcp",
    "client_secret_basic": "astravue-mcp-basic",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_or_skip() -> str:
    """The node executable, with the provider's packages installed; skip (fail under CI) otherwise."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed (the OAuth tests run a real OpenID provider on Node 20+)"
    elif not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        problem = "tests/node has no node_modules: run `npm ci` in tests/node (python3 tasks.py test does it)"
    if problem is None:
        assert node is not None
        return node
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {problem}")
    pytest.skip(problem)


class OidcProvider:
    """The Node provider process; ``issuer`` is the realm URL to use as ASTRAVUE_AUTH_URL."""

    def __init__(self, node: str, redirect_uris: list[str], access_ttl: int = ACCESS_TTL) -> None:
        clients = [
            {
                "client_id": client_id,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
                "token_endpoint_auth_method": method,
            }
            for method, client_id in CLIENTS.items()
        ]
        config = {"clients": clients, "accessTokenTTL": access_ttl, "refreshTokenTTL": 3600}
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            [node, str(PROVIDER_SCRIPT), json.dumps(config)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=lambda: lines.put(self.process.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
        try:
            first = lines.get(timeout=20)
            info = json.loads(first)
        except (queue.Empty, ValueError):
            self.stop()
            raise RuntimeError(f"the OpenID provider did not start:\n{self.log()}") from None
        self.issuer: str = info["issuer"]
        self.base = self.issuer.removesuffix(REALM)

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stats(self) -> dict[str, Any]:
        return httpx2.get(f"{self.base}/_test/stats").json()

    def reset_stats(self) -> None:
        """Clear the counters and any delay."""
        httpx2.post(f"{self.base}/_test/reset")

    def delay(self, *, before: float = 0.0, after: float = 0.0) -> None:
        """Hold every token request ``before`` seconds before the provider handles it, and its answer
        ``after`` seconds once the provider has issued (and rotated) the tokens."""
        httpx2.post(f"{self.base}/_test/delay", params={"before": int(before * 1000), "after": int(after * 1000)})

    def revoke(self, refresh_token: str, client_id: str = CLIENTS["client_secret_post"]) -> None:
        """Revoke a refresh token as an administrator would (RFC 7009 endpoint)."""
        response = httpx2.post(
            f"{self.issuer}/protocol/openid-connect/revoke",
            data={"token": refresh_token, "token_type_hint": "refresh_token"},
            auth=(client_id, CLIENT_SECRET),
        )
        response.raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin:
                self.process.stdin.close()  # the script exits when its stdin closes
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._log.close()


class Browser:
    """A person at a browser, scripted: logs in as ``username`` and approves (or cancels).

    Used in place of ``webbrowser.open``: ``browser(url)`` starts the walk in a thread and returns
    at once, like a real browser would. ``walk(url)`` returns the final redirect without visiting it.
    """

    def __init__(self, username: str = "alice", approve: bool = True) -> None:
        self.username = username
        self.approve = approve
        self.thread: threading.Thread | None = None
        self.page: httpx2.Response | None = None
        self.error: BaseException | None = None
        self.opened: list[str] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        self.thread = threading.Thread(target=self._visit, args=(url,), daemon=True)
        self.thread.start()
        return True

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(15)
        if self.error is not None:
            raise self.error

    def _visit(self, url: str) -> None:
        try:
            final = self.walk(url)
            self.page = httpx2.get(final, timeout=10)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def walk(self, url: str) -> str:
        """Follow the provider's pages until it redirects off the provider; return that address."""
        origin = httpx2.URL(url).copy_with(path="/", query=None)
        with httpx2.Client(timeout=10) as http:
            response = http.get(url)
            for _ in range(20):
                if response.is_redirect:
                    target = response.url.join(response.headers["location"])
                    if (target.host, target.port) != (origin.host, origin.port):
                        return str(target)
                    response = http.get(target)
                    continue
                response.raise_for_status()
                page = response.text
                prompt = re.search(r'name="prompt" value="(\w+)"', page)
                if prompt is None:
                    raise AssertionError(f"unexpected provider page: {page[:500]}")
                if not self.approve:
                    abort = re.search(r'href="([^"]+/abort)"', page)
                    assert abort, "no cancel link on the provider's page"
                    response = http.get(response.url.join(abort.group(1)))
                    continue
                action = re.search(r'<form[^>]*action="([^"]+)"', page)
                assert action, "no form on the provider's page"
                form = {"prompt": prompt.group(1)}
                if prompt.group(1) == "login":
                    form |= {"login": self.username, "password": "any"}
                response = http.post(response.url.join(action.group(1)), data=form)
        raise AssertionError("too many redirects at the provider")


@contextmanager
def running_provider(redirect_ports: list[int], access_ttl: int = ACCESS_TTL) -> Iterator[OidcProvider]:
    node = node_or_skip()
    provider = OidcProvider(node, [f"http://127.0.0.1:{port}/callback" for port in redirect_ports], access_ttl)
    try:
        yield provider
    finally:
        provider.stop()


class Recorder(httpx2.AsyncBaseTransport):
    """The real network, noting the status of every answer (to see which path a call took)."""

    def __init__(self) -> None:
        self.real = httpx2.AsyncHTTPTransport()
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.real.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


class Realm:
    """What a test needs: the provider, the API, and settings pointing at both."""

    def __init__(self, provider: OidcProvider, api: SandboxServer, redirect_port: int) -> None:
        self.provider = provider
        self.api = api
        self.redirect_port = redirect_port

    def settings(self, token_dir: Path, *, method: str = "client_secret_post", **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "api_url": self.api.url,
            "auth_url": self.provider.issuer,
            "client_id": CLIENTS[method],
            "client_secret": CLIENT_SECRET,
            "token_auth_method": method,
            "org_id": 1,
            "redirect_uri": f"http://127.0.0.1:{self.redirect_port}/callback",
            "token_store": "file",
            "token_dir": str(token_dir),
            "refresh_margin": 0.5,
            "login_timeout": 15,
            "rate_limit": 1000,
        }
        values.update(overrides)
        return load_settings({}, **values)

    def env(self, settings: Settings) -> dict[str, str]:
        """The same settings as ASTRAVUE_* environment variables, for subprocesses."""
        env = {}
        for name, value in settings.model_dump().items():
            if value is None or name in ("access_token",):
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            env[f"ASTRAVUE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env


@contextmanager
def realm(access_ttl: int = ACCESS_TTL) -> Iterator[Realm]:
    """Provider + sandbox API for a whole test module (one Node start, about half a second)."""
    redirect_port = free_port()
    with running_provider([redirect_port], access_ttl) as provider:
        api = SandboxServer(issuer=provider.issuer).start()
        try:
            yield Realm(provider, api, redirect_port)
        finally:
            api.stop()


@pytest.fixture(scope="module")
def oidc() -> Iterator[Realm]:
    """One provider and sandbox API per test module; import it (and ``settings``) where needed."""
    with realm() as r:
        yield r


@pytest.fixture
def settings(oidc: Realm, tmp_path: Path) -> Settings:
    """Settings for a fresh token store, with the provider's counters reset."""
    oidc.provider.reset_stats()
    return oidc.settings(tmp_path / "store")
