"""Soak: 2,000 mixed tool calls, 20 at a time, about one request in ten faulted, against the sandbox over TCP.

Afterwards the server must still answer, every call must have been answered (a result or an
actionable error, never an internal error), and the sandbox's data must agree with what the calls
reported: a write that reported success happened exactly once, a write that reported a definite
failure did not happen, a write whose outcome was reported unknown happened at most once. Nothing
is ever duplicated.

Faults are set per request (the ``X-Sandbox-Fault`` header, added by a transport wrapper from a
seeded random generator), so retries meet fresh dice. Faults that hold an answer do so after the
write (``after_write``): a request the server is still processing after the client gave up would
land later than the client's next call, a reordering no client can prevent or detect.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client

from astravue_mcp.config import load_settings
from astravue_mcp.sandbox import SandboxServer
from astravue_mcp.server import build_server
from tests.support import outcome_unknown

pytestmark = pytest.mark.anyio
log = logging.getLogger(__name__)

WORKERS = 20
CALLS_PER_WORKER = 100
FAULT_RATE = 0.10
SEED = 20240601
FAULTS: list[dict[str, Any]] = [
    {"status": 500},
    {"status": 500, "after_write": True},
    {"status": 502},
    {"status": 503},
    {"status": 504},
    {"status": 503, "after_write": True},
    {"body": "reset"},
    {"body": "reset", "after_write": True},
    {"body": "html"},
    {"body": "truncated", "after_write": True},
    {"delay": 0.5, "after_write": True},
    {"status": 429, "retry_after": 0.05},
    {"status": 429},
]
# Seeded projects (space, project) the workers spread over.
PROJECTS = [(1, 1), (1, 2), (2, 3), (2, 4), (3, 5)]


class FaultInjector(httpx2.AsyncBaseTransport):
    """Real TCP, with a fault header on a seeded ``FAULT_RATE`` share of requests while ``on``."""

    def __init__(self, seed: int) -> None:
        self.real = httpx2.AsyncHTTPTransport()
        self.rng = random.Random(seed)
        self.on = False
        self.injected: Counter[str] = Counter()
        self.sent = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent += 1
        if self.on and self.rng.random() < FAULT_RATE:
            spec = self.rng.choice(FAULTS)
            self.injected[json.dumps(spec, sort_keys=True)] += 1
            request.headers["X-Sandbox-Fault"] = json.dumps(spec)
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


def outcome(result: Any) -> str:
    """'yes' (done), 'no' (definitely not done) or 'unknown' (the model was told it may be done)."""
    if not result.is_error:
        return "yes"
    return "unknown" if outcome_unknown(result.content[0].text) else "no"


@dataclass
class Worker:
    """One simulated assistant: its own target task, its own creates, deletes and time entries."""

    n: int
    space: int
    project: int
    target: int = 0
    creates: dict[str, str] = field(default_factory=dict)
    """title -> outcome of its create"""
    created_ids: dict[str, int] = field(default_factory=dict)
    deletes: dict[str, str] = field(default_factory=dict)
    """title -> outcome of its delete"""
    updates: list[tuple[str, str]] = field(default_factory=list)
    """(description written to the target, outcome), in call order"""
    entries: dict[str, str] = field(default_factory=dict)
    """time-entry notes -> outcome"""


@dataclass
class Tally:
    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    internal: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


async def step(client: Client, worker: Worker, i: int, rng: random.Random, tally: Tally) -> None:
    ids = {"space_id": worker.space, "project_id": worker.project}
    roll = rng.random()
    deletable = [t for t, o in worker.creates.items() if o == "yes" and t not in worker.deletes]
    if roll < 0.30:
        tool, args = rng.choice(
            [
                ("astravue_list_project_tasks", {**ids, "limit": 5}),
                ("astravue_get_task", {**ids, "task_id": worker.target}),
                ("astravue_list_spaces", {}),
                ("astravue_get_space", {"space_id": worker.space}),
                ("astravue_get_project", ids),
            ]
        )
        kind = None
    elif roll < 0.55 or (roll < 0.65 and not deletable):
        title = f"soak w{worker.n} c{i}"
        tool, args, kind = "astravue_create_task", {**ids, "title": title}, ("create", title)
    elif roll < 0.65:
        title = rng.choice(deletable)
        tool, args = "astravue_delete_task", {**ids, "task_id": worker.created_ids[title]}
        kind = ("delete", title)
    elif roll < 0.85:
        value = f"w{worker.n} u{i}"
        tool, args, kind = (
            "astravue_update_task",
            {**ids, "task_id": worker.target, "description": value},
            (
                "update",
                value,
            ),
        )
    else:
        notes = f"soak w{worker.n} t{i}"
        tool = "astravue_log_manual_time"
        args = {"task_id": worker.target, "project_id": worker.project, "minutes": 5, "notes": notes}
        kind = ("entry", notes)

    result = await client.call_tool(tool, args)
    tally.calls += 1
    if result.is_error:
        text = result.content[0].text
        tally.errors[tool] += 1
        if not text or text.startswith("Error executing tool"):
            tally.internal.append(f"{tool}: {text!r}")
    if kind is None:
        return
    what, key = kind
    done = outcome(result)
    if what == "create":
        worker.creates[key] = done
        if done == "yes":
            worker.created_ids[key] = result.structured_content["id"]
    elif what == "delete":
        worker.deletes[key] = done
    elif what == "update":
        worker.updates.append((key, done))
    else:
        worker.entries[key] = done


def allowed_counts(created: str, deleted: str | None) -> set[int]:
    """How many tasks with a title may exist, given what the create and the delete reported."""
    exists = {"yes": {1}, "no": {0}, "unknown": {0, 1}}[created]
    if deleted is None or deleted == "no":
        return exists
    return {0} if deleted == "yes" else {0, 1}


def allowed_descriptions(updates: list[tuple[str, str]], initial: str | None) -> set[str | None]:
    """The target's possible final description: the last confirmed write, or any later unsure one."""
    last_yes = max((i for i, (_, o) in enumerate(updates) if o == "yes"), default=-1)
    possible = {updates[last_yes][0]} if last_yes >= 0 else {initial}
    possible |= {v for v, o in updates[last_yes + 1 :] if o == "unknown"}
    return possible


