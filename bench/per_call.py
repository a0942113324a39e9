"""2. Per-call overhead: a read tool through stdio vs a direct HTTP GET of the same endpoint vs the floor's tool.

The sandbox runs as a separate HTTP server process; our server talks to it over TCP like to the real
API. In each round the three are timed back to back (tool call, direct GET, floor call), so load
changes hit all three; medians and p95 are compared. The client-side rate budget is lifted (it
would make most calls wait, which is the budget working, not per-call overhead).
Target: tool <= direct GET + floor call + 0.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FLOOR, SERVE, SandboxProcess, StdioSession, server_env, summary, table, verdict, write_result

from astravue_mcp.api.endpoints import ENDPOINTS
from astravue_mcp.config import SANDBOX_ORG_ID, SANDBOX_TOKEN
from astravue_mcp.tools.task_api import page_params

BUDGET_MS = 0.5
RATE_LIMIT = 1_000_000
"""Lifted: at the default 100 requests/minute, 660 timed calls would spend ~6 minutes waiting for the budget."""
# (tool, arguments, operation, ids, query): the tool and the one API request it makes.
CASES = [
    (
        "astravue_get_task",
        {"task_id": 1, "space_id": 1, "project_id": 1},
        "get_project_task",
        {"spaceId": 1, "projectId": 1, "taskId": 1},
        {},
    ),
    (
        "astravue_list_project_tasks",
        {"space_id": 1, "project_id": 1, "limit": 25},
        "list_project_tasks",
        {"spaceId": 1, "projectId": 1},
        page_params(1, 25),
    ),
]


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(rounds: int = 300, warmup: int = 30) -> dict[str, Any]:
    results: dict[str, Any] = {"rounds": rounds, "cases": {}}
    with SandboxProcess() as sandbox:
        headers = {
            "Authorization": f"Bearer {SANDBOX_TOKEN}",
            "X-Org-Id": str(SANDBOX_ORG_ID),
            "Accept": "application/json",
        }
        env = server_env(sandbox.url, ASTRAVUE_RATE_LIMIT=str(RATE_LIMIT))
        loop = asyncio.new_event_loop()
        with (
            StdioSession(SERVE, env) as ours,
            StdioSession(FLOOR) as floor,
            httpx2.Client(base_url=sandbox.url, headers=headers, timeout=10) as http,
        ):
            # For reference: the same GET through httpx2's async client, the stack an asyncio server uses.
            ahttp = httpx2.AsyncClient(base_url=sandbox.url, headers=headers, timeout=10)
            ours.initialize()
            floor.initialize()
            for tool, args, operation, ids, query in CASES:
                endpoint = ENDPOINTS[operation]
                url = endpoint.url(**ids)

                def direct(method: str = endpoint.method, url: str = url, query: dict[str, Any] = query) -> None:
                    http.request(method, url, params=query).raise_for_status()

                def direct_async(method: str = endpoint.method, url: str = url, query: dict[str, Any] = query) -> None:
                    loop.run_until_complete(ahttp.request(method, url, params=query)).raise_for_status()

                calls = {
                    "tool": lambda tool=tool, args=args: ours.call(tool, args),
                    "direct_get": direct,
                    "floor_tool": lambda: floor.call("ping", {"text": "x"}),
                    "direct_get_async": direct_async,
                }
                times: dict[str, list[float]] = {k: [] for k in calls}
                for i in range(warmup + rounds):
                    for name, fn in calls.items():
                        elapsed = timed(fn)
                        if i >= warmup:
                            times[name].append(elapsed)
                stats = {k: summary(v) for k, v in times.items()}
                tool_ms, get_ms, floor_ms = (stats[k]["median_ms"] for k in ("tool", "direct_get", "floor_tool"))
                overhead = tool_ms - get_ms - floor_ms
                results["cases"][tool] = {
                    "request": f"{endpoint.method} {endpoint.path}",
                    "stats": stats,
                    "overhead_median_ms": round(overhead, 3),
                    "overhead_vs_async_get_median_ms": round(
                        tool_ms - stats["direct_get_async"]["median_ms"] - floor_ms, 3
                    ),
                    "overhead_p95_ms": round(
                        stats["tool"]["p95_ms"] - stats["direct_get"]["p95_ms"] - stats["floor_tool"]["p95_ms"], 3
                    ),
                    "met": overhead <= BUDGET_MS,
                }
            loop.run_until_complete(ahttp.aclose())
        loop.close()
    # The target is about one read call (one object); the 25-task list adds per-task work on top.
    single = results["cases"][CASES[0][0]]
    results["target"] = {
        "what": f"read tool <= direct GET + floor call + {BUDGET_MS} ms (medians)",
        "value": single["overhead_median_ms"],
        "met": single["met"],
        "vs_async_get": single["overhead_vs_async_get_median_ms"],
    }
    return results


def report(r: dict[str, Any]) -> str:
    rows = []
    for tool, case in r["cases"].items():
        for name, s in case["stats"].items():
            rows.append([f"{tool} / {name}" if name == "tool" else f"  {name}", s["median_ms"], s["p95_ms"]])
        rows.append(["  overhead (tool - GET - floor)", case["overhead_median_ms"], case["overhead_p95_ms"]])
        rows.append(["  overhead vs the async GET", case["overhead_vs_async_get_median_ms"], ""])
    return "\n".join(
        [
            f"Per-call overhead over stdio, {r['rounds']} rounds",
            table(["call", "median ms", "p95 ms"], rows),
            f"target (single read): overhead <= {BUDGET_MS} ms: {verdict(r['target']['met'])} "
            f"({r['target']['value']:.2f} ms; {r['target']['vs_async_get']:.2f} ms over the async GET)",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    result = run(parser.parse_args().rounds)
    write_result("per_call", result)
    print(report(result))


if __name__ == "__main__":
    main()
