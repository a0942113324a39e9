"""The single choke point for HTTP to Astravue.

Base URL, ``X-Org-Id``, the auth seam, timeouts, retries, the rate budget, the envelope and the
mapping of every failure to an :class:`ApiError` live here and nowhere else. Tools name an
operation from :data:`ENDPOINTS` and get back the envelope's ``data``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx2
import pydantic_core

from astravue_mcp import __version__
from astravue_mcp.api import models
from astravue_mcp.api.endpoints import ENDPOINTS, Endpoint
from astravue_mcp.api.limits import BudgetSpent, CallScope, RateBudget, current_call
from astravue_mcp.config import Settings
from astravue_mcp.errors import LOGIN_HINT, ApiError, AstravueError, AuthError

log = logging.getLogger("astravue_mcp.api")

RETRYABLE_STATUS = {502, 503, 504}
IDEMPOTENT = {"GET", "PUT", "DELETE"}
SHORT_RETRY_AFTER = 10.0
"""A 429 to a read, update or delete whose Retry-After is at most this many seconds is waited out.

Never for a create: whether an API applied a write before answering 429 cannot be known, and a
resent create would make a second task."""
LAST_MOMENT = 0.05
"""Less time than this left in a call: not worth sending a request."""


def _humanize(operation: str) -> str:
    return operation.replace("_", " ")


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class _Attempts:
    """What one call's attempts so far tell the choke point."""

    uncertain: bool = False
    """One of them may have reached Astravue without a definite answer."""


