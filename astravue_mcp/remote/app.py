"""The remote-mode ASGI app: authorization server, consent, Astravue callback and the guarded ``/mcp``.

Stateless Streamable HTTP (no MCP session), so any replica answers any request; everything shared
lives in the state (``ASTRAVUE_STATE_URL``). ``/healthz`` says the process is up; ``/readyz`` also
checks the shared state, so a load balancer stops sending traffic to a replica that lost Redis.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend
from mcp.server.auth.routes import build_metadata, cors_middleware, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.request_state import RequestStateSecurity
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from astravue_mcp import __version__
from astravue_mcp.auth import oidc
from astravue_mcp.config import Settings, listed
from astravue_mcp.errors import AuthError
from astravue_mcp.http_app import MAX_BODY
from astravue_mcp.protocol import Peers
from astravue_mcp.remote.checks import require_remote
from astravue_mcp.remote.crypto import KeyRing
from astravue_mcp.remote.events import CHANNEL, PersonalBus
from astravue_mcp.remote.grants import RECONNECT, Users, user_key
from astravue_mcp.remote.orgs import settle_org
from astravue_mcp.remote.provider import COOKIE, AstravueAuthProvider, Transaction
from astravue_mcp.remote.state import StateUnavailable, open_state
from astravue_mcp.state import AppState

log = logging.getLogger("astravue_mcp.remote")


@dataclass
class RemoteAppState(AppState):
    """One state for every caller (stateless serving enters the lifespan once): each request reaches
    the caller's own API client (their login, org and rate budget) and their own memo (who "me" is)."""

    users: Users | None = None
    peers: Peers = field(default_factory=lambda: Peers(per_connection=False), init=False)
    """Every request is a connection of its own here: no ``resources/subscribe`` outlives the request that
    made it (a 2026-07-28 ``subscriptions/listen`` stream does, and is served through :mod:`.events`)."""

    def _person(self) -> str:
        token = get_access_token()
        if token is None or not token.subject or self.users is None:
            raise AuthError(RECONNECT)
        return token.subject

    def client_for(self, ctx: Any) -> Any:
        assert self.users is not None
        return self.users.client_for(self._person())

    @property  # type: ignore[misc]
    def memo(self) -> dict[str, Any]:
        assert self.users is not None
        return self.users.memo_for(self._person())

    @memo.setter
    def memo(self, value: dict[str, Any]) -> None:
        pass  # the dataclass's own memo would be shared by everyone: each person has theirs in ``users``

    async def ready(self, ctx: Any) -> None:
        assert self.users is not None
        await settle_org(ctx, self.users, self._person())

    async def offer_login(self, ctx: Any) -> str | None:
        return None  # people sign in through their MCP client's OAuth flow, never through a tool

    async def aclose(self) -> None:
        return None  # the per-person clients belong to the app, not to one server lifespan


class RequireBearer:
    """401 with where to authorize and which scope (RFC 9728 §5.1, RFC 6750 §3); 403 for a scope it lacks."""

    def __init__(self, app: ASGIApp, scopes: list[str], metadata_url: str, users: Users) -> None:
        self.app, self.scopes, self.metadata_url, self.users = app, scopes, metadata_url, users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            presented = any(k == b"authorization" for k, _ in scope.get("headers", []))
            # RFC 6750 §3.1: a request without credentials gets no error code, a bad token gets invalid_token.
            error = {"error": "invalid_token", "error_description": "The access token is invalid, expired or revoked"}
            await self._refuse(scope, receive, send, 401, error if presented else {})
            return
        missing = [s for s in self.scopes if s not in user.scopes]
        if missing:
            error = {"error": "insufficient_scope", "error_description": f"Required scope: {' '.join(self.scopes)}"}
            await self._refuse(scope, receive, send, 403, error)
            return
        subject = user.access_token.subject
        if subject:
            await self.users.prepare(subject)
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, error: dict[str, str]) -> None:
        params = {**error, "resource_metadata": self.metadata_url, "scope": " ".join(self.scopes)}
        challenge = "Bearer " + ", ".join(f'{k}="{v}"' for k, v in params.items())
        body = error or {"error": "unauthorized", "error_description": "Sign in: this server uses OAuth"}
        response = JSONResponse(body, status, headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)


def resource_metadata_url(resource: str) -> str:
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"


def _binding(request: Request) -> str:
    return hashlib.sha256(request.cookies.get(COOKIE, "").encode()).hexdigest()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2937}}
