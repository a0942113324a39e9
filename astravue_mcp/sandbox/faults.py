"""Fault injection and request statistics, for reliability tests of the client.

A fault comes from a rule queued with ``POST /_sandbox/faults`` (applies to the next ``count``
matching requests) or from the ``X-Sandbox-Fault`` header of one request. Faults act after the
auth and org checks, so a faulted request is otherwise a valid one.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from astravue_mcp.api.endpoints import ENDPOINTS
from astravue_mcp.sandbox.records import invalid

FAULT_HEADER = "X-Sandbox-Fault"
BodyKind = Literal["html", "truncated", "empty", "reset"]


class FaultSpec(BaseModel):
    """What a faulted request gets. With neither status, body nor delay, the answer is a 503."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(1, ge=1)
    status: int | None = Field(None, ge=100, le=599)
    delay: float = Field(0.0, ge=0, le=600)
    retry_after: float | None = Field(None, ge=0)
    body: BodyKind | None = None
    operations: list[str] | None = None
    after_write: bool = False
    """Run the handler (the state changes), then delay and/or fault the answer."""

    @field_validator("operations")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        unknown = [v for v in value or [] if v not in ENDPOINTS]
        if unknown:
            raise ValueError(f"unknown operation(s): {', '.join(unknown)}")
        return value

    def model_post_init(self, _: Any) -> None:
        if self.status is None and self.body is None and self.delay == 0:
            self.status = 503

    @property
    def replaces_answer(self) -> bool:
        return self.status is not None or self.body is not None


def parse_spec(data: Any, field_prefix: str = "") -> FaultSpec:
    try:
        return FaultSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid(
            *((field_prefix + ".".join(map(str, e["loc"])) or "body", e["msg"]) for e in exc.errors(include_url=False))
        ) from None


def parse_header(value: str) -> FaultSpec:
    """``503``, ``{"status": 503}`` or ``status=503; retry_after=2; body=html; after_write=true``."""
    value = value.strip()
    if value.isdigit():
        data: Any = {"status": int(value)}
    elif value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            raise invalid((FAULT_HEADER, "is not valid JSON")) from None
    else:
        data = {}
        for part in value.replace(",", ";").split(";"):
            key, sep, raw = part.partition("=")
            if not sep:
                raise invalid((FAULT_HEADER, f"expected key=value, got {part.strip()!r}"))
            data[key.strip()] = raw.strip()
    return parse_spec(data, f"{FAULT_HEADER}.")


class Faults:
    """Queued fault rules; the first rule matching an operation is used and its count consumed."""

    def __init__(self) -> None:
        self.rules: list[FaultSpec] = []

    def add(self, spec: FaultSpec) -> None:
        self.rules.append(spec)

    def clear(self) -> None:
        self.rules.clear()

    def take(self, operation: str) -> FaultSpec | None:
        for rule in self.rules:
            if rule.operations is None or operation in rule.operations:
                rule.count -= 1
                if rule.count == 0:
                    self.rules.remove(rule)
                return rule
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        return [r.model_dump(exclude_none=True) for r in self.rules]


class Stats:
    """Requests that reached an API handler, faulted and rejected ones included."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.orgs: Counter[int] = Counter()
        """Requests let into each organisation (``X-Org-Id``)."""
        self.faults = 0

    def count(self, operation: str, method: str, path: str) -> None:
        self.operations[operation] += 1
        self.requests[f"{method} {path}"] += 1

    def clear(self) -> None:
        self.operations.clear()
        self.requests.clear()
        self.orgs.clear()
        self.faults = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": sum(self.operations.values()),
            "operations": dict(self.operations),
            "requests": dict(self.requests),
            "orgs": {str(org): n for org, n in self.orgs.items()},
            "faults": self.faults,
        }


class SimulatedReset(httpx2.RemoteProtocolError):
    """Raised inside the app to drop the connection.

    Under uvicorn, an exception after the response has started makes it close the socket, so the
    client sees an incomplete answer (``RemoteProtocolError``). Through ``httpx2.ASGITransport``
    the exception itself reaches the client, and being an httpx transport error it is handled
    exactly like the TCP case.
    """


class ResetResponse(Response):
    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Uvicorn answers a plain 500 when the app fails before starting a response, so start one
        # (promising more bytes than ever come) and then fail.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"success": tr', "more_body": True})
        raise SimulatedReset("the sandbox dropped the connection (simulated fault)")


_HTML = "<html><head><title>{0} Bad Gateway</title></head><body><h1>{0} Bad Gateway</h1><hr>nginx</body></html>"


def fault_response(spec: FaultSpec, real: Response | None, error_body: bytes) -> Response:
    """The answer a faulted request gets. ``real`` is the handler's answer when it ran."""
    headers = {"Retry-After": f"{spec.retry_after:g}"} if spec.retry_after is not None else {}
    if spec.body == "reset":
        return ResetResponse()
    if spec.body == "html":
        status = spec.status or 502
        return HTMLResponse(_HTML.format(status), status_code=status, headers=headers)
    if spec.body == "empty":
        return Response(b"", status_code=spec.status or 200, media_type="application/json", headers=headers)
    if spec.body == "truncated":
        whole = bytes(real.body) if real is not None else error_body
        status = spec.status or (real.status_code if real is not None else 200)
        return Response(whole[: len(whole) // 2], status_code=status, media_type="application/json", headers=headers)
    return Response(error_body, status_code=spec.status or 503, media_type="application/json", headers=headers)
