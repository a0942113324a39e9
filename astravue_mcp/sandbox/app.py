"""The sandbox as a Starlette app: routes generated from ``ENDPOINTS``, auth, org check, envelope, faults.

Every answer uses the API's envelope ``{success, message, code, data}``; errors add
``errors: [{field, message}]``. Every API request passes, in order: request statistics,
simulated latency, bearer token (401), ``X-Org-Id`` (400 missing or not an integer, 403 another
org), fault injection, the operation's handler.

Test machinery, present only when the app is created with ``admin=True`` (the default, also for
``astravue-mcp sandbox``); it needs no auth:

- ``POST /_sandbox/faults`` queues a rule ``{"count": 1, "status": 503, "delay": 0.5,
  "retry_after": 2, "body": "html"|"truncated"|"empty"|"reset", "operations": [...],
  "after_write": false}`` (all optional). It applies to the next ``count`` requests of the listed
  operations (all if omitted). ``delay`` seconds pass before the answer; ``status`` answers an
  error envelope with that status (503 when nothing else is given); ``retry_after`` sets the
  ``Retry-After`` header; ``body`` replaces the answer: ``html`` a gateway page (502 unless
  ``status``), ``empty`` no bytes (200 unless ``status``), ``truncated`` half of the JSON
  (the handler's own answer with ``after_write``), ``reset`` a dropped connection. With
  ``after_write`` the handler runs first (the state changes), then the delay and the fault.
  ``GET`` lists the queued rules, ``DELETE`` clears them.
- ``X-Sandbox-Fault`` request header: the same fields for one request, as ``503``, JSON, or
  ``status=503; retry_after=2; body=html; after_write=true``.
- ``GET /_sandbox/stats``: ``{total, operations: {name: n}, requests: {"METHOD /path": n}, faults}``
  counting every request that reached an API handler (rejected and faulted ones included).
- ``POST /_sandbox/reset``: reload the seed, clear faults and stats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from astravue_mcp.api.endpoints import ENDPOINTS
from astravue_mcp.api.models import FieldError
from astravue_mcp.config import SANDBOX_IDENTITY, SANDBOX_TOKEN
from astravue_mcp.sandbox.auth import OidcVerifier, StaticToken, TokenVerifier, unauthorized
from astravue_mcp.sandbox.faults import (
    FAULT_HEADER,
    Faults,
    FaultSpec,
    SimulatedReset,
    Stats,
    fault_response,
    parse_header,
    parse_spec,
)
from astravue_mcp.sandbox.handlers import HANDLERS, Call
from astravue_mcp.sandbox.records import SandboxError, invalid
from astravue_mcp.sandbox.store import Store

log = logging.getLogger("astravue_mcp.sandbox")

OK_MESSAGE = "Operation completed successfully"
ORG_HEADER = "X-Org-Id"
Handler = Callable[[Request], Awaitable[Response]]


def _json(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")), status_code=status, media_type="application/json", headers=headers
    )


def success(data: Any) -> Response:
    # Creates answer 200 too, like the one captured create-task response.
    return _json({"success": True, "message": OK_MESSAGE, "code": 200, "data": data}, 200)


def error_payload(status: int, message: str, errors: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {
        "success": False,
        "message": message,
        "code": status,
        "errors": [FieldError(field=f, message=m).wire() for f, m in errors or []],
    }


def failure(exc: SandboxError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else None
    return _json(error_payload(exc.status, exc.message, exc.errors), exc.status, headers)


async def read_json(request: Request) -> Any:
    """The request's JSON body, None when empty."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid(("body", "is not valid JSON")) from None


