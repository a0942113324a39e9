"""Time limits of a tool call and the shared rate budget: nothing waits silently or without bound.

A tool call runs inside a :class:`CallScope`, kept in a context variable so that every API request
the call makes (fan-out tasks included) sees it. Its deadline caps each request's timeout, the
retries and any wait for the rate budget; its progress reporter tells a client that asked for
progress what the call is waiting for.

The :class:`RateBudget` is shared by every session of one server process (one Astravue login). It
serves waiting requests fairly: the session that used the fewest slots in the window goes first,
so one session's fan-out cannot starve the others, and a request that could not get a slot within
the bound fails at once with the time to retry instead of waiting.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio

MAX_BUDGET_WAIT = 20.0
"""The longest a request waits for the rate budget: well inside a client's 60 s request timeout."""
ANSWER_RESERVE = 0.5
"""Seconds of a call's limit kept for building and sending its answer."""
PROGRESS_EVERY = 2.0
"""Seconds between two "still waiting" progress notifications of one call."""

Reporter = Callable[[float, float | None, str], Awaitable[None]]


@dataclass
class CallScope:
    """One tool call: its deadline, the session it belongs to, and how it reports progress."""

    limit: float
    session: Hashable = None
    report: Reporter | None = None
    deadline: float = field(init=False)
    backstop: anyio.CancelScope | None = None
    """Cancels what still runs at the limit (nothing that waits on the API should: it is cut earlier)."""
    _progress: float = field(default=0.0, init=False)
    _total: float | None = field(default=None, init=False)
    _last_wait_note: float = field(default=-math.inf, init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Count the limit from now (after a person answered a confirmation: their time is not ours).

        API work must end a little before the limit, so the answer (with what was skipped) is built
        and sent within it.
        """
        self.deadline = time.monotonic() + self.limit - min(ANSWER_RESERVE, self.limit / 10)
        if self.backstop is not None:
            self.backstop.deadline = anyio.current_time() + self.limit

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def limit_text(self) -> str:
        return f"the call's time limit of {self.limit:g} s (ASTRAVUE_CALL_TIMEOUT)"

    async def progress(self, message: str, done: float | None = None, total: float | None = None) -> None:
        """Report progress; values only ever increase, also when waits interleave with a fan-out's count."""
        if self.report is None:
            return
        value = done if done is not None and done > self._progress else self._progress + 0.001
        self._progress = value
        if total is not None:
            self._total = total
        await self.report(value, self._total, message)

    async def waiting(self, message: str) -> None:
        """A "still waiting" note, at most one every PROGRESS_EVERY seconds per call."""
        now = time.monotonic()
        if now - self._last_wait_note >= PROGRESS_EVERY:
            self._last_wait_note = now
            await self.progress(message)


_current: ContextVar[CallScope | None] = ContextVar("astravue_call_scope", default=None)


def current_call() -> CallScope | None:
    return _current.get()


def session_of(ctx: Any) -> Hashable:
    """Whose share of the rate budget a request uses.

    Over HTTP, its session; a request without one (at 2026-07-28 every HTTP request stands alone)
    counts for the client that sent it, by peer address and declared client name: as its own party
    each request would have used nothing yet, and a client firing many at once would go ahead of
    everyone. Such a request's session header is ignored: nothing checks it at that version.
    Without HTTP (stdio, in memory) there is one client: each call is a party of its own.
    """
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS  # deferred: the SDK's types, loaded by any server

    headers = ctx.headers
    if headers is None:
        return id(ctx.request_context.session)
    if headers.get("mcp-session-id") and ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
        return ("session", headers["mcp-session-id"])  # checked by the SDK: only a live session gets here
    peer = getattr(ctx.request_context.request, "client", None)
    declared = ctx.session.client_params
    return ("client", peer.host if peer else None, declared.client_info.name if declared else None)


@contextmanager
def call_scope(scope: CallScope) -> Iterator[CallScope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


class BudgetSpent(Exception):
    """No slot within the bound: ``str()`` says why, ``retry_after`` when a slot is expected."""

    def __init__(self, why: str, retry_after: int) -> None:
        super().__init__(why)
        self.retry_after = retry_after


@dataclass(order=True)
class _Ticket:
    used: int
    arrival: int
    session: Hashable = field(compare=False)


class RateBudget:
    """At most ``per_minute`` requests in any sliding window, handed out fairly between sessions."""

    def __init__(self, per_minute: int, window: float = 60.0, max_wait: float = MAX_BUDGET_WAIT) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_wait = max_wait
        self._sent: deque[tuple[float, Hashable]] = deque()
        self._used: Counter[Hashable] = Counter()
        self._waiting: list[_Ticket] = []
        self._arrivals = itertools.count()
        self._changed: anyio.Event | None = None

    async def acquire(self, scope: CallScope | None = None) -> None:
        """Take a slot, waiting at most ``max_wait`` (and never past the call's deadline)."""
        session = scope.session if scope is not None else None
        now = time.monotonic()
        self._expire(now)
        if not self._waiting and len(self._sent) < self.per_minute:
            self._take(now, session)  # the common case: no await between the check and the take
            return
        ticket = _Ticket(self._used[session], next(self._arrivals), session)
        self._waiting.append(ticket)
        limit = min(self.max_wait, scope.remaining() if scope is not None else math.inf)
        give_up = now + limit
        try:
            while True:
                now = time.monotonic()
                self._expire(now)
                ahead = sum(1 for other in self._waiting if other < ticket)
                if ahead == 0 and len(self._sent) < self.per_minute:
                    self._take(now, session)
                    return
                ready = self._free_at(ahead, now)
                if ready > give_up:
                    raise self._spent(ready - now, scope, limit)
                if scope is not None:
                    await scope.waiting(
                        f"waiting {ready - now:.0f} s for the rate budget ({self.per_minute} requests/min)"
                    )
                    # Sending that may have taken a while: look again before deciding how long to sleep.
                    now = time.monotonic()
                    self._expire(now)
                full = len(self._sent) >= self.per_minute
                if not full and not any(other < ticket for other in self._waiting):
                    continue  # the free slot is ours
                # A full window frees at its oldest request's time; a free slot that someone ahead will
                # take is worth waiting for only until they do (each waiter notifies when it leaves).
                next_free = self._sent[0][0] + self.window if full else give_up
                if self._changed is None:
                    self._changed = anyio.Event()
                with anyio.move_on_after(max(0.0, min(next_free, give_up) - now)):
                    await self._changed.wait()
        finally:
            self._waiting.remove(ticket)
            self._notify()

    def _free_at(self, ahead: int, now: float) -> float:
        """When the slot for the request with ``ahead`` requests before it frees up (as things stand)."""
        index = len(self._sent) - self.per_minute + ahead
        if index < 0:
            return now
        if index >= len(self._sent):
            return now + self.window  # not even the whole current window frees enough slots
        return self._sent[index][0] + self.window

    def _spent(self, wait: float, scope: CallScope | None, limit: float) -> BudgetSpent:
        if scope is not None and limit < self.max_wait:
            why = f"{scope.limit_text} would pass before the rate budget has a free slot"
        else:
            why = f"the rate budget of {self.per_minute} API requests a minute (ASTRAVUE_RATE_LIMIT) is spent"
        return BudgetSpent(why, math.ceil(wait))

    def _take(self, now: float, session: Hashable) -> None:
        self._sent.append((now, session))
        self._used[session] += 1

    def _expire(self, now: float) -> None:
        expired = False
        while self._sent and now - self._sent[0][0] >= self.window:
            _, session = self._sent.popleft()
            self._used[session] -= 1
            if not self._used[session]:
                del self._used[session]
            expired = True
        if expired:
            self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
