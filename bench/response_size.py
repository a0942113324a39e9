"""4. Response size: the tool result for listing 25, 100 and 200 tasks vs the raw API JSON for the same page.

One generated project with 200 tasks carrying what real tasks carry (owners, tags, description,
dates, status, priority); the sandbox answers with the full nested objects the API documents.
Measured: the bytes our server writes for the tools/call result (structured content and its text
mirror, as sent over stdio) and the raw API answer body for the same page. Target: <= 15 % of raw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SERVE, SandboxProcess, StdioSession, server_env, table, verdict, write_result

from astravue_mcp.api.endpoints import ENDPOINTS
from astravue_mcp.config import SANDBOX_ORG_ID, SANDBOX_TOKEN
from astravue_mcp.tools.task_api import page_params

TARGET = 0.15
SIZES = (25, 100, 200)


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def run() -> dict[str, Any]:
    rows = {}
    with SandboxProcess(projects=1, tasks=200) as sandbox:
        space_id, project_id = sandbox.info["projects"][0]
        ids = {"spaceId": space_id, "projectId": project_id}
        endpoint = ENDPOINTS["list_project_tasks"]
        headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Org-Id": str(SANDBOX_ORG_ID)}
        with (
            StdioSession(SERVE, server_env(sandbox.url)) as ours,
            httpx2.Client(base_url=sandbox.url, headers=headers, timeout=30) as http,
        ):
            ours.initialize()
            for n in SIZES:
                raw = http.request(endpoint.method, endpoint.url(**ids), params=page_params(1, n))
                raw.raise_for_status()
                line = ours.raw_request(
                    "tools/call",
                    {
                        "name": "astravue_list_project_tasks",
                        "arguments": {"space_id": space_id, "project_id": project_id, "limit": n},
                    },
                )
                result = json.loads(line)["result"]
                assert not result.get("isError"), result
                assert len(result["structuredContent"]["items"]) == n
                raw_items = len(json.loads(raw.content)["data"].get("content", []))
                rows[n] = {
                    "raw_api_bytes": len(raw.content),
                    "raw_items": raw_items,
                    "result_bytes": len(line),
                    "structured_bytes": compact(result["structuredContent"]),
                    "text_bytes": len(result["content"][0]["text"].encode()),
                    "ratio": round(len(line) / len(raw.content), 4),
                    "structured_ratio": round(compact(result["structuredContent"]) / len(raw.content), 4),
                }
    worst = max(r["ratio"] for r in rows.values())
    return {
        "sizes": rows,
        "target": {"what": "whole tool result <= 15% of the raw API JSON", "value": worst, "met": worst <= TARGET},
    }


def report(r: dict[str, Any]) -> str:
    rows = [
        [n, v["raw_api_bytes"], v["result_bytes"], v["structured_bytes"], v["text_bytes"], f"{v['ratio']:.1%}"]
        for n, v in r["sizes"].items()
    ]
    return "\n".join(
        [
            "Response size: astravue_list_project_tasks vs the raw API page",
            table(["tasks", "raw API B", "result B", "structured B", "text B", "result/raw"], rows),
            f"target <= {TARGET:.0%} of raw: {verdict(r['target']['met'])} (worst {r['target']['value']:.1%})",
        ]
    )


def main() -> None:
    result = run()
    write_result("response_size", result)
    print(report(result))


if __name__ == "__main__":
    main()
