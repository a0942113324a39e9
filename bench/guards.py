"""9. What the safety machinery costs per call: the stdio guard and the per-call time limit.

- **stdio guard** (``astravue_mcp.stdio``): every line from the client is checked (is it one JSON-RPC
  message?) and passed through a pipe to the SDK, every line of the SDK's copied to the real stdout
  by a thread. Measured end to end on the floor server (``bench/floor_server.py``), bare and
  ``--guarded``, over stdio: in each round both are called back to back, a 1-byte and a 100 KB
  argument (the answer echoes it); medians compared. Also the check alone, in process, per line.
- **time limit** (``tools.registry.time_limited`` and the client's per-request cut): inside a real
  tool call on the real server (in-memory client, real ``Context``), N rounds of the per-call setup
  (``CallScope``, context variable, backstop cancel scope with its deadline) around one checkpoint,
  against N bare checkpoints; and the per-request part (read the call's scope, cut the timeout).

    .venv/bin/python bench/guards.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.server.mcpserver import Context

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FLOOR, StdioSession, summary, table, write_result

from astravue_mcp.api.client import AstravueClient
from astravue_mcp.api.limits import current_call
from astravue_mcp.config import load_settings
from astravue_mcp.server import build_server
from astravue_mcp.stdio import answer
from astravue_mcp.tools.registry import time_limited

SIZES = {"1 B": "x", "100 KB": "x" * 100_000}
INNER = 2_000
"""Rounds of the time-limit setup timed together (one sample)."""


def stdio_guard(rounds: int, warmup: int = 30) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with StdioSession(FLOOR) as bare, StdioSession([*FLOOR, "--guarded"]) as guarded:
        bare.initialize()
        guarded.initialize()
        for label, text in SIZES.items():
            times: dict[str, list[float]] = {"bare": [], "guarded": []}
            for i in range(warmup + rounds):
                for name, session in (("bare", bare), ("guarded", guarded)):
                    started = time.perf_counter()
                    session.call("ping", {"text": text})
                    if i >= warmup:
                        times[name].append(time.perf_counter() - started)
            stats = {k: summary(v) for k, v in times.items()}
            out[label] = {
                "stats": stats,
                "overhead_median_ms": round(stats["guarded"]["median_ms"] - stats["bare"]["median_ms"], 3),
            }
    return out


def line_check(rounds: int = 20_000) -> dict[str, float]:
    """The guard's check of one incoming line, in process (µs per line)."""
    out = {}
    for label, text in SIZES.items():
        line = json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ping", "arguments": {"text": text}}}
        )
        n = rounds if len(line) < 1000 else max(200, rounds // 100)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(n):
                assert answer(line) is None
            best = min(best, (time.perf_counter() - started) / n)
        out[label] = round(best * 1e6, 2)
    return out


def time_limit(samples: int) -> dict[str, Any]:
    settings = load_settings({}, toolsets="all").sandboxed("http://127.0.0.1:9")  # nothing is sent
    server = build_server(settings)
    api = AstravueClient(settings)
    measured: dict[str, list[float]] = {"bare": [], "per_call": [], "per_request": []}

    @server.tool()
    async def machinery(ctx: Context) -> str:
        """Time the per-call and per-request time-limit work with this call's real context."""
        for _ in range(samples):
            started = time.perf_counter()
            for _ in range(INNER):
                await anyio.lowlevel.checkpoint()
            measured["bare"].append((time.perf_counter() - started) / INNER)
            started = time.perf_counter()
            for _ in range(INNER):
                with time_limited(ctx):
                    await anyio.lowlevel.checkpoint()
            measured["per_call"].append((time.perf_counter() - started) / INNER)
            with time_limited(ctx):
                started = time.perf_counter()
                for _ in range(INNER):
                    scope = current_call()
                    assert scope is not None
                    min(time.monotonic() + settings.retry_budget, scope.deadline)
                    api._timeout(scope)
                measured["per_request"].append((time.perf_counter() - started) / INNER)
        return "done"

    async def main() -> None:
        async with Client(server) as client:
            result = await client.call_tool("machinery", {})
            assert not result.is_error, result.content[0].text
        await api.aclose()

    anyio.run(main)
    stats = {k: summary(v, scale=1e6) for k, v in measured.items()}  # in µs
    return {
        "samples": samples,
        "inner_rounds": INNER,
        "stats_us": stats,
        "per_call_us": round(stats["per_call"]["median_ms"] - stats["bare"]["median_ms"], 2),
        "per_request_us": round(stats["per_request"]["median_ms"], 2),
    }


def run(rounds: int = 300) -> dict[str, Any]:
    return {
        "rounds": rounds,
        "stdio_guard": stdio_guard(rounds),
        "line_check_us": line_check(),
        "time_limit": time_limit(samples=max(10, rounds // 10)),
    }


def report(r: dict[str, Any]) -> str:
    rows = []
    for label, case in r["stdio_guard"].items():
        for name, s in case["stats"].items():
            rows.append([f"floor, {label} argument, {name}", s["median_ms"], s["p95_ms"]])
        rows.append([f"  stdio guard overhead ({label})", case["overhead_median_ms"], ""])
    t = r["time_limit"]
    return "\n".join(
        [
            f"Safety machinery per call, {r['rounds']} rounds",
            table(["call", "median ms", "p95 ms"], rows),
            "guard's line check in process: " + ", ".join(f"{k}: {v:.1f} µs" for k, v in r["line_check_us"].items()),
            f"time limit: {t['per_call_us']:.1f} µs per tool call, {t['per_request_us']:.1f} µs per API request",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    result = run(parser.parse_args().rounds)
    write_result("guards", result)
    print(report(result))


if __name__ == "__main__":
    main()
