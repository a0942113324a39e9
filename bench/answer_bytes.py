"""7. Answer bytes: what a model reads to answer the scenario table (``tests/scenarios.py``).

Every scenario is replayed over the real stdio process on the embedded sandbox, in order, and each
step's result is measured: the text a model reads (the text content), the structured content, and
the whole JSON-RPC result a client receives. Target: every scenario in <= 2 calls with its facts
present (the scenario test checks the facts; this checks the calls and counts the bytes).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import table, verdict, write_result

from tests.scenarios import MAX_CALLS, SCENARIOS, StdioSession


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def run() -> dict[str, Any]:
    rows = []
    session = StdioSession()
    try:
        for scenario in SCENARIOS:
            text_bytes = structured_bytes = result_bytes = 0
            answer = []
            for step in scenario.steps:
                text, _ = session.run(step)
                answer.append(text)
                text_bytes += len(text.encode())
                structured_bytes += (
                    size(session.last.get("structuredContent")) if "structuredContent" in session.last else 0
                )
                result_bytes += size(session.last)
            joined = "\n".join(answer)
            rows.append(
                {
                    "request": scenario.request,
                    "calls": len(scenario.steps),
                    "text_bytes": text_bytes,
                    "structured_bytes": structured_bytes,
                    "result_bytes": result_bytes,
                    "facts_present": all(c in joined for c in scenario.contains),
                }
            )
    finally:
        session.close()
    texts = [r["text_bytes"] for r in rows]
    met = all(r["calls"] <= MAX_CALLS and r["facts_present"] for r in rows)
    return {
        "scenarios": rows,
        "total_text_bytes": sum(texts),
        "median_text_bytes": statistics.median(texts),
        "max_text_bytes": max(texts),
        "total_result_bytes": sum(r["result_bytes"] for r in rows),
        "target": {
            "what": f"{len(rows)} scenarios, <= {MAX_CALLS} calls each, facts present",
            "value": f"{sum(texts):,} B of text in all ({statistics.median(texts):,.0f} B median)",
            "met": met,
        },
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        [
            r["request"][:58],
            r["calls"],
            f"{r['text_bytes']:,}",
            f"{r['structured_bytes']:,}",
            f"{r['result_bytes']:,}",
            verdict(r["facts_present"]),
        ]
        for r in result["scenarios"]
    ]
    rows.append(
        [
            "total",
            sum(r["calls"] for r in result["scenarios"]),
            f"{result['total_text_bytes']:,}",
            "",
            f"{result['total_result_bytes']:,}",
            "",
        ]
    )
    return table(["request", "calls", "text B", "structured B", "result B", "facts"], rows)


if __name__ == "__main__":
    outcome = run()
    write_result("answer_bytes", outcome)
    print(report(outcome))