class AstravueClient:
    def __init__(
        self,
        settings: Settings,
        auth: httpx2.Auth | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        headers = {"User-Agent": f"astravue-mcp/{__version__}", "Accept": "application/json"}
        if settings.org_id is not None:
            headers["X-Org-Id"] = str(settings.org_id)
        self.auth = auth
        # 0: no client-side budget (the embedded sandbox, unless a test sets one).
        self.budget = RateBudget(settings.rate_limit) if settings.rate_limit else None
        self._http = httpx2.AsyncClient(
            base_url=settings.api_url,
            auth=auth,
            headers=headers,
            timeout=httpx2.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AstravueClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(
        self,
        operation: str,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Perform one API operation and return the envelope's ``data`` (or raise ApiError)."""
        endpoint = ENDPOINTS[operation]
        attempts = _Attempts()
        try:
            return await self._attempt(operation, endpoint, dict(ids or {}), params, body, attempts)
        except AstravueError as exc:
            # Once an attempt may have done a write, no later failure can say it was not done.
            if attempts.uncertain and endpoint.method != "GET" and not getattr(exc, "outcome_unknown", False):
                raise self._answer_lost(exc, endpoint) from None
            raise

    async def _attempt(
        self,
        operation: str,
        endpoint: Endpoint,
        ids: dict[str, int],
        params: Mapping[str, Any] | None,
        body: Any,
        attempts: _Attempts,
    ) -> Any:
        url = endpoint.url(**ids)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        scope = current_call()
        deadline = time.monotonic() + self.settings.retry_budget
        if scope is not None:
            deadline = min(deadline, scope.deadline)  # retries never outlast the tool call
        attempt = 0
        while True:
            attempt += 1
            if self.budget is not None:
                try:
                    await self.budget.acquire(scope)
                except BudgetSpent as exc:
                    raise ApiError(
                        f"Could not {_humanize(operation)}, not sent: {exc}. Retry in {exc.retry_after} s.",
                        None,
                        operation,
                        retry_after=float(exc.retry_after),
                    ) from None
            timeout = self._timeout(scope)
            if timeout is None:
                raise ApiError(
                    f"Could not {_humanize(operation)}: {scope.limit_text if scope else 'the time limit'} was reached"
                    f"{'' if attempt == 1 else ' while retrying'}. Narrow the request or try again.",
                    None,
                    operation,
                )
            started = time.monotonic()
            try:
                response = await self._http.request(
                    endpoint.method, url, params=query or None, json=body, timeout=timeout
                )
            except AstravueError:
                raise
            except httpx2.TimeoutException as exc:
                # A connect timeout never reached the server; a read timeout may have.
                sent = not isinstance(exc, httpx2.ConnectTimeout)
                attempts.uncertain |= sent
                failure = f"Astravue did not answer in time ({self._timeout_text(exc, timeout)})"
            except httpx2.TransportError as exc:
                sent = not isinstance(exc, httpx2.ConnectError)
                attempts.uncertain |= sent
                failure = f"the connection to Astravue failed ({type(exc).__name__})"
            else:
                log.debug(
                    "%s %s -> %s in %.0f ms",
                    endpoint.method,
                    url,
                    response.status_code,
                    1000 * (time.monotonic() - started),
                )
                if response.status_code in RETRYABLE_STATUS and endpoint.method in IDEMPOTENT:
                    attempts.uncertain = True
                    if self._may_retry(attempt, deadline):
                        await self._backoff(attempt, deadline)
                        continue
                if response.status_code == 429 and endpoint.method in IDEMPOTENT:
                    wait = _retry_after(response)
                    if wait is not None and wait <= SHORT_RETRY_AFTER and self._may_retry(attempt, deadline, wait):
                        await anyio.sleep(wait)
                        continue
                if response.status_code == 404 and attempts.uncertain and endpoint.method == "DELETE":
                    return None  # an earlier attempt whose answer was lost did the delete
                return self._unwrap(response, operation, endpoint, ids)
            retryable = endpoint.method in IDEMPOTENT or not sent
            if retryable and self._may_retry(attempt, deadline):
                await self._backoff(attempt, deadline)
                continue
            raise self._transport_error(
                failure, operation, endpoint, maybe_applied=attempts.uncertain and endpoint.method != "GET"
            )

    # ------------------------------------------------------------ retries
    def _may_retry(self, attempt: int, deadline: float, wait: float = 0.0) -> bool:
        return attempt <= self.settings.max_retries and time.monotonic() + wait < deadline

    async def _backoff(self, attempt: int, deadline: float) -> None:
        delay = min(4.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        await anyio.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def _timeout(self, scope: CallScope | None) -> httpx2.Timeout | Any:
        """This attempt's timeouts: the settings', cut to what is left of the call (None: nothing is left)."""
        if scope is None:
            return httpx2.USE_CLIENT_DEFAULT
        left = scope.remaining()
        if left < LAST_MOMENT:
            return None
        if left >= self.settings.read_timeout:
            return httpx2.USE_CLIENT_DEFAULT
        return httpx2.Timeout(left, connect=min(self.settings.connect_timeout, left))

    def _timeout_text(self, exc: Exception, timeout: httpx2.Timeout | Any) -> str:
        if isinstance(exc, httpx2.ConnectTimeout):
            limit = timeout.connect if isinstance(timeout, httpx2.Timeout) else self.settings.connect_timeout
            return f"no connection within {limit:g} s"
        if isinstance(timeout, httpx2.Timeout) and timeout.read is not None:
            scope = current_call()
            return f"no answer in the {timeout.read:.1f} s left under {scope.limit_text if scope else 'the time limit'}"
        return f"no answer within {self.settings.read_timeout:g} s"

    # ------------------------------------------------------------ answers
    def _unwrap(self, response: httpx2.Response, operation: str, endpoint: Endpoint, ids: dict[str, int]) -> Any:
        status = response.status_code
        payload: Any = None
        malformed = False
        if response.content:
            try:
                # pydantic-core's parser: the same JSON, ~1.6x faster than json.loads on big task pages.
                payload = pydantic_core.from_json(response.content)
            except ValueError:
                malformed = True
        if 200 <= status < 300:
            if not response.content and endpoint.method != "DELETE" and (status != 204 or endpoint.method == "GET"):
                # Every answer carries the envelope; nothing at all is a broken answer (a proxy, a
                # crashed backend), not an empty result, and after a write it says nothing of the outcome.
                raise ApiError(
                    f"Astravue answered {endpoint.method} {endpoint.path} with an empty body "
                    f"(HTTP {status}). {self._recheck(endpoint)}",
                    status,
                    operation,
                    outcome_unknown=endpoint.method != "GET",
                )
            if malformed:
                raise ApiError(
                    f"Astravue answered {endpoint.method} {endpoint.path} with a body that is not JSON "
                    f"({self._describe_body(response)}). {self._recheck(endpoint)}",
                    status,
                    operation,
                    outcome_unknown=endpoint.method != "GET",
                )
            if isinstance(payload, dict) and models.ENVELOPE_SUCCESS in payload:
                if payload.get(models.ENVELOPE_SUCCESS) is False:
                    raise self._status_error(
                        int(payload.get(models.ENVELOPE_CODE) or 400), payload, operation, endpoint, ids, response
                    )
                return payload.get(models.ENVELOPE_DATA)
            return payload
        raise self._status_error(
            status, payload if isinstance(payload, dict) else {}, operation, endpoint, ids, response
        )

    def _describe_body(self, response: httpx2.Response) -> str:
        kind = response.headers.get("content-type", "unknown type").split(";")[0]
        return f"{kind}, {len(response.content)} bytes"

    def _recheck(self, endpoint: Endpoint) -> str:
        if endpoint.method == "GET":
            return "Try again; if it persists, run `astravue-mcp doctor`."
        return (
            "The change may or may not have been applied: read the current state (list or get it) "
            "before trying again, so nothing is done twice."
        )

    def _answer_lost(self, exc: AstravueError, endpoint: Endpoint) -> AstravueError:
        """``exc`` as the last attempt's failure, marked: an earlier attempt's write may have landed."""
        caveat = f"An earlier attempt was sent and got no definite answer. {self._recheck(endpoint)}"
        if isinstance(exc, ApiError):
            return replace(exc, message=f"{exc} {caveat}", outcome_unknown=True)
        if isinstance(exc, AuthError):
            return AuthError(str(exc), caveat)
        return type(exc)(f"{exc} {caveat}")

    def _status_error(
        self,
        status: int,
        payload: dict[str, Any],
        operation: str,
        endpoint: Endpoint,
        ids: dict[str, int],
        response: httpx2.Response,
    ) -> ApiError:
        api_message = str(payload.get(models.ENVELOPE_MESSAGE) or "").strip()
        fields = []
        for key in models.ERROR_LIST:
            if isinstance(payload.get(key), list):
                for item in payload[key]:
                    if isinstance(item, dict):
                        fe = models.FieldError.model_validate(item)
                        fields.append((fe.field, fe.message))
        what = _humanize(operation)
        said = f" Astravue said: {api_message}" if api_message else ""
        org = self.settings.org_id
        if status == 400:
            if fields:
                detail = "; ".join(f"{f}: {m}" for f, m in fields)
                text = f"Astravue rejected the request to {what}. Fix these fields: {detail}."
            else:
                text = f"Astravue rejected the request to {what} as invalid.{said}"
                if not payload and not response.content:
                    text += " (empty answer)"
        elif status == 401:
            text = f"Astravue did not accept the login for {what}. {LOGIN_HINT}"
        elif status == 403:
            text = f"Your Astravue role does not allow you to {what} in org {org}.{said}"
        elif status == 404:
            # The API's own words only when they add something beyond "not found".
            text = self._not_found(endpoint, ids) + ("" if "not found" in api_message.lower() else said)
        elif status in (409, 422):
            text = f"Astravue refused to {what}: {api_message or 'the request conflicts with the current state'}."
        elif status == 429:
            wait = _retry_after(response)
            after = f"retry after {math.ceil(wait)} s" if wait is not None else "wait a minute before retrying"
            return ApiError(
                f"Astravue's rate limit was hit while trying to {what}: {after}.", status, operation, retry_after=wait
            )
        elif status >= 500:
            text = f"Astravue had a problem (HTTP {status}) while trying to {what}. {self._recheck(endpoint)}"
            return ApiError(
                text, status, operation, fields, outcome_unknown=endpoint.method != "GET", api_message=api_message
            )
        else:
            text = f"Astravue answered HTTP {status} to {what}.{said}"
        return ApiError(text, status, operation, fields, api_message=api_message)

    def _not_found(self, endpoint: Endpoint, ids: dict[str, int]) -> str:
        key = {
            "space": "spaceId",
            "project": "projectId",
            "task": "taskId",
            "subtask": "subtaskId",
            "time entry": "timerId",
        }.get(endpoint.kind)
        org = f" in org {self.settings.org_id}" if self.settings.org_id is not None else ""
        if key and key in ids:
            scope = ""
            if endpoint.kind == "project" and "spaceId" in ids:
                scope = f" in space {ids['spaceId']}"
            elif endpoint.kind == "subtask" and "taskId" in ids:
                scope = f" of task {ids['taskId']}"
            elif endpoint.kind == "task" and "projectId" in ids:
                scope = f" in project {ids['projectId']}"
            return f"{endpoint.kind.capitalize()} {ids[key]}{scope} was not found{org}. Check the id with a list tool."
        return f"Astravue has no {endpoint.method} {endpoint.path}{org} (HTTP 404). Run `astravue-mcp doctor`."

    def _transport_error(self, failure: str, operation: str, endpoint: Endpoint, maybe_applied: bool) -> ApiError:
        what = _humanize(operation)
        if maybe_applied:
            return ApiError(
                f"Could not {what}: {failure}. The outcome is unknown: the request may have reached Astravue. "
                "Read the current state (list or get it) before trying again, so nothing is done twice.",
                None,
                operation,
                outcome_unknown=True,
            )
        return ApiError(f"Could not {what}: {failure}. Try again in a moment.", None, operation)