async def test_soak_2000_mixed_calls_with_faults(sandbox: SandboxServer) -> None:
    httpx2.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    store = sandbox.app.state.sandbox
    injector = FaultInjector(SEED)
    settings = load_settings(
        {}, toolsets="all", connect_timeout=1, read_timeout=0.3, max_retries=2, retry_budget=3, rate_limit=100_000
    ).sandboxed(sandbox.url)
    workers = [Worker(n, *PROJECTS[n % len(PROJECTS)]) for n in range(WORKERS)]
    tally = Tally()
    async with Client(build_server(settings, transport=injector)) as client:
        for w in workers:  # each worker's own update target, created before any fault
            created = await client.call_tool(
                "astravue_create_task", {"space_id": w.space, "project_id": w.project, "title": f"soak target {w.n}"}
            )
            w.target = created.structured_content["id"]

        async def run(worker: Worker) -> None:
            rng = random.Random(SEED + worker.n)
            for i in range(CALLS_PER_WORKER):
                await step(client, worker, i, rng, tally)

        injector.on = True
        started = time.monotonic()
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for w in workers:
                    tg.start_soon(run, w)
        elapsed = time.monotonic() - started
        injector.on = False
        alive = await client.call_tool("astravue_list_spaces", {})

    log.warning(
        "soak: %d calls in %.1f s (%.0f calls/s), %d requests, %d faults injected, errors by tool %s",
        tally.calls,
        elapsed,
        tally.calls / elapsed,
        injector.sent,
        sum(injector.injected.values()),
        dict(tally.errors),
    )
    assert not alive.is_error
    assert tally.calls == WORKERS * CALLS_PER_WORKER
    assert tally.internal == []
    assert 0.05 < sum(injector.injected.values()) / injector.sent < 0.15

    titles = Counter(t.title for t in store.tasks.values())
    notes = Counter(t.notes for t in store.timers.values())
    anomalies = []
    for w in workers:
        for title, created in w.creates.items():
            allowed = allowed_counts(created, w.deletes.get(title))
            if titles[title] not in allowed:
                anomalies.append(
                    f"{title!r}: {titles[title]} in the sandbox, create {created}, delete {w.deletes.get(title)}"
                )
        for entry, done in w.entries.items():
            if notes[entry] not in {"yes": {1}, "no": {0}, "unknown": {0, 1}}[done]:
                anomalies.append(f"time entry {entry!r}: {notes[entry]} in the sandbox, log {done}")
        final = store.tasks[w.target].description
        if final not in allowed_descriptions(w.updates, None):
            anomalies.append(f"target of worker {w.n}: description {final!r} after updates {w.updates[-3:]}")
    assert anomalies == []
    # Nothing was ever written twice: no title or time entry of this run exists more than once.
    assert max(c for t, c in titles.items() if t.startswith("soak")) == 1
    assert max(c for n, c in notes.items() if n and n.startswith("soak")) == 1
    # The run did exercise every kind of outcome.
    outcomes = Counter(o for w in workers for o in [*w.creates.values(), *(o for _, o in w.updates)])
    assert outcomes["yes"] > 500 and outcomes["unknown"] > 0 and outcomes["no"] > 0
