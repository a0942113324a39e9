"""1. Start-up: spawn -> initialize answered -> tools/list answered, against a floor server in the same run.

The floor is a minimal MCPServer with one trivial tool (``floor_server.py``), started the same way
(a fresh ``python`` process over stdio). Runs alternate floor/ours so drifting machine load hits
both alike; medians are compared. CPU time (user+sys of the child, from wait4) is reported beside
wall time because it is far less sensitive to other processes on a shared machine.
Also: ``python -X importtime`` of both, and an in-process split of where our extra time goes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH,
    FLOOR,
    PY,
    ROOT,
    SERVE,
    SandboxProcess,
    StdioSession,
    server_env,
    table,
    verdict,
    write_result,
)

from astravue_mcp import surface

TARGET_RATIO = 1.10


def one_start(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    session = StdioSession(argv, env)
    session.initialize()
    initialized = time.perf_counter() - session.started
    tools = session.request("tools/list")["tools"]
    listed = time.perf_counter() - session.started
    session.close()
    return {"initialize_s": initialized, "tools_list_s": listed, "cpu_s": session.cpu_s, "tools": len(tools)}


def importtime(argv: list[str], env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """module -> (self us, cumulative us) from ``-X importtime`` of a server that starts and sees EOF at once."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    modules: dict[str, tuple[int, int]] = {}
    for line in done.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, total, name = line[len("import time:") :].split("|")
            modules[name.strip()] = (int(own), int(total))
    return modules


def phases(env: dict[str, str]) -> dict[str, float]:
    """CPU seconds of each start-up phase inside our process (min over a few fresh processes)."""
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [PY, str(BENCH / "_startup_phases.py")], env=env, capture_output=True, cwd=ROOT, timeout=60, check=True
        )
        runs.append(json.loads(out.stdout))
    return {k: round(min(r[k] for r in runs), 4) for k in runs[0]}


def run(rounds: int = 9) -> dict[str, Any]:
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory() as cache:
        env = server_env(sandbox.url, ASTRAVUE_CACHE_DIR=cache)
        one_start(FLOOR, env)  # warm the page cache and bytecode
        first = one_start(SERVE, env)  # this install's first start: no tool cache yet, every tool is built
        samples: dict[str, list[dict[str, float]]] = {"floor": [], "ours": []}
        for _ in range(rounds):
            samples["floor"].append(one_start(FLOOR, env))
            samples["ours"].append(one_start(SERVE, env))
        floor_imports, our_imports = importtime(FLOOR, env), importtime(SERVE, env)
        split = phases(env)
        cache_warm = surface.load(cache) is not None

    def med(who: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[who])

    wall = {w: med(w, "tools_list_s") for w in samples}
    cpu = {w: med(w, "cpu_s") for w in samples}
    init = {w: med(w, "initialize_s") for w in samples}
    ratios = [o["tools_list_s"] / f["tools_list_s"] for f, o in zip(samples["floor"], samples["ours"], strict=False)]
    extra = {m: v for m, v in our_imports.items() if m not in floor_imports}
    result = {
        "rounds": rounds,
        "tools_listed": samples["ours"][0]["tools"],
        "median_s": {"floor": wall["floor"], "ours": wall["ours"]},
        "median_initialize_s": init,
        "median_cpu_s": cpu,
        "ratio_of_medians": wall["ours"] / wall["floor"],
        "median_of_paired_ratios": statistics.median(ratios),
        "cpu_ratio": cpu["ours"] / cpu["floor"],
        "extra_over_floor_s": wall["ours"] - wall["floor"],
        "samples": samples,
        "importtime": {
            "modules": {"floor": len(floor_imports), "ours": len(our_imports)},
            "top_cumulative_ours": sorted(([m, v[1]] for m, v in our_imports.items()), key=lambda r: -r[1])[:15],
            "only_in_ours": sorted(([m, v[0], v[1]] for m, v in extra.items()), key=lambda r: -r[1])[:15],
            "only_in_ours_self_us": sum(v[0] for v in extra.values()),
        },
        "phases_cpu_s": split,
        "first_start_without_cache_s": first["tools_list_s"],
        "cache_warm": cache_warm,
    }
    result["target"] = {
        "what": f"ours <= {TARGET_RATIO} x floor (median wall)",
        "value": round(result["ratio_of_medians"], 3),
        "met": result["ratio_of_medians"] <= TARGET_RATIO,
    }
    return result


def report(r: dict[str, Any]) -> str:
    rows = [
        [who, r["median_initialize_s"][who] * 1000, r["median_s"][who] * 1000, r["median_cpu_s"][who] * 1000]
        for who in ("floor", "ours")
    ]
    lines = [
        f"Start-up, {r['rounds']} alternating runs each, medians ({r['tools_listed']} tools listed)",
        table(["server", "initialize ms", "tools/list ms", "CPU ms"], rows),
        f"ratio ours/floor: {r['ratio_of_medians']:.3f} (paired median {r['median_of_paired_ratios']:.3f}, "
        f"CPU {r['cpu_ratio']:.3f}); target <= {TARGET_RATIO}: {verdict(r['target']['met'])}",
        f"tools listed from this install's cache (first start, building and caching every tool: "
        f"{r['first_start_without_cache_s'] * 1000:.0f} ms)"
        if r["cache_warm"]
        else "tool cache NOT used: every tool built",
        "In-process CPU split (min of 3): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r["phases_cpu_s"].items()),
        "importtime, modules only ours imports (self / cumulative us):",
    ]
    lines += [f"  {m:<40} {own:>7} {total:>8}" for m, own, total in r["importtime"]["only_in_ours"][:10]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    result = run(parser.parse_args().rounds)
    write_result("startup", result)
    print(report(result))


if __name__ == "__main__":
    main()