.box{{border:1px solid #d1d5db;border-radius:.5rem;padding:1rem 1.25rem}}button{{font:inherit;padding:.5rem 1.2rem;
margin-right:.5rem;border-radius:.4rem;border:1px solid #9ca3af;background:#fff}}button.ok{{background:#4f46e5;
color:#fff;border-color:#4f46e5}}code{{background:#f3f4f6;padding:0 .25rem}}</style></head><body>{body}</body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",  # consent must never be clickjacked inside another site's frame
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status, headers=headers)


class Consent:
    """The consent page (GET), the decision (POST) and Astravue's callback, for one provider."""

    def __init__(self, provider: AstravueAuthProvider, settings: Settings) -> None:
        self.provider, self.settings = provider, settings

    def _abilities(self) -> str:
        if self.settings.read_only:
            return "<li>read your Astravue workspace as you: spaces, projects, tasks, comments, time entries</li>"
        return (
            "<li>read your Astravue workspace as you: spaces, projects, tasks, comments, time entries</li>"
            "<li>create and change tasks, comments, time entries and timers as you</li>"
        )

    async def show(self, request: Request) -> Response:
        txn_id = request.query_params.get("txn", "")
        txn = await self.provider.transaction(txn_id)
        if txn is None:
            return page(
                "Sign-in expired", "<h1>This sign-in has expired</h1><p>Start again from your MCP client.</p>", 400
            )
        cookie = secrets.token_urlsafe(24)
        await self.provider.save_transaction(
            txn_id, txn.model_copy(update={"binding": hashlib.sha256(cookie.encode()).hexdigest()})
        )
        redirect_host = urlsplit(txn.redirect_uri).netloc or txn.redirect_uri
        body = f"""<h1>Allow access to Astravue?</h1>
<div class="box"><p><strong>{html.escape(txn.client_name)}</strong> wants to use this Astravue MCP server
(<code>{html.escape(self.provider.issuer)}</code>) on your behalf. If you allow it and sign in to Astravue,
it will be able to:</p>
<ul>{self._abilities()}</ul>
<p>After sign-in you will be sent back to <code>{html.escape(redirect_host)}</code>. Only continue if you started
this from that application.</p></div>
<form method="post" action="/consent">
<input type="hidden" name="txn" value="{html.escape(txn_id)}">
<input type="hidden" name="csrf" value="{html.escape(txn.csrf)}">
<p><button class="ok" name="decision" value="allow">Allow and sign in to Astravue</button>
<button name="decision" value="deny">Cancel</button></p></form>"""
        response = page("Allow access to Astravue?", body)
        response.set_cookie(
            COOKIE, cookie, max_age=600, httponly=True, samesite="lax", secure=self.provider.secure_cookies, path="/"
        )
        return response

    async def decide(self, request: Request) -> Response:
        form = await request.form()
        txn_id, csrf = str(form.get("txn", "")), str(form.get("csrf", ""))
        txn = await self.provider.transaction(txn_id)
        if txn is None or not self._same_browser(request, txn) or not hmac.compare_digest(csrf, txn.csrf):
            return page(
                "Request refused",
                "<h1>This request was refused</h1><p>It did not come from the consent page shown in this "
                "browser, or it expired. Start again from your MCP client.</p>",
                403,
            )
        if form.get("decision") != "allow":
            await self.provider.transaction(txn_id, take=True)
            log.info("Consent refused for client %s", txn.client_id)
            return RedirectResponse(self.provider.back_to_client(txn, error="access_denied"), 302)
        return RedirectResponse(await self.provider.approve(txn_id, txn), 302)

    @staticmethod
    def _same_browser(request: Request, txn: Transaction) -> bool:
        return txn.binding is not None and hmac.compare_digest(_binding(request), txn.binding)

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        txn = await self.provider.transaction(params.get("state", ""), take=True)
        if txn is None or txn.upstream_verifier is None or not self._same_browser(request, txn):
            return page(
                "Sign-in expired",
                "<h1>This sign-in cannot be completed</h1><p>It expired, was already used, or was started in "
                "another browser. Start again from your MCP client.</p>",
                400,
            )
        if params.get("error"):
            log.info("Astravue's login answered %s for client %s", params.get("error"), txn.client_id)
            error = "access_denied" if params.get("error") == "access_denied" else "server_error"
            return RedirectResponse(self.provider.back_to_client(txn, error=error), 302)
        try:
            target = await self.provider.complete(txn, params.get("code", ""))
        except oidc.OAuthError as exc:
            log.warning("Astravue refused the sign-in code (%s)", exc)
            return RedirectResponse(self.provider.back_to_client(txn, error="access_denied"), 302)
        except (oidc.ProviderUnavailable, ValueError, StateUnavailable) as exc:
            log.error("Could not complete an Astravue sign-in: %s", exc)
            return RedirectResponse(self.provider.back_to_client(txn, error="temporarily_unavailable"), 302)
        response = RedirectResponse(target, 302)
        response.delete_cookie(COOKIE, path="/")
        return response


def audience(users: Users) -> str | None:
    """The person and organisation this request acts for: whose resource changes it may publish and hear."""
    token = get_access_token()
    if token is None or not token.subject:
        return None
    return f"{user_key(token.subject)}@{users.org_of(token.subject)}"


def request_state(ring: KeyRing) -> RequestStateSecurity:
    """Multi-round-trip requestState sealed with keys every replica derives alike from the key ring."""
    return RequestStateSecurity(keys=ring.derived("request-state"))


def remote_settings(settings: Settings) -> Settings:
    require_remote(settings)
    assert settings.public_url
    public = settings.public_url.rstrip("/")
    return settings.model_copy(update={"public_url": public, "redirect_uri": f"{public}/oauth/callback"})


def create_remote_app(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Starlette:
    """The whole remote-mode app for these (checked) settings; ``transport`` reaches Astravue."""
    from astravue_mcp.server import build_server  # deferred: the SDK server, not needed to check settings

    settings = remote_settings(settings)
    assert settings.public_url
    state = open_state(settings.state_url)
    keys = settings.state_keys.get_secret_value() if settings.state_keys else ""
    ring = KeyRing.from_setting(keys) if keys.strip() else KeyRing.ephemeral()
    users = Users(settings, state, ring, transport)
    provider = AstravueAuthProvider(settings, state, ring, users, access_ttl=settings.remote_token_ttl)
    issuer = AnyHttpUrl(provider.issuer)
    registration = ClientRegistrationOptions(enabled=True, valid_scopes=provider.scopes, default_scopes=provider.scopes)
    revocation = RevocationOptions(enabled=True)

    bus = PersonalBus(state, functools.partial(audience, users))
    server = build_server(
        settings,
        app_state=functools.partial(RemoteAppState, users=users),
        request_state_security=request_state(ring),
        subscriptions=bus,
    )
    public = urlsplit(provider.issuer)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[public.netloc, "127.0.0.1:*", "localhost:*", "[::1]:*", *listed(settings.allowed_hosts)],
        allowed_origins=[f"{public.scheme}://{public.netloc}", *listed(settings.allowed_origins)],
    )
    mcp_app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=security,
        max_request_body_size=MAX_BODY,
    )
    guarded = AuthenticationMiddleware(
        AuthContextMiddleware(RequireBearer(mcp_app, provider.scopes, resource_metadata_url(provider.resource), users)),
        backend=BearerAuthBackend(provider, resource_server_url=AnyHttpUrl(provider.resource)),
    )

    # The issuer is compared as a string (RFC 8414 §3.3, RFC 9207): no trailing slash may creep in.
    metadata = OAuthMetadata.model_validate(
        build_metadata(issuer, None, registration, revocation).model_dump(mode="json", exclude_none=True)
        | {
            "issuer": provider.issuer,
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }
    )
    protected = ProtectedResourceMetadataHandler(
        ProtectedResourceMetadata.model_validate(
            {
                "resource": provider.resource,
                "authorization_servers": [provider.issuer],
                "scopes_supported": provider.scopes,
                "resource_name": "Astravue",
            }
        )
    )
    consent = Consent(provider, settings)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(_: Request) -> Response:
        try:
            await state.ping()
        except StateUnavailable as exc:
            return JSONResponse({"status": "unavailable", "state": str(exc)}, 503)
        return JSONResponse({"status": "ready", "state": urlsplit(settings.state_url).scheme})

    sdk_routes = [
        r
        for r in create_auth_routes(provider, issuer, None, registration, revocation)
        if r.path != "/.well-known/oauth-authorization-server"
    ]
    routes = [
        Route(
            "/.well-known/oauth-authorization-server",
            cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        *sdk_routes,
        # RFC 9728 §3.1: the path-inserted URL; the root one for clients that look there first.
        *(
            Route(path, cors_middleware(protected.handle, ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"])
            for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource")
        ),
        Route("/consent", consent.show, methods=["GET"]),
        Route("/consent", consent.decide, methods=["POST"]),
        Route("/oauth/callback", consent.callback, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/mcp", guarded, methods=["GET", "POST", "DELETE"]),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            async with state.hear(CHANNEL, bus.deliver), mcp_app.router.lifespan_context(mcp_app):
                yield
        finally:
            await users.aclose()
            await state.aclose()

    async def state_unavailable(_: Request, exc: Exception) -> Response:
        # Checking a bearer token reads the shared state: when Redis is away the request can be
        # retried soon, so it is a 503 with the reason, not a 500 with a traceback in the log.
        log.warning("Answered 503: %s", exc)
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": str(exc)}, 503, {"Retry-After": "5"}
        )

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={StateUnavailable: state_unavailable})
    app.state.provider = provider
    log.warning(
        "Remote MCP server for %s at %s (state: %s)",
        settings.api_url,
        provider.resource,
        urlsplit(settings.state_url).scheme,
    )
    return app
