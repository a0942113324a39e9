"""5. Throughput over Streamable HTTP: 50 concurrent MCP clients x 100 read calls each.

``astravue-mcp serve --sandbox --transport http`` runs as its own process (the embedded sandbox
in-process, as in the documented demo). Each client is a real MCP session spoken to in plain
HTTP (initialize, initialized, tools/call..., DELETE), which keeps the load generator light on a
2-core machine. Memory: RSS of the server process from /proc after start plus one warm-up call
("idle"), its peak during the run, and again after the run once every session is closed.
Target: zero errors and RSS growth under 20 MB after the run. The client-side rate budget is
lifted (see RATE_LIMIT): at the default 100 requests/minute this run would take 50 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, clean_env, free_port, pct, rss_kb, summary, table, verdict, write_result

from astravue_mcp.config import SANDBOX_ORG_ID

GROWTH_MB = 20
RATE_LIMIT = 1_000_000
"""The client-side budget protects the real API (100/min by default, shared by every session of one
server); against the in-process sandbox it would only measure itself, so it is lifted here."""
CALLS = [  # read calls, in rotation, against the seeded sandbox
    ("astravue_list_spaces", {}),
    ("astravue_list_projects", {"space_id": 1}),
    ("astravue_list_project_tasks", {"space_id": 1, "project_id": 1, "limit": 25}),
    ("astravue_get_task", {"task_id": 1, "space_id": 1, "project_id": 1}),
]
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def decode(response: httpx2.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if "id" in message:
                    return message
        raise RuntimeError("no JSON-RPC answer in the event stream")
    return response.json()


class McpHttpClient:
    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.headers = dict(HEADERS)
        self.next_id = 0

    async def post(self, method: str, params: dict[str, Any], notify: bool = False) -> dict[str, Any] | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            self.next_id += 1
            message["id"] = self.next_id
        response = await self.http.post("/mcp", json=message, headers=self.headers)
        response.raise_for_status()
        if notify:
            return None
        answer = decode(response)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    async def open(self) -> None:
        self.next_id += 1
        response = await self.http.post(
            "/mcp",
            headers=self.headers,
            json={
                "jsonrpc": "2.0",
                "id": self.next_id,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "1"},
                },
            },
        )
        response.raise_for_status()
        session = response.headers.get("mcp-session-id")
        if session:
            self.headers["mcp-session-id"] = session
        protocol = decode(response)["result"]["protocolVersion"]
        self.headers["mcp-protocol-version"] = protocol
        await self.post("notifications/initialized", {}, notify=True)

    async def close(self) -> None:
        if "mcp-session-id" in self.headers:
            await self.http.delete("/mcp", headers=self.headers)


async def load(url: str, clients: int, calls: int, timeout: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def one_client(index: int) -> None:
            client = McpHttpClient(http)
            await client.open()
            try:
                for i in range(calls):
                    name, args = CALLS[(index + i) % len(CALLS)]
                    started = time.perf_counter()
                    try:
                        result = await client.post("tools/call", {"name": name, "arguments": args})
                        if result is None or result.get("isError"):
                            errors.append(f"{name}: {result}")
                    except Exception as exc:  # noqa: BLE001 - every failure counts as an error
                        errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    latencies.append(time.perf_counter() - started)
            finally:
                await client.close()

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one_client(i) for i in range(clients))), timeout)
        wall = time.perf_counter() - started
    return {"wall_s": wall, "latencies": latencies, "errors": errors}


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the HTTP server exited at start")
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the HTTP server did not become healthy")


def run(clients: int = 50, calls: int = 100) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(ASTRAVUE_ORG_ID=str(SANDBOX_ORG_ID), ASTRAVUE_RATE_LIMIT=str(RATE_LIMIT))
    proc = subprocess.Popen(
        [PY, "-m", "astravue_mcp", "serve", "--sandbox", "--transport", "http", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        wait_healthy(url, proc)
        warm = asyncio.run(load(url, 1, len(CALLS), 60))  # every tool once: lazy state exists before "idle"
        time.sleep(1)
        idle_rss, _ = rss_kb(proc.pid)
        run_ = asyncio.run(load(url, clients, calls, 300))
        _, peak = rss_kb(proc.pid)
        time.sleep(2)
        after_rss, _ = rss_kb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    total = clients * calls
    growth_mb = (after_rss - idle_rss) / 1024
    ok = not run_["errors"] and not warm["errors"] and len(run_["latencies"]) == total and growth_mb < GROWTH_MB
    return {
        "rate_limit_per_min": RATE_LIMIT,
        "clients": clients,
        "calls_per_client": calls,
        "calls": total,
        "errors": len(run_["errors"]),
        "error_samples": run_["errors"][:5],
        "wall_s": round(run_["wall_s"], 3),
        "calls_per_s": round(total / run_["wall_s"], 1),
        "latency": summary(run_["latencies"]),
        "p50_ms": round(pct(run_["latencies"], 0.5) * 1000, 2),
        "p99_ms": round(pct(run_["latencies"], 0.99) * 1000, 2),
        "rss_mb": {
            "idle": round(idle_rss / 1024, 1),
            "peak": round(peak / 1024, 1),
            "after": round(after_rss / 1024, 1),
            "growth": round(growth_mb, 1),
        },
        "target": {
            "what": f"0 errors and RSS growth < {GROWTH_MB} MB after the run",
            "value": f"{len(run_['errors'])} errors, {growth_mb:+.1f} MB",
            "met": ok,
        },
    }


def report(r: dict[str, Any]) -> str:
    m = r["rss_mb"]
    rows = [
        [
            f"{r['clients']} x {r['calls_per_client']}",
            r["calls_per_s"],
            r["p50_ms"],
            r["p99_ms"],
            r["errors"],
            m["idle"],
            m["peak"],
            m["after"],
            m["growth"],
        ]
    ]
    return "\n".join(
        [
            "Streamable HTTP throughput (serve --sandbox --transport http)",
            table(
                [
                    "clients x calls",
                    "calls/s",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "RSS idle MB",
                    "peak MB",
                    "after MB",
                    "growth MB",
                ],
                rows,
            ),
            f"target {r['target']['what']}: {verdict(r['target']['met'])}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    result = run(args.clients, args.calls)
    write_result("throughput", result)
    print(report(result))


if __name__ == "__main__":
    main()
