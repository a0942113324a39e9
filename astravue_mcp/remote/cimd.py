"""Client ID Metadata Documents: a client whose id is an https URL describes itself at that URL.

The MCP authorization spec prefers these to dynamic registration: nothing is stored per client
ahead of time, and the client's name and redirect URIs come from a document its owner controls.
Fetching a URL a stranger chose is a request forgery risk, so the fetch is fenced in: https only,
every address the host resolves to must be public (no loopback, private, link-local or reserved
ranges, except under the test-only ``ASTRAVUE_CIMD_ALLOW_PRIVATE``), no redirects, a size cap and a
time limit. A good document is cached in the shared state for a while, so replicas fetch it once.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from astravue_mcp.config import is_loopback
from astravue_mcp.remote.policy import redirect_uri_problem

MAX_BYTES = 5_000
TIMEOUT = 3.0
CACHE_SECONDS = 600


class DocumentRefused(Exception):
    """The client's metadata document cannot be used; the message says why (for logs and the client)."""


def is_document_url(client_id: str) -> bool:
    parts = urlsplit(client_id)
    return parts.scheme in ("https", "http") and bool(parts.hostname) and parts.path not in ("", "/")


async def _check_addresses(host: str, allow_private: bool) -> None:
    if allow_private:
        return
    try:
        infos = await anyio.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DocumentRefused(f"{host} does not resolve ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise DocumentRefused(f"{host} resolves to a private, loopback or reserved address ({address})")


async def fetch_document(
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = TIMEOUT,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> OAuthClientInformationFull:
    """The client described at ``url``, checked; raises :class:`DocumentRefused`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http" and is_loopback(host)):
        raise DocumentRefused(f"{url} is not an https URL")
    if parts.fragment or parts.username or parts.password:
        raise DocumentRefused(f"{url} must not carry a fragment or credentials")
    body = bytearray()
    try:
        with anyio.fail_after(timeout):
            await _check_addresses(host, allow_private)
            async with (
                httpx2.AsyncClient(transport=transport, follow_redirects=False, timeout=timeout) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise DocumentRefused(f"{url} answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_BYTES:
                        raise DocumentRefused(f"{url} is larger than {MAX_BYTES} bytes")
    except TimeoutError:
        raise DocumentRefused(f"{url} did not answer within {timeout:.0f} s") from None
    except httpx2.HTTPError as exc:
        raise DocumentRefused(f"{url} could not be fetched ({type(exc).__name__})") from None
    return parse_document(url, bytes(body))


def parse_document(url: str, body: bytes) -> OAuthClientInformationFull:
    try:
        data = json.loads(body)
    except ValueError:
        raise DocumentRefused(f"{url} is not JSON") from None
    if not isinstance(data, dict) or data.get("client_id") != url:
        raise DocumentRefused(f"the document at {url} does not name itself as client_id")
    if data.get("client_secret") is not None or data.get("token_endpoint_auth_method", "none") != "none":
        raise DocumentRefused(f"the document at {url} asks for a client secret; such clients must be public")
    uris = data.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise DocumentRefused(f"the document at {url} lists no redirect_uris")
    for uri in uris:
        problem = redirect_uri_problem(str(uri))
        if problem:
            raise DocumentRefused(f"the document at {url} has a redirect URI outside the policy: {problem}")
    try:
        return OAuthClientInformationFull.model_validate(
            {**data, "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}
        )
    except ValidationError as exc:
        raise DocumentRefused(
            f"the document at {url} is not valid client metadata ({exc.error_count()} errors)"
        ) from None
