"""Run every benchmark, write ``bench/results/*.json`` and print one summary table against the targets.

    python3 tasks.py bench            # everything (about 7 minutes on a 2-core machine)
    python3 tasks.py bench --quick    # fewer rounds, for a smoke test

Each benchmark also runs alone: ``.venv/bin/python bench/<name>.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import answer_bytes
import context
import fanout
import per_call
import remote
import response_size
import startup
import throughput
from _common import machine, table, verdict, write_result


def plan(quick: bool) -> list[tuple[str, str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], str]]]:
    return [
        ("startup", "1. start-up vs floor", lambda: startup.run(rounds=3 if quick else 11), startup.report),
        ("per_call", "2. per-call overhead", lambda: per_call.run(rounds=50 if quick else 300), per_call.report),
        ("context", "3. context cost", context.run, context.report),
        ("response_size", "4. response size", response_size.run, response_size.report),
        (
            "throughput",
            "5. HTTP throughput",
            lambda: throughput.run(10 if quick else 50, 20 if quick else 100),
            throughput.report,
        ),
        (
            "fanout",
            "6. fan-out",
            lambda: fanout.run(wanted=1 if quick else 9),
            fanout.report,
        ),
        ("answer_bytes", "7. answer bytes", answer_bytes.run, answer_bytes.report),
        (
            "remote",
            "8. remote mode",
            lambda: remote.run(people=10 if quick else 100, rounds=30 if quick else 300),
            remote.report,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test, not for publishing)")
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    summary = []
    started = time.perf_counter()
    for name, label, run, report in plan(args.quick):
        if only and name not in only:
            continue
        print(f"\n=== {label} ===", flush=True)
        t = time.perf_counter()
        result = run()
        result["seconds"] = round(time.perf_counter() - t, 1)
        result["quick"] = args.quick
        path = write_result(name, result)
        print(report(result))
        print(f"({result['seconds']} s, {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path})")
        target = result["target"]
        summary.append([label, target["what"], target["value"], verdict(target["met"])])
    m = machine()
    print(f"\n=== summary ({m['cpus']} x {m['cpu']}, Python {m['python']}, {time.perf_counter() - started:.0f} s) ===")
    print(table(["benchmark", "target", "measured", "verdict"], summary))
    write_result(
        "summary",
        {
            "quick": args.quick,
            "rows": [dict(zip(("benchmark", "target", "measured", "verdict"), r, strict=True)) for r in summary],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
