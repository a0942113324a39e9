"""The official MCP conformance suite (``@modelcontextprotocol/conformance``) against the real server.

``astravue-mcp serve --sandbox`` runs over Streamable HTTP on a loopback port and the suite runs every
server scenario it has (``--suite all``) at each protocol revision it knows, on that revision's wire
(the initialize handshake up to 2025-11-25, per-request ``_meta`` on 2026-07-28). The suite judges
the result against ``conformance-expected-failures.yml``: any failure not listed there, and any listed
entry that passes, fails the test. The suite has no stdio mode for servers.

The suite (pinned) and a Node 22 binary come from ``tests/inspector/`` (installed by
``python3 tasks.py test``); without them these tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.test_inspector import MODULES, http_server, isolated_env, missing, node22

__all__ = ["http_server"]  # the fixture, shared with the Inspector tests

SUITE_JS = MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINE = Path(__file__).parent / "conformance-expected-failures.yml"
REVISIONS = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
"""Every revision the suite has server scenarios for (2024-11-05 has none)."""


def suite() -> list[str]:
    node = node22()
    if not SUITE_JS.exists():
        missing("tests/inspector has no @modelcontextprotocol/conformance: python3 tasks.py test installs it")
    return [node, str(SUITE_JS)]


@pytest.mark.parametrize("revision", REVISIONS)
def test_conformance_suite_over_streamable_http(revision: str, http_server: str, tmp_path: Path) -> None:
    command = [*suite(), "server", "--url", http_server, "--suite", "all", "--spec-version", revision]
    command += ["--expected-failures", str(BASELINE), "--output-dir", str(tmp_path / "results")]
    done = subprocess.run(command, capture_output=True, text=True, env=isolated_env(tmp_path), timeout=300)
    out = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert re.search(r"Total: [1-9]\d* passed", out), out  # the scenarios did run
    marks = [i for head in ("Stale baseline", "Unexpected failures (not") if (i := out.find(head)) >= 0]
    verdict = out[min(marks) :] if marks else out[-3000:]
    assert done.returncode == 0, (
        f"conformance at {revision} exited {done.returncode}:\n{verdict}\n{done.stderr}\n"
        + "\n".join(failed_checks(tmp_path / "results", verdict))
    )


def failed_checks(results: Path, verdict: str) -> list[str]:
    """The failed checks of the scenarios the verdict names, with the suite's message for each."""
    lines = []
    for checks in sorted(results.glob("*/checks.json")):
        scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name)
        if f" {scenario}\n" not in verdict and f" {scenario}:" not in verdict:
            continue
        for check in json.loads(checks.read_text()):
            if check.get("status") in ("FAILURE", "WARNING"):
                lines.append(f"{scenario}:{check['id']}: {check.get('errorMessage')}")
    return lines


def test_every_expected_failure_says_why() -> None:
    entries = [line for line in BASELINE.read_text().splitlines() if line.lstrip().startswith("- ")]
    assert len(entries) >= 1
    unexplained = [e.strip() for e in entries if "#" not in e]
    assert unexplained == []
