"""Shared benchmark machinery: processes spoken to over stdio, a sandbox in its own process, stats, results.

Benchmarks only use the standard library, the package itself and its runtime dependencies.
Everything listens on 127.0.0.1 and every loop is bounded in count and time.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astravue_mcp.config import SANDBOX_TOKEN

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PY = sys.executable
PROTOCOL = "2025-11-25"


# ---------------------------------------------------------------- numbers
def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """Median, p95, p99, mean, min, max in ms (values in seconds)."""
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values) * scale, 3),
        "p95_ms": round(pct(values, 0.95) * scale, 3),
        "p99_ms": round(pct(values, 0.99) * scale, 3),
        "mean_ms": round(statistics.fmean(values) * scale, 3),
        "min_ms": round(min(values) * scale, 3),
        "max_ms": round(max(values) * scale, 3),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anyone's ASTRAVUE_* settings (a developer's login must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    return env | extra


def server_env(api_url: str, **extra: str) -> dict[str, str]:
    return clean_env(ASTRAVUE_API_URL=api_url, ASTRAVUE_ACCESS_TOKEN=SANDBOX_TOKEN, ASTRAVUE_ORG_ID="1", **extra)


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, elapsed) CPU seconds of the whole machine so far, over all cores, every process of every user."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


class StdioSession:
    """A server process spoken to in newline-delimited JSON-RPC, as an MCP host does."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self._id = 0
        self.cpu_s = float("nan")
        self.max_rss_kb = 0

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        self._id += 1
        self._write({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}})
        deadline = time.monotonic() + timeout
        while True:
            line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if not line:
                raise RuntimeError(f"the server exited ({self.proc.wait()}) before answering {method}")
            answer = json.loads(line)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def raw_request(self, method: str, params: dict[str, Any]) -> bytes:
        """Like ``request`` but the answer's bytes as written by the server (for size measurements)."""
        self._id += 1
        self._write({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        while True:
            line = self._lines.get(timeout=60)
            if not line:
                raise RuntimeError(f"the server exited before answering {method}")
            if json.loads(line).get("id") == self._id:
                return line.rstrip(b"\n")

    def initialize(self) -> dict[str, Any]:
        result = self.request(
            "initialize",
            {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        )
        self.notify("notifications/initialized")
        return result

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{name} failed: {result['content'][0]['text']}")
        return result

    def _write(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """Close stdin (the host going away) and reap the process, keeping its CPU time and peak RSS."""
        killer = threading.Timer(15, self.proc.kill)
        killer.start()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.cpu_s = usage.ru_utime + usage.ru_stime
            self.max_rss_kb = usage.ru_maxrss
        except ChildProcessError:
            self.proc.wait()
        finally:
            killer.cancel()

    def __enter__(self) -> StdioSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SERVE = [PY, "-m", "astravue_mcp", "serve"]
FLOOR = [PY, str(BENCH / "floor_server.py")]


class SandboxProcess:
    """The sandbox as a separate HTTP server process (``bench/sandbox_host.py``), optionally with more data."""

    def __init__(
        self,
        latency_ms: float = 0,
        spaces: int = 0,
        projects: int = 0,
        tasks: int = 0,
        replace_seed: bool = False,
        cache_gets: bool = False,
    ) -> None:
        argv = (
            [
                PY,
                str(BENCH / "sandbox_host.py"),
                "--latency-ms",
                str(latency_ms),
                "--spaces",
                str(spaces),
                "--projects",
                str(projects),
                "--tasks",
                str(tasks),
            ]
            + (["--replace-seed"] if replace_seed else [])
            + (["--cache-gets"] if cache_gets else [])
        )
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env(), cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"the benchmark sandbox did not start: {line!r}")
        self.info = json.loads(line[6:])
        self.url: str = self.info["url"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
