"""The sandbox as its own HTTP server process for the benchmarks, with generated data on top of the seed.

Prints ``READY {"url": ..., "spaces": [...], "projects": [[space_id, project_id], ...]}`` on stdout once it
listens on 127.0.0.1, then serves until terminated (or until its stdin closes).
Generated tasks carry what real ones do (owners, tags, description, dates, status, priority), so raw
API answers have the full nested objects the API documents.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta

import anyio
import uvicorn

from astravue_mcp.api.models import ProjectWrite, SpaceWrite, TaskWrite
from astravue_mcp.sandbox import create_app

STATUSES = ["To Do", "In Progress", "In Review", "Done"]
PRIORITIES = ["Low", "Medium", "High", "Critical"]
TAGS = ["backend", "frontend", "ux", "infra", "docs", "qa", "mobile", "api"]
WORDS = ["Refactor", "Design", "Review", "Migrate", "Document", "Fix", "Measure", "Ship"]
THINGS = ["billing export", "login screen", "search index", "webhook retries", "release notes", "audit log"]


def populate(store, spaces: int, projects: int, tasks: int, replace_seed: bool) -> dict:
    actor = store.current_user_id
    if replace_seed:
        for space in list(store.spaces.values()):
            store.delete_space(space)
    made_spaces = [
        store.create_space(SpaceWrite(space_name=f"Bench space {i + 1}", description="Generated."), actor)
        for i in range(spaces)
    ]
    users = sorted(store.users)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    made_projects = []
    for p in range(projects):
        space = made_spaces[p % len(made_spaces)]
        project = store.create_project(
            space, ProjectWrite(project_name=f"Bench project {p + 1}", description="Generated for benchmarks."), actor
        )
        made_projects.append([space.space_id, project.project_id])
        for t in range(tasks):
            n = p * tasks + t
            body = TaskWrite(
                task_title=f"{WORDS[n % len(WORDS)]} {THINGS[n % len(THINGS)]} #{t + 1}",
                description=(
                    f"Step {t + 1} of the {THINGS[n % len(THINGS)]} work: agree the scope with the team, make the "
                    "change behind a flag, measure it in staging, then roll it out and write down what was learnt."
                ),
                owners=[users[n % len(users)], users[(n + 2) % len(users)]],
                tags=[TAGS[n % len(TAGS)], TAGS[(n + 3) % len(TAGS)]],
                start_date=today + timedelta(days=(n % 30) - 20),
                due_date=today + timedelta(days=(n % 30) - 10),
                completion=(n * 7) % 100,
                status=STATUSES[n % len(STATUSES)],
                priority=PRIORITIES[n % len(PRIORITIES)],
            )
            store.create_task(project, body, actor)
    return {"spaces": [s.space_id for s in made_spaces], "projects": made_projects}


class CachedGets:
    """Replay GET answers once seen, after the same simulated latency: a stand-in for a remote API.

    The sandbox builds every answer on this machine's CPU (a 100-task page is ~350 KB of nested
    JSON); a real API spends that CPU on its own servers. Benchmarks that measure our server's
    concurrency use this so the co-located sandbox's CPU is not charged to it. Data must not change
    while it is on (the fan-out benchmark only reads).
    """

    def __init__(self, app, latency_s: float) -> None:
        self.app, self.latency_s = app, latency_s
        self.cache: dict[tuple[str, bytes, bytes], tuple[dict, list[bytes]]] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope["query_string"], dict(scope["headers"]).get(b"authorization", b""))
        hit = self.cache.get(key)
        if hit is None:
            start: dict = {}
            chunks: list[bytes] = []

            async def record(message) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)
                else:
                    chunks.append(message.get("body", b""))
                await send(message)

            await self.app(scope, receive, record)
            if start.get("status") == 200:
                self.cache[key] = (start, chunks)
            return
        await anyio.sleep(self.latency_s)
        await send(hit[0])
        await send({"type": "http.response.body", "body": b"".join(hit[1])})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--spaces", type=int, default=0)
    parser.add_argument("--projects", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=0, help="tasks per generated project")
    parser.add_argument("--replace-seed", action="store_true", help="delete the seed's spaces first")
    parser.add_argument("--cache-gets", action="store_true", help="replay GET answers once seen (see CachedGets)")
    args = parser.parse_args()
    app = create_app(latency_ms=args.latency_ms)
    made = populate(
        app.state.sandbox, max(args.spaces, 1 if args.projects else 0), args.projects, args.tasks, args.replace_seed
    )
    # TCP_NODELAY on the listening socket (accepted sockets inherit it): without it a pre-bound socket
    # handed to uvicorn answers every request ~40 ms late (Nagle + delayed ACK), which would swamp
    # every per-call number. (SandboxServer binds the same way and has this problem; see BENCHMARKS.md.)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    served = CachedGets(app, args.latency_ms / 1000) if args.cache_gets else app
    server = uvicorn.Server(
        uvicorn.Config(served, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    )
    # The parent closes our stdin (or terminates us) when it is done.
    threading.Thread(target=lambda: (sys.stdin.read(), setattr(server, "should_exit", True)), daemon=True).start()
    print("READY " + json.dumps({"url": url, **made}), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
