"""Asking the person mid-call (elicitation), on every protocol revision the SDK negotiates.

Up to 2025-11-25 the server sends ``elicitation/create`` while the tool call waits for the answer.
On 2026-07-28 there is no such back-channel: the call answers ``InputRequiredResult`` carrying the
question and a ``requestState``, and the client calls again with the answer in ``inputResponses``
(the SDK seals the state, binds it to the tool, its arguments and the caller, and verifies it on
the way back in). The tool body simply runs again on the next round and, reaching the same
question, finds its answer.

The API, for any tool or engine that needs to ask (``key`` names the question within one call):

- :func:`can_ask` -- whether the client declared the elicitation mode at all (if not, do not ask);
- :func:`unknown_client` -- whether nobody can tell (stateless HTTP keeps no ``initialize``);
- :func:`ask_form` -- the answer to a form question, on any revision; on 2026-07-28 it ends the
  round by raising :class:`InputRequired` (the tool wrapper answers with its ``result``);
- :func:`answer_to` / :func:`ask` -- the same two halves for a question built by the caller (a URL);
- :func:`accepted` -- whether the person said yes.

Several questions in one call work on 2026-07-28: the state carries every answer given so far,
each bound to the exact question it answered (a digest of its wording and schema), so a changed
question is asked again and an answer is never taken for a question the person was not shown.
"""

from __future__ import annotations

import hashlib
import json
from typing import NoReturn

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import NoBackChannelError
from mcp_types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS, is_version_at_least
from pydantic import BaseModel, ValidationError

STATE_VERSION = 1
ELICITATION_SINCE = "2025-06-18"
"""The first revision on which a client can declare elicitation."""
URL_SINCE = "2025-11-25"
"""The first revision with URL-mode elicitation: on an older one a URL question is not part of the protocol."""


class InputRequired(Exception):
    """Raised inside a tool on 2026-07-28 to ask a question: the call answers ``result`` instead."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


class CannotAsk(Exception):
    """The client declared elicitation but this connection has no way to send the question."""


def multi_round(ctx: Context) -> bool:
    """Whether questions travel in ``InputRequiredResult`` rounds (2026-07-28) rather than mid-call."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def can_ask(ctx: Context, mode: str = "form") -> bool:
    """Whether the client declared this elicitation mode (an empty ``elicitation`` object means form).

    URL mode counts only on a revision that has it, whatever an older client declares.
    """
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None:
        return False
    if mode == "url":
        return elicitation.url is not None and is_version_at_least(ctx.protocol_version or "", URL_SINCE)
    return elicitation.form is not None or elicitation.url is None


def unknown_client(ctx: Context) -> bool:
    """Whether the client might have declared elicitation but the server cannot know.

    Over stateless HTTP on a dated revision from 2025-06-18 on, every request is a connection of its
    own and the ``initialize`` that declared the client's capabilities is gone: the client may be one
    that would answer, and the connection could not carry the question anyway.
    """
    return (
        ctx.client_capabilities is None
        and not multi_round(ctx)
        and is_version_at_least(ctx.protocol_version or "", ELICITATION_SINCE)
    )


async def ask_form(ctx: Context, key: str, message: str, schema: type[BaseModel]) -> ElicitResult:
    """The person's answer to a form question: asked now (dated revisions) or across rounds (2026-07-28).

    Raises :class:`CannotAsk` when the connection cannot carry the question, and on 2026-07-28
    :class:`InputRequired` until the answer has come back.
    """
    if not multi_round(ctx):
        try:
            outcome = await ctx.elicit(message, schema)
        except NoBackChannelError as exc:
            raise CannotAsk(str(exc)) from None
        content = outcome.data.model_dump() if outcome.action == "accept" else None
        return ElicitResult(action=outcome.action, content=content)
    schema_json = schema.model_json_schema()
    requested = {"type": "object", "properties": schema_json["properties"], "required": schema_json.get("required")}
    question = ElicitRequestFormParams(message=message, requested_schema={k: v for k, v in requested.items() if v})
    answer = answer_to(ctx, key, question)
    if answer is None:
        ask(ctx, key, question)
    return answer


def answer_to(ctx: Context, key: str, question: ElicitRequestParams) -> ElicitResult | None:
    """On 2026-07-28: the answer to exactly this question, if an earlier round of this call got one."""
    answer = _answers(ctx).get(key)
    if answer is not None and answer[0] == _digest(question):
        return answer[1]
    return None


def ask(ctx: Context, key: str, question: ElicitRequestParams) -> NoReturn:
    """On 2026-07-28: end this round with the question; the client calls again with the answer."""
    answers = {k: {"q": digest, "a": result.model_dump(mode="json")} for k, (digest, result) in _answers(ctx).items()}
    state = {"v": STATE_VERSION, "answers": answers, "pending": {key: _digest(question)}}
    request = ElicitRequest(params=question)
    raise InputRequired(InputRequiredResult(input_requests={key: request}, request_state=json.dumps(state)))


def accepted(result: ElicitResult, field: str | None = None) -> bool:
    """Whether the person accepted (and, with ``field``, answered it with a true value)."""
    if result.action != "accept":
        return False
    return field is None or bool((result.content or {}).get(field))


def _answers(ctx: Context) -> dict[str, tuple[str, ElicitResult]]:
    """Every answer this call has so far (key -> question digest, answer): earlier rounds' and this one's."""
    try:
        state = json.loads(ctx.request_state or "{}")
    except ValueError:
        return {}
    if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
        return {}  # not ours (the SDK verified it is the server's own): nothing was asked yet
    answers: dict[str, tuple[str, ElicitResult]] = {}
    for key, entry in state.get("answers", {}).items():
        try:
            answers[key] = (entry["q"], ElicitResult.model_validate(entry["a"]))
        except (KeyError, TypeError, ValidationError):
            continue
    responses = ctx.input_responses or {}
    for key, digest in state.get("pending", {}).items():
        response = responses.get(key)
        if isinstance(response, ElicitResult):
            answers[key] = (digest, response)
    return answers


def _digest(question: ElicitRequestParams) -> str:
    text = question.model_dump_json(by_alias=True, exclude_none=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
