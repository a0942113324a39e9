"""The endpoint table against the project's own copy of the reference (docs/astravue-openapi.yaml).

Every documented operation must be in the table. Where the table deliberately differs from the
reference (a path corrected after meeting the real API), list it in CORRECTIONS with the reason,
so the difference is a decision and not a slip.
"""

from __future__ import annotations

import re
from pathlib import Path

from astravue_mcp.api.endpoints import ENDPOINTS

SPEC = Path(__file__).parent.parent / "docs" / "astravue-openapi.yaml"
AUTH_OPERATIONS = {"authorize", "request_token"}  # Keycloak's, used by the auth module, not the API client
CORRECTIONS: dict[str, str] = {}


def documented() -> dict[str, tuple[str, str]]:
    """operationId -> (METHOD, path), read with a tiny scanner (the YAML layout is regular)."""
    found: dict[str, tuple[str, str]] = {}
    path = method = ""
    for line in SPEC.read_text().splitlines():
        if m := re.match(r"^  (/\S*):\s*$", line):
            path = m[1]
        elif m := re.match(r"^    (get|post|put|delete|patch):\s*$", line):
            method = m[1].upper()
        elif m := re.match(r"^      operationId:\s*(\w+)", line):
            found[m[1]] = (method, path)
    return found


def test_every_documented_operation_is_in_the_table_with_its_method_and_path() -> None:
    spec = documented()
    assert len(spec) >= 40
    api = {op: where for op, where in spec.items() if op not in AUTH_OPERATIONS}
    assert set(api) == set(ENDPOINTS)
    for op, (method, path) in api.items():
        if op in CORRECTIONS:
            continue
        assert (ENDPOINTS[op].method, ENDPOINTS[op].path) == (method, path), op
