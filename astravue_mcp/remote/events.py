"""Resource-change events for ``subscriptions/listen`` in remote mode: each person hears their own.

The SDK's default bus fans every event out to every listen stream of its process, matched by URI
alone. Hosted for a team that is wrong twice: ``astravue://tasks/2`` names a different task in each
organisation (and the same task may be hidden from a colleague), so a change one person made would
reach another person's stream; and a change made through one replica would never reach a stream
held open by another. :class:`PersonalBus` (the SDK's ``SubscriptionBus`` seam) keys an event by the
person and organisation of the request that published it and a stream by those of the request that
opened it, and carries events through the shared state (Redis pub/sub, or this process for
``memory://``), so every replica delivers to its own streams.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from astravue_mcp.remote.state import State

CHANNEL = "events"
log = logging.getLogger("astravue_mcp.remote.events")

Audience = Callable[[], str | None]
"""Who the current request acts for (person and organisation), or None outside a signed-in request."""


class PersonalBus:
    """A ``SubscriptionBus`` whose events reach only the streams of the person and organisation that caused them."""

    def __init__(self, state: State, audience: Audience) -> None:
        self.state, self.audience = state, audience
        self._streams: dict[object, tuple[str, Callable[[ServerEvent], None]]] = {}

    async def publish(self, event: ServerEvent) -> None:
        to = self.audience()
        if to is None or not isinstance(event, ResourceUpdated):
            return  # the lists are the same for everyone and fixed while the server runs: only resources change
        await self.state.publish(CHANNEL, json.dumps({"to": to, "uri": event.uri}).encode())

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        to = self.audience()
        if to is not None:
            self._streams[token] = (to, listener)

        def unsubscribe() -> None:
            self._streams.pop(token, None)

        return unsubscribe

    def deliver(self, message: bytes) -> None:
        """One event from any replica, to this replica's streams of the same person and organisation."""
        try:
            data = json.loads(message)
            to, event = str(data["to"]), ResourceUpdated(uri=str(data["uri"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Ignored a malformed resource event on the shared state: %s", exc)
            return
        for audience, listener in list(self._streams.values()):
            if audience == to:
                try:
                    listener(event)
                except Exception as exc:  # one broken stream must not starve the others
                    log.warning("A listen stream refused an event: %s", exc)