class SandboxApi:
    """What every API request goes through, in order: stats, latency, auth, org, fault, handler."""

    def __init__(
        self,
        store: Store,
        verifier: TokenVerifier,
        faults: Faults | None,
        stats: Stats,
        latency: float,
        orgs: Mapping[int, Collection[str]] | None = None,
    ) -> None:
        self.store = store
        self.verifier = verifier
        self.faults = faults
        self.stats = stats
        self.latency = latency
        self.members = {org: {e.casefold() for e in emails} for org, emails in (orgs or {}).items()}

    def endpoint(self, operation: str) -> Handler:
        handler = HANDLERS[operation]

        async def endpoint(request: Request) -> Response:
            self.stats.count(operation, request.method, request.url.path)
            if self.latency:
                await anyio.sleep(self.latency)
            fault: FaultSpec | None = None
            try:
                user_id = await self._authenticate(request)
                fault = self._fault(operation, request)
                if fault is not None:
                    self.stats.faults += 1
                    if not fault.after_write:
                        await anyio.sleep(fault.delay)
                        if fault.replaces_answer:
                            return self._faulted(fault, None)
                call = Call(self.store, self._ids(request), request.query_params, await read_json(request), user_id)
            except SandboxError as exc:
                return failure(exc)
            answer = self._run(handler, call)
            if fault is not None and fault.after_write:
                await anyio.sleep(fault.delay)
                if fault.replaces_answer:
                    return self._faulted(fault, answer)
            return answer

        endpoint.__name__ = operation
        return endpoint

    @staticmethod
    def _run(handler: Callable[[Call], Any], call: Call) -> Response:
        try:
            return success(handler(call))
        except SandboxError as exc:
            return failure(exc)

    async def _authenticate(self, request: Request) -> int:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Authentication required: send Authorization: Bearer <access token>")
        claims = await self.verifier.verify(token.strip())
        raw = request.headers.get(ORG_HEADER, "").strip()
        if not raw:
            raise SandboxError(400, f"The {ORG_HEADER} header is required", [(ORG_HEADER, "is required")])
        try:
            org = int(raw)
        except ValueError:
            raise SandboxError(
                400, f"The {ORG_HEADER} header must be an integer", [(ORG_HEADER, f"must be an integer (got {raw!r})")]
            ) from None
        if org != self.store.tenant_id and self._email(claims) not in self.members.get(org, ()):
            raise SandboxError(403, f"Organisation {org} is not accessible with this token")
        self.stats.orgs[org] += 1
        return self._user_for(claims)

    @staticmethod
    def _email(claims: dict[str, Any]) -> str:
        return str(claims.get("email") or claims.get("preferred_username") or "").casefold()

    def _user_for(self, claims: dict[str, Any]) -> int:
        # A JWT whose email (or an email-shaped preferred_username, as Keycloak access tokens
        # carry) matches a seeded user acts as that user; any other caller is the seed's current
        # user, so an identity provider needs no sandbox-specific accounts.
        email = self._email(claims)
        match = next((u.user_id for u in self.store.users.values() if (u.email or "").casefold() == email), None)
        return match if email and match is not None else self.store.current_user_id

    def _fault(self, operation: str, request: Request) -> FaultSpec | None:
        if self.faults is None:
            return None
        header = request.headers.get(FAULT_HEADER)
        return parse_header(header) if header else self.faults.take(operation)

    @staticmethod
    def _faulted(fault: FaultSpec, answer: Response | None) -> Response:
        status = fault.status or 503
        body = json.dumps(error_payload(status, f"Simulated fault (HTTP {status})")).encode()
        return fault_response(fault, answer, body)

    @staticmethod
    def _ids(request: Request) -> dict[str, int]:
        ids, problems = {}, []
        for name, raw in request.path_params.items():
            try:
                ids[name] = int(raw)
            except ValueError:
                problems.append((name, f"must be an integer (got {raw!r})"))
        if problems:
            raise invalid(*problems)
        return ids


class SandboxAdmin:
    """``/_sandbox/*``: queue faults, read request counts, reset to the seed."""

    def __init__(self, store: Store, faults: Faults, stats: Stats) -> None:
        self.store, self.faults, self.stats = store, faults, stats

    async def add_fault(self, request: Request) -> Response:
        try:
            self.faults.add(parse_spec(await read_json(request) or {}))
        except SandboxError as exc:
            return failure(exc)
        return success({"faults": self.faults.snapshot()})

    async def list_faults(self, _: Request) -> Response:
        return success({"faults": self.faults.snapshot()})

    async def clear_faults(self, _: Request) -> Response:
        self.faults.clear()
        return success({"faults": []})

    async def get_stats(self, _: Request) -> Response:
        return success(self.stats.snapshot())

    async def reset(self, _: Request) -> Response:
        self.store.reset()
        self.faults.clear()
        self.stats.clear()
        return success(None)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/faults", self.add_fault, methods=["POST"]),
            Route("/faults", self.list_faults, methods=["GET"]),
            Route("/faults", self.clear_faults, methods=["DELETE"]),
            Route("/stats", self.get_stats, methods=["GET"]),
            Route("/reset", self.reset, methods=["POST"]),
        ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return _json(error_payload(exc.status_code, message), exc.status_code, dict(exc.headers or {}))


async def _crash(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SimulatedReset):  # on purpose; the response has started, so this is never sent
        return Response(status_code=500)
    log.error("sandbox bug on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(error_payload(500, f"Internal sandbox error: {type(exc).__name__}"), 500)


def create_app(
    *,
    issuer: str | None = None,
    latency_ms: float = 0,
    admin: bool = True,
    audience: str | None = None,
    orgs: Mapping[int, Collection[str]] | None = None,
) -> Starlette:
    """The sandbox app. ``app.state.sandbox`` is its :class:`Store` (also ``.faults``, ``.stats``).

    ``issuer``: validate JWTs from this OpenID issuer instead of accepting ``SANDBOX_TOKEN``;
    ``audience``: also require this ``aud``; ``latency_ms``: added to every API request;
    ``admin``: expose ``/_sandbox/*`` and honour ``X-Sandbox-Fault``; ``orgs``: more organisation
    ids, each open only to these emails (they serve the same data; the stats count requests per org).
    """
    missing = set(ENDPOINTS) - set(HANDLERS)
    if missing:
        raise RuntimeError(f"sandbox has no handler for: {', '.join(sorted(missing))}")
    store, faults, stats = Store(), Faults(), Stats()
    verifier: TokenVerifier = OidcVerifier(issuer, audience) if issuer else StaticToken(SANDBOX_TOKEN, SANDBOX_IDENTITY)
    api = SandboxApi(store, verifier, faults if admin else None, stats, latency_ms / 1000, orgs)
    routes: list[BaseRoute] = [
        Route(ep.path, api.endpoint(name), methods=[ep.method], name=name) for name, ep in ENDPOINTS.items()
    ]
    if admin:
        routes.append(Mount("/_sandbox", routes=SandboxAdmin(store, faults, stats).routes()))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _crash})
    app.state.sandbox = store
    app.state.faults = faults
    app.state.stats = stats
    return app
